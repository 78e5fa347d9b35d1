//! The docproc service against the test broker: announced documents in, chunks out in order on
//! chunks.processed, every refusal on documents.raw.dlq with its reason, offsets committed.

use atenex_contracts::topics::dlq_headers;
use atenex_docproc::chunker::{self, ChunkerConfig};
use atenex_docproc::extract::{self, Format, Limits};
use atenex_docproc::service::{Docproc, Outcome};
use atenex_ingest::storage::Storage;
use atenex_kafka::{GroupConsumer, GroupSettings, OutRecord, Producer, testing};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../fixtures/documents/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_become_ordered_chunks_and_refusals_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path().to_str().unwrap()).unwrap();
    let company = uuid::Uuid::new_v4().to_string();
    let producer = Producer::new(&testing::config()).unwrap();

    // Stored as ingest stores them; one announced but never stored, one of an unsupported type.
    let mut expected_chunks = BTreeMap::new();
    let mut dead = BTreeMap::new();
    let mut events: Vec<(String, Vec<u8>)> = Vec::new();
    for name in [
        "multipage.pdf",
        "tables.docx",
        "page.html",
        "notes.md",
        "cafe-cp1252.txt",
        "encrypted.pdf",
        "scanned.pdf",
        "missing.pdf",
        "program.exe",
    ] {
        let doc = uuid::Uuid::new_v4().to_string();
        let key = format!("{company}/{doc}/{name}");
        if name != "missing.pdf" {
            let data = if name == "program.exe" {
                b"MZ\x90\x00".to_vec()
            } else {
                fixture(name)
            };
            storage.put(&key, data.into()).await.unwrap();
        }
        match Format::from_extension(name)
            .map(|f| extract::extract(f, &fixture_or_empty(name), &Limits::default()))
        {
            Some(Ok(pages)) => {
                expected_chunks.insert(
                    doc.clone(),
                    chunker::chunk(&pages, &ChunkerConfig::default(), None),
                );
            }
            _ => {
                dead.insert(doc.clone(), name);
            }
        }
        let event =
            json!({"document_id": doc, "company_id": company, "s3_path": storage.url_of(&key)});
        events.push((doc, event.to_string().into_bytes()));
    }
    // Ingest's checked type wins over the name's extension (a client may declare text/markdown
    // for "readme.data").
    let typed = uuid::Uuid::new_v4().to_string();
    let key = format!("{company}/{typed}/readme.data");
    storage.put(&key, fixture("notes.md").into()).await.unwrap();
    let pages = extract::extract(Format::Md, &fixture("notes.md"), &Limits::default()).unwrap();
    expected_chunks.insert(
        typed.clone(),
        chunker::chunk(&pages, &ChunkerConfig::default(), None),
    );
    let event = json!({"document_id": typed, "company_id": company,
        "s3_path": storage.url_of(&key), "doc_type": "md"});
    events.push((typed, event.to_string().into_bytes()));
    // A value that is not an event at all.
    let junk_key = uuid::Uuid::new_v4().to_string();
    events.push((junk_key.clone(), b"{not json".to_vec()));
    for (key, value) in &events {
        producer
            .send(OutRecord::new(
                "documents.raw",
                Some(key.as_bytes()),
                Some(value),
            ))
            .await
            .unwrap();
    }

    let docproc = Docproc::new(
        storage,
        producer.clone(),
        ChunkerConfig::default(),
        Limits::default(),
    )
    .unwrap();
    let consumer = GroupConsumer::new(
        &testing::config(),
        GroupSettings::new(testing::unique("docproc"), &["documents.raw"]),
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let wanted: Vec<String> = events.iter().map(|(k, _)| k.clone()).collect();
    let stop = shutdown.clone();
    let summary = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        consumer.run(shutdown, async |batch| {
            let out = docproc.handle(batch).await?;
            for (r, o) in batch.iter().zip(out) {
                let key = String::from_utf8(r.key.clone().unwrap_or_default()).unwrap();
                if wanted.contains(&key) {
                    outcomes.insert(key, o);
                }
            }
            if outcomes.len() == wanted.len() {
                stop.cancel();
            }
            Ok(())
        }),
    )
    .await
    .expect("docproc handled every event within 2 minutes")
    .unwrap();
    assert!(summary.commits >= 1);

    // Chunks: exactly the pure cores' output, in order, with ids, pages and the tenant.
    let produced = testing::read_topics(&["chunks.processed"]).await;
    for (doc, chunks) in &expected_chunks {
        let mine: Vec<Value> = produced
            .iter()
            .filter(|e| e.key.as_deref() == Some(doc.as_str()))
            .map(|e| serde_json::from_str(e.payload.as_deref().unwrap()).unwrap())
            .collect();
        assert_eq!(mine.len(), chunks.len(), "{doc}");
        for (got, want) in mine.iter().zip(chunks) {
            assert_eq!(got["chunk_id"], format!("{doc}_{}", want.index));
            assert_eq!(got["document_id"], doc.as_str());
            assert_eq!(got["company_id"], company.as_str());
            assert_eq!(got["text"], want.text.as_str());
            assert_eq!(got["page"], json!(want.page));
        }
        assert_eq!(
            outcomes[doc],
            Outcome::Chunked {
                chunks: chunks.len()
            }
        );
    }
    assert_eq!(expected_chunks.len(), 6);

    // Dead letters: each refused event once, with the reason and where it came from.
    let letters = testing::read_topics(&["documents.raw.dlq"]).await;
    let reason_of = |key: &str| -> String {
        let mine: Vec<_> = letters
            .iter()
            .filter(|e| e.key.as_deref() == Some(key))
            .collect();
        assert_eq!(mine.len(), 1, "{key}");
        assert_eq!(
            testing::header(mine[0], dlq_headers::STAGE),
            Some("docproc")
        );
        assert_eq!(
            testing::header(mine[0], dlq_headers::TOPIC),
            Some("documents.raw")
        );
        testing::header(mine[0], dlq_headers::REASON)
            .unwrap()
            .to_owned()
    };
    let expect = [
        ("encrypted.pdf", "encrypted"),
        ("scanned.pdf", "no extractable text"),
        ("missing.pdf", "object not found"),
        ("program.exe", "unsupported document type"),
    ];
    for (doc, name) in &dead {
        let (_, words) = expect.iter().find(|(n, _)| n == name).unwrap();
        let reason = reason_of(doc);
        assert!(reason.contains(words), "{name}: {reason}");
        assert!(matches!(&outcomes[doc], Outcome::DeadLettered { reason: r } if *r == reason));
    }
    assert_eq!(dead.len(), 4);
    assert!(
        reason_of(&junk_key).contains("documents.raw: field `<value>`: is not valid JSON"),
        "{}",
        reason_of(&junk_key)
    );
}

fn fixture_or_empty(name: &str) -> Vec<u8> {
    match name {
        "missing.pdf" | "program.exe" => Vec::new(),
        _ => fixture(name),
    }
}
