//! `atenex demo`: the whole pipeline on one machine with nothing configured. Starts a broker,
//! the OpenAI mock (or uses the real API when `OPENAI_API_KEY` is set), the four services and the
//! landing job as child processes of this binary; uploads the sample documents through the
//! gateway; waits until every chunk is embedded; drains the analytics job (every window fires);
//! waits for the landing to commit; runs the day's report; prints what happened and where every
//! file is; stops everything it started.

use anyhow::Context as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// The sample documents, in the binary so that the demo runs from anywhere.
const SAMPLES: &[(&str, &str, &[u8])] = &[
    (
        "multipage.pdf",
        "application/pdf",
        include_bytes!("../../../fixtures/documents/multipage.pdf"),
    ),
    (
        "tables.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        include_bytes!("../../../fixtures/documents/tables.docx"),
    ),
    (
        "page.html",
        "text/html",
        include_bytes!("../../../fixtures/documents/page.html"),
    ),
    (
        "notes.md",
        "text/markdown",
        include_bytes!("../../../fixtures/documents/notes.md"),
    ),
    (
        "cafe.txt",
        "text/plain",
        include_bytes!("../../../fixtures/documents/cafe-utf8.txt"),
    ),
];

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Where the demo keeps everything: objects/, hdfs/ (landing tree and reports), logs/.
    #[arg(long, value_name = "DIR", default_value = "./data")]
    data: PathBuf,

    /// Give up waiting for a stage after this many seconds.
    #[arg(long, value_name = "S", default_value_t = 180)]
    timeout_secs: u64,

    /// Also record the pipeline's topics (documents.raw, chunks.processed, embeddings.ready,
    /// everything the broker holds) to FILE with `atenex record`, once everything is landed: a
    /// stream a simulator scenario can replay ([input] in docs/simulation.md).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,

    /// After the summary, keep the pipeline (with the analytics job running live) and the
    /// dashboard running until Ctrl-C, and print how to upload more documents and watch them
    /// arrive in the dashboard.
    #[arg(long)]
    serve: bool,

    /// Where ingest keeps the uploads and docproc reads them: `s3://bucket/prefix` to use S3
    /// (the AWS variables as for the AWS CLI: AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, and AWS_ENDPOINT with AWS_ALLOW_HTTP=true for a server of your
    /// own); default: the objects/ directory under --data.
    #[arg(long, value_name = "URL")]
    storage: Option<String>,
}

/// The children this run started: SIGTERM and wait on `stop`, killed if dropped before.
struct Children {
    logs: PathBuf,
    running: Vec<(String, Child)>,
}

impl Children {
    fn command(&self, name: &str, args: &[&str]) -> anyhow::Result<Command> {
        let log = std::fs::File::create(self.logs.join(format!("{name}.log")))?;
        let mut c = Command::new(std::env::current_exe()?);
        c.args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        Ok(c)
    }

    fn spawn(&mut self, name: &str, mut command: Command) -> anyhow::Result<()> {
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.running.push((name.to_owned(), child));
        Ok(())
    }

    /// Starts a child that prints an address as its first line of stdout, and returns it.
    async fn spawn_announcing(&mut self, name: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut command = self.command(name, args)?;
        command.stdout(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
            .await
            .with_context(|| format!("{name} did not start within 5 minutes"))??
            .with_context(|| {
                format!(
                    "{name} exited before it was ready; see {}{}",
                    self.log_of(name).display(),
                    self.tail_of(name)
                )
            })?;
        self.running.push((name.to_owned(), child));
        Ok(first.trim().to_owned())
    }

    /// Fails if a service or job has exited: waiting for it would be in vain.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.running {
            if let Some(status) = child.try_wait()? {
                let log = self.logs.join(format!("{name}.log"));
                anyhow::bail!(
                    "{name} exited ({status}); see {}{}",
                    log.display(),
                    tail(&log)
                );
            }
        }
        Ok(())
    }

    fn log_of(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    fn tail_of(&self, name: &str) -> String {
        tail(&self.log_of(name))
    }

    async fn stop(&mut self) {
        for (_, child) in self.running.iter().rev() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        for (name, child) in self.running.iter_mut().rev() {
            match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
                Ok(Ok(s)) if s.success() => {}
                Ok(Ok(s)) => eprintln!("  {name} exited with {s}"),
                _ => {
                    let _ = child.kill().await;
                    eprintln!("  {name} did not stop within 30 s: killed");
                }
            }
        }
        self.running.clear();
    }
}

