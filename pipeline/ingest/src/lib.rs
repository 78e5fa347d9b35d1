//! The ingest service (`atenex ingest`): `POST /api/v1/ingest/upload` checks an upload, stores it
//! and announces it on `documents.raw`. The tenant comes from the gateway's `X-Company-ID` and
//! `X-User-ID` headers (ingest is not exposed to clients). See docs/services.md.
//!
//! Order, so that nothing half-stored is announced and nothing announced is missing: the tenant
//! and the file's declared name and type are checked → the file is streamed to its object while
//! its size, SHA-256 and content are checked (memory: one part per upload, whatever the size; at
//! most `max_concurrent_uploads` at once, 503 beyond) → claim the content hash for the company
//! (409 if it is already there) → produce `documents.raw` and wait for the broker's
//! acknowledgement → 202. Any failure removes what was done (object, claim): a refused or failed
//! upload leaves nothing behind.

pub mod file_type;
pub mod filename;
pub mod group_sync;
pub mod storage;
pub mod testing;

use crate::file_type::{ACCEPTED, ContentCheck, DocType};
use crate::storage::{Claim, Storage};
use atenex_contracts::{DocumentId, DocumentRaw, Topic};
use atenex_kafka::{OutRecord, Producer};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// 50 MB, as the gateway's default.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 50_000_000;

pub struct App {
    pub storage: Storage,
    pub producer: Producer,
    /// The largest file accepted.
    pub max_upload_bytes: usize,
    /// Uploads in progress at once; more are answered 503.
    uploads: Arc<Semaphore>,
    max_concurrent_uploads: usize,
}

/// Uploads received at once by default.
pub const DEFAULT_MAX_CONCURRENT_UPLOADS: usize = 16;

impl App {
    pub fn new(
        storage: Storage,
        producer: Producer,
        max_upload_bytes: usize,
        max_concurrent_uploads: usize,
    ) -> Self {
        let max_concurrent_uploads = max_concurrent_uploads.max(1);
        Self {
            storage,
            producer,
            max_upload_bytes,
            uploads: Arc::new(Semaphore::new(max_concurrent_uploads)),
            max_concurrent_uploads,
        }
    }
}

/// An error answer: `{"detail": ...}` with its status (and extra fields, e.g. 409's document_id).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    pub extra: Option<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            extra: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        metrics::counter!("ingest_uploads_total", "status" => self.status.as_u16().to_string())
            .increment(1);
        let mut body = json!({ "detail": self.detail });
        if let Some((k, v)) = self.extra {
            body[k] = json!(v);
        }
        (self.status, Json(body)).into_response()
    }
}

pub fn router(app: Arc<App>) -> Router {
    // Install the metrics recorder now: counts before the first /metrics call are kept.
    atenex_kafka::observe::metrics();
    // Room for the multipart framing and the metadata field around the largest file.
    let limit = app.max_upload_bytes.saturating_add(1_000_000);
    Router::new()
        .route("/api/v1/ingest/upload", post(upload))
        .route("/health", get(health))
        .route("/metrics", get(atenex_kafka::observe::render_metrics))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, ApiError> {
    let v = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    v.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the {name} header is required (the gateway sets it from the token)"),
        )
    })
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    let status = e.status();
    let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "the upload is larger than this service accepts".to_owned()
    } else {
        format!("malformed multipart body: {}", e.body_text())
    };
    ApiError::new(status, detail)
}

/// 200 while the object store takes writes; 503 with the reason otherwise (a read-only or full
/// disk, an unreachable bucket).
async fn health(State(app): State<Arc<App>>) -> Response {
    let probe = tokio::time::timeout(std::time::Duration::from_secs(5), app.storage.probe()).await;
    let problem = match probe {
        Ok(Ok(())) => return Json(json!({"status": "ok"})).into_response(),
        Ok(Err(e)) => format!("object storage does not take writes: {e}"),
        Err(_) => "object storage did not answer within 5 s".to_owned(),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "unavailable", "reason": problem})),
    )
        .into_response()
}

fn storage_error(what: &str, e: object_store::Error) -> ApiError {
    tracing::error!(error = %e, "{what}");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{what}: object storage unavailable"),
    )
}

/// A file streamed to its object.
struct Stored {
    key: String,
    filename: String,
    doc_type: DocType,
    sha256: String,
    bytes: u64,
}

async fn upload(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Ok(_slot) = app.uploads.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many uploads in progress ({} at once); try again shortly",
                app.max_concurrent_uploads
            ),
        ));
    };
    let company = header(&headers, "X-Company-ID")?;
    let user = header(&headers, "X-User-ID")?.to_owned();
    let company = uuid::Uuid::parse_str(company)
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("X-Company-ID {company:?} is not a UUID"),
            )
        })?
        .to_string();
    let id = DocumentId::new_v4();
    let mut stored = None;
    let outcome = async {
        let has_metadata = receive(&app, &company, &id.to_string(), multipart, &mut stored).await?;
        let file = stored.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the multipart field `file` is required",
            )
        })?;
        let answer = announce(&app, &company, id.clone(), file).await?;
        tracing::info!(document_id = %id, %company, %user, filename = %file.filename, doc_type = file.doc_type.name(), bytes = file.bytes, has_metadata, "uploaded");
        Ok(answer)
    }
    .await;
    // Refused or failed: what was stored goes.
    if outcome.is_err()
        && let Some(file) = &stored
    {
        app.storage.delete(&file.key).await;
    }
    outcome
}

