//! Ingest on S3 (moto's server, `atenex_ingest::testing`) with the test broker, through the same
//! object_store client settings production uses: what is stored where, what `documents.raw`
//! announces, put-if-absent under concurrent duplicates, and an outage.

use atenex_ingest::storage::Storage;
use atenex_ingest::testing::{self as s3, S3Server};
use atenex_ingest::{App, router};
use atenex_kafka::{Producer, testing};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::sync::Arc;

async fn serve(storage: Storage) -> String {
    serve_with(storage, 1_000_000).await
}

async fn serve_with(storage: Storage, max_upload_bytes: usize) -> String {
    let app = Arc::new(App::new(
        storage,
        Producer::new(&testing::config()).unwrap(),
        max_upload_bytes,
        atenex_ingest::DEFAULT_MAX_CONCURRENT_UPLOADS,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(app)).await.unwrap() });
    format!("http://{addr}/api/v1/ingest/upload")
}

async fn upload(url: &str, company: &str, name: &str, data: Vec<u8>) -> (u16, Value) {
    let form = Form::new().part(
        "file",
        Part::bytes(data)
            .file_name(name.to_owned())
            .mime_str("text/plain")
            .unwrap(),
    );
    let resp = reqwest::Client::new()
        .post(url)
        .multipart(form)
        .header("X-Company-ID", company)
        .header("X-User-ID", "user-1")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// 503 with the detail a client sees when the store fails.
fn assert_unavailable(status: u16, body: &Value) {
    assert_eq!(status, 503, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("object storage unavailable"), "{body}");
}

/// The `documents.raw` values announced for `company`.
async fn announced(company: &str) -> Vec<Value> {
    testing::read_topics(&["documents.raw"])
        .await
        .into_iter()
        .map(|e| serde_json::from_str::<Value>(e.payload.as_deref().unwrap()).unwrap())
        .filter(|v| v["company_id"] == company)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_stored_in_s3_announced_with_its_s3_path_and_read_back_by_it() {
    let server = s3::shared();
    let bucket = server.bucket("uploads").unwrap();
    let storage =
        Storage::open_with(&format!("s3://{bucket}/atenex/raw"), &server.options()).unwrap();
    let reader = storage.clone();
    let url = serve(storage).await;
    let company = uuid::Uuid::new_v4().to_string();
    let text = format!("Atenex on S3 {}\n", uuid::Uuid::new_v4()).into_bytes();
    let (status, body) = upload(&url, &company, "notes.txt", text.clone()).await;
    assert_eq!(status, 202, "{body}");
    let doc = body["document_id"].as_str().unwrap();
    let key = format!("atenex/raw/{company}/{doc}/notes.txt");
    assert_eq!(server.object(&bucket, &key).unwrap(), Some(text.clone()));
    let events = announced(&company).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let s3_path = events[0]["s3_path"].as_str().unwrap();
    assert_eq!(s3_path, format!("s3://{bucket}/{key}"));
    // What docproc does with it: read it by its URL; a URL outside the bucket is nothing.
    assert_eq!(
        reader.get_url(s3_path).await.unwrap().as_deref(),
        Some(&text[..])
    );
    let outside = format!("s3://another-bucket/{key}");
    assert_eq!(reader.get_url(&outside).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_content_twice_at_once_is_stored_and_announced_once() {
    let server = s3::shared();
    let bucket = server.bucket("dedupe").unwrap();
    let storage = Storage::open_with(&format!("s3://{bucket}"), &server.options()).unwrap();
    let url = serve(storage).await;
    let company = uuid::Uuid::new_v4().to_string();
    let text = format!("twice {}\n", uuid::Uuid::new_v4()).into_bytes();
    let uploads = (0..4).map(|i| {
        let (url, company, text) = (url.clone(), company.clone(), text.clone());
        tokio::spawn(async move { upload(&url, &company, &format!("copy-{i}.txt"), text).await })
    });
    let mut answers = Vec::new();
    for u in uploads {
        answers.push(u.await.unwrap());
    }
    let accepted: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 202)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(accepted.len(), 1, "{answers:?}");
    let doc = accepted[0]["document_id"].as_str().unwrap();
    for (status, body) in answers.iter().filter(|(s, _)| *s != 202) {
        assert_eq!(*status, 409, "{body}");
        assert_eq!(body["document_id"], doc, "the winner's id: {body}");
    }
    let events = announced(&company).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["document_id"], doc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_down_means_503_with_a_detail_and_nothing_announced() {
    let mut server = S3Server::start().unwrap();
    let bucket = server.bucket("outage").unwrap();
    let storage = Storage::open_with(&format!("s3://{bucket}"), &server.options()).unwrap();
    let url = serve(storage).await;
    let company = uuid::Uuid::new_v4().to_string();
    let (status, body) = upload(&url, &company, "before.txt", b"up\n".to_vec()).await;
    assert_eq!(status, 202, "{body}");
    server.stop();
    let (status, body) = upload(&url, &company, "during.txt", b"down\n".to_vec()).await;
    assert_unavailable(status, &body);
    let events = announced(&company).await;
    assert_eq!(
        events.len(),
        1,
        "only the upload before the outage: {events:?}"
    );
}

/// A proxy in front of `to` that holds every answer back `delay` (an S3 that is slow to answer).
async fn slow_proxy(to: String, delay: std::time::Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let to = to.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(&to).await else {
                    return;
                };
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = tokio::io::copy(&mut cr, &mut sw);
                let down = async {
                    tokio::time::sleep(delay).await;
                    tokio::io::copy(&mut sr, &mut cw).await
                };
                let _ = tokio::join!(up, down);
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_s3_gets_a_bounded_wait_and_503_not_a_hung_upload() {
    let server = s3::shared();
    let bucket = server.bucket("slow").unwrap();
    let proxy = slow_proxy(
        server.endpoint().trim_start_matches("http://").to_owned(),
        std::time::Duration::from_secs(30),
    )
    .await;
    let mut options: Vec<(String, String)> = server
        .options()
        .into_iter()
        .filter(|(k, _)| k != "aws_endpoint")
        .collect();
    options.push(("aws_endpoint".into(), proxy));
    // Requests of at most 1 s (production: 30 s, AWS_TIMEOUT), retried within the bound.
    options.push(("timeout".into(), "1s".into()));
    let storage = Storage::open_with(&format!("s3://{bucket}"), &options).unwrap();
    let url = serve(storage).await;
    let company = uuid::Uuid::new_v4().to_string();
    let started = std::time::Instant::now();
    let (status, body) = upload(&url, &company, "slow.txt", b"slow\n".to_vec()).await;
    assert_unavailable(status, &body);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "answered after {:?}",
        started.elapsed()
    );
    assert!(announced(&company).await.is_empty());
}

/// An upload larger than a part (5 MiB) goes as a multipart upload (smaller ones as one PUT):
/// stored whole, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_larger_than_a_part_is_stored_whole_in_s3() {
    let server = s3::shared();
    let bucket = server.bucket("large").unwrap();
    let storage = Storage::open_with(&format!("s3://{bucket}/raw"), &server.options()).unwrap();
    let url = serve_with(storage, 20 * 1024 * 1024).await;
    let company = uuid::Uuid::new_v4().to_string();
    let line = format!("a line of a large document {}\n", uuid::Uuid::new_v4());
    let text = line.repeat(12 * 1024 * 1024 / line.len()).into_bytes();
    assert!(text.len() > 2 * 5 * 1024 * 1024);
    let (status, body) = upload(&url, &company, "large.txt", text.clone()).await;
    assert_eq!(status, 202, "{body}");
    let doc = body["document_id"].as_str().unwrap();
    let stored = server
        .object(&bucket, &format!("raw/{company}/{doc}/large.txt"))
        .unwrap()
        .expect("stored");
    assert!(
        stored == text,
        "{} bytes stored of {}",
        stored.len(),
        text.len()
    );
}
