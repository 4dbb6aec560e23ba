//! Service contracts: the loader reports every problem at once, and verification through a
//! real broker passes for the repository's contracts and fails when a consumer relies on
//! something producers do not always send.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use evkit_schema::Catalog;
use evkit_testkit::Broker;
use evkit_testkit::contracts::Contracts;
use evkit_testkit::verify::{Options, verify};

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas")).unwrap())
}

const CONTRACTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts");

#[test]
fn the_repository_contracts_load() {
    let c = Contracts::load(CONTRACTS, &catalog()).unwrap();
    let names: Vec<&str> = c.services.iter().map(|s| s.service.as_str()).collect();
    assert!(names.contains(&"todo-service"), "{names:?}");
    assert!(
        c.topics()
            .contains(&"platform.evkit.todo-created".to_owned())
    );
    assert_eq!(c.consumers("platform.evkit.todo-created").count(), 1);
}

#[test]
fn the_loader_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        r#"
service: broken
produces:
  - topic: platform.nope
  - topic: platform.evkit.todo-created
    examples:
      - name: float id
        payload: { id: 1.5, org_id: "12345", title: t, created_at: "2026-11-01T09:30:00Z" }
consumes:
  - topic: platform.evkit.todo-created
    relies_on: [/id, /colour]
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("b.yaml"), "service: [not, a, name]\n").unwrap();
    std::fs::write(dir.path().join("c.yaml"), "service: broken\n").unwrap();
    let err = Contracts::load(dir.path(), &catalog())
        .unwrap_err()
        .to_string();
    for expected in [
        "/produces/0/topic: `platform.nope` is not a topic",
        "/produces/1/examples/0 (float id): breaks the contract",
        "/id",
        "/consumes/0/relies_on/1: the schema of platform.evkit.todo-created has no field `/colour`",
        "b.yaml",
        "service `broken` is already described",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_contracts_verify_on_a_broker() {
    let broker = Broker::start().await.unwrap();
    let catalog = catalog();
    let contracts = Contracts::load(CONTRACTS, &catalog).unwrap();
    let opts = Options {
        valid: 8,
        invalid: 6,
        ..Options::default()
    };
    let report = verify(&broker, &catalog, &contracts, &opts).await.unwrap();
    assert!(report.passed(), "{report}");
    let (passed, failed) = report.counts();
    assert_eq!(failed, 0);
    // Four (consumer, topic) pairs, each with the examples and 8 + 6 generated messages.
    assert!(passed >= 4 * (8 + 6), "{report}");
    let junit = report.junit();
    assert!(junit.contains("<testsuite"), "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_relying_on_an_optional_field_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("needy.yaml"),
        "service: needy\nconsumes:\n  - topic: platform.evkit.todo-created\n    relies_on: [/id, /due]\n",
    )
    .unwrap();
    let broker = Broker::start().await.unwrap();
    let catalog = catalog();
    let contracts = Contracts::load(dir.path(), &catalog).unwrap();
    let opts = Options {
        valid: 16,
        invalid: 2,
        ..Options::default()
    };
    let report = verify(&broker, &catalog, &contracts, &opts).await.unwrap();
    assert!(!report.passed(), "{report}");
    let text = report.to_string();
    assert!(
        text.contains("lacks fields the service relies on: /due"),
        "{text}"
    );
    assert!(report.junit().contains("<failure"));
}
