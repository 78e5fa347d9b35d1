//! `atenex demo`, the README's main command, as a user runs it: twice on the same data directory
//! (the second run continues the first's broker log and landing tree), each exiting 0 with the
//! windows and the report counting every embedded chunk (the demo checks both and fails
//! otherwise); the second run records the topics (`--record`), and the simulator replays the
//! recording with its invariants holding.

mod common;
use common::*;

/// `atenex demo --data DATA --timeout-secs 120 EXTRA...` with the OpenAI mock (no key) and the
/// demo's own logging.
fn demo_command(data: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let mut c = atenex();
    c.args([
        "demo",
        "--data",
        data.to_str().unwrap(),
        "--timeout-secs",
        "120",
    ])
    .args(extra)
    .env_remove("OPENAI_API_KEY")
    .env_remove("RUST_LOG");
    c
}

/// The demo's standard output; it must exit 0.
fn run_demo(mut c: std::process::Command) -> String {
    let out = c.output().unwrap();
    String::from_utf8(ok(&out).stdout.clone()).unwrap()
}

fn demo(data: &std::path::Path, extra: &[&str]) -> String {
    run_demo(demo_command(data, extra))
}

#[test]
fn the_demo_runs_twice_on_the_same_data() {
    let data = tempfile::tempdir().unwrap();
    let recording = data.path().join("recording.jsonl");
    for run in 1..=2 {
        let record = ["--record", recording.to_str().unwrap()];
        let out = demo(data.path(), if run == 2 { &record } else { &[] });
        for expected in [
            "broker: starting Apache Kafka",
            "openai: the mock at",
            "chunks produced and embedded: 7 (1536 dimensions each)",
            "== windows",
            "== landing tree",
            "== report",
            "done in",
        ] {
            assert!(
                out.contains(expected),
                "run {run}: no {expected:?} in\n{out}"
            );
        }
        // Five documents in the report, seven chunks in all.
        let report = out.split("== report").nth(1).unwrap();
        let rows: Vec<&str> = report
            .lines()
            .filter(|l| l.trim().len() > 36 && l.trim().as_bytes()[8] == b'-')
            .collect();
        assert_eq!(rows.len(), 5, "run {run}: {report}");
    }
    assert!(
        data.path()
            .join("kafka/kraft-logs/meta.properties")
            .exists()
    );
    assert!(
        data.path()
            .join("hdfs/atenex/kafka-landing/embeddings.ready")
            .is_dir()
    );

    // The recording holds both runs: 10 documents, 14 chunks, 14 embeddings.
    let text = std::fs::read_to_string(&recording).unwrap();
    let mut per_topic = std::collections::BTreeMap::new();
    for line in text.lines() {
        let e = atenex_contracts::Envelope::parse(line).unwrap();
        *per_topic.entry(e.topic).or_insert(0) += 1;
    }
    assert_eq!(
        per_topic.into_iter().collect::<Vec<_>>(),
        [
            ("chunks.processed".to_owned(), 14),
            ("documents.raw".to_owned(), 10),
            ("embeddings.ready".to_owned(), 14)
        ]
    );
    // A scenario replaying it: the simulator's invariants hold.
    let scenario = data.path().join("replay.toml");
    std::fs::write(
        &scenario,
        "description = \"the demo's recording\"\n[input]\nfile = \"recording.jsonl\"\n",
    )
    .unwrap();
    let out = atenex()
        .args(["sim", "run", scenario.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8(ok(&out).stdout.clone()).unwrap();
    assert!(out.contains("1 scenarios: 1 passed, 0 failed"), "{out}");
}

/// Without a JDK the demo runs on librdkafka's embedded mock cluster, and says so.
#[test]
fn without_a_jdk_the_demo_uses_the_embedded_cluster() {
    let bin = tempfile::tempdir().unwrap();
    // A PATH with no `java` (the demo stops its children with `kill`).
    std::os::unix::fs::symlink(
        std::process::Command::new("sh")
            .args(["-c", "command -v kill"])
            .output()
            .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned())
            .ok()
            .filter(|p| p.starts_with('/'))
            .unwrap_or_else(|| "/usr/bin/kill".into()),
        bin.path().join("kill"),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut c = demo_command(data.path(), &[]);
    c.env("PATH", bin.path());
    let out = run_demo(c);
    assert!(
        out.contains("no JDK found, starting librdkafka's embedded mock cluster"),
        "{out}"
    );
    assert!(out.contains("chunks produced and embedded: 7"), "{out}");
}

/// `atenex demo --storage s3://...` keeps the uploads in that bucket (the test S3, given by the
/// AWS variables) and docproc reads them there: every chunk is embedded and counted as on disk.
#[test]
fn the_demo_keeps_the_uploads_in_s3_when_asked() {
    let server = atenex_ingest::testing::shared();
    let bucket = server.bucket("demo").unwrap();
    let storage = format!("s3://{bucket}/raw");
    let data = tempfile::tempdir().unwrap();
    let mut c = demo_command(data.path(), &["--storage", &storage]);
    c.envs(server.env());
    let out = run_demo(c);
    assert!(out.contains(&format!("files: objects {storage},")), "{out}");
    assert!(out.contains("chunks produced and embedded: 7"), "{out}");
    let documents: Vec<String> = server
        .keys(&bucket)
        .unwrap()
        .into_iter()
        // raw/{company}/{document}/{name}; not the claims (.sha256/) or health probes (.health/)
        .filter(|k| k.starts_with("raw/") && !k.contains("/."))
        .collect();
    assert_eq!(documents.len(), 5, "{documents:?}");
    assert!(
        std::fs::read_dir(data.path().join("objects"))
            .unwrap()
            .next()
            .is_none(),
        "nothing on local disk"
    );
}
