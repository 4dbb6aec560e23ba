//! One entry point for every test: [`Broker::start`].

use std::fmt;
use std::time::Duration;

use rand::Rng as _;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::types::RDKafkaErrorCode;

use crate::Error;
use crate::embedded::EmbeddedBroker;

/// How long [`Broker::start`] waits for an external broker to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which broker a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// librdkafka's mock cluster, in-process.
    Embedded,
    /// A broker someone else runs, found through `EVKIT_BOOTSTRAP`.
    External,
    /// Apache Kafka in a container (testcontainers).
    Container,
}

/// A feature some brokers lack. Tests ask with [`Broker::supports`] and skip, saying why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Injected request errors, brokers going down, delays, leader moves.
    FaultInjection,
    /// Kafka transactions.
    Transactions,
    /// High watermarks that equal the next offset (tansu reports the last batch's base + 1).
    AccurateHighWatermark,
    /// Topics are created when first used.
    AutoCreateTopics,
    /// SASL authentication.
    Sasl,
    /// Static group membership (KIP-345, `group.instance.id`): a member that rejoins under its
    /// instance id takes over the dead member's partitions at once. librdkafka's mock cluster
    /// stores the id but finds members only by member id, so a restarted static member joins as
    /// a second member and the dead one keeps its partitions until its session expires.
    StaticMembership,
    /// A group member that stops heartbeating (killed hard) is removed once its session times
    /// out, and the group rebalances to the members left. tansu 0.6 did not: a dynamic member
    /// killed with `kill -9` kept its partitions for over 150 s with a 12 s session timeout,
    /// while its successor waited (measured with `examples/todo-service/tests/restart.rs`).
    SessionExpiry,
}

/// What one broker can do; declared here, once, per broker flavor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct Capabilities {
    /// See [`Capability::FaultInjection`].
    pub fault_injection: bool,
    /// See [`Capability::Transactions`].
    pub transactions: bool,
    /// See [`Capability::AccurateHighWatermark`].
    pub accurate_high_watermark: bool,
    /// See [`Capability::AutoCreateTopics`].
    pub auto_create_topics: bool,
    /// See [`Capability::Sasl`].
    pub sasl: bool,
    /// See [`Capability::StaticMembership`].
    pub static_membership: bool,
    /// See [`Capability::SessionExpiry`].
    pub session_expiry: bool,
}

impl Capabilities {
    /// librdkafka's mock cluster.
    pub const EMBEDDED: Capabilities = Capabilities {
        fault_injection: true,
        transactions: true,
        accurate_high_watermark: true,
        auto_create_topics: true,
        sasl: false,
        static_membership: false,
        session_expiry: true,
    };
    /// Apache Kafka.
    pub const KAFKA: Capabilities = Capabilities {
        fault_injection: false,
        transactions: true,
        accurate_high_watermark: true,
        auto_create_topics: true,
        sasl: true,
        static_membership: true,
        session_expiry: true,
    };
    /// tansu 0.6 with in-memory storage (measured: see `shared/brokers.md`).
    pub const TANSU: Capabilities = Capabilities {
        fault_injection: false,
        transactions: false,
        accurate_high_watermark: false,
        auto_create_topics: false,
        sasl: false,
        static_membership: true,
        session_expiry: false,
    };

    /// The capabilities of a named flavor (`kafka`, `tansu`, `embedded`).
    pub fn for_flavor(flavor: &str) -> Capabilities {
        match flavor.to_ascii_lowercase().as_str() {
            "tansu" => Capabilities::TANSU,
            "embedded" | "mock" => Capabilities::EMBEDDED,
            _ => Capabilities::KAFKA,
        }
    }

    /// Whether this broker has `capability`.
    pub fn has(&self, capability: Capability) -> bool {
        match capability {
            Capability::FaultInjection => self.fault_injection,
            Capability::Transactions => self.transactions,
            Capability::AccurateHighWatermark => self.accurate_high_watermark,
            Capability::AutoCreateTopics => self.auto_create_topics,
            Capability::Sasl => self.sasl,
            Capability::StaticMembership => self.static_membership,
            Capability::SessionExpiry => self.session_expiry,
        }
    }
}

