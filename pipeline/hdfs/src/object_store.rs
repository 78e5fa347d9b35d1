//! HDFS as an `object_store::ObjectStore`, so DataFusion can query `hdfs://` URLs (register it
//! with `SessionContext::register_object_store` for `hdfs://host:port`). Over the same hdfs-native
//! client as everything else here (no second HDFS client in the binary).
//!
//! Reads (`get` with ranges, `head`, `list`, `list_with_delimiter`) and whole-object `put`
//! (written to a hidden temp file, then renamed: readers never see a partial object) and `delete`
//! are supported; multipart uploads and copies are not (DataFusion's reads never use them).

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use hdfs_native::{Client, HdfsError, WriteOptions, client::FileStatus};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::fmt;

const STORE: &str = "HDFS";

/// An HDFS namespace as an object store; object paths are HDFS paths without the leading `/`.
#[derive(Debug, Clone)]
pub struct HdfsObjectStore {
    client: Client,
    namenode: String,
}

impl HdfsObjectStore {
    /// `hdfs`'s client and name node; object `a/b` is the HDFS file `/a/b`.
    pub fn new(hdfs: &crate::Hdfs) -> Self {
        Self {
            client: hdfs.client().clone(),
            namenode: hdfs.url().namenode.clone(),
        }
    }
}

impl fmt::Display for HdfsObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HdfsObjectStore({})", self.namenode)
    }
}

fn hdfs_path(p: &Path) -> String {
    format!("/{}", p.as_ref())
}

fn error(path: &str, e: HdfsError) -> object_store::Error {
    if crate::blocking::kind(&e) == std::io::ErrorKind::NotFound {
        object_store::Error::NotFound {
            path: path.to_owned(),
            source: Box::new(e),
        }
    } else {
        object_store::Error::Generic {
            store: STORE,
            source: Box::new(crate::blocking::io_error(path, e)),
        }
    }
}

fn meta(s: &FileStatus) -> Result<ObjectMeta> {
    Ok(ObjectMeta {
        location: Path::parse(s.path.trim_start_matches('/'))
            .map_err(|e| object_store::Error::InvalidPath { source: e })?,
        last_modified: DateTime::<Utc>::from_timestamp_millis(s.modification_time as i64)
            .unwrap_or_default(),
        size: s.length as u64,
        e_tag: None,
        version: None,
    })
}

/// Hidden from listings and from DataFusion (names starting with `.`).
fn is_hidden(s: &FileStatus) -> bool {
    s.path
        .rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
}

fn not_supported(what: &str) -> object_store::Error {
    object_store::Error::NotSupported {
        source: format!("{what} is not supported by the HDFS object store").into(),
    }
}

#[async_trait]
impl ObjectStore for HdfsObjectStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        _opts: PutOptions,
    ) -> Result<PutResult> {
        let path = hdfs_path(location);
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        let temp = format!("{dir}/.{name}.{}.tmp", uuid_like());
        let mut w = self
            .client
            .create(&temp, WriteOptions::default())
            .await
            .map_err(|e| error(&temp, e))?;
        for part in payload.iter() {
            w.write_bytes(part.clone())
                .await
                .map_err(|e| error(&temp, e))?;
        }
        w.close().await.map_err(|e| error(&temp, e))?;
        self.client
            .rename(&temp, &path, true)
            .await
            .map_err(|e| error(&path, e))?;
        Ok(PutResult {
            e_tag: None,
            version: None,
        })
    }

    async fn put_multipart_opts(
        &self,
        _location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Err(not_supported("multipart upload"))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let path = hdfs_path(location);
        let status = self
            .client
            .get_file_info(&path)
            .await
            .map_err(|e| error(&path, e))?;
        if status.isdir {
            return Err(object_store::Error::NotFound {
                path: path.clone(),
                source: format!("{path} is a directory").into(),
            });
        }
        let meta = meta(&status)?;
        options.check_preconditions(&meta)?;
        let range = match &options.range {
            Some(r) => r
                .as_range(meta.size)
                .map_err(|e| object_store::Error::Generic {
                    store: STORE,
                    source: Box::new(e),
                })?,
            None => 0..meta.size,
        };
        let payload = if options.head || range.is_empty() {
            GetResultPayload::Stream(stream::empty().boxed())
        } else {
            let reader = self.client.read(&path).await.map_err(|e| error(&path, e))?;
            let (start, len) = (range.start as usize, (range.end - range.start) as usize);
            let p = path.clone();
            let body: BoxStream<'static, Result<Bytes>> = stream::once(async move {
                reader
                    .read_range(start, len)
                    .await
                    .map_err(|e| error(&p, e))
            })
            .boxed();
            GetResultPayload::Stream(body)
        };
        Ok(GetResult {
            payload,
            meta,
            range,
            attributes: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let client = self.client.clone();
        locations
            .then(move |p| {
                let client = client.clone();
                async move {
                    let p = p?;
                    let path = hdfs_path(&p);
                    match client.delete(&path, false).await {
                        Ok(_) => Ok(p),
                        Err(e) => Err(error(&path, e)),
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let client = self.client.clone();
        let dir = prefix.map_or_else(|| "/".to_owned(), hdfs_path);
        stream::once(async move {
            match client.list_status(&dir, true).await {
                Ok(all) => all
                    .iter()
                    .filter(|s| !s.isdir && !is_hidden(s))
                    .map(meta)
                    .collect::<Vec<_>>(),
                Err(e) if crate::blocking::kind(&e) == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => vec![Err(error(&dir, e))],
            }
        })
        .flat_map(stream::iter)
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let dir = prefix.map_or_else(|| "/".to_owned(), hdfs_path);
        let all = match self.client.list_status(&dir, false).await {
            Ok(all) => all,
            Err(e) if crate::blocking::kind(&e) == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(error(&dir, e)),
        };
        let mut out = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
        };
        for s in all.iter().filter(|s| !is_hidden(s)) {
            if s.isdir {
                out.common_prefixes.push(meta(s)?.location);
            } else {
                out.objects.push(meta(s)?);
            }
        }
        Ok(out)
    }

    async fn copy_opts(&self, _from: &Path, _to: &Path, _options: CopyOptions) -> Result<()> {
        Err(not_supported("copy"))
    }
}

/// A name part unique enough for a temp file of this process.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
