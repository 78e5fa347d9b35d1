//! The `atenex` binary as users run it.

use atenex_contracts::Envelope;
use atenex_contracts::envelope::by_partition;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// The issue's acceptance path: `atenex broker`, then `atenex replay --input F`, then
/// `kcat -C -J -e` returns the records of F; then record, admin endpoints and clean shutdowns.
#[test]
fn broker_replay_kcat_record_and_clean_shutdown() {
    let mut broker = atenex()
        .args(["broker", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(broker.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let bootstrap = first.trim().to_owned();
    assert!(
        bootstrap.starts_with("127.0.0.1:"),
        "first line is the bootstrap address: {first:?}"
    );

    let input = fixture("streams/foundation-sample.jsonl");
    let expected = read_envelopes(&std::fs::read(&input).unwrap());
    let out = atenex()
        .args(["replay", "--bootstrap-servers", &bootstrap, "--input"])
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&ok(&out).stderr).into_owned();
    assert!(
        stderr.contains("replayed 21 records (0 duplicates)"),
        "{stderr}"
    );
    assert!(stderr.contains("embeddings.ready: 9 records, timestamps 2025-11-26T23:59:00.500Z .. 2025-11-26T23:59:45.000Z"), "{stderr}");

    let mut from_kcat = Vec::new();
    for topic in ["documents.raw", "chunks.processed", "embeddings.ready"] {
        let out = Command::new("kcat")
            .args(["-C", "-J", "-e", "-q", "-b", &bootstrap, "-t", topic])
            .output()
            .expect("kcat is installed (apt-get install kcat; ci/test does it)");
        from_kcat.extend(read_envelopes(&ok(&out).stdout));
    }
    assert_eq!(by_partition(&from_kcat), by_partition(&expected));
    // Offsets too: a fresh broker gives the recorded ones back.
    let offsets = |v: &[Envelope]| {
        let mut o: Vec<_> = v
            .iter()
            .map(|e| (e.topic.clone(), e.partition, e.offset))
            .collect();
        o.sort();
        o
    };
    assert_eq!(offsets(&from_kcat), offsets(&expected));

    // Record with --until-end gives the same records.
    let dir = tempfile::tempdir().unwrap();
    let recorded = dir.path().join("rec.jsonl");
    let out = atenex()
        .args([
            "record",
            "--bootstrap-servers",
            &bootstrap,
            "--topics",
            "documents.raw,chunks.processed,embeddings.ready",
            "--from-beginning",
            "--until-end",
            "--output",
        ])
        .arg(&recorded)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&ok(&out).stderr).contains("recorded 21 records"));
    let got = read_envelopes(&std::fs::read(&recorded).unwrap());
    assert_eq!(by_partition(&got), by_partition(&expected));

    // A recorder left running serves /health and /metrics, and stops cleanly on SIGINT with
    // what it recorded flushed.
    let admin = format!("127.0.0.1:{}", atenex_kafka::broker::free_port().unwrap());
    let live = dir.path().join("live.jsonl");
    let mut recorder = atenex()
        .args([
            "record",
            "--bootstrap-servers",
            &bootstrap,
            "--topics",
            "documents.raw",
            "--from-beginning",
            "--admin-listen",
            &admin,
            "--log-format",
            "json",
            "--output",
        ])
        .arg(&live)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        if TcpStream::connect(&admin).is_ok() {
            let (status, body) = http_get(&admin, "/metrics");
            if status == 200 && body.contains("atenex_records_in_total{topic=\"documents.raw\"} 3")
            {
                break body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no metrics for 3 records on {admin}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        metrics.contains("# TYPE atenex_records_in_total counter"),
        "{metrics}"
    );
    assert_eq!(
        http_get(&admin, "/health"),
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    signal(&recorder, "-INT");
    assert!(wait_exit(&mut recorder, Duration::from_secs(20)).success());
    let mut logs = String::new();
    recorder
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    let json_line = logs
        .lines()
        .find(|l| l.contains("shutting down"))
        .expect("a shutdown log line");
    let v: serde_json::Value =
        serde_json::from_str(json_line).expect("--log-format json logs JSON");
    assert_eq!(v["signal"], "SIGINT");
    assert_eq!(read_envelopes(&std::fs::read(&live).unwrap()).len(), 3);

    // `topics create` twice: created, then unchanged.
    let first = ok(&atenex()
        .args([
            "topics",
            "create",
            "--bootstrap-servers",
            &bootstrap,
            "--partitions",
            "2",
        ])
        .output()
        .unwrap())
    .stdout
    .clone();
    let first = String::from_utf8(first).unwrap();
    assert!(
        first.contains("created  analytics.late (2 partitions)"),
        "{first}"
    );
    assert!(
        first.contains("exists   documents.raw (2 partitions, unchanged)"),
        "{first}"
    );
    assert!(
        first.contains("created  analytics.lease (1 partitions)"),
        "the lease topic has one partition whatever --partitions says: {first}"
    );
    let again = String::from_utf8(
        ok(&atenex()
            .args(["topics", "create", "--bootstrap-servers", &bootstrap])
            .output()
            .unwrap())
        .stdout
        .clone(),
    )
    .unwrap();
    assert_eq!(again.matches("exists").count(), 10, "{again}");

    signal(&broker, "-TERM");
    assert!(
        wait_exit(&mut broker, Duration::from_secs(40)).success(),
        "broker exits 0 on SIGTERM"
    );
}

#[test]
fn replay_refuses_a_bad_file_before_sending_anything() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"key\":null,\"payload\":\"x\"}\n{oops\n\n{\"topic\":\"t\",\"partition\":-1,\"offset\":0,\"key\":null,\"payload\":\"x\"}\n",
    )
    .unwrap();
    // Nothing listens on port 1: had it tried to send, it would fail differently.
    let out = atenex()
        .args(["replay", "--bootstrap-servers", "127.0.0.1:1", "--input"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 bad line(s), nothing was sent"), "{err}");
    assert!(err.contains("line 2: not a JSON object"), "{err}");
    assert!(err.contains("line 4: `partition` must be ≥ 0"), "{err}");

    let out = atenex()
        .args(["replay", "--input", "/nonexistent/x.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--input /nonexistent/x.jsonl: cannot open")
    );
}

#[test]
fn bad_usage_exits_2_and_names_the_problem() {
    let out = atenex()
        .args(["replay", "--input", "x", "--duplicates", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a probability"));
    let out = atenex()
        .args(["replay", "--input", "x", "--rate", "fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = atenex()
        .args([
            "record",
            "--topics",
            "a",
            "--output",
            "-",
            "--until-end",
            "--max-records",
            "3",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_bad_kafka_variable_is_named_with_its_fix() {
    let out = atenex()
        .env("KAFKA_NO_SUCH_PROPERTY", "1")
        .args(["replay", "--bootstrap-servers", "127.0.0.1:1", "--input"])
        .arg(fixture("streams/foundation-sample.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KAFKA_NO_SUCH_PROPERTY"), "{err}");
    assert!(err.contains("fix or unset"), "{err}");
}

#[test]
fn every_subcommand_explains_its_options_and_variables() {
    for (args, needles) in [
        (
            vec!["--help"],
            vec![
                "KAFKA_BOOTSTRAP_SERVERS",
                "KAFKA_<NAME_WITH_UNDERSCORES>",
                "Exit status",
            ],
        ),
        (
            vec!["broker", "--help"],
            vec![
                "--listen",
                "--embedded",
                "--data-dir",
                "ATENEX_BROKER_LISTEN",
                "first line of stdout",
            ],
        ),
        (
            vec!["topics", "create", "--help"],
            vec![
                "--partitions",
                "--replication-factor",
                "analytics.late",
                "KAFKA_BOOTSTRAP_SERVERS",
            ],
        ),
        (
            vec!["record", "--help"],
            vec![
                "--topics",
                "--from-beginning",
                "--until-end",
                "--max-records",
                "--admin-listen",
                "ATENEX_ADMIN_LISTEN",
            ],
        ),
        (
            vec!["replay", "--help"],
            vec![
                "--order",
                "--seed",
                "--max-disorder",
                "--duplicates",
                "--rate",
                "KAFKA_BOOTSTRAP_SERVERS",
                "ATENEX_LOG_FORMAT",
            ],
        ),
    ] {
        let out = atenex().args(&args).output().unwrap();
        let text = String::from_utf8_lossy(&ok(&out).stdout).into_owned();
        for n in needles {
            assert!(
                text.contains(n),
                "`atenex {}` lacks {n}:\n{text}",
                args.join(" ")
            );
        }
    }
}

#[test]
fn landing_refuses_the_atenex_file_as_given_and_lands_with_the_fix() {
    let config = fixture("config/hdfs-sink-connector.properties");
    let input = fixture("streams/landing-hours.jsonl");
    let out = atenex()
        .args(["landing", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`partition.duration.ms` is missing"), "{err}");
    assert!(err.contains("add partition.duration.ms=3600000"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let land = |c: &mut Command| {
        c.env("ATENEX_LANDING_PARTITION_DURATION_MS", "3600000")
            .env(
                "ATENEX_LANDING_HDFS_URL",
                format!("file://{}", dir.path().display()),
            )
            .env("ATENEX_LANDING_TIMESTAMP_EXTRACTOR", "Record")
            .args(["landing", "--config"])
            .arg(&config)
            .arg("--input")
            .arg(&input)
            .output()
            .unwrap()
    };
    let first = land(&mut atenex());
    assert!(String::from_utf8_lossy(&ok(&first).stderr).contains("landing: 184 records"));
    let hour = dir
        .path()
        .join("atenex/kafka-landing/embeddings.ready/year=2025/month=11/day=27/hour=00");
    let names: Vec<String> = std::fs::read_dir(&hour)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.contains(&"embeddings.ready+0+0000000024+0000000027.json".to_owned()),
        "{names:?}"
    );
    let again = land(&mut atenex());
    assert!(String::from_utf8_lossy(&ok(&again).stderr).contains("landing: 0 records"));
    assert!(String::from_utf8_lossy(&again.stderr).contains("184 already landed"));
}

/// Every subcommand — found by walking the command lists of `atenex --help`, so that a new one is
/// covered without touching this test — answers `--help` with exit 0, and every option it lists
/// comes with an explanation.
#[test]
fn every_subcommand_answers_help_and_explains_each_option() {
    let mut queue: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = Vec::new();
    while let Some(path) = queue.pop() {
        let out = atenex().args(&path).arg("--help").output().unwrap();
        let text = String::from_utf8_lossy(&ok(&out).stdout).into_owned();
        let name = format!("atenex {}", path.join(" "));
        assert!(text.contains("Usage:"), "`{name} --help`:\n{text}");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let option = line.trim_start();
            let indent = line.len() - option.len();
            if option.starts_with('-') && (2..=6).contains(&indent) {
                // Short help: `--flag <V>   what it does`; long help: the text on the next lines.
                let same_line = option.split("  ").filter(|s| !s.trim().is_empty()).count() >= 2;
                let below = lines.get(i + 1).is_some_and(|next| {
                    let rest = next.trim_start();
                    !rest.is_empty() && next.len() - rest.len() > indent + 2
                });
                let explained = same_line || below;
                assert!(
                    explained,
                    "`{name} --help`: `{}` has no explanation:\n{text}",
                    option
                );
            }
        }
        for sub in subcommands(&text) {
            let mut next = path.clone();
            next.push(sub);
            queue.push(next);
        }
        seen.push(name);
    }
    // The top level, its commands and the nested ones (topics create, sim run, bench ...).
    for expected in [
        "atenex demo",
        "atenex topics create",
        "atenex sim run",
        "atenex bench landing",
        "atenex landing",
        "atenex mock-openai",
    ] {
        assert!(
            seen.iter().any(|s| s.trim_end() == expected),
            "{expected} not reached: {seen:?}"
        );
    }
}
