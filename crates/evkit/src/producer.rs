//! The validating producer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use evkit_schema::{Catalog, Contract, EnvelopeMode, IDENTITY_HEADER, Message, REQUEST_ID_HEADER};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde::Serialize;

use crate::metrics::Metrics;
use crate::{Config, Error, Incoming, Secret};

/// Who a produced event is on behalf of: the `x-rh-identity` to send (kept as a [`Secret`]) and
/// the request id to correlate with (generated when absent).
#[derive(Clone, Default)]
pub struct Context {
    identity: Option<Secret>,
    request_id: Option<String>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("identity", &self.identity.as_ref().map(|_| "***"))
            .field("request_id", &self.request_id)
            .finish()
    }
}

impl Context {
    /// No identity, a fresh request id per message.
    pub fn new() -> Self {
        Context::default()
    }

    /// Sends this `x-rh-identity` value (base64 JSON), e.g. the one of the request being served.
    #[must_use]
    pub fn with_identity_header(mut self, value: impl Into<String>) -> Self {
        self.identity = Some(Secret::new(value));
        self
    }

    /// Sends a minimal `System` identity for `org_id` (a service acting on its own).
    #[must_use]
    pub fn for_org(self, org_id: &str) -> Self {
        self.with_identity_header(evkit_schema::encode_identity(org_id, "System"))
    }

    /// Uses this request id instead of a generated one.
    #[must_use]
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// The identity and request id of a consumed message, for the events its handler produces.
    pub fn from_incoming(msg: &Incoming) -> Self {
        let env = msg.envelope();
        Context {
            identity: env
                .header(IDENTITY_HEADER)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(Secret::new),
            request_id: msg.request_id().map(str::to_owned).or_else(|| {
                env.header(REQUEST_ID_HEADER)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .map(str::to_owned)
            }),
        }
    }
}

/// Where a message landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The topic's name on the cluster.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// A message built and checked by [`Producer::prepare`]: key, headers and payload exactly as
/// they will be sent, ready to send now ([`Producer::send_prepared`]) or to keep in an
/// [`crate::outbox::Outbox`] first. Its `Debug` shows the topic and sizes, never header values
/// (the identity) or the payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Prepared {
    pub(crate) topic: String,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) payload: Vec<u8>,
}

impl Prepared {
    /// The catalog topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The key, when the key policy gave one.
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// The headers, in the order they will be sent.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("topic", &self.topic)
            .field("key_len", &self.key.as_ref().map(Vec::len))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Sends events for owned and foreign topics with acks=all and idempotence on.
///
/// For a catalog topic every message is checked against its contract (key, headers, envelope,
/// payload) before it is sent: an invalid event is an error, never a message on the wire.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    catalog: Arc<Catalog>,
    config: Arc<Config>,
    metrics: Metrics,
    timeout: Duration,
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("bootstrap_servers", &self.config.bootstrap_servers)
            .finish_non_exhaustive()
    }
}

/// The producer settings evkit insists on: durable, ordered, Java-compatible partitioning.
pub(crate) fn producer_config(config: &Config, timeout: Duration) -> Result<ClientConfig, Error> {
    let mut c = config.producer_client_config()?;
    c.set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", timeout.as_millis().to_string());
    Ok(c)
}

