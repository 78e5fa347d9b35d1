//! The limits every server is given, with their defaults (docs/services.md).

use std::time::Duration;

/// What a client may take of a server. `Default` is what every command starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request's head must arrive within this from when the connection is ready for it
    /// (accepted, or idle after an answer). Also the keep-alive idle timeout.
    pub header_timeout: Duration,
    /// Bytes per second a request body must average once `body_grace` has passed (0: no rule).
    pub min_body_rate: u64,
    /// How long a body may take before `min_body_rate` applies.
    pub body_grace: Duration,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// How long requests in flight may take to finish once shutdown starts.
    pub shutdown_timeout: Duration,
}

pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MIN_BODY_RATE: u64 = 1024;
pub const DEFAULT_BODY_GRACE: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Below the 60 s `TimeoutStopSec` of the systemd units (deploy/).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            min_body_rate: DEFAULT_MIN_BODY_RATE,
            body_grace: DEFAULT_BODY_GRACE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

impl Limits {
    /// Refuses values that would disable a protection by accident: a zero header timeout or
    /// connection bound. The error names the option and the fix.
    pub fn check(&self) -> Result<(), String> {
        if self.header_timeout.is_zero() {
            return Err("--header-timeout must be more than 0 (e.g. 10s)".to_owned());
        }
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1 (e.g. 512)".to_owned());
        }
        Ok(())
    }
}
