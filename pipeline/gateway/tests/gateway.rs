//! The gateway over real HTTP on loopback, in front of a real ingest service and the test broker.

use atenex_gateway::jwt::{Claims, sign};
use atenex_gateway::{Config, Gateway, router};
use atenex_ingest::storage::Storage;
use atenex_ingest::{App, router as ingest_router};
use atenex_kafka::{Producer, testing};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &[u8] = b"test-9b3e7d1a5c0f8e2d4b6a9c1e3f7d5b0a";
const COMPANY: &str = "6a1c2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(company: Option<&str>, exp: u64, secret: &[u8]) -> String {
    sign(
        &Claims {
            sub: "user-7".into(),
            company_id: company.map(str::to_owned),
            roles: vec![],
            exp,
        },
        secret,
    )
    .unwrap()
}

async fn spawn(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("127.0.0.1:{}", addr.port())
}

async fn ingest(dir: &std::path::Path) -> String {
    let app = Arc::new(App::new(
        Storage::open(dir.to_str().unwrap()).unwrap(),
        Producer::new(&testing::config()).unwrap(),
        10_000_000,
        atenex_ingest::DEFAULT_MAX_CONCURRENT_UPLOADS,
    ));
    spawn(ingest_router(app)).await
}

async fn gateway(ingest_addr: &str, max: u64, timeout: Duration) -> String {
    let gw = Gateway::new(Config {
        ingest_url: format!("http://{ingest_addr}"),
        jwt_secret: SECRET.to_vec(),
        max_body_bytes: max,
        cors_origins: vec!["https://app.atenex.example".into()],
        upstream_timeout: timeout,
    })
    .unwrap();
    spawn(router(Arc::new(gw)).unwrap()).await
}

/// A gateway with a `max_body` limit in front of an ingest storing into the returned directory.
async fn gateway_and_ingest(max_body: u64) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&ingest(dir.path()).await, max_body, Duration::from_secs(10)).await;
    (dir, gw)
}

fn file(text: &str) -> Form {
    Form::new().part(
        "file",
        Part::bytes(text.as_bytes().to_vec())
            .file_name("a.txt")
            .mime_str("text/plain")
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_comes_from_the_token_only() {
    let (dir, gw) = gateway_and_ingest(1_000_000).await;
    let client = reqwest::Client::new();
    for path in ["/api/v1/ingest/upload", "/upload"] {
        let resp = client
            .post(format!("http://{gw}{path}"))
            .bearer_auth(token(Some(COMPANY), now() + 60, SECRET))
            .header("X-Company-ID", "00000000-0000-0000-0000-000000000666")
            .header("X-User-ID", "mallory")
            .header("X-Request-ID", "req-42")
            .multipart(file(&format!("{path} {}", uuid::Uuid::new_v4())))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{path}");
        assert_eq!(resp.headers()["x-request-id"], "req-42");
        let body: Value = resp.json().await.unwrap();
        let doc = body["document_id"].as_str().unwrap();
        // Stored under the token's company, not the forged one.
        assert!(dir.path().join(COMPANY).join(doc).join("a.txt").exists());
        assert!(
            !dir.path()
                .join("00000000-0000-0000-0000-000000000666")
                .exists()
        );
    }
    // A generated request id when none is sent.
    let resp = client
        .get(format!("http://{gw}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    uuid::Uuid::parse_str(resp.headers()["x-request-id"].to_str().unwrap()).unwrap();
    // The public port serves no metrics (`atenex gateway --admin-listen` does: cli tests).
    let resp = client
        .get(format!("http://{gw}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // Prometheus text, with the requests counted so far.
    let metrics = atenex_kafka::observe::render_metrics().await;
    assert!(
        metrics.contains("gateway_requests_total{status=\"202\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ingest_uploads_total{status=\"202\"}"),
        "{metrics}"
    );
    // Ingest's own refusals pass through.
    let resp = client
        .post(format!("http://{gw}/upload"))
        .bearer_auth(token(Some(COMPANY), now() + 60, SECRET))
        .multipart(
            Form::new().part(
                "file",
                Part::bytes(b"%PDF?".to_vec())
                    .file_name("x.png")
                    .mime_str("image/png")
                    .unwrap(),
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let body: Value = resp.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("accepted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_401_and_a_token_without_company_is_403() {
    let (dir, gw) = gateway_and_ingest(1_000_000).await;
    let client = reqwest::Client::new();
    let cases = [
        (None, 401, "missing bearer token"),
        (Some("Bearer nonsense".to_owned()), 401, "invalid token"),
        (
            Some(format!(
                "Bearer {}",
                token(Some(COMPANY), now() + 60, b"other")
            )),
            401,
            "bad signature",
        ),
        (
            Some(format!(
                "Bearer {}",
                token(Some(COMPANY), now() - 5, SECRET)
            )),
            401,
            "expired",
        ),
        (
            Some(format!("Bearer {}", token(None, now() + 60, SECRET))),
            403,
            "no company_id",
        ),
    ];
    for (auth, want, detail) in cases {
        let mut req = client
            .post(format!("http://{gw}/api/v1/ingest/upload"))
            .multipart(file("x"));
        if let Some(a) = &auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), want, "{auth:?}");
        if want == 401 {
            assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        }
        let body: Value = resp.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains(detail), "{body}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing reached ingest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_is_413_without_reading_the_body() {
    let (_dir, gw) = gateway_and_ingest(1_000).await;
    // Announce 100 MB, send 10 bytes, and wait for the answer: it comes without the rest.
    let mut s = tokio::net::TcpStream::connect(&gw).await.unwrap();
    let req = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000000\r\n\r\n--b\r\nabcd",
        token(Some(COMPANY), now() + 60, SECRET)
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("larger than 1000 bytes"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Without Content-Length (chunked): cut at the limit.
    let big = "x".repeat(5_000);
    let stream = futures::stream::iter((0..5).map(move |_| Ok::<_, std::io::Error>(big.clone())));
    let resp = reqwest::Client::new()
        .post(format!("http://{gw}/upload"))
        .bearer_auth(token(Some(COMPANY), now() + 60, SECRET))
        .header("Content-Type", "multipart/form-data; boundary=b")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_down_is_503_and_ingest_silent_is_504() {
    // Nothing listens on a port we just released.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = gateway(&free.to_string(), 1_000_000, Duration::from_secs(1)).await;
    let send = |gw: String| async move {
        reqwest::Client::new()
            .post(format!("http://{gw}/upload"))
            .bearer_auth(token(Some(COMPANY), now() + 60, SECRET))
            .multipart(file("hello"))
            .send()
            .await
            .unwrap()
    };
    let resp = send(gw).await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["detail"], "the ingest service is unavailable");

    // A listener that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut c, _) = silent.accept().await.unwrap();
            let mut sink = vec![0u8; 65536];
            tokio::spawn(async move { while c.read(&mut sink).await.is_ok_and(|n| n > 0) {} });
        }
    });
    let gw = gateway(&addr.to_string(), 1_000_000, Duration::from_secs(1)).await;
    let resp = send(gw).await;
    assert_eq!(resp.status(), 504);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_the_configured_origins_only() {
    let (_dir, gw) = gateway_and_ingest(1_000_000).await;
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(
                reqwest::Method::OPTIONS,
                format!("http://{gw}/api/v1/ingest/upload"),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let ok = preflight("https://app.atenex.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.atenex.example"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
