//! The hostile-input suite (issue 15): each way an attacker or an unlucky operator took a part of
//! the pipeline down, kept as a regression test against the `atenex` binary itself. What each
//! case must show: a clear error or the request served, nothing lost or written outside its
//! root, memory bounded, every shutdown within its timeout. Parser-level cases (arbitrary bytes
//! into every parser of untrusted input) are property tests beside each parser.

mod common;
use atenex_http::testing::{connect, until_closed};
use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "hostile-4e8b2f6a1c9d3e7b5a0f8c2d6e4b1a9f";
const COMPANY: &str = "3f2e1d0c-9b8a-4765-8432-10fedcba9876";

fn token() -> String {
    let out = atenex()
        .args(["token", "--company", COMPANY, "--user", "mallory"])
        .env("GATEWAY_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    String::from_utf8(ok(&out).stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

fn wait_healthy(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(TcpStream::connect(addr).is_ok() && http_get(addr, "/health").0 == 200) {
        assert!(Instant::now() < deadline, "{addr} never became healthy");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A stand-in ingest that reads whatever it is sent and never answers: the gateway's upstream
/// is not what these cases test.
fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    format!("http://{addr}")
}

/// A gateway on a free port in front of a [`black_hole`] ingest, healthy; and its address.
fn start_gateway(extra: &[&str]) -> (Child, String) {
    let [port] = atenex_kafka::broker::free_ports::<1>().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let gw = gateway(&addr, &black_hole(), extra);
    wait_healthy(&addr);
    (gw, addr)
}

fn gateway(addr: &str, ingest: &str, extra: &[&str]) -> Child {
    service(&["gateway", "--listen", addr, "--ingest-url", ingest])
        .args(extra)
        .env("GATEWAY_JWT_SECRET", SECRET)
        .spawn()
        .unwrap()
}

fn upload_head(token: &str, length: usize) -> String {
    format!(
        "POST /api/v1/ingest/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// Slow and idle clients are cut by the header timeout and the minimum body rate.
#[test]
fn slow_and_idle_clients_do_not_hold_the_gateway() {
    let (mut gw, addr) = start_gateway(&[
        "--header-timeout",
        "1s",
        "--body-grace",
        "1s",
        "--min-body-rate",
        "1000",
    ]);
    let token = token();

    // Idle, half a head, and a body that stalls: each closed by the server, the body with 408.
    let idle = connect(&addr);
    let mut half = connect(&addr);
    half.write_all(b"POST /api/v1/ingest/upload HTTP/1.1\r\nHost: gw\r\n")
        .unwrap();
    let mut stalled = connect(&addr);
    stalled
        .write_all(upload_head(&token, 1_000_000).as_bytes())
        .unwrap();
    stalled.write_all(b"--xyz\r\n").unwrap();
    assert_eq!(until_closed(idle), "");
    assert!(!until_closed(half).contains("HTTP/1.1 2"));
    let answer = until_closed(stalled);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("slower than 1000 bytes/s"), "{answer}");

    signal(&gw, "-TERM");
    assert!(wait_exit(&mut gw, Duration::from_secs(10)).success());
}

/// Far more half-open connections than the bound (systemd's 1,024 descriptors took the gateway
/// down before): the ones over the bound get 503 at once; once the header timeout has cut the
/// flood, /health is served again while the flood's clients still hold their sockets.
#[test]
fn a_connection_flood_is_refused_at_the_bound_and_the_gateway_recovers() {
    let (mut gw, addr) = start_gateway(&["--header-timeout", "3s", "--max-connections", "32"]);
    let flood: Vec<TcpStream> = (0..200).map(|_| connect(&addr)).collect();
    // Over the bound: closed at once, with a 503 while few are being refused (beyond that, a
    // flood's connections are closed unanswered).
    let mut refused = connect(&addr);
    refused
        .write_all(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
        .unwrap();
    let answer = until_closed(refused);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
        "{answer}"
    );
    let busy = flood
        .iter()
        .filter(|s| {
            let mut s = *s;
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut buf = [0u8; 512];
            matches!(s.read(&mut buf), Ok(n) if String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 503"))
        })
        .count();
    assert!(busy > 0, "no connection of the flood was answered 503");
    let t = Instant::now();
    loop {
        let mut s = connect(&addr);
        s.write_all(b"GET /health HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
            .unwrap();
        if until_closed(s).starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "still refused");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(flood);
    signal(&gw, "-TERM");
    assert!(wait_exit(&mut gw, Duration::from_secs(10)).success());
}

/// SIGTERM while a client is still sending (fast enough to be allowed, too slow to finish):
/// the gateway stops within --shutdown-timeout, cuts the client, and exits 0.
#[test]
fn sigterm_with_a_slow_upload_in_flight_stops_within_the_shutdown_timeout() {
    let (mut gw, addr) = start_gateway(&["--shutdown-timeout", "2s", "--min-body-rate", "100"]);
    let mut slow = connect(&addr);
    slow.write_all(upload_head(&token(), 10_000_000).as_bytes())
        .unwrap();
    let sender = std::thread::spawn(move || {
        // 2,000 bytes/s: allowed, and hours from the end.
        let chunk = [b'a'; 200];
        while slow.write_all(&chunk).is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    signal(&gw, "-TERM");
    let status = wait_exit(&mut gw, Duration::from_secs(15));
    let took = t.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_millis(1500),
        "it waited for the upload: {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "bounded by --shutdown-timeout: {took:?}"
    );
    sender.join().unwrap();
}

/// `atenex report` in a landing tree with a day of one good file.
fn report_day() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let hour = root
        .path()
        .join("atenex/kafka-landing/embeddings.ready/year=2026/month=11/day=27/hour=00");
    std::fs::create_dir_all(&hour).unwrap();
    std::fs::write(
        hour.join("embeddings.ready+0+0000000000+0000000000.json"),
        "{\"company_id\":\"c\",\"document_id\":\"d\",\"chunk_id\":\"d_0\"}\n",
    )
    .unwrap();
    (root, hour)
}

/// `atenex report` (for 2026-11-27 unless `extra` names a date).
fn report(root: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let date = if extra.contains(&"--date") {
        &[][..]
    } else {
        &["--date", "2026-11-27"][..]
    };
    let mut c = atenex();
    c.arg("report")
        .args(date)
        .args(extra)
        .env("ATENEX_HDFS_ROOT", root)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null());
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A hung run is a failure of this test, not a hung suite.
    let status = wait_exit(&mut child, Duration::from_secs(60));
    (status.code(), stderr_of(&mut child))
}

/// What is left beside the report after a run: hidden staging, lock or old directories.
fn leftovers(root: &std::path::Path) -> Vec<String> {
    let dir = root.join("atenex/reports/daily_chunk_count");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// A `*.json` that is a link to /dev/zero (endless, no newline), a FIFO (no writer), or a file
/// over --max-file-bytes: each is named with exit 5, in bounded time and memory, and nothing is
/// published or left behind.
#[test]
fn the_report_refuses_endless_blocking_and_oversized_files() {
    let (root, hour) = report_day();
    let zero = hour.join("embeddings.ready+1+0000000000+0000000000.json");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let (code, err) = report(root.path(), &[]);
    assert_eq!(code, Some(5), "{err}");
    assert!(
        err.contains(&format!("{}", zero.display()))
            && err.contains("a device, not a regular file"),
        "{err}"
    );
    std::fs::remove_file(&zero).unwrap();

    let fifo = hour.join("embeddings.ready+2+0000000000+0000000000.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (code, err) = report(root.path(), &[]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("a FIFO, not a regular file"), "{err}");
    std::fs::remove_file(&fifo).unwrap();

    let big = hour.join("embeddings.ready+3+0000000000+0000000000.json");
    std::fs::write(
        &big,
        "{\"company_id\":\"c\",\"document_id\":\"d\",\"chunk_id\":\"d_1\"}\n".repeat(100),
    )
    .unwrap();
    let (code, err) = report(root.path(), &["--max-file-bytes", "1000"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(
        err.contains("is over 1000 bytes (--max-file-bytes)"),
        "{err}"
    );
    // A line without end, cut by --max-line-bytes and skippable.
    std::fs::write(
        &big,
        format!("{{\"company_id\":\"c\",\"pad\":\"{}", "z".repeat(5000)),
    )
    .unwrap();
    let (code, err) = report(root.path(), &["--max-line-bytes", "1000"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(
        err.contains(":1: malformed record: the line is ")
            && err.contains(" bytes long, over --max-line-bytes (1000)"),
        "{err}"
    );
    assert!(
        !root
            .path()
            .join("atenex/reports/daily_chunk_count/date=2026-11-27")
            .exists()
    );
    assert_eq!(leftovers(root.path()), Vec::<String>::new());
    let (code, err) = report(
        root.path(),
        &["--max-line-bytes", "1000", "--skip-bad-records"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(leftovers(root.path()), Vec::<String>::new());
}

/// Two runs for one date: the second is refused at once with exit 7, naming the lock, instead
/// of failing the first one; once the first is done, a run goes through and leaves no lock.
#[test]
fn a_second_report_run_for_the_same_date_is_refused_clearly() {
    let (root, _) = report_day();
    let dir = root.path().join("atenex/reports/daily_chunk_count");
    std::fs::create_dir_all(&dir).unwrap();
    let lock_path = dir.join(".date=2026-11-27.lock");
    let held = std::fs::File::create(&lock_path).unwrap();
    held.lock().unwrap();
    let (code, err) = report(root.path(), &[]);
    assert_eq!(code, Some(7), "{err}");
    assert!(
        err.contains("another atenex report for 2026-11-27 is running")
            && err.contains(&lock_path.display().to_string()),
        "{err}"
    );
    // Another date is not held up.
    let (code, err) = report(root.path(), &["--date", "2026-11-28", "--allow-empty"]);
    assert_eq!(code, Some(0), "{err}");
    drop(held);
    let (code, err) = report(root.path(), &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(dir.join("date=2026-11-27/part-00000.parquet").exists());
    assert_eq!(leftovers(root.path()), Vec::<String>::new());
}

/// An HTTP server that answers 404 with an HTML page to everything (a mistyped OPENAI_BASE_URL),
/// or, with `answer` false, reads requests and never answers (a hung endpoint). Returns its URL
/// and the number of connections it has had.
fn fake_endpoint(answer: bool) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let mut got = Vec::new();
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_owned)
                        })
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if body.len() >= length && answer {
                        let page = "<html>Not Found</html>";
                        let _ = write!(
                            s,
                            "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\r\n{page}",
                            page.len()
                        );
                        got.clear();
                    }
                }
            });
        }
    });
    (url, seen)
}

fn embedding(base_url: &str, group: &str, admin: &str) -> Child {
    service(&[
        "embedding",
        "--bootstrap-servers",
        atenex_kafka::testing::bootstrap(),
        "--group",
        group,
        "--admin-listen",
        admin,
        "--shutdown-timeout",
        "5s",
    ])
    .env("OPENAI_BASE_URL", base_url)
    .env("OPENAI_API_KEY", "sk-hostile-test")
    .spawn()
    .unwrap()
}

/// A mistyped OPENAI_BASE_URL (404 with an HTML page) pauses the embedding service: /health says
/// why, nothing goes to chunks.processed.dlq and nothing is committed. SIGTERM ends the pause at
/// once; SIGTERM during a request that never returns ends it at once too (the batch abandoned,
/// consumed again on restart), exit 0 both times.
#[test]
fn the_embedding_service_pauses_on_a_wrong_endpoint_and_stops_promptly() {
    use std::sync::atomic::Ordering;
    let rt = runtime();
    let doc = uuid::Uuid::new_v4().to_string();
    let payload = serde_json::json!({"chunk_id": format!("{doc}_0"), "document_id": doc, "company_id": COMPANY, "text": "some text", "page": 1});
    let record = atenex_contracts::Envelope {
        topic: "chunks.processed".into(),
        partition: 0,
        offset: 0,
        tstype: None,
        ts: None,
        broker: -1,
        headers: vec![],
        key: Some(doc.clone()),
        payload: Some(payload.to_string()),
    };
    let created = atenex()
        .args([
            "topics",
            "create",
            "--bootstrap-servers",
            atenex_kafka::testing::bootstrap(),
        ])
        .output()
        .unwrap();
    ok(&created);
    replay_all(&rt, &[record]);
    let group = atenex_kafka::testing::unique("hostile-embedding");
    let [admin_port] = atenex_kafka::broker::free_ports::<1>().unwrap();
    let admin = format!("127.0.0.1:{admin_port}");

    let (wrong, _) = fake_endpoint(true);
    let mut service = embedding(&wrong, &group, &admin);
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        if TcpStream::connect(&admin).is_ok() {
            let (status, body) = http_get(&admin, "/health");
            if body.contains("paused") {
                assert_eq!(status, 503);
                break body;
            }
        }
        assert!(Instant::now() < deadline, "never paused");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        health.contains("404") && health.contains("OPENAI_BASE_URL"),
        "{health}"
    );
    let t = Instant::now();
    signal(&service, "-TERM");
    assert!(wait_exit(&mut service, Duration::from_secs(10)).success());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let letters = record_topic(&rt, "chunks.processed.dlq");
    assert!(
        !letters
            .iter()
            .any(|e| e.key.as_deref() == Some(doc.as_str())),
        "nothing dead-lettered"
    );

    let (hung, connections) = fake_endpoint(false);
    let mut service = embedding(&hung, &group, &admin);
    let deadline = Instant::now() + Duration::from_secs(60);
    while connections.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the batch was committed before: nothing to embed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    signal(&service, "-TERM");
    assert!(wait_exit(&mut service, Duration::from_secs(10)).success());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// The whole standard error of a child that has exited (it was spawned with a pipe there).
fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut err);
    }
    err
}

/// Six 45 MB uploads at once took 305 MB when ingest held each whole (issue 15's measure); streamed to storage, its
/// memory does not grow with the files: the peak stays far below what they add up to, and each
/// file is stored whole.
#[test]
fn ingest_memory_does_not_grow_with_concurrent_large_uploads() {
    let [port] = atenex_kafka::broker::free_ports::<1>().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let storage = tempfile::tempdir().unwrap();
    let mut ingest = service(&[
        "ingest",
        "--listen",
        &addr,
        "--storage",
        storage.path().to_str().unwrap(),
        "--bootstrap-servers",
        atenex_kafka::testing::bootstrap(),
    ])
    .spawn()
    .unwrap();
    wait_healthy(&addr);
    const SIZE: usize = 45_000_000;
    let senders: Vec<_> = (0..6)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let line = format!("upload {i} line of text {}\n", uuid::Uuid::new_v4());
                let head = format!(
                    "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big{i}.txt\"\r\nContent-Type: text/plain\r\n\r\n"
                );
                let tail = "\r\n--b--\r\n";
                let body_len = head.len() + SIZE + tail.len();
                let mut s = connect(&addr);
                s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                write!(
                    s,
                    "POST /api/v1/ingest/upload HTTP/1.1\r\nHost: x\r\nX-Company-ID: {COMPANY}\r\nX-User-ID: u\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {body_len}\r\nConnection: close\r\n\r\n{head}"
                )
                .unwrap();
                let block: Vec<u8> = line.as_bytes().iter().copied().cycle().take(1 << 20).collect();
                let mut sent = 0;
                while sent < SIZE {
                    let n = block.len().min(SIZE - sent);
                    s.write_all(&block[..n]).unwrap();
                    sent += n;
                }
                s.write_all(tail.as_bytes()).unwrap();
                let mut answer = String::new();
                s.read_to_string(&mut answer).unwrap();
                answer
            })
        })
        .collect();
    for s in senders {
        let answer = s.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    }
    let peak = peak_rss_mb(ingest.id()).expect("ingest is running");
    signal(&ingest, "-TERM");
    assert!(wait_exit(&mut ingest, Duration::from_secs(30)).success());
    let mut sizes = Vec::new();
    let mut stack = vec![storage.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "txt") {
                sizes.push(std::fs::metadata(&p).unwrap().len());
            }
        }
    }
    assert_eq!(sizes, vec![SIZE as u64; 6], "every file stored whole");
    eprintln!("ingest peak RSS with six concurrent 45 MB uploads: {peak} MB");
    assert!(
        peak < 150,
        "peak RSS {peak} MB: memory grows with the uploads"
    );
}

