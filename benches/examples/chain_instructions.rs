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
//!   worker runs them;
//! - `whole`: the whole contract checked the plain way
//!   ([`evkit_testkit::bench::HandContract`]: payload, key, headers and identity, each with
//!   `serde_json` and `jsonschema`, no cache), the bench's third baseline;
//! - `worker_tenants`, `whole_tenants`: `worker` and `whole` on the many-tenant workload, a
//!   tenant of its own per message (12,000 records made up front, whatever the count, so the
//!   difference of two counts leaves their making out).
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
    let usage =
        "usage: chain_instructions hand|copy|chain|worker|whole|worker_tenants|whole_tenants COUNT";
    let what = args.next().expect(usage);
    let count: usize = args.next().expect(usage).parse().expect(usage);
    let catalog = evkit_benches::catalog().expect("sample catalog");
    let topic = catalog.topic(TOPIC).expect("the sample topic");
    let sample = evkit_benches::sample(topic, 500).expect("topic has an example");
    let record = record_of(&sample);
    let tenants: Vec<OwnedMessage> = if what.ends_with("_tenants") {
        evkit_benches::many_tenants(topic, 12_000, 500)
            .expect("the many-tenant workload")
            .iter()
            .map(record_of)
            .collect()
    } else {
        Vec::new()
    };
    let whole = evkit_testkit::bench::HandContract::new(topic).expect("the whole contract");
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
        for i in 0..count {
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
                "whole" => assert!(whole.is_valid(black_box(&record))),
                "worker_tenants" => {
                    let env = Envelope::from_kafka(black_box(&tenants[i % tenants.len()]));
                    let outcome = chain.handle(Incoming::new(Arc::clone(&name), env)).await;
                    assert_eq!(outcome, Outcome::Ack);
                }
                "whole_tenants" => {
                    assert!(whole.is_valid(black_box(&tenants[i % tenants.len()])));
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

/// `sample` as the record a consumer reads.
fn record_of(sample: &evkit_benches::Sample) -> OwnedMessage {
    let mut headers = OwnedHeaders::new();
    for (name, value) in &sample.headers {
        headers = headers.insert(Header {
            key: name,
            value: Some(value),
        });
    }
    OwnedMessage::new(
        Some(sample.payload.clone()),
        sample.key.clone(),
        TOPIC.to_owned(),
        Timestamp::CreateTime(1_700_000_000_000),
        0,
        0,
        Some(headers),
    )
}
