//! The broker driver: the scenario through a real Kafka broker and the real jobs.
//!
//! The generated log is produced, record by record in delivery order, to a topic with the
//! scenario's partitions, each record at its partition and with its event time as the record
//! timestamp. The real `atenex analytics` loop ([`atenex_analytics::live`]) and the real landing
//! loop ([`atenex_landing::live`]) run as tasks with a manual clock: before each record the clock
//! is set to its arrival time, and the next record is produced only once both jobs have handled
//! it (their published positions, [`atenex_kafka::Progress`]). So processing time and the order
//! across partitions are the scenario's — what the model driver assumes — while consumption,
//! transactions, committed offsets with their metadata, group rebalances, restarts and fencing are
//! Kafka's. At the end the analytics job is stopped and started again with `--drain` (every open
//! window fires after a restore from the committed offsets), the landing job is stopped (it commits
//! what is open), and the real report job (DataFusion, Parquet) runs for each day.
//!
//! Faults, at the same input indices as in the model ([`crate::model::plan`]): an analytics crash
//! aborts the job's task (no clean-up runs; a new instance with the same `transactional.id` fences
//! it and restores from the committed offsets); a landing crash makes the landing filesystem fail
//! after the planned number of effects, the job dies on the error, the unsynced bytes are lost and
//! a new instance recovers from the files.
//!
//! The landing filesystem is the in-memory one with crash semantics (shared with the model):
//! crashes must strike at the same effect in both drivers. The HDFS adapter has its own tests
//! against a MiniDFSCluster (pipeline/landing/tests/fs.rs).

use crate::generate::{Rec, generate};
use crate::model::{self, Crash, Outcome, plan};
use crate::scenario::Scenario;
use anyhow::Context as _;
use atenex_analytics::core::{LateReason, LateRecord, Settings, WindowResult};
use atenex_analytics::live::{LiveOptions, LiveSummary};
use atenex_kafka::admin::{TopicSpec, create_topics};
use atenex_kafka::observe::Health;
use atenex_kafka::{Clock, KafkaConfig, OutRecord, Producer, Progress};
use atenex_landing::config::LandingConfig;
use atenex_landing::fs::{Fs, MemFs};
use atenex_landing::sink::Sink;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a job may take to handle one record before the driver gives up (a group join after a
/// restart is the slow part).
const PATIENCE: Duration = Duration::from_secs(60);

/// The in-memory filesystem, shared by the landing job (which owns a handle) and the driver (which
/// arms crashes and reads the files).
#[derive(Debug, Clone, Default)]
pub struct SharedFs(Arc<Mutex<MemFs>>);

impl SharedFs {
    pub fn lock(&self) -> MutexGuard<'_, MemFs> {
        self.0.lock().expect("not poisoned")
    }
}

impl Fs for SharedFs {
    fn append(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.lock().append(path, data)
    }
    fn sync(&mut self, path: &str) -> io::Result<()> {
        self.lock().sync(path)
    }
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.lock().rename(from, to)
    }
    fn delete(&mut self, path: &str) -> io::Result<()> {
        self.lock().delete(path)
    }
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.lock().read(path)
    }
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        self.lock().list(dir)
    }
}

/// Topic and group names of one run (unique: runs share the broker).
struct Names {
    input: String,
    windows: String,
    late: String,
    group: String,
}

/// One instance of a job running as a task.
struct Task<T> {
    handle: JoinHandle<anyhow::Result<T>>,
    stop: CancellationToken,
    progress: Progress,
}

fn start_landing(
    kafka: &KafkaConfig,
    config: &LandingConfig,
    fs: &SharedFs,
    clock: &Clock,
) -> Task<u64> {
    let (kafka, config, fs, clock) = (kafka.clone(), config.clone(), fs.clone(), clock.clone());
    let stop = CancellationToken::new();
    let progress = Progress::default();
    let handle = tokio::spawn({
        let (stop, progress) = (stop.clone(), progress.clone());
        async move {
            atenex_landing::live::run_with(&kafka, &config, fs, stop, &clock, Some(&progress)).await
        }
    });
    Task {
        handle,
        stop,
        progress,
    }
}

