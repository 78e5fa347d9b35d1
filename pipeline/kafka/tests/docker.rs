//! The broker in a container (feature `testcontainers`; needs a Docker engine, which `ci/test`
//! starts): the image is built on this machine and never pulled, the broker listens on loopback
//! only, a stream round-trips through it, a restarted container keeps its log and address, and
//! containers left by dead processes are swept.
//!
//!     cargo test -p atenex-kafka --features testcontainers --test docker
//!
//! The whole `real_broker` suite runs against a container too with `ATENEX_KAFKA=testcontainers`
//! (docs/testing.md, "Kafka in a container").
#![cfg(feature = "testcontainers")]

use atenex_contracts::{Envelope, EnvelopeReader, EnvelopeWriter};
use atenex_kafka::broker::BrokerOptions;
use atenex_kafka::container::{ContainerBroker, OWNER_LABEL, image};
use atenex_kafka::record::{RecordOptions, Stop, record};
use atenex_kafka::replay::{ReplayOptions, replay};
use atenex_kafka::testing::unique;
use atenex_kafka::{KafkaConfig, broker::default_cache_dir};
use std::collections::BTreeSet;
use std::process::Command;
use tokio_util::sync::CancellationToken;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn options(data_dir: Option<&std::path::Path>) -> BrokerOptions {
    BrokerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.map(ToOwned::to_owned),
        ..BrokerOptions::default()
    }
}

fn stream(topic: &str, from: i64, n: i64) -> Vec<Envelope> {
    (from..from + n)
        .map(|i| Envelope {
            topic: topic.to_owned(),
            partition: 0,
            offset: i,
            tstype: None,
            ts: Some(1_764_201_600_000 + i),
            broker: -1,
            headers: vec![],
            key: Some(format!("k{i}")),
            payload: Some(format!("{{\"n\":{i}}}")),
        })
        .collect()
}

async fn round_trip(config: &KafkaConfig, input: &[Envelope]) -> Vec<Envelope> {
    replay(
        config,
        input,
        &ReplayOptions::default(),
        CancellationToken::new(),
        |_| {},
    )
    .await
    .unwrap();
    read_back(config, &input[0].topic).await
}

async fn read_back(config: &KafkaConfig, topic: &str) -> Vec<Envelope> {
    let mut w = EnvelopeWriter::new(Vec::new());
    let opts = RecordOptions {
        topics: vec![topic.to_owned()],
        from_beginning: true,
        stop: Stop::AtEnd,
    };
    record(config, &opts, &mut w, CancellationToken::new())
        .await
        .unwrap();
    EnvelopeReader::new(&w.into_inner()[..])
        .map(Result::unwrap)
        .collect()
}

fn payloads(records: &[Envelope]) -> Vec<Option<String>> {
    records.iter().map(|e| e.payload.clone()).collect()
}

