//! A real Apache Kafka broker for development and tests, fetched and started by our own code:
//! Kafka 4.4 (KRaft, one node acting as broker and controller) from Maven Central jars, resolved
//! once into a cache directory with Maven (`ci/kafka/pom.xml`, embedded here), run with the
//! machine's Java 17+.
//!
//! Also [`EmbeddedBroker`]: librdkafka's in-process mock cluster, for machines without a JDK and
//! for fault-injection tests of the adapters (never for the scenario suites).

use anyhow::{Context as _, bail};
use base64::Engine as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The Kafka version `atenex broker` runs.
pub const KAFKA_VERSION: &str = "4.4.0";
const POM: &str = include_str!("../../../ci/kafka/pom.xml");
pub use atenex_jvm::maven::{CACHE_ENV, default_cache_dir};
use atenex_jvm::process::{Service, die_with_parent, scratch_dir};
pub use atenex_jvm::process::{free_port, free_ports};

#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Client listener; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Log directory; `None` uses a fresh temporary directory removed on stop.
    pub data_dir: Option<PathBuf>,
    /// Where the jars are cached.
    pub cache_dir: PathBuf,
    /// JVM maximum heap (`-Xmx`), e.g. `512m`.
    pub heap: String,
    /// How long to wait for the broker to answer metadata requests.
    pub startup_timeout: Duration,
    /// The KRaft cluster id (22 characters of URL-safe base64); `None`: a random one.
    pub cluster_id: Option<String>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9092".parse().expect("valid address"),
            data_dir: None,
            cache_dir: default_cache_dir(),
            heap: "512m".to_owned(),
            startup_timeout: Duration::from_secs(120),
            cluster_id: None,
        }
    }
}

/// The jar directory for [`KAFKA_VERSION`], resolving it with Maven on first use.
pub fn ensure_jars(cache_dir: &Path) -> anyhow::Result<PathBuf> {
    atenex_jvm::maven::ensure_jars(
        cache_dir,
        atenex_jvm::maven::Artifacts {
            name: &format!("kafka-{KAFKA_VERSION}"),
            pom: POM,
            what: &format!("Apache Kafka {KAFKA_VERSION} (org.apache.kafka:kafka_2.13)"),
        },
    )
}

/// A running single-node KRaft broker (a child JVM). Stopped on drop.
pub struct JvmBroker {
    service: Service,
    bootstrap: String,
}

impl JvmBroker {
    /// Fetches the jars if needed, formats the log directory, starts the JVM and waits until the
    /// broker answers metadata requests.
    pub fn start(opts: &BrokerOptions) -> anyhow::Result<Self> {
        let libs = ensure_jars(&opts.cache_dir)?;
        let layout = Layout::prepare(opts)?;
        let classpath = format!("{}/*", libs.display());
        let format = Command::new("java")
            .args(jvm_args(&opts.heap, &layout.log4j))
            .args(["-cp", &classpath, "kafka.tools.StorageTool", "format", "--ignore-formatted"])
            // `=`: an id starting with `-` (1 in 64) must not read as an option.
            .arg(format!("--cluster-id={}", layout.cluster_id))
            .arg("-c")
            .arg(&layout.props)
            .output()
            .map_err(|e| anyhow::anyhow!("cannot run `java`: {e}. The test broker needs Java 17+ (Debian: apt-get install openjdk-17-jre-headless), or use `atenex broker --embedded`"))?;
        if !format.status.success() {
            bail!(
                "formatting the KRaft log directory {} failed: {}{}",
                layout.log_dir().display(),
                String::from_utf8_lossy(&format.stdout),
                String::from_utf8_lossy(&format.stderr)
            );
        }

        let stdout = fs::File::create(layout.data_dir.join("stdout.log"))?;
        let mut cmd = Command::new("java");
        cmd.args(jvm_args(&opts.heap, &layout.log4j))
            .args(["-cp", &classpath, "kafka.Kafka"])
            .arg(&layout.props)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().context("cannot start the broker JVM")?;
        // Broker warnings and errors go to our stderr, prefixed.
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                }
            });
        }
        let bootstrap = layout.bootstrap();
        let mut service = Service::new(
            "the broker",
            child,
            layout.data_dir,
            layout.remove_data_dir,
            layout.log_file,
        );
        let mut answers = answers_metadata(&bootstrap)?;
        service.wait_ready(opts.startup_timeout, || answers().then_some(()))?;
        tracing::info!(%bootstrap, "broker at");
        Ok(JvmBroker { service, bootstrap })
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    pub fn data_dir(&self) -> &Path {
        self.service.data_dir()
    }

    /// The broker's process id.
    pub fn pid(&self) -> Option<u32> {
        self.service.pid()
    }

    /// SIGTERM, then waits up to 30 s for a clean shutdown (SIGKILL after that).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.service.stop()
    }
}

