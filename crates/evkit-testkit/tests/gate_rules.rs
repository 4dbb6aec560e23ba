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
        // A proof of a direction that breaks is wrong, even where a witness overrules it.
        assert!(
            per_direction.iter().all(|f| !f.harmless.contains(&d)),
            "{rule}: {d} breaks, but is called harmless: {per_direction:?}"
        );
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

/// A `pattern` change is compared as two languages: one that accepts every string the old one
/// did breaks only forward (proven harmless backward, so `--mode backward` lets it through),
/// one that accepts the same strings breaks nothing. The direction that breaks still has its
/// witness, judged again here. Under `not` the proven direction flips; inside `oneOf` a
/// one-way proof does not hold (a branch that accepts more breaks both ways).
#[test]
fn pattern_changes_are_compared_as_languages() {
    let string = |p: Value| closed(&json!({"x": {"type": "string", "pattern": p}}));
    for (old, new, harmless) in [
        ("^[a-z]+$", "^[a-z0-9]+$", vec![Direction::Backward]),
        ("^[a-z]+$", "[a-z]", vec![Direction::Backward]),
        ("^[a-z0-9]+$", "^[a-z]+$", vec![Direction::Forward]),
        (
            "^[a-z]+$",
            "^[a-z]+$|^x{30}$",
            vec![Direction::Backward, Direction::Forward],
        ),
        ("^[a-z]+$", "^[0-9]+$", vec![]),
    ] {
        let (o, n) = (string(json!(old)), string(json!(new)));
        let findings = compare(&o, &n, &opts()).unwrap();
        let f = findings
            .iter()
            .find(|f| f.rule == "pattern-changed")
            .unwrap_or_else(|| panic!("{old} → {new}: {findings:?}"));
        assert_eq!(f.harmless, harmless, "{old} → {new}: {f:?}");
        assert_eq!(f.proof.is_some(), !harmless.is_empty(), "{f:?}");
        for d in [Direction::Backward, Direction::Forward] {
            let mode = if d == Direction::Backward {
                Mode::Backward
            } else {
                Mode::Forward
            };
            assert_eq!(
                f.blocks(mode),
                !harmless.contains(&d),
                "{old} → {new} {d}: {f:?}"
            );
            if !harmless.contains(&d) {
                let w = f.witnesses.iter().find(|w| w.direction == d);
                assert!(
                    w.is_some_and(|w| shows_a_break(&o, &n, w)),
                    "{old} → {new} {d}: {f:?}"
                );
            }
        }
    }
    // Added or removed: the pattern against every string.
    let added = compare(
        &closed(&json!({"x": {"type": "string"}})),
        &string(json!("^[\\s\\S]*$")),
        &opts(),
    )
    .unwrap();
    assert!(added.iter().all(|f| !f.blocks(Mode::Full)), "{added:?}");
    let dot = compare(
        &closed(&json!({"x": {"type": "string"}})),
        &string(json!("^.*$")),
        &opts(),
    )
    .unwrap();
    // `.` matches no line terminator (`\n`, `\r`, U+2028, U+2029).
    let added_dot = dot.iter().find(|f| f.rule == "pattern-added").unwrap();
    assert!(
        added_dot.blocks(Mode::Full) && added_dot.proof.is_none(),
        "{added_dot:?}"
    );
    let w = added_dot.witnesses.first().unwrap();
    let value: Value = serde_json::from_str(&w.value).unwrap();
    assert!(
        value["x"]
            .as_str()
            .unwrap()
            .contains(['\n', '\r', '\u{2028}', '\u{2029}'])
            && shows_a_break(
                &closed(&json!({"x": {"type": "string"}})),
                &string(json!("^.*$")),
                w
            ),
        "{w:?}"
    );
    // Under `not`: the inner pattern accepts more, so the outer schema accepts less.
    let not = |p: &str| closed(&json!({"x": {"type": "string", "not": {"pattern": p}}}));
    let (before, after) = (not("^[a-z]+$"), not("^[a-z0-9]+$"));
    let findings = compare(&before, &after, &opts()).unwrap();
    let f = findings
        .iter()
        .find(|f| f.rule == "pattern-changed")
        .unwrap();
    assert_eq!(f.harmless, [Direction::Forward], "{f:?}");
    assert!(
        f.witnesses
            .iter()
            .any(|w| w.direction == Direction::Backward && shows_a_break(&before, &after, w))
    );
    // Inside `oneOf`: no one-way proof.
    let one = |p: &str| {
        closed(&json!({"x": {"oneOf": [{"type": "string", "pattern": p}, {"type": "integer"}]}}))
    };
    let findings = compare(&one("^[a-z]+$"), &one("^[a-z0-9]+$"), &opts()).unwrap();
    let f = findings
        .iter()
        .find(|f| f.rule == "pattern-changed")
        .unwrap();
    assert!(f.harmless.is_empty() && f.proof.is_none(), "{f:?}");
}

