//! Verification of a service's real code catches real bugs, with the cause named: deliberately
//! broken variants of a small todo-created consumer run through `service::verify_consumer` on a
//! real broker (the embedded one, or `EVKIT_BOOTSTRAP`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broken_producers_are_caught_with_the_rule_named_and_a_correct_one_passes() {
    use evkit::{Context, Metrics, Producer};
    use evkit_testkit::clients::{producer, send};
    use evkit_testkit::contracts::Contracts;
    use evkit_testkit::service::{ProducerCheck, verify_producer};

    let broker = Broker::start().await.unwrap();
    let catalog = catalog();
    let todo = serde_json::json!({
        "id": 42, "org_id": "12345", "title": "Water the plants",
        "created_at": "2026-11-01T09:30:00Z"
    });
    let identity = evkit_schema::encode_identity("12345", "User");
    let contracts = Contracts::load(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts"),
        &catalog,
    )
    .unwrap();
    let check = ProducerCheck {
        contracts: Some(contracts),
        ..ProducerCheck::default()
    };
    // A hand-written producer, as teams write them: raw rdkafka, its own headers and key.
    let raw = |key: &'static str, with_request_id: bool, payload: serde_json::Value| {
        let broker = &broker;
        let identity = identity.clone();
        move |config: evkit::Config| async move {
            let to = config.topics[TOPIC].clone();
            let p = producer(broker).map_err(|e| e.to_string())?;
            let mut headers: Vec<(&str, &[u8])> = vec![("x-rh-identity", identity.as_bytes())];
            if with_request_id {
                headers.push(("x-rh-insights-request-id", b"req-1"));
            }
            let body = serde_json::to_vec(&payload).map_err(|e| e.to_string())?;
            send(&p, &to, Some(key.as_bytes()), &headers, &body)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    let problems = |r: &evkit_testkit::service::ProducerReport| -> String {
        r.produced
            .iter()
            .flat_map(|p| p.problems.iter().cloned())
            .collect::<Vec<_>>()
            .join("; ")
    };

    // 1. A producer that omits x-rh-insights-request-id.
    let report = verify_producer(
        &broker,
        &catalog,
        TOPIC,
        &check,
        raw("12345", false, todo.clone()),
    )
    .await
    .unwrap();
    println!("{report}");
    assert!(!report.passed());
    let p = problems(&report);
    assert!(
        p.contains("x-rh-insights-request-id") && p.contains("required"),
        "{p}"
    );

    // 2. A producer whose key differs from the key pointer (/org_id).
    let report = verify_producer(
        &broker,
        &catalog,
        TOPIC,
        &check,
        raw("other-org", true, todo.clone()),
    )
    .await
    .unwrap();
    println!("{report}");
    assert!(!report.passed());
    assert!(
        problems(&report).contains("key-pointer"),
        "{}",
        problems(&report)
    );

    // 3. A producer that writes a float where the schema says integer.
    let mut float_id = todo.clone();
    float_id["id"] = serde_json::json!(1.5);
    let report = verify_producer(
        &broker,
        &catalog,
        TOPIC,
        &check,
        raw("12345", true, float_id),
    )
    .await
    .unwrap();
    println!("{report}");
    assert!(!report.passed());
    let p = problems(&report);
    assert!(p.contains("/id") && p.contains("[type"), "{p}");

    // 4. The evkit producer with a correct event passes (contract and every relies_on).
    let good = {
        let catalog = Arc::clone(&catalog);
        let todo = todo.clone();
        move |config: evkit::Config| async move {
            let p = Producer::new(&config, catalog, Metrics::new()).map_err(|e| e.to_string())?;
            p.produce(TOPIC, &todo, &Context::default().for_org("12345"))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    let report = verify_producer(&broker, &catalog, TOPIC, &check, good)
        .await
        .unwrap();
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.produced.len(), 1);

    // 5. A valid message that lacks a field a consumer relies on (`needy` reads the optional
    //    /description) fails, naming the service and the field.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("needy.yaml"),
        "service: needy\ndescription: reads descriptions\nconsumes:\n  - topic: platform.evkit.todo-created\n    relies_on: [/description]\n",
    )
    .unwrap();
    let needy = ProducerCheck {
        contracts: Some(Contracts::load(dir.path(), &catalog).unwrap()),
        ..ProducerCheck::default()
    };
    let report = verify_producer(&broker, &catalog, TOPIC, &needy, raw("12345", true, todo))
        .await
        .unwrap();
    println!("{report}");
    assert!(!report.passed());
    let p = problems(&report);
    assert!(p.contains("needy relies on /description"), "{p}");
}
