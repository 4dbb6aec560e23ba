//! Header rules: required names (matched case-insensitively, each at most once), the shared
//! header schema, and the `x-rh-identity` document.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::contract::{Part, Violation, push_schema_errors};
use crate::shape::{Found, Shape, Template};
use crate::string_rule::StringRule;
use crate::validator::{Compiler, SchemaValidator};

/// The identity header: base64 of a JSON document with `identity.org_id`.
pub const IDENTITY_HEADER: &str = "x-rh-identity";
/// The request-id header. (The historical misspelling `x-rh-insight-request-id` is not accepted.)
pub const REQUEST_ID_HEADER: &str = "x-rh-insights-request-id";

/// The decoded `x-rh-identity` header. Its `Debug` shows the tenant and principal type only:
/// the raw header, account and user details never reach logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity(
    // Shared: a cached identity is handed to every message that carries it, for the price of one
    // reference count.
    Arc<IdentityFields>,
);

#[derive(PartialEq, Eq)]
struct IdentityFields {
    org_id: Box<str>,
    principal: Box<str>,
}

impl Identity {
    fn new(org_id: &str, principal: &str) -> Identity {
        Identity::from_owned(org_id.to_owned(), principal.to_owned())
    }

    /// An identity of strings the caller owns (no copy when their capacity is their length).
    fn from_owned(org_id: String, principal: String) -> Identity {
        Identity(Arc::new(IdentityFields {
            org_id: org_id.into_boxed_str(),
            principal: principal.into_boxed_str(),
        }))
    }

    /// Best-effort decode of an `x-rh-identity` value for display: base64, JSON, then
    /// `identity.org_id` and `identity.type`. No schema check; use a [`crate::Contract`] to validate.
    pub fn from_header(value: &[u8]) -> Option<Identity> {
        let bytes = decode_base64(value.trim_ascii()).ok()?;
        let doc: Value = serde_json::from_slice(&bytes).ok()?;
        let inner = doc.get("identity")?;
        Some(Identity::new(
            inner.get("org_id")?.as_str()?,
            inner
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ))
    }

    /// The tenant (`identity.org_id`).
    pub fn org_id(&self) -> &str {
        &self.0.org_id
    }

    /// The principal type (`identity.type`: `User`, `System`, `ServiceAccount`, ...).
    pub fn principal_type(&self) -> &str {
        &self.0.principal
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("org_id", &self.org_id())
            .field("type", &self.principal_type())
            .finish_non_exhaustive()
    }
}

/// Encodes a minimal identity header value for `org_id` (for producers, tests and the CLI).
pub fn encode_identity(org_id: &str, principal_type: &str) -> String {
    let doc = serde_json::json!({
        "identity": {
            "org_id": org_id,
            "type": principal_type,
            "auth_type": "jwt-auth",
            "internal": { "org_id": org_id }
        }
    });
    base64::engine::general_purpose::STANDARD.encode(doc.to_string())
}

/// What every topic shares, from `headers.json`.
#[derive(Debug, Clone)]
pub(crate) struct HeaderRules {
    schema: Value,
    /// Lower-case names the header schema describes, plus the required ones.
    known: Vec<String>,
    required: Vec<String>,
    identity: Option<Value>,
}

/// How many distinct valid identity headers a topic remembers. A producer usually sends many
/// events under one identity, so decoding and validating each distinct header once saves most of
/// the header cost; the cache is cleared when full, so memory stays bounded.
const IDENTITY_CACHE_SIZE: usize = 1024;

/// Valid identities by raw header value, with the last one found kept in front: consecutive
/// messages usually carry the same identity, and comparing beats hashing. Keys are shared, so
/// moving a hit to the front costs a reference count, not a copy; the map hashes with foldhash
/// (the values are ~200-byte base64 strings, where `SipHash` is slow).
///
/// Traffic from many tenants can miss every time; remembering each new identity then costs a
/// copy, a hash and, every 1,024 of them, clearing the map, for nothing. After
/// [`IdentityCache::COLD_AFTER`] misses in a row only every [`IdentityCache::SAMPLE`]th new
/// identity is remembered, until a hit.
#[derive(Default)]
struct IdentityCache {
    last: Option<(Arc<[u8]>, Identity)>,
    map: HashMap<Arc<[u8]>, Identity, foldhash::fast::RandomState>,
    /// Lookups that missed since the last hit.
    misses: u32,
    /// The last identity document the plain scan read, against which new ones are compared
    /// first (see [`Template`]).
    template: Option<Template>,
}

