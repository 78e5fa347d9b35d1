//! `atenex ingest`, `atenex gateway` and `atenex token` as users run them: an upload through both
//! binaries, and SIGTERM while an upload is in flight (it completes; both exit 0).

mod common;
use atenex_kafka::testing;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "e2e-secret";
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
    atenex()
        .args(args)
        .env("GATEWAY_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
fn an_upload_through_gateway_and_ingest_survives_sigterm_in_flight() {
    let [p_ingest, p_gateway] = atenex_kafka::broker::free_ports::<2>().unwrap();
    let (ingest_addr, gateway_addr) = (
        format!("127.0.0.1:{p_ingest}"),
        format!("127.0.0.1:{p_gateway}"),
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
    ]);
    wait_healthy(&ingest_addr);
    wait_healthy(&gateway_addr);

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
