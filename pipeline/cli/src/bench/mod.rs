//! `atenex bench`: throughput of the pipeline's hot paths on generated data, on one core.

use atenex_analytics::bench::{StreamSpec, generate};
use atenex_analytics::core::Settings;
use atenex_analytics::offline::{self, OfflineOptions};
use atenex_contracts::lines::MAX_LINE_BYTES;
use atenex_report::store::Store as _;
use clap::{Args, Subcommand};
use std::time::Instant;

mod docproc;
mod embedding;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The offline analytics path (decode + window core + output) over a generated
    /// embeddings.ready stream held in memory, or with --file read from a file as a JVM job's
    /// runtime is measured; prints records/s and input MB/s. Build with --release for
    /// meaningful numbers.
    Analytics(AnalyticsBench),
    /// The offline landing path (envelopes → Connect tree on local disk, fsync at every commit)
    /// beside `cat` copying the same payload bytes to the same disk (then fsync), in one run.
    Landing(LandingBench),
    /// The daily report over a generated day of landing files on local disk (read from the page
    /// cache after a first warming run), beside `cat` of the same files to /dev/null.
    Report(ReportBench),
    /// Uploads through the gateway to ingest (with the test broker) under load from `wrk`
    /// (Debian: apt-get install wrk), beside the same load against a bare axum handler that reads
    /// and discards the body, in one run.
    Upload(UploadBench),
    /// Docproc's extraction and chunking on the document fixtures (per format: documents/s,
    /// pages/s, MB/s), and the PDF extractors compared on quality (word recall) and speed.
    Docproc(docproc::DocprocBench),
    /// The embedding service's own loop (test broker, consumer group, batches pipelined,
    /// produce) against the OpenAI mock at 0 ms and at --latency-ms per request, after an uncounted
    /// warm-up run: chunks/s, and how much of the latency the pipelining and concurrency hide.
    Embedding(embedding::EmbeddingBench),
}