impl IdentityCache {
    const COLD_AFTER: u32 = 64;
    const SAMPLE: u32 = 16;

    fn get(&mut self, raw: &[u8]) -> Option<Identity> {
        if let Some((last_raw, identity)) = &self.last
            && **last_raw == *raw
        {
            self.misses = 0;
            return Some(identity.clone());
        }
        let Some((key, hit)) = self.map.get_key_value(raw) else {
            self.misses = self.misses.saturating_add(1);
            return None;
        };
        let hit = hit.clone();
        self.last = Some((Arc::clone(key), hit.clone()));
        self.misses = 0;
        Some(hit)
    }

    fn insert(&mut self, raw: &[u8], identity: Identity) {
        if self.misses >= Self::COLD_AFTER && !self.misses.is_multiple_of(Self::SAMPLE) {
            return;
        }
        if self.map.len() >= IDENTITY_CACHE_SIZE {
            self.map.clear();
        }
        let key: Arc<[u8]> = Arc::from(raw);
        self.map.insert(Arc::clone(&key), identity.clone());
        self.last = Some((key, identity));
    }
}

/// A topic's identity caches, one per shard of threads. A topic's partitions are checked on
/// several threads at once; one shared cache would be one lock (and, on a hit, one reference
/// count) whose cache line every core writes in turn, per message. Each thread uses the shard
/// of its own index instead, so threads do not meet unless there are more of them than shards;
/// each shard remembers up to [`IDENTITY_CACHE_SIZE`] identities.
struct IdentityShards(Box<[Shard]>);

/// One shard, on a cache line (pair) of its own.
#[repr(align(128))]
#[derive(Default)]
struct Shard(Mutex<IdentityCache>);

impl IdentityShards {
    /// At most this many shards (memory stays bounded on machines with many cores).
    const MAX: usize = 16;

    fn new() -> Self {
        static COUNT: OnceLock<usize> = OnceLock::new();
        let n = *COUNT.get_or_init(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(Self::MAX))
        });
        IdentityShards((0..n).map(|_| Shard::default()).collect())
    }

    /// This thread's shard.
    fn mine(&self) -> std::sync::MutexGuard<'_, IdentityCache> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        let i = INDEX.with(|i| *i) % self.0.len();
        // A poisoned lock only means another thread panicked mid-insert: the map is still sound.
        self.0[i]
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The known headers a message carries: (index into `known`, raw value). Most topics know two or
/// three headers, so this stays on the stack. Values are checked for UTF-8 where they are used:
/// an identity header found in the cache (valid ASCII when it was stored) needs no second pass.
type Present<'h> = smallvec::SmallVec<[(usize, &'h [u8]); 4]>;

/// Header rules compiled for one topic.
pub(crate) struct CompiledHeaders {
    known: Vec<String>,
    required: Vec<String>,
    /// Bit `i` set when `known[i]` is required.
    required_mask: u64,
    validator: SchemaValidator,
    /// One check per known header, when the header schema only constrains headers one by one
    /// (the usual shape).
    per_header: Option<Vec<Option<HeaderCheck>>>,
    identity: Option<SchemaValidator>,
    /// The identity document's schema as a streaming check, when it is in the subset
    /// [`Shape`] covers: a new identity is then checked without building a `Value`.
    identity_shape: Option<Shape>,
    /// Raw header value → the identity it decoded to (valid ones only).
    identities: IdentityShards,
}

impl fmt::Debug for CompiledHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledHeaders")
            .field("known", &self.known)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

/// One header's schema, compiled: the validator, and the [`StringRule`] that answers for it in
/// place (no `Value`, no copy) when the schema is in that subset, as the sample's are.
struct HeaderCheck {
    validator: SchemaValidator,
    rule: Option<StringRule>,
}

impl HeaderCheck {
    fn accepts(&self, value: &str) -> bool {
        match &self.rule {
            Some(rule) => rule.accepts(value),
            None => self.validator.is_valid(&Value::String(value.to_owned())),
        }
    }
}

/// What the header check found, for the caller.
#[derive(Default)]
pub(crate) struct HeaderFacts {
    pub identity: Option<Identity>,
    pub request_id: Option<String>,
}

