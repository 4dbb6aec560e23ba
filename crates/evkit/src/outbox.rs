//! A durable outbox: messages are written to a database before they are sent, and deleted only
//! once the broker has acknowledged them, so a crash, a broker outage or a failed send never
//! loses one.
//!
//! The table (`evkit_outbox`) can live in the service's own SQLite database, so an event is
//! stored in the same transaction as the state change that caused it ([`Outbox::add_in`]): either
//! both are kept or neither is. A relay ([`Outbox::relay`], [`Outbox::run_relay`]) sends what is
//! stored, oldest first, and deletes each row when its delivery is acknowledged. Delivery is at
//! least once: a crash between the acknowledgement and the delete sends that message again.
//!
//! ```no_run
//! # async fn demo(producer: evkit::Producer, event: serde_json::Value) -> Result<(), evkit::Error> {
//! use evkit::outbox::{Outbox, RelayOptions};
//!
//! let outbox = Outbox::open("service.db")?;
//! // Stored first, then sent; a failed send stays stored for the relay.
//! outbox
//!     .produce(&producer, "platform.evkit.todo-created", &event, &evkit::Context::new())
//!     .await?;
//! // At start-up (and on a timer): send whatever an earlier run left behind.
//! let report = outbox.relay(&producer, &RelayOptions::default()).await?;
//! println!("{} sent, {} still pending", report.sent, report.failed);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::producer::Prepared;
use crate::{Context, Delivery, Error, Producer};

/// The outbox table.
pub const TABLE: &str = "evkit_outbox";

const CREATE: &str = "CREATE TABLE IF NOT EXISTS evkit_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key BLOB,
    headers TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
)";

/// The table in PostgreSQL.
#[cfg(feature = "postgres")]
const CREATE_PG: &str = "CREATE TABLE IF NOT EXISTS evkit_outbox (
    id BIGSERIAL PRIMARY KEY,
    topic TEXT NOT NULL,
    key BYTEA,
    headers TEXT NOT NULL,
    payload BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
)";

/// An outbox table in SQLite (WAL journal, one connection shared behind a lock) or PostgreSQL
/// (one connection; [`Outbox::connect`] with a `postgres://` URL).
///
/// One relay pass runs at a time per outbox: clones share a lock, and relays of other
/// connections and processes are kept out too, so every replica of a service may run
/// [`Outbox::run_relay`] against one database, and `evkit outbox --relay` may run beside the
/// service. On PostgreSQL a pass holds a session advisory lock; on a SQLite file it holds an
/// exclusive lock (`flock`) on `<database>-relay.lock` next to it, released when the pass ends
/// or the process dies. (A file lock needs a local file system; an in-memory database has no
/// file and only the clones' lock.) A pass that finds another one running sends nothing and
/// says so ([`RelayReport::busy`]).
#[derive(Clone)]
pub struct Outbox {
    backend: Backend,
    relaying: Arc<tokio::sync::Mutex<()>>,
}

/// The PostgreSQL advisory lock key a relay pass holds (the bytes of `evkit_ob`).
#[cfg(feature = "postgres")]
const RELAY_LOCK_KEY: i64 = 0x6576_6b69_745f_6f62;

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<Mutex<Connection>>),
    #[cfg(feature = "postgres")]
    Postgres(Arc<PgLink>),
}

/// The connection a statement (or a whole relay pass) uses.
enum Conn {
    Sqlite(Arc<Mutex<Connection>>),
    #[cfg(feature = "postgres")]
    Postgres(Arc<tokio_postgres::Client>),
}

/// A PostgreSQL connection that is opened again once it has closed (the server restarted, a
/// proxy or the server dropped it): the next call after that reconnects, so a service does not
/// need restarting. A statement that was under way when the connection went fails; it is not
/// retried, since it may have committed. Its URL (which may hold a password) is never logged.
#[cfg(feature = "postgres")]
struct PgLink {
    url: String,
    client: tokio::sync::Mutex<Arc<tokio_postgres::Client>>,
}

