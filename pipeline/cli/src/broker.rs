//! `atenex broker`: a real Apache Kafka broker for development and tests.

use crate::limits::ShutdownArgs;
use atenex_kafka::broker::{BrokerOptions, EmbeddedBroker, JvmBroker};
use clap::Args;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

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

    #[command(flatten)]
    jvm: crate::jvm::JvmArgs,

    #[command(flatten)]
    shutdown: ShutdownArgs,
}

pub async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let shutdown = args.shutdown.signals();
    if args.embedded {
        let broker = EmbeddedBroker::start(1)?;
        // The mock cluster does not answer topic creation: the pipeline's topics exist from the
        // start (3 partitions, as `atenex topics create`; the analytics lease 1).
        let lease = atenex_contracts::topics::ANALYTICS_LEASE.to_owned();
        for (topic, partitions) in atenex_contracts::topics::all_pipeline_topics()
            .into_iter()
            .map(|t| (t, 3))
            .chain([(lease, 1)])
        {
            broker
                .cluster()
                .create_topic(&topic, partitions, 1)
                .map_err(|e| anyhow::anyhow!("cannot create {topic} in the mock cluster: {e}"))?;
        }
        announce(&broker.bootstrap())?;
        shutdown.cancelled().await;
        drop(broker);
        return Ok(());
    }
    let opts = BrokerOptions {
        listen: args.listen,
        data_dir: args.data_dir,
        cache_dir: args.jvm.cache_dir(),
        heap: args.jvm.heap.clone(),
        startup_timeout: args.jvm.startup_timeout,
        cluster_id: None,
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
