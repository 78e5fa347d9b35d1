//! `atenex dashboard` (docs/dashboard.md): chunks per company per minute, live from the analytics
//! job's committed windows, late records and errors, and the daily reports, in a browser.
//!
//! - [`history`]: what the dashboard knows, a pure, bounded state machine, and the view the page
//!   draws;
//! - [`decode`]: the topics' values;
//! - [`consume`]: the Kafka adapter (read committed, from `--since`, then live);
//! - [`reports`]: the daily reports through the report job's own store (local or `hdfs://`);
//! - [`page`]: the server-rendered pages (every value escaped);
//! - [`server`]: routes, the JSON API, Server-Sent Events and the embedded assets (uPlot, vendored
//!   from npm with its licence).

pub mod consume;
pub mod decode;
pub mod history;
pub mod page;
pub mod reports;
pub mod server;

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How `atenex dashboard` runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub topics: consume::Topics,
    /// Read windows from this far back.
    pub since: Duration,
    pub history: history::Settings,
    /// The reports directory (`.../atenex/reports`), if any.
    pub reports: Option<String>,
}

/// Serves the dashboard on `listener` and reads Kafka until `shutdown`.
pub async fn serve(
    kafka: &atenex_kafka::KafkaConfig,
    opts: &Options,
    listener: tokio::net::TcpListener,
    limits: atenex_http::Limits,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let reports = opts
        .reports
        .as_deref()
        .map(reports::Reports::open)
        .transpose()?;
    let shared = Arc::new(server::Shared::new(
        history::History::new(opts.history),
        reports,
        shutdown.clone(),
    ));
    let consumer = {
        let (kafka, topics, since, shared) = (
            kafka.clone(),
            opts.topics.clone(),
            opts.since,
            shared.clone(),
        );
        tokio::spawn(async move { consume::run(&kafka, &topics, since, shared).await })
    };
    let mut served = tokio::spawn(atenex_http::serve(
        listener,
        server::router(shared),
        limits,
        shutdown.clone(),
    ));
    let mut consumer = consumer;
    // Either side failing stops the other; at shutdown both end with `Ok`.
    tokio::select! {
        r = &mut consumer => {
            if let Err(e) = r? {
                shutdown.cancel();
                let _ = served.await;
                return Err(e.context("the dashboard's consumer stopped"));
            }
            served.await??;
        }
        r = &mut served => {
            shutdown.cancel();
            let consumed = consumer.await?;
            r?.map_err(|e| anyhow::Error::from(e).context("the dashboard's server stopped"))?;
            consumed?;
        }
    }
    Ok(())
}
