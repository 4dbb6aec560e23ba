//! Runs one piece of a consumer's per-message work on the sample `todo-created` message N times,
//! without Kafka, for counting instructions under valgrind's callgrind (`benches/callgrind.sh`
//! prints the table). The pieces:
//!
//! - `hand`: what the bench's hand-written consumer does per record: `serde_json` parse of the
//!   payload and jsonschema's `is_valid` (a validator compiled at run time);
//! - `copy`: [`evkit::Envelope::from_kafka`], copying a record off the wire;
//! - `chain`: the chain the consumer runs per message ([`evkit::consumer::chain`], around a
//!   handler that acknowledges), from an envelope already copied;
//! - `worker`: `copy` and `chain` together, inside a worker's metric tally, as a partition
//!   worker runs them.
//!
//! ```text
//! chain_instructions chain 11000
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use evkit::{Envelope, Handler as _, Incoming, Metrics, Outcome};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

const TOPIC: &str = "platform.evkit.todo-created";

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: chain_instructions hand|copy|chain|worker COUNT";
    let what = args.next().expect(usage);
    let count: i64 = args.next().expect(usage).parse().expect(usage);
    let catalog = evkit_benches::catalog().expect("sample catalog");
    let topic = catalog.topic(TOPIC).expect("the sample topic");
    let sample = evkit_benches::sample(topic, 500).expect("topic has an example");
    let mut headers = OwnedHeaders::new();
    for (name, value) in &sample.headers {
        headers = headers.insert(Header {
            key: name,
            value: Some(value),
        });
    }
    let record = OwnedMessage::new(
        Some(sample.payload.clone()),
        sample.key.clone(),
        TOPIC.to_owned(),
        Timestamp::CreateTime(1_700_000_000_000),
        0,
        0,
        Some(headers),
    );
    let metrics = Metrics::new();
    let chain = evkit_benches::noop_chain(&catalog, &metrics, TOPIC).expect("the chain");
    let schema = jsonschema::validator_for(&topic.schema).unwrap();
    let envelope = Envelope::from_kafka(&record);
    let name: Arc<str> = Arc::from(TOPIC);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let run = async {
        for _ in 0..count {
            match what.as_str() {
                "hand" => {
                    let event =
                        serde_json::from_slice::<serde_json::Value>(black_box(&sample.payload))
                            .unwrap();
                    assert!(schema.is_valid(black_box(&event)));
                }
                "copy" => {
                    black_box(Envelope::from_kafka(black_box(&record)));
                }
                "chain" => {
                    let env = black_box(envelope.clone());
                    let outcome = chain.handle(Incoming::new(Arc::clone(&name), env)).await;
                    assert_eq!(outcome, Outcome::Ack);
                }
                "worker" => {
                    let env = Envelope::from_kafka(black_box(&record));
                    let outcome = chain.handle(Incoming::new(Arc::clone(&name), env)).await;
                    assert_eq!(outcome, Outcome::Ack);
                }
                _ => {
                    eprintln!("{usage}");
                    std::process::exit(2);
                }
            }
        }
    };
    rt.block_on(evkit::metrics::tallied(metrics.topic(TOPIC), run));
}