fn start_analytics(
    kafka: &KafkaConfig,
    names: &Names,
    batch: usize,
    drain: bool,
    clock: &Clock,
) -> Task<LiveSummary> {
    let stop = CancellationToken::new();
    let progress = Progress::default();
    let opts = LiveOptions {
        settings: Settings::default(),
        input_topic: names.input.clone(),
        output_topic: names.windows.clone(),
        late_topic: names.late.clone(),
        group: names.group.clone(),
        transactional_id: format!("{}-analytics", names.group),
        max_batch: batch,
        max_wait: Duration::from_millis(1),
        drain,
        clock: clock.clone(),
        progress: Some(progress.clone()),
    };
    let kafka = kafka.clone();
    let handle = tokio::spawn({
        let stop = stop.clone();
        async move { atenex_analytics::live::run(&kafka, &opts, stop, Health::default()).await }
    });
    Task {
        handle,
        stop,
        progress,
    }
}

/// What the landing job's recovery will do after a crash, and the committed ends it reads.
fn crash_record(
    step: usize,
    fs: &MemFs,
    config: &LandingConfig,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<Crash> {
    let mut probe = Sink::new(fs.clone(), config.clone(), false);
    let mut resume = BTreeMap::new();
    let mut committed_end = BTreeMap::new();
    for p in 0..partitions {
        resume.insert(p, probe.open(topic, p)?);
        committed_end.insert(p, model::committed_end(fs, config, topic, p));
    }
    Ok(Crash {
        step,
        resume,
        committed_end,
    })
}

struct Driver<'a> {
    kafka: &'a KafkaConfig,
    names: Names,
    config: LandingConfig,
    fs: SharedFs,
    clock: Clock,
    partitions: i32,
    landing: Task<u64>,
    crashes: Vec<Crash>,
}

impl Driver<'_> {
    /// The landing job died on a filesystem failure: lose what was not synced, start a new one.
    async fn landing_crashed(&mut self, step: usize) -> anyhow::Result<()> {
        let crash = {
            let mut fs = self.fs.lock();
            fs.crash();
            crash_record(step, &fs, &self.config, &self.names.input, self.partitions)?
        };
        self.crashes.push(crash);
        self.landing = start_landing(self.kafka, &self.config, &self.fs, &self.clock);
        Ok(())
    }

    /// Waits until the landing job handled `offset` of `partition`, restarting it when it dies.
    async fn landing_handled(
        &mut self,
        step: usize,
        partition: i32,
        offset: i64,
    ) -> anyhow::Result<()> {
        loop {
            let progress = self.landing.progress.clone();
            let (topic, handle) = (&self.names.input, &mut self.landing.handle);
            let waited = tokio::time::timeout(PATIENCE, async {
                tokio::select! {
                    () = progress.wait_for(topic, partition, offset) => None,
                    r = handle => Some(r),
                }
            })
            .await
            .with_context(|| {
                format!("the landing job did not handle {partition}[{offset}] within {PATIENCE:?}")
            })?;
            match waited {
                None => return Ok(()),
                Some(Ok(Err(e))) if is_simulated(&e) => self.landing_crashed(step).await?,
                Some(r) => anyhow::bail!("the landing job stopped: {r:?}"),
            }
        }
    }
}

fn is_simulated(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains("simulated crash")
}

