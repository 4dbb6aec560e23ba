//! The Gherkin contract suite (`features/`) on a real broker, then proof that it can fail: the
//! features under `tests/failing-features/` describe broken contracts and must fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cucumber::{StatsWriter as _, World as _, WriterExt as _, writer};
use evkit::{Incoming, Outcome, Router, typed};
use evkit_events::generated::platform_evkit_todo_created as created;
use evkit_testkit::steps::{EvkitWorld, register_service};

/// The services under test of `features/service.feature`: a reader that decodes every todo,
/// and one that panics when a todo has no description.
fn register_services() {
    register_service("todo-reader", |catalog| {
        Router::new(catalog)
            .route(
                created::TOPIC,
                typed(|_todo: created::Event, _msg: Incoming| async { Outcome::Ack }),
            )
            .build()
            .map_err(|e| e.to_string())
    });
    register_service("needs-description", |catalog| {
        Router::new(catalog)
            .route(
                created::TOPIC,
                typed(|todo: created::Event, _msg: Incoming| async move {
                    drop(todo.description.expect("a todo without a description"));
                    Outcome::Ack
                }),
            )
            .build()
            .map_err(|e| e.to_string())
    });
}

#[tokio::main]
async fn main() {
    register_services();
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
    // Every scenario there must fail (a broken contract, a broken service), not just one.
    let stats = must_fail.scenarios_stats();
    let caught = must_fail.execution_has_failed() && stats.failed >= 2 && stats.passed == 0;
    if !caught {
        eprintln!(
            "a must-fail feature passed ({} passed, {} failed): the suite cannot fail",
            stats.passed, stats.failed
        );
    }
    if !(passed && caught) {
        std::process::exit(1);
    }
}
