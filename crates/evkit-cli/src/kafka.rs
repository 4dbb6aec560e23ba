//! `evkit dev`, `produce`, `consume` and `tail`: the local loop for checking messages before the
//! ephemeral environment, stage and prod.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use evkit_schema::{Catalog, Identity, Message, Violation};
use evkit_testkit::EmbeddedBroker;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

use crate::Format;

/// How long to wait for a broker before saying none answers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the embedded broker on a fixed address, creates every catalog topic and its dead-letter
/// topic, and serves until ctrl-c or SIGTERM.
pub async fn dev(catalog: &Catalog, listen: SocketAddr, brokers: i32) -> Result<ExitCode> {
    let cluster = EmbeddedBroker::start(brokers).context("starting the embedded broker")?;
    let front = cluster.front(listen).await.with_context(|| {
        format!("evkit dev cannot listen on {listen} (is another broker running there?)")
    })?;
    let mut created = 0;
    for topic in catalog.topics() {
        let partitions = i32::try_from(topic.spec.partitions).unwrap_or(i32::MAX);
        front.cluster().create_topic(topic.name(), partitions)?;
        front
            .cluster()
            .create_topic(&topic.spec.dead_letter_topic(), partitions)?;
        created += 2;
        outln!(
            "  {} ({partitions} partitions, dead letters to {})",
            topic.name(),
            topic.spec.dead_letter_topic()
        );
    }
    outln!(
        "evkit dev: Kafka ready on {} ({brokers} broker(s), {created} topics). Ctrl-C stops it.",
        front.bootstrap_servers()
    );
    wait_for_shutdown().await;
    outln!("evkit dev: stopped");
    drop(front);
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "10000")
        .set("log_level", "0");
    config
}

/// Fails with a clear message when nothing answers at `bootstrap`; returns which of `topics`
/// the broker does not have.
fn probe(bootstrap: &str, topics: &[String]) -> Result<Vec<String>> {
    let consumer: BaseConsumer = client_config(bootstrap).create()?;
    let metadata = consumer
        .fetch_metadata(None, CONNECT_TIMEOUT)
        .with_context(|| format!("no Kafka broker answered at {bootstrap} within {CONNECT_TIMEOUT:?} (start one with `evkit dev`)"))?;
    Ok(topics
        .iter()
        .filter(|topic| {
            !metadata
                .topics()
                .iter()
                .any(|t| t.name() == *topic && t.error().is_none() && !t.partitions().is_empty())
        })
        .cloned()
        .collect())
}

/// The error for a topic the broker at `bootstrap` does not have.
fn missing_topic(topic: &str, bootstrap: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "topic `{topic}` does not exist on {bootstrap} (create it; `evkit dev` creates every \
         catalog topic and its dead-letter topic when it starts)"
    )
}

/// What `evkit produce` sends.
pub struct Produce<'a> {
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub key: Option<&'a str>,
    pub headers: &'a [String],
    pub org_id: Option<&'a str>,
    pub validate: bool,
    pub dataschema: Option<&'a str>,
    pub format: Format,
    pub payload: &'a [u8],
    /// The schema id to frame a `wire: confluent` topic's payload with.
    pub schema_id: Option<u32>,
}

