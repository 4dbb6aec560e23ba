//! Contract verification of the service's **real code**, the way a team adds it to its own
//! service: the production routes (`todo_service::routes`, with a temporary SQLite file for the
//! store) run as a consumer-group member on a real broker (the embedded one, or
//! `EVKIT_BOOTSTRAP`) and get every producer example of `platform.evkit.todo-created` from
//! `contracts/`, 256 generated valid todos and 32 generated invalid ones. Set `EVKIT_JUNIT=DIR`
//! for a JUnit report.
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
