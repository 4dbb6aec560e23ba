//! Valid values, built from jsonschema's canonical form of a schema.
//!
//! The canonical form has already merged `allOf`, resolved `$ref`s (recursion stays as named
//! references), folded `if`/`then`/`else`, `dependentRequired` and friends into unions, pushed
//! `not` inward where it can, read decimal bounds such as `2.0` as integers, and proven
//! contradictions empty. What is left is a small set of node kinds, each built constructively
//! here (so proptest shrinks towards small values). Where construction is not exact (patterns
//! next to length bounds, `not`, `oneOf`'s "exactly one", `contains` limits, distinct items,
//! property names), the node's own compiled validator filters; the whole schema's validator
//! filters last, so no value is ever called valid that jsonschema rejects.

use std::cell::Cell;
use std::sync::Arc;

use jsonschema::canonical::{
    ArrayView, CanonicalSchema, CanonicalView, Distinctness, IntegerView, NumberView, ObjectView,
    StringView,
};
use jsonschema::{Draft, JsonType};
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Just, Strategy, Union};
use serde_json::{Map, Number, Value, json};

use super::text;
use crate::Error;

/// How deep values nest (objects and arrays, references followed) before optional parts
/// (optional properties, items beyond `minItems`, extra properties) are left out.
pub const MAX_DEPTH: usize = 6;

/// How many schema nodes one strategy may be built from before optional recursive parts are
/// left out (a schema like the JSON Schema meta-schema would otherwise build an exponential
/// number of strategies).
const NODE_BUDGET: usize = 4_000;

type Strat = BoxedStrategy<Value>;

/// A failure to build a node's strategy: the node accepts nothing, or nesting ran out.
#[derive(Debug, Clone)]
pub(crate) enum Build {
    /// The node accepts no value (at this instance path).
    Empty(String),
    /// Recursion without an end within the depth budget.
    TooDeep(String),
}

impl From<Build> for Error {
    fn from(b: Build) -> Error {
        match b {
            Build::Empty(at) => Error::AcceptsNothing {
                at: display_at(&at),
            },
            Build::TooDeep(at) => Error::Generator {
                at: display_at(&at),
                reason: format!(
                    "every value nests deeper than {MAX_DEPTH} levels (recursion without a shallow end)"
                ),
            },
        }
    }
}

pub(crate) fn display_at(at: &str) -> String {
    if at.is_empty() {
        "/".to_owned()
    } else {
        at.to_owned()
    }
}

/// Builds strategies from canonical nodes.
pub(crate) struct Builder {
    pub(crate) draft: Draft,
    nodes: Cell<usize>,
}

impl Builder {
    pub(crate) fn new(draft: Draft) -> Self {
        Builder {
            draft,
            nodes: Cell::new(0),
        }
    }

    fn validator(&self, s: &CanonicalSchema) -> Option<Arc<jsonschema::Validator>> {
        jsonschema::options()
            .with_draft(self.draft)
            .should_validate_formats(true)
            .build(&s.to_json_schema())
            .ok()
            .map(Arc::new)
    }

    fn filtered(&self, strat: Strat, s: &CanonicalSchema, at: &str, what: &str) -> Strat {
        match self.validator(s) {
            Some(v) => strat
                .prop_filter(format!("{}: {what}", display_at(at)), move |x| {
                    v.is_valid(x)
                })
                .boxed(),
            None => strat,
        }
    }

    fn exhausted(&self, depth: usize) -> bool {
        depth >= MAX_DEPTH || self.nodes.get() > NODE_BUDGET
    }

