//! Invalid values by keyword: every constraint keyword of a schema, at the instance location
//! it applies to, broken on purpose.
//!
//! [`Schema::sites`] walks the schema document once (following `properties`, items, `allOf`,
//! `anyOf`/`oneOf` branches, `then`/`else`, dependent schemas and `$ref`s to pointers, anchors
//! and embedded `$id`s) and lists each keyword that constrains values, with the schema path
//! of the keyword and the instance location it applies to. Keywords inside `not`, `if`,
//! `contains` and `propertyNames` are not sites: breaking them does not break the value.
//!
//! [`Schema::break_site`] starts from a valid value, puts at that location a value built to
//! break the keyword (one step past a bound, a value of another type, a near miss of an
//! `enum`, a string the pattern refuses, a required property removed, an unknown property
//! added, a duplicated item, a value the `not` schema accepts, ...), and asks the validator:
//! the breakage counts only when an error names that keyword at that schema path. Under
//! `anyOf`/`oneOf` the validator reports the combinator, with the branch's errors as context:
//! such a breakage says so ([`Via::Branch`]).

use std::collections::HashMap;

use evkit_schema::pointer::{escape, unescape};
use evkit_schema::walk;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, ValidationError};
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use super::{Schema, text};

/// One step of the instance location a site applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A named property; the schema pointer of its subschema.
    Name(String, String),
    /// A fixed array index.
    Index(usize, String),
    /// Any array item (from `from` on).
    AnyIndex(usize, String),
    /// Any property name matching `pattern` (`None`: a name no `properties` entry declares).
    AnyKey(Option<String>, String),
    /// The object here must carry this property (a dependency's trigger); the pointer of the
    /// object schema whose `properties` may describe it.
    Trigger(String, String),
}

/// How a breakage shows in the validator's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// An error names the keyword at its schema path.
    Direct,
    /// The keyword sits in an `anyOf`/`oneOf` branch: the error names the combinator (at the
    /// given schema path), and the branch's own errors name the keyword.
    Branch {
        /// `anyOf` or `oneOf`.
        keyword: String,
        /// Schema path of the combinator.
        schema_path: String,
    },
}

/// A constraint keyword a value can break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// JSON pointer of the keyword in the schema document (`/properties/title/maxLength`).
    pub schema_path: String,
    /// The keyword (`maxLength`), or `false` for a boolean `false` subschema.
    pub keyword: String,
    /// How a breakage shows (directly, or through the enclosing `anyOf`/`oneOf`).
    pub via: Via,
    /// For `required`: the one property this site removes (each required name is a site).
    pub member: Option<String>,
    /// The schema path as jsonschema's errors write it: relative to the nearest enclosing
    /// schema resource (an embedded `$id`).
    error_path: String,
    steps: Vec<Step>,
}

impl Site {
    /// The instance location the site applies to, as a template: `*` stands for any array
    /// index or any property name.
    pub fn instance_template(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            out.push('/');
            match s {
                Step::Name(n, _) => out.push_str(&escape(n)),
                Step::Index(i, _) => out.push_str(&i.to_string()),
                Step::AnyIndex(..) | Step::AnyKey(..) => out.push('*'),
                Step::Trigger(..) => {
                    out.pop();
                }
            }
        }
        out
    }

    /// The pointer of the subschema holding the keyword.
    pub fn subschema(&self) -> &str {
        self.schema_path
            .rsplit_once('/')
            .map_or("", |(parent, _)| parent)
    }
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}@{}",
            self.keyword,
            self.member
                .as_ref()
                .map(|m| format!("({m})"))
                .unwrap_or_default(),
            if self.steps.is_empty() {
                "/".to_owned()
            } else {
                self.instance_template()
            }
        )
    }
}

/// A value that breaks one site.
#[derive(Debug, Clone)]
pub struct Breakage {
    /// The site broken.
    pub site: Site,
    /// The invalid value.
    pub value: Value,
    /// Where in the value the keyword is broken.
    pub instance_path: String,
    /// `true` when every error the validator reports is this breakage (nothing else broke).
    pub sole: bool,
    /// The validator's errors, as `(instance path, schema path, keyword)`.
    pub errors: Vec<(String, String, String)>,
    /// The error that shows the breakage, as `(instance path, schema path, keyword)`: the
    /// site's keyword itself, or the enclosing keyword (`anyOf`, `unevaluatedProperties`, ...)
    /// the validator reports instead.
    pub reported: (String, String, String),
    required: Vec<String>,
}

impl Breakage {
    /// The names the broken site's `required` keyword lists (empty for other keywords).
    pub fn site_required(&self) -> Vec<String> {
        if self.site.keyword != "required" {
            return Vec::new();
        }
        match &self.site.member {
            Some(m) => vec![m.clone()],
            None => self.required.clone(),
        }
    }
}

/// Keywords that constrain values through structure or subschemas (drafts 4 to 2020-12); with
/// [`super::SCALAR_CONSTRAINTS`], every constraint keyword.
const STRUCTURAL: &[&str] = &[
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
    "minContains",
    "maxContains",
    "required",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "propertyNames",
    "not",
    "anyOf",
    "oneOf",
];

impl Schema {
    /// Every constraint keyword of the schema a value can break, in document order.
    pub fn sites(&self) -> Vec<Site> {
        let mut w = Walker::new(&self.document, self.draft);
        w.walk(&self.document, "", &[], &Via::Direct, 0);
        w.out
    }

