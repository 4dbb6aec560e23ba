//! Typed configuration: brokers, consumer group, SASL/SSL, topic names, consumer tuning.
//!
//! Sources, later ones overriding earlier ones ([`Config::load`]):
//! 1. defaults that work against `evkit dev` (`localhost:9092`, plaintext);
//! 2. a YAML or JSON file named by `EVKIT_CONFIG`;
//! 3. a Clowder app config named by `ACG_CONFIG` (brokers, SASL, CA, topic names), as services on
//!    console.redhat.com receive it;
//! 4. `EVKIT_*` environment variables (see [`Config::apply_env`]).
//!
//! Passwords are [`Secret`]s: `Debug` prints `***`, and evkit never logs a client configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::Error;

/// A value that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it (the client configuration).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Protocol {
    /// No TLS, no SASL (the local dev broker).
    #[default]
    Plaintext,
    /// TLS without SASL.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS (managed Kafka).
    SaslSsl,
}

impl Protocol {
    fn as_librdkafka(self) -> &'static str {
        match self {
            Protocol::Plaintext => "plaintext",
            Protocol::Ssl => "ssl",
            Protocol::SaslPlaintext => "sasl_plaintext",
            Protocol::SaslSsl => "sasl_ssl",
        }
    }

    fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "PLAINTEXT" => Some(Protocol::Plaintext),
            "SSL" => Some(Protocol::Ssl),
            "SASL_PLAINTEXT" => Some(Protocol::SaslPlaintext),
            "SASL_SSL" => Some(Protocol::SaslSsl),
            _ => None,
        }
    }
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mechanism {
    /// `PLAIN`.
    #[serde(rename = "PLAIN")]
    Plain,
    /// `SCRAM-SHA-256`.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// `SCRAM-SHA-512`.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// `GSSAPI` (Kerberos): needs evkit built with the `gssapi` feature (librdkafka with
    /// Cyrus SASL); see [`Sasl::kerberos`].
    #[serde(rename = "GSSAPI")]
    Gssapi,
    /// `OAUTHBEARER`, with tokens from an OIDC token endpoint (client credentials); see
    /// [`Sasl::oauthbearer`].
    #[serde(rename = "OAUTHBEARER")]
    OAuthBearer,
}

impl Mechanism {
    /// The name librdkafka and Kafka use.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::Gssapi => "GSSAPI",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    fn parse(s: &str) -> Option<Mechanism> {
        match s.to_ascii_uppercase().replace('_', "-").as_str() {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(Mechanism::ScramSha512),
            "GSSAPI" => Some(Mechanism::Gssapi),
            "OAUTHBEARER" => Some(Mechanism::OAuthBearer),
            _ => None,
        }
    }
}

/// SASL credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sasl {
    /// Mechanism.
    pub mechanism: Mechanism,
    /// User name (PLAIN, SCRAM).
    #[serde(default)]
    pub username: String,
    /// Password (PLAIN, SCRAM; redacted in `Debug`).
    #[serde(default)]
    pub password: Secret,
    /// Kerberos settings (GSSAPI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kerberos: Option<Kerberos>,
    /// OIDC client credentials (OAUTHBEARER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauthbearer: Option<OAuthBearer>,
}

impl Sasl {
    /// PLAIN or SCRAM credentials.
    pub fn password(mechanism: Mechanism, username: impl Into<String>, password: Secret) -> Sasl {
        Sasl {
            mechanism,
            username: username.into(),
            password,
            kerberos: None,
            oauthbearer: None,
        }
    }
}

/// GSSAPI (Kerberos) settings: librdkafka's `sasl.kerberos.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kerberos {
    /// `sasl.kerberos.service.name` (the brokers' principal name; default `kafka`).
    #[serde(default = "default_kerberos_service")]
    pub service_name: String,
    /// `sasl.kerberos.principal`: this client's principal.
    pub principal: String,
    /// `sasl.kerberos.keytab`: the keytab file.
    pub keytab: Option<PathBuf>,
}

fn default_kerberos_service() -> String {
    "kafka".to_owned()
}

