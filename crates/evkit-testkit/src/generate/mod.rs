//! Message generators derived from JSON Schemas, as proptest strategies (with shrinking).
//!
//! [`Schema`] compiles one schema document (any of drafts 4, 6, 7, 2019-09 and 2020-12):
//! - [`Schema::valid`] is a strategy of values the schema accepts. It is built from
//!   jsonschema's canonical form of the schema (so `allOf`, `$ref`, `if`/`then`/`else`,
//!   dependencies, `not`, boolean schemas, decimal bounds and contradictions are already
//!   resolved), with every format jsonschema asserts, and it draws the values consumers trip
//!   on: integral floats for integers (`3.0`), `-0.0`, huge and tiny numbers, escaped and
//!   non-ASCII text, empty arrays and objects. The compiled jsonschema validator is the final
//!   filter: nothing comes out that it rejects.
//! - [`Schema::sites`] lists every constraint keyword a value can break, with the instance
//!   location it applies to, and [`Schema::break_site`] makes a value that breaks that keyword
//!   there (see [`invalid`]).
//!
//! A schema that accepts nothing is [`Error::AcceptsNothing`] with the pointer; a strategy
//! whose filter gives up names the subschema in proptest's rejection reason. A wrong value
//! never comes out.

mod invalid;
pub(crate) mod text;
mod valid;
pub(crate) use valid::{int_of, json_int};

use std::sync::Arc;

use jsonschema::Validator;
use jsonschema::canonical::{CanonicalSchema, CanonicalView, Satisfiability};
use proptest::strategy::{BoxedStrategy, Strategy};
use serde_json::Value;

pub(crate) use invalid::resolve as resolve_ref;
pub use invalid::{Breakage, Breaker, Site, Via};
pub use jsonschema::Draft;
pub use jsonschema::canonical::Containment;
pub use text::FORMATS;
pub use valid::MAX_DEPTH;
pub(crate) use valid::regex_matches;

/// The keywords that constrain a value on their own, with no subschema: a leaf's.
pub(crate) const SCALAR_CONSTRAINTS: &[&str] = &[
    "type",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
];

/// Keywords that annotate a schema and constrain nothing.
pub(crate) const ANNOTATIONS: &[&str] = &[
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

use crate::Error;

/// A schema document, compiled for generation: its canonical form and its validator.
#[derive(Clone)]
pub struct Schema {
    document: Arc<Value>,
    draft: Draft,
    canonical: CanonicalSchema,
    oracle: Arc<Validator>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("draft", &self.draft)
            .field("document", &self.document)
            .finish_non_exhaustive()
    }
}

impl Schema {
    /// Compiles `document`; its draft comes from `$schema` (2020-12 when absent).
    pub fn new(document: &Value) -> Result<Self, Error> {
        Self::with_draft(document, None)
    }

    /// Compiles `document` under `draft` (or the one its `$schema` names).
    pub fn with_draft(document: &Value, draft: Option<Draft>) -> Result<Self, Error> {
        let draft = draft.unwrap_or_else(|| Draft::default().detect(document));
        let oracle = jsonschema::options()
            .with_draft(draft)
            .should_validate_formats(true)
            .build(document)
            .map_err(|e| Error::Generator {
                at: "/".to_owned(),
                reason: format!("the schema does not compile: {e}"),
            })?;
        let canonical = jsonschema::canonical::options()
            .with_draft(draft)
            .should_validate_formats(true)
            .canonicalize(document)
            .map_err(|e| Error::Generator {
                at: "/".to_owned(),
                reason: format!("the schema cannot be read: {e}"),
            })?;
        Ok(Schema {
            document: Arc::new(document.clone()),
            draft,
            canonical,
            oracle: Arc::new(oracle),
        })
    }

    /// The draft the schema is read under.
    pub fn draft(&self) -> Draft {
        self.draft
    }

    /// The schema document.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The compiled validator (formats asserted): the oracle every generated value answers to.
    pub fn validator(&self) -> &Validator {
        &self.oracle
    }

    /// `true` when the validator accepts `value`.
    pub fn is_valid(&self, value: &Value) -> bool {
        self.oracle.is_valid(value)
    }

    /// `true` when the schema is proven to accept nothing.
    pub fn accepts_nothing(&self) -> bool {
        self.canonical.satisfiability() == Satisfiability::No
    }

    /// A strategy of values the schema accepts.
    pub fn valid(&self) -> Result<BoxedStrategy<Value>, Error> {
        if self.accepts_nothing() {
            return Err(Error::AcceptsNothing { at: "/".to_owned() });
        }
        let strat = valid::Builder::new(self.draft).node(&self.canonical, None, "", 0)?;
        let oracle = Arc::clone(&self.oracle);
        Ok(strat
            .prop_filter("/: rejected by the schema's validator", move |v| {
                oracle.is_valid(v)
            })
            .boxed())
    }