impl HeaderRules {
    /// Reads the shared header schema.
    pub fn base(schema: &Value) -> Result<HeaderRules, String> {
        let required: Vec<String> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .collect()
            })
            .unwrap_or_default();
        let mut known: Vec<String> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        for r in &required {
            if !known.contains(r) {
                known.push(r.clone());
            }
        }
        let defs = schema.get("$defs").or_else(|| schema.get("definitions"));
        let identity = defs.and_then(|d| d.get("identity")).map(|_| {
            let key = if schema.get("$defs").is_some() {
                "$defs"
            } else {
                "definitions"
            };
            crate::ref_schema(schema, &format!("#/{key}/identity"))
        });
        crate::validator::runtime(schema)
            .map_err(|e| format!("header schema does not compile: {e}"))?;
        Ok(HeaderRules {
            schema: schema.clone(),
            known,
            required,
            identity,
        })
    }

    /// Compiles the rules for a topic that may narrow or widen the required headers.
    pub(crate) fn compile(
        &self,
        compiler: &Compiler,
        required: Option<&[String]>,
    ) -> Result<CompiledHeaders, String> {
        let required: Vec<String> = required.map_or_else(
            || self.required.clone(),
            |r| r.iter().map(|h| h.to_ascii_lowercase()).collect(),
        );
        let mut known = self.known.clone();
        for r in &required {
            if !known.contains(r) {
                known.push(r.clone());
            }
        }
        let mut schema = self.schema.clone();
        if let Some(obj) = schema.as_object_mut() {
            obj.insert(
                "required".to_owned(),
                Value::Array(required.iter().cloned().map(Value::String).collect()),
            );
        }
        if known.len() > 64 {
            return Err(format!(
                "{} headers are described or required; evkit supports at most 64",
                known.len()
            ));
        }
        let validator = compiler
            .compile(&schema)
            .map_err(|e| format!("header schema: {e}"))?;
        let per_header = if self.per_header_shape() {
            let mut list = Vec::new();
            for name in &known {
                list.push(
                    match self.schema.get("properties").and_then(|p| p.get(name)) {
                        Some(own) => Some(HeaderCheck {
                            validator: compiler
                                .compile(&self.property_schema(name))
                                .map_err(|e| format!("header schema for `{name}`: {e}"))?,
                            rule: StringRule::compile(own),
                        }),
                        None => None,
                    },
                );
            }
            Some(list)
        } else {
            None
        };
        let identity = match &self.identity {
            Some(s) => Some(
                compiler
                    .compile(s)
                    .map_err(|e| format!("identity schema: {e}"))?,
            ),
            None => None,
        };
        let identity_shape = self.identity.as_ref().and_then(|_| {
            let def = ["$defs", "definitions"]
                .iter()
                .find_map(|k| self.schema.get(*k)?.get("identity"))?;
            Shape::compile(def, self.schema.get("$schema"), &IDENTITY_FIELDS)
        });
        let required_mask = known
            .iter()
            .enumerate()
            .filter(|(_, k)| required.contains(k))
            .fold(0u64, |m, (i, _)| m | (1 << i));
        Ok(CompiledHeaders {
            known,
            required,
            required_mask,
            validator,
            per_header,
            identity,
            identity_shape,
            identities: IdentityShards::new(),
        })
    }
}

impl HeaderRules {
    /// Whether the header schema's root only names headers, their schemas and `required`, so
    /// each header can be validated on its own.
    fn per_header_shape(&self) -> bool {
        const ROOT: &[&str] = &[
            "$schema",
            "$id",
            "$comment",
            "title",
            "description",
            "examples",
            "type",
            "required",
            "properties",
            "$defs",
            "definitions",
        ];
        self.schema.as_object().is_some_and(|root| {
            root.keys().all(|k| ROOT.contains(&k.as_str()))
                && root.get("type").is_none_or(|t| t == "object")
                && root
                    .get("properties")
                    .and_then(Value::as_object)
                    .is_some_and(|p| p.keys().all(|k| k.bytes().all(|b| !b.is_ascii_uppercase())))
        })
    }

    /// A schema for the value of header `name`, keeping the document's definitions.
    fn property_schema(&self, name: &str) -> Value {
        let escaped = crate::pointer::escape(name);
        crate::ref_schema(&self.schema, &format!("#/properties/{escaped}"))
    }
}