#[derive(Args, Debug)]
pub struct UploadBench {
    /// Concurrent connections. Ingest takes 16 uploads at once (its default
    /// --max-concurrent-uploads) and refuses more with 503, which is not counted as throughput.
    #[arg(long, default_value_t = 16, value_parser = crate::parse::count::<1, 10_000>)]
    connections: usize,
    /// Size of each uploaded file, in bytes.
    #[arg(long, default_value_t = 100 * 1024, value_parser = crate::parse::count::<1, 1_000_000_000>)]
    file_bytes: usize,
    /// Length of each wrk run.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = crate::parse::duration::<1, 3600>)]
    duration: std::time::Duration,
    /// wrk threads.
    #[arg(long, default_value_t = 2, value_parser = crate::parse::count::<1, 1024>)]
    threads: usize,
    /// Where ingest stores the uploads: `local` (a temporary directory on this disk) or a
    /// storage URL as `atenex ingest --storage` takes it (`s3://bucket/prefix`, with the AWS_*
    /// variables ingest reads). Repeat it to measure several stores in the same run.
    #[arg(long = "storage", value_name = "local|URL", default_value = "local")]
    storages: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ReportBench {
    /// Records in the generated day (companies x documents x chunks; 50,000 x 1536 floats is
    /// about 1 GB).
    #[arg(long, default_value_t = 50_000, value_parser = crate::parse::count::<1, 100_000_000>)]
    records: usize,
    /// Vector dimensions (8 for a day of small records).
    #[arg(long, default_value_t = 1536, value_parser = crate::parse::count::<1, 65_536>)]
    dims: usize,
    /// Directory on the disk to use (a temporary directory is made inside it).
    #[arg(long, default_value = ".")]
    dir: std::path::PathBuf,
    /// Runs after the warming one; the best is reported.
    #[arg(long, default_value_t = 3, value_parser = crate::parse::count::<1, 1000>)]
    runs: usize,
    /// Scanning threads [default: the number of cores].
    #[arg(long, value_parser = crate::parse::count::<1, 1024>)]
    threads: Option<usize>,
    /// Generate the landing tree into this directory and keep it (reused if it already holds
    /// one), e.g. to run another tool over the same files.
    #[arg(long, value_name = "DIR")]
    keep: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct AnalyticsBench {
    /// Records in the generated stream.
    #[arg(long, default_value_t = 50_000, value_parser = crate::parse::count::<1, 100_000_000>)]
    records: usize,
    /// Vector dimensions (1536 for text-embedding-3-small: about 20 KB per record).
    #[arg(long, default_value_t = 1536, value_parser = crate::parse::count::<1, 65_536>)]
    dims: usize,
    /// Runs over the same data; the best is reported.
    #[arg(long, default_value_t = 5, value_parser = crate::parse::count::<1, 1000>)]
    runs: usize,
    /// Measure the job as a JVM engine's job is measured: the stream is read from a file (the
    /// generated one written to a temporary file in --dir first, or --input), each run timed from
    /// opening the file to the last output, reading included, on one thread (after a first
    /// untimed run that warms the page cache).
    #[arg(long)]
    file: bool,
    /// With --file: a recorded stream to read instead of the generated one.
    #[arg(long, value_name = "FILE", requires = "file")]
    input: Option<std::path::PathBuf>,
    /// With --file: where the generated stream is written (a temporary file inside it).
    #[arg(long, value_name = "DIR", default_value = ".", requires = "file")]
    dir: std::path::PathBuf,
    /// With --file: write the generated stream to this file and keep it (reused if it exists),
    /// e.g. to time `atenex analytics --input` or another engine on the same events.
    #[arg(long, value_name = "FILE", requires = "file", conflicts_with = "input")]
    keep: Option<std::path::PathBuf>,
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    let b = match cmd {
        BenchCommand::Analytics(b) => b,
        BenchCommand::Landing(b) => return landing(b),
        BenchCommand::Docproc(b) => return docproc::run(b),
        BenchCommand::Embedding(b) => {
            return tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(embedding::run(b))
            });
        }
        BenchCommand::Upload(b) => {
            return tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(upload(b))
            });
        }
        BenchCommand::Report(b) => {
            return tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(report(b))
            });
        }
    };
    if b.file {
        return analytics_from_file(b);
    }
    let data = generate(&StreamSpec {
        records: b.records,
        dims: b.dims,
        ..StreamSpec::default()
    });
    let opts = analytics_options();
    let mut best = f64::MAX;
    let mut counted = 0;
    for _ in 0..b.runs.max(1) {
        let started = Instant::now();
        let s = offline::run(
            &mut &data[..],
            MAX_LINE_BYTES,
            &opts,
            &mut std::io::sink(),
            Some(&mut std::io::sink()),
        )?;
        best = best.min(started.elapsed().as_secs_f64());
        counted = s.counted;
    }
    anyhow::ensure!(
        counted == b.records as u64,
        "counted {counted} of {} records",
        b.records
    );
    println!(
        "analytics offline: {} records x {} dims, {:.1} MB, best of {}: {:.3}s = {:.0} records/s, {:.0} MB/s (one core)",
        b.records,
        b.dims,
        data.len() as f64 / 1e6,
        b.runs,
        best,
        b.records as f64 / best,
        data.len() as f64 / 1e6 / best
    );
    Ok(())
}

fn analytics_options() -> OfflineOptions {
    OfflineOptions {
        settings: Settings::default(),
        topic: "embeddings.ready".into(),
        skip_bad_records: false,
    }
}