impl Producer {
    /// A producer for `catalog`'s topics (and any other topic, unchecked, via
    /// [`Producer::produce_raw`]).
    pub fn new(config: &Config, catalog: Arc<Catalog>, metrics: Metrics) -> Result<Self, Error> {
        // The delivery timeout: 30 s unless the producer's properties (`librdkafka_producer`
        // over `librdkafka`) set `message.timeout.ms`.
        let timeout = config
            .producer_client_config()?
            .get("message.timeout.ms")
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(30), Duration::from_millis);
        let inner: FutureProducer = producer_config(config, timeout)?
            .create()
            .map_err(config.client_error("creating the producer"))?;
        Ok(Producer {
            inner,
            catalog,
            config: Arc::new(config.clone()),
            metrics,
            timeout,
        })
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Sends a typed event to a catalog topic: serializes it, derives the key from the key
    /// policy, adds identity and request id, wraps it per the topic's envelope (CloudEvents binary
    /// or structured, with a fresh id and time), checks the whole message, sends it and waits for
    /// the broker to acknowledge it.
    pub async fn produce<E: Serialize + ?Sized>(
        &self,
        topic: &str,
        event: &E,
        ctx: &Context,
    ) -> Result<Delivery, Error> {
        let contract = self.catalog.contract(topic)?;
        match Self::prepare_event(contract, event, ctx) {
            Ok(m) => self.send_prepared(&m).await,
            Err(e) => {
                self.metrics.topic(topic).produce_errors.inc();
                Err(e)
            }
        }
    }

    /// Builds and checks what [`Producer::produce`] would send, without sending it: the
    /// serialized event (or CloudEvent), key, identity and request-id headers. An invalid event
    /// is an error here, so whatever is prepared is valid.
    pub fn prepare<E: Serialize + ?Sized>(
        &self,
        topic: &str,
        event: &E,
        ctx: &Context,
    ) -> Result<Prepared, Error> {
        let contract = self.catalog.contract(topic)?;
        Self::prepare_event(contract, event, ctx)
    }

    /// Sends a prepared message and waits for the broker to acknowledge it.
    pub async fn send_prepared(&self, message: &Prepared) -> Result<Delivery, Error> {
        let result = self
            .send(
                &message.topic,
                message.key.as_deref(),
                &message.headers,
                &message.payload,
            )
            .await;
        if result.is_err() {
            self.metrics.topic(&message.topic).produce_errors.inc();
        }
        result
    }

