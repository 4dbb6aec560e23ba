//! Real-broker fixtures for evkit's tests, and the embedded broker behind `evkit dev`.
//!
//! [`Broker::start`] picks, in this order:
//! 1. an **external** broker when `EVKIT_BOOTSTRAP` (or `KAFKA_BOOTSTRAP_SERVERS`) is set;
//!    `EVKIT_BROKER_FLAVOR` (`kafka`, `tansu`) says what it can do;
//! 2. Apache Kafka (KRaft, image tag pinned) in a **container** when `EVKIT_BROKER=container`
//!    and a Docker daemon answers;
//! 3. otherwise the **embedded** broker: librdkafka's mock cluster, in-process, on real TCP
//!    sockets on 127.0.0.1, with consumer groups, commits and fault injection.
//!
//! Every test takes unique topic and group names ([`Broker::unique_topic`],
//! [`Broker::unique_group`]) so tests never collide, and features a broker lacks are declared
//! once, in [`Capabilities`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), evkit_testkit::Error> {
//! use evkit_testkit::Broker;
//!
//! let broker = Broker::start().await?;
//! let topic = broker.unique_topic("doc");
//! broker.create_topic(&topic, 3).await?;
//! assert!(!broker.bootstrap_servers().is_empty());
//! # Ok(())
//! # }
//! ```

pub mod asyncapi;
pub mod bench;
mod broker;
pub mod catalogs;
pub mod clients;
pub mod contracts;
mod embedded;
mod front;
pub mod fuzz;
pub mod gate;
pub mod generate;
pub mod messages;
mod outside;
pub mod service;
#[cfg(feature = "cucumber")]
pub mod steps;
pub mod suite;
pub mod verify;

pub use broker::{Broker, BrokerKind, Capabilities, Capability};
pub use embedded::{EmbeddedBroker, ForwardedBroker};
pub use rdkafka::types::{RDKafkaApiKey as ApiKey, RDKafkaRespErr as RespErr};

/// Everything that can go wrong in `evkit-testkit`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// librdkafka refused an operation.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The mock cluster refused an operation.
    #[error("mock cluster: {operation} failed: {code}")]
    Mock {
        /// The operation.
        operation: String,
        /// librdkafka's error code.
        code: String,
    },
    /// An address could not be bound (for example, the port is taken).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// No broker answered at the bootstrap address in time.
    #[error("no Kafka broker answered at {bootstrap} within {timeout:?}: {reason}")]
    Unreachable {
        /// The bootstrap servers.
        bootstrap: String,
        /// How long we waited.
        timeout: std::time::Duration,
        /// The client's explanation.
        reason: String,
    },
    /// The container broker could not start.
    #[error("container broker: {reason}")]
    Container {
        /// Why.
        reason: String,
    },
    /// Service contracts (`contracts/`) that do not hold, every problem listed.
    #[error("contracts:\n  - {}", problems.join("\n  - "))]
    Contracts {
        /// One line per problem: file, JSON pointer, what is wrong.
        problems: Vec<String>,
    },
    /// The catalog refused an operation.
    #[error(transparent)]
    Schema(#[from] evkit_schema::Error),
    /// An AsyncAPI document that evkit cannot read (or a catalog it cannot describe).
    #[error("asyncapi: {0}")]
    AsyncApi(String),
    /// The runtime refused an operation.
    #[error(transparent)]
    Runtime(#[from] evkit::Error),
    /// A report could not be written.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A schema uses a keyword (or value) the message generators cannot honour.
    #[error("generator: unsupported `{keyword}` at {at}")]
    Unsupported {
        /// The keyword, e.g. `patternProperties` or `format: idn-email`.
        keyword: String,
        /// JSON pointer of the schema object that uses it.
        at: String,
    },
    /// A schema (or the subschema at `at`) accepts no value at all.
    #[error("generator: the schema at {at} accepts nothing")]
    AcceptsNothing {
        /// JSON pointer of the subschema (for a generated value: its instance path).
        at: String,
    },
    /// The generators cannot build what was asked (a schema that does not compile, recursion
    /// without a shallow end, a rule that cannot be broken).
    #[error("generator: {at}: {reason}")]
    Generator {
        /// JSON pointer of the subschema or instance location.
        at: String,
        /// Why.
        reason: String,
    },
    /// A request the broker at hand cannot serve (with what would fit).
    #[error("{what}")]
    Limit {
        /// What does not fit, and what would.
        what: String,
    },
    /// A run did not finish: what was expected and how far it got.
    #[error("stalled: {what}")]
    Stalled {
        /// What did not finish, and how far it got.
        what: String,
    },
}

pub(crate) fn kafka(
    context: impl Into<String>,
) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
    let context = context.into();
    move |source| Error::Kafka { context, source }
}
