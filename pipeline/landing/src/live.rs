//! `atenex landing --config FILE`: the sink as a Kafka consumer group (`connect-<name>`, as Connect
//! names it). On assignment each partition is recovered from the filesystem and consumption starts
//! at its last committed end offset + 1 — the files, not the group offsets, are the truth; the group
//! offsets are committed after each landing commit so that lag shows. Malformed records stop the job
//! naming topic, partition, offset and reason, or, with `errors.tolerance=all`, go to the
//! dead-letter topic. SIGINT/SIGTERM commit what is open and exit 0: no half-committed state.
//!
//! Every decision is the [`LandingTask`]'s (recovery, placement, tolerance, ticks, revocation);
//! this adapter consumes, reads the clock, hands records to the task and carries out what it
//! says (assign at the recovered offsets, route dead letters, commit group offsets).

use crate::config::{ErrorTolerance, LandingConfig, Topics};
use crate::fs::Fs;
use crate::task::{Handled, LandingRecord, LandingTask, Stop};
use anyhow::Context as _;
use atenex_kafka::dead_letter::DeadLetter;
use atenex_kafka::progress::{frozen, thawed};
use atenex_kafka::{Clock, KafkaConfig, Producer, Progress, Record};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

type Shared<F> = Arc<Mutex<LandingTask<F>>>;

/// Recovers partitions inside the rebalance, before they are assigned, so that consumption starts
/// exactly at the first offset not yet landed.
struct LandingContext<F: Fs> {
    sink: Shared<F>,
    failure: Mutex<Option<String>>,
    progress: Option<Progress>,
    /// Frozen (the simulator's zombie): rebalances do not reach the sink, as a stopped process
    /// never hears that its partitions were taken.
    frozen: std::sync::atomic::AtomicBool,
}

/// What the simulator's broker driver observes and controls of an instance.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Each partition's position as the instance goes: set to the recovered offset on
    /// assignment, the next offset after each handled record, removed on revocation.
    pub progress: Option<Progress>,
    /// While it says `true` the instance is frozen, as a process stopped past its session
    /// timeout: it leaves the group without touching its open files (their partitions go to
    /// other instances). When woken it tries to commit everything it has open — the worst a
    /// zombie can do — and stops: with the error if it was fenced, else with `Ok`.
    pub pause: Option<tokio::sync::watch::Receiver<bool>>,
}

impl<F: Fs + Send> ClientContext for LandingContext<F> {}

impl<F: Fs + Send> ConsumerContext for LandingContext<F> {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        if self.frozen.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = consumer.unassign();
            return;
        }
        let mut sink = self.sink.lock().expect("not poisoned");
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                for mut e in tpl.elements() {
                    match sink.assign(e.topic(), e.partition()) {
                        Ok(resume) => {
                            if let Some(resume) = resume {
                                let _ = e.set_offset(Offset::Offset(resume));
                            }
                            if let Some(p) = &self.progress {
                                p.assigned(e.topic(), e.partition(), resume.unwrap_or(0));
                            }
                        }
                        Err(error) => {
                            *self.failure.lock().expect("not poisoned") = Some(format!(
                                "recovery of {}[{}] failed: {error}",
                                e.topic(),
                                e.partition()
                            ));
                        }
                    }
                }
                tracing::info!(
                    partitions = tpl.count(),
                    "assigned; recovered from the landed files"
                );
                if let Err(e) = consumer.assign(tpl) {
                    *self.failure.lock().expect("not poisoned") =
                        Some(format!("assign failed: {e}"));
                }
            }
            _ => {
                for e in tpl.elements() {
                    if let Some(p) = &self.progress {
                        p.forget(e.topic(), e.partition());
                    }
                    if let Err(error) = sink.revoke(e.topic(), e.partition()) {
                        tracing::warn!(%error, "discarding temp files on revocation failed; recovery removes them");
                    }
                }
                let _ = consumer.unassign();
            }
        }
    }
}

pub async fn run<F: Fs + Send + 'static>(
    kafka: &KafkaConfig,
    config: &LandingConfig,
    fs: F,
    shutdown: CancellationToken,
) -> anyhow::Result<u64> {
    run_with(
        kafka,
        config,
        fs,
        shutdown,
        &Clock::System,
        Hooks::default(),
    )
    .await
}

