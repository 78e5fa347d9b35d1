//! `atenex ingest`, `atenex gateway` and `atenex token` as users run them: an upload through both
//! binaries, and SIGTERM while an upload is in flight (it completes; both exit 0).

mod common;
use atenex_kafka::testing;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "e2e-7d1f3a9c5b8e2d4f6a0c9b7e1d3f5a8c";
const COMPANY: &str = "3f2e1d0c-9b8a-4765-8432-10fedcba9876";

fn wait_healthy(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect(addr).is_ok() && http_get(addr, "/health").0 == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "{addr} never became healthy");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start(args: &[&str]) -> Child {
    service(args)
        .env("GATEWAY_JWT_SECRET", SECRET)
        .spawn()
        .unwrap()
}

#[test]
fn an_upload_through_gateway_and_ingest_survives_sigterm_in_flight() {
    let [p_ingest, p_gateway, p_admin] = atenex_kafka::broker::free_ports::<3>().unwrap();
    let (ingest_addr, gateway_addr, gateway_admin) = (
        format!("127.0.0.1:{p_ingest}"),
        format!("127.0.0.1:{p_gateway}"),
        format!("127.0.0.1:{p_admin}"),
    );
    let storage = tempfile::tempdir().unwrap();
    let mut ingest = start(&[
        "ingest",
        "--listen",
        &ingest_addr,
        "--storage",
        storage.path().to_str().unwrap(),
        "--bootstrap-servers",
        testing::bootstrap(),
    ]);
    let mut gateway = start(&[
        "gateway",
        "--listen",
        &gateway_addr,
        "--ingest-url",
        &format!("http://{ingest_addr}"),
        "--admin-listen",
        &gateway_admin,
    ]);
    wait_healthy(&ingest_addr);
    wait_healthy(&gateway_addr);
    // The gateway's counters on its admin listener, not on its public port.
    assert_eq!(http_get(&gateway_addr, "/metrics").0, 404);
    wait_healthy(&gateway_admin);
    let (status, metrics) = http_get(&gateway_admin, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("gateway_requests_total{status=\"200\"}"),
        "{metrics}"
    );

    let out = atenex()
        .args([
            "token",
            "--company",
            COMPANY,
            "--user",
            "ana",
            "--ttl",
            "1h",
        ])
        .env("GATEWAY_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    let token = String::from_utf8(ok(&out).stdout.clone())
        .unwrap()
        .trim()
        .to_owned();
    let out = atenex()
        .args(["token", "--company", COMPANY, "--user", "ana"])
        .env_remove("GATEWAY_JWT_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GATEWAY_JWT_SECRET is not set"));
    // The deploy template's value and other weak secrets: refused at start, named, with the fix.
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/env/gateway.env"
    ))
    .unwrap();
    let templated = template
        .lines()
        .find_map(|l| l.strip_prefix("GATEWAY_JWT_SECRET="))
        .expect("the template names the secret");
    for weak in [
        templated,
        "change-me",
        "change-me-change-me-change-me-change-me",
    ] {
        for args in [
            &["gateway", "--listen", "127.0.0.1:0"][..],
            &["token", "--company", COMPANY, "--user", "ana"],
        ] {
            let out = atenex()
                .args(args)
                .env("GATEWAY_JWT_SECRET", weak)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{weak:?} {args:?}: {err}");
            assert!(
                err.contains("GATEWAY_JWT_SECRET") && err.contains("openssl rand -hex 32"),
                "{weak:?} {args:?}: {err}"
            );
        }
    }

    // Half of an upload, then SIGTERM to both services, then the other half.
    let content = format!("in flight {}\n", uuid::Uuid::new_v4()).repeat(2000);
    let body = format!(
        "--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"flight.txt\"\r\nContent-Type: text/plain\r\n\r\n{content}\r\n--xyz--\r\n"
    );
    let (first, second) = body.as_bytes().split_at(body.len() / 2);
    let mut s = TcpStream::connect(&gateway_addr).unwrap();
    write!(
        s,
        "POST /api/v1/ingest/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    signal(&gateway, "-TERM");
    signal(&ingest, "-TERM");
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(second).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    // The body may come chunked: the JSON object inside it.
    let json: serde_json::Value =
        serde_json::from_str(&answer[answer.find('{').unwrap()..=answer.rfind('}').unwrap()])
            .unwrap();
    let doc = json["document_id"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(storage.path().join(COMPANY).join(doc).join("flight.txt")).unwrap(),
        content
    );
    assert!(
        wait_exit(&mut gateway, Duration::from_secs(20)).success(),
        "gateway exits 0"
    );
    assert!(
        wait_exit(&mut ingest, Duration::from_secs(20)).success(),
        "ingest exits 0"
    );
}

/// A multipart upload of `data` through the gateway; the 202's document_id.
fn upload(gateway: &str, token: &str, name: &str, mime: &str, data: &[u8]) -> String {
    let mut body = format!(
        "--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {mime}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n--xyz--\r\n");
    let mut s = TcpStream::connect(gateway).unwrap();
    write!(
        s,
        "POST /upload HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{name}: {answer}");
    let json: serde_json::Value =
        serde_json::from_str(&answer[answer.find('{').unwrap()..=answer.rfind('}').unwrap()])
            .unwrap();
    json["document_id"].as_str().unwrap().to_owned()
}

