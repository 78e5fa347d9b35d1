//! Where uploads are kept: a local directory (the embedded default) or S3 (`s3://bucket/prefix`,
//! credentials and region from the standard AWS environment), through `object_store`.
//!
//! Objects: `{company_id}/{document_id}/{filename}`. Beside them, one small object per distinct
//! content and company, `{company_id}/.sha256/{hex}`, holding the `document_id` that content was
//! stored under: created with put-if-absent, so two concurrent uploads of the same content cannot
//! both win.

use crate::group_sync::GroupSync;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::Arc;

/// How long one S3 request may take, unless `AWS_TIMEOUT` says otherwise.
pub const S3_TIMEOUT: &str = "30s";
/// How long connecting to S3 may take, unless `AWS_CONNECT_TIMEOUT` says otherwise.
pub const S3_CONNECT_TIMEOUT: &str = "5s";

#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket/prefix` or `file:///abs/dir`, prefixed to keys in `s3_path`.
    base: String,
    /// For a local store, the group commit that makes its writes durable (object_store does not
    /// fsync).
    local_sync: Option<GroupSync>,
    /// For a local store, its directory (to remove the directories an aborted upload made).
    local_root: Option<std::path::PathBuf>,
}

/// What a put-if-absent found.
pub enum Claim {
    /// The content is new for this company.
    New,
    /// Already uploaded as this document.
    Existing(String),
}

impl Storage {
    /// `s3://bucket[/prefix]`, `file:///dir` or a plain directory (created if missing).
    pub fn open(url: &str) -> anyhow::Result<Self> {
        Self::open_with(url, &[])
    }

