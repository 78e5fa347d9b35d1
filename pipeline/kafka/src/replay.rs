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
use atenex_contracts::{Envelope, EnvelopeReader};
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

/// The random draws of a plan, in the order [`plan`] makes them: the `shuffle` delays of every
/// record in line order first, then the duplicates in send order.
fn draws(opts: &ReplayOptions) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(opts.seed)
}

/// `shuffle`'s sort keys, drawn record by record in line order: the event time (a record without
/// one keeps the last seen before it) plus a random delay below `max_disorder`.
struct ShuffleKeys {
    span: i64,
    last: i64,
}

impl ShuffleKeys {
    fn new(opts: &ReplayOptions) -> Self {
        Self {
            span: opts.max_disorder.as_millis().min(i64::MAX as u128) as i64,
            last: 0,
        }
    }

    fn key(&mut self, ts: Option<i64>, rng: &mut ChaCha8Rng) -> i64 {
        if let Some(ts) = ts {
            self.last = ts;
        }
        let delay = if self.span > 0 {
            rng.random_range(0..self.span)
        } else {
            0
        };
        self.last.saturating_add(delay)
    }
}

/// The duplicates, decided position by position in send order: each record is, with the
/// probability, sent once more after the record `0..=MAX_DUPLICATE_GAP` positions later (the
/// last one at the end). Holds at most the copies not yet due (a few records).
struct Duplicates<T> {
    p: f64,
    /// Originals to send.
    n: usize,
    /// (the position after which it goes, the copy), in the order they were decided.
    pending: std::collections::VecDeque<(usize, T)>,
}

impl<T: Clone> Duplicates<T> {
    fn new(opts: &ReplayOptions, n: usize) -> Self {
        Self {
            p: opts.duplicates,
            n,
            pending: Default::default(),
        }
    }

    /// The original at `pos`: `emit` gets it, then every copy due after it (`true` for a copy).
    fn at(&mut self, pos: usize, item: T, rng: &mut ChaCha8Rng, mut emit: impl FnMut(T, bool)) {
        if self.p > 0.0 && rng.random_bool(self.p.clamp(0.0, 1.0)) {
            let gap = rng.random_range(0..=MAX_DUPLICATE_GAP);
            self.pending
                .push_back(((pos + gap).min(self.n - 1), item.clone()));
        }
        emit(item, false);
        let mut k = 0;
        while k < self.pending.len() {
            if self.pending[k].0 == pos {
                let (_, copy) = self.pending.remove(k).expect("in range");
                emit(copy, true);
            } else {
                k += 1;
            }
        }
    }
}

/// The send order: indices into `records`, an index appearing twice for a duplicate.
pub fn plan(records: &[Envelope], opts: &ReplayOptions) -> Vec<usize> {
    let mut rng = draws(opts);
    let mut order: Vec<usize> = (0..records.len()).collect();
    if opts.order == Order::Shuffle {
        let mut keys = ShuffleKeys::new(opts);
        let mut keyed: Vec<(i64, usize)> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (keys.key(r.ts, &mut rng), i))
            .collect();
        keyed.sort_unstable();
        order = keyed.into_iter().map(|(_, i)| i).collect();
    }
    let mut duplicates = Duplicates::new(opts, order.len());
    let mut out = Vec::with_capacity(order.len());
    for (pos, &i) in order.iter().enumerate() {
        duplicates.at(pos, i, &mut rng, |i, _| out.push(i));
    }
    out
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

/// The topics and partitions that must exist for `records` (topic → partitions).
fn needed<'a>(records: impl IntoIterator<Item = &'a Envelope>) -> BTreeMap<String, usize> {
    let mut needed: BTreeMap<String, usize> = BTreeMap::new();
    for r in records {
        note(&mut needed, r);
    }
    needed
}

fn note(needed: &mut BTreeMap<String, usize>, r: &Envelope) {
    match needed.get_mut(&r.topic) {
        Some(n) => *n = (*n).max(r.partition as usize + 1),
        None => {
            needed.insert(r.topic.clone(), r.partition as usize + 1);
        }
    }
}

/// Produces records one after another, at the rate asked, and keeps the summary.
struct Sender<'p> {
    pipeline: Pipeline<'p>,
    summary: ReplaySummary,
    started: Instant,
    interval: Option<f64>,
}

impl<'p> Sender<'p> {
    fn new(producer: &'p Producer, opts: &ReplayOptions) -> Self {
        Self {
            pipeline: Pipeline::new(producer, 10_000),
            summary: ReplaySummary::default(),
            started: Instant::now(),
            interval: opts.rate.filter(|r| *r > 0.0).map(|r| 1.0 / r),
        }
    }

    async fn send(&mut self, r: &Envelope, copy: bool) -> anyhow::Result<()> {
        if let Some(every) = self.interval {
            let due = self.started + Duration::from_secs_f64(every * self.summary.sent as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let headers: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_deref().map(str::as_bytes)))
            .collect();
        self.pipeline
            .push(OutRecord {
                topic: &r.topic,
                partition: Some(r.partition),
                key: r.key.as_deref().map(str::as_bytes),
                payload: r.payload.as_deref().map(str::as_bytes),
                timestamp: r.ts,
                headers: &headers,
            })
            .await?;
        let t = match self.summary.per_topic.get_mut(&r.topic) {
            Some(t) => t,
            None => self.summary.per_topic.entry(r.topic.clone()).or_default(),
        };
        t.records += 1;
        if let Some(ts) = r.ts {
            t.first_ts = Some(t.first_ts.map_or(ts, |f| f.min(ts)));
            t.last_ts = Some(t.last_ts.map_or(ts, |l| l.max(ts)));
        }
        self.summary.sent += 1;
        self.summary.duplicates += u64::from(copy);
        Ok(())
    }

