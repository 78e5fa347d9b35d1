//! Against a real Apache Kafka broker (started once for this binary; see `atenex_kafka::testing`).

use atenex_contracts::envelope::by_partition;
use atenex_contracts::payloads::ChunkProcessed;
use atenex_contracts::topics::dlq_headers;
use atenex_contracts::{Envelope, EnvelopeReader, EnvelopeWriter, Header, TimestampType, decode};
use atenex_kafka::admin::{TopicOutcome, TopicSpec, create_topics};
use atenex_kafka::record::{RecordOptions, Stop, record};
use atenex_kafka::replay::{ReplayOptions, replay};
use atenex_kafka::testing::{self, unique};
use atenex_kafka::{DeadLetters, GroupConsumer, GroupSettings, OutRecord, Producer, Record};
use std::process::Command;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

fn envelope(topic: &str, partition: i32, i: i64) -> Envelope {
    Envelope {
        topic: topic.to_owned(),
        partition,
        offset: i,
        tstype: Some(TimestampType::Create),
        ts: Some(1_764_201_600_000 + i * 1_000 - (i % 3) * 7_000),
        broker: 0,
        headers: match i % 4 {
            0 => vec![],
            1 => vec![Header::new("trace", format!("t-{i}"))],
            2 => vec![
                Header::new("a", "1"),
                Header {
                    name: "a".into(),
                    value: None,
                },
            ],
            _ => vec![Header::new("ñandú", "☃ \"quoted\"\n")],
        },
        key: if i % 5 == 4 {
            None
        } else {
            Some(format!("key-{}", i % 7))
        },
        payload: if i % 11 == 10 {
            None
        } else {
            Some(format!(r#"{{"n":{i},"text":"línea\t{i}"}}"#))
        },
    }
}

async fn replay_all(input: &[Envelope]) {
    replay(
        &testing::config(),
        input,
        &ReplayOptions::default(),
        CancellationToken::new(),
        |_| {},
    )
    .await
    .unwrap();
}

async fn record_all(topics: &[String]) -> Vec<Envelope> {
    let mut w = EnvelopeWriter::new(Vec::new());
    let opts = RecordOptions {
        topics: topics.to_vec(),
        from_beginning: true,
        stop: Stop::AtEnd,
    };
    record(&testing::config(), &opts, &mut w, CancellationToken::new())
        .await
        .unwrap();
    EnvelopeReader::new(&w.into_inner()[..])
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_then_record_returns_the_input() {
    let (a, b) = (unique("rr-a"), unique("rr-b"));
    let input: Vec<Envelope> = (0..120)
        .map(|i| envelope(if i % 2 == 0 { &a } else { &b }, (i % 3) as i32, i))
        .collect();
    let summary = replay(
        &testing::config(),
        &input,
        &ReplayOptions::default(),
        CancellationToken::new(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(summary.sent, 120);
    assert_eq!(summary.per_topic[&a].records, 60);
    assert!(summary.complete);

    let recorded = record_all(&[a.clone(), b.clone()]).await;
    assert_eq!(recorded.len(), input.len());
    assert!(
        recorded
            .iter()
            .all(|r| r.tstype == Some(TimestampType::Create) && r.broker == 1)
    );
    assert_eq!(by_partition(&recorded), by_partition(&input));
    // Offsets are dense from 0 in each partition.
    for ((_, _), n) in by_partition(&recorded).iter().map(|(k, v)| (k, v.len())) {
        assert_eq!(n, 20);
    }
}

/// A recording in a file is sent as `plan` orders the same records in memory, shuffled and with
/// duplicates, blank lines skipped: the file is read twice, never held. A bad line is found
/// before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_in_a_file_is_replayed_in_the_planned_order() {
    use atenex_kafka::replay::{Order, Recording, plan};
    use std::io::Write as _;
    let topic = unique("file-replay");
    let input: Vec<Envelope> = (0..300).map(|i| envelope(&topic, 0, i)).collect();
    let mut file = tempfile::tempfile().unwrap();
    for (i, e) in input.iter().enumerate() {
        if i % 50 == 7 {
            file.write_all(b"  \n").unwrap();
        }
        file.write_all(serde_json::to_string(e).unwrap().as_bytes())
            .unwrap();
        file.write_all(b"\n").unwrap();
    }
    let opts = ReplayOptions {
        order: Order::Shuffle,
        seed: 9,
        max_disorder: std::time::Duration::from_secs(20),
        duplicates: 0.2,
        ..ReplayOptions::default()
    };
    let recording = Recording::check(file.try_clone().unwrap(), &opts)
        .unwrap()
        .unwrap();
    assert_eq!(recording.records(), 300);
    let summary = recording
        .replay(&testing::config(), CancellationToken::new(), |_| {})
        .await
        .unwrap();
    let order = plan(&input, &opts);
    assert_eq!(summary.sent, order.len() as u64);
    assert_eq!(summary.duplicates, order.len() as u64 - 300);
    assert!(summary.duplicates > 20, "{}", summary.duplicates);
    let sent: Vec<Option<String>> = record_all(std::slice::from_ref(&topic))
        .await
        .into_iter()
        .map(|e| e.payload)
        .collect();
    let planned: Vec<Option<String>> = order.iter().map(|&i| input[i].payload.clone()).collect();
    assert_eq!(
        sent, planned,
        "one partition: the order sent is the order recorded"
    );

    file.write_all(b"{\"topic\": 1}\n").unwrap();
    let bad = Recording::check(file, &opts).unwrap().err().unwrap();
    assert_eq!(bad.count, 1);
    assert!(bad.first[0].starts_with("line 307: "), "{:?}", bad.first);
}

/// A short topic reaches its end long before a long one with the same partition number: its
/// end-of-partition event must not be taken for the long one's (a flake in the first version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_until_end_waits_for_every_topic_sharing_a_partition_number() {
    let (short, long) = (unique("short"), unique("long"));
    let mut input: Vec<Envelope> = vec![envelope(&short, 0, 0)];
    input.extend((0..400).map(|i| envelope(&long, 0, i)));
    replay_all(&input).await;
    for _ in 0..3 {
        let recorded = record_all(&[short.clone(), long.clone()]).await;
        assert_eq!(recorded.len(), 401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_stops_after_max_records_and_only_sees_new_records_without_from_beginning() {
    let topic = unique("rec-max");
    let input: Vec<Envelope> = (0..30).map(|i| envelope(&topic, 0, i)).collect();
    replay_all(&input).await;

    let mut w = EnvelopeWriter::new(Vec::new());
    let opts = RecordOptions {
        topics: vec![topic.clone()],
        from_beginning: true,
        stop: Stop::MaxRecords(7),
    };
    let s = record(&testing::config(), &opts, &mut w, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(s.records, 7);
    assert_eq!(w.written(), 7);

    // Without --from-beginning, --until-end has nothing to wait for: it returns at once.
    let mut w = EnvelopeWriter::new(Vec::new());
    let opts = RecordOptions {
        topics: vec![topic.clone()],
        from_beginning: false,
        stop: Stop::AtEnd,
    };
    let s = record(&testing::config(), &opts, &mut w, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(s.records, 0);

    let missing = unique("missing");
    let opts = RecordOptions {
        topics: vec![missing.clone()],
        from_beginning: true,
        stop: Stop::AtEnd,
    };
    let err = record(
        &testing::config(),
        &opts,
        &mut EnvelopeWriter::new(Vec::new()),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("topic {missing} does not exist")),
        "{err:#}"
    );
}

async fn produce_numbers(topic: &str, partitions: i32, n: i64) {
    create_topics(
        &testing::config(),
        &[TopicSpec {
            name: topic.to_owned(),
            partitions,
            replication: None,
        }],
    )
    .await
    .unwrap();
    let producer = Producer::new(&testing::config()).unwrap();
    let mut pipeline = atenex_kafka::producer::Pipeline::new(&producer, 1000);
    for i in 0..n {
        let key = format!("k{}", i % 17);
        let value = i.to_string();
        pipeline
            .push(OutRecord::new(
                topic,
                Some(key.as_bytes()),
                Some(value.as_bytes()),
            ))
            .await
            .unwrap();
    }
    pipeline.finish().await.unwrap();
}

fn settings(group: &str, topic: &str) -> GroupSettings {
    let mut s = GroupSettings::new(group, &[topic]);
    s.max_batch = 50;
    s
}

/// Runs the group until it has seen `stop_after` records (then shuts down gracefully), and
/// returns the (partition, offset) pairs it handled.
async fn consume_until(group: &str, topic: &str, stop_after: usize) -> Vec<(i32, i64)> {
    let consumer = GroupConsumer::new(&testing::config(), settings(group, topic)).unwrap();
    let token = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (t, s) = (token.clone(), seen.clone());
    let summary = consumer
        .run(token, async |batch: &[Record]| {
            let mut s = s.lock().unwrap();
            s.extend(batch.iter().map(|r| (r.partition, r.offset)));
            if s.len() >= stop_after {
                t.cancel();
            }
            Ok(())
        })
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(summary.records as usize, seen.len());
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_group_resumes_after_restart_without_loss_or_duplication() {
    let topic = unique("resume");
    let group = unique("g-resume");
    produce_numbers(&topic, 3, 1000).await;

    let first = consume_until(&group, &topic, 300).await;
    assert!(
        first.len() >= 300 && first.len() < 1000,
        "first run saw {}",
        first.len()
    );
    let second = consume_until(&group, &topic, 1000 - first.len()).await;

    let mut all: Vec<(i32, i64)> = first.iter().chain(&second).copied().collect();
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), total, "no record was handled twice");
    assert_eq!(total, 1000, "no record was lost");
}

/// Pipelined batches: several are in flight at once (never more records than the bound), their
/// tasks end in any order (an early batch is the slowest), yet they finish and commit in the
/// order consumed; when one fails, the offsets committed stop at its first record, although
/// later batches' tasks were done — a restart resumes exactly there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batches_finish_and_commit_in_order() {
    let topic = unique("pipelined");
    let group = unique("g-pipelined");
    produce_numbers(&topic, 1, 400).await;
    let mut s = settings(&group, &topic);
    s.max_batch = 20;
    let consumer = GroupConsumer::new(&testing::config(), s).unwrap();
    let in_flight = Arc::new(Mutex::new((0usize, 0usize))); // (now, most)
    let mut finished: Vec<(i64, i64)> = Vec::new();
    let failed = Arc::new(Mutex::new(None));
    let run = consumer
        .run_pipelined(
            CancellationToken::new(),
            70,
            |batch| {
                let in_flight = in_flight.clone();
                {
                    let mut f = in_flight.lock().unwrap();
                    f.0 += batch.len();
                    f.1 = f.1.max(f.0);
                }
                tokio::spawn(async move {
                    let first = batch[0].offset;
                    // The batches holding offsets 100..160 take longest.
                    let slow = batch.iter().any(|r| (100..160).contains(&r.offset));
                    tokio::time::sleep(std::time::Duration::from_millis(if slow {
                        400
                    } else {
                        5
                    }))
                    .await;
                    anyhow::Ok((first, batch.last().unwrap().offset))
                })
            },
            async |batch, (first, last)| {
                in_flight.lock().unwrap().0 -= batch.len();
                if (first..=last).contains(&250) {
                    *failed.lock().unwrap() = Some(first);
                    anyhow::bail!("boom");
                }
                finished.push((first, last));
                Ok(())
            },
        )
        .await;
    let e = run.unwrap_err();
    assert!(format!("{e:#}").contains("boom"), "{e:#}");
    let most = in_flight.lock().unwrap().1;
    assert!(most > 20 && most <= 70, "records in flight at most: {most}");
    assert_eq!(finished[0].0, 0);
    for pair in finished.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].1 + 1,
            "in order, none skipped: {finished:?}"
        );
    }
    let failed = failed.lock().unwrap().unwrap();
    assert_eq!(finished.last().unwrap().1 + 1, failed);
    // A restart resumes at the failed batch's first record.
    let again = consume_until(&group, &topic, 1).await;
    assert_eq!(again[0], (0, failed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_loop_publishes_records_in_lag_and_commit_latency() {
    let metrics = atenex_kafka::observe::metrics();
    let topic = unique("metrics");
    produce_numbers(&topic, 1, 200).await;
    // Statistics (the source of the lag gauge) every 100 ms instead of 5 s.
    let config = testing::config().with("statistics.interval.ms", "100");
    let consumer = GroupConsumer::new(&config, settings(&unique("g-metrics"), &topic)).unwrap();
    let token = CancellationToken::new();
    let (t, seen) = (token.clone(), Arc::new(Mutex::new(0usize)));
    consumer
        .run(token, async |batch: &[Record]| {
            // Slow enough that statistics are published while records are still waiting.
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            let mut n = seen.lock().unwrap();
            *n += batch.len();
            if *n >= 200 {
                t.cancel();
            }
            Ok(())
        })
        .await
        .unwrap();
    let text = metrics.render();
    assert!(
        text.contains(&format!("atenex_records_in_total{{topic=\"{topic}\"}} 200")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "atenex_consumer_lag{{topic=\"{topic}\",partition=\"0\"}}"
        )),
        "{text}"
    );
    assert!(
        text.contains("atenex_commit_seconds_bucket{le=\"0.005\"}"),
        "{text}"
    );
    assert!(text.contains("atenex_records_out_total{topic=\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_is_not_committed_and_comes_again() {
    let topic = unique("fail");
    let group = unique("g-fail");
    produce_numbers(&topic, 1, 10).await;

    let consumer = GroupConsumer::new(&testing::config(), settings(&group, &topic)).unwrap();
    let err = consumer
        .run(CancellationToken::new(), async |_batch: &[Record]| {
            anyhow::bail!("disk full")
        })
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("disk full"), "{err:#}");
    assert!(format!("{err:#}").contains("not committed"), "{err:#}");
    drop(consumer);

    let again = consume_until(&group, &topic, 10).await;
    assert_eq!(
        again.iter().map(|p| p.1).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_record_goes_to_the_dlq_with_its_reason_and_the_next_good_one_is_processed() {
    let topic = unique("chunks");
    let dlq = format!("{topic}.dlq");
    let group = unique("g-dlq");
    create_topics(
        &testing::config(),
        &[
            TopicSpec {
                name: topic.clone(),
                partitions: 1,
                replication: None,
            },
            TopicSpec {
                name: dlq.clone(),
                partitions: 1,
                replication: None,
            },
        ],
    )
    .await
    .unwrap();
    let doc = "0b8f3a2e-6a8e-4c1e-9d2f-1f2e3d4c5b6a";
    let good = format!(
        r#"{{"chunk_id":"{doc}_0","document_id":"{doc}","company_id":"c1","text":"hola","page":1}}"#
    );
    let producer = Producer::new(&testing::config()).unwrap();
    let mut bad = OutRecord::new(
        &topic,
        Some(doc.as_bytes()),
        Some(br#"{"chunk_id":"oops"}"#),
    );
    bad.headers = &[("origin", Some(b"test"))];
    bad.timestamp = Some(1_764_201_600_000);
    producer.send(bad).await.unwrap();
    producer
        .send(OutRecord::new(
            &topic,
            Some(doc.as_bytes()),
            Some(good.as_bytes()),
        ))
        .await
        .unwrap();

    let dead = DeadLetters::new(producer.clone(), "test-stage");
    let processed = Arc::new(Mutex::new(Vec::new()));
    let token = CancellationToken::new();
    let consumer = GroupConsumer::new(&testing::config(), settings(&group, &topic)).unwrap();
    let (p, t) = (processed.clone(), token.clone());
    consumer
        .run(token, async |batch: &[Record]| {
            for r in batch {
                match decode::<ChunkProcessed>(r.payload.as_deref().unwrap_or_default()) {
                    Ok(chunk) => p.lock().unwrap().push(chunk.chunk_id.to_string()),
                    Err(e) => dead.route(r, &e.to_string()).await?,
                }
                if r.offset == 1 {
                    t.cancel();
                }
            }
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(*processed.lock().unwrap(), vec![format!("{doc}_0")]);

    let dead_letters = record_all(&[dlq]).await;
    assert_eq!(dead_letters.len(), 1);
    let d = &dead_letters[0];
    assert_eq!(d.payload.as_deref(), Some(r#"{"chunk_id":"oops"}"#));
    assert_eq!(d.key.as_deref(), Some(doc));
    assert_eq!(d.ts, Some(1_764_201_600_000));
    assert_eq!(
        d.header("origin"),
        Some("test"),
        "original headers are kept"
    );
    assert_eq!(
        d.header(dlq_headers::REASON),
        Some(
            "chunks.processed: field `chunk_id`: must be \"{document_id}_{chunk_index}\": no `_` found"
        )
    );
    assert_eq!(d.header(dlq_headers::STAGE), Some("test-stage"));
    assert_eq!(d.header(dlq_headers::TOPIC), Some(topic.as_str()));
    assert_eq!(d.header(dlq_headers::PARTITION), Some("0"));
    assert_eq!(d.header(dlq_headers::OFFSET), Some("0"));
    assert_eq!(d.header(dlq_headers::TIMESTAMP), Some("1764201600000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_create_is_idempotent() {
    let name = unique("idem");
    let spec = [TopicSpec {
        name: name.clone(),
        partitions: 3,
        replication: Some(1),
    }];
    let first = create_topics(&testing::config(), &spec).await.unwrap();
    assert_eq!(
        first,
        vec![(name.clone(), TopicOutcome::Created { partitions: 3 })]
    );
    let again = create_topics(&testing::config(), &spec).await.unwrap();
    assert_eq!(
        again,
        vec![(name.clone(), TopicOutcome::Existed { partitions: 3 })]
    );
    let too_many = [TopicSpec {
        name: unique("rf"),
        partitions: 1,
        replication: Some(3),
    }];
    let err = create_topics(&testing::config(), &too_many)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot create topic"), "{err:#}");
}

fn kcat() -> Command {
    let probe = Command::new("kcat").arg("-V").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "kcat is needed for this test: apt-get install kcat (ci/test installs it)"
    );
    Command::new("kcat")
}

/// `kcat -C -J -e` of a whole topic, read with our envelope reader.
fn kcat_consume(topic: &str) -> Vec<Envelope> {
    let out = kcat()
        .args([
            "-C",
            "-J",
            "-e",
            "-q",
            "-b",
            testing::bootstrap(),
            "-t",
            topic,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    EnvelopeReader::new(&out.stdout[..])
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_reads_what_we_produce_and_we_read_what_kcat_produces() {
    // Ours → kcat.
    let topic = unique("to-kcat");
    let input: Vec<Envelope> = (0..40)
        .map(|i| envelope(&topic, (i % 2) as i32, i))
        .collect();
    replay_all(&input).await;
    let from_kcat = kcat_consume(&topic);
    assert_eq!(by_partition(&from_kcat), by_partition(&input));

    // kcat → ours.
    let topic = unique("from-kcat");
    create_topics(
        &testing::config(),
        &[TopicSpec {
            name: topic.clone(),
            partitions: 1,
            replication: None,
        }],
    )
    .await
    .unwrap();
    let lines = "k1:{\"a\":1}\nk2:{\"b\":\"ñ ☃\"}\n:no key here\n";
    let mut child = kcat()
        .args([
            "-P",
            "-b",
            testing::bootstrap(),
            "-t",
            &topic,
            "-p",
            "0",
            "-K:",
            "-H",
            "h1=v1",
            "-H",
            "empty=",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let ours = record_all(std::slice::from_ref(&topic)).await;
    let got: Vec<(Option<&str>, Option<&str>, Option<&str>)> = ours
        .iter()
        .map(|e| (e.key.as_deref(), e.payload.as_deref(), e.header("h1")))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("k1"), Some("{\"a\":1}"), Some("v1")),
            (Some("k2"), Some("{\"b\":\"ñ ☃\"}"), Some("v1")),
            (Some(""), Some("no key here"), Some("v1")),
        ]
    );
    assert_eq!(ours[0].header("empty"), Some(""));
    // And kcat's own -J output of that topic reads back as the same envelopes (offsets, ts, all).
    let kcat_view = kcat_consume(&topic);
    assert_eq!(kcat_view, ours);
}

/// A KRaft cluster id may start with `-` (1 in 64 random ids): the broker must still start (it
/// once failed: Kafka's storage tool read the id as an option).
#[test]
fn a_cluster_id_starting_with_a_dash_starts() {
    use atenex_kafka::broker::{BrokerOptions, JvmBroker};
    let mut broker = JvmBroker::start(&BrokerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        cluster_id: Some("-AAAAAAAAAAAAAAAAAAAAA".to_owned()),
        ..BrokerOptions::default()
    })
    .unwrap();
    assert!(broker.bootstrap().starts_with("127.0.0.1:"));
    broker.stop().unwrap();
}
