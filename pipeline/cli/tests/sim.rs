//! `atenex sim run` as users run it: the scenarios pass, one line each and a summary; a scenario
//! whose snapshot differs fails with a diff, the seed and the command that reproduces it.

mod common;
use common::*;
use std::path::Path;

fn scenarios() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

#[test]
fn the_scenarios_pass_over_seeds() {
    let out = atenex()
        .args(["sim", "run", scenarios().to_str().unwrap(), "--seeds", "20"])
        .output()
        .unwrap();
    let text = String::from_utf8(ok(&out).stdout.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().filter(|l| l.starts_with("ok ")).count() >= 4,
        "{text}"
    );
    assert!(
        lines.last().unwrap().ends_with("passed, 0 failed"),
        "{text}"
    );
}

#[test]
fn a_differing_snapshot_fails_with_a_diff_and_a_reproduction() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("snapshots")).unwrap();
    std::fs::copy(
        scenarios().join("baseline.toml"),
        dir.path().join("baseline.toml"),
    )
    .unwrap();
    let snap = std::fs::read_to_string(scenarios().join("snapshots/baseline.snap")).unwrap();
    std::fs::write(
        dir.path().join("snapshots/baseline.snap"),
        snap.replace(
            "c1 00000001-0000-4000-8000-000000000002 10 10",
            "c1 00000001-0000-4000-8000-000000000002 10 9",
        ),
    )
    .unwrap();
    let file = dir.path().join("baseline.toml");
    let out = atenex()
        .args(["sim", "run", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("-  c1 00000001-0000-4000-8000-000000000002 10 9")
            && text.contains("+  c1 00000001-0000-4000-8000-000000000002 10 10"),
        "{text}"
    );
    // What the seed decided comes first.
    assert!(
        text.contains("this seed: 60 records; analytics crashes before records none; landing crashes before records none"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "reproduce: atenex sim run {} --seed 1",
            file.display()
        )),
        "{text}"
    );
    assert!(text.ends_with("0 passed, 1 failed\n"), "{text}");
}

/// The broker driver from the command line: a real Kafka for the run, the reviewed snapshot for
/// the scenario's own seed and agreement with the model for the next one.
#[test]
fn the_broker_driver_runs_from_the_command_line() {
    let out = atenex()
        .args([
            "sim",
            "run",
            scenarios().join("disorder-beyond.toml").to_str().unwrap(),
            "--driver",
            "broker",
            "--seeds",
            "2",
        ])
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .output()
        .unwrap();
    let text = String::from_utf8(ok(&out).stdout.clone()).unwrap();
    assert!(
        text.contains("ok    ") && text.contains("(2 seeds, "),
        "{text}"
    );
    assert!(
        text.ends_with("1 scenarios: 1 passed, 0 failed\n"),
        "{text}"
    );
}

#[test]
fn a_typo_in_any_scenario_stops_the_run_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        scenarios().join("baseline.toml"),
        dir.path().join("a-baseline.toml"),
    )
    .unwrap();
    let text = std::fs::read_to_string(scenarios().join("baseline.toml")).unwrap();
    std::fs::write(
        dir.path().join("b-typo.toml"),
        text.replace("span = \"3m\"", "span = \"3m\"\ndisorder = \"fast\""),
    )
    .unwrap();
    let out = atenex()
        .args(["sim", "run", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("ok "), "a scenario ran: {stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "b-typo.toml",
        "disorder",
        "\"fast\" is not a duration",
        "e.g. \"5s\"",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
}