    /// The strategy for `s`, whose values must also be of type `hint` when given.
    pub(crate) fn node(
        &self,
        s: &CanonicalSchema,
        hint: Option<JsonType>,
        at: &str,
        depth: usize,
    ) -> Result<Strat, Build> {
        self.nodes.set(self.nodes.get() + 1);
        if depth > MAX_DEPTH * 3 {
            return Err(Build::TooDeep(at.to_owned()));
        }
        match s.view() {
            CanonicalView::True => Ok(match hint {
                Some(t) => Self::of_type(t, depth),
                None => Self::any(depth),
            }),
            CanonicalView::False => Err(Build::Empty(at.to_owned())),
            CanonicalView::MultiType(set) => {
                let types: Vec<JsonType> = set
                    .iter()
                    .filter(|t| hint.is_none_or(|h| h == *t || compatible(h, *t)))
                    .collect();
                if types.is_empty() {
                    return Err(Build::Empty(at.to_owned()));
                }
                Ok(Union::new(types.into_iter().map(|t| Self::of_type(t, depth))).boxed())
            }
            CanonicalView::TypedGroup(g) => {
                let strat = self.node(&g.body, Some(g.ty), at, depth)?;
                let ty = g.ty;
                Ok(strat
                    .prop_filter(format!("{}: not of type {ty}", display_at(at)), move |v| {
                        is_type(v, ty)
                    })
                    .boxed())
            }
            CanonicalView::String(v) => self.string(&v, s, at),
            CanonicalView::Integer(v) => Ok(self.integer(&v, s, at)),
            CanonicalView::Number(v) => Ok(self.number(&v, s, at)),
            CanonicalView::Array(v) => self.array(&v, s, at, depth),
            CanonicalView::Object(v) => self.object(&v, s, at, depth),
            CanonicalView::Const(c) => Ok(Just(c).boxed()),
            CanonicalView::Enum(values) => {
                if values.is_empty() {
                    return Err(Build::Empty(at.to_owned()));
                }
                Ok(proptest::sample::select(values).boxed())
            }
            CanonicalView::Not(inner) => {
                let base = match hint {
                    Some(t) => Self::of_type(t, depth),
                    None => Self::any(depth),
                };
                Ok(match self.validator(&inner) {
                    Some(v) => base
                        .prop_filter(
                            format!("{}: accepted by the `not` schema", display_at(at)),
                            move |x| !v.is_valid(x),
                        )
                        .boxed(),
                    None => base,
                })
            }
            CanonicalView::AllOf(branches) => {
                let mut last = Build::Empty(at.to_owned());
                for (i, b) in branches.iter().enumerate() {
                    match self.node(b, hint, at, depth) {
                        Ok(base) => {
                            let others: Vec<_> = branches
                                .iter()
                                .enumerate()
                                .filter(|(j, _)| *j != i)
                                .filter_map(|(_, o)| self.validator(o))
                                .collect();
                            return Ok(base
                                .prop_filter(
                                    format!("{}: fails another allOf branch", display_at(at)),
                                    move |x| others.iter().all(|o| o.is_valid(x)),
                                )
                                .boxed());
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
            CanonicalView::AnyOf(branches) => self.union(&branches, hint, at, depth, false),
            CanonicalView::OneOf(branches) => self.union(&branches, hint, at, depth, true),
            CanonicalView::Reference(uri) => {
                let Some(target) = s.definition(&uri) else {
                    return Err(Build::Empty(at.to_owned()));
                };
                self.node(&target, hint, at, depth + 1)
            }
            CanonicalView::Raw(raw) => {
                Ok(self.raw(&raw.schema, raw.pointer.as_deref(), hint, at, depth))
            }
        }
    }

    /// `anyOf`/`oneOf`: a union of the branches that accept something. Branches that only
    /// admit whole JSON types (what the canonical form makes of "any other type") weigh less,
    /// so constrained values dominate. For `oneOf`, values another branch accepts too are
    /// filtered out.
    fn union(
        &self,
        branches: &[CanonicalSchema],
        hint: Option<JsonType>,
        at: &str,
        depth: usize,
        exactly_one: bool,
    ) -> Result<Strat, Build> {
        let validators: Vec<_> = if exactly_one {
            branches.iter().map(|b| self.validator(b)).collect()
        } else {
            Vec::new()
        };
        let mut options: Vec<(u32, Strat)> = Vec::new();
        let mut last = Build::Empty(at.to_owned());
        for (i, b) in branches.iter().enumerate() {
            match self.node(b, hint, at, depth) {
                Ok(strat) => {
                    let weight = if matches!(b.view(), CanonicalView::MultiType(_)) {
                        1
                    } else {
                        3
                    };
                    let strat = if exactly_one {
                        let others: Vec<_> = validators
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != i)
                            .filter_map(|(_, v)| v.clone())
                            .collect();
                        strat
                            .prop_filter(
                                format!(
                                    "{}: oneOf branch {i} also matched by another",
                                    display_at(at)
                                ),
                                move |x| !others.iter().any(|o| o.is_valid(x)),
                            )
                            .boxed()
                    } else {
                        strat
                    };
                    options.push((weight, strat));
                }
                Err(e) => last = e,
            }
        }
        match options.len() {
            0 => Err(last),
            1 => Ok(options.remove(0).1),
            _ => Ok(Union::new_weighted(options).boxed()),
        }
    }

    /// A schema the canonical form does not model (today: `unevaluatedProperties` and
    /// `unevaluatedItems` in some positions, and numeric bounds past what it holds): values of
    /// the schema without those keywords (numeric leaves pinned to values drawn for them),
    /// filtered by the schema itself.
    fn raw(
        &self,
        schema: &Value,
        stopped_at: Option<&str>,
        hint: Option<JsonType>,
        at: &str,
        depth: usize,
    ) -> Strat {
        let validator = jsonschema::options()
            .with_draft(self.draft)
            .should_validate_formats(true)
            .build(schema)
            .ok()
            .map(Arc::new);
        // A number or integer with a bound the canonical form leaves unmodeled (past i64 as
        // `"minimum": 1e19`, or near f64::MAX): the numeric generator on the bounds as written,
        // else almost nothing drawn at random would pass.
        let base = if let Some(leaf) = numeric_leaf(schema) {
            self.leaf_values(&leaf)
        } else {
            let mut loose = schema.clone();
            strip_unevaluated(&mut loose);
            self.pin_numeric_leaves(&mut loose, stopped_at);
            jsonschema::canonical::options()
                .with_draft(self.draft)
                .should_validate_formats(true)
                .canonicalize(&loose)
                .ok()
                .filter(|c| !matches!(c.view(), CanonicalView::Raw(_)))
                .and_then(|c| self.node(&c, hint, at, depth).ok())
                .unwrap_or_else(|| match hint {
                    Some(t) => Self::of_type(t, depth),
                    None => Self::any(depth),
                })
        };
        match validator {
            Some(v) => base
                .prop_filter(
                    format!(
                        "{}: rejected by a schema the canonical form does not model",
                        display_at(at)
                    ),
                    move |x| v.is_valid(x),
                )
                .boxed(),
            None => base,
        }
    }

    /// Numeric leaves inside `schema` that stopped the canonical form (see [`numeric_leaf`]; at
    /// `stopped_at` and wherever the next try stops), each replaced by an `enum` of numbers
    /// drawn for it and accepted by it, so the rest of the schema can be modeled. The schema's
    /// own validator still judges every value (see [`Builder::raw`]), and an `enum` of a
    /// leaf's own valid values only narrows the schema.
    fn pin_numeric_leaves(&self, schema: &mut Value, stopped_at: Option<&str>) {
        let mut next = stopped_at.map(str::to_owned);
        for _ in 0..16 {
            let Some(p) = next.take().filter(|p| !p.is_empty()) else {
                return;
            };
            let Some(leaf) = schema.pointer_mut(&p) else {
                return;
            };
            let Some(view) = numeric_leaf(leaf) else {
                return;
            };
            let Ok(judge) = jsonschema::options().with_draft(self.draft).build(leaf) else {
                return;
            };
            let strat = self.leaf_values(&view);
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let mut values: Vec<Value> = Vec::new();
            for _ in 0..64 {
                if let Ok(tree) = strat.new_tree(&mut runner) {
                    let v = tree.current();
                    if judge.is_valid(&v) && !values.contains(&v) {
                        values.push(v);
                    }
                }
            }
            if values.is_empty() {
                return;
            }
            *leaf = json!({ "enum": values });
            match jsonschema::canonical::options()
                .with_draft(self.draft)
                .should_validate_formats(true)
                .canonicalize(schema)
                .map(|c| c.view())
            {
                Ok(CanonicalView::Raw(r)) => next = r.pointer,
                _ => return,
            }
        }
    }

    /// Values of a numeric leaf, unfiltered.
    fn leaf_values(&self, leaf: &Leaf) -> Strat {
        match leaf {
            Leaf::Integer(v) => self.integers(v),
            Leaf::Number(v) => Self::numbers(v),
        }
    }

    /// Any JSON value, small.
    pub(crate) fn any(depth: usize) -> Strat {
        Union::new_weighted(vec![
            (1, Just(Value::Null).boxed()),
            (1, any::<bool>().prop_map(Value::Bool).boxed()),
            (2, Self::of_type(JsonType::Integer, depth)),
            (1, Self::of_type(JsonType::Number, depth)),
            (3, Self::of_type(JsonType::String, depth)),
            (1, Self::of_type(JsonType::Array, depth)),
            (1, Self::of_type(JsonType::Object, depth)),
        ])
        .boxed()
    }

    /// Any value of JSON type `t`.
    pub(crate) fn of_type(t: JsonType, depth: usize) -> Strat {
        match t {
            JsonType::Null => Just(Value::Null).boxed(),
            JsonType::Boolean => any::<bool>().prop_map(Value::Bool).boxed(),
            JsonType::Integer => prop_oneof![
                8 => (-1_000_000i64..1_000_000).prop_map(Value::from),
                1 => proptest::sample::select(vec![json!(0), json!(-1), json!(i64::MAX), json!(u64::MAX), json!(i64::MIN)]),
            ]
            .boxed(),
            JsonType::Number => prop_oneof![
                4 => (-1e6f64..1e6).prop_map(Value::from),
                2 => (-1_000_000i64..1_000_000).prop_map(Value::from),
                1 => proptest::sample::select(vec![json!(0.5), json!(-0.0), json!(1e300), json!(-1e-300), json!(5e-324)]),
            ]
            .boxed(),
            JsonType::String => text::free_text(0, 12).prop_map(Value::String).boxed(),
            JsonType::Array => {
                if depth >= MAX_DEPTH {
                    Just(json!([])).boxed()
                } else {
                    proptest::collection::vec(Self::scalar(), 0..4)
                        .prop_map(Value::Array)
                        .boxed()
                }
            }
            JsonType::Object => {
                if depth >= MAX_DEPTH {
                    Just(json!({})).boxed()
                } else {
                    proptest::collection::btree_map(text::key(), Self::scalar(), 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect()))
                        .boxed()
                }
            }
        }
    }

    fn scalar() -> Strat {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-1000i64..1000).prop_map(Value::from),
            text::free_text(0, 8).prop_map(Value::String),
        ]
        .boxed()
    }

