//! `atenex landing --config FILE`: the sink as a Kafka consumer group (`connect-<name>`, as Connect
//! names it). On assignment each partition is recovered from the filesystem and consumption starts
//! at its last committed end offset + 1 — the files, not the group offsets, are the truth; the group
//! offsets are committed after each landing commit so that lag shows. Malformed records stop the job
//! naming topic, partition, offset and reason, or, with `errors.tolerance=all`, go to the
//! dead-letter topic. SIGINT/SIGTERM commit what is open and exit 0: no half-committed state.

use crate::config::{ErrorTolerance, LandingConfig, Topics};
use crate::fs::Fs;
use crate::sink::{Sink, place};
use anyhow::Context as _;
use atenex_kafka::{Clock, DeadLetters, KafkaConfig, Producer, Progress, Record};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

type Shared<F> = Arc<Mutex<Sink<F>>>;

/// Recovers partitions inside the rebalance, before they are assigned, so that consumption starts
/// exactly at the first offset not yet landed.
struct LandingContext<F: Fs> {
    sink: Shared<F>,
    failure: Mutex<Option<String>>,
}

impl<F: Fs + Send> ClientContext for LandingContext<F> {}

impl<F: Fs + Send> ConsumerContext for LandingContext<F> {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut sink = self.sink.lock().expect("not poisoned");
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                for mut e in tpl.elements() {
                    match sink.open(e.topic(), e.partition()) {
                        Ok(Some(resume)) => {
                            let _ = e.set_offset(Offset::Offset(resume));
                        }
                        Ok(None) => {}
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
    run_with(kafka, config, fs, shutdown, &Clock::System, None).await
}

/// [`run`] with the processing-time clock given, publishing each handled record's position to
/// `progress` (the simulator's broker driver).
pub async fn run_with<F: Fs + Send + 'static>(
    kafka: &KafkaConfig,
    config: &LandingConfig,
    fs: F,
    shutdown: CancellationToken,
    clock: &Clock,
    progress: Option<&Progress>,
) -> anyhow::Result<u64> {
    let sink: Shared<F> = Arc::new(Mutex::new(Sink::new(fs, config.clone(), false)));
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
        ErrorTolerance::All { .. } => Some(DeadLetters::new(Producer::new(kafka)?, "landing")),
        ErrorTolerance::None => None,
    };
    tracing::info!(%group, topics = ?refs, "landing started");
    let mut landed = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
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
        let value = m.payload.as_deref().unwrap_or(b"null");
        let now = clock.now_ms();
        match place(&config.timestamp_extractor, m.timestamp, value, now) {
            Ok((ts, v)) => {
                let mut sink = sink.lock().expect("not poisoned");
                // Rotations due by processing time happen before this record is placed, not
                // only on the next timer tick (the model driver does the same).
                sink.tick(now)?;
                sink.write(&m.topic, m.partition, m.offset, ts, &v, now)?;
                landed += 1;
            }
            Err(reason) => match &dead {
                Some(d) => {
                    let topic = match &config.errors {
                        ErrorTolerance::All { dlq_topic: Some(t) } => Some(t.clone()),
                        _ => None,
                    };
                    route(d, &m, &reason, topic.as_deref()).await?;
                }
                None => anyhow::bail!(
                    "{}[{}]@{}: {reason} (errors.tolerance=all sends such records to the dead-letter topic)",
                    m.topic,
                    m.partition,
                    m.offset
                ),
            },
        }
        if let Some(p) = progress {
            p.handled(&m.topic, m.partition, m.offset + 1);
        }
    }
    sink.lock().expect("not poisoned").flush_all()?;
    commit_positions(&consumer, &sink);
    tracing::info!(landed, "landing stopped: everything open was committed");
    Ok(landed)
}

async fn route(
    dead: &DeadLetters,
    record: &Record,
    reason: &str,
    topic: Option<&str>,
) -> anyhow::Result<()> {
    match topic {
        // A configured dead-letter topic: the record as if it came from there.
        Some(t) => {
            let mut r = record.clone();
            r.topic = t
                .strip_suffix(atenex_contracts::topics::DLQ_SUFFIX)
                .unwrap_or(t)
                .to_owned();
            dead.route(&r, reason).await
        }
        None => dead.route(record, reason).await,
    }
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
