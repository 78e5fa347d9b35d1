//! The embedding service against the test broker and the OpenAI mock: a 429 storm and a 500
//! burst lose nothing and duplicate nothing, every vector is the one the mock derives from its
//! text, refusals go to chunks.processed.dlq with the reason, and quota exhaustion dead-letters
//! instead of looping.

use atenex_contracts::topics::dlq_headers;
use atenex_embedding::batcher::Limits;
use atenex_embedding::client::{ApiKey, Client, ClientConfig};
use atenex_embedding::retry::RetryPolicy;
use atenex_embedding::service::{Embedding, EmbeddingConfig};
use atenex_kafka::{GroupConsumer, GroupSettings, OutRecord, Producer, testing};
use atenex_mock_openai::{Config, Faults, Server};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const MODEL: &str = "text-embedding-3-small";

fn service(mock: &Server) -> Embedding {
    let client = Client::new(ClientConfig {
        base_url: mock.base_url.clone(),
        api_key: ApiKey::new("sk-test"),
        model: MODEL.into(),
        dimensions: None,
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    Embedding::new(
        client,
        Producer::new(&testing::config()).unwrap(),
        EmbeddingConfig {
            limits: Limits {
                max_inputs: 25,
                ..Limits::default()
            },
            concurrency: 4,
            retry: RetryPolicy {
                base: Duration::from_millis(10),
                max: Duration::from_millis(200),
                max_attempts: 30,
            },
        },
    )
    .unwrap()
}

/// Runs the service on chunks.processed until `expected` records of ours were handled.
async fn run_until(embedding: &Embedding, group: &str, ours: &[String], expected: usize) {
    let consumer = GroupConsumer::new(
        &testing::config(),
        GroupSettings::new(group, &["chunks.processed"]),
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let mut handled = 0;
    tokio::time::timeout(
        Duration::from_secs(120),
        consumer.run(shutdown, async |batch| {
            embedding.handle(batch).await?;
            handled += batch
                .iter()
                .filter(|r| ours.iter().any(|d| r.key.as_deref() == Some(d.as_bytes())))
                .count();
            if handled >= expected {
                stop.cancel();
            }
            Ok(())
        }),
    )
    .await
    .expect("the service handled every chunk within 2 minutes")
    .unwrap();
}

async fn produce(records: &[(String, Vec<u8>)]) {
    let producer = Producer::new(&testing::config()).unwrap();
    for (key, value) in records {
        producer
            .send(OutRecord::new(
                "chunks.processed",
                Some(key.as_bytes()),
                Some(value),
            ))
            .await
            .unwrap();
    }
}

fn chunk(doc: &str, company: &str, i: usize, text: &str) -> (String, Vec<u8>) {
    let v = json!({"chunk_id": format!("{doc}_{i}"), "document_id": doc, "company_id": company, "text": text, "page": 1});
    (doc.to_owned(), v.to_string().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_lose_nothing_duplicate_nothing_and_refusals_are_dead_letters() {
    let company = uuid::Uuid::new_v4().to_string();
    let docs: Vec<String> = (0..12).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut texts = BTreeMap::new();
    let mut records = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        for i in 0..40 {
            let text = format!(
                "document {d} chunk {i}: {}",
                "palabra word ".repeat(i % 7 + 1)
            );
            records.push(chunk(doc, &company, i, &text));
            texts.insert(format!("{doc}_{i}"), text);
        }
    }
    // Refusals, in a document of their own.
    let bad = uuid::Uuid::new_v4().to_string();
    records.push(chunk(&bad, &company, 0, "   "));
    records.push(chunk(&bad, &company, 1, &"word ".repeat(9000)));
    records.push((bad.clone(), b"{\"chunk_id\": 7".to_vec()));
    produce(&records).await;

    // 480 chunks in requests of 25: a storm of 8 rate limits, then 4 server errors.
    let mock = Server::start(Config {
        api_key: None,
        faults: Faults {
            rate_limit_burst: Some(2..10),
            error_burst: Some(12..16),
            retry_after: Duration::from_millis(20),
            ..Faults::default()
        },
    })
    .await
    .unwrap();
    let embedding = service(&mock);
    let group = testing::unique("embedding");
    let mut ours = docs.clone();
    ours.push(bad.clone());
    run_until(&embedding, &group, &ours, records.len()).await;
    assert_eq!(mock.stats.rate_limited.load(Ordering::Relaxed), 8);
    assert_eq!(mock.stats.server_errors.load(Ordering::Relaxed), 4);

    // Exactly once each, with the mock's vector for its text.
    let ready = testing::read_topics(&["embeddings.ready"]).await;
    let mut seen = BTreeMap::new();
    for e in ready
        .iter()
        .filter(|e| docs.iter().any(|d| e.key.as_deref() == Some(d)))
    {
        let v: Value = serde_json::from_str(e.payload.as_deref().unwrap()).unwrap();
        let id = v["chunk_id"].as_str().unwrap().to_owned();
        assert_eq!(v["company_id"], company.as_str());
        let vector: Vec<f32> = v["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(
            vector,
            atenex_mock_openai::vector(MODEL, 1536, texts[&id].as_bytes()),
            "{id}"
        );
        *seen.entry(id).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), texts.len(), "every chunk embedded");
    assert!(seen.values().all(|&n| n == 1), "no duplicates");

    let letters = testing::read_topics(&["chunks.processed.dlq"]).await;
    let mine: Vec<String> = letters
        .iter()
        .filter(|e| e.key.as_deref() == Some(bad.as_str()))
        .map(|e| testing::header(e, dlq_headers::REASON).unwrap().to_owned())
        .collect();
    assert_eq!(mine.len(), 3, "{mine:?}");
    assert!(mine[0].contains("empty text"), "{mine:?}");
    assert!(mine[1].contains("too long: 9001 tokens"), "{mine:?}");
    assert!(mine[2].contains("not a chunks.processed event"), "{mine:?}");

    // Quota exhausted: the next chunks are dead-lettered with OpenAI's reason, once, and the
    // group goes on from its committed offsets (nothing of the first run again).
    let broke = Server::start(Config {
        api_key: None,
        faults: Faults {
            quota_requests: Some(0),
            ..Faults::default()
        },
    })
    .await
    .unwrap();
    let late = uuid::Uuid::new_v4().to_string();
    let more: Vec<_> = (0..5)
        .map(|i| chunk(&late, &company, i, "more text"))
        .collect();
    produce(&more).await;
    run_until(
        &service(&broke),
        &group,
        std::slice::from_ref(&late),
        more.len(),
    )
    .await;
    assert_eq!(
        broke.stats.requests.load(Ordering::Relaxed),
        1,
        "one request, not retried"
    );
    let letters = testing::read_topics(&["chunks.processed.dlq"]).await;
    let quota: Vec<_> = letters
        .iter()
        .filter(|e| e.key.as_deref() == Some(late.as_str()))
        .collect();
    assert_eq!(quota.len(), 5);
    for e in quota {
        let reason = testing::header(e, dlq_headers::REASON).unwrap();
        assert!(reason.contains("insufficient_quota"), "{reason}");
        assert!(!reason.contains("sk-test"));
    }
}
