//! The generators' fuzz check (`evkit_testkit::fuzz::Generators::run`, what the
//! `fuzz/` target `generators` runs) over many inputs, in release mode on every core: each
//! input picks a topic, valid or invalid, and seeds that generator; every message must get the
//! right verdict from the contract and the consume path. Prints the campaign's numbers; exits 1
//! on a wrong verdict (and prints it).
//!
//! ```text
//! cargo run --release -p evkit-benches --example generators_campaign -- 1000000
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use evkit_schema::Catalog;
use evkit_testkit::fuzz::{Drawn, Generators};

/// One thread's tally: valid, invalid, no message, the rules broken, the wrong verdicts.
type Tally = (u64, u64, u64, BTreeSet<String>, Vec<String>);

fn main() {
    let count: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("a count"));
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let catalog = Arc::new(
        Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas")).expect("the catalog"),
    );
    let started = Instant::now();
    let results: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let catalog = Arc::clone(&catalog);
                s.spawn(move || {
                    let generators = Generators::new(catalog).expect("generators");
                    let (mut valid, mut invalid, mut nothing) = (0, 0, 0);
                    let (mut rules, mut wrong) = (BTreeSet::new(), Vec::new());
                    let mut i = t as u64;
                    while i < count {
                        // Topic i % 256 (modulo the topics), valid or invalid by the next bit,
                        // and a seed of its own (the casts keep the low byte on purpose).
                        let mut data = vec![i as u8, (i >> 2) as u8];
                        data.extend(i.to_le_bytes());
                        match generators.run(&data) {
                            Ok(Drawn::Valid) => valid += 1,
                            Ok(Drawn::Invalid { rule }) => {
                                invalid += 1;
                                rules.insert(rule);
                            }
                            Ok(Drawn::Nothing) => nothing += 1,
                            Err(e) => wrong.push(format!("input {i}: {e}")),
                        }
                        i += threads as u64;
                    }
                    (valid, invalid, nothing, rules, wrong)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let (mut valid, mut invalid, mut nothing) = (0, 0, 0);
    let (mut rules, mut wrong) = (BTreeSet::new(), Vec::new());
    for (v, i, n, r, w) in results {
        valid += v;
        invalid += i;
        nothing += n;
        rules.extend(r);
        wrong.extend(w);
    }
    println!(
        "{count} inputs on {threads} threads in {:.0} s ({:.0}/s): {valid} valid messages \
         accepted and dispatched, {invalid} invalid ones refused for their rule and \
         dead-lettered ({} distinct rules), {nothing} draws without a message, {} wrong verdicts",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        rules.len(),
        wrong.len()
    );
    for w in wrong.iter().take(5) {
        println!("WRONG: {w}");
    }
    if !wrong.is_empty() {
        std::process::exit(1);
    }
}
