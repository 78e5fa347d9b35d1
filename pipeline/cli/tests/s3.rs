//! `atenex ingest` and `atenex docproc` on S3 (moto's server, `atenex_ingest::testing`), as users
//! run them with the AWS variables: a missing bucket, refused credentials or an S3 that does not
//! answer stops them at start with the cause and the fix; docproc reads announced objects from its bucket and
//! dead-letters an `s3_path` outside it with the reason.

mod common;
use atenex_ingest::storage::Storage;
use atenex_ingest::testing as s3;
use atenex_kafka::{OutRecord, Producer, testing};
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `atenex ARGS` with the test S3's environment (`endpoint` instead of its own when given): its
/// exit status and standard error, within 60 s.
fn run_with_s3(args: &[&str], endpoint: Option<&str>) -> (std::process::ExitStatus, String) {
    let mut cmd: Command = atenex();
    cmd.args(args)
        .envs(s3::shared().env())
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(e) = endpoint {
        cmd.env("AWS_ENDPOINT", e);
    }
    let mut child = cmd.spawn().unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

#[test]
fn a_missing_bucket_or_an_unanswering_s3_stops_the_services_at_start_with_the_fix() {
    let missing = format!("s3://no-such-bucket-{}/raw", std::process::id());
    let bootstrap = testing::bootstrap();
    for service in ["ingest", "docproc"] {
        let mut args = vec![
            service,
            "--storage",
            &missing,
            "--bootstrap-servers",
            bootstrap,
        ];
        if service == "ingest" {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        let (status, err) = run_with_s3(&args, None);
        assert!(!status.success(), "{service}: {status}");
        assert!(
            err.contains(&format!(
                "the bucket no-such-bucket-{} does not exist: create it, or fix --storage",
                std::process::id()
            )),
            "{service}: {err}"
        );
    }
    // Nothing listens there: the check gives up after its bound and says where to look.
    let closed = atenex_kafka::broker::free_ports::<1>().unwrap()[0];
    let bucket = s3::shared().bucket("unanswered").unwrap();
    let started = Instant::now();
    let (status, err) = run_with_s3(
        &[
            "ingest",
            "--storage",
            &format!("s3://{bucket}"),
            "--listen",
            "127.0.0.1:0",
            "--bootstrap-servers",
            bootstrap,
        ],
        Some(&format!("http://127.0.0.1:{closed}")),
    );
    assert!(!status.success());
    assert!(err.contains("check AWS_ENDPOINT"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "{:?}",
        started.elapsed()
    );
}

/// Credentials S3 does not know stop both services at start, saying which variables to set.
#[test]
fn refused_credentials_stop_the_services_at_start_with_the_fix() {
    let server = s3::S3Server::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "2")]).unwrap();
    let bucket = server.bucket("auth").unwrap();
    let storage = format!("s3://{bucket}");
    let bootstrap = testing::bootstrap();
    for (service, verb) in [("ingest", "write"), ("docproc", "read")] {
        let mut args = vec![
            service,
            "--storage",
            &storage,
            "--bootstrap-servers",
            bootstrap,
        ];
        if service == "ingest" {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        let (status, err) = run_with_s3(&args, Some(server.endpoint()));
        assert!(!status.success(), "{service}: {status}");
        assert!(
            err.contains(&format!(
                "the credentials were refused: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the instance role) to ones allowed to {verb} the bucket {bucket}"
            )),
            "{service}: {err}"
        );
        assert!(err.contains("InvalidAccessKeyId"), "{service}: {err}");
    }
}

#[test]
fn docproc_reads_its_bucket_and_dead_letters_a_path_outside_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    ok(&atenex()
        .args([
            "topics",
            "create",
            "--bootstrap-servers",
            testing::bootstrap(),
        ])
        .output()
        .unwrap());
    let server = s3::shared();
    let bucket = server.bucket("docproc").unwrap();
    let url = format!("s3://{bucket}/atenex/raw");
    let storage = Storage::open_with(&url, &server.options()).unwrap();
    let company = uuid::Uuid::new_v4().to_string();
    let (inside, outside) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let key = format!("{company}/{inside}/notes.txt");
    let text = "Atenex reads this from S3.\nA second line of the note.\n";
    rt.block_on(storage.put(&key, text.as_bytes().to_vec().into()))
        .unwrap();
    let events = [
        (&inside, format!("{url}/{key}")),
        (
            &outside,
            format!("s3://another-bucket/atenex/raw/{company}/{outside}/notes.txt"),
        ),
    ];
    rt.block_on(async {
        let producer = Producer::new(&testing::config()).unwrap();
        for (doc, path) in &events {
            let value = serde_json::json!({"document_id": doc, "company_id": company, "s3_path": path, "doc_type": "txt"}).to_string();
            producer
                .send(OutRecord::new("documents.raw", Some(doc.as_bytes()), Some(value.as_bytes())))
                .await
                .unwrap();
        }
    });
    let mut docproc = atenex()
        .args([
            "docproc",
            "--storage",
            &url,
            "--group",
            &testing::unique("docproc-s3"),
            "--bootstrap-servers",
            testing::bootstrap(),
        ])
        .envs(server.env())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let (chunks, letters) = loop {
        let (chunks, letters) = rt.block_on(async {
            let chunks: Vec<serde_json::Value> = testing::read_topics(&["chunks.processed"])
                .await
                .into_iter()
                .filter(|e| e.key.as_deref() == Some(inside.as_str()))
                .map(|e| serde_json::from_str(e.payload.as_deref().unwrap()).unwrap())
                .collect();
            let letters: Vec<String> = testing::read_topics(&["documents.raw.dlq"])
                .await
                .iter()
                .filter(|e| e.key.as_deref() == Some(outside.as_str()))
                .map(|e| {
                    testing::header(e, atenex_contracts::topics::dlq_headers::REASON)
                        .unwrap()
                        .to_owned()
                })
                .collect();
            (chunks, letters)
        });
        if !chunks.is_empty() && !letters.is_empty() {
            break (chunks, letters);
        }
        assert!(
            Instant::now() < deadline,
            "chunks {chunks:?}, dead letters {letters:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    signal(&docproc, "-TERM");
    assert!(wait_exit(&mut docproc, Duration::from_secs(30)).success());
    assert_eq!(chunks.len(), 1, "{chunks:?}");
    // The chunker keeps the words, joined by single spaces.
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(chunks[0]["text"], words.join(" "));
    assert_eq!(chunks[0]["company_id"], company.as_str());
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].contains(&format!("is outside the configured storage {url}")),
        "{letters:?}"
    );
}
