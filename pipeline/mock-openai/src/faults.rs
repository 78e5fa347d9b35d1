//! Faults, all deterministic: what the mock does wrong, and when.

use crate::Mock;
use crate::error::error;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::Duration;

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

/// The fault request `n` (from 1) meets, if any: exhausted quota, a rate limit, a server error.
pub(crate) fn injected(mock: &Mock, n: u64) -> Option<Response> {
    let f = &mock.config.faults;
    if f.quota_requests
        .is_some_and(|q| mock.stats.ok.load(Ordering::Relaxed) >= q)
    {
        return Some(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                None,
                Some("insufficient_quota"),
            )
            .into_response(),
        );
    }
    let storm = f.rate_limit_burst.as_ref().is_some_and(|r| r.contains(&n));
    if storm
        || f.rate_limit_every
            .is_some_and(|every| every > 0 && n.is_multiple_of(every))
    {
        return Some(rate_limited(f.retry_after));
    }
    let burst = f.error_burst.as_ref().is_some_and(|r| r.contains(&n));
    let drawn = f.error_rate > 0.0 && mock.rng.lock().expect("rng").random::<f64>() < f.error_rate;
    if burst || drawn {
        return Some(
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
                None,
            )
            .into_response(),
        );
    }
    None
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
