//! Message generators derived from JSON Schemas, as proptest strategies (with shrinking).
//!
//! [`values`] turns a schema into a strategy of JSON values the schema accepts;
//! [`valid_message`] and [`invalid_message`] build whole Kafka messages (key, headers, payload)
//! for a catalog topic: valid ones, and ones that break exactly one named [`Rule`].
//!
//! Supported: `type` (one or several), `enum`, `const`, `properties`, `required`,
//! `additionalProperties` (`false`, `true`, a schema), `minLength`/`maxLength`, `pattern`
//! (proptest regex strategies), `format` (`uuid`, `date-time`, `date`, `email`, `uri`, `ipv4`,
//! `hostname`), `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum`, `multipleOf`,
//! `items`, `minItems`/`maxItems`, `uniqueItems`, `oneOf`/`anyOf`/`allOf`, local `$ref` into
//! `$defs`/`definitions` (recursion bounded by [`MAX_DEPTH`]). Anything else that constrains
//! values is an [`Error::Unsupported`] naming the keyword and where it is: never ignored.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Just, Strategy};
use serde_json::{Map, Value, json};

use crate::Error;

/// How deep `$ref`s may nest before optional parts (optional properties, array items beyond
/// `minItems`) are left out.
pub const MAX_DEPTH: usize = 6;

/// Keywords that do not constrain values (annotations and containers of definitions).
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$anchor",
    "$comment",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$defs",
    "definitions",
    "contentMediaType",
    "contentEncoding",
];

/// Keywords [`values`] honours.
const SUPPORTED: &[&str] = &[
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "oneOf",
    "anyOf",
    "allOf",
    "$ref",
];

/// Formats [`values`] can generate.
pub const FORMATS: &[&str] = &[
    "uuid",
    "date-time",
    "date",
    "email",
    "uri",
    "ipv4",
    "hostname",
];

/// A strategy of JSON values that `schema` accepts. `schema` is the whole document: local
/// `$ref`s resolve against it.
pub fn values(schema: &Value) -> Result<BoxedStrategy<Value>, Error> {
    Gen { root: schema }.node(schema, "", 0)
}

/// Every keyword of `schema` (at any depth) the generator cannot honour, as `(pointer, keyword)`.
pub fn unsupported(schema: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk_unsupported(schema, "", &mut out);
    out
}

fn walk_unsupported(schema: &Value, at: &str, out: &mut Vec<(String, String)>) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    for (k, v) in obj {
        let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
        if !SUPPORTED.contains(&k.as_str()) && !ANNOTATIONS.contains(&k.as_str()) {
            out.push((at.to_owned(), k.clone()));
            continue;
        }
        match k.as_str() {
            "properties" | "$defs" | "definitions" => {
                if let Some(m) = v.as_object() {
                    for (name, s) in m {
                        walk_unsupported(s, &format!("{here}/{name}"), out);
                    }
                }
            }
            "items" | "additionalProperties" => walk_unsupported(v, &here, out),
            "oneOf" | "anyOf" | "allOf" => {
                for (i, s) in v.as_array().into_iter().flatten().enumerate() {
                    walk_unsupported(s, &format!("{here}/{i}"), out);
                }
            }
            "format" => {
                if let Some(f) = v.as_str()
                    && !FORMATS.contains(&f)
                {
                    out.push((at.to_owned(), format!("format: {f}")));
                }
            }
            _ => {}
        }
    }
}

struct Gen<'a> {
    root: &'a Value,
}

fn unsupported_err(at: &str, keyword: &str) -> Error {
    Error::Unsupported {
        keyword: keyword.to_owned(),
        at: if at.is_empty() {
            "/".to_owned()
        } else {
            at.to_owned()
        },
    }
}

