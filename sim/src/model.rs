//! The model driver: the log in memory, virtual time, the production cores.
//!
//! Delivery: each partition is consumed in offset order; across partitions (and topics), the record
//! that arrived first goes first; processing time is the arrival time (never going back).
//!
//! - Analytics reads `embeddings.ready` with the job's own sans-IO task
//!   ([`atenex_analytics::task::AnalyticsTask`]): each record is handed to it at its arrival time,
//!   and every `analytics_batch` records the task's transaction is committed to an in-memory
//!   stand-in for Kafka (outputs, dead letters, offsets with their metadata strings). A crash drops
//!   the task with its open transaction; a new task is assigned the committed offsets and metadata
//!   as Kafka returns them, and each partition is consumed again from its committed offset (the
//!   earliest without one). At the end the job is drained (every window fires).
//! - Landing reads every topic with the job's own task ([`atenex_landing::task::LandingTask`])
//!   over an in-memory filesystem; at each crash step the filesystem is made to fail after the
//!   planned number of effects (possibly in the middle of a commit), the unsynced bytes are lost, a
//!   new task is assigned every partition (recovery from what is there), and each partition is
//!   consumed again from where recovery says.
//! - The daily report of each day: the report's own line scanner over the day's committed files,
//!   then the group-by its query computes.

use crate::faults::{Crash, Plan, plan, recovery};
use crate::generate::full_log;
use crate::log::{EMBEDDINGS, Log};
use crate::outcome::{
    DailyReport, DeadLetter, LandingStep, Outcome, Transactions, day_of, split_outputs,
};
use crate::scenario::{Scenario, landing_config};
use atenex_analytics::core::{Output, Settings};
use atenex_analytics::decode::decode_record;
use atenex_analytics::task::{AnalyticsTask, CommittedOffset, InputRecord, Transaction};
use atenex_contracts::ChunkKeys;
use atenex_landing::config::LandingConfig;
use atenex_landing::fs::{Fs as _, MemFs};
use atenex_landing::task::{Handled, LandingRecord, LandingTask, Stop};
use std::collections::{BTreeMap, BTreeSet};

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
    let settings = scenario.analytics_settings();
    let input = analytics_input(&log);
    let arrivals: Vec<i64> = order.iter().map(|(s, o)| log.get(*s, *o).arrival).collect();
    // The scenario's run hands the task the records as Kafka delivers them (the task decodes).
    let disruptions = Disruptions {
        kills: &plan.analytics,
        freezes: &plan.analytics_freezes,
        joins: &plan.analytics_joins,
        freeze_records: scenario.faults.analytics_freeze_records,
        instances: scenario.faults.analytics_instances,
    };
    let committed = analytics(
        &log,
        &input,
        None,
        &index,
        &arrivals,
        disruptions,
        batch,
        settings,
    )?;
    // Restarts are transparent where event time alone decides: with partition idleness (a
    // processing-time rule) switched off, the crashed run must equal a run without crashes. With
    // idleness on they may differ (a replay happens later in processing time), and only the
    // counting invariants hold. The outputs of the run without crashes, in emission order, are
    // checked against the rules' order.
    let (reference, clean_outputs) =
        if plan.analytics.is_empty() && plan.analytics_freezes.is_empty() {
            (None, None)
        } else {
            // Decoded once, with the job's own decoder, for the two comparison runs.
            let decoded: Vec<Vec<Decoded<'_>>> = input
                .iter()
                .map(|s| {
                    log.streams[*s]
                        .records
                        .iter()
                        .map(|r| decode_record(r.value.as_deref(), Some(r.ts)))
                        .collect()
                })
                .collect();
            let no_idle = crate::check::no_idleness(settings);
            let run = |disruptions: Disruptions<'_>| {
                analytics(
                    &log,
                    &input,
                    Some(&decoded),
                    &index,
                    &arrivals,
                    disruptions,
                    batch,
                    no_idle,
                )
            };
            let crashed = run(disruptions)?;
            let clean = run(Disruptions {
                kills: &[],
                freezes: &[],
                ..disruptions
            })?;
            let compared = (
                split_outputs(&crashed.outputs),
                split_outputs(&clean.outputs),
            );
            (Some(compared), Some(clean.outputs))
        };

    let Landed {
        fs,
        crashes,
        mut dead_letters,
        trace,
        positions,
    } = landing(&log, &plan, &config, first)?;
    dead_letters.extend(committed.dead_letters);
    dead_letters.extend(refused);
    let days: Vec<String> = scenario.report.days.iter().map(|d| d.to_string()).collect();
    let reports = daily_reports(&fs, &config, "", &days);
    let (windows, late) = split_outputs(&committed.outputs);
    Ok(Outcome {
        log,
        windows,
        late,
        analytics_crashes: committed.lost.len() - committed.zombies,
        analytics_zombies: committed.zombies,
        analytics_lost: committed.lost,
        analytics_settings: settings,
        analytics_order: Some(clean_outputs.unwrap_or(committed.outputs)),
        analytics_watermark: Some(committed.watermark),
        analytics_transactions: Some(committed.transactions),
        reference,
        dead_letters,
        fs,
        config,
        prefix: String::new(),
        crashes,
        landing_trace: Some(trace),
        landing_positions: Some(positions),
        broker_restarts: plan.broker.len(),
        openai: None,
        reports,
    })
}

