//! `atenex gateway` and `atenex token` (docs/services.md).

use crate::Observability;
use crate::limits::{HttpLimitsArgs, ShutdownArgs};
use atenex_gateway::jwt::{Claims, sign};
use atenex_gateway::{Config, DEFAULT_MAX_BODY_BYTES, Gateway, router};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The HS256 secret shared by the gateway and whoever issues tokens.
pub const SECRET_ENV: &str = "GATEWAY_JWT_SECRET";

/// The secret, checked ([`atenex_gateway::jwt::check_secret`]): a weak one is refused with the
/// variable's name and how to make a good one.
fn secret(value: Option<String>) -> anyhow::Result<Vec<u8>> {
    match value {
        Some(s) if !s.is_empty() => {
            atenex_gateway::jwt::check_secret(s.as_bytes())
                .map_err(|e| anyhow::anyhow!("{SECRET_ENV}: {e}"))?;
            Ok(s.into_bytes())
        }
        _ => anyhow::bail!(
            "{SECRET_ENV} is not set: the HS256 secret tokens are signed with (e.g. export {SECRET_ENV}=$(openssl rand -hex 32))"
        ),
    }
}

#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// Address to serve HTTP on.
    #[arg(
        long,
        value_name = "ADDR",
        env = "ATENEX_GATEWAY_LISTEN",
        default_value = "127.0.0.1:8000"
    )]
    listen: SocketAddr,

    /// The ingest service's base URL.
    #[arg(
        long,
        value_name = "URL",
        env = "ATENEX_INGEST_URL",
        default_value = "http://127.0.0.1:8001"
    )]
    ingest_url: String,

    /// The largest upload body, in bytes (larger: 413 before reading past it).
    #[arg(long, value_name = "BYTES", env = "ATENEX_GATEWAY_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES, value_parser = clap::value_parser!(u64).range(1..=(1 << 40)))]
    max_body_bytes: u64,

    /// Origins allowed by CORS, comma-separated (e.g. https://app.atenex.example); none by default.
    #[arg(
        long,
        value_name = "ORIGINS",
        env = "ATENEX_CORS_ORIGINS",
        value_delimiter = ','
    )]
    cors_origins: Vec<String>,

    /// How long ingest may take to answer once the body is sent (then 504).
    #[arg(long, value_name = "DURATION", env = "ATENEX_UPSTREAM_TIMEOUT", default_value = "60s", value_parser = crate::parse::duration::<1, 86_400>)]
    upstream_timeout: Duration,

    /// The HS256 secret tokens are verified with: at least 32 bytes, not a placeholder (make one
    /// with `openssl rand -hex 32`).
    #[arg(long, value_name = "SECRET", env = SECRET_ENV, hide_env_values = true)]
    jwt_secret: Option<String>,

    #[command(flatten)]
    http: HttpLimitsArgs,

    #[command(flatten)]
    shutdown: ShutdownArgs,

    // Prometheus `/metrics` is served on --admin-listen, not on --listen: the gateway's port is
    // public, its counters are not.
    #[command(flatten)]
    observability: Observability,
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let limits = args.http.limits(&args.shutdown)?;
    let shutdown = args.shutdown.signals();
    let health = args.observability.start(&shutdown).await?;
    let gw = Gateway::new(Config {
        ingest_url: args.ingest_url.clone(),
        jwt_secret: secret(args.jwt_secret)?,
        max_body_bytes: args.max_body_bytes,
        cors_origins: args
            .cors_origins
            .into_iter()
            .filter(|o| !o.is_empty())
            .collect(),
        upstream_timeout: args.upstream_timeout,
    })?;
    let listener = crate::limits::listen(args.listen).await?;
    health.set_ready(true);
    tracing::info!(listen = %listener.local_addr()?, ingest = %atenex_kafka::observe::redacted(&args.ingest_url), "gateway serving");
    atenex_http::serve(listener, router(Arc::new(gw))?, limits, shutdown).await?;
    tracing::info!("gateway stopped");
    Ok(())
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The company_id claim (the tenant).
    #[arg(long, value_name = "UUID")]
    company: String,
    /// The sub claim (the user).
    #[arg(long, value_name = "USER")]
    user: String,
    /// Roles, comma-separated.
    #[arg(long, value_name = "ROLES", value_delimiter = ',')]
    roles: Vec<String>,
    /// Lifetime (exp = now + ttl).
    #[arg(long, value_name = "DURATION", default_value = "1d", value_parser = crate::parse::duration::<1, 315_360_000>)]
    ttl: Duration,
    /// The HS256 secret to sign with.
    #[arg(long, value_name = "SECRET", env = SECRET_ENV, hide_env_values = true)]
    jwt_secret: Option<String>,
}

pub fn token(args: TokenArgs) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let t = sign(
        &Claims {
            sub: args.user,
            company_id: Some(args.company),
            roles: args.roles,
            exp: now + args.ttl.as_secs(),
        },
        &secret(args.jwt_secret)?,
    )?;
    println!("{t}");
    Ok(())
}
