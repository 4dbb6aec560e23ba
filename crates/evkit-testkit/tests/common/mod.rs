//! Helpers shared by the property tests of this crate.

use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Cases per property.
pub const CASES: u32 = 256;

/// A runner of [`CASES`] cases, seeded from `seed_name` (a schema or topic name): deterministic,
/// so a failure reproduces.
pub fn runner(seed_name: &str) -> TestRunner {
    let mut seed = [0u8; 32];
    for (i, b) in seed_name.bytes().enumerate() {
        seed[i % 32] ^= b;
    }
    TestRunner::new_with_rng(
        Config {
            cases: CASES,
            max_global_rejects: CASES * 64,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    )
}
