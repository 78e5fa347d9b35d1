//! A mock of OpenAI's embeddings API (`POST /v1/embeddings`), for tests, benchmarks and the demo.
//!
//! It validates requests as OpenAI does (DESIGN §4.5): a key in `Authorization: Bearer`, a known
//! model, `input` a string, an array of strings or of token arrays, at most 2,048 inputs, no empty
//! string, at most 8,192 tokens per input (cl100k_base, counted as OpenAI counts) and 300,000 per
//! request, `dimensions` only for the 3-series and within the model's size, `encoding_format`
//! float or base64. Errors carry OpenAI's body `{"error": {"message", "type", "param", "code"}}`
//! and status; every answer carries the `x-ratelimit-*` headers.
//!
//! Vectors are deterministic unit vectors derived from the input (same text, model and
//! dimensions → same vector), so a test can recompute what it should have received.
//!
//! Faults, all deterministic: a 429 rate limit every N-th request (with `retry-after`,
//! `retry-after-ms` and `x-ratelimit-reset-requests`), bursts of 429s or 500s over ranges of
//! request numbers, a seeded rate of 500s, a fixed latency, and quota exhaustion (429
//! `insufficient_quota`) after N requests.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most inputs in one request.
pub const MAX_INPUTS: usize = 2048;
/// Most tokens in one input.
pub const MAX_INPUT_TOKENS: usize = 8192;
/// Most tokens in one request.
pub const MAX_REQUEST_TOKENS: usize = 300_000;

/// The embedding models and their native dimensions.
pub fn model_dimensions(model: &str) -> Option<usize> {
    match model {
        "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
        "text-embedding-3-large" => Some(3072),
        _ => None,
    }
}

/// What the mock does wrong, and when. Requests are numbered from 1 in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer every N-th request with a 429 rate limit.
    pub rate_limit_every: Option<u64>,
    /// Requests answered with a 429 rate limit (a storm).
    pub rate_limit_burst: Option<Range<u64>>,
    /// Requests answered with a 500.
    pub error_burst: Option<Range<u64>>,
    /// Fraction of requests answered with a 500, drawn from `seed`.
    pub error_rate: f64,
    /// Wait this long before answering anything.
    pub latency: Duration,
    /// After this many successful requests, every request gets 429 `insufficient_quota`.
    pub quota_requests: Option<u64>,
    /// The wait announced on a 429 (`retry-after-ms`; `retry-after` is it rounded up to seconds).
    pub retry_after: Duration,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The accepted key; `None` accepts any non-empty key.
    pub api_key: Option<String>,
    pub faults: Faults,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            api_key: None,
            faults: Faults {
                retry_after: Duration::from_millis(100),
                ..Faults::default()
            },
        }
    }
}

/// Counters a test can read.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub ok: AtomicU64,
    pub inputs_embedded: AtomicU64,
    pub rate_limited: AtomicU64,
    pub server_errors: AtomicU64,
    pub invalid: AtomicU64,
}

struct Mock {
    config: Config,
    stats: Arc<Stats>,
    rng: Mutex<rand_chacha::ChaCha8Rng>,
    bpe: tiktoken_rs::CoreBPE,
}

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

    pub async fn serve(config: Config, addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        let (router, stats) = router(config)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            base_url: format!("http://{addr}/v1"),
            stats,
            task,
        })
    }

    /// Serves until the task is cancelled (for `atenex mock-openai`).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// OpenAI's error answer: `{"error": {"message", "type", "param", "code"}}` with its status.
struct OpenAiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}});
        (self.status, axum::Json(body)).into_response()
    }
}

fn error(
    status: StatusCode,
    message: impl Into<String>,
    kind: &'static str,
    param: Option<&'static str>,
    code: Option<&'static str>,
) -> OpenAiError {
    OpenAiError {
        status,
        message: message.into(),
        kind,
        param,
        code,
    }
}

