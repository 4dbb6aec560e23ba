//! The validators that jsonschema's `validator` macro generated at build time
//! (`evkit_events::generated::PRECOMPILED`) cover every schema the sample catalog compiles, and
//! answer exactly as the runtime validators do: on schema-derived valid values, on values that
//! break one rule, on valid values with one leaf replaced by a random value (formats, patterns,
//! bounds) and on arbitrary JSON. A contract loaded with them checks every generated message as
//! one loaded without them does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evkit_schema::{Catalog, Precompiled};
use evkit_testkit::generate::values;
use evkit_testkit::messages::{invalid_message, invalid_payload, valid_message};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::Value;

mod common;

use common::{CASES, runner};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas");

#[test]
fn the_generated_crate_covers_every_schema_the_catalog_compiles() {
    let fast = Catalog::load_with(DIR, evkit_events::generated::PRECOMPILED).unwrap();
    let runtime = Catalog::load(DIR).unwrap();
    assert!(fast.schemas().len() >= 10, "{}", fast.schemas().len());
    let missing: Vec<String> = fast
        .schemas()
        .iter()
        .filter(|s| !s.precompiled)
        .map(|s| s.schema.to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "no build-time validator for {missing:?}"
    );
    assert!(runtime.schemas().iter().all(|s| !s.precompiled));
    let schemas = |c: &Catalog| {
        c.schemas()
            .iter()
            .map(|s| s.schema.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(schemas(&fast), schemas(&runtime));
}

#[test]
fn a_changed_schema_falls_back_to_the_runtime_validator() {
    // Copy the catalog and loosen one schema: its generated validator no longer matches, so it
    // must not be used (it would reject what the changed schema accepts).
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(DIR).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let file = dir.path().join("platform.evkit.todo-created.event.json");
    let mut schema: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    schema["properties"]["title"]["maxLength"] = Value::from(10_000);
    std::fs::write(&file, schema.to_string()).unwrap();

    let catalog = Catalog::load_with(dir.path(), evkit_events::generated::PRECOMPILED).unwrap();
    let changed = catalog
        .schemas()
        .iter()
        .find(|s| s.schema == schema)
        .expect("the changed schema was compiled");
    assert!(!changed.precompiled);
    let event = serde_json::json!({
        "id": 1, "org_id": "12345", "title": "x".repeat(1000), "created_at": "2026-11-01T09:30:00Z"
    });
    let contract = catalog.contract("platform.evkit.todo-created").unwrap();
    contract.check_event(&event).unwrap();
    // The other schemas still found theirs.
    assert!(catalog.schemas().iter().filter(|s| s.precompiled).count() >= 9);
}

/// Arbitrary JSON, with strings near the shapes the schemas constrain (ids, hostnames, dates).
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        strings().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(keys(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn strings() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._-]{0,70}",
        "[a-z0-9.-]{0,30}",
        "[0-9a-f-]{30,40}",
        "20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})?",
        "\\PC{0,20}",
        class_strings(),
    ]
}

/// Short text around the character classes of the catalog's patterns, with non-ASCII letters
/// (which the build-time validators' sequence patterns leave to the regex engine).
fn class_strings() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._\u{e9}\u{3b1} -]{0,12}"
}

fn keys() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "org_id",
            "title",
            "created_at",
            "domain_name",
            "servers",
            "fqdn",
            "data",
            "identity",
            "type",
            "specversion",
            "dataschema",
            "events",
            "account_number",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
    ]
}

/// Every leaf of `v` as a JSON pointer.
fn leaves(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                leaves(
                    x,
                    &format!("{at}/{}", evkit_schema::pointer::escape(k)),
                    out,
                );
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, &format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at.to_owned()),
    }
}

/// `valid` with the leaf `pick` selects replaced by `with`.
fn mutate(mut valid: Value, pick: prop::sample::Index, with: Value) -> Value {
    let mut all = Vec::new();
    leaves(&valid, "", &mut all);
    let at = pick.get(&all).clone();
    match valid.pointer_mut(&at) {
        Some(slot) => *slot = with,
        None => valid = with,
    }
    valid
}

fn agree(p: &Precompiled, runtime: &jsonschema::Validator, v: &Value) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        (p.is_valid)(v),
        runtime.is_valid(v),
        "build-time and runtime validators disagree on {} for schema {}",
        v,
        p.schema
    );
    Ok(())
}

#[test]
fn build_time_and_runtime_validators_agree() {
    let mut with_values = 0u32;
    let mut with_invalid = 0u32;
    let mut valid_seen = 0u32;
    for p in evkit_events::generated::PRECOMPILED {
        let schema: Value = serde_json::from_str(p.schema).unwrap();
        let runtime = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let run = |strategy: BoxedStrategy<Value>, what: &str| {
            let n = std::cell::Cell::new(0u32);
            runner(&format!("{what}{}", p.schema))
                .run(&strategy, |v| {
                    agree(p, &runtime, &v)?;
                    n.set(n.get() + u32::from(runtime.is_valid(&v)));
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            n.get()
        };
        run(json().boxed(), "arbitrary JSON");
        // Strings alone: the root of a header's schema, and what patterns see.
        run(class_strings().prop_map(Value::from).boxed(), "strings");
        // Schema-derived values exist for the schemas the generators support (the header
        // wrappers with `not` and `$ref` into properties are covered by arbitrary JSON).
        if let Ok(valid) = values(&schema) {
            valid_seen += run(valid.clone(), "valid values");
            let mutated = (valid.clone(), any::<prop::sample::Index>(), json())
                .prop_map(|(v, i, with)| mutate(v, i, with))
                .boxed();
            run(mutated, "valid values with one leaf replaced");
            let near_classes = (valid, any::<prop::sample::Index>(), class_strings())
                .prop_map(|(v, i, with)| mutate(v, i, Value::from(with)))
                .boxed();
            run(near_classes, "valid values with one leaf replaced by text");
            with_values += 1;
        }
        if let Ok(invalid) = invalid_payload(&schema) {
            run(invalid.prop_map(|(_, v)| v).boxed(), "invalid values");
            with_invalid += 1;
        }
    }
    // Most schemas have generators: the comparison saw many valid values, not only rejections.
    eprintln!(
        "{} schemas; generated values for {with_values}, rule-breaking values for {with_invalid}; {valid_seen} valid values seen",
        evkit_events::generated::PRECOMPILED.len()
    );
    assert!(with_values >= 8, "{with_values}");
    assert!(with_invalid >= 6, "{with_invalid}");
    assert!(valid_seen >= 8 * CASES, "{valid_seen} valid values");
}

#[test]
fn contracts_with_and_without_build_time_validators_check_alike() {
    let fast = Catalog::load_with(DIR, evkit_events::generated::PRECOMPILED).unwrap();
    let runtime = Catalog::load(DIR).unwrap();
    for topic in runtime.topics() {
        let with = fast.contract(topic.name()).unwrap();
        let without = topic.contract();
        let strategies = [
            ("valid", valid_message(topic).unwrap()),
            ("invalid", invalid_message(topic).unwrap()),
        ];
        for (what, strategy) in strategies {
            let mut runner = runner(&format!("{what}{}", topic.name()));
            for _ in 0..CASES {
                let m = strategy.new_tree(&mut runner).unwrap().current();
                let a = with.check(&m.message()).map(|c| c.payload);
                let b = without.check(&m.message()).map(|c| c.payload);
                assert_eq!(
                    format!("{a:?}"),
                    format!("{b:?}"),
                    "{} {what} message {m:?}",
                    topic.name()
                );
                assert_eq!(a.is_ok(), what == "valid", "{m:?}");
            }
        }
    }
}
