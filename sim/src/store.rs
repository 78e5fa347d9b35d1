//! The landing store of a run: one in-memory filesystem with crash semantics
//! ([`MemFs`]), shared by every landing instance (each through its own handle: its own unsynced
//! bytes, claims and crash budget, as separate processes writing one HDFS) and by the driver,
//! which arms crashes and reads the files. Both drivers use it, so that a crash strikes the same
//! effect in both.

use atenex_landing::fs::{Fs, MemFs};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One instance's handle on the shared store; every effect takes `latency` (a slow disk).
#[derive(Debug, Clone)]
pub struct SharedFs {
    store: Arc<Mutex<MemFs>>,
    latency: Duration,
    /// The handle: one per process (a restarted instance gets a new one).
    id: usize,
}

impl SharedFs {
    pub fn new(latency: Duration) -> Self {
        Self {
            store: Arc::default(),
            latency,
            id: 0,
        }
    }

    /// A store of its own holding `fs` (a copy to probe), as handle 0.
    pub fn of(fs: MemFs) -> Self {
        Self {
            store: Arc::new(Mutex::new(fs)),
            latency: Duration::ZERO,
            id: 0,
        }
    }

    /// Another process's handle on the same store.
    pub fn handle(&self, id: usize) -> Self {
        Self { id, ..self.clone() }
    }

    pub fn id(&self) -> usize {
        self.id
    }

    pub fn lock(&self) -> MutexGuard<'_, MemFs> {
        self.store.lock().expect("not poisoned")
    }

    fn slow(&self) -> MutexGuard<'_, MemFs> {
        if !self.latency.is_zero() {
            // The job's thread waits, as on a disk that answers slowly.
            std::thread::sleep(self.latency);
        }
        self.lock()
    }
}

impl Fs for SharedFs {
    fn append(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.slow().handle(self.id).append(path, data)
    }
    fn sync(&mut self, path: &str) -> io::Result<()> {
        self.slow().handle(self.id).sync(path)
    }
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.slow().handle(self.id).rename(from, to)
    }
    fn delete(&mut self, path: &str) -> io::Result<()> {
        self.slow().handle(self.id).delete(path)
    }
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.lock().read(path)
    }
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        self.lock().list(dir)
    }
    fn claim(&mut self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.slow().handle(self.id).claim(path)
    }
    fn truncate(&mut self, path: &str) -> io::Result<()> {
        self.slow().handle(self.id).truncate(path)
    }
    fn release(&mut self, path: &str) -> io::Result<()> {
        self.slow().handle(self.id).release(path)
    }
}