/// A broker's files, written before it starts: its data directory with `server.properties`, the
/// log4j configuration and the KRaft log directory. The JVM broker and the container broker both
/// run from them.
pub(crate) struct Layout {
    /// The client listener, its port chosen.
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `data_dir` is temporary: removed on stop.
    pub remove_data_dir: bool,
    pub props: PathBuf,
    pub log4j: PathBuf,
    pub log_file: PathBuf,
    /// Kept from an earlier format of the same directory, else `opts.cluster_id` or a random one.
    pub cluster_id: String,
}

impl Layout {
    pub fn prepare(opts: &BrokerOptions) -> anyhow::Result<Self> {
        let mut listen = opts.listen;
        let [client_port, controller_port] = free_ports::<2>()?;
        if listen.port() == 0 {
            listen.set_port(client_port);
        }
        let (data_dir, remove_data_dir) = match &opts.data_dir {
            Some(d) => (d.clone(), false),
            None => (scratch_dir("atenex-broker")?, true),
        };
        let log_dir = data_dir.join("kraft-logs");
        fs::create_dir_all(&log_dir)?;
        let props = data_dir.join("server.properties");
        fs::write(&props, server_properties(listen, controller_port, &log_dir))?;
        let log_file = data_dir.join("server.log");
        let log4j = data_dir.join("log4j2.properties");
        fs::write(&log4j, log4j_properties(&log_file))?;
        // A kept data directory is formatted already: its cluster id must be used again (the
        // format step refuses another one).
        let formatted = fs::read_to_string(log_dir.join("meta.properties"))
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("cluster.id=").map(|v| v.trim().to_owned()))
            });
        let cluster_id = opts.cluster_id.clone().or(formatted).unwrap_or_else(|| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
        });
        Ok(Self {
            listen,
            data_dir,
            remove_data_dir,
            props,
            log4j,
            log_file,
            cluster_id,
        })
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("kraft-logs")
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.listen.ip(), self.listen.port())
    }
}

/// A probe: true once the broker at `bootstrap` answers a metadata request naming a broker.
pub(crate) fn answers_metadata(bootstrap: &str) -> anyhow::Result<impl FnMut() -> bool + use<>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let client: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create()?;
    Ok(move || {
        client
            .fetch_metadata(None, Duration::from_secs(1))
            .is_ok_and(|md| !md.brokers().is_empty())
    })
}

/// The broker JVM's options: [`atenex_jvm::process::jvm_args`] and the log4j configuration.
pub(crate) fn jvm_args(heap: &str, log4j: &Path) -> Vec<String> {
    let mut args = atenex_jvm::process::jvm_args(heap);
    args.push(format!("-Dlog4j2.configurationFile={}", log4j.display()));
    args
}

fn server_properties(listen: SocketAddr, controller_port: u16, log_dir: &Path) -> String {
    let host = listen.ip();
    let port = listen.port();
    format!(
        "# Written by atenex broker: single-node KRaft, broker and controller in one process.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={}
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Tests run analytics instances with lease session timeouts down to 1 s (the default minimum is 6 s).
group.min.session.timeout.ms=1000
auto.create.topics.enable=true
# Replays carry their recorded timestamps, often older than the default 7-day retention, which
# would delete them 30 s after start: keep everything.
log.retention.ms=-1
",
        log_dir.display()
    )
}

fn log4j_properties(log_file: &Path) -> String {
    format!(
        "status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [kafka] %p %m%n
appender.err.filter.threshold.type = ThresholdFilter
appender.err.filter.threshold.level = error
rootLogger.level = info
rootLogger.appenderRefs = file, err
rootLogger.appenderRef.file.ref = FILE
rootLogger.appenderRef.err.ref = STDERR
# The line \"Kafka Server started\" goes to stdout too: a container's wait strategy reads it there.
appender.out.type = Console
appender.out.name = STDOUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [kafka] %p %m%n
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
logger.started.appenderRef.out.ref = STDOUT
",
        log_file.display()
    )
}

/// librdkafka's in-process mock cluster (`rdkafka::mocking::MockCluster`).
pub struct EmbeddedBroker {
    cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
}

impl EmbeddedBroker {
    pub fn start(brokers: i32) -> anyhow::Result<Self> {
        let cluster = rdkafka::mocking::MockCluster::new(brokers)
            .context("cannot start librdkafka's mock cluster")?;
        Ok(Self { cluster })
    }

    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    pub fn cluster(
        &self,
    ) -> &rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
        &self.cluster
    }
}
