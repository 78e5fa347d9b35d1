//! The OpenAI client against wiremock: the exact request it sends, and how each answer is read.

use atenex_embedding::client::{ApiKey, Client, ClientConfig, Failure};
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer, dimensions: Option<usize>) -> Client {
    Client::new(ClientConfig {
        base_url: format!("{}/v1/", server.uri()),
        api_key: ApiKey::new("sk-test-key"),
        model: "text-embedding-3-small".into(),
        dimensions,
        timeout: Duration::from_millis(500),
    })
    .unwrap()
}

fn vector(n: usize, x: f64) -> Vec<f64> {
    vec![x; n]
}

#[tokio::test]
async fn sends_openais_request_and_maps_indexes_back() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .and(header("authorization", "Bearer sk-test-key"))
        .and(body_json(
            json!({"model": "text-embedding-3-small", "input": ["a", "b", "c"], "dimensions": 4}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            // Out of order on purpose: the client must use `index`.
            "data": [
                {"object": "embedding", "index": 2, "embedding": vector(4, 0.3)},
                {"object": "embedding", "index": 0, "embedding": vector(4, 0.1)},
                {"object": "embedding", "index": 1, "embedding": vector(4, 0.2)},
            ],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        })))
        .expect(1)
        .mount(&server)
        .await;
    let got = client(&server, Some(4))
        .embed(&["a", "b", "c"])
        .await
        .unwrap();
    let got: Vec<&str> = got.iter().map(|v| v.get()).collect();
    assert_eq!(
        got,
        vec![
            "[0.1,0.1,0.1,0.1]",
            "[0.2,0.2,0.2,0.2]",
            "[0.3,0.3,0.3,0.3]"
        ]
    );
}

#[tokio::test]
/// Not the input's fault: the endpoint's or the configuration's (the service pauses on these).
async fn wrong_dimensions_and_missing_indexes_are_the_endpoints_fault() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"index": 0, "embedding": vector(3, 0.5)}],
        })))
        .mount(&server)
        .await;
    let c = client(&server, None);
    match c.embed(&["a"]).await {
        Err(Failure::Endpoint { reason, .. }) => {
            assert!(reason.contains("3 dimensions, expected 1536"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let c = client(&server, Some(3));
    match c.embed(&["a", "b"]).await {
        Err(Failure::Endpoint { reason, .. }) => {
            assert!(reason.contains("no embedding for input 1"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn rate_limits_carry_their_hints_and_the_key_never_leaks() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after-ms", "120")
                .insert_header("x-ratelimit-reset-tokens", "6m0s")
                .set_body_json(json!({"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})),
        )
        .mount(&server)
        .await;
    match client(&server, None).embed(&["a"]).await {
        Err(Failure::Retryable { reason, hints }) => {
            assert_eq!(hints.wait(), Some(Duration::from_millis(120)));
            assert!(reason.contains("429 rate_limit_exceeded"), "{reason}");
            assert!(!reason.contains("sk-test-key"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    match client(&server, None).embed(&["a"]).await {
        Err(Failure::Retryable { reason, .. }) => assert!(reason.contains("timed out"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let closed = Client::new(ClientConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key: ApiKey::new("sk-test-key"),
        model: "text-embedding-3-small".into(),
        dimensions: None,
        timeout: Duration::from_secs(1),
    })
    .unwrap();
    match closed.embed(&["a"]).await {
        Err(Failure::Retryable { reason, .. }) => {
            assert!(reason.contains("cannot connect"), "{reason}");
            assert!(!reason.contains("sk-test-key"));
        }
        other => panic!("{other:?}"),
    }
}
