//! Observability shared by every long-running subcommand: structured logs (`tracing`, text or
//! JSON on stderr), Prometheus metrics, and an optional admin HTTP server with `/health` and
//! `/metrics` (`--admin-listen ADDR`).

use anyhow::Context;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::sync::CancellationToken;

/// Metric names. Labels: `topic` on record counters, `topic` and `partition` on lag.
pub mod names {
    /// Records consumed, by topic.
    pub const RECORDS_IN: &str = "atenex_records_in_total";
    /// Records produced and acknowledged, by topic.
    pub const RECORDS_OUT: &str = "atenex_records_out_total";
    /// Records sent to a dead-letter topic, by source topic.
    pub const DLQ_RECORDS: &str = "atenex_dlq_records_total";
    /// Consumer lag in records, by topic and partition (from librdkafka statistics).
    pub const CONSUMER_LAG: &str = "atenex_consumer_lag";
    /// Time to commit consumer offsets, in seconds.
    pub const COMMIT_SECONDS: &str = "atenex_commit_seconds";
}

/// Log output format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?}: use text or json")),
        }
    }
}

/// `url` as it may be logged: the credentials of its authority (`scheme://user:secret@host/...`)
/// replaced by `***`. Anything else is returned as it is.
pub fn redacted(url: &str) -> std::borrow::Cow<'_, str> {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.into();
    };
    let rest = &url[scheme_end..];
    let authority = rest.find(['/', '?', '#']).map_or(rest, |end| &rest[..end]);
    match authority.rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &rest[at..]).into(),
        None => url.into(),
    }
}

/// Logs to stderr. The level filter comes from `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    init_logging_with_default(format, "info")
}

/// As [`init_logging`], with `default` as the filter when `RUST_LOG` is not set.
pub fn init_logging_with_default(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(names::COMMIT_SECONDS.to_owned()),
                &[
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .expect("bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// Whether the process is ready; `/health` answers 503 until it is, and while it is paused
/// (with the reason: e.g. an endpoint that answers nothing usable).
#[derive(Clone, Debug, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
    paused: Arc<std::sync::Mutex<Option<String>>>,
    role: Arc<std::sync::Mutex<Option<&'static str>>>,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
    /// Paused for `reason` (`None`: working again).
    pub fn set_paused(&self, reason: Option<String>) {
        *self
            .paused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = reason;
    }
    pub fn paused(&self) -> Option<String> {
        self.paused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
    /// The instance's role in its group (`active`, `standby`), for jobs that have one.
    pub fn set_role(&self, role: &'static str) {
        *self
            .role
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(role);
    }
    pub fn role(&self) -> Option<&'static str> {
        *self
            .role
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    /// The `/health` answer: 200 `{"status":"ok"}`, or 503 with `starting` or `paused` and why;
    /// with `"role"` when the job has one.
    pub fn answer(&self) -> (StatusCode, String) {
        let (code, mut body) = match (self.is_ready(), self.paused()) {
            (_, Some(reason)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "paused", "reason": reason}),
            ),
            (true, None) => (StatusCode::OK, serde_json::json!({"status": "ok"})),
            (false, None) => (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "starting"}),
            ),
        };
        if let Some(role) = self.role() {
            body["role"] = role.into();
        }
        (code, body.to_string())
    }
}

/// The Prometheus text of every metric so far (the body of a `/metrics` route).
pub async fn render_metrics() -> String {
    let h = metrics();
    h.run_upkeep();
    h.render()
}

/// Serves `/health` and `/metrics` on `addr` until `shutdown`; returns the bound address.
pub async fn serve_admin(
    addr: SocketAddr,
    health: Health,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let app = Router::new()
        .route(
            "/health",
            get(move || {
                let answer = health.answer();
                async move { answer }
            }),
        )
        .route("/metrics", get(render_metrics));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--admin-listen {addr}: cannot bind"))?;
    let bound = listener.local_addr()?;
    // Small answers to a few scrapers: the default limits, fewer connections, a short drain.
    let limits = atenex_http::Limits {
        max_connections: 64,
        shutdown_timeout: std::time::Duration::from_secs(5),
        ..atenex_http::Limits::default()
    };
    tokio::spawn(async move {
        let served = atenex_http::serve(listener, app, limits, shutdown).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    tracing::info!(%bound, "admin server: /health and /metrics");
    Ok(bound)
}

#[cfg(test)]
mod redaction_tests {
    use super::redacted;

    #[test]
    fn urls_are_logged_without_their_credentials() {
        assert_eq!(
            redacted("https://user:sk-secret@api.example.com/v1"),
            "https://***@api.example.com/v1"
        );
        assert_eq!(
            redacted("s3://key:secret@bucket/pre@fix"),
            "s3://***@bucket/pre@fix"
        );
        assert_eq!(
            redacted("http://a:b@host:8080?x=@y"),
            "http://***@host:8080?x=@y"
        );
        for plain in [
            "http://127.0.0.1:9/v1",
            "file:///data/objects",
            "/data",
            "mailto@x",
        ] {
            assert_eq!(redacted(plain), plain);
        }
    }
}
