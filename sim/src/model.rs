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
use crate::store::SharedFs;
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
        zombies: landing_zombies,
    } = landing(&log, &plan, &config, first, &scenario.faults)?;
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
        landing_zombies,
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
        restarted_broker: None,
        openai: None,
        reports,
    })
}

/// The landing job over every topic: `landing_instances` instances of one group, each the job's
/// own task over its handle on one shared in-memory store, with the planned crashes, freezes and
/// joins. The partitions are split among the instances that are not frozen (sticky and
/// balanced, [`balance`]); each record goes to its partition's owner at its arrival time.
/// - A crash (the store fails after the planned number of effects of the instance owning the
///   next record's partition) kills that instance: its unsynced bytes are lost, and it comes
///   back with the same partitions (static membership), recovered from the files, each consumed
///   again from where recovery says.
/// - A freeze takes the partitions of the instance owning the next record's partition away
///   without telling it (its session timed out): the others are assigned them and recover them
///   (their claims fence it). It wakes `landing_freeze_records` records later and tries to
///   commit everything it has open (the worst a zombie can do), which must be refused; then it
///   comes back as a new process and joins again.
/// - A join adds an instance: partitions move to it (revoked from their owners, which discard
///   their open files; recovered by it).
fn landing(
    log: &Log,
    plan: &Plan,
    config: &LandingConfig,
    first: i64,
    faults: &crate::scenario::Faults,
) -> anyhow::Result<Landed> {
    let mut g = Group {
        log,
        config,
        store: SharedFs::new(std::time::Duration::ZERO),
        handles: 0,
        instances: Vec::new(),
        owner: vec![None; log.streams.len()],
        pos: vec![0; log.streams.len()],
        trace: Vec::new(),
        crashes: Vec::new(),
        reported: None,
        dead_letters: Vec::new(),
        zombies: 0,
    };
    for _ in 0..faults.landing_instances.max(1) {
        let task = g.new_task();
        g.instances.push(Lander { task, frozen: None });
    }
    g.rebalance()?;
    let mut now = first;
    let mut armed = plan.landing.iter().peekable();
    let mut freezes = plan.landing_freezes.iter().peekable();
    let mut joins = plan.landing_joins.iter().peekable();
    // Records handed to the instances (redeliveries included): a zombie wakes by it.
    let mut handed = 0usize;
    // Records delivered at least once, per stream, and in all.
    let mut fresh_below = vec![0i64; log.streams.len()];
    let mut fresh = 0usize;
    loop {
        for z in 0..g.instances.len() {
            if g.instances[z].frozen.is_some_and(|wake| handed >= wake) {
                g.wake(z)?;
            }
        }
        // The stream whose next record arrived first.
        let next = (0..log.streams.len())
            .filter(|s| (g.pos[*s] as usize) < log.streams[*s].records.len())
            .min_by_key(|s| (log.get(*s, g.pos[*s]).arrival, *s));
        let first_delivery = next.is_some_and(|s| g.pos[s] >= fresh_below[s]);
        let due = |at: &usize| *at <= fresh || next.is_none();
        // The instance the next record goes to (at the end: the first to flush).
        let target = |g: &Group<'_>| match next {
            Some(s) => g.owner[s],
            None => g.instances.iter().position(|i| i.frozen.is_none()),
        };
        if first_delivery || next.is_none() {
            if joins.next_if(|at| due(at)).is_some() {
                let task = g.new_task();
                g.instances.push(Lander { task, frozen: None });
                g.rebalance()?;
                continue;
            }
            // A freeze needs another instance to take the partitions over (else it waits).
            let up = g.instances.iter().filter(|i| i.frozen.is_none()).count();
            if let Some(z) = target(&g)
                && up >= 2
                && freezes.next_if(|at| due(at)).is_some()
            {
                // A crash armed on it is called off: it wakes fenced, not crashed.
                let task = &g.instances[z].task;
                task.fs().lock().disarm(task.fs().id());
                g.instances[z].frozen = Some(handed + faults.landing_freeze_records);
                g.rebalance()?;
                continue;
            }
            if let Some(i) = target(&g)
                && let Some((_, effects)) = armed.next_if(|(at, _)| due(at))
            {
                let task = &g.instances[i].task;
                task.fs().lock().crash_after_of(task.fs().id(), *effects);
                g.reported = Some((i, task.committed_positions()));
            }
        }
        let Some(s) = next else {
            // The end: a zombie still asleep wakes now; then every instance commits what is
            // open, and one that dies doing it is handed its partitions' records again.
            if let Some(z) = g.instances.iter().position(|i| i.frozen.is_some()) {
                g.instances[z].frozen = Some(handed);
                continue;
            }
            let mut flushed = true;
            for i in 0..g.instances.len() {
                g.trace.push(LandingStep::Flush { instance: i });
                if g.call(i, |t| t.flush_all().map_err(Stop::Fs))?.is_none() {
                    flushed = false;
                    break;
                }
            }
            if flushed {
                break;
            }
            continue;
        };
        let stream = &log.streams[s];
        let r = log.get(s, g.pos[s]);
        if first_delivery {
            fresh_below[s] = r.offset + 1;
            fresh += 1;
        }
        now = now.max(r.arrival);
        let i = g.owner[s].expect("every partition has an owner");
        g.trace.push(LandingStep::Record {
            stream: s,
            offset: r.offset,
            now,
            instance: i,
        });
        let record = LandingRecord {
            topic: &stream.topic,
            partition: stream.partition,
            offset: r.offset,
            timestamp: Some(r.ts),
            value: r.value.as_deref(),
        };
        handed += 1;
        // `None`: it died; its partitions are consumed again from where recovery says.
        if let Some(handled) = g.call(i, |t| t.record(&record, now))? {
            if let Handled::DeadLetter { topic: to, reason } = handled {
                g.dead_letters.push(DeadLetter {
                    stage: "landing".into(),
                    topic: stream.topic.clone(),
                    partition: stream.partition,
                    offset: r.offset,
                    reason,
                    to,
                });
            }
            g.pos[s] += 1;
        }
    }
    let positions: Vec<Position> = g
        .instances
        .iter()
        .flat_map(|i| i.task.committed_positions())
        .collect();
    let fs = g.store.lock().clone();
    Ok(Landed {
        fs,
        crashes: g.crashes,
        dead_letters: g.dead_letters,
        trace: g.trace,
        positions,
        zombies: g.zombies,
    })
}