    fn string(&self, v: &StringView, s: &CanonicalSchema, at: &str) -> Result<Strat, Build> {
        let min = count(v.min_length.as_ref()).unwrap_or(0);
        let max = count(v.max_length.as_ref());
        // A pattern anchored at both ends whose lengths miss `minLength..=maxLength` leaves no
        // string (`^[0-9a-f]{32}$` with `maxLength: 31`): an optional property of that schema is
        // left out rather than filtered for until the filter gives up.
        for (fewest, most) in v
            .patterns
            .iter()
            .filter_map(|p| evkit_schema::pattern::lengths(p))
        {
            if max.is_some_and(|max| fewest > max) || most.is_some_and(|most| most < min) {
                return Err(Build::Empty(at.to_owned()));
            }
        }
        let base: BoxedStrategy<String> = v
            .formats
            .iter()
            .find_map(|f| text::format(f))
            .or_else(|| v.patterns.iter().find_map(|p| text::pattern(p)))
            .unwrap_or_else(|| {
                let hi = max.unwrap_or(min + 12).min(min + 24);
                text::free_text(min, hi)
            });
        let mut base = base;
        if let Some(enc) = v.content_encodings.first()
            && enc == "base64"
        {
            use base64::Engine as _;
            let json = v
                .content_media_types
                .iter()
                .any(|m| m == "application/json");
            base = (base, any::<u8>())
                .prop_map(move |(t, n)| {
                    let body = if json {
                        json!({"n": n, "t": t}).to_string()
                    } else {
                        t
                    };
                    base64::engine::general_purpose::STANDARD.encode(body)
                })
                .boxed();
        } else if v
            .content_media_types
            .iter()
            .any(|m| m == "application/json")
        {
            base = (base, any::<i32>())
                .prop_map(|(t, n)| json!({"n": n, "t": t}).to_string())
                .boxed();
        }
        let strat = base.prop_map(Value::String).boxed();
        // A format alone, with lengths its strings always fit (the format strategies are held
        // to jsonschema's own format checks by a test, and stay under 64 characters), needs no
        // filter of its own; the schema's validator still has the last word.
        let format_only = v.formats.len() == 1
            && text::format(&v.formats[0]).is_some()
            && v.patterns.is_empty()
            && v.excluded_patterns.is_empty()
            && v.excluded_formats.is_empty()
            && v.excluded.is_empty()
            && v.content_encodings.is_empty()
            && v.content_media_types.is_empty()
            && min <= 1
            && max.is_none_or(|m| m >= 64);
        Ok(if format_only {
            strat
        } else {
            self.filtered(strat, s, at, "string outside its rules")
        })
    }

