//! Schema lint finds what validators silently ignore.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use evkit_schema::Catalog;
use evkit_schema::lint::{Severity, lint_catalog, lint_schema};
use serde_json::json;

fn rules(schema: &serde_json::Value, closed: bool) -> Vec<(&'static str, String, Severity)> {
    lint_schema(schema, Path::new("s.json"), closed)
        .into_iter()
        .map(|f| (f.rule, f.pointer, f.severity))
        .collect()
}

#[test]
fn the_go_services_mistakes_are_errors() {
    // The original service's schema: `minValue` and `format: int`, so ids became floats.
    let schema = json!({
        "$id": "urn:todo", "title": "Todo", "type": "object", "required": ["id"],
        "properties": {
            "id": {"type": "number", "format": "int", "minValue": 1, "maxValue": 100},
            "title": {"type": "string", "maxlength": 5}
        }
    });
    let found = rules(&schema, false);
    assert!(
        found.contains(&(
            "unknown-format",
            "/properties/id/format".into(),
            Severity::Error
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            "unknown-keyword",
            "/properties/id/minValue".into(),
            Severity::Error
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            "unknown-keyword",
            "/properties/id/maxValue".into(),
            Severity::Error
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            "unknown-keyword",
            "/properties/title/maxlength".into(),
            Severity::Error
        )),
        "{found:?}"
    );
    let messages: Vec<_> = lint_schema(&schema, Path::new("s.json"), false)
        .into_iter()
        .map(|f| f.message)
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("did you mean `minimum`")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("type\": \"integer")),
        "{messages:?}"
    );
}

#[test]
fn property_names_that_look_like_keywords_are_fine() {
    let schema = json!({
        "$id": "urn:x", "title": "X", "type": "object", "required": ["min", "format"],
        "properties": {"min": {"type": "integer"}, "format": {"type": "string"}},
        "$defs": {"regex": {"type": "string"}}
    });
    assert!(
        rules(&schema, false).is_empty(),
        "{:?}",
        rules(&schema, false)
    );
}

#[test]
fn non_ecma_regexes_are_errors() {
    // Lookbehind is ECMA-262 (2018); possessive quantifiers and `\A` are not.
    let schema = json!({
        "$id": "urn:x", "title": "X", "type": "object", "required": ["a"],
        "properties": {
            "a": {"type": "string", "pattern": "^a++$"},
            "b": {"type": "string", "pattern": "\\Aabc"},
            "c": {"type": "string", "pattern": "(?<=x)y"}
        },
        "patternProperties": {"^(?i)x": {"type": "string"}}
    });
    let found = rules(&schema, false);
    let regex: Vec<_> = found
        .iter()
        .filter(|f| f.0 == "ecma-regex")
        .map(|f| f.1.as_str())
        .collect();
    assert!(regex.contains(&"/properties/a/pattern"), "{found:?}");
    assert!(regex.contains(&"/properties/b/pattern"), "{found:?}");
    assert!(regex.contains(&"/patternProperties/^(?i)x"), "{found:?}");
    assert!(!regex.contains(&"/properties/c/pattern"), "{found:?}");
}

#[test]
fn closed_topics_need_closed_objects_and_missing_required_and_titles_warn() {
    let schema = json!({
        "type": "object",
        "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"], "additionalProperties": false}}
    });
    let found = rules(&schema, true);
    assert!(
        found.contains(&("open-object", String::new(), Severity::Error)),
        "{found:?}"
    );
    assert!(
        !found
            .iter()
            .any(|f| f.0 == "open-object" && f.1 == "/properties/a"),
        "{found:?}"
    );
    assert!(
        found.contains(&("missing-required", String::new(), Severity::Warning)),
        "{found:?}"
    );
    assert!(
        found.contains(&("missing-id", String::new(), Severity::Warning)),
        "{found:?}"
    );
    assert!(
        found.contains(&("missing-title", String::new(), Severity::Warning)),
        "{found:?}"
    );
    // Not closed: no open-object finding.
    assert!(!rules(&schema, false).iter().any(|f| f.0 == "open-object"));
}

#[test]
fn the_sample_catalog_is_lint_clean() {
    let c = Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas")).unwrap();
    let findings = lint_catalog(&c);
    assert!(findings.is_empty(), "{findings:#?}");
}
