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

/// A pattern anchored at both ends whose lengths miss the length bounds beside it is an error:
/// no string passes both. Bounds the pattern fits, and unanchored patterns, say nothing.
#[test]
fn a_pattern_no_length_bound_lets_through_is_an_error() {
    let schema = json!({
        "$id": "urn:p", "title": "P", "type": "object", "required": ["a"],
        "properties": {
            "a": {"type": "string", "pattern": "^[0-9a-f]{32}$", "maxLength": 31},
            "b": {"type": "string", "pattern": "^[a-z]{1,4}$", "minLength": 5},
            // Fits, or cannot be decided from the pattern.
            "c": {"type": "string", "pattern": "^[0-9a-f]{32}$", "maxLength": 32, "minLength": 32},
            "d": {"type": "string", "pattern": "[0-9a-f]{32}", "maxLength": 31},
            "e": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 3},
            "f": {"type": "string", "pattern": "^é{4}$", "maxLength": 4}
        }
    });
    let found: Vec<_> = rules(&schema, false)
        .into_iter()
        .filter(|f| f.0 == "pattern-length-conflict")
        .map(|f| (f.1, f.2))
        .collect();
    assert_eq!(
        found,
        [
            ("/properties/a/pattern".to_owned(), Severity::Error),
            ("/properties/b/pattern".to_owned(), Severity::Error),
        ]
    );
    let message = lint_schema(&schema, Path::new("s.json"), false)
        .into_iter()
        .find(|f| f.pointer == "/properties/a/pattern")
        .unwrap()
        .message;
    assert!(
        message.contains("32 to 32 characters") && message.contains("`maxLength: 31`"),
        "{message}"
    );
    // Judged by jsonschema: each flagged field's schema accepts no string the pattern draws
    // from, and no length in range; the fields it passes accept one.
    for (field, flagged) in [("a", true), ("b", true), ("c", false), ("f", false)] {
        let sub = &schema["properties"][field];
        let v = jsonschema::validator_for(sub).unwrap();
        let accepts_some = (0..40).any(|n| {
            ["a", "0", "é"]
                .iter()
                .any(|c| v.is_valid(&json!(c.repeat(n))))
        });
        assert_eq!(accepts_some, !flagged, "{field}");
    }
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
