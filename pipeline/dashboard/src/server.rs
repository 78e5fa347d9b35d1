//! The dashboard's HTTP side: the pages, the JSON API, the Server-Sent Events stream and the
//! embedded assets, over the shared [`History`].
//!
//! `/events` sends the page's [`View`](crate::history::View) as an event `view` whose id is the
//! history's cursor (the Kafka position of every partition read); a page that reconnects sends it
//! back (`Last-Event-ID`, or `?last=` on the first connection) and gets the current view at once
//! if anything was read since, else the next change. A view is the state, not a delta, so a
//! reconnect loses nothing, and a restarted dashboard (whose cursor differs) replaces what the
//! page shows: every window once.

use crate::history::History;
use crate::page;
use crate::reports::Reports;
use atenex_kafka::observe::Health;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the consumer and the server share.
pub struct Shared {
    pub history: Mutex<History>,
    /// Bumped on every change of the history.
    pub changed: watch::Sender<u64>,
    pub reports: Option<Reports>,
    pub health: Health,
    /// Ends the event streams at shutdown.
    pub shutdown: CancellationToken,
    /// The last view computed, by cursor: every page and stream shares it for up to a second.
    cache: Mutex<Option<(String, i64, Arc<crate::history::View>)>>,
}

impl Shared {
    pub fn new(history: History, reports: Option<Reports>, shutdown: CancellationToken) -> Self {
        Self {
            history: Mutex::new(history),
            changed: watch::Sender::new(0),
            reports,
            health: Health::default(),
            shutdown,
            cache: Mutex::new(None),
        }
    }

    /// Runs `f` on the history; wakes the event streams if it says something changed.
    pub fn update(&self, f: impl FnOnce(&mut History) -> bool) {
        let changed = f(&mut self.history.lock().expect("not poisoned"));
        if changed {
            self.changed.send_modify(|v| *v += 1);
        }
    }

    /// The view now: computed once per change (and at most a second old) whatever the number of
    /// pages open.
    fn view(&self) -> Arc<crate::history::View> {
        let h = self.history.lock().expect("not poisoned");
        let (cursor, now) = (h.cursor(), now_ms());
        let mut cache = self.cache.lock().expect("not poisoned");
        if let Some((c, at, v)) = cache.as_ref()
            && *c == cursor
            && now - at < 1000
        {
            return v.clone();
        }
        let v = Arc::new(h.view(now));
        *cache = Some((cursor, now, v.clone()));
        v
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The shortest time between two views sent to one page.
const THROTTLE: Duration = Duration::from_millis(250);

const UPLOT_JS: &[u8] = include_bytes!("../assets/vendor/uplot-1.6.32/uPlot.iife.min.js");
const UPLOT_CSS: &[u8] = include_bytes!("../assets/vendor/uplot-1.6.32/uPlot.min.css");
const UPLOT_LICENSE: &[u8] = include_bytes!("../assets/vendor/uplot-1.6.32/LICENSE");
const DASHBOARD_JS: &[u8] = include_bytes!("../assets/dashboard.js");
const DASHBOARD_CSS: &[u8] = include_bytes!("../assets/dashboard.css");

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/events", get(events))
        .route("/reports", get(report_dates))
        .route("/reports/{date}", get(report_day))
        .route("/api/view", get(api_view))
        .route("/api/windows", get(api_windows))
        .route("/api/reports", get(api_report_dates))
        .route("/api/reports/{date}", get(api_report_day))
        .route("/api/reports/{date}/parquet", get(api_report_parquet))
        .route("/assets/{name}", get(asset))
        .route(
            "/health",
            get(|State(s): State<Arc<Shared>>| async move { s.health.answer() }),
        )
        .route("/metrics", get(atenex_kafka::observe::render_metrics))
        .fallback(|| async { detail(StatusCode::NOT_FOUND, "no such page") })
        .with_state(shared)
}

fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "detail": message }))).into_response()
}

async fn index(State(s): State<Arc<Shared>>) -> Html<String> {
    Html(page::index(&s.view()))
}

async fn api_view(State(s): State<Arc<Shared>>) -> Response {
    Json(&*s.view()).into_response()
}

#[derive(Deserialize)]
struct SinceQuery {
    /// RFC 3339, or epoch ms.
    since: Option<String>,
}

async fn api_windows(State(s): State<Arc<Shared>>, Query(q): Query<SinceQuery>) -> Response {
    let since = match q.since.as_deref() {
        None => i64::MIN,
        Some(t) => match t.parse::<i64>().ok().or_else(|| {
            chrono::DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|d| d.timestamp_millis())
        }) {
            Some(ms) => ms,
            None => {
                return detail(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "since={t}: use an RFC 3339 time (2026-11-27T10:00:00Z) or epoch milliseconds"
                    ),
                );
            }
        },
    };
    let windows = s.history.lock().expect("not poisoned").windows_since(since);
    Json(windows).into_response()
}

#[derive(Deserialize)]
struct LastQuery {
    last: Option<String>,
}

