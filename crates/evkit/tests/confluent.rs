//! `wire: confluent` topics with Confluent's own Python client (`confluent-kafka`) on the other
//! side, both ways, through a real broker and a scripted schema registry (wiremock, answering
//! with the Confluent API's documented bodies):
//! - `JSONSerializer` produces; the evkit consumer validates and handles every message, reads
//!   the framed schema id, asks the registry about an id registered after start-up, and
//!   dead-letters a foreign id, an unframed JSON payload and a truncated frame, each with its
//!   own rule.
//! - evkit's producer frames with the id the registry gave the catalog's schema;
//!   `JSONDeserializer` reads the events back.
//!
//! `confluent-kafka` is required when `EVKIT_REQUIRE_THIRD_PARTY=1` (CI installs it); elsewhere
//! a missing one is reported as skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::too_many_lines, clippy::type_complexity)]

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use evkit::config::RegistryConfig;
use evkit::registry::Registry;
use evkit::{Consumer, Context, Incoming, Metrics, Outcome, Producer, Router, handler_fn};
use evkit_schema::Catalog;
use evkit_testkit::clients::send;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/confluent_interop.py");
const MEDIA: &str = "application/vnd.schemaregistry.v1+json";

fn confluent_kafka_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import confluent_kafka.schema_registry.json_schema"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("EVKIT_REQUIRE_THIRD_PARTY").is_err(),
            "python3 with confluent-kafka[json,schemaregistry] is required here \
             (EVKIT_REQUIRE_THIRD_PARTY is set) but not installed"
        );
        println!("skipped: python3 -m pip install 'confluent-kafka[json,schemaregistry]'");
    }
    ok
}

/// The sample catalog with todo-created on the Confluent wire format.
fn confluent_catalog() -> (tempfile::TempDir, Arc<Catalog>) {
    let dir = tempfile::tempdir().unwrap();
    evkit_testkit::catalogs::with_confluent_wire(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas")),
        dir.path(),
        &[TODO],
    )
    .unwrap();
    let catalog = Arc::new(Catalog::load(dir.path()).unwrap());
    (dir, catalog)
}

fn answer(body: &Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_string(), MEDIA)
}

/// A registry where `subject` has version 1 (id 42, the catalog's schema) and version 2 (id
/// 43, registered "later": not listed when evkit starts, found when asked by id); id 99 belongs
/// to another subject.
async fn registry(subject: &str, schema: &str) -> MockServer {
    let server = MockServer::start().await;
    let v1 =
        json!({"subject": subject, "version": 1, "id": 42, "schemaType": "JSON", "schema": schema});
    let mounts = [
        (
            "POST",
            format!("/subjects/{subject}/versions"),
            json!({"id": 42}),
        ),
        ("POST", format!("/subjects/{subject}"), v1.clone()),
        ("GET", format!("/subjects/{subject}/versions"), json!([1])),
        ("GET", format!("/subjects/{subject}/versions/1"), v1),
        (
            "GET",
            "/schemas/ids/42".to_owned(),
            json!({"schemaType": "JSON", "schema": schema}),
        ),
        (
            "GET",
            "/schemas/ids/43/versions".to_owned(),
            json!([{"subject": subject, "version": 2}]),
        ),
        (
            "GET",
            "/schemas/ids/99/versions".to_owned(),
            json!([{"subject": "someone-else-value", "version": 1}]),
        ),
    ];
    for (m, p, body) in mounts {
        Mock::given(method(m))
            .and(path(p))
            .respond_with(answer(&body))
            .mount(&server)
            .await;
    }
    server
}

