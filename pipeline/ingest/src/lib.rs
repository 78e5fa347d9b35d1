//! The ingest service (`atenex ingest`): `POST /api/v1/ingest/upload` checks an upload, stores it
//! and announces it on `documents.raw`. The tenant comes from the gateway's `X-Company-ID` and
//! `X-User-ID` headers (ingest is not exposed to clients). See docs/services.md.
//!
//! Order, so that nothing half-stored is announced and nothing announced is missing: checks →
//! claim the content hash for the company (409 if it is already there) → store the object durably
//! → produce `documents.raw` and wait for the broker's acknowledgement → 202. A failure after the
//! claim removes what was done (object, claim) and answers 5xx.

pub mod file_type;
pub mod filename;
pub mod group_sync;
pub mod storage;

use crate::file_type::{ACCEPTED, DocType};
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

/// 50 MB, as the gateway's default.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 50_000_000;

pub struct App {
    pub storage: Storage,
    pub producer: Producer,
    /// The largest file accepted.
    pub max_upload_bytes: usize,
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
    let limit = app.max_upload_bytes + 1_000_000;
    Router::new()
        .route("/api/v1/ingest/upload", post(upload))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
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

async fn upload(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let company = header(&headers, "X-Company-ID")?;
    let user = header(&headers, "X-User-ID")?;
    let company = uuid::Uuid::parse_str(company)
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("X-Company-ID {company:?} is not a UUID"),
            )
        })?
        .to_string();

    let mut file: Option<(String, Option<String>, bytes::Bytes)> = None;
    let mut metadata: Option<serde_json::Value> = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or_default().to_owned();
                let content_type = field.content_type().map(str::to_owned);
                let data = field.bytes().await.map_err(multipart_error)?;
                if data.len() > app.max_upload_bytes {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("the file is larger than {} bytes", app.max_upload_bytes),
                    ));
                }
                file = Some((name, content_type, data));
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
                metadata = Some(v);
            }
            _ => {} // other fields are ignored
        }
    }
    let Some((raw_name, content_type, data)) = file else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the multipart field `file` is required",
        ));
    };
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
    if data.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the file is empty"));
    }
    doc_type.check_content(&data).map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("{filename:?}: {e}; accepted: {ACCEPTED}"),
        )
    })?;

    let sha256 = hex::encode(Sha256::digest(&data));
    let id = DocumentId::new_v4();
    let document_id = id.to_string();
    let storage_error = |what: &str, e: object_store::Error| {
        tracing::error!(error = %e, "{what}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{what}: object storage unavailable"),
        )
    };
    match app
        .storage
        .claim(&company, &sha256, &document_id)
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
    let key = format!("{company}/{document_id}/{filename}");
    if let Err(e) = app.storage.put(&key, data.clone()).await {
        app.storage.release(&company, &sha256).await;
        return Err(storage_error("cannot store the file", e));
    }
    let event = serde_json::to_vec(&DocumentRaw {
        document_id: id,
        company_id: company.clone(),
        s3_path: app
            .storage
            .url_of(object_store::path::Path::from(key.as_str()).as_ref()),
        // The type checked here (declared and by content): the name's extension may say
        // otherwise when the client declared a Content-Type.
        doc_type: Some(doc_type.name().to_owned()),
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
        // Not announced: remove what was stored, so that a retry is not a "duplicate".
        tracing::error!(error = %e, %document_id, "documents.raw not acknowledged");
        app.storage.delete(&key).await;
        app.storage.release(&company, &sha256).await;
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the event bus did not acknowledge the upload; nothing was kept, try again",
        ));
    }
    tracing::info!(%document_id, %company, %user, %filename, doc_type = doc_type.name(), bytes = data.len(), has_metadata = metadata.is_some(), "uploaded");
    metrics::counter!("ingest_uploads_total", "status" => "202").increment(1);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"document_id": document_id, "status": "uploaded"})),
    ))
}
