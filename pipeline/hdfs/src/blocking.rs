//! Blocking HDFS calls over the asynchronous `hdfs-native` client.
//!
//! The client runs on a small runtime of its own; each call is spawned there and the caller waits
//! on a channel. Unlike `Runtime::block_on`, this works from any thread — plain threads, Tokio
//! worker threads (the landing's Kafka loop and rebalance callbacks) and `spawn_blocking` — at the
//! cost of blocking the calling thread for the call, as local disk I/O does.

use crate::url::HdfsUrl;
use bytes::Bytes;
use hdfs_native::{Client, ClientBuilder, HdfsError, WriteOptions};
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long [`Hdfs::connect`] waits for the name node to answer, unless
/// `ATENEX_HDFS_CONNECT_TIMEOUT` says otherwise (e.g. `5s`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
pub const CONNECT_TIMEOUT_ENV: &str = "ATENEX_HDFS_CONNECT_TIMEOUT";

fn connect_timeout() -> Duration {
    std::env::var(CONNECT_TIMEOUT_ENV)
        .ok()
        .and_then(|v| humantime::parse_duration(&v).ok())
        .unwrap_or(CONNECT_TIMEOUT)
}

/// A connected HDFS client with blocking calls. Cheap to clone.
#[derive(Clone)]
pub struct Hdfs {
    client: Client,
    rt: Arc<IoRuntime>,
    url: HdfsUrl,
}

/// The client's runtime; dropping it never blocks (so an `Hdfs` can be dropped anywhere, also in
/// async code). Every call has returned by then: only idle connections and lease renewals stop.
struct IoRuntime(Option<tokio::runtime::Runtime>);

impl IoRuntime {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Hdfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hdfs").field("url", &self.url).finish()
    }
}

/// The kind of an `HdfsError`: the name node's Java exceptions arrive as `RPCError(class, text)`.
pub fn kind(e: &HdfsError) -> io::ErrorKind {
    match e {
        HdfsError::FileNotFound(_) => io::ErrorKind::NotFound,
        HdfsError::AlreadyExists(_) => io::ErrorKind::AlreadyExists,
        HdfsError::IsADirectoryError(_) => io::ErrorKind::IsADirectory,
        HdfsError::IOError(io) => io.kind(),
        HdfsError::RPCError(class, _) | HdfsError::FatalRPCError(class, _) => {
            match class.rsplit('.').next().unwrap_or_default() {
                "FileNotFoundException" => io::ErrorKind::NotFound,
                "FileAlreadyExistsException" | "AlreadyBeingCreatedException" => {
                    io::ErrorKind::AlreadyExists
                }
                "AccessControlException" => io::ErrorKind::PermissionDenied,
                _ => io::ErrorKind::Other,
            }
        }
        _ => io::ErrorKind::Other,
    }
}

/// `HdfsError` as an `io::Error` of the right kind, naming the path; a Java stack trace is cut to
/// its first line.
pub fn io_error(path: &str, e: HdfsError) -> io::Error {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    io::Error::new(kind(&e), format!("hdfs {path}: {first}"))
}

fn is_not_found(e: &HdfsError) -> bool {
    kind(e) == io::ErrorKind::NotFound
}

