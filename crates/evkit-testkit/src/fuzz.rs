//! What the fuzz targets run, here so that `cargo test` runs the same code on stable.
//!
//! - [`consume`]: raw bytes → [`Envelope`] → contract → router chain (validate, then a handler
//!   that decodes the event) → dead-letter headers on failure. It must never panic, whatever the
//!   bytes.
//! - [`Generators`]: the fuzzer's bytes seed the message generators, and every message they make is judged by the contract and the consume
//!   path: a valid one must pass, an invalid one must be refused for the rule it names.
//!
//! The `fuzz/` cargo-fuzz targets call these; `tests/fuzz.rs` replays their committed corpora.

use std::sync::Arc;

use proptest::strategy::{BoxedStrategy, Strategy as _, ValueTree as _};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::messages::{Generated, invalid_message, valid_message};

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

impl RawRecord {
    /// A generated message of the catalog's `topic`-th topic, at partition 0, offset 0.
    pub fn from_generated(topic: u8, m: &Generated) -> RawRecord {
        RawRecord {
            topic,
            partition: 0,
            offset: 0,
            key: m.key.clone(),
            headers: m
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), Some(v.clone())))
                .collect(),
            payload: Some(m.payload.clone()),
        }
    }
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

/// The message generators of every catalog topic, driven by fuzzer bytes.
pub struct Generators {
    catalog: Arc<Catalog>,
    /// Per topic: valid messages, and messages that break one named rule.
    strategies: Vec<(BoxedStrategy<Generated>, BoxedStrategy<Generated>)>,
}

impl std::fmt::Debug for Generators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generators")
            .field("topics", &self.strategies.len())
            .finish_non_exhaustive()
    }
}

/// The generators' random seed for fuzzer bytes: a hash of them. (A pass-through source, where
/// the bytes are the draws, gives only zeros once they run out, and `rand`'s uniform sampling
/// rejects a zero draw for most ranges and draws again, forever: seen hanging the target.)
fn seed(data: &[u8]) -> [u8; 32] {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut seed = [0u8; 32];
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        let mut h =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        h.write_usize(i);
        h.write(data);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    seed
}

/// What a generated message did; [`Generators::run`] returns an error for a wrong verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drawn {
    /// The bytes did not make a message (the generator rejected every draw).
    Nothing,
    /// A valid message, accepted by the contract and dispatched by the chain.
    Valid,
    /// An invalid message, refused for its rule and dead-lettered.
    Invalid {
        /// The rule it broke, as `Rule`'s `Display` writes it.
        rule: String,
    },
}

impl Generators {
    /// Builds the valid and invalid generators of every topic of `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Result<Generators, crate::Error> {
        Generators::judged_by(&Arc::clone(&catalog), catalog)
    }

    /// Generates from `source`'s topics and judges with `judge`'s contracts, topic by topic
    /// (every topic of `judge` must be in `source`): how a consumer built on another version of
    /// the catalog fares with this one's messages.
    pub fn judged_by(source: &Catalog, judge: Arc<Catalog>) -> Result<Generators, crate::Error> {
        let strategies = judge
            .topics()
            .iter()
            .map(|t| {
                let from = source
                    .topic(t.name())
                    .map_err(|e| crate::Error::Generator {
                        at: t.name().to_owned(),
                        reason: e.to_string(),
                    })?;
                Ok((valid_message(from)?, invalid_message(from)?))
            })
            .collect::<Result<_, crate::Error>>()?;
        Ok(Generators {
            catalog: judge,
            strategies,
        })
    }

    /// Draws one message from `data`: its first byte picks the topic, the second whether it is
    /// valid or invalid, and a hash of the rest seeds the generator.
    /// `Err` names a verdict that is wrong: a valid message refused, an invalid one accepted
    /// or refused for other reasons than its rule, or one the consume path treats otherwise.
    pub fn run(&self, data: &[u8]) -> Result<Drawn, String> {
        let (Some(&pick), Some(&kind)) = (data.first(), data.get(1)) else {
            return Ok(Drawn::Nothing);
        };
        let i = usize::from(pick) % self.strategies.len().max(1);
        let (Some(topic), Some((valid, invalid))) =
            (self.catalog.topics().get(i), self.strategies.get(i))
        else {
            return Ok(Drawn::Nothing);
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed(&data[2..]));
        let config = Config {
            max_local_rejects: 256,
            max_global_rejects: 256,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(config, rng);
        let want_valid = kind % 2 == 0;
        let strategy = if want_valid { valid } else { invalid };
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            return Ok(Drawn::Nothing);
        };
        let m = tree.current();
        let checked = topic.contract().check(&m.message());
        let record = RawRecord::from_generated(u8::try_from(i).unwrap_or(u8::MAX), &m);
        let verdict = consume(&self.catalog, &record);
        let name = topic.name();
        match (&m.broken, checked) {
            (None, Ok(_)) if verdict == Verdict::Dispatched => Ok(Drawn::Valid),
            (None, Ok(_)) => Err(format!(
                "{name}: a valid message the contract accepts was not dispatched ({verdict:?}): \
                 {m:?}"
            )),
            (None, Err(e)) => Err(format!(
                "{name}: the valid generator made a message the contract refuses: {e}: {m:?}"
            )),
            (Some(rule), Ok(_)) => Err(format!(
                "{name}: the contract accepts a message that breaks {rule}: {m:?}"
            )),
            (Some(rule), Err(e)) => {
                if !e.violations().iter().any(|v| rule.explains(v)) {
                    return Err(format!(
                        "{name}: {rule} is not among the violations {:?}: {m:?}",
                        e.violations()
                    ));
                }
                match verdict {
                    Verdict::DeadLettered { ref reason, .. } if reason == "validation" => {
                        Ok(Drawn::Invalid {
                            rule: rule.to_string(),
                        })
                    }
                    other => Err(format!(
                        "{name}: a message that breaks {rule} was not dead-lettered for \
                         validation ({other:?}): {m:?}"
                    )),
                }
            }
        }
    }
}