/// `bench analytics --file`: the job's own time over a stream in a file, reading included.
fn analytics_from_file(b: AnalyticsBench) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir_in(&b.dir)?;
    let path = match (&b.input, &b.keep) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) if p.exists() => p.clone(),
        (None, keep) => {
            let p = keep
                .clone()
                .unwrap_or_else(|| tmp.path().join("stream.jsonl"));
            std::fs::write(
                &p,
                generate(&StreamSpec {
                    records: b.records,
                    dims: b.dims,
                    ..StreamSpec::default()
                }),
            )?;
            p
        }
    };
    let bytes = std::fs::metadata(&path)?.len() as f64;
    let opts = analytics_options();
    let mut best = f64::MAX;
    let mut records = 0;
    // The first run warms the page cache and is not timed.
    for run in 0..=b.runs.max(1) {
        let started = Instant::now();
        let mut input = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&path)?);
        let s = offline::run(
            &mut input,
            MAX_LINE_BYTES,
            &opts,
            &mut std::io::sink(),
            Some(&mut std::io::sink()),
        )?;
        if run > 0 {
            best = best.min(started.elapsed().as_secs_f64());
        }
        records = s.records;
    }
    println!(
        "analytics offline from a file: {} ({records} records, {:.1} MB), best of {}: {:.3}s = {:.0} records/s, {:.0} MB/s (one thread, reading included)",
        path.display(),
        bytes / 1e6,
        b.runs,
        best,
        records as f64 / best,
        bytes / 1e6 / best
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct LandingBench {
    /// Records in the generated embeddings.ready stream.
    #[arg(long, default_value_t = 20_000, value_parser = crate::parse::count::<1, 100_000_000>)]
    records: usize,
    /// Vector dimensions (1536: about 20 KB per record).
    #[arg(long, default_value_t = 1536, value_parser = crate::parse::count::<1, 65_536>)]
    dims: usize,
    /// Directory on the disk to measure (a temporary directory is made inside it).
    #[arg(long, default_value = ".")]
    dir: std::path::PathBuf,
    /// Runs of each (cat, landing), alternating; the best of each is reported.
    #[arg(long, default_value_t = 3, value_parser = crate::parse::count::<1, 1000>)]
    runs: usize,
}

/// Lands a generated stream offline to local disk and compares with `cat` copying the same payload
/// bytes (then fsync), in the same run.
pub fn landing(b: LandingBench) -> anyhow::Result<()> {
    use atenex_contracts::EnvelopeReader;
    use atenex_landing::config::LandingConfig;
    use atenex_landing::fs::LocalFs;
    use atenex_landing::fs::pipelined::Pipelined;
    use atenex_landing::sink::Sink;
    use std::io::Write;

    let data = generate(&StreamSpec {
        records: b.records,
        dims: b.dims,
        partitions: 3,
        ..StreamSpec::default()
    });
    let tmp = tempfile::tempdir_in(&b.dir)?;
    // The payload bytes, one value per line: what the landing writes.
    let payload_path = tmp.path().join("payloads.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&payload_path)?);
        for e in EnvelopeReader::new(&data[..]) {
            f.write_all(e?.payload.unwrap_or_default().as_bytes())?;
            f.write_all(b"\n")?;
        }
    }
    let payload_bytes = std::fs::metadata(&payload_path)?.len() as f64;
    let (mut cat_secs, mut land_secs) = (f64::MAX, f64::MAX);
    for run in 0..b.runs.max(1) {
        let copy = tmp.path().join("copy.jsonl");
        let started = Instant::now();
        let status = std::process::Command::new("cat")
            .arg(&payload_path)
            .stdout(std::fs::File::create(&copy)?)
            .status()?;
        anyhow::ensure!(status.success(), "cat failed");
        std::fs::File::open(&copy)?.sync_all()?;
        cat_secs = cat_secs.min(started.elapsed().as_secs_f64());
        std::fs::remove_file(&copy)?;

        let root = tmp.path().join(format!("landing-{run}"));
        let config = LandingConfig::from_properties(
            &format!(
                "name=bench\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\ntopics=embeddings.ready\nhdfs.url={}\n\
                 topics.dir=/atenex/kafka-landing\nlogs.dir=/atenex/logs\nformat.class=io.confluent.connect.hdfs3.format.json.JsonFormat\n\
                 flush.size=1000\npartitioner.class=io.confluent.connect.storage.partitioner.HourlyPartitioner\nlocale=en_US\ntimezone=UTC\n\
                 timestamp.extractor=Record\n",
                root.display()
            ),
            Vec::new(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let started = Instant::now();
        // As `atenex landing --input` does it: effects on their own thread.
        let mut sink = Sink::new(Pipelined::new(LocalFs::new(&root)), config.clone(), true);
        let s = atenex_landing::offline::run(&mut sink, &config, &data[..], 0)?;
        land_secs = land_secs.min(started.elapsed().as_secs_f64());
        anyhow::ensure!(
            s.records == b.records as u64,
            "landed {} of {}",
            s.records,
            b.records
        );
        drop(sink);
        std::fs::remove_dir_all(&root)?;
    }
    let mb = payload_bytes / 1e6;
    println!(
        "landing offline: {} records x {} dims, {mb:.1} MB of payload, best of {}: landing {land_secs:.3}s = {:.0} MB/s; cat + fsync {cat_secs:.3}s = {:.0} MB/s; ratio {:.0}%",
        b.records,
        b.dims,
        b.runs,
        mb / land_secs,
        mb / cat_secs,
        100.0 * cat_secs / land_secs
    );
    Ok(())
}

/// Generates a day of landing files and times the report over it, beside `cat`.
pub async fn report(b: ReportBench) -> anyhow::Result<()> {
    use atenex_report::generate::{DaySpec, write_day};
    use atenex_report::store::LocalStore;
    use atenex_report::{Location, Options};

    let tmp = tempfile::tempdir_in(&b.dir)?;
    let landing = b.keep.clone().unwrap_or_else(|| tmp.path().join("landing"));
    let reuse = b.keep.is_some() && landing.join("embeddings.ready").exists();
    let (companies, documents) = (10, 50);
    let spec = DaySpec {
        companies,
        documents_per_company: documents,
        chunks_per_document: b.records.div_ceil(companies * documents).max(1),
        dims: b.dims,
        partitions: 3,
        hours: 24,
        records_per_file: if b.dims > 100 { 700 } else { 50_000 },
        duplicates: 0.01,
        neighbours: false,
        ..DaySpec::default()
    };
    let generated = Instant::now();
    let written = if reuse {
        let listing = LocalStore.list(landing.to_str().expect("UTF-8 path"))?;
        let records = listing
            .iter()
            .map(|(p, _)| {
                std::fs::read(p).map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
            })
            .sum::<Result<u64, _>>()?;
        atenex_report::generate::Written {
            files: listing.len() as u64,
            bytes: listing.iter().map(|(_, n)| n).sum(),
            records,
        }
    } else {
        write_day(
            &LocalStore,
            landing.to_str().expect("UTF-8 path"),
            "embeddings.ready",
            &spec,
        )?
    };
    eprintln!(
        "generated {} files, {:.1} MB, {} records in {:.1}s",
        written.files,
        written.bytes as f64 / 1e6,
        written.records,
        generated.elapsed().as_secs_f64()
    );
    let files: Vec<std::path::PathBuf> = LocalStore
        .list(landing.to_str().expect("UTF-8 path"))?
        .into_iter()
        .map(|(p, _)| p.into())
        .collect();
    let threads = b
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let opts = Options {
        threads,
        ..Options::new(
            spec.date,
            Location::open(landing.to_str().expect("UTF-8 path"))?,
            Location::open(tmp.path().join("reports").to_str().expect("UTF-8 path"))?,
        )
    };
    let (mut best, mut best_cat) = (f64::MAX, f64::MAX);
    for run in 0..=b.runs.max(1) {
        let started = Instant::now();
        let status = std::process::Command::new("cat")
            .args(&files)
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "cat failed");
        let cat = started.elapsed().as_secs_f64();
        let s = atenex_report::run(&opts).await?;
        anyhow::ensure!(
            s.records == written.records,
            "counted {} of {}",
            s.records,
            written.records
        );
        if run > 0 {
            // Run 0 warms the page cache.
            best = best.min(s.elapsed.as_secs_f64());
            best_cat = best_cat.min(cat);
        }
    }
    let mb = written.bytes as f64 / 1e6;
    println!(
        "report: {} records x {} dims, {} files, {mb:.1} MB, {threads} threads, best of {}: {best:.3}s = {:.0} MB/s, {:.0} records/s; cat of the files {best_cat:.3}s = {:.0} MB/s",
        written.records,
        b.dims,
        written.files,
        b.runs,
        mb / best,
        written.records as f64 / best,
        mb / best_cat
    );
    Ok(())
}

/// wrk's request script: a multipart upload of `FILE_BYTES` bytes, unique per request (ingest
/// refuses duplicate content).
const WRK_SCRIPT: &str = r#"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local counter = 0
local boundary = "atenexbench"
local filler = nil
function request()
  if filler == nil then filler = string.rep("a", tonumber(os.getenv("FILE_BYTES")) - 72) end
  counter = counter + 1
  local body = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"load.txt\"\r\nContent-Type: text/plain\r\n\r\n"
    .. os.getenv("RUN") .. string.format("-%08d-%08d-", id or 0, counter) .. filler .. "\r\n--" .. boundary .. "--\r\n"
  return wrk.format("POST", nil, {
    ["Authorization"] = "Bearer " .. os.getenv("TOKEN"),
    -- What the gateway would set (it replaces these): lets the run against ingest alone work.
    ["X-Company-ID"] = os.getenv("COMPANY"),
    ["X-User-ID"] = "bench",
    ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
  }, body)
end
"#;

struct WrkResult {
    rps: f64,
    p50: String,
    p99: String,
    non_2xx: u64,
    requests: u64,
}

impl WrkResult {
    /// Answers per second that were 2xx: an upload refused (503 beyond ingest's
    /// --max-concurrent-uploads, 409 for a duplicate) is not throughput.
    fn ok_rps(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.rps * (self.requests - self.non_2xx.min(self.requests)) as f64 / self.requests as f64
    }
}

fn wrk(
    url: &str,
    b: &UploadBench,
    script: &std::path::Path,
    token: &str,
    company: &str,
) -> anyhow::Result<WrkResult> {
    let mut command = std::process::Command::new("wrk");
    command
        .args([
            "-t",
            &b.threads.to_string(),
            "-c",
            &b.connections.to_string(),
            "-d",
            &format!("{}s", b.duration.as_secs()),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .env("TOKEN", token)
        .env("COMPANY", company)
        // Each run's content differs from the others' (ingest refuses duplicates).
        .env("RUN", uuid::Uuid::new_v4().simple().to_string())
        .env("FILE_BYTES", b.file_bytes.to_string());
    // A bench stopped (or killed) mid-run must not leave wrk loading the machine.
    atenex_jvm::process::die_with_parent(&mut command);
    let out = command
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run wrk: {e} (Debian: apt-get install wrk)"))?;
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
    };
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let requests = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in ")
                .and_then(|(n, _)| n.parse().ok())
        })
        .unwrap_or(0);
    Ok(WrkResult {
        rps,
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
        non_2xx: field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        requests,
    })
}

/// The HTTP stack's limit: reads the body, discards it, answers 202.
async fn discard(body: axum::body::Body) -> (axum::http::StatusCode, &'static str) {
    use futures::StreamExt;
    let mut s = body.into_data_stream();
    while let Some(chunk) = s.next().await {
        if chunk.is_err() {
            break;
        }
    }
    (axum::http::StatusCode::ACCEPTED, "{}")
}

/// Gateway → ingest → broker under wrk, beside a bare discarding handler.
pub async fn upload(b: UploadBench) -> anyhow::Result<()> {
    use axum::routing::post;
    let tmp = tempfile::tempdir()?;
    let script = tmp.path().join("upload.lua");
    std::fs::write(&script, WRK_SCRIPT)?;
    let spawn = |router: axum::Router| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, router).await });
        anyhow::Ok(addr)
    };
    // The HTTP stack's limit: read the body, discard it, answer 202.
    let bare = spawn(axum::Router::new().route("/upload", post(discard))).await?;
    let kafka = atenex_kafka::testing::config();
    let secret = b"bench-2c8f4a6e0d9b1f3a7c5e8d2b4f6a0c9e".to_vec();
    let gateway_to = |upstream: std::net::SocketAddr| {
        let secret = secret.clone();
        async move {
            spawn(atenex_gateway::router(std::sync::Arc::new(
                atenex_gateway::Gateway::new(atenex_gateway::Config {
                    ingest_url: format!("http://{upstream}"),
                    jwt_secret: secret,
                    max_body_bytes: atenex_gateway::DEFAULT_MAX_BODY_BYTES,
                    cors_origins: Vec::new(),
                    upstream_timeout: std::time::Duration::from_secs(60),
                })?,
            ))?)
            .await
        }
    };
    // Ingest on each store, and the gateway in front of it.
    let mut stores = Vec::new();
    for storage in &b.storages {
        let (name, url) = match storage.as_str() {
            "local" => (
                "local store".to_owned(),
                tmp.path()
                    .join("objects")
                    .to_str()
                    .expect("UTF-8")
                    .to_owned(),
            ),
            url => (
                atenex_kafka::observe::redacted(url).to_string(),
                url.to_owned(),
            ),
        };
        let store = atenex_ingest::storage::Storage::open(&url)?;
        store
            .check(true, std::time::Duration::from_secs(15))
            .await?;
        let ingest = spawn(atenex_ingest::router(std::sync::Arc::new(
            atenex_ingest::App::new(
                store,
                atenex_kafka::Producer::new(&kafka)?,
                atenex_ingest::DEFAULT_MAX_UPLOAD_BYTES,
                atenex_ingest::DEFAULT_MAX_CONCURRENT_UPLOADS,
            ),
        )))
        .await?;
        let gateway = gateway_to(ingest).await?;
        stores.push((name, ingest, gateway));
    }
    // The gateway alone, in front of a bare handler at ingest's route.
    let bare_ingest =
        spawn(axum::Router::new().route("/api/v1/ingest/upload", post(discard))).await?;
    let gateway_only = gateway_to(bare_ingest).await?;
    let company = uuid::Uuid::new_v4().to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let token = atenex_gateway::jwt::sign(
        &atenex_gateway::jwt::Claims {
            sub: "bench".into(),
            company_id: Some(company.clone()),
            roles: vec![],
            exp: now + 3600,
        },
        &secret,
    )?;
    let run = |name: &str, url: String| -> anyhow::Result<WrkResult> {
        let r = tokio::task::block_in_place(|| wrk(&url, &b, &script, &token, &company))?;
        println!(
            "{name}: {:.0} uploads/s accepted (2xx), p50 {}, p99 {}, {} requests, {} not 2xx",
            r.ok_rps(),
            r.p50,
            r.p99,
            r.requests,
            r.non_2xx
        );
        Ok(r)
    };
    println!(
        "{} connections, {} wrk threads, {} B files, {} each:",
        b.connections,
        b.threads,
        b.file_bytes,
        humantime::format_duration(b.duration)
    );
    let base = run(
        "bare axum handler (discard)",
        format!("http://{bare}/upload"),
    )?;
    run(
        "gateway → bare handler",
        format!("http://{gateway_only}/upload"),
    )?;
    for (store, ingest, gateway) in &stores {
        run(
            &format!("ingest → broker (no gateway), {store}"),
            format!("http://{ingest}/api/v1/ingest/upload"),
        )?;
        let full = run(
            &format!("gateway → ingest → broker, {store}"),
            format!("http://{gateway}/upload"),
        )?;
        println!(
            "{store}: throughput {:.0}% of the bare handler's",
            100.0 * full.ok_rps() / base.ok_rps().max(1.0)
        );
    }
    Ok(())
}
