//! The gate against random schema changes, judged by sampling. A base schema that uses most
//! keywords a topic's payload uses is changed at random (one to three edits: bounds, types,
//! `required`, `additionalProperties`, `enum`, `const`, `pattern`, `format`, `multipleOf`,
//! `uniqueItems`, properties, `anyOf`/`oneOf` branches), and each change goes through
//! `gate::compare`. The oracle, per direction: values drawn from the producing side's schema
//! (the deployed one for backward, the change for forward), judged by a validator of the
//! consuming side compiled here, formats asserted. A change the oracle shows breaking that the
//! gate does not block is a break let through, the worst thing a gate can do: the test fails
//! on any. Every witness the gate reports is judged again the same way.
//!
//! `EVKIT_GATE_FUZZ_CASES` (default 150) sets how many changes; `EVKIT_GATE_FUZZ_OUT` writes
//! each change with the gate's verdicts as JSON lines, for `benches/gate/fuzz.py`, which judges
//! them again with hypothesis-jsonschema and python-jsonschema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;

use evkit_testkit::gate::{Direction, Mode, Options, compare};
use evkit_testkit::generate::Schema;
use proptest::strategy::{Strategy as _, ValueTree as _};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Map, Value, json};

fn base() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "name"],
        "properties": {
            "id": {"type": "integer", "minimum": 0, "maximum": 1000},
            "name": {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[a-z]+$"},
            "score": {"type": "number", "minimum": -10, "maximum": 10, "multipleOf": 0.5},
            "kind": {"enum": ["a", "b", "c"]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 5},
                     "maxItems": 4, "uniqueItems": true},
            "when": {"type": "string", "format": "date"},
            "meta": {"type": "object", "properties": {"x": {"type": "integer"},
                     "y": {"type": "boolean"}}, "required": ["x"]},
            "alt": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 3}]},
            "one": {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "integer", "maximum": 5}]}
        }
    })
}

const FIELDS: &[&str] = &[
    "id", "name", "score", "kind", "tags", "when", "meta", "alt", "one",
];

/// The subschema of property `field` (created if absent).
fn prop<'a>(s: &'a mut Value, field: &str) -> &'a mut Map<String, Value> {
    let props = s["properties"].as_object_mut().unwrap();
    props
        .entry(field.to_owned())
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .unwrap()
}

fn set_or_remove(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    match v {
        Some(v) => {
            m.insert(k.to_owned(), v);
        }
        None => {
            m.remove(k);
        }
    }
}

