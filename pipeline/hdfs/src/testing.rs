//! The HDFS every test binary shares: a MiniDFSCluster started on first use and stopped when the
//! binary exits (its JVM dies with the thread that started it, and the process exit kills it).
//! Tests work under their own directory ([`unique_dir`]) so they can share it.
//!
//! `ATENEX_HDFS_URL=hdfs://host:port` uses an existing cluster instead.

use crate::minidfs::{MiniDfs, MiniDfsOptions};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// An existing HDFS for the tests instead of a MiniDFSCluster.
pub const URL_ENV: &str = "ATENEX_HDFS_URL";

/// `hdfs://host:port` of this test binary's HDFS, starting it on first call.
pub fn namenode() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| start().unwrap_or_else(|e| panic!("cannot start the test HDFS: {e:#}")))
}

/// A directory path no other test (or earlier run) uses: `/tests/<prefix>-<pid>-<n>`.
pub fn unique_dir(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "/tests/{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn start() -> anyhow::Result<String> {
    if let Ok(url) = std::env::var(URL_ENV) {
        eprintln!("test HDFS: existing cluster at {url}");
        return Ok(url);
    }
    atenex_jvm::process::keep_forever("atenex-test-hdfs", || {
        // A start can fail on a busy machine (ports, timeouts): one retry.
        let dfs = MiniDfs::start(&MiniDfsOptions::default()).or_else(|e| {
            eprintln!("test HDFS: first start failed ({e:#}); retrying once");
            MiniDfs::start(&MiniDfsOptions::default())
        })?;
        eprintln!(
            "test HDFS: Apache Hadoop {} MiniDFSCluster at {} (pid {:?})",
            crate::minidfs::HADOOP_VERSION,
            dfs.url(),
            dfs.pid()
        );
        Ok((dfs.url().to_owned(), Box::new(dfs)))
    })
}