/// A partition's committed position as the landing reports it: topic, partition, next offset.
type Position = (String, i32, i64);

/// One landing instance of the model.
struct Lander {
    task: LandingTask<SharedFs>,
    /// Frozen (its partitions taken from it without its knowing) until this many records were
    /// handed out.
    frozen: Option<usize>,
}

/// The landing instances of one group and what they did.
struct Group<'a> {
    log: &'a Log,
    config: &'a LandingConfig,
    store: SharedFs,
    /// Handles given out so far (one per process).
    handles: usize,
    instances: Vec<Lander>,
    /// Per stream, the instance its partition is assigned to.
    owner: Vec<Option<usize>>,
    /// Per stream, the next offset its owner is handed.
    pos: Vec<i64>,
    trace: Vec<LandingStep>,
    crashes: Vec<Crash>,
    /// The instance a crash was armed on, and what it reported committed then.
    reported: Option<(usize, Vec<Position>)>,
    dead_letters: Vec<DeadLetter>,
    zombies: usize,
}

impl Group<'_> {
    /// A new process: its own handle on the store, its name in its temp files.
    fn new_task(&mut self) -> LandingTask<SharedFs> {
        let id = self.handles;
        self.handles += 1;
        LandingTask::new(self.store.handle(id), self.config.clone()).owned_by(&id.to_string())
    }

    /// Runs `f` on instance `i`'s task; `None` if its filesystem failed there (a planned crash):
    /// the instance has then been restarted and its partitions recovered.
    fn call<T>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut LandingTask<SharedFs>) -> Result<T, Stop>,
    ) -> anyhow::Result<Option<T>> {
        match f(&mut self.instances[i].task) {
            Ok(v) => Ok(Some(v)),
            Err(Stop::Fs(e)) if MemFs::is_crash(&e) => {
                self.crashed(i)?;
                Ok(None)
            }
            Err(e) => Err(anyhow::Error::from(e).context(format!("landing instance {i}"))),
        }
    }

    /// Instance `i`'s process died: its unsynced bytes are lost; a new process is assigned the
    /// same partitions and recovers them.
    fn crashed(&mut self, i: usize) -> anyhow::Result<()> {
        let old = self.instances[i].task.fs().id();
        self.store.lock().crash_of(old);
        self.instances[i].task = self.new_task();
        let mine: Vec<usize> = (0..self.log.streams.len())
            .filter(|s| self.owner[*s] == Some(i))
            .collect();
        let step = self.trace.len();
        let mut crash = recovery(
            step,
            &mut self.instances[i].task,
            mine,
            self.log,
            self.config,
            "",
        )?;
        if let Some((_, reported)) = self.reported.take_if(|(at, _)| *at == i) {
            crash.reported = reported
                .into_iter()
                .filter(|(t, p, _)| crash.resume.contains_key(&(t.clone(), *p)))
                .collect();
        }
        for (s, stream) in self.log.streams.iter().enumerate() {
            if let Some(resume) = crash.resume.get(&(stream.topic.clone(), stream.partition)) {
                self.pos[s] = resume.unwrap_or(0);
            }
        }
        self.trace.push(LandingStep::Crash {
            n: self.crashes.len(),
            instance: i,
        });
        self.crashes.push(crash);
        Ok(())
    }

    /// The group's assignment after a member came or went: partitions that move are revoked
    /// from their owners (a frozen one is not told) and assigned to their new ones, which recover
    /// them; each is then consumed from where its recovery says.
    fn rebalance(&mut self) -> anyhow::Result<()> {
        let members: Vec<usize> = (0..self.instances.len())
            .filter(|i| self.instances[*i].frozen.is_none())
            .collect();
        let target = balance(&self.owner, &members);
        let moving: Vec<usize> = (0..target.len())
            .filter(|s| self.owner[*s] != Some(target[*s]))
            .collect();
        for &s in &moving {
            let Some(old) = self.owner[s].take() else {
                continue;
            };
            self.trace.push(LandingStep::Revoke { stream: s });
            if self.instances[old].frozen.is_none() {
                let stream = &self.log.streams[s];
                let (topic, partition) = (stream.topic.clone(), stream.partition);
                self.call(old, |t| t.revoke(&topic, partition).map_err(Stop::Fs))?;
            }
        }
        for &s in &moving {
            let i = target[s];
            self.owner[s] = Some(i);
            let stream = &self.log.streams[s];
            let (topic, partition) = (stream.topic.clone(), stream.partition);
            // A crash here recovers the partition with the instance's others.
            if let Some(resume) = self.call(i, |t| t.assign(&topic, partition).map_err(Stop::Fs))? {
                self.trace.push(LandingStep::Assign {
                    stream: s,
                    instance: i,
                    resume,
                });
                self.pos[s] = resume.unwrap_or(0);
            }
        }
        Ok(())
    }

    /// The frozen instance `z` wakes, a zombie: it tries to commit everything it has open, which
    /// must be refused (its partitions' new owners claimed their commit logs and recovered
    /// them), and it comes back as a new process that joins the group again.
    fn wake(&mut self, z: usize) -> anyhow::Result<()> {
        self.trace.push(LandingStep::Flush { instance: z });
        match self.instances[z].task.flush_all() {
            Err(e) if atenex_landing::fs::is_fenced(&e) => self.zombies += 1,
            Err(e) => return Err(anyhow::Error::from(e).context(format!("landing zombie {z}"))),
            // Nothing was open: nothing to refuse.
            Ok(()) => {}
        }
        let old = self.instances[z].task.fs().id();
        self.store.lock().crash_of(old);
        self.instances[z] = Lander {
            task: self.new_task(),
            frozen: None,
        };
        self.rebalance()
    }
}

