//! The HDFS landing sink, Kafka Connect HDFS compatible. See docs/landing.md.
//!
//! - [`properties`], [`config`]: the properties file and its checked configuration;
//! - [`path_format`], [`partitioner`]: Joda `path.format` and Connect's partitioners;
//! - [`writer`]: one Kafka partition's writer (rotation and commits), pure;
//! - [`log`], [`recovery`]: the commit log and recovery, pure;
//! - [`fs`]: local disk and the in-memory filesystem with crash semantics;
//! - [`sink`]: drives writers over a filesystem;
//! - [`task`]: the job as a task over a filesystem (recovery on assignment, placement,
//!   `errors.tolerance`, ticks, revocation) — driven by [`live`] and by the simulator's model
//!   driver alike;
//! - [`offline`]: lands a recorded stream;
//! - [`live`]: the consumer-group job: I/O around the task.

pub mod config;
pub mod fs;
pub mod live;
pub mod log;
pub mod offline;
pub mod partitioner;
pub mod path_format;
pub mod properties;
pub mod recovery;
pub mod sink;
pub mod task;
pub mod writer;