/// Reads the multipart body: the one `file` part streamed to storage (into `stored`, checked),
/// `metadata_json` checked. Returns whether there was metadata.
async fn receive(
    app: &App,
    company: &str,
    document_id: &str,
    mut multipart: Multipart,
    stored: &mut Option<Stored>,
) -> Result<bool, ApiError> {
    let mut metadata = false;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") => {
                if stored.is_some() {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "more than one `file` part: send one file per upload",
                    ));
                }
                *stored = Some(store_file(app, company, document_id, field).await?);
            }
            Some("metadata_json") => {
                let text = field.text().await.map_err(multipart_error)?;
                let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("metadata_json is not JSON: {e}"),
                    )
                })?;
                if !v.is_object() {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "metadata_json must be a JSON object",
                    ));
                }
                metadata = true;
            }
            _ => {} // other fields are ignored
        }
    }
    Ok(metadata)
}

/// Streams the `file` part to `{company}/{document_id}/{filename}`, hashing and checking it as it
/// goes; the name and declared type are checked before anything is stored. Nothing is left
/// behind on an error.
async fn store_file(
    app: &App,
    company: &str,
    document_id: &str,
    mut field: axum::extract::multipart::Field<'_>,
) -> Result<Stored, ApiError> {
    let raw_name = field.file_name().unwrap_or_default().to_owned();
    let content_type = field.content_type().map(str::to_owned);
    let filename =
        filename::sanitize(&raw_name).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let doc_type = DocType::declared(content_type.as_deref(), &filename).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported type {} for {filename:?}; accepted: {ACCEPTED}",
                content_type.as_deref().unwrap_or("(none)")
            ),
        )
    })?;
    let key = format!("{company}/{document_id}/{filename}");
    let mut upload = app
        .storage
        .upload(&key)
        .await
        .map_err(|e| storage_error("cannot store the file", e))?;
    let mut hasher = Sha256::new();
    let mut check = ContentCheck::new(doc_type);
    let mut bytes = 0u64;
    let streamed: Result<(), ApiError> = async {
        while let Some(piece) = field.chunk().await.map_err(multipart_error)? {
            bytes += piece.len() as u64;
            if bytes > app.max_upload_bytes as u64 {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the file is larger than {} bytes", app.max_upload_bytes),
                ));
            }
            hasher.update(&piece);
            check.update(&piece);
            upload
                .write(piece)
                .await
                .map_err(|e| storage_error("cannot store the file", e))?;
        }
        if bytes == 0 {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "the file is empty"));
        }
        check.finish().map_err(|e| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("{filename:?}: {e}; accepted: {ACCEPTED}"),
            )
        })
    }
    .await;
    if let Err(e) = streamed {
        upload.abort().await;
        return Err(e);
    }
    upload
        .finish()
        .await
        .map_err(|e| storage_error("cannot store the file", e))?;
    Ok(Stored {
        key,
        filename,
        doc_type,
        sha256: hex::encode(hasher.finalize()),
        bytes,
    })
}

/// Claims the content for the company (409 if it has it), then announces the stored file on
/// `documents.raw`. On an error the claim is released (the caller removes the object).
async fn announce(
    app: &App,
    company: &str,
    id: DocumentId,
    file: &Stored,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let document_id = id.to_string();
    match app
        .storage
        .claim(company, &file.sha256, &document_id)
        .await
        .map_err(|e| storage_error("cannot check for duplicates", e))?
    {
        Claim::Existing(existing) => {
            let mut e = ApiError::new(
                StatusCode::CONFLICT,
                format!("this content was already uploaded by the company as document {existing}"),
            );
            e.extra = Some(("document_id", existing));
            return Err(e);
        }
        Claim::New => {}
    }
    let event = serde_json::to_vec(&DocumentRaw {
        document_id: id,
        company_id: company.to_owned(),
        s3_path: app
            .storage
            .url_of(object_store::path::Path::from(file.key.as_str()).as_ref()),
        // The type checked here (declared and by content): the name's extension may say
        // otherwise when the client declared a Content-Type.
        doc_type: Some(file.doc_type.name().to_owned()),
    })
    .expect("a documents.raw value serializes");
    let sent = app
        .producer
        .send(OutRecord::new(
            Topic::DocumentsRaw.name(),
            Some(document_id.as_bytes()),
            Some(&event),
        ))
        .await;
    if let Err(e) = sent {
        // Not announced: forget the claim, so that a retry is not a "duplicate".
        tracing::error!(error = %e, %document_id, "documents.raw not acknowledged");
        app.storage.release(company, &file.sha256).await;
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the event bus did not acknowledge the upload; nothing was kept, try again",
        ));
    }
    metrics::counter!("ingest_uploads_total", "status" => "202").increment(1);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"document_id": document_id, "status": "uploaded"})),
    ))
}
