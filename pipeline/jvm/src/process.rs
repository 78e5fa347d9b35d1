//! Child JVMs that never outlive us, free ports, scratch directories.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(free_ports::<1>()?[0])
}

/// `N` distinct free TCP ports on 127.0.0.1 (held open together while chosen, so that the
/// system cannot hand out the same one twice).
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0u16; N];
    for (p, l) in ports.iter_mut().zip(&listeners) {
        *p = l.local_addr()?.port();
    }
    Ok(ports)
}

/// JVM options for a small, quick-starting service JVM with heap `heap` (e.g. `512m`).
pub fn jvm_args(heap: &str) -> Vec<String> {
    vec![
        "-Xms64m".to_owned(),
        format!("-Xmx{heap}"),
        "-XX:+UseSerialGC".to_owned(),
        "-XX:TieredStopAtLevel=1".to_owned(),
        "-XX:-UsePerfData".to_owned(),
        "-Djava.awt.headless=true".to_owned(),
    ]
}

/// The last `n` lines of a log file (empty if it cannot be read).
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A temporary directory `<tmp>/<prefix>-<pid>-<random>`; directories with this prefix left by
/// dead processes are swept.
pub fn scratch_dir(prefix: &str) -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    let lead = format!("{prefix}-");
    if let Ok(entries) = fs::read_dir(&base) {
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(&lead))
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The child gets SIGTERM when the thread that spawned it ends (Linux `PR_SET_PDEATHSIG`), so a
/// test binary that exits, or an `atenex broker` that is killed, never leaves a JVM behind.
#[allow(unsafe_code)]
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing and touches no locks.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// SIGTERM, then up to `grace` for the child to exit (SIGKILL after that).
pub fn stop(mut child: Child, grace: Duration, what: &str) -> std::io::Result<()> {
    terminate(&child);
    let deadline = Instant::now() + grace;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            tracing::warn!("{what} did not stop within {grace:?}; killing it");
            let _ = child.kill();
            let _ = child.wait();
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[allow(unsafe_code)]
fn terminate(child: &Child) {
    // SAFETY: kill(2) on our own child's pid; no memory is touched.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

/// Runs `start` on a thread that lives as long as the process and keeps what it returns there:
/// a JVM is tied to the thread that spawned it (it gets SIGTERM when that thread ends), and the
/// test binary's exit ends it. Returns the address `start` reported.
pub fn keep_forever(
    thread_name: &str,
    start: impl FnOnce() -> anyhow::Result<(String, Box<dyn std::any::Any>)> + Send + 'static,
) -> anyhow::Result<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(thread_name.to_owned())
        .spawn(move || match start() {
            Ok((address, keep)) => {
                let _ = tx.send(Ok(address));
                let _keep = keep;
                loop {
                    std::thread::park();
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        })?;
    rx.recv()?
}

/// Polls `ready` every 100 ms until it gives a value, for a service `what` logging to `log_file`
/// (a child process, a container). Fails, with the log's last lines, once `exited` says how the
/// service ended, or when `timeout` passes first.
pub fn poll_ready<T>(
    what: &str,
    log_file: &Path,
    timeout: Duration,
    mut exited: impl FnMut() -> anyhow::Result<Option<String>>,
    mut ready: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let started = Instant::now();
    loop {
        if let Some(how) = exited()? {
            anyhow::bail!(
                "{what} exited during start-up ({how}); last lines of {}:\n{}",
                log_file.display(),
                tail(log_file, 30)
            );
        }
        if let Some(v) = ready() {
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "{what} ready"
            );
            return Ok(v);
        }
        if started.elapsed() > timeout {
            anyhow::bail!(
                "{what} was not ready within {timeout:?}; last lines of {}:\n{}",
                log_file.display(),
                tail(log_file, 30)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child JVM running a service (a broker, a cluster) with its data directory and log file:
/// waits for it to become ready, stops it with SIGTERM (SIGKILL after 30 s), removes a temporary
/// data directory. Stopped on drop.
pub struct Service {
    what: &'static str,
    child: Option<Child>,
    data_dir: PathBuf,
    remove_data_dir: bool,
    log_file: PathBuf,
}

impl Service {
    /// `child` was spawned with [`die_with_parent`]; `remove_data_dir`: `data_dir` is temporary.
    pub fn new(
        what: &'static str,
        child: Child,
        data_dir: PathBuf,
        remove_data_dir: bool,
        log_file: PathBuf,
    ) -> Self {
        Self {
            what,
            child: Some(child),
            data_dir,
            remove_data_dir,
            log_file,
        }
    }

    /// Polls `ready` every 100 ms until it gives a value; fails, with the log's last lines, if the
    /// process exits or `timeout` passes first.
    pub fn wait_ready<T>(
        &mut self,
        timeout: Duration,
        ready: impl FnMut() -> Option<T>,
    ) -> anyhow::Result<T> {
        let child = &mut self.child;
        poll_ready(
            self.what,
            &self.log_file,
            timeout,
            || {
                Ok(match child {
                    Some(c) => c.try_wait()?.map(|status| status.to_string()),
                    None => None,
                })
            },
            ready,
        )
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, then up to 30 s for a clean shutdown (SIGKILL after that).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.take() {
            stop(child, Duration::from_secs(30), self.what)?;
        }
        if self.remove_data_dir {
            let _ = fs::remove_dir_all(&self.data_dir);
        }
        Ok(())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
