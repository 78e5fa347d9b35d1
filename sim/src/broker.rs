//! The broker driver: the scenario through a real Kafka broker and the real jobs.
//!
//! The log (generated or recorded) is produced, record by record in delivery order, to topics with
//! the scenario's partitions, each record at its partition and with its event time as the record
//! timestamp. The real `atenex analytics` loop ([`atenex_analytics::live`]) and the real landing
//! loop ([`atenex_landing::live`]) run as tasks with a manual clock: before each record the clock
//! is set to its arrival time, and the next record is produced only once both jobs have handled
//! it (their published positions, [`atenex_kafka::Progress`]). Analytics handles each record into
//! its open transaction as it receives it and commits every `analytics_batch` records, as the
//! model's task does, so a crash strikes the same open multi-record transaction in both drivers.
//! So processing time and the order across partitions are the scenario's — what the model driver
//! assumes — while consumption, transactions, committed offsets with their metadata, group
//! rebalances, restarts and fencing are Kafka's. At the end the analytics job is stopped and started again with `--drain` (every open
//! window fires after a restore from the committed offsets), the landing job is stopped (it commits
//! what is open), and the real report job (DataFusion, Parquet) runs for each day. For a
//! `chunks.processed` scenario the real embedding service runs too, against the mock OpenAI with
//! the scenario's faults; the driver waits for each chunk's embedding as for a record it produced.
//!
//! Faults, at the same input indices as in the model ([`crate::faults::plan`]): an analytics crash
//! aborts the job's task (no clean-up runs; a new instance with the same `transactional.id` fences
//! it and restores from the committed offsets; the driver waits until it is assigned and has
//! handled its replays before the clock moves on); a landing crash makes the landing filesystem
//! fail after the planned number of effects of the instance owning the record's partition, that
//! instance dies on the error, its unsynced bytes are lost and a new process joins the group and
//! whoever is assigned the partitions recovers them from the files (several landing instances are
//! one Connect group, each with its own handle on the store, [`crate::store`]; after every
//! rebalance the driver waits until each partition has one owner that has landed again what it
//! was handed, the clock held); a frozen landing instance leaves the group with its open files in
//! hand and, woken, tries to commit them and is fenced; a broker restart (a scenario with
//! `broker_restarts` gets a broker of its own) stops the broker cleanly between two records and
//! starts it again on the same data and port while both jobs keep running; a slow disk makes
//! each landing filesystem effect sleep.
//!
//! Every topic of the run is the scenario's name behind a unique prefix (runs share the broker);
//! the outcome is rendered with the scenario's names.
//!
//! The landing filesystem is the in-memory one with crash semantics (shared with the model):
//! crashes must strike at the same effect in both drivers. The HDFS adapter has its own tests
//! against a MiniDFSCluster (pipeline/landing/tests/fs.rs).