/// The assignment of a group: per stream, one of `members` (instance indices, in order). Sticky
/// and balanced: each member gets `n / m` partitions, the first `n % m` one more; a partition
/// stays with its owner while the owner is a member within its share, the others go, in order,
/// to the first member below its share.
pub fn balance(owner: &[Option<usize>], members: &[usize]) -> Vec<usize> {
    let (n, m) = (owner.len(), members.len());
    assert!(m > 0, "a group without members");
    let share = |k: usize| n / m + usize::from(k < n % m);
    let mut count = vec![0usize; m];
    let mut target: Vec<Option<usize>> = vec![None; n];
    for (s, o) in owner.iter().enumerate() {
        if let Some(k) = o.and_then(|o| members.iter().position(|x| *x == o))
            && count[k] < share(k)
        {
            target[s] = Some(members[k]);
            count[k] += 1;
        }
    }
    for t in target.iter_mut().filter(|t| t.is_none()) {
        let k = (0..m)
            .find(|k| count[*k] < share(*k))
            .expect("shares add up to n");
        *t = Some(members[k]);
        count[k] += 1;
    }
    target.into_iter().map(|t| t.expect("assigned")).collect()
}

/// What the landing job left: its files, crashes, dead letters, the steps it was handed, the
/// committed positions its instances reported after their final flush, and its fenced zombies.
struct Landed {
    fs: MemFs,
    crashes: Vec<Crash>,
    dead_letters: Vec<DeadLetter>,
    trace: Vec<LandingStep>,
    positions: Vec<(String, i32, i64)>,
    zombies: usize,
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
