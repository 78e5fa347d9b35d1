//! What a run produced, in either driver: the committed windows and late records, dead letters,
//! the landing tree, the daily reports, and what the faults did. The checker and the render read
//! only this.

use crate::faults::Crash;
use crate::log::Log;
use atenex_analytics::core::{LateRecord, Output, Settings, WindowResult};
use atenex_landing::config::LandingConfig;
use atenex_landing::fs::MemFs;
use std::collections::BTreeMap;

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
    /// The dead-letter topic it was sent to (as the scenario names topics).
    pub to: String,
}

/// One step of the landing job as the model driver ran it: what it handed its instances, in
/// order. The landing reference ([`crate::reference::landing_files`]) replays these steps under
/// the connector's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LandingStep {
    /// The record at `offset` of the log's stream `stream`, at processing time `now`, to the
    /// instance that owns its partition (its processing-time rules apply to its partitions only).
    Record {
        stream: usize,
        offset: i64,
        now: i64,
        instance: usize,
    },
    /// End of input: everything open in the instance's partitions is committed.
    Flush { instance: usize },
    /// The partition of `stream` was taken from its owner (a rebalance; its owner may be frozen
    /// and not know): its open files are never committed.
    Revoke { stream: usize },
    /// The partition of `stream` was given to `instance`, which recovered it and resumes at
    /// `resume` (`None`: nothing committed yet).
    Assign {
        stream: usize,
        instance: usize,
        resume: Option<i64>,
    },
    /// The step before failed (the process of `instance` died); its new process then resumed
    /// each of its partitions as `crashes[n]` says.
    Crash { n: usize, instance: usize },
}

/// What a run produced.
pub struct Outcome {
    pub log: Log,
    /// What the analytics job committed (windows and late records), crashes included.
    pub windows: Vec<WindowResult>,
    pub late: Vec<LateRecord>,
    pub analytics_crashes: usize,
    /// Frozen landing instances that woke as zombies and were fenced (their commit refused).
    pub landing_zombies: usize,
    /// Frozen analytics instances that woke as zombies and stepped down (fenced, or told first
    /// that they had lost the lease).
    pub analytics_zombies: usize,
    /// Per analytics crash (and freeze), the records its open transaction held (lost with it, handled again
    /// by the next instance): the same in both drivers when their transactions are the same.
    pub analytics_lost: Vec<usize>,
    /// The analytics job's settings (the scenario's `[analytics]`).
    pub analytics_settings: Settings,
    /// The model driver: the order in which a run without crashes emitted its windows and late
    /// records (the scenario's run, or, when it has crashes, the comparison run without them and
    /// without idleness); `None`: not observed.
    pub analytics_order: Option<Vec<Output>>,
    /// The model driver: the analytics task's watermark after the last record, before the drain
    /// (`None`: not observed).
    pub analytics_watermark: Option<Option<i64>>,
    /// The model driver: the analytics transactions' sizes (`None`: not observed).
    pub analytics_transactions: Option<Transactions>,
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
    /// The model driver: what the landing task reported after its final flush as each partition's
    /// committed position (`committed_positions`, the live job's lag metric). `None`: not observed.
    pub landing_positions: Option<Vec<(String, i32, i64)>>,
    /// The model driver's landing steps (the broker driver's deliveries are Kafka's: `None`).
    pub landing_trace: Option<Vec<LandingStep>>,
    /// Broker restarts done (the model plans them and has nothing to restart).
    pub broker_restarts: usize,
    /// The broker driver: what kind of broker of its own it restarted (`jvm` or `container`,
    /// [`atenex_kafka::testing::OwnBroker::kind`]); `None` when none was restarted.
    pub restarted_broker: Option<&'static str>,
    /// What the mock OpenAI answered (broker driver, when the embedding stage ran): requests,
    /// 429s, 500s.
    pub openai: Option<(u64, u64, u64)>,
    /// The daily report of each day: date (YYYY-MM-DD) → report.
    pub reports: BTreeMap<String, DailyReport>,
}

/// The sizes of the analytics job's transactions, as the model driver saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transactions {
    /// `--max-batch`: the most records a transaction holds.
    pub max_batch: usize,
    /// Records in each committed transaction, in order.
    pub committed: Vec<usize>,
    /// Records handed to the tasks (replays after a crash included).
    pub handed: usize,
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

/// Analytics outputs apart: the window results and the records not counted, each in the order
/// they were emitted.
pub fn split_outputs(outputs: &[Output]) -> (Vec<WindowResult>, Vec<LateRecord>) {
    let (mut windows, mut late) = (Vec::new(), Vec::new());
    for o in outputs {
        match o {
            Output::Window(w) => windows.push(w.clone()),
            Output::Late(l) => late.push(l.clone()),
        }
    }
    (windows, late)
}
