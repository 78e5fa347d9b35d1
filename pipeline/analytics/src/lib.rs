//! Streaming analytics: chunks per company in event-time windows (the seed's Flink job, done
//! right). See docs/analytics.md.
//!
//! - [`core`]: the window core, pure and deterministic;
//! - [`decode`]: `embeddings.ready` values and recorded-stream lines to [`core::Event`]s, without
//!   parsing the vectors;
//! - [`output`]: the JSON written for windows (`analytics.flink`) and late records (`analytics.late`);
//! - [`offline`]: the core over a recorded stream;
//! - [`live`]: the exactly-once Kafka job.

pub mod bench;
pub mod core;
pub mod decode;
pub mod live;
pub mod offline;
pub mod output;

pub use core::{
    Event, LateReason, LateRecord, Output, Settings, WatermarkMode, WindowCore, WindowResult,
};
