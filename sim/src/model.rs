//! The model driver: the log in memory, virtual time, the production cores.
//!
//! Delivery: each partition is consumed in offset order; across partitions, the record that
//! arrived first goes first; processing time is the arrival time (never going back). The analytics
//! core sees every record once and is drained at the end (every window fires). The landing sink
//! writes to an in-memory filesystem; at each crash step the filesystem is made to fail within
//! the next few effects (possibly in the middle of a commit), the unsynced bytes are lost, a new
//! sink recovers from what is there, and each partition is consumed again from where recovery
//! says (nothing committed: from the beginning).

use crate::check::ReportRows;
use crate::generate::{Rec, generate};
use crate::scenario::Scenario;
use atenex_analytics::core::{
    Checkpoint, Event, LateRecord, Output, PartitionCheckpoint, Settings, WindowCore, WindowResult,
};
use atenex_landing::config::LandingConfig;
use atenex_landing::fs::MemFs;
use atenex_landing::sink::Sink;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

pub const TOPIC: &str = "embeddings.ready";

/// What a run produced.
pub struct Outcome {
    pub log: Vec<Vec<Rec>>,
    /// What the analytics job committed (windows and late records), crashes included.
    pub windows: Vec<WindowResult>,
    pub late: Vec<LateRecord>,
    pub analytics_crashes: usize,
    /// With analytics crashes and partition idleness switched off: what the crashed run
    /// committed, and what a run without crashes committed (they must agree).
    #[allow(clippy::type_complexity)]
    pub reference: Option<(
        (Vec<WindowResult>, Vec<LateRecord>),
        (Vec<WindowResult>, Vec<LateRecord>),
    )>,
    pub fs: MemFs,
    pub config: LandingConfig,
    /// The topic as the landing named its files (the broker driver's is unique per run).
    pub topic: String,
    pub crashes: Vec<Crash>,
    /// The daily report of each day: date (YYYY-MM-DD) → rows.
    pub reports: BTreeMap<String, ReportRows>,
}

/// One landing crash: where it happened and where recovery resumed each partition.
#[derive(Debug, Clone)]
pub struct Crash {
    pub step: usize,
    pub resume: BTreeMap<i32, Option<i64>>,
    /// Max committed end + 1 per partition, read from the files after the crash.
    pub committed_end: BTreeMap<i32, Option<i64>>,
}

/// Where the faults strike, the same in both drivers: each step is the index, in delivery order,
/// of the input record before whose first delivery the fault happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Analytics crashes.
    pub analytics: Vec<usize>,
    /// Landing crashes: the step, and how many filesystem effects still succeed after it.
    pub landing: Vec<(usize, usize)>,
}

pub fn plan(scenario: &Scenario, seed: u64, records: usize) -> Plan {
    let total = records.max(1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xA1A1_7105);
    let mut analytics: Vec<usize> = (0..scenario.faults.analytics_crashes)
        .map(|_| rng.random_range(0..total))
        .collect();
    analytics.sort();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_CAFE);
    let mut steps: Vec<usize> = (0..scenario.faults.landing_crashes)
        .map(|_| rng.random_range(0..total))
        .collect();
    steps.sort();
    let landing = steps
        .into_iter()
        .map(|s| (s, rng.random_range(0..4)))
        .collect();
    Plan { analytics, landing }
}

