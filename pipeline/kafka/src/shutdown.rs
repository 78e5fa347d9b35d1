//! Graceful shutdown: the first SIGINT or SIGTERM cancels the token (stop fetching, finish the
//! batch in flight, commit, exit 0); a second one exits at once with status 130. A shutdown that
//! has not finished `timeout` (plus [`WATCHDOG_MARGIN`]) after the first signal is ended with
//! status [`EXIT_SHUTDOWN_TIMEOUT`]: nothing uncommitted is lost by that (it is consumed again on
//! restart), and the process never outlives its unit's stop timeout waiting for a hung peer.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// The exit status of a shutdown that did not finish in time (as `timeout(1)`).
pub const EXIT_SHUTDOWN_TIMEOUT: i32 = 124;

/// How long after its timeout a shutdown is forced: the time a command that honours the timeout
/// itself (the HTTP servers cut their connections at it) needs to return.
pub const WATCHDOG_MARGIN: Duration = Duration::from_secs(2);

/// A token cancelled on the first SIGINT/SIGTERM; the process exits with
/// [`EXIT_SHUTDOWN_TIMEOUT`] if it is still running `timeout` + [`WATCHDOG_MARGIN`] after that
/// signal. Must be called inside a Tokio runtime.
pub fn on_signals_within(timeout: Duration) -> CancellationToken {
    let token = CancellationToken::new();
    let watched = token.clone();
    tokio::spawn(async move {
        watched.cancelled().await;
        tokio::time::sleep(timeout.saturating_add(WATCHDOG_MARGIN)).await;
        tracing::error!(
            timeout = %humantime::format_duration(timeout),
            "shutdown did not finish within --shutdown-timeout: exiting; uncommitted work is consumed again on restart"
        );
        std::process::exit(EXIT_SHUTDOWN_TIMEOUT);
    });
    let t = token.clone();
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            return;
        };
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        tracing::info!(
            signal = name,
            "shutting down: finishing in-flight work (signal again to abort)"
        );
        t.cancel();
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        tracing::warn!("second signal: aborting");
        std::process::exit(130);
    });
    token
}
