//! Fuzzes the consume path: arbitrary record → envelope → contract → router chain → dead-letter
//! headers. Any panic is a bug. Run with `cargo +nightly fuzz run consume` from the repository
//! root; `crates/evkit-testkit/tests/fuzz.rs` runs the same function on stable in `cargo test`.
#![no_main]

use std::sync::{Arc, LazyLock};

use evkit_schema::Catalog;
use evkit_testkit::fuzz::{RawRecord, consume};
use libfuzzer_sys::fuzz_target;

static CATALOG: LazyLock<Arc<Catalog>> = LazyLock::new(|| {
    Arc::new(
        Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas"))
            .expect("the repository catalog loads"),
    )
});

fuzz_target!(|record: RawRecord| {
    let _ = consume(&CATALOG, &record);
});
