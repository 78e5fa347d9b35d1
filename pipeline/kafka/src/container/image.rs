//! The Kafka image, built on this machine and never pulled from a registry:
//!
//! 1. a Debian base made by `debootstrap --variant=minbase` from Debian's packages with a headless
//!    JRE ([`PACKAGES`]), trimmed of apt's caches, documentation and locales, kept under the cache
//!    directory (`<cache>/kafka-image/rootfs-<key>`) so that it is made once;
//! 2. the Kafka 4.4 jars the project already resolves from Maven Central
//!    ([`crate::broker::ensure_jars`]) in `/opt/kafka/libs`, and the entry point
//!    `/opt/kafka/bin/kafka-start` (`kafka-start.sh`);
//! 3. both streamed by `tar` into `docker import`, tagged `atenex/kafka:4.4.0-<hash>`, where the
//!    hash covers the recipe, the Debian suite and packages, the entry point and every jar's name
//!    and bytes: a warm run finds the tag and builds nothing, a changed jar or script builds anew.
//!
//! Building needs root (debootstrap), `debootstrap`, `tar` and the `docker` client; finding a built
//! image needs only the client.

use super::{docker, no_client};
use anyhow::{Context as _, bail};
use sha2::{Digest as _, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The image repository; the tag is [`crate::broker::KAFKA_VERSION`] and the content hash.
pub const REPOSITORY: &str = "atenex/kafka";
/// The Debian release the base is made from.
pub const DEBIAN_SUITE: &str = "bookworm";
/// Installed into the base beside `--variant=minbase`.
pub const PACKAGES: &[&str] = &["openjdk-17-jre-headless"];
/// Overrides the Debian mirror debootstrap reads.
pub const MIRROR_ENV: &str = "ATENEX_DEBIAN_MIRROR";
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// The image's entry point.
pub const START_SCRIPT: &str = include_str!("kafka-start.sh");
/// Emptied in the base: nothing at run time reads them (`/dev` is the engine's own).
const TRIMMED: &[&str] = &[
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "dev",
];
/// Changed when the way the image is made changes in a way the other inputs do not show.
const RECIPE: &str = "atenex/kafka recipe 1: minbase + packages, trimmed; /opt/kafka/{libs,bin/kafka-start}; docker import";

/// What [`ensure`] did.
#[derive(Debug, Clone)]
pub struct Ensured {
    /// `atenex/kafka:<tag>`.
    pub reference: String,
    /// The image was built by this call (false: found).
    pub built: bool,
    pub took: Duration,
}

/// The key of the Debian base: the recipe, the suite, the packages and what is trimmed.
pub fn base_key() -> String {
    let mut h = Sha256::new();
    for part in [RECIPE, DEBIAN_SUITE]
        .into_iter()
        .chain(PACKAGES.iter().copied())
        .chain(TRIMMED.iter().copied())
    {
        field(&mut h, part.as_bytes());
    }
    format!("{:x}", h.finalize())[..16].to_owned()
}

/// The image tag for the jars in `libs` and `script` as entry point:
/// `<KAFKA_VERSION>-<16 hex digits>`.
pub fn tag(libs: &Path, script: &str) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    field(&mut h, base_key().as_bytes());
    field(&mut h, script.as_bytes());
    for jar in jars(libs)? {
        let name = jar.file_name().expect("a file").to_string_lossy();
        field(&mut h, name.as_bytes());
        let bytes = fs::read(&jar).with_context(|| format!("cannot read {}", jar.display()))?;
        field(&mut h, &bytes);
    }
    Ok(format!(
        "{}-{}",
        crate::broker::KAFKA_VERSION,
        &format!("{:x}", h.finalize())[..16]
    ))
}

