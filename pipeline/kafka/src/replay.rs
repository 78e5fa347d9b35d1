//! `atenex replay`: produces every record of a recorded stream to its topic, key and partition,
//! with its original timestamp (CreateTime) and headers.
//!
//! The order is planned by [`plan`], a pure function of the records and the options (and the
//! seed), so the same seed always replays the same sequence:
//! - `recorded`: line order (the arrival order that was recorded);
//! - `shuffle`: event-time order with bounded disorder: each record is delayed by a random amount
//!   in `[0, max_disorder)` of event time, and records are sent in order of `ts + delay`. So a record
//!   never arrives after one whose timestamp is `max_disorder` or more later than its own;
//! - `duplicates` (a probability): each record is, with that probability, sent once more a few
//!   records later (0 to 10 positions), as a redelivery would.

use crate::admin::ensure_partitions;
use crate::config::KafkaConfig;
use crate::producer::{OutRecord, Pipeline, Producer};
use atenex_contracts::Envelope;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Recorded,
    Shuffle,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOptions {
    pub order: Order,
    pub seed: u64,
    /// Largest event-time disorder `shuffle` introduces.
    pub max_disorder: Duration,
    /// Probability that a record is delivered twice.
    pub duplicates: f64,
    /// Records per second; `None` is as fast as possible.
    pub rate: Option<f64>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            order: Order::Recorded,
            seed: 0,
            max_disorder: Duration::from_secs(5),
            duplicates: 0.0,
            rate: None,
        }
    }
}

/// Farthest (in records) a duplicate is sent after its original.
pub const MAX_DUPLICATE_GAP: usize = 10;

/// The send order: indices into `records`, an index appearing twice for a duplicate.
pub fn plan(records: &[Envelope], opts: &ReplayOptions) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut order: Vec<usize> = (0..records.len()).collect();
    if opts.order == Order::Shuffle {
        let span = opts.max_disorder.as_millis().min(i64::MAX as u128) as i64;
        // Records without a timestamp keep the last timestamp seen before them.
        let mut last = 0i64;
        let mut keys: Vec<(i64, usize)> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if let Some(ts) = r.ts {
                    last = ts;
                }
                let delay = if span > 0 {
                    rng.random_range(0..span)
                } else {
                    0
                };
                (last.saturating_add(delay), i)
            })
            .collect();
        keys.sort_unstable();
        order = keys.into_iter().map(|(_, i)| i).collect();
    }
    if opts.duplicates > 0.0 {
        let p = opts.duplicates.clamp(0.0, 1.0);
        // (position in `order` after which the copy goes, index)
        let mut copies: Vec<(usize, usize)> = Vec::new();
        for (pos, &i) in order.iter().enumerate() {
            if rng.random_bool(p) {
                let gap = rng.random_range(0..=MAX_DUPLICATE_GAP);
                copies.push(((pos + gap).min(order.len() - 1), i));
            }
        }
        copies.sort_by_key(|&(after, _)| after);
        let mut out = Vec::with_capacity(order.len() + copies.len());
        let mut c = copies.into_iter().peekable();
        for (pos, &i) in order.iter().enumerate() {
            out.push(i);
            while let Some(&(_, dup)) = c.peek().filter(|(after, _)| *after == pos) {
                out.push(dup);
                c.next();
            }
        }
        order = out;
    }
    order
}

/// What a replay sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub sent: u64,
    pub duplicates: u64,
    /// Per topic: records sent, first and last timestamp (epoch ms) among them.
    pub per_topic: BTreeMap<String, TopicSummary>,
    pub elapsed: Duration,
    /// False when a signal stopped it early.
    pub complete: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicSummary {
    pub records: u64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
}

