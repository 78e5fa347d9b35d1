//! A mock of OpenAI's embeddings API (`POST /v1/embeddings`), for tests, benchmarks and the demo.
//!
//! It validates requests as OpenAI does (docs/semantics.md, the OpenAI embeddings API): a key in `Authorization: Bearer`, a known
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

mod error;
mod faults;
mod server;
mod validation;
mod vectors;

pub use faults::Faults;
pub use server::{Server, router};
pub use vectors::vector;

use std::sync::atomic::AtomicU64;
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

pub(crate) struct Mock {
    pub(crate) config: Config,
    pub(crate) stats: Arc<Stats>,
    pub(crate) rng: Mutex<rand_chacha::ChaCha8Rng>,
    pub(crate) bpe: tiktoken_rs::CoreBPE,
}
