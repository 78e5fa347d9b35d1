//! Fault injection on the adapters with librdkafka's mock cluster (`atenex broker --embedded`):
//! broker errors that a real broker cannot be made to return on demand. The scenario suites
//! never run on the mock; these tests only check how our producer and consumer loop react.

use atenex_kafka::broker::EmbeddedBroker;
use atenex_kafka::producer::Pipeline;
use atenex_kafka::{GroupConsumer, GroupSettings, KafkaConfig, OutRecord, Producer, Record};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

fn config(broker: &EmbeddedBroker) -> KafkaConfig {
    // The mock's group coordinator waits out a departed member's session before it rebalances.
    KafkaConfig::from_vars(Vec::new())
        .with_bootstrap(Some(&broker.bootstrap()))
        .with("session.timeout.ms", "6000")
        .with("heartbeat.interval.ms", "500")
}

async fn consume_all(config: &KafkaConfig, topic: &str, n: usize) -> Vec<String> {
    let consumer = GroupConsumer::new(config, GroupSettings::new("g", &[topic])).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let token = CancellationToken::new();
    let (s, t) = (seen.clone(), token.clone());
    consumer
        .run(token, async |batch: &[Record]| {
            let mut s = s.lock().unwrap();
            s.extend(
                batch
                    .iter()
                    .map(|r| String::from_utf8(r.payload.clone().unwrap()).unwrap()),
            );
            if s.len() >= n {
                t.cancel();
            }
            Ok(())
        })
        .await
        .unwrap();
    seen.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_transient_produce_errors_are_retried_without_duplicates_or_reordering() {
    let broker = EmbeddedBroker::start(1).unwrap();
    let config = config(&broker);
    broker.cluster().create_topic("t", 1, 1).unwrap();
    // The next produce requests fail with retriable errors; the idempotent producer retries them.
    broker.cluster().request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__TRANSPORT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    let producer = Producer::new(&config).unwrap();
    let mut pipeline = Pipeline::new(&producer, 64).keep_deliveries();
    let values: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    for v in &values {
        pipeline
            .push(OutRecord::new("t", Some(b"k"), Some(v.as_bytes())))
            .await
            .unwrap();
    }
    let delivered = pipeline.finish().await.unwrap();
    let offsets: Vec<i64> = delivered.iter().map(|d| d.offset).collect();
    assert_eq!(
        offsets,
        (0..200).collect::<Vec<_>>(),
        "acknowledged in order, once each"
    );
    assert_eq!(consume_all(&config, "t", 200).await, values);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_a_failing_offset_commit_stops_the_loop_and_the_batch_comes_again() {
    let broker = EmbeddedBroker::start(1).unwrap();
    let config = config(&broker);
    broker.cluster().create_topic("t", 1, 1).unwrap();
    let producer = Producer::new(&config).unwrap();
    for i in 0..5 {
        let v = i.to_string();
        producer
            .send(OutRecord::new("t", None, Some(v.as_bytes())))
            .await
            .unwrap();
    }
    // A non-retriable commit error: the loop must report it, not pretend the batch is done.
    broker.cluster().request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED; 8],
    );
    let consumer = GroupConsumer::new(&config, GroupSettings::new("g", &["t"])).unwrap();
    let err = consumer
        .run(CancellationToken::new(), async |_b: &[Record]| Ok(()))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("committing offsets t[0] failed"),
        "{err:#}"
    );
    drop(consumer);
    broker
        .cluster()
        .clear_request_errors(RDKafkaApiKey::OffsetCommit);
    assert_eq!(
        consume_all(&config, "t", 5).await,
        ["0", "1", "2", "3", "4"]
    );
}
