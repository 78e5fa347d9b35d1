//! The HTTP server: the routes, a running mock on a loopback port, and each request's way
//! through authentication, faults, validation and the answer.

use crate::validation::{authenticate, request};
use crate::{Config, Mock, Stats, faults, vectors};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::SeedableRng;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// The mock's routes: `POST /v1/embeddings` (and `/embeddings`), `GET /health`.
pub fn router(config: Config) -> anyhow::Result<(Router, Arc<Stats>)> {
    let stats = Arc::new(Stats::default());
    let mock = Arc::new(Mock {
        rng: Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(config.faults.seed)),
        config,
        stats: stats.clone(),
        bpe: tiktoken_rs::cl100k_base()?,
    });
    let router = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .route("/embeddings", post(embeddings))
        .route("/health", get(|| async { "ok" }))
        .with_state(mock);
    Ok((router, stats))
}

/// A running mock on a loopback port; stops when dropped.
pub struct Server {
    /// `http://127.0.0.1:PORT/v1`, the value for `OPENAI_BASE_URL`.
    pub base_url: String,
    pub stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        Self::serve(config, "127.0.0.1:0".parse()?).await
    }

    /// Serves on `addr` with the default limits ([`atenex_http::Limits`]) until dropped.
    pub async fn serve(config: Config, addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        Self::serve_until(
            config,
            addr,
            atenex_http::Limits::default(),
            CancellationToken::new(),
        )
        .await
    }

    /// Serves on `addr` under `limits` until `shutdown` is cancelled (then shuts down within
    /// `limits.shutdown_timeout`: see [`Server::wait`]) or the server is dropped.
    pub async fn serve_until(
        config: Config,
        addr: std::net::SocketAddr,
        limits: atenex_http::Limits,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let (router, stats) = router(config)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = atenex_http::serve(listener, router, limits, shutdown).await {
                tracing::error!(error = %e, "mock OpenAI server failed");
            }
        });
        Ok(Self {
            base_url: format!("http://{addr}/v1"),
            stats,
            task,
        })
    }

    /// Returns once the server has shut down (for `atenex mock-openai`).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn embeddings(State(mock): State<Arc<Mock>>, headers: HeaderMap, body: Bytes) -> Response {
    let n = mock.stats.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let f = &mock.config.faults;
    if !f.latency.is_zero() {
        tokio::time::sleep(f.latency).await;
    }
    let mut response = answer(&mock, n, &headers, &body);
    let s = &mock.stats;
    match response.status().as_u16() {
        200 => s.ok.fetch_add(1, Ordering::Relaxed),
        429 => s.rate_limited.fetch_add(1, Ordering::Relaxed),
        500..=599 => s.server_errors.fetch_add(1, Ordering::Relaxed),
        _ => s.invalid.fetch_add(1, Ordering::Relaxed),
    };
    let h = response.headers_mut();
    for (k, v) in [
        ("x-ratelimit-limit-requests", "3000"),
        ("x-ratelimit-remaining-requests", "2999"),
        ("x-ratelimit-reset-requests", "20ms"),
        ("x-ratelimit-limit-tokens", "1000000"),
        ("x-ratelimit-remaining-tokens", "999000"),
        ("x-ratelimit-reset-tokens", "60ms"),
    ] {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    }
    h.insert(
        "x-request-id",
        HeaderValue::from_str(&format!("req_mock_{n}")).expect("ascii"),
    );
    response
}

fn answer(mock: &Mock, n: u64, headers: &HeaderMap, body: &[u8]) -> Response {
    // Authentication comes first, as at OpenAI; then the faults; then the request itself.
    if let Err(e) = authenticate(mock, headers) {
        return e.into_response();
    }
    if let Some(fault) = faults::injected(mock, n) {
        return fault;
    }
    match request(mock, body).and_then(|req| vectors::answer(mock, &req)) {
        Ok(body) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
