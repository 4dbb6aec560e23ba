//! Schema lint: mistakes that validators silently accept.
//!
//! The service evkit replaces had `minValue` and `format: int` in a schema: validators ignore both,
//! so its ids were floats. Lint finds these before they ship.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::catalog::{Catalog, property_schema};

/// How bad a finding is: errors fail `evkit lint`, warnings fail it only with `--deny-warnings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// A rule is silently not enforced, or the catalog contradicts itself.
    Error,
    /// Likely a mistake, or missing documentation.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The schema file.
    pub file: PathBuf,
    /// JSON pointer into the schema.
    pub pointer: String,
    /// Short rule name: `unknown-keyword`, `unknown-format`, `ecma-regex`, `open-object`,
    /// `missing-required`, `missing-id`, `missing-title`, `optional-key`, `invalid-example`,
    /// `missing-examples`, `unsafe-integer`, `pattern-length-conflict`.
    pub rule: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(
            f,
            "{}: {} at {}: {} [{}]",
            self.severity,
            self.file.display(),
            at,
            self.message,
            self.rule
        )
    }
}

/// The largest integer a double holds exactly with every integer below it (2^53 − 1).
const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// Every keyword of drafts 4 to 2020-12, with the annotations validators know.
const KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "id",
    "$ref",
    "$defs",
    "definitions",
    "$comment",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
    "$vocabulary",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "format",
    "items",
    "prefixItems",
    "additionalItems",
    "unevaluatedItems",
    "contains",
    "minContains",
    "maxContains",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "required",
    "properties",
    "patternProperties",
    "additionalProperties",
    "unevaluatedProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
];

/// Formats the `jsonschema` crate asserts (evkit turns format assertion on for every draft).
pub const FORMATS: &[&str] = &[
    "date",
    "date-time",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uri-template",
    "uuid",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Misspellings seen in real schemas and what was meant.
const DID_YOU_MEAN: &[(&str, &str)] = &[
    ("minValue", "minimum"),
    ("maxValue", "maximum"),
    ("min", "minimum"),
    ("max", "maximum"),
    ("minimumLength", "minLength"),
    ("maximumLength", "maxLength"),
    ("minlength", "minLength"),
    ("maxlength", "maxLength"),
    ("maxSize", "maxItems or maxLength"),
    ("optional", "required (on the parent object)"),
    ("additionalproperties", "additionalProperties"),
    ("requried", "required"),
    ("regex", "pattern"),
];

/// Lints every schema of the catalog, and the catalog's own consistency.
pub fn lint_catalog(catalog: &Catalog) -> Vec<Finding> {
    let mut findings = lint_schema(catalog.headers_schema(), catalog.headers_path(), false);
    for topic in catalog.topics() {
        findings.extend(lint_schema(
            &topic.schema,
            &topic.schema_path,
            topic.spec.closed,
        ));
        findings.extend(lint_examples(topic));
        if let Some(pointer) = &topic.spec.key.pointer
            && !pointer_is_required(&topic.schema, pointer)
        {
            findings.push(Finding {
                severity: Severity::Warning,
                file: topic.schema_path.clone(),
                pointer: pointer.clone(),
                rule: "optional-key",
                message: format!(
                    "the key comes from `{pointer}`, which the schema does not require: a message without it has no key"
                ),
            });
        }
    }
    findings
}

/// The schema's `examples` against the topic's own payload check: each must pass (an error
/// otherwise: an example is what producers copy), and an owned topic must have at least one (an
/// error on a `closed` topic, a warning on others).
pub fn lint_examples(topic: &crate::catalog::Topic) -> Vec<Finding> {
    let mut out = Vec::new();
    let file = topic.schema_path.clone();
    let examples = topic.schema.get("examples");
    match examples.and_then(Value::as_array) {
        Some(list) if !list.is_empty() => {
            for (i, example) in list.iter().enumerate() {
                let Err(e) = topic.contract().check_event(example) else {
                    continue;
                };
                let problems: Vec<String> = e
                    .violations()
                    .iter()
                    .map(|v| {
                        let at = if v.instance_path.is_empty() {
                            "/"
                        } else {
                            v.instance_path.as_str()
                        };
                        format!("{at}: {} ({})", v.message, v.rule)
                    })
                    .collect();
                out.push(Finding {
                    severity: Severity::Error,
                    file: file.clone(),
                    pointer: format!("/examples/{i}"),
                    rule: "invalid-example",
                    message: format!(
                        "example {i} breaks the schema it documents: {}",
                        problems.join("; ")
                    ),
                });
            }
        }
        _ if examples.is_some_and(|e| !e.is_array()) => out.push(Finding {
            severity: Severity::Error,
            file,
            pointer: "/examples".to_owned(),
            rule: "invalid-example",
            message: "`examples` must be an array of example payloads".to_owned(),
        }),
        _ if topic.spec.owner == crate::catalog::Owner::Owned => out.push(Finding {
            severity: if topic.spec.closed {
                Severity::Error
            } else {
                Severity::Warning
            },
            file,
            pointer: String::new(),
            rule: "missing-examples",
            message: "an owned topic needs at least one example payload in `examples`: \
                      producers copy it, and `evkit verify` and the generated types' tests \
                      start from it"
                .to_owned(),
        }),
        _ => {}
    }
    out
}

/// Lints one schema document. `closed` asks every object schema to reject unknown fields.
pub fn lint_schema(schema: &Value, file: &Path, closed: bool) -> Vec<Finding> {
    let mut lint = Lint {
        file,
        closed,
        findings: Vec::new(),
    };
    if let Value::Object(root) = schema {
        if !root.contains_key("$id") && !root.contains_key("id") {
            lint.push(
                Severity::Warning,
                "",
                "missing-id",
                "the schema has no `$id`".to_owned(),
            );
        }
        if !root.contains_key("title") {
            lint.push(
                Severity::Warning,
                "",
                "missing-title",
                "the schema has no `title` (codegen names the type after it)".to_owned(),
            );
        }
    }
    lint.schema(schema, "");
    lint.findings
}

struct Lint<'a> {
    file: &'a Path,
    closed: bool,
    findings: Vec<Finding>,
}

