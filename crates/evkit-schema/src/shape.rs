//! A streaming check for documents whose schema is a tree of named object properties (the
//! identity document's is): it parses and checks in one pass, building no `Value`.
//!
//! Only a subset of JSON Schema compiles into a [`Shape`]: objects with `type: "object"`,
//! `properties` and `required`; leaves that only name JSON types (`object`, `array`, `string`,
//! `boolean`, `null`); and string leaves (`type: "string"` with `minLength`, `maxLength`,
//! `pattern`, `enum`, `const`, `format`), which are checked by a validator compiled from the
//! leaf with the same options as every other schema. Annotations (`title`, `description`, ...)
//! are ignored. A schema with anything else gets no shape, and its documents are checked the
//! ordinary way.
//!
//! The check only ever *accepts*: a document it accepts is valid by the full schema (every
//! occurrence of a duplicated key is checked, values it does not check are parsed exactly as
//! `serde_json::Value` parses them, numbers and escapes included). Anything it does not accept
//! goes to the full validator, which gives the verdict and the errors.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// JSON types a type-only leaf accepts (bit per [`Kind`]).
type Kinds = u8;

/// The kind of a JSON value, as a bit.
#[derive(Clone, Copy)]
enum Kind {
    Object = 1,
    Array = 2,
    String = 4,
    Boolean = 8,
    Null = 16,
    /// Numbers are never accepted by a type-only leaf (`integer` depends on the draft).
    Number = 32,
}

/// A compiled check; see the module docs.
pub(crate) enum Shape {
    /// An object: its named properties (at most 64, required ones included) and the bit mask of
    /// the required ones. Other properties may be anything.
    Object {
        properties: Vec<(String, Shape)>,
        required: u64,
    },
    /// Any value of these kinds.
    Kinds(Kinds),
    /// A string the validator accepts; `capture` says which [`Found`] slot keeps it.
    Str {
        validator: jsonschema::Validator,
        capture: Option<usize>,
    },
}

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "$comment",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Keywords a string leaf may have beside `type`.
const STRING_KEYWORDS: &[&str] = &[
    "minLength",
    "maxLength",
    "pattern",
    "enum",
    "const",
    "format",
];

impl Shape {
    /// The shape of `schema` (a subschema of a document whose `$schema` is `dialect`), or `None`
    /// when it uses anything outside the subset. String leaves at the paths in `captures` (from
    /// the root) are kept in the [`Found`] slot of the same index.
    pub(crate) fn compile(
        schema: &Value,
        dialect: Option<&Value>,
        captures: &[&[&str]],
    ) -> Option<Shape> {
        Shape::compile_at(schema, dialect, captures, &mut Vec::new())
    }

    fn compile_at(
        schema: &Value,
        dialect: Option<&Value>,
        captures: &[&[&str]],
        path: &mut Vec<String>,
    ) -> Option<Shape> {
        let all = Kind::Object as u8
            | Kind::Array as u8
            | Kind::String as u8
            | Kind::Boolean as u8
            | Kind::Null as u8;
        let obj = match schema {
            Value::Bool(true) => return Some(Shape::Kinds(all)),
            Value::Object(o) => o,
            _ => return None,
        };
        let keywords: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| !ANNOTATIONS.contains(k))
            .collect();
        if keywords.is_empty() {
            return Some(Shape::Kinds(all));
        }
        let ty = obj.get("type");
        if ty.and_then(Value::as_str) == Some("object")
            && keywords
                .iter()
                .all(|k| matches!(*k, "type" | "properties" | "required"))
        {
            let mut properties = Vec::new();
            if let Some(props) = obj.get("properties") {
                for (name, sub) in props.as_object()? {
                    path.push(name.clone());
                    let shape = Shape::compile_at(sub, dialect, captures, path);
                    path.pop();
                    properties.push((name.clone(), shape?));
                }
            }
            let mut required = 0u64;
            for name in obj
                .get("required")
                .map_or(Some(&Vec::new()), Value::as_array)?
            {
                let name = name.as_str()?;
                let i = if let Some(i) = properties.iter().position(|(n, _)| n == name) {
                    i
                } else {
                    let any = all | Kind::Number as u8;
                    properties.push((name.to_owned(), Shape::Kinds(any)));
                    properties.len() - 1
                };
                required |= 1u64.checked_shl(u32::try_from(i).ok()?)?;
            }
            if properties.len() > 64 {
                return None;
            }
            return Some(Shape::Object {
                properties,
                required,
            });
        }
        if keywords == ["type"] {
            let names: Vec<&str> = match ty? {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().map(Value::as_str).collect::<Option<_>>()?,
                _ => return None,
            };
            let mut kinds = 0;
            for n in names {
                kinds |= match n {
                    "object" => Kind::Object as u8,
                    "array" => Kind::Array as u8,
                    "string" => Kind::String as u8,
                    "boolean" => Kind::Boolean as u8,
                    "null" => Kind::Null as u8,
                    _ => return None,
                };
            }
            return Some(Shape::Kinds(kinds));
        }
        if ty.and_then(Value::as_str) == Some("string")
            && keywords
                .iter()
                .all(|k| *k == "type" || STRING_KEYWORDS.contains(k))
        {
            let mut leaf = obj.clone();
            if let Some(d) = dialect {
                leaf.insert("$schema".to_owned(), d.clone());
            }
            let validator = crate::validator::runtime(&Value::Object(leaf)).ok()?;
            let capture = captures
                .iter()
                .position(|c| c.iter().copied().eq(path.iter().map(String::as_str)));
            return Some(Shape::Str { validator, capture });
        }
        None
    }

    /// Checks the JSON `text`; `Some` with the captured strings when the document is valid by
    /// the shape, `None` when it is not or cannot tell (see the module docs).
    pub(crate) fn accept(&self, text: &str, slots: usize) -> Option<Found> {
        let mut found = Found(vec![None; slots]);
        let mut de = serde_json::Deserializer::from_str(text);
        Check {
            shape: self,
            found: &mut found,
        }
        .deserialize(&mut de)
        .ok()?;
        de.end().ok()?;
        Some(found)
    }
}

