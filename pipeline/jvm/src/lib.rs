//! The JVM side of our test harness: the real Apache Kafka broker and the real HDFS
//! (MiniDFSCluster) run from Maven Central jars, resolved once with Maven into a cache directory
//! outside the checkout ([`maven`]), and started as child processes that never outlive us
//! ([`process`]).

pub mod maven;
pub mod process;
