//! `evkit asyncapi`: the export validates against the official AsyncAPI 3.0 JSON Schema (and,
//! where installed, the AsyncAPI CLI's `asyncapi validate`); importing an export gives back an
//! equal catalog; a document that is not AsyncAPI 3.0 gets a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use evkit_schema::{Catalog, Owner};
use evkit_testkit::asyncapi::{export, import};
use evkit_testkit::contracts::Contracts;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

const OFFICIAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/asyncapi/3.0.0.json"
);

fn official() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(OFFICIAL).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn sample_export() -> (Catalog, Value) {
    let catalog = Catalog::load(repo().join("schemas")).unwrap();
    let contracts = Contracts::load(repo().join("contracts"), &catalog).unwrap();
    let doc = export(&catalog, Some(&contracts), "evkit sample", "1.2.3").unwrap();
    (catalog, doc)
}

fn errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn the_export_is_valid_asyncapi_3_0() {
    let (catalog, doc) = sample_export();
    let found = errors(&official(), &doc);
    assert!(found.is_empty(), "{found:#?}");
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["info"]["version"], "1.2.3");
    // A channel per topic, with its Kafka binding.
    let channels = doc["channels"].as_object().unwrap();
    assert_eq!(channels.len(), catalog.topics().len());
    for topic in catalog.topics() {
        let c = &channels[topic.name()];
        assert_eq!(c["address"], topic.name());
        assert_eq!(c["bindings"]["kafka"]["partitions"], topic.spec.partitions);
        let m = &doc["components"]["messages"][topic.name()];
        assert!(m["payload"]["schema"].is_object(), "{m}");
        assert!(m["headers"]["schema"]["required"].is_array(), "{m}");
    }
    // Send for owned topics only; receive per consuming service, with its group.
    let ops = doc["operations"].as_object().unwrap();
    for topic in catalog.topics() {
        let send = ops.get(&format!("{}.send", topic.name()));
        assert_eq!(
            send.is_some(),
            topic.spec.owner == Owner::Owned,
            "{}",
            topic.name()
        );
    }
    let receive = &ops["platform.evkit.domain-registered.receive.host-enrollment"];
    assert_eq!(receive["action"], "receive");
    assert_eq!(
        receive["bindings"]["kafka"]["groupId"]["enum"],
        json!(["host-enrollment"])
    );
    // CloudEvents: structured topics are application/cloudevents+json with the event as
    // `data`; binary ones carry ce_* headers.
    let m = &doc["components"]["messages"];
    assert_eq!(
        m["platform.notifications.ingress"]["contentType"],
        "application/cloudevents+json"
    );
    assert!(
        m["platform.notifications.ingress"]["payload"]["schema"]["properties"]["data"].is_object()
    );
    assert!(
        m["platform.evkit.domain-registered"]["headers"]["schema"]["properties"]["ce_type"]
            .is_object()
    );
    // The key schema of a topic that has one is in the Kafka message binding.
    assert_eq!(
        m["platform.notifications.ingress"]["bindings"]["kafka"]["key"]["maxLength"],
        128
    );
    // No reference is left pointing at the document root's `$defs`: AsyncAPI tools resolve
    // references against the document.
    let text = doc.to_string();
    assert!(
        !text.contains(r##""$ref":"#/$defs"##),
        "a schema-relative $ref left"
    );
}