fn invalid(message: impl Into<String>, param: Option<&'static str>) -> OpenAiError {
    error(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        None,
    )
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
    let f = &mock.config.faults;
    // Authentication comes first, as at OpenAI.
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() {
        return error(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
            None,
        )
        .into_response();
    }
    if mock.config.api_key.as_deref().is_some_and(|k| k != key) {
        return error(
            StatusCode::UNAUTHORIZED,
            format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                redact(key)
            ),
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        )
        .into_response();
    }
    if f.quota_requests
        .is_some_and(|q| mock.stats.ok.load(Ordering::Relaxed) >= q)
    {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            None,
            Some("insufficient_quota"),
        )
        .into_response();
    }
    let storm = f.rate_limit_burst.as_ref().is_some_and(|r| r.contains(&n));
    if storm
        || f.rate_limit_every
            .is_some_and(|every| every > 0 && n.is_multiple_of(every))
    {
        return rate_limited(f.retry_after);
    }
    let burst = f.error_burst.as_ref().is_some_and(|r| r.contains(&n));
    let drawn = f.error_rate > 0.0 && mock.rng.lock().expect("rng").random::<f64>() < f.error_rate;
    if burst || drawn {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
        )
        .into_response();
    }
    match embed(mock, body) {
        Ok(body) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

fn rate_limited(wait: Duration) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "Rate limit reached for requests per min (RPM): Limit 3000, Used 3000, Requested 1. Please try again in {}ms.",
            wait.as_millis()
        ),
        "requests",
        None,
        Some("rate_limit_exceeded"),
    )
    .into_response();
    let h = r.headers_mut();
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    h.insert("retry-after", HeaderValue::from(secs));
    h.insert("retry-after-ms", HeaderValue::from(wait.as_millis() as u64));
    h.insert(
        "x-ratelimit-remaining-requests",
        HeaderValue::from_static("0"),
    );
    h.insert(
        "x-ratelimit-reset-requests",
        HeaderValue::from_str(&format!("{}ms", wait.as_millis())).expect("ascii"),
    );
    r
}

/// OpenAI shows the first and last characters of a wrong key only.
fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// One input: its text (for the vector) and its token count.
struct Input {
    seed_bytes: Vec<u8>,
    tokens: usize,
}

/// The answer's shape, serialized straight from the vectors (floats in their shortest form).
#[derive(serde::Serialize)]
struct List<'a> {
    object: &'static str,
    data: Vec<Item>,
    model: &'a str,
    usage: Usage,
}