/// OAUTHBEARER through an OIDC token endpoint (client credentials grant): librdkafka's
/// `sasl.oauthbearer.*` with `sasl.oauthbearer.method=oidc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthBearer {
    /// The token endpoint (`https://sso.example.com/.../token`).
    pub token_endpoint_url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret (redacted in `Debug`).
    pub client_secret: Secret,
    /// Scopes to ask for (space-separated), when the endpoint needs them.
    #[serde(default)]
    pub scope: Option<String>,
}

/// TLS and SASL settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// `security.protocol`; SASL settings imply `SASL_*`.
    pub protocol: Protocol,
    /// SASL credentials.
    pub sasl: Option<Sasl>,
    /// CA certificate file (`ssl.ca.location`).
    pub ca_location: Option<PathBuf>,
    /// CA certificate in PEM (`ssl.ca.pem`), as Clowder hands it out.
    pub ca_pem: Option<String>,
}

/// Retry policy for handlers that return [`crate::Outcome::Retry`]: bounded exponential backoff
/// with jitter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries after the first attempt (0 = dead-letter on the first transient failure).
    pub max_retries: u32,
    /// First delay, in milliseconds.
    pub min_delay_ms: u64,
    /// Largest delay, in milliseconds.
    pub max_delay_ms: u64,
    /// Growth factor per retry.
    pub factor: f32,
    /// Randomize delays so consumers do not retry in lockstep.
    pub jitter: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 3,
            min_delay_ms: 100,
            max_delay_ms: 10_000,
            factor: 2.0,
            jitter: true,
        }
    }
}

/// Consumer tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Messages queued per partition before fetching pauses for that partition (backpressure).
    pub max_in_flight_per_partition: usize,
    /// One handler attempt may take this long, in milliseconds; then it counts as a transient failure.
    pub handler_timeout_ms: u64,
    /// Retries.
    pub retry: RetryConfig,
    /// How often finished offsets are committed, in milliseconds.
    pub commit_interval_ms: u64,
    /// On shutdown, in-flight messages get this long to finish before the final commit, in milliseconds.
    pub shutdown_deadline_ms: u64,
    /// Where a new consumer group starts: `earliest` or `latest`.
    pub auto_offset_reset: String,
    /// One dead-letter publish may take this long before it is retried, in milliseconds.
    pub dead_letter_timeout_ms: u64,
    /// How often librdkafka reports statistics (consumer lag), in milliseconds.
    pub lag_interval_ms: u64,
    /// Read each assigned partition from its own librdkafka queue, on its worker (the default:
    /// no hand-off between threads, and partitions are read in parallel). `false` reads every
    /// partition through one loop that hands records to the workers.
    pub partition_queues: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            max_in_flight_per_partition: 256,
            handler_timeout_ms: 30_000,
            retry: RetryConfig::default(),
            commit_interval_ms: 1_000,
            shutdown_deadline_ms: 10_000,
            auto_offset_reset: "earliest".to_owned(),
            dead_letter_timeout_ms: 30_000,
            lag_interval_ms: 5_000,
            partition_queues: true,
        }
    }
}

impl ConsumerConfig {
    /// [`ConsumerConfig::handler_timeout_ms`] as a duration.
    pub fn handler_timeout(&self) -> Duration {
        Duration::from_millis(self.handler_timeout_ms)
    }

    /// [`ConsumerConfig::commit_interval_ms`] as a duration.
    pub fn commit_interval(&self) -> Duration {
        Duration::from_millis(self.commit_interval_ms.max(1))
    }

    /// [`ConsumerConfig::shutdown_deadline_ms`] as a duration.
    pub fn shutdown_deadline(&self) -> Duration {
        Duration::from_millis(self.shutdown_deadline_ms)
    }
}

