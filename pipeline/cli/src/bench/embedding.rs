//! `atenex bench embedding`: the embedding service's throughput against the OpenAI mock, without
//! and with latency per request.

use atenex_embedding::batcher::Limits;
use atenex_embedding::client::{ApiKey, Client, ClientConfig};
use atenex_embedding::service::{BatchReport, Embedding, EmbeddingConfig};
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
    /// Handle consumed batches one after another, each waiting for its requests before the next
    /// is consumed (the service before issue 18), for comparison.
    #[arg(long)]
    sequential: bool,
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
        // Ids as the contract wants them (UUIDs): a made-up id is a dead letter, not a request.
        let doc =
            uuid::Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 + (i / 50) as u128)
                .to_string();
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
        "{} chunks of {} words, requests of ≤ {} chunks, {} in flight, batches {}, text-embedding-3-small (1536 floats):",
        b.chunks,
        b.words,
        b.max_batch,
        b.concurrency,
        if b.sequential {
            "one after another"
        } else {
            "pipelined"
        }
    );
    let mut rates = Vec::new();
    // A first run at 0 ms warms the broker (a fresh JVM compiles as it goes) and is not counted:
    // otherwise the first measured run pays for it.
    for (run, latency) in [0, 0, b.latency_ms].into_iter().enumerate() {
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
        let (mut done, mut dead, mut first, mut requests) = (0, 0, None, 0);
        let mut finished = |r: &BatchReport| {
            done += r.embedded;
            dead += r.dead_lettered;
            requests += r.requests;
            if done + dead >= b.chunks {
                stop.cancel();
            }
        };
        if b.sequential {
            consumer
                .run(shutdown, async |batch| {
                    first.get_or_insert_with(Instant::now);
                    finished(&embedding.handle(batch).await?);
                    Ok(())
                })
                .await?;
        } else {
            // The service's own loop (batches pipelined), as `atenex embedding` runs it.
            std::sync::Arc::new(embedding)
                .run_observed(
                    &consumer,
                    shutdown,
                    |_| {
                        first.get_or_insert_with(Instant::now);
                    },
                    |_, r| finished(r),
                )
                .await?;
        }
        anyhow::ensure!(
            dead == 0,
            "{dead} chunks were dead-lettered: the benchmark's input is wrong"
        );
        let secs = first.map(|f| f.elapsed().as_secs_f64()).unwrap_or(f64::NAN);
        let rate = done as f64 / secs;
        if run == 0 {
            println!("warm-up at 0 ms: {done} chunks in {secs:.2} s (not counted)");
            continue;
        }
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