    fn integer(&self, v: &IntegerView, s: &CanonicalSchema, at: &str) -> Strat {
        let strat = self.integers(v);
        if v.not_multiple_of.is_empty() && v.multiple_of.iter().all(|m| int_of(m).is_some()) {
            strat
        } else {
            self.filtered(strat, s, at, "integer outside its rules")
        }
    }

    /// Integers in `v`'s window and multiples, unfiltered (see [`Builder::integer`]).
    fn integers(&self, v: &IntegerView) -> Strat {
        let lo = v.minimum.as_ref().and_then(int_of);
        let hi = v.maximum.as_ref().and_then(int_of);
        let (lo, hi) = window(lo, hi);
        let step = v
            .multiple_of
            .iter()
            .map(int_of)
            .try_fold(1i128, |acc, m| m.filter(|m| *m > 0).map(|m| lcm(acc, m)))
            .unwrap_or(1);
        let k_lo = div_ceil(lo, step);
        let k_hi = hi.div_euclid(step);
        let float_ok = self.draft != Draft::Draft4;
        if k_hi < k_lo {
            // No multiple in range: only the filter can say; offer the bounds.
            proptest::sample::select(vec![json_int(lo), json_int(hi)]).boxed()
        } else {
            let mut edges = vec![json_int(k_lo * step), json_int(k_hi * step)];
            if k_lo <= 0 && 0 <= k_hi {
                edges.push(json!(0));
            }
            // Unbounded sides: the integers at the edges of what Rust's integer types hold,
            // and past them (1e20 is a JSON Schema integer no u64 can decode).
            if v.maximum.is_none() && step == 1 {
                edges.extend([json!(i64::MAX), json!(u64::MAX), json!(1e20)]);
            }
            if v.minimum.is_none() && step == 1 {
                edges.extend([json!(i64::MIN), json!(-1e20)]);
            }
            // Multiples k × step for k in a window of at most 2^63 − 1 values: around zero
            // (±2^62) where the bounds allow, else at the end of the bounds nearest zero (a
            // minimum past 2^62 once made this an empty range, and proptest panicked).
            let (from, to) = if k_lo > REACH {
                (k_lo, k_hi.min(k_lo + REACH))
            } else if k_hi < -REACH {
                (k_lo.max(k_hi - REACH), k_hi)
            } else {
                (k_lo.max(-REACH), k_hi.min(REACH))
            };
            let width = i64::try_from(to - from).unwrap_or(i64::MAX);
            let ks = (0..=width).prop_map(move |d| json_int((from + i128::from(d)) * step));
            prop_oneof![6 => ks, 1 => proptest::sample::select(edges)]
                .prop_flat_map(move |n| {
                    // Integral floats (`3.0`): valid JSON Schema integers since draft 6, and
                    // what trips a consumer that decodes into a Rust integer.
                    let as_float = n
                        .as_f64()
                        .filter(|f| float_ok && f.abs() < 9e15)
                        .map(Value::from);
                    match as_float {
                        Some(f) => prop_oneof![6 => Just(n), 1 => Just(f)].boxed(),
                        None => Just(n).boxed(),
                    }
                })
                .boxed()
        }
    }

    fn number(&self, v: &NumberView, s: &CanonicalSchema, at: &str) -> Strat {
        let strat = Self::numbers(v);
        self.filtered(strat, s, at, "number outside its rules")
    }