    /// `true` when some subschema reached from the one at `start` (following properties,
    /// items, combinators and `$ref`s, as [`Schema::sites`] does) describes the instance
    /// location `pointer` (`/servers/*/fqdn`; `*` for any array item).
    pub fn describes(&self, start: &str, pointer: &str) -> bool {
        let Some(schema) = self.document.pointer(start) else {
            return false;
        };
        let mut w = Walker::new(&self.document, self.draft);
        w.walk(schema, start, &[], &Via::Direct, 0);
        let tokens: Vec<_> = pointer.split('/').skip(1).map(unescape).collect();
        w.located.iter().any(|steps| {
            let steps: Vec<&Step> = steps
                .iter()
                .filter(|s| !matches!(s, Step::Trigger(..)))
                .collect();
            steps.len() == tokens.len()
                && steps.iter().zip(&tokens).all(|(step, t)| match step {
                    Step::Name(n, _) => n == t,
                    Step::Index(i, _) => t == "*" || t.parse::<usize>().ok() == Some(*i),
                    Step::AnyIndex(from, _) => {
                        t == "*" || t.parse::<usize>().is_ok_and(|i| i >= *from)
                    }
                    Step::AnyKey(Some(p), _) => super::valid::regex_matches(p, t),
                    Step::AnyKey(None, _) => true,
                    Step::Trigger(..) => false,
                })
        })
    }

    /// A value that breaks `site`, from up to `attempts` valid starting values; `None` when
    /// none could be found (the site is then unbreakable by these operators).
    pub fn break_site(
        &self,
        site: &Site,
        runner: &mut TestRunner,
        attempts: usize,
    ) -> Option<Breakage> {
        let mut b = Breaker::new(self);
        b.break_site(site, runner, attempts)
    }

    /// `true` when `site` can never be what rejects a value: the schema without that keyword
    /// (a `false` subschema made `true`) accepts exactly the same values, as jsonschema's
    /// canonical algebra proves (for example `anyOf` with a `true` branch, `not: false`, or
    /// `else` after an `if` that always holds). `false` when it cannot prove it.
    pub fn is_redundant(&self, site: &Site) -> bool {
        let mut without = self.document.as_ref().clone();
        if site.keyword == "false" {
            match without.pointer_mut(&site.schema_path) {
                Some(slot) => *slot = Value::Bool(true),
                None => return false,
            }
        } else {
            let Some(obj) = without
                .pointer_mut(site.subschema())
                .and_then(Value::as_object_mut)
            else {
                return false;
            };
            match (&site.member, obj.get_mut(&site.keyword)) {
                (Some(m), Some(Value::Array(names))) => names.retain(|n| n.as_str() != Some(m)),
                _ => {
                    obj.remove(&site.keyword);
                }
            }
            if site.keyword == "contains" {
                obj.remove("minContains");
                obj.remove("maxContains");
            }
        }
        let Ok(loose) = jsonschema::canonical::options()
            .with_draft(self.draft)
            .should_validate_formats(true)
            .canonicalize(&without)
        else {
            return false;
        };
        matches!(
            self.canonical.covers(&loose),
            Ok(jsonschema::canonical::Containment::Yes)
        )
    }

    /// Like [`Schema::break_site`] for many sites, sharing the starting values' strategies.
    pub fn breaker(&self) -> Breaker {
        Breaker::new(self)
    }
}

struct Walker<'a> {
    root: &'a Value,
    draft: Draft,
    out: Vec<Site>,
    /// Subschemas walked, with the instance depth they were walked at (recursion stops).
    seen: HashMap<String, usize>,
    /// The instance location of every subschema walked.
    located: Vec<Vec<Step>>,
}

impl<'a> Walker<'a> {
    fn new(root: &'a Value, draft: Draft) -> Self {
        Walker {
            root,
            draft,
            out: Vec::new(),
            seen: HashMap::new(),
            located: Vec::new(),
        }
    }

    fn site(&mut self, ptr: &str, keyword: &str, steps: &[Step], via: &Via) {
        self.site_of(ptr, keyword, None, steps, via);
    }

    fn site_of(
        &mut self,
        ptr: &str,
        keyword: &str,
        member: Option<&str>,
        steps: &[Step],
        via: &Via,
    ) {
        let schema_path = format!("{ptr}/{}", escape(keyword));
        if self
            .out
            .iter()
            .any(|s| s.schema_path == schema_path && s.member.as_deref() == member)
        {
            return;
        }
        let resource = enclosing_resource(self.root, ptr);
        let error_path = schema_path[resource.len()..].to_owned();
        self.out.push(Site {
            schema_path,
            keyword: keyword.to_owned(),
            via: via.clone(),
            member: member.map(str::to_owned),
            error_path,
            steps: steps.to_vec(),
        });
    }