/// The image for the jars under `cache_dir`, built if this engine does not have it yet. Concurrent
/// callers (several test binaries) build it once: the build holds a lock under the cache directory.
pub fn ensure(cache_dir: &Path) -> anyhow::Result<Ensured> {
    let started = Instant::now();
    let libs = crate::broker::ensure_jars(cache_dir)?;
    let reference = format!("{REPOSITORY}:{}", tag(&libs, START_SCRIPT)?);
    let found = |built| Ensured {
        reference: reference.clone(),
        built,
        took: started.elapsed(),
    };
    if exists(&reference)? {
        return Ok(found(false));
    }
    let home = cache_dir.join("kafka-image");
    fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
    let _lock = Lock::take(&home.join(".lock"))?;
    if exists(&reference)? {
        return Ok(found(false));
    }
    let rootfs = base(&home)?;
    import(&home, &rootfs, &libs, &reference)?;
    remove_other_tags(&reference);
    Ok(found(true))
}

/// Whether the engine has `reference`.
pub fn exists(reference: &str) -> anyhow::Result<bool> {
    let out = docker()
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .map_err(no_client)?;
    if out.status.success() {
        return Ok(true);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("No such image") || err.contains("No such object") {
        Ok(false)
    } else {
        bail!("`docker image inspect {reference}` failed: {}", err.trim())
    }
}

/// The Debian base, made by debootstrap on first use.
fn base(home: &Path) -> anyhow::Result<PathBuf> {
    let key = base_key();
    let dir = home.join(format!("rootfs-{key}"));
    let done = home.join(format!("rootfs-{key}.complete"));
    if done.exists() {
        return Ok(dir);
    }
    if !rustix::process::geteuid().is_root() {
        bail!(
            "building the Kafka image needs root: debootstrap makes its Debian base (ci/test runs as root; \
             or build it once as root with cargo test -p atenex-kafka --features testcontainers --test docker)"
        );
    }
    let staging = home.join(format!("rootfs-{key}.tmp"));
    let _ = fs::remove_dir_all(&staging);
    let mirror = std::env::var(MIRROR_ENV).unwrap_or_else(|_| DEFAULT_MIRROR.to_owned());
    let log = home.join("debootstrap.log");
    tracing::info!(dir = %dir.display(), %mirror, "making the Kafka image's Debian base (first use only)");
    let status = Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(DEBIAN_SUITE)
        .arg(&staging)
        .arg(&mirror)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log)?)
        .stderr(fs::File::create(&log)?)
        .status()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run `debootstrap`: {e}. Building the Kafka image needs it (Debian: apt-get install debootstrap)"
            )
        })?;
    if !status.success() {
        bail!(
            "debootstrap of Debian {DEBIAN_SUITE} from {mirror} failed ({status}); last lines of {}:\n{}",
            log.display(),
            atenex_jvm::process::tail(&log, 20)
        );
    }
    for t in TRIMMED {
        let d = staging.join(t);
        for e in fs::read_dir(&d)
            .with_context(|| format!("cannot read {}", d.display()))?
            .flatten()
        {
            let p = e.path();
            if e.file_type()?.is_dir() {
                fs::remove_dir_all(&p)?;
            } else {
                fs::remove_file(&p)?;
            }
        }
    }
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&staging, &dir)?;
    fs::write(&done, base_key())?;
    Ok(dir)
}

