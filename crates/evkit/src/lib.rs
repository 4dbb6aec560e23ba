//! The evkit runtime: what a service links to consume and produce the events of its catalog.
//!
//! - [`Router`]: one [`Handler`] per topic, wrapped in the built-in [`middleware`] chain
//!   (dead letter → validate → retry → timeout → panic guard → metrics → your layers → handler);
//! - [`Consumer`]: a consumer-group member that validates every message before dispatch, runs
//!   partitions concurrently (order kept within a partition, bounded queues), commits at least
//!   once ([`OffsetTracker`]) and drains on shutdown;
//! - [`Producer`]: validates against the catalog, adds identity and request-id headers, derives
//!   the key, speaks CloudEvents binary or structured mode, and reports partition and offset;
//! - [`outbox::Outbox`]: a SQLite outbox, so a message is stored (in the service's own
//!   transaction if it likes) before it is sent and deleted only once acknowledged; a relay sends
//!   what a crash or an outage left behind;
//! - [`replay()`]: sends dead-lettered messages back to their topic;
//! - [`Config`]: brokers, SASL/SSL, Clowder (`ACG_CONFIG`), topic-name mapping, with secrets
//!   redacted;
//! - [`Metrics`]: Prometheus metrics per topic, served over HTTP with `/healthz`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use evkit::{Config, Consumer, Incoming, Metrics, Outcome, Router, handler_fn};
//!
//! # async fn run() -> Result<(), evkit::Error> {
//! let catalog = Arc::new(evkit_schema::Catalog::load("schemas")?);
//! let router = Router::new(catalog)
//!     .route("platform.evkit.todo-created", handler_fn(|msg: Incoming| async move {
//!         println!("todo for org {:?}", msg.identity().map(|i| i.org_id()));
//!         Outcome::Ack
//!     }))
//!     .build()?;
//! let consumer = Consumer::new(&Config::load()?, router, Metrics::new())?;
//! consumer.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod consumer;
pub mod dead_letter;
mod envelope;
mod handler;
pub mod metrics;
pub mod middleware;
mod offsets;
#[cfg(feature = "sqlite")]
pub mod outbox;
pub mod producer;
#[cfg(feature = "registry")]
pub mod registry;
pub mod replay;
mod router;

pub use config::{Config, Secret};
pub use consumer::{Consumer, Summary};
pub use envelope::Envelope;
pub use handler::{Failure, Handler, Incoming, Outcome, Reason, handler_fn, typed};
pub use metrics::Metrics;
pub use middleware::Middleware;
pub use offsets::{OffsetTracker, PartitionRun, Position};
pub use producer::{Context, Delivery, Prepared, Producer};
pub use replay::{ReplayOptions, ReplayReport, replay};
pub use router::{Router, Routes};

/// Everything that can go wrong in `evkit`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An offset finished that was never begun on that partition (a bookkeeping bug upstream).
    #[error("{topic}[{partition}]@{offset} finished but was never begun")]
    UnknownOffset {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
    /// Offsets must begin in increasing order within a partition.
    #[error("{topic}[{partition}]@{offset} begun after offset {last}")]
    OutOfOrder {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The offset begun.
        offset: i64,
        /// The last offset begun before it.
        last: i64,
    },
    /// The configuration is wrong; `source_name` says where it came from.
    #[error("configuration ({source_name}): {message}")]
    Config {
        /// A file, `ACG_CONFIG`, or an environment variable.
        source_name: String,
        /// What is wrong (never a secret value).
        message: String,
    },
    /// The router cannot be built; every problem is listed.
    #[error("router: {}", .0.join("; "))]
    Router(Vec<String>),
    /// The catalog rejected a message or does not know a topic.
    #[error(transparent)]
    Schema(#[from] evkit_schema::Error),
    /// The event could not be serialized to JSON.
    #[error("topic {topic}: event does not serialize to JSON: {source}")]
    Serialize {
        /// Topic.
        topic: String,
        /// Cause.
        source: serde_json::Error,
    },
    /// The topic's key policy needs a key and the event has none at the pointer.
    #[error("topic {topic}: the key policy needs a key (pointer {pointer}) and the event has none")]
    MissingKey {
        /// Topic.
        topic: String,
        /// The key pointer.
        pointer: String,
    },
    /// Kafka (client creation, delivery, commit) failed.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What evkit was doing.
        context: String,
        /// Cause.
        source: rdkafka::error::KafkaError,
    },
    /// The outbox database failed (or holds a row evkit cannot read).
    #[error("outbox: {context}: {source}")]
    Outbox {
        /// What evkit was doing.
        context: String,
        /// Cause.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The schema registry answered with an error or could not be reached (after retries).
    #[error("schema registry: {what}: {}{message}", status.map(|s| format!("HTTP {s}{}: ", error_code.map(|c| format!(" (error_code {c})")).unwrap_or_default())).unwrap_or_default())]
    Registry {
        /// What evkit asked, naming the subject and version.
        what: String,
        /// The HTTP status, when an answer came.
        status: Option<u16>,
        /// The registry's `error_code` (e.g. 40401 subject not found), when it sent one.
        error_code: Option<i64>,
        /// What the status means and the registry's `message`.
        message: String,
    },
    /// I/O (the metrics endpoint).
    #[error("{context}: {source}")]
    Io {
        /// What evkit was doing.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn kafka(
        context: impl Into<String>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
        let context = context.into();
        move |source| Error::Kafka { context, source }
    }
}