/// The landing job over every topic, through its own task, with the planned crashes.
#[allow(clippy::type_complexity)]
fn landing(log: &Log, plan: &Plan, config: &LandingConfig, first: i64) -> anyhow::Result<Landed> {
    let mut task = LandingTask::new(MemFs::new(), config.clone());
    let mut trace = Vec::new();
    let mut pos = assign_all(&mut task, log)?;
    let mut crashes = Vec::new();
    let mut dead_letters = Vec::new();
    let mut step = 0usize;
    let mut now = first;
    let mut armed = plan.landing.iter().peekable();
    // What the task reported committed when the next crash was armed.
    let mut reported = Vec::new();
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
            task.fs_mut().crash_after(*effects);
            reported = task.committed_positions();
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
                trace.push(LandingStep::Record {
                    stream: s,
                    offset: r.offset,
                    now,
                });
                let record = LandingRecord {
                    topic: &stream.topic,
                    partition: stream.partition,
                    offset: r.offset,
                    timestamp: Some(r.ts),
                    value: r.value.as_deref(),
                };
                task.record(&record, now).map(|handled| {
                    if let Handled::DeadLetter { topic: to, reason } = handled {
                        dead_letters.push(DeadLetter {
                            stage: "landing".into(),
                            topic: stream.topic.clone(),
                            partition: stream.partition,
                            offset: r.offset,
                            reason,
                            to,
                        });
                    }
                    pos[s] += 1;
                    false
                })
            }
            None => {
                trace.push(LandingStep::Flush);
                task.flush_all().map(|()| true).map_err(Stop::Fs)
            }
        };
        step += 1;
        match result {
            Ok(true) => break,
            Ok(false) => {}
            Err(Stop::Fs(_)) => {
                // The process died: a new task recovers from the filesystem.
                let mut fs = task.into_fs();
                fs.crash();
                task = LandingTask::new(fs, config.clone());
                let mut crash = recovery(step, &mut task, log, config, "")?;
                crash.reported = std::mem::take(&mut reported);
                pos = log
                    .streams
                    .iter()
                    .map(|s| crash.resume[&(s.topic.clone(), s.partition)].unwrap_or(0))
                    .collect();
                trace.push(LandingStep::Crash(crashes.len()));
                crashes.push(crash);
            }
            Err(refused @ Stop::Refused { .. }) => return Err(refused.into()),
        }
    }
    let positions = task.committed_positions();
    Ok(Landed {
        fs: task.into_fs(),
        crashes,
        dead_letters,
        trace,
        positions,
    })
}

