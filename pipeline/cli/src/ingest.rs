//! `atenex ingest`: the upload service behind the gateway (docs/services.md).

use crate::KafkaArgs;
use crate::limits::{HttpLimitsArgs, ShutdownArgs};
use atenex_ingest::storage::Storage;
use atenex_ingest::{App, DEFAULT_MAX_UPLOAD_BYTES, router};
use atenex_kafka::Producer;
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The object store of uploads, shared by ingest (which writes it) and docproc (which reads it).
#[derive(Args, Debug)]
pub struct StorageArgs {
    /// Where uploads are stored: a directory (created if missing), file:///dir, or
    /// s3://bucket/prefix (credentials and region from the standard AWS environment:
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT, ...).
    #[arg(
        long,
        value_name = "URL",
        env = "ATENEX_STORAGE_URL",
        default_value = "./data/objects"
    )]
    pub storage: String,
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Address to serve HTTP on.
    #[arg(
        long,
        value_name = "ADDR",
        env = "ATENEX_INGEST_LISTEN",
        default_value = "127.0.0.1:8001"
    )]
    listen: SocketAddr,

    #[command(flatten)]
    storage: StorageArgs,

    /// The largest file accepted, in bytes (larger: 413).
    #[arg(long, value_name = "BYTES", env = "ATENEX_MAX_UPLOAD_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BYTES, value_parser = crate::parse::count::<1, 1_099_511_627_776>)]
    max_upload_bytes: usize,

    /// Uploads received at once; more are answered 503 at once. Each holds one 5 MiB part in
    /// memory (and up to two more in flight), whatever the file's size.
    #[arg(long, value_name = "N", env = "ATENEX_INGEST_MAX_CONCURRENT_UPLOADS", default_value_t = atenex_ingest::DEFAULT_MAX_CONCURRENT_UPLOADS as u32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_concurrent_uploads: u32,

    #[command(flatten)]
    kafka: KafkaArgs,

    #[command(flatten)]
    http: HttpLimitsArgs,

    #[command(flatten)]
    shutdown: ShutdownArgs,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let limits = args.http.limits(&args.shutdown)?;
    let shutdown = args.shutdown.signals();
    // An upload waits for the broker's acknowledgement: bound that wait (KAFKA_MESSAGE_TIMEOUT_MS
    // overrides), so that a broker outage answers 503 instead of hanging clients.
    let kafka = args
        .kafka
        .config()
        .with_default("message.timeout.ms", "10000");
    let storage = Storage::open(&args.storage.storage)?;
    // A missing bucket or refused credentials stop the service here, not at the first upload.
    storage.check(true, Duration::from_secs(15)).await?;
    let app = Arc::new(App::new(
        storage,
        Producer::new(&kafka)?,
        args.max_upload_bytes,
        args.max_concurrent_uploads as usize,
    ));
    let listener = crate::limits::listen(args.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, storage = %atenex_kafka::observe::redacted(&args.storage.storage), "ingest serving");
    // SIGTERM: stop accepting, let in-flight uploads finish (each is stored and announced, or
    // answered with an error and cleaned up).
    atenex_http::serve(listener, router(app), limits, shutdown).await?;
    tracing::info!("ingest stopped");
    Ok(())
}