#[cfg(feature = "postgres")]
impl PgLink {
    async fn open(url: &str) -> Result<tokio_postgres::Client, Error> {
        let (config, tls) = pg_target(url)?;
        let (client, connection) = config
            .connect(tls)
            .await
            .map_err(pg("connecting to the outbox database"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "outbox database connection closed");
            }
        });
        Ok(client)
    }

    /// The open connection, reconnecting first when it has closed.
    async fn client(&self) -> Result<Arc<tokio_postgres::Client>, Error> {
        let mut current = self.client.lock().await;
        if current.is_closed() {
            *current = Arc::new(PgLink::open(&self.url).await?);
            tracing::info!("outbox database: reconnected");
        }
        Ok(Arc::clone(&current))
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

/// What one relay pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Rows sent, acknowledged and deleted.
    pub sent: u64,
    /// Rows whose send failed; they stay stored, with the attempt counted and the error kept.
    pub failed: u64,
    /// Rows that could not be read back (a damaged `headers` column): kept, with the error
    /// recorded, and skipped so the rows behind them still go out.
    pub unreadable: u64,
    /// Where the sent messages landed, in row order.
    pub deliveries: Vec<Delivery>,
    /// Another relay pass was running on this outbox (in this process or, on PostgreSQL, on
    /// another connection); this one sent nothing.
    pub busy: bool,
}

/// How a relay pass works.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Rows sent at once (sent in row order, so order per partition holds).
    pub batch: usize,
    /// Only rows at least this old. Leave at zero at start-up; when a relay runs while the
    /// service also calls [`Outbox::produce`], set it above the producer's delivery timeout
    /// (30 s) so a message whose first send is still in flight is not sent a second time.
    pub older_than: Duration,
    /// Stop after this many rows in one pass (`None`: all that are stored).
    pub limit: Option<u64>,
}

impl RelayReport {
    /// The report of a pass that found another one running.
    fn busy() -> Self {
        RelayReport {
            busy: true,
            ..RelayReport::default()
        }
    }
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            batch: 500,
            older_than: Duration::ZERO,
            limit: None,
        }
    }
}

struct Row {
    id: i64,
    /// The message, or why the row cannot be read back.
    message: Result<Prepared, Error>,
}

fn db(context: &str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |source| Error::Outbox {
        context: context.to_owned(),
        source: Box::new(source),
    }
}

/// How the outbox's PostgreSQL connection uses TLS: libpq's `sslmode` and `sslrootcert` URL
/// parameters, with libpq's meaning.
///
/// | `sslmode` | TLS | server certificate checked |
/// |---|---|---|
/// | `disable` | never | - |
/// | `prefer` (default) | when the server offers it | no |
/// | `require` | always | only when `sslrootcert` is given (then as `verify-ca`) |
/// | `verify-ca` | always | chain, against `sslrootcert` or the system's CAs |
/// | `verify-full` | always | chain and host name |
#[cfg(feature = "postgres")]
fn pg_target(
    url: &str,
) -> Result<(tokio_postgres::Config, postgres_openssl::MakeTlsConnector), Error> {
    // Errors never repeat the URL: it may hold a password.
    let bad = |message: String| Error::Outbox {
        context: "the outbox database URL".to_owned(),
        source: message.into(),
    };
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root) = ("prefer".to_owned(), None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|e| bad(format!("parameter `{key}` is not UTF-8: {e}")))?;
        match key {
            "sslmode" => mode = value.into_owned(),
            "sslrootcert" => root = Some(value.into_owned()),
            _ => kept.push(pair),
        }
    }
    let (tls, verify, hostname) = match mode.as_str() {
        "disable" => ("disable", false, false),
        "prefer" => ("prefer", false, false),
        "require" => ("require", root.is_some(), false),
        "verify-ca" => ("require", true, false),
        "verify-full" => ("require", true, true),
        other => {
            return Err(bad(format!(
                "sslmode `{other}` is not disable, prefer, require, verify-ca or verify-full"
            )));
        }
    };
    kept.push(match tls {
        "disable" => "sslmode=disable",
        "prefer" => "sslmode=prefer",
        _ => "sslmode=require",
    });
    let config: tokio_postgres::Config = format!("{base}?{}", kept.join("&"))
        .parse()
        .map_err(|e: tokio_postgres::Error| bad(e.to_string()))?;
    let tls_error = |what: &str, e: openssl::error::ErrorStack| bad(format!("{what}: {e}"));
    let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
        .map_err(|e| tls_error("TLS setup", e))?;
    if verify {
        match &root {
            Some(file) => builder
                .set_ca_file(file)
                .map_err(|e| tls_error(&format!("sslrootcert {file}"), e))?,
            None => builder
                .set_default_verify_paths()
                .map_err(|e| tls_error("the system's CA certificates", e))?,
        }
        builder.set_verify(openssl::ssl::SslVerifyMode::PEER);
    } else {
        builder.set_verify(openssl::ssl::SslVerifyMode::NONE);
    }
    let mut connector = postgres_openssl::MakeTlsConnector::new(builder.build());
    if !hostname {
        connector.set_callback(|c, _| {
            c.set_verify_hostname(false);
            Ok(())
        });
    }
    Ok((config, connector))
}

