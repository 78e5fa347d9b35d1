//! HDFS through `hdfs-native` (a Rust client of the name node and data node protocols: no JVM, no
//! libhdfs).
//!
//! - A file being appended to stays open (one HDFS writer, its lease held).
//! - `sync` is `hsync`: the bytes are on the DataNodes' disks and the name node knows the length,
//!   in milliseconds; the file stays open.
//! - Closing is what is slow on HDFS (the name node completes a file only once the DataNode has
//!   reported its last block; clients poll, about 0.5 s). So files are closed together, in
//!   parallel, at the first rename after they were synced: a commit of many files — temp files
//!   and its commit log — waits once.
//! - Renames create the target's directory first (cached); a file this process did not close
//!   itself is closed by lease recovery before it is renamed, so that a committed file is never
//!   left under construction.
//!
//! - A claimed file (a partition's commit log) keeps its writer, and so its lease, while claimed:
//!   a new owner's claim forces lease recovery, after which this writer fails; a claimed path
//!   whose writer failed is never reopened by name ([`Fs::claim`]).
//!
//! A writer that died leaves its open files with a lease nobody renews. Temp files are deleted by
//! recovery (HDFS allows that under a lease); commit logs and the temp files a complete log block
//! names are closed by forcing lease recovery, so a restarted job never waits out the lease
//! (Connect's "lease-stuck logs").

use super::Fs;
use super::fenced;
use atenex_hdfs::blocking::{Hdfs, Writer};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::Mutex;

pub struct HdfsFs {
    hdfs: Hdfs,
    /// Behind a mutex only so that `read` (`&self`) can close a file it is asked for.
    files: Mutex<Files>,
    dirs: BTreeSet<String>,
}

#[derive(Default)]
struct Files {
    open: BTreeMap<String, Open>,
    /// Files this process closed itself (no lease recovery needed before a rename).
    closed: BTreeSet<String>,
    /// Claimed files (their writers are in `open` while the claim holds, and never closed with
    /// the synced files); a claimed path whose writer failed stays here without one: fenced.
    claimed: BTreeSet<String>,
}

impl Files {
    /// Closes, in parallel, every open file that is synced, and `also` whatever its state.
    fn close_synced(&mut self, also: &str) -> io::Result<()> {
        let paths: Vec<String> = self
            .open
            .iter()
            .filter(|(p, o)| (o.synced || p.as_str() == also) && !self.claimed.contains(*p))
            .map(|(p, _)| p.clone())
            .collect();
        let writers = paths
            .iter()
            .filter_map(|p| self.open.remove(p))
            .map(|o| o.writer)
            .collect();
        Writer::close_all(writers)?;
        self.closed.extend(paths);
        Ok(())
    }
}

struct Open {
    writer: Writer,
    /// No appends since the last `hsync`.
    synced: bool,
    /// Bytes appended through this writer.
    written: u64,
}

/// A claimed file is emptied (closed, deleted, created again) only once it holds this much: HDFS
/// cannot shorten a file being written, and closing one costs a wait for its last block.
const TRUNCATE_AT: u64 = 1 << 20;

impl std::fmt::Debug for HdfsFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HdfsFs")
            .field("url", self.hdfs.url())
            .finish()
    }
}

impl HdfsFs {
    /// Paths are relative to the base directory of `hdfs`'s URL.
    pub fn new(hdfs: Hdfs) -> Self {
        Self {
            hdfs,
            files: Mutex::new(Files::default()),
            dirs: BTreeSet::new(),
        }
    }

    fn abs(&self, p: &str) -> io::Result<String> {
        Ok(self.hdfs.url().path(super::confined(p)?))
    }
}

/// A write refused because another client took the file's lease (the namenode's
/// `LeaseExpiredException`, "is not the lease owner", "No lease on"): this instance was fenced
/// ([`super::Fenced`], with the namenode's words). Any other error is returned as it is.
fn lease_lost(path: &str, e: io::Error) -> io::Error {
    let text = e.to_string();
    if [
        "LeaseExpiredException",
        "is not the lease owner",
        "No lease on",
    ]
    .iter()
    .any(|m| text.contains(m))
    {
        fenced(&format!("{path} ({text})"))
    } else {
        e
    }
}

fn parent(p: &str) -> Option<&str> {
    p.rfind('/').filter(|&i| i > 0).map(|i| &p[..i])
}