    fn prepare_event<E: Serialize + ?Sized>(
        contract: &Contract,
        event: &E,
        ctx: &Context,
    ) -> Result<Prepared, Error> {
        let topic = contract.topic();
        let value = serde_json::to_value(event).map_err(|source| Error::Serialize {
            topic: topic.to_owned(),
            source,
        })?;
        let spec = &contract.spec().envelope;
        // The payload is `value` itself unless the envelope is structured: then the check
        // reuses `value` instead of parsing the bytes again.
        let payload_is_value = spec.mode != EnvelopeMode::CloudeventsStructured;
        let enveloped = spec.mode != EnvelopeMode::Plain;
        let attributes = evkit_schema::wire::Attributes {
            id: if enveloped {
                uuid::Uuid::new_v4().to_string()
            } else {
                String::new()
            },
            time: enveloped
                .then(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            dataschema: None,
            identity: ctx.identity.as_ref().map(|id| id.expose().to_owned()),
            request_id: Some(
                ctx.request_id
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            ),
            schema_id: None,
        };
        let evkit_schema::wire::Encoded {
            key,
            headers,
            payload,
        } = evkit_schema::wire::encode(contract, &value, &attributes).map_err(|e| match e {
            evkit_schema::Error::Encode { topic, source } => Error::Serialize { topic, source },
            other => Error::Schema(other),
        })?;
        if key.is_none() && contract.key_policy().required {
            return Err(Error::MissingKey {
                topic: topic.to_owned(),
                pointer: contract
                    .key_policy()
                    .pointer
                    .clone()
                    .unwrap_or_else(|| "(none: use produce_raw with a key)".to_owned()),
            });
        }
        {
            let message = Message::from_parts(key.as_deref(), &headers, &payload);
            if payload_is_value {
                contract.check_parsed(&message, value)?;
            } else {
                contract.check(&message)?;
            }
        }
        Ok(Prepared {
            topic: topic.to_owned(),
            key,
            headers,
            payload,
        })
    }

    /// Sends bytes as they are, for foreign topics or pre-serialized events. Adds identity and
    /// request id when the caller's headers lack them. When the catalog knows `topic` the whole
    /// message is checked first; otherwise it is sent unchecked.
    pub async fn produce_raw(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        headers: &[(&str, &[u8])],
        payload: &[u8],
        ctx: &Context,
    ) -> Result<Delivery, Error> {
        let contract = self.catalog.get(topic).map(|t| Arc::clone(t.contract()));
        let mut h: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.to_vec()))
            .collect();
        Self::add_context_headers(&mut h, ctx);
        let result = match &contract {
            Some(c) => self.check_and_send(c, key, &h, payload).await,
            None => self.send(topic, key, &h, payload).await,
        };
        if result.is_err() {
            self.metrics.topic(topic).produce_errors.inc();
        }
        result
    }

    fn add_context_headers(headers: &mut Vec<(String, Vec<u8>)>, ctx: &Context) {
        let has = |headers: &[(String, Vec<u8>)], name: &str| {
            headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        if let Some(id) = &ctx.identity
            && !has(headers, IDENTITY_HEADER)
        {
            headers.push((IDENTITY_HEADER.to_owned(), id.expose().as_bytes().to_vec()));
        }
        if !has(headers, REQUEST_ID_HEADER) {
            let id = ctx
                .request_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            headers.push((REQUEST_ID_HEADER.to_owned(), id.into_bytes()));
        }
    }

    async fn check_and_send(
        &self,
        contract: &Contract,
        key: Option<&[u8]>,
        headers: &[(String, Vec<u8>)],
        payload: &[u8],
    ) -> Result<Delivery, Error> {
        contract.check(&Message::from_parts(key, headers, payload))?;
        self.send(contract.topic(), key, headers, payload).await
    }

    async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        headers: &[(String, Vec<u8>)],
        payload: &[u8],
    ) -> Result<Delivery, Error> {
        let actual = self.config.actual_topic(topic);
        let mut owned = OwnedHeaders::new_with_capacity(headers.len());
        for (name, value) in headers {
            owned = owned.insert(Header {
                key: name,
                value: Some(value),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(actual).headers(owned).payload(payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        match self.inner.send(record, Timeout::After(self.timeout)).await {
            Ok(d) => {
                self.metrics.topic(topic).produced.inc();
                Ok(Delivery {
                    topic: actual.to_owned(),
                    partition: d.partition,
                    offset: d.offset,
                })
            }
            Err((source, _)) => Err(Error::Kafka {
                context: format!("delivering to {actual}"),
                source,
            }),
        }
    }

    /// Waits for every queued message to be delivered (blocks the thread up to `timeout`).
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        use rdkafka::producer::Producer as _;
        self.inner
            .flush(Timeout::After(timeout))
            .map_err(Error::kafka("flushing the producer"))
    }

    /// Ends producing at shutdown within `deadline`, whatever the broker does: waits up to
    /// `deadline` for the messages still queued or in flight, then gives up on the rest and
    /// returns how many that was (logged). Nothing given up is lost silently: each such
    /// [`Producer::produce`] call fails at once with a purge error, so its caller (a handler,
    /// whose message is then not committed, or an outbox relay, whose row stays) still has
    /// it. Call it last: messages sent after it are not waited for.
    pub async fn close(&self, deadline: Duration) -> usize {
        use rdkafka::producer::{Producer as _, PurgeConfig};
        let inner = self.inner.clone();
        let waited = tokio::task::spawn_blocking(move || {
            // Bounded by `deadline`: librdkafka's flush returns at its timeout.
            let _ = inner.flush(Timeout::After(deadline));
            let left = inner.in_flight_count();
            if left > 0 {
                inner.purge(PurgeConfig::default().queue().inflight());
            }
            left
        })
        .await;
        let left = usize::try_from(waited.unwrap_or(0)).unwrap_or(0);
        if left > 0 {
            tracing::warn!(
                left,
                deadline_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                "producer closed with messages the broker had not acknowledged: their sends \
                 failed and their callers keep them"
            );
        }
        left
    }
}
