//! The HDFS landing sink, Kafka Connect HDFS compatible (work in progress, issue #4): the properties
//! file and its typed configuration, and the time-based partitioner's paths.

pub mod config;
pub mod partitioner;
pub mod path_format;
pub mod properties;
