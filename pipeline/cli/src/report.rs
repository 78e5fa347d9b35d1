//! `atenex report`: the daily chunk report from the landing tree.

use atenex_report::{Location, Options, ReportError};
use chrono::NaiveDate;
use clap::Args;

/// Where the report reads and writes by default: `<root>/atenex/kafka-landing` and
/// `<root>/atenex/reports`.
pub const ROOT_ENV: &str = "ATENEX_HDFS_ROOT";

#[derive(Args, Debug)]
#[command(after_help = atenex_report::error::exit_codes_help())]
pub struct ReportArgs {
    /// The day to report (UTC), YYYY-MM-DD [default: yesterday in UTC].
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: Option<NaiveDate>,

    /// The landing tree's topics directory: a local path, file:///path or hdfs://host:port/path
    /// [default: $ATENEX_HDFS_ROOT/atenex/kafka-landing].
    #[arg(long, value_name = "URL", env = "ATENEX_REPORT_LANDING")]
    landing: Option<String>,

    /// The reports directory; the report goes to <reports>/daily_chunk_count/date=YYYY-MM-DD
    /// [default: $ATENEX_HDFS_ROOT/atenex/reports].
    #[arg(long, value_name = "URL", env = "ATENEX_REPORT_REPORTS")]
    reports: Option<String>,

    /// Where --landing and --reports live when not given: hdfs://namenode:8020 in production, a
    /// local directory in the embedded default.
    #[arg(long, value_name = "URL", env = ROOT_ENV, default_value = "./data/hdfs")]
    root: String,

    /// The landed topic to count.
    #[arg(long, value_name = "TOPIC", default_value = "embeddings.ready")]
    topic: String,

    /// With no landing data for the date, write an empty report instead of failing (exit 3):
    /// for a deployment where a quiet day is normal (deploy/env/report.env decides).
    #[arg(long, env = "ATENEX_REPORT_ALLOW_EMPTY")]
    allow_empty: bool,

    /// Skip malformed lines (counted in the summary) instead of failing (exit 5).
    #[arg(long)]
    skip_bad_records: bool,

    /// Files read and scanned at once [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,

    /// A landing file larger than this stops the run (exit 5). Each file is read whole, so the
    /// run takes at most about --threads times this in memory.
    #[arg(long, value_name = "BYTES", env = "ATENEX_REPORT_MAX_FILE_BYTES", default_value_t = atenex_report::DEFAULT_MAX_FILE_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    max_file_bytes: u64,

    /// The engine that counts: datafusion, in this process (fast on one node), or spark, the
    /// embedded PySpark job run through --spark-submit (for days larger than one node reads in
    /// minutes; same rows, same exit codes, same atomic replace: docs/report.md).
    #[arg(long, value_enum, env = "ATENEX_REPORT_ENGINE", default_value_t = Engine::Datafusion)]
    engine: Engine,

    /// With --engine spark: the submit command and its options, split as a shell would (e.g.
    /// "spark-submit --master yarn --deploy-mode cluster"); the job's file and arguments are
    /// appended. --threads, --max-file-bytes do not apply to Spark.
    #[arg(
        long,
        value_name = "COMMAND",
        env = "ATENEX_REPORT_SPARK_SUBMIT",
        default_value = "spark-submit"
    )]
    spark_submit: String,

    /// A line longer than this is malformed (exit 5, or skipped with --skip-bad-records).
    #[arg(long, value_name = "BYTES", env = "ATENEX_REPORT_MAX_LINE_BYTES", default_value_t = atenex_report::DEFAULT_MAX_LINE_BYTES as u64, value_parser = clap::value_parser!(u64).range(1..=(1 << 32)))]
    max_line_bytes: u64,
}

/// Where the counting runs (`--engine`).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Engine {
    Datafusion,
    Spark,
}

pub async fn run(args: ReportArgs) -> anyhow::Result<()> {
    let date = args
        .date
        .unwrap_or_else(|| chrono::Utc::now().date_naive() - chrono::Days::new(1));
    let root = args.root.trim_end_matches('/');
    let landing = args
        .landing
        .unwrap_or_else(|| format!("{root}/atenex/kafka-landing"));
    let reports = args
        .reports
        .unwrap_or_else(|| format!("{root}/atenex/reports"));
    let open = |url: &str, what: &str| {
        tokio::task::block_in_place(|| Location::open(url))
            .map_err(|e| ReportError::storage(format!("--{what} {url}"), e))
    };
    let defaults = Options::new(date, open(&landing, "landing")?, open(&reports, "reports")?);
    let opts = Options {
        topic: args.topic,
        allow_empty: args.allow_empty,
        skip_bad_records: args.skip_bad_records,
        threads: args.threads.map_or(defaults.threads, usize::from),
        max_file_bytes: args.max_file_bytes,
        max_line_bytes: usize::try_from(args.max_line_bytes).unwrap_or(usize::MAX),
        spark: match args.engine {
            Engine::Datafusion => None,
            Engine::Spark => {
                let submit = shell_words::split(&args.spark_submit).map_err(|e| {
                    ReportError::Other(format!("--spark-submit {:?}: {e}", args.spark_submit))
                })?;
                if submit.is_empty() {
                    return Err(ReportError::Other(
                        "--spark-submit is empty: name the command, e.g. spark-submit".into(),
                    )
                    .into());
                }
                Some(atenex_report::spark::SparkOptions { submit })
            }
        },
        ..defaults
    };
    let s = atenex_report::run(&opts).await?;
    for r in &s.repaired {
        println!("repaired an interrupted run: {r}");
    }
    println!(
        "report {date}: {} files, {:.1} MB read; {} records, {} companies, {} documents, {} duplicates{}",
        s.files,
        s.bytes as f64 / 1e6,
        s.records,
        s.companies,
        s.documents,
        s.duplicates,
        if opts.skip_bad_records {
            format!(", {} bad lines skipped", s.bad_skipped)
        } else {
            String::new()
        }
    );
    for b in &s.first_bad {
        println!("  skipped {b}");
    }
    println!(
        "wrote {}/part-00000.parquet in {:.2}s",
        s.output,
        s.elapsed.as_secs_f64()
    );
    Ok(())
}