/// [`run`] with the processing-time clock given and the simulator's [`Hooks`].
pub async fn run_with<F: Fs + Send + 'static>(
    kafka: &KafkaConfig,
    config: &LandingConfig,
    fs: F,
    shutdown: CancellationToken,
    clock: &Clock,
    hooks: Hooks,
) -> anyhow::Result<u64> {
    let Hooks {
        progress,
        mut pause,
    } = hooks;
    // Instances writing one store name their temp files apart (docs/landing.md, Several instances).
    let owner = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let sink: Shared<F> = Arc::new(Mutex::new(
        LandingTask::new(fs, config.clone()).owned_by(&owner),
    ));
    let group = format!("connect-{}", config.name);
    let consumer_config = kafka
        .clone()
        .with("group.id", &group)
        .with("enable.auto.commit", "false")
        .with("enable.auto.offset.store", "false")
        .with_default("auto.offset.reset", "earliest");
    let consumer: StreamConsumer<LandingContext<F>> = consumer_config
        .client_config()
        .create_with_context(LandingContext {
            sink: sink.clone(),
            failure: Mutex::new(None),
            progress: progress.clone(),
            frozen: Default::default(),
        })
        .map_err(|e| consumer_config.explain(e))?;
    let subscription: Vec<String> = match &config.topics {
        Topics::List(l) => l.clone(),
        Topics::Regex(r) => vec![format!("^{r}")],
    };
    let refs: Vec<&str> = subscription.iter().map(String::as_str).collect();
    consumer
        .subscribe(&refs)
        .with_context(|| format!("cannot subscribe to {refs:?}"))?;
    let dead = match &config.errors {
        ErrorTolerance::All { .. } => Some(Producer::new(kafka)?),
        ErrorTolerance::None => None,
    };
    tracing::info!(%group, topics = ?refs, "landing started");
    let mut landed = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            () = frozen(&mut pause) => {
                // Out of the group without a word to the sink; polled (nothing comes) so that
                // the group hears it leave, until woken.
                consumer.context().frozen.store(true, std::sync::atomic::Ordering::SeqCst);
                consumer.unsubscribe();
                tracing::warn!("frozen (simulated): out of the group, its open files kept");
                loop {
                    tokio::select! {
                        () = thawed(&mut pause) => break,
                        _ = consumer.recv() => {}
                    }
                }
                tracing::warn!("woken: committing what it has open, as a zombie would");
                sink.lock().expect("not poisoned").flush_all()?;
                return Ok(landed);
            }
            _ = tick.tick() => {
                sink.lock().expect("not poisoned").tick(clock.now_ms())?;
                commit_positions(&consumer, &sink);
                continue;
            }
            r = consumer.recv() => r,
        };
        if let Some(f) = consumer
            .context()
            .failure
            .lock()
            .expect("not poisoned")
            .take()
        {
            anyhow::bail!(f);
        }
        let m = match received {
            Ok(m) => Record::from_message(&m),
            Err(e) => {
                tracing::warn!(error = %e, "consumer error");
                continue;
            }
        };
        let record = LandingRecord {
            topic: &m.topic,
            partition: m.partition,
            offset: m.offset,
            timestamp: m.timestamp,
            value: m.payload.as_deref(),
        };
        let handled = sink
            .lock()
            .expect("not poisoned")
            .record(&record, clock.now_ms());
        match handled {
            Ok(Handled::Landed) => landed += 1,
            Ok(Handled::DeadLetter { topic, reason }) => {
                let producer = dead.as_ref().context("dead letters without a producer")?;
                route(producer, &m, &reason, topic).await?;
            }
            // The filesystem's own error, so that callers can tell what failed.
            Err(Stop::Fs(e)) => return Err(e.into()),
            Err(e @ Stop::Refused { .. }) => return Err(e.into()),
        }
        if let Some(p) = &progress {
            p.handled(&m.topic, m.partition, m.offset + 1);
        }
    }
    sink.lock().expect("not poisoned").flush_all()?;
    commit_positions(&consumer, &sink);
    tracing::info!(landed, "landing stopped: everything open was committed");
    Ok(landed)
}

/// Sends `record` to the dead-letter `topic` the task chose, with the reason in its headers, and
/// waits for the acknowledgement.
async fn route(
    producer: &Producer,
    record: &Record,
    reason: &str,
    topic: String,
) -> anyhow::Result<()> {
    let mut letter = DeadLetter::new(record, reason, "landing");
    letter.topic = topic;
    let headers = letter.header_refs();
    producer.send(letter.out_record(record, &headers)).await?;
    letter.log(record);
    Ok(())
}

/// Commits the group offsets of partitions whose records are all landed (lag visibility only).
fn commit_positions<F: Fs + Send>(consumer: &StreamConsumer<LandingContext<F>>, sink: &Shared<F>) {
    let positions = sink.lock().expect("not poisoned").committed_positions();
    if positions.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in positions {
        let _ = tpl.add_partition_offset(&t, p, Offset::Offset(o));
    }
    if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
        tracing::debug!(error = %e, "group offset commit (for lag only)");
    }
}
