//! Several instances of each job against the test broker (issue 16): kills, a zombie, and the
//! outputs compared with one uninterrupted instance's.

mod common;
use atenex_hdfs::{Hdfs, HdfsUrl};
use atenex_kafka::testing::{self, unique};
use atenex_landing::fs::Fs;
use atenex_landing::fs::hdfs::HdfsFs;
use common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A free port on the loopback (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `/health` of an instance: `(status, role)`, `None` when it does not answer within a second
/// (stopped, starting, or gone).
fn health(port: u16) -> Option<(u16, String)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(s, "GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    Some((status, v["role"].as_str().unwrap_or("").to_owned()))
}

fn is_active(port: u16) -> bool {
    health(port).is_some_and(|(status, role)| status == 200 && role == "active")
}

/// Outputs of one analytics group.
struct Group {
    input: String,
    group: String,
    output: String,
    late: String,
    lease: String,
    logs: PathBuf,
}

impl Group {
    fn new(rt: &tokio::runtime::Runtime, input: &str, name: &str, logs: &Path) -> Self {
        let g = Self {
            input: input.to_owned(),
            group: unique(name),
            output: unique(&format!("{name}-out")),
            late: unique(&format!("{name}-late")),
            lease: unique(&format!("{name}-lease")),
            logs: logs.to_owned(),
        };
        create_test_topics(rt, &[&g.output, &g.late], 2);
        g
    }

    /// An instance of the group, its log in `logs/<name>.log`.
    fn spawn(&self, name: &str, port: u16, extra: &[&str]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{name}.log")))
            .unwrap();
        atenex()
            .args(["analytics", "--bootstrap-servers", testing::bootstrap()])
            .args(["--topic", &self.input, "--group", &self.group])
            .args(["--output-topic", &self.output, "--late-topic", &self.late])
            .args(["--lease-topic", &self.lease])
            .args(["--admin-listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default()
    }

    fn drain(&self, extra: &[&str]) {
        let args: Vec<&str> = extra.iter().copied().chain(["--drain"]).collect();
        let mut child = self.spawn(&format!("{}-drain", self.group), free_port(), &args);
        assert!(
            wait_exit(&mut child, Duration::from_secs(180)).success(),
            "--drain exits 0"
        );
    }
}

/// Waits until one of `ports` (other than `except`) reports itself active and ready; its index.
fn wait_active(ports: &[u16], except: Option<usize>, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let active: Vec<usize> = (0..ports.len())
            .filter(|&i| Some(i) != except && is_active(ports[i]))
            .collect();
        match active.as_slice() {
            [one] => return *one,
            [] => {}
            many => panic!("{} instances active at once: {many:?}", many.len()),
        }
        assert!(
            Instant::now() < deadline,
            "no instance became active within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The acceptance test of several analytics instances: three instances of one group under a
/// stream replayed while they run; the active one SIGKILLed four times (a standby takes over after
/// the lease's session timeout; the killed one comes back as a standby), then frozen (SIGSTOP)
/// past the session timeout while a standby takes over, and woken (SIGCONT): the zombie's
/// transaction fails as fenced and it steps down. The `analytics.flink` records equal those of one
/// uninterrupted `--drain` run over the same input, record for record; each dead letter is
/// written once per run. Failover times are printed (docs/analytics.md quotes them).
#[test]
fn three_analytics_instances_with_kills_and_a_zombie_write_what_one_instance_writes() {
    let rt = runtime();
    let logs = tempfile::tempdir().unwrap();
    let input = unique("emb-instances");
    create_test_topics(&rt, &[&input], 3);
    let records = embeddings_stream(&input, 12_000, 16, &[(700, "not json"), (8_100, "{}")]);

    // One-second windows (7 results every 50 records) and transactions open for a second: an
    // instance frozen at any moment holds an open transaction with window results in it, which
    // only the fencing keeps from being committed after the takeover.
    let session = "3s";
    let group = Group::new(&rt, &input, "instances", logs.path());
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let name = |i: usize| format!("instance-{i}");
    let extra = [
        "--session-timeout",
        session,
        "--window",
        "1s",
        "--max-wait",
        "1s",
        "--max-batch",
        "5000",
    ];
    let mut children: Vec<Child> = (0..3)
        .map(|i| group.spawn(&name(i), ports[i], &extra))
        .collect();

    // The stream arrives while the instances run: 60 slices, 400 ms apart.
    let replayer = {
        let records = records.clone();
        std::thread::spawn(move || {
            let rt = runtime();
            for slice in records.chunks(200) {
                replay_all(&rt, slice);
                std::thread::sleep(Duration::from_millis(400));
            }
        })
    };

    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let mut failovers = Vec::new();
    let mut kill = |children: &mut Vec<Child>| {
        let active = wait_active(&ports, None, Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(rng.random_range(300..2_000)));
        signal(&children[active], "-KILL");
        let killed = Instant::now();
        children[active].wait().unwrap();
        let next = wait_active(&ports, Some(active), Duration::from_secs(60));
        failovers.push(killed.elapsed());
        assert_ne!(next, active);
        children[active] = group.spawn(&name(active), ports[active], &extra);
    };
    kill(&mut children);
    kill(&mut children);

    // The zombie: frozen past its session timeout while a standby takes over, then woken.
    let zombie = wait_active(&ports, None, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    signal(&children[zombie], "-STOP");
    let frozen = Instant::now();
    let next = wait_active(&ports, Some(zombie), Duration::from_secs(60));
    let takeover = frozen.elapsed();
    assert_ne!(next, zombie);
    std::thread::sleep(Duration::from_secs(2));
    signal(&children[zombie], "-CONT");
    let deadline = Instant::now() + Duration::from_secs(60);
    while health(ports[zombie]).is_none_or(|(_, role)| role != "standby") {
        assert!(
            Instant::now() < deadline,
            "the woken zombie did not step down; its log:\n{}",
            group.log(&name(zombie))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let zombie_log = group.log(&name(zombie));
    assert!(
        zombie_log.contains("fenced") || zombie_log.contains("stepped down"),
        "the zombie says it stepped down:\n{zombie_log}"
    );
    for line in zombie_log
        .lines()
        .filter(|l| l.contains("fenced") || l.contains("stepped") || l.contains("active:"))
    {
        eprintln!("zombie: {line}");
    }
    kill(&mut children);
    kill(&mut children);
    eprintln!(
        "failover after SIGKILL (session timeout {session}): {:?}; after SIGSTOP: {takeover:?}",
        failovers
    );

    replayer.join().unwrap();
    // Every record in; then all stop (SIGTERM: commit what is safe, exit 0), and one instance
    // drains the rest.
    std::thread::sleep(Duration::from_secs(2));
    for c in &mut children {
        signal(c, "-TERM");
    }
    for c in &mut children {
        assert!(
            wait_exit(c, Duration::from_secs(30)).success(),
            "SIGTERM exits 0"
        );
    }
    group.drain(&extra);
    let got = windows_of(&record_topic(&rt, &group.output));

    let reference = Group::new(&rt, &input, "reference", logs.path());
    reference.drain(&["--window", "1s"]);
    let expected = windows_of(&record_topic(&rt, &reference.output));
    let total: u64 = expected.iter().map(|w| w.chunk_count).sum();
    assert_eq!(total, 12_000 - 2, "every good record counted once");
    assert_eq!(
        got, expected,
        "same window results, same order, none missing, none repeated, no partial counts"
    );
    assert!(record_topic(&rt, &group.late).is_empty());
    let dead = record_topic(&rt, &format!("{input}.dlq"));
    assert_eq!(dead.len(), 4, "2 dead letters per run, each written once");
}

/// The last lines of a process's standard error.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A landing instance that stopped with `status` failed because it was fenced, by its own words.
fn assert_fenced(status: std::process::ExitStatus, log: &Path) {
    assert!(!status.success(), "a fenced instance fails");
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        text.contains("no longer held by this instance"),
        "the zombie failed ({status}) without being fenced:\n{}",
        tail(log)
    );
}

/// Every committed line as (topic, hour directory, line); how many temp files and commit logs
/// are left.
fn landed_by_hour(fs: &dyn Fs) -> (Vec<(String, String, String)>, usize, usize) {
    let (lines, temps, logs) = landed_lines(fs);
    let mut lines: Vec<(String, String, String)> = lines
        .into_iter()
        .map(|(path, line)| {
            let (topic, rest) = path.split_once('/').unwrap();
            let (dir, _) = rest.rsplit_once('/').unwrap();
            (topic.to_owned(), dir.to_owned(), line)
        })
        .collect();
    lines.sort();
    (lines, temps, logs)
}

/// Two landing instances of one connector (one consumer group, the partitions split between them)
/// on the test HDFS, under a stream replayed while they run: each is SIGKILLed in turn and stays
/// down until the other has taken over its partitions (the group's session timeout) and recovered
/// them from the files (forcing the dead writer's HDFS leases), then comes back and takes its share
/// again (rebalances both ways); then one is frozen (SIGSTOP) past the session timeout while the
/// other takes its partitions over, and woken (SIGCONT): a zombie with records in hand. Its next
/// commit fails on the commit log the other instance claimed (fenced) and it stops with an error
/// (the unit restarts it) — or it learns first that it lost its partitions. Every record is landed
/// exactly once, in its hour's directory; nothing is left in `+tmp` or the commit logs after both
/// stop.
#[test]
fn two_landing_instances_with_kills_and_a_zombie_land_every_record_once() {
    let rt = runtime();
    let topic = unique("emb-landing-instances");
    create_test_topics(&rt, &[&topic], 3);
    let records = embeddings_stream(&topic, 9_000, 17, &[]);
    let url = format!(
        "{}{}",
        atenex_hdfs::testing::namenode(),
        atenex_hdfs::testing::unique_dir("landing-instances")
    );
    let fs = HdfsFs::new(Hdfs::connect(&HdfsUrl::parse(&url).unwrap()).unwrap());
    let mut expected: Vec<(String, String, String)> = records
        .iter()
        .map(|r| {
            let hour = chrono::DateTime::from_timestamp_millis(r.ts.unwrap()).unwrap();
            (
                topic.clone(),
                hour.format("year=%Y/month=%m/day=%d/hour=%H").to_string(),
                r.payload.clone().unwrap(),
            )
        })
        .collect();
    expected.sort();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hdfs-sink.properties");
    std::fs::write(
        &config,
        format!(
            "name={}\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\ntopics={topic}\nhdfs.url={url}\n\
             tasks.max=2\ntopics.dir=/atenex/kafka-landing\nlogs.dir=/atenex/logs\n\
             format.class=io.confluent.connect.hdfs3.format.json.JsonFormat\nflush.size=200\natenex.idle.commit.ms=1000\n\
             partitioner.class=io.confluent.connect.storage.partitioner.HourlyPartitioner\nlocale=en_US\ntimezone=UTC\n\
             timestamp.extractor=Record\n",
            unique("landing"),
        ),
    )
    .unwrap();
    // Each process's standard error goes to its own file: a failed exit is accepted only from
    // the zombie, and only when its own words say it was fenced.
    let logs = dir.path().to_owned();
    let mut started = 0;
    let mut start = || -> (Child, PathBuf) {
        started += 1;
        let log = logs.join(format!("landing-{started}.log"));
        let child = atenex()
            .args(["landing", "--bootstrap-servers", testing::bootstrap()])
            .arg("--config")
            .arg(&config)
            // A dead instance's partitions move to the other one after this.
            .env("KAFKA_SESSION_TIMEOUT_MS", "3000")
            .env("KAFKA_HEARTBEAT_INTERVAL_MS", "500")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        (child, log)
    };
    let mut instances = [start(), start()];
    let replayer = std::thread::spawn(move || {
        let rt = runtime();
        for slice in records.chunks(200) {
            replay_all(&rt, slice);
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while landed_by_hour(&fs).0.is_empty() {
        assert!(Instant::now() < deadline, "nothing landed");
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in [0, 1] {
        signal(&instances[i].0, "-KILL");
        instances[i].0.wait().unwrap();
        // The session timeout passes, the other instance recovers the partitions and lands them.
        std::thread::sleep(Duration::from_secs(5));
        instances[i] = start();
        std::thread::sleep(Duration::from_secs(2));
    }
    // The zombie: instance 0 until it stops on its own. Fenced, it fails on its next write to
    // HDFS, which may come at once or seconds later (the client's retries); its partitions are
    // another instance's by then. Restarted, as its unit would, when it stops early enough to
    // matter.
    signal(&instances[0].0, "-STOP");
    std::thread::sleep(Duration::from_secs(6));
    signal(&instances[0].0, "-CONT");
    std::thread::sleep(Duration::from_secs(3));
    let mut zombie_fenced = false;
    if let Some(status) = instances[0].0.try_wait().unwrap() {
        eprintln!("the woken zombie stopped ({status}); restarted as its unit would");
        assert_fenced(status, &instances[0].1);
        zombie_fenced = true;
        instances[0] = start();
    }
    replayer.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while landed_by_hour(&fs).0.len() < expected.len() {
        assert!(
            Instant::now() < deadline,
            "not everything landed: {} of {}",
            landed_by_hour(&fs).0.len(),
            expected.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (c, _) in &mut instances {
        signal(c, "-TERM");
    }
    for (i, (c, log)) in instances.iter_mut().enumerate() {
        let status = wait_exit(c, Duration::from_secs(30));
        if status.success() {
            continue;
        }
        // SIGTERM exits 0, unless the instance was fenced: the zombie failing late (before or
        // after the TERM), or — seen once in CI, not explained yet — an instance whose partition
        // another one took over under the 3 s session timeout on a loaded machine. Fenced, it
        // wrote nothing: the checks below still want every record once and nothing left over.
        eprintln!(
            "instance {i} (the zombie: {}) stopped fenced ({status})",
            i == 0 && !zombie_fenced
        );
        assert_fenced(status, log);
    }
    let (lines, temps, logs) = landed_by_hour(&fs);
    assert_eq!(
        lines, expected,
        "every record exactly once, in its hour's directory"
    );
    assert_eq!((temps, logs), (0, 0), "no temp file or commit log left");
}
