//! HDFS for the Atenex pipeline.
//!
//! - [`url`]: `hdfs://host:port/base` split into the name node and a base path.
//! - [`blocking`]: the `hdfs-native` client (pure Rust, no JVM, no libhdfs) behind blocking calls
//!   that work from any thread, inside or outside a Tokio runtime.
//! - [`object_store`]: HDFS as an `object_store::ObjectStore`, for DataFusion queries over
//!   `hdfs://` URLs.
//! - [`minidfs`]: Apache Hadoop's MiniDFSCluster (one NameNode, two DataNodes, one JVM) from Maven
//!   Central, for `atenex hdfs`, the simulator's broker driver and the tests; [`testing`] shares
//!   one per test binary.

pub mod blocking;
pub mod minidfs;
pub mod object_store;
pub mod testing;
pub mod url;

pub use blocking::Hdfs;
pub use url::HdfsUrl;
