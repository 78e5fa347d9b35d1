//! Where the landing tree is read and the report written: a local directory (plain path or
//! `file://`) or HDFS (`hdfs://host:port/path`, through the same hdfs-native client the landing
//! uses). Paths are absolute within their store (`/...` on HDFS, OS paths locally).

use atenex_hdfs::{Hdfs, HdfsUrl};
use std::io;
use std::path::Path;
use std::sync::Arc;

pub trait Store: Send + Sync {
    /// `path` as a URL, for messages.
    fn describe(&self, path: &str) -> String;
    /// `path` as a URL Hadoop's FileSystem (Spark) reads: `file:///abs/path`, `hdfs://nn:port/path`.
    fn url(&self, path: &str) -> String;
    /// Every file under `dir`, recursively, with its size; empty if `dir` does not exist.
    fn list(&self, dir: &str) -> io::Result<Vec<(String, u64)>>;
    /// The names of the directories directly in `dir`; empty if it does not exist.
    fn subdirs(&self, dir: &str) -> io::Result<Vec<String>>;
    /// The file's bytes, if it is a regular file (a FIFO, device or socket is refused with
    /// `InvalidInput`, without being opened for long) of at most `limit` bytes (else
    /// `FileTooLarge`): a reader of files it did not write never hangs nor takes unbounded memory.
    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>>;
    /// Takes the lock `path` (a file) for this process until the guard is dropped; `WouldBlock`
    /// if another process holds it.
    fn lock(&self, path: &str) -> io::Result<Box<dyn std::any::Any + Send>>;
    /// Creates the file (and its directories) with `data`, durably.
    fn write(&self, path: &str, data: &[u8]) -> io::Result<()>;
    fn exists(&self, path: &str) -> io::Result<bool>;
    /// Renames a file or directory; `to` must not exist; its parent is created.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Renames the file `from` onto the existing file `to`, atomically replacing it.
    fn replace_file(&self, from: &str, to: &str) -> io::Result<()>;
    /// Swaps two existing directories atomically if the filesystem can (Linux `renameat2` with
    /// `RENAME_EXCHANGE`); `Ok(false)` if it cannot (HDFS).
    fn exchange(&self, a: &str, b: &str) -> io::Result<bool>;
    /// Removes a file or a directory tree; a missing one is not an error.
    fn remove_all(&self, path: &str) -> io::Result<()>;
}

/// A directory of a store: the store and the directory's path in it.
#[derive(Clone)]
pub struct Location {
    pub store: Arc<dyn Store>,
    pub path: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.store.describe(&self.path))
    }
}

impl Location {
    /// Parses `hdfs://host:port/path`, `file:///path` or a plain path, connecting to HDFS (which
    /// fails fast, naming the URL, when the name node does not answer).
    pub fn open(url: &str) -> io::Result<Self> {
        if url.starts_with("hdfs://") {
            let u =
                HdfsUrl::parse(url).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let hdfs = Hdfs::connect(&u)?;
            let path = u.path("");
            return Ok(Self {
                store: Arc::new(HdfsStore { hdfs }),
                path,
            });
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        if path.contains("://") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{url}: use hdfs://host:port/path, file:///path or a plain directory"),
            ));
        }
        Ok(Self {
            store: Arc::new(LocalStore),
            path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The path of `rel` (`/`-separated) inside this directory.
    pub fn join(&self, rel: &str) -> String {
        format!(
            "{}/{}",
            self.path.trim_end_matches('/'),
            rel.trim_start_matches('/')
        )
    }
}

/// The local filesystem.
pub struct LocalStore;

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Store for LocalStore {
    fn describe(&self, path: &str) -> String {
        path.to_owned()
    }

    fn url(&self, path: &str) -> String {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.into());
        format!("file://{}", absolute.display())
    }

    fn list(&self, dir: &str) -> io::Result<Vec<(String, u64)>> {
        fn walk(dir: &Path, out: &mut Vec<(String, u64)>) -> io::Result<()> {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let meta = entry.metadata()?;
                if meta.is_dir() {
                    walk(&entry.path(), out)?;
                } else {
                    out.push((entry.path().to_string_lossy().into_owned(), meta.len()));
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        walk(Path::new(dir), &mut out)?;
        out.sort();
        Ok(out)
    }

    fn subdirs(&self, dir: &str) -> io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                out.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        // Checked before opening (opening a FIFO waits for a writer), and again on what was
        // opened (O_NONBLOCK: never waits) in case the name was swapped in between.
        regular(&std::fs::metadata(path)?)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        let meta = file.metadata()?;
        regular(&meta)?;
        too_large(meta.len(), limit)?;
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
        too_large(bytes.len() as u64, limit)?;
        Ok(bytes)
    }

    fn lock(&self, path: &str) -> io::Result<Box<dyn std::any::Any + Send>> {
        use std::os::unix::fs::MetadataExt;
        if let Some(parent) = Path::new(path).parent() {
            std::fs::create_dir_all(parent)?;
        }
        loop {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)?;
            file.try_lock().map_err(|e| match e {
                std::fs::TryLockError::WouldBlock => io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "locked by that run; run again once it has finished",
                ),
                std::fs::TryLockError::Error(e) => e,
            })?;
            // The holder before us removes the file while it holds the lock: if ours is no
            // longer the file at `path`, another process may lock that one, so start again.
            let (held, named) = (file.metadata()?, std::fs::metadata(path));
            if named.is_ok_and(|n| n.dev() == held.dev() && n.ino() == held.ino()) {
                return Ok(Box::new(LocalLock {
                    path: path.to_owned(),
                    _file: file,
                }));
            }
        }
    }

    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let p = Path::new(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut f = std::fs::File::create(p)?;
        f.write_all(data)?;
        f.sync_all()?;
        if let Some(parent) = p.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    fn exists(&self, path: &str) -> io::Result<bool> {
        Path::new(path).try_exists()
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let to = Path::new(to);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Refuse to replace: renaming a directory onto an empty one would succeed silently.
        if to.try_exists()? {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", to.display()),
            ));
        }
        std::fs::rename(from, to)?;
        match to.parent() {
            Some(parent) => sync_dir(parent),
            None => Ok(()),
        }
    }

    fn replace_file(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(from, to)?;
        match Path::new(to).parent() {
            Some(parent) => sync_dir(parent),
            None => Ok(()),
        }
    }

    fn exchange(&self, a: &str, b: &str) -> io::Result<bool> {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
            Ok(()) => {
                if let Some(parent) = Path::new(b).parent() {
                    sync_dir(parent)?;
                }
                Ok(true)
            }
            // Kernels or filesystems without RENAME_EXCHANGE.
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn remove_all(&self, path: &str) -> io::Result<()> {
        let p = Path::new(path);
        let result = match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
            Ok(_) => std::fs::remove_file(p),
            Err(e) => Err(e),
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// A held lock of [`LocalStore`]: the file is removed, then unlocked, when dropped.
struct LocalLock {
    path: String,
    _file: std::fs::File,
}

impl Drop for LocalLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn regular(meta: &std::fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    let kind = if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {kind}, not a regular file (the landing writes regular files only)"),
    ))
}

