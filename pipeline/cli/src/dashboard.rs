//! `atenex dashboard`: chunks per company per minute, live in a browser, and the daily reports
//! (docs/dashboard.md).

use crate::KafkaArgs;
use crate::limits::{HttpLimitsArgs, ShutdownArgs};
use atenex_dashboard::consume::Topics;
use atenex_dashboard::history::Settings;
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct DashboardArgs {
    /// Address to serve on (loopback by default: open it to others on purpose).
    #[arg(
        long,
        value_name = "ADDR",
        env = "ATENEX_DASHBOARD_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,

    /// Read the windows and late records written this far back (then live).
    #[arg(long, value_name = "DURATION", env = "ATENEX_DASHBOARD_SINCE", default_value = "6h", value_parser = crate::parse::duration::<0, 31_536_000>)]
    since: Duration,

    /// Keep windows whose start is at most this far behind the newest one's (memory stays
    /// bounded whatever the input: see also --max-windows).
    #[arg(long, value_name = "DURATION", env = "ATENEX_DASHBOARD_HISTORY", default_value = "6h", value_parser = crate::parse::duration::<60, 31_536_000>)]
    history: Duration,

    /// Keep at most this many windows (company × minute); the oldest go first. 400,000 is
    /// 1,000 companies × 6 h of minutes, about 60 MB.
    #[arg(long, value_name = "N", env = "ATENEX_DASHBOARD_MAX_WINDOWS", default_value_t = 400_000, value_parser = clap::value_parser!(u64).range(1..=50_000_000))]
    max_windows: u64,

    /// Companies drawn on their own in the chart (by volume over the history); the rest are
    /// summed as "others".
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=50))]
    top: u64,

    /// The reports directory (`<root>/atenex/reports`: a local path or hdfs://namenode:8020/...),
    /// read with the report job's own store. Without it /reports says how to set it.
    #[arg(long, value_name = "URL", env = "ATENEX_DASHBOARD_REPORTS")]
    reports: Option<String>,

    /// The analytics job's window topic.
    #[arg(long, value_name = "TOPIC", default_value = "analytics.flink")]
    windows_topic: String,

    /// The analytics job's late-record topic.
    #[arg(long, value_name = "TOPIC", default_value = "analytics.late")]
    late_topic: String,

    #[command(flatten)]
    kafka: KafkaArgs,

    #[command(flatten)]
    http: HttpLimitsArgs,

    #[command(flatten)]
    shutdown: ShutdownArgs,
}

pub async fn run(args: DashboardArgs) -> anyhow::Result<()> {
    let limits = args.http.limits(&args.shutdown)?;
    let shutdown = args.shutdown.signals();
    atenex_kafka::observe::metrics();
    let listener = crate::limits::listen(args.listen).await?;
    let url = format!("http://{}/", listener.local_addr()?);
    let opts = atenex_dashboard::Options {
        topics: Topics {
            windows: args.windows_topic,
            late: args.late_topic,
        },
        since: args.since,
        history: Settings {
            history_ms: args.history.as_millis() as i64,
            max_windows: args.max_windows as usize,
            top: args.top as usize,
            ..Settings::default()
        },
        reports: args.reports,
    };
    println!("{url}");
    tracing::info!(%url, "dashboard serving");
    atenex_dashboard::serve(&args.kafka.config(), &opts, listener, limits, shutdown).await
}