/// Everything a service needs to reach Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `bootstrap.servers`, comma separated.
    pub bootstrap_servers: String,
    /// Consumer group.
    pub group_id: String,
    /// `group.instance.id`: a static member of the group (KIP-345). A member restarted under the
    /// same id (after `kill -9`, an OOM kill, a failed liveness probe) gets its partitions back
    /// at once instead of after the dead member's session expires. A static member does not
    /// leave the group when it stops, so its partitions wait for `session.timeout.ms` (45 s)
    /// unless it comes back under the same id: give it an id that survives restarts (a
    /// `StatefulSet`'s pod name, or a pod's name for container restarts). Under Clowder the pod
    /// name (`HOSTNAME`) is used unless set; `EVKIT_GROUP_INSTANCE_ID=none` turns it off.
    pub group_instance_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// TLS and SASL.
    pub security: Security,
    /// Catalog topic name → the topic's name on this cluster (Clowder's requested → actual).
    pub topics: BTreeMap<String, String>,
    /// Consumer tuning.
    pub consumer: ConsumerConfig,
    /// Address of the `/metrics` and `/healthz` endpoint, when one should be served.
    pub metrics_listen: Option<SocketAddr>,
    /// Extra librdkafka properties for every client, applied last (not for secrets: use
    /// `security`).
    pub librdkafka: BTreeMap<String, String>,
    /// Extra librdkafka properties for consumers only (the consumer, `replay`'s reader), applied
    /// after `librdkafka`: a consumer property such as `session.timeout.ms` in `librdkafka`
    /// would also reach every producer, which warns that it ignores it (`CONFWARN`).
    pub librdkafka_consumer: BTreeMap<String, String>,
    /// Extra librdkafka properties for producers only (`Producer`, the dead-letter producer, the
    /// outbox relay, `replay`'s sender), applied after `librdkafka`.
    pub librdkafka_producer: BTreeMap<String, String>,
    /// The Confluent Schema Registry, for `wire: confluent` topics and `evkit registry`.
    pub registry: Option<RegistryConfig>,
}

/// How the registry subject of a topic's payload schema is named (Confluent's
/// `value.subject.name.strategy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectStrategy {
    /// `<topic>-value` (`TopicNameStrategy`, Confluent's default).
    #[default]
    TopicName,
    /// The schema's record name: its `title` (`RecordNameStrategy`).
    RecordName,
    /// `<topic>-<record name>` (`TopicRecordNameStrategy`).
    TopicRecordName,
}

impl SubjectStrategy {
    /// The subject of `topic`'s payload schema, whose `title` is `record`. `None` when the
    /// strategy needs a record name and the schema has no `title`.
    pub fn subject(self, topic: &str, record: Option<&str>) -> Option<String> {
        match self {
            SubjectStrategy::TopicName => Some(format!("{topic}-value")),
            SubjectStrategy::RecordName => record.map(str::to_owned),
            SubjectStrategy::TopicRecordName => record.map(|r| format!("{topic}-{r}")),
        }
    }
}

/// Where the schema registry is and how to reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL, e.g. `https://registry.example.com:8081`.
    pub url: String,
    /// Basic auth user.
    pub username: Option<String>,
    /// Basic auth password (redacted in `Debug`).
    pub password: Option<Secret>,
    /// A PEM file of CA certificates to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Subject naming.
    pub subject_strategy: SubjectStrategy,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// Retries after a 5xx answer, a timeout or a connection failure (with backoff).
    pub retries: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            url: String::new(),
            username: None,
            password: None,
            ca_file: None,
            subject_strategy: SubjectStrategy::TopicName,
            timeout_ms: 10_000,
            retries: 3,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bootstrap_servers: "localhost:9092".to_owned(),
            group_id: "evkit".to_owned(),
            group_instance_id: None,
            client_id: "evkit".to_owned(),
            security: Security::default(),
            topics: BTreeMap::new(),
            consumer: ConsumerConfig::default(),
            metrics_listen: None,
            librdkafka: BTreeMap::new(),
            librdkafka_consumer: BTreeMap::new(),
            librdkafka_producer: BTreeMap::new(),
            registry: None,
        }
    }
}

/// The `kafka` section of a Clowder app config (`ACG_CONFIG`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClowderApp {
    kafka: Option<ClowderKafka>,
    metrics_port: Option<u16>,
}

