//! `atenex`: every service, job and tool of the Atenex pipeline, as subcommands of one binary.
//!
//! Configuration comes from flags, the environment and a `.env` file in the working directory
//! (the environment wins over `.env`; flags win over both).

mod analytics;
mod bench;
mod broker;
mod dashboard;
mod demo;
mod docproc;
mod embedding;
mod gateway;
mod hdfs;
mod ingest;
mod jvm;
mod landing;
mod limits;
mod mock_openai;
mod parse;
mod record;
mod replay;
mod report;
mod sim;
mod topics;

use atenex_kafka::observe::{self, Health, LogFormat};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "atenex",
    version,
    about = "Atenex document-ingestion pipeline: services, jobs, test broker and stream tools",
    long_about = "Atenex document-ingestion pipeline: services, jobs, test broker and stream tools.\n\n\
        Configuration: flags, then environment variables, then a .env file in the working directory. \
        Kafka clients take KAFKA_BOOTSTRAP_SERVERS (default localhost:9092) and any librdkafka property \
        as KAFKA_<NAME_WITH_UNDERSCORES> (e.g. KAFKA_SECURITY_PROTOCOL=SASL_SSL, KAFKA_SASL_MECHANISMS, \
        KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SSL_CA_LOCATION). Log level: RUST_LOG (default info).\n\n\
        Exit status: 0 success, 1 failure (the message says what and how to fix it), 2 bad usage."
)]
struct Cli {
    /// Log format on stderr: `text` for people, `json` (one object per line) for log shippers.
    #[arg(long, global = true, value_name = "FORMAT", env = "ATENEX_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline on this machine with nothing configured, then stop it.
    ///
    /// Starts a broker (KAFKA_BOOTSTRAP_SERVERS if set; else a real Apache Kafka where a JDK is present, or the embedded mock cluster, saying which), the OpenAI mock (the real API if OPENAI_API_KEY is set), ingest, the gateway, docproc, embedding and the landing job, with local storage under --data; uploads the sample documents through the gateway with a token it mints; waits for every chunk to be embedded; drains the analytics job so every window fires; waits for the landing to commit; runs the day's report; prints the documents, the windows, the landing tree, the report rows and where every file is; stops everything it started. Exits 0 when the report and the windows both count every embedded chunk.
    Demo(demo::DemoArgs),
    /// Run a real Apache Kafka broker (KRaft, single node) for development and tests.
    ///
    /// Apache Kafka 4.4, broker and controller in one JVM. On first use its jars are resolved from Maven Central into the cache directory (needs Java 17+ and Maven). Prints the bootstrap address as the first line of stdout once the broker answers metadata requests; stops cleanly on SIGINT/SIGTERM.
    ///
    /// --embedded runs librdkafka's in-process mock cluster instead (no JDK needed; for quick experiments and adapter fault tests, not a full Kafka).
    Broker(broker::BrokerArgs),
    /// Run a real HDFS (Apache Hadoop's MiniDFSCluster: one NameNode, two DataNodes) for development and tests.
    ///
    /// Hadoop 3.5, in one JVM. On first use its jars (org.apache.hadoop:hadoop-client-minicluster) are resolved from Maven Central into the cache directory and a small launcher is compiled there (needs a JDK 17+ and Maven). Prints the hdfs:// URL as the first line of stdout once the DataNodes have registered; stops cleanly on SIGINT/SIGTERM. Use the URL as hdfs.url of `atenex landing`.
    Hdfs(hdfs::HdfsArgs),
    /// Manage the pipeline's topics.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Record topics to a file of kcat -J envelopes (one JSON object per record and line).
    ///
    /// Each line: {"topic","partition","offset","tstype","ts","broker","headers","key","payload"}, in arrival order, readable by `atenex replay` and by anyone who reads kcat's output. Reads every partition directly (no consumer-group offsets are committed). Stops on SIGINT/SIGTERM, at --until-end or after --max-records; the file is flushed in every case.
    Record(record::RecordArgs),
    /// Replay a recorded stream into Kafka.
    ///
    /// Produces every record of a recorded stream (kcat -J envelopes, e.g. from `atenex record` or `kcat -C -J`) to its topic, key and partition, with its original timestamp (CreateTime) and headers. Missing topics are created, and partitions added, so that every recorded partition exists. The order is planned from --order, --seed, --max-disorder and --duplicates: the same seed always replays the same sequence.
    Replay(replay::ReplayArgs),
    /// Count chunks per company in event-time windows (the Flink job, done right).
    ///
    /// Tumbling windows of --window over event time, with a bounded-out-of-orderness watermark
    /// (per Kafka partition by default); a window's results are emitted when the watermark passes
    /// its end, one per company. Late records (their window already fired) and records too far in
    /// the future are never dropped silently: they go to the late output with the reason.
    ///
    /// Offline (--input FILE --output FILE): over a recorded stream (kcat -J envelopes); same input,
    /// same bytes out. Live (no --input): consumes --topic in --group, produces analytics.flink and
    /// analytics.late exactly once with Kafka transactions (see docs/analytics.md).
    Analytics(analytics::AnalyticsArgs),
    /// Land topics as JSON files in the Kafka Connect HDFS sink's layout, exactly once.
    ///
    /// Reads the connector's properties file (the one Kafka Connect takes) and writes the tree
    /// Connect writes: <topics.dir>/<topic>/<path.format>/<topic>+<partition>+<start>+<end>.json,
    /// committed through a commit log so that a crash never leaves half a commit. Live (consumer
    /// group connect-<name>) or offline from a recorded stream (--input); on HDFS (hdfs.url=hdfs://...)
    /// or a local directory (see docs/landing.md).
    Landing(landing::LandingArgs),
    /// The daily report: chunks per company and document for one day of landing files, as Parquet.
    ///
    /// Reads <landing>/<topic>/year=Y/month=MM/day=DD/hour=*/*.json, counts lines per (company_id,
    /// document_id) as total_chunks (duplicates included, as Spark's count()) and distinct chunk_id
    /// as unique_chunks, sorted, and replaces <reports>/daily_chunk_count/date=YYYY-MM-DD/
    /// (part-00000.parquet and _SUCCESS) atomically. Exit codes: 3 no landing data for the date,
    /// 4 a record without company_id or document_id, 5 a malformed line, 6 the filesystem cannot be
    /// reached, read or written, 1 anything else (see docs/report.md).
    Report(report::ReportArgs),
    /// The ingest service: checked uploads stored in object storage, then announced on documents.raw.
    ///
    /// POST /api/v1/ingest/upload (multipart `file`, optional `metadata_json` object), with the
    /// tenant in the gateway's X-Company-ID / X-User-ID headers. Accepts pdf, docx, txt, md and html,
    /// checked by declared type and by content; stores {company_id}/{document_id}/{filename};
    /// refuses content the company already uploaded (409); answers 202 only once the object is
    /// stored and the broker acknowledged the documents.raw event. GET /health, GET /metrics.
    /// See docs/services.md.
    Ingest(ingest::IngestArgs),
    /// The API gateway: JWT-authenticated uploads streamed to the ingest service.
    ///
    /// POST /api/v1/ingest/upload (and the seed's POST /upload) with `Authorization: Bearer <HS256
    /// JWT>` (claims sub, company_id, roles, exp; secret GATEWAY_JWT_SECRET): 401 without a valid
    /// token, 403 without company_id; the tenant comes from the token only (client X-Company-ID /
    /// X-User-ID are replaced); bodies over the limit get 413 before being read; ingest timeout 504,
    /// unreachable 503, other failures 502; every error is {"detail": ...}; X-Request-ID taken or
    /// made and returned. GET /health, GET /metrics. See docs/services.md.
    Gateway(gateway::GatewayArgs),
    /// Print a signed development token for the gateway (GATEWAY_JWT_SECRET).
    Token(gateway::TokenArgs),
    /// Measure the throughput of hot paths on generated data.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The simulator: run scenarios (scenarios/*.toml) through the production cores under virtual time and check their invariants and snapshots.
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Turn stored documents into chunks: documents.raw → chunks.processed.
    ///
    /// Reads each announced document from the object store, extracts its text (PDF per page, DOCX, TXT with a Windows-1252 fallback, Markdown, HTML without scripts and styles), splits it into chunks that never cross a page (1000 words with 200 overlap by default, or cl100k tokens) and produces them keyed by document_id, chunk_id "{document_id}_{index}". Corrupt, encrypted, unsupported or oversized documents go to documents.raw.dlq with the reason. Offsets are committed after the chunks are acknowledged.
    Docproc(docproc::DocprocArgs),
    /// Embed chunks with OpenAI: chunks.processed → embeddings.ready.
    ///
    /// Packs chunks from any documents into requests of at most --max-batch inputs and 300,000 tokens, runs --concurrency requests at once, retries rate limits (honouring retry-after and x-ratelimit-reset-*), 5xx and timeouts with exponential backoff and jitter, and produces {chunk_id, document_id, company_id, vector} keyed by document_id. Chunks OpenAI refuses for good (too long, 401, insufficient_quota, empty) go to chunks.processed.dlq with the reason. Offsets are committed after the vectors are acknowledged.
    Embedding(embedding::EmbeddingArgs),
    /// Serve a mock of OpenAI's embeddings API (POST /v1/embeddings) for development and tests.
    ///
    /// Validates like OpenAI (API key, model, at most 2048 inputs, no empty strings, 8192 tokens per input and 300,000 per request counted with cl100k_base, dimensions only for text-embedding-3-*), answers with OpenAI's bodies and x-ratelimit-* headers, and returns deterministic unit vectors of the model's dimension (same text → same vector). Faults on demand. Prints the base URL (for OPENAI_BASE_URL) as the first line of stdout.
    MockOpenai(mock_openai::MockOpenAiArgs),
    /// Serve the dashboard: chunks per company per minute, live, and the daily reports.
    ///
    /// Reads analytics.flink and analytics.late as committed (isolation.level=read_committed) from --since, then live, into a bounded history (--history, --max-windows); serves / (a live chart of chunks per company per 1-minute window — the top companies, the rest summed as others — and the total, the latest windows, late records by reason, malformed records, how far the newest window is behind now; updated by Server-Sent Events), /reports (the daily reports of --reports: totals per company, rows, the Parquet file), /api/view, /api/windows?since=, /api/reports/{date}, /health and /metrics. Prints its URL as the first line of stdout. Everything it serves is embedded in the binary (the chart library, uPlot, included): it works offline.
    Dashboard(dashboard::DashboardArgs),
}