use crate::faults::{Crash, plan, recovery};
use crate::generate::{OBJECTS, full_log};
use crate::log::{CHUNKS, DOCUMENTS, EMBEDDINGS, Log};
use crate::outcome::{DailyReport, DeadLetter, Outcome, day_of};
use crate::scenario::{Scenario, landing_config};
use crate::store::SharedFs;
use anyhow::Context as _;
use atenex_analytics::core::{LateReason, LateRecord, Settings, WindowResult};
use atenex_analytics::live::{JobProgress, LiveOptions, LiveSummary};
use atenex_analytics::role::Role;
use atenex_contracts::topics::dlq_headers;
use atenex_kafka::admin::{TopicSpec, create_topics_with};
use atenex_kafka::observe::Health;
use atenex_kafka::{Clock, KafkaConfig, OutRecord, Producer, Progress};
use atenex_landing::config::LandingConfig;
use atenex_landing::fs::{Fs as _, MemFs};
use atenex_landing::task::LandingTask;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a job may take to handle one record before the driver gives up (a group join after a
/// restart is the slow part).
const PATIENCE: Duration = Duration::from_secs(60);

/// One instance of a job running as a task.
struct Task<T> {
    handle: JoinHandle<anyhow::Result<T>>,
    stop: CancellationToken,
    /// What the driver waits on: positions the job has handled.
    progress: Progress,
    /// Positions whose outputs are committed.
    committed: Progress,
    health: Health,
    /// Freezes the instance while `true` (analytics only).
    pause: Option<tokio::sync::watch::Sender<bool>>,
}

/// A landing instance as a task, with its own handle on the store (a process of its own).
fn start_landing(
    kafka: &KafkaConfig,
    config: &LandingConfig,
    fs: &SharedFs,
    clock: &Clock,
) -> Task<u64> {
    let (kafka, config, fs, clock) = (kafka.clone(), config.clone(), fs.clone(), clock.clone());
    let stop = CancellationToken::new();
    let progress = Progress::default();
    let (pause, paused) = tokio::sync::watch::channel(false);
    let hooks = atenex_landing::live::Hooks {
        progress: Some(progress.clone()),
        pause: Some(paused),
    };
    let handle = tokio::spawn({
        let stop = stop.clone();
        async move { atenex_landing::live::run_with(&kafka, &config, fs, stop, &clock, hooks).await }
    });
    Task {
        handle,
        stop,
        committed: progress.clone(),
        progress,
        health: Health::default(),
        pause: Some(pause),
    }
}

/// One landing instance of the run.
struct Lander {
    task: Task<u64>,
    /// Its handle on the store.
    fs: SharedFs,
    /// Frozen until the step before which it wakes (a zombie).
    frozen: Option<usize>,
    /// Stopped at the end (it committed what it had open and left the group).
    stopped: bool,
}

impl Lander {
    fn up(&self) -> bool {
        self.frozen.is_none() && !self.stopped
    }
}

/// Topics of one run.
struct Names {
    prefix: String,
    windows: String,
    late: String,
    /// The landing's configured dead-letter topic (`[landing] dead_letter_topic`), if any.
    landing_dlq: Option<String>,
}

impl Names {
    fn of(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }
}

/// An analytics instance whose transactions hold `batch` records (the scenario's
/// `analytics_batch`): it commits when a batch is full, not after a time, so that its
/// transactions are the model's and a crash strikes the same open transaction. The driver waits
/// on its `received` positions (a record in the open transaction; the one that fills a batch, once
/// committed).
fn start_analytics(
    kafka: &KafkaConfig,
    names: &Names,
    (batch, settings): (usize, Settings),
    drain: bool,
    clock: &Clock,
) -> Task<LiveSummary> {
    let stop = CancellationToken::new();
    let progress = JobProgress::default();
    let health = Health::default();
    let (pause, paused) = tokio::sync::watch::channel(false);
    let group = format!("{}analytics", names.prefix);
    let opts = LiveOptions {
        settings,
        input_topic: names.of(EMBEDDINGS),
        output_topic: names.windows.clone(),
        late_topic: names.late.clone(),
        transactional_id: group.clone(),
        lease_topic: format!("{group}.lease"),
        // The broker's default group.min.session.timeout.ms: a frozen instance is replaced after
        // this (the driver waits, the clock held).
        session_timeout: Duration::from_secs(6),
        partition_discovery: Duration::from_secs(30),
        group,
        max_batch: batch,
        // Longer than any run: a batch closes when full (or when the job is stopped).
        max_wait: Duration::from_secs(3600),
        drain,
        clock: clock.clone(),
        progress: Some(progress.clone()),
        pause: Some(paused),
    };
    let kafka = kafka.clone();
    let handle = tokio::spawn({
        let (stop, health) = (stop.clone(), health.clone());
        async move { atenex_analytics::live::run(&kafka, &opts, stop, health).await }
    });
    Task {
        handle,
        stop,
        progress: progress.received,
        committed: progress.committed,
        health,
        pause: Some(pause),
    }
}

/// Waits until a job handled `offset` of `topic`'s `partition`; `Some` if the job stopped first.
async fn handled<T>(
    task: &mut Task<T>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> anyhow::Result<Option<Result<anyhow::Result<T>, tokio::task::JoinError>>> {
    let progress = task.progress.clone();
    let handle = &mut task.handle;
    tokio::time::timeout(PATIENCE, async {
        tokio::select! {
            () = progress.wait_for(topic, partition, offset) => None,
            r = handle => Some(r),
        }
    })
    .await
    .with_context(|| format!("{topic}[{partition}]@{offset} was not handled within {PATIENCE:?}"))
}

struct Driver<'a> {
    kafka: &'a KafkaConfig,
    log: &'a Log,
    names: Names,
    config: LandingConfig,
    fs: SharedFs,
    clock: Clock,
    /// The analytics instances' batch size and settings.
    analytics_job: (usize, Settings),
    /// The landing instances of the group.
    landers: Vec<Lander>,
    /// Store handles given out (one per landing process).
    handles: usize,
    /// Landing zombies fenced.
    landing_zombies: usize,
    /// Records a frozen landing instance sleeps through.
    landing_freeze_records: usize,
    /// The active analytics instance.
    analytics: Task<LiveSummary>,
    /// The other instances of its group, standing by.
    standbys: Vec<Task<LiveSummary>>,
    /// An instance frozen with its open transaction, and the step before which it wakes.
    zombie: Option<(Task<LiveSummary>, usize)>,
    /// Frozen instances that woke and stepped down.
    zombies: usize,
    /// Records a frozen instance sleeps through.
    freeze_records: usize,
    crashes: Vec<Crash>,
    /// Per stream: records produced so far.
    produced: Vec<i64>,
    /// Per stream: records handed to the jobs so far, in delivery order (produced by the driver
    /// or by a service).
    delivered: Vec<i64>,
}

impl Driver<'_> {
    /// A new landing process: its own handle on the store.
    fn new_lander(&mut self) -> Lander {
        let fs = self.fs.handle(self.handles);
        self.handles += 1;
        Lander {
            task: start_landing(self.kafka, &self.config, &fs, &self.clock),
            fs,
            frozen: None,
            stopped: false,
        }
    }

    /// Landing instance `i` died on a filesystem failure: its unsynced bytes are lost (what
    /// recovery then resumes at is read on a copy of the store), and a new process takes its place
    /// in the group.
    fn landing_crashed(&mut self, i: usize, step: usize) -> anyhow::Result<()> {
        let crash = {
            let mut store = self.fs.lock();
            store.crash_of(self.landers[i].fs.id());
            let copy = SharedFs::of(store.clone());
            drop(store);
            let mut probe = LandingTask::new(copy, self.config.clone());
            let all = 0..self.log.streams.len();
            recovery(
                step,
                &mut probe,
                all,
                self.log,
                &self.config,
                &self.names.prefix,
            )?
        };
        self.crashes.push(crash);
        self.landers[i] = self.new_lander();
        Ok(())
    }

    /// The landing instance whose partition `stream` is: the one running instance that has a
    /// position for it (`None` while a rebalance moves it).
    fn landing_owner(&self, stream: usize) -> Option<usize> {
        let s = &self.log.streams[stream];
        let topic = self.names.of(&s.topic);
        let mut owners = (0..self.landers.len()).filter(|i| {
            let l = &self.landers[*i];
            l.up() && l.task.progress.position(&topic, s.partition).is_some()
        });
        let first = owners.next();
        owners.next().is_none().then_some(first).flatten()
    }

    /// Waits until the landing group is settled: every partition has one owner among the running
    /// instances, each running instance owns a partition (when there are enough), and each owner
    /// has landed every record handed over so far (after a rebalance or a crash, again from where
    /// its recovery resumed) — the clock held, as the model hands everything over again before
    /// the next record. An instance that dies on a simulated crash meanwhile is restarted.
    async fn landing_settled(&mut self, step: usize) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the landing group did not settle within {PATIENCE:?}"
            );
            for i in 0..self.landers.len() {
                let l = &mut self.landers[i];
                if l.up() && l.task.handle.is_finished() {
                    match (&mut l.task.handle).await? {
                        Err(e) if is_simulated(&e) => self.landing_crashed(i, step)?,
                        r => anyhow::bail!("landing instance {i} stopped: {r:?}"),
                    }
                }
            }
            let up = self.landers.iter().filter(|l| l.up()).count();
            let streams = self.log.streams.len();
            let owners: Vec<Option<usize>> = (0..streams).map(|s| self.landing_owner(s)).collect();
            let everyone = (0..self.landers.len())
                .filter(|i| self.landers[*i].up())
                .all(|i| owners.contains(&Some(i)));
            if owners.iter().any(Option::is_none) || (streams >= up && !everyone) {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
            // The first partition whose owner is behind: wait for it (a while, then look again).
            let behind = (0..streams).find_map(|t| {
                let s = &self.log.streams[t];
                let i = owners[t]?;
                let topic = self.names.of(&s.topic);
                let at = self.landers[i]
                    .task
                    .progress
                    .position(&topic, s.partition)?;
                (at < self.delivered[t]).then(|| (i, topic, s.partition, self.delivered[t] - 1))
            });
            let Some((i, topic, partition, offset)) = behind else {
                return Ok(());
            };
            let progress = self.landers[i].task.progress.clone();
            let _ = tokio::time::timeout(
                Duration::from_millis(20),
                progress.wait_for(&topic, partition, offset),
            )
            .await;
        }
    }

    /// The landing instance owning `stream`'s partition freezes past its session timeout (when
    /// another is running to take its partitions over): out of the group, its open files in
    /// hand. It wakes before step `wake`.
    async fn freeze_landing(&mut self, stream: usize, wake: usize) -> anyhow::Result<bool> {
        let Some(z) = self.landing_owner(stream) else {
            anyhow::bail!("no landing instance owns stream {stream}");
        };
        if self.landers.iter().filter(|l| l.up()).count() < 2 {
            return Ok(false);
        }
        let l = &mut self.landers[z];
        // A crash armed on it is called off: it wakes fenced, not crashed (as in the model).
        self.fs.lock().disarm(l.fs.id());
        l.frozen = Some(wake);
        l.task.progress.clear();
        let _ = l.task.pause.as_ref().expect("landing can pause").send(true);
        self.landing_settled(wake).await?;
        Ok(true)
    }

    /// Frozen landing instances due before step `at` (all with `None`) wake: each tries to commit
    /// what it has open and must be refused (fenced); a new process takes its place.
    async fn wake_landing(&mut self, at: Option<usize>, step: usize) -> anyhow::Result<()> {
        for z in 0..self.landers.len() {
            let l = &mut self.landers[z];
            let due = l.frozen.is_some_and(|w| at.is_none_or(|at| w <= at));
            if !due {
                continue;
            }
            let _ = l
                .task
                .pause
                .as_ref()
                .expect("landing can pause")
                .send(false);
            let woke = tokio::time::timeout(PATIENCE, &mut l.task.handle)
                .await
                .context("a woken landing zombie did not stop")??;
            l.frozen = None;
            match woke {
                Err(e) if is_fenced(&e) => self.landing_zombies += 1,
                Err(e) => return Err(e.context(format!("landing zombie {z}"))),
                Ok(_) => {}
            }
            let old = self.landers[z].fs.id();
            self.fs.lock().crash_of(old);
            self.landers[z] = self.new_lander();
        }
        self.landing_settled(step).await
    }

    /// The active analytics process dies (nothing of it runs any more) and an instance takes over
    /// from the committed offsets: a standby when there is one (the killed one comes back as a
    /// standby), else a new instance. Returns how many records the open transaction held: per
    /// partition, what the dead instance had received beyond what it had committed.
    async fn crash_analytics(&mut self) -> anyhow::Result<usize> {
        self.analytics.handle.abort();
        let _ = (&mut self.analytics.handle).await;
        let lost = self.open_records(&self.analytics);
        if self.standbys.is_empty() {
            self.start_analytics().await?;
        } else {
            self.standby_takes_over().await?;
            let again = self.new_instance();
            self.standbys.push(again);
        }
        Ok(lost)
    }

    /// The active instance freezes (its open transaction in hand, its lease consumer silent) past
    /// its session timeout: a standby takes over. It wakes before the record `freeze_records`
    /// steps after `step`. Returns what its open transaction held.
    async fn freeze_analytics(&mut self, step: usize) -> anyhow::Result<usize> {
        anyhow::ensure!(
            self.zombie.is_none() && !self.standbys.is_empty(),
            "a freeze needs a standby (and one frozen instance at a time)"
        );
        let lost = self.open_records(&self.analytics);
        if let Some(pause) = &self.analytics.pause {
            pause.send_replace(true);
        }
        let frozen = self.standby_takes_over().await?;
        self.zombie = Some((frozen, step + self.freeze_records));
        Ok(lost)
    }

    /// Wakes the frozen instance if it is due before `step` (`None`: whatever its step) and waits
    /// until it has stepped down: fenced by the instance that took over, or told that it lost
    /// the lease. It stays as a standby.
    async fn wake_zombie(&mut self, step: Option<usize>) -> anyhow::Result<()> {
        let due = self
            .zombie
            .as_ref()
            .is_some_and(|(_, wake)| step.is_none_or(|s| *wake <= s));
        if !due {
            return Ok(());
        }
        let (zombie, _) = self.zombie.take().expect("due");
        if let Some(pause) = &zombie.pause {
            pause.send_replace(false);
        }
        tokio::time::timeout(PATIENCE, async {
            while zombie.health.role() != Some(Role::STANDBY) && !zombie.handle.is_finished() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .context("the woken zombie did not step down")?;
        anyhow::ensure!(
            !zombie.handle.is_finished(),
            "the woken zombie stopped instead of standing by"
        );
        self.zombies += 1;
        self.standbys.push(zombie);
        Ok(())
    }

    /// Records the active instance `task` received beyond what it committed.
    fn open_records(&self, task: &Task<LiveSummary>) -> usize {
        let topic = self.names.of(EMBEDDINGS);
        let at = |p: &Progress, partition: i32| p.position(&topic, partition).unwrap_or(0);
        self.log
            .streams
            .iter()
            .filter(|s| s.topic == EMBEDDINGS)
            .map(|s| {
                let open = at(&task.progress, s.partition) - at(&task.committed, s.partition);
                open.max(0) as usize
            })
            .sum()
    }

    /// A standby becomes active (the lease group's choice) and settles; the instance that was
    /// active is returned.
    async fn standby_takes_over(&mut self) -> anyhow::Result<Task<LiveSummary>> {
        let next = tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(i) = self.standbys.iter().position(|t| is_active(&t.health)) {
                    return i;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .context("no standby took the analytics lease over")?;
        let next = self.standbys.remove(next);
        let old = std::mem::replace(&mut self.analytics, next);
        self.analytics_settled().await?;
        Ok(old)
    }

    /// A new analytics instance of the run's group (a standby while another holds the lease).
    fn new_instance(&self) -> Task<LiveSummary> {
        start_analytics(
            self.kafka,
            &self.names,
            self.analytics_job,
            false,
            &self.clock,
        )
    }

    /// Starts the standbys, one by one, each waited for until it stands by.
    async fn start_standbys(&mut self, n: usize) -> anyhow::Result<()> {
        for _ in 0..n {
            let t = self.new_instance();
            tokio::time::timeout(PATIENCE, async {
                while !(t.health.is_ready() && t.health.role() == Some(Role::STANDBY)) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .context("a standby analytics instance did not start")?;
            self.standbys.push(t);
        }
        Ok(())
    }

    /// Starts an analytics instance and waits until it is assigned and has handled again what
    /// its predecessor left uncommitted (so that it restores and replays at this clock).
    async fn start_analytics(&mut self) -> anyhow::Result<()> {
        self.analytics = self.new_instance();
        self.analytics_settled().await
    }

    /// Waits until the analytics instance is assigned and has handled again what its
    /// predecessor left uncommitted.
    async fn analytics_settled(&mut self) -> anyhow::Result<()> {
        let ready = tokio::time::timeout(PATIENCE, async {
            while !is_active(&self.analytics.health) && !self.analytics.handle.is_finished() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        ready
            .await
            .context("the analytics job was not assigned its partitions")?;
        let topic = self.names.of(EMBEDDINGS);
        for (i, s) in self.log.streams.iter().enumerate() {
            if s.topic == EMBEDDINGS && self.produced[i] > 0 {
                let last = self.produced[i] - 1;
                if let Some(r) = handled(&mut self.analytics, &topic, s.partition, last).await? {
                    anyhow::bail!("the analytics job stopped: {r:?}");
                }
            }
        }
        Ok(())
    }
}

/// Whether an analytics instance is active and restored.
fn is_active(health: &Health) -> bool {
    health.is_ready() && health.role() == Some(Role::ACTIVE)
}

fn is_simulated(e: &anyhow::Error) -> bool {
    e.chain().any(MemFs::is_crash)
}

/// Whether a landing instance stopped because another had fenced it.
fn is_fenced(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(atenex_landing::fs::is_fenced)
    })
}

/// A broker of the run's own, for scenarios that restart it: stopped and started again on the
/// same data directory and port. A JVM, or a container with `ATENEX_KAFKA=testcontainers`
/// ([`atenex_kafka::testing::OwnBroker`]).
struct OwnBroker {
    broker: atenex_kafka::testing::OwnBroker,
    _dir: tempfile::TempDir,
}

impl OwnBroker {
    fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let broker = atenex_kafka::testing::OwnBroker::start(dir.path())?;
        Ok(Self { broker, _dir: dir })
    }

    fn config(&self) -> KafkaConfig {
        self.broker.config()
    }

    /// Stops the broker (SIGTERM, a clean shutdown) and starts it again.
    fn restart(&mut self) -> anyhow::Result<()> {
        tokio::task::block_in_place(|| self.broker.restart())
            .with_context(|| format!("restarting the broker ({})", self.broker.kind()))
    }
}

/// Runs `scenario` with `seed` through the broker at `kafka` (or, for a scenario that restarts
/// the broker, through one of its own).
pub async fn run(scenario: &Scenario, seed: u64, kafka: &KafkaConfig) -> anyhow::Result<Outcome> {
    // (The services' refusals are read back from their dead-letter topics.)
    let (mut log, _) = full_log(scenario, seed)?;
    // The generated documents, stored where docproc reads them (as ingest stores uploads).
    let objects = if scenario.chunks() {
        let per_document = scenario
            .generate
            .as_ref()
            .map_or(1, |g| g.chunks_per_document);
        let dir = tempfile::tempdir()?;
        store_documents(&log, dir.path(), per_document)?;
        Some(dir)
    } else {
        None
    };
    let order = log.delivery();
    let plan = plan(scenario, seed, order.len());
    let mut own = if plan.broker.is_empty() {
        None
    } else {
        Some(tokio::task::block_in_place(OwnBroker::start)?)
    };
    // A member that did not leave its group (an aborted job, or one cut off by a broker restart)
    // holds the next rebalance until its session times out: the shortest the broker allows.
    let kafka = &own
        .as_ref()
        .map_or_else(|| kafka.clone(), OwnBroker::config)
        .with("session.timeout.ms", "6000")
        // Reconnect soon after a broker restart (the default backs off up to 10 s).
        .with("reconnect.backoff.max.ms", "500");
    let id = atenex_kafka::testing::unique("sim");
    let prefix = format!("{id}.");
    let names = Names {
        windows: format!("{prefix}analytics.flink"),
        late: format!("{prefix}analytics.late"),
        landing_dlq: scenario.landing.dead_letter_topic.as_deref().map(|name| {
            atenex_landing::task::dead_letter_topic(Some(&format!("{prefix}{name}")), "")
        }),
        prefix,
    };
    let mut topics: BTreeMap<String, i32> = log
        .topics()
        .into_iter()
        .map(|(t, n)| (names.of(&t), n))
        .collect();
    topics.entry(names.of(EMBEDDINGS)).or_insert(1);
    for t in topics.keys().cloned().collect::<Vec<_>>() {
        topics.insert(format!("{t}.dlq"), 1);
    }
    if let Some(t) = &names.landing_dlq {
        topics.insert(t.clone(), 1);
    }
    topics.insert(names.windows.clone(), 1);
    topics.insert(names.late.clone(), 1);
    let specs: Vec<TopicSpec> = topics
        .iter()
        .map(|(name, partitions)| TopicSpec {
            name: name.clone(),
            partitions: *partitions,
            replication: None,
        })
        .collect();
    // Kafka 4 refuses timestamps more than an hour ahead of the broker's clock by default
    // (KIP-937): scenarios are dated freely and may hold far-future records on purpose.
    create_topics_with(
        kafka,
        &specs,
        &[("message.timestamp.after.max.ms", "9223372036854775807")],
    )
    .await?;
    let mut config = landing_config(scenario, &log, &names.prefix)?;
    // Its consumer group is connect-<name>: one per run.
    config.name = id.clone();
    let first = order.first().map_or(0, |(s, o)| log.get(*s, *o).arrival);
    let clock = Clock::manual(first);
    let fs = SharedFs::new(scenario.faults.disk_latency);
    let analytics_job = (
        scenario.faults.analytics_batch.max(1),
        scenario.analytics_settings(),
    );
    let mut driver = Driver {
        kafka,
        log: &log,
        landers: Vec::new(),
        handles: 0,
        landing_zombies: 0,
        landing_freeze_records: scenario.faults.landing_freeze_records,
        analytics: start_analytics(kafka, &names, analytics_job, false, &clock),
        standbys: Vec::new(),
        zombie: None,
        zombies: 0,
        freeze_records: scenario.faults.analytics_freeze_records,
        names,
        config,
        fs,
        clock,
        analytics_job,
        crashes: Vec::new(),
        produced: vec![0; log.streams.len()],
        delivered: vec![0; log.streams.len()],
    };
    for _ in 0..scenario.faults.landing_instances.max(1) {
        let lander = driver.new_lander();
        driver.landers.push(lander);
    }
    driver.landing_settled(0).await?;
    // The first instance too is assigned at the first record's arrival; then the standbys join.
    driver.analytics_settled().await?;
    driver
        .start_standbys(scenario.faults.analytics_instances.max(1) - 1)
        .await?;
    // Docproc: the real service, reading the documents from the run's store.
    let docproc = match &objects {
        Some(dir) => Some(start_docproc(
            kafka,
            &driver.names,
            &driver.clock,
            dir.path(),
        )?),
        None => None,
    };
    // The embedding stage: the real service against the mock OpenAI with the scenario's faults.
    let openai = if scenario.embeds() {
        Some(start_embedding(kafka, &driver.names, &driver.clock, &scenario.openai).await?)
    } else {
        None
    };
    let producer = Producer::new(kafka)?;
    let mut analytics_lost = Vec::new();
    let mut armed_analytics = plan.analytics.iter().peekable();
    let mut armed_freezes = plan.analytics_freezes.iter().peekable();
    let mut armed_joins = plan.analytics_joins.iter().peekable();
    let mut armed_landing = plan.landing.iter().peekable();
    let mut landing_freezes = plan.landing_freezes.iter().peekable();
    let mut landing_joins = plan.landing_joins.iter().peekable();
    let mut armed_broker = plan.broker.iter().peekable();
    let mut broker_restarts = 0;
    for (i, (s, o)) in order.iter().enumerate() {
        let stream = &log.streams[*s];
        let r = log.get(*s, *o);
        while armed_broker.next_if(|at| **at <= i).is_some() {
            // Between two records: both jobs are idle, their clients reconnect.
            own.as_mut().expect("started for restarts").restart()?;
            broker_restarts += 1;
        }
        driver.wake_zombie(Some(i)).await?;
        while armed_joins.next_if(|at| **at <= i).is_some() {
            driver.start_standbys(1).await?;
        }
        if armed_analytics.next_if(|at| **at <= i).is_some() {
            analytics_lost.push(driver.crash_analytics().await?);
        } else if armed_freezes.next_if(|at| **at <= i).is_some() {
            analytics_lost.push(driver.freeze_analytics(i).await?);
        }
        driver.wake_landing(Some(i), i).await?;
        while landing_joins.next_if(|at| **at <= i).is_some() {
            let lander = driver.new_lander();
            driver.landers.push(lander);
            driver.landing_settled(i).await?;
        }
        if landing_freezes.peek().is_some_and(|at| **at <= i)
            && driver
                .freeze_landing(*s, i + driver.landing_freeze_records)
                .await?
        {
            landing_freezes.next();
        }
        if let Some((_, effects)) = armed_landing.next_if(|(at, _)| *at <= i) {
            let owner = driver
                .landing_owner(*s)
                .context("a partition without an owner")?;
            let id = driver.landers[owner].fs.id();
            driver.fs.lock().crash_after_of(id, *effects);
        }
        driver.clock.set(r.arrival);
        driver.delivered[*s] = o + 1;
        let topic = driver.names.of(&stream.topic);
        if stream.stage > 0 {
            // Produced by a service (docproc, embedding) from a record delivered just before.
            if stream.topic == EMBEDDINGS
                && let Some(r) =
                    handled(&mut driver.analytics, &topic, stream.partition, *o).await?
            {
                anyhow::bail!("the analytics job stopped: {r:?}");
            }
            driver.landing_settled(i).await?;
            continue;
        }
        let delivered = producer
            .send(OutRecord {
                topic: &topic,
                partition: Some(stream.partition),
                key: r.key.as_deref().map(str::as_bytes),
                payload: r.value.as_deref(),
                timestamp: Some(r.ts),
                headers: &[],
            })
            .await?;
        anyhow::ensure!(
            (delivered.partition, delivered.offset) == (stream.partition, *o),
            "produced {topic}[{}]@{o} as [{}]@{}: the topic was not empty",
            stream.partition,
            delivered.partition,
            delivered.offset
        );
        driver.produced[*s] = o + 1;
        if stream.topic == EMBEDDINGS
            && let Some(r) = handled(&mut driver.analytics, &topic, stream.partition, *o).await?
        {
            anyhow::bail!("the analytics job stopped: {r:?}");
        }
        driver.landing_settled(i).await?;
    }
    // Crashes still planned: several at the same record are one per record, the last ones here.
    for _ in armed_analytics {
        analytics_lost.push(driver.crash_analytics().await?);
    }
    for _ in armed_joins {
        driver.start_standbys(1).await?;
    }
    for _ in armed_freezes {
        driver.wake_zombie(None).await?;
        analytics_lost.push(driver.freeze_analytics(order.len()).await?);
    }
    driver.wake_zombie(None).await?;

    // A service is stopped once it has consumed all of its input: a record it refuses is waited
    // for by nothing else (its dead letter is read back at the end).
    if let Some(stage) = docproc {
        consumed(kafka, &driver.names, "docproc", &log, DOCUMENTS).await?;
        stage.stop().await.context("the docproc service failed")?;
    }
    let openai = match openai {
        Some(stage) => {
            consumed(kafka, &driver.names, "embedding", &log, CHUNKS).await?;
            Some(stage.stop().await?)
        }
        None => None,
    };

    // Analytics: the standbys stopped, then the active one (what it handled is committed), then
    // drained from the committed offsets.
    for standby in std::mem::take(&mut driver.standbys) {
        standby.stop.cancel();
        standby
            .handle
            .await?
            .context("a standby analytics instance failed when stopped")?;
    }
    driver.analytics.stop.cancel();
    (&mut driver.analytics.handle)
        .await?
        .context("the analytics job failed when stopped")?;
    let drain = start_analytics(kafka, &driver.names, analytics_job, true, &driver.clock);
    tokio::time::timeout(PATIENCE, drain.handle)
        .await
        .context("the analytics drain did not finish")??
        .context("the analytics drain failed")?;

    // Landing: a zombie still asleep wakes; then the instances are stopped in turn (each commits
    // what it has open and leaves the group); a planned crash may strike then, on the first
    // running one, and its new process lands again what was not committed.
    let end = order.len();
    for _ in landing_joins {
        let lander = driver.new_lander();
        driver.landers.push(lander);
        driver.landing_settled(end).await?;
    }
    driver.wake_landing(None, end).await?;
    'stopping: loop {
        if let Some((_, effects)) = armed_landing.next()
            && let Some(first) = driver.landers.iter().find(|l| l.up())
        {
            driver.fs.lock().crash_after_of(first.fs.id(), *effects);
        }
        for i in 0..driver.landers.len() {
            if !driver.landers[i].up() {
                continue;
            }
            driver.landers[i].task.stop.cancel();
            match (&mut driver.landers[i].task.handle).await? {
                Ok(_) => driver.landers[i].stopped = true,
                Err(e) if is_simulated(&e) => {
                    driver.landing_crashed(i, end)?;
                    driver.landing_settled(end).await?;
                    continue 'stopping;
                }
                Err(e) => return Err(e.context("the landing job failed when stopped")),
            }
        }
        break;
    }

    let (windows, late, dead_letters) = read_outputs(kafka, &log, &driver.names).await?;
    let fs = driver.fs.lock().clone();
    let days: Vec<String> = scenario.report.days.iter().map(|d| d.to_string()).collect();
    let reports = reports(&fs, &driver.config, &driver.names.prefix, &days).await?;
    let Driver {
        names,
        config,
        crashes,
        zombies,
        landing_zombies,
        ..
    } = driver;
    // What the services produced replaces the model's stand-ins (the mock's vectors, docproc's
    // values), where the model put them (a partition or offset it did not predict is an error).
    produced_by_services(kafka, &mut log, &names).await?;
    Ok(Outcome {
        windows,
        late,
        analytics_crashes: analytics_lost.len() - zombies,
        landing_zombies,
        analytics_zombies: zombies,
        analytics_lost,
        analytics_settings: analytics_job.1,
        analytics_order: None,
        analytics_watermark: None,
        analytics_transactions: None,
        reference: None,
        dead_letters,
        fs,
        config,
        prefix: names.prefix,
        crashes,
        landing_trace: None,
        landing_positions: None,
        broker_restarts,
        restarted_broker: own
            .as_ref()
            .filter(|_| broker_restarts > 0)
            .map(|o| o.broker.kind()),
        openai,
        reports,
        log,
    })
}

/// Waits until the service whose group is `service` (behind the run's prefix) has committed every
/// record the log has on `topic`.
async fn consumed(
    kafka: &KafkaConfig,
    names: &Names,
    service: &str,
    log: &Log,
    topic: &str,
) -> anyhow::Result<()> {
    let group = format!("{}{service}", names.prefix);
    let ends: BTreeMap<i32, i64> = log
        .streams
        .iter()
        .filter(|s| s.topic == topic)
        .map(|s| (s.partition, s.records.len() as i64))
        .collect();
    let partitions: Vec<i32> = ends.keys().copied().collect();
    let started = std::time::Instant::now();
    loop {
        let committed =
            atenex_kafka::admin::committed_offsets(kafka, &group, &names.of(topic), &partitions)?;
        let behind: Vec<(i32, Option<i64>)> = committed
            .into_iter()
            .filter(|(p, o)| ends[p] > 0 && o.is_none_or(|o| o < ends[p]))
            .collect();
        if behind.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < PATIENCE,
            "{service} did not consume all of {topic} within {PATIENCE:?}: committed {behind:?} of {ends:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A service of the pipeline running for a run, on a thread of its own (its consumer loop's
/// future is not `Send`).
struct Service {
    stop: CancellationToken,
    thread: std::thread::JoinHandle<anyhow::Result<atenex_kafka::consumer::RunSummary>>,
}

impl Service {
    /// Runs `handle` on every batch of `topic` consumed by `group`.
    fn start<H>(
        kafka: &KafkaConfig,
        group: String,
        topic: &str,
        mut handle: H,
    ) -> anyhow::Result<Self>
    where
        H: AsyncFnMut(&[atenex_kafka::Record]) -> anyhow::Result<()> + Send + 'static,
    {
        let consumer = Self::consumer(kafka, group, topic)?;
        Ok(Self::spawn(async move |stop| {
            consumer.run(stop, async |batch| handle(batch).await).await
        }))
    }

    /// The group's consumer of `topic`, batches filled for 2 ms.
    fn consumer(
        kafka: &KafkaConfig,
        group: String,
        topic: &str,
    ) -> anyhow::Result<atenex_kafka::GroupConsumer> {
        let mut settings = atenex_kafka::GroupSettings::new(group, &[topic]);
        settings.max_wait = Duration::from_millis(2);
        atenex_kafka::GroupConsumer::new(kafka, settings)
    }

    /// Runs `run` on a thread of its own (a runtime of one thread) until `stop` is cancelled.
    fn spawn<F>(run: F) -> Self
    where
        F: AsyncFnOnce(CancellationToken) -> anyhow::Result<atenex_kafka::consumer::RunSummary>
            + Send
            + 'static,
    {
        let stop = CancellationToken::new();
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(run(stop))
            }
        });
        Self { stop, thread }
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the service panicked"))??;
        Ok(())
    }
}

/// Stores each generated document where docproc reads it: `dir` holds what the scenario names
/// under [`OBJECTS`].
fn store_documents(log: &Log, dir: &std::path::Path, per_document: usize) -> anyhow::Result<()> {
    for s in log.streams.iter().filter(|s| s.topic == DOCUMENTS) {
        for r in &s.records {
            // A malformed document (the scenario's) has no object: docproc refuses it first.
            let Some(v) = r
                .value
                .as_deref()
                .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
            else {
                continue;
            };
            let key = v["s3_path"]
                .as_str()
                .and_then(|u| u.strip_prefix(OBJECTS))
                .map(|k| k.trim_start_matches('/'));
            if let (Some(key), Some(document)) = (key, v["document_id"].as_str()) {
                let path = dir.join(key);
                std::fs::create_dir_all(path.parent().expect("a file"))?;
                std::fs::write(path, crate::generate::document_text(document, per_document))?;
            }
        }
    }
    Ok(())
}

fn start_docproc(
    kafka: &KafkaConfig,
    names: &Names,
    clock: &Clock,
    objects: &std::path::Path,
) -> anyhow::Result<Service> {
    use atenex_docproc::chunker::ChunkerConfig;
    use atenex_docproc::extract::Limits;
    let mut docproc = atenex_docproc::service::Docproc::new(
        atenex_ingest::storage::Storage::open_as(&objects.to_string_lossy(), OBJECTS)?,
        Producer::new(kafka)?,
        ChunkerConfig::default(),
        Limits::default(),
    )?;
    docproc.output_topic = names.of(CHUNKS);
    docproc.clock = clock.clone();
    let docproc = Arc::new(docproc);
    Service::start(
        kafka,
        format!("{}docproc", names.prefix),
        &names.of(DOCUMENTS),
        async move |batch| docproc.handle(batch).await.map(drop),
    )
}

/// The embedding stage of a run: the mock OpenAI and the service.
struct EmbeddingStage {
    mock: atenex_mock_openai::Server,
    service: Service,
}

impl EmbeddingStage {
    /// Stops the service; what the mock answered: requests, 429s, 500s.
    async fn stop(self) -> anyhow::Result<(u64, u64, u64)> {
        self.service
            .stop()
            .await
            .context("the embedding service failed")?;
        let s = &self.mock.stats;
        let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        Ok((n(&s.requests), n(&s.rate_limited), n(&s.server_errors)))
    }
}

async fn start_embedding(
    kafka: &KafkaConfig,
    names: &Names,
    clock: &Clock,
    faults: &crate::scenario::OpenAi,
) -> anyhow::Result<EmbeddingStage> {
    use atenex_embedding::client::{ApiKey, Client, ClientConfig};
    use atenex_embedding::retry::RetryPolicy;
    use atenex_embedding::service::{Embedding, EmbeddingConfig};
    let mut config = atenex_mock_openai::Config::default();
    let burst = |b: Option<[u64; 2]>| b.map(|[from, to]| from..to);
    config.faults.rate_limit_burst = burst(faults.rate_limit_burst);
    config.faults.error_burst = burst(faults.error_burst);
    if let Some(wait) = faults.retry_after {
        config.faults.retry_after = wait;
    }
    if let Some(wait) = faults.latency {
        config.faults.latency = wait;
    }
    let mock = atenex_mock_openai::Server::start(config).await?;
    let client = Client::new(ClientConfig {
        base_url: mock.base_url.clone(),
        api_key: ApiKey::new("sk-simulator"),
        model: "text-embedding-3-small".into(),
        dimensions: None,
        timeout: Duration::from_secs(10),
    })?;
    let embedding = Embedding::new(
        client,
        Producer::new(kafka)?,
        EmbeddingConfig {
            retry: RetryPolicy {
                max_attempts: 100,
                ..RetryPolicy::default()
            },
            output_topic: names.of(EMBEDDINGS),
            clock: clock.clone(),
            ..EmbeddingConfig::default()
        },
    )?;
    // The service's own loop: batches pipelined as in production.
    let consumer = Service::consumer(
        kafka,
        format!("{}embedding", names.prefix),
        &names.of(CHUNKS),
    )?;
    let service = Service::spawn(async move |stop| Arc::new(embedding).run(&consumer, stop).await);
    Ok(EmbeddingStage { mock, service })
}

/// Replaces the model's stand-ins for what the services produced (every stream of a later stage)
/// with the records they actually produced: the same partitions, offsets, keys and timestamps, or
/// an error.
async fn produced_by_services(
    kafka: &KafkaConfig,
    log: &mut Log,
    names: &Names,
) -> anyhow::Result<()> {
    let topics: std::collections::BTreeSet<String> = log
        .streams
        .iter()
        .filter(|s| s.stage > 0)
        .map(|s| s.topic.clone())
        .collect();
    for topic in topics {
        let prefixed = names.of(&topic);
        for e in atenex_kafka::record::read_all(kafka, &[&prefixed]).await? {
            let stream = log
                .streams
                .iter_mut()
                .find(|s| s.topic == topic && s.partition == e.partition)
                .with_context(|| format!("{topic}: a record in partition {}", e.partition))?;
            let r = stream
                .records
                .get_mut(e.offset as usize)
                .with_context(|| format!("{topic}: a record the model did not predict: {e:?}"))?;
            anyhow::ensure!(
                e.key == r.key && e.ts == Some(r.ts),
                "{topic}[{}]@{}: key {:?} at {:?}, the model has {:?} at {}",
                e.partition,
                e.offset,
                e.key,
                e.ts,
                r.key,
                r.ts
            );
            r.value = e.payload.map(String::into_bytes);
        }
    }
    Ok(())
}

/// The committed window results, late records and dead letters, parsed back from their topics.
async fn read_outputs(
    kafka: &KafkaConfig,
    log: &Log,
    names: &Names,
) -> anyhow::Result<(Vec<WindowResult>, Vec<LateRecord>, Vec<DeadLetter>)> {
    let mut topics = vec![names.windows.clone(), names.late.clone()];
    let mut inputs: Vec<String> = log.topics().into_iter().map(|(t, _)| t).collect();
    if !inputs.iter().any(|t| t == EMBEDDINGS) {
        inputs.push(EMBEDDINGS.to_owned());
    }
    topics.extend(inputs.iter().map(|t| format!("{}.dlq", names.of(t))));
    topics.extend(names.landing_dlq.clone());
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let envelopes = atenex_kafka::record::read_all(kafka, &refs).await?;
    let time = |s: &str| -> anyhow::Result<i64> {
        Ok(chrono::DateTime::parse_from_rfc3339(s)
            .with_context(|| format!("{s:?} is not RFC 3339"))?
            .timestamp_millis())
    };
    let (mut windows, mut late, mut letters) = (Vec::new(), Vec::new(), Vec::new());
    for e in envelopes {
        if e.topic.ends_with(".dlq") {
            let header = |name: &str| {
                e.header(name)
                    .map(str::to_owned)
                    .with_context(|| format!("a dead letter without {name}"))
            };
            letters.push(DeadLetter {
                stage: header(dlq_headers::STAGE)?,
                topic: header(dlq_headers::TOPIC)?.replacen(&names.prefix, "", 1),
                partition: header(dlq_headers::PARTITION)?.parse()?,
                offset: header(dlq_headers::OFFSET)?.parse()?,
                reason: header(dlq_headers::REASON)?,
                to: e.topic.replacen(&names.prefix, "", 1),
            });
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(e.payload.as_deref().unwrap_or("null"))?;
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        if e.topic == names.windows {
            let w: atenex_contracts::AnalyticsWindow = serde_json::from_value(v)?;
            windows.push(WindowResult {
                start: w.window_start.timestamp_millis(),
                end: w.window_end.timestamp_millis(),
                company_id: w.company_id,
                count: w.chunk_count,
            });
        } else {
            late.push(LateRecord {
                chunk_id: text("chunk_id"),
                document_id: text("document_id"),
                company_id: text("company_id"),
                partition: v["partition"].as_i64().context("partition")? as i32,
                offset: v["offset"].as_i64().context("offset")?,
                ts: v["ts"].as_i64().context("ts")?,
                window_start: time(&text("window_start"))?,
                watermark: v["watermark"].as_str().map(time).transpose()?,
                reason: match text("reason").as_str() {
                    "late" => LateReason::Late,
                    _ => LateReason::FutureTimestamp,
                },
            });
        }
    }
    Ok((windows, late, letters))
}

/// The real report job (`--skip-bad-records --allow-empty`) for every day of the
/// `embeddings.ready` landing tree and the extra days, over a copy of the committed files on
/// local disk.
async fn reports(
    fs: &MemFs,
    config: &LandingConfig,
    prefix: &str,
    extra: &[String],
) -> anyhow::Result<BTreeMap<String, DailyReport>> {
    let dir = tempfile::tempdir()?;
    let landing = dir.path().join("landing");
    let topic = format!("{prefix}{EMBEDDINGS}");
    let mut days: std::collections::BTreeSet<String> = extra.iter().cloned().collect();
    let root = format!("{}/", config.topics_dir);
    for path in fs.list(&format!("{}/{topic}", config.topics_dir))? {
        if atenex_landing::recovery::parse_committed(&path, &topic).is_none() {
            continue;
        }
        if let Some(day) = day_of(&path) {
            days.insert(day);
        }
        let target = landing.join(path.trim_start_matches(&root));
        std::fs::create_dir_all(target.parent().expect("a file has a parent"))?;
        std::fs::write(&target, fs.read(&path)?.unwrap_or_default())?;
    }
    let landing_url = landing.to_string_lossy().into_owned();
    let mut out = BTreeMap::new();
    for day in days {
        let date = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            .with_context(|| format!("report day {day:?} is not YYYY-MM-DD"))?;
        let mut opts = atenex_report::Options::new(
            date,
            atenex_report::Location::open(&landing_url)?,
            atenex_report::Location::open(&dir.path().join("reports").to_string_lossy())?,
        );
        opts.topic = topic.clone();
        opts.allow_empty = true;
        opts.skip_bad_records = true;
        opts.threads = 1;
        let report = match atenex_report::run(&opts).await {
            Ok(summary) => DailyReport::Rows {
                rows: atenex_report::read::read_rows(std::path::Path::new(&summary.output))?
                    .into_iter()
                    .map(|r| {
                        (
                            (r.company_id, r.document_id),
                            (r.total_chunks as u64, r.unique_chunks as u64),
                        )
                    })
                    .collect(),
                skipped: summary.bad_skipped,
            },
            // Named relative to the landing tree, with the scenario's topic names.
            Err(e) => DailyReport::Failed {
                code: e.code(),
                message: e
                    .to_string()
                    .replace(&format!("{landing_url}/"), "")
                    .replace(prefix, ""),
            },
        };
        out.insert(day, report);
    }
    Ok(out)
}
