//! A direct check for the plainest string schemas, the ones header values and identity fields
//! use: `{"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._-]+$"}`,
//! an `enum` of strings, `not` of such a pattern. It reads the `&str` in place, where a
//! validator needs a `Value::String` (an allocation and a copy) and walks its keyword tree.
//!
//! Only this subset compiles into a [`StringRule`]; anything else (another keyword, a pattern
//! that is not one character class, an escape in a class, a non-ASCII class member, `const`,
//! `format`) gets none, and the caller asks the validator compiled from the same schema. Within
//! the subset the rule answers exactly as that validator does for every string: lengths are
//! counted in code points, a class holds ASCII only, and `^` and `$` anchor at the ends of the
//! text (a trailing line feed is not an end). The tests hold it to the validator on generated
//! strings and rules.

use serde_json::Value;

use crate::shape::ANNOTATIONS;

/// A string schema checked without a validator; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StringRule {
    /// `minLength`, in code points.
    min: usize,
    /// `maxLength`, in code points.
    max: usize,
    /// The pattern the text must match (a schema object has one `pattern` at most).
    must: Option<Class>,
    /// The pattern the text must not match (`not: {"pattern": ...}`).
    must_not: Option<Class>,
    /// `enum`: the text must be one of these.
    one_of: Option<Vec<String>>,
}

/// A pattern made of one ASCII character class.
#[derive(Debug, Clone, PartialEq)]
struct Class {
    /// `true` at each ASCII byte in the class (never at a byte of 0x80 or above, which only
    /// non-ASCII text has).
    set: [bool; 256],
    span: Span,
}

/// How much of the text a [`Class`] pattern covers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Span {
    /// `^[...]+$`: every character in the class, at least one.
    OneOrMore,
    /// `^[...]*$`: every character in the class.
    Any,
    /// `^[...]`: the first character in the class.
    First,
}

impl StringRule {
    /// The rule for `schema`, or `None` when it is outside the subset (see the module docs).
    pub(crate) fn compile(schema: &Value) -> Option<StringRule> {
        let obj = schema.as_object()?;
        let mut rule = StringRule {
            min: 0,
            max: usize::MAX,
            must: None,
            must_not: None,
            one_of: None,
        };
        for (keyword, value) in obj {
            match keyword.as_str() {
                "type" => {
                    if value.as_str() != Some("string") {
                        return None;
                    }
                }
                "minLength" => rule.min = usize::try_from(value.as_u64()?).ok()?,
                "maxLength" => rule.max = usize::try_from(value.as_u64()?).ok()?,
                "pattern" => rule.must = Some(Class::compile(value.as_str()?)?),
                "not" => {
                    let not = value.as_object()?;
                    if not.len() != 1 {
                        return None;
                    }
                    rule.must_not = Some(Class::compile(not.get("pattern")?.as_str()?)?);
                }
                "enum" => {
                    let members = value
                        .as_array()?
                        .iter()
                        .map(|m| m.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()?;
                    if members.is_empty() {
                        return None;
                    }
                    rule.one_of = Some(members);
                }
                other if ANNOTATIONS.contains(&other) => {}
                _ => return None,
            }
        }
        Some(rule)
    }

    /// Whether `text` is valid by the rule.
    pub(crate) fn accepts(&self, text: &str) -> bool {
        let bytes = text.len();
        // A code point takes one to four bytes: count them only when the bytes cannot tell.
        if bytes < self.min || bytes / 4 > self.max {
            return false;
        }
        if (bytes > self.max || bytes / 4 < self.min) && !self.length_fits(text) {
            return false;
        }
        self.must
            .as_ref()
            .is_none_or(|c| c.matches(text.as_bytes()))
            && !self
                .must_not
                .as_ref()
                .is_some_and(|c| c.matches(text.as_bytes()))
            && self
                .one_of
                .as_ref()
                .is_none_or(|m| m.iter().any(|s| s == text))
    }

    #[cold]
    fn length_fits(&self, text: &str) -> bool {
        (self.min..=self.max).contains(&text.chars().count())
    }
}

impl Class {
    /// `^[...]+$`, `^[...]*$` or `^[...]`, where the class lists printable ASCII characters
    /// and ranges between two letters or two digits, with `-` only first or last; `None` for
    /// anything else.
    fn compile(pattern: &str) -> Option<Class> {
        let rest = pattern.strip_prefix("^[")?;
        let (class, tail) = rest.split_once(']')?;
        let span = match tail {
            "+$" => Span::OneOrMore,
            "*$" => Span::Any,
            "" => Span::First,
            _ => return None,
        };
        let b = class.as_bytes();
        if b.is_empty() || b[0] == b'^' {
            return None;
        }
        let mut set = [false; 256];
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if !(0x20..0x7f).contains(&c) || matches!(c, b'[' | b'\\') {
                return None;
            }
            if b.get(i + 1) == Some(&b'-') && i + 2 < b.len() {
                let hi = b[i + 2];
                let same_kind = (c.is_ascii_lowercase() && hi.is_ascii_lowercase())
                    || (c.is_ascii_uppercase() && hi.is_ascii_uppercase())
                    || (c.is_ascii_digit() && hi.is_ascii_digit());
                if !same_kind || hi < c {
                    return None;
                }
                set[usize::from(c)..=usize::from(hi)].fill(true);
                i += 3;
            } else {
                if c == b'-' && i != 0 && i != b.len() - 1 {
                    return None;
                }
                set[usize::from(c)] = true;
                i += 1;
            }
        }
        Some(Class { set, span })
    }