/// The strings a check captured, by slot.
#[derive(Debug)]
pub(crate) struct Found(pub Vec<Option<String>>);

/// Checks one value against a shape.
struct Check<'s, 'f> {
    shape: &'s Shape,
    found: &'f mut Found,
}

/// Why the check stopped (the reason does not matter: the full validator decides).
fn mismatch<E: de::Error>() -> E {
    E::custom("not accepted by the shape")
}

impl<'de> DeserializeSeed<'de> for Check<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.shape {
            Shape::Object {
                properties,
                required,
            } => d.deserialize_map(ObjectVisitor {
                properties,
                required: *required,
                found: self.found,
            }),
            Shape::Kinds(kinds) => {
                let kind = d.deserialize_any(SkipVisitor)?;
                if kinds & (kind as u8) == 0 {
                    return Err(mismatch());
                }
                Ok(())
            }
            Shape::Str { validator, capture } => {
                let s = d.deserialize_str(StrVisitor)?;
                let value = Value::String(s.into_owned());
                if !validator.is_valid(&value) {
                    return Err(mismatch());
                }
                if let (Some(i), Value::String(s)) = (capture, value)
                    && let Some(slot) = self.found.0.get_mut(*i)
                {
                    *slot = Some(s);
                }
                Ok(())
            }
        }
    }
}

struct ObjectVisitor<'s, 'f> {
    properties: &'s [(String, Shape)],
    required: u64,
    found: &'f mut Found,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = 0u64;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.properties.iter().position(|(n, _)| *n == *key) {
                Some(i) => {
                    map.next_value_seed(Check {
                        shape: &self.properties[i].1,
                        found: self.found,
                    })?;
                    seen |= 1 << i;
                }
                None => {
                    map.next_value_seed(Skip)?;
                }
            }
        }
        if seen & self.required != self.required {
            return Err(mismatch());
        }
        Ok(())
    }
}