fn too_large(len: u64, limit: u64) -> io::Result<()> {
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("it is over {limit} bytes (--max-file-bytes)"),
        ));
    }
    Ok(())
}

/// A held lock of [`HdfsStore`]: a file created only if it did not exist, open while held,
/// removed when dropped. A process that dies holding it leaves it: the next run is refused, and
/// its message says to remove the file once no run is active.
struct HdfsLock {
    hdfs: Hdfs,
    path: String,
    _writer: atenex_hdfs::blocking::Writer,
}

impl Drop for HdfsLock {
    fn drop(&mut self) {
        let _ = self.hdfs.delete(&self.path);
    }
}

/// HDFS through hdfs-native.
pub struct HdfsStore {
    pub hdfs: Hdfs,
}

impl Store for HdfsStore {
    fn describe(&self, path: &str) -> String {
        format!("{}{path}", self.hdfs.url().namenode)
    }

    fn url(&self, path: &str) -> String {
        self.describe(path)
    }

    fn list(&self, dir: &str) -> io::Result<Vec<(String, u64)>> {
        self.hdfs.list_files_with_len(dir)
    }

    fn subdirs(&self, dir: &str) -> io::Result<Vec<String>> {
        self.hdfs.subdirs(dir)
    }

    /// HDFS has only regular files and directories (callers check the listed length first).
    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        let bytes = self.hdfs.read(path)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("hdfs {path}: not found"))
        })?;
        too_large(bytes.len() as u64, limit)?;
        Ok(bytes)
    }

    fn lock(&self, path: &str) -> io::Result<Box<dyn std::any::Any + Send>> {
        let writer = self.hdfs.create_new(path).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => io::Error::new(
                io::ErrorKind::WouldBlock,
                "there: run again once that run has finished; if none is running, a crashed run left it: remove it",
            ),
            _ => e,
        })?;
        Ok(Box::new(HdfsLock {
            hdfs: self.hdfs.clone(),
            path: path.to_owned(),
            _writer: writer,
        }))
    }

    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        let mut w = self.hdfs.open_writer(path)?;
        w.write(data)?;
        w.sync_and_close()
    }

    fn exists(&self, path: &str) -> io::Result<bool> {
        self.hdfs.exists(path)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        if let Some(i) = to.rfind('/').filter(|&i| i > 0) {
            self.hdfs.mkdirs(&to[..i])?;
        }
        self.hdfs.rename(from, to)
    }

    fn replace_file(&self, from: &str, to: &str) -> io::Result<()> {
        self.hdfs.replace(from, to)
    }

    fn exchange(&self, _a: &str, _b: &str) -> io::Result<bool> {
        Ok(false)
    }

    fn remove_all(&self, path: &str) -> io::Result<()> {
        self.hdfs.delete_all(path)
    }
}
