//! The Kafka side: `analytics.flink` and `analytics.late` read with `isolation.level=read_committed`
//! (only what the analytics job committed), every partition assigned by hand (no group, nothing
//! committed), from the first record written at or after `now - since`, then live. Each record
//! goes to the history with its position; a value that cannot be read is counted as malformed.

use crate::decode;
use crate::history::Position;
use crate::server::Shared;
use anyhow::Context as _;
use atenex_kafka::KafkaConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::Duration;

/// The topics the dashboard reads.
#[derive(Debug, Clone)]
pub struct Topics {
    pub windows: String,
    pub late: String,
}

/// How long one metadata or offset look-up may take; then it is tried again.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Reads until `shared.shutdown`; waits for topics that do not exist yet.
pub async fn run(
    kafka: &KafkaConfig,
    topics: &Topics,
    since: Duration,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    let config = kafka
        .clone()
        .with("group.id", "atenex-dashboard")
        .with("enable.auto.commit", "false")
        .with("enable.auto.offset.store", "false")
        .with("isolation.level", "read_committed")
        .with("allow.auto.create.topics", "false");
    let consumer: StreamConsumer = config
        .client_config()
        .create()
        .map_err(|e| config.explain(e))?;
    // A broker that is starting (or restarting on its old log) answers metadata and offset
    // look-ups with errors for a while: wait for it as for a missing topic, saying why.
    let assignment = loop {
        match start_positions(&consumer, kafka, topics, since) {
            Ok(Ok(assignment)) => break assignment,
            Ok(Err(missing)) => tracing::warn!(?missing, "waiting for the topics to exist"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "waiting for the broker"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            () = shared.shutdown.cancelled() => return Ok(()),
        }
    };
    consumer.assign(&assignment)?;
    shared.health.set_ready(true);
    tracing::info!(partitions = assignment.count(), "dashboard reading");
    loop {
        let m = tokio::select! {
            () = shared.shutdown.cancelled() => return Ok(()),
            m = consumer.recv() => m,
        };
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "consumer error");
                continue;
            }
        };
        let (letter, record) = if m.topic() == topics.windows {
            ('w', decode::window(m.payload()))
        } else {
            ('l', decode::late(m.payload()))
        };
        let kind = match &record {
            crate::history::Record::Window(_) => "window",
            crate::history::Record::Late(_) => "late",
            crate::history::Record::Malformed { reason } => {
                tracing::warn!(topic = m.topic(), partition = m.partition(), offset = m.offset(), %reason, "malformed record");
                "malformed"
            }
        };
        metrics::counter!("atenex_dashboard_records_total", "kind" => kind).increment(1);
        let at = Position {
            topic: letter,
            partition: m.partition(),
            offset: m.offset(),
        };
        shared.update(|h| {
            let changed = h.apply(at, record);
            metrics::gauge!("atenex_dashboard_windows").set(h.len() as f64);
            changed
        });
    }
}

/// Every partition of both topics at the first record written at or after `now - since` (the
/// end where there is none); `Ok(Err(missing))` while a topic does not exist.
fn start_positions(
    consumer: &StreamConsumer,
    kafka: &KafkaConfig,
    topics: &Topics,
    since: Duration,
) -> anyhow::Result<Result<TopicPartitionList, Vec<String>>> {
    let from = chrono::Utc::now().timestamp_millis() - since.as_millis() as i64;
    let mut times = TopicPartitionList::new();
    let mut missing = Vec::new();
    for topic in [&topics.windows, &topics.late] {
        let md = atenex_kafka::blocking(|| consumer.fetch_metadata(Some(topic), TIMEOUT))
            .with_context(|| format!("cannot fetch metadata from {}", kafka.bootstrap_servers()))?;
        match md.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                for p in t.partitions() {
                    times.add_partition_offset(topic, p.id(), Offset::Offset(from))?;
                }
            }
            _ => missing.push(topic.clone()),
        }
    }
    if !missing.is_empty() {
        return Ok(Err(missing));
    }
    let start = atenex_kafka::blocking(|| consumer.offsets_for_times(times, TIMEOUT))
        .context("cannot look up the offsets of --since")?;
    let mut assignment = TopicPartitionList::new();
    for e in start.elements() {
        if let Err(err) = e.error() {
            anyhow::bail!(
                "cannot look up the offset of --since in {} [{}]: {err}",
                e.topic(),
                e.partition()
            );
        }
        let offset = match e.offset() {
            Offset::Offset(o) => Offset::Offset(o),
            _ => Offset::End,
        };
        assignment.add_partition_offset(e.topic(), e.partition(), offset)?;
    }
    Ok(Ok(assignment))
}
