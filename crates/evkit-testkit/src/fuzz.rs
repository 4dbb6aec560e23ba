//! The consume path for fuzzing: raw bytes → [`Envelope`] → contract → router chain (validate,
//! then a handler that decodes the event) → dead-letter headers on failure. It must never panic,
//! whatever the bytes. The `fuzz/` cargo-fuzz target and the `arbitrary`-driven test
//! (`tests/fuzz.rs`, on stable) both call [`consume`].

use std::sync::Arc;

use evkit::middleware::validate::Validate;
use evkit::{Envelope, Handler, Incoming, Outcome, handler_fn};
use evkit_schema::Catalog;

/// A record as it could come off the wire: anything at all.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
pub struct RawRecord {
    /// Picks the catalog topic (modulo the number of topics).
    pub topic: u8,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Headers, names and values arbitrary.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Payload.
    pub payload: Option<Vec<u8>>,
}

/// What the chain did with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: the handler got it and decoded the event.
    Dispatched,
    /// Refused: it would go to the dead-letter topic with this reason and these headers.
    DeadLettered {
        /// `evkit-dlq-reason`.
        reason: String,
        /// How many headers the dead letter carries.
        headers: usize,
    },
}

/// Runs one record through the consume path of `catalog` (no broker: the part between
/// `Envelope::from_kafka` and the dead-letter producer).
pub fn consume(catalog: &Arc<Catalog>, record: &RawRecord) -> Verdict {
    let topics = catalog.topics();
    let Some(topic) = topics.get(usize::from(record.topic) % topics.len().max(1)) else {
        return Verdict::DeadLettered {
            reason: "no topic".to_owned(),
            headers: 0,
        };
    };
    let envelope = Envelope {
        topic: topic.name().to_owned(),
        partition: record.partition,
        offset: record.offset,
        key: record.key.clone(),
        headers: record.headers.clone(),
        payload: record.payload.clone(),
        timestamp_ms: None,
    };
    let decode: Arc<dyn Handler> = Arc::new(handler_fn(|msg: Incoming| async move {
        match msg.decode::<serde_json::Value>() {
            Ok(_) => Outcome::Ack,
            Err(f) => Outcome::Reject(f),
        }
    }));
    let chain = Validate::new(decode, Arc::clone(topic.contract()), None);
    let outcome = futures::executor::block_on(
        chain.handle(Incoming::new(topic.name().to_owned(), envelope.clone())),
    );
    match outcome {
        Outcome::Ack | Outcome::Retry(_) => Verdict::Dispatched,
        Outcome::Reject(f) => {
            let h = evkit::dead_letter::headers(
                &envelope,
                f.reason.as_str(),
                &f.message,
                &f.violations,
                f.attempts,
                0,
            );
            Verdict::DeadLettered {
                reason: f.reason.as_str().to_owned(),
                headers: h.len(),
            }
        }
    }
}
