//! The mock over real HTTP: OpenAI's validation, answers and faults.

use atenex_mock_openai::{Config, Faults, Server, vector};
use serde_json::{Value, json};
use std::time::Duration;

async fn post(
    server: &Server,
    key: Option<&str>,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/embeddings", server.base_url))
        .json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap())
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[tokio::test]
async fn embeddings_are_deterministic_unit_vectors_in_input_order() {
    let server = Server::start(Config::default()).await.unwrap();
    let body = json!({"model": "text-embedding-3-small", "input": ["hola mundo", "hello world", "hola mundo"]});
    let (status, headers, out) = post(&server, Some("sk-test"), body).await;
    assert_eq!(status, 200, "{out}");
    assert!(headers.contains_key("x-ratelimit-remaining-requests"));
    assert_eq!(out["object"], "list");
    assert_eq!(out["model"], "text-embedding-3-small");
    let data = out["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["index"], i);
        assert_eq!(d["object"], "embedding");
        let v = floats(&d["embedding"]);
        assert_eq!(v.len(), 1536);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }
    assert_eq!(floats(&data[0]["embedding"]), floats(&data[2]["embedding"]));
    assert_ne!(floats(&data[0]["embedding"]), floats(&data[1]["embedding"]));
    assert_eq!(
        floats(&data[1]["embedding"]),
        vector("text-embedding-3-small", 1536, b"hello world")
    );
    // cl100k_base: "hello world" is [15339, 1917] (checked by the token-array test below), "hola
    // mundo" is 3 (as tiktoken-rs counts it).
    assert_eq!(out["usage"]["prompt_tokens"], 3 + 2 + 3);
    assert_eq!(out["usage"]["total_tokens"], 3 + 2 + 3);
}

#[tokio::test]
async fn dimensions_base64_and_token_arrays() {
    let server = Server::start(Config::default()).await.unwrap();
    let (s, _, out) = post(
        &server,
        Some("k"),
        json!({"model": "text-embedding-3-large", "input": "x", "dimensions": 256}),
    )
    .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["data"][0]["embedding"].as_array().unwrap().len(), 256);
    let (s, _, out) = post(
        &server,
        Some("k"),
        json!({"model": "text-embedding-ada-002", "input": "x", "dimensions": 256}),
    )
    .await;
    assert_eq!(
        (s, out["error"]["param"].as_str()),
        (400, Some("dimensions")),
        "{out}"
    );
    let (s, _, out) = post(
        &server,
        Some("k"),
        json!({"model": "text-embedding-3-small", "input": "x", "dimensions": 4000}),
    )
    .await;
    assert_eq!(s, 400, "{out}");
    // base64: little-endian f32s of the same vector.
    let (s, _, out) = post(
        &server,
        Some("k"),
        json!({"model": "text-embedding-3-small", "input": "abc", "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(s, 200);
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(out["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let v: Vec<f32> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(v, vector("text-embedding-3-small", 1536, b"abc"));
    // Token arrays (cl100k "hello world" = [15339, 1917]) embed as their text.
    let (s, _, out) = post(
        &server,
        Some("k"),
        json!({"model": "text-embedding-3-small", "input": [[15339, 1917]]}),
    )
    .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(
        floats(&out["data"][0]["embedding"]),
        vector("text-embedding-3-small", 1536, b"hello world")
    );
}

#[tokio::test]
async fn invalid_requests_get_openais_errors() {
    let server = Server::start(Config {
        api_key: Some("sk-right-key-123456".into()),
        ..Config::default()
    })
    .await
    .unwrap();
    let key = Some("sk-right-key-123456");
    let err = |out: &Value| out["error"]["message"].as_str().unwrap().to_owned();

    let (s, _, out) = post(
        &server,
        None,
        json!({"model": "text-embedding-3-small", "input": "x"}),
    )
    .await;
    assert_eq!(s, 401);
    assert!(err(&out).contains("didn't provide an API key"));
    let (s, _, out) = post(
        &server,
        Some("sk-wrong-key-abcdefgh"),
        json!({"model": "text-embedding-3-small", "input": "x"}),
    )
    .await;
    assert_eq!(
        (s, out["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert!(
        !err(&out).contains("sk-wrong-key-abcdefgh"),
        "the key is redacted: {out}"
    );

    let (s, _, out) = post(&server, key, json!({"model": "gpt-embed-9", "input": "x"})).await;
    assert_eq!(
        (s, out["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );
    for input in [
        json!(""),
        json!(["a", ""]),
        json!([]),
        json!([1, "a"]),
        json!(42),
    ] {
        let (s, _, out) = post(
            &server,
            key,
            json!({"model": "text-embedding-3-small", "input": input}),
        )
        .await;
        assert_eq!(s, 400, "{input}: {out}");
        assert_eq!(out["error"]["type"], "invalid_request_error");
    }
    let many: Vec<String> = (0..2049).map(|i| format!("t{i}")).collect();
    let (s, _, out) = post(
        &server,
        key,
        json!({"model": "text-embedding-3-small", "input": many}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(err(&out).contains("2048"), "{out}");
    let long = "word ".repeat(8200);
    let (s, _, out) = post(
        &server,
        key,
        json!({"model": "text-embedding-3-small", "input": [long]}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        err(&out).contains("maximum context length is 8192 tokens"),
        "{out}"
    );
    let big = "word ".repeat(8000);
    let total: Vec<&str> = (0..40).map(|_| big.as_str()).collect();
    let (s, _, out) = post(
        &server,
        key,
        json!({"model": "text-embedding-3-small", "input": total}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(err(&out).contains("max 300000 tokens per request"), "{out}");
    let (s, _, _) = post(
        &server,
        key,
        json!({"model": "text-embedding-3-small", "input": "x", "encoding_format": "hex"}),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn faults_come_when_configured() {
    let server = Server::start(Config {
        api_key: None,
        faults: Faults {
            rate_limit_every: Some(3),
            error_burst: Some(4..6),
            quota_requests: Some(4),
            retry_after: Duration::from_millis(1500),
            ..Faults::default()
        },
    })
    .await
    .unwrap();
    let body = json!({"model": "text-embedding-3-small", "input": "x"});
    let mut statuses = Vec::new();
    for _ in 0..9 {
        let (s, h, out) = post(&server, Some("k"), body.clone()).await;
        if s == 429 && out["error"]["code"] == "rate_limit_exceeded" {
            assert_eq!(h["retry-after"], "2");
            assert_eq!(h["retry-after-ms"], "1500");
            assert_eq!(h["x-ratelimit-reset-requests"], "1500ms");
        }
        statuses.push((s, out["error"]["code"].as_str().map(str::to_owned)));
    }
    let rl = Some("rate_limit_exceeded".to_owned());
    let quota = Some("insufficient_quota".to_owned());
    assert_eq!(
        statuses,
        vec![
            (200, None),
            (200, None),
            (429, rl.clone()),
            (500, None),
            (500, None),
            (429, rl.clone()),
            (200, None),
            (200, None),
            (429, quota.clone()),
        ]
    );
    assert_eq!(
        server.stats.ok.load(std::sync::atomic::Ordering::Relaxed),
        4
    );
}