#[cfg(feature = "postgres")]
fn pg(context: &str) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
    move |source| Error::Outbox {
        context: context.to_owned(),
        source: Box::new(source),
    }
}

/// What a `postgres://` URL gets from a build without the `postgres` feature.
#[cfg(not(feature = "postgres"))]
fn no_postgres() -> Error {
    Error::Outbox {
        context: "the outbox database URL".to_owned(),
        source: "this build has no PostgreSQL support: enable evkit's `postgres` feature".into(),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn encode_headers(headers: &[(String, Vec<u8>)]) -> String {
    let pairs: Vec<(&str, String)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), BASE64.encode(v)))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

fn decode_headers(id: i64, text: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let bad = |message: String| Error::Outbox {
        context: format!("outbox row {id}: headers"),
        source: message.into(),
    };
    let pairs: Vec<(String, String)> =
        serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    pairs
        .into_iter()
        .map(|(n, v)| Ok((n, BASE64.decode(v).map_err(|e| bad(e.to_string()))?)))
        .collect()
}

impl Outbox {
    /// Opens (or creates) the outbox in the SQLite database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Outbox, Error> {
        let conn = Connection::open(path.as_ref()).map_err(db("opening the outbox database"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db("setting the outbox journal mode"))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(db("setting the outbox busy timeout"))?;
        Outbox::install(&conn)?;
        Ok(Outbox {
            backend: Backend::Sqlite(Arc::new(Mutex::new(conn))),
            relaying: Arc::default(),
        })
    }

