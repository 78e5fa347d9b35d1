//! Jars from Maven Central, resolved once per version into `<cache>/<name>/libs` by
//! `mvn dependency:copy-dependencies` over a pom that only names them.

use anyhow::{Context as _, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable naming the cache directory for jars (and compiled helper classes).
pub const CACHE_ENV: &str = "ATENEX_CACHE_DIR";

/// `$ATENEX_CACHE_DIR`, else `$XDG_CACHE_HOME/atenex`, else `~/.cache/atenex`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(CACHE_ENV) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("atenex");
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache").join("atenex")
}

/// What to resolve: `name` is the cache sub-directory (e.g. `kafka-4.4.0`), `pom` the text of a
/// pom whose dependencies are the jars, `what` names them in messages.
#[derive(Debug, Clone, Copy)]
pub struct Artifacts<'a> {
    pub name: &'a str,
    pub pom: &'a str,
    pub what: &'a str,
}

/// The jar directory of `artifacts`, resolving it with Maven on first use. Concurrent first uses
/// (several test binaries) each resolve into their own staging directory; the first rename wins.
pub fn ensure_jars(cache_dir: &Path, artifacts: Artifacts<'_>) -> anyhow::Result<PathBuf> {
    let home = cache_dir.join(artifacts.name);
    let libs = home.join("libs");
    if libs.join(".complete").exists() {
        return Ok(libs);
    }
    fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
    let pom = home.join("pom.xml");
    fs::write(&pom, artifacts.pom)?;
    let staging = home.join(format!("libs.tmp.{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    tracing::info!(dir = %libs.display(), "resolving {} jars from Maven Central (first use only)", artifacts.what);
    let output = Command::new("mvn")
        .args(["-B", "-q", "-f"])
        .arg(&pom)
        .arg("dependency:copy-dependencies")
        .arg(format!("-DoutputDirectory={}", staging.display()))
        .arg("-DincludeScope=runtime")
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run Maven (`mvn`): {e}. {} needs Maven and Java 17+ \
                 (Debian: apt-get install maven openjdk-17-jdk-headless)",
                artifacts.what
            )
        })?;
    if !output.status.success() {
        bail!(
            "Maven could not resolve {} ({}):\n{}{}",
            artifacts.what,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    fs::write(staging.join(".complete"), artifacts.name)?;
    publish(&staging, &libs)?;
    Ok(libs)
}

/// Moves a finished `staging` directory to `dest`; if another process published first, theirs is
/// kept.
pub fn publish(staging: &Path, dest: &Path) -> anyhow::Result<()> {
    match fs::rename(staging, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.join(".complete").exists() => {
            let _ = fs::remove_dir_all(staging);
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_dir_all(dest);
            fs::rename(staging, dest)
                .with_context(|| format!("cannot move {} into place: {e}", dest.display()))
        }
    }
}