impl Gen<'_> {
    fn resolve(&self, reference: &str, at: &str) -> Result<Value, Error> {
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| unsupported_err(at, &format!("$ref: {reference} (not local)")))?;
        self.root
            .pointer(pointer)
            .cloned()
            .ok_or_else(|| unsupported_err(at, &format!("$ref: {reference} (points nowhere)")))
    }

    fn node(&self, schema: &Value, at: &str, depth: usize) -> Result<BoxedStrategy<Value>, Error> {
        match schema {
            Value::Bool(true) => return Ok(any_scalar()),
            Value::Bool(false) => return Err(unsupported_err(at, "false (accepts nothing)")),
            _ => {}
        }
        let Some(obj) = schema.as_object() else {
            return Err(unsupported_err(at, "schema that is not an object"));
        };
        for k in obj.keys() {
            if !SUPPORTED.contains(&k.as_str()) && !ANNOTATIONS.contains(&k.as_str()) {
                return Err(unsupported_err(at, k));
            }
        }
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            if depth > MAX_DEPTH * 4 {
                return Err(unsupported_err(at, "$ref (recursion without an end)"));
            }
            let mut target = self.resolve(r, at)?;
            // Sibling keywords of `$ref` apply too (2020-12): merge them in.
            if let Some(t) = target.as_object_mut() {
                for (k, v) in obj {
                    if k != "$ref" {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
            return self.node(&target, at, depth + 1);
        }
        if let Some(c) = obj.get("const") {
            return Ok(Just(c.clone()).boxed());
        }
        if let Some(e) = obj.get("enum").and_then(Value::as_array) {
            if e.is_empty() {
                return Err(unsupported_err(at, "enum: [] (accepts nothing)"));
            }
            return Ok(proptest::sample::select(e.clone()).boxed());
        }
        if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
            let mut merged = obj.clone();
            merged.remove("allOf");
            let mut merged = Value::Object(merged);
            for part in all {
                let part = match part.get("$ref").and_then(Value::as_str) {
                    Some(r) => self.resolve(r, at)?,
                    None => part.clone(),
                };
                merge(&mut merged, &part);
            }
            return self.node(&merged, at, depth);
        }
        if let Some(branches) = obj.get("oneOf").or_else(|| obj.get("anyOf")) {
            return self.branches(obj, branches, at, depth);
        }
        let types: Vec<&str> = match obj.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => infer_type(obj),
        };
        let mut options = Vec::new();
        for t in types {
            options.push(match t {
                "object" => self.object(obj, at, depth)?,
                "array" => self.array(obj, at, depth)?,
                "string" => string(obj, at)?,
                "integer" => integer(obj, at)?,
                "number" => number(obj, at)?,
                "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
                "null" => Just(Value::Null).boxed(),
                other => return Err(unsupported_err(at, &format!("type: {other}"))),
            });
        }
        match options.len() {
            0 => Ok(any_scalar()),
            1 => Ok(options.remove(0)),
            _ => Ok(proptest::strategy::Union::new(options).boxed()),
        }
    }

    /// `oneOf`/`anyOf`: a branch merged with the sibling keywords. For `oneOf`, values that
    /// another branch also accepts are filtered out (they would break "exactly one").
    fn branches(
        &self,
        obj: &Map<String, Value>,
        branches: &Value,
        at: &str,
        depth: usize,
    ) -> Result<BoxedStrategy<Value>, Error> {
        let one_of = obj.contains_key("oneOf");
        let list = branches.as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            return Err(unsupported_err(at, "oneOf/anyOf without branches"));
        }
        let mut base = obj.clone();
        base.remove("oneOf");
        base.remove("anyOf");
        let mut options = Vec::new();
        for (i, branch) in list.iter().enumerate() {
            let mut merged = Value::Object(base.clone());
            let branch = match branch.get("$ref").and_then(Value::as_str) {
                Some(r) => self.resolve(r, at)?,
                None => branch.clone(),
            };
            merge(&mut merged, &branch);
            let s = self.node(&merged, &format!("{at}/oneOf/{i}"), depth + 1)?;
            if one_of {
                let others: Vec<jsonschema::Validator> = list
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .filter_map(|(_, b)| compile_with_defs(self.root, b))
                    .collect();
                options.push(
                    s.prop_filter("oneOf: accepted by another branch too", move |v| {
                        !others.iter().any(|o| o.is_valid(v))
                    })
                    .boxed(),
                );
            } else {
                options.push(s);
            }
        }
        Ok(proptest::strategy::Union::new(options).boxed())
    }

    fn object(
        &self,
        obj: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) -> Result<BoxedStrategy<Value>, Error> {
        let empty = Map::new();
        let props = obj
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let required: Vec<String> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let mut fields: Vec<BoxedStrategy<Option<(String, Value)>>> = Vec::new();
        for (name, s) in props {
            let is_required = required.contains(name);
            if !is_required && depth >= MAX_DEPTH {
                continue;
            }
            let strat = self.node(s, &format!("{at}/{name}"), depth + 1)?;
            let name = name.clone();
            fields.push(if is_required {
                strat.prop_map(move |v| Some((name.clone(), v))).boxed()
            } else {
                proptest::option::of(strat)
                    .prop_map(move |v| v.map(|v| (name.clone(), v)))
                    .boxed()
            });
        }
        for name in &required {
            if !props.contains_key(name) {
                // Required but not described: any value does, unless extra fields are forbidden.
                let extra = obj.get("additionalProperties");
                if extra == Some(&Value::Bool(false)) {
                    return Err(unsupported_err(
                        at,
                        &format!("required `{name}` that additionalProperties: false forbids"),
                    ));
                }
                let strat = match extra {
                    Some(s @ Value::Object(_)) => {
                        self.node(s, &format!("{at}/{name}"), depth + 1)?
                    }
                    _ => any_scalar(),
                };
                let name = name.clone();
                fields.push(strat.prop_map(move |v| Some((name.clone(), v))).boxed());
            }
        }
        // Extra fields where the schema allows them (described by additionalProperties).
        let extra = match obj.get("additionalProperties") {
            Some(s @ Value::Object(_)) if depth < MAX_DEPTH => {
                let strat = self.node(s, &format!("{at}/additionalProperties"), depth + 1)?;
                proptest::collection::btree_map("x_[a-z]{1,6}", strat, 0..3).boxed()
            }
            _ => Just(BTreeMap::new()).boxed(),
        };
        let props_owned = props.clone();
        Ok((fields, extra)
            .prop_map(move |(fields, extra)| {
                let mut m = Map::new();
                for (k, v) in extra {
                    if !props_owned.contains_key(&k) {
                        m.insert(k, v);
                    }
                }
                for (k, v) in fields.into_iter().flatten() {
                    m.insert(k, v);
                }
                Value::Object(m)
            })
            .boxed())
    }

    fn array(
        &self,
        obj: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) -> Result<BoxedStrategy<Value>, Error> {
        let min = usize_of(obj, "minItems").unwrap_or(0);
        let mut max = usize_of(obj, "maxItems").unwrap_or(min + 4).min(min + 8);
        if depth >= MAX_DEPTH {
            max = min;
        }
        if max < min {
            return Err(unsupported_err(at, "maxItems below minItems"));
        }
        let items = match obj.get("items") {
            Some(s) => self.node(s, &format!("{at}/items"), depth + 1)?,
            None => any_scalar(),
        };
        let unique = obj.get("uniqueItems") == Some(&Value::Bool(true));
        let strat = proptest::collection::vec(items, min..=max);
        Ok(if unique {
            strat
                .prop_map(|v| {
                    let mut out: Vec<Value> = Vec::new();
                    for x in v {
                        if !out.contains(&x) {
                            out.push(x);
                        }
                    }
                    out
                })
                .prop_filter("uniqueItems: too few distinct items", move |v| {
                    v.len() >= min
                })
                .prop_map(Value::Array)
                .boxed()
        } else {
            strat.prop_map(Value::Array).boxed()
        })
    }
}