    /// Opens the outbox named by `url`: `postgres://…` or `postgresql://…` connects to
    /// PostgreSQL (the connection runs on the current Tokio runtime) and creates the table.
    /// TLS follows libpq's `sslmode` (`disable`, `prefer` (the default), `require`,
    /// `verify-ca`, `verify-full`) and `sslrootcert` (a CA file) URL parameters; anything else is a SQLite file path (an optional `sqlite:` prefix is dropped).
    pub async fn connect(url: &str) -> Result<Outbox, Error> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            let path = url.strip_prefix("sqlite:").unwrap_or(url).to_owned();
            return tokio::task::spawn_blocking(move || Outbox::open(path))
                .await
                .map_err(|e| Error::Outbox {
                    context: "outbox task".to_owned(),
                    source: Box::new(e),
                })?;
        }
        Outbox::connect_postgres(url).await
    }

    #[cfg_attr(
        not(feature = "postgres"),
        allow(clippy::unused_async, reason = "async with PostgreSQL")
    )]
    #[cfg(not(feature = "postgres"))]
    async fn connect_postgres(_url: &str) -> Result<Outbox, Error> {
        Err(no_postgres())
    }

    #[cfg(feature = "postgres")]
    async fn connect_postgres(url: &str) -> Result<Outbox, Error> {
        let client = PgLink::open(url).await?;
        Outbox::install_postgres(&client).await?;
        Ok(Outbox {
            backend: Backend::Postgres(Arc::new(PgLink {
                url: url.to_owned(),
                client: tokio::sync::Mutex::new(Arc::new(client)),
            })),
            relaying: Arc::default(),
        })
    }

    /// Opens an outbox that must already exist, changing nothing: no table is created and no
    /// setting is changed. `write: false` opens a SQLite file read-only (what `evkit outbox`
    /// does to show it); `write: true` allows what a relay needs. A database without the
    /// `evkit_outbox` table is an error that says so.
    pub async fn open_existing(url: &str, write: bool) -> Result<Outbox, Error> {
        let missing = |place: &str| Error::Outbox {
            context: format!("{place} has no evkit_outbox table"),
            source: "not an outbox database (nothing was changed)".into(),
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            let path = url.strip_prefix("sqlite:").unwrap_or(url).to_owned();
            let conn = tokio::task::spawn_blocking(move || {
                use rusqlite::OpenFlags;
                let flags = if write {
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                } else {
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                } | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI;
                let conn = Connection::open_with_flags(&path, flags)
                    .map_err(db("opening the outbox database"))?;
                conn.busy_timeout(Duration::from_secs(5))
                    .map_err(db("setting the outbox busy timeout"))?;
                let found: Option<i64> = conn
                    .query_row(
                        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'evkit_outbox'",
                        [],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db("reading the database schema"))?;
                if found.is_none() {
                    return Err(missing(&path));
                }
                Ok(conn)
            })
            .await
            .map_err(|e| Error::Outbox {
                context: "outbox task".to_owned(),
                source: Box::new(e),
            })??;
            return Ok(Outbox {
                backend: Backend::Sqlite(Arc::new(Mutex::new(conn))),
                relaying: Arc::default(),
            });
        }
        Outbox::open_existing_postgres(url, missing).await
    }

    #[cfg_attr(
        not(feature = "postgres"),
        allow(clippy::unused_async, reason = "async with PostgreSQL")
    )]
    #[cfg(not(feature = "postgres"))]
    async fn open_existing_postgres(
        _url: &str,
        _missing: impl Fn(&str) -> Error,
    ) -> Result<Outbox, Error> {
        Err(no_postgres())
    }

    #[cfg(feature = "postgres")]
    async fn open_existing_postgres(
        url: &str,
        missing: impl Fn(&str) -> Error,
    ) -> Result<Outbox, Error> {
        let client = PgLink::open(url).await?;
        let found: bool = client
            .query_one("SELECT to_regclass('evkit_outbox') IS NOT NULL", &[])
            .await
            .map_err(pg("reading the database schema"))?
            .get(0);
        if !found {
            return Err(missing("the PostgreSQL database"));
        }
        Ok(Outbox {
            backend: Backend::Postgres(Arc::new(PgLink {
                url: url.to_owned(),
                client: tokio::sync::Mutex::new(Arc::new(client)),
            })),
            relaying: Arc::default(),
        })
    }

    /// Creates the outbox table in a PostgreSQL database the service already uses (idempotent).
    #[cfg(feature = "postgres")]
    pub async fn install_postgres(
        client: &impl tokio_postgres::GenericClient,
    ) -> Result<(), Error> {
        client
            .batch_execute(CREATE_PG)
            .await
            .map_err(pg("creating the outbox table"))
    }

    /// Stores `message` through the caller's PostgreSQL client, typically a transaction that
    /// also stores the state change the event reports. Returns the row id.
    #[cfg(feature = "postgres")]
    pub async fn add_in_postgres(
        client: &impl tokio_postgres::GenericClient,
        message: &Prepared,
    ) -> Result<i64, Error> {
        let row = client
            .query_one(
                "INSERT INTO evkit_outbox (topic, key, headers, payload, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &message.topic,
                    &message.key,
                    &encode_headers(&message.headers),
                    &message.payload,
                    &now_ms(),
                ],
            )
            .await
            .map_err(pg("storing a message in the outbox"))?;
        Ok(row.get(0))
    }

    /// An outbox on a connection the service already shares (behind this lock): the outbox's
    /// statements then take turns with the service's own, and an in-memory database works too.
    /// Creates the table.
    pub fn from_shared(conn: Arc<Mutex<Connection>>) -> Result<Outbox, Error> {
        Outbox::install(&conn.lock().unwrap_or_else(PoisonError::into_inner))?;
        Ok(Outbox {
            backend: Backend::Sqlite(conn),
            relaying: Arc::default(),
        })
    }

    /// Creates the outbox table in a database the service already uses (idempotent).
    pub fn install(conn: &Connection) -> Result<(), Error> {
        conn.execute(CREATE, [])
            .map_err(db("creating the outbox table"))?;
        Ok(())
    }

    /// Stores `message` through the caller's connection, typically inside the transaction that
    /// also stores the state change the event reports. Returns the row id.
    pub fn add_in(conn: &Connection, message: &Prepared) -> Result<i64, Error> {
        conn.execute(
            "INSERT INTO evkit_outbox (topic, key, headers, payload, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                message.topic,
                message.key,
                encode_headers(&message.headers),
                message.payload,
                now_ms()
            ],
        )
        .map_err(db("storing a message in the outbox"))?;
        Ok(conn.last_insert_rowid())
    }

    /// Runs `f` with the SQLite connection on a blocking thread (SQLite waits for the disk).
    async fn sqlite<T: Send + 'static>(
        conn: &Arc<Mutex<Connection>>,
        f: impl FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let conn = Arc::clone(conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::Outbox {
            context: "outbox task".to_owned(),
            source: Box::new(e),
        })?
    }

    /// Stores `message` (its own transaction). Returns the row id.
    pub async fn add(&self, message: &Prepared) -> Result<i64, Error> {
        match &self.backend {
            Backend::Sqlite(c) => {
                let message = message.clone();
                Outbox::sqlite(c, move |conn| Outbox::add_in(conn, &message)).await
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(link) => {
                Outbox::add_in_postgres(&*link.client().await?, message).await
            }
        }
    }

    /// Rows not yet acknowledged by the broker.
    pub async fn pending(&self) -> Result<u64, Error> {
        const SQL: &str = "SELECT COUNT(*) FROM evkit_outbox";
        let n: i64 = match &self.backend {
            Backend::Sqlite(c) => {
                Outbox::sqlite(c, |conn| {
                    conn.query_row(SQL, [], |r| r.get(0))
                        .map_err(db("counting the outbox"))
                })
                .await?
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(link) => link
                .client()
                .await?
                .query_one(SQL, &[])
                .await
                .map_err(pg("counting the outbox"))?
                .get(0),
        };
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// The last error recorded for the oldest row that has failed, if any (for diagnostics).
    pub async fn last_error(&self) -> Result<Option<String>, Error> {
        const SQL: &str =
            "SELECT last_error FROM evkit_outbox WHERE last_error IS NOT NULL ORDER BY id LIMIT 1";
        match &self.backend {
            Backend::Sqlite(c) => {
                Outbox::sqlite(c, |conn| {
                    conn.query_row(SQL, [], |r| r.get(0))
                        .optional()
                        .map_err(db("reading the outbox"))
                })
                .await
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(link) => Ok(link
                .client()
                .await?
                .query_opt(SQL, &[])
                .await
                .map_err(pg("reading the outbox"))?
                .map(|r| r.get(0))),
        }
    }

    /// The connection for the next statements (on PostgreSQL, reconnected if it had closed).
    #[cfg_attr(
        not(feature = "postgres"),
        allow(clippy::unused_async, reason = "async with PostgreSQL")
    )]
    async fn conn(&self) -> Result<Conn, Error> {
        Ok(match &self.backend {
            Backend::Sqlite(c) => Conn::Sqlite(Arc::clone(c)),
            #[cfg(feature = "postgres")]
            Backend::Postgres(link) => Conn::Postgres(link.client().await?),
        })
    }
}

impl Conn {
    async fn load(&self, after: i64, cutoff_ms: i64, limit: usize) -> Result<Vec<Row>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let raw = match self {
            Conn::Sqlite(c) => {
                Outbox::sqlite(c, move |conn| load_sqlite(conn, after, cutoff_ms, limit)).await?
            }
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => c
                .query(
                    "SELECT id, topic, key, headers, payload FROM evkit_outbox
                     WHERE id > $1 AND created_at_ms <= $2 ORDER BY id LIMIT $3",
                    &[&after, &cutoff_ms, &limit],
                )
                .await
                .map_err(pg("reading the outbox"))?
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect(),
        };
        Ok(raw
            .into_iter()
            .map(|(id, topic, key, headers, payload): RawRow| Row {
                id,
                message: decode_headers(id, &headers).map(|headers| Prepared {
                    topic,
                    key,
                    headers,
                    payload,
                }),
            })
            .collect())
    }

    /// Deletes the acknowledged rows and records the failures, in one transaction.
    async fn settle(&self, done: Vec<i64>, failed: Vec<(i64, String)>) -> Result<(), Error> {
        if done.is_empty() && failed.is_empty() {
            return Ok(());
        }
        match self {
            Conn::Sqlite(c) => {
                Outbox::sqlite(c, move |conn| settle_sqlite(conn, &done, &failed)).await
            }
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => {
                let fail = pg("settling sent rows");
                let ids: Vec<i64> = failed.iter().map(|(id, _)| *id).collect();
                let whys: Vec<&str> = failed.iter().map(|(_, why)| why.as_str()).collect();
                c.execute(
                    "WITH gone AS (DELETE FROM evkit_outbox WHERE id = ANY($1))
                     UPDATE evkit_outbox AS o SET attempts = o.attempts + 1, last_error = f.why
                     FROM UNNEST($2::BIGINT[], $3::TEXT[]) AS f(id, why) WHERE o.id = f.id",
                    &[&done, &ids, &whys],
                )
                .await
                .map(|_| ())
                .map_err(fail)
            }
        }
    }
}

