//! The Kafka backbone of the Atenex pipeline (adapters around rdkafka):
//!
//! - [`config`]: client configuration from `KAFKA_*` environment variables;
//! - [`producer`]: the idempotent producer (`acks=all`);
//! - [`consumer`]: the consumer-group loop that commits only after the caller's effects are durable;
//! - [`dead_letter`]: routing of bad records to `<topic>.dlq` with the reason in headers;
//! - [`admin`]: `atenex topics create` and the topics a replay needs;
//! - [`record`] and [`replay`]: recorded streams (kcat `-J` envelope) to and from Kafka;
//! - [`broker`]: a real Apache Kafka (JVM, KRaft) for development and tests, and librdkafka's
//!   in-process mock cluster;
//! - `container` (feature `testcontainers`): the same broker in a container built here;
//! - [`testing`]: the broker a test binary shares;
//! - [`observe`] and [`shutdown`]: logs, metrics, `/health`, signals;
//! - [`clock`] and [`progress`]: processing time and handled positions, which the simulator's broker
//!   driver controls and watches.

pub mod admin;
pub mod broker;
pub mod clock;
pub mod config;
pub mod consumer;
#[cfg(feature = "testcontainers")]
pub mod container;
pub mod dead_letter;
pub mod observe;
pub mod producer;
pub mod progress;
pub mod record;
pub mod replay;
pub mod shutdown;
pub mod testing;

pub use clock::Clock;
pub use config::KafkaConfig;
pub use consumer::{GroupConsumer, GroupSettings, Record, StartFrom};
pub use dead_letter::DeadLetters;
pub use producer::{OutRecord, Producer};
pub use progress::Progress;

/// Runs a blocking librdkafka call (metadata, commit) without stalling other tasks on a
/// multi-threaded runtime; on a current-thread runtime it simply blocks.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
