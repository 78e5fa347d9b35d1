//! Filesystems behind one trait: local disk ([`LocalFs`]), in memory with crash semantics for tests
//! and the simulator ([`MemFs`]), and HDFS through hdfs-native ([`hdfs::HdfsFs`]). Paths are
//! `/`-separated, relative to the store root; `..` never appears: the configuration proves it of
//! `topics.dir`, `logs.dir` and `path.format`, topic names follow Kafka's rule, and the real stores
//! refuse such a path all the same ([`confined`]).

pub mod hdfs;
pub mod pipelined;

use crate::writer::Command;
use std::collections::{BTreeMap, BTreeSet};
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
    /// The handle that created or claimed it: its unsynced bytes die with that handle.
    writer: usize,
}

/// What one handle (one process) holds.
#[derive(Debug, Clone, Default)]
struct MemHandle {
    /// Paths it claimed; one whose holder is now another handle is fenced for it.
    claims: BTreeSet<String>,
    /// Files it has open for writing (appended to, not yet renamed or deleted by it): if another
    /// handle deletes one, its next append or sync fails, as an HDFS writer's does.
    writing: BTreeSet<String>,
    /// Effects it may still perform before it fails (`None`: no limit).
    budget: Option<usize>,
}

/// In memory, with crash semantics: appended bytes are lost by a crash until synced; renames and
/// deletes are atomic and durable. `crash_after(n)` makes the n+1-th effect fail (and every one
/// after it) as if the process died there.
///
/// Several processes share one store through handles ([`MemFs::handle`]; the `Fs` of `MemFs`
/// itself is handle 0): each has its own unsynced bytes, claims, open files and crash budget, so
/// that a claim by one fences another (its appends and syncs to the claimed file fail), a file
/// deleted under an open writer fails that writer, and a crash of one loses only its own unsynced
/// bytes.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    files: BTreeMap<String, MemFile>,
    /// Claimed paths and the handle holding each.
    holders: BTreeMap<String, usize>,
    handles: BTreeMap<usize, MemHandle>,
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

    /// Every file's path, in order (what a check lists to see what was left behind).
    pub fn paths(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// Effects (appends, syncs, renames, deletes, claims) performed so far, by every handle.
    pub fn effects(&self) -> usize {
        self.effects
    }

    /// The store as handle `id` sees it.
    pub fn handle(&mut self, id: usize) -> Handle<'_> {
        Handle { fs: self, id }
    }

    /// Let `n` more effects of handle 0 happen, then fail.
    pub fn crash_after(&mut self, n: usize) {
        self.crash_after_of(0, n);
    }

    /// Let `n` more effects of handle `id` happen, then fail.
    pub fn crash_after_of(&mut self, id: usize, n: usize) {
        self.handles.entry(id).or_default().budget = Some(n);
    }

    /// Handle `id` will not fail: a crash armed on it is called off.
    pub fn disarm(&mut self, id: usize) {
        if let Some(h) = self.handles.get_mut(&id) {
            h.budget = None;
        }
    }

    /// Whether an error is a crash this filesystem simulated (walk a chain with it).
    pub fn is_crash(error: &(dyn std::error::Error + 'static)) -> bool {
        error
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::Other && io.to_string() == CRASHED)
    }

    /// Every process died: unsynced bytes are gone; effects work again.
    pub fn crash(&mut self) {
        for id in self.handles.keys().copied().collect::<Vec<_>>() {
            self.crash_of(id);
        }
        for f in self.files.values_mut() {
            f.pending.clear();
        }
    }

    /// The process of handle `id` died: its unsynced bytes are gone, its claims and open files
    /// with it; its handle works again (as a new process).
    pub fn crash_of(&mut self, id: usize) {
        for f in self.files.values_mut().filter(|f| f.writer == id) {
            f.pending.clear();
        }
        self.holders.retain(|_, h| *h != id);
        self.handles.remove(&id);
    }

    fn effect(&mut self, id: usize) -> io::Result<()> {
        match &mut self.handles.entry(id).or_default().budget {
            Some(0) => return Err(crashed()),
            Some(n) => *n -= 1,
            None => {}
        }
        self.effects += 1;
        Ok(())
    }

    /// Fails if `path` was claimed by `id` and another handle holds it now, or was open for
    /// writing by `id` and is gone.
    fn held(&self, id: usize, path: &str) -> io::Result<()> {
        let Some(h) = self.handles.get(&id) else {
            return Ok(());
        };
        if h.claims.contains(path) && self.holders.get(path) != Some(&id) {
            return Err(fenced(path));
        }
        if h.writing.contains(path) && !self.files.contains_key(path) {
            return Err(fenced(path));
        }
        Ok(())
    }
}