async fn analytics_handled(
    task: &mut Task<LiveSummary>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> anyhow::Result<()> {
    let progress = task.progress.clone();
    let handle = &mut task.handle;
    let waited = tokio::time::timeout(PATIENCE, async {
        tokio::select! {
            () = progress.wait_for(topic, partition, offset) => None,
            r = handle => Some(r),
        }
    })
    .await
    .with_context(|| {
        format!("the analytics job did not handle {partition}[{offset}] within {PATIENCE:?}")
    })?;
    match waited {
        None => Ok(()),
        Some(r) => anyhow::bail!("the analytics job stopped: {r:?}"),
    }
}

/// Runs `scenario` with `seed` through the broker at `kafka`.
pub async fn run(scenario: &Scenario, seed: u64, kafka: &KafkaConfig) -> anyhow::Result<Outcome> {
    let log = generate(&scenario.generate, seed)?;
    let order = model::merged(&log);
    let plan = plan(scenario, seed, order.len());
    let partitions = log.len() as i32;
    let id = atenex_kafka::testing::unique("sim");
    let names = Names {
        input: format!("{id}.embeddings.ready"),
        windows: format!("{id}.analytics.flink"),
        late: format!("{id}.analytics.late"),
        group: id.clone(),
    };
    let spec = |name: &str, partitions: i32| TopicSpec {
        name: name.to_owned(),
        partitions,
        replication: None,
    };
    create_topics(
        kafka,
        &[
            spec(&names.input, partitions),
            spec(&names.windows, 1),
            spec(&names.late, 1),
        ],
    )
    .await?;
    let mut config = model::landing_config(scenario, &names.input)?;
    // Its consumer group is connect-<name>: one per run.
    config.name = id.clone();
    let first = order
        .first()
        .map_or(0, |(p, o)| log[*p as usize][*o as usize].arrival);
    let clock = Clock::manual(first);
    let fs = SharedFs::default();
    let batch = scenario.faults.analytics_batch.max(1);
    let mut analytics = start_analytics(kafka, &names, batch, false, &clock);
    let landing = start_landing(kafka, &config, &fs, &clock);
    let mut driver = Driver {
        kafka,
        names,
        config,
        fs,
        clock,
        partitions,
        landing,
        crashes: Vec::new(),
    };
    let producer = Producer::new(kafka)?;
    let mut analytics_crashes = 0;
    let mut armed_analytics = plan.analytics.iter().peekable();
    let mut armed_landing = plan.landing.iter().peekable();
    for (i, (p, o)) in order.iter().enumerate() {
        let r: &Rec = &log[*p as usize][*o as usize];
        if armed_analytics.next_if(|s| **s <= i).is_some() {
            // The process dies: nothing of it runs any more.
            analytics.handle.abort();
            let _ = (&mut analytics.handle).await;
            analytics_crashes += 1;
            analytics = start_analytics(kafka, &driver.names, batch, false, &driver.clock);
        }
        if let Some((_, effects)) = armed_landing.next_if(|(s, _)| *s <= i) {
            driver.fs.lock().crash_after(*effects);
        }
        driver.clock.set(r.arrival);
        let value = r.value();
        let delivered = producer
            .send(OutRecord {
                topic: &driver.names.input,
                partition: Some(*p),
                key: Some(r.document.as_bytes()),
                payload: Some(&value),
                timestamp: Some(r.ts),
                headers: &[],
            })
            .await?;
        anyhow::ensure!(
            (delivered.partition, delivered.offset) == (*p, *o),
            "produced {}[{}] as {}[{}]: the topic was not empty",
            p,
            o,
            delivered.partition,
            delivered.offset
        );
        analytics_handled(&mut analytics, &driver.names.input, *p, *o).await?;
        driver.landing_handled(i, *p, *o).await?;
    }

    // Analytics: stopped (what it handled is committed), then drained from the committed offsets.
    analytics.stop.cancel();
    (&mut analytics.handle)
        .await?
        .context("the analytics job failed when stopped")?;
    let drain = start_analytics(kafka, &driver.names, batch, true, &driver.clock);
    tokio::time::timeout(PATIENCE, drain.handle)
        .await
        .context("the analytics drain did not finish")??
        .context("the analytics drain failed")?;

    // Landing: stopped (it commits what is open); a planned crash may strike then.
    let end = order.len();
    loop {
        if let Some((_, effects)) = armed_landing.next() {
            driver.fs.lock().crash_after(*effects);
        }
        driver.landing.stop.cancel();
        match (&mut driver.landing.handle).await? {
            Ok(_) => break,
            Err(e) if is_simulated(&e) => {
                driver.landing_crashed(end).await?;
                // The new instance lands what was not committed, then is stopped again.
                let resume = driver.crashes.last().expect("just pushed").resume.clone();
                for (p, from) in resume {
                    let len = log[p as usize].len() as i64;
                    if from.unwrap_or(0) < len {
                        driver.landing_handled(end, p, len - 1).await?;
                    }
                }
            }
            Err(e) => return Err(e.context("the landing job failed when stopped")),
        }
    }

    let (windows, late) = read_outputs(kafka, &driver.names).await?;
    let fs = driver.fs.lock().clone();
    let reports = reports(
        &fs,
        &driver.config,
        &driver.names.input,
        &scenario.report.days,
    )
    .await?;
    Ok(Outcome {
        log,
        windows,
        late,
        analytics_crashes,
        reference: None,
        fs,
        config: driver.config,
        topic: driver.names.input,
        crashes: driver.crashes,
        reports,
    })
}

/// The committed window results and late records, parsed back from their topics.
async fn read_outputs(
    kafka: &KafkaConfig,
    names: &Names,
) -> anyhow::Result<(Vec<WindowResult>, Vec<LateRecord>)> {
    let envelopes = atenex_kafka::record::read_all(kafka, &[&names.windows, &names.late]).await?;
    let time = |s: &str| -> anyhow::Result<i64> {
        Ok(chrono::DateTime::parse_from_rfc3339(s)
            .with_context(|| format!("{s:?} is not RFC 3339"))?
            .timestamp_millis())
    };
    let (mut windows, mut late) = (Vec::new(), Vec::new());
    for e in envelopes {
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
    Ok((windows, late))
}

/// The real report job for every day of the landing tree and the extra days, over a copy of the
/// committed files on local disk.
async fn reports(
    fs: &MemFs,
    config: &LandingConfig,
    topic: &str,
    extra: &[String],
) -> anyhow::Result<BTreeMap<String, crate::check::ReportRows>> {
    let dir = tempfile::tempdir()?;
    let landing = dir.path().join("landing");
    let mut days: std::collections::BTreeSet<String> = extra.iter().cloned().collect();
    let root = format!("{}/", config.topics_dir);
    for path in fs.list(&format!("{}/{topic}", config.topics_dir))? {
        if atenex_landing::recovery::parse_committed(&path, topic).is_none() {
            continue;
        }
        if let Some(day) = crate::check::day_of(&path) {
            days.insert(day);
        }
        let target = landing.join(path.trim_start_matches(&root));
        std::fs::create_dir_all(target.parent().expect("a file has a parent"))?;
        std::fs::write(&target, fs.read(&path)?.unwrap_or_default())?;
    }
    let mut out = BTreeMap::new();
    for day in days {
        let date = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            .with_context(|| format!("report day {day:?} is not YYYY-MM-DD"))?;
        let mut opts = atenex_report::Options::new(
            date,
            atenex_report::Location::open(&landing.to_string_lossy())?,
            atenex_report::Location::open(&dir.path().join("reports").to_string_lossy())?,
        );
        opts.topic = topic.to_owned();
        opts.allow_empty = true;
        opts.threads = 1;
        let summary = atenex_report::run(&opts)
            .await
            .with_context(|| format!("the report of {day}"))?;
        let rows = atenex_report::read::read_rows(std::path::Path::new(&summary.output))?
            .into_iter()
            .map(|r| {
                (
                    (r.company_id, r.document_id),
                    (r.total_chunks as u64, r.unique_chunks as u64),
                )
            })
            .collect();
        out.insert(day, rows);
    }
    Ok(out)
}