/// One random edit, described.
#[allow(clippy::too_many_lines)] // reason: one arm per kind of edit
fn edit(s: &mut Value, rng: &mut StdRng) -> String {
    let bound = |rng: &mut StdRng, around: i64| -> Option<Value> {
        if rng.random_bool(0.15) {
            None
        } else {
            Some(json!(around + rng.random_range(-6..=6)))
        }
    };
    match rng.random_range(0..16) {
        0 => {
            let (field, k, around) = *[
                ("id", "minimum", 0),
                ("id", "maximum", 1000),
                ("id", "exclusiveMinimum", 0),
                ("score", "minimum", -10),
                ("score", "maximum", 10),
                ("score", "exclusiveMaximum", 10),
                ("name", "minLength", 1),
                ("name", "maxLength", 20),
                ("tags", "maxItems", 4),
                ("tags", "minItems", 0),
            ]
            .choose(rng)
            .unwrap();
            let v = bound(rng, around).map(|v| {
                if k.ends_with("Length") || k.ends_with("Items") {
                    json!(v.as_i64().unwrap().max(0))
                } else {
                    v
                }
            });
            let d = format!("{field}.{k} = {v:?}");
            set_or_remove(prop(s, field), k, v);
            d
        }
        1 => {
            let (field, ty) = [
                ("id", json!("number")),
                ("id", json!(["integer", "null"])),
                ("score", json!("integer")),
                ("name", json!(["string", "null"])),
                ("kind", json!("string")),
                ("when", json!("integer")),
            ]
            .choose(rng)
            .unwrap()
            .clone();
            prop(s, field).insert("type".to_owned(), ty.clone());
            format!("{field}.type = {ty}")
        }
        2 => {
            let req = s["required"].as_array_mut().unwrap();
            let name = *FIELDS.choose(rng).unwrap();
            if let Some(i) = req.iter().position(|r| r == name) {
                req.remove(i);
                format!("required -{name}")
            } else {
                req.push(json!(name));
                format!("required +{name}")
            }
        }
        3 => {
            let v = [
                None,
                Some(json!(false)),
                Some(json!(true)),
                Some(json!({"type": "string"})),
            ]
            .choose(rng)
            .unwrap()
            .clone();
            let d = format!("additionalProperties = {v:?}");
            set_or_remove(s.as_object_mut().unwrap(), "additionalProperties", v);
            d
        }
        4 => {
            let v = [
                json!(["a", "b"]),
                json!(["a", "b", "c", "d"]),
                json!(["c", "b", "a"]),
                json!(["a", "b", 1]),
                json!(["x"]),
            ]
            .choose(rng)
            .unwrap()
            .clone();
            let d = format!("kind.enum = {v}");
            prop(s, "kind").insert("enum".to_owned(), v);
            d
        }
        5 => {
            let v = [
                None,
                Some(json!("^[a-z]+$")),
                Some(json!("^[a-z0-9]+$")),
                Some(json!("^[a-z]{1,20}$")),
                Some(json!("^[a-z]{1,10}$")),
                Some(json!("[a-z]")),
                Some(json!("^.{1,20}$")),
                Some(json!("^[a-z]+$|^x{30}$")),
            ]
            .choose(rng)
            .unwrap()
            .clone();
            let d = format!("name.pattern = {v:?}");
            set_or_remove(prop(s, "name"), "pattern", v);
            d
        }
        6 => {
            let v = [
                None,
                Some(json!("date")),
                Some(json!("date-time")),
                Some(json!("email")),
            ]
            .choose(rng)
            .unwrap()
            .clone();
            let d = format!("when.format = {v:?}");
            set_or_remove(prop(s, "when"), "format", v);
            d
        }
        7 => {
            let v = [
                None,
                Some(json!(0.5)),
                Some(json!(0.25)),
                Some(json!(1)),
                Some(json!(0.1)),
                Some(json!(1.5)),
            ]
            .choose(rng)
            .unwrap()
            .clone();
            let d = format!("score.multipleOf = {v:?}");
            set_or_remove(prop(s, "score"), "multipleOf", v);
            d
        }
        8 => {
            let v = [None, Some(json!(true)), Some(json!(false))]
                .choose(rng)
                .unwrap()
                .clone();
            let d = format!("tags.uniqueItems = {v:?}");
            set_or_remove(prop(s, "tags"), "uniqueItems", v);
            d
        }
        9 => {
            let v = [
                json!({"type": "string", "maxLength": 5}),
                json!({"type": "string", "maxLength": 3}),
                json!({"type": "string"}),
                json!({"type": ["string", "integer"]}),
                json!({"type": "integer"}),
            ]
            .choose(rng)
            .unwrap()
            .clone();
            let d = format!("tags.items = {v}");
            prop(s, "tags").insert("items".to_owned(), v);
            d
        }
        10 => {
            let name = ["extra", "note", "kind", "alt"].choose(rng).unwrap();
            let props = s["properties"].as_object_mut().unwrap();
            if props.remove(*name).is_some() {
                format!("properties -{name}")
            } else {
                props.insert((*name).to_owned(), json!({"type": "string"}));
                format!("properties +{name}")
            }
        }
        11 => {
            let v = [
                json!([{"type": "integer"}, {"type": "string", "maxLength": 3}]),
                json!([{"type": "integer"}]),
                json!([{"type": "integer"}, {"type": "string"}]),
                json!([{"type": "integer", "minimum": 0}, {"type": "string", "maxLength": 3}]),
                json!([{"type": "integer"}, {"type": "string", "maxLength": 3}, {"type": "null"}]),
            ]
            .choose(rng)
            .unwrap()
            .clone();
            let d = format!("alt.anyOf = {v}");
            prop(s, "alt").insert("anyOf".to_owned(), v);
            d
        }
        12 => {
            let v = [
                json!([{"type": "integer", "minimum": 0}, {"type": "integer", "maximum": 5}]),
                json!([{"type": "integer", "minimum": 3}, {"type": "integer", "maximum": 5}]),
                json!([{"type": "integer", "minimum": 0}, {"type": "integer", "maximum": -1}]),
                json!([{"type": "integer", "minimum": 0}]),
                json!([{"type": "integer", "minimum": 0}, {"type": "integer", "maximum": 8}]),
            ]
            .choose(rng)
            .unwrap()
            .clone();
            let d = format!("one.oneOf = {v}");
            prop(s, "one").insert("oneOf".to_owned(), v);
            d
        }
        13 => {
            let v = [None, Some(json!("a")), Some(json!("b"))]
                .choose(rng)
                .unwrap()
                .clone();
            let d = format!("kind.const = {v:?}");
            set_or_remove(prop(s, "kind"), "const", v);
            d
        }
        14 => {
            let meta = prop(s, "meta");
            let v = [json!(["x"]), json!([]), json!(["x", "y"]), json!(["y"])]
                .choose(rng)
                .unwrap()
                .clone();
            let d = format!("meta.required = {v}");
            meta.insert("required".to_owned(), v);
            d
        }
        _ => {
            let meta = prop(s, "meta");
            let v = [None, Some(json!(false)), Some(json!({"type": "integer"}))]
                .choose(rng)
                .unwrap()
                .clone();
            let d = format!("meta.additionalProperties = {v:?}");
            set_or_remove(meta, "additionalProperties", v);
            d
        }
    }
}