    /// A strategy of values the subschema at `pointer` (in this document, references resolved
    /// in place) accepts, judged by that subschema's validator.
    pub fn valid_at(&self, pointer: &str) -> Result<BoxedStrategy<Value>, Error> {
        let prepared = jsonschema::canonical::options()
            .with_draft(self.draft)
            .should_validate_formats(true)
            .prepare(&self.document)
            .map_err(|e| Error::Generator {
                at: valid::display_at(pointer),
                reason: e.to_string(),
            })?;
        let canonical = prepared
            .canonicalize_at(pointer)
            .map_err(|e| Error::Generator {
                at: valid::display_at(pointer),
                reason: e.to_string(),
            })?;
        if canonical.satisfiability() == Satisfiability::No {
            return Err(Error::AcceptsNothing {
                at: valid::display_at(pointer),
            });
        }
        let strat = valid::Builder::new(self.draft).node(&canonical, None, pointer, 0)?;
        Ok(match self.validator_at(pointer) {
            Some(v) => strat
                .prop_filter(
                    format!(
                        "{}: rejected by the subschema's validator",
                        valid::display_at(pointer)
                    ),
                    move |x| v.is_valid(x),
                )
                .boxed(),
            None => strat,
        })
    }

    /// The validator of the subschema at `pointer`, references resolved against this
    /// document (`None` when it does not compile on its own).
    pub(crate) fn validator_at(&self, pointer: &str) -> Option<Arc<Validator>> {
        let wrapper = serde_json::json!({"$ref": format!("urn:evkit:generated-root#{pointer}")});
        let resource = jsonschema::Resource::from_contents(self.document.as_ref().clone());
        let registry = jsonschema::Registry::new()
            .draft(self.draft)
            .add("urn:evkit:generated-root", resource)
            .ok()?
            .prepare()
            .ok()?;
        jsonschema::options()
            .with_draft(self.draft)
            .should_validate_formats(true)
            .with_registry(&registry)
            .build(&wrapper)
            .ok()
            .map(Arc::new)
    }

    /// Whether this schema accepts every value `other` accepts, as jsonschema's canonical
    /// algebra decides it: only [`Containment::Yes`] is a proof, `Unknown` is undecided.
    pub fn covers(&self, other: &Schema) -> Containment {
        self.canonical
            .covers(&other.canonical)
            .unwrap_or(Containment::Unknown)
    }

    /// A strategy of values this schema accepts and `other` rejects, drawn from jsonschema's
    /// canonical difference (`self \ other`) and filtered by both validators. `Ok(None)` when
    /// the canonical form cannot express the difference; [`Error::AcceptsNothing`] when it is
    /// proven empty (`other` accepts everything this schema does).
    pub fn difference(&self, other: &Schema) -> Result<Option<BoxedStrategy<Value>>, Error> {
        let Ok(difference) = self.canonical.subtract(&other.canonical) else {
            return Ok(None);
        };
        if difference.satisfiability() == Satisfiability::No {
            return Err(Error::AcceptsNothing { at: "/".to_owned() });
        }
        let Ok(strat) = valid::Builder::new(self.draft).node(&difference, None, "", 0) else {
            return Ok(None);
        };
        let (taken, refused) = (Arc::clone(&self.oracle), Arc::clone(&other.oracle));
        Ok(Some(
            strat
                .prop_filter("/: not in the difference of the two validators", move |v| {
                    taken.is_valid(v) && !refused.is_valid(v)
                })
                .boxed(),
        ))
    }

    /// Parts of the schema the canonical form could not model, by reason (they are still
    /// generated, by filtering with their own validator).
    pub fn unmodeled(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk_raw(&self.canonical, &mut out, 0);
        out
    }
}

fn walk_raw(s: &CanonicalSchema, out: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    match s.view() {
        CanonicalView::Raw(r) => out.push(format!(
            "{} at {}",
            r.reason.as_str(),
            r.pointer
                .as_deref()
                .map_or("/", |p| if p.is_empty() { "/" } else { p })
        )),
        CanonicalView::AnyOf(bs) | CanonicalView::OneOf(bs) | CanonicalView::AllOf(bs) => {
            for b in &bs {
                walk_raw(b, out, depth + 1);
            }
        }
        CanonicalView::TypedGroup(g) => walk_raw(&g.body, out, depth + 1),
        CanonicalView::Not(n) => walk_raw(&n, out, depth + 1),
        _ => {}
    }
}

/// A strategy of JSON values that `schema` accepts (see [`Schema::valid`]).
pub fn values(schema: &Value) -> Result<BoxedStrategy<Value>, Error> {
    Schema::new(schema)?.valid()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
