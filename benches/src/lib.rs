//! Sample messages shared by evkit's benchmarks: one valid message of about 500 bytes per topic of
//! the sample catalog, with the key and headers its contract requires.

/// The global allocator of every bench binary: mimalloc, as we recommend for services (glibc
/// malloc's arenas make the allocation pattern of JSON values across threads several times more
/// expensive; see the README's Benchmarks and `docs/benchmarks.md`). Build with
/// `--no-default-features` to measure the system allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Which allocator the benches run with, for their reports.
pub const ALLOCATOR: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "system (glibc malloc)"
};

use evkit_schema::cloudevents::{CloudEvent, STRUCTURED_CONTENT_TYPE};
use evkit_schema::{Catalog, EnvelopeMode, Message, Topic, encode_identity};
use serde_json::Value;

/// An owned message: what a consumer holds after reading a record.
#[derive(Clone)]
pub struct Sample {
    /// The topic.
    pub topic: String,
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

impl Sample {
    /// Borrows the sample as a [`Message`].
    pub fn message(&self) -> Message<'_> {
        Message::from_parts(self.key.as_deref(), &self.headers, &self.payload)
    }
}

/// The sample catalog of this repository, as a service with the generated crate loads it: with
/// the validators that jsonschema's `validator` macro generated at build time
/// (`evkit_events::generated::PRECOMPILED`) answering `is_valid`.
pub fn catalog() -> Result<Catalog, evkit_schema::Error> {
    Catalog::load_with(CATALOG_DIR, evkit_events::generated::PRECOMPILED)
}

/// The sample catalog with runtime validators only (`Catalog::load`), as `evkit validate` and
/// any catalog without a generated crate check messages.
pub fn catalog_runtime() -> Result<Catalog, evkit_schema::Error> {
    Catalog::load(CATALOG_DIR)
}

const CATALOG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas");

/// A valid message for `topic`, built from the schema's first example and padded toward
/// `target_len` bytes through a free-text field when the schema has one.
pub fn sample(topic: &Topic, target_len: usize) -> Option<Sample> {
    let mut data: Value = topic.schema.get("examples")?.get(0)?.clone();
    for field in ["description", "title", "display_name"] {
        let max = topic
            .schema
            .pointer(&format!("/properties/{field}/maxLength"))
            .and_then(Value::as_u64)
            .and_then(|m| usize::try_from(m).ok());
        if let (Some(max), Some(obj)) = (max, data.as_object_mut()) {
            let len = serde_json::to_vec(&obj).ok()?.len();
            let pad = target_len.saturating_sub(len).min(max);
            if pad > 0 {
                obj.insert(
                    field.to_owned(),
                    Value::String("lorem ipsum ".repeat(pad / 12 + 1)[..pad].to_owned()),
                );
            }
            break;
        }
    }
    let contract = topic.contract();
    let key = contract.key_for(&data).map(String::into_bytes);
    let mut headers = vec![
        (
            "x-rh-identity".to_owned(),
            encode_identity("12345", "User").into_bytes(),
        ),
        (
            "x-rh-insights-request-id".to_owned(),
            b"3f1c2a9e-bench-request".to_vec(),
        ),
    ];
    let spec = &topic.spec.envelope;
    let mut ce = CloudEvent::new(
        "0b6f7c1e-1f4e-4a8e-9d0a-1c2b3d4e5f60",
        spec.source
            .clone()
            .unwrap_or_else(|| "urn:redhat:source:console".to_owned()),
        spec.event_type
            .clone()
            .unwrap_or_else(|| "com.redhat.console.event".to_owned()),
    );
    // The dataschema whose definition this example follows.
    ce.dataschema = spec
        .dataschemas
        .keys()
        .find(|uri| {
            let mut probe = ce.clone();
            probe.dataschema = Some((*uri).clone());
            let payload = serde_json::to_vec(&probe.structured(data.clone())).unwrap_or_default();
            let ids = encode_identity("12345", "User");
            let m = Message::new(&payload)
                .header("x-rh-identity", ids.as_bytes())
                .header("x-rh-insights-request-id", b"probe")
                .header("content-type", STRUCTURED_CONTENT_TYPE.as_bytes());
            contract.check(&m).is_ok()
        })
        .cloned();
    let payload = match spec.mode {
        EnvelopeMode::Plain => serde_json::to_vec(&data).ok()?,
        EnvelopeMode::CloudeventsBinary => {
            headers.extend(
                ce.binary_headers()
                    .into_iter()
                    .map(|(n, v)| (n, v.into_bytes())),
            );
            serde_json::to_vec(&data).ok()?
        }
        EnvelopeMode::CloudeventsStructured => {
            headers.push((
                "content-type".to_owned(),
                STRUCTURED_CONTENT_TYPE.as_bytes().to_vec(),
            ));
            serde_json::to_vec(&ce.structured(data)).ok()?
        }
    };
    Some(Sample {
        topic: topic.name().to_owned(),
        key,
        headers,
        payload,
    })
}

/// The many-tenant workload: `n` plain-JSON messages of `topic` of about `target_len` bytes,
/// each from a tenant of its own (its own `x-rh-identity`, `org_id` and key), so no identity is
/// seen twice within `n` messages.
pub fn many_tenants(topic: &Topic, n: usize, target_len: usize) -> Option<Vec<Sample>> {
    let base = sample(topic, target_len)?;
    let data: Value = serde_json::from_slice(&base.payload).ok()?;
    (0..n)
        .map(|i| {
            let org = format!("tenant-{i:05}");
            let mut data = data.clone();
            if let Some(o) = data.get_mut("org_id") {
                *o = Value::String(org.clone());
            }
            let mut s = base.clone();
            s.key = topic.contract().key_for(&data).map(String::into_bytes);
            s.payload = serde_json::to_vec(&data).ok()?;
            for (name, value) in &mut s.headers {
                if name == "x-rh-identity" {
                    *value = encode_identity(&org, "User").into_bytes();
                }
            }
            Some(s)
        })
        .collect()
}

/// The chain the consumer builds for catalog topic `topic` ([`evkit::consumer::chain`]), around a
/// handler that acknowledges: what the benches run per message without Kafka. Its dead-letter
/// producer points at no broker (nothing here is dead-lettered). `None` when the catalog lacks
/// the topic or the producer cannot be created.
pub fn noop_chain(
    catalog: &Catalog,
    metrics: &evkit::Metrics,
    topic: &str,
) -> Option<std::sync::Arc<dyn evkit::Handler>> {
    let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:1")
        .create()
        .ok()?;
    Some(evkit::consumer::chain(
        std::sync::Arc::new(evkit::handler_fn(|_| async { evkit::Outcome::Ack })),
        std::sync::Arc::clone(catalog.contract(topic).ok()?),
        &evkit::config::ConsumerConfig::default(),
        metrics,
        topic,
        evkit::middleware::dead_letter::Target {
            topic: format!("{topic}.dlq"),
            producer,
            timeout: std::time::Duration::from_secs(1),
        },
        tokio_util::sync::CancellationToken::new(),
    ))
}