    /// Numbers in `v`'s window, unfiltered (see [`Builder::number`]).
    fn numbers(v: &NumberView) -> Strat {
        let lo = v.minimum.as_ref().and_then(Number::as_f64);
        let hi = v.maximum.as_ref().and_then(Number::as_f64);
        // Finite: a bound near f64::MAX once made the window reach infinity, and every value
        // drawn from it was rejected.
        let (flo, fhi) = match (lo, hi) {
            (Some(l), Some(h)) => (l, h),
            (Some(l), None) => (l, (l.abs().max(1.0) * 1e6).min(f64::MAX)),
            (None, Some(h)) => ((-(h.abs().max(1.0)) * 1e6).max(f64::MIN), h),
            (None, None) => (-1e6, 1e6),
        };
        if let Some(m) = v.multiple_of.first() {
            decimal_multiples(m, flo, fhi)
        } else {
            let mut edges = Vec::new();
            if let Some(l) = v.minimum.clone().filter(|_| !v.exclusive_minimum) {
                edges.push(Value::Number(l));
            }
            if let Some(h) = v.maximum.clone().filter(|_| !v.exclusive_maximum) {
                edges.push(Value::Number(h));
            }
            if flo <= 0.0 && 0.0 <= fhi {
                edges.extend([json!(-0.0), json!(1e-300), json!(0)]);
            }
            if hi.is_none() {
                edges.push(json!(1e300));
            }
            if lo.is_none() {
                edges.push(json!(-1e300));
            }
            // A window wider than f64::MAX (bounds of opposite signs near it) is drawn at half
            // scale: proptest's float range needs a finite width.
            let spread = if (fhi - flo).is_finite() {
                (flo..=fhi).prop_map(Value::from).boxed()
            } else {
                (flo / 2.0..=fhi / 2.0)
                    .prop_map(|x| Value::from(x * 2.0))
                    .boxed()
            };
            let mut options: Vec<(u32, Strat)> = vec![(5, spread)];
            #[allow(clippy::cast_possible_truncation)]
            if fhi - flo >= 1.0 && flo > -9e15 && fhi < 9e15 {
                options.push((
                    2,
                    ((flo.ceil() as i64)..=(fhi.floor() as i64))
                        .prop_map(Value::from)
                        .boxed(),
                ));
            }
            if !edges.is_empty() {
                options.push((1, proptest::sample::select(edges).boxed()));
            }
            Union::new_weighted(options).boxed()
        }
    }

    fn array(
        &self,
        v: &ArrayView,
        s: &CanonicalSchema,
        at: &str,
        depth: usize,
    ) -> Result<Strat, Build> {
        let min = count(v.min_items.as_ref()).unwrap_or(0);
        let needed: usize = v
            .contains
            .iter()
            .map(|c| count(c.min_contains.as_ref()).unwrap_or(1))
            .sum();
        let max_allowed = count(v.max_items.as_ref());
        let shallow = self.exhausted(depth);
        let mut max = max_allowed.unwrap_or(min + 4).min(min.max(needed) + 3);
        if shallow {
            max = min.max(needed).min(max_allowed.unwrap_or(usize::MAX));
        }
        if max < min {
            return Err(Build::Empty(at.to_owned()));
        }
        let mut prefix = Vec::new();
        for (i, p) in v.prefix_items.iter().enumerate().take(max) {
            match self.node(p, None, &format!("{at}/{i}"), depth + 1) {
                Ok(st) => prefix.push(st),
                Err(e) if i < min => return Err(e),
                Err(_) => {
                    // Positions from here on cannot be filled.
                    max = i;
                    break;
                }
            }
        }
        let items: Option<Strat> = match &v.items {
            Some(items) if max > prefix.len() => {
                match self.node(items, None, &format!("{at}/*"), depth + 1) {
                    Ok(st) => Some(st),
                    Err(e) if min > prefix.len() => return Err(e),
                    Err(_) => {
                        max = prefix.len();
                        None
                    }
                }
            }
            Some(_) => None,
            None => Some(Self::any(depth + 1)),
        };
        if max < min {
            return Err(Build::Empty(at.to_owned()));
        }
        // Items `contains` asks for, drawn from the contains schema (and the items schema, by
        // the filter below), appended after the rest.
        let mut contained: Vec<Strat> = Vec::new();
        for (i, c) in v.contains.iter().enumerate() {
            let n = count(c.min_contains.as_ref()).unwrap_or(1);
            if n == 0 {
                continue;
            }
            let schema = match &v.items {
                Some(items) => c
                    .schema
                    .intersect(items)
                    .unwrap_or_else(|_| c.schema.clone()),
                None => c.schema.clone(),
            };
            let st = self.node(&schema, None, &format!("{at}/contains{i}"), depth + 1)?;
            for _ in 0..n {
                contained.push(st.clone());
            }
        }
        let extra = contained.len();
        let base_min =
            min.saturating_sub(extra)
                .max(if extra > 0 { prefix.len().min(min) } else { 0 });
        let base_max = max.saturating_sub(extra).max(base_min);
        let distinct = v.distinctness;
        let prefix_len = prefix.len();
        let items_for =
            move |len: usize, prefix: &[Strat], items: &Option<Strat>| -> Option<Vec<Strat>> {
                (0..len)
                    .map(|i| {
                        if i < prefix_len {
                            Some(prefix[i].clone())
                        } else {
                            items.clone()
                        }
                    })
                    .collect()
            };
        let base_max = if items.is_none() {
            base_max.min(prefix_len)
        } else {
            base_max
        };
        if base_max < base_min {
            return Err(Build::Empty(at.to_owned()));
        }
        // Without tuple items, a plain vector strategy (no flat map: proptest clones its runner
        // for every flat-mapped draw).
        let body: BoxedStrategy<(Vec<Value>, Vec<Value>)> = match (&items, prefix_len) {
            (Some(each), 0) => (
                proptest::collection::vec(each.clone(), base_min..=base_max),
                contained.clone(),
            )
                .boxed(),
            _ => (base_min..=base_max)
                .prop_flat_map(move |len| {
                    let parts = items_for(len, &prefix, &items).unwrap_or_default();
                    (parts, contained.clone())
                })
                .boxed(),
        };
        let strat = body
            .prop_map(move |(mut parts, contained)| {
                parts.extend(contained);
                match distinct {
                    Distinctness::AllDistinct => {
                        let mut out: Vec<Value> = Vec::with_capacity(parts.len());
                        for x in parts {
                            if !out.contains(&x) {
                                out.push(x);
                            }
                        }
                        out
                    }
                    Distinctness::SomeRepeated => {
                        if let Some(first) = parts.first().cloned() {
                            parts.push(first);
                        }
                        parts
                    }
                    Distinctness::Unconstrained => parts,
                }
            })
            .prop_map(Value::Array)
            .boxed();
        Ok(
            if extra > 0 || distinct != Distinctness::Unconstrained || !v.contains.is_empty() {
                self.filtered(strat, s, at, "array outside its rules")
            } else {
                strat
            },
        )
    }