impl Hdfs {
    /// Connects to the name node of `url` and checks that it answers (a `getFileInfo` of the
    /// base directory), so that a wrong address fails here, with the URL in the message.
    pub fn connect(url: &HdfsUrl) -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hdfs-io")
            .enable_all()
            .build()?;
        let client = ClientBuilder::new()
            .with_url(&url.namenode)
            .with_io_runtime(rt.handle().clone())
            .build()
            .map_err(|e| io_error(&url.to_string(), e))?;
        let hdfs = Self {
            client,
            rt: Arc::new(IoRuntime(Some(rt))),
            url: url.clone(),
        };
        let probe = hdfs.client.clone();
        // The client retries a refused connection for minutes; a wrong address should fail fast.
        let timeout = connect_timeout();
        let answered =
            hdfs.run(async move { tokio::time::timeout(timeout, probe.get_file_info("/")).await });
        match answered {
            Ok(Ok(_)) => Ok(hdfs),
            Ok(Err(e)) => Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("cannot reach HDFS at {}: {e}", url.namenode),
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "cannot reach HDFS at {}: no answer from the name node within {timeout:?} (is it running, and is the port its RPC port, often 8020 or 9000?)",
                    url.namenode
                ),
            )),
        }
    }

    pub fn url(&self) -> &HdfsUrl {
        &self.url
    }

    /// The asynchronous client, for callers that run their own futures with [`Hdfs::run`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `op` with a clone of the client and an owned copy of `path` on the HDFS runtime.
    fn call<T: Send + 'static, F: Future<Output = hdfs_native::Result<T>> + Send + 'static>(
        &self,
        path: &str,
        op: impl FnOnce(Client, String) -> F,
    ) -> hdfs_native::Result<T> {
        self.run(op(self.client.clone(), path.to_owned()))
    }

    /// Runs `fut` on the HDFS runtime and waits for its output.
    pub fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.get().spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .expect("the HDFS runtime dropped a call (it panicked)")
    }

    /// The whole file at the absolute path `path`, or `None` if it does not exist. A file still
    /// open by a writer that died (its lease held, its last block under construction) is first
    /// closed by lease recovery, so that it reads whole; a closed file costs one extra RPC.
    ///
    /// A file closed a moment ago whose last block the DataNodes have not reported yet (allowed by
    /// `dfs.namenode.file.close.num-committed-allowed`) is listed at its full length but readable
    /// only up to the blocks before: the read is retried until it has the listed length (up to
    /// 10 s), instead of returning a short file.
    pub fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match self.recover_lease(path, Duration::from_secs(60)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            other => other?,
        }
        let started = Instant::now();
        loop {
            let read = self.call(path, |client, p| async move {
                let listed = client.get_file_info(&p).await?.length;
                let reader = client.read(&p).await?;
                let bytes = reader.read_range(0, reader.file_length()).await?;
                Ok((listed, bytes))
            });
            match read {
                Ok((listed, bytes))
                    if bytes.len() < listed && started.elapsed() < Duration::from_secs(10) =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok((listed, bytes)) if bytes.len() < listed => {
                    return Err(io::Error::other(format!(
                        "hdfs {path}: {} of {listed} bytes readable after 10 s (the last block was never reported)",
                        bytes.len()
                    )));
                }
                Ok((_, bytes)) => return Ok(Some(bytes.to_vec())),
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(io_error(path, e)),
            }
        }
    }

    /// Closes a file whose writer died, so that it can be read, appended to or renamed safely
    /// (immediately true for a closed file). Waits up to `timeout` for the name node to finish
    /// the recovery. A missing file is a `NotFound` error.
    pub fn recover_lease(&self, path: &str, timeout: Duration) -> io::Result<()> {
        let started = Instant::now();
        loop {
            match self.call(
                path,
                |client, p| async move { client.recover_lease(&p).await },
            ) {
                Ok(true) => return Ok(()),
                Ok(false) if started.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Ok(false) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("hdfs {path}: lease recovery did not finish within {timeout:?}"),
                    ));
                }
                Err(e) => return Err(io_error(path, e)),
            }
        }
    }

    /// Every file (not directory) under the absolute directory `dir`, recursively, as absolute
    /// paths, sorted; empty if `dir` does not exist.
    pub fn list_files(&self, dir: &str) -> io::Result<Vec<String>> {
        Ok(self
            .list_files_with_len(dir)?
            .into_iter()
            .map(|(p, _)| p)
            .collect())
    }

    /// [`Hdfs::list_files`] with each file's length.
    pub fn list_files_with_len(&self, dir: &str) -> io::Result<Vec<(String, u64)>> {
        let mut files: Vec<(String, u64)> = self
            .list_status(dir, true)?
            .into_iter()
            .filter(|s| !s.isdir)
            .map(|s| (s.path, s.length as u64))
            .collect();
        files.sort();
        Ok(files)
    }

    /// The names of the directories directly in `dir`, sorted; empty if it does not exist.
    pub fn subdirs(&self, dir: &str) -> io::Result<Vec<String>> {
        let mut dirs: Vec<String> = self
            .list_status(dir, false)?
            .into_iter()
            .filter(|s| s.isdir)
            .filter_map(|s| s.path.rsplit('/').next().map(str::to_owned))
            .collect();
        dirs.sort();
        Ok(dirs)
    }

    /// The entries under `dir`; empty if it does not exist.
    fn list_status(
        &self,
        dir: &str,
        recursive: bool,
    ) -> io::Result<Vec<hdfs_native::client::FileStatus>> {
        match self.call(dir, move |client, d| async move {
            client.list_status(&d, recursive).await
        }) {
            Ok(all) => Ok(all),
            Err(e) if is_not_found(&e) => Ok(Vec::new()),
            Err(e) => Err(io_error(dir, e)),
        }
    }

    /// Deletes a file or a directory tree; a missing one is not an error.
    pub fn delete_all(&self, path: &str) -> io::Result<()> {
        self.remove(path, true)
    }

    /// Deletes a file or an empty directory; a missing one is not an error.
    pub fn delete(&self, path: &str) -> io::Result<()> {
        self.remove(path, false)
    }

    fn remove(&self, path: &str, recursive: bool) -> io::Result<()> {
        match self.call(path, move |client, p| async move {
            client.delete(&p, recursive).await
        }) {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(io_error(path, e)),
        }
    }

    /// Whether a file or directory exists at the absolute path `path`.
    pub fn exists(&self, path: &str) -> io::Result<bool> {
        match self.call(
            path,
            |client, p| async move { client.get_file_info(&p).await },
        ) {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(io_error(path, e)),
        }
    }

    /// Creates `dir` and its parents (no error if it exists).
    pub fn mkdirs(&self, dir: &str) -> io::Result<()> {
        self.call(dir, |client, d| async move {
            client.mkdirs(&d, 0o755, true).await
        })
        .map_err(|e| io_error(dir, e))
    }

    /// Renames `from` to `to` (atomic in the name node); `to`'s directory must exist.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.rename_with(from, to, false)
    }

    /// Renames the file `from` onto the file `to`, replacing it atomically in the name node.
    pub fn replace(&self, from: &str, to: &str) -> io::Result<()> {
        self.rename_with(from, to, true)
    }

    fn rename_with(&self, from: &str, to: &str, overwrite: bool) -> io::Result<()> {
        let t = to.to_owned();
        self.call(from, move |client, f| async move {
            client.rename(&f, &t, overwrite).await
        })
        .map_err(|e| io_error(&format!("{from} -> {to}"), e))
    }

    /// Creates `path` (and its parent directories) for writing; `AlreadyExists` if something is
    /// there already: the name node decides, so of two callers exactly one succeeds.
    pub fn create_new(&self, path: &str) -> io::Result<Writer> {
        let writer = self.call(path, |client, p| async move {
            client.create(&p, WriteOptions::default()).await
        });
        Ok(Writer {
            hdfs: self.clone(),
            path: path.to_owned(),
            inner: Some(writer.map_err(|e| io_error(path, e))?),
        })
    }

    /// Opens `path` for writing: created (with its parent directories) if it does not exist,
    /// appended to otherwise.
    pub fn open_writer(&self, path: &str) -> io::Result<Writer> {
        let writer = self.call(path, |client, p| async move {
            match client.create(&p, WriteOptions::default()).await {
                Err(e) if kind(&e) == io::ErrorKind::AlreadyExists => client.append(&p).await,
                other => other,
            }
        });
        Ok(Writer {
            hdfs: self.clone(),
            path: path.to_owned(),
            inner: Some(writer.map_err(|e| io_error(path, e))?),
        })
    }
}