/// Options every long-running subcommand shares.
#[derive(Args, Clone, Debug)]
pub struct Observability {
    /// Serve `/health` and Prometheus `/metrics` on this address (e.g. 127.0.0.1:9464); off when unset.
    #[arg(long, value_name = "ADDR", env = "ATENEX_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
}

impl Observability {
    /// Starts the admin server if asked; returns its health flag.
    pub async fn start(&self, shutdown: &CancellationToken) -> anyhow::Result<Health> {
        let health = Health::default();
        observe::metrics();
        if let Some(addr) = self.admin_listen {
            observe::serve_admin(addr, health.clone(), shutdown.clone()).await?;
        }
        Ok(health)
    }
}

/// `--bootstrap-servers`, shared by every Kafka client subcommand.
#[derive(Args, Clone, Debug)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (host:port,...). Other client settings: KAFKA_<PROPERTY> variables.
    #[arg(long, value_name = "HOST:PORT", env = "KAFKA_BOOTSTRAP_SERVERS", default_value = atenex_kafka::config::DEFAULT_BOOTSTRAP)]
    bootstrap_servers: String,
}

impl KafkaArgs {
    pub fn config(&self) -> atenex_kafka::KafkaConfig {
        atenex_kafka::KafkaConfig::from_env().with_bootstrap(Some(&self.bootstrap_servers))
    }
}