/// The values tried on every option that takes one: zero, negative, the largest u64 and i64,
/// not a number, an overflowing float, durations of 100 billion years and of u64::MAX seconds.
const EXTREMES: [&str; 8] = [
    "0",
    "-1",
    "18446744073709551615",
    "9223372036854775807",
    "nan",
    "1e400",
    "100000000000y",
    "18446744073709551615s",
];

/// What a subcommand needs besides the option tried, so that its body runs (and can panic).
fn base_args(command: &str, dir: &std::path::Path) -> Vec<String> {
    let d = |name: &str| dir.join(name).display().to_string();
    let stream = fixture("streams/analytics-late.jsonl")
        .display()
        .to_string();
    let config = fixture("config/hdfs-sink-connector.properties")
        .display()
        .to_string();
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios/baseline.toml")
        .display()
        .to_string();
    match command {
        "analytics" => vec!["--input".into(), stream, "--output".into(), d("w.jsonl")],
        "landing" => vec!["--config".into(), config, "--input".into(), stream],
        "record" => vec![
            "--topics".into(),
            "t".into(),
            "--output".into(),
            d("r.jsonl"),
        ],
        "replay" => vec!["--input".into(), stream],
        "token" => vec![
            "--company".into(),
            COMPANY.into(),
            "--user".into(),
            "u".into(),
        ],
        "sim run" => vec![scenario],
        "dashboard" => vec!["--listen".into(), "127.0.0.1:0".into()],
        _ => Vec::new(),
    }
}