/// Upload → ingest → docproc → embedding (against `atenex mock-openai`, which rate-limits every
/// 4th request), all as the binaries users run: every chunk docproc's cores make of the uploaded
/// fixtures is embedded exactly once, with the mock's 1536 dimensions; then SIGTERM stops all
/// of them with exit 0.
#[test]
fn upload_docproc_embedding_end_to_end() {
    let [p_ingest, p_gateway, p_mock, p_admin] = atenex_kafka::broker::free_ports::<4>().unwrap();
    let ingest_addr = format!("127.0.0.1:{p_ingest}");
    let docproc_admin = format!("127.0.0.1:{p_admin}");
    let gateway_addr = format!("127.0.0.1:{p_gateway}");
    let mock_addr = format!("127.0.0.1:{p_mock}");
    let storage = tempfile::tempdir().unwrap();
    let storage_dir = storage.path().to_str().unwrap();
    let bootstrap = testing::bootstrap();
    ok(&atenex()
        .args(["topics", "create", "--bootstrap-servers", bootstrap])
        .output()
        .unwrap());
    let mut children = Children(vec![
        start(&[
            "mock-openai",
            "--listen",
            &mock_addr,
            "--rate-limit-every",
            "4",
            "--retry-after-ms",
            "20",
        ]),
        start(&[
            "ingest",
            "--listen",
            &ingest_addr,
            "--storage",
            storage_dir,
            "--bootstrap-servers",
            bootstrap,
        ]),
        start(&[
            "gateway",
            "--listen",
            &gateway_addr,
            "--ingest-url",
            &format!("http://{ingest_addr}"),
        ]),
        start(&[
            "docproc",
            "--storage",
            storage_dir,
            "--group",
            &testing::unique("docproc"),
            "--bootstrap-servers",
            bootstrap,
            "--admin-listen",
            &docproc_admin,
        ]),
    ]);
    let embedding = atenex()
        .args([
            "embedding",
            "--group",
            &testing::unique("embedding"),
            "--max-batch",
            "4",
            "--linger-ms",
            "50",
            "--bootstrap-servers",
            bootstrap,
        ])
        .env("OPENAI_BASE_URL", format!("http://{mock_addr}/v1"))
        .env("OPENAI_API_KEY", "sk-e2e")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    children.0.push(embedding);
    wait_healthy(&mock_addr);
    wait_healthy(&ingest_addr);
    wait_healthy(&gateway_addr);
    // docproc is healthy once its store answered and it joined its group.
    wait_healthy(&docproc_admin);

    let company = uuid::Uuid::new_v4().to_string();
    let token = atenex_gateway::jwt::sign(
        &atenex_gateway::jwt::Claims {
            sub: "e2e".into(),
            company_id: Some(company.clone()),
            roles: vec![],
            exp: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 600,
        },
        SECRET.as_bytes(),
    )
    .unwrap();
    // What docproc's cores make of each file: the chunk ids to expect.
    let mut expected = std::collections::BTreeSet::new();
    for (name, mime) in [
        ("multipage.pdf", "application/pdf"),
        (
            "tables.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("notes.md", "text/markdown"),
    ] {
        let data = std::fs::read(fixture(&format!("documents/{name}"))).unwrap();
        let format = atenex_docproc::extract::Format::from_extension(name).unwrap();
        let pages = atenex_docproc::extract::extract(format, &data, &Default::default()).unwrap();
        let chunks = atenex_docproc::chunker::chunk(&pages, &Default::default(), None);
        let doc = upload(&gateway_addr, &token, name, mime, &data);
        expected.extend(chunks.iter().map(|c| format!("{doc}_{}", c.index)));
    }
    assert_eq!(expected.len(), 5, "3 PDF pages, the DOCX and the notes");

    let rt = runtime();
    let deadline = Instant::now() + Duration::from_secs(90);
    let embedded = loop {
        let ready: Vec<serde_json::Value> = record_topic(&rt, "embeddings.ready")
            .iter()
            .map(|e| serde_json::from_str(e.payload.as_deref().unwrap()).unwrap())
            .filter(|v: &serde_json::Value| v["company_id"] == company.as_str())
            .collect();
        if ready.len() >= expected.len() {
            break ready;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} chunks embedded in 90 s",
            ready.len(),
            expected.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let ids: Vec<&str> = embedded
        .iter()
        .map(|v| v["chunk_id"].as_str().unwrap())
        .collect();
    let unique: std::collections::BTreeSet<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(unique, expected);
    assert_eq!(ids.len(), expected.len(), "no duplicates");
    assert!(
        embedded
            .iter()
            .all(|v| v["vector"].as_array().unwrap().len() == 1536)
    );

    for child in &children.0 {
        signal(child, "-TERM");
    }
    for child in &mut children.0 {
        assert!(
            wait_exit(child, Duration::from_secs(20)).success(),
            "exit 0 on SIGTERM"
        );
    }
}

/// Child processes killed when the test ends, whatever happens.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