/// An open HDFS file. [`Writer::sync_and_close`] makes its content durable; dropping it without
/// that abandons the file (its lease is released; recovery deals with the content).
pub struct Writer {
    hdfs: Hdfs,
    path: String,
    inner: Option<hdfs_native::file::FileWriter>,
}

impl Writer {
    fn take(&mut self) -> io::Result<hdfs_native::file::FileWriter> {
        self.inner.take().ok_or_else(|| {
            io::Error::other(format!("hdfs {}: writer used after a failure", self.path))
        })
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let mut w = self.take()?;
        let bytes = Bytes::copy_from_slice(data);
        let (w, out) = self.hdfs.run(async move {
            let out = w.write_bytes(bytes).await;
            (w, out)
        });
        out.map_err(|e| io_error(&self.path, e))?;
        self.inner = Some(w);
        Ok(())
    }

    /// `hsync`: the DataNodes have the bytes on disk and the name node knows the length; the
    /// file stays open. Milliseconds.
    pub fn hsync(&mut self) -> io::Result<()> {
        let mut w = self.take()?;
        let (w, out) = self.hdfs.run(async move {
            let out = w.hsync().await;
            (w, out)
        });
        out.map_err(|e| io_error(&self.path, e))?;
        self.inner = Some(w);
        Ok(())
    }

    /// `hsync`, then close: the file is complete and durable.
    pub fn sync_and_close(mut self) -> io::Result<()> {
        self.hsync()?;
        Writer::close_all(vec![self])
    }

    /// Closes the files together: the name node completes each one once its DataNode has
    /// reported the last block, which the client waits for in a retry loop (about 0.5 s); done in
    /// parallel, a commit of many files waits once. The first error is returned; every file is
    /// attempted.
    pub fn close_all(writers: Vec<Writer>) -> io::Result<()> {
        let Some(hdfs) = writers.first().map(|w| w.hdfs.clone()) else {
            return Ok(());
        };
        let n = writers.len();
        let (tx, rx) = std::sync::mpsc::channel();
        for mut w in writers {
            let tx = tx.clone();
            let inner = w.inner.take();
            let path = std::mem::take(&mut w.path);
            hdfs.rt.get().spawn(async move {
                let out = match inner {
                    Some(mut inner) => inner.close().await.map_err(|e| io_error(&path, e)),
                    None => Err(io::Error::other(format!(
                        "hdfs {path}: writer used after a failure"
                    ))),
                };
                let _ = tx.send(out);
            });
        }
        let mut first = Ok(());
        for _ in 0..n {
            let out = rx
                .recv()
                .expect("the HDFS runtime dropped a call (it panicked)");
            if first.is_ok() {
                first = out;
            }
        }
        first
    }
}