/// The long options of a `--help` text that take a value.
fn value_options(help: &str) -> Vec<String> {
    help.lines()
        .filter_map(|line| {
            let option = line.trim_start();
            let indent = line.len() - option.len();
            if !(2..=6).contains(&indent) || !option.starts_with('-') {
                return None;
            }
            let long = option
                .split([' ', ','])
                .find(|w| w.starts_with("--"))?
                .split('=')
                .next()?;
            let takes_value = option
                .split_whitespace()
                .nth(if option.starts_with("--") { 1 } else { 2 })
                .is_some_and(|w| w.starts_with('<'));
            takes_value.then(|| long.to_owned())
        })
        .collect()
}

/// No value of any option panics: every subcommand (found by walking `--help`), every option
/// that takes a value, each of [`EXTREMES`] — an error with the option named, or the command
/// runs (it is stopped after two seconds), never exit 101. Left out: `demo`, `broker` and `hdfs`,
/// which start a JVM per run (their options are ports, paths and a timeout, checked by hand).
#[test]
fn no_value_of_any_option_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut queue: Vec<Vec<String>> = vec![Vec::new()];
    let mut runs: Vec<Vec<String>> = Vec::new();
    while let Some(path) = queue.pop() {
        let out = atenex().args(&path).arg("--help").output().unwrap();
        let text = String::from_utf8_lossy(&ok(&out).stdout).into_owned();
        let subs = subcommands(&text);
        if !subs.is_empty() {
            for sub in subs {
                if !["demo", "broker", "hdfs"].contains(&sub.as_str()) {
                    let mut next = path.clone();
                    next.push(sub);
                    queue.push(next);
                }
            }
            continue;
        }
        let base = base_args(&path.join(" "), dir.path());
        for option in value_options(&text) {
            if option == "--help" || base.contains(&option) {
                continue;
            }
            for value in EXTREMES {
                let mut args = path.clone();
                args.extend(base.iter().cloned());
                args.push(format!("{option}={value}"));
                runs.push(args);
            }
        }
    }
    assert!(
        runs.len() > 300,
        "{} runs: the walk found too little",
        runs.len()
    );
    eprintln!("{} runs", runs.len());
    let runs = std::sync::Mutex::new(runs);
    let panics = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                loop {
                    let Some(args) = runs.lock().unwrap().pop() else {
                        return;
                    };
                    let mut child = atenex()
                        .args(&args)
                        .current_dir(dir.path())
                        .env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
                        .env("GATEWAY_JWT_SECRET", SECRET)
                        .env("OPENAI_API_KEY", "sk-flags")
                        .env("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
                        .env("ATENEX_HDFS_ROOT", dir.path())
                        .env("RUST_LOG", "off")
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap();
                    let started = Instant::now();
                    let status = loop {
                        if let Some(s) = child.try_wait().unwrap() {
                            break Some(s);
                        }
                        if started.elapsed() > Duration::from_secs(2) {
                            let _ = child.kill();
                            let _ = child.wait();
                            break None;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    };
                    let err = stderr_of(&mut child);
                    if status.is_some_and(|s| s.code() == Some(101)) || err.contains("panicked at")
                    {
                        panics
                            .lock()
                            .unwrap()
                            .push(format!("atenex {}: {err}", args.join(" ")));
                    }
                }
            });
        }
    });
    let panics = panics.into_inner().unwrap();
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
}

