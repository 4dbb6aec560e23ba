//! One test per rule id of the gate's static diff: a deployed schema, a change that makes
//! exactly that kind of change, the rule id, direction and pointer the gate must report, and
//! the witness it must find. Every witness is judged again here by jsonschema validators
//! compiled independently of the gate: the producing side must accept it and the consuming
//! side refuse it. The last test checks that every rule id in `RULES` has a test, here or in
//! `tests/gate.rs` (the catalog rules).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evkit_testkit::gate::{Direction, Finding, Mode, Options, RULES, Witness, compare};
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

/// Judges a witness again: the producing side (the deployed schema for a backward witness, the
/// changed one for a forward witness) accepts it, and the consuming side refuses it.
fn shows_a_break(old: &Value, new: &Value, w: &Witness) -> bool {
    let value: Value = serde_json::from_str(&w.value).unwrap();
    let (producer, consumer) = match w.direction {
        Direction::Backward => (old, new),
        _ => (new, old),
    };
    accepts(producer, &value) && !accepts(consumer, &value)
}

fn check(case: &Case) {
    let findings = compare(&case.old, &case.new, &opts()).unwrap();
    let summary: Vec<String> = findings
        .iter()
        .map(|f| format!("{} {} {}", f.rule, f.direction, f.pointer))
        .collect();
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
        assert!(
            shows_a_break(&case.old, &case.new, w),
            "{rule}: the producer refuses the witness, or the consumer accepts it: {w:?}"
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
/// algebra), a length bound the pattern already enforces (proven by reading the pattern).
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

/// A length bound the producing side's `pattern` already enforces breaks nothing, and does not
/// block (`^[0-9a-f]{32}$` with `maxLength: 32` added, the usual documentation edit); a bound
/// the pattern does not enforce still blocks, with its witness. Both judged again by
/// jsonschema: every witness is a string one side accepts and the other refuses.
#[test]
fn a_length_bound_the_pattern_already_enforces_does_not_block() {
    let x = |keywords: Value| {
        let mut x = json!({"type": "string"});
        x.as_object_mut()
            .unwrap()
            .extend(keywords.as_object().unwrap().clone());
        closed(&json!({ "x": x }))
    };
    let hex = "^[0-9a-f]{32}$";
    let harmless = [
        // Tightened: the deployed pattern already keeps to the new bound.
        (
            json!({"pattern": hex}),
            json!({"pattern": hex, "maxLength": 32}),
        ),
        (
            json!({"pattern": hex}),
            json!({"pattern": hex, "minLength": 32}),
        ),
        (
            json!({"pattern": "^[a-z]{1,4}$", "maxLength": 10}),
            json!({"pattern": "^[a-z]{1,4}$", "maxLength": 4}),
        ),
        // Loosened: the changed pattern still keeps within the deployed bound.
        (
            json!({"pattern": hex, "maxLength": 40}),
            json!({"pattern": hex}),
        ),
        // Characters, not bytes, as maxLength counts them.
        (
            json!({"pattern": "^é{4}$"}),
            json!({"pattern": "^é{4}$", "maxLength": 4}),
        ),
    ];
    for (old, new) in &harmless {
        let findings = compare(&x(old.clone()), &x(new.clone()), &opts()).unwrap();
        assert!(
            !findings.is_empty() && findings.iter().all(|f| !f.blocks(Mode::Full)),
            "{old} → {new}: {findings:?}"
        );
        let f = &findings[0];
        assert!(
            f.proof
                .as_deref()
                .is_some_and(|p| p.contains("accepts no string")),
            "{old} → {new}: {f:?}"
        );
    }
    let blocking = [
        // One character short of what the pattern needs.
        (
            json!({"pattern": hex}),
            json!({"pattern": hex, "maxLength": 31}),
        ),
        (
            json!({"pattern": hex}),
            json!({"pattern": hex, "minLength": 33}),
        ),
        // A search: text around the match is accepted.
        (
            json!({"pattern": "[0-9a-f]{32}"}),
            json!({"pattern": "[0-9a-f]{32}", "maxLength": 32}),
        ),
        // One branch is unbounded.
        (
            json!({"pattern": "^[a-z]{1,4}$|^x+$"}),
            json!({"pattern": "^[a-z]{1,4}$|^x+$", "maxLength": 4}),
        ),
        // The deployed side had no pattern: the new one does not vouch for what it accepted.
        (json!({}), json!({"pattern": hex, "maxLength": 32})),
        // Loosened past what the changed pattern allows.
        (
            json!({"pattern": hex, "maxLength": 32}),
            json!({"pattern": "^[0-9a-f]{32,40}$"}),
        ),
    ];
    for (old, new) in &blocking {
        let (old, new) = (x(old.clone()), x(new.clone()));
        let findings = compare(&old, &new, &opts()).unwrap();
        let length = findings
            .iter()
            .find(|f| f.pointer.ends_with("Length"))
            .unwrap_or_else(|| panic!("{new}: {findings:?}"));
        assert!(
            length.blocks(Mode::Full) && length.proof.is_none(),
            "{new}: {length:?}"
        );
        let w = length
            .witnesses
            .first()
            .unwrap_or_else(|| panic!("{new}: {length:?}"));
        assert!(shows_a_break(&old, &new, w), "{new}: {w:?}");
    }
}

/// A witness (a message both validators judged) overrules a proof: the finding then blocks.
#[test]
fn a_witness_overrules_a_proof() {
    let findings = compare(
        &closed(&json!({"x": {"type": "string", "pattern": "^[0-9a-f]{32}$"}})),
        &closed(&json!({"x": {"type": "string", "pattern": "^[0-9a-f]{32}$", "maxLength": 32}})),
        &opts(),
    )
    .unwrap();
    let mut f = findings[0].clone();
    assert!(!f.blocks(Mode::Full));
    f.witnesses.push(Witness {
        direction: Direction::Backward,
        part: "payload".to_owned(),
        value: String::new(),
        refused: String::new(),
    });
    assert!(f.blocks(Mode::Full), "{f:?}");
}

/// `multipleOf` values are compared as the decimals they are written as. In doubles, `1e-20` and
/// `2e-20` differ by less than the tolerance (no finding at all), and `3 → 3.0000000001` has a
/// quotient within 1e-9 of an integer (backward only, though `3.0000000001` is new and refused
/// by the deployed schema). Each witness is judged again by jsonschema.
#[test]
fn multiple_of_changes_are_compared_as_decimals() {
    for (a, b, want) in [
        (json!(1e-20), json!(2e-20), Direction::Backward),
        (json!(3), json!(3.000_000_000_1), Direction::Both),
        (json!(0.1), json!(0.3), Direction::Backward),
        (json!(0.3), json!(0.1), Direction::Forward),
        (json!(0.0001), json!(0.00015), Direction::Both),
        (json!(2), json!(4), Direction::Backward),
    ] {
        let (old, new) = (
            closed(&json!({"x": {"type": "number", "multipleOf": a}})),
            closed(&json!({"x": {"type": "number", "multipleOf": b}})),
        );
        let findings = compare(&old, &new, &opts()).unwrap();
        let f = findings
            .iter()
            .find(|f| f.rule == "multiple-of-changed")
            .unwrap_or_else(|| panic!("{a} → {b}: {findings:?}"));
        assert_eq!(f.direction, want, "{a} → {b}: {f:?}");
        assert!(
            !findings.iter().any(|f| f.rule == "unexplained"),
            "{a} → {b}: {findings:?}"
        );
        for w in &f.witnesses {
            assert!(shows_a_break(&old, &new, w), "{a} → {b}: {w:?}");
        }
    }
    // Written alike, or as the same number: no finding.
    for (a, b) in [(json!(0.1), json!(0.10)), (json!(2), json!(2.0))] {
        let findings = compare(
            &closed(&json!({"x": {"multipleOf": a}})),
            &closed(&json!({"x": {"multipleOf": b}})),
            &opts(),
        )
        .unwrap();
        assert!(findings.is_empty(), "{a} → {b}: {findings:?}");
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
