//! Filesystems behind one trait: local disk ([`LocalFs`]), in memory with crash semantics for tests
//! and the simulator ([`MemFs`]), and HDFS through hdfs-native ([`hdfs::HdfsFs`]). Paths are
//! `/`-separated, relative to the store root; `..` never appears: the configuration proves it of
//! `topics.dir`, `logs.dir` and `path.format`, topic names follow Kafka's rule, and the real stores
//! refuse such a path all the same ([`confined`]).

pub mod hdfs;
pub mod pipelined;

use crate::writer::Command;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

pub trait Fs {
    /// Appends, creating the file and its directories if needed.
    fn append(&mut self, path: &str, data: &[u8]) -> io::Result<()>;
    /// Makes the file's content durable.
    fn sync(&mut self, path: &str) -> io::Result<()>;
    /// Atomic; the parent directories of `to` are created.
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;
    /// A missing file is not an error.
    fn delete(&mut self, path: &str) -> io::Result<()>;
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>>;
    /// Every file under the directory `dir`, recursively (empty if it does not exist).
    fn list(&self, dir: &str) -> io::Result<Vec<String>>;
    /// Takes the file at `path` for this handle alone and returns its content (`None`: it did
    /// not exist; it is created empty). A handle that held it before is **fenced**: its appends
    /// and syncs to it fail from now on (HDFS: its lease is recovered; in memory: its claim is
    /// revoked). On local disk a live holder cannot be fenced: while another process holds the
    /// file, the claim fails (`WouldBlock`). Appends and syncs to a claimed path go through the
    /// claim, and once they fail they keep failing: the file is never reopened by name.
    fn claim(&mut self, path: &str) -> io::Result<Option<Vec<u8>>>;
    /// Empties a claimed file, keeping the claim.
    fn truncate(&mut self, path: &str) -> io::Result<()>;
    /// Gives up a claim: the file is deleted if the claim still holds; a fenced one is dropped.
    fn release(&mut self, path: &str) -> io::Result<()>;
    /// Runs one command, taking its data (no copy where the filesystem can keep it).
    fn apply(&mut self, command: Command) -> io::Result<()> {
        execute(self, &command)
    }
    /// Returns once every effect issued so far has happened (for filesystems that defer them).
    fn barrier(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<F: Fs + ?Sized> Fs for Box<F> {
    fn append(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        (**self).append(path, data)
    }
    fn sync(&mut self, path: &str) -> io::Result<()> {
        (**self).sync(path)
    }
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        (**self).rename(from, to)
    }
    fn delete(&mut self, path: &str) -> io::Result<()> {
        (**self).delete(path)
    }
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        (**self).read(path)
    }
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        (**self).list(dir)
    }
    fn claim(&mut self, path: &str) -> io::Result<Option<Vec<u8>>> {
        (**self).claim(path)
    }
    fn truncate(&mut self, path: &str) -> io::Result<()> {
        (**self).truncate(path)
    }
    fn release(&mut self, path: &str) -> io::Result<()> {
        (**self).release(path)
    }
    fn apply(&mut self, command: Command) -> io::Result<()> {
        (**self).apply(command)
    }
    fn barrier(&mut self) -> io::Result<()> {
        (**self).barrier()
    }
}

/// `path`, unless one of its segments is `..` or it holds NUL: then an `InvalidInput` error, so
/// that no path, however it was built, reaches outside the store root (a `.` segment stays where
/// it is: `topics.dir=./landing` is a directory under the root).
pub fn confined(path: &str) -> io::Result<&str> {
    if path.contains('\0') || path.split('/').any(|s| s == "..") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refused path {path:?}: it would leave the store root"),
        ));
    }
    Ok(path)
}

/// Runs one command.
pub fn execute<F: Fs + ?Sized>(fs: &mut F, command: &Command) -> io::Result<()> {
    match command {
        Command::Append { path, data } => fs.append(path, data),
        Command::Sync { path } => fs.sync(path),
        Command::Rename { from, to } => fs.rename(from, to),
        Command::Delete { path } => fs.delete(path),
        Command::Truncate { path } => fs.truncate(path),
        Command::Release { path } => fs.release(path),
    }
}

#[derive(Debug, Clone, Default)]
struct MemFile {
    durable: Vec<u8>,
    pending: Vec<u8>,
}

/// In memory, with crash semantics: appended bytes are lost by a crash until synced; renames and
/// deletes are atomic and durable. `crash_after(n)` makes the n+1-th effect fail (and every one
/// after it) as if the process died there.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    files: BTreeMap<String, MemFile>,
    /// Files this handle claimed (one handle: nobody else can fence it).
    claims: std::collections::BTreeSet<String>,
    budget: Option<usize>,
    effects: usize,
}

const CRASHED: &str = "simulated crash";

fn crashed() -> io::Error {
    io::Error::other(CRASHED)
}

