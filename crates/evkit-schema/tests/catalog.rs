//! Catalog loading: every problem is reported at once, with file and location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use evkit_schema::{Catalog, Error};

const HEADERS: &str = include_str!("../../../schemas/headers.json");

fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::write(dir.join(name), contents).unwrap();
}

fn schema(title: &str) -> String {
    format!(
        r#"{{"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "urn:{title}", "title": "{title}",
            "type": "object", "required": ["org_id"], "properties": {{"org_id": {{"type": "string"}}}}}}"#
    )
}

#[test]
fn the_sample_catalog_loads() {
    let c = Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas")).unwrap();
    assert!(c.topics().len() >= 3);
    assert_eq!(
        c.topic("platform.evkit.todo-created")
            .unwrap()
            .spec
            .dead_letter_topic(),
        "platform.evkit.todo-created.dlq"
    );
    let err = c.topic("nope").unwrap_err();
    assert!(matches!(err, Error::UnknownTopic { .. }));
    assert!(err.to_string().contains("platform.evkit.todo-created"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "headers.json", HEADERS);
    write(
        d,
        "topics.yaml",
        r"
topics:
  - name: a.ok
  - name: a.ok
  - name: b.missing-file
  - name: c.bad-json
  - name: d.does-not-compile
  - name: e.foreign-ref
  - name: 'f bad name'
    schema: a.ok.event.json
  - name: g.bad-pointer
    schema: a.ok.event.json
    key: { pointer: org_id }
  - name: h.unknown-pointer
    schema: a.ok.event.json
    key: { pointer: /nope }
  - name: i.dataschema
    owner: foreign
    schema: a.ok.event.json
    envelope:
      mode: cloudevents-structured
      dataschemas: { 'urn:x': '#/$defs/Missing' }
",
    );
    write(d, "a.ok.event.json", &schema("A"));
    write(
        d,
        "c.bad-json.event.json",
        "{\n  \"type\": \"object\",\n  oops\n}",
    );
    write(
        d,
        "d.does-not-compile.event.json",
        r#"{"type": "object", "minLength": "seven"}"#,
    );
    write(
        d,
        "e.foreign-ref.event.json",
        r#"{"$ref": "other.event.json#/$defs/X"}"#,
    );

    let err = Catalog::load(d).unwrap_err();
    let problems = err.problems();
    let text = err.to_string();
    let expect = [
        ("topics.yaml", "/topics/1/name", "duplicate topic `a.ok`"),
        ("b.missing-file.event.json", "", "cannot read"),
        ("c.bad-json.event.json", "line 3 column", "invalid JSON"),
        ("d.does-not-compile.event.json", "", "does not compile"),
        (
            "e.foreign-ref.event.json",
            "/$ref",
            "no topic of this catalog",
        ),
        (
            "topics.yaml",
            "/topics/6/name",
            "not a legal Kafka topic name",
        ),
        ("topics.yaml", "/topics/7/key/pointer", "not a JSON pointer"),
        ("topics.yaml", "/topics/8/key/pointer", "names no property"),
        (
            "topics.yaml",
            "/topics/9/envelope/dataschemas/urn:x",
            "points nowhere",
        ),
    ];
    for (file, location, message) in expect {
        assert!(
            problems.iter().any(|p| p.file.ends_with(file)
                && p.location.starts_with(location)
                && p.message.contains(message)),
            "missing problem {file} {location} {message} in:\n{text}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{text}");
}

#[test]
fn missing_index_and_bad_yaml_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let err = Catalog::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("topics.yaml"), "{err}");

    write(
        dir.path(),
        "topics.yaml",
        "topics:\n  - name: x\n    colour: blue\n",
    );
    let err = Catalog::load(dir.path()).unwrap_err();
    let p = &err.problems()[0];
    assert!(p.location.starts_with("line 3"), "{p}");
    assert!(p.message.contains("colour"), "{p}");
}

#[test]
fn topics_may_narrow_required_headers() {
    let c = Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas")).unwrap();
    let foreign = c.contract("platform.notifications.ingress").unwrap();
    assert_eq!(foreign.required_headers(), ["x-rh-insights-request-id"]);
    let owned = c.contract("platform.evkit.todo-created").unwrap();
    assert_eq!(
        owned.required_headers(),
        ["x-rh-identity", "x-rh-insights-request-id"]
    );
}

#[test]
fn header_schemas_with_root_rules_are_validated_as_a_whole() {
    // `dependentRequired` at the root needs every header at once: the general path.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut headers: serde_json::Value = serde_json::from_str(HEADERS).unwrap();
    headers["properties"]["x-trace"] = serde_json::json!({"type": "string", "maxLength": 4});
    headers["dependentRequired"] = serde_json::json!({"x-trace": ["x-rh-insights-request-id"]});
    headers["required"] = serde_json::json!([]);
    write(d, "headers.json", &headers.to_string());
    write(d, "topics.yaml", "topics:\n  - name: a.b\n");
    write(d, "a.b.event.json", &schema("A"));
    let c = Catalog::load(d).unwrap();
    let contract = c.contract("a.b").unwrap();
    let payload = br#"{"org_id": "1"}"#;
    let ok = evkit_schema::Message::new(payload)
        .header("x-trace", b"abc")
        .header("x-rh-insights-request-id", b"r");
    assert!(contract.check(&ok).is_ok());
    let missing = evkit_schema::Message::new(payload).header("X-Trace", b"abc");
    let err = contract.check(&missing).unwrap_err();
    assert!(
        err.violations()
            .iter()
            .any(|v| v.schema_path.contains("dependentRequired")),
        "{err}"
    );
    let long = evkit_schema::Message::new(payload)
        .header("x-trace", b"abcdef")
        .header("x-rh-insights-request-id", b"r");
    let err = contract.check(&long).unwrap_err();
    assert!(
        err.violations().iter().any(
            |v| v.rule == "maxLength" && v.part == evkit_schema::Part::Header("x-trace".into())
        ),
        "{err}"
    );
}