    fn has(&self, byte: u8) -> bool {
        self.set[usize::from(byte)]
    }

    fn matches(&self, text: &[u8]) -> bool {
        match self.span {
            Span::OneOrMore => !text.is_empty() && self.has_all(text),
            Span::Any => self.has_all(text),
            Span::First => text.first().is_some_and(|&b| self.has(b)),
        }
    }

    /// Whether every byte of `text` is in the class: eight lookups at a time without a branch
    /// between them, then the rest one by one.
    fn has_all(&self, text: &[u8]) -> bool {
        let mut chunks = text.chunks_exact(8);
        for chunk in &mut chunks {
            if !chunk.iter().fold(true, |all, &b| all & self.has(b)) {
                return false;
            }
        }
        chunks.remainder().iter().all(|&b| self.has(b))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::StringRule;

    /// The string schemas of the sample header schema, and others in and near the subset.
    fn rules() -> Vec<Value> {
        let headers: Value =
            serde_json::from_str(include_str!("../../../schemas/headers.json")).unwrap();
        let mut rules = vec![
            headers["properties"]["x-rh-identity"].clone(),
            headers["properties"]["x-rh-insights-request-id"].clone(),
            headers["$defs"]["identity"]["properties"]["identity"]["properties"]["org_id"].clone(),
            headers["$defs"]["identity"]["properties"]["identity"]["properties"]["type"].clone(),
        ];
        rules.extend([
            json!({"type": "string", "pattern": "^[a-c]*$"}),
            json!({"type": "string", "pattern": "^[-a]+$", "maxLength": 2}),
            json!({"type": "string", "pattern": "^[b.-]"}),
            json!({"type": "string", "pattern": "^[9Z ]+$", "minLength": 2}),
            json!({"type": "string", "minLength": 2, "maxLength": 3}),
            json!({"type": "string", "maxLength": 0}),
            json!({"type": "string", "enum": ["a", "é", "ab", ""]}),
            json!({"not": {"pattern": "^[a-z]*$"}, "title": "t"}),
            json!({"pattern": "^[a]+$", "not": {"pattern": "^[a]"}}),
        ]);
        rules
    }

    fn validator(schema: &Value) -> jsonschema::Validator {
        crate::validator::runtime(schema).unwrap()
    }

    #[test]
    fn the_sample_rules_compile() {
        for schema in rules() {
            assert!(StringRule::compile(&schema).is_some(), "{schema}");
        }
    }

    #[test]
    fn what_is_outside_the_subset_gets_no_rule() {
        for schema in [
            json!({"type": "integer"}),
            json!({"type": ["string", "null"]}),
            json!({"type": "string", "format": "uuid"}),
            json!({"type": "string", "const": "a"}),
            json!({"type": "string", "enum": ["a", 1]}),
            json!({"type": "string", "enum": []}),
            json!({"type": "string", "minLength": 1.5}),
            json!({"type": "string", "minLength": -1}),
            json!({"pattern": "^[a-z]+"}),
            json!({"pattern": "[a-z]+$"}),
            json!({"pattern": "^[^a-z]+$"}),
            json!({"pattern": "^[\\w]+$"}),
            json!({"pattern": "^[a-9]+$"}),
            json!({"pattern": "^[z-a]+$"}),
            json!({"pattern": "^[a-c-e]+$"}),
            json!({"pattern": "^[]+$"}),
            json!({"pattern": "^[é]+$"}),
            json!({"pattern": "^[a]{2}$"}),
            json!({"not": {"pattern": "^[a]", "minLength": 1}}),
            json!({"not": {"enum": ["a"]}}),
            json!({"$ref": "#/x"}),
            json!(true),
        ] {
            assert_eq!(StringRule::compile(&schema), None, "{schema}");
        }
    }

    /// Strings near every rule's edges: its class members and neighbours, multi-byte text (to
    /// tell bytes from code points), line feeds next to the anchors.
    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop::sample::select(vec![
                "a", "b", "c", "z", "A", "Z", "0", "9", "_", ".", "-", " ", "\n", "é", "α", "€",
                "😀", "User", "System", "X509", "\u{0}", "[", "\\", "^",
            ]),
            0..8,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        /// Every rule answers as the validator compiled from its schema.
        #[test]
        fn agrees_with_the_validator(text in text(), i in 0..13usize) {
            let schema = &rules()[i];
            let rule = StringRule::compile(schema).unwrap();
            prop_assert_eq!(
                rule.accepts(&text),
                validator(schema).is_valid(&Value::String(text.clone())),
                "{} on {:?}", schema, text
            );
        }

        /// Generated rules too: random classes, spans, lengths and enums.
        #[test]
        fn generated_rules_agree_with_the_validator(
            members in proptest::collection::vec(
                prop::sample::select(vec!["a", "b", "z", "A", "0", "9", "_", ".", " ", "a-c", "0-9", "A-Z"]),
                1..4,
            ),
            dash in 0..3u8,
            span in prop::sample::select(vec!["+$", "*$", ""]),
            lengths in (0..4usize, 0..6usize),
            negate in any::<bool>(),
            one_of in proptest::option::of(proptest::collection::vec(text(), 1..3)),
            texts in proptest::collection::vec(text(), 8),
        ) {
            let class = match dash {
                0 => members.concat(),
                1 => format!("-{}", members.concat()),
                _ => format!("{}-", members.concat()),
            };
            let pattern = format!("^[{class}]{span}");
            let mut schema = json!({"type": "string", "minLength": lengths.0, "maxLength": lengths.1});
            if negate {
                schema["not"] = json!({"pattern": pattern});
            } else {
                schema["pattern"] = json!(pattern);
            }
            if let Some(one_of) = one_of {
                schema["enum"] = json!(one_of);
            }
            let rule = StringRule::compile(&schema);
            prop_assert!(rule.is_some(), "{} should compile", schema);
            let (rule, full) = (rule.unwrap(), validator(&schema));
            for text in texts {
                prop_assert_eq!(
                    rule.accepts(&text),
                    full.is_valid(&Value::String(text.clone())),
                    "{} on {:?}", schema, text
                );
            }
        }
    }

    #[test]
    fn lengths_count_code_points_at_the_bounds() {
        let rule = StringRule::compile(&json!({"minLength": 2, "maxLength": 3})).unwrap();
        let full = validator(&json!({"minLength": 2, "maxLength": 3}));
        for text in [
            "é",
            "éé",
            "ééé",
            "éééé",
            "😀😀😀",
            "😀😀😀😀",
            "ab",
            "abcd",
            "a😀",
        ] {
            assert_eq!(rule.accepts(text), full.is_valid(&json!(text)), "{text:?}");
        }
    }
}
