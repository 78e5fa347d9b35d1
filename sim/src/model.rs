//! The model driver: the log in memory, virtual time, the production cores.
//!
//! Delivery: each partition is consumed in offset order; across partitions (and topics), the record
//! that arrived first goes first; processing time is the arrival time (never going back).
//!
//! - Analytics reads `embeddings.ready`: each record is decoded as the live job decodes it (a
//!   malformed one goes to the dead-letter topic with the job's reason), handled by the window
//!   core, and committed in transactions of `analytics_batch` records; a crash loses the open
//!   transaction and a fresh core is restored from the committed checkpoint; at the end the job is
//!   drained (every window fires).
//! - Landing reads every topic and writes to an in-memory filesystem; at each crash step the
//!   filesystem is made to fail after the planned number of effects (possibly in the middle of a
//!   commit), the unsynced bytes are lost, a new sink recovers from what is there, and each
//!   partition is consumed again from where recovery says.
//! - The daily report of each day: the report's own line scanner over the day's committed files,
//!   then the group-by its query computes.

use crate::generate::{EMBEDDINGS, Log};
use crate::scenario::Scenario;
use atenex_analytics::core::{
    Checkpoint, Event, LateRecord, Output, PartitionCheckpoint, Settings, WindowCore, WindowResult,
};
use atenex_analytics::decode::decode_record;
use atenex_landing::config::LandingConfig;
use atenex_landing::fs::{Fs as _, MemFs};
use atenex_landing::sink::Sink;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

/// Report rows: (company, document) → (total chunks, unique chunk ids).
pub type ReportRows = BTreeMap<(String, String), (u64, u64)>;

/// One day's report: its rows and the malformed lines it skipped, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DailyReport {
    Rows {
        rows: ReportRows,
        skipped: u64,
    },
    /// The job's exit code and message (paths relative to the landing tree).
    Failed {
        code: u8,
        message: String,
    },
}

/// A record sent to a dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeadLetter {
    /// The job: `analytics` or `landing`.
    pub stage: String,
    /// The topic it came from (as the scenario names it).
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
}

/// What a run produced.
pub struct Outcome {
    pub log: Log,
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
    /// Committed dead letters of both jobs.
    pub dead_letters: Vec<DeadLetter>,
    pub fs: MemFs,
    pub config: LandingConfig,
    /// What the run put before the scenario's topic names (the broker driver's topics are unique
    /// per run; the model's are the names themselves).
    pub prefix: String,
    pub crashes: Vec<Crash>,
    /// Broker restarts done (the model plans them and has nothing to restart).
    pub broker_restarts: usize,
    /// What the mock OpenAI answered (broker driver, when the embedding stage ran): requests,
    /// 429s, 500s.
    pub openai: Option<(u64, u64, u64)>,
    /// The daily report of each day: date (YYYY-MM-DD) → report.
    pub reports: BTreeMap<String, DailyReport>,
}

/// One landing crash: where it happened and where recovery resumed each partition.
#[derive(Debug, Clone)]
pub struct Crash {
    pub step: usize,
    /// Per (topic, partition), scenario names.
    pub resume: BTreeMap<(String, i32), Option<i64>>,
    /// Max committed end + 1 per partition, read from the files after the crash.
    pub committed_end: BTreeMap<(String, i32), Option<i64>>,
}

/// Where the faults strike, the same in both drivers: each step is the index, in delivery order,
/// of the input record before whose first delivery the fault happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Analytics crashes.
    pub analytics: Vec<usize>,
    /// Landing crashes: the step, and how many filesystem effects still succeed after it.
    pub landing: Vec<(usize, usize)>,
    /// Broker restarts (the broker driver's only: the model has no broker).
    pub broker: Vec<usize>,
}

