//! `atenex hdfs`: a real HDFS (Apache Hadoop's MiniDFSCluster) for development and tests.

use atenex_hdfs::minidfs::{MiniDfs, MiniDfsOptions};
use atenex_jvm::maven::default_cache_dir;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

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

    /// Where the Hadoop jars are cached [default: $ATENEX_CACHE_DIR, else ~/.cache/atenex].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// JVM maximum heap (-Xmx).
    #[arg(long, value_name = "SIZE", default_value = "512m")]
    heap: String,

    /// How long to wait for the cluster to come up.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = humantime::parse_duration)]
    startup_timeout: Duration,
}

pub async fn run(args: HdfsArgs) -> anyhow::Result<()> {
    let shutdown = atenex_kafka::shutdown::on_signals();
    let opts = MiniDfsOptions {
        port: args.port,
        data_dir: args.data_dir,
        cache_dir: args.cache_dir.unwrap_or_else(default_cache_dir),
        heap: args.heap,
        startup_timeout: args.startup_timeout,
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