/// Every reader of a file the pipeline did not write bounds its lines or its size: a recording,
/// a connector configuration or a scenario that is `/dev/zero` (no newline, no end) is an error
/// naming the bound, in bounded time and memory — not all the machine's memory.
#[test]
fn endless_inputs_are_refused_with_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let config = dir.path().join("sink.properties");
    std::fs::write(
        &config,
        format!(
            "name=endless\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\ntopics=embeddings.ready\nhdfs.url=file://{}\nformat.class=io.confluent.connect.hdfs3.format.json.JsonFormat\nflush.size=2\npartitioner.class=io.confluent.connect.storage.partitioner.DefaultPartitioner\n",
            dir.path().join("land").display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let scenario = dir.path().join("endless.toml");
    std::os::unix::fs::symlink("/dev/zero", &scenario).unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "analytics".into(),
                "--input".into(),
                "/dev/zero".into(),
                "--output".into(),
                out("w.jsonl"),
            ],
            "longer than",
        ),
        (
            vec!["landing".into(), "--config".into(), "/dev/zero".into()],
            "larger than",
        ),
        (
            vec![
                "landing".into(),
                "--config".into(),
                config,
                "--input".into(),
                "/dev/zero".into(),
            ],
            "longer than",
        ),
        (
            vec!["replay".into(), "--input".into(), "/dev/zero".into()],
            "longer than",
        ),
        (
            vec!["sim".into(), "run".into(), scenario.display().to_string()],
            "larger than",
        ),
    ];
    for (args, expected) in cases {
        let mut child = atenex()
            .args(&args)
            .env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
            .env("ATENEX_HDFS_ROOT", dir.path())
            .env("RUST_LOG", "error")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut peak = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            peak = peak.max(peak_rss_mb(pid).unwrap_or(0));
            assert!(Instant::now() < deadline, "atenex {args:?} still reading");
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = stderr_of(&mut child);
        assert!(!status.success(), "atenex {args:?}: {err}");
        assert!(err.contains(expected), "atenex {args:?}: {err}");
        assert!(peak < 400, "atenex {args:?}: {peak} MB");
    }
}

/// A `.env` that is no configuration file (a link to /dev/zero) is refused at once, exit 2.
#[test]
fn an_endless_dot_env_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join(".env")).unwrap();
    let out = atenex()
        .args(["token", "--company", COMPANY, "--user", "u"])
        .current_dir(dir.path())
        .env("GATEWAY_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".env is not a regular file of at most"));
}
