//! The static diff of two schema documents: every change of a constraint, with a stable rule id,
//! the direction it breaks, and the JSON pointers of the keyword in each document.
//!
//! The two documents are walked side by side from their roots: `properties` by name, `items`
//! and tuple positions by index, `additionalProperties`, `patternProperties`, combinators by
//! position, and `$ref`s resolved in each document (a reference's target is diffed as if it were
//! written in place). Every keyword of JSON Schema is a conjunct, so a keyword that appears
//! narrows the values accepted and one that disappears widens them; the rules below say which
//! way each change goes, and the ones that depend on the values (bounds, `type`, `enum`,
//! `multipleOf`) compare them.
//!
//! - *Backward*: the changed schema refuses something the deployed one accepted (deployed
//!   producers, or what is already on the topic, break the new consumers).
//! - *Forward*: the changed schema accepts something the deployed one refused (producers built
//!   on the change break deployed consumers).
//! - *Both*.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use evkit_schema::pointer::escape;
use serde_json::Value;

use crate::generate::resolve_ref;

/// Which deployed side a change breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The change refuses what the deployed schema accepted: new consumers break on what
    /// deployed producers send (and on what is already on the topic).
    Backward,
    /// The change accepts what the deployed schema refused: deployed consumers break on what
    /// new producers send.
    Forward,
    /// Both.
    Both,
}

impl Direction {
    /// `true` when the change breaks backward compatibility.
    pub fn backward(self) -> bool {
        matches!(self, Direction::Backward | Direction::Both)
    }

    /// `true` when the change breaks forward compatibility.
    pub fn forward(self) -> bool {
        matches!(self, Direction::Forward | Direction::Both)
    }

    /// The direction of a change seen through `not` (what it narrows, the negation widens).
    #[must_use]
    pub fn flipped(self) -> Direction {
        match self {
            Direction::Backward => Direction::Forward,
            Direction::Forward => Direction::Backward,
            Direction::Both => Direction::Both,
        }
    }

    /// Both directions joined.
    #[must_use]
    pub fn join(self, other: Direction) -> Direction {
        if self == other { self } else { Direction::Both }
    }

    /// `backward`, `forward` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Backward => "backward",
            Direction::Forward => "forward",
            Direction::Both => "both",
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the consuming side's validator shows a message that a change breaks: which keyword
/// refuses it, and at which instance location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Instance location template (`*` for any index or name; empty for the root).
    pub instance: String,
    /// The keyword that refuses (`None`: any keyword).
    pub keyword: Option<String>,
    /// Whether refusals below the location count too.
    pub deeper: bool,
}

impl Refusal {
    fn at(instance: &str, keyword: &str) -> Self {
        Refusal {
            instance: instance.to_owned(),
            keyword: Some(keyword.to_owned()),
            deeper: false,
        }
    }

    fn under(instance: &str) -> Self {
        Refusal {
            instance: instance.to_owned(),
            keyword: None,
            deeper: true,
        }
    }

    /// `true` when an error at `instance_path` by `keyword` is this refusal.
    pub fn matches(&self, instance_path: &str, keyword: &str) -> bool {
        if self.keyword.as_deref().is_some_and(|k| k != keyword) {
            return false;
        }
        let want: Vec<&str> = self.instance.split('/').skip(1).collect();
        let got: Vec<&str> = instance_path.split('/').skip(1).collect();
        if got.len() < want.len() || (!self.deeper && got.len() != want.len()) {
            return false;
        }
        want.iter().zip(&got).all(|(w, g)| *w == "*" || w == g)
    }
}

/// One change between the two documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The stable rule id (see [`RULES`]).
    pub rule: &'static str,
    /// Which way it breaks.
    pub direction: Direction,
    /// Pointer of the keyword in the deployed document (`None` when it has none).
    pub old_pointer: Option<String>,
    /// Pointer of the keyword in the changed document (`None` when it has none).
    pub new_pointer: Option<String>,
    /// What changed, in words.
    pub detail: String,
    /// How the consuming side refuses a message the change breaks.
    pub refusal: Refusal,
    /// Why the change breaks nothing in the [`Change::proven`] directions, where the schemas
    /// themselves show it: a length bound the `pattern` already enforces, a `pattern` that
    /// accepts every string the other one does. The gate still looks for a witness; one found
    /// overrules this.
    pub proof: Option<String>,
    /// The directions [`Change::proof`] shows unaffected.
    pub proven: Vec<Direction>,
}

impl Change {
    /// The pointer that names the change: the changed document's, else the deployed one's.
    pub fn pointer(&self) -> &str {
        self.new_pointer
            .as_deref()
            .or(self.old_pointer.as_deref())
            .unwrap_or("")
    }
}

