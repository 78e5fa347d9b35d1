//! `atenex demo`, the README's main command, as a user runs it: twice on the same data directory
//! (the second run continues the first's broker log and landing tree), each exiting 0 with the
//! windows and the report counting every embedded chunk (the demo checks both and fails
//! otherwise).

mod common;
use common::*;

fn demo(data: &std::path::Path) -> String {
    let out = atenex()
        .args([
            "demo",
            "--data",
            data.to_str().unwrap(),
            "--timeout-secs",
            "120",
        ])
        .env_remove("OPENAI_API_KEY")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    String::from_utf8(ok(&out).stdout.clone()).unwrap()
}

#[test]
fn the_demo_runs_twice_on_the_same_data() {
    let data = tempfile::tempdir().unwrap();
    for run in 1..=2 {
        let out = demo(data.path());
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
    let out = atenex()
        .args([
            "demo",
            "--data",
            data.path().to_str().unwrap(),
            "--timeout-secs",
            "120",
        ])
        .env("PATH", bin.path())
        .env_remove("OPENAI_API_KEY")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let out = String::from_utf8(ok(&out).stdout.clone()).unwrap();
    assert!(
        out.contains("no JDK found, starting librdkafka's embedded mock cluster"),
        "{out}"
    );
    assert!(out.contains("chunks produced and embedded: 7"), "{out}");
}