/// A key, borrowed from the text when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Parses any value exactly as `serde_json::Value` would (strings with their escapes checked,
/// numbers with their range), keeping nothing but its kind. (`serde::de::IgnoredAny` would not
/// do: it skips strings without checking their escapes, so a lone surrogate passes it and fails
/// `Value`.)
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = Kind;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Boolean)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::String)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(Kind::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        while map.next_key_seed(KeySeed)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(Kind::Object)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    fn identity_schema() -> (Value, Value) {
        let doc: Value =
            serde_json::from_str(include_str!("../../../schemas/headers.json")).unwrap();
        let def = doc["$defs"]["identity"].clone();
        (doc, def)
    }

    fn shape() -> (Shape, jsonschema::Validator) {
        let (doc, def) = identity_schema();
        let shape = Shape::compile(
            &def,
            doc.get("$schema"),
            &[&["identity", "org_id"], &["identity", "type"]],
        )
        .expect("the identity schema is in the subset");
        let full = crate::validator::runtime(&crate::ref_schema(&doc, "#/$defs/identity")).unwrap();
        (shape, full)
    }

    #[test]
    fn a_valid_identity_is_accepted_and_its_fields_captured() {
        let (shape, _) = shape();
        let text = r#"{"identity":{"org_id":"o-1","type":"User","auth_type":"jwt-auth","internal":{"org_id":"o-1"},"user":{"username":"a\u00e9"},"account_number":"12"},"entitlements":{"x":[1,2.5,null,true]}}"#;
        let found = shape.accept(text, 2).expect("accepted");
        assert_eq!(
            found.0,
            vec![Some("o-1".to_owned()), Some("User".to_owned())]
        );
    }

    #[test]
    fn what_the_full_schema_rejects_is_never_accepted() {
        let (shape, full) = shape();
        for text in [
            r#"{"identity":{"type":"User"}}"#,
            r#"{"identity":{"org_id":"","type":"User"}}"#,
            r#"{"identity":{"org_id":"o 1","type":"User"}}"#,
            r#"{"identity":{"org_id":"o","type":"Robot"}}"#,
            r#"{"identity":{"org_id":"o","type":"User","internal":[]}}"#,
            r#"{"identity":{"org_id":"o","type":"User","internal":5}}"#,
            r#"{"identity":{"org_id":5,"type":"User"}}"#,
            r#"{"identity":[]}"#,
            r"[]",
            // A duplicate whose first occurrence breaks the rules.
            r#"{"identity":{"org_id":"o","org_id":"o 1","type":"User"}}"#,
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert!(!full.is_valid(&v), "{text} should be invalid");
            assert!(shape.accept(text, 2).is_none(), "{text} accepted");
        }
        // Not JSON to `Value`: a lone surrogate, a number out of range, trailing text.
        for text in [
            r#"{"identity":{"org_id":"o","type":"User","user":{"n":"\ud800"}}}"#,
            r#"{"identity":{"org_id":"o","type":"User"},"x":1e400}"#,
            r#"{"identity":{"org_id":"o","type":"User"}} x"#,
        ] {
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
            assert!(shape.accept(text, 2).is_none(), "{text} accepted");
        }
    }

    #[test]
    fn schemas_outside_the_subset_get_no_shape() {
        for schema in [
            json!({"type": "object", "additionalProperties": false}),
            json!({"type": "object", "properties": {"a": {"$ref": "#/x"}}}),
            json!({"type": "object", "properties": {"a": {"type": "integer"}}}),
            json!({"properties": {"a": {"type": "string"}}}),
            json!({"type": "object", "properties": {"a": {"type": "string", "minLength": 1, "oneOf": []}}}),
        ] {
            assert!(Shape::compile(&schema, None, &[]).is_none(), "{schema}");
        }
    }

    /// Every combination of a few identity-like pieces, valid and not, duplicates included.
    /// The full validator is the oracle: whatever the shape accepts parses as JSON and is valid
    /// by the full schema, and what it captured is what the document says; and every valid
    /// document without a duplicated key is accepted (so the check is really used).
    #[test]
    fn accepted_means_valid_and_valid_means_accepted() {
        let (shape, full) = shape();
        let orgs = [
            r#""o-1""#.to_owned(),
            r#""""#.to_owned(),
            r#""o 1""#.to_owned(),
            "7".to_owned(),
            r#""\u006f""#.to_owned(),
            format!(r#""{}""#, "a".repeat(64)),
            format!(r#""{}""#, "a".repeat(65)),
        ];
        let types = [r#""User""#, r#""System""#, r#""user""#, "null"];
        let extras = [
            "",
            r#","internal":{"org_id":"o"}"#,
            r#","internal":"o""#,
            r#","user":{"a":"\ud800"}"#,
            r#","user":{"a":"\ud83d\ude00"}"#,
            r#","account_number":5"#,
            r#","account_number":"12""#,
            r#","org_id":"o 1""#,
            r#","x":[1e400]"#,
            r#","x":[1e30,-0,{"y":null}]"#,
            r#","service_account":null"#,
        ];
        let (mut accepted, mut valid) = (0, 0);
        for org in &orgs {
            for ty in types {
                for extra in extras {
                    for with_org in [true, false] {
                        for dup in [true, false] {
                            let org_part = if with_org {
                                format!(r#""org_id":{org},"#)
                            } else {
                                String::new()
                            };
                            let dup_part = if dup { r#","type":"User""# } else { "" };
                            let inner = format!(r#"{org_part}"type":{ty}{extra}{dup_part}"#);
                            let text = format!(r#"{{"identity":{{{inner}}}}}"#);
                            let parsed = serde_json::from_str::<Value>(&text).ok();
                            let is_valid = parsed.as_ref().is_some_and(|v| full.is_valid(v));
                            valid += usize::from(is_valid);
                            match shape.accept(&text, 2) {
                                Some(found) => {
                                    accepted += 1;
                                    assert!(is_valid, "{text} accepted but invalid");
                                    let v = parsed.unwrap();
                                    assert_eq!(
                                        found.0[0].as_deref(),
                                        v["identity"]["org_id"].as_str()
                                    );
                                    assert_eq!(
                                        found.0[1].as_deref(),
                                        v["identity"]["type"].as_str()
                                    );
                                }
                                None => assert!(
                                    !is_valid || dup || extra.contains("\"org_id\":\"o 1\""),
                                    "{text} is valid and was not accepted"
                                ),
                            }
                        }
                    }
                }
            }
        }
        assert!(
            accepted > 50 && valid > accepted / 2,
            "{accepted} accepted, {valid} valid"
        );
    }
}
