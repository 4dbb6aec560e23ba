//! Small helpers to produce and consume owned records in tests.

use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::{Broker, Error};

/// A consumed record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Payload.
    pub payload: Option<Vec<u8>>,
}

/// An idempotent producer with `acks=all` for this broker.
pub fn producer(broker: &Broker) -> Result<FutureProducer, Error> {
    broker
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        // The Java clients' partitioner, so a key lands where other producers put it.
        .set("partitioner", "murmur2_random")
        .create()
        .map_err(crate::kafka("creating a producer"))
}

/// A consumer in `group`, reading from the earliest offset, committing only when told.
pub fn consumer(broker: &Broker, group: &str) -> Result<StreamConsumer, Error> {
    broker
        .client_config()
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("partition.assignment.strategy", "range")
        .create()
        .map_err(crate::kafka("creating a consumer"))
}

/// Sends one record and returns its `(partition, offset)`.
pub async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    headers: &[(&str, &[u8])],
    payload: &[u8],
) -> Result<(i32, i64), Error> {
    let mut owned = OwnedHeaders::new();
    for (name, value) in headers {
        owned = owned.insert(Header {
            key: name,
            value: Some(*value),
        });
    }
    let mut record = FutureRecord::to(topic).payload(payload).headers(owned);
    if let Some(k) = key {
        record = record.key(k);
    }
    producer
        .send(record, Duration::from_secs(15))
        .await
        .map(|d| (d.partition, d.offset))
        .map_err(|(e, _)| Error::Kafka {
            context: format!("producing to {topic}"),
            source: e,
        })
}

/// Receives up to `n` records, giving up after `timeout` (returns what it got).
pub async fn receive(consumer: &StreamConsumer, n: usize, timeout: Duration) -> Vec<Record> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => out.push(Record {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default(),
                payload: m.payload().map(<[u8]>::to_vec),
            }),
            // Transient consumer errors (e.g. a broker restarting) are retried until the deadline.
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => break,
        }
    }
    out
}

/// Subscribes to `topics`; the group assigns partitions on the next polls.
pub fn subscribe(consumer: &StreamConsumer, topics: &[&str]) -> Result<(), Error> {
    consumer
        .subscribe(topics)
        .map_err(crate::kafka("subscribing"))?;
    Ok(())
}
