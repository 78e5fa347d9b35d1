//! The embedding service against the test broker and the OpenAI mock: a 429 storm and a 500
//! burst lose nothing and duplicate nothing, every vector is the one the mock derives from its
//! text, refusals go to chunks.processed.dlq with the reason, and an endpoint or configuration
//! failure (quota used up, a wrong key, URL or endpoint) pauses the service instead of
//! dead-lettering a backlog.

use atenex_contracts::topics::dlq_headers;
use atenex_embedding::batcher::Limits;
use atenex_embedding::client::{ApiKey, Client, ClientConfig};
use atenex_embedding::retry::RetryPolicy;
use atenex_embedding::service::{Embedding, EmbeddingConfig};
use atenex_kafka::observe::Health;
use atenex_kafka::{GroupConsumer, GroupSettings, OutRecord, Producer, testing};
use atenex_mock_openai::{Config, Faults, Server};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const MODEL: &str = "text-embedding-3-small";

/// The tests share chunks.processed and each group reads it from the beginning: one at a time, so
/// that each asserts on its own documents before the other's group embeds them again.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn service(mock: &Server) -> Embedding {
    service_at(&mock.base_url)
}

fn service_at(base_url: &str) -> Embedding {
    service_with(base_url, Health::default(), CancellationToken::new())
}

fn service_with(base_url: &str, health: Health, shutdown: CancellationToken) -> Embedding {
    let client = Client::new(ClientConfig {
        base_url: base_url.to_owned(),
        api_key: ApiKey::new("sk-test"),
        model: MODEL.into(),
        dimensions: None,
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    Embedding::new(
        client,
        Producer::new(&testing::config()).unwrap(),
        EmbeddingConfig {
            limits: Limits {
                max_inputs: 25,
                ..Limits::default()
            },
            concurrency: 4,
            retry: RetryPolicy {
                base: Duration::from_millis(10),
                max: Duration::from_millis(200),
                max_attempts: 30,
            },
            health,
            shutdown,
            ..EmbeddingConfig::default()
        },
    )
    .unwrap()
}

/// Runs the service on chunks.processed until `expected` records of ours were handled, with its
/// own loop (batches pipelined, as `atenex embedding` runs it).
async fn run_until(embedding: Embedding, group: &str, ours: &[String], expected: usize) {
    let mut settings = GroupSettings::new(group, &["chunks.processed"]);
    // Small batches, two in flight at once.
    settings.max_batch = 60;
    let consumer = GroupConsumer::new(&testing::config(), settings).unwrap();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let mut handled = 0;
    tokio::time::timeout(
        Duration::from_secs(120),
        std::sync::Arc::new(embedding).run_observed(
            &consumer,
            shutdown,
            |_| {},
            |batch, _| {
                handled += batch
                    .iter()
                    .filter(|r| ours.iter().any(|d| r.key.as_deref() == Some(d.as_bytes())))
                    .count();
                if handled >= expected {
                    stop.cancel();
                }
            },
        ),
    )
    .await
    .expect("the service handled every chunk within 2 minutes")
    .unwrap();
}

async fn produce(records: &[(String, Vec<u8>)]) {
    let producer = Producer::new(&testing::config()).unwrap();
    for (key, value) in records {
        producer
            .send(OutRecord::new(
                "chunks.processed",
                Some(key.as_bytes()),
                Some(value),
            ))
            .await
            .unwrap();
    }
}

fn chunk(doc: &str, company: &str, i: usize, text: &str) -> (String, Vec<u8>) {
    let v = json!({"chunk_id": format!("{doc}_{i}"), "document_id": doc, "company_id": company, "text": text, "page": 1});
    (doc.to_owned(), v.to_string().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_lose_nothing_duplicate_nothing_and_refusals_are_dead_letters() {
    let _serial = SERIAL.lock().await;
    let company = uuid::Uuid::new_v4().to_string();
    let docs: Vec<String> = (0..12).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut texts = BTreeMap::new();
    let mut records = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        for i in 0..40 {
            let text = format!(
                "document {d} chunk {i}: {}",
                "palabra word ".repeat(i % 7 + 1)
            );
            records.push(chunk(doc, &company, i, &text));
            texts.insert(format!("{doc}_{i}"), text);
        }
    }
    // Refusals, in a document of their own.
    let bad = uuid::Uuid::new_v4().to_string();
    records.push(chunk(&bad, &company, 0, "   "));
    records.push(chunk(&bad, &company, 1, &"word ".repeat(9000)));
    records.push((bad.clone(), b"{\"chunk_id\": 7".to_vec()));
    produce(&records).await;

    // 480 chunks in requests of 25: a storm of 8 rate limits, then 4 server errors.
    let mock = Server::start(Config {
        api_key: None,
        faults: Faults {
            rate_limit_burst: Some(2..10),
            error_burst: Some(12..16),
            retry_after: Duration::from_millis(20),
            ..Faults::default()
        },
    })
    .await
    .unwrap();
    let embedding = service(&mock);
    let group = testing::unique("embedding");
    let mut ours = docs.clone();
    ours.push(bad.clone());
    run_until(embedding, &group, &ours, records.len()).await;
    assert_eq!(mock.stats.rate_limited.load(Ordering::Relaxed), 8);
    assert_eq!(mock.stats.server_errors.load(Ordering::Relaxed), 4);

    // Exactly once each, with the mock's vector for its text.
    let ready = testing::read_topics(&["embeddings.ready"]).await;
    let mut seen = BTreeMap::new();
    for e in ready
        .iter()
        .filter(|e| docs.iter().any(|d| e.key.as_deref() == Some(d)))
    {
        let v: Value = serde_json::from_str(e.payload.as_deref().unwrap()).unwrap();
        let id = v["chunk_id"].as_str().unwrap().to_owned();
        assert_eq!(v["company_id"], company.as_str());
        let vector: Vec<f32> = v["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(
            vector,
            atenex_mock_openai::vector(MODEL, 1536, texts[&id].as_bytes()),
            "{id}"
        );
        *seen.entry(id).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), texts.len(), "every chunk embedded");
    assert!(seen.values().all(|&n| n == 1), "no duplicates");

    let letters = testing::read_topics(&["chunks.processed.dlq"]).await;
    let mine: Vec<String> = letters
        .iter()
        .filter(|e| e.key.as_deref() == Some(bad.as_str()))
        .map(|e| testing::header(e, dlq_headers::REASON).unwrap().to_owned())
        .collect();
    assert_eq!(mine.len(), 3, "{mine:?}");
    assert!(
        mine[0].contains("field `text`: must contain non-whitespace text"),
        "{mine:?}"
    );
    assert!(mine[1].contains("too long: 9001 tokens"), "{mine:?}");
    assert!(mine[2].starts_with("chunks.processed: field"), "{mine:?}");
}

/// Answers like OpenAI, except that a request with an input containing "poison" is a 400.
struct Poison;

impl wiremock::Respond for Poison {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let inputs: Vec<&str> = body["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        if inputs.iter().any(|t| t.contains("poison")) {
            return wiremock::ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": "Invalid 'input': poison is not allowed", "type": "invalid_request_error",
                "param": "input", "code": null}}));
        }
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": atenex_mock_openai::vector(MODEL, 1536, t.as_bytes())}))
            .collect();
        wiremock::ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": data}))
    }
}

