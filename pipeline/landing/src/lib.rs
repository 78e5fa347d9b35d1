//! The HDFS landing sink, Kafka Connect HDFS compatible (work in progress, issue #4).
//!
//! - [`properties`], [`config`]: the properties file and its checked configuration;
//! - [`path_format`], [`partitioner`]: Joda `path.format` and Connect's partitioners;
//! - [`writer`]: one Kafka partition's writer (rotation and commits), pure;
//! - [`log`], [`recovery`]: the commit log and recovery, pure;
//! - [`fs`]: local disk and the in-memory filesystem with crash semantics;
//! - [`sink`]: drives writers over a filesystem;
//! - [`offline`]: lands a recorded stream;
//! - [`live`]: the consumer-group job.

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
pub mod writer;
