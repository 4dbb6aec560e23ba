//! Prints the generators' conformance table over the vendored JSON-Schema-Test-Suite:
//! `cargo run --release -p evkit-testkit --example suite_report [-- --details]`.

use std::path::Path;

use evkit_testkit::suite::{DRAFTS, Effort, Report, run};

fn main() -> Result<(), evkit_testkit::Error> {
    let details = std::env::args().any(|a| a == "--details");
    let only = std::env::args().skip(1).find(|a| a.starts_with("draft"));
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/json-schema-test-suite");
    let mut reports = Vec::new();
    for (dir, draft) in DRAFTS {
        if only.as_deref().is_some_and(|o| o != *dir) {
            continue;
        }
        let t = std::time::Instant::now();
        let r = run(&suite, dir, *draft, Effort::default())?;
        eprintln!("{dir}: {:.1} s", t.elapsed().as_secs_f64());
        if details {
            for d in &r.details {
                println!("{dir} {d}");
            }
        }
        reports.push(r);
    }
    print!("{}", Report::table(&reports));
    Ok(())
}
