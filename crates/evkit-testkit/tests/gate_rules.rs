//! One test per rule id of the gate's static diff: a deployed schema, a change that makes
//! exactly that kind of change, the rule id, direction and pointer the gate must report, and
//! the witness it must find. Every witness is judged again here by jsonschema validators
//! compiled independently of the gate: the producing side must accept it and the consuming
//! side refuse it. The last test checks that every rule id in `RULES` has a test, here or in
//! `tests/gate.rs` (the catalog rules).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evkit_testkit::gate::{Direction, Finding, Mode, Options, RULES, compare};
use serde_json::{Value, json};

/// Rule ids tested on whole catalogs in `tests/gate.rs`.
const CATALOG_RULES: &[&str] = &[
    "topic-removed",
    "envelope-mode-changed",
    "envelope-type-changed",
    "envelope-source-changed",
    "dataschema-added",
    "dataschema-removed",
    "dataschema-retargeted",
    "key-pointer-changed",
    "key-required-added",
    "key-required-removed",
    "header-required-added",
    "header-required-removed",
    "contracts",
];

/// One change: the deployed schema, the change, and what the gate must say. `direction`
/// `none` marks a change that breaks nothing (the gate must not block it).
#[derive(serde::Deserialize)]
struct Case {
    rule: String,
    direction: String,
    pointer: String,
    /// The rule id to look for, when `rule` names the case rather than the id.
    #[serde(default)]
    expect: Option<String>,
    /// The directions that really break, when fewer than `direction` (the rest must be
    /// proven harmless).
    #[serde(default)]
    breaks: Option<String>,
    /// A known limit: the gate reports the change, without a witness, though it breaks
    /// nothing.
    #[serde(default)]
    limitation: Option<String>,
    old: Value,
    new: Value,
}

impl Case {
    fn direction(&self) -> Option<Direction> {
        match self.direction.as_str() {
            "backward" => Some(Direction::Backward),
            "forward" => Some(Direction::Forward),
            "both" => Some(Direction::Both),
            _ => None,
        }
    }
}

/// The cases, shared with the side-by-side comparison (`benches/gate/compare.py`).
fn cases() -> Vec<Case> {
    serde_json::from_str(include_str!("data/gate-cases.json")).unwrap()
}

fn closed(props: &Value) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": props,
        "additionalProperties": false
    })
}

fn opts() -> Options {
    Options {
        cases: 64,
        seed: 11,
        ..Options::default()
    }
}

/// The independent judge: jsonschema validators compiled here, formats asserted.
fn accepts(schema: &Value, value: &Value) -> bool {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap()
        .is_valid(value)
}

fn check(case: &Case) {
    let findings = compare(&case.old, &case.new, &opts()).unwrap();
    let summary: Vec<String> = findings
        .iter()
        .map(|f| format!("{} {} {}", f.rule, f.direction, f.pointer))
        .collect();
    if case.limitation.is_some() {
        assert!(
            findings
                .iter()
                .all(|f| f.blocks(Mode::Full) && f.witnesses.is_empty()),
            "{}: {summary:?}",
            case.rule
        );
        return;
    }
    let Some(direction) = case.direction() else {
        assert!(
            !findings.iter().any(|f| f.blocks(Mode::Full)),
            "{}: blocks: {summary:?}",
            case.rule
        );
        return;
    };
    let rule = case.expect.as_deref().unwrap_or(&case.rule);
    let found: Vec<&Finding> = findings.iter().filter(|f| f.rule == rule).collect();
    assert!(!found.is_empty(), "{rule}: not found; got {summary:?}");
    // `unexplained` has one finding per direction; the others one finding breaking both.
    let per_direction: Vec<&Finding> = if rule == "unexplained" {
        found.clone()
    } else {
        let f = found
            .iter()
            .find(|f| f.pointer == case.pointer)
            .unwrap_or_else(|| panic!("{rule}: not at {}; got {summary:?}", case.pointer));
        assert_eq!(f.direction, direction, "{rule}: {summary:?}");
        vec![*f]
    };
    let truth = match case.breaks.as_deref() {
        Some("backward") => Direction::Backward,
        Some("forward") => Direction::Forward,
        _ => direction,
    };
    for d in [Direction::Backward, Direction::Forward] {
        let (stated, breaks) = match d {
            Direction::Backward => (direction.backward(), truth.backward()),
            _ => (direction.forward(), truth.forward()),
        };
        if stated && !breaks {
            assert!(
                per_direction.iter().all(|f| f.harmless.contains(&d)),
                "{rule}: {d} breaks nothing, but is not proven harmless: {per_direction:?}"
            );
        }
        if !breaks {
            continue;
        }
        let w = per_direction
            .iter()
            .flat_map(|f| &f.witnesses)
            .find(|w| w.direction == d)
            .unwrap_or_else(|| panic!("{rule}: no {d} witness: {per_direction:?}"));
        let value: Value = serde_json::from_str(&w.value).unwrap();
        let (producer, consumer) = match d {
            Direction::Backward => (&case.old, &case.new),
            _ => (&case.new, &case.old),
        };
        assert!(
            accepts(producer, &value),
            "{rule}: producer refuses the witness {value}"
        );
        assert!(
            !accepts(consumer, &value),
            "{rule}: consumer accepts the witness {value}"
        );
        assert!(
            per_direction.iter().all(|f| f.blocks(Mode::Full)),
            "{rule}: does not block"
        );
    }
}

