//! An example evkit service, end to end.
//!
//! It consumes `platform.evkit.todo-created`, stores each todo in SQLite, and produces the
//! follow-up event `platform.evkit.todo-indexed`. Everything a service gets from evkit shows up
//! here: generated types, a typed handler behind the validating router, at-least-once commits,
//! retries and the dead-letter topic, the validating producer that carries the caller's identity
//! and request id forward, and Prometheus metrics.
//!
//! Redelivery is expected (at least once), so the store is idempotent: the same todo stored twice
//! is one row, and its follow-up event is sent again (consumers of `todo-indexed` key on
//! `org_id` + `id`).

pub mod demo;
pub mod store;

use std::sync::Arc;

use evkit::{Context, Incoming, Outcome, Producer, Router, Routes, typed};
use evkit_events::generated::platform_evkit_todo_created as created;
use evkit_events::generated::platform_evkit_todo_indexed as indexed;
use evkit_schema::Catalog;

pub use store::{Store, Stored};

/// The topic the service consumes.
pub const TODO_CREATED: &str = created::TOPIC;
/// The topic the service produces.
pub const TODO_INDEXED: &str = indexed::TOPIC;

/// What can go wrong in the example service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQLite store.
    #[error("todo store: {0}")]
    Store(#[from] rusqlite::Error),
    /// The store's worker thread went away.
    #[error("todo store: worker thread: {0}")]
    StoreThread(String),
    /// evkit: router, consumer, producer, config.
    #[error(transparent)]
    Evkit(#[from] evkit::Error),
    /// The test broker of the demo.
    #[error(transparent)]
    Broker(#[from] evkit_testkit::Error),
    /// The demo did not reach the state it promised.
    #[error("demo: {0}")]
    Demo(String),
}

/// The service's routes: `todo-created` → store → `todo-indexed`.
pub fn routes(
    catalog: Arc<Catalog>,
    store: Store,
    producer: Arc<Producer>,
) -> Result<Routes, evkit::Error> {
    let handler = typed(move |todo: created::Event, msg: Incoming| {
        let store = store.clone();
        let producer = Arc::clone(&producer);
        async move { on_todo_created(todo, &msg, &store, &producer).await }
    });
    Router::new(catalog).route(TODO_CREATED, handler).build()
}

/// Stores the todo, then announces it. A store or produce failure is transient (`Retry`); after
/// the last retry the message goes to the dead-letter topic and its offset is committed.
async fn on_todo_created(
    todo: created::Event,
    msg: &Incoming,
    store: &Store,
    producer: &Producer,
) -> Outcome {
    let source = (msg.envelope().partition, msg.envelope().offset);
    let stored = match store.insert(todo.clone(), source).await {
        Ok(s) => s,
        Err(e) => return Outcome::retry(e.to_string()),
    };
    let follow_up = indexed::Event {
        id: todo.id,
        org_id: match indexed::TodoIndexedEventOrgId::try_from(todo.org_id.as_str()) {
            Ok(o) => o,
            // Both schemas constrain org_id the same way; a mismatch is a schema bug, not a
            // transient failure.
            Err(e) => return Outcome::reject(format!("org_id for {TODO_INDEXED}: {e}")),
        },
        indexed_at: chrono::Utc::now(),
        org_todo_count: stored.org_count,
        source_offset: Some(indexed::TodoIndexedEventSourceOffset {
            partition: u64::try_from(source.0).unwrap_or_default(),
            offset: u64::try_from(source.1).unwrap_or_default(),
        }),
    };
    match producer
        .produce(TODO_INDEXED, &follow_up, &Context::from_incoming(msg))
        .await
    {
        Ok(_) => Outcome::Ack,
        Err(e) => Outcome::retry(format!("producing {TODO_INDEXED}: {e}")),
    }
}
