//! The job-level decisions of the analytics task, each on a small hand-made stream.

use super::*;
use crate::core::{LateReason, Settings};

const S: i64 = 1_000;
const MIN: i64 = 60 * S;
const DOC: &str = "0b1e2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b";

fn value(company: &str, i: u32) -> Vec<u8> {
    format!(
        r#"{{"chunk_id":"{DOC}_{i}","document_id":"{DOC}","company_id":"{company}","vector":[0.5,0.25]}}"#
    )
    .into_bytes()
}

fn rec(partition: i32, offset: i64, ts: i64, value: &[u8]) -> InputRecord<'_> {
    InputRecord {
        partition,
        offset,
        timestamp: Some(ts),
        value: Some(value),
    }
}

fn fresh(partitions: i32, now: i64) -> AnalyticsTask {
    let mut t = AnalyticsTask::new(Settings::default(), 100);
    let committed: Vec<CommittedOffset> = (0..partitions)
        .map(|partition| CommittedOffset {
            partition,
            offset: None,
            metadata: String::new(),
        })
        .collect();
    t.assign(&committed, now).unwrap();
    t
}

fn windows(tx: &Transaction) -> Vec<(i64, String, u64)> {
    tx.outputs
        .iter()
        .filter_map(|o| match o {
            Output::Window(w) => Some((w.start, w.company_id.clone(), w.count)),
            Output::Late(_) => None,
        })
        .collect()
}

fn lates(tx: &Transaction) -> Vec<(i64, i64, LateReason)> {
    tx.outputs
        .iter()
        .filter_map(|o| match o {
            Output::Late(l) => Some((l.offset, l.ts, l.reason)),
            Output::Window(_) => None,
        })
        .collect()
}

/// What Kafka keeps after a commit: the transaction's offsets replace the earlier ones.
fn keep(kafka: &mut Vec<CommittedOffset>, tx: &Transaction) {
    for o in &tx.offsets {
        kafka.retain(|c| c.partition != o.partition);
        kafka.push(o.clone().into());
    }
    kafka.sort_by_key(|c| c.partition);
}