/// A 400 for a request of many inputs is halved until the bad inputs stand alone: only they are
/// dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_input_is_isolated_and_dead_lettered_alone() {
    let _serial = SERIAL.lock().await;
    let company = uuid::Uuid::new_v4().to_string();
    let doc = uuid::Uuid::new_v4().to_string();
    let records: Vec<_> = (0..20)
        .map(|i| {
            let text = if i == 7 || i == 13 {
                format!("poison {i}")
            } else {
                format!("fine text {i}")
            };
            chunk(&doc, &company, i, &text)
        })
        .collect();
    produce(&records).await;
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(Poison)
        .mount(&server)
        .await;
    let group = testing::unique("embedding-poison");
    run_until(
        service_at(&format!("{}/v1", server.uri())),
        &group,
        std::slice::from_ref(&doc),
        20,
    )
    .await;
    // This test's requests (the other test's chunks may be embedded here too).
    let requests = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            let body = String::from_utf8_lossy(&r.body);
            body.contains("fine text") || body.contains("poison")
        })
        .count();
    assert!(
        (2..20).contains(&requests),
        "{requests} requests: halving, not one by one"
    );

    let ready: Vec<String> = testing::read_topics(&["embeddings.ready"])
        .await
        .iter()
        .filter(|e| e.key.as_deref() == Some(doc.as_str()))
        .map(|e| {
            serde_json::from_str::<Value>(e.payload.as_deref().unwrap()).unwrap()["chunk_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = (0..20)
        .filter(|i| *i != 7 && *i != 13)
        .map(|i| format!("{doc}_{i}"))
        .collect();
    assert_eq!(ready, expected, "the good chunks, once, in order");
    let letters: Vec<(String, String)> = testing::read_topics(&["chunks.processed.dlq"])
        .await
        .iter()
        .filter(|e| e.key.as_deref() == Some(doc.as_str()))
        .map(|e| {
            let v: Value = serde_json::from_str(e.payload.as_deref().unwrap()).unwrap();
            (
                v["chunk_id"].as_str().unwrap().to_owned(),
                testing::header(e, dlq_headers::REASON).unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        letters.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        vec![format!("{doc}_7"), format!("{doc}_13")]
    );
    assert!(
        letters
            .iter()
            .all(|(_, r)| r.contains("400") && r.contains("poison is not allowed")),
        "{letters:?}"
    );
}

/// Runs a service at `base_url` in `group` until it pauses, lets it try a few times more, then
/// shuts it down: the run must end at once and cleanly. Returns the reason health gave.
async fn paused(base_url: &str, group: &str) -> String {
    let health = Health::default();
    let shutdown = CancellationToken::new();
    let embedding = service_with(base_url, health.clone(), shutdown.clone());
    let consumer = GroupConsumer::new(
        &testing::config(),
        GroupSettings::new(group, &["chunks.processed"]),
    )
    .unwrap();
    let run = std::sync::Arc::new(embedding).run(&consumer, shutdown.clone());
    let watch = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(reason) = health.paused() {
                tokio::time::sleep(Duration::from_millis(500)).await;
                shutdown.cancel();
                return reason;
            }
            assert!(tokio::time::Instant::now() < deadline, "never paused");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (ran, reason) = tokio::join!(tokio::time::timeout(Duration::from_secs(90), run), watch);
    let summary = ran.expect("the shutdown ended the pause at once").unwrap();
    assert_eq!(summary.commits, 0, "nothing committed while paused");
    reason
}

/// One misconfiguration must never discard a backlog: the quota used up, a wrong key, a mistyped
/// URL (404), a 200 that is an HTML page — each pauses the service with the reason in its health
/// and the fix; nothing is dead-lettered or committed, shutdown ends the pause at once, and once
/// the endpoint is right the same group embeds every chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failure_pauses_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let company = uuid::Uuid::new_v4().to_string();
    let doc = uuid::Uuid::new_v4().to_string();
    let records: Vec<_> = (0..5)
        .map(|i| chunk(&doc, &company, i, "text that deserves a vector"))
        .collect();
    produce(&records).await;
    let group = testing::unique("embedding-paused");
    // The dead-letter topic exists whichever test of this binary runs first.
    let dlq = atenex_kafka::admin::TopicSpec {
        name: "chunks.processed.dlq".into(),
        partitions: 1,
        replication: None,
    };
    atenex_kafka::admin::create_topics(&testing::config(), &[dlq])
        .await
        .unwrap();

    let broke = Server::start(Config {
        api_key: None,
        faults: Faults {
            quota_requests: Some(0),
            ..Faults::default()
        },
    })
    .await
    .unwrap();
    let locked = Server::start(Config {
        api_key: Some("sk-the-right-key-0000".into()),
        faults: Faults::default(),
    })
    .await
    .unwrap();
    let good = Server::start(Config::default()).await.unwrap();
    let html = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_raw("<html>Welcome</html>", "text/html"),
        )
        .mount(&html)
        .await;
    for (url, expected) in [
        (broke.base_url.clone(), "insufficient_quota"),
        (locked.base_url.clone(), "401 invalid_api_key"),
        (
            good.base_url.replace("/v1", "/v2"),
            "check OPENAI_BASE_URL (it ends in /v1)",
        ),
        (
            format!("{}/v1", html.uri()),
            "is OPENAI_BASE_URL an OpenAI embeddings API?",
        ),
    ] {
        let reason = paused(&url, &group).await;
        assert!(reason.contains(expected), "{url}: {reason}");
        assert!(!reason.contains("sk-test"), "{reason}");
    }
    assert!(
        broke.stats.requests.load(Ordering::Relaxed) > 1,
        "tried again while paused"
    );
    let letters = testing::read_topics(&["chunks.processed.dlq"]).await;
    assert!(
        !letters
            .iter()
            .any(|e| e.key.as_deref() == Some(doc.as_str())),
        "nothing dead-lettered"
    );

    run_until(
        service(&good),
        &group,
        std::slice::from_ref(&doc),
        records.len(),
    )
    .await;
    let embedded = testing::read_topics(&["embeddings.ready"])
        .await
        .iter()
        .filter(|e| e.key.as_deref() == Some(doc.as_str()))
        .count();
    assert_eq!(
        embedded,
        records.len(),
        "every chunk of the backlog embedded"
    );
}
