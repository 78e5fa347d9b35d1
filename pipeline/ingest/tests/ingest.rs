//! The ingest service over real HTTP on loopback, with the test broker: what is stored, what is
//! announced on documents.raw, and every refusal with its status and `{"detail"}`.

use atenex_ingest::storage::Storage;
use atenex_ingest::{App, router};
use atenex_kafka::{KafkaConfig, Producer, testing};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

const COMPANY: &str = "0b3b1f2a-5b2c-4c6e-9f1a-2d3e4f5a6b7c";

async fn serve(storage_dir: &Path, kafka: KafkaConfig, max: usize) -> String {
    serve_with(
        storage_dir,
        kafka,
        max,
        atenex_ingest::DEFAULT_MAX_CONCURRENT_UPLOADS,
    )
    .await
}

async fn serve_with(storage_dir: &Path, kafka: KafkaConfig, max: usize, uploads: usize) -> String {
    let app = Arc::new(App::new(
        Storage::open(storage_dir.to_str().unwrap()).unwrap(),
        Producer::new(&kafka).unwrap(),
        max,
        uploads,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(app)).await.unwrap() });
    format!("http://{addr}/api/v1/ingest/upload")
}

async fn upload(
    url: &str,
    company: Option<&str>,
    name: &str,
    mime: &str,
    data: Vec<u8>,
) -> (u16, Value) {
    upload_form(
        url,
        company,
        Form::new().part(
            "file",
            Part::bytes(data)
                .file_name(name.to_owned())
                .mime_str(mime)
                .unwrap(),
        ),
    )
    .await
}

async fn upload_form(url: &str, company: Option<&str>, form: Form) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).multipart(form);
    if let Some(c) = company {
        req = req.header("X-Company-ID", c).header("X-User-ID", "user-1");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn announced(document_id: &str) -> Vec<Value> {
    testing::read_topics(&["documents.raw"])
        .await
        .into_iter()
        .filter(|e| e.key.as_deref() == Some(document_id))
        .map(|e| serde_json::from_str(e.payload.as_deref().unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_stored_then_announced_once_and_duplicates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve(dir.path(), testing::config(), 1_000_000).await;
    let text = format!("Atenex {}\nsegunda línea\n", uuid::Uuid::new_v4()).into_bytes();
    let (status, body) = upload(&url, Some(COMPANY), "notes.txt", "text/plain", text.clone()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "uploaded");
    let doc = body["document_id"].as_str().unwrap().to_owned();
    uuid::Uuid::parse_str(&doc).unwrap();
    let stored = dir.path().join(COMPANY).join(&doc).join("notes.txt");
    assert_eq!(std::fs::read(&stored).unwrap(), text);
    let events = announced(&doc).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["company_id"], COMPANY);
    assert_eq!(events[0]["doc_type"], "txt");
    assert_eq!(
        events[0]["s3_path"],
        format!(
            "file://{}",
            std::fs::canonicalize(&stored).unwrap().display()
        )
    );

    // The same content again, under another name: 409 with the first document_id.
    let (status, body) = upload(
        &url,
        Some(COMPANY),
        "renamed.md",
        "text/markdown",
        text.clone(),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["document_id"], doc.as_str());
    assert!(body["detail"].as_str().unwrap().contains(&doc));
    // Another company may upload it.
    let other = uuid::Uuid::new_v4().to_string();
    let (status, _) = upload(&url, Some(&other), "notes.txt", "text/plain", text).await;
    assert_eq!(status, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_their_status_and_a_detail() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve(dir.path(), testing::config(), 100_000).await;
    /// (company, file name, declared type, content, expected status, part of the detail)
    type Case<'a> = (Option<&'a str>, &'a str, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            None,
            "a.txt",
            "text/plain",
            b"x".to_vec(),
            422,
            "X-Company-ID header is required",
        ),
        (
            Some("not-a-uuid"),
            "a.txt",
            "text/plain",
            b"x".to_vec(),
            400,
            "is not a UUID",
        ),
        (
            Some(COMPANY),
            "a.png",
            "image/png",
            b"\x89PNG".to_vec(),
            415,
            "accepted: pdf",
        ),
        (
            Some(COMPANY),
            "a.pdf",
            "application/pdf",
            b"plain words".to_vec(),
            415,
            "declared as pdf but the content is not",
        ),
        (
            Some(COMPANY),
            "a.txt",
            "text/plain",
            b"\x7fELF\x02\x01\x01\x00bin".to_vec(),
            415,
            "executable",
        ),
        (
            Some(COMPANY),
            "a.txt",
            "text/plain",
            Vec::new(),
            400,
            "the file is empty",
        ),
        (
            Some(COMPANY),
            "../..",
            "text/plain",
            b"x".to_vec(),
            400,
            "nothing left",
        ),
        (
            Some(COMPANY),
            "big.txt",
            "text/plain",
            vec![b'a'; 100_001],
            413,
            "larger than",
        ),
    ];
    for (company, name, mime, data, want, detail) in cases {
        let (status, body) = upload(&url, company, name, mime, data).await;
        assert_eq!(status, want, "{name} {mime}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains(detail),
            "{name}: {body}"
        );
    }
    // metadata_json must be an object; `file` is required.
    let form = Form::new().text("metadata_json", "[1,2]").part(
        "file",
        Part::bytes(b"ok".to_vec())
            .file_name("m.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let (status, body) = upload_form(&url, Some(COMPANY), form).await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (400, "metadata_json must be a JSON object")
    );
    let (status, _) =
        upload_form(&url, Some(COMPANY), Form::new().text("metadata_json", "{}")).await;
    assert_eq!(status, 422);
    // Nothing of the refused uploads was stored, not even a directory.
    let left: Vec<_> = walkdir(dir.path());
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_stay_inside_the_company_and_document() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve(dir.path(), testing::config(), 1_000_000).await;
    let long = format!("{}.txt", "ñ".repeat(2048)); // 4 KB
    // Control characters (NUL, DEL) cannot even be sent in a multipart header: the body is
    // refused as malformed (file names that reach the service lose them: filename.rs).
    for name in ["nul\u{0}byte.txt", "del\u{7f}.txt"] {
        let (status, body) = upload(&url, Some(COMPANY), name, "text/plain", b"x".to_vec()).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with("malformed multipart body"),
            "{body}"
        );
    }
    for (i, name) in [
        "../../etc/passwd.txt",
        "/abs/path/x.txt",
        "..\\..\\win.txt",
        long.as_str(),
        "日本語 ファイル.txt",
    ]
    .iter()
    .enumerate()
    {
        let (status, body) = upload(
            &url,
            Some(COMPANY),
            name,
            "text/plain",
            format!("content {i} {}", uuid::Uuid::new_v4()).into_bytes(),
        )
        .await;
        assert_eq!(status, 202, "{name}: {body}");
        let doc = body["document_id"].as_str().unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join(COMPANY).join(doc))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files.len(), 1);
        let f = &files[0];
        assert!(
            f.len() <= 240
                && f.ends_with(".txt")
                && !f.contains('/')
                && !f.chars().any(char::is_control),
            "{name} → {f}"
        );
    }
    assert!(!dir.path().join("etc").exists() && !Path::new("/etc/passwd.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_means_5xx_and_nothing_kept() {
    let dir = tempfile::tempdir().unwrap();
    let dead = KafkaConfig::from_vars(Vec::new())
        .with_bootstrap(Some("127.0.0.1:1"))
        .with("message.timeout.ms", "1500");
    let url = serve(dir.path(), dead, 1_000_000).await;
    let text = b"nobody will hear this".to_vec();
    let (status, body) = upload(&url, Some(COMPANY), "a.txt", "text/plain", text.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was kept")
    );
    let left: Vec<_> = walk(dir.path());
    assert!(left.is_empty(), "no object, no claim: {left:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Every file and directory under `dir`.
fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        }
        out.push(p);
    }
    out
}