async fn events(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<LastQuery>,
) -> impl IntoResponse {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.last);
    metrics::gauge!("atenex_dashboard_event_streams").increment(1.0);
    let stream = futures_util::stream::unfold(
        (s.clone(), s.changed.subscribe(), last, false),
        |(s, mut rx, mut last, sent)| async move {
            if sent {
                tokio::select! {
                    () = tokio::time::sleep(THROTTLE) => {}
                    () = s.shutdown.cancelled() => return None,
                }
            }
            loop {
                rx.borrow_and_update();
                let view = s.view();
                if last.as_deref() != Some(view.cursor.as_str()) {
                    let event = Event::default()
                        .event("view")
                        .id(view.cursor.clone())
                        .json_data(&*view)
                        .expect("views serialize");
                    last = Some(view.cursor.clone());
                    return Some((
                        Ok::<_, std::convert::Infallible>(event),
                        (s, rx, last, true),
                    ));
                }
                tokio::select! {
                    r = rx.changed() => if r.is_err() { return None },
                    () = s.shutdown.cancelled() => return None,
                }
            }
        },
    );
    let guard = StreamGuard;
    let stream = futures_util::StreamExt::map(stream, move |e| {
        let _ = &guard;
        e
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Counts the open event streams down when one ends.
struct StreamGuard;

impl Drop for StreamGuard {
    fn drop(&mut self) {
        metrics::gauge!("atenex_dashboard_event_streams").decrement(1.0);
    }
}

const NO_REPORTS: &str = "no reports directory: start the dashboard with --reports URL";

fn no_reports() -> Response {
    detail(StatusCode::NOT_FOUND, NO_REPORTS)
}

async fn report_dates(State(s): State<Arc<Shared>>) -> Response {
    let listed = match s.reports.clone() {
        Some(r) => tokio::task::spawn_blocking(move || r.dates())
            .await
            .map_err(anyhow::Error::from)
            .and_then(|d| d),
        None => Err(anyhow::anyhow!(NO_REPORTS)),
    };
    match listed {
        Ok(dates) => Html(page::report_dates(&dates, None)).into_response(),
        Err(e) => Html(page::report_dates(&[], Some(&format!("{e:#}")))).into_response(),
    }
}

/// `date`'s report, or the status and detail to answer.
async fn day(s: &Shared, date: String) -> Result<crate::reports::DayReport, (StatusCode, String)> {
    let r = s
        .reports
        .clone()
        .ok_or((StatusCode::NOT_FOUND, NO_REPORTS.to_owned()))?;
    let shown = date.clone();
    match tokio::task::spawn_blocking(move || r.day_report(&date)).await {
        Ok(Ok(Some(report))) => Ok(report),
        Ok(Ok(None)) => Err((
            StatusCode::NOT_FOUND,
            format!("no report for {shown} (dates: /api/reports)"),
        )),
        Ok(Err(e)) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the report of {shown} cannot be read: {e:#}"),
        )),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn report_day(State(s): State<Arc<Shared>>, Path(date): Path<String>) -> Response {
    match day(&s, date).await {
        Ok(r) => Html(page::report_day(&r)).into_response(),
        Err((status, message)) => detail(status, &message),
    }
}

async fn api_report_dates(State(s): State<Arc<Shared>>) -> Response {
    let Some(r) = s.reports.clone() else {
        return no_reports();
    };
    match tokio::task::spawn_blocking(move || r.dates()).await {
        Ok(Ok(dates)) => Json(dates).into_response(),
        Ok(Err(e)) => detail(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
        Err(e) => detail(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn api_report_day(State(s): State<Arc<Shared>>, Path(date): Path<String>) -> Response {
    match day(&s, date).await {
        Ok(r) => Json(r).into_response(),
        Err((status, message)) => detail(status, &message),
    }
}

async fn api_report_parquet(State(s): State<Arc<Shared>>, Path(date): Path<String>) -> Response {
    let Some(r) = s.reports.clone() else {
        return no_reports();
    };
    let shown = date.clone();
    match tokio::task::spawn_blocking(move || r.parquet(&date)).await {
        Ok(Ok(Some(bytes))) => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.apache.parquet".to_owned(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"daily_chunk_count-{shown}.parquet\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Ok(None)) => detail(StatusCode::NOT_FOUND, &format!("no report for {shown}")),
        Ok(Err(e)) => detail(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
        Err(e) => detail(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match name.as_str() {
        "uPlot.iife.min.js" => (UPLOT_JS, "text/javascript"),
        "uPlot.min.css" => (UPLOT_CSS, "text/css"),
        "uPlot.LICENSE" => (UPLOT_LICENSE, "text/plain; charset=utf-8"),
        "dashboard.js" => (DASHBOARD_JS, "text/javascript"),
        "dashboard.css" => (DASHBOARD_CSS, "text/css"),
        _ => return detail(StatusCode::NOT_FOUND, "no such asset"),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}
