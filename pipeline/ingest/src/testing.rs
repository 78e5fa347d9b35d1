//! The S3 server of the tests: moto's server (PyPI `moto[server]`, [`MOTO_VERSION`], installed by
//! the test command into `$ATENEX_CACHE_DIR/moto-<version>`; `ATENEX_MOTO_SERVER` names another
//! `moto_server`), on a free loopback port. [`shared`] is started once per test binary and stops
//! with it; [`S3Server::start`] gives a test a server of its own (to stop it mid-test). Tests use
//! unique bucket names ([`S3Server::bucket`]) and give the server's settings to
//! [`Storage::open_with`](crate::storage::Storage::open_with) ([`S3Server::options`]) or to a
//! process's environment ([`S3Server::env`]), never to the test binary's own environment.

use anyhow::Context as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The moto release the tests run (≥ 5.2.1: 5.2.0 answered a conditional put with 500, not 412).
pub const MOTO_VERSION: &str = "5.2.6";

/// A `moto_server` to run instead of the installed one.
pub const MOTO_ENV: &str = "ATENEX_MOTO_SERVER";

/// The credentials the tests sign with (moto takes any).
pub const ACCESS_KEY: &str = "atenex-test";
pub const SECRET_KEY: &str = "atenex-test-secret";
pub const REGION: &str = "us-east-1";

/// A running moto server; stopped on drop.
pub struct S3Server {
    endpoint: String,
    addr: SocketAddr,
    child: Option<Child>,
}

fn moto_server() -> PathBuf {
    if let Some(p) = std::env::var_os(MOTO_ENV) {
        return PathBuf::from(p);
    }
    atenex_jvm::maven::default_cache_dir()
        .join(format!("moto-{MOTO_VERSION}"))
        .join("bin/moto_server")
}

impl S3Server {
    /// Starts a server of its own on a free loopback port and waits until it answers.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with moto's settings in `env`: with
    /// `INITIAL_NO_AUTH_ACTION_COUNT=2` it checks every request's credentials after the first
    /// two (the readiness check and one [`bucket`](Self::bucket)), and knows none: any key is
    /// refused (`InvalidAccessKeyId`).
    pub fn start_with(env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let server = moto_server();
        anyhow::ensure!(
            server.exists(),
            "{} is missing: the test command installs moto[server]=={MOTO_VERSION} there (ci/test), or set {MOTO_ENV}",
            server.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = Command::new(&server);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .envs(env.iter().copied());
        atenex_jvm::process::die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", server.display()))?;
        let mut s = Self {
            endpoint: format!("http://{addr}"),
            addr,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while s.request("GET", "/").is_err() {
            if let Some(status) = s.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                anyhow::bail!("{} exited at start: {status}", server.display());
            }
            anyhow::ensure!(Instant::now() < deadline, "moto did not answer within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(s)
    }

    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stops it now (SIGTERM): what follows finds no S3 at its address.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = atenex_jvm::process::stop(child, Duration::from_secs(10), "moto");
        }
    }

    /// The settings that point object_store at it, for
    /// [`Storage::open_with`](crate::storage::Storage::open_with).
    pub fn options(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_region", REGION),
            ("aws_access_key_id", ACCESS_KEY),
            ("aws_secret_access_key", SECRET_KEY),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// The same as the environment of a process (the AWS variables `atenex` reads).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// A new bucket with a name no other test uses (`prefix-<pid>-<n>`); its name.
    pub fn bucket(&self, prefix: &str) -> anyhow::Result<String> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let status = self.request("PUT", &format!("/{name}"))?;
        anyhow::ensure!(status == 200, "creating bucket {name}: HTTP {status}");
        Ok(name)
    }

    /// Whether an object exists, and its bytes: a signed GET (moto refuses an unsigned one for
    /// an object stored with a single PUT), on a thread of its own so that a test on a Tokio
    /// runtime can call it.
    pub fn object(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        use object_store::ObjectStoreExt as _;
        let mut builder = object_store::aws::AmazonS3Builder::new().with_bucket_name(bucket);
        for (k, v) in self.options() {
            builder = builder.with_config(k.parse()?, v);
        }
        let store = builder.build()?;
        let path = object_store::path::Path::from(key);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        match store.get(&path).await {
                            Ok(got) => Ok(Some(got.bytes().await?.to_vec())),
                            Err(object_store::Error::NotFound { .. }) => Ok(None),
                            Err(e) => Err(anyhow::Error::from(e)
                                .context(format!("reading s3://{bucket}/{key}"))),
                        }
                    })
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the reading thread panicked"))?
        })
    }

    /// The keys in `bucket` (the first 1,000), from an unsigned listing.
    pub fn keys(&self, bucket: &str) -> anyhow::Result<Vec<String>> {
        let (status, body) = self.call("GET", &format!("/{bucket}?list-type=2"))?;
        anyhow::ensure!(status == 200, "listing {bucket}: HTTP {status}");
        let body = String::from_utf8_lossy(&body);
        Ok(body
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_owned()))
            .collect())
    }

    fn request(&self, method: &str, path: &str) -> anyhow::Result<u16> {
        Ok(self.call(method, path)?.0)
    }

    /// One HTTP/1.0 request without a body; the status and the body.
    fn call(&self, method: &str, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
            self.addr
        )?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        let end = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no HTTP header")?;
        let head = String::from_utf8_lossy(&answer[..end]);
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no HTTP status")?;
        Ok((status, answer[end + 4..].to_vec()))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server this test binary shares, started on first use on a thread of its own (a child
/// started with `die_with_parent` stops when the thread that spawned it ends, and a test's
/// thread ends with the test).
pub fn shared() -> &'static S3Server {
    static SHARED: OnceLock<S3Server> = OnceLock::new();
    SHARED.get_or_init(|| {
        let endpoint = atenex_jvm::process::keep_forever("atenex-test-s3", || {
            let s = S3Server::start()?;
            Ok((s.endpoint.clone(), Box::new(s)))
        })
        .unwrap_or_else(|e| panic!("cannot start the test S3: {e:#}"));
        eprintln!("test S3: moto {MOTO_VERSION} at {endpoint}");
        let addr = endpoint
            .trim_start_matches("http://")
            .parse()
            .expect("an address we wrote");
        S3Server {
            endpoint,
            addr,
            child: None,
        }
    })
}