/// Every rule id of the gate, with the direction it breaks (`None` where the values decide)
/// and what it means. The README's rule table is this list.
pub const RULES: &[(&str, Option<Direction>, &str)] = &[
    // Catalog entries.
    (
        "topic-removed",
        Some(Direction::Both),
        "a topic of the deployed catalog is gone",
    ),
    (
        "envelope-mode-changed",
        Some(Direction::Both),
        "plain JSON, CloudEvents binary or structured: no consumer reads two",
    ),
    (
        "envelope-type-changed",
        Some(Direction::Both),
        "the CloudEvents `type` an owned topic sends",
    ),
    (
        "envelope-source-changed",
        Some(Direction::Both),
        "the CloudEvents `source` an owned topic sends",
    ),
    (
        "dataschema-added",
        Some(Direction::Forward),
        "events with a new `dataschema`, which deployed consumers refuse",
    ),
    (
        "dataschema-removed",
        Some(Direction::Backward),
        "events with a `dataschema` deployed producers send are refused",
    ),
    (
        "dataschema-retargeted",
        None,
        "a `dataschema` names another definition (its changes are listed too)",
    ),
    (
        "key-pointer-changed",
        Some(Direction::Both),
        "the key comes from another field: an entity's messages move partition and lose order",
    ),
    (
        "key-required-added",
        Some(Direction::Backward),
        "a key becomes required",
    ),
    (
        "key-required-removed",
        Some(Direction::Forward),
        "a key is no longer required; deployed consumers require one",
    ),
    (
        "header-required-added",
        Some(Direction::Backward),
        "a header becomes required",
    ),
    (
        "header-required-removed",
        Some(Direction::Forward),
        "a header is no longer required; deployed consumers require it",
    ),
    // Schemas (payload, key, headers).
    (
        "type-narrowed",
        Some(Direction::Backward),
        "`type` accepts fewer types (`number` to `integer` included)",
    ),
    (
        "type-widened",
        Some(Direction::Forward),
        "`type` accepts more types",
    ),
    (
        "type-changed",
        Some(Direction::Both),
        "`type` drops some types and adds others",
    ),
    (
        "enum-added",
        Some(Direction::Backward),
        "an `enum` where there was none",
    ),
    (
        "enum-removed",
        Some(Direction::Forward),
        "an `enum` is gone",
    ),
    (
        "enum-value-removed",
        Some(Direction::Backward),
        "values removed from an `enum`",
    ),
    (
        "enum-value-added",
        Some(Direction::Forward),
        "values added to an `enum`",
    ),
    (
        "const-added",
        Some(Direction::Backward),
        "a `const` where there was none",
    ),
    (
        "const-removed",
        Some(Direction::Forward),
        "a `const` is gone",
    ),
    (
        "const-changed",
        Some(Direction::Both),
        "a `const` with another value",
    ),
    (
        "bound-tightened",
        Some(Direction::Backward),
        "a numeric, length, item, property or contains bound added or made stricter",
    ),
    (
        "bound-loosened",
        Some(Direction::Forward),
        "a numeric, length, item, property or contains bound removed or relaxed",
    ),
    (
        "pattern-added",
        Some(Direction::Backward),
        "a `pattern` where there was none",
    ),
    (
        "pattern-removed",
        Some(Direction::Forward),
        "a `pattern` is gone",
    ),
    (
        "pattern-changed",
        Some(Direction::Both),
        "a `pattern` with another regular expression (a direction where one accepts every string \
         the other does is proven harmless)",
    ),
    (
        "format-added",
        Some(Direction::Backward),
        "a `format` (asserted) where there was none",
    ),
    (
        "format-removed",
        Some(Direction::Forward),
        "a `format` is gone",
    ),
    (
        "format-changed",
        Some(Direction::Both),
        "a `format` with another name",
    ),
    (
        "multiple-of-added",
        Some(Direction::Backward),
        "a `multipleOf` where there was none",
    ),
    (
        "multiple-of-removed",
        Some(Direction::Forward),
        "a `multipleOf` is gone",
    ),
    (
        "multiple-of-changed",
        None,
        "another `multipleOf`: backward when the new one is a multiple of the old, forward when \
         the old one is a multiple of the new, both otherwise",
    ),
    (
        "unique-items-added",
        Some(Direction::Backward),
        "`uniqueItems` turned on",
    ),
    (
        "unique-items-removed",
        Some(Direction::Forward),
        "`uniqueItems` turned off",
    ),
    (
        "required-added",
        Some(Direction::Backward),
        "a property becomes required",
    ),
    (
        "required-removed",
        Some(Direction::Forward),
        "a property is no longer required",
    ),
    (
        "property-added-open",
        Some(Direction::Backward),
        "a described property on an open object: deployed producers may send that name with \
         any value",
    ),
    (
        "property-added-closed",
        Some(Direction::Forward),
        "a property on a closed object: deployed consumers refuse it",
    ),
    (
        "property-removed-open",
        Some(Direction::Forward),
        "a property's description is gone from an open object: any value is now accepted",
    ),
    (
        "property-removed-closed",
        Some(Direction::Backward),
        "a property is gone from a closed object: deployed producers' messages carrying it are \
         refused",
    ),
    (
        "additional-properties-narrowed",
        Some(Direction::Backward),
        "`additionalProperties` accepts less (an object closed included)",
    ),
    (
        "additional-properties-widened",
        Some(Direction::Forward),
        "`additionalProperties` accepts more (an object opened included)",
    ),
    (
        "pattern-property-added",
        Some(Direction::Backward),
        "a `patternProperties` entry added",
    ),
    (
        "pattern-property-removed",
        Some(Direction::Forward),
        "a `patternProperties` entry removed",
    ),
    (
        "items-narrowed",
        Some(Direction::Backward),
        "array items, or a tuple position, described where anything was accepted (or closed)",
    ),
    (
        "items-widened",
        Some(Direction::Forward),
        "array items, or a tuple position, no longer described (or opened)",
    ),
    (
        "dependency-added",
        Some(Direction::Backward),
        "a dependency (`dependentRequired`, `dependentSchemas`, `dependencies`) added",
    ),
    (
        "dependency-removed",
        Some(Direction::Forward),
        "a dependency removed",
    ),
    (
        "branch-added",
        None,
        "a branch added to `anyOf` (forward), `allOf` (backward) or `oneOf` (both)",
    ),
    (
        "branch-removed",
        None,
        "a branch removed from `anyOf` (backward), `allOf` (forward) or `oneOf` (both)",
    ),
    (
        "ref-changed",
        None,
        "a `$ref` names another target that differs (its changes are listed too)",
    ),
    (
        "schema-narrowed",
        Some(Direction::Backward),
        "a subschema becomes `false`",
    ),
    (
        "schema-widened",
        Some(Direction::Forward),
        "a `false` subschema becomes something",
    ),
    (
        "constraint-added",
        Some(Direction::Backward),
        "any other constraint keyword added (`contains`, `not`, `if`/`then`/`else`, \
         `unevaluated*`, ...)",
    ),
    (
        "constraint-removed",
        Some(Direction::Forward),
        "any other constraint keyword removed",
    ),
    (
        "keyword-changed",
        Some(Direction::Both),
        "any other constraint keyword whose value changed in a way not classified above",
    ),
    // Found by the search, or outside the schemas.
    (
        "unexplained",
        None,
        "a message the search found that one side accepts and the other refuses, explained by \
         no change above",
    ),
    (
        "contracts",
        Some(Direction::Both),
        "a service contract no longer holds against the change",
    ),
];

/// Keywords that do not constrain values: changing them changes no verdict.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "$comment",
    "$vocabulary",
    "$defs",
    "definitions",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentMediaType",
    "contentEncoding",
    "contentSchema",
];

/// Keywords handled by their own rule; everything else that constrains goes to the generic
/// `constraint-*` / `keyword-changed` rules.
const HANDLED: &[&str] = &[
    "$ref",
    "type",
    "enum",
    "const",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "maxContains",
    "minContains",
    "pattern",
    "format",
    "multipleOf",
    "uniqueItems",
    "required",
    "properties",
    "additionalProperties",
    "patternProperties",
    "propertyNames",
    "items",
    "prefixItems",
    "additionalItems",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "then",
    "else",
    "contains",
];

/// Bounds: keyword, and whether it is an upper bound.
const BOUNDS: &[(&str, bool)] = &[
    ("maximum", true),
    ("exclusiveMaximum", true),
    ("maxLength", true),
    ("maxItems", true),
    ("maxProperties", true),
    ("maxContains", true),
    ("minimum", false),
    ("exclusiveMinimum", false),
    ("minLength", false),
    ("minItems", false),
    ("minProperties", false),
    ("minContains", false),
];

/// The schema that accepts everything, standing for an absent keyword.
static TRUE: Value = Value::Bool(true);

const ALL_TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "string", "integer",
];

/// Diffs the subschema at `old_at` of `old` with the one at `new_at` of `new` (`""` for the
/// roots). Both documents are read under their own draft for the array forms of `items`.
pub fn diff(old: &Value, old_at: &str, new: &Value, new_at: &str) -> Vec<Change> {
    let mut d = Differ {
        old,
        new,
        old_legacy_items: legacy_items(old),
        new_legacy_items: legacy_items(new),
        seen: HashSet::new(),
        out: Vec::new(),
    };
    let (Some(o), Some(n)) = (old.pointer(old_at), new.pointer(new_at)) else {
        return d.out;
    };
    let draft = |doc: &Value| {
        doc.get("$schema")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if draft(old) != draft(new) {
        d.out.push(Change {
            rule: "keyword-changed",
            direction: Direction::Both,
            old_pointer: draft(old).map(|_| "/$schema".to_owned()),
            new_pointer: draft(new).map(|_| "/$schema".to_owned()),
            detail: format!(
                "the draft changes from {} to {}: keywords may mean something else",
                draft(old).unwrap_or_else(|| "(default)".to_owned()),
                draft(new).unwrap_or_else(|| "(default)".to_owned())
            ),
            refusal: Refusal::under(""),
            proof: None,
            proven: Vec::new(),
        });
    }
    d.node(
        Side::new(o, old_at),
        Side::new(n, new_at),
        &Ctx {
            instance: String::new(),
            flip: false,
            exclusive: false,
            via: None,
        },
        0,
    );
    d.out
}

/// Whether the document reads `items: [...]` as a tuple (drafts 4 to 2019-09).
fn legacy_items(doc: &Value) -> bool {
    doc.get("$schema")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.contains("2020-12"))
}

/// One side of a comparison: a subschema and its pointer.
#[derive(Clone)]
struct Side<'a> {
    value: &'a Value,
    at: String,
}

impl<'a> Side<'a> {
    fn new(value: &'a Value, at: impl Into<String>) -> Self {
        Side {
            value,
            at: at.into(),
        }
    }
}

/// Where the walk is: the instance location, whether it is under an odd number of `not`s, and
/// the enclosing `anyOf`/`oneOf`/`not` that a validator names instead of the inner keyword.
#[derive(Clone)]
struct Ctx {
    instance: String,
    flip: bool,
    exclusive: bool,
    via: Option<(String, String)>,
}

impl Ctx {
    fn down(&self, segment: &str) -> Ctx {
        Ctx {
            instance: format!("{}/{}", self.instance, segment),
            flip: self.flip,
            exclusive: self.exclusive,
            via: self.via.clone(),
        }
    }