    // One match per keyword family; splitting it would scatter the walk's rules.
    #[allow(clippy::too_many_lines)]
    fn walk(&mut self, schema: &Value, ptr: &str, steps: &[Step], via: &Via, depth: usize) {
        if depth > 12 || steps.len() > 6 {
            return;
        }
        let visits = self.seen.entry(ptr.to_owned()).or_insert(0);
        if *visits >= 2 {
            return;
        }
        *visits += 1;
        self.located.push(steps.to_vec());
        let obj = match schema {
            Value::Bool(false) => {
                if !ptr.is_empty() {
                    // The location must exist for `false` to reject it; at the root nothing
                    // is valid to start from.
                    let resource = enclosing_resource(self.root, ptr);
                    self.out.push(Site {
                        schema_path: ptr.to_owned(),
                        keyword: "false".to_owned(),
                        via: via.clone(),
                        member: None,
                        error_path: ptr[resource.len()..].to_owned(),
                        steps: steps.to_vec(),
                    });
                }
                return;
            }
            Value::Object(o) => o,
            _ => return,
        };
        let legacy_ref = self.draft_at_most_7() && obj.contains_key("$ref");
        if !legacy_ref {
            for k in super::SCALAR_CONSTRAINTS.iter().chain(STRUCTURAL) {
                let Some(v) = obj.get(*k) else { continue };
                let keep = match *k {
                    "uniqueItems" => v == &Value::Bool(true),
                    "exclusiveMinimum" | "exclusiveMaximum" => {
                        v.is_number() || v == &Value::Bool(true)
                    }
                    "minLength" | "minItems" | "minProperties" => {
                        v.as_f64().is_some_and(|n| n > 0.0)
                    }
                    "minContains" => {
                        obj.contains_key("contains") && v.as_f64().is_some_and(|n| n > 0.0)
                    }
                    "maxContains" => obj.contains_key("contains"),
                    "required" | "enum" => {
                        v.as_array().is_some_and(|a| !a.is_empty()) || *k == "enum"
                    }
                    "contains" => {
                        v != &Value::Bool(true)
                            || obj.get("minContains").and_then(Value::as_f64) != Some(0.0)
                    }
                    "format" => v
                        .as_str()
                        .is_some_and(|f| jsonschema::options().is_known_format(self.draft, f)),
                    _ => true,
                };
                if keep && *k == "required" {
                    for name in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
                        self.site_of(ptr, k, Some(name), steps, via);
                    }
                } else if keep {
                    self.site(ptr, k, steps, via);
                }
            }
            // Array-valued dependencies (names, draft 7) are a site of their own.
            if obj
                .get("dependencies")
                .and_then(Value::as_object)
                .is_some_and(|d| {
                    d.values()
                        .any(|x| x.as_array().is_some_and(|a| !a.is_empty()))
                })
            {
                self.site(ptr, "dependencies", steps, via);
            }
            // `false` for extra properties or items is a site of its keyword.
            for k in [
                "additionalProperties",
                "unevaluatedProperties",
                "items",
                "additionalItems",
                "unevaluatedItems",
            ] {
                if obj.get(k) == Some(&Value::Bool(false)) {
                    self.site(ptr, k, steps, via);
                }
            }
            let tuple = obj
                .get("prefixItems")
                .or_else(|| obj.get("items").filter(|i| i.is_array()));
            let prefix = tuple.and_then(Value::as_array).map_or(0, Vec::len);
            let items_is_tuple = obj.get("items").is_some_and(Value::is_array);
            let conditional = obj.contains_key("if");
            for c in walk::children(schema) {
                let here = format!("{ptr}{}", c.suffix());
                let mut st = steps.to_vec();
                let mut child_via = via.clone();
                match (c.keyword, c.name, c.index) {
                    ("properties", Some(name), _) => {
                        st.push(Step::Name(name.to_owned(), here.clone()));
                    }
                    ("patternProperties", Some(p), _) => {
                        st.push(Step::AnyKey(Some(p.to_owned()), here.clone()));
                    }
                    ("additionalProperties" | "unevaluatedProperties", None, None) => {
                        if c.schema == &Value::Bool(false) {
                            continue;
                        }
                        st.push(Step::AnyKey(None, here.clone()));
                    }
                    ("prefixItems" | "items", _, Some(i)) => {
                        st.push(Step::Index(i, here.clone()));
                    }
                    ("items" | "unevaluatedItems", None, None) => {
                        if c.schema == &Value::Bool(false) {
                            continue;
                        }
                        st.push(Step::AnyIndex(prefix, here.clone()));
                    }
                    ("additionalItems", None, None) => {
                        if !items_is_tuple || c.schema == &Value::Bool(false) {
                            continue;
                        }
                        st.push(Step::AnyIndex(prefix, here.clone()));
                    }
                    ("allOf", _, _) => {}
                    ("anyOf" | "oneOf", _, _) => {
                        if let Via::Direct = via {
                            child_via = Via::Branch {
                                keyword: c.keyword.to_owned(),
                                schema_path: format!("{ptr}/{}", c.keyword),
                            };
                        }
                    }
                    ("then" | "else", _, _) if conditional => {}
                    ("dependentSchemas" | "dependencies", Some(trigger), _) => {
                        st.push(Step::Trigger(trigger.to_owned(), ptr.to_owned()));
                    }
                    // `not`, `if`, `contains`, `propertyNames`, definitions: not constraints
                    // on the value at this location (or not reached from it).
                    _ => continue,
                }
                self.walk(c.schema, &here, &st, &child_via, depth + 1);
            }
        }
        for k in ["$ref", "$dynamicRef", "$recursiveRef"] {
            if let Some(r) = obj.get(k).and_then(Value::as_str)
                && let Some(target) = resolve(self.root, ptr, r)
                && let Some(s) = self.root.pointer(&target)
            {
                self.walk(s, &target, steps, via, depth + 1);
            }
        }
    }

    fn draft_at_most_7(&self) -> bool {
        matches!(self.draft, Draft::Draft4 | Draft::Draft6 | Draft::Draft7)
    }
}