impl Lint<'_> {
    fn push(&mut self, severity: Severity, pointer: &str, rule: &'static str, message: String) {
        self.findings.push(Finding {
            severity,
            file: self.file.to_path_buf(),
            pointer: pointer.to_owned(),
            rule,
            message,
        });
    }

    /// Every subschema of `schema` (the one walk of [`crate::walk`]): its keywords, then the
    /// object rules.
    fn schema(&mut self, schema: &Value, at: &str) {
        for (ptr, sub) in crate::walk::subschemas(schema) {
            let Value::Object(map) = sub else { continue };
            let base = format!("{at}{ptr}");
            for (key, value) in map {
                let here = format!("{base}/{}", escape(key));
                self.keyword(key, value, &here);
            }
            self.object_rules(map, &base);
            self.pattern_lengths(map, &base);
        }
    }

    /// A `pattern` anchored at both ends whose lengths miss `minLength..=maxLength`: no string
    /// passes both, so an optional field can never be present and a required one refuses
    /// every message. Validators say nothing about it; only messages fail.
    fn pattern_lengths(&mut self, map: &Map<String, Value>, at: &str) {
        let Some(pattern) = map.get("pattern").and_then(Value::as_str) else {
            return;
        };
        let Some((fewest, most)) = crate::pattern::lengths(pattern) else {
            return;
        };
        let bound = |k: &str| {
            map.get(k)
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
        };
        let refused = match (bound("minLength"), bound("maxLength")) {
            (_, Some(max)) if fewest > max => Some(format!("`maxLength: {max}`")),
            (Some(min), _) if most.is_some_and(|most| most < min) => {
                Some(format!("`minLength: {min}`"))
            }
            _ => None,
        };
        if let Some(refused) = refused {
            let most = most.map_or_else(|| "more".to_owned(), |m| m.to_string());
            self.push(
                Severity::Error,
                &format!("{at}/pattern"),
                "pattern-length-conflict",
                format!(
                    "`pattern` {pattern} matches only strings of {fewest} to {most} characters, \
                     which {refused} refuses: no string passes both (an optional field can never \
                     be present, a required one makes every message invalid)"
                ),
            );
        }
    }

    /// One keyword of one subschema (its subschemas are visited by the walk).
    fn keyword(&mut self, key: &str, value: &Value, here: &str) {
        match key {
            _ if crate::walk::SUBSCHEMA.contains(&key)
                || crate::walk::SUBSCHEMA_ARRAY.contains(&key)
                || (crate::walk::SUBSCHEMA_MAP.contains(&key) && key != "patternProperties") => {}
            "patternProperties" => {
                if let Value::Object(props) = value {
                    for pattern in props.keys() {
                        let at = format!("{here}/{}", escape(pattern));
                        self.regex(pattern, &at);
                    }
                }
            }
            "pattern" => {
                if let Some(p) = value.as_str() {
                    self.regex(p, here);
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "const"
            | "multipleOf" => self.safe_integer(key, value, here),
            "enum" => {
                for v in value.as_array().into_iter().flatten() {
                    self.safe_integer(key, v, here);
                }
            }
            "format" => {
                if let Some(f) = value.as_str().filter(|f| !FORMATS.contains(f)) {
                    let advice = match f {
                        "int" | "integer" | "int32" | "int64" | "long" => {
                            " (use `\"type\": \"integer\"`: validators ignore this format, so floats pass)"
                        }
                        _ => " (validators ignore unknown formats: nothing is checked)",
                    };
                    self.push(
                        Severity::Error,
                        here,
                        "unknown-format",
                        format!("format `{f}` is not a known format{advice}"),
                    );
                }
            }
            _ if KEYWORDS.contains(&key) || key.starts_with("x-") => {}
            _ => {
                // Property names inside `properties` never reach here (the walk visits their
                // schemas): this key sits where only keywords belong.
                let hint = DID_YOU_MEAN
                    .iter()
                    .find(|(wrong, _)| *wrong == key)
                    .map(|(_, right)| format!(" (did you mean `{right}`?)"))
                    .unwrap_or_default();
                self.push(
                    Severity::Error,
                    here,
                    "unknown-keyword",
                    format!("`{key}` is not a JSON Schema keyword; validators ignore it{hint}"),
                );
            }
        }
    }

    /// A number in `key` beyond 2^53 − 1: JavaScript, Ajv, jq and every consumer that reads JSON
    /// numbers as doubles cannot enforce it, and values past 2^53 lose precision there (Ajv let
    /// through every break of an int64 `maximum` in `benches/validators/compare.py`).
    fn safe_integer(&mut self, key: &str, value: &Value, here: &str) {
        const SAFE: f64 = 9_007_199_254_740_991.0;
        let Value::Number(n) = value else {
            return;
        };
        let beyond = match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u > MAX_SAFE_INTEGER,
            (None, Some(i), _) => i.unsigned_abs() > MAX_SAFE_INTEGER,
            (None, None, Some(f)) => f.is_finite() && f.abs() > SAFE,
            _ => false,
        };
        if beyond {
            self.push(
                Severity::Warning,
                here,
                "unsafe-integer",
                format!(
                    "`{key}` {n} is beyond 2^53 − 1 ({MAX_SAFE_INTEGER}): consumers that read JSON numbers as doubles (JavaScript and Ajv, jq) cannot enforce it and round values near it; bound the field at ±{MAX_SAFE_INTEGER}, or carry 64-bit values as strings"
                ),
            );
        }
    }

    fn regex(&mut self, pattern: &str, here: &str) {
        if let Err(e) = regress::Regex::with_flags(pattern, "u") {
            self.push(
                Severity::Error,
                here,
                "ecma-regex",
                format!("pattern is not an ECMA-262 regular expression ({e}); other validators and generators will reject it"),
            );
        }
    }

    fn object_rules(&mut self, map: &Map<String, Value>, at: &str) {
        let is_object = map.get("type").and_then(Value::as_str) == Some("object")
            || map.contains_key("properties");
        if !is_object {
            return;
        }
        let has_properties = map
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
        if has_properties && !map.contains_key("required") {
            self.push(
                Severity::Warning,
                at,
                "missing-required",
                "object with `properties` but no `required`: every field is optional".to_owned(),
            );
        }
        let closed = |k: &str| map.get(k) == Some(&Value::Bool(false));
        if self.closed
            && has_properties
            && !closed("additionalProperties")
            && !closed("unevaluatedProperties")
        {
            self.push(
                Severity::Error,
                at,
                "open-object",
                "the catalog marks this topic `closed`, but this object accepts unknown fields (add `\"additionalProperties\": false`)".to_owned(),
            );
        }
    }
}

fn escape(segment: &str) -> String {
    crate::pointer::escape(segment).into_owned()
}

fn pointer_is_required(schema: &Value, pointer: &str) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    let parent_schema = if parent.is_empty() {
        Some(schema)
    } else {
        property_schema(schema, parent)
    };
    parent_schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|v| v.as_str() == Some(last)))
}