    async fn finish(mut self, complete: bool) -> anyhow::Result<ReplaySummary> {
        self.pipeline.finish().await?;
        self.summary.complete = complete;
        self.summary.elapsed = self.started.elapsed();
        Ok(self.summary)
    }
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
    ensure_partitions(config, &needed(records)).await?;
    let order = plan(records, opts);
    let producer = Producer::new(config)?;
    let mut sender = Sender::new(&producer, opts);
    let mut seen = vec![false; records.len()];
    for &i in &order {
        if shutdown.is_cancelled() {
            return sender.finish(false).await;
        }
        sender
            .send(&records[i], std::mem::replace(&mut seen[i], true))
            .await?;
        progress(sender.summary.sent);
    }
    sender.finish(true).await
}

/// A recorded stream in a file, read through once by [`Recording::check`]: every line checked,
/// the partitions it needs, and for `shuffle` the send order. Replayed by
/// [`Recording::replay`], which reads it again; memory does not grow with the file, except
/// 16 bytes per record for `shuffle` (its order is a sort of the whole stream).
pub struct Recording {
    file: std::fs::File,
    records: u64,
    needed: BTreeMap<String, usize>,
    /// `shuffle`: (sort key, byte offset of the line), sorted.
    shuffled: Option<Vec<(i64, u64)>>,
    rng: ChaCha8Rng,
    opts: ReplayOptions,
}

/// The bad lines of a recording: how many, and the first ones' messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLines {
    pub count: u64,
    pub first: Vec<String>,
}

/// Bad lines whose messages [`Recording::check`] keeps.
pub const BAD_LINES_SHOWN: usize = 10;

impl Recording {
    /// Reads `file` from its start once. `Ok(Err)`: bad lines (nothing may be sent); `Err`: the
    /// file could not be read.
    pub fn check(
        mut file: std::fs::File,
        opts: &ReplayOptions,
    ) -> std::io::Result<Result<Self, BadLines>> {
        use std::io::Seek as _;
        file.rewind()?;
        let mut rng = draws(opts);
        let mut keys = ShuffleKeys::new(opts);
        let mut shuffled = (opts.order == Order::Shuffle).then(Vec::new);
        let mut needed = BTreeMap::new();
        let mut records = 0;
        let mut bad = BadLines {
            count: 0,
            first: Vec::new(),
        };
        let mut reader = EnvelopeReader::new(std::io::BufReader::with_capacity(1 << 20, &mut file));
        while let Some(r) = reader.next() {
            match r {
                Ok(e) => {
                    records += 1;
                    note(&mut needed, &e);
                    if let Some(s) = &mut shuffled {
                        s.push((keys.key(e.ts, &mut rng), reader.line_start()));
                    }
                }
                Err(e) => {
                    bad.count += 1;
                    if bad.first.len() < BAD_LINES_SHOWN {
                        bad.first.push(e.to_string());
                    }
                }
            }
        }
        drop(reader);
        if bad.count > 0 {
            return Ok(Err(bad));
        }
        if let Some(s) = &mut shuffled {
            // Offsets grow with the line, so this is the order of (key, line).
            s.sort_unstable();
        }
        Ok(Ok(Self {
            file,
            records,
            needed,
            shuffled,
            rng,
            opts: opts.clone(),
        }))
    }

    /// Records in the file.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Produces the records in the planned order (the same as [`plan`] of the same records),
    /// creating missing topics and partitions first. `progress` as [`replay`]'s.
    pub async fn replay(
        self,
        config: &KafkaConfig,
        shutdown: CancellationToken,
        mut progress: impl FnMut(u64),
    ) -> anyhow::Result<ReplaySummary> {
        use std::io::{Seek as _, SeekFrom};
        let Self {
            mut file,
            records,
            needed,
            shuffled,
            mut rng,
            opts,
        } = self;
        ensure_partitions(config, &needed).await?;
        let producer = Producer::new(config)?;
        let mut sender = Sender::new(&producer, &opts);
        let mut duplicates = Duplicates::new(&opts, records as usize);
        let mut due = Vec::new();
        let mut input = std::io::BufReader::with_capacity(1 << 20, &mut file);
        input.seek(SeekFrom::Start(0))?;
        let changed = || anyhow::anyhow!("the recording changed while it was replayed");
        for pos in 0..records as usize {
            if shutdown.is_cancelled() {
                return sender.finish(false).await;
            }
            let envelope = match &shuffled {
                None => EnvelopeReader::new(&mut input).next(),
                Some(order) => {
                    // Within the buffer when the line is near (event-time order mostly is).
                    let at = input.stream_position()?;
                    input.seek_relative(order[pos].1 as i64 - at as i64)?;
                    EnvelopeReader::new(&mut input).next()
                }
            };
            let envelope = envelope.ok_or_else(changed)?.map_err(|_| changed())?;
            duplicates.at(pos, envelope, &mut rng, |e, copy| due.push((e, copy)));
            for (e, copy) in due.drain(..) {
                sender.send(&e, copy).await?;
                progress(sender.summary.sent);
            }
        }
        sender.finish(true).await
    }
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
