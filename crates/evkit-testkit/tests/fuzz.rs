//! The fuzz targets' code on stable: the consume path never panics on arbitrary records (random
//! bytes, valid generated messages with bytes flipped), and the committed corpora of both
//! `fuzz/` targets replay with the right verdicts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use evkit_schema::Catalog;
use evkit_testkit::fuzz::{Drawn, Generators, RawRecord, Verdict, consume};
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
            let mut record = RawRecord::from_generated(u8::try_from(t).unwrap(), &m);
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

/// The committed corpus of a `fuzz/` target, sorted by file name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus"))
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_consume_corpus_replays_without_a_panic() {
    let catalog = catalog();
    let files = corpus("consume");
    assert!(files.len() >= 50, "a corpus of {} inputs", files.len());
    let (mut dispatched, mut dead) = (0, 0);
    for (_, bytes) in &files {
        // libFuzzer's `arbitrary` input: what the target decodes from the same bytes.
        let Ok(record) = RawRecord::arbitrary_take_rest(Unstructured::new(bytes)) else {
            continue;
        };
        match consume(&catalog, &record) {
            Verdict::Dispatched => dispatched += 1,
            Verdict::DeadLettered { .. } => dead += 1,
        }
    }
    assert!(dead > 0, "{dead} dead-lettered, {dispatched} dispatched");
}

#[test]
fn the_generators_corpus_replays_with_the_right_verdicts() {
    let generators = Generators::new(catalog()).unwrap();
    let files = corpus("generators");
    assert!(files.len() >= 50, "a corpus of {} inputs", files.len());
    let (mut valid, mut rules) = (0, std::collections::BTreeSet::new());
    for (name, bytes) in &files {
        match generators.run(bytes) {
            Ok(Drawn::Valid) => valid += 1,
            Ok(Drawn::Invalid { rule }) => {
                rules.insert(rule);
            }
            Ok(Drawn::Nothing) => {}
            Err(wrong) => panic!("corpus input {name}: {wrong}"),
        }
    }
    assert!(valid > 10, "{valid} valid messages in the corpus");
    assert!(rules.len() > 50, "{} rules broken: {rules:?}", rules.len());
}

/// The check the generators target makes can fail: judged by a consumer whose schema lost a
/// constraint, a message that breaks it is accepted, and the target names the rule.
#[test]
fn a_contract_that_lost_a_constraint_fails_the_generators_check() {
    let source = catalog();
    let dir = tempfile::tempdir().unwrap();
    let from = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"));
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let file = dir.path().join("platform.evkit.todo-created.event.json");
    let text = std::fs::read_to_string(&file).unwrap();
    let looser = text.replace(
        r#""title": { "type": "string", "minLength": 1, "maxLength": 255 }"#,
        r#""title": { "type": "string", "maxLength": 255 }"#,
    );
    assert_ne!(text, looser, "the schema changed");
    std::fs::write(&file, looser).unwrap();
    let judge = Arc::new(Catalog::load(dir.path()).unwrap());
    let topic = judge
        .topics()
        .iter()
        .position(|t| t.name() == "platform.evkit.todo-created")
        .unwrap();
    let generators = Generators::judged_by(&source, judge).unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let caught = (0..20_000).find_map(|_| {
        let mut bytes = vec![u8::try_from(topic).unwrap(), 1];
        bytes.extend((0..256).map(|_| rng.random::<u8>()));
        generators.run(&bytes).err()
    });
    let wrong = caught.expect("the looser contract is caught");
    assert!(
        wrong.contains("accepts a message that breaks minLength@/title"),
        "{wrong}"
    );
}
