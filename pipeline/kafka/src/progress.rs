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

    /// The partition was assigned to the job, which starts at `next` (records below it are
    /// landed already): its position is `next`, even if it was further before (another instance
    /// may have had the partition in between).
    pub fn assigned(&self, topic: &str, partition: i32, next: i64) {
        self.tx.send_modify(|m| {
            m.insert((topic.to_owned(), partition), next);
        });
    }

    /// The partition is not the job's any more: it has no position.
    pub fn forget(&self, topic: &str, partition: i32) {
        self.tx
            .send_if_modified(|m| m.remove(&(topic.to_owned(), partition)).is_some());
    }

    /// No partition has a position (the job is not consuming any more).
    pub fn clear(&self) {
        self.tx.send_if_modified(|m| {
            let had = !m.is_empty();
            m.clear();
            had
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

/// Returns when `pause` says frozen (never without one): the simulator's broker driver freezes
/// a job instance with such a switch.
pub async fn frozen(pause: &mut Option<watch::Receiver<bool>>) {
    match pause {
        Some(rx) => {
            let _ = rx.wait_for(|p| *p).await;
        }
        None => std::future::pending().await,
    }
}

/// Returns when `pause` says woken (at once without one).
pub async fn thawed(pause: &mut Option<watch::Receiver<bool>>) {
    if let Some(rx) = pause {
        let _ = rx.wait_for(|p| !*p).await;
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

    #[test]
    fn an_assignment_sets_the_position_and_a_revocation_removes_it() {
        let p = Progress::default();
        p.handled("t", 1, 9);
        // Taken back after another instance had it: it starts again where the files end.
        p.assigned("t", 1, 4);
        assert_eq!(p.position("t", 1), Some(4));
        p.forget("t", 1);
        assert_eq!(p.position("t", 1), None);
        p.assigned("t", 2, 0);
        p.clear();
        assert_eq!(p.position("t", 2), None);
    }
}
