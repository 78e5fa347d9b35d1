//! Topic administration: `atenex topics create` (idempotent) and the topics a replay needs.

use crate::config::KafkaConfig;
use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use std::collections::BTreeMap;
use std::time::Duration;

/// Partitions and replication of a topic to create. `replication: None` uses the broker's
/// `default.replication.factor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication: Option<i32>,
}

/// What `create_topics` found or did for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    Created {
        partitions: usize,
    },
    /// It existed already; it was left as it is.
    Existed {
        partitions: usize,
    },
}

const TIMEOUT: Duration = Duration::from_secs(30);

fn admin(config: &KafkaConfig) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    config
        .client_config()
        .create()
        .map_err(|e| config.explain(e))
}

fn metadata_client(config: &KafkaConfig) -> anyhow::Result<BaseConsumer> {
    let config = config.clone().with("allow.auto.create.topics", "false");
    config
        .client_config()
        .create()
        .map_err(|e| config.explain(e))
}

/// Partition counts of `topics` that exist (missing topics are left out).
pub fn partition_counts(
    config: &KafkaConfig,
    topics: &[&str],
) -> anyhow::Result<BTreeMap<String, usize>> {
    let client = metadata_client(config)?;
    let mut out = BTreeMap::new();
    for topic in topics {
        let md =
            crate::blocking(|| client.fetch_metadata(Some(topic), TIMEOUT)).with_context(|| {
                format!("cannot fetch metadata from {}", config.bootstrap_servers())
            })?;
        for t in md.topics() {
            if t.error().is_none() && !t.partitions().is_empty() {
                out.insert(t.name().to_owned(), t.partitions().len());
            }
        }
    }
    Ok(out)
}

/// The offsets `group` has committed on these partitions of `topic` (`None`: nothing committed),
/// read without joining the group (an offset fetch).
pub fn committed_offsets(
    config: &KafkaConfig,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<Vec<(i32, Option<i64>)>> {
    Ok(
        committed_offsets_with_metadata(config, group, topic, partitions)?
            .into_iter()
            .map(|(p, o, _)| (p, o))
            .collect(),
    )
}

/// [`committed_offsets`] with each offset's metadata (empty when none was committed).
pub fn committed_offsets_with_metadata(
    config: &KafkaConfig,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<Vec<(i32, Option<i64>, String)>> {
    let config = config.clone().with("group.id", group);
    let consumer: BaseConsumer = config
        .client_config()
        .create()
        .map_err(|e| config.explain(e))?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition(topic, *p);
    }
    let committed = crate::blocking(|| consumer.committed_offsets(tpl, TIMEOUT))
        .with_context(|| format!("cannot read the offsets {group} committed on {topic}"))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| {
            (
                e.partition(),
                crate::consumer::committed_offset(e.offset()),
                e.metadata().to_owned(),
            )
        })
        .collect())
}

/// Creates each topic that does not exist; existing ones are reported and left alone.
pub async fn create_topics(
    config: &KafkaConfig,
    specs: &[TopicSpec],
) -> anyhow::Result<Vec<(String, TopicOutcome)>> {
    create_topics_with(config, specs, &[]).await
}

/// [`create_topics`], with these topic configurations on the topics it creates.
pub async fn create_topics_with(
    config: &KafkaConfig,
    specs: &[TopicSpec],
    topic_config: &[(&str, &str)],
) -> anyhow::Result<Vec<(String, TopicOutcome)>> {
    let admin = admin(config)?;
    let new: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|s| {
            topic_config.iter().fold(
                NewTopic::new(
                    &s.name,
                    s.partitions,
                    TopicReplication::Fixed(s.replication.unwrap_or(-1)),
                ),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .with_context(|| format!("cannot create topics on {}", config.bootstrap_servers()))?;
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let mut outcomes = Vec::new();
    for (spec, result) in specs.iter().zip(results) {
        match result {
            Ok(_) => outcomes.push((
                spec.name.clone(),
                TopicOutcome::Created {
                    partitions: spec.partitions as usize,
                },
            )),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                outcomes.push((spec.name.clone(), TopicOutcome::Existed { partitions: 0 }))
            }
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    let counts = wait_for_topics(config, &names, 1).await?;
    for (name, outcome) in &mut outcomes {
        if let TopicOutcome::Existed { partitions } = outcome {
            *partitions = counts.get(name).copied().unwrap_or(0);
        }
    }
    Ok(outcomes)
}

/// Makes sure each `(topic, partitions)` exists with at least that many partitions: creates
/// missing topics (broker-default replication) and adds partitions to smaller ones.
pub async fn ensure_partitions(
    config: &KafkaConfig,
    needed: &BTreeMap<String, usize>,
) -> anyhow::Result<()> {
    if needed.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = needed.keys().map(String::as_str).collect();
    let existing = partition_counts(config, &names)?;
    let missing: Vec<TopicSpec> = needed
        .iter()
        .filter(|(t, _)| !existing.contains_key(*t))
        .map(|(t, &n)| TopicSpec {
            name: t.clone(),
            partitions: n as i32,
            replication: None,
        })
        .collect();
    if !missing.is_empty() {
        for (name, outcome) in create_topics(config, &missing).await? {
            tracing::info!(topic = %name, ?outcome, "topic for replay");
        }
    }
    let grow: Vec<NewPartitions<'_>> = needed
        .iter()
        .filter_map(|(t, &n)| match existing.get(t) {
            Some(&have) if have < n => Some(NewPartitions::new(t, n)),
            _ => None,
        })
        .collect();
    if !grow.is_empty() {
        let admin = admin(config)?;
        let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        for r in admin.create_partitions(&grow, &opts).await? {
            if let Err((name, code)) = r {
                anyhow::bail!("cannot add partitions to {name}: {code}");
            }
        }
    }
    for (topic, &n) in needed {
        wait_for_topics(config, &[topic.as_str()], n).await?;
    }
    Ok(())
}

/// Waits until the metadata shows every topic with at least `min_partitions` partitions.
async fn wait_for_topics(
    config: &KafkaConfig,
    topics: &[&str],
    min_partitions: usize,
) -> anyhow::Result<BTreeMap<String, usize>> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let counts = partition_counts(config, topics)?;
        let ready = topics
            .iter()
            .all(|t| counts.get(*t).is_some_and(|&n| n >= min_partitions));
        if ready {
            return Ok(counts);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "topics {topics:?} did not show {min_partitions} partition(s) in the metadata within {TIMEOUT:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