    fn object(
        &self,
        v: &ObjectView,
        s: &CanonicalSchema,
        at: &str,
        depth: usize,
    ) -> Result<Strat, Build> {
        let shallow = self.exhausted(depth);
        let pattern_of = |name: &str| {
            v.pattern_properties
                .iter()
                .find(|(p, _)| regex_matches(p, name))
        };
        // Each field: (name, required, value strategy).
        let mut fields: Vec<BoxedStrategy<Option<(String, Value)>>> = Vec::new();
        let mut names: Vec<&str> = v.properties.keys().map(String::as_str).collect();
        for r in &v.required {
            if !names.contains(&r.as_str()) {
                names.push(r);
            }
        }
        for name in names {
            let required = v.required.iter().any(|r| r == name);
            if !required && shallow {
                continue;
            }
            let here = format!("{at}/{}", evkit_schema::pointer::escape(name));
            let schema = v
                .properties
                .get(name)
                .or_else(|| pattern_of(name).map(|(_, s)| s))
                .or(v.additional_properties.as_ref());
            let strat = match schema {
                Some(sch) => self.node(sch, None, &here, depth + 1),
                None => Ok(Self::any(depth + 1)),
            };
            let strat = match strat {
                Ok(st) => st,
                Err(e) if required => return Err(e),
                Err(_) => continue,
            };
            let name = name.to_owned();
            fields.push(if required {
                strat.prop_map(move |x| Some((name.clone(), x))).boxed()
            } else {
                proptest::option::weighted(0.6, strat)
                    .prop_map(move |x| x.map(|x| (name.clone(), x)))
                    .boxed()
            });
        }
        // Extra names: from patternProperties, and other names where additionalProperties
        // allows them, named by propertyNames when it constrains names.
        let mut extras: Vec<BoxedStrategy<Vec<(String, Value)>>> = Vec::new();
        let min_props = count(v.min_properties.as_ref()).unwrap_or(0);
        let short = min_props.saturating_sub(fields.len());
        if !shallow || short > 0 {
            for (p, sch) in &v.pattern_properties {
                let (Some(names), Ok(values)) = (
                    text::pattern(p),
                    self.node(sch, None, &format!("{at}/~{p}"), depth + 1),
                ) else {
                    continue;
                };
                extras
                    .push(proptest::collection::vec((names, values), 0..=1 + short.min(3)).boxed());
            }
            let additional = match &v.additional_properties {
                Some(a) => self.node(a, None, &format!("{at}/*"), depth + 1).ok(),
                None => Some(Self::scalar()),
            };
            if let Some(values) = additional {
                let names = match &v.property_names {
                    Some(pn) => self
                        .node(
                            pn,
                            Some(JsonType::String),
                            &format!("{at}/propertyNames"),
                            depth + 1,
                        )
                        .ok()
                        .map(|st| {
                            st.prop_filter_map("a name is a string", |x| {
                                x.as_str().map(str::to_owned)
                            })
                            .boxed()
                        }),
                    None => Some(text::key()),
                };
                if let Some(names) = names {
                    let declared: Vec<String> = v.properties.keys().cloned().collect();
                    let patterns: Vec<String> = v.pattern_properties.keys().cloned().collect();
                    // A declared or pattern name is dropped rather than filtered: a
                    // `propertyNames` that allows only declared names would reject forever.
                    let hi = if shallow { short } else { 2 + short };
                    extras.push(
                        proptest::collection::vec((names, values), short.min(hi)..=hi)
                            .prop_map(move |pairs| {
                                pairs
                                    .into_iter()
                                    .filter(|(n, _)| {
                                        !declared.contains(n)
                                            && !patterns.iter().any(|p| regex_matches(p, n))
                                    })
                                    .collect()
                            })
                            .boxed(),
                    );
                }
            }
        }
        let strat = (fields, extras)
            .prop_map(|(fields, extras)| {
                let mut m = Map::new();
                for (k, x) in extras.into_iter().flatten() {
                    m.insert(k, x);
                }
                for (k, x) in fields.into_iter().flatten() {
                    m.insert(k, x);
                }
                Value::Object(m)
            })
            .boxed();
        let exact = v.property_names.is_none()
            && v.pattern_properties.is_empty()
            && v.violations.is_empty()
            && v.min_properties.is_none()
            && v.max_properties.is_none();
        Ok(if exact {
            strat
        } else {
            self.filtered(strat, s, at, "object outside its rules")
        })
    }
}

/// `true` when `a` admits values of type `b` (numbers include integers).
fn compatible(a: JsonType, b: JsonType) -> bool {
    a == JsonType::Number && b == JsonType::Integer
}

