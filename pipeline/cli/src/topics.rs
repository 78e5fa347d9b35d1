//! `atenex topics create`.

use crate::KafkaArgs;
use atenex_kafka::admin::{TopicOutcome, TopicSpec, create_topics};
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum TopicsCommand {
    /// Create every pipeline topic that does not exist yet (idempotent): documents.raw,
    /// chunks.processed, embeddings.ready, analytics.flink, their .dlq topics, analytics.late, and
    /// the analytics instances' lease topic analytics.lease (always one partition). Existing
    /// topics are reported and left unchanged.
    Create(CreateArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    kafka: KafkaArgs,

    /// Partitions of each new topic.
    #[arg(long, value_name = "N", env = "ATENEX_TOPIC_PARTITIONS", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,

    /// Replication factor of each new topic [default: the broker's default.replication.factor].
    #[arg(long, value_name = "N", env = "ATENEX_TOPIC_REPLICATION_FACTOR", value_parser = clap::value_parser!(i32).range(1..))]
    replication_factor: Option<i32>,
}

pub async fn run(cmd: TopicsCommand) -> anyhow::Result<()> {
    let TopicsCommand::Create(args) = cmd;
    let mut specs: Vec<TopicSpec> = atenex_contracts::topics::all_pipeline_topics()
        .into_iter()
        .map(|name| TopicSpec {
            name,
            partitions: args.partitions,
            replication: args.replication_factor,
        })
        .collect();
    // One partition: its one holder is the active analytics instance.
    specs.push(TopicSpec {
        name: atenex_contracts::topics::ANALYTICS_LEASE.to_owned(),
        partitions: 1,
        replication: args.replication_factor,
    });
    let outcomes = create_topics(&args.kafka.config(), &specs).await?;
    for (name, outcome) in outcomes {
        match outcome {
            TopicOutcome::Created { partitions } => {
                println!("created  {name} ({partitions} partitions)")
            }
            TopicOutcome::Existed { partitions } => {
                println!("exists   {name} ({partitions} partitions, unchanged)")
            }
        }
    }
    Ok(())
}
