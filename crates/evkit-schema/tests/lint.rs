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

/// Bounds beyond 2^53 − 1 are warnings: a consumer that reads JSON numbers as doubles cannot
/// enforce them (Ajv let every break of the sample's old int64 offset bound through).
#[test]
fn integer_bounds_beyond_what_a_double_holds_are_warnings() {
    let schema = json!({
        "$id": "urn:n", "title": "N", "type": "object", "required": ["a"],
        "properties": {
            "a": {"type": "integer", "minimum": 0, "maximum": 9_223_372_036_854_775_807_u64},
            "b": {"type": "integer", "minimum": -1_152_921_504_606_846_976_i64},
            "c": {"enum": [1, 36_028_797_018_963_968_u64, "x"]},
            "d": {"type": "number", "exclusiveMaximum": 1e20},
            "e": {"const": 9_007_199_254_740_992_u64},
            // At the line, fractions and draft 4's boolean form: nothing to say.
            "f": {"type": "integer", "minimum": -9_007_199_254_740_991_i64,
                  "maximum": 9_007_199_254_740_991_u64},
            "g": {"type": "number", "maximum": 1.5, "exclusiveMaximum": true}
        }
    });
    let mut found: Vec<_> = rules(&schema, false)
        .into_iter()
        .filter(|f| f.0 == "unsafe-integer")
        .map(|f| (f.1, f.2))
        .collect();
    found.sort();
    let want: Vec<(String, Severity)> = [
        "/properties/a/maximum",
        "/properties/b/minimum",
        "/properties/c/enum",
        "/properties/d/exclusiveMaximum",
        "/properties/e/const",
    ]
    .into_iter()
    .map(|p| (p.to_owned(), Severity::Warning))
    .collect();
    assert_eq!(found, want);
    let message = lint_schema(&schema, Path::new("s.json"), false)
        .into_iter()
        .find(|f| f.pointer == "/properties/a/maximum")
        .unwrap()
        .message;
    assert!(message.contains("9223372036854775807"), "{message}");
    assert!(message.contains("9007199254740991"), "{message}");
}
