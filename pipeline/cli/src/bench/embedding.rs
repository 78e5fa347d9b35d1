//! `atenex bench embedding`: the embedding service's throughput against the OpenAI mock, without
//! and with latency per request.

use atenex_embedding::batcher::Limits;
use atenex_embedding::client::{ApiKey, Client, ClientConfig};
use atenex_embedding::service::{Embedding, EmbeddingConfig};
use atenex_kafka::admin::{TopicSpec, create_topics};
use atenex_kafka::producer::Pipeline;
use atenex_kafka::{GroupConsumer, GroupSettings, OutRecord, Producer, testing};
use atenex_mock_openai::{Config, Faults, Server};
use clap::Args;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct EmbeddingBench {
    /// Chunks embedded in each run.
    #[arg(long, default_value_t = 10_000, value_parser = crate::parse::count::<1, 10_000_000>)]
    chunks: usize,
    /// Words per chunk.
    #[arg(long, default_value_t = 150, value_parser = crate::parse::count::<1, 100_000>)]
    words: usize,
    /// The mock's latency per request in the second run, in milliseconds.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    latency_ms: u64,
    /// Most chunks per request.
    #[arg(long, default_value_t = 2048, value_parser = crate::parse::count::<1, 2048>)]
    max_batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8, value_parser = crate::parse::count::<1, 1024>)]
    concurrency: usize,
}

pub async fn run(b: EmbeddingBench) -> anyhow::Result<()> {
    let kafka = testing::config();
    let topics: Vec<TopicSpec> = atenex_contracts::topics::all_pipeline_topics()
        .into_iter()
        .map(|name| TopicSpec {
            name,
            partitions: 3,
            replication: None,
        })
        .collect();
    create_topics(&kafka, &topics).await?;
    let producer = Producer::new(&kafka)?;
    let mut pipeline = Pipeline::new(&producer, 4096);
    let company = uuid::Uuid::new_v4().to_string();
    let vocabulary = [
        "retrieval",
        "chunk",
        "vector",
        "empresa",
        "Dokument",
        "overlap",
        "page",
        "windows",
    ];
    for i in 0..b.chunks {
        let doc = format!("doc-{}", i / 50);
        let text: Vec<&str> = (0..b.words)
            .map(|w| vocabulary[(i * 7 + w * 3) % vocabulary.len()])
            .collect();
        let value = serde_json::json!({
            "chunk_id": format!("{doc}_{}", i % 50),
            "document_id": doc,
            "company_id": company,
            "text": format!("{i} {}", text.join(" ")),
            "page": 1,
        })
        .to_string();
        pipeline
            .push(OutRecord::new(
                "chunks.processed",
                Some(doc.as_bytes()),
                Some(value.as_bytes()),
            ))
            .await?;
    }
    pipeline.finish().await?;
    println!(
        "{} chunks of {} words, requests of ≤ {} chunks, {} in flight, text-embedding-3-small (1536 floats):",
        b.chunks, b.words, b.max_batch, b.concurrency
    );
    let mut rates = Vec::new();
    for latency in [0, b.latency_ms] {
        let mock = Server::start(Config {
            api_key: None,
            faults: Faults {
                latency: Duration::from_millis(latency),
                ..Faults::default()
            },
        })
        .await?;
        let embedding = Embedding::new(
            Client::new(ClientConfig {
                base_url: mock.base_url.clone(),
                api_key: ApiKey::new("sk-bench"),
                model: "text-embedding-3-small".into(),
                dimensions: None,
                timeout: Duration::from_secs(120),
            })?,
            producer.clone(),
            EmbeddingConfig {
                limits: Limits {
                    max_inputs: b.max_batch,
                    ..Limits::default()
                },
                concurrency: b.concurrency,
                ..EmbeddingConfig::default()
            },
        )?;
        let mut settings =
            GroupSettings::new(testing::unique("bench-embedding"), &["chunks.processed"]);
        settings.max_batch = b.max_batch * b.concurrency;
        settings.max_wait = Duration::from_millis(200);
        let consumer = GroupConsumer::new(&kafka, settings)?;
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let (mut done, mut first, mut requests) = (0, None, 0);
        consumer
            .run(shutdown, async |batch| {
                first.get_or_insert_with(Instant::now);
                let r = embedding.handle(batch).await?;
                done += r.embedded;
                requests += r.requests;
                if done >= b.chunks {
                    stop.cancel();
                }
                Ok(())
            })
            .await?;
        let secs = first.map(|f| f.elapsed().as_secs_f64()).unwrap_or(f64::NAN);
        let rate = done as f64 / secs;
        println!(
            "mock latency {latency} ms: {done} chunks in {secs:.2} s = {rate:.0} chunks/s ({requests} requests)"
        );
        rates.push(rate);
    }
    println!(
        "at {} ms: {:.0} % of the 0 ms throughput",
        b.latency_ms,
        100.0 * rates[1] / rates[0]
    );
    Ok(())
}