    fn through(&self, keyword: &str, flip: bool) -> Ctx {
        Ctx {
            instance: self.instance.clone(),
            flip: self.flip ^ flip,
            exclusive: self.exclusive || keyword == "oneOf",
            via: self
                .via
                .clone()
                .or_else(|| Some((keyword.to_owned(), self.instance.clone()))),
        }
    }
}

/// An array schema read as tuple positions, the schema for the rest, and the keyword that
/// refuses an item past a closed tuple.
type ArrayForm<'a> = (
    Vec<(&'a Value, String)>,
    Option<(&'a Value, String)>,
    &'static str,
);

/// A schema object with its `$ref` targets merged in: keyword → (value, pointer of the
/// keyword).
type Merged<'a> = BTreeMap<String, (&'a Value, String)>;

struct Differ<'a> {
    old: &'a Value,
    new: &'a Value,
    old_legacy_items: bool,
    new_legacy_items: bool,
    seen: HashSet<(String, String, String)>,
    out: Vec<Change>,
}

fn join(at: &str, segment: &str) -> String {
    format!("{at}/{}", escape(segment))
}

fn is_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Object(o) => o
            .keys()
            .all(|k| ANNOTATIONS.contains(&k.as_str()) || k.starts_with("x-")),
        _ => false,
    }
}

/// Two JSON numbers by value, exactly: integers as integers (two int64 bounds a double rounds
/// to the same value stay apart), a number with a fraction against an integer as doubles, which
/// is exact there (a double with a fraction is below 2^53 in magnitude).
fn compare_numbers(x: &serde_json::Number, y: &serde_json::Number) -> Option<std::cmp::Ordering> {
    // A whole double (`1e19`, `2.0`) counts as the integer it is.
    let int = crate::generate::int_of;
    match (int(x), int(y)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

/// A JSON number as the exact decimal `digits × 10^exp` it is written as (a double shows its
/// shortest round-trip form: `0.1`, `1e-20`).
fn decimal(n: &serde_json::Number) -> Option<(i128, i32)> {
    let text = n.to_string();
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text.as_str(), 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}").parse::<i128>().ok()?;
    Some((digits, exp.checked_sub(i32::try_from(frac.len()).ok()?)?))
}

/// Whether `b` is an integer multiple of `a` (two `multipleOf` values), exactly in decimal:
/// `0.3` is a multiple of `0.1`, `3.0000000001` is not one of `3`, and `2e-20` is not `1e-20`
/// (a double's quotient or difference says otherwise for each). Numbers written past what
/// `i128` digits hold fall back to the quotient in doubles.
fn is_multiple(b: &serde_json::Number, a: &serde_json::Number) -> bool {
    let exact = || -> Option<bool> {
        let ((db, eb), (da, ea)) = (decimal(b)?, decimal(a)?);
        if da <= 0 || db <= 0 {
            return None;
        }
        let shift = eb.checked_sub(ea)?;
        if shift >= 0 {
            // db × 10^shift divisible by da, by remainders.
            if shift > 4096 {
                return None;
            }
            let mut r = db % da;
            for _ in 0..shift {
                r = r.checked_mul(10)? % da;
            }
            Some(r == 0)
        } else {
            // db divisible by da × 10^-shift; a divisor past i128 is larger than db.
            let divisor = 10i128
                .checked_pow(shift.unsigned_abs())
                .and_then(|p| p.checked_mul(da));
            Some(divisor.is_some_and(|d| db % d == 0))
        }
    };
    exact().unwrap_or_else(|| {
        let r = b.as_f64().unwrap_or(f64::NAN) / a.as_f64().unwrap_or(f64::NAN);
        (r - r.round()).abs() < 1e-9
    })
}

/// The number a keyword holds, if it holds one.
fn number_of<'v>(v: Option<(&'v Value, &str)>) -> Option<&'v serde_json::Number> {
    match v {
        Some((Value::Number(n), _)) => Some(n),
        _ => None,
    }
}

