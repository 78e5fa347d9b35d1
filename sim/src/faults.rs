//! Faults: where they strike (the same plan in both drivers, from the seed), and what a landing
//! crash left (where recovery resumed each partition).

use crate::log::Log;
use crate::scenario::Scenario;
use crate::store::SharedFs;
use atenex_landing::config::LandingConfig;
use atenex_landing::fs::{Fs as _, MemFs};
use atenex_landing::task::LandingTask;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

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
    /// Freezes of the active analytics instance (it wakes `analytics_freeze_records` records
    /// later, a zombie).
    pub analytics_freezes: Vec<usize>,
    /// Analytics instances started (standbys joining the group).
    pub analytics_joins: Vec<usize>,
    /// Freezes of the landing instance owning the record's partition (it wakes
    /// `landing_freeze_records` records later, a zombie).
    pub landing_freezes: Vec<usize>,
    /// Landing instances started (joining the group: partitions move to them).
    pub landing_joins: Vec<usize>,
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
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xF2EE_2E00);
    let analytics_freezes = steps(&mut rng, f.analytics_freezes, &f.analytics_freeze_at);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5A1E_0001);
    let analytics_joins = steps(&mut rng, f.analytics_joins, &f.analytics_join_at);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xF2EE_2E01);
    let landing_freezes = steps(&mut rng, f.landing_freezes, &f.landing_freeze_at);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5A1E_0002);
    let landing_joins = steps(&mut rng, f.landing_joins, &f.landing_join_at);
    Plan {
        landing_freezes,
        landing_joins,
        analytics,
        landing,
        broker,
        analytics_freezes,
        analytics_joins,
    }
}

/// One landing crash: where it happened and where recovery resumed each partition of the
/// instance that crashed.
#[derive(Debug, Clone)]
pub struct Crash {
    pub step: usize,
    /// Per (topic, partition), scenario names.
    pub resume: BTreeMap<(String, i32), Option<i64>>,
    /// Max committed end + 1 per partition, read from the files after the crash.
    pub committed_end: BTreeMap<(String, i32), Option<i64>>,
    /// Files the crash left that are none of what Connect's HDFS sink keeps: a committed file
    /// (`<topics.dir>/<topic>/<dir>/<topic>+<partition>+<start>+<end>.json`), a temp file under
    /// `<topics.dir>/+tmp/<topic>/`, or a partition's commit log `<logs.dir>/<topic>/<partition>/log`.
    pub strays: Vec<String>,
    /// The committed positions (`committed_positions`, what the live job commits to Kafka) the task
    /// reported when the crash was armed, scenario names (model driver only): recovery must resume
    /// each at or after it, or records the job called landed are gone.
    pub reported: Vec<(String, i32, i64)>,
}

/// Recovery of the partitions of `streams` after a crash (what a restarted landing instance does
/// on assignment), with the committed ends + 1 read from the file names.
pub fn recovery(
    step: usize,
    task: &mut LandingTask<SharedFs>,
    streams: impl IntoIterator<Item = usize>,
    log: &Log,
    config: &LandingConfig,
    prefix: &str,
) -> anyhow::Result<Crash> {
    let mut resume = BTreeMap::new();
    let mut committed = BTreeMap::new();
    let strays = strays(&task.fs().lock(), log, config, prefix);
    for s in streams.into_iter().map(|i| &log.streams[i]) {
        let topic = format!("{prefix}{}", s.topic);
        let key = (s.topic.clone(), s.partition);
        resume.insert(key.clone(), task.assign(&topic, s.partition)?);
        let end = committed_end(&task.fs().lock(), config, &topic, s.partition);
        committed.insert(key, end);
    }
    Ok(Crash {
        step,
        resume,
        committed_end: committed,
        strays,
        reported: Vec::new(),
    })
}

/// The files in the store that are not where Connect's HDFS sink puts its files (see
/// [`Crash::strays`]); the names are written here from Connect's layout, not taken from the job.
fn strays(fs: &MemFs, log: &Log, config: &LandingConfig, prefix: &str) -> Vec<String> {
    let topics: Vec<String> = log
        .streams
        .iter()
        .map(|s| format!("{prefix}{}", s.topic))
        .collect();
    let logs: Vec<String> = log
        .streams
        .iter()
        .map(|s| {
            format!(
                "{}/{prefix}{}/{}/log",
                config.logs_dir, s.topic, s.partition
            )
        })
        .collect();
    fs.paths()
        .into_iter()
        .filter(|path| {
            let known = logs.contains(path)
                || topics.iter().any(|t| {
                    path.starts_with(&format!("{}/+tmp/{t}/", config.topics_dir))
                        || (path.starts_with(&format!("{}/{t}/", config.topics_dir))
                            && atenex_landing::recovery::parse_committed(path, t).is_some())
                });
            !known
        })
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
