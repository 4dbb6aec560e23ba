//! Compiling schemas: jsonschema's runtime validator for every schema, and for the `is_valid` fast
//! path a validator generated at build time by jsonschema's `validator` macro, when the caller
//! brings one for exactly that schema (the generated crate of a catalog does: `evkit generate`).

use std::cell::RefCell;

use serde_json::Value;

/// A validator that jsonschema's `validator` macro generated at build time for one schema.
///
/// `evkit generate` writes one for every schema a catalog compiles (`PRECOMPILED` in the
/// generated crate); pass them to [`Catalog::load_with`](crate::Catalog::load_with). A contract
/// then answers "is this valid?" with generated code (on the sample catalog's payloads, a quarter
/// to a third fewer instructions than the runtime validator), and still lists errors with the
/// runtime validator. One is used only for a schema equal to the one it was generated from: after
/// a schema changes and before it is regenerated, the runtime validator answers alone.
///
/// ```
/// use evkit_schema::{Catalog, Precompiled};
///
/// fn non_empty_string(v: &serde_json::Value) -> bool {
///     v.as_str().is_some_and(|s| !s.is_empty())
/// }
/// // In real code this list is generated; this hand-written one only shows the shape.
/// let precompiled = [Precompiled {
///     schema: r#"{"type": "string", "minLength": 1, "maxLength": 128}"#,
///     is_valid: non_empty_string,
/// }];
/// let catalog = Catalog::load_with(
///     concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"),
///     &precompiled,
/// )?;
/// // The notifications topic's key schema is that schema: its check uses the function.
/// assert!(catalog.schemas().iter().any(|s| s.precompiled));
/// # Ok::<(), evkit_schema::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Precompiled {
    /// The JSON text of the schema it was generated from.
    pub schema: &'static str,
    /// The generated `is_valid`.
    pub is_valid: fn(&Value) -> bool,
}

/// A schema that a catalog compiled into a validator, and whether a [`Precompiled`] validator
/// answers its `is_valid`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledSchema {
    /// The schema as compiled: a payload schema, a dataschema's or the identity's wrapper
    /// (`$ref` into the document), a key schema, a topic's header schema or one header's.
    pub schema: Value,
    /// `true` when a build-time validator serves it.
    pub precompiled: bool,
}

/// A compiled schema: the runtime validator, and a build-time `is_valid` when one was given.
pub(crate) struct SchemaValidator {
    runtime: jsonschema::Validator,
    fast: Option<IsValid>,
}

/// A generated `is_valid`.
type IsValid = fn(&Value) -> bool;

impl SchemaValidator {
    /// Whether `instance` is valid: by the build-time validator when there is one.
    #[inline]
    pub(crate) fn is_valid(&self, instance: &Value) -> bool {
        match self.fast {
            Some(is_valid) => is_valid(instance),
            None => self.runtime.is_valid(instance),
        }
    }

    /// Every error, from the runtime validator (it knows instance and schema paths).
    pub(crate) fn iter_errors<'a>(&'a self, instance: &'a Value) -> jsonschema::ErrorIterator<'a> {
        self.runtime.iter_errors(instance)
    }
}

/// Compiles the schemas of one catalog load and remembers which it compiled.
pub(crate) struct Compiler {
    precompiled: Vec<(Value, IsValid)>,
    compiled: RefCell<Vec<CompiledSchema>>,
}

impl Compiler {
    /// A compiler that uses these build-time validators where their schema matches. A text
    /// that is not JSON cannot match any schema and is skipped.
    pub(crate) fn new(precompiled: &[Precompiled]) -> Compiler {
        Compiler {
            precompiled: precompiled
                .iter()
                .filter_map(|p| Some((serde_json::from_str(p.schema).ok()?, p.is_valid)))
                .collect(),
            compiled: RefCell::new(Vec::new()),
        }
    }

    /// Builds a validator with the options evkit uses everywhere: formats are asserted (draft
    /// 2020-12 treats them as annotations by default, which would let `"format": "uuid"` accept
    /// anything). The generated validators are built with the same option.
    pub(crate) fn compile(&self, schema: &Value) -> Result<SchemaValidator, String> {
        let runtime = runtime(schema)?;
        let fast = self
            .precompiled
            .iter()
            .find(|(s, _)| s == schema)
            .map(|(_, f)| *f);
        let mut compiled = self.compiled.borrow_mut();
        if !compiled.iter().any(|c| &c.schema == schema) {
            compiled.push(CompiledSchema {
                schema: schema.clone(),
                precompiled: fast.is_some(),
            });
        }
        Ok(SchemaValidator { runtime, fast })
    }

    /// Every distinct schema compiled, in the order first compiled.
    pub(crate) fn into_compiled(self) -> Vec<CompiledSchema> {
        self.compiled.into_inner()
    }
}

/// The runtime validator of `schema`, with formats asserted.
pub(crate) fn runtime(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| {
            // Where in the schema: the meta-schema's error names the place in the document.
            let at = e.instance_path().as_str();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("at {at}: {e}")
            }
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::{Compiler, Precompiled};
    use crate::contract::{Part, push_schema_errors};

    const KEY: &str = r#"{"type": "string", "minLength": 1, "maxLength": 128}"#;

    fn always(_: &serde_json::Value) -> bool {
        true
    }

    fn never(_: &serde_json::Value) -> bool {
        false
    }

    #[test]
    fn a_matching_build_time_validator_answers_is_valid_and_the_runtime_one_lists_errors() {
        let compiler = Compiler::new(&[
            Precompiled {
                schema: KEY,
                is_valid: always,
            },
            Precompiled {
                schema: "not json",
                is_valid: never,
            },
        ]);
        // Key order and spacing do not matter: schemas are compared as JSON values.
        let key = compiler
            .compile(&json!({"maxLength": 128, "minLength": 1, "type": "string"}))
            .unwrap();
        assert!(
            key.is_valid(&json!("")),
            "answered by the build-time validator"
        );
        assert_eq!(
            key.iter_errors(&json!("")).count(),
            1,
            "listed by the runtime one"
        );

        let other = compiler.compile(&json!({"type": "integer"})).unwrap();
        assert!(
            !other.is_valid(&json!("x")),
            "no build-time validator: runtime answers"
        );
        assert!(other.is_valid(&json!(3)));
        compiler.compile(&json!({"type": "integer"})).unwrap();

        let listed = compiler.into_compiled();
        assert_eq!(listed.len(), 2, "each schema is listed once");
        assert!(listed[0].precompiled);
        assert!(!listed[1].precompiled);
    }

    #[test]
    fn the_runtime_validator_decides_when_a_build_time_one_rejects_a_valid_value() {
        let compiler = Compiler::new(&[Precompiled {
            schema: KEY,
            is_valid: never,
        }]);
        let key = compiler
            .compile(&serde_json::from_str(KEY).unwrap())
            .unwrap();
        let mut out = Vec::new();
        push_schema_errors(&key, &json!("valid"), &Part::Key, "", &mut out);
        assert!(out.is_empty(), "{out:?}");
        push_schema_errors(&key, &json!(""), &Part::Key, "", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, "minLength");
    }

    #[test]
    fn a_schema_that_does_not_compile_is_an_error() {
        let compiler = Compiler::new(&[]);
        let Err(err) = compiler.compile(&json!({"type": "no-such-type"})) else {
            panic!("an unknown type compiled");
        };
        assert!(err.contains("no-such-type"), "{err}");
        assert!(compiler.into_compiled().is_empty());
    }
}
