//! The checked-in types match the schemas, and every example round-trips through its type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use evkit_schema::{Catalog, EnvelopeMode};

fn catalog() -> Catalog {
    Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))
        .expect("sample catalog loads")
}

#[test]
fn checked_in_code_matches_the_schemas() {
    let generated = evkit_codegen::generate(&catalog()).expect("codegen");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generated");
    if let Err(e) = evkit_codegen::check(&generated, &dir) {
        panic!("{e}\nrun `cargo run -p evkit-cli -- generate` and commit the result");
    }
}

#[test]
fn drift_is_detected() {
    let generated = evkit_codegen::generate(&catalog()).expect("codegen");
    let dir = tempfile::tempdir().unwrap();
    evkit_codegen::write(&generated, dir.path()).unwrap();
    evkit_codegen::check(&generated, dir.path()).expect("fresh output has no drift");
    let file = dir.path().join("platform_evkit_todo_created.rs");
    let mut code = std::fs::read_to_string(&file).unwrap();
    code.push_str("\n// hand edit\n");
    std::fs::write(&file, code).unwrap();
    std::fs::write(dir.path().join("old_topic.rs"), "").unwrap();
    let err = evkit_codegen::check(&generated, dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("platform_evkit_todo_created.rs"), "{err}");
    assert!(err.contains("old_topic.rs (stale)"), "{err}");
}

#[test]
fn every_topic_has_types() {
    let catalog = catalog();
    let names: Vec<_> = catalog
        .topics()
        .iter()
        .map(evkit_schema::Topic::name)
        .collect();
    assert_eq!(evkit_events::generated::TOPICS, names.as_slice());
}

#[test]
fn every_example_roundtrips_and_still_validates() {
    let catalog = catalog();
    let mut checked = 0;
    for topic in catalog.topics() {
        let examples = topic.schema["examples"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!examples.is_empty(), "{} has no examples", topic.name());
        for example in examples {
            topic
                .contract()
                .check_event(&example)
                .unwrap_or_else(|e| panic!("example is invalid: {e}"));
            let back = evkit_events::generated::roundtrip(topic.name(), example.clone())
                .expect("topic has types")
                .unwrap_or_else(|e| panic!("{}: example does not decode: {e}", topic.name()));
            topic.contract().check_event(&back).unwrap_or_else(|e| {
                panic!(
                    "{}: re-encoded example is invalid: {e}\n{back}",
                    topic.name()
                )
            });
            if topic.spec.envelope.mode == EnvelopeMode::Plain {
                // Plain topics have no dataschema dispatch: the key field survives.
                assert_eq!(back["org_id"], example["org_id"]);
            }
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} examples");
}

#[test]
fn typed_decode_rejects_what_the_schema_rejects() {
    use evkit_events::generated::platform_evkit_todo_created as todo;
    let float_id =
        r#"{"id": 1.5, "org_id": "1", "title": "t", "created_at": "2026-11-01T09:30:00Z"}"#;
    assert!(serde_json::from_str::<todo::Event>(float_id).is_err());
    let long_title = format!(
        r#"{{"id": 1, "org_id": "1", "title": "{}", "created_at": "2026-11-01T09:30:00Z"}}"#,
        "x".repeat(300)
    );
    assert!(serde_json::from_str::<todo::Event>(&long_title).is_err());
}
