//! Group commit for the local object store: many uploads become durable with one `syncfs(2)`.
//!
//! An upload that has written its files asks [`GroupSync::sync`]; one thread gathers every
//! request waiting at that moment, flushes the whole file system once (file data, inodes and the
//! directory entries of new files and renames) and answers them all. A request that arrives while
//! a flush runs waits for the next one, so every answer covers writes made before the request.
//! Under load this turns one device flush per upload (four with `fsync` of the file and its
//! parent directories) into one per batch; alone, an upload waits for one flush as before.
//!
//! `syncfs` reports write-back errors since Linux 5.8; an error fails every upload of its batch.

use std::io;
use std::os::fd::AsFd;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<(), (io::ErrorKind, String)>>;

/// A handle on the flushing thread; cloning shares it. The thread ends with the last handle.
#[derive(Debug, Clone)]
pub struct GroupSync {
    requests: mpsc::Sender<Reply>,
}

impl GroupSync {
    /// Flushes the file system that holds `dir`.
    pub fn new(dir: &std::path::Path) -> io::Result<Self> {
        let fs = std::fs::File::open(dir)?;
        let (requests, incoming) = mpsc::channel::<Reply>();
        std::thread::Builder::new()
            .name("ingest-syncfs".into())
            .spawn(move || {
                while let Ok(first) = incoming.recv() {
                    let mut batch = vec![first];
                    batch.extend(incoming.try_iter());
                    let result = rustix::fs::syncfs(fs.as_fd())
                        .map_err(|e| (io::Error::from(e).kind(), format!("syncfs: {e}")));
                    metrics::histogram!("ingest_syncfs_batch").record(batch.len() as f64);
                    for reply in batch {
                        let _ = reply.send(result.clone());
                    }
                }
            })?;
        Ok(Self { requests })
    }

    /// Returns once everything written before the call is on stable storage.
    pub async fn sync(&self) -> io::Result<()> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(reply)
            .map_err(|_| io::Error::other("the syncfs thread is gone"))?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((kind, message))) => Err(io::Error::new(kind, message)),
            Err(_) => Err(io::Error::other("the syncfs thread is gone")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_requests_are_all_answered() {
        let dir = tempfile::tempdir().unwrap();
        let sync = GroupSync::new(dir.path()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let sync = sync.clone();
            let path = dir.path().join(format!("f{i}"));
            tasks.push(tokio::spawn(async move {
                std::fs::write(&path, b"x").unwrap();
                sync.sync().await
            }));
        }
        // A deadlock fails the test instead of hanging the suite.
        let all = async {
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), all)
            .await
            .expect("every sync answered within 60 s");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        assert!(GroupSync::new(std::path::Path::new("/nonexistent/atenex")).is_err());
    }
}
