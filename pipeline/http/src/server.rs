//! [`serve`]: an axum router on a listener, under [`Limits`].

use crate::Limits;
use crate::body_rate::{self, BodyRate};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Connections over [`Limits::max_connections`] answered 503 at once; more are closed unanswered.
const REFUSALS: usize = 64;

/// The answer to a connection over [`Limits::max_connections`].
fn busy() -> Vec<u8> {
    let body = r#"{"detail":"the server has too many connections open; try again soon"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `router` on `listener` under `limits` until `shutdown` is cancelled, then shuts down
/// within `limits.shutdown_timeout` (see the crate's documentation). Returns once every
/// connection is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let rule = BodyRate {
        bytes_per_sec: limits.min_body_rate,
        grace: limits.body_grace,
    };
    let router = router.layer(axum::middleware::from_fn_with_state(
        rule,
        body_rate::enforce,
    ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and the like: the listener stays; try again shortly.
                    tracing::warn!(error = %e, "accepting a connection failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("http_connections_refused_total").increment(1);
            // Answering takes a descriptor for up to 100 ms: under a flood, beyond `REFUSALS`
            // answers in flight the connection is just closed.
            if let Ok(answering) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(answering);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    match tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown()).await {
        Ok(()) => tracing::debug!("every connection finished"),
        Err(_) => {
            tracing::warn!(
                still_open = connections.len(),
                timeout = %humantime::format_duration(limits.shutdown_timeout),
                "the shutdown timeout passed: closing the connections still open"
            );
            connections.abort_all();
        }
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Answers 503 and closes, spending at most a tenth of a second on it: what the client has sent
/// by then is read first, so that closing does not reset the connection before the answer is read.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_millis(100), async {
        stream.write_all(&busy()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        loop {
            stream.readable().await?;
            match stream.try_read(&mut sink) {
                Ok(0) => return Ok::<(), std::io::Error>(()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_busy_answer_is_well_formed() {
        let busy = super::busy();
        let text = std::str::from_utf8(&busy).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .contains("too many connections")
        );
    }
}
