//! Fuzzes the message generators through the contract: the fuzzer's bytes pick a catalog topic
//! and valid or invalid, and seed that generator (a hash of the rest of the bytes), and each
//! message must get the right verdict: a valid one accepted and dispatched, an invalid one
//! refused for the rule it names and dead-lettered. A wrong verdict panics with the message.
//! Run with `cargo +nightly fuzz run generators` from the repository root;
//! `crates/evkit-testkit/tests/fuzz.rs` replays the committed corpus in `cargo test`.
#![no_main]

use std::sync::{Arc, LazyLock};

use evkit_schema::Catalog;
use evkit_testkit::fuzz::Generators;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static GENERATORS: Generators = Generators::new(Arc::clone(&CATALOG))
        .expect("every catalog topic has generators");
}

static CATALOG: LazyLock<Arc<Catalog>> = LazyLock::new(|| {
    Arc::new(
        Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas"))
            .expect("the repository catalog loads"),
    )
});

fuzz_target!(|data: &[u8]| {
    GENERATORS.with(|g| {
        if let Err(wrong) = g.run(data) {
            panic!("{wrong}");
        }
    });
});
