//! `atenex embedding`: chunks.processed → OpenAI embeddings → embeddings.ready
//! (docs/services.md).

use crate::KafkaArgs;
use crate::Observability;
use crate::limits::ShutdownArgs;
use atenex_contracts::Topic;
use atenex_embedding::batcher::Limits;
use atenex_embedding::client::{ApiKey, Client, ClientConfig};
use atenex_embedding::retry::RetryPolicy;
use atenex_embedding::service::{Embedding, EmbeddingConfig};
use atenex_kafka::{GroupConsumer, GroupSettings, Producer};
use clap::Args;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct EmbeddingArgs {
    /// OpenAI's API base URL (the SDKs' convention; the mock: http://127.0.0.1:8089/v1).
    #[arg(
        long,
        value_name = "URL",
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    openai_base_url: String,

    /// OpenAI API key (required; never logged).
    #[arg(
        long,
        value_name = "KEY",
        env = "OPENAI_API_KEY",
        hide_env_values = true
    )]
    openai_api_key: String,

    /// Embedding model.
    #[arg(
        long,
        value_name = "MODEL",
        env = "OPENAI_EMBEDDING_MODEL",
        default_value = "text-embedding-3-small"
    )]
    model: String,

    /// Vector size to ask for (text-embedding-3-* only); default: the model's own.
    #[arg(long, value_name = "N", env = "OPENAI_EMBEDDING_DIMENSIONS", value_parser = crate::parse::count::<1, 65_536>)]
    dimensions: Option<usize>,

    /// Most chunks in one request (OpenAI allows 2048; requests also stay under 300,000 tokens).
    #[arg(
        long,
        value_name = "N",
        env = "ATENEX_EMBEDDING_MAX_BATCH",
        default_value_t = 2048, value_parser = crate::parse::count::<1, 2048>)]
    max_batch: usize,

    /// How long to wait for more chunks before sending a partial batch, in milliseconds.
    #[arg(
        long,
        value_name = "MS",
        env = "ATENEX_EMBEDDING_LINGER_MS",
        default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    linger_ms: u64,

    /// Requests in flight at once.
    #[arg(
        long,
        value_name = "N",
        env = "ATENEX_EMBEDDING_CONCURRENCY",
        default_value_t = 8, value_parser = crate::parse::count::<1, 1024>)]
    concurrency: usize,

    /// Attempts per request before the service stops (uncommitted chunks are embedded after a
    /// restart).
    #[arg(
        long,
        value_name = "N",
        env = "ATENEX_EMBEDDING_MAX_ATTEMPTS",
        default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_attempts: u32,

    /// Per-request timeout, in seconds.
    #[arg(
        long,
        value_name = "S",
        env = "ATENEX_EMBEDDING_TIMEOUT_SECS",
        default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout_secs: u64,

    /// Consumer group.
    #[arg(
        long,
        value_name = "ID",
        env = "ATENEX_EMBEDDING_GROUP",
        default_value = "atenex-embedding"
    )]
    group: String,

    #[command(flatten)]
    kafka: KafkaArgs,

    #[command(flatten)]
    shutdown: ShutdownArgs,

    #[command(flatten)]
    observability: Observability,
}

pub async fn run(args: EmbeddingArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.openai_api_key.trim().is_empty(),
        "OPENAI_API_KEY is empty: set it (or point OPENAI_BASE_URL at `atenex mock-openai`, which accepts any key)"
    );
    let shutdown = args.shutdown.signals();
    let health = args.observability.start(&shutdown).await?;
    let kafka = args.kafka.config();
    let client = Client::new(ClientConfig {
        base_url: args.openai_base_url.clone(),
        api_key: ApiKey::new(args.openai_api_key),
        model: args.model.clone(),
        dimensions: args.dimensions,
        timeout: Duration::from_secs(args.timeout_secs),
    })?;
    let embedding = Embedding::new(
        client,
        Producer::new(&kafka)?,
        EmbeddingConfig {
            limits: Limits {
                max_inputs: args.max_batch,
                ..Limits::default()
            },
            concurrency: args.concurrency,
            retry: RetryPolicy {
                max_attempts: args.max_attempts,
                ..RetryPolicy::default()
            },
            health: health.clone(),
            shutdown: shutdown.clone(),
            ..EmbeddingConfig::default()
        },
    )?;
    let mut settings = GroupSettings::new(&args.group, &[Topic::ChunksProcessed.name()]);
    // A consumed batch feeds `concurrency` full requests.
    settings.max_batch = args.max_batch.saturating_mul(args.concurrency).max(1);
    settings.max_wait = Duration::from_millis(args.linger_ms);
    let consumer = GroupConsumer::new(&kafka, settings)?;
    tracing::info!(base_url = %atenex_kafka::observe::redacted(&args.openai_base_url), model = %args.model, group = %args.group, "embedding running");
    health.set_ready(true);
    let summary = std::sync::Arc::new(embedding)
        .run(&consumer, shutdown)
        .await?;
    tracing::info!(records = summary.records, "embedding stopped");
    Ok(())
}
