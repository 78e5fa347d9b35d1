//! The Kafka every test binary shares: started once on first use, stopped when the binary exits.
//! Tests use unique topic and group names ([`unique`]) so they can share it.
//!
//! Which Kafka, by environment:
//! - default: a real Apache Kafka broker (JVM, [`crate::broker::JvmBroker`]) on a free port;
//! - `KAFKA_BOOTSTRAP_SERVERS=host:port`: an external cluster, used as it is;
//! - `ATENEX_KAFKA=embedded`: librdkafka's mock cluster (no JDK needed; adapter tests only);
//! - `ATENEX_KAFKA=testcontainers`: the same broker in a container, from an image built on this
//!   machine, started through testcontainers (tests built with the `testcontainers` feature and a
//!   Docker engine; `atenex_kafka::container`, docs/testing.md).

use crate::broker::{BrokerOptions, EmbeddedBroker, JvmBroker};
use crate::config::KafkaConfig;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Selects the test Kafka (`jvm`, `embedded`, `testcontainers`, `external`).
pub const SELECT_ENV: &str = "ATENEX_KAFKA";

/// The bootstrap address of this test binary's Kafka, starting it on first call.
pub fn bootstrap() -> &'static str {
    static BOOTSTRAP: OnceLock<String> = OnceLock::new();
    BOOTSTRAP
        .get_or_init(|| start().unwrap_or_else(|e| panic!("cannot start the test Kafka: {e:#}")))
}

/// A client configuration for the test Kafka (nothing from the environment but the address).
pub fn config() -> KafkaConfig {
    KafkaConfig::from_vars(Vec::new()).with_bootstrap(Some(bootstrap()))
}

/// A name no other test (or earlier run) uses: `prefix-<pid>-<n>-<random>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    )
}

fn start() -> anyhow::Result<String> {
    let select = std::env::var(SELECT_ENV).unwrap_or_default();
    let external = std::env::var(crate::config::BOOTSTRAP_ENV).ok();
    match (select.as_str(), external) {
        ("" | "external", Some(servers)) => {
            eprintln!("test Kafka: external cluster at {servers}");
            Ok(servers)
        }
        ("external", None) => anyhow::bail!("ATENEX_KAFKA=external needs KAFKA_BOOTSTRAP_SERVERS"),
        ("" | "jvm", _) => keep_forever(|| {
            let opts = loopback_options();
            // A port chosen free can be taken by someone else before the JVM binds it: one retry.
            let b = match JvmBroker::start(&opts) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("test Kafka: first start failed ({e:#}); retrying once");
                    JvmBroker::start(&opts)?
                }
            };
            eprintln!(
                "test Kafka: Apache Kafka {} at {} (pid {:?})",
                crate::broker::KAFKA_VERSION,
                b.bootstrap(),
                b.pid()
            );
            Ok((b.bootstrap().to_owned(), Box::new(b)))
        }),
        ("embedded", _) => keep_forever(|| {
            let b = EmbeddedBroker::start(1)?;
            eprintln!("test Kafka: librdkafka mock cluster at {}", b.bootstrap());
            Ok((b.bootstrap(), Box::new(b)))
        }),
        ("testcontainers", _) => testcontainers(),
        (other, _) => {
            anyhow::bail!("ATENEX_KAFKA={other:?}: use jvm, embedded, testcontainers or external")
        }
    }
}

fn keep_forever(
    start: impl FnOnce() -> anyhow::Result<(String, Box<dyn std::any::Any>)> + Send + 'static,
) -> anyhow::Result<String> {
    atenex_jvm::process::keep_forever("atenex-test-kafka", start)
}

#[cfg(feature = "testcontainers")]
fn testcontainers() -> anyhow::Result<String> {
    keep_forever(|| {
        let b = crate::container::ContainerBroker::start(&loopback_options())?;
        eprintln!(
            "test Kafka: Apache Kafka {} in container {} ({}) at {}",
            crate::broker::KAFKA_VERSION,
            &b.id()[..12],
            b.image(),
            b.bootstrap()
        );
        Ok((b.bootstrap().to_owned(), Box::new(b)))
    })
}