/// The local addresses (`ip:port`) of the TCP sockets that process `pid` listens on, read from
/// `/proc` (the container shares the host's network namespace).
fn listening(pid: u32) -> Vec<String> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    let mut found = Vec::new();
    for (file, v6) in [("tcp", false), ("tcp6", true)] {
        let table = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap();
        for line in table.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A: LISTEN), inode
            if f[3] == "0A" && inodes.contains(f[9]) {
                let (ip, port) = f[1].split_once(':').unwrap();
                let port = u16::from_str_radix(port, 16).unwrap();
                // Each 32-bit word of the address is in host (little-endian) byte order.
                let words: Vec<[u8; 4]> = (0..ip.len() / 8)
                    .map(|w| {
                        u32::from_str_radix(&ip[w * 8..w * 8 + 8], 16)
                            .unwrap()
                            .to_le_bytes()
                    })
                    .collect();
                let ip: std::net::IpAddr = if v6 {
                    let v6 =
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(words.concat()).unwrap());
                    // Java listens on IPv6 sockets: 127.0.0.1 shows as ::ffff:127.0.0.1.
                    v6.to_ipv4_mapped().map_or(v6.into(), Into::into)
                } else {
                    std::net::Ipv4Addr::from(words[0]).into()
                };
                found.push(format!("{ip}:{port}"));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_in_a_container_built_here_round_trips_a_stream_listening_on_loopback_only() {
    // A container left by a process that has exited (its owner pid is gone) is swept at start.
    let ensured = image::ensure(&default_cache_dir()).unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let left = docker(&[
        "create",
        "--network",
        "host",
        "--label",
        &format!("{OWNER_LABEL}={dead_pid}"),
        &ensured.reference,
    ]);

    let broker = tokio::task::spawn_blocking(|| ContainerBroker::start(&options(None)))
        .await
        .unwrap()
        .unwrap();
    assert!(
        docker(&["ps", "-aq", "--no-trunc", "--filter", &format!("id={left}")]).is_empty(),
        "the left-over container {left} was not swept"
    );

    // Built here: imported, never pulled (no registry digest), ours by label.
    let inspect = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}} {{index .Config.Labels \"org.atenex.kafka-version\"}}",
        broker.image(),
    ]);
    assert_eq!(inspect, "[] 4.4.0", "{}", broker.image());
    assert_eq!(
        docker(&[
            "inspect",
            "--format",
            "{{.HostConfig.NetworkMode}}",
            broker.id()
        ]),
        "host"
    );
    assert!(broker.bootstrap().starts_with("127.0.0.1:"));
    let pid: u32 = docker(&["inspect", "--format", "{{.State.Pid}}", broker.id()])
        .parse()
        .unwrap();
    let listens = listening(pid);
    assert!(
        listens.len() >= 2 && listens.contains(&broker.bootstrap().to_owned()),
        "the broker's listeners (client and controller): {listens:?}"
    );
    for l in &listens {
        assert!(
            l.starts_with("127.0.0.1:"),
            "listens beyond loopback: {l} (all: {listens:?})"
        );
    }

    let config = KafkaConfig::from_vars(Vec::new()).with_bootstrap(Some(broker.bootstrap()));
    let input = stream(&unique("docker"), 0, 10);
    let back = round_trip(&config, &input).await;
    assert_eq!(payloads(&back), payloads(&input));
    assert!(back.iter().all(|e| e.key.is_some() && e.ts.is_some()));

    let id = broker.id().to_owned();
    tokio::task::spawn_blocking(move || drop(broker))
        .await
        .unwrap();
    assert!(
        docker(&["ps", "-aq", "--no-trunc", "--filter", &format!("id={id}")]).is_empty(),
        "a dropped broker's container is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_container_keeps_its_log_and_address() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(Some(dir.path()));
    let mut broker = tokio::task::spawn_blocking(move || ContainerBroker::start(&opts))
        .await
        .unwrap()
        .unwrap();
    let config = KafkaConfig::from_vars(Vec::new()).with_bootstrap(Some(broker.bootstrap()));
    let topic = unique("restart");
    let first = stream(&topic, 0, 20);
    assert_eq!(
        payloads(&round_trip(&config, &first).await),
        payloads(&first)
    );
    let started = docker(&["inspect", "--format", "{{.State.StartedAt}}", broker.id()]);

    let (id, address) = (broker.id().to_owned(), broker.bootstrap().to_owned());
    let mut broker = tokio::task::spawn_blocking(move || {
        broker.restart().unwrap();
        broker
    })
    .await
    .unwrap();
    assert_eq!((broker.id(), broker.bootstrap()), (&*id, &*address));
    let restarted = docker(&["inspect", "--format", "{{.State.StartedAt}}", &id]);
    assert_ne!(started, restarted, "the container was started again");
    // The log was kept: the first records are read back, and new ones follow them.
    let second = stream(&topic, 20, 5);
    let mut all = first.clone();
    all.extend(second.iter().cloned());
    assert_eq!(
        payloads(&round_trip(&config, &second).await),
        payloads(&all)
    );
    tokio::task::spawn_blocking(move || broker.stop())
        .await
        .unwrap();
    assert!(
        dir.path().join("kraft-logs/meta.properties").exists(),
        "a kept data directory stays"
    );
}

#[test]
fn ensuring_the_image_again_builds_nothing() {
    let cache = default_cache_dir();
    let first = image::ensure(&cache).unwrap();
    let again = image::ensure(&cache).unwrap();
    assert_eq!(again.reference, first.reference);
    assert!(!again.built, "the image was built again");
    assert!(image::exists(&again.reference).unwrap());
    assert!(!image::exists(&format!("{}:0.0.0-none", image::REPOSITORY)).unwrap());
    eprintln!(
        "{}: found in {:.2} s (first call: {}, {:.1} s)",
        again.reference,
        again.took.as_secs_f64(),
        if first.built { "built" } else { "found" },
        first.took.as_secs_f64()
    );
}