/// One process's view of a [`MemFs`] (see there).
#[derive(Debug)]
pub struct Handle<'a> {
    fs: &'a mut MemFs,
    id: usize,
}

impl Handle<'_> {
    fn state(&mut self) -> &mut MemHandle {
        self.fs.handles.entry(self.id).or_default()
    }
}

impl Fs for Handle<'_> {
    fn append(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.fs.effect(self.id)?;
        self.fs.held(self.id, path)?;
        let id = self.id;
        let f = self
            .fs
            .files
            .entry(path.to_owned())
            .or_insert_with(|| MemFile {
                writer: id,
                ..MemFile::default()
            });
        f.pending.extend_from_slice(data);
        self.state().writing.insert(path.to_owned());
        Ok(())
    }

    fn sync(&mut self, path: &str) -> io::Result<()> {
        self.fs.effect(self.id)?;
        self.fs.held(self.id, path)?;
        let f = self
            .fs
            .files
            .get_mut(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_owned()))?;
        let pending = std::mem::take(&mut f.pending);
        f.durable.extend_from_slice(&pending);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.fs.effect(self.id)?;
        let f = self
            .fs
            .files
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.to_owned()))?;
        self.fs.files.insert(to.to_owned(), f);
        self.state().writing.remove(from);
        Ok(())
    }

    fn delete(&mut self, path: &str) -> io::Result<()> {
        self.fs.effect(self.id)?;
        self.fs.files.remove(path);
        self.state().writing.remove(path);
        Ok(())
    }

    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.fs.read(path)
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        self.fs.list(dir)
    }

    fn claim(&mut self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.fs.effect(self.id)?;
        let before = self.fs.read(path)?;
        let id = self.id;
        let f = self.fs.files.entry(path.to_owned()).or_default();
        // The previous writer's unsynced bytes are not part of the file any more (HDFS lease
        // recovery keeps what was synced).
        f.pending.clear();
        f.writer = id;
        self.fs.holders.insert(path.to_owned(), id);
        self.state().claims.insert(path.to_owned());
        Ok(before)
    }

    fn truncate(&mut self, path: &str) -> io::Result<()> {
        self.fs.effect(self.id)?;
        if self.fs.holders.get(path) != Some(&self.id) {
            return Err(fenced(path));
        }
        let id = self.id;
        self.fs.files.insert(
            path.to_owned(),
            MemFile {
                writer: id,
                ..MemFile::default()
            },
        );
        Ok(())
    }

    fn release(&mut self, path: &str) -> io::Result<()> {
        self.fs.effect(self.id)?;
        if self.state().claims.remove(path) && self.fs.holders.get(path) == Some(&self.id) {
            self.fs.holders.remove(path);
            self.fs.files.remove(path);
        }
        Ok(())
    }
}

impl Fs for MemFs {
    fn append(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.handle(0).append(path, data)
    }

    fn sync(&mut self, path: &str) -> io::Result<()> {
        self.handle(0).sync(path)
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.handle(0).rename(from, to)
    }

    fn delete(&mut self, path: &str) -> io::Result<()> {
        self.handle(0).delete(path)
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
        self.handle(0).claim(path)
    }

    fn truncate(&mut self, path: &str) -> io::Result<()> {
        self.handle(0).truncate(path)
    }

    fn release(&mut self, path: &str) -> io::Result<()> {
        self.handle(0).release(path)
    }
}

/// The error of a write to a file this instance no longer holds: another instance claimed it
/// (and took its partition over), or deleted it under this instance's open writer. Tell it with
/// [`is_fenced`].
#[derive(Debug, thiserror::Error)]
#[error(
    "{0}: no longer held by this instance (another instance recovered its lease and took the partition over)"
)]
pub struct Fenced(pub String);

pub fn fenced(path: &str) -> io::Error {
    io::Error::other(Fenced(path.to_owned()))
}

/// Whether `e` says this instance was fenced ([`Fenced`]).
pub fn is_fenced(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<Fenced>())
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
        let f = self.claims.get(path).ok_or_else(|| fenced(path))?;
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