/// What the catalog knows, unless given: the key from the key pointer, and the CloudEvents
/// attributes of an enveloped topic (added to `headers`, or the structured envelope around the
/// payload). Returns the key and the payload to send.
fn from_catalog(
    catalog: &Catalog,
    p: &Produce<'_>,
    headers: &mut Vec<(String, Vec<u8>)>,
) -> Result<(Option<Vec<u8>>, Vec<u8>)> {
    let mut key = p.key.map(|k| k.as_bytes().to_vec());
    let mut payload = p.payload.to_vec();
    let mut return_framed = false;
    if let Ok(contract) = catalog.contract(p.topic)
        && let Ok(event) = serde_json::from_slice::<Value>(p.payload)
    {
        let envelope = &contract.spec().envelope;
        let wrap = match envelope.mode {
            evkit_schema::EnvelopeMode::Plain => false,
            evkit_schema::EnvelopeMode::CloudeventsBinary => !headers
                .iter()
                .any(|(n, _)| n.to_ascii_lowercase().starts_with("ce_")),
            evkit_schema::EnvelopeMode::CloudeventsStructured => event.get("specversion").is_none(),
        };
        if wrap {
            if envelope.mode == evkit_schema::EnvelopeMode::CloudeventsStructured
                && !envelope.dataschemas.is_empty()
                && p.dataschema.is_none()
            {
                bail!(
                    "{} dispatches on the CloudEvents dataschema: pass --dataschema, one of {}",
                    p.topic,
                    envelope
                        .dataschemas
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let attributes = evkit_schema::wire::Attributes {
                id: uuid::Uuid::new_v4().to_string(),
                time: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                dataschema: p.dataschema.map(str::to_owned),
                identity: None,
                request_id: None,
                schema_id: p.schema_id,
            };
            let encoded = evkit_schema::wire::encode(contract, &event, &attributes)?;
            if envelope.mode == evkit_schema::EnvelopeMode::CloudeventsStructured {
                // Framed already, on a `wire: confluent` topic.
                return_framed = true;
                payload = encoded.payload;
            }
            // Binary mode: the payload stays the bytes given; the attributes are headers.
            let added: Vec<String> = encoded.headers.iter().map(|(n, _)| n.clone()).collect();
            headers.splice(0..0, encoded.headers);
            eprintln!("evkit: CloudEvents attributes added: {}", added.join(", "));
        }
        if key.is_none()
            && let Some(k) = contract.key_for(&event)
        {
            eprintln!(
                "evkit: key `{k}` from {}",
                contract.spec().key.pointer.as_deref().unwrap_or_default()
            );
            key = Some(k.into_bytes());
        }
    }
    if let Ok(contract) = catalog.contract(p.topic)
        && contract.wire() == evkit_schema::WireFormat::Confluent
        && !return_framed
        && payload.first() != Some(&evkit_schema::confluent::MAGIC_BYTE)
    {
        match p.schema_id {
            Some(id) => payload = evkit_schema::confluent::frame(id, &payload),
            None if p.validate => bail!(
                "{} uses the Confluent wire format: pass --schema-id, or --registry (or \
                 EVKIT_SCHEMA_REGISTRY_URL) to look up the catalog schema's id",
                p.topic
            ),
            None => {}
        }
    }
    Ok((key, payload))
}

/// Validates (unless told not to) and sends one message.
pub async fn produce(catalog: &Catalog, p: &Produce<'_>) -> Result<ExitCode> {
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for h in p.headers {
        let Some((name, value)) = h.split_once('=') else {
            bail!("--header `{h}` is not NAME=VALUE");
        };
        headers.push((name.to_owned(), value.as_bytes().to_vec()));
    }
    let has = |headers: &[(String, Vec<u8>)], name: &str| {
        headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if let Some(org) = p.org_id
        && !has(&headers, evkit_schema::IDENTITY_HEADER)
    {
        headers.push((
            evkit_schema::IDENTITY_HEADER.to_owned(),
            evkit_schema::encode_identity(org, "User").into_bytes(),
        ));
    }
    if !has(&headers, evkit_schema::REQUEST_ID_HEADER) {
        headers.push((
            evkit_schema::REQUEST_ID_HEADER.to_owned(),
            uuid::Uuid::new_v4().to_string().into_bytes(),
        ));
    }
    let (key, payload) = from_catalog(catalog, p, &mut headers)?;
    if p.validate {
        let contract = catalog
            .contract(p.topic)
            .context("use --no-validate to send to a topic the catalog does not describe")?;
        let message = Message::from_parts(key.as_deref(), &headers, &payload);
        if let Err(e) = contract.check(&message) {
            match p.format {
                Format::Json => outln!(
                    "{}",
                    json!({
                        "topic": p.topic,
                        "sent": false,
                        "violations": e.violations().iter().map(|v| json!({
                            "part": v.part.to_string(),
                            "instance_path": v.instance_path,
                            "schema_path": v.schema_path,
                            "rule": v.rule,
                            "message": v.message,
                        })).collect::<Vec<_>>(),
                    })
                ),
                Format::Human => eprintln!("not sent: {e}"),
            }
            return Ok(ExitCode::from(1));
        }
    }
    let bootstrap = p.bootstrap.to_owned();
    let wanted = vec![p.topic.to_owned()];
    let missing = tokio::task::spawn_blocking(move || probe(&bootstrap, &wanted)).await??;
    if let Some(topic) = missing.first() {
        return Err(missing_topic(topic, p.bootstrap));
    }
    let producer: FutureProducer = client_config(p.bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // The Java clients' partitioner, so a key lands where other producers put it.
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", "15000")
        .create()?;
    let mut owned = OwnedHeaders::new();
    for (name, value) in &headers {
        owned = owned.insert(Header {
            key: name,
            value: Some(value),
        });
    }
    let mut record = FutureRecord::to(p.topic).payload(&payload).headers(owned);
    if let Some(k) = &key {
        record = record.key(k);
    }
    let delivery = producer
        .send(record, Duration::from_secs(15))
        .await
        .map_err(|(e, _)| e)
        .with_context(|| format!("producing to {}", p.topic))?;
    match p.format {
        Format::Json => outln!(
            "{}",
            json!({
                "topic": p.topic,
                "sent": true,
                "partition": delivery.partition,
                "offset": delivery.offset,
                "key": key.as_deref().map_or(Value::Null, crate::examples::bytes_json),
            })
        ),
        Format::Human => outln!(
            "produced to {} partition {} offset {}",
            p.topic,
            delivery.partition,
            delivery.offset
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// What `evkit consume` and `evkit tail` read.
pub struct Consume<'a> {
    pub bootstrap: &'a str,
    pub topics: Vec<String>,
    pub from_beginning: bool,
    pub count: Option<usize>,
    pub idle_timeout: Option<Duration>,
    pub group: Option<&'a str>,
    pub format: Format,
}

/// Reads messages and prints each with its validation verdict.
pub async fn consume(catalog: &Catalog, c: &Consume<'_>) -> Result<ExitCode> {
    let bootstrap = c.bootstrap.to_owned();
    let wanted = c.topics.clone();
    let missing = tokio::task::spawn_blocking(move || probe(&bootstrap, &wanted)).await??;
    if missing.len() == c.topics.len()
        && let Some(topic) = missing.first()
    {
        return Err(missing_topic(topic, c.bootstrap));
    }
    // Reading several (`tail`): the ones that exist, and a word about the others.
    for topic in &missing {
        eprintln!(
            "evkit: {}; not reading it",
            missing_topic(topic, c.bootstrap)
        );
    }
    let group = c.group.map_or_else(
        || format!("evkit-cli-{:016x}", rand::random::<u64>()),
        str::to_owned,
    );
    let consumer: StreamConsumer = client_config(c.bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set(
            "auto.offset.reset",
            if c.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        )
        // A short-lived reader: the brokers' minimum session, so a second run with the same
        // `--group` is assigned at once (librdkafka's mock cluster waits out a departed member's
        // session, 45 s by default, even after it left).
        .set("session.timeout.ms", "6000")
        .create()?;
    let topics: Vec<&str> = c
        .topics
        .iter()
        .filter(|t| !missing.contains(t))
        .map(String::as_str)
        .collect();
    consumer.subscribe(&topics)?;
    let mut seen = 0;
    let mut last = Instant::now();
    loop {
        if c.count.is_some_and(|n| seen >= n) {
            break;
        }
        let wait = c.idle_timeout.map_or(Duration::from_secs(3600), |t| {
            t.saturating_sub(last.elapsed())
        });
        if wait.is_zero() {
            break;
        }
        match tokio::time::timeout(wait, consumer.recv()).await {
            Err(_) => break,
            Ok(Err(e)) => eprintln!("evkit: consumer: {e}"),
            Ok(Ok(m)) => {
                seen += 1;
                last = Instant::now();
                print_message(catalog, &m, c.format);
            }
        }
    }
    if c.group.is_some() && seen > 0 {
        // A named group remembers what it read: the next run with it starts after this one.
        // On a thread of its own with a deadline, so a broker that went away cannot hold the
        // command (what was read then comes again on the next run).
        let consumer = std::sync::Arc::new(consumer);
        let committer = std::sync::Arc::clone(&consumer);
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(committer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync));
        });
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(result)) => result.context("committing what was read")?,
            _ => bail!(
                "the broker did not confirm the commit of group {} within 10 s: the {seen} \
                 message(s) read come again on the next run",
                c.group.unwrap_or_default()
            ),
        }
    }
    if c.format == Format::Human {
        eprintln!("{seen} message(s)");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_message(catalog: &Catalog, m: &BorrowedMessage<'_>, format: Format) {
    let headers: Vec<(&str, Option<&[u8]>)> = m
        .headers()
        .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
        .unwrap_or_default();
    let message = Message {
        key: m.key(),
        headers: headers.iter().copied().collect(),
        payload: m.payload(),
    };
    let verdict: Result<(), Vec<Violation>> = match catalog.contract(m.topic()) {
        Ok(contract) => contract
            .check(&message)
            .map(|_| ())
            .map_err(|e| e.violations().to_vec()),
        Err(_) => Err(Vec::new()),
    };
    let known = catalog.topic(m.topic()).is_ok();
    let wire = catalog
        .topic(m.topic())
        .map_or(evkit_schema::WireFormat::Json, |t| t.spec.wire);
    let shown_headers: Vec<(String, Value)> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), show_header(name, *value)))
        .collect();
    let (payload, schema_id) = match m.payload() {
        Some(bytes) => crate::examples::payload_json(wire, bytes),
        None => (Value::Null, None),
    };
    let timestamp = match m.timestamp() {
        rdkafka::Timestamp::NotAvailable => None,
        t => t.to_millis().map(|ms| {
            let kind = match t {
                rdkafka::Timestamp::LogAppendTime(_) => "log-append",
                _ => "create",
            };
            let time = chrono::DateTime::from_timestamp_millis(ms)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            json!({"ms": ms, "type": kind, "time": time})
        }),
    };
    let key = m.key().map_or(Value::Null, crate::examples::bytes_json);
    match format {
        Format::Json => {
            let line = json!({
                "topic": m.topic(),
                "partition": m.partition(),
                "offset": m.offset(),
                "timestamp": timestamp,
                "key": key,
                "headers": shown_headers.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
                "payload": payload,
                "schema_id": schema_id,
                "in_catalog": known,
                "valid": known && verdict.is_ok(),
                "violations": verdict.as_ref().err().map(|v| v.iter().map(|v| json!({
                    "part": v.part.to_string(),
                    "instance_path": v.instance_path,
                    "schema_path": v.schema_path,
                    "rule": v.rule,
                    "message": v.message,
                })).collect::<Vec<_>>()).unwrap_or_default(),
            });
            outln!("{line}");
        }
        Format::Human => {
            outln!(
                "--- {} [{}] @{}{}",
                m.topic(),
                m.partition(),
                m.offset(),
                timestamp
                    .as_ref()
                    .map(|t| format!(" {}", t["time"].as_str().unwrap_or_default()))
                    .unwrap_or_default()
            );
            outln!("key: {}", plain(&key));
            for (n, v) in &shown_headers {
                outln!("header {n}: {}", plain(v));
            }
            if let Some(id) = schema_id {
                outln!("schema id: {id} (Confluent wire format)");
            }
            outln!("payload: {}", plain(&payload));
            match (&verdict, known) {
                (_, false) => outln!("verdict: topic not in the catalog (not validated)"),
                (Ok(()), true) => outln!("verdict: valid"),
                (Err(v), true) => {
                    outln!("verdict: invalid ({} violation(s))", v.len());
                    for v in v {
                        outln!("  - {v}");
                    }
                }
            }
        }
    }
}

/// Header values for display: the identity decoded and masked to tenant and type.
fn show_header(name: &str, value: Option<&[u8]>) -> Value {
    let Some(value) = value else {
        return Value::Null;
    };
    if name.eq_ignore_ascii_case(evkit_schema::IDENTITY_HEADER) {
        // A secret: its tenant and type only.
        return match Identity::from_header(value) {
            Some(id) => {
                json!({"org_id": id.org_id(), "type": id.principal_type(), "raw": "<masked>"})
            }
            None => json!("<masked: not a decodable identity>"),
        };
    }
    show_bytes(Some(value))
}

/// The bytes exactly as they were on the wire: the text when UTF-8 (never re-read as JSON, so
/// `1e3`, big numbers, duplicate keys and key order survive), base64 otherwise.
fn show_bytes(bytes: Option<&[u8]>) -> Value {
    let Some(bytes) = bytes else {
        return Value::Null;
    };
    crate::examples::bytes_json(bytes)
}

/// Text for the human format: the string itself, or the JSON of anything else.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
