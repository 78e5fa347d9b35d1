//! `atenex record`: reads topics and writes every record as a kcat `-J` envelope line, in arrival
//! order. Reads all partitions by assignment (no consumer group offsets are committed).

use crate::config::KafkaConfig;
use anyhow::{Context as _, bail};
use atenex_contracts::{Envelope, EnvelopeWriter, Header, TimestampType};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// When recording stops (besides a signal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Runs until interrupted.
    Never,
    /// Stops when every partition reached the end offset it had when recording started.
    AtEnd,
    /// Stops after this many records.
    MaxRecords(u64),
}

#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub topics: Vec<String>,
    /// From the oldest retained record; otherwise only records produced from now on.
    pub from_beginning: bool,
    pub stop: Stop,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSummary {
    pub records: u64,
    pub per_topic: BTreeMap<String, u64>,
    /// Keys, values or headers that were not UTF-8 and were written with U+FFFD replacements
    /// (the envelope holds text, as kcat's does).
    pub lossy_utf8: u64,
}

type Tp = (String, i32);

/// Every record of `topics`, from the beginning to their current end, as envelopes (no consumer
/// group: nothing is committed).
pub async fn read_all(config: &KafkaConfig, topics: &[&str]) -> anyhow::Result<Vec<Envelope>> {
    let mut out = EnvelopeWriter::new(Vec::new());
    let opts = RecordOptions {
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        from_beginning: true,
        stop: Stop::AtEnd,
    };
    record(config, &opts, &mut out, CancellationToken::new()).await?;
    let bytes = out.into_inner();
    atenex_contracts::EnvelopeReader::new(&bytes[..])
        .map(|e| e.map_err(anyhow::Error::from))
        .collect()
}

/// Records `opts.topics` into `out` until `opts.stop` or `shutdown`.
pub async fn record<W: Write>(
    config: &KafkaConfig,
    opts: &RecordOptions,
    out: &mut EnvelopeWriter<W>,
    shutdown: CancellationToken,
) -> anyhow::Result<RecordSummary> {
    let config = config
        .clone()
        .with(
            "group.id",
            &format!("atenex-record-{}", uuid::Uuid::new_v4().simple()),
        )
        .with("enable.auto.commit", "false")
        .with("enable.partition.eof", "true")
        // What committed transactions wrote, as kcat shows by default.
        .with_default("isolation.level", "read_committed")
        .with("allow.auto.create.topics", "false");
    let consumer: StreamConsumer = config
        .client_config()
        .create()
        .map_err(|e| config.explain(e))?;

    // Partitions, their leaders (the envelope's `broker`), and the end offsets at start.
    let mut leaders: BTreeMap<Tp, i32> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for topic in &opts.topics {
        let md = crate::blocking(|| consumer.fetch_metadata(Some(topic), Duration::from_secs(30)))
            .with_context(|| {
                format!("cannot fetch metadata from {}", config.bootstrap_servers())
            })?;
        let t = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .filter(|t| t.error().is_none() && !t.partitions().is_empty());
        let Some(t) = t else {
            bail!(
                "topic {topic} does not exist on {}",
                config.bootstrap_servers()
            );
        };
        for p in t.partitions() {
            leaders.insert((topic.clone(), p.id()), p.leader());
            let start = if opts.from_beginning {
                Offset::Beginning
            } else {
                Offset::End
            };
            tpl.add_partition_offset(topic, p.id(), start)?;
        }
    }
    let mut pending: BTreeMap<Tp, i64> = BTreeMap::new();
    if opts.stop == Stop::AtEnd {
        for (topic, partition) in leaders.keys() {
            let (low, high) = crate::blocking(|| {
                consumer.fetch_watermarks(topic, *partition, Duration::from_secs(30))
            })?;
            if opts.from_beginning && high > low {
                pending.insert((topic.clone(), *partition), high);
            }
        }
    }
    consumer.assign(&tpl)?;
    // End-of-partition events name only the partition number. Partitions that will report an end
    // without being awaited (empty or already done) are counted here, so that an event is charged
    // to an awaited partition only when none of those can explain it.
    let mut eof_due: BTreeSet<Tp> = leaders
        .keys()
        .filter(|tp| !pending.contains_key(*tp))
        .cloned()
        .collect();

    let mut summary = RecordSummary::default();
    let done = |summary: &RecordSummary, pending: &BTreeMap<Tp, i64>| match opts.stop {
        Stop::Never => false,
        Stop::AtEnd => pending.is_empty(),
        Stop::MaxRecords(n) => summary.records >= n,
    };
    while !done(&summary, &pending) {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = consumer.recv() => r,
        };
        match received {
            Ok(m) => {
                let key = (m.topic().to_owned(), m.partition());
                match pending.get(&key) {
                    Some(&end) if m.offset() + 1 >= end => {
                        pending.remove(&key);
                        eof_due.insert(key.clone());
                    }
                    Some(_) => {}
                    None => {
                        eof_due.insert(key.clone());
                    }
                }
                let (tstype, ts) = match m.timestamp() {
                    Timestamp::NotAvailable => (None, None),
                    Timestamp::CreateTime(t) => (Some(TimestampType::Create), Some(t)),
                    Timestamp::LogAppendTime(t) => (Some(TimestampType::Logappend), Some(t)),
                };
                let mut lossy = false;
                let mut text = |b: &[u8]| match std::str::from_utf8(b) {
                    Ok(s) => s.to_owned(),
                    Err(_) => {
                        lossy = true;
                        String::from_utf8_lossy(b).into_owned()
                    }
                };
                let headers = m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| Header {
                                name: h.key.to_owned(),
                                value: h.value.map(&mut text),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let envelope = Envelope {
                    topic: key.0.clone(),
                    partition: key.1,
                    offset: m.offset(),
                    tstype,
                    ts,
                    broker: leaders.get(&key).copied().unwrap_or(-1),
                    headers,
                    key: m.key().map(&mut text),
                    payload: m.payload().map(&mut text),
                };
                out.write(&envelope)
                    .context("cannot write the recorded stream")?;
                summary.records += 1;
                metrics::counter!(crate::observe::names::RECORDS_IN, "topic" => key.0.clone())
                    .increment(1);
                *summary.per_topic.entry(key.0).or_default() += 1;
                if lossy {
                    summary.lossy_utf8 += 1;
                }
            }
            Err(KafkaError::PartitionEOF(p)) => {
                if let Some(due) = eof_due.iter().find(|(_, q)| *q == p).cloned() {
                    eof_due.remove(&due);
                    continue;
                }
                // An awaited partition reached its end before its last offset: the offsets left
                // are transaction markers. With several candidates, positions decide.
                let unfinished: Vec<Tp> =
                    pending.keys().filter(|(_, q)| *q == p).cloned().collect();
                if let [only] = unfinished.as_slice() {
                    pending.remove(only);
                    continue;
                }
                let positions = consumer.position()?;
                for tp in &unfinished {
                    let at = positions
                        .find_partition(&tp.0, tp.1)
                        .and_then(|e| e.offset().to_raw());
                    if at.is_some_and(|o| o >= pending[tp]) {
                        pending.remove(tp);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "consumer error while recording");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    out.flush()?;
    Ok(summary)
}
