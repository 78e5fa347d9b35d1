//! `atenex landing` live: the Kafka Connect HDFS sink's tree from real Kafka, across a SIGKILL.

mod common;
use atenex_contracts::{Envelope, EnvelopeReader};
use atenex_hdfs::{Hdfs, HdfsUrl};
use atenex_kafka::testing::{self, unique};
use atenex_landing::fs::hdfs::HdfsFs;
use atenex_landing::fs::{Fs, LocalFs};
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Every committed line as (topic, line); how many temp files and commit logs are left.
fn landed(fs: &dyn Fs) -> (Vec<(String, String)>, usize, usize) {
    let (lines, temps, logs) = landed_lines(fs);
    let mut lines: Vec<(String, String)> = lines
        .into_iter()
        .map(|(path, line)| (path.split('/').next().unwrap().to_owned(), line))
        .collect();
    lines.sort();
    (lines, temps, logs)
}

/// Where the landing writes in a test: a local directory, or a directory of the test HDFS.
enum TestStore {
    Local(tempfile::TempDir),
    Hdfs(String),
}

impl TestStore {
    fn url(&self) -> String {
        match self {
            TestStore::Local(d) => format!("file://{}", d.path().display()),
            TestStore::Hdfs(url) => url.clone(),
        }
    }

    fn fs(&self) -> Box<dyn Fs> {
        match self {
            TestStore::Local(d) => Box::new(LocalFs::new(d.path())),
            TestStore::Hdfs(url) => Box::new(HdfsFs::new(
                Hdfs::connect(&HdfsUrl::parse(url).unwrap()).unwrap(),
            )),
        }
    }
}

/// `atenex landing --config CONFIG` against the test broker, quiet.
fn landing_job(config: &Path) -> std::process::Command {
    let mut c = atenex();
    c.args([
        "landing",
        "--bootstrap-servers",
        testing::bootstrap(),
        "--config",
    ])
    .arg(config)
    .env(
        "RUST_LOG",
        std::env::var("ATENEX_TEST_LOG").unwrap_or_else(|_| "warn".into()),
    );
    c
}

#[test]
fn live_landing_survives_a_kill_and_lands_every_record_once_on_local_disk() {
    live_kill_and_restart(TestStore::Local(tempfile::tempdir().unwrap()));
}

#[test]
fn live_landing_survives_a_kill_and_lands_every_record_once_on_hdfs() {
    let url = format!(
        "{}{}",
        atenex_hdfs::testing::namenode(),
        atenex_hdfs::testing::unique_dir("live-landing")
    );
    live_kill_and_restart(TestStore::Hdfs(url));
}

fn live_kill_and_restart(store: TestStore) {
    let rt = runtime();
    let rename: BTreeMap<&str, String> = ["documents.raw", "chunks.processed", "embeddings.ready"]
        .into_iter()
        .map(|t| (t, unique(&t.replace('.', "-"))))
        .collect();
    let text = std::fs::read(fixture("streams/landing-hours.jsonl")).unwrap();
    let mut records: Vec<Envelope> = EnvelopeReader::new(&text[..]).map(Result::unwrap).collect();
    for r in &mut records {
        r.topic = rename[r.topic.as_str()].clone();
    }
    replay_all(&rt, &records);
    let mut expected: Vec<(String, String)> = records
        .iter()
        .map(|r| (r.topic.clone(), r.payload.clone().unwrap()))
        .collect();
    expected.sort();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hdfs-sink.properties");
    let fs = store.fs();
    let topics: Vec<&str> = rename.values().map(String::as_str).collect();
    std::fs::write(
        &config,
        format!(
            "name={}\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\ntopics={}\nhdfs.url={}\n\
             topics.dir=/atenex/kafka-landing\nlogs.dir=/atenex/logs\nformat.class=io.confluent.connect.hdfs3.format.json.JsonFormat\n\
             flush.size=5\nrotate.interval.ms=600000\natenex.idle.commit.ms=1000\n\
             partitioner.class=io.confluent.connect.storage.partitioner.TimeBasedPartitioner\npartition.duration.ms=3600000\n\
             path.format='year'=YYYY/'month'=MM/'day'=dd/'hour'=HH\nlocale=en_US\ntimezone=UTC\ntimestamp.extractor=Record\n",
            unique("landing"),
            topics.join(","),
            store.url()
        ),
    )
    .unwrap();
    // Static membership: the restarted instance takes the killed one's partitions at once.
    let instance = unique("instance");
    let start = || -> Child {
        landing_job(&config)
            .env("KAFKA_GROUP_INSTANCE_ID", &instance)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    let began = Instant::now();
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{:?}: {what}", began.elapsed());
    };

    // Kill it once some files are committed, mid-stream.
    let mut first = start();
    wait_for("a first commit", &|| !landed(&*fs).0.is_empty());
    signal(&first, "-KILL");
    first.wait().unwrap();
    let partial = landed(&*fs).0.len();

    let mut second = start();
    wait_for("every record", &|| landed(&*fs).0.len() >= expected.len());
    signal(&second, "-TERM");
    assert!(
        wait_exit(&mut second, Duration::from_secs(30)).success(),
        "SIGTERM exits 0"
    );

    let (lines, temps, logs) = landed(&*fs);
    assert_eq!(
        lines, expected,
        "every record exactly once (killed after {partial} lines)"
    );
    assert_eq!((temps, logs), (0, 0), "no temp file or commit log left");
}