/// Changes at a leaf (scalar keywords only) are decided on the leaf alone by jsonschema's
/// canonical algebra, even when the rest of the change is beyond it (here a `pattern` changed
/// elsewhere): `type: string` beside an `enum` of strings, a bound another bound implies, a
/// `minItems: 0`. A leaf change that does refuse a value still blocks, with its witness.
#[test]
fn leaf_changes_the_leaf_already_implied_do_not_block() {
    let doc = |kind: Value, id: Value, tags: Value, name: &str| {
        closed(&json!({
            "kind": kind, "id": id, "tags": tags,
            "name": {"type": "string", "pattern": name}
        }))
    };
    let old = doc(
        json!({"enum": ["a", "b"]}),
        json!({"type": "integer", "minimum": 0}),
        json!({"type": "array", "items": {"type": "string"}}),
        "^[a-z]+$",
    );
    for (new, pointer) in [
        (
            doc(
                json!({"enum": ["a", "b"], "type": "string"}),
                json!({"type": "integer", "minimum": 0}),
                json!({"type": "array", "items": {"type": "string"}}),
                "^[a-z0-9]+$",
            ),
            "/properties/kind/type",
        ),
        (
            doc(
                json!({"enum": ["a", "b"]}),
                json!({"type": "integer", "minimum": 0, "exclusiveMinimum": -6}),
                json!({"type": "array", "items": {"type": "string"}}),
                "^[a-z0-9]+$",
            ),
            "/properties/id/exclusiveMinimum",
        ),
        (
            doc(
                json!({"enum": ["a", "b"]}),
                json!({"type": "integer", "minimum": 0}),
                json!({"type": "array", "items": {"type": "string"}, "minItems": 0}),
                "^[a-z0-9]+$",
            ),
            "/properties/tags/minItems",
        ),
    ] {
        let findings = compare(&old, &new, &opts()).unwrap();
        let f = findings
            .iter()
            .find(|f| f.pointer == pointer)
            .unwrap_or_else(|| panic!("{pointer}: {findings:?}"));
        assert!(
            !f.blocks(Mode::Full) && f.proof.is_some() && f.witnesses.is_empty(),
            "{f:?}"
        );
    }
    // A bound the other one does not imply: it blocks, with a witness (the broken value put into
    // a message the deployed schema generated, since the pattern changed elsewhere keeps the
    // canonical difference out of reach).
    let new = doc(
        json!({"enum": ["a", "b"]}),
        json!({"type": "integer", "minimum": 0, "exclusiveMinimum": 6}),
        json!({"type": "array", "items": {"type": "string"}}),
        "^[a-z0-9]+$",
    );
    let findings = compare(&old, &new, &opts()).unwrap();
    let f = findings
        .iter()
        .find(|f| f.pointer == "/properties/id/exclusiveMinimum")
        .unwrap();
    assert!(f.blocks(Mode::Full) && f.proof.is_none(), "{f:?}");
    assert!(
        f.witnesses.iter().any(|w| shows_a_break(&old, &new, w)),
        "{f:?}"
    );
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