/// Two `file` parts are refused (the last one no longer silently wins), and nothing is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_file_parts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve(dir.path(), testing::config(), 1_000_000).await;
    let part = |name: &str| {
        Part::bytes(format!("content of {name}").into_bytes())
            .file_name(name.to_owned())
            .mime_str("text/plain")
            .unwrap()
    };
    let form = Form::new()
        .part("file", part("a.txt"))
        .part("file", part("b.txt"));
    let (status, body) = upload_form(&url, Some(COMPANY), form).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["detail"],
        "more than one `file` part: send one file per upload"
    );
    let left = walkdir(dir.path());
    assert!(left.is_empty(), "{left:?}");
}

/// Beyond --max-concurrent-uploads, an upload is answered 503 at once with a detail; the ones in
/// progress finish; then uploads are taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_over_the_bound_get_503_and_the_rest_are_served() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let url = serve_with(dir.path(), testing::config(), 1_000_000, 2).await;
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // Two uploads that have sent their head and half their body.
    let body = |i: usize| {
        format!(
            "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow{i}.txt\"\r\nContent-Type: text/plain\r\n\r\nslow upload {i} {}\r\n--b--\r\n",
            uuid::Uuid::new_v4()
        )
    };
    let mut held = Vec::new();
    for i in 0..2 {
        let b = body(i);
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/v1/ingest/upload HTTP/1.1\r\nHost: x\r\nX-Company-ID: {COMPANY}\r\nX-User-ID: u\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            b.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&b.as_bytes()[..b.len() / 2]).await.unwrap();
        held.push((s, b));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, body_json) = upload(
        &url,
        Some(COMPANY),
        "third.txt",
        "text/plain",
        b"third".to_vec(),
    )
    .await;
    assert_eq!(status, 503, "{body_json}");
    assert!(
        body_json["detail"]
            .as_str()
            .unwrap()
            .contains("too many uploads in progress (2 at once)"),
        "{body_json}"
    );
    for (mut s, b) in held {
        s.write_all(&b.as_bytes()[b.len() / 2..]).await.unwrap();
        let mut answer = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut answer)
            .await
            .ok();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 202"), "{text}");
    }
    let (status, _) = upload(
        &url,
        Some(COMPANY),
        "fourth.txt",
        "text/plain",
        b"fourth".to_vec(),
    )
    .await;
    assert_eq!(status, 202);
}

/// /health answers 503 with the reason when the store does not take writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_when_the_store_does_not_take_writes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    std::fs::create_dir(&root).unwrap();
    let url = serve(&root, testing::config(), 1_000_000).await;
    let health = url.replace("/api/v1/ingest/upload", "/health");
    let get = || async {
        let r = reqwest::get(&health).await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(get().await, (200, serde_json::json!({"status": "ok"})));
    assert!(walkdir(&root).is_empty(), "the probe leaves nothing");
    // The store's directory replaced by a file (as root, permissions do not stop writes).
    std::fs::remove_dir(&root).unwrap();
    std::fs::write(&root, b"not a directory").unwrap();
    let (status, body) = get().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("object storage does not take writes"),
        "{body}"
    );
}