fn judge(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap()
}

/// Values of `producer` the consuming validator refuses, from `n` draws (none when the
/// producing schema accepts nothing, or cannot be generated).
fn counterexample(producer: &Value, consumer: &Value, n: usize, seed: u64) -> Option<Value> {
    let strategy = Schema::new(producer).ok()?.valid().ok()?;
    let judge = judge(consumer);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    (0..n).find_map(|_| {
        let v = strategy.new_tree(&mut runner).ok()?.current();
        (!judge.is_valid(&v)).then_some(v)
    })
}

#[test]
fn the_gate_blocks_every_break_that_sampling_finds() {
    let cases: u64 = std::env::var("EVKIT_GATE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(150);
    let mut out = std::env::var("EVKIT_GATE_FUZZ_OUT")
        .ok()
        .map(|p| std::fs::File::create(p).unwrap());
    let opts = Options {
        cases: 64,
        seed: 5,
        ..Options::default()
    };
    let mut let_through = Vec::new();
    let mut wrong_witnesses = Vec::new();
    let mut quiet_alarms = Vec::new();
    let (mut breaks, mut blocked) = (0, 0);
    for case in 0..cases {
        let mut rng = StdRng::seed_from_u64(case);
        let old = base();
        let mut new = old.clone();
        let edits: Vec<String> = (0..rng.random_range(1..=3))
            .map(|_| edit(&mut new, &mut rng))
            .collect();
        if new == old {
            continue;
        }
        let findings = compare(&old, &new, &opts).unwrap();
        let mut verdicts = Map::new();
        for d in [Direction::Backward, Direction::Forward] {
            let blocks = findings.iter().any(|f| f.breaks(Mode::Full).contains(&d));
            let (producer, consumer) = match d {
                Direction::Backward => (&old, &new),
                _ => (&new, &old),
            };
            let found = counterexample(producer, consumer, 400, case);
            let witnessed = findings
                .iter()
                .flat_map(|f| &f.witnesses)
                .any(|w| w.direction == d);
            for w in findings.iter().flat_map(|f| &f.witnesses) {
                let v: Value = serde_json::from_str(&w.value).unwrap();
                let (p, c) = match w.direction {
                    Direction::Backward => (&old, &new),
                    _ => (&new, &old),
                };
                if !judge(p).is_valid(&v) || judge(c).is_valid(&v) {
                    wrong_witnesses.push(format!("case {case} {edits:?}: {w:?}"));
                }
            }
            if found.is_some() || witnessed {
                breaks += 1;
            }
            if blocks {
                blocked += 1;
                if found.is_none() && !witnessed {
                    quiet_alarms.push(format!(
                        "case {case} {d}: {edits:?}: {:?}",
                        findings
                            .iter()
                            .filter(|f| f.breaks(Mode::Full).contains(&d))
                            .map(|f| format!("{} {} {}", f.rule, f.pointer, f.detail))
                            .collect::<Vec<_>>()
                    ));
                }
            }
            if let Some(v) = &found
                && !blocks
            {
                let_through.push(format!(
                    "case {case} {d}: {edits:?}: {v} (findings: {:?})",
                    findings
                        .iter()
                        .map(|f| format!("{} {} {}", f.rule, f.direction, f.pointer))
                        .collect::<Vec<_>>()
                ));
            }
            verdicts.insert(d.to_string(), json!(blocks));
        }
        if let Some(out) = &mut out {
            let line = json!({"case": case, "edits": edits, "old": old, "new": new,
                              "blocks": verdicts});
            writeln!(out, "{line}").unwrap();
        }
    }
    eprintln!(
        "{cases} changes: {breaks} breaking directions found (by sampling or a witness), \
         {blocked} blocked, {} let through, {} blocked without a witness or a sampled break: \
         {quiet_alarms:#?}",
        let_through.len(),
        quiet_alarms.len()
    );
    assert!(wrong_witnesses.is_empty(), "{wrong_witnesses:#?}");
    assert!(
        let_through.is_empty(),
        "breaks let through: {let_through:#?}"
    );
}
