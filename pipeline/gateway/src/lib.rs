//! The API gateway (`atenex gateway`): authenticates uploads with an HS256 JWT, takes the tenant
//! from the token only, limits the body, and streams it to the ingest service (no whole-body
//! buffering). Every error answer is `{"detail": ...}`; every answer carries `X-Request-ID`.
//! See docs/services.md.

pub mod jwt;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const COMPANY_ID: HeaderName = HeaderName::from_static("x-company-id");
const USER_ID: HeaderName = HeaderName::from_static("x-user-id");

/// 50 MB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 50_000_000;

#[derive(Debug, Clone)]
pub struct Config {
    /// The ingest service's base URL (`http://127.0.0.1:8001`).
    pub ingest_url: String,
    pub jwt_secret: Vec<u8>,
    /// Larger bodies: 413, before reading past the limit.
    pub max_body_bytes: u64,
    /// Origins allowed by CORS (none: no CORS headers).
    pub cors_origins: Vec<String>,
    /// How long ingest may take to answer once the body is sent (then 504).
    pub upstream_timeout: Duration,
}

pub struct Gateway {
    config: Config,
    client: reqwest::Client,
}

impl Gateway {
    /// Refuses a weak `jwt_secret` ([`jwt::check_secret`]).
    pub fn new(config: Config) -> anyhow::Result<Self> {
        jwt::check_secret(&config.jwt_secret).map_err(anyhow::Error::msg)?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(config.upstream_timeout)
            .build()?;
        Ok(Self { config, client })
    }
}

/// `{"detail": ...}` with `status`.
pub fn error(status: StatusCode, detail: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "detail": detail.into() }))).into_response()
}

pub fn router(gw: Arc<Gateway>) -> anyhow::Result<Router> {
    // Install the metrics recorder now: counts before the first /metrics call are kept.
    atenex_kafka::observe::metrics();
    let mut app = Router::new()
        .route("/api/v1/ingest/upload", post(proxy))
        .route("/upload", post(proxy))
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        // No /metrics here: this port is public; `atenex gateway --admin-listen` serves it.
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found") })
        .layer(middleware::from_fn(request_id));
    if !gw.config.cors_origins.is_empty() {
        let origins = gw
            .config
            .cors_origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o)
                    .map_err(|_| anyhow::anyhow!("CORS origin {o:?} is not a valid header value"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
                .expose_headers([REQUEST_ID]),
        );
    }
    Ok(app.with_state(gw))
}

/// Takes the client's `X-Request-ID` (printable ASCII, ≤ 128 bytes) or makes one; passes it on
/// and returns it.
async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("a UUID is ASCII")
        });
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let mut resp = next.run(req).await;
    metrics::counter!("gateway_requests_total", "status" => resp.status().as_u16().to_string())
        .increment(1);
    resp.headers_mut().insert(REQUEST_ID, id);
    resp
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn too_large(max: u64) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the upload is larger than {max} bytes"),
    )
}

async fn proxy(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let claims = match jwt::authenticate(authorization, &gw.config.jwt_secret) {
        Ok(c) => c,
        Err(e @ jwt::AuthError::NoCompany) => return error(StatusCode::FORBIDDEN, e.detail()),
        Err(e) => {
            let mut r = error(StatusCode::UNAUTHORIZED, e.detail());
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    };
    let max = gw.config.max_body_bytes;
    let declared = content_length(&parts.headers);
    if declared.is_some_and(|n| n > max) {
        return too_large(max);
    }
    // Streamed on as it arrives; a body without Content-Length is cut at the limit.
    let exceeded = Arc::new(AtomicBool::new(false));
    let flag = exceeded.clone();
    let mut seen = 0u64;
    let stream = body.into_data_stream().map(move |chunk| match chunk {
        Ok(b) => {
            seen += b.len() as u64;
            if seen > max {
                flag.store(true, Ordering::Relaxed);
                Err(std::io::Error::other("body limit exceeded"))
            } else {
                Ok(b)
            }
        }
        Err(e) => Err(std::io::Error::other(e)),
    });
    let company = claims.company_id.clone().unwrap_or_default();
    let (Ok(company), Ok(user)) = (
        HeaderValue::from_str(&company),
        HeaderValue::from_str(&claims.sub),
    ) else {
        return error(
            StatusCode::FORBIDDEN,
            "the token's company_id or sub is not a valid header value",
        );
    };
    let mut upstream = gw
        .client
        .post(format!(
            "{}/api/v1/ingest/upload",
            gw.config.ingest_url.trim_end_matches('/')
        ))
        .body(reqwest::Body::wrap_stream(stream))
        // The tenant comes from the token only: whatever the client sent is replaced.
        .header(COMPANY_ID, company)
        .header(USER_ID, user);
    for name in [header::CONTENT_TYPE, REQUEST_ID] {
        if let Some(v) = parts.headers.get(&name) {
            upstream = upstream.header(name, v.clone());
        }
    }
    if let Some(n) = declared {
        upstream = upstream.header(header::CONTENT_LENGTH, n);
    }
    match upstream.send().await {
        Ok(resp) => {
            let mut out = Response::builder().status(resp.status().as_u16());
            if let Some(ct) = resp.headers().get(header::CONTENT_TYPE) {
                out = out.header(header::CONTENT_TYPE, ct.clone());
            }
            out.body(Body::from_stream(resp.bytes_stream()))
                .unwrap_or_else(|_| error(StatusCode::BAD_GATEWAY, "bad answer from ingest"))
        }
        Err(_) if exceeded.load(Ordering::Relaxed) => too_large(max),
        Err(e) if e.is_timeout() => error(
            StatusCode::GATEWAY_TIMEOUT,
            "the ingest service did not answer in time",
        ),
        Err(e) if e.is_connect() => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the ingest service is unavailable",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "proxying to ingest failed");
            error(
                StatusCode::BAD_GATEWAY,
                "the ingest service failed to answer",
            )
        }
    }
}