/// What the landing job left: its files, crashes, dead letters, the steps it was handed, and the
/// committed positions it reported after its final flush.
struct Landed {
    fs: MemFs,
    crashes: Vec<Crash>,
    dead_letters: Vec<DeadLetter>,
    trace: Vec<LandingStep>,
    positions: Vec<(String, i32, i64)>,
}

fn assign_all(task: &mut LandingTask<MemFs>, log: &Log) -> anyhow::Result<Vec<i64>> {
    log.streams
        .iter()
        .map(|s| Ok(task.assign(&s.topic, s.partition)?.unwrap_or(0)))
        .collect()
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
                match scan_file(
                    &name,
                    &bytes,
                    true,
                    atenex_report::DEFAULT_MAX_LINE_BYTES,
                    &mut columns,
                ) {
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

/// A record as the analytics job decodes it: its ids and event time, or why it is refused.
type Decoded<'a> = Result<(ChunkKeys<'a>, i64), String>;

/// What the analytics job committed.
struct Committed {
    /// Window results and records not counted, in the order they were emitted.
    outputs: Vec<Output>,
    dead_letters: Vec<DeadLetter>,
    /// Per crash (and freeze), the records in the open transaction.
    lost: Vec<usize>,
    /// Frozen instances that woke, were fenced and stepped down.
    zombies: usize,
    /// The task's watermark after the last record, before the drain.
    watermark: Option<i64>,
    transactions: Transactions,
}

/// What Kafka keeps of the analytics job's committed transactions.
#[derive(Default)]
struct Kafka {
    outputs: Vec<Output>,
    dead_letters: Vec<DeadLetter>,
    /// Per partition, the last committed offset and its metadata, as the broker returns them (a
    /// commit that does not name a partition leaves its earlier one).
    offsets: BTreeMap<i32, CommittedOffset>,
    /// Records in each committed transaction.
    transactions: Vec<usize>,
    /// The group's producer epoch: bumped by each instance that becomes active (its
    /// `initTransactions`); a transaction of an older epoch is refused (fenced).
    epoch: u64,
}

impl Kafka {
    /// `tx` from a producer of `epoch`: committed, or refused (`false`) when a newer instance has
    /// started the group's producer since.
    fn commit_as(&mut self, epoch: u64, tx: Transaction) -> bool {
        if epoch < self.epoch {
            return false;
        }
        self.transactions.push(tx.records);
        self.outputs.extend(tx.outputs);
        self.dead_letters
            .extend(tx.dead_letters.into_iter().map(|d| DeadLetter {
                stage: "analytics".into(),
                topic: EMBEDDINGS.into(),
                partition: d.partition,
                offset: d.offset,
                reason: d.reason,
                to: atenex_contracts::topics::dlq_topic(EMBEDDINGS),
            }));
        for o in tx.offsets {
            self.offsets.insert(o.partition, o.into());
        }
        true
    }

    /// What a consumer reads back on assignment of `partitions` partitions.
    fn committed(&self, partitions: i32) -> Vec<CommittedOffset> {
        (0..partitions)
            .map(|p| {
                self.offsets.get(&p).cloned().unwrap_or(CommittedOffset {
                    partition: p,
                    offset: None,
                    metadata: String::new(),
                })
            })
            .collect()
    }
}

/// Where the analytics job's instances are disrupted: kills and freezes of the active instance
/// (indices of input records in delivery order), among `instances` instances of one group.
#[derive(Debug, Clone, Copy)]
struct Disruptions<'a> {
    kills: &'a [usize],
    freezes: &'a [usize],
    /// Instances started (standbys joining).
    joins: &'a [usize],
    /// Records a frozen instance sleeps through.
    freeze_records: usize,
    instances: usize,
}

