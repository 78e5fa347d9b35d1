//! The lease of an analytics group in Kafka (see [`crate::role`] for what it decides): a consumer
//! in the lease group `<group>.lease` subscribed to the one-partition lease topic, with the
//! cooperative-sticky assignor (a member that joins never takes the lease from a live holder).
//! Its rebalance callbacks become [`RoleEvent`]s on a channel; the job reads them between
//! batches. The consumer is polled by a task of its own, aborted with the [`Lease`] (a process
//! that dies leaves the group when its connection goes, or after the session timeout).

use crate::role::RoleEvent;
use anyhow::Context as _;
use atenex_kafka::KafkaConfig;
use atenex_kafka::admin::{TopicSpec, create_topics, partition_counts};
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

struct LeaseContext {
    events: mpsc::UnboundedSender<RoleEvent>,
}

impl ClientContext for LeaseContext {}

impl ConsumerContext for LeaseContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let event = match rebalance {
            Rebalance::Assign(tpl) if tpl.count() > 0 => RoleEvent::LeaseAssigned,
            Rebalance::Revoke(tpl) if tpl.count() > 0 => RoleEvent::LeaseRevoked,
            Rebalance::Error(e) => {
                tracing::warn!(error = %e, "lease group rebalance error");
                return;
            }
            // Cooperative rebalancing hands out increments; an empty one changes nothing.
            _ => return,
        };
        let _ = self.events.send(event);
    }
}

/// Membership of the lease group. Dropping it leaves the group.
pub struct Lease {
    consumer: Arc<StreamConsumer<LeaseContext>>,
    topic: String,
    poller: tokio::task::JoinHandle<()>,
    pub events: mpsc::UnboundedReceiver<RoleEvent>,
}

/// The lease group of an analytics group.
pub fn lease_group(group: &str) -> String {
    format!("{group}.lease")
}

impl Lease {
    /// Makes sure the lease topic exists with exactly one partition (creates it if missing) and
    /// joins the lease group with `session_timeout`.
    pub async fn join(
        config: &KafkaConfig,
        group: &str,
        topic: &str,
        session_timeout: Duration,
        pause: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> anyhow::Result<Self> {
        ensure_lease_topic(config, topic).await?;
        let session_ms = session_timeout.as_millis().max(1);
        let consumer_config = config
            .clone()
            .with("group.id", &lease_group(group))
            .with("enable.auto.commit", "false")
            .with("partition.assignment.strategy", "cooperative-sticky")
            .with("session.timeout.ms", &session_ms.to_string())
            .with(
                "heartbeat.interval.ms",
                &(session_ms / 5).max(1).to_string(),
            )
            // The lease topic holds no records; its members only poll for rebalances.
            .with("enable.partition.eof", "false");
        let (tx, events) = mpsc::unbounded_channel();
        let consumer: StreamConsumer<LeaseContext> = consumer_config
            .client_config()
            .create_with_context(LeaseContext { events: tx })
            .map_err(|e| consumer_config.explain(e))?;
        let consumer = Arc::new(consumer);
        consumer
            .subscribe(&[topic])
            .with_context(|| format!("cannot subscribe to the lease topic {topic}"))?;
        let poller = tokio::spawn(poll(consumer.clone(), topic.to_owned(), pause));
        Ok(Self {
            consumer,
            topic: topic.to_owned(),
            poller,
            events,
        })
    }

    /// Leaves the lease group and joins it again as a new member: whatever this instance held is
    /// handed to the group's choice.
    pub fn rejoin(&self) -> anyhow::Result<()> {
        self.consumer.unsubscribe();
        self.consumer
            .subscribe(&[self.topic.as_str()])
            .with_context(|| format!("cannot subscribe to the lease topic {}", self.topic))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

/// Polls the lease consumer so that its rebalance callbacks run (the topic has no records).
/// The simulator's frozen instance (`pause`) leaves the lease group while frozen — to the group
/// as to its successor, as a process silent past its session timeout — and joins it again when
/// it wakes; its job loop meanwhile holds its open transaction.
async fn poll(
    consumer: Arc<StreamConsumer<LeaseContext>>,
    topic: String,
    mut pause: Option<tokio::sync::watch::Receiver<bool>>,
) {
    let mut frozen = false;
    loop {
        let changed = async {
            match &mut pause {
                Some(rx) => rx.wait_for(|p| *p != frozen).await.map(|p| *p).ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = consumer.recv() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "lease consumer");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Some(now) = changed => {
                frozen = now;
                if frozen {
                    consumer.unsubscribe();
                } else if let Err(e) = consumer.subscribe(&[topic.as_str()]) {
                    tracing::error!(error = %e, "cannot join the lease group again");
                }
            }
        }
    }
}

/// Creates the lease topic with one partition if it does not exist; refuses one with more (two
/// members could each hold a partition: two active instances).
async fn ensure_lease_topic(config: &KafkaConfig, topic: &str) -> anyhow::Result<()> {
    let mut counts = partition_counts(config, &[topic])?;
    if counts.is_empty() {
        let spec = TopicSpec {
            name: topic.to_owned(),
            partitions: 1,
            replication: None,
        };
        create_topics(config, &[spec]).await?;
        counts = partition_counts(config, &[topic])?;
    }
    match counts.get(topic) {
        Some(1) => Ok(()),
        n => anyhow::bail!(
            "the lease topic {topic} has {} partitions; it must have exactly one, or several instances would each hold a lease: delete it (the job creates it) or give --lease-topic a new name",
            n.copied().unwrap_or(0)
        ),
    }
}