pub fn plan(scenario: &Scenario, seed: u64, records: usize) -> Plan {
    let total = records.max(1);
    let f = &scenario.faults;
    // Seeded steps, then the scenario's explicit ones (draws only for the seeded ones come
    // first, so adding explicit steps leaves the seeded plan as it was).
    let steps = |rng: &mut rand_chacha::ChaCha8Rng, n: usize, at: &[usize]| {
        let mut v: Vec<usize> = (0..n).map(|_| rng.random_range(0..total)).collect();
        v.extend(at.iter().map(|s| (*s).min(total - 1)));
        v.sort();
        v
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xA1A1_7105);
    let analytics = steps(&mut rng, f.analytics_crashes, &f.analytics_crash_at);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_CAFE);
    let landing = steps(&mut rng, f.landing_crashes, &f.landing_crash_at)
        .into_iter()
        .map(|s| (s, rng.random_range(0..4)))
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xB40C_E125);
    let broker = steps(&mut rng, f.broker_restarts, &f.broker_restart_at);
    Plan {
        analytics,
        landing,
        broker,
    }
}

/// The connector file the scenario's landing runs with; `prefix` goes before each topic name.
pub fn landing_config(
    scenario: &Scenario,
    log: &Log,
    prefix: &str,
) -> anyhow::Result<LandingConfig> {
    let topics: Vec<String> = log
        .topics()
        .into_iter()
        .map(|(t, _)| format!("{prefix}{t}"))
        .collect();
    let text = format!(
        "name=sim\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\ntopics={}\n\
         hdfs.url=file:///sim\ntopics.dir=/atenex/kafka-landing\nlogs.dir=/atenex/kafka-connect/logs\n\
         format.class=io.confluent.connect.hdfs3.format.json.JsonFormat\nflush.size={}\nrotate.interval.ms=600000\n\
         partitioner.class=io.confluent.connect.storage.partitioner.TimeBasedPartitioner\npartition.duration.ms=3600000\n\
         path.format='year'=YYYY/'month'=MM/'day'=dd/'hour'=HH\nlocale=en_US\ntimezone=UTC\nerrors.tolerance={}\n",
        topics.join(","),
        scenario.landing.flush_size,
        scenario.landing.errors_tolerance,
    );
    LandingConfig::from_properties(&text, Vec::new()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The streams of the analytics input, indexed by partition (empty if the log has no
/// `embeddings.ready`).
fn analytics_input(log: &Log) -> Vec<usize> {
    log.streams
        .iter()
        .enumerate()
        .filter(|(_, s)| s.topic == EMBEDDINGS)
        .map(|(i, _)| i)
        .collect()
}

/// The log the jobs see — the scenario's input, and what docproc and the embedding stage make of
/// it if they run — and the records those services refuse.
pub fn full_log(scenario: &Scenario, seed: u64) -> anyhow::Result<(Log, Vec<DeadLetter>)> {
    let mut log = scenario.log(seed)?;
    let mut letters = Vec::new();
    if scenario.chunks() {
        let per_document = scenario
            .generate
            .as_ref()
            .map_or(1, |g| g.chunks_per_document);
        let (chunked, refused) = crate::generate::with_chunks(&log, per_document)?;
        log = chunked;
        letters.extend(refused);
    }
    if scenario.embeds() {
        let (embedded, refused) = crate::generate::with_embeddings(&log)?;
        log = embedded;
        letters.extend(refused);
    }
    Ok((log, letters))
}

pub fn run(scenario: &Scenario, seed: u64) -> anyhow::Result<Outcome> {
    let (log, refused) = full_log(scenario, seed)?;
    let config = landing_config(scenario, &log, "")?;
    let order = log.delivery();
    let plan = plan(scenario, seed, order.len());
    // Each record's index in the delivery order.
    let mut index: Vec<Vec<usize>> = log
        .streams
        .iter()
        .map(|s| vec![0; s.records.len()])
        .collect();
    for (i, (s, o)) in order.iter().enumerate() {
        index[*s][*o as usize] = i;
    }

    let first = order.first().map_or(0, |(s, o)| log.get(*s, *o).arrival);
    // Analytics: with the scenario's crashes, and (when it has any) without, for the comparison.
    let batch = scenario.faults.analytics_batch.max(1);
    let settings = Settings::default();
    let input = analytics_input(&log);
    let arrivals: Vec<i64> = order.iter().map(|(s, o)| log.get(*s, *o).arrival).collect();
    // Decoded once for the (up to three) analytics runs, as the live job decodes each record.
    let decoded: Vec<Vec<Decoded>> = input
        .iter()
        .map(|s| {
            log.streams[*s]
                .records
                .iter()
                .map(|r| {
                    decode_record(r.value.as_deref(), Some(r.ts)).map(|(k, ts)| {
                        (
                            k.chunk_id.into_owned(),
                            k.document_id.into_owned(),
                            k.company_id.into_owned(),
                            ts,
                        )
                    })
                })
                .collect()
        })
        .collect();
    let run_analytics = |crashes: &[usize], settings: Settings| {
        analytics(
            &log, &input, &decoded, &index, &arrivals, crashes, batch, settings,
        )
    };
    let committed = run_analytics(&plan.analytics, settings);
    // Restarts are transparent where event time alone decides: with partition idleness (a
    // processing-time rule) switched off, the crashed run must equal a run without crashes. With
    // idleness on they may differ (a replay happens later in processing time), and only the
    // counting invariants hold.
    let reference = (!plan.analytics.is_empty()).then(|| {
        let no_idle = Settings {
            idle_timeout_ms: i64::MAX / 4,
            ..settings
        };
        let crashed = run_analytics(&plan.analytics, no_idle);
        let clean = run_analytics(&[], no_idle);
        ((crashed.windows, crashed.late), (clean.windows, clean.late))
    });

    let (fs, crashes, mut dead_letters) = landing(&log, &plan, &config, first)?;
    dead_letters.extend(committed.dead_letters);
    dead_letters.extend(refused);
    let reports = daily_reports(&fs, &config, "", &scenario.report.days);
    Ok(Outcome {
        log,
        windows: committed.windows,
        late: committed.late,
        analytics_crashes: committed.crashes,
        reference,
        dead_letters,
        fs,
        config,
        prefix: String::new(),
        crashes,
        broker_restarts: plan.broker.len(),
        openai: None,
        reports,
    })
}

/// The landing job over every topic, with the planned crashes.
#[allow(clippy::type_complexity)]
fn landing(
    log: &Log,
    plan: &Plan,
    config: &LandingConfig,
    first: i64,
) -> anyhow::Result<(MemFs, Vec<Crash>, Vec<DeadLetter>)> {
    let tolerate = matches!(
        config.errors,
        atenex_landing::config::ErrorTolerance::All { .. }
    );
    let mut sink = Sink::new(MemFs::new(), config.clone(), false);
    let mut pos = open_all(&mut sink, log)?;
    let mut crashes = Vec::new();
    let mut dead_letters = Vec::new();
    let mut step = 0usize;
    let mut now = first;
    let mut armed = plan.landing.iter().peekable();
    // Records delivered at least once, per stream, and in all.
    let mut fresh_below = vec![0i64; log.streams.len()];
    let mut fresh = 0usize;
    loop {
        // The stream whose next record arrived first.
        let next = (0..log.streams.len())
            .filter(|s| (pos[*s] as usize) < log.streams[*s].records.len())
            .min_by_key(|s| (log.get(*s, pos[*s]).arrival, *s));
        let first_delivery = next.is_some_and(|s| pos[s] >= fresh_below[s]);
        if (first_delivery || next.is_none())
            && let Some((_, effects)) = armed.next_if(|(s, _)| *s <= fresh || next.is_none())
        {
            sink.fs.crash_after(*effects);
        }
        let result = match next {
            Some(s) => {
                let stream = &log.streams[s];
                let r = log.get(s, pos[s]);
                if first_delivery {
                    fresh_below[s] = r.offset + 1;
                    fresh += 1;
                }
                now = now.max(r.arrival);
                // As the live job: a null value is landed as `null`.
                let value = r.value.as_deref().unwrap_or(b"null");
                match atenex_landing::sink::place(
                    &config.timestamp_extractor,
                    Some(r.ts),
                    value,
                    now,
                ) {
                    Ok((ts, v)) => sink
                        .tick(now)
                        .and_then(|()| {
                            sink.write(&stream.topic, stream.partition, r.offset, ts, &v, now)
                        })
                        .map(|()| {
                            pos[s] += 1;
                            false
                        }),
                    Err(reason) if tolerate => {
                        dead_letters.push(DeadLetter {
                            stage: "landing".into(),
                            topic: stream.topic.clone(),
                            partition: stream.partition,
                            offset: r.offset,
                            reason,
                        });
                        pos[s] += 1;
                        Ok(false)
                    }
                    Err(reason) => anyhow::bail!(
                        "{}[{}]@{}: {reason} (errors.tolerance=all sends such records to the dead-letter topic)",
                        stream.topic,
                        stream.partition,
                        r.offset
                    ),
                }
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
                let crash = recovery(step, &mut sink, log, config, "")?;
                pos = log
                    .streams
                    .iter()
                    .map(|s| crash.resume[&(s.topic.clone(), s.partition)].unwrap_or(0))
                    .collect();
                crashes.push(crash);
            }
        }
    }
    Ok((sink.fs, crashes, dead_letters))
}

/// Recovery of every partition after a crash (what a restarted landing job does on assignment),
/// with the committed ends + 1 read from the file names.
pub fn recovery(
    step: usize,
    sink: &mut Sink<MemFs>,
    log: &Log,
    config: &LandingConfig,
    prefix: &str,
) -> anyhow::Result<Crash> {
    let mut resume = BTreeMap::new();
    let mut committed = BTreeMap::new();
    for s in &log.streams {
        let topic = format!("{prefix}{}", s.topic);
        let key = (s.topic.clone(), s.partition);
        resume.insert(key.clone(), sink.open(&topic, s.partition)?);
        committed.insert(key, committed_end(&sink.fs, config, &topic, s.partition));
    }
    Ok(Crash {
        step,
        resume,
        committed_end: committed,
    })
}

fn open_all(sink: &mut Sink<MemFs>, log: &Log) -> anyhow::Result<Vec<i64>> {
    log.streams
        .iter()
        .map(|s| Ok(sink.open(&s.topic, s.partition)?.unwrap_or(0)))
        .collect()
}

/// Max committed end + 1 of a partition, from the committed file names.
pub fn committed_end(
    fs: &MemFs,
    config: &LandingConfig,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    fs.list(&format!("{}/{topic}", config.topics_dir))
        .ok()?
        .iter()
        .filter_map(|f| atenex_landing::recovery::parse_committed(f, topic))
        .filter(|(q, _, _)| *q == partition)
        .map(|(_, _, e)| e + 1)
        .max()
}

/// The day (YYYY-MM-DD) of a landing path, from its `year=`, `month=` and `day=` directories.
pub fn day_of(path: &str) -> Option<String> {
    let part = |name: &str| {
        path.split('/')
            .find_map(|seg| seg.strip_prefix(name)?.strip_prefix('='))
    };
    Some(format!(
        "{}-{}-{}",
        part("year")?,
        part("month")?,
        part("day")?
    ))
}

/// The daily report of every day the `embeddings.ready` landing tree has and of `extra` days:
/// the report's line scanner (with `--skip-bad-records`) over the day's committed files, in path
/// order as the job reads them, then its group-by; a day without files has no rows (the job runs
/// with `--allow-empty`).
pub fn daily_reports(
    fs: &MemFs,
    config: &LandingConfig,
    prefix: &str,
    extra: &[String],
) -> BTreeMap<String, DailyReport> {
    use atenex_report::arrow::array::Array as _;
    use atenex_report::extract::{Columns, scan_file};
    let topic = format!("{prefix}{EMBEDDINGS}");
    let topic_dir = format!("{}/{topic}", config.topics_dir);
    let mut days: BTreeMap<String, Vec<String>> =
        extra.iter().map(|d| (d.clone(), Vec::new())).collect();
    for path in fs.list(&topic_dir).unwrap_or_default() {
        if atenex_landing::recovery::parse_committed(&path, &topic).is_some()
            && let Some(day) = day_of(&path)
        {
            days.entry(day).or_default().push(path);
        }
    }
    days.into_iter()
        .map(|(day, mut files)| {
            files.sort();
            let mut columns = Columns::default();
            let mut skipped = 0;
            for path in &files {
                let bytes = fs.read(path).ok().flatten().unwrap_or_default();
                // Named as the job names it, relative to the landing tree.
                let name = path
                    .trim_start_matches(&config.topics_dir)
                    .trim_start_matches('/')
                    .replacen(prefix, "", 1);
                match scan_file(&name, &bytes, true, &mut columns) {
                    Ok(stats) => skipped += stats.bad,
                    Err(e) => {
                        return (
                            day,
                            DailyReport::Failed {
                                code: e.code(),
                                message: e.to_string(),
                            },
                        );
                    }
                }
            }
            let (c, d, k) = (
                columns.company_id.finish(),
                columns.document_id.finish(),
                columns.chunk_id.finish(),
            );
            // Borrowed from the columns: no allocation per record.
            let mut groups: BTreeMap<(&str, &str), (u64, BTreeSet<&str>)> = BTreeMap::new();
            for i in 0..c.len() {
                let g = groups.entry((c.value(i), d.value(i))).or_default();
                g.0 += 1;
                if !k.is_null(i) {
                    g.1.insert(k.value(i));
                }
            }
            let rows = groups
                .into_iter()
                .map(|((c, d), (total, ids))| {
                    ((c.to_owned(), d.to_owned()), (total, ids.len() as u64))
                })
                .collect();
            (day, DailyReport::Rows { rows, skipped })
        })
        .collect()
}

/// A record as the analytics job decodes it: chunk, document, company, event time; or the reason
/// it is a dead letter.
type Decoded = Result<(String, String, String, i64), String>;

/// What the analytics job committed.
struct Committed {
    windows: Vec<WindowResult>,
    late: Vec<LateRecord>,
    dead_letters: Vec<DeadLetter>,
    crashes: usize,
}

/// The analytics job as `atenex analytics` runs it, then `--drain`: records in transactions of
/// `batch`; each commit publishes the transaction's outputs and dead letters with the core's
/// checkpoint; a crash (before the first delivery of the input record at one of `crash_steps`)
/// loses the open transaction, and the restarted job restores a fresh core from the last
/// checkpoint and consumes each partition again from its resume offset. `arrivals` are the
/// arrival times of all records (every topic) in delivery order: the clock when a crash strikes
/// is that of the record delivered last.
#[allow(clippy::too_many_arguments)]
fn analytics(
    log: &Log,
    input: &[usize],
    decoded: &[Vec<Decoded>],
    index: &[Vec<usize>],
    arrivals: &[i64],
    crash_steps: &[usize],
    batch: usize,
    settings: Settings,
) -> Committed {
    let partitions = input.len() as i32;
    let fresh_core = |checkpoint: Option<&Checkpoint>, now: i64| {
        let mut core = WindowCore::new(settings);
        if let Some(c) = checkpoint {
            core.restore(c, now);
        }
        for p in 0..partitions {
            core.assign(p, now);
        }
        core
    };
    let first = arrivals.first().copied().unwrap_or(0);
    let mut core = fresh_core(None, first);
    let mut committed: Vec<Output> = Vec::new();
    let mut pending: Vec<Output> = Vec::new();
    let mut dead_letters: Vec<DeadLetter> = Vec::new();
    let mut pending_letters: Vec<DeadLetter> = Vec::new();
    // What Kafka holds: per partition, the last committed offset and its metadata (a commit that
    // does not name a partition leaves its earlier one), as `atenex analytics` commits them.
    let mut committed_offsets: BTreeMap<i32, (PartitionCheckpoint, Option<i64>)> = BTreeMap::new();
    let mut pos: Vec<i64> = vec![0; input.len()];
    let mut in_batch = 0;
    let mut crashes = 0;
    let mut steps = crash_steps.iter().peekable();
    let mut now = first;
    // Records delivered at least once, per partition.
    let mut fresh_below = vec![0i64; input.len()];
    let records = |p: usize| &log.streams[input[p]].records;
    loop {
        let next = (0..input.len())
            .filter(|p| (pos[*p] as usize) < records(*p).len())
            .min_by_key(|p| (records(*p)[pos[*p] as usize].arrival, *p));
        let first_delivery = next.is_some_and(|p| pos[p] >= fresh_below[p]);
        // A crash planned before this record (or, at the end, one planned before a record of
        // another topic): the process dies, the open transaction is lost.
        let crash = match next {
            Some(p) if first_delivery => {
                let at = index[input[p]][pos[p] as usize];
                steps.next_if(|s| **s <= at).copied()
            }
            Some(_) => None,
            None => steps.next().copied(),
        };
        if let Some(at) = crash {
            // The restart happens with the clock of the record delivered before the planned one.
            now = now.max(arrivals[at.saturating_sub(1)]);
            pending.clear();
            pending_letters.clear();
            in_batch = 0;
            crashes += 1;
            // The restarted job reads the committed offsets back (checkpoint_from in live.rs).
            let checkpoint = Checkpoint {
                watermark: committed_offsets.values().filter_map(|(_, wm)| *wm).max(),
                partitions: committed_offsets.values().map(|(c, _)| *c).collect(),
            };
            core = fresh_core(Some(&checkpoint), now);
            for (p, at) in pos.iter_mut().enumerate() {
                *at = committed_offsets
                    .get(&(p as i32))
                    .map_or(0, |(c, _)| c.resume_offset);
            }
            // The restarted job reads the partitions again from there.
            continue;
        }
        let Some(p) = next else { break };
        let r = &records(p)[pos[p] as usize];
        if first_delivery {
            fresh_below[p] = r.offset + 1;
        }
        now = now.max(r.arrival);
        core.on_tick(now, &mut pending);
        match &decoded[p][pos[p] as usize] {
            Ok((chunk_id, document_id, company_id, ts)) => core.handle(
                &Event {
                    partition: r.partition,
                    offset: r.offset,
                    ts: *ts,
                    chunk_id,
                    document_id,
                    company_id,
                },
                now,
                &mut pending,
            ),
            Err(reason) => {
                // Dead letters of offsets handled before a restart were committed then.
                let again = core.replays(r.partition, r.offset);
                core.skip(r.partition, r.offset, now);
                if !again {
                    pending_letters.push(DeadLetter {
                        stage: "analytics".into(),
                        topic: EMBEDDINGS.into(),
                        partition: r.partition,
                        offset: r.offset,
                        reason: reason.clone(),
                    });
                }
            }
        }
        pos[p] += 1;
        in_batch += 1;
        if in_batch == batch {
            committed.append(&mut pending);
            dead_letters.append(&mut pending_letters);
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
    dead_letters.append(&mut pending_letters);
    let (mut windows, mut late) = (Vec::new(), Vec::new());
    for o in committed {
        match o {
            Output::Window(w) => windows.push(w),
            Output::Late(l) => late.push(l),
        }
    }
    Committed {
        windows,
        late,
        dead_letters,
        crashes,
    }
}
