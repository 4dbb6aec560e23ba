//! Runs `parse`, `parse_str`, `check` or `schema` (the payload schema alone) of one sample topic's ~500-byte
//! message N times, for counting instructions under valgrind's callgrind: a measure that,
//! unlike time, does not move with the load of a shared machine. `benches/callgrind.sh` runs it
//! and prints b/a per topic.
//!
//! ```text
//! validate_instructions platform.evkit.todo-created check 11000
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: validate_instructions TOPIC parse|parse_str|check|schema|check_runtime|schema_runtime|tenants_parse|tenants_check COUNT";
    let topic = args.next().expect(usage);
    let what = args.next().expect(usage);
    let count: u32 = args.next().expect(usage).parse().expect(usage);
    let catalog = if what.ends_with("_runtime") {
        evkit_benches::catalog_runtime()
    } else {
        evkit_benches::catalog()
    }
    .expect("sample catalog");
    let t = catalog
        .topic(&topic)
        .expect("a topic of the sample catalog");
    let sample = evkit_benches::sample(t, 500).expect("topic has an example");
    let contract = t.contract();
    // The payload (a CloudEvent's `data`) as the check hands it on, for `schema`.
    let parsed = contract
        .check(&sample.message())
        .expect("the sample is valid")
        .payload;
    // The many-tenant workload: 2,000 ~700-byte messages, each with its own identity.
    let tenants = if what.starts_with("tenants_") {
        evkit_benches::many_tenants(t, 2_000, 700).expect("a plain-JSON topic")
    } else {
        Vec::new()
    };
    for i in 0..count {
        let next = || &tenants[i as usize % tenants.len()];
        match what.as_str() {
            "tenants_parse" => {
                black_box(
                    serde_json::from_slice::<serde_json::Value>(black_box(&next().payload))
                        .unwrap(),
                );
            }
            "tenants_check" => {
                black_box(contract.check(black_box(&next().message())).unwrap());
            }
            "parse" => {
                black_box(
                    serde_json::from_slice::<serde_json::Value>(black_box(&sample.payload))
                        .unwrap(),
                );
            }
            // The same parse through `&str` (one UTF-8 pass over the buffer, then
            // `serde_json::from_str`), as the contract parses: a stricter baseline than (a).
            "parse_str" => {
                black_box(evkit_schema::parse_json(black_box(&sample.payload)).unwrap());
            }
            // `check_runtime`, `schema_runtime`: the catalog loaded without build-time validators.
            "check" | "check_runtime" => {
                black_box(contract.check(black_box(&sample.message())).unwrap());
            }
            // The payload schema alone (jsonschema), on a payload parsed once: the part of
            // `check` that is jsonschema's own work.
            "schema" | "schema_runtime" => {
                contract.check_event(black_box(&parsed)).unwrap();
            }
            _ => {
                eprintln!("{usage}");
                std::process::exit(2);
            }
        }
    }
}