enum Inner {
    Embedded(EmbeddedBroker),
    External,
    #[cfg(feature = "containers")]
    Container(
        #[expect(
            dead_code,
            reason = "held only to keep the container alive; dropping it stops it"
        )]
        Box<testcontainers::ContainerAsync<testcontainers_modules::kafka::apache::Kafka>>,
    ),
}

/// A running Kafka-protocol broker for one test (or a group of tests).
///
/// Dropping it tears the broker down (embedded, container); an external broker is left alone.
pub struct Broker {
    inner: Inner,
    name: String,
    bootstrap: String,
    capabilities: Capabilities,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("name", &self.name)
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Starts (or finds) a broker; see the crate docs for the order.
    pub async fn start() -> Result<Broker, Error> {
        let external = std::env::var("EVKIT_BOOTSTRAP")
            .or_else(|_| std::env::var("KAFKA_BOOTSTRAP_SERVERS"))
            .ok()
            .filter(|s| !s.trim().is_empty());
        if let Some(bootstrap) = external {
            let flavor =
                std::env::var("EVKIT_BROKER_FLAVOR").unwrap_or_else(|_| "kafka".to_owned());
            return Broker::external(&bootstrap, &flavor).await;
        }
        if std::env::var("EVKIT_BROKER").is_ok_and(|v| v == "container") {
            return Broker::container().await;
        }
        Broker::embedded()
    }

    /// The embedded broker (3 mock brokers).
    pub fn embedded() -> Result<Broker, Error> {
        let cluster = EmbeddedBroker::start(3)?;
        Ok(Broker {
            name: "embedded".to_owned(),
            bootstrap: cluster.bootstrap_servers().to_owned(),
            capabilities: Capabilities::EMBEDDED,
            inner: Inner::Embedded(cluster),
        })
    }

    /// A broker that is already running at `bootstrap`. Fails within a bounded time when
    /// nothing answers there.
    pub async fn external(bootstrap: &str, flavor: &str) -> Result<Broker, Error> {
        let bootstrap = bootstrap.to_owned();
        let probe = bootstrap.clone();
        tokio::task::spawn_blocking(move || wait_for_metadata(&probe, CONNECT_TIMEOUT))
            .await
            .map_err(|e| Error::Unreachable {
                bootstrap: bootstrap.clone(),
                timeout: CONNECT_TIMEOUT,
                reason: e.to_string(),
            })??;
        Ok(Broker {
            inner: Inner::External,
            name: format!("external ({flavor})"),
            bootstrap,
            capabilities: Capabilities::for_flavor(flavor),
        })
    }

