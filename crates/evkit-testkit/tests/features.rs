//! The Gherkin contract suite (`features/`) on a real broker, then proof that it can fail: the
//! features under `tests/failing-features/` describe broken contracts and must fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cucumber::{StatsWriter as _, World as _, WriterExt as _, writer};
use evkit_testkit::steps::EvkitWorld;

#[tokio::main]
async fn main() {
    let here = env!("CARGO_MANIFEST_DIR");
    let junit_path = std::env::var("EVKIT_JUNIT")
        .unwrap_or_else(|_| format!("{here}/../../target/cucumber-junit.xml"));
    let junit = std::fs::File::create(&junit_path).expect("JUnit report file");
    let suite = EvkitWorld::cucumber()
        .max_concurrent_scenarios(4)
        .with_writer(
            writer::Basic::raw(std::io::stdout(), writer::Coloring::Never, 0)
                .summarized()
                .tee::<EvkitWorld, _>(writer::JUnit::for_tee(junit, 0))
                .normalized(),
        )
        .fail_on_skipped()
        .run(format!("{here}/../../features"))
        .await;
    println!("JUnit report: {junit_path}");
    let passed = !suite.execution_has_failed() && suite.passed_steps() > 0;

    println!("\n--- features that must fail (a broken contract) ---");
    let must_fail = EvkitWorld::cucumber()
        .with_writer(
            writer::Basic::raw(std::io::stdout(), writer::Coloring::Never, 0)
                .summarized()
                .normalized(),
        )
        .fail_on_skipped()
        .run(format!("{here}/tests/failing-features"))
        .await;
    let caught = must_fail.execution_has_failed();
    if !caught {
        eprintln!("the broken-contract feature passed: the suite cannot fail");
    }
    if !(passed && caught) {
        std::process::exit(1);
    }
}