fn is_type(v: &Value, t: JsonType) -> bool {
    match t {
        JsonType::Null => v.is_null(),
        JsonType::Boolean => v.is_boolean(),
        JsonType::Integer => {
            v.as_f64().is_some_and(|f| f.fract() == 0.0) || v.is_i64() || v.is_u64()
        }
        JsonType::Number => v.is_number(),
        JsonType::String => v.is_string(),
        JsonType::Array => v.is_array(),
        JsonType::Object => v.is_object(),
    }
}

fn strip_unevaluated(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("unevaluatedProperties");
            m.remove("unevaluatedItems");
            for x in m.values_mut() {
                strip_unevaluated(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_unevaluated),
        _ => {}
    }
}

/// A count keyword's value (`minLength`, `maxItems`, ...), `2.0` read as 2.
fn count(n: Option<&Number>) -> Option<usize> {
    let n = n?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1e15)
                .map(|f| {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let u = f as u64;
                    u
                })
        })
        .map(|u| usize::try_from(u).unwrap_or(usize::MAX).min(1 << 20))
}

/// An integral number as i128 (`2.0` included).
pub(crate) fn int_of(n: &Number) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        return Some(i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(i128::from(u));
    }
    let f = n.as_f64()?;
    #[allow(clippy::cast_possible_truncation)]
    (f.fract() == 0.0 && f.abs() < 1.7e38).then_some(f as i128)
}

/// The keywords a numeric leaf may hold: its bounds, `multipleOf` and annotations.
fn leaf_key(k: &str) -> bool {
    const NUMERIC: &[&str] = &[
        "type",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "$schema",
        "$id",
    ];
    NUMERIC.contains(&k) || super::ANNOTATIONS.contains(&k)
}

/// A schema that is only `"type": "integer"` with bounds and `multipleOf` (and annotations), as
/// an [`IntegerView`] with inclusive integer bounds; `None` for anything else.
fn integer_leaf(schema: &Value) -> Option<IntegerView> {
    let map = schema.as_object()?;
    if map.get("type")?.as_str()? != "integer" || !map.keys().all(|k| leaf_key(k)) {
        return None;
    }
    // The least (`up`) or greatest integer on the admitted side of a bound.
    let bound = |key: &str, exclusive: bool, up: bool| -> Option<Option<i128>> {
        let Some(v) = map.get(key) else {
            return Some(None);
        };
        let n = v.as_number()?;
        let i = match int_of(n) {
            Some(i) if exclusive => {
                if up {
                    i + 1
                } else {
                    i - 1
                }
            }
            Some(i) => i,
            None => {
                let f = n.as_f64().filter(|f| f.abs() < 1.7e38)?;
                #[allow(clippy::cast_possible_truncation)]
                let i = if up { f.ceil() } else { f.floor() } as i128;
                i
            }
        };
        Some(Some(i))
    };
    let lo = [
        bound("minimum", false, true)?,
        bound("exclusiveMinimum", true, true)?,
    ]
    .into_iter()
    .flatten()
    .max();
    let hi = [
        bound("maximum", false, false)?,
        bound("exclusiveMaximum", true, false)?,
    ]
    .into_iter()
    .flatten()
    .min();
    let number = |i: i128| json_int(i).as_number().cloned();
    Some(IntegerView {
        minimum: lo.and_then(number),
        maximum: hi.and_then(number),
        multiple_of: map
            .get("multipleOf")
            .and_then(Value::as_number)
            .cloned()
            .into_iter()
            .collect(),
        not_multiple_of: Vec::new(),
    })
}

/// A numeric leaf the canonical form leaves unmodeled, as the view its generator takes.
enum Leaf {
    Integer(IntegerView),
    Number(NumberView),
}

/// A schema that is only `"type": "integer"` or `"type": "number"` with bounds and
/// `multipleOf` (and annotations): [`integer_leaf`], or for numbers the tighter of each
/// inclusive and exclusive bound.
fn numeric_leaf(schema: &Value) -> Option<Leaf> {
    if let Some(v) = integer_leaf(schema) {
        return Some(Leaf::Integer(v));
    }
    let map = schema.as_object()?;
    if map.get("type")?.as_str()? != "number" || !map.keys().all(|k| leaf_key(k)) {
        return None;
    }
    let num = |k: &str| -> Option<Option<&Number>> {
        map.get(k).map_or(Some(None), |v| v.as_number().map(Some))
    };
    let tighter = |inclusive: Option<&Number>, exclusive: Option<&Number>, upper: bool| match (
        inclusive, exclusive,
    ) {
        (Some(i), Some(e)) => {
            let (fi, fe) = (i.as_f64()?, e.as_f64()?);
            let exclusive_wins = if upper { fe <= fi } else { fe >= fi };
            Some(if exclusive_wins {
                (Some(e.clone()), true)
            } else {
                (Some(i.clone()), false)
            })
        }
        (Some(i), None) => Some((Some(i.clone()), false)),
        (None, Some(e)) => Some((Some(e.clone()), true)),
        (None, None) => Some((None, false)),
    };
    let (minimum, exclusive_minimum) = tighter(num("minimum")?, num("exclusiveMinimum")?, false)?;
    let (maximum, exclusive_maximum) = tighter(num("maximum")?, num("exclusiveMaximum")?, true)?;
    Some(Leaf::Number(NumberView {
        minimum,
        exclusive_minimum,
        maximum,
        exclusive_maximum,
        multiple_of: num("multipleOf")?.cloned().into_iter().collect(),
        not_multiple_of: Vec::new(),
        excludes_integers: false,
    }))
}

