//! `atenex analytics`, offline and live.

mod common;
use atenex_kafka::testing::{self, unique};
use common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const A: &str = "3f1c2a9e-8d4b-4e7a-9c1d-2b5e6f7a8b9c";
const B: &str = "a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d";

fn window(start: &str, end: &str, company: &str, n: u64) -> String {
    format!(
        r#"{{"window_start":"{start}","window_end":"{end}","company_id":"{company}","chunk_count":{n}}}"#
    )
}

/// `atenex analytics --input INPUT --output OUTPUT EXTRA...`.
fn offline(input: &Path, output: &Path, extra: &[&str]) -> std::process::Output {
    atenex()
        .arg("analytics")
        .args(extra)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .output()
        .unwrap()
}

/// fixtures/streams/analytics-late.jsonl, worked by hand (docs/analytics.md walks through it).
#[test]
fn offline_windows_late_and_future_records_of_the_worked_example() {
    let dir = tempfile::tempdir().unwrap();
    let (w, l) = (dir.path().join("w.jsonl"), dir.path().join("l.jsonl"));
    let out = atenex()
        .args(["analytics", "--input"])
        .arg(fixture("streams/analytics-late.jsonl"))
        .arg("--output")
        .arg(&w)
        .arg("--late-output")
        .arg(&l)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&ok(&out).stderr).into_owned();
    assert!(
        stderr.contains("11 lines, 9 embeddings.ready records (1 of other topics, 0 bad skipped)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("5 window results (7 chunks counted), 1 late, 1 future-skewed"),
        "{stderr}"
    );
    let expected = [
        window("2025-11-27T23:00:00Z", "2025-11-27T23:01:00Z", A, 2),
        window("2025-11-27T23:00:00Z", "2025-11-27T23:01:00Z", B, 1),
        window("2025-11-27T23:01:00Z", "2025-11-27T23:02:00Z", A, 2),
        window("2025-11-27T23:01:00Z", "2025-11-27T23:02:00Z", B, 1),
        window("2025-11-27T23:02:00Z", "2025-11-27T23:03:00Z", A, 1),
    ];
    let windows = std::fs::read_to_string(&w).unwrap();
    assert_eq!(windows, expected.join("\n") + "\n");
    let late: Vec<serde_json::Value> = std::fs::read_to_string(&l)
        .unwrap()
        .lines()
        .map(|x| serde_json::from_str(x).unwrap())
        .collect();
    assert_eq!(late.len(), 2);
    assert_eq!(late[0]["reason"], "late");
    assert_eq!(late[0]["ts"], 1_764_284_430_000i64);
    assert_eq!(late[0]["window_start"], "2025-11-27T23:00:00Z");
    assert_eq!(late[0]["watermark"], "2025-11-27T23:01:00.999Z");
    assert_eq!(
        (late[0]["partition"].as_i64(), late[0]["offset"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(late[1]["reason"], "future_timestamp");
    assert_eq!(late[1]["window_start"], "2025-11-28T09:00:00Z");

    // Same input, same bytes; the seed job's global watermark makes more records late.
    let again = atenex()
        .args(["analytics", "--output", "-", "--input"])
        .arg(fixture("streams/analytics-late.jsonl"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(ok(&again).stdout.clone()).unwrap(),
        windows
    );
    let global = atenex()
        .args([
            "analytics",
            "--watermark",
            "global",
            "--output",
            "-",
            "--input",
        ])
        .arg(fixture("streams/analytics-late.jsonl"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&ok(&global).stderr).into_owned();
    assert!(
        stderr.contains("2 late"),
        "with one watermark, p1's 30 s record is late once p0 reached 61 s: {stderr}"
    );
}

#[test]
fn a_window_below_a_millisecond_is_refused_with_the_flag_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("streams/analytics-late.jsonl");
    let output = dir.path().join("w.jsonl");
    for window in ["1ns", "999us", "1500us", "0s"] {
        let out = offline(&input, &output, &["--window", window]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--window {window}: {err}");
        assert!(
            err.contains("--window") && err.contains("whole number of milliseconds"),
            "--window {window}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!output.exists(), "nothing written");
    }
}

#[test]
fn the_results_never_replace_the_input_or_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let original = std::fs::read(fixture("streams/analytics-late.jsonl")).unwrap();
    std::fs::write(&input, &original).unwrap();
    let link = dir.path().join("link.jsonl");
    std::fs::hard_link(&input, &link).unwrap();
    let other = dir.path().join("w.jsonl");
    let cases: [(&Path, &[&str], &str); 4] = [
        (&input, &[], "--output"),
        (&link, &[], "--output"),
        (
            &other,
            &["--late-output", input.to_str().unwrap()],
            "--late-output",
        ),
        (
            &other,
            &["--late-output", other.to_str().unwrap()],
            "the same file as --output",
        ),
    ];
    for (output, extra, says) in cases {
        let out = offline(&input, output, extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{output:?} {extra:?}: {err}");
        assert!(err.contains(says), "{output:?} {extra:?}: {err}");
        assert_eq!(
            std::fs::read(&input).unwrap(),
            original,
            "the input is intact"
        );
        assert!(!other.exists(), "nothing written");
    }
}

#[test]
fn offline_bad_lines_stop_the_run_or_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let good = std::fs::read_to_string(fixture("streams/analytics-late.jsonl")).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(2, r#"{"topic":"embeddings.ready","partition":0,"offset":9,"ts":1,"key":null,"payload":"{\"chunk_id\":\"x\"}"}"#);
    lines.insert(5, "not json");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let output = dir.path().join("w.jsonl");
    let out = offline(&input, &output, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3: embeddings.ready: field `document_id`: is missing"),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!output.exists(), "no partial output");

    let out = offline(&input, &output, &["--skip-bad-records"]);
    let err = String::from_utf8_lossy(&ok(&out).stderr).into_owned();
    assert!(err.contains("2 bad skipped"), "{err}");
    assert!(
        err.contains("skipped line 3: embeddings.ready: field `document_id`: is missing"),
        "{err}"
    );
    assert!(err.contains("skipped line 6: not a JSON object"), "{err}");
    assert_eq!(std::fs::read_to_string(&output).unwrap().lines().count(), 5);
}

#[test]
fn offline_empty_input_writes_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("empty.jsonl"), dir.path().join("w.jsonl"));
    std::fs::write(&input, "").unwrap();
    let out = offline(&input, &output, &[]);
    ok(&out);
    assert_eq!(std::fs::read(&output).unwrap(), b"");
}

/// A recording of about 0.2 GB (10,000 records of 1,536-float vectors) is read as a stream: the
/// process stays under 64 MB resident — it held the whole recording before — and counts every
/// record. Through stdin with `--output -` the same bytes come out; with a bad last line
/// nothing does (the results are staged, not streamed to stdout).
#[test]
fn offline_memory_does_not_grow_with_the_input() {
    use atenex_analytics::bench::{StreamSpec, generate};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.jsonl");
    let records = 10_000;
    let stream = generate(&StreamSpec {
        records,
        dims: 1536,
        ..StreamSpec::default()
    });
    assert!(stream.len() > 140_000_000, "{}", stream.len());
    std::fs::write(&input, &stream).unwrap();
    drop(stream);
    let output = dir.path().join("w.jsonl");
    let mut child = atenex()
        .args(["analytics", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (status, peak) = wait_with_peak_rss(&mut child, Duration::from_secs(300));
    assert!(status.success());
    assert!(peak < 64, "peak resident memory {peak} MB");
    let windows = std::fs::read_to_string(&output).unwrap();
    let counted: u64 = windows
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["chunk_count"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(counted, records as u64);

    let through_stdin = |input: &Path| {
        atenex()
            .args(["analytics", "--input", "-", "--output", "-"])
            .stdin(std::fs::File::open(input).unwrap())
            .output()
            .unwrap()
    };
    let out = through_stdin(&input);
    assert_eq!(String::from_utf8(ok(&out).stdout.clone()).unwrap(), windows);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    std::io::Write::write_all(&mut f, b"not json\n").unwrap();
    let out = through_stdin(&input);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {} bytes",
        out.stdout.len()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("line {}: not a JSON object", records + 1)),
        "{err}"
    );
}

struct Live {
    input: String,
    group: String,
    output: String,
    late: String,
}

impl Live {
    /// Its output topics are created first, as `atenex topics create` does in production.
    fn new(rt: &tokio::runtime::Runtime, input: &str, name: &str) -> Self {
        let live = Self {
            input: input.to_owned(),
            group: unique(name),
            output: unique(&format!("{name}-out")),
            late: unique(&format!("{name}-late")),
        };
        create_test_topics(rt, &[&live.output, &live.late], 2);
        live
    }

    fn command(&self, drain: bool) -> std::process::Command {
        let mut c = atenex();
        c.args([
            "analytics",
            "--bootstrap-servers",
            testing::bootstrap(),
            "--topic",
            &self.input,
            "--group",
            &self.group,
        ])
        .args([
            "--output-topic",
            &self.output,
            "--late-topic",
            &self.late,
            "--max-batch",
            "150",
        ])
        .args(["--transactional-id", &format!("{}-tx", self.group)])
        // Static membership: a restarted instance takes its partitions back at once.
        .env(
            "KAFKA_GROUP_INSTANCE_ID",
            format!("{}-instance", self.group),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        if drain {
            c.arg("--drain");
        }
        c
    }

    fn drain(&self) {
        let mut child = self.command(true).spawn().unwrap();
        assert!(
            wait_exit(&mut child, Duration::from_secs(180)).success(),
            "--drain exits 0"
        );
    }
}

/// The acceptance test of exactly-once: a stream through the test broker, the job SIGKILLed at 20
/// seeded random points and restarted each time, gives the same analytics.flink records, in the
/// same order within each partition, as a run without crashes; dead letters are written once per run.
#[test]
fn live_results_survive_20_kills_exactly_once() {
    let rt = runtime();
    let input = unique("emb");
    // Three malformed values among them.
    let records = embeddings_stream(
        &input,
        6_000,
        11,
        &[
            (100, "{\"chunk_id\":1}"),
            (2_500, "not json"),
            (5_000, "{}"),
        ],
    );
    replay_all(&rt, &records);

    let reference = Live::new(&rt, &input, "ref");
    reference.drain();
    let expected = windows_of(&record_topic(&rt, &reference.output));
    let total: u64 = expected.iter().map(|w| w.chunk_count).sum();
    assert_eq!(
        total,
        6_000 - 3,
        "every good record counted once (disorder within the watermark delay)"
    );
    assert!(record_topic(&rt, &reference.late).is_empty());

    let crashy = Live::new(&rt, &input, "crash");
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    for _ in 0..20 {
        let mut child = crashy.command(false).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(300..2_500)));
        signal(&child, "-KILL");
        child.wait().unwrap();
    }
    // SIGTERM: commit what is safe and exit 0.
    let mut child = crashy.command(false).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    signal(&child, "-TERM");
    assert!(
        wait_exit(&mut child, Duration::from_secs(30)).success(),
        "SIGTERM exits 0"
    );
    crashy.drain();
    let got = windows_of(&record_topic(&rt, &crashy.output));
    assert_eq!(
        got, expected,
        "same window results, same order, none missing, none repeated"
    );
    assert!(record_topic(&rt, &crashy.late).is_empty());
    let dead = record_topic(&rt, &format!("{input}.dlq"));
    let sources: Vec<String> = dead
        .iter()
        .map(|d| {
            let h = |n| d.header(n).unwrap_or("?").to_owned();
            format!("{}@{}", h("dlq.source.partition"), h("dlq.source.offset"))
        })
        .collect();
    assert_eq!(
        dead.len(),
        6,
        "3 dead letters per run, each written once: {sources:?}"
    );
    assert!(
        dead.iter()
            .all(|d| d.header("dlq.stage") == Some("analytics"))
    );
}

/// Partitions added to the input while the job runs are found (`--partition-discovery-interval`)
/// and counted: the instance's summary counts every record, the new partition's included.
#[test]
fn partitions_added_to_the_input_while_it_runs_are_counted() {
    let rt = runtime();
    let input = unique("emb-grow");
    create_test_topics(&rt, &[&input], 2);
    let records = embeddings_stream(&input, 3_000, 21, &[]);
    let (old, new): (Vec<atenex_contracts::Envelope>, Vec<_>) =
        records.iter().cloned().partition(|r| r.partition < 2);
    assert!(!new.is_empty());
    replay_all(&rt, &old);
    let live = Live::new(&rt, &input, "grow");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("analytics.log");
    let mut child = live
        .command(false)
        .args(["--partition-discovery-interval", "1s"])
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !read_log().contains("active:") {
        assert!(std::time::Instant::now() < deadline, "never active");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The topic grows to three partitions (the replay adds what its records need).
    replay_all(&rt, &new);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !read_log().contains("the input's partitions changed") {
        assert!(
            std::time::Instant::now() < deadline,
            "the new partition was not found:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every record of the new partition handled and committed (its offset metadata's
    // `handled` position is its end).
    let handled = || {
        let committed = atenex_kafka::admin::committed_offsets_with_metadata(
            &testing::config(),
            &live.group,
            &input,
            &[2],
        )
        .unwrap();
        serde_json::from_str::<serde_json::Value>(&committed[0].2)
            .ok()
            .and_then(|m| m["handled"].as_i64())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while handled() != Some(new.len() as i64) {
        assert!(
            std::time::Instant::now() < deadline,
            "partition 2 handled up to {:?} of {}",
            handled(),
            new.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(&child, "-TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
}
