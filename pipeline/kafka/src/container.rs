//! The test broker in a container (feature `testcontainers`): the same single-node KRaft broker
//! as [`crate::broker::JvmBroker`] — the same `server.properties`, written by the same code — run
//! from the image [`image`] builds on this machine, started through testcontainers.
//!
//! Loopback only: the container shares the host's network (`--network host`, the engine runs with
//! `--bridge=none`) and the broker listens on 127.0.0.1, on ports chosen free as for the JVM broker.
//! Its data directory is a host directory bind-mounted at the same path, so that a restarted
//! container finds its log and its `server.log` can be read from here. The broker runs as the
//! calling user, so everything it writes there is ours to remove.
//!
//! Containers never outlive their test process for long: one still running when the process exits
//! is removed at exit (`atexit`), and one left by a process that died (SIGKILL) is removed by the
//! next start of a container broker.

pub mod image;

use crate::broker::{BrokerOptions, Layout, answers_metadata, jvm_args};
use anyhow::{Context as _, bail};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Mutex, Once};
use std::time::Duration;
use testcontainers::core::{Mount, WaitFor};
use testcontainers::runners::SyncRunner as _;
use testcontainers::{Container, GenericImage, ImageExt as _};

/// The label naming the process that started a container (`<pid>`), for the sweep.
pub const OWNER_LABEL: &str = "org.atenex.kafka-owner";
/// The log line the wait strategy waits for on the container's stdout.
pub const STARTED: &str = "Kafka Server started";

/// A single-node KRaft broker in a container. Removed on drop.
pub struct ContainerBroker {
    container: Option<Container<GenericImage>>,
    id: String,
    image: String,
    bootstrap: String,
    data_dir: PathBuf,
    remove_data_dir: bool,
    log_file: PathBuf,
    startup_timeout: Duration,
}

