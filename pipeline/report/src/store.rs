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
    /// Every file under `dir`, recursively, with its size; empty if `dir` does not exist.
    fn list(&self, dir: &str) -> io::Result<Vec<(String, u64)>>;
    /// The names of the directories directly in `dir`; empty if it does not exist.
    fn subdirs(&self, dir: &str) -> io::Result<Vec<String>>;
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
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

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        std::fs::read(path)
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

/// HDFS through hdfs-native.
pub struct HdfsStore {
    pub hdfs: Hdfs,
}

impl Store for HdfsStore {
    fn describe(&self, path: &str) -> String {
        format!("{}{path}", self.hdfs.url().namenode)
    }

    fn list(&self, dir: &str) -> io::Result<Vec<(String, u64)>> {
        self.hdfs.list_files_with_len(dir)
    }

    fn subdirs(&self, dir: &str) -> io::Result<Vec<String>> {
        self.hdfs.subdirs(dir)
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.hdfs.read(path)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("hdfs {path}: not found"))
        })
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
