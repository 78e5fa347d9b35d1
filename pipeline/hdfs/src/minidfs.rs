//! A real HDFS for development and tests: Apache Hadoop's `MiniDFSCluster` (one NameNode and two
//! DataNodes in one JVM) from `org.apache.hadoop:hadoop-client-minicluster` on Maven Central,
//! resolved once into the cache (`ci/hdfs/pom.xml`, embedded here), with a short Java main
//! (`ci/hdfs/MiniDfs.java`, embedded, compiled once with `javac` into the cache).

use anyhow::{Context as _, bail};
use atenex_jvm::maven::{Artifacts, default_cache_dir, ensure_jars, publish};
use atenex_jvm::process::{Service, die_with_parent, jvm_args, scratch_dir};
use std::fs;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The Hadoop version `atenex hdfs` runs.
pub const HADOOP_VERSION: &str = "3.5.0";
const POM: &str = include_str!("../../../ci/hdfs/pom.xml");
const MAIN: &str = include_str!("../../../ci/hdfs/MiniDfs.java");

#[derive(Debug, Clone)]
pub struct MiniDfsOptions {
    /// Name node RPC port; 0 lets the cluster pick a free one.
    pub port: u16,
    /// Where the cluster keeps its blocks and metadata; `None`: a temporary directory removed on
    /// stop. The cluster is formatted on every start.
    pub data_dir: Option<PathBuf>,
    /// Where the jars and the compiled main are cached.
    pub cache_dir: PathBuf,
    /// JVM maximum heap (`-Xmx`).
    pub heap: String,
    pub startup_timeout: Duration,
}

impl Default for MiniDfsOptions {
    fn default() -> Self {
        Self {
            port: 0,
            data_dir: None,
            cache_dir: default_cache_dir(),
            heap: "512m".to_owned(),
            startup_timeout: Duration::from_secs(120),
        }
    }
}

/// The classpath (`<jars>/*:<classes>`), resolving the jars and compiling the main on first use.
pub fn ensure_classpath(cache_dir: &Path) -> anyhow::Result<String> {
    let name = format!("hadoop-{HADOOP_VERSION}");
    let libs = ensure_jars(
        cache_dir,
        Artifacts {
            name: &name,
            pom: POM,
            what: &format!(
                "Apache Hadoop {HADOOP_VERSION} MiniDFSCluster (org.apache.hadoop:hadoop-client-minicluster)"
            ),
        },
    )?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    MAIN.hash(&mut h);
    let classes = cache_dir
        .join(&name)
        .join(format!("classes-{:016x}", h.finish()));
    if !classes.join(".complete").exists() {
        let staging = cache_dir
            .join(&name)
            .join(format!("classes.tmp.{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging)?;
        let source = staging.join("MiniDfs.java");
        fs::write(&source, MAIN)?;
        let out = Command::new("javac")
            .args(["-nowarn", "-cp"])
            .arg(format!("{}/*", libs.display()))
            .arg("-d")
            .arg(&staging)
            .arg(&source)
            .output()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot run `javac`: {e}. The test HDFS needs a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless)"
                )
            })?;
        if !out.status.success() {
            bail!(
                "javac MiniDfs.java failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        fs::write(staging.join(".complete"), "")?;
        publish(&staging, &classes)?;
    }
    Ok(format!("{}/*:{}", libs.display(), classes.display()))
}

/// A running MiniDFSCluster (a child JVM). Stopped on drop.
pub struct MiniDfs {
    service: Service,
    url: String,
}

impl MiniDfs {
    /// Fetches the jars if needed, starts the JVM and waits until the DataNodes have registered.
    pub fn start(opts: &MiniDfsOptions) -> anyhow::Result<Self> {
        let classpath = ensure_classpath(&opts.cache_dir)?;
        let (data_dir, remove_data_dir) = match &opts.data_dir {
            Some(d) => (d.clone(), false),
            None => (scratch_dir("atenex-minidfs")?, true),
        };
        fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let ready = data_dir.join("ready");
        let _ = fs::remove_file(&ready);
        let log_file = data_dir.join("minidfs.log");
        let log = fs::File::create(&log_file)?;
        let mut cmd = Command::new("java");
        cmd.args(jvm_args(&opts.heap))
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=info")
            .arg(format!(
                "-Dorg.slf4j.simpleLogger.logFile={}",
                log_file.display()
            ))
            .args(["-cp", &classpath, "MiniDfs"])
            .arg(data_dir.join("cluster"))
            .arg(opts.port.to_string())
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|e| {
            anyhow::anyhow!(
                "cannot start `java`: {e}. The test HDFS needs Java 17+ (Debian: apt-get install openjdk-17-jdk-headless)"
            )
        })?;
        let mut service = Service::new(
            "the MiniDFSCluster",
            child,
            data_dir,
            remove_data_dir,
            log_file,
        );
        let url = service.wait_ready(opts.startup_timeout, || {
            fs::read_to_string(&ready).ok().map(|u| u.trim().to_owned())
        })?;
        tracing::info!(%url, "MiniDFSCluster at");
        Ok(Self { service, url })
    }

    /// `hdfs://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn data_dir(&self) -> &Path {
        self.service.data_dir()
    }

    pub fn pid(&self) -> Option<u32> {
        self.service.pid()
    }

    /// SIGTERM (the JVM shuts the cluster down), SIGKILL after 30 s.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.service.stop()
    }
}
