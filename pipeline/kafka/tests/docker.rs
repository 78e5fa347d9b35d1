//! The testcontainers path, for machines with a Docker engine (this project's machines have none):
//!
//!     ATENEX_KAFKA=testcontainers cargo test -p atenex-kafka --features testcontainers -- --include-ignored
//!
//! runs this test and the whole `real_broker` suite against Docker's `apache/kafka` image.

use atenex_contracts::{Envelope, EnvelopeReader, EnvelopeWriter};
use atenex_kafka::record::{RecordOptions, Stop, record};
use atenex_kafka::replay::{ReplayOptions, replay};
use atenex_kafka::testing::{self, unique};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine: ATENEX_KAFKA=testcontainers cargo test -p atenex-kafka --features testcontainers -- --include-ignored"]
async fn testcontainers_kafka_round_trips_a_stream() {
    assert_eq!(
        std::env::var(testing::SELECT_ENV).as_deref(),
        Ok("testcontainers"),
        "run with ATENEX_KAFKA=testcontainers"
    );
    let topic = unique("docker");
    let input: Vec<Envelope> = (0..10)
        .map(|i| Envelope {
            topic: topic.clone(),
            partition: 0,
            offset: i,
            tstype: None,
            ts: Some(1_764_201_600_000 + i),
            broker: -1,
            headers: vec![],
            key: Some(format!("k{i}")),
            payload: Some(format!("{{\"n\":{i}}}")),
        })
        .collect();
    let config = testing::config();
    replay(
        &config,
        &input,
        &ReplayOptions::default(),
        CancellationToken::new(),
        |_| {},
    )
    .await
    .unwrap();
    let mut w = EnvelopeWriter::new(Vec::new());
    let opts = RecordOptions {
        topics: vec![topic],
        from_beginning: true,
        stop: Stop::AtEnd,
    };
    record(&config, &opts, &mut w, CancellationToken::new())
        .await
        .unwrap();
    let back: Vec<Envelope> = EnvelopeReader::new(&w.into_inner()[..])
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        back.iter().map(|e| e.payload.clone()).collect::<Vec<_>>(),
        input.iter().map(|e| e.payload.clone()).collect::<Vec<_>>()
    );
}
