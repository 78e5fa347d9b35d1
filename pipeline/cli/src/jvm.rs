//! Options shared by the commands that run a Java service (`atenex broker`, `atenex hdfs`).

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct JvmArgs {
    /// Where the service's jars are cached [default: $ATENEX_CACHE_DIR, else ~/.cache/atenex].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// JVM maximum heap (-Xmx).
    #[arg(long, value_name = "SIZE", default_value = "512m")]
    pub heap: String,

    /// How long to wait for the service to come up.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = crate::parse::duration::<1, 86_400>)]
    pub startup_timeout: Duration,
}

impl JvmArgs {
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(atenex_jvm::maven::default_cache_dir)
    }
}