    /// Apache Kafka 3.8 (KRaft) in a container; needs a Docker daemon and the `containers`
    /// feature.
    #[cfg(not(feature = "containers"))]
    #[allow(
        clippy::unused_async,
        reason = "the same signature as with the feature"
    )]
    pub async fn container() -> Result<Broker, Error> {
        Err(Error::Container {
            reason: "this build has no container support: enable evkit-testkit's \
                     `containers` feature"
                .to_owned(),
        })
    }

    /// Apache Kafka 3.8 (KRaft) in a container; needs a Docker daemon and the `containers`
    /// feature.
    #[cfg(feature = "containers")]
    pub async fn container() -> Result<Broker, Error> {
        use testcontainers::runners::AsyncRunner as _;
        use testcontainers_modules::kafka::apache::{KAFKA_PORT, Kafka};
        let container = Kafka::default()
            .start()
            .await
            .map_err(|e| Error::Container {
                reason: format!("{e} (is a Docker daemon running?)"),
            })?;
        let port = container
            .get_host_port_ipv4(KAFKA_PORT)
            .await
            .map_err(|e| Error::Container {
                reason: e.to_string(),
            })?;
        Ok(Broker {
            inner: Inner::Container(Box::new(container)),
            name: "container (apache/kafka 3.8.0)".to_owned(),
            bootstrap: format!("127.0.0.1:{port}"),
            capabilities: Capabilities::KAFKA,
        })
    }

    /// Which kind of broker this is.
    pub fn kind(&self) -> BrokerKind {
        match self.inner {
            Inner::Embedded(_) => BrokerKind::Embedded,
            Inner::External => BrokerKind::External,
            #[cfg(feature = "containers")]
            Inner::Container(_) => BrokerKind::Container,
        }
    }

    /// A human name for reports: `embedded`, `external (tansu)`, ...
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bootstrap servers to give a client.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// What this broker can do.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Whether the broker has `capability`; when not, prints that `test` is skipped and why.
    pub fn supports(&self, capability: Capability, test: &str) -> bool {
        let ok = self.capabilities.has(capability);
        if !ok {
            println!("skipped: {test}: broker {} lacks {capability:?}", self.name);
        }
        ok
    }

    /// The embedded cluster, for fault injection; `None` on other brokers.
    pub fn embedded_cluster(&self) -> Option<&EmbeddedBroker> {
        if let Inner::Embedded(c) = &self.inner {
            Some(c)
        } else {
            None
        }
    }

    /// A topic name no other test uses: `evkit-test-<prefix>-<random>`.
    pub fn unique_topic(&self, prefix: &str) -> String {
        format!("evkit-test-{prefix}-{}", random_suffix())
    }

    /// A consumer group id no other test uses.
    pub fn unique_group(&self) -> String {
        format!("evkit-test-group-{}", random_suffix())
    }

    /// A client config pointing at this broker, with timeouts suited to tests.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("socket.timeout.ms", "10000")
            .set("message.timeout.ms", "15000")
            .set("log_level", "3");
        config
    }

    /// Creates a topic with `partitions` partitions and waits until its metadata shows them.
    pub async fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), Error> {
        if let Inner::Embedded(cluster) = &self.inner {
            cluster.create_topic(topic, partitions)?;
        } else {
            let admin: AdminClient<DefaultClientContext> = self
                .client_config()
                .create()
                .map_err(crate::kafka("creating an admin client"))?;
            let results = admin
                .create_topics(
                    &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                    &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
                )
                .await
                .map_err(crate::kafka(format!("creating topic {topic}")))?;
            for r in results {
                match r {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((t, code)) => {
                        return Err(Error::Mock {
                            operation: format!("create topic {t}"),
                            code: format!("{code:?}"),
                        });
                    }
                }
            }
        }
        let config = self.client_config();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || wait_for_partitions(&config, &topic, partitions))
            .await
            .map_err(|e| Error::Mock {
                operation: "wait for topic".to_owned(),
                code: e.to_string(),
            })?
    }
}

fn random_suffix() -> String {
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// Asks for cluster metadata until a broker answers or `timeout` passes.
fn wait_for_metadata(bootstrap: &str, timeout: Duration) -> Result<(), Error> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create()
        .map_err(crate::kafka("creating a probe client"))?;
    consumer
        .fetch_metadata(None, timeout)
        .map(|_| ())
        .map_err(|e| Error::Unreachable {
            bootstrap: bootstrap.to_owned(),
            timeout,
            reason: e.to_string(),
        })
}

fn wait_for_partitions(config: &ClientConfig, topic: &str, partitions: i32) -> Result<(), Error> {
    let consumer: BaseConsumer = config
        .create()
        .map_err(crate::kafka("creating a probe client"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let want = usize::try_from(partitions).unwrap_or(0);
    loop {
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))
            && md
                .topics()
                .iter()
                .any(|t| t.name() == topic && t.error().is_none() && t.partitions().len() >= want)
        {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::Mock {
                operation: format!("create topic {topic}"),
                code: format!("metadata never showed {partitions} partitions"),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