/// Validator of a branch schema, with the root's definitions in scope for its `$ref`s.
fn compile_with_defs(root: &Value, branch: &Value) -> Option<jsonschema::Validator> {
    let mut doc = branch.clone();
    if let (Some(d), Some(defs)) = (doc.as_object_mut(), root.as_object()) {
        for key in ["$defs", "definitions"] {
            if let Some(v) = defs.get(key) {
                d.entry(key.to_owned()).or_insert_with(|| v.clone());
            }
        }
    }
    jsonschema::options()
        .should_validate_formats(true)
        .build(&doc)
        .ok()
}

/// Shallow merge of `part` into `into`: properties merged, required united, bounds tightened,
/// anything else taken from `part`.
pub(crate) fn merge(into: &mut Value, part: &Value) {
    let (Some(into), Some(part)) = (into.as_object_mut(), part.as_object()) else {
        return;
    };
    for (k, v) in part {
        match (k.as_str(), into.get_mut(k)) {
            ("properties", Some(Value::Object(mine))) => {
                if let Some(theirs) = v.as_object() {
                    for (pk, pv) in theirs {
                        mine.insert(pk.clone(), pv.clone());
                    }
                }
            }
            ("required", Some(Value::Array(mine))) => {
                for r in v.as_array().into_iter().flatten() {
                    if !mine.contains(r) {
                        mine.push(r.clone());
                    }
                }
            }
            ("minimum" | "minLength" | "minItems" | "exclusiveMinimum", Some(mine)) => {
                if v.as_f64() > mine.as_f64() {
                    *mine = v.clone();
                }
            }
            ("maximum" | "maxLength" | "maxItems" | "exclusiveMaximum", Some(mine)) => {
                if v.as_f64() < mine.as_f64() {
                    *mine = v.clone();
                }
            }
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

fn infer_type(obj: &Map<String, Value>) -> Vec<&'static str> {
    let has = |ks: &[&str]| ks.iter().any(|k| obj.contains_key(*k));
    if has(&["properties", "required", "additionalProperties"]) {
        vec!["object"]
    } else if has(&["items", "minItems", "maxItems", "uniqueItems"]) {
        vec!["array"]
    } else if has(&["minLength", "maxLength", "pattern", "format"]) {
        vec!["string"]
    } else if has(&[
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
    ]) {
        vec!["number"]
    } else {
        Vec::new()
    }
}

fn any_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|i| json!(i)),
        "[a-z]{0,8}".prop_map(Value::String),
    ]
    .boxed()
}

