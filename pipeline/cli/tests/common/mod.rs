//! Helpers shared by the CLI test binaries.
#![allow(dead_code)]

use atenex_contracts::{Envelope, EnvelopeReader};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub fn atenex() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atenex"));
    // Tests must not pick up a developer's Kafka settings.
    c.env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env("RUST_LOG", "info");
    c
}

/// `atenex` with `args`, as a long-running service of a test: warnings only, its output on the
/// test's standard error. The caller adds its settings and spawns it.
pub fn service(args: &[&str]) -> Command {
    let mut c = atenex();
    c.args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    c
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

pub fn read_envelopes(bytes: &[u8]) -> Vec<Envelope> {
    EnvelopeReader::new(bytes).map(Result::unwrap).collect()
}

pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

pub fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

pub fn ok(out: &Output) -> &Output {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Produces `records` to the test broker (topics, partitions, timestamps as recorded).
pub fn replay_all(rt: &tokio::runtime::Runtime, records: &[Envelope]) {
    use atenex_kafka::replay::{ReplayOptions, replay};
    rt.block_on(replay(
        &atenex_kafka::testing::config(),
        records,
        &ReplayOptions::default(),
        tokio_util::sync::CancellationToken::new(),
        |_| {},
    ))
    .unwrap();
}

/// Every committed record of `topic` on the test broker.
pub fn record_topic(rt: &tokio::runtime::Runtime, topic: &str) -> Vec<Envelope> {
    rt.block_on(atenex_kafka::testing::read_topics(&[topic]))
}

/// The subcommands a `--help` text lists under `Commands:` (clap's `help` left out).
pub fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// The window results of an output topic in Kafka's order: by partition (one per company key),
/// then offset. Across partitions a reader sees them in whatever order its fetches return.
pub fn windows_of(records: &[Envelope]) -> Vec<atenex_contracts::AnalyticsWindow> {
    let mut records: Vec<&Envelope> = records.iter().collect();
    records.sort_by_key(|r| (r.partition, r.offset));
    records
        .iter()
        .map(|r| {
            atenex_contracts::decode::<atenex_contracts::AnalyticsWindow>(
                r.payload.as_deref().unwrap().as_bytes(),
            )
            .unwrap()
        })
        .collect()
}

/// A generated `embeddings.ready` stream for `topic` (`records` records of 7 companies on 3
/// partitions, 4-float vectors, disorder within the watermark delay), with the values at the
/// given indices replaced by malformed ones.
pub fn embeddings_stream(
    topic: &str,
    records: usize,
    seed: u64,
    malformed: &[(usize, &str)],
) -> Vec<Envelope> {
    use atenex_analytics::bench::{StreamSpec, generate};
    let spec = StreamSpec {
        records,
        dims: 4,
        companies: 7,
        partitions: 3,
        disorder_ms: 4_000,
        seed,
    };
    let mut out: Vec<Envelope> = EnvelopeReader::new(&generate(&spec)[..])
        .map(Result::unwrap)
        .collect();
    for r in &mut out {
        r.topic = topic.to_owned();
    }
    for (i, bad) in malformed {
        out[*i].payload = Some((*bad).to_owned());
    }
    out
}

/// Creates `topics` on the test broker with `partitions` partitions each.
pub fn create_test_topics(rt: &tokio::runtime::Runtime, topics: &[&String], partitions: i32) {
    use atenex_kafka::admin::{TopicSpec, create_topics};
    let specs: Vec<TopicSpec> = topics
        .iter()
        .map(|t| TopicSpec {
            name: (*t).clone(),
            partitions,
            replication: None,
        })
        .collect();
    rt.block_on(create_topics(&atenex_kafka::testing::config(), &specs))
        .unwrap();
}

/// Every committed line under `/atenex/kafka-landing` as (path under it, line), sorted; how many
/// temp files and commit logs (under `/atenex/logs`) are left.
pub fn landed_lines(fs: &dyn atenex_landing::fs::Fs) -> (Vec<(String, String)>, usize, usize) {
    let mut lines = Vec::new();
    let mut temps = 0;
    for f in fs.list("/atenex/kafka-landing").unwrap() {
        let rel = &f["/atenex/kafka-landing/".len()..];
        if rel.starts_with("+tmp") {
            temps += 1;
            continue;
        }
        // A file can vanish between listing and reading (a commit renaming it); the next poll
        // sees it under its new name.
        let Ok(Some(data)) = fs.read(&f) else {
            continue;
        };
        for l in String::from_utf8(data).unwrap().lines() {
            lines.push((rel.to_owned(), l.to_owned()));
        }
    }
    let logs = fs.list("/atenex/logs").unwrap().len();
    lines.sort();
    (lines, temps, logs)
}

/// The peak resident memory of a live process so far, in MiB (Linux's `VmHWM`); `None` once it
/// has exited (a zombie has no memory figures).
pub fn peak_rss_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024)
}

/// Waits for `child`, sampling its peak resident memory until it exits: its exit status and
/// that peak, in MiB.
pub fn wait_with_peak_rss(child: &mut Child, within: Duration) -> (std::process::ExitStatus, u64) {
    let deadline = Instant::now() + within;
    let mut peak = 0;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return (s, peak);
        }
        peak = peak.max(peak_rss_mb(child.id()).unwrap_or(0));
        assert!(
            Instant::now() < deadline,
            "process did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