impl ContainerBroker {
    /// Checks the engine, builds the image if needed, writes the broker's files, starts the
    /// container and waits for [`STARTED`] on its stdout and then for a metadata answer.
    pub fn start(opts: &BrokerOptions) -> anyhow::Result<Self> {
        let version = engine()?;
        sweep();
        let ensured = image::ensure(&opts.cache_dir)?;
        if ensured.built {
            eprintln!(
                "container broker: built {} in {:.1} s",
                ensured.reference,
                ensured.took.as_secs_f64()
            );
        }
        let layout = Layout::prepare(opts)?;
        let (name, tag) = ensured.reference.split_once(':').expect("repository:tag");
        let data = layout.data_dir.to_string_lossy().into_owned();
        let mut cmd = vec![
            layout.props.to_string_lossy().into_owned(),
            // `kafka-start` passes it as `--cluster-id=<id>`: an id starting with `-` is safe.
            layout.cluster_id.clone(),
        ];
        cmd.extend(jvm_args(&opts.heap, &layout.log4j));
        let user = format!(
            "{}:{}",
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw()
        );
        let request = GenericImage::new(name, tag)
            .with_wait_for(WaitFor::message_on_stdout(STARTED))
            .with_network("host")
            .with_mount(Mount::bind_mount(data.clone(), data))
            .with_user(user)
            .with_cmd(cmd)
            .with_label(OWNER_LABEL, std::process::id().to_string())
            .with_startup_timeout(opts.startup_timeout);
        let container = off_runtime(|| request.start()).map_err(|e| {
            anyhow::anyhow!(
                "the Kafka container ({}) did not start: {e}; last lines of {}:\n{}",
                ensured.reference,
                layout.log_file.display(),
                atenex_jvm::process::tail(&layout.log_file, 30)
            )
        })?;
        let id = container.id().to_owned();
        live().lock().expect("not poisoned").push(id.clone());
        let broker = Self {
            container: Some(container),
            id,
            image: ensured.reference,
            bootstrap: layout.bootstrap(),
            data_dir: layout.data_dir,
            remove_data_dir: layout.remove_data_dir,
            log_file: layout.log_file,
            startup_timeout: opts.startup_timeout,
        };
        broker.wait_answering()?;
        tracing::info!(bootstrap = %broker.bootstrap, container = %broker.id, engine = %version, "broker in a container at");
        Ok(broker)
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The image reference it runs (`atenex/kafka:<tag>`).
    pub fn image(&self) -> &str {
        &self.image
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Restarts the container: `docker stop` (SIGTERM to the broker, a clean shutdown; SIGKILL
    /// after 30 s), `docker start` of the same container, then waits for a metadata answer. The
    /// log is kept (the data directory is the host's) and the address is the same.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let container = self.container.as_ref().context("the broker was stopped")?;
        off_runtime(|| -> anyhow::Result<()> {
            container.stop_with_timeout(Some(30))?;
            container.start()?;
            Ok(())
        })
        .with_context(|| format!("restarting the Kafka container {}", self.id))?;
        self.wait_answering()
    }

    /// Removes the container (and a temporary data directory).
    pub fn stop(&mut self) {
        if let Some(container) = self.container.take() {
            // Its drop removes it, blocking on its own runtime: not from a runtime thread.
            off_runtime(move || drop(container));
            live()
                .lock()
                .expect("not poisoned")
                .retain(|i| i != &self.id);
        }
        if self.remove_data_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }

    /// Waits, up to the start-up timeout, for a metadata answer; fails if the container stops.
    fn wait_answering(&self) -> anyhow::Result<()> {
        let mut answers = answers_metadata(&self.bootstrap)?;
        let container = self.container.as_ref().context("the broker was stopped")?;
        atenex_jvm::process::poll_ready(
            &format!("the Kafka container {}", self.id),
            &self.log_file,
            self.startup_timeout,
            || Ok((!off_runtime(|| container.is_running())?).then(|| "stopped".to_owned())),
            || answers().then_some(()),
        )
    }
}

impl Drop for ContainerBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The engine's version, or why no engine answers (naming the fix).
pub fn engine() -> anyhow::Result<String> {
    let out = docker()
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map_err(no_client)?;
    if !out.status.success() {
        bail!(
            "no Docker engine answers at {} ({}). ci/test starts one (Debian's docker.io, as root); \
             see docs/testing.md, \"Kafka in a container\"",
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into()),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The `docker` client; it reads `DOCKER_HOST` as testcontainers does.
fn docker() -> std::process::Command {
    std::process::Command::new("docker")
}

fn no_client(e: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot run the `docker` client: {e}. The container broker needs it (Debian: apt-get install docker.io)"
    )
}

/// Removes the container brokers whose owner process is gone.
fn sweep() {
    let Ok(out) = docker()
        .args(["ps", "-a", "--filter", &format!("label={OWNER_LABEL}")])
        .args([
            "--format",
            &format!("{{{{.ID}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}"),
        ])
        .output()
    else {
        return;
    };
    let dead: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, pid)| {
            !pid.parse::<u32>()
                .is_ok_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        })
        .map(|(id, _)| id.to_owned())
        .collect();
    if !dead.is_empty() {
        eprintln!(
            "container broker: removing {} container(s) left by dead processes",
            dead.len()
        );
        remove(&dead);
    }
}

/// The containers this process started and has not removed; removed at exit.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[allow(unsafe_code)]
fn live() -> &'static Mutex<Vec<String>> {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: atexit only records the function; `remove_live` has C linkage, takes no lock it
        // could wait on (try_lock) and does not unwind.
        unsafe {
            libc::atexit(remove_live);
        }
    });
    &LIVE
}

extern "C" fn remove_live() {
    if let Ok(ids) = LIVE.try_lock()
        && !ids.is_empty()
    {
        remove(&ids);
    }
}

fn remove(ids: &[String]) {
    let _ = docker()
        .args(["rm", "-f", "-v"])
        .args(ids)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs `f` on a thread of its own: testcontainers' blocking calls start (and its containers'
/// drops block on) a runtime of their own, which a tokio runtime thread must not do.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