fn config_text(name: &str, topic: &str, root: &Path, tolerance: &str) -> String {
    format!(
        "name={name}\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\ntopics={topic}\nhdfs.url=file://{}\n\
         topics.dir=/land\nlogs.dir=/logs\nformat.class=io.confluent.connect.hdfs3.format.json.JsonFormat\nflush.size=2\n\
         atenex.idle.commit.ms=500\npartitioner.class=io.confluent.connect.storage.partitioner.HourlyPartitioner\nlocale=en_US\n\
         timezone=UTC\ntimestamp.extractor=Record\nerrors.tolerance={tolerance}\n",
        root.display()
    )
}

#[test]
fn live_landing_stops_on_a_bad_record_or_dead_letters_it() {
    let rt = runtime();
    let topic = unique("bad-values");
    let value = |i: i64| Some(format!(r#"{{"n":{i}}}"#));
    let mut records: Vec<Envelope> = (0..4)
        .map(|i| Envelope {
            topic: topic.clone(),
            partition: 0,
            offset: i,
            tstype: None,
            ts: Some(1_764_201_600_000 + i),
            broker: -1,
            headers: vec![],
            key: None,
            payload: value(i),
        })
        .collect();
    records[2].payload = Some("{\n not json".to_owned());
    replay_all(&rt, &records);

    // errors.tolerance=none: the job stops, naming the record and the reason.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strict.properties");
    std::fs::write(
        &config,
        config_text(&unique("strict"), &topic, dir.path(), "none"),
    )
    .unwrap();
    let out = landing_job(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{topic}[0]@2: value spans lines and is not JSON")),
        "{err}"
    );
    assert!(err.contains("errors.tolerance=all"), "{err}");

    // errors.tolerance=all: the bad record goes to <topic>.dlq with its reason; the rest lands.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tolerant.properties");
    std::fs::write(
        &config,
        config_text(&unique("tolerant"), &topic, dir.path(), "all"),
    )
    .unwrap();
    let mut job = landing_job(&config)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let count = || {
        let mut n = 0;
        let land = dir.path().join("land").join(&topic);
        let mut stack = vec![land];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    n += std::fs::read_to_string(e.path()).unwrap().lines().count();
                }
            }
        }
        n
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while count() < 3 {
        assert!(
            Instant::now() < deadline,
            "the 3 good records were not landed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(&job, "-TERM");
    assert!(wait_exit(&mut job, Duration::from_secs(30)).success());
    let dead = record_topic(&rt, &format!("{topic}.dlq"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload.as_deref(), Some("{\n not json"));
    assert_eq!(dead[0].header("dlq.stage"), Some("landing"));
    assert_eq!(dead[0].header("dlq.source.offset"), Some("2"));
    assert!(dead[0].header("dlq.reason").unwrap().contains("not JSON"));
}