/// The last lines of a child's log, to print with its failure (the log directory of a failed
/// run in CI is gone with the runner).
fn tail(log: &Path) -> String {
    const LINES: usize = 20;
    let Ok(text) = std::fs::read_to_string(log) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    let last = &lines[lines.len().saturating_sub(LINES)..];
    if last.is_empty() {
        return String::new();
    }
    format!(", which ends:\n  {}", last.join("\n  "))
}

async fn run_to_end(
    children: &Children,
    name: &str,
    args: &[&str],
    within: Duration,
) -> anyhow::Result<()> {
    let mut command = children.command(name, args)?;
    let status = tokio::time::timeout(within, command.status())
        .await
        .with_context(|| format!("{name} did not finish within {within:?}"))??;
    anyhow::ensure!(
        status.success(),
        "{name} failed ({status}); see {}{}",
        children.log_of(name).display(),
        children.tail_of(name)
    );
    Ok(())
}

async fn wait_healthy(http: &reqwest::Client, addr: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("http://{addr}/health")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{addr} did not answer /health within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Values of `topic` whose `company_id` is `company`.
async fn ours(
    kafka: &atenex_kafka::KafkaConfig,
    topic: &str,
    company: &str,
) -> anyhow::Result<Vec<serde_json::Value>> {
    Ok(atenex_kafka::record::read_all(kafka, &[topic])
        .await?
        .into_iter()
        .filter_map(|e| {
            e.payload
                .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        })
        .filter(|v| v["company_id"] == company)
        .collect())
}

/// Committed landing files (path relative to `root`, lines, lines of `company`).
fn landed(root: &Path, company: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("+tmp") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".json") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                out.push((
                    rel,
                    text.lines().count(),
                    text.lines().filter(|l| l.contains(company)).count(),
                ));
            }
        }
    }
    out.sort();
    out
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let within = Duration::from_secs(args.timeout_secs);
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("--data {}", args.data.display()))?;
    let data = std::fs::canonicalize(&args.data)?;
    let (objects, hdfs, logs) = (data.join("objects"), data.join("hdfs"), data.join("logs"));
    for d in [&objects, &hdfs, &logs] {
        std::fs::create_dir_all(d)?;
    }
    let mut children = Children {
        logs: logs.clone(),
        running: Vec::new(),
    };
    let record = match &args.record {
        // Relative to where the command runs, not to --data.
        Some(f) => Some(std::path::absolute(f)?),
        None => None,
    };
    let storage = match &args.storage {
        Some(url) => url.clone(),
        None => objects.to_str().context("a UTF-8 --data path")?.to_owned(),
    };
    let result = demo(
        &data,
        &storage,
        &hdfs,
        &mut children,
        within,
        record.as_deref(),
        args.serve,
    )
    .await;
    println!("\nstopping what the demo started …");
    children.stop().await;
    match &result {
        Ok(()) => println!(
            "done in {:.0} s; logs in {}",
            started.elapsed().as_secs_f64(),
            logs.display()
        ),
        Err(_) => eprintln!("the demo failed; logs in {}", logs.display()),
    }
    result
}

