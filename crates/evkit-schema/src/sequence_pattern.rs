//! The `x-evkit-sequence-pattern` keyword of the build-time validators `evkit generate` writes
//! (feature `buildtime`): `pattern`, matched as jsonschema 0.61's runtime validator matches it.
//!
//! jsonschema's `validator` macro is published only for 0.60, which runs every `pattern` through
//! its regex engine. Most patterns of event schemas are a sequence of character classes
//! (`^[0-9A-Za-z_-]+$`, `^[a-z][a-z0-9-]*$`); jsonschema 0.61 matches those byte by byte with
//! `jsonschema_regex::Sequence` and leaves to the `regex` crate only what a sequence cannot
//! decide (non-ASCII text). `evkit generate` renames such a `pattern` to this keyword in the
//! schema it hands the macro and registers [`keyword`] for it; `Precompiled::schema` keeps the
//! schema as written, which is what the catalog matches. The generated code thus does for these
//! patterns what the runtime validator does, several times faster than 0.60's regex path, and
//! with far less code on the valid path.
//!
//! ```
//! use jsonschema_buildtime::paths::Location;
//! use serde_json::{Map, json};
//!
//! let pattern = json!("^[a-z][a-z0-9-]*$");
//! let keyword = evkit_schema::sequence_pattern::keyword(&Map::new(), &pattern, Location::new())
//!     .map_err(|e| e.to_string())?;
//! assert!(keyword.is_valid(&json!("brno-1")));
//! assert!(!keyword.is_valid(&json!("1brno")));
//! assert!(!keyword.is_valid(&json!("brnö"))); // non-ASCII: the regex crate decides
//! assert!(keyword.is_valid(&json!(42))); // like `pattern`, only strings are constrained
//! # Ok::<(), String>(())
//! ```

use jsonschema_buildtime::{Keyword, ValidationError, paths::Location};
use serde_json::{Map, Value};

/// A compiled sequence pattern. A part that did not compile is `None`, and then the keyword
/// rejects: a build-time validator's "invalid" is always checked again by the runtime validator
/// (see [`crate::Precompiled`]), so rejecting is the safe answer.
struct SequencePattern {
    sequence: Option<jsonschema_regex::Sequence>,
    fallback: Option<regex::Regex>,
}

impl SequencePattern {
    fn matches(&self, text: &str) -> bool {
        match self
            .sequence
            .as_ref()
            .and_then(|s| s.is_match(text.as_bytes()))
        {
            Some(matched) => matched,
            None => self.fallback.as_ref().is_some_and(|r| r.is_match(text)),
        }
    }
}

impl<'i> Keyword<'i> for SequencePattern {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        if self.is_valid(instance) {
            Ok(())
        } else {
            Err(ValidationError::custom("does not match the pattern"))
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        match instance {
            Value::String(text) => self.matches(text),
            _ => true,
        }
    }
}

/// The keyword's factory, for the macro's `keywords` option: `value` is the pattern (ECMA-262
/// syntax, as in `pattern`). Never fails; a pattern that does not compile rejects every string,
/// leaving the answer to the runtime validator.
///
/// # Errors
///
/// None: the `Result` is the shape jsonschema's keyword factories have.
pub fn keyword<'a>(
    _parent: &'a Map<String, Value>,
    value: &'a Value,
    _path: Location,
) -> Result<Box<dyn for<'i> Keyword<'i>>, ValidationError<'a>> {
    let translated = value
        .as_str()
        .and_then(|p| jsonschema_regex::to_rust_regex(p).ok());
    Ok(Box::new(SequencePattern {
        sequence: translated
            .as_deref()
            .and_then(jsonschema_regex::Sequence::compile),
        fallback: translated
            .as_deref()
            .and_then(|t| regex::Regex::new(t).ok()),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    const PATTERNS: &[&str] = &[
        "^[0-9A-Za-z_-]+$",
        "^[a-z][a-z0-9-]*$",
        "^[A-Za-z0-9._-]+$",
        "^[._-]",
        "^\\d{3}-[a-z]{2,4}$",
        "^\\w+$",
        "^[^\\s]+$",
    ];

    fn runtime(pattern: &str) -> jsonschema::Validator {
        jsonschema::validator_for(&json!({ "pattern": pattern })).unwrap()
    }

    fn build_time(pattern: &str) -> Box<dyn for<'i> jsonschema_buildtime::Keyword<'i>> {
        super::keyword(&Map::new(), &json!(pattern), super::Location::new())
            .map_err(|e| e.to_string())
            .unwrap()
    }

    proptest! {
        /// The keyword answers as jsonschema 0.61's runtime `pattern` does, on ASCII text near
        /// the classes and on non-ASCII text (the regex fallback).
        #[test]
        fn agrees_with_the_runtime_pattern(
            i in 0..PATTERNS.len(),
            text in "[A-Za-z0-9._ \u{e9}\u{3b1}\u{a0}-]{0,8}",
        ) {
            let value = Value::String(text);
            prop_assert_eq!(
                build_time(PATTERNS[i]).is_valid(&value),
                runtime(PATTERNS[i]).is_valid(&value),
                "pattern {} on {}", PATTERNS[i], value
            );
        }
    }

    #[test]
    fn every_catalog_style_pattern_is_a_sequence() {
        for p in PATTERNS {
            let t = jsonschema_regex::to_rust_regex(p).unwrap();
            assert!(jsonschema_regex::Sequence::compile(&t).is_some(), "{p}");
        }
    }

    #[test]
    fn validate_agrees_with_is_valid_and_other_types_pass() {
        let k = build_time("^[a-z]+$");
        for v in [json!("abc"), json!("aBc"), json!(""), json!(1), json!(null)] {
            assert_eq!(k.validate(&v).is_ok(), k.is_valid(&v), "{v}");
        }
        assert!(k.is_valid(&json!(["A"])));
        assert!(!k.is_valid(&json!("A")));
    }

    #[test]
    fn a_pattern_that_does_not_compile_rejects_every_string() {
        for bad in [json!("(unclosed"), json!(7)] {
            let k = super::keyword(&Map::new(), &bad, super::Location::new())
                .map_err(|e| e.to_string())
                .unwrap();
            assert!(!k.is_valid(&json!("anything")), "{bad}");
            assert!(k.is_valid(&json!(1)), "{bad}");
        }
    }
}