/// How far from zero the integer generator's window reaches (see `Builder::integer`).
const REACH: i128 = 1 << 62;

/// The generation window for integers: the bounds, or a million either side of what is given.
fn window(lo: Option<i128>, hi: Option<i128>) -> (i128, i128) {
    const SPAN: i128 = 1_000_000;
    match (lo, hi) {
        (Some(l), Some(h)) => (l, h),
        (Some(l), None) => (l, l.saturating_add(2 * SPAN)),
        (None, Some(h)) => (h.saturating_sub(2 * SPAN), h),
        (None, None) => (-SPAN, SPAN),
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let d = a.div_euclid(b);
    if a.rem_euclid(b) == 0 { d } else { d + 1 }
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

fn lcm(a: i128, b: i128) -> i128 {
    (a / gcd(a, b)).saturating_mul(b)
}

/// An integer as JSON: exact as `i64` or `u64`, else the nearest double.
pub(crate) fn json_int(i: i128) -> Value {
    if let Ok(i) = i64::try_from(i) {
        Value::from(i)
    } else if let Ok(u) = u64::try_from(i) {
        Value::from(u)
    } else {
        #[allow(clippy::cast_precision_loss)]
        Value::from(i as f64)
    }
}

/// Multiples of a decimal `m` within `[lo, hi]`, built exactly: `k × m` is written in decimal
/// (`k × digits` with the point moved), never by float division.
fn decimal_multiples(m: &Number, lo: f64, hi: f64) -> Strat {
    /// How many multiples the window holds at most.
    const WIDTH: i128 = 2_000_000_000_000;
    let text = m.to_string();
    let (digits, scale) = match text.split_once('.') {
        Some((int, frac)) if !text.contains(['e', 'E']) => {
            (format!("{int}{frac}").parse::<i128>().ok(), frac.len())
        }
        None if !text.contains(['e', 'E']) => (text.parse::<i128>().ok(), 0),
        _ => (None, 0),
    };
    let (Some(digits), Ok(scale_i)) = (digits.filter(|d| *d > 0), i32::try_from(scale)) else {
        // Exponent notation: multiples by float arithmetic, left to the filter.
        let mf = m.as_f64().unwrap_or(1.0);
        #[allow(clippy::cast_possible_truncation)]
        let (k_lo, k_hi) = (
            (lo / mf).ceil().max(-1e9) as i64,
            (hi / mf).floor().min(1e9) as i64,
        );
        return (k_lo..=k_hi.max(k_lo))
            .prop_map(move |k| {
                #[allow(clippy::cast_precision_loss)]
                Value::from(k as f64 * mf)
            })
            .boxed();
    };
    let p = 10f64.powi(scale_i);
    #[allow(clippy::cast_precision_loss)]
    let unit = digits as f64 / p;
    // The multiples `k` in the bounds, at most 2e12 of them, at the end nearest zero: a window
    // around zero once missed `minimum: 1e18` (every value below it, and the filter gave up).
    #[allow(clippy::cast_possible_truncation)]
    let k_of = |f: f64| (f.is_finite() && f.abs() < 1e36).then_some(f as i128);
    let (kl, kh) = (
        k_of((lo / unit).ceil()).unwrap_or(-WIDTH / 2),
        k_of((hi / unit).floor()).unwrap_or(WIDTH / 2),
    );
    let (k_lo, k_hi) = if kh - kl <= WIDTH {
        (kl, kh)
    } else if kl >= 0 {
        (kl, kl + WIDTH)
    } else if kh <= 0 {
        (kh - WIDTH, kh)
    } else {
        (kl.max(-WIDTH / 2), kh.min(WIDTH / 2))
    };
    // Drawn as `i64` where the window fits (the draws, and so the suite report, stay as they
    // were), as `i128` past it.
    let ks: BoxedStrategy<i128> = match (i64::try_from(k_lo), i64::try_from(k_hi.max(k_lo))) {
        (Ok(lo), Ok(hi)) => (lo..=hi).prop_map(i128::from).boxed(),
        _ => (k_lo..=k_hi.max(k_lo)).boxed(),
    };
    ks.prop_map(move |k| {
        let Some(n) = k.checked_mul(digits) else {
            return Value::Null;
        };
        if scale == 0 {
            return json_int(n);
        }
        let neg = n < 0;
        let mut s = n.unsigned_abs().to_string();
        while s.len() <= scale {
            s.insert(0, '0');
        }
        s.insert(s.len() - scale, '.');
        if neg {
            s.insert(0, '-');
        }
        s.parse::<f64>().map_or(Value::Null, Value::from)
    })
    .boxed()
}

/// Whether `name` matches the ECMA-262 `pattern` as jsonschema reads it (unanchored).
pub(crate) fn regex_matches(pattern: &str, name: &str) -> bool {
    static CACHE: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<String, Option<Arc<jsonschema::Validator>>>>,
    > = std::sync::LazyLock::new(Default::default);
    let validator = {
        let Ok(mut cache) = CACHE.lock() else {
            return false;
        };
        cache
            .entry(pattern.to_owned())
            .or_insert_with(|| {
                jsonschema::validator_for(&json!({"pattern": pattern}))
                    .ok()
                    .map(Arc::new)
            })
            .clone()
    };
    validator.is_some_and(|v| v.is_valid(&Value::String(name.to_owned())))
}
