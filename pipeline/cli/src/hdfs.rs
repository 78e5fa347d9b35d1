//! `atenex hdfs`: a real HDFS (Apache Hadoop's MiniDFSCluster) for development and tests.

use crate::limits::ShutdownArgs;
use atenex_hdfs::minidfs::{MiniDfs, MiniDfsOptions};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct HdfsArgs {
    /// Name node RPC port; 0 picks a free port. The URL is printed on stdout once the cluster
    /// is ready (e.g. hdfs://127.0.0.1:9000).
    #[arg(
        long,
        value_name = "PORT",
        env = "ATENEX_HDFS_PORT",
        default_value_t = 9000
    )]
    port: u16,

    /// Keep the cluster's blocks and metadata here; default: a temporary directory removed on
    /// exit. The cluster is formatted on every start.
    #[arg(long, value_name = "DIR", env = "ATENEX_HDFS_DATA_DIR")]
    data_dir: Option<PathBuf>,

    #[command(flatten)]
    jvm: crate::jvm::JvmArgs,

    #[command(flatten)]
    shutdown: ShutdownArgs,
}

pub async fn run(args: HdfsArgs) -> anyhow::Result<()> {
    let shutdown = args.shutdown.signals();
    let opts = MiniDfsOptions {
        port: args.port,
        data_dir: args.data_dir,
        cache_dir: args.jvm.cache_dir(),
        heap: args.jvm.heap.clone(),
        startup_timeout: args.jvm.startup_timeout,
    };
    // Started on this (the main) thread: the JVM is tied to it and dies with it.
    let mut dfs = tokio::task::block_in_place(|| MiniDfs::start(&opts))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", dfs.url())?;
        out.flush()?;
    }
    tracing::info!(pid = ?dfs.pid(), data = %dfs.data_dir().display(), "MiniDFSCluster running; stop with Ctrl-C");
    shutdown.cancelled().await;
    tokio::task::block_in_place(|| dfs.stop())?;
    tracing::info!("MiniDFSCluster stopped");
    Ok(())
}