#[cfg(not(feature = "testcontainers"))]
fn testcontainers() -> anyhow::Result<String> {
    anyhow::bail!("{NO_FEATURE}")
}

#[cfg(not(feature = "testcontainers"))]
const NO_FEATURE: &str = "ATENEX_KAFKA=testcontainers needs the tests built with the `testcontainers` feature and a Docker engine: \
     ATENEX_KAFKA=testcontainers cargo test --features atenex-kafka/testcontainers (docs/testing.md)";

/// A test broker's options: on 127.0.0.1, on a free port.
fn loopback_options() -> BrokerOptions {
    BrokerOptions {
        listen: "127.0.0.1:0".parse().expect("valid"),
        ..BrokerOptions::default()
    }
}

/// Whether this run's brokers are containers (`ATENEX_KAFKA=testcontainers`).
pub fn containers() -> bool {
    std::env::var(SELECT_ENV).as_deref() == Ok("testcontainers")
}

/// A broker of a test's own, for tests that restart it, of the kind the run's shared broker is: a
/// container with `ATENEX_KAFKA=testcontainers`, else a JVM. Its log lives in `data_dir`, which a
/// restart keeps, as does its address. Stopped on drop.
pub struct OwnBroker {
    bootstrap: String,
    kind: Own,
}

// One per test that restarts a broker: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Own {
    Jvm(JvmBroker, BrokerOptions),
    #[cfg(feature = "testcontainers")]
    Container(crate::container::ContainerBroker),
}

impl OwnBroker {
    pub fn start(data_dir: &std::path::Path) -> anyhow::Result<Self> {
        let mut opts = BrokerOptions {
            data_dir: Some(data_dir.to_owned()),
            ..loopback_options()
        };
        if containers() {
            #[cfg(feature = "testcontainers")]
            {
                let b = crate::container::ContainerBroker::start(&opts)?;
                return Ok(Self {
                    bootstrap: b.bootstrap().to_owned(),
                    kind: Own::Container(b),
                });
            }
            #[cfg(not(feature = "testcontainers"))]
            anyhow::bail!("{NO_FEATURE}");
        }
        let b = JvmBroker::start(&opts)?;
        opts.listen = b.bootstrap().parse()?;
        Ok(Self {
            bootstrap: b.bootstrap().to_owned(),
            kind: Own::Jvm(b, opts),
        })
    }

    /// `host:port` for `bootstrap.servers`; the same after a restart.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// A client configuration for this broker.
    pub fn config(&self) -> KafkaConfig {
        KafkaConfig::from_vars(Vec::new()).with_bootstrap(Some(&self.bootstrap))
    }

    /// `jvm` or `container`.
    pub fn kind(&self) -> &'static str {
        match &self.kind {
            Own::Jvm(..) => "jvm",
            #[cfg(feature = "testcontainers")]
            Own::Container(_) => "container",
        }
    }

    /// Stops the broker cleanly (SIGTERM) and starts it again on the same log and address: a new
    /// JVM, or the same container stopped and started.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        match &mut self.kind {
            Own::Jvm(b, opts) => {
                b.stop()?;
                *b = JvmBroker::start(opts)?;
                Ok(())
            }
            #[cfg(feature = "testcontainers")]
            Own::Container(b) => b.restart(),
        }
    }
}

/// Every record of `topics` on the test Kafka, from the beginning to the current end, as kcat
/// envelopes (no consumer group: nothing is committed).
pub async fn read_topics(topics: &[&str]) -> Vec<atenex_contracts::Envelope> {
    crate::record::read_all(&config(), topics)
        .await
        .unwrap_or_else(|e| panic!("cannot read {topics:?}: {e:#}"))
}

/// The value of header `name`, if the envelope has it.
pub fn header<'e>(envelope: &'e atenex_contracts::Envelope, name: &str) -> Option<&'e str> {
    envelope
        .headers
        .iter()
        .find(|h| h.name == name)
        .and_then(|h| h.value.as_deref())
}