fn is_false(v: &Value) -> bool {
    v == &Value::Bool(false)
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            compare_numbers(x, y) == Some(std::cmp::Ordering::Equal)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn show(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

impl<'a> Differ<'a> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        rule: &'static str,
        direction: Direction,
        old_pointer: Option<String>,
        new_pointer: Option<String>,
        ctx: &Ctx,
        refusal: Refusal,
        detail: String,
    ) {
        let direction = if ctx.exclusive {
            // Inside `oneOf`, a branch that accepts more can make a value match two branches
            // (refused), and one that accepts less can leave a value matching one (accepted).
            Direction::Both
        } else if ctx.flip {
            direction.flipped()
        } else {
            direction
        };
        // Under `anyOf`/`oneOf`/`not` the validator names the combinator, not the keyword.
        let refusal = match &ctx.via {
            Some((keyword, instance)) => Refusal::at(instance, keyword),
            None => refusal,
        };
        self.out.push(Change {
            rule,
            direction,
            old_pointer,
            new_pointer,
            detail,
            refusal,
            proof: None,
            proven: Vec::new(),
        });
    }

    /// The keywords of `side`, with the targets of its `$ref`s merged in (the referring
    /// object's own keywords win), and the target pointers followed.
    fn merged(doc: &'a Value, side: &Side<'a>) -> (Merged<'a>, Vec<String>) {
        let mut map = Merged::new();
        let mut refs = Vec::new();
        let mut cur = side.value;
        let mut at = side.at.clone();
        for _ in 0..16 {
            let Some(obj) = cur.as_object() else { break };
            for (k, v) in obj {
                if k != "$ref" {
                    map.entry(k.clone()).or_insert((v, at.clone()));
                }
            }
            let Some(reference) = obj.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let Some(target) = resolve_ref(doc, &at, reference) else {
                // Unresolvable here: kept as a keyword, compared as text.
                map.entry("$ref".to_owned())
                    .or_insert((obj.get("$ref").unwrap_or(&Value::Null), at.clone()));
                break;
            };
            let Some(next) = doc.pointer(&target) else {
                break;
            };
            refs.push(target.clone());
            cur = next;
            at = target;
        }
        (map, refs)
    }

    #[allow(clippy::too_many_lines)] // reason: one arm per keyword family, read top to bottom
    #[allow(clippy::needless_pass_by_value)] // reason: each call builds its two sides
    fn node(&mut self, o: Side<'a>, n: Side<'a>, ctx: &Ctx, depth: usize) {
        if depth > 64 {
            return;
        }
        let key = (o.at.clone(), n.at.clone(), ctx.instance.clone());
        if !self.seen.insert(key) {
            return;
        }
        // Booleans first.
        match (is_false(o.value), is_false(n.value)) {
            (true, true) => return,
            (false, true) => {
                if !is_false(o.value) {
                    self.push(
                        "schema-narrowed",
                        Direction::Backward,
                        Some(o.at.clone()),
                        Some(n.at.clone()),
                        ctx,
                        Refusal {
                            instance: ctx.instance.clone(),
                            keyword: None,
                            deeper: false,
                        },
                        "the subschema becomes `false`".to_owned(),
                    );
                }
                return;
            }
            (true, false) => {
                self.push(
                    "schema-widened",
                    Direction::Forward,
                    Some(o.at.clone()),
                    Some(n.at.clone()),
                    ctx,
                    Refusal {
                        instance: ctx.instance.clone(),
                        keyword: None,
                        deeper: false,
                    },
                    "a `false` subschema now accepts values".to_owned(),
                );
                return;
            }
            (false, false) => {}
        }
        let (om, orefs) = Self::merged(self.old, &o);
        let (nm, nrefs) = Self::merged(self.new, &n);
        let before = self.out.len();
        self.keywords(&om, &nm, ctx, depth);
        if self.out.len() > before {
            self.prove_leaf(&om, &nm, ctx, before);
        }
        // A reference that names another target: reported when the targets differ.
        if let (Some(a), Some(b)) = (orefs.last(), nrefs.last()) {
            let renamed = o.value.get("$ref") != n.value.get("$ref");
            if renamed && self.out.len() > before {
                let direction = self.out[before..]
                    .iter()
                    .map(|c| c.direction)
                    .reduce(Direction::join)
                    .unwrap_or(Direction::Both);
                let change = Change {
                    rule: "ref-changed",
                    direction,
                    old_pointer: Some(join(&o.at, "$ref")),
                    new_pointer: Some(join(&n.at, "$ref")),
                    detail: format!("`$ref` now names {b} (was {a})"),
                    refusal: Refusal::under(&ctx.instance),
                    proof: None,
                    proven: Vec::new(),
                };
                self.out.insert(before, change);
            }
        }
    }

    /// Marks the change just pushed as harmless in the `raw` directions (the keyword's own,
    /// before `not` flips them) for `reason`. Under `oneOf` a branch that accepts more, or less,
    /// breaks both ways, so only a proof of both directions (the branch is unchanged) holds.
    fn prove(&mut self, ctx: &Ctx, raw: &[Direction], reason: String) {
        if let Some(last) = self.out.len().checked_sub(1) {
            self.prove_at(last, ctx, raw, reason);
        }
    }

    /// [`Self::prove`] for the change at `i`.
    fn prove_at(&mut self, i: usize, ctx: &Ctx, raw: &[Direction], reason: String) {
        let both = raw.contains(&Direction::Backward) && raw.contains(&Direction::Forward);
        if ctx.exclusive && !both {
            return;
        }
        let Some(change) = self.out.get_mut(i) else {
            return;
        };
        // Only the ways the change would break count (a tightening is trivially harmless
        // forward; saying so is noise).
        let proven: Vec<Direction> = raw
            .iter()
            .map(|d| if ctx.flip { d.flipped() } else { *d })
            .filter(|d| match d {
                Direction::Backward => change.direction.backward(),
                _ => change.direction.forward(),
            })
            .collect();
        if !proven.is_empty() {
            change.proven = proven;
            change.proof = Some(reason);
        }
    }

    /// Changes at a leaf (scalar keywords only: `type`, `enum`, `const`, bounds, `pattern`,
    /// `format`, annotations) that jsonschema's canonical algebra decides on the leaf alone,
    /// where the whole schemas are beyond it: `type: string` added beside an `enum` of
    /// strings, a bound that another bound already implies. The leaf's accepted values are
    /// compared both ways; every change found at it without a proof of its own gets the
    /// directions that hold.
    fn prove_leaf(&mut self, om: &Merged<'a>, nm: &Merged<'a>, ctx: &Ctx, from: usize) {
        let leaf = |m: &Merged<'a>, doc: &Value| -> Option<crate::generate::Schema> {
            let mut out = serde_json::Map::new();
            for (k, (v, _)) in m {
                let k_str = k.as_str();
                if !crate::generate::SCALAR_CONSTRAINTS.contains(&k_str)
                    && !crate::generate::ANNOTATIONS.contains(&k_str)
                {
                    return None;
                }
                out.insert(k.clone(), (*v).clone());
            }
            if let Some(draft) = doc.get("$schema") {
                out.insert("$schema".to_owned(), draft.clone());
            }
            crate::generate::Schema::new(&Value::Object(out)).ok()
        };
        let (Some(o), Some(n)) = (leaf(om, self.old), leaf(nm, self.new)) else {
            return;
        };
        let yes = crate::generate::Containment::Yes;
        let raw: Vec<Direction> = [
            (n.covers(&o) == yes).then_some(Direction::Backward),
            (o.covers(&n) == yes).then_some(Direction::Forward),
        ]
        .into_iter()
        .flatten()
        .collect();
        if raw.is_empty() {
            return;
        }
        let reason = format!(
            "jsonschema's canonical algebra, on this subschema alone: {}",
            match raw.as_slice() {
                [_, _] => "the deployed and the changed subschema accept the same values",
                [Direction::Backward] => {
                    "the changed subschema accepts every value the deployed one does: it breaks \
                     only forward"
                }
                _ => {
                    "the deployed subschema accepts every value the changed one does: it breaks \
                     only backward"
                }
            }
        );
        for i in from..self.out.len() {
            if self.out[i].proof.is_none() {
                self.prove_at(i, ctx, &raw, reason.clone());
            }
        }
    }

    /// A `pattern` added, removed or changed that refuses nothing the other side's accepted,
    /// one way or both (`^[a-z]+$` → `^[a-z0-9]+$` breaks only forward), decided on the two
    /// patterns' DFAs. No pattern is the empty one, which accepts every string.
    /// The narrow side's strings are only those its own `minLength`/`maxLength` let through
    /// (`^[a-z]+$` with `maxLength: 20` → `^[a-z]{1,20}$` breaks nothing).
    fn prove_patterns(&mut self, ctx: &Ctx, om: &Merged<'a>, nm: &Merged<'a>) {
        let text = |m: &Merged<'a>| Self::get(m, "pattern").and_then(|(v, _)| v.as_str());
        let length = |m: &Merged<'a>, k: &str| {
            number_of(Self::get(m, k))
                .and_then(crate::generate::int_of)
                .and_then(|n| usize::try_from(n).ok())
        };
        let within = |wide: &str, narrow: &str, m: &Merged<'a>| {
            let (min, max) = (length(m, "minLength").unwrap_or(0), length(m, "maxLength"));
            evkit_schema::pattern::accepts_all_of_within(wide, narrow, min, max) == Some(true)
        };
        let (old, new) = (text(om), text(nm));
        let (o, n) = (old.unwrap_or(""), new.unwrap_or(""));
        let show =
            |p: Option<&str>| p.map_or_else(|| "no pattern".to_owned(), |p| format!("`{p}`"));
        // Only the ways the change can break: an added pattern only backward, a removed one
        // only forward.
        let backward = new.is_some() && within(n, o, om);
        let forward = old.is_some() && within(o, n, nm);
        let (raw, reason) = match (backward, forward) {
            (true, true) => (
                vec![Direction::Backward, Direction::Forward],
                format!("{} and {} accept the same strings", show(old), show(new)),
            ),
            (true, false) => (
                vec![Direction::Backward],
                format!(
                    "{} accepts every string {} did: it breaks only forward",
                    show(new),
                    show(old)
                ),
            ),
            (false, true) => (
                vec![Direction::Forward],
                format!(
                    "{} accepted every string {} does: it breaks only backward",
                    show(old),
                    show(new)
                ),
            ),
            (false, false) => return,
        };
        self.prove(ctx, &raw, reason);
    }

    /// Whether `m`'s `pattern` already keeps every string within `bound` for `k` (`minLength`
    /// or `maxLength`; any other keyword: `None`), in words.
    fn implied_length(
        m: &Merged<'a>,
        k: &str,
        bound: Option<&serde_json::Number>,
        side: &str,
    ) -> Option<String> {
        let (pattern, _) = Self::get(m, "pattern")?;
        let pattern = pattern.as_str()?;
        let bound = usize::try_from(crate::generate::int_of(bound?)?).ok()?;
        let (fewest, most) = evkit_schema::pattern::lengths(pattern)?;
        match k {
            "maxLength" if most.is_some_and(|most| most <= bound) => Some(format!(
                "the {side} `pattern` {pattern} accepts no string longer than {bound} characters"
            )),
            "minLength" if fewest >= bound => Some(format!(
                "the {side} `pattern` {pattern} accepts no string shorter than {bound} characters"
            )),
            _ => None,
        }
    }

    fn get<'m>(m: &'m Merged<'a>, k: &str) -> Option<(&'a Value, &'m str)> {
        m.get(k).map(|(v, at)| (*v, at.as_str()))
    }

    #[allow(clippy::too_many_lines)] // reason: one block per keyword family
    fn keywords(&mut self, om: &Merged<'a>, nm: &Merged<'a>, ctx: &Ctx, depth: usize) {
        let inst = ctx.instance.clone();
        let optr = |m: &Merged<'a>, k: &str, fallback: &str| {
            m.get(k)
                .map_or_else(|| join(fallback, k), |(_, at)| join(at, k))
        };
        let obase = om
            .values()
            .next()
            .map(|(_, at)| at.clone())
            .unwrap_or_default();
        let nbase = nm
            .values()
            .next()
            .map(|(_, at)| at.clone())
            .unwrap_or_default();
        let po = |k: &str| optr(om, k, &obase);
        let pn = |k: &str| optr(nm, k, &nbase);
        let has = |m: &Merged<'a>, k: &str| m.contains_key(k);

        // type
        let types = |m: &Merged<'a>| -> BTreeSet<String> {
            match m.get("type").map(|(v, _)| *v) {
                Some(Value::String(t)) => [t.clone()].into(),
                Some(Value::Array(ts)) => ts
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => ALL_TYPES.iter().map(|s| (*s).to_owned()).collect(),
            }
        };
        let accepts = |set: &BTreeSet<String>, t: &str| {
            set.contains(t) || (t == "integer" && set.contains("number"))
        };
        let (ot, nt) = (types(om), types(nm));
        let lost: Vec<&String> = ot.iter().filter(|t| !accepts(&nt, t)).collect();
        let gained: Vec<&String> = nt.iter().filter(|t| !accepts(&ot, t)).collect();
        if !lost.is_empty() || !gained.is_empty() {
            let (rule, dir) = match (lost.is_empty(), gained.is_empty()) {
                (false, true) => ("type-narrowed", Direction::Backward),
                (true, false) => ("type-widened", Direction::Forward),
                _ => ("type-changed", Direction::Both),
            };
            let show_types = |m: &Merged<'a>| {
                m.get("type")
                    .map_or_else(|| "any".to_owned(), |(v, _)| show(v))
            };
            self.push(
                rule,
                dir,
                has(om, "type").then(|| po("type")),
                has(nm, "type").then(|| pn("type")),
                ctx,
                Refusal::at(&inst, "type"),
                format!("type {} → {}", show_types(om), show_types(nm)),
            );
        }

        // enum, const
        match (Self::get(om, "enum"), Self::get(nm, "enum")) {
            (None, Some(_)) => self.push(
                "enum-added",
                Direction::Backward,
                None,
                Some(pn("enum")),
                ctx,
                Refusal::at(&inst, "enum"),
                "an enum where any value was accepted".to_owned(),
            ),
            (Some(_), None) => self.push(
                "enum-removed",
                Direction::Forward,
                Some(po("enum")),
                None,
                ctx,
                Refusal::at(&inst, "enum"),
                "the enum is gone".to_owned(),
            ),
            (Some((a, _)), Some((b, _))) => {
                let (a, b) = (
                    a.as_array().cloned().unwrap_or_default(),
                    b.as_array().cloned().unwrap_or_default(),
                );
                let removed: Vec<String> = a
                    .iter()
                    .filter(|x| !b.iter().any(|y| same(x, y)))
                    .map(show)
                    .collect();
                let added: Vec<String> = b
                    .iter()
                    .filter(|y| !a.iter().any(|x| same(x, y)))
                    .map(show)
                    .collect();
                if !removed.is_empty() {
                    self.push(
                        "enum-value-removed",
                        Direction::Backward,
                        Some(po("enum")),
                        Some(pn("enum")),
                        ctx,
                        Refusal::at(&inst, "enum"),
                        format!("enum loses {}", removed.join(", ")),
                    );
                }
                if !added.is_empty() {
                    self.push(
                        "enum-value-added",
                        Direction::Forward,
                        Some(po("enum")),
                        Some(pn("enum")),
                        ctx,
                        Refusal::at(&inst, "enum"),
                        format!("enum gains {}", added.join(", ")),
                    );
                }
            }
            (None, None) => {}
        }
        match (Self::get(om, "const"), Self::get(nm, "const")) {
            (None, Some((b, _))) => self.push(
                "const-added",
                Direction::Backward,
                None,
                Some(pn("const")),
                ctx,
                Refusal::at(&inst, "const"),
                format!("const {}", show(b)),
            ),
            (Some((a, _)), None) => self.push(
                "const-removed",
                Direction::Forward,
                Some(po("const")),
                None,
                ctx,
                Refusal::at(&inst, "const"),
                format!("const {} is gone", show(a)),
            ),
            (Some((a, _)), Some((b, _))) if !same(a, b) => self.push(
                "const-changed",
                Direction::Both,
                Some(po("const")),
                Some(pn("const")),
                ctx,
                Refusal::at(&inst, "const"),
                format!("const {} → {}", show(a), show(b)),
            ),
            _ => {}
        }

        // bounds
        for (k, upper) in BOUNDS {
            let (a, b) = (Self::get(om, k), Self::get(nm, k));
            let (x, y) = (number_of(a), number_of(b));
            if (a.is_some() && x.is_none()) || (b.is_some() && y.is_none()) {
                // Draft 4's boolean `exclusiveMaximum`: compared as a keyword.
                if a.map(|v| v.0) != b.map(|v| v.0) {
                    self.push(
                        "keyword-changed",
                        Direction::Both,
                        a.map(|_| po(k)),
                        b.map(|_| pn(k)),
                        ctx,
                        Refusal::under(&inst),
                        format!("{k} changed"),
                    );
                }
                continue;
            }
            let tightened = match (x, y) {
                (None, Some(_)) => Some(true),
                (Some(_), None) => Some(false),
                (Some(x), Some(y)) => match compare_numbers(x, y) {
                    Some(std::cmp::Ordering::Greater) => Some(*upper),
                    Some(std::cmp::Ordering::Less) => Some(!*upper),
                    _ => None,
                },
                _ => None,
            };
            if let Some(tight) = tightened {
                // As the schema writes it: a double would print 2^63 − 1 as 9223372036854776000.
                let shown = |v: Option<&serde_json::Number>| {
                    v.map_or_else(|| "none".to_owned(), ToString::to_string)
                };
                self.push(
                    if tight {
                        "bound-tightened"
                    } else {
                        "bound-loosened"
                    },
                    if tight {
                        Direction::Backward
                    } else {
                        Direction::Forward
                    },
                    a.map(|_| po(k)),
                    b.map(|_| pn(k)),
                    ctx,
                    Refusal::at(&inst, k),
                    format!("{k} {} → {}", shown(x), shown(y)),
                );
                // The producing side (the deployed schema when the bound tightens, the changed
                // one when it loosens) may already keep every string within the consuming
                // side's bound by its `pattern`.
                let proof = if tight {
                    Self::implied_length(om, k, y, "deployed")
                } else {
                    Self::implied_length(nm, k, x, "changed")
                };
                // A count bound of 0 refuses nothing.
                let neutral = matches!(*k, "minLength" | "minItems" | "minProperties")
                    && y.and_then(crate::generate::int_of) == Some(0)
                    && x.is_none();
                let proof = proof.or_else(|| neutral.then(|| format!("`{k}: 0` refuses nothing")));
                if let Some(proof) = proof {
                    // The keyword refuses nothing the node accepted: the node is unchanged.
                    self.prove(ctx, &[Direction::Backward, Direction::Forward], proof);
                }
            }
        }

        // pattern, format
        for (k, added, removed, changed) in [
            (
                "pattern",
                "pattern-added",
                "pattern-removed",
                "pattern-changed",
            ),
            ("format", "format-added", "format-removed", "format-changed"),
        ] {
            match (Self::get(om, k), Self::get(nm, k)) {
                (None, Some((b, _))) => self.push(
                    added,
                    Direction::Backward,
                    None,
                    Some(pn(k)),
                    ctx,
                    Refusal::at(&inst, k),
                    format!("{k} {}", show(b)),
                ),
                (Some((a, _)), None) => self.push(
                    removed,
                    Direction::Forward,
                    Some(po(k)),
                    None,
                    ctx,
                    Refusal::at(&inst, k),
                    format!("{k} {} is gone", show(a)),
                ),
                (Some((a, _)), Some((b, _))) if a != b => self.push(
                    changed,
                    Direction::Both,
                    Some(po(k)),
                    Some(pn(k)),
                    ctx,
                    Refusal::at(&inst, k),
                    format!("{k} {} → {}", show(a), show(b)),
                ),
                _ => continue,
            }
            if k == "pattern" {
                self.prove_patterns(ctx, om, nm);
            }
        }

        // multipleOf
        match (
            number_of(Self::get(om, "multipleOf")),
            number_of(Self::get(nm, "multipleOf")),
        ) {
            (None, Some(b)) => self.push(
                "multiple-of-added",
                Direction::Backward,
                None,
                Some(pn("multipleOf")),
                ctx,
                Refusal::at(&inst, "multipleOf"),
                format!("multipleOf {b}"),
            ),
            (Some(a), None) => self.push(
                "multiple-of-removed",
                Direction::Forward,
                Some(po("multipleOf")),
                None,
                ctx,
                Refusal::at(&inst, "multipleOf"),
                format!("multipleOf {a} is gone"),
            ),
            (Some(a), Some(b)) => {
                // The new one a multiple of the old: it accepts fewer values (backward); the
                // old a multiple of the new: more (forward); each of the other: the same.
                let dir = match (is_multiple(b, a), is_multiple(a, b)) {
                    (true, true) => None,
                    (true, false) => Some(Direction::Backward),
                    (false, true) => Some(Direction::Forward),
                    (false, false) => Some(Direction::Both),
                };
                if let Some(dir) = dir {
                    self.push(
                        "multiple-of-changed",
                        dir,
                        Some(po("multipleOf")),
                        Some(pn("multipleOf")),
                        ctx,
                        Refusal::at(&inst, "multipleOf"),
                        format!("multipleOf {a} → {b}"),
                    );
                }
            }
            _ => {}
        }

        // uniqueItems
        let unique = |m: &Merged<'a>| {
            m.get("uniqueItems")
                .is_some_and(|(v, _)| v == &&Value::Bool(true))
        };
        match (unique(om), unique(nm)) {
            (false, true) => self.push(
                "unique-items-added",
                Direction::Backward,
                has(om, "uniqueItems").then(|| po("uniqueItems")),
                Some(pn("uniqueItems")),
                ctx,
                Refusal::at(&inst, "uniqueItems"),
                "uniqueItems turned on".to_owned(),
            ),
            (true, false) => self.push(
                "unique-items-removed",
                Direction::Forward,
                Some(po("uniqueItems")),
                has(nm, "uniqueItems").then(|| pn("uniqueItems")),
                ctx,
                Refusal::at(&inst, "uniqueItems"),
                "uniqueItems turned off".to_owned(),
            ),
            _ => {}
        }

        // required
        let names = |m: &Merged<'a>, k: &str| -> Vec<String> {
            m.get(k)
                .and_then(|(v, _)| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let (oreq, nreq) = (names(om, "required"), names(nm, "required"));
        for r in nreq.iter().filter(|r| !oreq.contains(r)) {
            self.push(
                "required-added",
                Direction::Backward,
                has(om, "required").then(|| po("required")),
                Some(pn("required")),
                ctx,
                Refusal::at(&inst, "required"),
                format!("`{r}` becomes required"),
            );
        }
        for r in oreq.iter().filter(|r| !nreq.contains(r)) {
            self.push(
                "required-removed",
                Direction::Forward,
                Some(po("required")),
                has(nm, "required").then(|| pn("required")),
                ctx,
                Refusal::at(&inst, "required"),
                format!("`{r}` is no longer required"),
            );
        }

        self.objects(om, nm, ctx, depth);
        self.arrays(om, nm, ctx, depth);
        self.dependencies(om, nm, ctx, depth);
        self.combinators(om, nm, ctx, depth);

        // Everything else that constrains.
        let keys: BTreeSet<&String> = om.keys().chain(nm.keys()).collect();
        for k in keys {
            if HANDLED.contains(&k.as_str())
                || ANNOTATIONS.contains(&k.as_str())
                || k.starts_with("x-")
                || (k == "additionalItems" || k == "items")
            {
                continue;
            }
            let (a, b) = (Self::get(om, k), Self::get(nm, k));
            // `if` only matters with `then` or `else`.
            let kind = match (a, b) {
                (None, Some(_)) => Some(("constraint-added", Direction::Backward)),
                (Some(_), None) => Some(("constraint-removed", Direction::Forward)),
                (Some((x, _)), Some((y, _))) if !same(x, y) => {
                    Some(("keyword-changed", Direction::Both))
                }
                _ => None,
            };
            if let Some((rule, dir)) = kind {
                self.push(
                    rule,
                    dir,
                    a.map(|_| po(k)),
                    b.map(|_| pn(k)),
                    ctx,
                    Refusal::under(&inst),
                    format!(
                        "{k} {}",
                        match rule {
                            "constraint-added" => "added",
                            "constraint-removed" => "removed",
                            _ => "changed",
                        }
                    ),
                );
            }
        }
    }

    /// `properties`, `additionalProperties`, `patternProperties`, `propertyNames`.
    #[allow(clippy::too_many_lines)] // reason: added, removed and changed for each keyword
    fn objects(&mut self, om: &Merged<'a>, nm: &Merged<'a>, ctx: &Ctx, depth: usize) {
        let inst = ctx.instance.clone();
        let props = |m: &Merged<'a>| -> Vec<(String, &'a Value, String)> {
            m.get("properties")
                .and_then(|(v, at)| v.as_object().map(|o| (o, at)))
                .map(|(o, at)| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v, join(&join(at, "properties"), k)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (op, np) = (props(om), props(nm));
        // What governs a name a side does not describe: a matching pattern, else
        // `additionalProperties` (absent: anything).
        let governs = |m: &Merged<'a>, name: &str| -> (Option<&'a Value>, String, &'static str) {
            if let Some((Value::Object(pats), at)) =
                m.get("patternProperties").map(|(v, a)| (*v, a))
            {
                for (p, s) in pats {
                    if crate::generate::regex_matches(p, name) {
                        return (
                            Some(s),
                            join(&join(at, "patternProperties"), p),
                            "patternProperties",
                        );
                    }
                }
            }
            match m.get("additionalProperties") {
                Some((v, at)) => (
                    Some(*v),
                    join(at, "additionalProperties"),
                    "additionalProperties",
                ),
                None => match m.get("unevaluatedProperties") {
                    Some((v, at)) => (
                        Some(*v),
                        join(at, "unevaluatedProperties"),
                        "unevaluatedProperties",
                    ),
                    None => (None, String::new(), "additionalProperties"),
                },
            }
        };
        for (name, nv, nat) in &np {
            let here = ctx.down(&escape(name));
            if let Some((_, ov, oat)) = op.iter().find(|(k, _, _)| k == name) {
                self.node(
                    Side::new(ov, oat.clone()),
                    Side::new(nv, nat.clone()),
                    &here,
                    depth + 1,
                );
            } else {
                {
                    let (g, gat, keyword) = governs(om, name);
                    match g {
                        Some(g) if is_false(g) => self.push(
                            "property-added-closed",
                            Direction::Forward,
                            Some(gat),
                            Some(nat.clone()),
                            ctx,
                            Refusal::at(&inst, keyword),
                            format!(
                                "`{name}` added; the deployed schema refuses unknown properties"
                            ),
                        ),
                        Some(g) if !is_true(g) => {
                            let gat = gat.clone();
                            self.node_owned(g, gat, nv, nat.clone(), &here, depth);
                        }
                        _ => {
                            if !is_true(nv) {
                                self.push(
                                    "property-added-open",
                                    Direction::Backward,
                                    None,
                                    Some(nat.clone()),
                                    ctx,
                                    Refusal::under(&here.instance),
                                    format!(
                                        "`{name}` added to an open object; deployed producers may \
                                         send `{name}` with any value"
                                    ),
                                );
                            }
                        }
                    }
                }
            }
        }
        for (name, ov, oat) in &op {
            if np.iter().any(|(k, _, _)| k == name) {
                continue;
            }
            let here = ctx.down(&escape(name));
            let (g, gat, keyword) = governs(nm, name);
            match g {
                Some(g) if is_false(g) => self.push(
                    "property-removed-closed",
                    Direction::Backward,
                    Some(oat.clone()),
                    Some(gat),
                    ctx,
                    Refusal::at(&inst, keyword),
                    format!("`{name}` removed; the changed schema refuses unknown properties"),
                ),
                Some(g) if !is_true(g) => {
                    self.node_owned(ov, oat.clone(), g, gat.clone(), &here, depth);
                }
                _ => {
                    if !is_true(ov) {
                        self.push(
                            "property-removed-open",
                            Direction::Forward,
                            Some(oat.clone()),
                            None,
                            ctx,
                            Refusal::under(&here.instance),
                            format!("`{name}` is no longer described; any value is accepted"),
                        );
                    }
                }
            }
        }

        // additionalProperties (absent: anything)
        let ap = |m: &Merged<'a>| {
            m.get("additionalProperties")
                .map(|(v, at)| (*v, join(at, "additionalProperties")))
        };
        let (oa, na) = (ap(om), ap(nm));
        let any: &'static Value = &TRUE;
        let (ov, nv) = (
            oa.as_ref().map_or(any, |x| x.0),
            na.as_ref().map_or(any, |x| x.0),
        );
        let here = ctx.down("*");
        match (is_true(ov), is_false(ov), is_true(nv), is_false(nv)) {
            (true, _, true, _) | (_, true, _, true) => {}
            (_, _, _, _) if !is_true(ov) && !is_false(ov) && !is_true(nv) && !is_false(nv) => {
                let (oat, nat) = (
                    oa.as_ref().map(|x| x.1.clone()).unwrap_or_default(),
                    na.as_ref().map(|x| x.1.clone()).unwrap_or_default(),
                );
                self.node_owned(ov, oat, nv, nat, &here, depth);
            }
            _ => {
                let narrowed = is_true(ov) || (!is_false(ov) && is_false(nv));
                self.push(
                    if narrowed {
                        "additional-properties-narrowed"
                    } else {
                        "additional-properties-widened"
                    },
                    if narrowed {
                        Direction::Backward
                    } else {
                        Direction::Forward
                    },
                    oa.as_ref().map(|x| x.1.clone()),
                    na.as_ref().map(|x| x.1.clone()),
                    ctx,
                    if is_false(nv) || is_false(ov) {
                        Refusal::at(&inst, "additionalProperties")
                    } else {
                        Refusal::under(&inst)
                    },
                    format!("additionalProperties {} → {}", show(ov), show(nv)),
                );
            }
        }

        // patternProperties
        let pats = |m: &Merged<'a>| -> Vec<(String, &'a Value, String)> {
            m.get("patternProperties")
                .and_then(|(v, at)| v.as_object().map(|o| (o, at)))
                .map(|(o, at)| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v, join(&join(at, "patternProperties"), k)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (opp, npp) = (pats(om), pats(nm));
        for (p, nv, nat) in &npp {
            match opp.iter().find(|(k, _, _)| k == p) {
                Some((_, ov, oat)) => self.node(
                    Side::new(ov, oat.clone()),
                    Side::new(nv, nat.clone()),
                    &here,
                    depth + 1,
                ),
                None if !is_true(nv) => self.push(
                    "pattern-property-added",
                    Direction::Backward,
                    None,
                    Some(nat.clone()),
                    ctx,
                    Refusal::under(&inst),
                    format!("properties matching `{p}` are now described"),
                ),
                None => {}
            }
        }
        for (p, ov, oat) in &opp {
            if !npp.iter().any(|(k, _, _)| k == p) && !is_true(ov) {
                self.push(
                    "pattern-property-removed",
                    Direction::Forward,
                    Some(oat.clone()),
                    None,
                    ctx,
                    Refusal::under(&inst),
                    format!("properties matching `{p}` are no longer described"),
                );
            }
        }

        // propertyNames (absent: anything)
        self.applicator(om, nm, "propertyNames", ctx, depth);
    }

    /// A keyword whose absence means `true` (`propertyNames`, `contains`'s siblings aside):
    /// both present are diffed; one side absent is diffed against `true`.
    fn applicator(&mut self, om: &Merged<'a>, nm: &Merged<'a>, k: &str, ctx: &Ctx, depth: usize) {
        let any: &'static Value = &TRUE;
        let (a, b) = (om.get(k), nm.get(k));
        if a.is_none() && b.is_none() {
            return;
        }
        let (ov, oat) = a.map_or((any, String::new()), |(v, at)| (*v, join(at, k)));
        let (nv, nat) = b.map_or((any, String::new()), |(v, at)| (*v, join(at, k)));
        self.node_owned(ov, oat, nv, nat, ctx, depth);
    }

    /// [`Differ::node`] on values that may not live in the documents (`true` for an absent
    /// keyword): compared in place, with the pointers given.
    fn node_owned(
        &mut self,
        ov: &'a Value,
        oat: String,
        nv: &'a Value,
        nat: String,
        ctx: &Ctx,
        depth: usize,
    ) {
        self.node(Side::new(ov, oat), Side::new(nv, nat), ctx, depth + 1);
    }

    /// `items`, `prefixItems`, `additionalItems`, `contains`.
    fn arrays(&mut self, om: &Merged<'a>, nm: &Merged<'a>, ctx: &Ctx, depth: usize) {
        let inst = ctx.instance.clone();
        // (tuple positions, the schema for the rest and its pointer, the keyword that refuses
        // a position past a closed tuple)
        let form = |m: &Merged<'a>, legacy: bool| -> ArrayForm<'a> {
            let list = |k: &str| -> Vec<(&'a Value, String)> {
                m.get(k)
                    .and_then(|(v, at)| v.as_array().map(|a| (a, at)))
                    .map(|(a, at)| {
                        a.iter()
                            .enumerate()
                            .map(|(i, v)| (v, join(&join(at, k), &i.to_string())))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let single = |k: &str| {
                m.get(k)
                    .filter(|(v, _)| !v.is_array())
                    .map(|(v, at)| (*v, join(at, k)))
            };
            if legacy {
                if m.get("items").is_some_and(|(v, _)| v.is_array()) {
                    (list("items"), single("additionalItems"), "additionalItems")
                } else {
                    (Vec::new(), single("items"), "items")
                }
            } else {
                (list("prefixItems"), single("items"), "items")
            }
        };
        let (ot, orest, okw) = form(om, self.old_legacy_items);
        let (nt, nrest, nkw) = form(nm, self.new_legacy_items);
        let any: &'static Value = &TRUE;
        for i in 0..ot.len().max(nt.len()) {
            let here = ctx.down(&i.to_string());
            let o = ot
                .get(i)
                .cloned()
                .or_else(|| orest.clone())
                .unwrap_or((any, String::new()));
            let n = nt
                .get(i)
                .cloned()
                .or_else(|| nrest.clone())
                .unwrap_or((any, String::new()));
            if ot.get(i).is_some() && nt.get(i).is_some() {
                self.node_owned(o.0, o.1, n.0, n.1, &here, depth);
            } else {
                self.items_change(
                    o,
                    n,
                    &here,
                    &inst,
                    if ot.get(i).is_some() { nkw } else { okw },
                    depth,
                );
            }
        }
        let here = ctx.down("*");
        let o = orest.unwrap_or((any, String::new()));
        let n = nrest.unwrap_or((any, String::new()));
        let kw = if is_false(n.0) { nkw } else { okw };
        self.items_change(o, n, &here, &inst, kw, depth);

        // contains: a conjunct of its own
        self.nested(
            om,
            nm,
            "contains",
            &ctx.through("contains", false),
            ctx,
            depth,
        );
    }

    /// A keyword holding one subschema that is a conjunct of its own (`contains`, `not`): both
    /// present are diffed under `inner`; one added narrows, one removed widens (the validator
    /// names the keyword itself).
    fn nested(
        &mut self,
        om: &Merged<'a>,
        nm: &Merged<'a>,
        k: &str,
        inner: &Ctx,
        ctx: &Ctx,
        depth: usize,
    ) {
        let refusal = Refusal::at(&ctx.instance, k);
        match (om.get(k), nm.get(k)) {
            (Some((a, aat)), Some((b, bat))) => {
                let (aat, bat) = (join(aat, k), join(bat, k));
                self.node_owned(a, aat, b, bat, inner, depth);
            }
            (None, Some((_, bat))) => self.push(
                "constraint-added",
                Direction::Backward,
                None,
                Some(join(bat, k)),
                ctx,
                refusal,
                format!("{k} added"),
            ),
            (Some((_, aat)), None) => self.push(
                "constraint-removed",
                Direction::Forward,
                Some(join(aat, k)),
                None,
                ctx,
                refusal,
                format!("{k} removed"),
            ),
            (None, None) => {}
        }
    }

    /// Items described on one side and governed by something else on the other.
    fn items_change(
        &mut self,
        o: (&'a Value, String),
        n: (&'a Value, String),
        here: &Ctx,
        inst: &str,
        keyword: &'static str,
        depth: usize,
    ) {
        let (ov, nv) = (o.0, n.0);
        if (is_true(ov) && is_true(nv)) || (is_false(ov) && is_false(nv)) {
            return;
        }
        if !is_true(ov) && !is_false(ov) && !is_true(nv) && !is_false(nv) {
            self.node_owned(ov, o.1, nv, n.1, here, depth);
            return;
        }
        let narrowed = is_true(ov) || (!is_false(ov) && is_false(nv));
        let ptr = |p: String| (!p.is_empty()).then_some(p);
        self.push(
            if narrowed {
                "items-narrowed"
            } else {
                "items-widened"
            },
            if narrowed {
                Direction::Backward
            } else {
                Direction::Forward
            },
            ptr(o.1),
            ptr(n.1),
            here,
            if is_false(ov) || is_false(nv) {
                Refusal::at(inst, keyword)
            } else {
                Refusal::under(&here.instance)
            },
            format!(
                "items at {} {} → {}",
                if here.instance.is_empty() {
                    "/"
                } else {
                    &here.instance
                },
                show(ov),
                show(nv)
            ),
        );
    }

    /// `dependentRequired`, `dependentSchemas`, and draft 4-7 `dependencies`.
    fn dependencies(&mut self, om: &Merged<'a>, nm: &Merged<'a>, ctx: &Ctx, depth: usize) {
        let inst = ctx.instance.clone();
        // (trigger, Either names or schema, pointer)
        let deps = |m: &Merged<'a>| -> Vec<(String, &'a Value, String)> {
            let mut out = Vec::new();
            for k in ["dependencies", "dependentRequired", "dependentSchemas"] {
                if let Some((Value::Object(o), at)) = m.get(k).map(|(v, a)| (*v, a)) {
                    for (t, v) in o {
                        out.push((t.clone(), v, join(&join(at, k), t)));
                    }
                }
            }
            out
        };
        let (od, nd) = (deps(om), deps(nm));
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        for (t, nv, nat) in &nd {
            let old = od
                .iter()
                .find(|(k, v, _)| k == t && v.is_array() == nv.is_array());
            match (old, nv.is_array()) {
                (Some((_, ov, oat)), true) => {
                    let (a, b) = (names(ov), names(nv));
                    for r in b.iter().filter(|r| !a.contains(r)) {
                        self.push(
                            "dependency-added",
                            Direction::Backward,
                            Some(oat.clone()),
                            Some(nat.clone()),
                            ctx,
                            Refusal::at(&inst, "dependentRequired"),
                            format!("`{t}` now requires `{r}`"),
                        );
                    }
                    for r in a.iter().filter(|r| !b.contains(r)) {
                        self.push(
                            "dependency-removed",
                            Direction::Forward,
                            Some(oat.clone()),
                            Some(nat.clone()),
                            ctx,
                            Refusal::at(&inst, "dependentRequired"),
                            format!("`{t}` no longer requires `{r}`"),
                        );
                    }
                }
                (Some((_, ov, oat)), false) => {
                    self.node_owned(ov, oat.clone(), nv, nat.clone(), ctx, depth);
                }
                (None, _) => self.push(
                    "dependency-added",
                    Direction::Backward,
                    None,
                    Some(nat.clone()),
                    ctx,
                    Refusal::under(&inst),
                    format!("a dependency on `{t}` added"),
                ),
            }
        }
        for (t, ov, oat) in &od {
            if !nd
                .iter()
                .any(|(k, v, _)| k == t && v.is_array() == ov.is_array())
            {
                self.push(
                    "dependency-removed",
                    Direction::Forward,
                    Some(oat.clone()),
                    None,
                    ctx,
                    Refusal::under(&inst),
                    format!("the dependency on `{t}` removed"),
                );
            }
        }
    }

    /// `allOf`, `anyOf`, `oneOf` by position; `not` flipped; `then`/`else`.
    #[allow(clippy::too_many_lines)] // reason: one block per combinator keyword
    fn combinators(&mut self, om: &Merged<'a>, nm: &Merged<'a>, ctx: &Ctx, depth: usize) {
        let inst = ctx.instance.clone();
        for k in ["allOf", "anyOf", "oneOf"] {
            let list = |m: &Merged<'a>| -> (Vec<(&'a Value, String)>, String) {
                m.get(k)
                    .and_then(|(v, at)| v.as_array().map(|a| (a, at)))
                    .map(|(a, at)| {
                        (
                            a.iter()
                                .enumerate()
                                .map(|(i, v)| (v, join(&join(at, k), &i.to_string())))
                                .collect(),
                            join(at, k),
                        )
                    })
                    .unwrap_or_default()
            };
            let ((ob, _), (nb, _)) = (list(om), list(nm));
            if ob.is_empty() && nb.is_empty() {
                continue;
            }
            let inner = if k == "allOf" {
                ctx.clone()
            } else {
                ctx.through(k, false)
            };
            for i in 0..ob.len().min(nb.len()) {
                let (o, n) = (ob[i].clone(), nb[i].clone());
                self.node_owned(o.0, o.1, n.0, n.1, &inner, depth);
            }
            let (added_dir, removed_dir) = match k {
                "allOf" => (Direction::Backward, Direction::Forward),
                "anyOf" => (Direction::Forward, Direction::Backward),
                _ => (Direction::Both, Direction::Both),
            };
            let refusal = if k == "allOf" {
                Refusal::under(&inst)
            } else {
                Refusal::at(&inst, k)
            };
            for (_, at) in nb.iter().skip(ob.len()) {
                self.push(
                    "branch-added",
                    added_dir,
                    None,
                    Some(at.clone()),
                    ctx,
                    refusal.clone(),
                    format!("a branch added to {k}"),
                );
            }
            for (_, at) in ob.iter().skip(nb.len()) {
                self.push(
                    "branch-removed",
                    removed_dir,
                    Some(at.clone()),
                    None,
                    ctx,
                    refusal.clone(),
                    format!("a branch removed from {k}"),
                );
            }
        }
        // not: what narrows inside widens outside.
        self.nested(om, nm, "not", &ctx.through("not", true), ctx, depth);
        // then/else: diffed in place when `if` is unchanged (a changed `if` is keyword-changed).
        let same_if = match (om.get("if"), nm.get("if")) {
            (Some((a, _)), Some((b, _))) => same(a, b),
            (None, None) => true,
            _ => false,
        };
        for k in ["then", "else"] {
            match (om.get(k), nm.get(k)) {
                (Some((a, aat)), Some((b, bat))) if same_if => {
                    let (aat, bat) = (join(aat, k), join(bat, k));
                    self.node_owned(a, aat, b, bat, ctx, depth);
                }
                (Some((a, aat)), Some((b, bat))) if !same(a, b) => self.push(
                    "keyword-changed",
                    Direction::Both,
                    Some(join(aat, k)),
                    Some(join(bat, k)),
                    ctx,
                    Refusal::under(&inst),
                    format!("{k} changed"),
                ),
                (None, Some((_, bat))) => self.push(
                    "constraint-added",
                    Direction::Backward,
                    None,
                    Some(join(bat, k)),
                    ctx,
                    Refusal::under(&inst),
                    format!("{k} added"),
                ),
                (Some((_, aat)), None) => self.push(
                    "constraint-removed",
                    Direction::Forward,
                    Some(join(aat, k)),
                    None,
                    ctx,
                    Refusal::under(&inst),
                    format!("{k} removed"),
                ),
                _ => {}
            }
        }
    }
}