#[derive(Deserialize)]
struct ClowderKafka {
    #[serde(default)]
    brokers: Vec<ClowderBroker>,
    #[serde(default)]
    topics: Vec<ClowderTopic>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClowderBroker {
    hostname: String,
    port: Option<u16>,
    cacert: Option<String>,
    sasl: Option<ClowderSasl>,
    security_protocol: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClowderSasl {
    username: Option<String>,
    password: Option<Secret>,
    sasl_mechanism: Option<String>,
    security_protocol: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClowderTopic {
    requested_name: String,
    name: String,
}

fn invalid(source: &str, message: impl Into<String>) -> Error {
    Error::Config {
        source_name: source.to_owned(),
        message: message.into(),
    }
}

impl Config {
    /// Defaults, then `EVKIT_CONFIG` (file), then `ACG_CONFIG` (Clowder), then `EVKIT_*` variables.
    pub fn load() -> Result<Config, Error> {
        let mut config = match std::env::var_os("EVKIT_CONFIG") {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(path) = std::env::var_os("ACG_CONFIG") {
            let path = PathBuf::from(path);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| invalid(&path.display().to_string(), e.to_string()))?;
            config.apply_clowder(&text)?;
            config.apply_pod_name(std::env::var("HOSTNAME").ok().as_deref());
        }
        config.apply_env(std::env::vars())?;
        Ok(config)
    }

    /// Reads a YAML (or JSON) file; fields left out keep their defaults.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, Error> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| invalid(&name, e.to_string()))?;
        serde_norway::from_str(&text).map_err(|e| invalid(&name, e.to_string()))
    }

    /// Applies a Clowder app config (the JSON `ACG_CONFIG` points to): every broker, the SASL
    /// credentials and CA of the first broker that has them, and the topic-name mapping.
    pub fn apply_clowder(&mut self, json: &str) -> Result<(), Error> {
        let app: ClowderApp =
            serde_json::from_str(json).map_err(|e| invalid("ACG_CONFIG", e.to_string()))?;
        if let Some(port) = app.metrics_port {
            self.metrics_listen = Some(SocketAddr::from(([0, 0, 0, 0], port)));
        }
        let Some(kafka) = app.kafka else {
            return Ok(());
        };
        if kafka.brokers.is_empty() {
            return Err(invalid("ACG_CONFIG", "kafka.brokers is empty"));
        }
        self.bootstrap_servers = kafka
            .brokers
            .iter()
            .map(|b| format!("{}:{}", b.hostname, b.port.unwrap_or(9092)))
            .collect::<Vec<_>>()
            .join(",");
        let first = &kafka.brokers[0];
        let mut protocol = first
            .security_protocol
            .as_deref()
            .or(first
                .sasl
                .as_ref()
                .and_then(|s| s.security_protocol.as_deref()))
            .map(|p| {
                Protocol::parse(p).ok_or_else(|| {
                    invalid(
                        "ACG_CONFIG",
                        format!("unknown securityProtocol `{p}` in kafka.brokers[0]"),
                    )
                })
            })
            .transpose()?;
        if let Some(sasl) = &first.sasl
            && let (Some(username), Some(password)) = (&sasl.username, &sasl.password)
        {
            let mechanism = match sasl.sasl_mechanism.as_deref() {
                Some(m) => Mechanism::parse(m).ok_or_else(|| {
                    invalid(
                        "ACG_CONFIG",
                        format!("unknown saslMechanism `{m}` in kafka.brokers[0].sasl"),
                    )
                })?,
                None => Mechanism::Plain,
            };
            self.security.sasl = Some(Sasl::password(
                mechanism,
                username.clone(),
                password.clone(),
            ));
            if protocol.is_none() {
                protocol = Some(Protocol::SaslSsl);
            }
        }
        if let Some(ca) = &first.cacert
            && !ca.trim().is_empty()
        {
            self.security.ca_pem = Some(ca.clone());
            if protocol.is_none() {
                protocol = Some(Protocol::Ssl);
            }
        }
        if let Some(p) = protocol {
            self.security.protocol = p;
        }
        for t in kafka.topics {
            self.topics.insert(t.requested_name, t.name);
        }
        Ok(())
    }

    /// Under Clowder, the pod's name (Kubernetes sets `HOSTNAME` to it) becomes the
    /// [`Config::group_instance_id`] unless one is set: a container restarted in its pod
    /// rejoins as the same static member.
    pub fn apply_pod_name(&mut self, pod_name: Option<&str>) {
        if self.group_instance_id.is_none()
            && let Some(name) = pod_name.map(str::trim).filter(|n| !n.is_empty())
        {
            self.group_instance_id = Some(name.to_owned());
        }
    }

    /// The `EVKIT_SCHEMA_REGISTRY_*` part of [`Config::apply_env`].
    fn apply_registry_env<'v>(&mut self, get: impl Fn(&str) -> Option<&'v str>) {
        if let Some(v) = get("EVKIT_SCHEMA_REGISTRY_URL") {
            v.clone_into(
                &mut self
                    .registry
                    .get_or_insert_with(RegistryConfig::default)
                    .url,
            );
        }
        if let Some(registry) = &mut self.registry {
            if let Some(v) = get("EVKIT_SCHEMA_REGISTRY_USERNAME") {
                registry.username = Some(v.to_owned());
            }
            if let Some(v) = get("EVKIT_SCHEMA_REGISTRY_PASSWORD") {
                registry.password = Some(Secret::new(v));
            }
            if let Some(v) = get("EVKIT_SCHEMA_REGISTRY_CA_FILE") {
                registry.ca_file = Some(PathBuf::from(v));
            }
        }
    }

    /// Applies `EVKIT_*` variables from `vars`:
    /// `EVKIT_BOOTSTRAP_SERVERS`, `EVKIT_GROUP_ID`, `EVKIT_GROUP_INSTANCE_ID` (`none` for a
    /// dynamic member), `EVKIT_CLIENT_ID`, `EVKIT_SECURITY_PROTOCOL`,
    /// `EVKIT_SASL_MECHANISM`, `EVKIT_SASL_USERNAME`, `EVKIT_SASL_PASSWORD`,
    /// `EVKIT_SSL_CA_LOCATION`, `EVKIT_TOPICS` (`catalog-name=actual-name,...`) and
    /// `EVKIT_METRICS_LISTEN` (`host:port`), and the schema registry's `EVKIT_SCHEMA_REGISTRY_URL`,
    /// `EVKIT_SCHEMA_REGISTRY_USERNAME`, `EVKIT_SCHEMA_REGISTRY_PASSWORD` and
    /// `EVKIT_SCHEMA_REGISTRY_CA_FILE`. Other variables are ignored.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), Error> {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("EVKIT_"))
            .collect();
        let get = |k: &str| vars.get(k).map(String::as_str).filter(|v| !v.is_empty());
        if let Some(v) = get("EVKIT_BOOTSTRAP_SERVERS") {
            v.clone_into(&mut self.bootstrap_servers);
        }
        if let Some(v) = get("EVKIT_GROUP_ID") {
            v.clone_into(&mut self.group_id);
        }
        if let Some(v) = get("EVKIT_GROUP_INSTANCE_ID") {
            self.group_instance_id = (!v.eq_ignore_ascii_case("none")).then(|| v.to_owned());
        }
        if let Some(v) = get("EVKIT_CLIENT_ID") {
            v.clone_into(&mut self.client_id);
        }
        if let Some(v) = get("EVKIT_SECURITY_PROTOCOL") {
            self.security.protocol = Protocol::parse(v).ok_or_else(|| {
                invalid(
                    "EVKIT_SECURITY_PROTOCOL",
                    format!("`{v}` is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
                )
            })?;
        }
        let user = get("EVKIT_SASL_USERNAME");
        let password = get("EVKIT_SASL_PASSWORD");
        let mechanism = get("EVKIT_SASL_MECHANISM")
            .map(|m| {
                Mechanism::parse(m).ok_or_else(|| {
                    invalid(
                        "EVKIT_SASL_MECHANISM",
                        format!(
                            "`{m}` is not PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI or \
                             OAUTHBEARER"
                        ),
                    )
                })
            })
            .transpose()?;
        match (user, password) {
            (Some(u), Some(p)) => {
                self.security.sasl = Some(Sasl::password(
                    mechanism
                        .or(self.security.sasl.as_ref().map(|s| s.mechanism))
                        .unwrap_or(Mechanism::Plain),
                    u,
                    Secret::new(p),
                ));
            }
            (None, None) => {
                if let (Some(m), Some(s)) = (mechanism, self.security.sasl.as_mut()) {
                    s.mechanism = m;
                }
            }
            _ => {
                return Err(invalid(
                    "EVKIT_SASL_USERNAME",
                    "EVKIT_SASL_USERNAME and EVKIT_SASL_PASSWORD go together",
                ));
            }
        }
        if let Some(v) = get("EVKIT_SSL_CA_LOCATION") {
            self.security.ca_location = Some(PathBuf::from(v));
        }
        if let Some(v) = get("EVKIT_TOPICS") {
            for pair in v.split(',').filter(|p| !p.trim().is_empty()) {
                let (from, to) = pair.split_once('=').ok_or_else(|| {
                    invalid(
                        "EVKIT_TOPICS",
                        format!("`{pair}` is not catalog-name=actual-name"),
                    )
                })?;
                self.topics
                    .insert(from.trim().to_owned(), to.trim().to_owned());
            }
        }
        self.apply_registry_env(get);
        if let Some(v) = get("EVKIT_METRICS_LISTEN") {
            self.metrics_listen = Some(v.parse().map_err(|e| {
                invalid(
                    "EVKIT_METRICS_LISTEN",
                    format!("`{v}` is not host:port: {e}"),
                )
            })?);
        }
        Ok(())
    }

    /// The topic's name on this cluster (the mapping, or the catalog name itself).
    pub fn actual_topic<'a>(&'a self, catalog_name: &'a str) -> &'a str {
        self.topics
            .get(catalog_name)
            .map_or(catalog_name, String::as_str)
    }

    /// The catalog name of a topic as named on this cluster.
    pub fn catalog_topic<'a>(&'a self, actual: &'a str) -> &'a str {
        self.topics
            .iter()
            .find(|(_, a)| a.as_str() == actual)
            .map_or(actual, |(c, _)| c.as_str())
    }

    /// The librdkafka properties shared by producers and consumers: brokers, client id, TLS,
    /// SASL, then the extra properties. Never log the result: it holds the password.
    pub fn client_config(&self) -> Result<ClientConfig, Error> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id);
        let mut protocol = self.security.protocol;
        if self.security.sasl.is_some() {
            protocol = match protocol {
                Protocol::Plaintext => Protocol::SaslPlaintext,
                Protocol::Ssl => Protocol::SaslSsl,
                p => p,
            };
        } else if matches!(protocol, Protocol::SaslPlaintext | Protocol::SaslSsl) {
            return Err(invalid(
                "security",
                format!(
                    "protocol {} needs SASL credentials (security.sasl)",
                    protocol.as_librdkafka()
                ),
            ));
        }
        c.set("security.protocol", protocol.as_librdkafka());
        if let Some(sasl) = &self.security.sasl {
            sasl_properties(sasl, &mut c)?;
        }
        if let Some(ca) = &self.security.ca_location {
            c.set("ssl.ca.location", ca.display().to_string());
        }
        if let Some(pem) = &self.security.ca_pem {
            c.set("ssl.ca.pem", pem);
        }
        extra_properties(&mut c, "librdkafka", &self.librdkafka)?;
        Ok(c)
    }

    /// [`Config::client_config`] for a consumer: then the `librdkafka_consumer` properties.
    pub fn consumer_client_config(&self) -> Result<ClientConfig, Error> {
        let mut c = self.client_config()?;
        extra_properties(&mut c, "librdkafka_consumer", &self.librdkafka_consumer)?;
        Ok(c)
    }

    /// [`Config::client_config`] for a producer: then the `librdkafka_producer` properties.
    pub fn producer_client_config(&self) -> Result<ClientConfig, Error> {
        let mut c = self.client_config()?;
        extra_properties(&mut c, "librdkafka_producer", &self.librdkafka_producer)?;
        Ok(c)
    }

    /// Whether the user set librdkafka property `key` for consumers (in `librdkafka` or
    /// `librdkafka_consumer`).
    pub(crate) fn sets_consumer_property(&self, key: &str) -> bool {
        self.librdkafka.contains_key(key) || self.librdkafka_consumer.contains_key(key)
    }
}