impl MemFs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Effects (appends, syncs, renames, deletes) performed so far.
    /// Every file's path, in order (what a check lists to see what was left behind).
    pub fn paths(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    pub fn effects(&self) -> usize {
        self.effects
    }

    /// Let `n` more effects happen, then fail.
    pub fn crash_after(&mut self, n: usize) {
        self.budget = Some(n);
    }

    /// Whether an error is a crash this filesystem simulated (walk a chain with it).
    pub fn is_crash(error: &(dyn std::error::Error + 'static)) -> bool {
        error
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::Other && io.to_string() == CRASHED)
    }

    /// The process died: unsynced bytes are gone; effects work again.
    pub fn crash(&mut self) {
        for f in self.files.values_mut() {
            f.pending.clear();
        }
        self.claims.clear();
        self.budget = None;
    }

    fn effect(&mut self) -> io::Result<()> {
        match &mut self.budget {
            Some(0) => Err(crashed()),
            Some(n) => {
                *n -= 1;
                self.effects += 1;
                Ok(())
            }
            None => {
                self.effects += 1;
                Ok(())
            }
        }
    }
}

impl Fs for MemFs {
    fn append(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.effect()?;
        self.files
            .entry(path.to_owned())
            .or_default()
            .pending
            .extend_from_slice(data);
        Ok(())
    }

    fn sync(&mut self, path: &str) -> io::Result<()> {
        self.effect()?;
        let f = self
            .files
            .get_mut(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_owned()))?;
        let pending = std::mem::take(&mut f.pending);
        f.durable.extend_from_slice(&pending);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.effect()?;
        let f = self
            .files
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.to_owned()))?;
        self.files.insert(to.to_owned(), f);
        Ok(())
    }

    fn delete(&mut self, path: &str) -> io::Result<()> {
        self.effect()?;
        self.files.remove(path);
        Ok(())
    }

    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self
            .files
            .get(path)
            .map(|f| [f.durable.as_slice(), f.pending.as_slice()].concat()))
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        Ok(self
            .files
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect())
    }

    fn claim(&mut self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.effect()?;
        let before = self.read(path)?;
        self.files.entry(path.to_owned()).or_default();
        self.claims.insert(path.to_owned());
        Ok(before)
    }

    fn truncate(&mut self, path: &str) -> io::Result<()> {
        self.effect()?;
        if !self.claims.contains(path) {
            return Err(not_claimed(path));
        }
        self.files.insert(path.to_owned(), MemFile::default());
        Ok(())
    }

    fn release(&mut self, path: &str) -> io::Result<()> {
        self.effect()?;
        if self.claims.remove(path) {
            self.files.remove(path);
        }
        Ok(())
    }
}

fn not_claimed(path: &str) -> io::Error {
    io::Error::other(format!(
        "{path}: not claimed by this instance (another instance took it over)"
    ))
}

/// Local disk under a root directory; syncs files with `fsync` and directories after renames.
/// Each append opens its file (`O_APPEND`); only claimed files stay open.
#[derive(Debug)]
pub struct LocalFs {
    root: PathBuf,
    /// Claimed files, open for appending and locked (`flock`, exclusive) while claimed.
    claims: BTreeMap<String, std::fs::File>,
}

impl LocalFs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            claims: BTreeMap::new(),
        }
    }

    fn path(&self, p: &str) -> io::Result<PathBuf> {
        Ok(self.root.join(confined(p)?.trim_start_matches('/')))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Fs for LocalFs {
    fn append(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        if let Some(f) = self.claims.get_mut(path) {
            return f.write_all(data);
        }
        let p = self.path(path)?;
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)?
            .write_all(data)
    }

    fn sync(&mut self, path: &str) -> io::Result<()> {
        if let Some(f) = self.claims.get(path) {
            return f.sync_all();
        }
        std::fs::File::open(self.path(path)?)?.sync_all()
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let to = self.path(to)?;
        let parent = to.parent().map(Path::to_path_buf);
        if let Some(parent) = &parent {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(self.path(from)?, &to)?;
        match parent {
            Some(parent) => sync_dir(&parent),
            None => Ok(()),
        }
    }

    fn delete(&mut self, path: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(path)?) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(path)?) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        fn walk(base: &Path, rel: &str, out: &mut Vec<String>) -> io::Result<()> {
            let entries = match std::fs::read_dir(base) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let child = format!("{rel}/{name}");
                if entry.file_type()?.is_dir() {
                    walk(&entry.path(), &child, out)?;
                } else {
                    out.push(child);
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        walk(&self.path(dir)?, dir.trim_end_matches('/'), &mut out)?;
        out.sort();
        Ok(out)
    }

    fn claim(&mut self, path: &str) -> io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        self.claims.remove(path);
        let p = self.path(path)?;
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let existed = p.exists();
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&p)?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "{path} is held by another live process (an instance of this job, perhaps stopped or frozen): on local disk it cannot be taken from it; it is free once that process ends"
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let mut content = Vec::new();
        f.read_to_end(&mut content)?;
        self.claims.insert(path.to_owned(), f);
        Ok(existed.then_some(content))
    }

    fn truncate(&mut self, path: &str) -> io::Result<()> {
        let f = self.claims.get(path).ok_or_else(|| not_claimed(path))?;
        f.set_len(0)?;
        f.sync_all()
    }

    fn release(&mut self, path: &str) -> io::Result<()> {
        if self.claims.contains_key(path) {
            // Deleted while still locked: no other process can claim it in between.
            self.delete(path)?;
            self.claims.remove(path);
        }
        Ok(())
    }
}