impl Outbox {
    /// Checks and prepares `event` like [`Producer::produce`], stores it, sends it, and deletes
    /// it once the broker acknowledges. A failed send returns the error and leaves the message
    /// stored, for the relay: it is not lost. An invalid event is an error and stores nothing.
    pub async fn produce<E: Serialize + ?Sized>(
        &self,
        producer: &Producer,
        topic: &str,
        event: &E,
        ctx: &Context,
    ) -> Result<Delivery, Error> {
        let message = producer.prepare(topic, event, ctx)?;
        let id = self.add(&message).await?;
        self.send(producer, id, &message).await
    }

    /// Sends the message stored as row `id` (what [`Outbox::add_in`] returned, once its
    /// transaction committed) and deletes the row when the broker acknowledges. On failure the
    /// row stays, with the attempt and error recorded, for the relay.
    pub async fn send(
        &self,
        producer: &Producer,
        id: i64,
        message: &Prepared,
    ) -> Result<Delivery, Error> {
        match producer.send_prepared(message).await {
            Ok(delivery) => {
                self.conn().await?.settle(vec![id], Vec::new()).await?;
                Ok(delivery)
            }
            Err(e) => {
                self.conn()
                    .await?
                    .settle(Vec::new(), vec![(id, e.to_string())])
                    .await?;
                Err(e)
            }
        }
    }

