//! Another thread executes the effects: the caller (parsing records, filling buffers) and the
//! disk (writes, fsyncs) work at the same time — on two cores, the offline landing's throughput is
//! that of the slower of the two instead of their sum.
//!
//! Effects run in the order they were issued, one at a time, exactly as without the thread; only
//! *when* they happen moves. `read` and `list` wait for everything issued before them, and so
//! does [`Fs::barrier`]: call it before anything outside the filesystem depends on the effects
//! having happened (a summary printed, a Kafka offset committed). The first failure stops the
//! thread; it is returned by the next call, and every call after it.

use super::Fs;
use crate::writer::Command;
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Commands in flight at most (appends are up to 96 KiB each).
const DEPTH: usize = 64;

enum Job {
    Effect(Command),
    Read(String, SyncSender<io::Result<Option<Vec<u8>>>>),
    List(String, SyncSender<io::Result<Vec<String>>>),
    Claim(String, SyncSender<io::Result<Option<Vec<u8>>>>),
    Barrier(SyncSender<()>),
}

pub struct Pipelined {
    jobs: Option<SyncSender<Job>>,
    failed: Receiver<io::Error>,
    error: Option<(io::ErrorKind, String)>,
    worker: Option<JoinHandle<()>>,
}

impl Pipelined {
    pub fn new<F: Fs + Send + 'static>(mut fs: F) -> Self {
        let (jobs, rx) = sync_channel::<Job>(DEPTH);
        let (fail_tx, failed) = sync_channel(1);
        let worker = std::thread::Builder::new()
            .name("landing-io".to_owned())
            .spawn(move || {
                let mut dead = false;
                for job in rx {
                    match job {
                        Job::Effect(c) if !dead => {
                            if let Err(e) = fs.apply(c) {
                                dead = true;
                                let _ = fail_tx.send(e);
                            }
                        }
                        Job::Effect(_) => {}
                        Job::Read(p, reply) => {
                            let _ = reply.send(fs.read(&p));
                        }
                        Job::List(d, reply) => {
                            let _ = reply.send(fs.list(&d));
                        }
                        Job::Claim(p, reply) => {
                            let _ = reply.send(fs.claim(&p));
                        }
                        Job::Barrier(reply) => {
                            let _ = reply.send(());
                        }
                    }
                }
            })
            .expect("cannot start the landing I/O thread");
        Self {
            jobs: Some(jobs),
            failed,
            error: None,
            worker: Some(worker),
        }
    }

    /// The first failure, once seen: every later call returns it.
    fn check(&mut self) -> io::Result<()> {
        if self.error.is_none()
            && let Ok(e) = self.failed.try_recv()
        {
            self.error = Some((e.kind(), e.to_string()));
        }
        match &self.error {
            Some((kind, text)) => Err(io::Error::new(*kind, text.clone())),
            None => Ok(()),
        }
    }

    fn send(&mut self, job: Job) -> io::Result<()> {
        self.check()?;
        self.jobs
            .as_ref()
            .expect("present until dropped")
            .send(job)
            .map_err(|_| io::Error::other("the landing I/O thread stopped"))
    }

    fn ask<T>(&self, job: impl FnOnce(SyncSender<T>) -> Job) -> io::Result<T> {
        let (tx, rx) = sync_channel(1);
        self.jobs
            .as_ref()
            .expect("present until dropped")
            .send(job(tx))
            .map_err(|_| io::Error::other("the landing I/O thread stopped"))?;
        rx.recv()
            .map_err(|_| io::Error::other("the landing I/O thread stopped"))
    }
}

impl Fs for Pipelined {
    fn append(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.apply(Command::Append {
            path: path.to_owned(),
            data: data.to_vec(),
        })
    }

    fn sync(&mut self, path: &str) -> io::Result<()> {
        self.apply(Command::Sync {
            path: path.to_owned(),
        })
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.apply(Command::Rename {
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }

    fn delete(&mut self, path: &str) -> io::Result<()> {
        self.apply(Command::Delete {
            path: path.to_owned(),
        })
    }

    fn claim(&mut self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.check()?;
        self.ask(|tx| Job::Claim(path.to_owned(), tx))?
    }

    fn truncate(&mut self, path: &str) -> io::Result<()> {
        self.apply(Command::Truncate {
            path: path.to_owned(),
        })
    }

    fn release(&mut self, path: &str) -> io::Result<()> {
        self.apply(Command::Release {
            path: path.to_owned(),
        })
    }

    fn apply(&mut self, command: Command) -> io::Result<()> {
        self.send(Job::Effect(command))
    }

    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.ask(|tx| Job::Read(path.to_owned(), tx))?
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        self.ask(|tx| Job::List(dir.to_owned(), tx))?
    }

    fn barrier(&mut self) -> io::Result<()> {
        self.check()?;
        self.ask(Job::Barrier)?;
        // A failure of the last effects arrives before the barrier's answer.
        self.check()
    }
}

impl Drop for Pipelined {
    fn drop(&mut self) {
        // Let issued effects finish: dropping without a barrier must not cut them short.
        drop(self.jobs.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;

    #[test]
    fn effects_happen_in_order_and_the_first_failure_is_reported() {
        let mut mem = MemFs::new();
        mem.crash_after(3);
        let mut p = Pipelined::new(mem);
        p.append("/a", b"1").unwrap();
        p.sync("/a").unwrap();
        p.rename("/a", "/b").unwrap();
        assert_eq!(p.read("/b").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(p.list("/").unwrap(), vec!["/b".to_owned()]);
        p.barrier().unwrap();
        // The 4th effect fails (a simulated crash): reported by a later call, and every one after.
        p.delete("/b").unwrap();
        let e = p.barrier().unwrap_err();
        assert!(e.to_string().contains("simulated crash"), "{e}");
        assert!(p.append("/c", b"2").is_err());
        assert!(p.barrier().is_err());
    }
}
