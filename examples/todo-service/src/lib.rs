//! An example evkit service, end to end.
//!
//! It consumes `platform.evkit.todo-created`, stores each todo in SQLite, and produces the
//! follow-up event `platform.evkit.todo-indexed`. Everything a service gets from evkit shows up
//! here: generated types, a typed handler behind the validating router, at-least-once commits,
//! retries and the dead-letter topic, the validating producer that carries the caller's identity
//! and request id forward, and Prometheus metrics.
//!
//! Redelivery is expected (at least once), so the store is idempotent: the same todo stored twice
//! is one row. The follow-up event goes through evkit's outbox: it is stored in the same SQLite
//! transaction as the todo, then sent, and deleted once the broker acknowledges it. A crash or a
//! broker outage after the todo is stored therefore never loses its announcement: the relay
//! (run at start-up and on a timer) sends it later. Announcements are at least once too
//! (consumers of `todo-indexed` key on `org_id` + `id`).

pub mod demo;
pub mod store;

use std::sync::Arc;

use evkit::outbox::Outbox;
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

/// The service's routes: `todo-created` → store (todo and announcement in one transaction) →
/// `todo-indexed`.
pub fn routes(
    catalog: Arc<Catalog>,
    store: Store,
    producer: Arc<Producer>,
) -> Result<Routes, Error> {
    let outbox = store.outbox()?;
    let handler = typed(move |todo: created::Event, msg: Incoming| {
        let store = store.clone();
        let outbox = outbox.clone();
        let producer = Arc::clone(&producer);
        async move { on_todo_created(todo, &msg, &store, &outbox, &producer).await }
    });
    Ok(Router::new(catalog).route(TODO_CREATED, handler).build()?)
}

/// Stores the todo with its announcement, then sends the announcement. A store failure is
/// transient (`Retry`; after the last retry the message goes to the dead-letter topic). Once
/// both are stored the message is handled: a failed send leaves the announcement in the outbox
/// for the relay.
async fn on_todo_created(
    todo: created::Event,
    msg: &Incoming,
    store: &Store,
    outbox: &Outbox,
    producer: &Arc<Producer>,
) -> Outcome {
    let source = (msg.envelope().partition, msg.envelope().offset);
    let ctx = Context::from_incoming(msg);
    let announce = {
        let (todo, producer) = (todo.clone(), Arc::clone(producer));
        move |stored: Stored| {
            producer.prepare(TODO_INDEXED, &follow_up(&todo, stored, source)?, &ctx)
        }
    };
    let (_, stored) = match store.insert_announcing(todo, source, announce).await {
        Ok(s) => s,
        // The follow-up breaks its own contract: a bug, not a transient failure; nothing stored.
        Err(Error::Evkit(e)) => return Outcome::reject(format!("{TODO_INDEXED}: {e}")),
        Err(e) => return Outcome::retry(e.to_string()),
    };
    if let Some((id, message)) = stored
        && let Err(e) = outbox.send(producer, id, &message).await
    {
        tracing::warn!(error = %e, "announcement stays in the outbox for the relay");
    }
    Outcome::Ack
}

/// The todo-indexed event for a stored todo.
fn follow_up(
    todo: &created::Event,
    stored: Stored,
    source: (i32, i64),
) -> Result<indexed::Event, evkit::Error> {
    // Both schemas constrain org_id the same way; a mismatch is a schema bug.
    let org_id = indexed::TodoIndexedEventOrgId::try_from(todo.org_id.as_str()).map_err(|e| {
        evkit::Error::Config {
            source_name: "schemas".to_owned(),
            message: format!("org_id for {TODO_INDEXED}: {e}"),
        }
    })?;
    Ok(indexed::Event {
        id: todo.id,
        org_id,
        indexed_at: chrono::Utc::now(),
        org_todo_count: stored.org_count,
        source_offset: Some(indexed::TodoIndexedEventSourceOffset {
            partition: i64::from(source.0),
            offset: source.1,
        }),
    })
}