fn usize_of(obj: &Map<String, Value>, k: &str) -> Option<usize> {
    obj.get(k)
        .and_then(Value::as_u64)
        .and_then(|v| usize::try_from(v).ok())
}

fn string(obj: &Map<String, Value>, at: &str) -> Result<BoxedStrategy<Value>, Error> {
    let min = usize_of(obj, "minLength").unwrap_or(0);
    let max = usize_of(obj, "maxLength");
    if max.is_some_and(|m| m < min) {
        return Err(unsupported_err(at, "maxLength below minLength"));
    }
    let format = obj.get("format").and_then(Value::as_str);
    let pattern = obj.get("pattern").and_then(Value::as_str);
    let base: BoxedStrategy<String> = match (format, pattern) {
        (Some(f), None) => format_strategy(f, at)?,
        (_, Some(p)) => {
            let regex = strip_anchors(p);
            proptest::string::string_regex(&regex)
                .map_err(|e| unsupported_err(at, &format!("pattern: {p} ({e})")))?
                .boxed()
        }
        (None, None) => {
            let hi = max.unwrap_or(min + 16).min(min + 64);
            proptest::collection::vec(
                prop_oneof![8 => proptest::char::range('a', 'z'), 1 => proptest::char::range('\u{e0}', '\u{ff}'), 1 => Just(' ')],
                min..=hi,
            )
            .prop_map(|cs| cs.into_iter().collect())
            .boxed()
        }
    };
    let mut strat = base;
    if let Some(f) = format {
        // The format's own checker has the last word (a pattern may allow what it does not).
        let f = f.to_owned();
        strat = strat
            .prop_filter("string is not of the format", move |s| {
                matches_format(&f, s)
            })
            .boxed();
    }
    if min > 0 || max.is_some() {
        strat = strat
            .prop_filter("string length outside minLength/maxLength", move |s| {
                let n = s.chars().count();
                n >= min && max.is_none_or(|m| n <= m)
            })
            .boxed();
    }
    Ok(strat.prop_map(Value::String).boxed())
}