/// The document pointer a `$ref` at `from` names, where it names a place in this document:
/// a pointer fragment, an anchor, or an embedded `$id` (with a pointer after it).
pub(crate) fn resolve(root: &Value, from: &str, reference: &str) -> Option<String> {
    let (base, fragment) = reference.split_once('#').unwrap_or((reference, ""));
    let start = if base.is_empty() {
        // The resource the reference sits in: the nearest enclosing `$id`, else the root.
        enclosing_resource(root, from)
    } else {
        find_id(root, base)?
    };
    if fragment.is_empty() {
        return Some(start);
    }
    if fragment.starts_with('/') {
        let full = format!("{start}{fragment}");
        let decoded = percent_decode(&full);
        return root.pointer(&decoded).map(|_| decoded);
    }
    find_anchor(root, fragment)
}

fn enclosing_resource(root: &Value, from: &str) -> String {
    let mut best = String::new();
    let mut cur = root;
    let mut here = String::new();
    for seg in from.split('/').skip(1) {
        let Some(next) = (match cur {
            Value::Object(m) => m.get(unescape(seg).as_ref()),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }) else {
            break;
        };
        here.push('/');
        here.push_str(seg);
        let id = next
            .get("$id")
            .or_else(|| next.get("id"))
            .and_then(Value::as_str);
        if id.is_some_and(|id| !id.starts_with('#')) {
            best.clone_from(&here);
        }
        cur = next;
    }
    best
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

/// The pointer of the subschema whose `$id` is `id` (or ends with it, for relative ids).
fn find_id(root: &Value, id: &str) -> Option<String> {
    walk::subschemas(root).into_iter().find_map(|(at, s)| {
        let own = s.get("$id").and_then(Value::as_str)?.trim_end_matches('#');
        (own == id || own.ends_with(&format!("/{id}")) || id.ends_with(&format!("/{own}")))
            .then_some(at)
    })
}

/// The pointer of the subschema named by anchor `anchor` (`$anchor`, `$dynamicAnchor`, or a
/// draft-7 `$id: "#anchor"`).
fn find_anchor(root: &Value, anchor: &str) -> Option<String> {
    walk::subschemas(root).into_iter().find_map(|(at, s)| {
        let named = ["$anchor", "$dynamicAnchor"]
            .iter()
            .any(|k| s.get(*k).and_then(Value::as_str) == Some(anchor))
            || s.get("$id").and_then(Value::as_str) == Some(&format!("#{anchor}"));
        named.then_some(at)
    })
}

/// Breaks sites of one schema, caching the strategies of the subschemas it samples.
pub struct Breaker {
    schema: Schema,
    root: Option<BoxedStrategy<Value>>,
    root_tried: bool,
    at: HashMap<String, Option<BoxedStrategy<Value>>>,
    validators: HashMap<String, Option<std::sync::Arc<jsonschema::Validator>>>,
}

impl Breaker {
    fn new(schema: &Schema) -> Self {
        Breaker {
            schema: schema.clone(),
            root: None,
            root_tried: false,
            at: HashMap::new(),
            validators: HashMap::new(),
        }
    }

    fn sample_root(&mut self, runner: &mut TestRunner) -> Option<Value> {
        if !self.root_tried {
            self.root_tried = true;
            self.root = self.schema.valid().ok();
        }
        let s = self.root.as_ref()?;
        s.new_tree(runner).ok().map(|t| t.current())
    }

    /// A valid value of the subschema at `ptr` (alone: references resolved in the document).
    fn sample_at(&mut self, ptr: &str, runner: &mut TestRunner) -> Option<Value> {
        let schema = &self.schema;
        let s = self
            .at
            .entry(ptr.to_owned())
            .or_insert_with(|| schema.valid_at(ptr).ok());
        s.as_ref()?.new_tree(runner).ok().map(|t| t.current())
    }

    /// A value that breaks `site` (see [`Schema::break_site`]).
    pub fn break_site(
        &mut self,
        site: &Site,
        runner: &mut TestRunner,
        attempts: usize,
    ) -> Option<Breakage> {
        let mut fallback: Option<Breakage> = None;
        for _ in 0..attempts {
            let Some(base) = self.sample_root(runner) else {
                // Nothing valid to start from.
                return None;
            };
            if let Some(b) = self.break_from(site, base, runner) {
                if b.sole {
                    return Some(b);
                }
                fallback.get_or_insert(b);
            }
        }
        fallback
    }

    /// Breaks `site` starting from the valid value `base`.
    pub fn break_from(
        &mut self,
        site: &Site,
        base: Value,
        runner: &mut TestRunner,
    ) -> Option<Breakage> {
        let (mut doc, path) = self.place(site, base, runner)?;
        let current = doc.pointer(&path).cloned();
        let sub = site.subschema().to_owned();
        let mut starts: Vec<Value> = current.into_iter().collect();
        if let Some(v) = self.sample_at(&sub, runner) {
            starts.push(v);
        }
        if starts.is_empty() {
            starts.push(Value::Null);
        }
        let schema_obj = self
            .schema
            .document
            .pointer(&sub)
            .cloned()
            .unwrap_or(Value::Null);
        let mut fallback: Option<Breakage> = None;
        for start in starts {
            for candidate in self.candidates(site, &schema_obj, &start, runner) {
                let Some(slot) = doc.pointer_mut(&path) else {
                    continue;
                };
                let saved = std::mem::replace(slot, candidate);
                if let Some(b) = self.judge(site, &doc, &path) {
                    if b.sole {
                        return Some(b);
                    }
                    fallback.get_or_insert(b);
                }
                if let Some(slot) = doc.pointer_mut(&path) {
                    *slot = saved;
                }
            }
        }
        fallback
    }

    /// Puts the site's instance location into `base` (creating what is missing from valid
    /// values of the subschemas on the way); returns the document and the location's pointer.
    fn place(
        &mut self,
        site: &Site,
        mut base: Value,
        runner: &mut TestRunner,
    ) -> Option<(Value, String)> {
        let mut path = String::new();
        for step in &site.steps {
            let here = base.pointer_mut(&path)?;
            match step {
                Step::Name(name, ptr) => {
                    let obj = here.as_object_mut()?;
                    if !obj.contains_key(name) {
                        let v = self.sample_at(ptr, runner).unwrap_or(Value::Null);
                        base.pointer_mut(&path)?
                            .as_object_mut()?
                            .insert(name.clone(), v);
                    }
                    path = format!("{path}/{}", escape(name));
                }
                Step::Index(i, ptr) => {
                    let arr = here.as_array_mut()?;
                    if arr.len() <= *i {
                        if arr.len() < *i {
                            return None;
                        }
                        let v = self.sample_at(ptr, runner).unwrap_or(Value::Null);
                        base.pointer_mut(&path)?.as_array_mut()?.push(v);
                    }
                    path = format!("{path}/{i}");
                }
                Step::AnyIndex(from, ptr) => {
                    let arr = here.as_array_mut()?;
                    let i = match arr.len().cmp(from) {
                        std::cmp::Ordering::Greater => arr.len() - 1,
                        std::cmp::Ordering::Equal => {
                            let v = self.sample_at(ptr, runner).unwrap_or(Value::Null);
                            base.pointer_mut(&path)?.as_array_mut()?.push(v);
                            *from
                        }
                        std::cmp::Ordering::Less => return None,
                    };
                    path = format!("{path}/{i}");
                }
                Step::Trigger(name, object_ptr) => {
                    if !here.as_object()?.contains_key(name) {
                        let v = self
                            .sample_at(&format!("{object_ptr}/properties/{}", escape(name)), runner)
                            .unwrap_or(Value::Null);
                        base.pointer_mut(&path)?
                            .as_object_mut()?
                            .insert(name.clone(), v);
                    }
                }
                Step::AnyKey(pattern, ptr) => {
                    let obj = here.as_object()?;
                    let declared = self.declared_names(ptr);
                    let existing = obj.keys().find(|k| match pattern {
                        Some(p) => super::valid::regex_matches(p, k),
                        None => !declared.contains(*k),
                    });
                    let name = if let Some(k) = existing {
                        k.clone()
                    } else {
                        let name = match pattern {
                            Some(p) => text::pattern(p)?.new_tree(runner).ok()?.current(),
                            None => "evkit_extra".to_owned(),
                        };
                        let v = self.sample_at(ptr, runner).unwrap_or(Value::Null);
                        base.pointer_mut(&path)?
                            .as_object_mut()?
                            .insert(name.clone(), v);
                        name
                    };
                    path = format!("{path}/{}", escape(&name));
                }
            }
        }
        Some((base, path))
    }

    /// Names the object schema holding `ptr` (an `additionalProperties` or pattern subschema)
    /// declares in `properties`.
    fn declared_names(&self, ptr: &str) -> Vec<String> {
        let parent = ptr
            .rsplit_once('/')
            .map_or("", |(p, _)| p)
            .trim_end_matches("/patternProperties");
        self.schema
            .document
            .pointer(parent)
            .and_then(|o| o.get("properties"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Values that may break `site`'s keyword, built from the keyword's value, its siblings
    /// and `start` (a value the subschema accepts, when one was found).
    #[allow(clippy::too_many_lines)]
    fn candidates(
        &mut self,
        site: &Site,
        schema: &Value,
        start: &Value,
        runner: &mut TestRunner,
    ) -> Vec<Value> {
        let kw = site.keyword.as_str();
        let arg = schema.get(kw).cloned().unwrap_or(Value::Null);
        let every_type = || {
            vec![
                json!("evkit"),
                json!(1.5),
                json!(7),
                json!(null),
                json!(true),
                json!([]),
                json!({}),
                json!(["evkit"]),
                json!({"evkit": 1}),
            ]
        };
        let num = |x: f64| -> Value {
            #[allow(clippy::cast_possible_truncation)]
            if x.fract() == 0.0 && x.abs() < 9e15 {
                json!(x as i64)
            } else {
                json!(x)
            }
        };
        let string_of = |n: usize, seed: &Value| -> Value {
            let s: String = seed
                .as_str()
                .unwrap_or("")
                .chars()
                .chain(std::iter::repeat('a'))
                .take(n)
                .collect();
            json!(s)
        };
        let mut out = Vec::new();
        match kw {
            "type" | "anyOf" | "oneOf" | "false" => {
                out.extend(every_type());
                if kw == "oneOf" {
                    // A value two branches accept.
                    for i in 0..arg.as_array().map_or(0, Vec::len) {
                        if let Some(v) =
                            self.sample_at(&format!("{}/{i}", site.schema_path), runner)
                        {
                            out.push(v);
                        }
                    }
                }
            }
            "enum" | "const" => {
                let members = match kw {
                    "enum" => arg.as_array().cloned().unwrap_or_default(),
                    _ => vec![arg.clone()],
                };
                for m in &members {
                    match m {
                        Value::String(s) => out.push(json!(format!("{s}x"))),
                        Value::Number(n) => {
                            if let Some(f) = n.as_f64() {
                                out.push(num(f + 1.0));
                            }
                        }
                        Value::Bool(b) => out.push(json!(!b)),
                        Value::Null => out.push(json!(0)),
                        Value::Array(a) => {
                            let mut a = a.clone();
                            a.push(Value::Null);
                            out.push(Value::Array(a));
                        }
                        Value::Object(o) => {
                            let mut o = o.clone();
                            o.insert("evkit".to_owned(), json!(1));
                            out.push(Value::Object(o));
                        }
                    }
                }
                out.extend(every_type());
            }
            "minimum" | "exclusiveMinimum" | "maximum" | "exclusiveMaximum" => {
                let bound = match &arg {
                    Value::Bool(true) => schema
                        .get(if kw.contains("in") {
                            "minimum"
                        } else {
                            "maximum"
                        })
                        .and_then(Value::as_f64),
                    other => other.as_f64(),
                };
                if let Some(b) = bound {
                    let down = kw.contains("inimum");
                    let sign = if down { -1.0 } else { 1.0 };
                    out.push(arg.clone().as_f64().map_or(num(b), |_| arg.clone()));
                    out.push(num(b));
                    out.push(num(if down {
                        b.floor() - 1.0
                    } else {
                        b.ceil() + 1.0
                    }));
                    out.push(num(b + sign * 0.5));
                    out.push(num(b + sign * 1e-6));
                    // Past 2^53 a step of 1 or 0.5 is lost in the double (1e19 − 1 is 1e19):
                    // a step relative to the bound, written as the exact integer it is.
                    let far = b + sign * b.abs() * 1e-9;
                    out.push(
                        serde_json::Number::from_f64(far)
                            .and_then(|n| super::int_of(&n))
                            .map_or_else(|| json!(far), super::json_int),
                    );
                    if let Some(m) = schema.get("multipleOf").and_then(Value::as_f64) {
                        out.push(num(b + sign * m));
                        out.push(num(((b / m).floor() + if down { 0.0 } else { 1.0 }) * m));
                    }
                }
            }
            "multipleOf" => {
                if let Some(m) = arg.as_f64() {
                    let base = start.as_f64().unwrap_or(0.0);
                    out.push(num(base + m / 2.0));
                    out.push(num(m * 1.5));
                    out.push(num(m / 2.0));
                    out.push(num(base + 1.0));
                    out.push(num(m + 1.0));
                    out.push(num(base + m * 0.1));
                }
            }
            "minLength" => {
                if let Some(n) = count(&arg) {
                    out.push(string_of(n.saturating_sub(1), start));
                    out.push(json!(""));
                }
            }
            "maxLength" => {
                if let Some(n) = count(&arg) {
                    out.push(string_of(n + 1, start));
                    out.push(json!("a".repeat(n + 1)));
                }
            }
            "pattern" => {
                let s = start.as_str().unwrap_or("");
                for c in [
                    String::new(),
                    "\u{1F4A5}".to_owned(),
                    "!".to_owned(),
                    format!("{s}!"),
                    format!("!{s}"),
                    " ".to_owned(),
                    "0".to_owned(),
                    "a".to_owned(),
                    "A".to_owned(),
                    "evkit-not-matching".to_owned(),
                    "\n".to_owned(),
                    s.chars().rev().collect(),
                ] {
                    out.push(json!(c));
                }
            }
            "format" => {
                for c in format_misses(arg.as_str().unwrap_or("")) {
                    out.push(json!(c));
                }
            }
            "contentMediaType" | "contentEncoding" => {
                for c in ["not base64!", "{not json", "e30", "eyJhIjo="] {
                    out.push(json!(c));
                }
            }
            "minItems" => {
                if let (Some(n), Some(a)) = (count(&arg), start.as_array()) {
                    out.push(json!(
                        a.iter()
                            .take(n.saturating_sub(1))
                            .cloned()
                            .collect::<Vec<_>>()
                    ));
                }
                out.push(json!([]));
            }
            "maxItems" | "items" | "additionalItems" | "unevaluatedItems" | "uniqueItems"
            | "maxContains" => {
                let mut a = start.as_array().cloned().unwrap_or_default();
                let item_ptr = format!("{}/items", site.subschema());
                let fresh = self.sample_at(&item_ptr, runner);
                let target = match kw {
                    "maxItems" => count(&arg).map_or(a.len() + 1, |n| n + 1),
                    "uniqueItems" => a.len().max(1) + 1,
                    _ => a.len() + 1,
                };
                if kw == "uniqueItems" {
                    if let Some(first) = a.first().cloned().or(fresh) {
                        if a.is_empty() {
                            a.push(first.clone());
                        }
                        let mut dup = a.clone();
                        dup.push(first);
                        out.push(Value::Array(dup));
                    }
                } else if kw == "maxContains" {
                    if let (Some(n), Some(m)) = (
                        count(&arg),
                        self.sample_at(&format!("{}/contains", site.subschema()), runner),
                    ) {
                        let mut x = a.clone();
                        x.extend(std::iter::repeat_n(m, n + 1));
                        out.push(Value::Array(x));
                    }
                } else {
                    let filler = a.last().cloned().or(fresh.clone()).unwrap_or(Value::Null);
                    let mut x = a.clone();
                    while x.len() < target {
                        x.push(fresh.clone().unwrap_or_else(|| filler.clone()));
                    }
                    out.push(Value::Array(x));
                    for t in every_type() {
                        let mut y = a.clone();
                        y.push(t);
                        out.push(Value::Array(y));
                    }
                }
            }
            "contains" | "minContains" => {
                let inner = self
                    .schema
                    .validator_at(&format!("{}/contains", site.subschema()));
                let a = start.as_array().cloned().unwrap_or_default();
                if let Some(v) = inner {
                    let kept: Vec<Value> = a.iter().filter(|x| !v.is_valid(x)).cloned().collect();
                    out.push(Value::Array(kept.clone()));
                    if kw == "minContains"
                        && let Some(n) = count(&arg)
                    {
                        let matching: Vec<Value> =
                            a.iter().filter(|x| v.is_valid(x)).cloned().collect();
                        let mut y = kept;
                        y.extend(matching.into_iter().take(n.saturating_sub(1)));
                        out.push(Value::Array(y));
                    }
                }
                out.push(json!([]));
                out.push(json!([null, "evkit", 1.5, {}]));
            }
            "required" => {
                if let Some(o) = start.as_object() {
                    for r in arg
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .filter(|r| site.member.as_deref().is_none_or(|m| m == *r))
                    {
                        let mut o = o.clone();
                        o.remove(r);
                        out.push(Value::Object(o));
                    }
                }
                if site.member.is_none() {
                    out.push(json!({}));
                }
            }
            "dependentRequired" | "dependencies" => {
                if let Some(deps) = arg.as_object() {
                    let o = start.as_object().cloned().unwrap_or_default();
                    for (trigger, needs) in deps {
                        let Some(needs) = needs.as_array() else {
                            continue;
                        };
                        let mut x = o.clone();
                        if !x.contains_key(trigger) {
                            let v = self
                                .sample_at(
                                    &format!("{}/properties/{}", site.subschema(), escape(trigger)),
                                    runner,
                                )
                                .unwrap_or(Value::Null);
                            x.insert(trigger.clone(), v);
                        }
                        for n in needs.iter().filter_map(Value::as_str) {
                            x.remove(n);
                        }
                        out.push(Value::Object(x));
                    }
                }
            }
            "minProperties" => {
                if let (Some(n), Some(o)) = (count(&arg), start.as_object()) {
                    let mut o = o.clone();
                    let keys: Vec<String> = o.keys().cloned().collect();
                    for k in keys {
                        if o.len() < n {
                            break;
                        }
                        o.remove(&k);
                    }
                    out.push(Value::Object(o));
                }
                out.push(json!({}));
            }
            "maxProperties" => {
                if let Some(n) = count(&arg) {
                    let mut o = start.as_object().cloned().unwrap_or_default();
                    let declared: Vec<String> = schema
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    let mut i = 0;
                    for d in declared {
                        if o.len() > n {
                            break;
                        }
                        if !o.contains_key(&d)
                            && let Some(v) = self.sample_at(
                                &format!("{}/properties/{}", site.subschema(), escape(&d)),
                                runner,
                            )
                        {
                            o.insert(d, v);
                        }
                    }
                    while o.len() <= n && i < n + 2 {
                        o.insert(format!("evkit_extra_{i}"), Value::Null);
                        i += 1;
                    }
                    out.push(Value::Object(o));
                }
            }
            "additionalProperties" | "unevaluatedProperties" => {
                let o = start.as_object().cloned().unwrap_or_default();
                let values = if arg == Value::Bool(false) {
                    vec![json!(true)]
                } else {
                    every_type()
                };
                for v in values {
                    let mut x = o.clone();
                    x.insert("evkit_unknown_field".to_owned(), v);
                    out.push(Value::Object(x));
                }
            }
            "propertyNames" => {
                let o = start.as_object().cloned().unwrap_or_default();
                for name in [
                    "",
                    "evkit-\u{1F4A5}",
                    "A",
                    "1",
                    "evkit_unknown_field",
                    "a",
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    "~/",
                ] {
                    let mut x = o.clone();
                    x.insert(name.to_owned(), Value::Null);
                    out.push(Value::Object(x));
                }
            }
            "not" => {
                for _ in 0..3 {
                    if let Some(v) = self.sample_at(&site.schema_path, runner) {
                        out.push(v);
                    }
                }
                out.extend(every_type());
            }
            _ => out.extend(every_type()),
        }
        out
    }

    /// Whether the value breaks the site: an error (or, under a combinator, a branch's error)
    /// names the keyword at its schema path.
    fn judge(&mut self, site: &Site, doc: &Value, path: &str) -> Option<Breakage> {
        let oracle = std::sync::Arc::clone(&self.schema.oracle);
        let errors: Vec<ValidationError<'_>> = oracle.iter_errors(doc).collect();
        if errors.is_empty() {
            return None;
        }
        let mut hit: Option<(String, String, String)> = None;
        let mut all_explained = true;
        let mut confirmed: Option<bool> = None;
        for e in &errors {
            let explained = names(site, e)
                || (encloses(site, e)
                    && (within(site, e)
                        || *confirmed.get_or_insert_with(|| self.confirm(site, doc, path))));
            if explained {
                hit.get_or_insert_with(|| {
                    (
                        e.instance_path().as_str().to_owned(),
                        e.schema_path().as_str().to_owned(),
                        e.kind().keyword().to_owned(),
                    )
                });
            } else {
                all_explained = false;
            }
        }
        let reported = hit?;
        Some(Breakage {
            site: site.clone(),
            value: doc.clone(),
            instance_path: reported.0.clone(),
            reported,
            required: self
                .schema
                .document
                .pointer(&site.schema_path)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            sole: all_explained,
            errors: errors
                .iter()
                .map(|e| {
                    (
                        e.instance_path().as_str().to_owned(),
                        e.schema_path().as_str().to_owned(),
                        e.kind().keyword().to_owned(),
                    )
                })
                .collect(),
        })
    }

    /// Whether the subschema holding the site, applied alone to the value at the site's
    /// location, rejects it for the site's keyword (used when the validator reports only an
    /// enclosing keyword: `anyOf`, `oneOf`, `unevaluatedProperties`, ...).
    fn confirm(&mut self, site: &Site, doc: &Value, path: &str) -> bool {
        let sub = site.subschema().to_owned();
        let schema = &self.schema;
        let validator = self
            .validators
            .entry(sub.clone())
            .or_insert_with(|| schema.validator_at(&sub));
        let (Some(v), Some(value)) = (validator.as_ref(), doc.pointer(path)) else {
            return false;
        };
        v.iter_errors(value).any(|e| names(site, &e))
    }
}

/// `true` when error `e` is reported by a keyword that encloses the site (`anyOf`, `oneOf`,
/// `not`, `unevaluated*`, ...), at or above the site's instance location.
fn encloses(site: &Site, e: &ValidationError<'_>) -> bool {
    let path = e.schema_path().as_str();
    [site.schema_path.as_str(), site.error_path.as_str()]
        .iter()
        .any(|p| p.len() > path.len() && p.starts_with(path) && p.as_bytes()[path.len()] == b'/')
}

/// `true` when error `e` is the site's keyword at the site's schema path.
fn names(site: &Site, e: &ValidationError<'_>) -> bool {
    let kind = e.kind().keyword();
    let path = e.schema_path().as_str();
    let keyword_ok = match site.keyword.as_str() {
        "false" => kind == "falseSchema",
        "dependencies" | "dependentRequired" => {
            matches!(kind, "required" | "dependentRequired" | "dependencies")
        }
        "items" | "additionalItems" => matches!(kind, "items" | "additionalItems" | "falseSchema"),
        "exclusiveMinimum" => matches!(kind, "exclusiveMinimum" | "minimum"),
        // jsonschema reports every `contains` failure at `minContains`/`maxContains` when
        // they are present (kind `contains`).
        "contains" if kind == "contains" => {
            let at = |p: &str| {
                let parent = p.rsplit_once('/').map_or("", |(a, _)| a);
                path == p
                    || path == format!("{parent}/minContains")
                    || path == format!("{parent}/maxContains")
            };
            return at(&site.schema_path) || at(&site.error_path);
        }
        "minContains" | "maxContains" => kind == "contains",
        "propertyNames" => matches!(kind, "propertyNames" | "falseSchema"),
        "additionalProperties" | "unevaluatedProperties" => {
            kind == site.keyword || kind == "falseSchema"
        }
        k => kind == k,
    };
    keyword_ok
        && [site.schema_path.as_str(), site.error_path.as_str()]
            .iter()
            .any(|p| {
                path == *p
                    || (path.len() > p.len()
                        && path.starts_with(p)
                        && path.as_bytes()[p.len()] == b'/')
            })
}

/// `true` when a combinator error's branch errors (at any depth) name the site.
fn within(site: &Site, e: &ValidationError<'_>) -> bool {
    let context = match e.kind() {
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            context
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => return site.keyword == "oneOf",
        _ => return false,
    };
    context
        .iter()
        .flatten()
        .any(|inner| names(site, inner) || within(site, inner))
}

fn count(v: &Value) -> Option<usize> {
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let u = f as u64;
                    u
                })
        })
        .and_then(|u| usize::try_from(u).ok())
        .filter(|n| *n < 1 << 16)
}

