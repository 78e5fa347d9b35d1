//! `atenex mock-openai`: the OpenAI embeddings mock as a server (docs/services.md).

use crate::limits::{HttpLimitsArgs, ShutdownArgs};
use atenex_mock_openai::{Config, Faults, Server};
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct MockOpenAiArgs {
    /// Address to serve on; clients use OPENAI_BASE_URL=http://ADDR/v1.
    #[arg(
        long,
        value_name = "ADDR",
        env = "ATENEX_MOCK_OPENAI_LISTEN",
        default_value = "127.0.0.1:8089"
    )]
    listen: SocketAddr,

    /// Answer every N-th request with a 429 rate limit (retry-after, retry-after-ms,
    /// x-ratelimit-reset-requests). 0: never.
    #[arg(long, value_name = "N", default_value_t = 0)]
    rate_limit_every: u64,

    /// Fraction of requests answered with a 500 (0.0–1.0), drawn from --seed.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    error_rate: f64,

    /// Wait this long before every answer, in milliseconds.
    #[arg(long, value_name = "M", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    latency_ms: u64,

    /// After this many successful requests, answer 429 insufficient_quota (not retryable).
    #[arg(long, value_name = "N")]
    quota_requests: Option<u64>,

    /// The wait a 429 announces, in milliseconds.
    #[arg(long, value_name = "M", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    retry_after_ms: u64,

    /// Seed of the drawn faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// The only API key accepted (default: any non-empty key).
    #[arg(
        long,
        value_name = "KEY",
        env = "ATENEX_MOCK_OPENAI_KEY",
        hide_env_values = true
    )]
    api_key: Option<String>,

    #[command(flatten)]
    http: HttpLimitsArgs,

    #[command(flatten)]
    shutdown: ShutdownArgs,
}

pub async fn run(args: MockOpenAiArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.error_rate),
        "--error-rate {}: use a fraction between 0.0 and 1.0",
        args.error_rate
    );
    let limits = args.http.limits(&args.shutdown)?;
    let shutdown = args.shutdown.signals();
    let server = Server::serve_until(
        Config {
            api_key: args.api_key,
            faults: Faults {
                rate_limit_every: (args.rate_limit_every > 0).then_some(args.rate_limit_every),
                error_rate: args.error_rate,
                latency: Duration::from_millis(args.latency_ms),
                quota_requests: args.quota_requests,
                retry_after: Duration::from_millis(args.retry_after_ms),
                seed: args.seed,
                ..Faults::default()
            },
        },
        args.listen,
        limits,
        shutdown,
    )
    .await?;
    println!("{}", server.base_url);
    tracing::info!(base_url = %server.base_url, "mock OpenAI serving (OPENAI_BASE_URL)");
    server.wait().await;
    Ok(())
}