/// proptest generates strings the regex matches whole; `^`/`$` at the ends are implied.
fn strip_anchors(p: &str) -> String {
    let p = p.strip_prefix('^').unwrap_or(p);
    let p = match p.strip_suffix('$') {
        Some(rest) if !rest.ends_with('\\') => rest,
        _ => p,
    };
    p.to_owned()
}

fn format_strategy(f: &str, at: &str) -> Result<BoxedStrategy<String>, Error> {
    Ok(match f {
        "uuid" => any::<u128>()
            .prop_map(|n| uuid::Uuid::from_u128(n).to_string())
            .boxed(),
        "date-time" => (0i64..4_102_444_800, 0u32..1000, -12i32..=14)
            .prop_map(|(secs, ms, tz)| {
                use chrono::Offset as _;
                let utc =
                    chrono::DateTime::from_timestamp(secs, ms * 1_000_000).unwrap_or_default();
                let offset = chrono::FixedOffset::east_opt(tz * 3600).unwrap_or(chrono::Utc.fix());
                utc.with_timezone(&offset).to_rfc3339()
            })
            .boxed(),
        "date" => (0i64..4_102_444_800)
            .prop_map(|secs| {
                chrono::DateTime::from_timestamp(secs, 0)
                    .unwrap_or_default()
                    .date_naive()
                    .to_string()
            })
            .boxed(),
        "email" => {
            "[a-z][a-z0-9]{0,8}(\\.[a-z0-9]{1,6}){0,2}@[a-z]{1,10}\\.(com|org|example)".boxed()
        }
        "uri" => "https://[a-z]{1,10}\\.example(/[a-z0-9]{1,8}){0,3}".boxed(),
        "ipv4" => any::<[u8; 4]>()
            .prop_map(|b| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]))
            .boxed(),
        "hostname" => {
            "[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?(\\.[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?){0,3}"
                .boxed()
        }
        other => return Err(unsupported_err(at, &format!("format: {other}"))),
    })
}

fn matches_format(f: &str, s: &str) -> bool {
    static CHECKERS: std::sync::LazyLock<BTreeMap<&'static str, jsonschema::Validator>> =
        std::sync::LazyLock::new(|| {
            FORMATS
                .iter()
                .filter_map(|f| {
                    jsonschema::options()
                        .should_validate_formats(true)
                        .build(&json!({"type": "string", "format": f}))
                        .ok()
                        .map(|v| (*f, v))
                })
                .collect()
        });
    CHECKERS
        .get(f)
        .is_some_and(|v| v.is_valid(&Value::String(s.to_owned())))
}

/// Inclusive integer bounds from minimum/maximum/exclusive*.
fn int_bounds(obj: &Map<String, Value>) -> (i64, i64) {
    let f = |k: &str| obj.get(k).and_then(Value::as_f64);
    #[allow(clippy::cast_possible_truncation)]
    let lo = match (f("minimum"), f("exclusiveMinimum")) {
        (Some(m), Some(e)) => m.ceil().max(e.floor() + 1.0),
        (Some(m), None) => m.ceil(),
        (None, Some(e)) => e.floor() + 1.0,
        (None, None) => -1_000_000.0,
    } as i64;
    #[allow(clippy::cast_possible_truncation)]
    let hi = match (f("maximum"), f("exclusiveMaximum")) {
        (Some(m), Some(e)) => m.floor().min(e.ceil() - 1.0),
        (Some(m), None) => m.floor(),
        (None, Some(e)) => e.ceil() - 1.0,
        #[allow(clippy::cast_precision_loss)]
        (None, None) => (lo.max(0) + 1_000_000) as f64,
    } as i64;
    (lo, hi)
}