impl Config {
    /// The error of a client librdkafka would not create, with every secret of this
    /// configuration masked: librdkafka's message repeats the value of the property it refused.
    pub fn client_error<'a>(
        &'a self,
        context: &'a str,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> Error + 'a {
        move |e| {
            let mut text = e.to_string();
            if let Some(sasl) = &self.security.sasl {
                let secrets = [
                    sasl.password.expose(),
                    sasl.oauthbearer
                        .as_ref()
                        .map_or("", |o| o.client_secret.expose()),
                ];
                for s in secrets.into_iter().filter(|s| !s.is_empty()) {
                    text = text.replace(s, "***");
                }
            }
            Error::Config {
                source_name: "librdkafka".to_owned(),
                message: format!("{context}: {text}"),
            }
        }
    }
}

/// Applies the extra properties of config section `section`; secrets are refused there.
fn extra_properties(
    c: &mut ClientConfig,
    section: &str,
    properties: &BTreeMap<String, String>,
) -> Result<(), Error> {
    for (k, v) in properties {
        if k.contains("password") || k.starts_with("sasl.") {
            return Err(invalid(
                section,
                format!("`{k}` belongs in `security`, where it is redacted"),
            ));
        }
        c.set(k, v);
    }
    Ok(())
}

/// librdkafka's `sasl.*` properties for `sasl`, or what is missing for its mechanism.
fn sasl_properties(sasl: &Sasl, c: &mut ClientConfig) -> Result<(), Error> {
    c.set("sasl.mechanism", sasl.mechanism.as_str());
    match sasl.mechanism {
        Mechanism::Plain | Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
            if sasl.username.is_empty() || sasl.password.expose().is_empty() {
                return Err(invalid(
                    "security.sasl",
                    format!(
                        "{} needs a username and a password",
                        sasl.mechanism.as_str()
                    ),
                ));
            }
            c.set("sasl.username", &sasl.username)
                .set("sasl.password", sasl.password.expose());
        }
        Mechanism::Gssapi => {
            if !cfg!(feature = "gssapi") {
                return Err(invalid(
                    "security.sasl",
                    "GSSAPI needs evkit built with the `gssapi` feature (librdkafka with Cyrus \
                     SASL: libsasl2-dev)",
                ));
            }
            let Some(k) = &sasl.kerberos else {
                return Err(invalid(
                    "security.sasl",
                    "GSSAPI needs `kerberos: {principal, keytab, service_name}`",
                ));
            };
            c.set("sasl.kerberos.service.name", &k.service_name)
                .set("sasl.kerberos.principal", &k.principal);
            if let Some(keytab) = &k.keytab {
                c.set("sasl.kerberos.keytab", keytab.display().to_string());
            }
        }
        Mechanism::OAuthBearer => {
            if !cfg!(feature = "oidc") {
                return Err(invalid(
                    "security.sasl",
                    "OAUTHBEARER through OIDC needs evkit built with the `oidc` feature \
                     (librdkafka with libcurl: libcurl4-openssl-dev)",
                ));
            }
            let Some(o) = &sasl.oauthbearer else {
                return Err(invalid(
                    "security.sasl",
                    "OAUTHBEARER needs `oauthbearer: {token_endpoint_url, client_id, \
                     client_secret}`",
                ));
            };
            c.set("sasl.oauthbearer.method", "oidc")
                .set("sasl.oauthbearer.token.endpoint.url", &o.token_endpoint_url)
                .set("sasl.oauthbearer.client.id", &o.client_id)
                .set("sasl.oauthbearer.client.secret", o.client_secret.expose());
            if let Some(scope) = &o.scope {
                c.set("sasl.oauthbearer.scope", scope);
            }
        }
    }
    Ok(())
}
