//! The options that bound what a client or a shutdown may take: `--shutdown-timeout` on every
//! long-running command, and the HTTP servers' limits (docs/limits.md).

use atenex_http::{Limits, limits};
use clap::Args;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `--shutdown-timeout`: how long a SIGTERM may take.
#[derive(Args, Clone, Debug)]
pub struct ShutdownArgs {
    /// How long work in flight may take to finish after SIGINT/SIGTERM; then it is abandoned
    /// (nothing uncommitted is lost: it is consumed again on restart) and the process exits with
    /// status 124 if it has not already. Keep it below the unit's TimeoutStopSec (60 s).
    #[arg(long, value_name = "DURATION", env = "ATENEX_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = crate::parse::duration::<0, 3600>)]
    pub shutdown_timeout: Duration,
}

impl ShutdownArgs {
    /// The shutdown token: cancelled on the first SIGINT/SIGTERM, the process ended if the
    /// shutdown outlasts `--shutdown-timeout`. Must be called inside a Tokio runtime.
    pub fn signals(&self) -> CancellationToken {
        atenex_kafka::shutdown::on_signals_within(self.shutdown_timeout)
    }
}

/// The limits of an HTTP server's clients.
#[derive(Args, Clone, Debug)]
pub struct HttpLimitsArgs {
    /// A request's head must arrive whole within this, counted from when the connection is ready
    /// for it (accepted, or idle after an answer): slow headers and idle keep-alive connections
    /// are closed.
    #[arg(long, value_name = "DURATION", env = "ATENEX_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = crate::parse::duration::<0, 3600>)]
    pub header_timeout: Duration,

    /// Bytes per second a request body must average once --body-grace has passed; slower: 408
    /// (0: no minimum).
    #[arg(long, value_name = "BYTES_PER_SEC", env = "ATENEX_HTTP_MIN_BODY_RATE", default_value_t = limits::DEFAULT_MIN_BODY_RATE)]
    pub min_body_rate: u64,

    /// How long a request body may take before --min-body-rate applies.
    #[arg(long, value_name = "DURATION", env = "ATENEX_HTTP_BODY_GRACE", default_value = "10s", value_parser = crate::parse::duration::<0, 3600>)]
    pub body_grace: Duration,

    /// Connections served at once; one more is answered 503 and closed at once. Each takes a
    /// file descriptor: keep it below the process's limit (LimitNOFILE; raised to the hard limit
    /// at start).
    #[arg(long, value_name = "N", env = "ATENEX_HTTP_MAX_CONNECTIONS", default_value_t = limits::DEFAULT_MAX_CONNECTIONS as u32, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
}

impl HttpLimitsArgs {
    /// The limits, with `shutdown`'s timeout; a zero header timeout is refused with the flag.
    pub fn limits(&self, shutdown: &ShutdownArgs) -> anyhow::Result<Limits> {
        let limits = Limits {
            header_timeout: self.header_timeout,
            min_body_rate: self.min_body_rate,
            body_grace: self.body_grace,
            max_connections: self.max_connections as usize,
            shutdown_timeout: shutdown.shutdown_timeout,
        };
        limits.check().map_err(anyhow::Error::msg)?;
        Ok(limits)
    }
}

/// The listener of a server's `--listen` address; the error names the option.
pub async fn listen(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--listen {addr}: cannot bind: {e}"))
}