    /// [`open`](Self::open), S3's settings from the environment overridden by `s3_options`
    /// (object_store's keys: `aws_endpoint`, `aws_region`, `aws_access_key_id`, ...): tests give
    /// their S3 server's settings this way, since a test binary's environment is shared.
    pub fn open_with(url: &str, s3_options: &[(String, String)]) -> anyhow::Result<Self> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(
                !bucket.is_empty(),
                "--storage {url}: no bucket (e.g. s3://atenex-documents)"
            );
            // Bounded waits: a slow or silent S3 answers uploads with 503 within about a minute,
            // not after object_store's default of ten retries over three minutes. The AWS
            // variables (AWS_TIMEOUT, AWS_CONNECT_TIMEOUT) and `s3_options` override them.
            let mut builder = AmazonS3Builder::from_env().with_retry(object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: std::time::Duration::from_secs(30),
                ..object_store::RetryConfig::default()
            });
            for (key, default) in [
                ("timeout", S3_TIMEOUT),
                ("connect_timeout", S3_CONNECT_TIMEOUT),
            ] {
                if std::env::var_os(format!("AWS_{}", key.to_uppercase())).is_none() {
                    builder = builder.with_config(key.parse()?, default);
                }
            }
            for (key, value) in s3_options {
                let key = key
                    .parse()
                    .map_err(|e| anyhow::anyhow!("S3 option {key}: {e}"))?;
                builder = builder.with_config(key, value);
            }
            let s3 = builder.with_bucket_name(bucket).build().map_err(|e| {
                anyhow::anyhow!(
                    "--storage {url}: {e} (set AWS_REGION and credentials as for the AWS CLI)"
                )
            })?;
            let prefix = prefix.trim_matches('/');
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            };
            let base = format!(
                "s3://{bucket}{}",
                if prefix.is_empty() {
                    String::new()
                } else {
                    format!("/{prefix}")
                }
            );
            return Ok(Self {
                store,
                base,
                local_sync: None,
                local_root: None,
            });
        }
        let dir = url.strip_prefix("file://").unwrap_or(url);
        anyhow::ensure!(
            !dir.contains("://"),
            "--storage {url}: use a directory, file:///dir or s3://bucket/prefix"
        );
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("--storage {url}: cannot create it: {e}"))?;
        let abs = std::fs::canonicalize(dir)?;
        // Deleting an object removes the directories it leaves empty (a failed upload leaves
        // nothing behind).
        let store = LocalFileSystem::new_with_prefix(&abs)?.with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            base: format!("file://{}", abs.display()),
            local_sync: Some(GroupSync::new(&abs)?),
            local_root: Some(abs),
        })
    }

    /// `s3://bucket[/prefix]` or `file:///dir`: what every announced URL of this store starts with.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL an object key is announced with.
    pub fn url_of(&self, key: &str) -> String {
        format!("{}/{key}", self.base)
    }

    /// Records that `company` has content `sha256` as `document_id`, unless it already has it.
    pub async fn claim(
        &self,
        company: &str,
        sha256: &str,
        document_id: &str,
    ) -> object_store::Result<Claim> {
        let key = Path::from(format!("{company}/.sha256/{sha256}"));
        let put = self
            .store
            .put_opts(
                &key,
                PutPayload::from(document_id.to_owned()),
                PutOptions::from(PutMode::Create),
            )
            .await;
        match put {
            Ok(_) => Ok(Claim::New),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let existing = String::from_utf8_lossy(&self.store.get(&key).await?.bytes().await?)
                    .into_owned();
                // A claim whose upload never completed (a crash between claim and store) is stale.
                let prefix = Path::from(format!("{company}/{existing}"));
                let stored = self.store.list_with_delimiter(Some(&prefix)).await?;
                if stored.objects.is_empty() {
                    self.store
                        .put(&key, PutPayload::from(document_id.to_owned()))
                        .await?;
                    Ok(Claim::New)
                } else {
                    Ok(Claim::Existing(existing))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Forgets a claim (its upload failed).
    pub async fn release(&self, company: &str, sha256: &str) {
        let key = Path::from(format!("{company}/.sha256/{sha256}"));
        let _ = self.store.delete(&key).await;
    }

    /// Stores the object durably: S3 acknowledges stored objects; locally object_store writes a
    /// temp file and renames it, and a group commit flushes the file system (with the claim
    /// written before).
    pub async fn put(&self, key: &str, data: bytes::Bytes) -> object_store::Result<()> {
        let path = Path::from(key);
        self.store.put(&path, PutPayload::from(data)).await?;
        durable(self.local_sync.as_ref()).await
    }

    /// Starts storing `key` from a stream of pieces ([`Upload`]): memory holds one part (5 MiB)
    /// and the parts in flight, whatever the object's size. An object smaller than a part (most
    /// documents) is stored with one PUT at the end; a larger one as a multipart upload, begun
    /// when the first part is full.
    pub async fn upload(&self, key: &str) -> object_store::Result<Upload> {
        let writer = BufWriter::with_capacity(self.store.clone(), Path::from(key), PART_BYTES)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        Ok(Upload {
            writer,
            sync: self.local_sync.clone(),
            local_dir: self
                .local_root
                .as_ref()
                .map(|root| (root.clone(), root.join(key))),
        })
    }

    /// At start: for S3, whether the bucket is there and takes this service's requests (`write`:
    /// a small object put and removed; else a listing), within `timeout`. The error names the
    /// cause and the fix: a missing bucket, refused credentials, or no answer. Nothing to check
    /// for a local store (opening it created the directory).
    pub async fn check(&self, write: bool, timeout: std::time::Duration) -> anyhow::Result<()> {
        use futures::StreamExt as _;
        if self.local_root.is_some() {
            return Ok(());
        }
        let base = &self.base;
        let bucket = base
            .trim_start_matches("s3://")
            .split('/')
            .next()
            .unwrap_or_default();
        let attempt = async {
            if write {
                self.probe().await
            } else {
                match self.store.list(None).next().await {
                    Some(Err(e)) => Err(e),
                    _ => Ok(()),
                }
            }
        };
        let e = match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => anyhow::bail!(
                "--storage {base}: S3 did not answer within {timeout:?}: check AWS_ENDPOINT (if set), AWS_REGION and the network path to S3 (a VPC endpoint)"
            ),
        };
        let fix = if e.contains("NoSuchBucket") {
            format!("the bucket {bucket} does not exist: create it, or fix --storage")
        } else if [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
            "403",
        ]
        .iter()
        .any(|m| e.contains(m))
        {
            format!(
                "the credentials were refused: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the instance role) to ones allowed to {} the bucket {bucket}",
                if write { "write" } else { "read" }
            )
        } else {
            "check AWS_ENDPOINT (if set), AWS_REGION and the network path to S3".to_owned()
        };
        anyhow::bail!("--storage {base}: {fix} ({e})")
    }

    /// Whether the store takes writes now: a small object written and removed. For `/health`.
    pub async fn probe(&self) -> object_store::Result<()> {
        let key = Path::from(format!(".health/{}", std::process::id()));
        self.store.put(&key, PutPayload::from_static(b"ok")).await?;
        self.store.delete(&key).await
    }

    /// The local directory `dir`, its objects announced under `base` instead of `file://<dir>`
    /// (the simulator keeps a scenario's objects in a temporary directory but names them as the
    /// scenario does, so that the announced URLs are the same in every run).
    pub fn open_as(dir: &str, base: &str) -> anyhow::Result<Self> {
        let mut storage = Self::open(dir)?;
        storage.base = base.trim_end_matches('/').to_owned();
        Ok(storage)
    }

    /// The key of an announced URL (`s3_path`), if it is inside this store.
    pub fn key_of<'u>(&self, url: &'u str) -> Option<&'u str> {
        url.strip_prefix(self.base.as_str())?
            .strip_prefix('/')
            .filter(|k| !k.is_empty())
    }

    /// Reads an object by the URL it was announced with. `Ok(None)`: no such object (or a URL
    /// outside this store); `Err`: the store failed (worth retrying).
    pub async fn get_url(&self, url: &str) -> object_store::Result<Option<bytes::Bytes>> {
        let Some(key) = self.key_of(url) else {
            return Ok(None);
        };
        let Ok(path) = Path::parse(key) else {
            return Ok(None);
        };
        match self.store.get(&path).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn delete(&self, key: &str) {
        let _ = self.store.delete(&Path::from(key)).await;
    }
}