#[test]
fn checkpoints_round_trip_through_offset_metadata() {
    let m = OffsetMetadata {
        v: 1,
        wm: Some(59_999),
        max_ts: Some(65_000),
        handled: 42,
    };
    let text = serde_json::to_string(&m).unwrap();
    assert_eq!(text, r#"{"v":1,"wm":59999,"max_ts":65000,"handled":42}"#);
    let other = OffsetMetadata {
        v: 1,
        wm: Some(58_000),
        max_ts: None,
        handled: 7,
    };
    let cp = checkpoint_from(&[
        CommittedOffset {
            partition: 0,
            offset: Some(40),
            metadata: text,
        },
        CommittedOffset {
            partition: 1,
            offset: Some(7),
            metadata: serde_json::to_string(&other).unwrap(),
        },
        CommittedOffset {
            partition: 2,
            offset: None,
            metadata: String::new(),
        },
    ])
    .unwrap();
    assert_eq!(cp.watermark, Some(59_999));
    assert_eq!(cp.partitions.len(), 2);
    assert_eq!(
        cp.partitions[0],
        PartitionCheckpoint {
            partition: 0,
            resume_offset: 40,
            handled_offset: 42,
            max_ts: Some(65_000)
        }
    );
    let err = checkpoint_from(&[CommittedOffset {
        partition: 0,
        offset: Some(1),
        metadata: "flink".into(),
    }])
    .unwrap_err();
    assert!(err.to_string().contains("not ours"), "{err}");
}

#[test]
fn a_transaction_carries_the_watermark_and_position_in_each_partitions_metadata() {
    let mut t = fresh(2, 0);
    let (a, b) = (value("acme", 0), value("acme", 1));
    t.record(&rec(0, 0, 10 * S, &a), 0);
    t.record(&rec(1, 0, 20 * S, &b), 0);
    let tx = t.commit(false);
    assert_eq!(tx.records, 2);
    let meta: Vec<(i32, i64, OffsetMetadata)> = tx
        .offsets
        .iter()
        .map(|o| {
            (
                o.partition,
                o.offset,
                serde_json::from_str(&o.metadata).unwrap(),
            )
        })
        .collect();
    // Both records are in an open window: consumption must resume at them.
    let wm = Some(10 * S - 5 * S - 1);
    assert_eq!(
        meta,
        vec![
            (
                0,
                0,
                OffsetMetadata {
                    v: 1,
                    wm,
                    max_ts: Some(10 * S),
                    handled: 1
                }
            ),
            (
                1,
                0,
                OffsetMetadata {
                    v: 1,
                    wm,
                    max_ts: Some(20 * S),
                    handled: 1
                }
            ),
        ]
    );
    // The next transaction is empty until something happens.
    assert!(!t.has_open_work());
}

#[test]
fn only_assigned_partitions_are_committed() {
    let mut t = fresh(1, 0);
    let v = value("acme", 0);
    // A record of a partition this instance does not own (a stale fetch after a rebalance).
    t.record(&rec(3, 0, 10 * S, &v), 0);
    let tx = t.commit(false);
    assert!(tx.offsets.iter().all(|o| o.partition == 0), "{tx:?}");
}

#[test]
fn processing_time_moves_before_each_record() {
    // Partition 1 has a record, partition 0 none: the watermark waits for 0 until it goes idle
    // (60 s of processing time). A record arriving after that is judged against the watermark
    // that idleness released: its window fired, so it is late.
    let mut t = fresh(2, 0);
    let (a, b, c) = (value("acme", 0), value("acme", 1), value("acme", 2));
    t.record(&rec(1, 0, 10 * S, &a), 0);
    t.record(&rec(1, 1, 2 * MIN, &b), 30 * S);
    assert_eq!(t.watermark(), None, "partition 0 holds the watermark back");
    // 61 s later a record of the first window arrives on partition 1.
    t.record(&rec(1, 2, 20 * S, &c), 62 * S);
    let tx = t.commit(false);
    assert_eq!(windows(&tx), vec![(0, "acme".to_owned(), 1)]);
    assert_eq!(lates(&tx), vec![(2, 20 * S, LateReason::Late)]);
}

#[test]
fn a_tick_alone_fires_what_idleness_releases() {
    let mut t = fresh(2, 0);
    let a = value("acme", 0);
    t.record(&rec(1, 0, 10 * S, &a), 0);
    t.record(&rec(1, 1, 2 * MIN, &a), 30 * S);
    let first = t.commit(false);
    assert!(windows(&first).is_empty());
    t.tick(61 * S);
    assert!(t.has_open_work());
    let tx = t.commit(false);
    assert_eq!(tx.records, 0);
    assert_eq!(windows(&tx), vec![(0, "acme".to_owned(), 1)]);
}

#[test]
fn malformed_records_are_dead_letters_once_even_across_a_restart() {
    let mut kafka = Vec::new();
    let mut t = fresh(1, 0);
    let good = value("acme", 0);
    t.record(&rec(0, 0, 10 * S, &good), 0);
    t.record(&rec(0, 1, 11 * S, b"{not json"), 0);
    t.record(
        &InputRecord {
            partition: 0,
            offset: 2,
            timestamp: Some(12 * S),
            value: None,
        },
        0,
    );
    let tx = t.commit(false);
    let letters: Vec<(usize, i64)> = tx
        .dead_letters
        .iter()
        .map(|d| (d.index, d.offset))
        .collect();
    assert_eq!(letters, vec![(1, 1), (2, 2)]);
    assert!(tx.dead_letters[1].reason.contains("null value"), "{tx:?}");
    keep(&mut kafka, &tx);
    // The window holding offset 0 is open, so a restart replays 0..3: the dead letters were
    // committed with that transaction and are not sent again.
    assert_eq!(kafka[0].offset, Some(0));
    let mut t = AnalyticsTask::new(Settings::default(), 100);
    t.assign(&kafka, S).unwrap();
    t.record(&rec(0, 0, 10 * S, &good), S);
    t.record(&rec(0, 1, 11 * S, b"{not json"), S);
    t.record(&rec(0, 3, 13 * S, b"[]"), S);
    let tx = t.commit(true);
    let letters: Vec<i64> = tx.dead_letters.iter().map(|d| d.offset).collect();
    assert_eq!(letters, vec![3], "only the new one");
    assert_eq!(tx.dead_letters[0].index, 2);
    assert_eq!(windows(&tx), vec![(0, "acme".to_owned(), 1)]);
}

#[test]
fn a_restart_from_the_committed_offsets_loses_and_repeats_nothing() {
    let values: Vec<Vec<u8>> = (0..6).map(|i| value("acme", i)).collect();
    let ts = [10 * S, 30 * S, 70 * S, 80 * S, 130 * S, 140 * S];
    // Uninterrupted.
    let mut t = fresh(1, 0);
    for (i, v) in values.iter().enumerate() {
        t.record(&rec(0, i as i64, ts[i], v), 0);
    }
    let clean = windows(&t.commit(true));
    assert_eq!(clean.len(), 3);
    // Committed after three records; the next two are lost in a crash; a new task resumes.
    let mut kafka = Vec::new();
    let mut t = fresh(1, 0);
    for (i, v) in values.iter().enumerate().take(3) {
        t.record(&rec(0, i as i64, ts[i], v), 0);
    }
    let first = t.commit(false);
    keep(&mut kafka, &first);
    for (i, v) in values.iter().enumerate().skip(3).take(2) {
        t.record(&rec(0, i as i64, ts[i], v), 0);
    }
    drop(t);
    let mut t = AnalyticsTask::new(Settings::default(), 100);
    t.assign(&kafka, 0).unwrap();
    let resume = kafka[0].offset.unwrap() as usize;
    // The first window fired before the crash; the second holds offset 2 on.
    assert_eq!(resume, 2);
    for (i, v) in values.iter().enumerate().skip(resume) {
        t.record(&rec(0, i as i64, ts[i], v), 0);
    }
    let second = t.commit(true);
    let mut restarted = windows(&first);
    restarted.extend(windows(&second));
    assert_eq!(restarted, clean);
}

#[test]
fn revocation_drops_the_open_transaction_and_the_state() {
    let mut t = fresh(1, 0);
    let v = value("acme", 0);
    t.record(&rec(0, 0, 10 * S, &v), 0);
    t.revoke();
    assert!(!t.has_open_work());
    assert!(t.assigned().is_empty());
    let tx = t.commit(true);
    assert_eq!(tx, Transaction::default());
}

#[test]
fn foreign_metadata_refuses_the_assignment() {
    let mut t = AnalyticsTask::new(Settings::default(), 100);
    let err = t
        .assign(
            &[CommittedOffset {
                partition: 4,
                offset: Some(9),
                metadata: "{}".into(),
            }],
            0,
        )
        .unwrap_err();
    assert!(format!("{err:#}").contains("partition 4"), "{err:#}");
}

#[test]
fn a_transaction_is_full_at_max_batch_records() {
    let mut t = AnalyticsTask::new(Settings::default(), 2);
    t.assign(
        &[CommittedOffset {
            partition: 0,
            offset: None,
            metadata: String::new(),
        }],
        0,
    )
    .unwrap();
    let v = value("acme", 0);
    t.record(&rec(0, 0, 10 * S, &v), 0);
    assert!(!t.is_full());
    // A dead letter counts as a record of the transaction too.
    t.record(&rec(0, 1, 11 * S, b"{"), 0);
    assert!(t.is_full());
    assert_eq!(t.open_records(), 2);
    assert_eq!(t.commit(false).records, 2);
    assert!(!t.is_full());
    assert_eq!(t.open_records(), 0);
}