fn main() -> ExitCode {
    // A `.env` is configuration: a regular file of at most 1 MiB (not a link to /dev/zero).
    if let Ok(meta) = std::fs::metadata(".env")
        && (!meta.is_file() || meta.len() > atenex_contracts::lines::MAX_CONFIG_BYTES)
    {
        eprintln!(
            "error: .env is not a regular file of at most {} bytes: remove it or fix it",
            atenex_contracts::lines::MAX_CONFIG_BYTES
        );
        return ExitCode::from(2);
    }
    // A missing .env is fine; a broken one is reported.
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("error: cannot read .env: {e}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    let format = cli.log_format.parse::<LogFormat>().unwrap_or_default();
    // The demo talks to its user itself (its children log to files): only warnings by default.
    let default_log = match cli.command {
        // The demo's children log to files; the simulator's jobs run in process, and their
        // warnings (dead letters, reconnects) are the scenario's expected outcome.
        Command::Demo(_) => "warn,rdkafka=off",
        Command::Sim(_) => "error,rdkafka=off,librdkafka=off",
        _ => "info",
    };
    observe::init_logging_with_default(format, default_log);
    // Every connection, file and Kafka socket takes a descriptor: the soft limit (1,024 under
    // systemd by default) is raised to the hard one, so that the servers' connection bound
    // (--max-connections), not the descriptor table, is what turns clients away.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(nofile = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Broker(args) => broker::run(args).await,
            Command::Hdfs(args) => hdfs::run(args).await,
            Command::Topics(cmd) => topics::run(cmd).await,
            Command::Record(args) => record::run(args).await,
            Command::Replay(args) => replay::run(args).await,
            Command::Analytics(args) => analytics::run(args).await,
            Command::Bench(cmd) => bench::run(cmd),
            Command::Landing(args) => landing::run(args).await,
            Command::Report(args) => report::run(args).await,
            Command::Ingest(args) => ingest::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Docproc(args) => docproc::run(args).await,
            Command::Sim(cmd) => sim::run(cmd).await,
            Command::Embedding(args) => embedding::run(args).await,
            Command::MockOpenai(args) => mock_openai::run(args).await,
            Command::Dashboard(args) => dashboard::run(args).await,
            Command::Gateway(args) => gateway::run(args).await,
            Command::Token(args) => gateway::token(args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // The report's failures have their own exit codes (docs/report.md).
            match e.downcast_ref::<atenex_report::ReportError>() {
                Some(r) => ExitCode::from(r.code()),
                None => ExitCode::FAILURE,
            }
        }
    }
}
