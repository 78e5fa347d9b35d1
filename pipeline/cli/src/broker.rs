//! `atenex broker`: a real Apache Kafka broker for development and tests.

use atenex_kafka::broker::{BrokerOptions, EmbeddedBroker, JvmBroker, default_cache_dir};
use clap::Args;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct BrokerArgs {
    /// Client listener address; port 0 picks a free port.
    #[arg(
        long,
        value_name = "ADDR",
        env = "ATENEX_BROKER_LISTEN",
        default_value = "127.0.0.1:9092"
    )]
    listen: SocketAddr,

    /// Run librdkafka's in-process mock cluster instead of Apache Kafka (ignores --listen: it picks its own port).
    #[arg(long)]
    embedded: bool,

    /// Keep the broker's data here across runs; default: a temporary directory removed on exit.
    #[arg(long, value_name = "DIR", env = "ATENEX_BROKER_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// Where the Kafka jars are cached [default: $ATENEX_CACHE_DIR, else ~/.cache/atenex].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// JVM maximum heap (-Xmx).
    #[arg(long, value_name = "SIZE", default_value = "512m")]
    heap: String,

    /// How long to wait for the broker to come up.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = humantime::parse_duration)]
    startup_timeout: Duration,
}

pub async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let shutdown = atenex_kafka::shutdown::on_signals();
    if args.embedded {
        let broker = EmbeddedBroker::start(1)?;
        announce(&broker.bootstrap())?;
        shutdown.cancelled().await;
        drop(broker);
        return Ok(());
    }
    let opts = BrokerOptions {
        listen: args.listen,
        data_dir: args.data_dir,
        cache_dir: args.cache_dir.unwrap_or_else(default_cache_dir),
        heap: args.heap,
        startup_timeout: args.startup_timeout,
    };
    // Started on this (the main) thread: the JVM is tied to it and dies with it.
    let mut broker = tokio::task::block_in_place(|| JvmBroker::start(&opts))?;
    announce(broker.bootstrap())?;
    tracing::info!(pid = ?broker.pid(), data = %broker.data_dir().display(), "broker running; stop with Ctrl-C");
    shutdown.cancelled().await;
    tokio::task::block_in_place(|| broker.stop())?;
    tracing::info!("broker stopped");
    Ok(())
}

fn announce(bootstrap: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{bootstrap}")?;
    out.flush()?;
    Ok(())
}