fn python(args: &[&str]) -> Vec<Value> {
    let out = Command::new("timeout")
        .arg("120")
        .arg("python3")
        .arg(SCRIPT)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "confluent_interop.py {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_serializer_to_the_evkit_consumer() {
    if !confluent_kafka_available() {
        return;
    }
    let s = setup("confluent-in", 1).await;
    let (dir, catalog) = confluent_catalog();
    let topic = catalog.topic(TODO).unwrap();
    let subject = format!("{}-value", s.topic);
    let server = registry(&subject, &topic.schema.to_string()).await;
    let mut config = s.config.clone();
    config.registry = Some(RegistryConfig {
        url: server.uri(),
        ..RegistryConfig::default()
    });
    let client = Registry::new(config.registry.as_ref().unwrap()).unwrap();
    let attached = evkit::registry::attach(&catalog, &client, &config)
        .await
        .unwrap();
    assert_eq!(attached.len(), 1);
    assert_eq!(
        (
            attached[0].subject.as_str(),
            attached[0].registered.as_slice(),
            attached[0].schema_id
        ),
        (subject.as_str(), &[42][..], Some(42))
    );

    // Confluent's serializer writes five events.
    let schema_file = dir.path().join(topic.spec.schema_file());
    let identity = evkit_schema::encode_identity("12345", "User");
    let produced = python(&[
        "produce",
        s.broker.bootstrap_servers(),
        &server.uri(),
        &s.topic,
        schema_file.to_str().unwrap(),
        "5",
        &identity,
    ]);
    assert_eq!(produced, vec![json!({"produced": 5})]);

    // Then, by hand: a valid event framed with id 43 (registered after start-up), and three
    // broken framings.
    let p = s.broker.client_config().create().unwrap();
    let h = headers("12345");
    let event = todo(6, "12345");
    let framed = |id: u32| evkit_schema::confluent::frame(id, &event);
    let cases: [(&str, Vec<u8>); 4] = [
        ("registered later", framed(43)),
        ("foreign id", framed(99)),
        ("unframed JSON", event.clone()),
        ("truncated", vec![0, 0, 0]),
    ];
    for (_, payload) in &cases {
        send(&p, &s.topic, Some(b"12345"), &header_refs(&h), payload)
            .await
            .unwrap();
    }

    let seen: Arc<Mutex<Vec<(u64, Option<u32>)>>> = Arc::default();
    let router = Router::new(Arc::clone(&catalog))
        .route(TODO, {
            let seen = Arc::clone(&seen);
            handler_fn(move |msg: Incoming| {
                let seen = Arc::clone(&seen);
                async move {
                    let id = msg.event().and_then(|e| e["id"].as_u64()).unwrap_or(0);
                    let schema_id = msg.checked().and_then(|c| c.schema_id);
                    seen.lock().unwrap().push((id, schema_id));
                    Outcome::Ack
                }
            })
        })
        .build()
        .unwrap();
    let consumer = Consumer::new(&config, router, Metrics::new()).unwrap();
    let stop = consumer.shutdown_token();
    let run = tokio::spawn(consumer.run(std::future::pending()));
    let dead = read_all(&s.broker, &s.dlq, 3, Duration::from_secs(60)).await;
    assert!(
        eventually(Duration::from_secs(30), || seen.lock().unwrap().len() >= 6).await,
        "handled {:?}",
        seen.lock().unwrap()
    );
    stop.cancel();
    run.await.unwrap().unwrap();

    let mut handled = seen.lock().unwrap().clone();
    handled.sort_unstable();
    assert_eq!(
        handled,
        vec![
            (1, Some(42)),
            (2, Some(42)),
            (3, Some(42)),
            (4, Some(42)),
            (5, Some(42)),
            (6, Some(43)),
        ]
    );
    // The id learnt at run time is remembered.
    assert_eq!(
        catalog
            .contract(TODO)
            .unwrap()
            .registered_schema_ids()
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![42, 43]
    );
    // Each broken framing is dead-lettered with its own rule named.
    let mut rules: Vec<String> = dead
        .iter()
        .map(|d| {
            let error = d
                .headers
                .iter()
                .find(|(n, _)| n == evkit::dead_letter::ERROR)
                .and_then(|(_, v)| v.clone())
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default();
            ["[schema-id", "[wire-magic", "[wire-length"]
                .into_iter()
                .find(|r| error.contains(r))
                .unwrap_or_else(|| panic!("no framing rule in {error}"))
                .to_owned()
        })
        .collect();
    rules.sort();
    assert_eq!(rules, ["[schema-id", "[wire-length", "[wire-magic"]);
    // The foreign id was looked up once, and is not accepted.
    let asked: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    assert_eq!(
        asked
            .iter()
            .filter(|r| *r == "GET /schemas/ids/99/versions")
            .count(),
        1,
        "{asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_evkit_producer_to_confluents_deserializer() {
    if !confluent_kafka_available() {
        return;
    }
    let s = setup("confluent-out", 1).await;
    let (_dir, catalog) = confluent_catalog();
    let topic = catalog.topic(TODO).unwrap();
    let server = registry(&format!("{}-value", s.topic), &topic.schema.to_string()).await;
    let mut config = s.config.clone();
    config.registry = Some(RegistryConfig {
        url: server.uri(),
        ..RegistryConfig::default()
    });

    // Without the registry's id the producer refuses, naming the topic and the fix.
    let producer = Producer::new(&config, Arc::clone(&catalog), Metrics::new()).unwrap();
    let event = json!({"id": 1, "org_id": "12345", "title": "from evkit 1", "created_at": "2026-11-01T09:30:00Z"});
    let err = producer
        .produce(TODO, &event, &Context::new().for_org("12345"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(TODO) && err.contains("schema registry"),
        "{err}"
    );

    let client = Registry::new(config.registry.as_ref().unwrap()).unwrap();
    evkit::registry::attach(&catalog, &client, &config)
        .await
        .unwrap();
    for i in 1..=3 {
        let event = json!({"id": i, "org_id": "12345", "title": format!("from evkit {i}"), "created_at": "2026-11-01T09:30:00Z"});
        producer
            .produce(TODO, &event, &Context::new().for_org("12345"))
            .await
            .unwrap();
    }
    let read = python(&[
        "consume",
        s.broker.bootstrap_servers(),
        &server.uri(),
        &s.topic,
        "3",
    ]);
    assert_eq!(read.len(), 3, "{read:?}");
    for (i, line) in (1..=3).zip(&read) {
        assert_eq!(line["schema_id"], 42, "{line}");
        assert_eq!(line["key"], "12345", "{line}");
        assert_eq!(line["event"]["id"], i, "{line}");
        assert_eq!(line["event"]["title"], format!("from evkit {i}"), "{line}");
    }
}