/// An instance frozen with its open transaction: it wakes once `wake` records were handed out.
struct Zombie {
    instance: usize,
    task: AnalyticsTask,
    epoch: u64,
    wake: usize,
}

/// The analytics job as `atenex analytics` runs it, then `--drain`, through its own task: records
/// handed over in delivery order at their arrival times, a transaction committed every `batch`
/// records. Several instances of one group elect the active one with the job's own
/// [`Role`](atenex_analytics::role::Role): the first lease goes to instance 0; a kill (before the
/// first delivery of the input record at one of the steps) drops the active task with its open
/// transaction and the lease goes to the next instance (with one instance, the restarted one),
/// which is assigned the committed offsets and consumes each partition again from there. A freeze
/// does the same but keeps the frozen task: it wakes `freeze_records` records later and commits
/// its open transaction, which the stand-in for Kafka refuses (an older producer epoch), and the
/// role steps down. `arrivals` are the arrival times of all records (every topic) in delivery
/// order: the clock when a disruption strikes is that of the record delivered last.
#[allow(clippy::too_many_arguments)]
fn analytics(
    log: &Log,
    input: &[usize],
    decoded: Option<&[Vec<Decoded<'_>>]>,
    index: &[Vec<usize>],
    arrivals: &[i64],
    disruptions: Disruptions<'_>,
    batch: usize,
    settings: Settings,
) -> anyhow::Result<Committed> {
    use atenex_analytics::role::{Role, RoleChange, RoleEvent};
    let partitions = input.len() as i32;
    let mut kafka = Kafka::default();
    let mut roles = vec![Role::default(); disruptions.instances.max(1)];
    // The instance the lease group gives the lease to: it activates (fences: a new epoch) and
    // restores from the committed offsets.
    let activate = |roles: &mut [Role], i: usize, kafka: &mut Kafka, now: i64| {
        anyhow::ensure!(
            roles[i].on(RoleEvent::LeaseAssigned) == Some(RoleChange::Activate),
            "instance {i} was given the lease but did not activate"
        );
        kafka.epoch += 1;
        let mut task = AnalyticsTask::new(settings, batch);
        task.assign(&kafka.committed(partitions), now)?;
        Ok::<_, anyhow::Error>(task)
    };
    let first = arrivals.first().copied().unwrap_or(0);
    let mut active = 0usize;
    let mut task = activate(&mut roles, active, &mut kafka, first)?;
    let mut epoch = kafka.epoch;
    let mut zombie: Option<Zombie> = None;
    let mut zombies = 0usize;
    let mut pos: Vec<i64> = vec![0; input.len()];
    let mut lost = Vec::new();
    let mut handed = 0usize;
    let mut kills = disruptions.kills.iter().peekable();
    let mut freezes = disruptions.freezes.iter().peekable();
    let mut joins = disruptions.joins.iter().peekable();
    let mut now = first;
    // Records delivered at least once, per partition.
    let mut fresh_below = vec![0i64; input.len()];
    let records = |p: usize| &log.streams[input[p]].records;
    loop {
        // A frozen instance wakes: its transaction is refused, it steps down.
        if let Some(z) = zombie.take_if(|z| handed >= z.wake) {
            let Zombie {
                instance,
                task: mut ztask,
                epoch: zepoch,
                ..
            } = z;
            let tx = ztask.commit(false);
            anyhow::ensure!(
                !kafka.commit_as(zepoch, tx),
                "a zombie's transaction was committed"
            );
            anyhow::ensure!(
                roles[instance].on(RoleEvent::Fenced)
                    == Some(RoleChange::StepDown { rejoin: true }),
                "the fenced instance {instance} did not step down"
            );
            zombies += 1;
        }
        let next = (0..input.len())
            .filter(|p| (pos[*p] as usize) < records(*p).len())
            .min_by_key(|p| (records(*p)[pos[*p] as usize].arrival, *p));
        let first_delivery = next.is_some_and(|p| pos[p] >= fresh_below[p]);
        // A disruption planned before this record (or, at the end, one planned before a record of
        // another topic): kills first.
        let at = match next {
            Some(p) if first_delivery => Some(index[input[p]][pos[p] as usize]),
            Some(_) => None,
            None => Some(usize::MAX),
        };
        // An instance joins as a standby: the lease stays where it is.
        if let Some(at) = at
            && joins.next_if(|s| **s <= at).is_some()
        {
            roles.push(Role::default());
            continue;
        }
        let disruption = at.and_then(|at| {
            kills
                .next_if(|s| **s <= at)
                .map(|s| (*s, false))
                .or_else(|| freezes.next_if(|s| **s <= at).map(|s| (*s, true)))
        });
        if let Some((step, freeze)) = disruption {
            // The clock of the record delivered before the planned one.
            now = now.max(arrivals[step.min(arrivals.len()).saturating_sub(1)]);
            lost.push(task.open_records());
            let old = active;
            if freeze {
                // Frozen past its session timeout: it still thinks it is active.
                zombie = Some(Zombie {
                    instance: old,
                    task: std::mem::replace(&mut task, AnalyticsTask::new(settings, batch)),
                    epoch,
                    wake: handed + disruptions.freeze_records,
                });
            } else {
                // Killed: its process comes back as a standby.
                roles[old] = Role::default();
            }
            // The lease goes to the next instance that is neither frozen nor the killed one
            // (with one instance, the restarted one).
            let instances = roles.len();
            active = (1..=instances)
                .map(|d| (old + d) % instances)
                .find(|i| !roles[*i].is_active())
                .ok_or_else(|| anyhow::anyhow!("no instance to take the lease over"))?;
            task = activate(&mut roles, active, &mut kafka, now)?;
            epoch = kafka.epoch;
            // Consumption resumes at the committed offsets (the earliest without one).
            for (at, c) in pos.iter_mut().zip(kafka.committed(partitions)) {
                *at = c.offset.unwrap_or(0);
            }
            continue;
        }
        let Some(p) = next else {
            // The end: a zombie still asleep wakes now.
            if let Some(z) = zombie.as_mut() {
                z.wake = handed;
                continue;
            }
            break;
        };
        let r = &records(p)[pos[p] as usize];
        if first_delivery {
            fresh_below[p] = r.offset + 1;
        }
        now = now.max(r.arrival);
        match decoded {
            Some(decoded) => {
                task.decoded(r.partition, r.offset, &decoded[p][pos[p] as usize], now);
            }
            None => task.record(
                &InputRecord {
                    partition: r.partition,
                    offset: r.offset,
                    timestamp: Some(r.ts),
                    value: r.value.as_deref(),
                },
                now,
            ),
        }
        handed += 1;
        pos[p] += 1;
        // A batch ends when it is full (the live job's other ends, a wait or a tick, only
        // regroup the same outputs).
        if task.is_full()
            && let Some(tx) = task.end_batch(true, false, now)
        {
            anyhow::ensure!(kafka.commit_as(epoch, tx), "the active instance was fenced");
        }
    }
    let watermark = task.watermark();
    // Every partition is at its end: drained, every window fires in the last transaction.
    let at_end: BTreeSet<i32> = (0..partitions).collect();
    let received = task.open_records() > 0;
    if let Some(tx) = task.end_batch(received, task.drained(&at_end), now) {
        anyhow::ensure!(kafka.commit_as(epoch, tx), "the active instance was fenced");
    }
    Ok(Committed {
        zombies,
        outputs: kafka.outputs,
        dead_letters: kafka.dead_letters,
        transactions: Transactions {
            max_batch: batch,
            committed: std::mem::take(&mut kafka.transactions),
            handed,
        },
        lost,
        watermark,
    })
}