    /// One pass: sends the stored rows, oldest first, `batch` at a time, and deletes each one the
    /// broker acknowledged. A failed row keeps its place (its attempts and last error are
    /// recorded) and the pass stops after that batch, so a later row is not sent ahead of an
    /// earlier one more than once. A row that cannot be read back is kept, its error recorded,
    /// and skipped.
    ///
    /// Only one pass runs at a time (see [`Outbox`]); a pass that finds another running returns
    /// at once with [`RelayReport::busy`] set.
    pub async fn relay(
        &self,
        producer: &Producer,
        options: &RelayOptions,
    ) -> Result<RelayReport, Error> {
        let Ok(_pass) = self.relaying.try_lock() else {
            return Ok(RelayReport::busy());
        };
        let conn = self.conn().await?;
        match &conn {
            #[cfg(feature = "postgres")]
            Conn::Postgres(client) => {
                Outbox::relay_postgres(&conn, Arc::clone(client), producer, options).await
            }
            Conn::Sqlite(c) => {
                // Held until the pass ends; dropping the file releases the lock.
                let _lock = match Outbox::sqlite(c, |c| relay_file_lock(c)).await? {
                    FileLock::Busy => return Ok(RelayReport::busy()),
                    lock @ (FileLock::Held(_) | FileLock::NoFile) => lock,
                };
                Outbox::relay_pass(&conn, producer, options).await
            }
        }
    }