async fn demo(
    data: &Path,
    objects: &str,
    hdfs: &Path,
    children: &mut Children,
    within: Duration,
    record: Option<&Path>,
    serve: bool,
) -> anyhow::Result<()> {
    let (bootstrap, embedded) = start_broker(data, hdfs, children).await?;
    println!("        at {bootstrap}");
    let kafka = atenex_kafka::KafkaConfig::from_env().with_bootstrap(Some(&bootstrap));
    let b = bootstrap.as_str();
    let openai = start_openai(children).await?;
    if !embedded {
        // The mock cluster creates topics on first use (and does not answer topic creation).
        run_to_end(
            children,
            "topics",
            &["topics", "create", "--bootstrap-servers", b],
            within,
        )
        .await?;
    }
    let services = start_services(children, data, objects, hdfs, b, &openai).await?;
    let reports = hdfs.join("atenex/reports");
    let dashboard = children
        .spawn_announcing(
            "dashboard",
            &[
                "dashboard",
                "--listen",
                "127.0.0.1:0",
                "--reports",
                reports.to_str().context("a UTF-8 --data path")?,
                "--bootstrap-servers",
                b,
            ],
        )
        .await?;
    println!("dashboard: {dashboard} (chunks per company per minute, live; daily reports)");
    let http = reqwest::Client::new();
    let uploads = upload_samples(&http, &services).await?;
    let company = uploads.company.as_str();
    let embedded =
        wait_embedded(&kafka, children, company, uploads.expected_chunks, within).await?;
    let windows = drain_analytics(&kafka, children, company, b, within).await?;
    let topics_root = hdfs.join("atenex/kafka-landing");
    let want = [
        ("documents.raw", uploads.documents.len()),
        ("chunks.processed", uploads.expected_chunks),
        ("embeddings.ready", embedded.len()),
    ];
    let tree = wait_landed(children, &topics_root, company, &want, within).await?;
    if let Some(file) = record {
        record_topics(children, file, b, within).await?;
    }
    let date = uploads.now.format("%Y-%m-%d").to_string();
    let (report_dir, rows) = run_report(children, hdfs, &date, company, within).await?;
    print_summary(&Summary {
        company,
        documents: &uploads.documents,
        embedded: &embedded,
        windows: &windows,
        topics_root: &topics_root,
        tree: &tree,
        report_dir: &report_dir,
        rows: &rows,
        objects,
        hdfs,
    });
    check_counts(&embedded, &windows, &rows)?;
    println!("\ndashboard: {dashboard}");
    if serve {
        // The analytics job live from here on, so that new uploads show in the dashboard.
        let c = children.command("analytics", &["analytics", "--bootstrap-servers", b])?;
        children.spawn("analytics", c)?;
        println!(
            "\nserving until Ctrl-C: the pipeline, the analytics job (live) and the dashboard at {dashboard}\n\
             upload more documents as company {company} (the token is valid for an hour):\n  \
             curl -F file=@some.pdf -H 'Authorization: Bearer {}' http://{}/upload\n\
             each minute of event time shows in the dashboard about 5 s after it ends.",
            uploads.token, services.gateway
        );
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}

/// The broker: the one configured, else a real Kafka where a JDK is present, else the mock
/// cluster. Returns its address and whether it is the embedded mock.
async fn start_broker(
    data: &Path,
    hdfs: &Path,
    children: &mut Children,
) -> anyhow::Result<(String, bool)> {
    let configured = std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let mut embedded = false;
    let bootstrap = match configured {
        Some(b) => {
            println!("broker: {b} (KAFKA_BOOTSTRAP_SERVERS)");
            b
        }
        None if which("java") => {
            // Its log lives in --data, as the landing tree does: the tree's file names carry
            // offsets, which must keep meaning the same records on the next run.
            println!(
                "broker: starting Apache Kafka 4.4 (a real broker; first run fetches its jars) …"
            );
            let dir = data.join("kafka");
            let dir = dir.to_str().context("a UTF-8 --data path")?;
            children
                .spawn_announcing(
                    "broker",
                    &["broker", "--listen", "127.0.0.1:0", "--data-dir", dir],
                )
                .await?
        }
        None => {
            // Its topics start empty every run: a landing tree from an earlier run would name
            // offsets of other records, so it starts over too.
            println!(
                "broker: no JDK found, starting librdkafka's embedded mock cluster (not a full Kafka; the landing tree starts over)"
            );
            let _ = std::fs::remove_dir_all(hdfs.join("atenex"));
            embedded = true;
            children
                .spawn_announcing("broker", &["broker", "--embedded"])
                .await?
        }
    };
    Ok((bootstrap, embedded))
}

/// The OpenAI API: the real one when `OPENAI_API_KEY` is set, else the mock. Returns its base
/// URL and key.
async fn start_openai(children: &mut Children) -> anyhow::Result<(String, String)> {
    let answer = match std::env::var("OPENAI_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
    {
        Some(key) => {
            let url = std::env::var("OPENAI_BASE_URL")
                .unwrap_or_else(|_| "https://api.openai.com/v1".into());
            println!("openai: the real API at {url} (OPENAI_API_KEY is set)");
            (url, key)
        }
        None => {
            let url = children
                .spawn_announcing("mock-openai", &["mock-openai", "--listen", "127.0.0.1:0"])
                .await?;
            println!("openai: the mock at {url} (set OPENAI_API_KEY to use the real API)");
            (url, "sk-demo".to_owned())
        }
    };
    Ok(answer)
}

/// Where the gateway listens, and its secret.
struct Services {
    gateway: String,
    secret: String,
}

/// Ingest, the gateway, docproc, embedding and the landing job, as children; returns once ingest
/// and the gateway answer their health checks.
async fn start_services(
    children: &mut Children,
    data: &Path,
    objects: &str,
    hdfs: &Path,
    b: &str,
    (openai_url, openai_key): &(String, String),
) -> anyhow::Result<Services> {
    let [p_ingest, p_gateway] = atenex_kafka::broker::free_ports::<2>()?;
    let (ingest, gateway) = (
        format!("127.0.0.1:{p_ingest}"),
        format!("127.0.0.1:{p_gateway}"),
    );
    // 64 random hex digits (256 bits), as `openssl rand -hex 32` makes.
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let objects_s = objects;
    let c = children.command(
        "ingest",
        &[
            "ingest",
            "--listen",
            &ingest,
            "--storage",
            objects_s,
            "--bootstrap-servers",
            b,
        ],
    )?;
    children.spawn("ingest", c)?;
    let mut c = children.command(
        "gateway",
        &[
            "gateway",
            "--listen",
            &gateway,
            "--ingest-url",
            &format!("http://{ingest}"),
        ],
    )?;
    c.env("GATEWAY_JWT_SECRET", &secret);
    children.spawn("gateway", c)?;
    let c = children.command(
        "docproc",
        &["docproc", "--storage", objects_s, "--bootstrap-servers", b],
    )?;
    children.spawn("docproc", c)?;
    let mut c = children.command(
        "embedding",
        &["embedding", "--linger-ms", "100", "--bootstrap-servers", b],
    )?;
    c.env("OPENAI_BASE_URL", openai_url)
        .env("OPENAI_API_KEY", openai_key);
    children.spawn("embedding", c)?;
    let landing_config = data.join("hdfs-sink-connector.properties");
    std::fs::write(
        &landing_config,
        format!(
            "name=HdfsSinkAtenex\nconnector.class=io.confluent.connect.hdfs3.Hdfs3SinkConnector\ntopics=documents.raw,chunks.processed,embeddings.ready\nstore.url={}\n\
             format.class=io.confluent.connect.hdfs3.format.json.JsonFormat\nflush.size=1000\n\
             partitioner.class=io.confluent.connect.storage.partitioner.HourlyPartitioner\nlocale=en_US\ntimezone=UTC\n\
             topics.dir=/atenex/kafka-landing\nlogs.dir=/atenex/kafka-connect/logs\natenex.idle.commit.ms=1000\n",
            hdfs.display()
        ),
    )?;
    let c = children.command(
        "landing",
        &[
            "landing",
            "--config",
            landing_config.to_str().context("UTF-8")?,
            "--bootstrap-servers",
            b,
        ],
    )?;
    children.spawn("landing", c)?;
    let http = reqwest::Client::new();
    wait_healthy(&http, &ingest).await?;
    wait_healthy(&http, &gateway).await?;
    children.check_alive()?;
    println!(
        "services: gateway http://{gateway}, ingest http://{ingest}, docproc, embedding, landing"
    );

    Ok(Services { gateway, secret })
}

/// What was uploaded: as which company, when, each document (name, id, chunks expected).
struct Uploads {
    company: String,
    /// A token for the company, valid for an hour.
    token: String,
    now: chrono::DateTime<chrono::Utc>,
    documents: Vec<(String, String, usize)>,
    expected_chunks: usize,
}

/// The samples uploaded through the gateway as a new company (a second run is a new tenant: no
/// duplicates), with a token minted for it.
async fn upload_samples(http: &reqwest::Client, services: &Services) -> anyhow::Result<Uploads> {
    let (gateway, secret) = (&services.gateway, &services.secret);
    let company = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now();
    let token = atenex_gateway::jwt::sign(
        &atenex_gateway::jwt::Claims {
            sub: "demo".into(),
            company_id: Some(company.clone()),
            roles: vec!["admin".into()],
            exp: now.timestamp() as u64 + 3600,
        },
        secret.as_bytes(),
    )?;
    println!(
        "\nuploading {} documents through the gateway as company {company} …",
        SAMPLES.len()
    );
    let mut documents = Vec::new();
    let mut expected_chunks = 0;
    for (name, mime, bytes) in SAMPLES {
        let part = reqwest::multipart::Part::bytes(bytes.to_vec())
            .file_name(*name)
            .mime_str(mime)?;
        let answer = http
            .post(format!("http://{gateway}/upload"))
            .bearer_auth(&token)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await?;
        let status = answer.status();
        let body: serde_json::Value = answer.json().await?;
        anyhow::ensure!(status.as_u16() == 202, "upload of {name}: {status} {body}");
        let format =
            atenex_docproc::extract::Format::from_extension(name).context("a sample type")?;
        let pages = atenex_docproc::extract::extract(format, bytes, &Default::default())?;
        let chunks = atenex_docproc::chunker::chunk(&pages, &Default::default(), None).len();
        expected_chunks += chunks;
        let id = body["document_id"].as_str().unwrap_or_default().to_owned();
        println!("  {name:<14} {id}  ({chunks} chunks expected)");
        documents.push((name.to_string(), id, chunks));
    }

    Ok(Uploads {
        company,
        token,
        now,
        documents,
        expected_chunks,
    })
}

/// Waits, with a progress bar, until every expected chunk of the company is embedded.
async fn wait_embedded(
    kafka: &atenex_kafka::KafkaConfig,
    children: &mut Children,
    company: &str,
    expected_chunks: usize,
    within: Duration,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let bar = indicatif::ProgressBar::new(expected_chunks as u64);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "  {msg} [{bar:30}] {pos}/{len}",
    )?);
    bar.set_message("embedded");
    let deadline = Instant::now() + within;
    let embedded = loop {
        // The topic may not exist yet (a broker that creates topics on first use).
        let got = ours(kafka, "embeddings.ready", company)
            .await
            .unwrap_or_default();
        bar.set_position(got.len() as u64);
        children.check_alive()?;
        if got.len() >= expected_chunks {
            break got;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {expected_chunks} chunks embedded after {within:?}; see the logs",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish();

    Ok(embedded)
}

/// The analytics job drained (every window fires); the company's windows.
async fn drain_analytics(
    kafka: &atenex_kafka::KafkaConfig,
    children: &mut Children,
    company: &str,
    b: &str,
    within: Duration,
) -> anyhow::Result<Vec<serde_json::Value>> {
    println!("analytics: draining (every window fires) …");
    let group = format!("atenex-analytics-demo-{}", &company[..8]);
    run_to_end(
        children,
        "analytics",
        &[
            "analytics",
            "--drain",
            "--group",
            &group,
            "--bootstrap-servers",
            b,
        ],
        within,
    )
    .await?;
    ours(kafka, "analytics.flink", company).await
}

/// Waits until the landing has committed what the run produced: (committed file, lines, lines
/// of this run).
async fn wait_landed(
    children: &mut Children,
    topics_root: &Path,
    company: &str,
    want: &[(&str, usize)],
    within: Duration,
) -> anyhow::Result<Vec<(String, usize, usize)>> {
    println!("landing: waiting for the files to be committed …");
    let deadline = Instant::now() + within;
    let tree = loop {
        let tree = landed(topics_root, company);
        let counts: BTreeMap<&str, usize> = want
            .iter()
            .map(|(t, _)| {
                (
                    *t,
                    tree.iter()
                        .filter(|(p, _, _)| p.starts_with(t))
                        .map(|(_, _, n)| n)
                        .sum(),
                )
            })
            .collect();
        if want.iter().all(|(t, n)| counts[t] >= *n) {
            break tree;
        }
        children.check_alive()?;
        anyhow::ensure!(
            Instant::now() < deadline,
            "the landing committed {counts:?} of {want:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    Ok(tree)
}

/// The pipeline's topics recorded to `file` (`atenex record`), for the simulator to replay.
async fn record_topics(
    children: &mut Children,
    file: &Path,
    b: &str,
    within: Duration,
) -> anyhow::Result<()> {
    println!("recording the pipeline's topics to {} …", file.display());
    run_to_end(
        children,
        "record",
        &[
            "record",
            "--topics",
            "documents.raw,chunks.processed,embeddings.ready",
            "--from-beginning",
            "--until-end",
            "--output",
            file.to_str().context("a UTF-8 --record path")?,
            "--bootstrap-servers",
            b,
        ],
        within,
    )
    .await?;
    Ok(())
}

/// The day's report (`atenex report`); its directory and the company's rows.
async fn run_report(
    children: &mut Children,
    hdfs: &Path,
    date: &str,
    company: &str,
    within: Duration,
) -> anyhow::Result<(std::path::PathBuf, Vec<(String, i64, i64)>)> {
    println!("report: {date} …");
    let root = hdfs.to_str().context("UTF-8")?;
    run_to_end(
        children,
        "report",
        &["report", "--date", date, "--root", root],
        within,
    )
    .await?;
    let report_dir = hdfs.join(format!("atenex/reports/daily_chunk_count/date={date}"));
    let rows = report_rows(&report_dir, company)?;

    Ok((report_dir, rows))
}

/// What the summary prints.
struct Summary<'a> {
    company: &'a str,
    documents: &'a [(String, String, usize)],
    embedded: &'a [serde_json::Value],
    windows: &'a [serde_json::Value],
    topics_root: &'a Path,
    tree: &'a [(String, usize, usize)],
    report_dir: &'a Path,
    rows: &'a [(String, i64, i64)],
    objects: &'a str,
    hdfs: &'a Path,
}

/// The documents, the windows, the landing tree and the report rows, with where every file is.
fn print_summary(s: &Summary<'_>) {
    let Summary {
        company,
        documents,
        embedded,
        windows,
        topics_root,
        tree,
        report_dir,
        rows,
        objects,
        hdfs,
    } = *s;
    println!("\n== documents (company {company})");
    for (name, id, chunks) in documents {
        println!("  {name:<14} {id}  {chunks} chunks");
    }
    println!(
        "  chunks produced and embedded: {} ({} dimensions each)",
        embedded.len(),
        vector_len(embedded)
    );
    println!("\n== windows (analytics.flink: chunks per company per minute of event time)");
    println!(
        "  {:<22} {:<22} {:>6}",
        "window_start", "window_end", "chunks"
    );
    for w in windows {
        println!(
            "  {:<22} {:<22} {:>6}",
            w["window_start"].as_str().unwrap_or(""),
            w["window_end"].as_str().unwrap_or(""),
            w["chunk_count"]
        );
    }
    println!(
        "\n== landing tree ({}; committed files, lines, lines of this run)",
        topics_root.display()
    );
    for (path, lines, mine) in tree {
        if *mine > 0 {
            println!("  {path}  {lines} lines ({mine} of this run)");
        }
    }
    println!("\n== report ({})", report_dir.display());
    println!("  {:<38} {:>6} {:>6}", "document_id", "total", "unique");
    for (doc, total, unique) in rows {
        println!("  {doc:<38} {total:>6} {unique:>6}");
    }
    println!(
        "\nfiles: objects {}, landing {}, reports {}",
        objects,
        topics_root.display(),
        hdfs.join("atenex/reports").display()
    );
}

/// The run succeeded only if the report and the windows both count every embedded chunk.
fn check_counts(
    embedded: &[serde_json::Value],
    windows: &[serde_json::Value],
    rows: &[(String, i64, i64)],
) -> anyhow::Result<()> {
    let counted: i64 = rows.iter().map(|(_, t, _)| t).sum();
    anyhow::ensure!(
        counted as usize == embedded.len(),
        "the report counts {counted} chunks, {} were embedded",
        embedded.len()
    );
    let windowed: i64 = windows
        .iter()
        .map(|w| w["chunk_count"].as_i64().unwrap_or(0))
        .sum();
    anyhow::ensure!(
        windowed as usize == embedded.len(),
        "the windows count {windowed} chunks, {} were embedded",
        embedded.len()
    );
    Ok(())
}

fn vector_len(embedded: &[serde_json::Value]) -> usize {
    embedded
        .first()
        .and_then(|v| v["vector"].as_array())
        .map_or(0, Vec::len)
}

/// The report's rows of `company`: (document_id, total_chunks, unique_chunks).
fn report_rows(dir: &Path, company: &str) -> anyhow::Result<Vec<(String, i64, i64)>> {
    Ok(atenex_report::read::read_rows(dir)?
        .into_iter()
        .filter(|r| r.company_id == company)
        .map(|r| (r.document_id, r.total_chunks, r.unique_chunks))
        .collect())
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}
