//! Processing time for the jobs' adapters: the system clock in production, a clock the caller sets
//! in the simulator's broker driver (virtual time through the real Kafka adapters).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The wall clock, epoch ms.
    #[default]
    System,
    /// A time that moves only when [`Clock::set`] is called.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock showing `ms`.
    pub fn manual(ms: i64) -> Self {
        Self::Manual(Arc::new(AtomicI64::new(ms)))
    }

    /// Epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self {
            Self::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            Self::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock (never back); no effect on the system clock.
    pub fn set(&self, ms: i64) {
        if let Self::Manual(t) = self {
            t.fetch_max(ms, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_forward_and_only_when_set() {
        let c = Clock::manual(1_000);
        let seen_by_a_job = c.clone();
        assert_eq!(seen_by_a_job.now_ms(), 1_000);
        c.set(5_000);
        assert_eq!(seen_by_a_job.now_ms(), 5_000);
        c.set(4_000);
        assert_eq!(seen_by_a_job.now_ms(), 5_000);
        let wall = Clock::System.now_ms();
        assert!(wall > 1_700_000_000_000, "{wall}");
    }
}