impl CompiledHeaders {
    /// Checks the headers of one message, appending every violation to `out`.
    pub fn check<'h>(
        &self,
        headers: impl Iterator<Item = (&'h str, Option<&'h [u8]>)>,
        out: &mut Vec<Violation>,
    ) -> HeaderFacts {
        match &self.per_header {
            Some(checks) => self.check_each(checks, headers, out),
            None => self.check_document(headers, out),
        }
    }

    /// Reads the known headers: at most once each, with a UTF-8 value.
    fn collect<'h>(
        &self,
        headers: impl Iterator<Item = (&'h str, Option<&'h [u8]>)>,
        out: &mut Vec<Violation>,
    ) -> Present<'h> {
        let mut present = Present::new();
        // One bit per known header (`HeaderRules::compile` allows at most 64).
        let mut seen: u64 = 0;
        for (name, value) in headers {
            // Most clients send the lower-case name: compare bytes before folding case.
            let Some(i) = self.known.iter().position(|k| {
                k.len() == name.len()
                    && (k.as_bytes() == name.as_bytes() || k.eq_ignore_ascii_case(name))
            }) else {
                continue;
            };
            let known = &self.known[i];
            if seen & (1 << i) != 0 {
                out.push(Violation::new(
                    Part::Header(known.clone()),
                    "",
                    "unique",
                    format!("header `{known}` is present more than once (names are matched case-insensitively)"),
                ));
                continue;
            }
            seen |= 1 << i;
            match value {
                None => out.push(Violation::new(
                    Part::Header(known.clone()),
                    "",
                    "type",
                    format!("header `{known}` has no value"),
                )),
                Some(v) => present.push((i, v)),
            }
        }
        present
    }

    /// A known header's value as text, or a `utf8` violation.
    fn text<'h>(&self, i: usize, value: &'h [u8], out: &mut Vec<Violation>) -> Option<&'h str> {
        match std::str::from_utf8(value) {
            Ok(s) => Some(s),
            Err(e) => {
                let known = &self.known[i];
                out.push(Violation::new(
                    Part::Header(known.clone()),
                    "",
                    "utf8",
                    format!("header `{known}` is not UTF-8 ({e})"),
                ));
                None
            }
        }
    }

    fn check_each<'h>(
        &self,
        checks: &[Option<HeaderCheck>],
        headers: impl Iterator<Item = (&'h str, Option<&'h [u8]>)>,
        out: &mut Vec<Violation>,
    ) -> HeaderFacts {
        let present = self.collect(headers, out);
        let present_mask = present.iter().fold(0u64, |m, (i, _)| m | (1 << i));
        if present_mask & self.required_mask != self.required_mask {
            self.missing(present_mask, out);
        }
        let mut facts = HeaderFacts::default();
        for (i, raw) in present {
            let name = self.known[i].as_str();
            let is_identity = name == IDENTITY_HEADER && self.identity.is_some();
            // This thread's identity cache, locked once for the lookup, the template and the
            // insert of a new identity.
            let mut shard = is_identity.then(|| self.identities.mine());
            if let Some(shard) = shard.as_mut()
                && let Some(hit) = shard.get(raw)
            {
                // Seen before: its header rules and identity document already passed.
                facts.identity = Some(hit);
                continue;
            }
            let Some(value) = self.text(i, raw, out) else {
                continue;
            };
            let before = out.len();
            if let Some(check) = &checks[i]
                && !check.accepts(value)
            {
                header_errors(
                    name,
                    &check.validator,
                    &Value::String(value.to_owned()),
                    out,
                );
            }
            if name == REQUEST_ID_HEADER {
                facts.request_id = Some(value.to_owned());
            }
            if let Some(shard) = shard.as_mut()
                && out.len() == before
                && let Some(validator) = &self.identity
            {
                facts.identity = self.decode_and_remember(value, validator, shard, out);
            }
        }
        facts
    }

    /// A `required` violation for each required header `present_mask` lacks (cold: see
    /// [`Violation::new`]).
    #[cold]
    fn missing(&self, present_mask: u64, out: &mut Vec<Violation>) {
        for (i, name) in self.known.iter().enumerate() {
            if self.required_mask & (1 << i) != 0 && present_mask & (1 << i) == 0 {
                out.push(Violation {
                    part: Part::Header(name.clone()),
                    instance_path: String::new(),
                    schema_path: "/required".to_owned(),
                    rule: "required".to_owned(),
                    message: format!("\"{name}\" is a required property"),
                });
            }
        }
    }

    /// The general path: the known headers as one JSON object, validated by the whole schema.
    /// Out of line: a catalog uses either this or [`CompiledHeaders::check_each`].
    #[inline(never)]
    fn check_document<'h>(
        &self,
        headers: impl Iterator<Item = (&'h str, Option<&'h [u8]>)>,
        out: &mut Vec<Violation>,
    ) -> HeaderFacts {
        let mut doc = Map::new();
        for (i, raw) in self.collect(headers, out) {
            if let Some(value) = self.text(i, raw, out) {
                doc.insert(self.known[i].clone(), Value::String(value.to_owned()));
            }
        }
        let doc = Value::Object(doc);
        if !self.validator.is_valid(&doc) {
            for e in self.validator.iter_errors(&doc) {
                // Header errors are reported per header; the value is never echoed.
                let name = match e.kind() {
                    jsonschema::error::ValidationErrorKind::Required { property } => {
                        property.as_str().unwrap_or_default().to_owned()
                    }
                    _ => {
                        crate::pointer::unescape(e.instance_path().as_str().trim_start_matches('/'))
                            .into_owned()
                    }
                };
                let part = if name.is_empty() {
                    Part::Headers
                } else {
                    Part::Header(name)
                };
                out.push(Violation {
                    part,
                    instance_path: String::new(),
                    schema_path: e.schema_path().as_str().to_owned(),
                    rule: e.kind().keyword().to_owned(),
                    message: e.masked().to_string(),
                });
            }
        }
        let mut facts = HeaderFacts {
            request_id: doc
                .get(REQUEST_ID_HEADER)
                .and_then(Value::as_str)
                .map(str::to_owned),
            identity: None,
        };
        let identity_broken = out
            .iter()
            .any(|v| matches!(&v.part, Part::Header(h) if h == IDENTITY_HEADER));
        if let (Some(raw), Some(validator), false) = (
            doc.get(IDENTITY_HEADER).and_then(Value::as_str),
            &self.identity,
            identity_broken,
        ) {
            facts.identity = self.identity(raw, validator, out);
        }
        facts
    }

    /// The identity of a header value: from the cache, or decoded, validated and remembered.
    fn identity(
        &self,
        raw: &str,
        validator: &SchemaValidator,
        out: &mut Vec<Violation>,
    ) -> Option<Identity> {
        let mut shard = self.identities.mine();
        if let Some(hit) = shard.get(raw.as_bytes()) {
            return Some(hit);
        }
        self.decode_and_remember(raw, validator, &mut shard, out)
    }

    /// Decodes and validates an identity header; remembers it when valid.
    fn decode_and_remember(
        &self,
        raw: &str,
        validator: &SchemaValidator,
        shard: &mut IdentityCache,
        out: &mut Vec<Violation>,
    ) -> Option<Identity> {
        let identity = decode_identity(raw, validator, self.identity_shape.as_ref(), shard, out)?;
        shard.insert(raw.as_bytes(), identity.clone());
        Some(identity)
    }

    /// Header names this topic requires (lower case).
    pub fn required(&self) -> &[String] {
        &self.required
    }
}

