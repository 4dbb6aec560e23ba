//! What `evkit generate` writes for schemas that once broke it (`tests/edge-catalog`: a root
//! type titled `Event`, definitions named `Option` and `Result`, properties named like Rust
//! keywords) is compiled here, checked to be current, and round-trips the schemas' examples.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Generated code is formatted by prettyplease, not rustfmt, so the drift check stays stable.
#[rustfmt::skip]
#[path = "edge/mod.rs"]
#[allow(dead_code)] // `TOPICS` and the validators' types are the crate's exports
mod edge;

use std::path::Path;

use evkit_schema::Catalog;

fn catalog() -> Catalog {
    Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/edge-catalog")).unwrap()
}

#[test]
fn the_edge_code_is_current() {
    let generated = evkit_codegen::generate(&catalog()).expect("codegen");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/edge");
    if let Err(e) = evkit_codegen::check(&generated, &dir) {
        panic!(
            "{e}\nrun `cargo run -p evkit-cli -- --catalog crates/evkit-events/tests/edge-catalog \
             generate --out crates/evkit-events/tests/edge`"
        );
    }
}

#[test]
fn the_edge_types_round_trip_their_examples() {
    // The root type titled `Event` is the module's `Event` itself.
    let e: edge::edge_event_title::Event =
        serde_json::from_value(serde_json::json!({"id": "e-1", "kind": "b"})).unwrap();
    assert_eq!(serde_json::to_value(&e).unwrap()["kind"], "b");
    for topic in catalog().topics() {
        for example in topic.schema["examples"].as_array().unwrap() {
            let back = edge::roundtrip(topic.name(), example.clone())
                .unwrap_or_else(|| panic!("{} has no generated type", topic.name()))
                .unwrap_or_else(|e| panic!("{}: {e}", topic.name()));
            assert_eq!(&back, example, "{}", topic.name());
        }
    }
}

#[test]
fn the_edge_validators_serve_every_schema() {
    let catalog = Catalog::load_with(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/edge-catalog"),
        edge::PRECOMPILED,
    )
    .unwrap();
    assert!(!catalog.schemas().is_empty());
    for s in catalog.schemas() {
        assert!(s.precompiled, "no build-time validator for {}", s.schema);
    }
    assert_eq!(edge::TOPICS.len(), catalog.topics().len());
}
