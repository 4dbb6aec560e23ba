//! Where subschemas live in a JSON Schema document: the one definition every walker of the
//! project uses (catalog `$ref` checks, lint, codegen's pattern rewrite, the generators' site
//! walk). Values that are data, not schemas (`enum`, `const`, `examples`, `default`, unknown
//! keywords), are never entered.

use serde_json::Value;

use crate::pointer::escape;

/// Keywords whose value is one subschema (`items` also takes an array of them, before 2020-12).
pub const SUBSCHEMA: &[&str] = &[
    "additionalItems",
    "additionalProperties",
    "contains",
    "contentSchema",
    "else",
    "if",
    "items",
    "not",
    "propertyNames",
    "then",
    "unevaluatedItems",
    "unevaluatedProperties",
];

/// Keywords whose value is an array of subschemas.
pub const SUBSCHEMA_ARRAY: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];

/// Keywords whose value maps names to subschemas (`dependencies` also to arrays of names).
pub const SUBSCHEMA_MAP: &[&str] = &[
    "$defs",
    "definitions",
    "dependencies",
    "dependentSchemas",
    "patternProperties",
    "properties",
];

/// One immediate subschema of a schema object.
#[derive(Debug, Clone, Copy)]
pub struct Child<'a> {
    /// The keyword that holds it (`properties`, `items`, `anyOf`, ...).
    pub keyword: &'a str,
    /// The property name or pattern under a map keyword (`properties/<name>`).
    pub name: Option<&'a str>,
    /// The position under an array keyword (`anyOf/<i>`, `items/<i>`).
    pub index: Option<usize>,
    /// The subschema (an object or a boolean).
    pub schema: &'a Value,
}

impl Child<'_> {
    /// This child's pointer relative to its parent (`/properties/a~1b`, `/anyOf/0`).
    pub fn suffix(&self) -> String {
        let mut out = format!("/{}", escape(self.keyword));
        if let Some(n) = self.name {
            out.push('/');
            out.push_str(&escape(n));
        }
        if let Some(i) = self.index {
            out.push('/');
            out.push_str(&i.to_string());
        }
        out
    }
}

fn is_schema(v: &Value) -> bool {
    v.is_object() || v.is_boolean()
}

/// The immediate subschemas of `schema`, in the document's key order.
pub fn children(schema: &Value) -> Vec<Child<'_>> {
    let mut out = Vec::new();
    let Some(map) = schema.as_object() else {
        return out;
    };
    for (keyword, value) in map {
        let keyword = keyword.as_str();
        if SUBSCHEMA.contains(&keyword) || SUBSCHEMA_ARRAY.contains(&keyword) {
            match value {
                Value::Array(items) => {
                    for (i, s) in items.iter().enumerate().filter(|(_, s)| is_schema(s)) {
                        out.push(Child {
                            keyword,
                            name: None,
                            index: Some(i),
                            schema: s,
                        });
                    }
                }
                s if is_schema(s) && SUBSCHEMA.contains(&keyword) => out.push(Child {
                    keyword,
                    name: None,
                    index: None,
                    schema: s,
                }),
                _ => {}
            }
        } else if SUBSCHEMA_MAP.contains(&keyword)
            && let Value::Object(entries) = value
        {
            for (name, s) in entries.iter().filter(|(_, s)| is_schema(s)) {
                out.push(Child {
                    keyword,
                    name: Some(name),
                    index: None,
                    schema: s,
                });
            }
        }
    }
    out
}

/// Every subschema of `document` (the root first, then depth first), with its pointer.
pub fn subschemas(document: &Value) -> Vec<(String, &Value)> {
    fn go<'a>(s: &'a Value, at: &str, out: &mut Vec<(String, &'a Value)>) {
        out.push((at.to_owned(), s));
        for c in children(s) {
            go(c.schema, &format!("{at}{}", c.suffix()), out);
        }
    }
    let mut out = Vec::new();
    go(document, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::subschemas;

    #[test]
    fn every_subschema_position_and_no_data_position() {
        let doc = json!({
            "properties": {"a/b": {"type": "string"}, "pattern": {"pattern": "x"}},
            "items": [{"const": 1}, true],
            "prefixItems": [{}],
            "additionalProperties": false,
            "dependencies": {"a": ["b"], "c": {"minimum": 1}},
            "allOf": [{"anyOf": [{"oneOf": [{}]}]}],
            "if": {}, "then": {}, "else": {}, "not": {},
            "$defs": {"d": {"$ref": "#"}},
            "enum": [{"type": "string"}],
            "examples": [{"properties": {}}],
            "x-vendor": {"type": "string"}
        });
        let got: Vec<String> = subschemas(&doc).into_iter().map(|(p, _)| p).collect();
        for want in [
            "",
            "/properties/a~1b",
            "/properties/pattern",
            "/items/0",
            "/items/1",
            "/prefixItems/0",
            "/additionalProperties",
            "/dependencies/c",
            "/allOf/0/anyOf/0/oneOf/0",
            "/if",
            "/then",
            "/else",
            "/not",
            "/$defs/d",
        ] {
            assert!(
                got.contains(&want.to_owned()),
                "{want} missing from {got:?}"
            );
        }
        assert_eq!(got.len(), 16, "{got:?}");
        assert!(!got.iter().any(|p| p.starts_with("/enum")
            || p.starts_with("/examples")
            || p.starts_with("/x-vendor")
            || p == "/dependencies/a"));
    }
}
