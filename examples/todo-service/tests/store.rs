//! The store is idempotent: a redelivered todo is one row.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evkit_events::generated::platform_evkit_todo_created as created;
use todo_service::Store;
use todo_service::demo::Report;

fn todo(id: u64, org: &str) -> created::Event {
    serde_json::from_value(serde_json::json!({
        "id": id, "org_id": org, "title": format!("todo {id}"),
        "created_at": "2026-11-01T09:30:00Z", "tags": ["a", "b"], "due": "2026-12-01"
    }))
    .unwrap()
}

#[tokio::test]
async fn a_redelivered_todo_is_stored_once_and_counts_are_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("todos.db")).unwrap();
    let first = store.insert(todo(1, "acme"), (0, 10)).await.unwrap();
    assert!(first.inserted);
    assert_eq!(first.org_count.get(), 1);
    let again = store.insert(todo(1, "acme"), (0, 10)).await.unwrap();
    assert!(!again.inserted, "redelivery must not insert twice");
    assert_eq!(again.org_count.get(), 1);
    let other = store.insert(todo(1, "globex"), (1, 3)).await.unwrap();
    assert!(other.inserted, "same id, other tenant");
    assert_eq!(other.org_count.get(), 1);
    assert_eq!(
        store
            .insert(todo(2, "acme"), (0, 11))
            .await
            .unwrap()
            .org_count
            .get(),
        2
    );
    assert_eq!(store.count().await.unwrap(), 3);
    assert_eq!(
        store.title("acme", 2).await.unwrap().as_deref(),
        Some("todo 2")
    );
    assert_eq!(store.title("acme", 9).await.unwrap(), None);
    // The file survives a reopen.
    drop(store);
    let reopened = Store::open(&dir.path().join("todos.db")).unwrap();
    assert_eq!(reopened.count().await.unwrap(), 3);
}

#[test]
fn a_report_whose_counts_do_not_add_up_is_not_ok() {
    let good = Report {
        valid: 2,
        broken: 1,
        stored: 2,
        announced: 2,
        dead_letters: [("validation".to_owned(), 1)].into(),
        committed: [(0, 3)].into(),
        ends: [(0, 3)].into(),
        ..Report::default()
    };
    assert!(good.ok(), "{good}");
    assert!(good.to_string().contains("OK:"));
    let lost = Report {
        stored: 1,
        ..good.clone()
    };
    assert!(!lost.ok());
    assert!(lost.to_string().contains("FAILED"));
    let uncommitted = Report {
        committed: [(0, 2)].into(),
        ..good.clone()
    };
    assert!(!uncommitted.ok());
    let unsent = Report {
        outbox_pending: 1,
        ..good.clone()
    };
    assert!(
        !unsent.ok(),
        "an announcement left in the outbox is not done"
    );
    let no_dead_letter = Report {
        dead_letters: [].into(),
        ..good
    };
    assert!(!no_dead_letter.ok());
}

/// A producer that is never asked to send (no broker behind it): it only prepares messages.
fn preparer() -> evkit::Producer {
    let catalog = std::sync::Arc::new(
        evkit_schema::Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas")).unwrap(),
    );
    let config = evkit::Config {
        bootstrap_servers: "127.0.0.1:1".to_owned(),
        ..evkit::Config::default()
    };
    evkit::Producer::new(&config, catalog, evkit::Metrics::new()).unwrap()
}

#[tokio::test]
async fn a_todo_and_its_announcement_are_stored_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("todos.db")).unwrap();
    let outbox = store.outbox().unwrap();
    let producer = std::sync::Arc::new(preparer());
    let announce = |p: std::sync::Arc<evkit::Producer>| {
        move |stored: todo_service::Stored| {
            let event = serde_json::json!({
                "id": 1, "org_id": "acme", "indexed_at": "2026-11-01T09:30:01Z",
                "org_todo_count": stored.org_count.get()
            });
            p.prepare(
                todo_service::TODO_INDEXED,
                &event,
                &evkit::Context::new().for_org("acme"),
            )
        }
    };

    let (stored, added) = store
        .insert_announcing(todo(1, "acme"), (0, 1), announce(producer.clone()))
        .await
        .unwrap();
    assert!(stored.inserted);
    let (id, message) = added.expect("a new todo is announced");
    assert_eq!(message.topic(), todo_service::TODO_INDEXED);
    assert_eq!(message.key(), Some(&b"acme"[..]));
    assert_eq!(outbox.pending().await.unwrap(), 1);
    assert!(id > 0);

    // A redelivery stores nothing new: the first delivery's announcement is already kept.
    let (again, added) = store
        .insert_announcing(todo(1, "acme"), (0, 1), announce(producer.clone()))
        .await
        .unwrap();
    assert!(!again.inserted);
    assert!(added.is_none());
    assert_eq!(outbox.pending().await.unwrap(), 1);

    // An announcement that breaks its contract rolls the todo back too.
    let broken = |_: todo_service::Stored| {
        preparer().prepare(
            todo_service::TODO_INDEXED,
            &serde_json::json!({"id": 2}),
            &evkit::Context::new(),
        )
    };
    let err = store
        .insert_announcing(todo(2, "acme"), (0, 2), broken)
        .await
        .unwrap_err();
    assert!(matches!(err, todo_service::Error::Evkit(_)), "{err}");
    assert_eq!(
        store.count().await.unwrap(),
        1,
        "the todo must not be kept without its event"
    );
    assert_eq!(outbox.pending().await.unwrap(), 1);
}
