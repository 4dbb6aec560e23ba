//! Contract verification of the service's **real code**, the way a team adds it to its own
//! service: the production routes (`todo_service::routes`, with a temporary SQLite file for the
//! store) run as a consumer-group member on a real broker (the embedded one, or
//! `EVKIT_BOOTSTRAP`) and get every producer example of `platform.evkit.todo-created` from
//! `contracts/`, 256 generated valid todos and 32 generated invalid ones. Set `EVKIT_JUNIT=DIR`
//! for a `JUnit` report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use evkit::{Config, Metrics, Producer};
use evkit_schema::Catalog;
use evkit_testkit::Broker;
use evkit_testkit::contracts::Contracts;
use evkit_testkit::service::{ConsumerCheck, verify_consumer};
use todo_service::{Store, TODO_CREATED, TODO_INDEXED};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_real_consume_path_passes_contract_verification() {
    let broker = Broker::start().await.unwrap();
    let catalog = Arc::new(
        Catalog::load_with(
            Path::new(ROOT).join("schemas"),
            evkit_events::generated::PRECOMPILED,
        )
        .unwrap(),
    );
    // The service's producer announces on a fresh todo-indexed topic.
    let indexed = broker.unique_topic("todo-indexed");
    broker.create_topic(&indexed, 3).await.unwrap();
    let mut config = Config {
        bootstrap_servers: broker.bootstrap_servers().to_owned(),
        ..Config::default()
    };
    config.topics.insert(TODO_INDEXED.to_owned(), indexed);
    let producer = Arc::new(Producer::new(&config, Arc::clone(&catalog), Metrics::new()).unwrap());
    // Side effects stay the test's business: a temporary SQLite file.
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("todos.db")).unwrap();
    let routes = todo_service::routes(Arc::clone(&catalog), store, producer).unwrap();

    let check = ConsumerCheck {
        contracts: Some(Contracts::load(Path::new(ROOT).join("contracts"), &catalog).unwrap()),
        ..ConsumerCheck::default()
    };
    let report = verify_consumer(&broker, routes, TODO_CREATED, &check)
        .await
        .unwrap();
    if let Ok(dir) = std::env::var("EVKIT_JUNIT") {
        std::fs::write(
            Path::new(&dir).join("todo-service-consumer.xml"),
            report.junit(),
        )
        .unwrap();
    }
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert!(report.verdicts.len() >= 288, "{}", report.verdicts.len());
    assert!(
        report
            .verdicts
            .iter()
            .any(|v| v.name.starts_with("example")),
        "the producer examples of contracts/ are fed too"
    );
}

/// The service's real producing code: the todo-created handler stores each todo and announces
/// it on todo-indexed. Every announcement read back must pass todo-indexed's contract and carry
/// every field todo-search relies on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_real_todo_indexed_producer_passes_contract_verification() {
    use evkit_testkit::messages::valid_message;
    use evkit_testkit::service::{ProducerCheck, incoming, verify_producer};
    use proptest::strategy::{Strategy, ValueTree};

    let broker = Broker::start().await.unwrap();
    let catalog = Arc::new(Catalog::load(Path::new(ROOT).join("schemas")).unwrap());
    let check = ProducerCheck {
        contracts: Some(Contracts::load(Path::new(ROOT).join("contracts"), &catalog).unwrap()),
        at_least: 32,
        ..ProducerCheck::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let created = catalog.topic(TODO_CREATED).unwrap().clone();
    let report = verify_producer(&broker, &catalog, TODO_INDEXED, &check, |config| {
        let catalog = Arc::clone(&catalog);
        let db = tmp.path().join("todos.db");
        async move {
            let producer = Arc::new(
                Producer::new(&config, Arc::clone(&catalog), Metrics::new())
                    .map_err(|e| e.to_string())?,
            );
            let store = Store::open(&db).map_err(|e| e.to_string())?;
            let routes =
                todo_service::routes(catalog, store, producer).map_err(|e| e.to_string())?;
            let handler = routes
                .handler(TODO_CREATED)
                .ok_or("no todo-created route")?;
            // 32 generated valid todos with distinct ids, through the real handler.
            let strategy = valid_message(&created).map_err(|e| e.to_string())?;
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let mut ids = std::collections::BTreeSet::new();
            while ids.len() < 32 {
                let m = strategy
                    .new_tree(&mut runner)
                    .map_err(|e| e.to_string())?
                    .current();
                let todo: serde_json::Value =
                    serde_json::from_slice(&m.payload).map_err(|e| e.to_string())?;
                if !ids.insert(todo["id"].to_string()) {
                    continue;
                }
                let msg = incoming(&created, &m)?;
                let outcome = evkit::Handler::handle(&handler, msg).await;
                if outcome != evkit::Outcome::Ack {
                    return Err(format!("the handler did not ack {todo}: {outcome:?}"));
                }
            }
            Ok(())
        }
    })
    .await
    .unwrap();
    println!("{report}");
    assert!(report.passed(), "{report}");
}