#[derive(serde::Serialize)]
struct Item {
    object: &'static str,
    index: usize,
    embedding: Embedding,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Embedding {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(serde::Serialize)]
struct Usage {
    prompt_tokens: usize,
    total_tokens: usize,
}

fn embed(mock: &Mock, body: &[u8]) -> Result<Vec<u8>, OpenAiError> {
    let req: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(
            format!("We could not parse the JSON body of your request. ({e})"),
            None,
        )
    })?;
    let model = match req.get("model") {
        Some(Value::String(m)) => m.as_str(),
        None => return Err(invalid("you must provide a model parameter", None)),
        Some(_) => return Err(invalid("'model' must be a string", Some("model"))),
    };
    let Some(native) = model_dimensions(model) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            None,
            Some("model_not_found"),
        ));
    };
    let inputs = inputs(mock, req.get("input"))?;
    if inputs.len() > MAX_INPUTS {
        return Err(invalid(
            format!(
                "'$.input' is invalid: at most {MAX_INPUTS} inputs per request, got {}.",
                inputs.len()
            ),
            Some("input"),
        ));
    }
    for (i, input) in inputs.iter().enumerate() {
        if input.tokens > MAX_INPUT_TOKENS {
            return Err(invalid(
                format!(
                    "This model's maximum context length is {MAX_INPUT_TOKENS} tokens, however you requested {} tokens ({} in your prompt; 0 for the completion). Please reduce your prompt; or completion length. (input {i})",
                    input.tokens, input.tokens
                ),
                None,
            ));
        }
    }
    let total: usize = inputs.iter().map(|i| i.tokens).sum();
    if total > MAX_REQUEST_TOKENS {
        return Err(invalid(
            format!("Requested {total} tokens, max {MAX_REQUEST_TOKENS} tokens per request"),
            None,
        ));
    }
    let dims = match req.get("dimensions") {
        None | Some(Value::Null) => native,
        Some(d) => {
            if !model.starts_with("text-embedding-3") {
                return Err(invalid(
                    "This model does not support specifying dimensions.",
                    Some("dimensions"),
                ));
            }
            match d.as_u64() {
                Some(d) if d >= 1 && d as usize <= native => d as usize,
                _ => {
                    return Err(invalid(
                        format!(
                            "Invalid value for 'dimensions' = {d}. Must be between 1 and {native}."
                        ),
                        Some("dimensions"),
                    ));
                }
            }
        }
    };
    let base64 = match req.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "float" => false,
        Some(Value::String(s)) if s == "base64" => true,
        Some(other) => {
            return Err(invalid(
                format!(
                    "Invalid value for 'encoding_format' = {other}. Supported values are: 'float' and 'base64'."
                ),
                Some("encoding_format"),
            ));
        }
    };
    let data: Vec<Item> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let v = vector(model, dims, &input.seed_bytes);
            let embedding = if base64 {
                use base64::Engine as _;
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Embedding::Float(v)
            };
            Item {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    mock.stats
        .inputs_embedded
        .fetch_add(inputs.len() as u64, Ordering::Relaxed);
    let list = List {
        object: "list",
        data,
        model,
        usage: Usage {
            prompt_tokens: total,
            total_tokens: total,
        },
    };
    serde_json::to_vec(&list).map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("mock: {e}"),
            "server_error",
            None,
            None,
        )
    })
}

fn inputs(mock: &Mock, input: Option<&Value>) -> Result<Vec<Input>, OpenAiError> {
    let bad = || {
        invalid(
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            Some("input"),
        )
    };
    let text = |s: &str| -> Result<Input, OpenAiError> {
        if s.is_empty() {
            return Err(bad());
        }
        Ok(Input {
            seed_bytes: s.as_bytes().to_vec(),
            tokens: mock.bpe.encode_ordinary(s).len(),
        })
    };
    let tokens = |a: &[Value]| -> Result<Input, OpenAiError> {
        if a.is_empty() || a.iter().any(|t| !t.is_u64()) {
            return Err(bad());
        }
        // The vector of a token array is the vector of the text it decodes to.
        let ids: Vec<u32> = a.iter().map(|t| t.as_u64().unwrap_or(0) as u32).collect();
        let seed_bytes = mock
            .bpe
            .decode(&ids)
            .map(String::into_bytes)
            .map_err(|_| bad())?;
        Ok(Input {
            seed_bytes,
            tokens: ids.len(),
        })
    };
    match input {
        Some(Value::String(s)) => Ok(vec![text(s)?]),
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.iter().all(Value::is_string) {
                items
                    .iter()
                    .map(|s| text(s.as_str().unwrap_or_default()))
                    .collect()
            } else if items.iter().all(Value::is_u64) {
                Ok(vec![tokens(items)?])
            } else if items.iter().all(Value::is_array) {
                items
                    .iter()
                    .map(|a| tokens(a.as_array().map(Vec::as_slice).unwrap_or_default()))
                    .collect()
            } else {
                Err(bad())
            }
        }
        None => Err(invalid("you must provide an input parameter", None)),
        _ => Err(bad()),
    }
}

/// The deterministic unit vector of `text` for a model and size: components drawn from a
/// generator seeded by a hash of all three, then normalised.
pub fn vector(model: &str, dims: usize, text: &[u8]) -> Vec<f32> {
    // FNV-1a, 64 bit: stable across platforms and releases (unlike std's hasher).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in model
        .as_bytes()
        .iter()
        .chain(&(dims as u64).to_le_bytes())
        .chain(text)
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(h);
    let mut v: Vec<f32> = (0..dims).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}