/// The errors of a header value its validator rejected, with schema paths in the header schema
/// itself (cold: see [`Violation::new`]).
#[cold]
fn header_errors(
    name: &str,
    validator: &SchemaValidator,
    instance: &Value,
    out: &mut Vec<Violation>,
) {
    let own = format!("/properties/{name}");
    for e in validator.iter_errors(instance) {
        // The validator wraps a `$ref` to `#/properties/<name>`: report the path in the header
        // schema itself.
        let path = e.schema_path().as_str();
        let path = path.strip_prefix("/$ref").unwrap_or(path);
        out.push(Violation {
            part: Part::Header(name.to_owned()),
            instance_path: String::new(),
            schema_path: if path.starts_with(&own) {
                path.to_owned()
            } else {
                format!("{own}{path}")
            },
            rule: e.kind().keyword().to_owned(),
            message: e.masked().to_string(),
        });
    }
}

/// The identity document `text` by the shape: compared with this thread's [`Template`] first (the
/// last document the plain scan read), else checked by [`Shape::accept_learning`], whose
/// template then replaces it. `None` when neither accepts it (the full validator decides).
fn accept_identity(shape: &Shape, text: &str, shard: &mut IdentityCache) -> Option<Found> {
    let slots = IDENTITY_FIELDS.len();
    if let Some(found) = shard.template.as_ref().and_then(|t| t.accept(text, slots)) {
        return Some(found);
    }
    let (found, template) = shape.accept_learning(text, slots)?;
    if template.is_some() {
        shard.template = template;
    }
    Some(found)
}

