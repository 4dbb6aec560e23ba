//! Verification of a service's real code catches real bugs, with the cause named: deliberately
//! broken variants of a small todo-created consumer run through `service::verify_consumer` on a
//! real broker (the embedded one, or `EVKIT_BOOTSTRAP`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use evkit::{Incoming, Outcome, Router, Routes, handler_fn, typed};
use evkit_events::generated::platform_evkit_todo_created as created;
use evkit_schema::Catalog;
use evkit_testkit::Broker;
use evkit_testkit::service::{ConsumerCheck, ConsumerReport, verify_consumer};

const TOPIC: &str = "platform.evkit.todo-created";

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas")).unwrap())
}

fn check() -> ConsumerCheck {
    ConsumerCheck {
        valid: 48,
        invalid: 8,
        seed: 7,
        ..ConsumerCheck::default()
    }
}

async fn run(broker: &Broker, routes: Routes) -> ConsumerReport {
    let report = verify_consumer(broker, routes, TOPIC, &check())
        .await
        .unwrap();
    println!("{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broken_consumers_are_caught_with_the_cause_and_a_harmless_one_passes() {
    let broker = Broker::start().await.unwrap();

    // 1. A handler that panics when an optional field is absent.
    let panics = Router::new(catalog())
        .route(
            TOPIC,
            typed(|todo: created::Event, _msg: Incoming| async move {
                let description = todo.description.expect("every todo has a description");
                drop(description);
                Outcome::Ack
            }),
        )
        .build()
        .unwrap();
    let report = run(&broker, panics).await;
    assert!(!report.passed());
    let failure = report.failures().next().unwrap().failure.clone().unwrap();
    assert!(failure.contains("panic"), "{failure}");
    assert!(
        failure.contains("every todo has a description"),
        "the panic text is shown: {failure}"
    );
    let (minimal, outcome) = report.minimal.clone().expect("a shrunk message");
    let payload: serde_json::Value = serde_json::from_slice(&minimal.payload).unwrap();
    assert!(payload.get("description").is_none(), "{payload}");
    assert!(outcome.contains("panic"), "{outcome}");
    // Shrunk: the optional fields that do not matter are gone too.
    for optional in ["due", "tags", "priority"] {
        assert!(
            payload.get(optional).is_none(),
            "{optional} not shrunk away: {payload}"
        );
    }

    // 2. A handler that returns Retry forever for one valid value.
    let retries = Router::new(catalog())
        .route(
            TOPIC,
            typed(|todo: created::Event, _msg: Incoming| async move {
                if todo.priority == Some(created::TodoCreatedEventPriority::High) {
                    Outcome::retry("high-priority todos are not supported yet")
                } else {
                    Outcome::Ack
                }
            }),
        )
        .build()
        .unwrap();
    let report = run(&broker, retries).await;
    assert!(!report.passed());
    let failure = report.failures().next().unwrap().failure.clone().unwrap();
    assert!(
        failure.contains("dead-lettered with reason `error`"),
        "{failure}"
    );
    assert!(failure.contains("high-priority todos"), "{failure}");
    let (minimal, _) = report.minimal.clone().expect("a shrunk message");
    let payload: serde_json::Value = serde_json::from_slice(&minimal.payload).unwrap();
    assert_eq!(payload["priority"], "high", "{payload}");
    assert!(report.to_string().contains("seed 7"), "{report}");
    // Every failure is a valid high-priority todo; nothing else failed.
    assert!(report.failures().all(|v| v.valid), "{report}");

    // 3. A handler that acks without reading the payload: not a bug, so it passes.
    let acks = Router::new(catalog())
        .route(TOPIC, handler_fn(|_msg: Incoming| async { Outcome::Ack }))
        .build()
        .unwrap();
    let report = run(&broker, acks).await;
    assert!(report.passed(), "{report}");
    assert!(report.uncommitted.is_empty(), "{report}");
    assert_eq!(report.verdicts.len(), 56);
    // The invalid ones were dead-lettered as `validation` and never reached the handler.
    for v in report.verdicts.iter().filter(|v| !v.valid) {
        assert_eq!(v.dead_lettered.as_deref(), Some("validation"), "{}", v.name);
        assert!(v.attempts.is_empty(), "{}", v.name);
    }
    assert!(report.junit().contains("offsets committed to the end"));
}
