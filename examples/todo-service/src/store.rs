//! The service's store: todos in SQLite, idempotent on `(org_id, id)`, with evkit's outbox table
//! in the same database so a todo and its announcement are stored together.

use std::num::NonZeroU64;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use evkit::Prepared;
use evkit::outbox::Outbox;
use evkit_events::generated::platform_evkit_todo_created as created;
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::Error;

/// A SQLite database of todos. Cheap to clone; calls run on Tokio's blocking pool.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// The result of storing a todo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// `false` when the todo was already there (a redelivery).
    pub inserted: bool,
    /// How many todos the tenant has now.
    pub org_count: NonZeroU64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS todos (
    org_id           TEXT    NOT NULL,
    id               INTEGER NOT NULL,
    title            TEXT    NOT NULL,
    description      TEXT,
    due              TEXT,
    priority         TEXT,
    tags             TEXT,
    created_at       TEXT    NOT NULL,
    source_partition INTEGER NOT NULL,
    source_offset    INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);";

/// Inserts the row unless it is there; the tenant's count after it.
fn insert_row(
    tx: &rusqlite::Transaction<'_>,
    todo: &created::Event,
    source: (i32, i64),
) -> Result<Stored, Error> {
    let tags = todo
        .tags
        .as_ref()
        .map(|t| serde_json::to_string(t).unwrap_or_default());
    let id = i64::try_from(todo.id.get()).unwrap_or(i64::MAX);
    let inserted = tx.execute(
        "INSERT INTO todos (org_id, id, title, description, due, priority, tags,
                            created_at, source_partition, source_offset)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (org_id, id) DO NOTHING",
        params![
            todo.org_id.as_str(),
            id,
            todo.title.as_str(),
            todo.description.as_ref().map(|d| d.as_str().to_owned()),
            todo.due.map(|d| d.to_string()),
            todo.priority.map(|p| p.to_string()),
            tags,
            todo.created_at.to_rfc3339(),
            source.0,
            source.1,
        ],
    )? == 1;
    let count: i64 = tx.query_row(
        "SELECT COUNT(*) FROM todos WHERE org_id = ?1",
        [todo.org_id.as_str()],
        |r| r.get(0),
    )?;
    let org_count = u64::try_from(count)
        .ok()
        .and_then(NonZeroU64::new)
        .ok_or_else(|| Error::StoreThread(format!("count {count} after an insert")))?;
    Ok(Stored {
        inserted,
        org_count,
    })
}

impl Store {
    /// Opens (or creates) the database file.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Store::init(conn)
    }

    /// A database that lives in memory (tests).
    pub fn in_memory() -> Result<Store, Error> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store, Error> {
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut c)
        })
        .await
        .map_err(|e| Error::StoreThread(e.to_string()))?
    }

    /// Stores a todo read at `(partition, offset)`; a todo already stored is left as it is.
    pub async fn insert(&self, todo: created::Event, source: (i32, i64)) -> Result<Stored, Error> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let stored = insert_row(&tx, &todo, source)?;
            tx.commit()?;
            Ok(stored)
        })
        .await
    }

    /// Stores a todo and, in the same transaction, the event announcing it in the outbox
    /// (`follow_up` builds and checks it from what was stored). Either both are kept or
    /// neither. A todo already stored was announced when it was first stored: nothing is added
    /// then. Returns the outbox row and message to send, if one was added.
    pub async fn insert_announcing(
        &self,
        todo: created::Event,
        source: (i32, i64),
        follow_up: impl FnOnce(Stored) -> Result<Prepared, evkit::Error> + Send + 'static,
    ) -> Result<(Stored, Option<(i64, Prepared)>), Error> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let stored = insert_row(&tx, &todo, source)?;
            let announce = if stored.inserted {
                let message = follow_up(stored)?;
                let id = Outbox::add_in(&tx, &message)?;
                Some((id, message))
            } else {
                None
            };
            tx.commit()?;
            Ok((stored, announce))
        })
        .await
    }

    /// The outbox in this database (same connection), for sending and relaying announcements.
    pub fn outbox(&self) -> Result<Outbox, Error> {
        Ok(Outbox::from_shared(Arc::clone(&self.conn))?)
    }

    /// How many todos are stored.
    pub async fn count(&self) -> Result<u64, Error> {
        self.with(|c| {
            let n: i64 = c.query_row("SELECT COUNT(*) FROM todos", [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or_default())
        })
        .await
    }

    /// The title of a stored todo.
    pub async fn title(&self, org_id: &str, id: u64) -> Result<Option<String>, Error> {
        let org_id = org_id.to_owned();
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT title FROM todos WHERE org_id = ?1 AND id = ?2",
                params![org_id, i64::try_from(id).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }
}