/// Streams the base and `/opt/kafka` (jars, entry point) into `docker import` as `reference`.
fn import(home: &Path, rootfs: &Path, libs: &Path, reference: &str) -> anyhow::Result<()> {
    let overlay = home.join(format!("overlay.{}", std::process::id()));
    let _ = fs::remove_dir_all(&overlay);
    let dest = overlay.join("opt/kafka/libs");
    fs::create_dir_all(&dest)?;
    for jar in jars(libs)? {
        fs::copy(&jar, dest.join(jar.file_name().expect("a file")))?;
    }
    let bin = overlay.join("opt/kafka/bin");
    fs::create_dir_all(&bin)?;
    let script = bin.join("kafka-start");
    fs::write(&script, START_SCRIPT)?;
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;

    // `opt/kafka`, not `.`: the engine refuses an archive naming a path twice (`./opt`).
    let mut tar = Command::new("tar")
        .args(["-c", "-f", "-", "--numeric-owner", "-C"])
        .arg(rootfs)
        .arg(".")
        .arg("-C")
        .arg(&overlay)
        .arg("opt/kafka")
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run `tar`")?;
    let archive = tar.stdout.take().expect("piped");
    let out = docker()
        .arg("import")
        .args(["--change", r#"ENTRYPOINT ["/opt/kafka/bin/kafka-start"]"#])
        .args([
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ])
        .args([
            "--change",
            &format!(
                "LABEL org.atenex.kafka-version={}",
                crate::broker::KAFKA_VERSION
            ),
        ])
        .args([
            "--message",
            "atenex: Debian minbase + JRE + Kafka jars from Maven Central",
        ])
        .arg("-")
        .arg(reference)
        .stdin(archive)
        .output()
        .map_err(no_client)?;
    let tar_status = tar.wait()?;
    let _ = fs::remove_dir_all(&overlay);
    if !out.status.success() {
        bail!(
            "`docker import` of {reference} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    if !tar_status.success() {
        bail!("tar of {} failed ({tar_status})", rootfs.display());
    }
    Ok(())
}

/// Older builds of the repository (other hashes): removed, unless a container still uses one.
fn remove_other_tags(reference: &str) {
    let Ok(out) = docker()
        .args([
            "image",
            "ls",
            REPOSITORY,
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ])
        .output()
    else {
        return;
    };
    for other in String::from_utf8_lossy(&out.stdout).lines() {
        if other != reference {
            let _ = docker()
                .args(["image", "rm", other])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The jars of `libs`, sorted by name.
fn jars(libs: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut jars: Vec<PathBuf> = fs::read_dir(libs)
        .with_context(|| format!("cannot read {}", libs.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jar"))
        .collect();
    jars.sort();
    if jars.is_empty() {
        bail!("no jars in {}", libs.display());
    }
    Ok(jars)
}

/// One length-prefixed part of a hash input (so that parts cannot run into each other).
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// An exclusive lock on a file (`flock`), released on drop.
struct Lock {
    _held: fs::File,
}

impl Lock {
    fn take(path: &Path) -> anyhow::Result<Self> {
        let f =
            fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        f.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(Self { _held: f })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn libs(jars: &[(&str, &[u8])]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, bytes) in jars {
            fs::write(d.path().join(name), bytes).unwrap();
        }
        d
    }

    #[test]
    fn the_tag_follows_every_jar_and_the_entry_point_and_nothing_else() {
        let a = libs(&[("a.jar", b"one"), ("b.jar", b"two"), (".complete", b"x")]);
        let t = tag(a.path(), START_SCRIPT).unwrap();
        assert!(t.starts_with("4.4.0-"), "{t}");
        assert_eq!(t.len(), "4.4.0-".len() + 16);
        // Same names and bytes elsewhere (and files that are not jars): the same tag.
        let same = libs(&[("b.jar", b"two"), ("a.jar", b"one"), ("notes.txt", b"y")]);
        assert_eq!(tag(same.path(), START_SCRIPT).unwrap(), t);
        // A jar's bytes, a jar's name, one more jar, the entry point: each a new tag.
        let bytes = libs(&[("a.jar", b"one"), ("b.jar", b"tw0")]);
        let name = libs(&[("a.jar", b"one"), ("c.jar", b"two")]);
        let more = libs(&[("a.jar", b"one"), ("b.jar", b"two"), ("c.jar", b"")]);
        // Parts are length-prefixed: moving a byte from one jar to the next is seen.
        let moved = libs(&[("a.jar", b"onet"), ("b.jar", b"wo")]);
        let others = [
            tag(bytes.path(), START_SCRIPT).unwrap(),
            tag(name.path(), START_SCRIPT).unwrap(),
            tag(more.path(), START_SCRIPT).unwrap(),
            tag(moved.path(), START_SCRIPT).unwrap(),
            tag(a.path(), &format!("{START_SCRIPT}\n")).unwrap(),
        ];
        for o in &others {
            assert_ne!(o, &t);
        }
        let distinct: std::collections::BTreeSet<_> = others.iter().collect();
        assert_eq!(distinct.len(), others.len());
    }

    #[test]
    fn no_jars_is_an_error_naming_the_directory() {
        let empty = libs(&[]);
        let e = tag(empty.path(), START_SCRIPT).unwrap_err().to_string();
        assert!(e.contains("no jars in"), "{e}");
    }
}
