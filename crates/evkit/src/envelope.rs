use std::fmt;

use rdkafka::message::{Headers as _, Message as KafkaMessage};

/// A consumed record, owned: topic, partition, offset, key, headers and payload.
///
/// Handlers see envelopes (or the topic's generated type), never rdkafka's types. Its `Debug`
/// shows where the record came from and the sizes of its parts, never header values or payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key (`None` when absent).
    pub key: Option<Vec<u8>>,
    /// Headers in wire order; a header may have no value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Payload (`None` for a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Broker or producer timestamp, in milliseconds since the epoch, when the record has one.
    pub timestamp_ms: Option<i64>,
}

impl Envelope {
    /// Copies a record off the wire. Nothing here can fail: bytes stay bytes until a contract
    /// checks them.
    pub fn from_kafka<M: KafkaMessage>(m: &M) -> Envelope {
        Envelope {
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
            timestamp_ms: m.timestamp().to_millis(),
        }
    }

    /// The record as a contract sees it.
    pub fn message(&self) -> evkit_schema::Message<'_> {
        evkit_schema::Message {
            key: self.key.as_deref(),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_deref()))
                .collect(),
            payload: self.payload.as_deref(),
        }
    }

    /// The first header with this name (case-insensitive), if it has a value.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("key_len", &self.key.as_ref().map(Vec::len))
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("payload_len", &self.payload.as_ref().map(Vec::len))
            .field("timestamp_ms", &self.timestamp_ms)
            .finish()
    }
}
