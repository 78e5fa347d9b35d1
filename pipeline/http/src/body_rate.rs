//! The minimum body rate: once a grace period has passed, a request body must average at least
//! `rate` bytes per second since it started, or the request is answered **408** and its handler
//! is dropped (so whatever it was doing with the body, such as streaming it on, stops too).
//!
//! The rule is [`deadline`]: having received `n` bytes, the reader may have waited for the client
//! at most `grace + n / rate` in all. A client that sends nothing is cut at `grace`; one that
//! trickles a byte a second at a 1 KiB/s rule is cut shortly after it. A handler that is not
//! reading (waiting on its own upstream) is never blamed on the client: only time spent waiting
//! for body bytes counts.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// The rule's settings (0 bytes/s: no rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRate {
    pub bytes_per_sec: u64,
    pub grace: Duration,
}

/// How long, in all, the reader may have waited for the client once `received` bytes arrived.
pub fn deadline(rule: BodyRate, received: u64) -> Duration {
    // Whole nanoseconds; saturates (a huge body at a tiny rate) instead of overflowing.
    let nanos = u128::from(received) * 1_000_000_000 / u128::from(rule.bytes_per_sec.max(1));
    rule.grace.saturating_add(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}

/// Set once the rule cut a body; the middleware answers 408 then.
#[derive(Default)]
struct Tripped {
    flag: AtomicBool,
    notify: Notify,
}

/// The body, passed through unchanged while it keeps to the rule. Only the time the reader
/// spends waiting for the client's bytes counts: while the handler is not reading (its upstream
/// is slow), the client is not blamed.
fn paced(body: Body, rule: BodyRate, tripped: Arc<Tripped>) -> Body {
    let stream = futures::stream::unfold(
        (body.into_data_stream(), 0u64, Duration::ZERO, false),
        move |(mut stream, received, waited, ended)| {
            let tripped = tripped.clone();
            async move {
                if ended {
                    return None;
                }
                let left = deadline(rule, received).saturating_sub(waited);
                let began = tokio::time::Instant::now();
                let next = tokio::time::timeout(left, stream.next()).await;
                let waited = waited.saturating_add(began.elapsed());
                match next {
                    Ok(Some(Ok(bytes))) => {
                        let received = received + bytes.len() as u64;
                        Some((Ok(bytes), (stream, received, waited, false)))
                    }
                    Ok(Some(Err(e))) => Some((
                        Err(std::io::Error::other(e)),
                        (stream, received, waited, true),
                    )),
                    Ok(None) => None,
                    Err(_) => {
                        tripped.flag.store(true, Ordering::Release);
                        tripped.notify.notify_one();
                        let e = std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the request body arrived too slowly",
                        );
                        Some((Err(e), (stream, received, waited, true)))
                    }
                }
            }
        },
    );
    Body::from_stream(stream)
}

fn too_slow(rule: BodyRate) -> Response {
    let detail = format!(
        "the request body arrived slower than {} bytes/s (after the first {}): send it from a faster connection, or smaller",
        rule.bytes_per_sec,
        humantime::format_duration(rule.grace)
    );
    let mut r = (
        StatusCode::REQUEST_TIMEOUT,
        axum::Json(serde_json::json!({ "detail": detail })),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    r
}

/// The middleware ([`axum::middleware::from_fn_with_state`] with a [`BodyRate`]).
pub async fn enforce(State(rule): State<BodyRate>, req: Request, next: Next) -> Response {
    if rule.bytes_per_sec == 0 {
        return next.run(req).await;
    }
    let tripped = Arc::new(Tripped::default());
    let req = req.map(|body| paced(body, rule, tripped.clone()));
    let answer = tokio::select! {
        biased;
        () = tripped.notify.notified() => return too_slow(rule),
        answer = next.run(req) => answer,
    };
    if tripped.flag.load(Ordering::Acquire) {
        return too_slow(rule);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_what_arrived() {
        let rule = BodyRate {
            bytes_per_sec: 1024,
            grace: Duration::from_secs(10),
        };
        assert_eq!(deadline(rule, 0), Duration::from_secs(10));
        assert_eq!(deadline(rule, 1024), Duration::from_secs(11));
        assert_eq!(deadline(rule, 512), Duration::from_millis(10_500));
        assert_eq!(
            deadline(rule, 50_000_000 * 1024),
            Duration::from_secs(50_000_010)
        );
        // No overflow, whatever the numbers.
        let tiny = BodyRate {
            bytes_per_sec: 1,
            grace: Duration::MAX,
        };
        assert_eq!(deadline(tiny, u64::MAX), Duration::MAX);
    }
}