    /// A relay pass under the PostgreSQL session advisory lock.
    #[cfg(feature = "postgres")]
    async fn relay_postgres(
        conn: &Conn,
        client: Arc<tokio_postgres::Client>,
        producer: &Producer,
        options: &RelayOptions,
    ) -> Result<RelayReport, Error> {
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&RELAY_LOCK_KEY])
            .await
            .map_err(pg("taking the outbox relay lock"))?
            .get(0);
        if !locked {
            return Ok(RelayReport::busy());
        }
        // Released when the pass ends, or (from a task) when the pass is abandoned: a session
        // lock left behind would keep every other relay out for the connection's life.
        let mut lock = AdvisoryLock(Some(Arc::clone(&client)));
        // The whole pass runs on the connection that holds the lock: if it closes, the lock
        // goes with it and the pass fails rather than go on without the lock.
        let report = Outbox::relay_pass(conn, producer, options).await;
        if let Some(client) = lock.0.take() {
            release_relay_lock(&client).await;
        }
        report
    }

    async fn relay_pass(
        conn: &Conn,
        producer: &Producer,
        options: &RelayOptions,
    ) -> Result<RelayReport, Error> {
        let mut report = RelayReport::default();
        let mut after = 0i64;
        let batch = options.batch.max(1);
        let cutoff = now_ms() - i64::try_from(options.older_than.as_millis()).unwrap_or(i64::MAX);
        loop {
            let room = options.limit.map_or(batch, |l| {
                batch.min(usize::try_from(l - report.sent).unwrap_or(batch))
            });
            if room == 0 {
                break;
            }
            let rows = conn.load(after, cutoff, room).await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = last.id;
            let mut done = Vec::new();
            let mut failed = Vec::new();
            let mut unreadable = Vec::new();
            let sends = rows.iter().filter_map(|row| match &row.message {
                Ok(m) => Some(async move { (row.id, producer.send_prepared(m).await) }),
                Err(e) => {
                    tracing::error!(row = row.id, error = %e, "outbox row cannot be read; kept and skipped");
                    unreadable.push((row.id, e.to_string()));
                    None
                }
            });
            let results = futures::future::join_all(sends.collect::<Vec<_>>()).await;
            for (id, result) in results {
                match result {
                    Ok(d) => {
                        done.push(id);
                        report.deliveries.push(d);
                    }
                    Err(e) => failed.push((id, e.to_string())),
                }
            }
            report.unreadable += unreadable.len() as u64;
            report.sent += done.len() as u64;
            report.failed += failed.len() as u64;
            let stop = !failed.is_empty();
            if !failed.is_empty() {
                tracing::warn!(
                    failed = failed.len(),
                    "outbox relay: sends failed; the messages stay stored"
                );
            }
            failed.extend(unreadable);
            conn.settle(done, failed).await?;
            if stop {
                break;
            }
        }
        Ok(report)
    }

    /// Relays every `interval` until `stop` is cancelled (errors are logged, the loop goes on).
    pub async fn run_relay(
        &self,
        producer: &Producer,
        options: &RelayOptions,
        interval: Duration,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            // A pass under way when `stop` comes is abandoned (a broker that is gone would hold
            // it for the delivery timeout): its rows stay stored, and whatever it had sent but
            // not yet deleted goes again at the next relay (at least once).
            let pass = tokio::select! {
                () = stop.cancelled() => return,
                pass = self.relay(producer, options) => pass,
            };
            match pass {
                Ok(r) if r.sent > 0 || r.failed > 0 => {
                    tracing::info!(sent = r.sent, failed = r.failed, "outbox relay pass");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox relay pass failed"),
            }
        }
    }
}

