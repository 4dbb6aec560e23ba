//! How fast the generators draw whole messages for each sample topic, valid and invalid, on
//! one thread: `cargo bench -p evkit-benches --bench generate`. Target: at least 20,000 valid
//! messages per second per topic. Prints messages/s and the share the contract accepts (valid)
//! or rejects for the named rule (invalid), so a fast but wrong generator cannot pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use evkit_schema::Catalog;
use evkit_testkit::messages::{Generated, invalid_message, valid_message};
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn rate(
    strategy: &BoxedStrategy<Generated>,
    check: &dyn Fn(&Generated) -> bool,
    budget: Duration,
) -> (f64, usize, usize) {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    // Warm up (strategy caches, allocator).
    for _ in 0..200 {
        let _ = strategy.new_tree(&mut runner).unwrap().current();
    }
    // Generation alone is timed: each batch of 256 is checked (and dropped) off the clock.
    let mut spent = Duration::ZERO;
    let mut drawn = 0usize;
    let mut good = 0usize;
    let mut batch = Vec::with_capacity(256);
    while spent < budget {
        let start = Instant::now();
        batch.clear(); // freeing the last batch is part of generating this one
        for _ in 0..256 {
            batch.push(strategy.new_tree(&mut runner).unwrap().current());
        }
        spent += start.elapsed();
        drawn += batch.len();
        good += batch.iter().filter(|m| check(m)).count();
    }
    #[allow(clippy::cast_precision_loss)]
    let per_sec = drawn as f64 / spent.as_secs_f64();
    (per_sec, good, drawn)
}

fn main() {
    let seconds: f64 = std::env::var("EVKIT_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(seconds);
    let catalog = Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas")).unwrap();
    println!("generated messages per second, one thread ({seconds} s per row)");
    println!(
        "{:<36} {:>12} {:>10} {:>12} {:>10}",
        "topic", "valid/s", "accepted", "invalid/s", "explained"
    );
    for topic in catalog.topics() {
        let contract = topic.contract();
        let valid = valid_message(topic).unwrap();
        let (v_rate, v_ok, v_n) = rate(&valid, &|m| contract.check(&m.message()).is_ok(), budget);
        let invalid = invalid_message(topic).unwrap();
        let (i_rate, i_ok, i_n) = rate(
            &invalid,
            &|m| {
                let rule = m.broken.as_ref().expect("named rule");
                contract
                    .check(&m.message())
                    .err()
                    .is_some_and(|e| e.violations().iter().any(|v| rule.explains(v)))
            },
            budget,
        );
        println!(
            "{:<36} {:>12.0} {:>9.1}% {:>12.0} {:>9.1}%",
            topic.name(),
            v_rate,
            100.0 * ok_share(v_ok, v_n),
            i_rate,
            100.0 * ok_share(i_ok, i_n),
        );
        assert_eq!(v_ok, v_n, "{}: a valid message was rejected", topic.name());
        assert_eq!(
            i_ok,
            i_n,
            "{}: an invalid message was not explained",
            topic.name()
        );
    }
}

#[allow(clippy::cast_precision_loss)]
fn ok_share(ok: usize, n: usize) -> f64 {
    ok as f64 / n.max(1) as f64
}