/// Strings that miss `format`: near misses first.
fn format_misses(format: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = match format {
        "date" => vec!["2026-02-30", "2026-13-01", "26-01-01", "2026-1-1"],
        "date-time" => vec![
            "2026-02-30T10:00:00Z",
            "2026-01-01 10:00:00",
            "2026-01-01T25:00:00Z",
            "2026-01-01T10:00:00",
        ],
        "time" => vec!["25:00:00Z", "10:61:00Z", "10:00:00", "1:2:3Z"],
        "duration" => vec!["P", "PT", "1D", "P1S", "PT1D"],
        "email" | "idn-email" => vec!["no-at-sign", "a@", "@b.com", "a b@c.com"],
        "hostname" | "idn-hostname" => vec!["-bad-.example", "a..b", "bad_host!", "a-"],
        "ipv4" => vec!["256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4"],
        "ipv6" => vec!["::g", "1:2:3:4:5:6:7:8:9", "12345::", ":::"],
        "uri" | "iri" => vec!["no-scheme", "//host/path", "http://[bad", "\\\\server"],
        "uri-reference" | "iri-reference" => {
            vec!["\\\\WINDOWS\\fileshare", "http://[bad", "#frag#ment"]
        }
        "uri-template" => vec!["http://example.com/{broken", "{{x}", "}"],
        "json-pointer" => vec!["no-slash", "/~2", "/a~"],
        "relative-json-pointer" => vec!["/a", "-1/a", "01", "a"],
        "regex" => vec!["(", "[a-", "*", "\\"],
        "uuid" => vec![
            "not-a-uuid",
            "123e4567-e89b-12d3-a456-42661417400",
            "123e4567e89b12d3a456426614174000x",
            "g23e4567-e89b-12d3-a456-426614174000",
        ],
        _ => Vec::new(),
    };
    out.extend(["", "x", "\u{1F4A5}"]);
    out
}
