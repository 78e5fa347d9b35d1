//! When to try a failed request again, and how long to wait: a pure policy (the random draw for
//! the jitter is an argument), so it is tested without waiting or randomness.
//!
//! - 429 rate limits, 5xx, timeouts and connection errors are retried; 429
//!   `insufficient_quota` and other 4xx are not (docs/semantics.md, the OpenAI embeddings API).
//! - The server's word wins: `retry-after-ms`, else `retry-after` (seconds), else the later of
//!   `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` (OpenAI's "6m0s", "1s", "20ms").
//! - Otherwise exponential backoff from `base`, doubled per attempt up to `max`, with full
//!   jitter in [50 %, 100 %] of the step so that concurrent requests do not retry in lockstep.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    /// Attempts in all (the first one included); after the last failure the batch fails and is
    /// consumed again after a restart (nothing is committed, nothing is lost).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
            max_attempts: 12,
        }
    }
}

/// The retry-relevant parts of a failed answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    pub retry_after_ms: Option<String>,
    pub retry_after: Option<String>,
    pub reset_requests: Option<String>,
    pub reset_tokens: Option<String>,
}

impl Hints {
    pub fn from_headers(h: &reqwest::header::HeaderMap) -> Self {
        let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Self {
            retry_after_ms: get("retry-after-ms"),
            retry_after: get("retry-after"),
            reset_requests: get("x-ratelimit-reset-requests"),
            reset_tokens: get("x-ratelimit-reset-tokens"),
        }
    }

    /// The wait the server asks for, if it says.
    pub fn wait(&self) -> Option<Duration> {
        if let Some(ms) = self
            .retry_after_ms
            .as_deref()
            .and_then(|v| seconds(v.trim().parse::<f64>().ok()? / 1000.0))
        {
            return Some(ms);
        }
        if let Some(s) = self
            .retry_after
            .as_deref()
            .and_then(|v| seconds(v.trim().parse::<f64>().ok()?))
        {
            return Some(s);
        }
        [&self.reset_requests, &self.reset_tokens]
            .into_iter()
            .filter_map(|v| v.as_deref().and_then(parse_reset))
            .max()
    }
}

/// A wait of `s` seconds from a server's header: `None` for what is no duration (NaN,
/// infinite, or too large: `inf`, `1e309`); a negative one is no wait.
fn seconds(s: f64) -> Option<Duration> {
    if s.is_nan() {
        return None;
    }
    Duration::try_from_secs_f64(s.max(0.0)).ok()
}

/// OpenAI's reset durations: "6m0s", "1s", "20ms", "1.5s", "2h3m4.5s".
pub fn parse_reset(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, after) = rest.split_at(digits);
        let value: f64 = number.parse().ok()?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        total += value
            * match unit {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 0.001,
                "us" | "µs" => 0.000_001,
                "ns" => 0.000_000_001,
                _ => return None,
            };
        rest = next;
    }
    seconds(total)
}

impl RetryPolicy {
    /// How long to wait before attempt `attempt + 1` (attempts count from 1), or `None` when no
    /// attempts are left. `draw` is uniform in [0, 1).
    pub fn wait(&self, attempt: u32, hints: &Hints, draw: f64) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        if let Some(w) = hints.wait() {
            return Some(w.min(self.max));
        }
        Some(self.backoff(attempt, draw))
    }

    /// The exponential backoff before attempt `attempt + 1`, with jitter, whatever the attempts
    /// left (pauses for an endpoint that answers nothing usable wait this, for ever).
    pub fn backoff(&self, attempt: u32, draw: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        step.mul_f64(0.5 + 0.5 * draw.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_reset_durations() {
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_reset("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_reset("2h3m4s"), Some(Duration::from_secs(7384)));
        assert_eq!(parse_reset("soon"), None);
        assert_eq!(parse_reset("1e400h"), None);
        assert_eq!(parse_reset("5"), None);
        assert_eq!(parse_reset(""), None);
    }

    #[test]
    fn the_server_wins_then_backoff_with_jitter() {
        let p = RetryPolicy::default();
        let ms = |v: &str| Hints {
            retry_after_ms: Some(v.into()),
            retry_after: Some("9".into()),
            ..Hints::default()
        };
        assert_eq!(p.wait(1, &ms("150"), 0.3), Some(Duration::from_millis(150)));
        let secs = Hints {
            retry_after: Some("2".into()),
            ..Hints::default()
        };
        assert_eq!(p.wait(1, &secs, 0.3), Some(Duration::from_secs(2)));
        let resets = Hints {
            reset_requests: Some("20ms".into()),
            reset_tokens: Some("6m0s".into()),
            ..Hints::default()
        };
        // 6 minutes asked, capped at `max`.
        assert_eq!(p.wait(1, &resets, 0.3), Some(Duration::from_secs(30)));
        // What is no duration is no hint: the backoff decides.
        let broken = Hints {
            retry_after_ms: Some("inf".into()),
            retry_after: Some("NaN".into()),
            reset_requests: Some("1e309s".into()),
            ..Hints::default()
        };
        assert_eq!(broken.wait(), None);
        assert_eq!(p.wait(1, &broken, 1.0), Some(Duration::from_millis(250)));
        let none = Hints::default();
        assert_eq!(p.wait(1, &none, 0.0), Some(Duration::from_millis(125)));
        assert_eq!(p.wait(1, &none, 1.0), Some(Duration::from_millis(250)));
        assert_eq!(p.wait(3, &none, 1.0), Some(Duration::from_secs(1)));
        assert_eq!(p.wait(11, &none, 1.0), Some(Duration::from_secs(30)));
        assert_eq!(p.wait(12, &none, 1.0), None);
        assert_eq!(p.backoff(12, 1.0), Duration::from_secs(30));
        assert_eq!(p.backoff(0, 1.0), Duration::from_millis(250));
        assert_eq!(p.backoff(u32::MAX, 0.0), Duration::from_secs(15));
    }
}