/// Decodes standard base64 with padding, exactly as the `base64` crate's `STANDARD` engine
/// does (canonical padding, no non-zero trailing bits, no whitespace), but with SIMD where the
/// CPU has it: about a third of the instructions on a ~150-byte identity header.
/// `base64_simd::STANDARD` accepts and decodes exactly what `STANDARD` does (a test compares
/// them on every input of up to three characters and on mutated encodings of up to 400); the
/// error, on the cold path, is the `base64` crate's, which names the offending symbol.
fn decode_base64(raw: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
    match base64_simd::STANDARD.decode_to_vec(raw) {
        Ok(bytes) => Ok(bytes),
        Err(_) => base64_error(raw),
    }
}

/// Why `raw` is not base64, in the `base64` crate's words (cold: see [`Violation::new`]).
#[cold]
fn base64_error(raw: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(raw)
}

/// Where the identity's tenant and principal type are, in the order [`Shape::accept`] keeps them.
const IDENTITY_FIELDS: [&[&str]; 2] = [&["identity", "org_id"], &["identity", "type"]];

fn decode_identity(
    raw: &str,
    validator: &SchemaValidator,
    shape: Option<&Shape>,
    shard: &mut IdentityCache,
    out: &mut Vec<Violation>,
) -> Option<Identity> {
    let part = || Part::Header(IDENTITY_HEADER.to_owned());
    // `trim` is a no-op when both ends are base64 symbols (Unicode whitespace starts with ASCII
    // whitespace or a byte of 0x80 and above): most headers skip its character decoding.
    let symbol =
        |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b));
    let raw = if symbol(raw.as_bytes().first()) && symbol(raw.as_bytes().last()) {
        raw
    } else {
        raw.trim()
    };
    let bytes = match decode_base64(raw.as_bytes()) {
        Ok(b) => b,
        Err(e) => {
            out.push(Violation::new(
                part(),
                "",
                "base64",
                format!("not base64: {e}"),
            ));
            return None;
        }
    };
    // A document the streaming check accepts is valid (see `shape`); anything else, the full
    // validator judges and explains.
    if let Some(shape) = shape
        && let Ok(text) = std::str::from_utf8(&bytes)
        && let Some(found) = accept_identity(shape, text, shard)
        && let Ok([Some(org_id), principal]) = found.0.into_inner()
    {
        return Some(Identity::from_owned(org_id, principal.unwrap_or_default()));
    }
    // One UTF-8 pass, then `from_str` (as the payload is parsed): same value and errors as
    // `from_slice`, which checks every string on its own.
    let doc: Value = match crate::contract::parse_json(&bytes) {
        Ok(d) => d,
        Err(e) => {
            out.push(Violation::new(
                part(),
                "",
                "json",
                format!("decoded identity is not JSON: {e}"),
            ));
            return None;
        }
    };
    let before = out.len();
    push_schema_errors(validator, &doc, &part(), "", out);
    if out.len() > before {
        return None;
    }
    let field = |name: &str| {
        doc.get("identity")
            .and_then(|i| i.get(name))
            .and_then(Value::as_str)
    };
    let Some(org_id) = field("org_id") else {
        out.push(Violation::new(
            part(),
            "/identity/org_id",
            "required",
            "identity has no string `identity.org_id`".to_owned(),
        ));
        return None;
    };
    Some(Identity::new(org_id, field("type").unwrap_or_default()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use base64::Engine as _;
    use proptest::prelude::*;

    use super::{Identity, IdentityCache, decode_base64};

    /// Base64's alphabet, its padding, and bytes that must be refused (space, the URL-safe
    /// symbols, line breaks, NUL, non-ASCII).
    const SYMBOLS: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= -_\n.\r\t\x00\x80\xff";

    /// The oracle: the `base64` crate's `STANDARD` engine, which evkit used before.
    fn agrees(input: &[u8]) -> Result<(), String> {
        let oracle = base64::engine::general_purpose::STANDARD.decode(input);
        let ours = decode_base64(input);
        match (&oracle, &ours) {
            (Ok(a), Ok(b)) if a == b => Ok(()),
            (Err(a), Err(b)) if a == b => Ok(()),
            _ => Err(format!(
                "{:?}: base64 crate {oracle:?}, evkit {ours:?}",
                String::from_utf8_lossy(input)
            )),
        }
    }

    #[test]
    fn base64_decoding_agrees_with_the_base64_crate_on_every_short_input() {
        // Every input of up to three symbols (about 430,000): padding in every place, every
        // trailing-bit pattern of a short final group, every refused byte.
        let mut checked = 0;
        for len in 0..=3u32 {
            for mut k in 0..SYMBOLS.len().pow(len) {
                let mut input = Vec::new();
                for _ in 0..len {
                    input.push(SYMBOLS[k % SYMBOLS.len()]);
                    k /= SYMBOLS.len();
                }
                if let Err(e) = agrees(&input) {
                    panic!("{e}");
                }
                checked += 1;
            }
        }
        assert!(checked > 400_000);
        // The symbol after a full group decides canonical trailing bits: every last symbol of
        // "QQ?=" and "QUI?".
        for &last in SYMBOLS {
            for prefix in [&b"QQ"[..], b"QUI", b"QUJD"] {
                let mut input = prefix.to_vec();
                input.push(last);
                if prefix.len() == 2 {
                    input.push(b'=');
                }
                agrees(&input).unwrap();
            }
        }
    }

    /// A valid encoding of `bytes` with `edits` applied: (position, symbol) replacements,
    /// positions taken modulo the length, then `cut` symbols dropped from the end.
    fn damaged(bytes: &[u8], edits: &[(usize, usize)], cut: usize) -> Vec<u8> {
        let mut s = base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes();
        for &(at, symbol) in edits {
            if !s.is_empty() {
                let at = at % s.len();
                s[at] = SYMBOLS[symbol % SYMBOLS.len()];
            }
        }
        s.truncate(s.len().saturating_sub(cut));
        s
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        /// Long inputs take the SIMD path (32 symbols and more): valid encodings of up to 300
        /// bytes, and the same with symbols replaced (often near the end, where padding and
        /// trailing bits are) or cut off.
        #[test]
        fn base64_decoding_agrees_with_the_base64_crate_on_long_inputs(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            edits in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..3),
            near_end in any::<bool>(),
            cut in 0..3usize,
        ) {
            let input = damaged(&bytes, &[], 0);
            let edits: Vec<(usize, usize)> = edits
                .into_iter()
                .map(|(at, symbol)| {
                    let at = if near_end { input.len().saturating_sub(1 + at % 4) } else { at };
                    (at, symbol)
                })
                .collect();
            prop_assert!(agrees(&input).is_ok(), "{:?}", agrees(&input));
            let input = damaged(&bytes, &edits, cut);
            if let Err(e) = agrees(&input) {
                prop_assert!(false, "{}", e);
            }
        }
    }

    #[test]
    fn a_cold_cache_remembers_only_a_sample_of_new_identities_until_a_hit() {
        let mut cache = IdentityCache::default();
        let id = Identity::new("o", "User");
        let mut remembered = 0;
        for i in 0..1_000u32 {
            let raw = i.to_le_bytes();
            assert!(cache.get(&raw).is_none());
            cache.insert(&raw, id.clone());
            remembered += usize::from(cache.map.contains_key(&raw[..]));
        }
        // The first 63 misses are all remembered, then the 64th, 80th, ... (one in 16).
        let sampled = (64..=1_000u32).filter(|m| m % 16 == 0).count();
        assert_eq!(remembered, 63 + sampled);
        // A hit makes the cache warm again: every new identity is remembered.
        assert!(
            cache.get(&63u32.to_le_bytes()).is_some(),
            "the 64th miss was sampled"
        );
        cache.insert(b"new", id.clone());
        assert!(cache.get(b"new").is_some());
    }
}
