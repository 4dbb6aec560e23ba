//! The consume path never panics on arbitrary records (the `arbitrary` path of the `fuzz/`
//! target, on stable): random bytes, and valid generated messages with bytes flipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use evkit_schema::Catalog;
use evkit_testkit::fuzz::{RawRecord, Verdict, consume};
use evkit_testkit::messages::valid_message;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas")).unwrap())
}

#[test]
fn arbitrary_records_never_panic_and_are_dead_lettered() {
    let catalog = catalog();
    let mut rng = StdRng::seed_from_u64(1);
    let mut dead = 0;
    for _ in 0..5_000 {
        let len = rng.random_range(0..2_048);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let Ok(record) = RawRecord::arbitrary(&mut Unstructured::new(&bytes)) else {
            continue;
        };
        if let Verdict::DeadLettered { reason, headers } = consume(&catalog, &record) {
            assert_eq!(reason, "validation");
            assert!(
                headers >= record.headers.len() + 8,
                "dead-letter headers added"
            );
            dead += 1;
        }
    }
    assert!(
        dead > 4_000,
        "random bytes are almost never a valid message ({dead})"
    );
}

#[test]
fn valid_messages_with_flipped_bytes_never_panic() {
    let catalog = catalog();
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[3; 32]),
    );
    let mut rng = StdRng::seed_from_u64(2);
    let (mut dispatched, mut dead) = (0, 0);
    for (t, topic) in catalog.topics().iter().enumerate() {
        let strategy = valid_message(topic).unwrap();
        for _ in 0..300 {
            let m = strategy.new_tree(&mut runner).unwrap().current();
            let mut record = RawRecord {
                topic: u8::try_from(t).unwrap(),
                partition: 0,
                offset: 0,
                key: m.key.clone(),
                headers: m
                    .headers
                    .iter()
                    .map(|(n, v)| (n.clone(), Some(v.clone())))
                    .collect(),
                payload: Some(m.payload.clone()),
            };
            // Unchanged, it passes the whole chain.
            assert_eq!(consume(&catalog, &record), Verdict::Dispatched, "{m:?}");
            dispatched += 1;
            // A few flipped bytes anywhere: never a panic.
            for _ in 0..rng.random_range(1..4) {
                let target = rng.random_range(0..3);
                let bytes = match target {
                    0 => record.payload.as_mut(),
                    1 => record.key.as_mut(),
                    _ => record.headers.first_mut().and_then(|(_, v)| v.as_mut()),
                };
                if let Some(b) = bytes.filter(|b| !b.is_empty()) {
                    let i = rng.random_range(0..b.len());
                    b[i] = rng.random();
                }
            }
            if matches!(consume(&catalog, &record), Verdict::DeadLettered { .. }) {
                dead += 1;
            }
        }
    }
    assert_eq!(dispatched, 300 * catalog.topics().len());
    assert!(dead > 0, "some flipped messages must be refused");
}
