//! Streaming analytics: chunks per company in event-time windows (the seed's Flink job, done
//! right). See docs/analytics.md.
//!
//! - [`core`]: the window core, pure and deterministic;
//! - [`decode`]: `embeddings.ready` values and recorded-stream lines to [`core::Event`]s, without
//!   parsing the vectors;
//! - [`output`]: the JSON written for windows (`analytics.flink`) and late records (`analytics.late`);
//! - [`task`]: the job as a sans-IO task (assignment and restore from committed offsets, records
//!   and processing time, dead letters, what each transaction commits) — driven by [`live`] and by
//!   the simulator's model driver alike;
//! - [`offline`]: the core over a recorded stream;
//! - [`role`]: which instance of a group counts (active/standby, fencing), sans-IO;
//! - [`lease`]: the lease group in Kafka that elects the active instance;
//! - [`live`]: the exactly-once Kafka job: I/O around the task and the role.

pub mod bench;
pub mod core;
pub mod decode;
pub mod lease;
pub mod live;
pub mod offline;
pub mod output;
pub mod role;
pub mod task;

pub use core::{
    Event, LateReason, LateRecord, Output, Settings, WatermarkMode, WindowCore, WindowResult,
};
