//! Every limit of `atenex_http::serve`, against a real server on 127.0.0.1 and raw TCP clients
//! that behave as slow, idle or too many clients do. Durations are short so the tests are quick;
//! each bound is checked with a wide margin (what is asserted is that the server acts, not how fast).

use atenex_http::testing::{connect, until_closed};
use atenex_http::{Limits, serve};
use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn app() -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/echo",
            post(|body: Body| async move {
                match axum::body::to_bytes(body, usize::MAX).await {
                    Ok(b) => format!("{} bytes", b.len()),
                    Err(e) => format!("body error: {e}"),
                }
            }),
        )
        .route(
            "/late-reader",
            post(|body: Body| async move {
                // Busy elsewhere (a slow upstream) before it reads the body.
                tokio::time::sleep(Duration::from_secs(1)).await;
                match axum::body::to_bytes(body, usize::MAX).await {
                    Ok(b) => format!("{} bytes", b.len()),
                    Err(e) => format!("body error: {e}"),
                }
            }),
        )
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        )
}

fn limits() -> Limits {
    Limits {
        header_timeout: Duration::from_millis(300),
        min_body_rate: 1000,
        body_grace: Duration::from_millis(300),
        max_connections: 4,
        shutdown_timeout: Duration::from_millis(500),
    }
}

struct Running {
    addr: SocketAddr,
    shutdown: CancellationToken,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(limits: Limits) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let done = tokio::spawn(serve(listener, app(), limits, shutdown.clone()));
    Running {
        addr,
        shutdown,
        done,
    }
}

fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_connections_are_closed_after_the_header_timeout() {
    let server = start(limits()).await;
    let addr = server.addr;
    blocking(move || {
        // Nothing sent at all.
        let t = Instant::now();
        assert_eq!(until_closed(connect(addr)), "");
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t.elapsed()
        );
        // Half a head, then silence.
        let mut s = connect(addr);
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
        let answer = until_closed(s);
        assert!(!answer.contains("200 OK"), "{answer}");
        // A head sent a byte at a time, slower than the timeout allows in total.
        let mut s = connect(addr);
        let t = Instant::now();
        for b in b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" {
            if s.write_all(&[*b]).is_err() || t.elapsed() > Duration::from_secs(3) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!until_closed(s).contains("200 OK"));
        // An answered request, then an idle keep-alive connection: closed too.
        let mut s = connect(addr);
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let answer = until_closed(s);
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_the_minimum_rate_is_answered_408_and_a_fast_one_is_served() {
    let server = start(limits()).await;
    let addr = server.addr;
    blocking(move || {
        let mut s = connect(addr);
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789")
            .unwrap();
        let answer = until_closed(s);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains(r#"{"detail":"the request body arrived slower than 1000 bytes/s"#),
            "{answer}"
        );
        // A trickle: a byte every 100 ms is 10 bytes/s.
        let mut s = connect(addr);
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            .unwrap();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) && s.write_all(b"x").is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(until_closed(s).starts_with("HTTP/1.1 408"));
        // Fast enough: served whole.
        let body = vec![b'y'; 200_000];
        let mut s = connect(addr);
        write!(
            s,
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
        let answer = until_closed(s);
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("200000 bytes"), "{answer}");
    })
    .await
    .unwrap();
}

/// Time the handler spends not reading is not the client's: half the body at once, the rest
/// 1.2 s later, to a handler that starts reading after 1 s — served, though the wall clock since
/// the head is far past the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_is_not_reading_does_not_blame_the_client() {
    let server = start(limits()).await;
    let addr = server.addr;
    blocking(move || {
        let mut s = connect(addr);
        s.write_all(b"POST /late-reader HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\nConnection: close\r\n\r\n")
            .unwrap();
        s.write_all(&[b'a'; 100]).unwrap();
        std::thread::sleep(Duration::from_millis(1200));
        s.write_all(&[b'b'; 100]).unwrap();
        let answer = until_closed(s);
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("200 bytes"), "{answer}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_bound_get_503_at_once_and_the_server_recovers() {
    let server = start(Limits {
        header_timeout: Duration::from_secs(2),
        ..limits()
    })
    .await;
    let addr = server.addr;
    blocking(move || {
        // Four idle connections take every slot.
        let held: Vec<TcpStream> = (0..4).map(|_| connect(addr)).collect();
        std::thread::sleep(Duration::from_millis(200));
        let mut s = connect(addr);
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let answer = until_closed(s);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("too many connections"), "{answer}");
        // Once they are gone (closed by the client or by the header timeout), /health is served.
        drop(held);
        let t = Instant::now();
        loop {
            let mut s = connect(addr);
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let answer = until_closed(s);
            if answer.starts_with("HTTP/1.1 200 OK") {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(5), "{answer}");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_and_cuts_requests_in_flight_at_the_timeout() {
    let server = start(Limits {
        header_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let addr = server.addr;
    let (idle, hung) = blocking(move || {
        let idle = connect(addr);
        let mut hung = connect(addr);
        hung.write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        (idle, hung)
    })
    .await
    .unwrap();
    let t = Instant::now();
    server.shutdown.cancel();
    server.done.await.unwrap().unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(450),
        "waited for the request: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "bounded: {took:?}");
    blocking(move || {
        assert_eq!(until_closed(idle), "");
        assert!(!until_closed(hung).contains("never"));
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    })
    .await
    .unwrap();
}