/// Produces `records` in the planned order, creating missing topics (and adding partitions)
/// so that every recorded partition exists. `progress` is called after each record with the
/// number sent so far.
pub async fn replay(
    config: &KafkaConfig,
    records: &[Envelope],
    opts: &ReplayOptions,
    shutdown: CancellationToken,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<ReplaySummary> {
    let mut needed: BTreeMap<String, usize> = BTreeMap::new();
    for r in records {
        let n = needed.entry(r.topic.clone()).or_default();
        *n = (*n).max(r.partition as usize + 1);
    }
    ensure_partitions(config, &needed).await?;

    let order = plan(records, opts);
    let producer = Producer::new(config)?;
    let mut pipeline = Pipeline::new(&producer, 10_000);
    let mut summary = ReplaySummary {
        duplicates: (order.len() - records.len()) as u64,
        ..Default::default()
    };
    let started = Instant::now();
    let interval = opts.rate.filter(|r| *r > 0.0).map(|r| 1.0 / r);
    for (n, &i) in order.iter().enumerate() {
        if shutdown.is_cancelled() {
            break;
        }
        if let Some(every) = interval {
            let due = started + Duration::from_secs_f64(every * n as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let r = &records[i];
        let headers: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_deref().map(str::as_bytes)))
            .collect();
        pipeline
            .push(OutRecord {
                topic: &r.topic,
                partition: Some(r.partition),
                key: r.key.as_deref().map(str::as_bytes),
                payload: r.payload.as_deref().map(str::as_bytes),
                timestamp: r.ts,
                headers: &headers,
            })
            .await?;
        let t = summary.per_topic.entry(r.topic.clone()).or_default();
        t.records += 1;
        if let Some(ts) = r.ts {
            t.first_ts = Some(t.first_ts.map_or(ts, |f| f.min(ts)));
            t.last_ts = Some(t.last_ts.map_or(ts, |l| l.max(ts)));
        }
        summary.sent += 1;
        progress(summary.sent);
    }
    pipeline.finish().await?;
    summary.complete = summary.sent == order.len() as u64;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(ts: i64) -> Envelope {
        Envelope {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            tstype: None,
            ts: Some(ts),
            broker: -1,
            headers: vec![],
            key: None,
            payload: Some(ts.to_string()),
        }
    }

    #[test]
    fn recorded_order_is_line_order() {
        let records: Vec<Envelope> = [5, 1, 3].map(rec).to_vec();
        assert_eq!(plan(&records, &ReplayOptions::default()), vec![0, 1, 2]);
    }

    #[test]
    fn shuffle_without_disorder_sorts_by_event_time_stably() {
        let records: Vec<Envelope> = [5, 1, 3, 1].map(rec).to_vec();
        let opts = ReplayOptions {
            order: Order::Shuffle,
            max_disorder: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(plan(&records, &opts), vec![1, 3, 2, 0]);
    }

    proptest! {
        #[test]
        fn shuffle_disorder_is_bounded_and_seeded(
            ts in proptest::collection::vec(0i64..100_000, 1..300),
            disorder_ms in 0u64..20_000,
            seed in any::<u64>(),
        ) {
            let records: Vec<Envelope> = ts.iter().map(|&t| rec(t)).collect();
            let opts = ReplayOptions { order: Order::Shuffle, seed, max_disorder: Duration::from_millis(disorder_ms), ..Default::default() };
            let order = plan(&records, &opts);
            prop_assert_eq!(&order, &plan(&records, &opts), "same seed, same plan");
            let mut sorted = order.clone();
            sorted.sort_unstable();
            prop_assert_eq!(sorted, (0..records.len()).collect::<Vec<_>>(), "a permutation");
            // No record arrives after one that is max_disorder or more younger.
            let mut max_seen = ts[order[0]];
            for &i in &order {
                let t = ts[i];
                prop_assert!(max_seen - t < disorder_ms.max(1) as i64, "ts {} after {}", t, max_seen);
                max_seen = max_seen.max(t);
            }
        }

        #[test]
        fn duplicates_are_copies_sent_soon_after(
            n in 1usize..400, p in 0.0f64..1.0, seed in any::<u64>(),
        ) {
            let records: Vec<Envelope> = (0..n as i64).map(rec).collect();
            let opts = ReplayOptions { duplicates: p, seed, ..Default::default() };
            let order = plan(&records, &opts);
            let mut counts = vec![0usize; n];
            let mut first = vec![usize::MAX; n];
            for (pos, &i) in order.iter().enumerate() {
                counts[i] += 1;
                if counts[i] == 1 { first[i] = pos; } else {
                    // The copy comes after the original, at most MAX_DUPLICATE_GAP originals later.
                    let originals_between = (first[i] + 1..pos).filter(|&k| first[order[k]] == k).count();
                    prop_assert!(originals_between <= MAX_DUPLICATE_GAP);
                }
            }
            prop_assert!(counts.iter().all(|&c| c == 1 || c == 2));
            let dups = counts.iter().filter(|&&c| c == 2).count();
            // Loose statistical bound: mean n*p, never more than n.
            prop_assert!(dups <= n);
            if n >= 200 && (0.2..0.8).contains(&p) {
                let expected = n as f64 * p;
                prop_assert!((dups as f64 - expected).abs() < 6.0 * (expected * (1.0 - p)).sqrt() + 5.0, "{} vs {}", dups, expected);
            }
        }
    }
}