/// A way to break an export, and what it breaks.
type Break = (&'static str, fn(&mut Value));

/// The official schema is an oracle that can fail: broken exports are rejected.
#[test]
fn the_official_schema_rejects_a_broken_export() {
    let (_, doc) = sample_export();
    let v = official();
    let breaks: [Break; 4] = [
        ("2.x action", |d| {
            d["operations"]["platform.evkit.todo-created.send"]["action"] = json!("publish");
        }),
        ("no channel address type", |d| {
            d["channels"]["platform.evkit.todo-created"]["address"] = json!(42);
        }),
        ("kafka partitions 0", |d| {
            d["channels"]["platform.evkit.todo-created"]["bindings"]["kafka"]["partitions"] =
                json!(0);
        }),
        ("no info version", |d| {
            d["info"].as_object_mut().unwrap().remove("version");
        }),
    ];
    for (what, mutate) in breaks {
        let mut broken = doc.clone();
        mutate(&mut broken);
        assert!(!errors(&v, &broken).is_empty(), "{what}: accepted");
    }
}

fn assert_same_catalog(a: &Catalog, b: &Catalog) {
    assert_eq!(a.headers_schema(), b.headers_schema());
    assert_eq!(a.topics().len(), b.topics().len());
    for (x, y) in a.topics().iter().zip(b.topics()) {
        assert_eq!(x.spec, y.spec);
        assert_eq!(x.schema, y.schema, "{}", x.name());
        assert_eq!(
            x.contract().max_payload_bytes(),
            y.contract().max_payload_bytes()
        );
    }
}

fn round_trip(dir: &Path) {
    let catalog = Catalog::load(dir).unwrap();
    let doc = export(&catalog, None, "t", "1").unwrap();
    assert!(errors(&official(), &doc).is_empty());
    // Through YAML, as the command writes it.
    let doc: Value = serde_norway::from_str(&serde_norway::to_string(&doc).unwrap()).unwrap();
    let out = tempfile::tempdir().unwrap();
    import(&doc, out.path()).unwrap();
    let back = Catalog::load(out.path()).unwrap();
    assert_same_catalog(&catalog, &back);
    // And the imported catalog exports the same document.
    assert_eq!(export(&back, None, "t", "1").unwrap(), doc);
}

#[test]
fn import_of_the_export_gives_back_an_equal_catalog() {
    round_trip(&repo().join("schemas"));
    // With a topic on the Confluent wire format too.
    let dir = tempfile::tempdir().unwrap();
    evkit_testkit::catalogs::with_confluent_wire(
        &repo().join("schemas"),
        dir.path(),
        &["platform.evkit.todo-created"],
    )
    .unwrap();
    round_trip(dir.path());
}

#[test]
fn a_document_that_is_not_asyncapi_3_0_gets_a_clear_error() {
    let (_, doc) = sample_export();
    let out = tempfile::tempdir().unwrap();
    let cases: [(&str, Value); 6] = [
        ("no `asyncapi` version", json!({"openapi": "3.1.0"})),
        (
            "only 3.0 documents",
            json!({"asyncapi": "2.6.0", "channels": {}}),
        ),
        ("no `channels`", json!({"asyncapi": "3.0.0"})),
        ("no `address`", {
            let mut d = doc.clone();
            d["channels"]["platform.evkit.todo-created"]
                .as_object_mut()
                .unwrap()
                .remove("address");
            d
        }),
        ("exactly one payload schema", {
            let mut d = doc.clone();
            d["channels"]["platform.evkit.todo-created"]["messages"]["other"] =
                json!({"$ref": "#/components/messages/platform.evkit.todo-indexed"});
            d
        }),
        ("points at nothing", {
            let mut d = doc.clone();
            d["channels"]["platform.evkit.todo-created"]["messages"]["platform.evkit.todo-created"] =
                json!({"$ref": "#/components/messages/nope"});
            d
        }),
    ];
    for (expected, bad) in cases {
        let err = import(&bad, out.path()).unwrap_err().to_string();
        assert!(err.contains(expected), "{expected}: {err}");
    }
}

/// The AsyncAPI CLI (`@asyncapi/cli`) on the export, and on a broken one, where it is
/// installed: `EVKIT_ASYNCAPI_CLI` names it (CI installs it; required there with
/// `EVKIT_REQUIRE_THIRD_PARTY=1`).
#[test]
fn the_asyncapi_cli_validates_the_export() {
    let Some(cli) = std::env::var_os("EVKIT_ASYNCAPI_CLI") else {
        assert!(
            std::env::var("EVKIT_REQUIRE_THIRD_PARTY").is_err(),
            "EVKIT_ASYNCAPI_CLI is required here (EVKIT_REQUIRE_THIRD_PARTY is set)"
        );
        println!("skipped: EVKIT_ASYNCAPI_CLI is not set");
        return;
    };
    let (_, doc) = sample_export();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("api.yaml");
    std::fs::write(&good, serde_norway::to_string(&doc).unwrap()).unwrap();
    let run = |file: &Path| {
        Command::new(&cli)
            .arg("validate")
            .arg(file)
            .env("ASYNCAPI_METRICS", "false")
            .output()
            .unwrap()
    };
    let out = run(&good);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("is valid"), "{text}");
    let mut broken = doc;
    broken["channels"]["platform.evkit.todo-created"]["messages"]["platform.evkit.todo-created"] =
        json!({"$ref": "#/components/messages/nope"});
    let bad = dir.path().join("broken.yaml");
    std::fs::write(&bad, serde_norway::to_string(&broken).unwrap()).unwrap();
    let out = run(&bad);
    assert!(!out.status.success(), "the broken document passed");
}

/// The vendored official schema is the npm package's, where CI installed it.
#[test]
fn the_vendored_schema_is_the_published_one() {
    let Some(published) = std::env::var_os("EVKIT_ASYNCAPI_SPECS") else {
        println!("skipped: EVKIT_ASYNCAPI_SPECS is not set");
        return;
    };
    let a: Value = serde_json::from_str(&std::fs::read_to_string(OFFICIAL).unwrap()).unwrap();
    let b: Value = serde_json::from_str(&std::fs::read_to_string(published).unwrap()).unwrap();
    assert!(
        a == b,
        "tests/data/asyncapi/3.0.0.json differs from the npm package's"
    );
}