macro_rules! rule_tests {
    ($($name:ident => $rule:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let case = cases().into_iter().find(|c| c.rule == $rule).unwrap();
                check(&case);
            }
        )*
        /// Rule ids with a test in this file.
        const TESTED: &[&str] = &[$($rule),*];
    };
}

rule_tests! {
    type_narrowed => "type-narrowed",
    type_widened => "type-widened",
    type_changed => "type-changed",
    enum_added => "enum-added",
    enum_removed => "enum-removed",
    enum_value_removed => "enum-value-removed",
    enum_value_added => "enum-value-added",
    const_added => "const-added",
    const_removed => "const-removed",
    const_changed => "const-changed",
    bound_tightened => "bound-tightened",
    bound_loosened => "bound-loosened",
    pattern_added => "pattern-added",
    pattern_removed => "pattern-removed",
    pattern_changed => "pattern-changed",
    format_added => "format-added",
    format_removed => "format-removed",
    format_changed => "format-changed",
    multiple_of_added => "multiple-of-added",
    multiple_of_removed => "multiple-of-removed",
    multiple_of_changed => "multiple-of-changed",
    unique_items_added => "unique-items-added",
    unique_items_removed => "unique-items-removed",
    required_added => "required-added",
    required_removed => "required-removed",
    property_added_open => "property-added-open",
    property_added_closed => "property-added-closed",
    property_removed_open => "property-removed-open",
    property_removed_closed => "property-removed-closed",
    additional_properties_narrowed => "additional-properties-narrowed",
    additional_properties_widened => "additional-properties-widened",
    pattern_property_added => "pattern-property-added",
    pattern_property_removed => "pattern-property-removed",
    items_narrowed => "items-narrowed",
    items_widened => "items-widened",
    dependency_added => "dependency-added",
    dependency_removed => "dependency-removed",
    branch_added => "branch-added",
    branch_removed => "branch-removed",
    ref_changed => "ref-changed",
    schema_narrowed => "schema-narrowed",
    schema_widened => "schema-widened",
    constraint_added => "constraint-added",
    constraint_removed => "constraint-removed",
    keyword_changed => "keyword-changed",
    unexplained => "unexplained",
}

/// Changes that break nothing must not block: annotations, reordering, a refactor into a
/// `$ref`, an integer written as a number with `multipleOf: 1` (proven by jsonschema's
/// algebra). One known limit is checked as such: a bound the pattern already implied is
/// reported, without a witness.
#[test]
fn harmless_changes_do_not_block() {
    let harmless: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.direction().is_none())
        .collect();
    assert!(harmless.len() >= 5);
    for case in &harmless {
        check(case);
    }
}

/// Inside `oneOf`, a branch that accepts more can make a value match two branches, which
/// `oneOf` refuses: every change there breaks both ways.
#[test]
fn inside_one_of_every_change_breaks_both_ways() {
    check(
        &cases()
            .into_iter()
            .find(|c| c.rule == "one-of-branch-widened")
            .unwrap(),
    );
}

#[test]
fn every_rule_id_has_a_test() {
    for (id, _, _) in RULES {
        assert!(
            TESTED.contains(id) || CATALOG_RULES.contains(id),
            "rule `{id}` has no test"
        );
    }
    for id in TESTED.iter().chain(CATALOG_RULES) {
        assert!(
            RULES.iter().any(|(r, _, _)| r == id),
            "`{id}` is not a rule id"
        );
    }
}

#[test]
fn every_bound_keyword_is_classified_both_ways() {
    for (k, upper) in [
        ("maximum", true),
        ("exclusiveMaximum", true),
        ("maxLength", true),
        ("maxItems", true),
        ("maxProperties", true),
        ("minimum", false),
        ("exclusiveMinimum", false),
        ("minLength", false),
        ("minItems", false),
        ("minProperties", false),
    ] {
        let (lo, hi) = (json!(2), json!(5));
        let (strict, loose) = if upper { (lo, hi) } else { (hi, lo) };
        let pointer = format!("/properties/x/{k}");
        for (old, new, rule, d) in [
            (
                loose.clone(),
                strict.clone(),
                "bound-tightened",
                Direction::Backward,
            ),
            (strict, loose, "bound-loosened", Direction::Forward),
        ] {
            let findings = compare(
                &closed(&json!({"x": {k: old}})),
                &closed(&json!({"x": {k: new}})),
                &opts(),
            )
            .unwrap();
            let f = findings
                .iter()
                .find(|f| f.rule == rule && f.pointer == pointer)
                .unwrap_or_else(|| panic!("{k}: {rule} not found: {findings:?}"));
            assert_eq!(f.direction, d, "{k}");
            assert!(
                f.witnesses.iter().any(|w| w.direction == d),
                "{k}: {rule} has no witness: {f:?}"
            );
        }
        // Added is a tightening, removed a loosening.
        let added = compare(
            &closed(&json!({"x": {}})),
            &closed(&json!({"x": {k: 3}})),
            &opts(),
        )
        .unwrap();
        assert!(
            added.iter().any(|f| f.rule == "bound-tightened"),
            "{k} added: {added:?}"
        );
        let removed = compare(
            &closed(&json!({"x": {k: 3}})),
            &closed(&json!({"x": {}})),
            &opts(),
        )
        .unwrap();
        assert!(
            removed.iter().any(|f| f.rule == "bound-loosened"),
            "{k} removed: {removed:?}"
        );
    }
}

#[test]
fn the_readme_lists_every_rule_id() {
    let readme = include_str!("../../../README.md");
    for (id, _, _) in RULES {
        assert!(
            readme.contains(&format!("| `{id}` |")),
            "README's rule table lacks `{id}`"
        );
    }
}