fn files(m: &mut Mutex<Files>) -> &mut Files {
    m.get_mut()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Fs for HdfsFs {
    fn append(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        let abs = self.abs(path)?;
        let f = files(&mut self.files);
        if f.claimed.contains(path) && !f.open.contains_key(path) {
            return Err(fenced(path));
        }
        if !f.open.contains_key(path) {
            let writer = self.hdfs.open_writer(&abs)?;
            f.closed.remove(path);
            f.open.insert(
                path.to_owned(),
                Open {
                    writer,
                    synced: false,
                    written: 0,
                },
            );
        }
        let o = f.open.get_mut(path).expect("inserted above");
        o.synced = false;
        o.written += data.len() as u64;
        let out = o.writer.write(data);
        if out.is_err() {
            // The writer is unusable; the file is left to recovery.
            f.open.remove(path);
        }
        out.map_err(|e| lease_lost(path, e))
    }

    fn sync(&mut self, path: &str) -> io::Result<()> {
        let abs = self.abs(path)?;
        let f = files(&mut self.files);
        match f.open.get_mut(path) {
            Some(o) => {
                let out = o.writer.hsync();
                match out {
                    Ok(()) => o.synced = true,
                    Err(_) => {
                        f.open.remove(path);
                    }
                }
                out.map_err(|e| lease_lost(path, e))
            }
            None if f.claimed.contains(path) => Err(fenced(path)),
            // Not open here: a closed file is complete and durable; a missing one is an error.
            None if self.hdfs.exists(&abs)? => Ok(()),
            None => Err(io::Error::new(io::ErrorKind::NotFound, path.to_owned())),
        }
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let (abs_from, abs_to) = (self.abs(from)?, self.abs(to)?);
        let f = files(&mut self.files);
        f.close_synced(from)?;
        if !f.closed.remove(from) {
            // Possibly left open by a writer that died: close it before it becomes visible.
            match self
                .hdfs
                .recover_lease(&abs_from, std::time::Duration::from_secs(60))
            {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(io::Error::new(io::ErrorKind::NotFound, from.to_owned()));
                }
                other => other?,
            }
        }
        if let Some(dir) = parent(&abs_to)
            && !self.dirs.contains(dir)
        {
            self.hdfs.mkdirs(dir)?;
            self.dirs.insert(dir.to_owned());
        }
        self.hdfs.rename(&abs_from, &abs_to)
    }

    fn delete(&mut self, path: &str) -> io::Result<()> {
        let f = files(&mut self.files);
        // An open writer is abandoned: its lease goes with the file.
        f.open.remove(path);
        f.closed.remove(path);
        self.hdfs.delete(&self.abs(path)?)
    }

    /// A file this process is writing is closed first (its synced content is what is read).
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        {
            let mut f = self
                .files
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if f.open.contains_key(path) {
                f.close_synced(path)?;
            }
        }
        self.hdfs.read(&self.abs(path)?)
    }
    /// Reading the file forces lease recovery of a writer that holds it (the previous owner,
    /// dead or alive: its writer fails from then on); then it is opened for appending, its lease
    /// held by this handle.
    fn claim(&mut self, path: &str) -> io::Result<Option<Vec<u8>>> {
        {
            let f = files(&mut self.files);
            f.claimed.remove(path);
            f.open.remove(path);
        }
        let content = self.read(path)?;
        let abs = self.abs(path)?;
        let writer = match content {
            Some(_) => self.hdfs.open_writer(&abs)?,
            None => self.hdfs.create_new(&abs)?,
        };
        let f = files(&mut self.files);
        f.closed.remove(path);
        f.open.insert(
            path.to_owned(),
            Open {
                writer,
                synced: true,
                written: 0,
            },
        );
        f.claimed.insert(path.to_owned());
        Ok(content)
    }

    /// HDFS cannot shorten a file being written. Below [`TRUNCATE_AT`] the content stays: a
    /// commit log then holds the blocks of commits already done, which recovery passes over (their
    /// temp files are gone). Past it the file is closed, deleted and created again, held.
    fn truncate(&mut self, path: &str) -> io::Result<()> {
        let abs = self.abs(path)?;
        let f = files(&mut self.files);
        let written = match f.open.get(path) {
            Some(o) if f.claimed.contains(path) => o.written,
            _ => return Err(fenced(path)),
        };
        if written < TRUNCATE_AT {
            return Ok(());
        }
        let old = f.open.remove(path).expect("checked above");
        Writer::close_all(vec![old.writer])?;
        self.hdfs.delete(&abs)?;
        let writer = self.hdfs.create_new(&abs)?;
        files(&mut self.files).open.insert(
            path.to_owned(),
            Open {
                writer,
                synced: true,
                written: 0,
            },
        );
        Ok(())
    }

    fn release(&mut self, path: &str) -> io::Result<()> {
        let f = files(&mut self.files);
        let held = f.claimed.remove(path) && f.open.contains_key(path);
        if let Some(mut o) = f.open.remove(path)
            && held
            && o.writer.hsync().is_ok()
        {
            // Still ours a moment ago: nothing in it is needed any more.
            Writer::close_all(vec![o.writer])?;
            return self.hdfs.delete(&self.abs(path)?);
        }
        Ok(())
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let rel = dir.trim_end_matches('/');
        let abs = self.abs(rel)?;
        Ok(self
            .hdfs
            .list_files(&abs)?
            .into_iter()
            .filter_map(|f| {
                f.strip_prefix(abs.as_str())
                    .map(|rest| format!("{rel}{rest}"))
            })
            .collect())
    }
}
