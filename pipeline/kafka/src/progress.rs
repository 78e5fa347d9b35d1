//! How far a job has handled each input partition (the next offset it will handle), for a caller
//! that waits on it: the simulator's broker driver hands records to the real jobs one at a time and
//! waits until each job has handled one before producing the next, so that processing time and
//! the order across partitions are the scenario's, not the scheduler's.

use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

type Positions = BTreeMap<(String, i32), i64>;

#[derive(Debug, Clone)]
pub struct Progress {
    tx: Arc<watch::Sender<Positions>>,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(Positions::new())),
        }
    }
}

impl Progress {
    /// Records below `next` of this partition are handled (positions never go back: a restarted
    /// job replaying older records does not lower them).
    pub fn handled(&self, topic: &str, partition: i32, next: i64) {
        self.tx.send_if_modified(|m| {
            let at = m.entry((topic.to_owned(), partition)).or_insert(i64::MIN);
            if next > *at {
                *at = next;
                true
            } else {
                false
            }
        });
    }

    /// The next offset to handle of this partition, if any record of it was handled.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.tx
            .borrow()
            .get(&(topic.to_owned(), partition))
            .copied()
    }

    /// Waits until the record at `offset` of this partition is handled.
    pub async fn wait_for(&self, topic: &str, partition: i32, offset: i64) {
        let mut rx = self.tx.subscribe();
        let key = (topic.to_owned(), partition);
        // The sender lives as long as `self`: the wait cannot fail.
        let _ = rx
            .wait_for(|m| m.get(&key).is_some_and(|n| *n > offset))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_once_its_offset_is_handled_and_positions_never_go_back() {
        let p = Progress::default();
        let job = p.clone();
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.wait_for("t", 1, 4).await }
        });
        job.handled("t", 1, 4);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        job.handled("t", 1, 5);
        waiter.await.unwrap();
        job.handled("t", 1, 2);
        assert_eq!(p.position("t", 1), Some(5));
        assert_eq!(p.position("t", 0), None);
    }
}