/// The PostgreSQL relay lock a pass holds; dropped while still held (the pass was abandoned),
/// it is released by a task on the current runtime.
#[cfg(feature = "postgres")]
struct AdvisoryLock(Option<Arc<tokio_postgres::Client>>);

#[cfg(feature = "postgres")]
impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        if let (Some(client), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move { release_relay_lock(&client).await });
        }
    }
}

#[cfg(feature = "postgres")]
async fn release_relay_lock(client: &tokio_postgres::Client) {
    // Should this fail, the connection is gone, and the lock went with it.
    if let Err(e) = client
        .execute("SELECT pg_advisory_unlock($1)", &[&RELAY_LOCK_KEY])
        .await
    {
        tracing::warn!(error = %e, "releasing the outbox relay lock");
    }
}

/// The relay lock of a SQLite database, a lock file next to it.
enum FileLock {
    /// Taken; released when the file is dropped (or the process dies).
    Held(#[allow(dead_code, reason = "held for its drop")] std::fs::File),
    /// Another connection or process holds it.
    Busy,
    /// The database has no file (in memory): only the clones' lock applies.
    NoFile,
}

/// Takes the lock file a SQLite relay pass holds, `<database>-relay.lock`.
fn relay_file_lock(conn: &Connection) -> Result<FileLock, Error> {
    let Some(path) = conn.path().filter(|p| !p.is_empty()) else {
        return Ok(FileLock::NoFile);
    };
    let lock_path = format!("{path}-relay.lock");
    let failed = |e: std::io::Error| Error::Outbox {
        context: format!("taking the outbox relay lock {lock_path}"),
        source: Box::new(e),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(failed)?;
    match file.try_lock() {
        Ok(()) => Ok(FileLock::Held(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(FileLock::Busy),
        Err(std::fs::TryLockError::Error(e)) => Err(failed(e)),
    }
}

/// A row as stored: id, topic, key, headers (JSON text), payload.
type RawRow = (i64, String, Option<Vec<u8>>, String, Vec<u8>);

fn load_sqlite(
    conn: &mut Connection,
    after: i64,
    cutoff_ms: i64,
    limit: i64,
) -> Result<Vec<RawRow>, Error> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, topic, key, headers, payload FROM evkit_outbox
             WHERE id > ?1 AND created_at_ms <= ?2 ORDER BY id LIMIT ?3",
        )
        .map_err(db("reading the outbox"))?;
    stmt.query_map(params![after, cutoff_ms, limit], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .map_err(db("reading the outbox"))?
    .collect::<Result<Vec<_>, _>>()
    .map_err(db("reading the outbox"))
}

fn settle_sqlite(
    conn: &mut Connection,
    done: &[i64],
    failed: &[(i64, String)],
) -> Result<(), Error> {
    let tx = conn.transaction().map_err(db("settling sent rows"))?;
    {
        let mut delete = tx
            .prepare_cached("DELETE FROM evkit_outbox WHERE id = ?1")
            .map_err(db("deleting sent rows"))?;
        for id in done {
            delete.execute([id]).map_err(db("deleting sent rows"))?;
        }
        let mut fail = tx
            .prepare_cached(
                "UPDATE evkit_outbox SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            )
            .map_err(db("recording failed sends"))?;
        for (id, why) in failed {
            fail.execute(params![id, why])
                .map_err(db("recording failed sends"))?;
        }
    }
    tx.commit().map_err(db("settling sent rows"))
}