/// Waits for the group commit of a local store (object_store does not fsync); nothing for S3,
/// which acknowledges stored objects.
async fn durable(sync: Option<&GroupSync>) -> object_store::Result<()> {
    match sync {
        Some(sync) => sync.sync().await.map_err(|e| object_store::Error::Generic {
            store: "local",
            source: Box::new(e),
        }),
        None => Ok(()),
    }
}

/// An object being stored piece by piece ([`Storage::upload`]): [`Upload::finish`] makes it
/// durable and visible; [`Upload::abort`] (or dropping it) leaves nothing.
pub struct Upload {
    writer: BufWriter,
    sync: Option<GroupSync>,
    /// Locally: the store's directory and the object's path in it.
    local_dir: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Parts uploaded at once per object.
const PARTS_IN_FLIGHT: usize = 2;
/// A multipart upload's part (S3's smallest but the last); also what is buffered before the
/// first request.
const PART_BYTES: usize = 5 * 1024 * 1024;

impl Upload {
    /// Adds a piece; waits while [`PARTS_IN_FLIGHT`] parts are being written.
    pub async fn write(&mut self, piece: bytes::Bytes) -> object_store::Result<()> {
        self.writer.put(piece).await
    }

    /// Completes the object, durably (locally: the group commit after the rename).
    pub async fn finish(mut self) -> object_store::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        self.writer.shutdown().await.map_err(|e| {
            // object_store's errors come back wrapped in io::Error: unwrap them again.
            match e
                .into_inner()
                .map(|inner| inner.downcast::<object_store::Error>())
            {
                Some(Ok(store)) => *store,
                Some(Err(other)) => object_store::Error::Generic {
                    store: "upload",
                    source: other,
                },
                None => object_store::Error::Generic {
                    store: "upload",
                    source: "the upload could not be completed".into(),
                },
            }
        })?;
        durable(self.sync.as_ref()).await
    }

    /// Drops what was written; locally also the directories made for it that are now empty.
    pub async fn abort(mut self) {
        let _ = self.writer.abort().await;
        if let Some((root, path)) = self.local_dir {
            let mut dir = path.parent();
            while let Some(d) = dir.filter(|d| d.starts_with(&root) && *d != root) {
                if std::fs::remove_dir(d).is_err() {
                    break; // not empty, or gone
                }
                dir = d.parent();
            }
        }
    }
}