fn integer(obj: &Map<String, Value>, at: &str) -> Result<BoxedStrategy<Value>, Error> {
    let (lo, hi) = int_bounds(obj);
    if let Some(m) = obj.get("multipleOf").and_then(Value::as_f64) {
        #[allow(clippy::cast_possible_truncation)]
        let step = m as i64;
        #[allow(clippy::cast_precision_loss)]
        if step <= 0 || (step as f64 - m).abs() > f64::EPSILON {
            return Err(unsupported_err(
                at,
                &format!("multipleOf: {m} on an integer"),
            ));
        }
        let k_lo = lo.div_euclid(step) + i64::from(lo.rem_euclid(step) != 0);
        let k_hi = hi.div_euclid(step);
        if k_hi < k_lo {
            return Err(unsupported_err(
                at,
                "multipleOf: no multiple within the bounds",
            ));
        }
        return Ok((k_lo..=k_hi).prop_map(move |k| json!(k * step)).boxed());
    }
    if hi < lo {
        return Err(unsupported_err(at, "maximum below minimum"));
    }
    Ok((lo..=hi).prop_map(|i| json!(i)).boxed())
}

fn number(obj: &Map<String, Value>, at: &str) -> Result<BoxedStrategy<Value>, Error> {
    if let Some(m) = obj.get("multipleOf").and_then(Value::as_f64) {
        if m <= 0.0 {
            return Err(unsupported_err(at, "multipleOf <= 0"));
        }
        let f = |k: &str| obj.get(k).and_then(Value::as_f64);
        let lo = f("minimum").or(f("exclusiveMinimum")).unwrap_or(-1e6);
        let hi = f("maximum").or(f("exclusiveMaximum")).unwrap_or(1e6);
        #[allow(clippy::cast_possible_truncation)]
        let (k_lo, k_hi) = ((lo / m).ceil() as i64, (hi / m).floor() as i64);
        let (ex_lo, ex_hi) = (f("exclusiveMinimum"), f("exclusiveMaximum"));
        return Ok((k_lo..=k_hi)
            .prop_map(move |k| {
                #[allow(clippy::cast_precision_loss)]
                let x = k as f64 * m;
                // Round to the step's decimals so the value is an exact multiple in decimal.
                let decimals = decimals_of(m);
                let p = 10f64.powi(decimals);
                (x * p).round() / p
            })
            .prop_filter("number outside exclusive bounds", move |x| {
                ex_lo.is_none_or(|e| *x > e) && ex_hi.is_none_or(|e| *x < e)
            })
            .prop_map(|x| json!(x))
            .boxed());
    }
    let f = |k: &str| obj.get(k).and_then(Value::as_f64);
    let lo = f("minimum").or(f("exclusiveMinimum")).unwrap_or(-1e6);
    let hi = f("maximum")
        .or(f("exclusiveMaximum"))
        .unwrap_or(lo.max(0.0) + 1e6);
    if hi < lo {
        return Err(unsupported_err(at, "maximum below minimum"));
    }
    let (ex_lo, ex_hi) = (f("exclusiveMinimum"), f("exclusiveMaximum"));
    Ok((lo..=hi)
        .prop_filter("number outside exclusive bounds", move |x| {
            ex_lo.is_none_or(|e| *x > e) && ex_hi.is_none_or(|e| *x < e)
        })
        .prop_map(|x| json!(x))
        .boxed())
}

fn decimals_of(m: f64) -> i32 {
    let s = format!("{m}");
    s.split_once('.')
        .map_or(0, |(_, d)| i32::try_from(d.len()).unwrap_or(0))
}