pub fn landing_config(scenario: &Scenario, topic: &str) -> anyhow::Result<LandingConfig> {
    let text = format!(
        "name=sim\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\ntopics={topic}\n\
         hdfs.url=file:///sim\ntopics.dir=/atenex/kafka-landing\nlogs.dir=/atenex/kafka-connect/logs\n\
         format.class=io.confluent.connect.hdfs3.format.json.JsonFormat\nflush.size={}\nrotate.interval.ms=600000\n\
         partitioner.class=io.confluent.connect.storage.partitioner.TimeBasedPartitioner\npartition.duration.ms=3600000\n\
         path.format='year'=YYYY/'month'=MM/'day'=dd/'hour'=HH\nlocale=en_US\ntimezone=UTC\n",
        scenario.landing.flush_size
    );
    LandingConfig::from_properties(&text, Vec::new()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The delivery order: (partition, offset) by arrival, each partition in offset order.
pub fn merged(log: &[Vec<Rec>]) -> Vec<(i32, i64)> {
    let mut all: Vec<(i64, i32, i64)> = log
        .iter()
        .flatten()
        .map(|r| (r.arrival, r.partition, r.offset))
        .collect();
    all.sort();
    // Arrival order may differ from offset order inside a partition only on ties; offsets win.
    let mut next = vec![0i64; log.len()];
    all.iter()
        .map(|(_, p, _)| {
            let o = next[*p as usize];
            next[*p as usize] += 1;
            (*p, o)
        })
        .collect()
}

pub fn run(scenario: &Scenario, seed: u64) -> anyhow::Result<Outcome> {
    let log = generate(&scenario.generate, seed)?;
    let config = landing_config(scenario, TOPIC)?;
    let order = merged(&log);
    let plan = plan(scenario, seed, order.len());

    let first = order
        .first()
        .map_or(0, |(p, o)| log[*p as usize][*o as usize].arrival);
    // Analytics: with the scenario's crashes, and (when it has any) without, for the comparison.
    let batch = scenario.faults.analytics_batch.max(1);
    let settings = Settings::default();
    let (windows, late, analytics_crashes) =
        analytics(&log, first, &plan.analytics, batch, settings);
    // Restarts are transparent where event time alone decides: with partition idleness (a
    // processing-time rule) switched off, the crashed run must equal a run without crashes. With
    // idleness on they may differ (a replay happens later in processing time), and only the
    // counting invariants hold.
    let reference = (!plan.analytics.is_empty()).then(|| {
        let no_idle = Settings {
            idle_timeout_ms: i64::MAX / 4,
            ..settings
        };
        let (cw, cl, _) = analytics(&log, first, &plan.analytics, batch, no_idle);
        let (w, l, _) = analytics(&log, first, &[], batch, no_idle);
        ((cw, cl), (w, l))
    });

    // Landing, with crashes.
    let partitions = log.len() as i32;
    let mut sink = Sink::new(MemFs::new(), config.clone(), false);
    let mut pos = open_all(&mut sink, partitions)?;
    let mut crashes = Vec::new();
    let mut step = 0usize;
    let mut now = first;
    let mut armed = plan.landing.iter().peekable();
    // Records delivered at least once, per partition, and in all.
    let mut fresh_below = vec![0i64; log.len()];
    let mut fresh = 0usize;
    loop {
        // The partition whose next record arrived first.
        let next = (0..partitions)
            .filter(|p| (pos[p] as usize) < log[*p as usize].len())
            .min_by_key(|p| (log[*p as usize][pos[p] as usize].arrival, *p));
        let first_delivery = next.is_some_and(|p| pos[&p] >= fresh_below[p as usize]);
        if (first_delivery || next.is_none())
            && let Some((_, effects)) = armed.next_if(|(s, _)| *s <= fresh || next.is_none())
        {
            sink.fs.crash_after(*effects);
        }
        let result = match next {
            Some(p) => {
                let r = &log[p as usize][pos[&p] as usize];
                if first_delivery {
                    fresh_below[p as usize] = r.offset + 1;
                    fresh += 1;
                }
                now = now.max(r.arrival);
                // The configured extractor, as the live job applies it (the seed's file: the
                // wall clock, i.e. processing time).
                let value = r.value();
                let ts = atenex_landing::sink::extract_timestamp(
                    &config.timestamp_extractor,
                    Some(r.ts),
                    &value,
                    now,
                )
                .map_err(anyhow::Error::msg)?;
                sink.tick(now)
                    .and_then(|()| sink.write(TOPIC, p, r.offset, ts, &value, now))
                    .map(|()| {
                        *pos.get_mut(&p).expect("a partition") += 1;
                        false
                    })
            }
            None => sink.flush_all().map(|()| true),
        };
        step += 1;
        match result {
            Ok(true) => break,
            Ok(false) => {}
            Err(_) => {
                // The process died: recover from the filesystem.
                let mut fs = std::mem::take(&mut sink.fs);
                fs.crash();
                sink = Sink::new(fs, config.clone(), false);
                let resume = open_all_raw(&mut sink, partitions)?;
                let committed_end = (0..partitions)
                    .map(|p| (p, committed_end(&sink.fs, &config, TOPIC, p)))
                    .collect();
                pos = resume.iter().map(|(p, o)| (*p, o.unwrap_or(0))).collect();
                crashes.push(Crash {
                    step,
                    resume,
                    committed_end,
                });
            }
        }
    }
    let reports = crate::check::daily_reports(&sink.fs, &config, TOPIC, &scenario.report.days);
    Ok(Outcome {
        log,
        windows,
        late,
        analytics_crashes,
        reference,
        fs: sink.fs,
        config,
        topic: TOPIC.to_owned(),
        crashes,
        reports,
    })
}

fn open_all_raw(
    sink: &mut Sink<MemFs>,
    partitions: i32,
) -> anyhow::Result<BTreeMap<i32, Option<i64>>> {
    (0..partitions)
        .map(|p| Ok((p, sink.open(TOPIC, p)?)))
        .collect()
}

fn open_all(sink: &mut Sink<MemFs>, partitions: i32) -> anyhow::Result<BTreeMap<i32, i64>> {
    Ok(open_all_raw(sink, partitions)?
        .into_iter()
        .map(|(p, o)| (p, o.unwrap_or(0)))
        .collect())
}

/// Max committed end + 1 of a partition, from the committed file names.
pub fn committed_end(
    fs: &MemFs,
    config: &LandingConfig,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    use atenex_landing::fs::Fs as _;
    fs.list(&format!("{}/{topic}", config.topics_dir))
        .ok()?
        .iter()
        .filter_map(|f| atenex_landing::recovery::parse_committed(f, topic))
        .filter(|(q, _, _)| *q == partition)
        .map(|(_, _, e)| e + 1)
        .max()
}

/// The analytics job as `atenex analytics --drain` runs it: records in transactions of `batch`;
/// each commit publishes the transaction's outputs with the core's checkpoint; a crash at one of
/// `crash_steps` loses the open transaction, and the restarted job restores a fresh core from the
/// last checkpoint and consumes each partition again from its resume offset.
fn analytics(
    log: &[Vec<Rec>],
    first: i64,
    crash_steps: &[usize],
    batch: usize,
    settings: Settings,
) -> (Vec<WindowResult>, Vec<LateRecord>, usize) {
    let partitions = log.len() as i32;
    let fresh = |checkpoint: Option<&Checkpoint>, now: i64| {
        let mut core = WindowCore::new(settings);
        if let Some(c) = checkpoint {
            core.restore(c, now);
        }
        for p in 0..partitions {
            core.assign(p, now);
        }
        core
    };
    let mut core = fresh(None, first);
    let mut committed: Vec<Output> = Vec::new();
    let mut pending: Vec<Output> = Vec::new();
    // What Kafka holds: per partition, the last committed offset and its metadata (a commit that
    // does not name a partition leaves its earlier one), as `atenex analytics` commits them.
    let mut committed_offsets: BTreeMap<i32, (PartitionCheckpoint, Option<i64>)> = BTreeMap::new();
    let mut pos: Vec<i64> = vec![0; log.len()];
    let mut in_batch = 0;
    let mut crashes = 0;
    let mut steps = crash_steps.iter().peekable();
    let mut now = first;
    // Records delivered at least once, per partition, and in all.
    let mut fresh_below = vec![0i64; log.len()];
    let mut delivered = 0usize;
    loop {
        let next = (0..partitions)
            .filter(|p| (pos[*p as usize] as usize) < log[*p as usize].len())
            .min_by_key(|p| (log[*p as usize][pos[*p as usize] as usize].arrival, *p));
        let first_delivery = next.is_some_and(|p| pos[p as usize] >= fresh_below[p as usize]);
        if first_delivery && steps.next_if(|s| **s <= delivered).is_some() {
            // The process died: the open transaction is lost.
            pending.clear();
            in_batch = 0;
            crashes += 1;
            // The restarted job reads the committed offsets back (checkpoint_from in live.rs).
            let checkpoint = Checkpoint {
                watermark: committed_offsets.values().filter_map(|(_, wm)| *wm).max(),
                partitions: committed_offsets.values().map(|(c, _)| *c).collect(),
            };
            core = fresh(Some(&checkpoint), now);
            for (p, at) in pos.iter_mut().enumerate() {
                *at = committed_offsets
                    .get(&(p as i32))
                    .map_or(0, |(c, _)| c.resume_offset);
            }
            // The restarted job reads the partitions again from there.
            continue;
        }
        let Some(p) = next else { break };
        let r = &log[p as usize][pos[p as usize] as usize];
        if first_delivery {
            fresh_below[p as usize] = r.offset + 1;
            delivered += 1;
        }
        now = now.max(r.arrival);
        core.on_tick(now, &mut pending);
        core.handle(
            &Event {
                partition: r.partition,
                offset: r.offset,
                ts: r.ts,
                chunk_id: &r.chunk,
                document_id: &r.document,
                company_id: &r.company,
            },
            now,
            &mut pending,
        );
        pos[p as usize] += 1;
        in_batch += 1;
        if in_batch == batch {
            committed.append(&mut pending);
            let checkpoint = core.checkpoint();
            for c in checkpoint.partitions {
                committed_offsets.insert(c.partition, (c, checkpoint.watermark));
            }
            in_batch = 0;
        }
    }
    // Drained: every window fires, in the last transaction.
    core.finish(&mut pending);
    committed.append(&mut pending);
    let (mut windows, mut late) = (Vec::new(), Vec::new());
    for o in committed {
        match o {
            Output::Window(w) => windows.push(w),
            Output::Late(l) => late.push(l),
        }
    }
    (windows, late, crashes)
}
