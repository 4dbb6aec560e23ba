//! A topic's compiled rules for key, headers and payload.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::Value;

use crate::catalog::{DEFAULT_MAX_PAYLOAD_BYTES, EnvelopeMode, KeyPolicy, TopicSpec, WireFormat};
use crate::cloudevents::{self, Attributes};
use crate::error::Error;
use crate::headers::{CompiledHeaders, HeaderRules, Identity};
use crate::validator::{Compiler, SchemaValidator};

/// A record's headers in wire order, borrowed; a header may have no value. Up to twelve are kept
/// inline (the required two, the eight attributes of a binary CloudEvent and two more), so
/// borrowing a record as a [`Message`] does not allocate; more spill to the heap.
pub type Headers<'a> = smallvec::SmallVec<[(&'a str, Option<&'a [u8]>); 12]>;

/// One Kafka record as the contract sees it: borrowed key, headers and payload.
///
/// Its `Debug` shows header names and sizes, never header values or the payload.
#[derive(Clone, Default)]
pub struct Message<'a> {
    /// The record key (`None` when absent).
    pub key: Option<&'a [u8]>,
    /// Headers in wire order; a header may have no value.
    pub headers: Headers<'a>,
    /// The payload (`None` for a tombstone).
    pub payload: Option<&'a [u8]>,
}

impl<'a> Message<'a> {
    /// A message with this payload, no key and no headers.
    pub fn new(payload: &'a [u8]) -> Self {
        Message {
            key: None,
            headers: Headers::new(),
            payload: Some(payload),
        }
    }

    /// A message borrowed from owned parts: the shape a consumer or producer holds
    /// (`(name, value)` headers as `String`/`Vec<u8>`).
    pub fn from_parts(
        key: Option<&'a [u8]>,
        headers: &'a [(String, Vec<u8>)],
        payload: &'a [u8],
    ) -> Self {
        Message {
            key,
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_str(), Some(v.as_slice())))
                .collect(),
            payload: Some(payload),
        }
    }

    /// A message without payload (a tombstone).
    pub fn tombstone() -> Self {
        Message::default()
    }

    /// Sets the key.
    #[must_use]
    pub fn key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// Appends a header.
    #[must_use]
    pub fn header(mut self, name: &'a str, value: &'a [u8]) -> Self {
        self.headers.push((name, Some(value)));
        self
    }

    /// Appends a header without a value.
    #[must_use]
    pub fn null_header(mut self, name: &'a str) -> Self {
        self.headers.push((name, None));
        self
    }

    /// The value of the first header with this name (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| *v)
    }
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("key_len", &self.key.map(<[u8]>::len))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("payload_len", &self.payload.map(<[u8]>::len))
            .finish()
    }
}

/// Which part of a message broke a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The record key.
    Key,
    /// The header set as a whole.
    Headers,
    /// One header, by its lower-case name.
    Header(String),
    /// The CloudEvents envelope (attributes, content type).
    Envelope,
    /// The payload (for CloudEvents: the event's `data`).
    Payload,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Key => f.write_str("key"),
            Part::Headers => f.write_str("headers"),
            Part::Header(h) => write!(f, "header `{h}`"),
            Part::Envelope => f.write_str("cloudevent"),
            Part::Payload => f.write_str("payload"),
        }
    }
}

/// One rule a message broke. The message is masked: it never repeats the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Key, a header, the envelope or the payload.
    pub part: Part,
    /// JSON pointer to the failing value inside that part (`/servers/0/fqdn`); empty for the root.
    pub instance_path: String,
    /// JSON pointer to the schema keyword that failed (empty for rules outside a schema).
    pub schema_path: String,
    /// The rule: a JSON Schema keyword (`required`, `type`, `maxLength`, ...) or an evkit rule
    /// (`json`, `utf8`, `maxSize`, `base64`, `unique`, `key-pointer`, `dataschema`, `content-type`,
    /// and for `wire: confluent` topics `wire-magic`, `wire-length`, `schema-id`).
    pub rule: String,
    /// What is wrong, without the value.
    pub message: String,
}

impl Violation {
    // Cold: violations are the exception, and the branches that build one (with their
    // `format!`) are then laid out away from the valid path, which keeps that path's code
    // compact in the instruction cache.
    #[cold]
    pub(crate) fn new(part: Part, instance_path: &str, rule: &str, message: String) -> Self {
        Violation {
            part,
            instance_path: instance_path.to_owned(),
            schema_path: String::new(),
            rule: rule.to_owned(),
            message,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.part)?;
        if !self.instance_path.is_empty() {
            write!(f, " {}", self.instance_path)?;
        }
        write!(f, ": {} [{}", self.message, self.rule)?;
        if !self.schema_path.is_empty() {
            write!(f, " at {}", self.schema_path)?;
        }
        f.write_str("]")
    }
}

/// Runs a validator and appends its (masked) errors; the fast `is_valid` path runs first.
pub(crate) fn push_schema_errors(
    validator: &SchemaValidator,
    instance: &Value,
    part: &Part,
    prefix: &str,
    out: &mut Vec<Violation>,
) {
    if !validator.is_valid(instance) {
        list_schema_errors(validator, instance, part, prefix, out);
    }
}

/// The error list of a value [`push_schema_errors`] found invalid (cold, as [`Violation::new`]).
#[cold]
fn list_schema_errors(
    validator: &SchemaValidator,
    instance: &Value,
    part: &Part,
    prefix: &str,
    out: &mut Vec<Violation>,
) {
    for e in validator.iter_errors(instance) {
        out.push(Violation {
            part: part.clone(),
            instance_path: format!("{prefix}{}", e.instance_path().as_str()),
            schema_path: e.schema_path().as_str().to_owned(),
            rule: e.kind().keyword().to_owned(),
            message: e.masked().to_string(),
        });
    }
}

/// What a valid message turned out to hold.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The event: the payload, or for CloudEvents the event's `data`.
    pub payload: Value,
    /// The decoded identity, when the message carried one.
    pub identity: Option<Identity>,
    /// The `x-rh-insights-request-id`, when present.
    pub request_id: Option<String>,
    /// The CloudEvents attributes of an enveloped topic.
    pub cloudevent: Option<Attributes>,
    /// The registry's schema id from the Confluent framing (`wire: confluent` topics).
    pub schema_id: Option<u32>,
}

/// The schema registry ids a `wire: confluent` topic knows: the ones its subject lists (what a
/// consumer accepts) and the one its producer writes.
#[derive(Debug, Default)]
struct SchemaIds {
    /// `None` until a registry has been asked: then any id is accepted.
    registered: Option<Arc<BTreeSet<u32>>>,
    /// The id framed into produced messages.
    producing: Option<u32>,
    /// Who to ask about an id not in `registered`.
    lookup: Option<Arc<dyn crate::confluent::SchemaIdLookup>>,
}

impl fmt::Debug for dyn crate::confluent::SchemaIdLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SchemaIdLookup")
    }
}

/// A topic's compiled rules: key policy, headers, envelope and payload schema. Built once per
/// topic when the catalog loads; checking a message allocates only for what it reports.
pub struct Contract {
    topic: String,
    spec: TopicSpec,
    max_payload_bytes: usize,
    payload: SchemaValidator,
    dataschemas: BTreeMap<String, SchemaValidator>,
    key_schema: Option<SchemaValidator>,
    /// The key schema as a [`StringRule`] when it is that plain (`type`, lengths, an enum, a
    /// one-class pattern): a key it accepts needs no validator (nor a `Value` copy of the key);
    /// one it refuses goes to the validator, which names the errors.
    key_rule: Option<crate::string_rule::StringRule>,
    /// The key pointer's segments, unescaped once here rather than for every message.
    key_path: Option<Vec<String>>,
    headers: CompiledHeaders,
    schema_ids: RwLock<SchemaIds>,
}

impl fmt::Debug for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contract")
            .field("topic", &self.topic)
            .field("envelope", &self.spec.envelope.mode)
            .field("key", &self.spec.key)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Contract {
    /// Compiles a topic's rules. On failure returns the `topics.yaml` field at fault (empty for
    /// the schema file itself) and what is wrong.
    pub(crate) fn compile(
        compiler: &Compiler,
        spec: &TopicSpec,
        schema: &Value,
        headers: &HeaderRules,
        max_payload_bytes: Option<usize>,
    ) -> Result<Contract, (String, String)> {
        let payload = compiler
            .compile(schema)
            .map_err(|e| (String::new(), format!("schema does not compile: {e}")))?;
        let mut dataschemas = BTreeMap::new();
        for (uri, pointer) in &spec.envelope.dataschemas {
            let wrapper = crate::ref_schema(schema, pointer);
            let v = compiler.compile(&wrapper).map_err(|e| {
                (
                    format!("/envelope/dataschemas/{uri}"),
                    format!("`{pointer}` does not compile: {e}"),
                )
            })?;
            dataschemas.insert(uri.clone(), v);
        }
        let key_schema = match &spec.key.schema {
            Some(s) => Some(compiler.compile(s).map_err(|e| {
                (
                    "/key/schema".to_owned(),
                    format!("key schema does not compile: {e}"),
                )
            })?),
            None => None,
        };
        let compiled_headers = headers
            .compile(compiler, spec.required_headers.as_deref())
            .map_err(|e| ("/required_headers".to_owned(), e))?;
        Ok(Contract {
            topic: spec.name.clone(),
            spec: spec.clone(),
            max_payload_bytes: max_payload_bytes.unwrap_or(DEFAULT_MAX_PAYLOAD_BYTES),
            payload,
            dataschemas,
            key_rule: spec
                .key
                .schema
                .as_ref()
                .and_then(crate::string_rule::StringRule::compile),
            key_schema,
            key_path: spec.key.pointer.as_deref().and_then(pointer_segments),
            headers: compiled_headers,
            schema_ids: RwLock::default(),
        })
    }

    /// The topic this contract belongs to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The catalog entry.
    pub fn spec(&self) -> &TopicSpec {
        &self.spec
    }

    /// The key rules.
    pub fn key_policy(&self) -> &KeyPolicy {
        &self.spec.key
    }

    /// Header names every message must carry (lower case).
    pub fn required_headers(&self) -> &[String] {
        self.headers.required()
    }

    /// Payloads above this size are rejected before parsing.
    pub fn max_payload_bytes(&self) -> usize {
        self.max_payload_bytes
    }

    /// How this topic's payloads are framed.
    pub fn wire(&self) -> WireFormat {
        self.spec.wire
    }

    /// Sets the schema ids the registry lists for this topic's subject. From then on a
    /// `wire: confluent` message whose id is not among them breaks the `schema-id` rule; before,
    /// any id is accepted.
    pub fn set_registered_schema_ids(&self, ids: impl IntoIterator<Item = u32>) {
        let ids: BTreeSet<u32> = ids.into_iter().collect();
        self.schema_ids
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .registered = Some(Arc::new(ids));
    }

    /// Adds one id to the registered ones (a version registered after they were read).
    pub fn add_registered_schema_id(&self, id: u32) {
        let mut ids = self
            .schema_ids
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut set = ids.registered.as_deref().cloned().unwrap_or_default();
        set.insert(id);
        ids.registered = Some(Arc::new(set));
    }

    /// The ids set by [`Contract::set_registered_schema_ids`], if any.
    pub fn registered_schema_ids(&self) -> Option<Arc<BTreeSet<u32>>> {
        self.schema_ids
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .registered
            .clone()
    }

    /// Sets the schema id a producer frames into this topic's messages (the id the registry
    /// gave the topic's schema).
    pub fn set_schema_id(&self, id: u32) {
        self.schema_ids
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .producing = Some(id);
    }

    /// Sets who to ask about a schema id that is not among the registered ones, before a
    /// consumer rejects a message for it.
    pub fn set_schema_id_lookup(&self, lookup: Arc<dyn crate::confluent::SchemaIdLookup>) {
        self.schema_ids
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .lookup = Some(lookup);
    }

    /// The lookup set by [`Contract::set_schema_id_lookup`].
    pub fn schema_id_lookup(&self) -> Option<Arc<dyn crate::confluent::SchemaIdLookup>> {
        self.schema_ids
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .lookup
            .clone()
    }

    /// The schema id a producer frames into this topic's messages, once set.
    pub fn schema_id(&self) -> Option<u32> {
        self.schema_ids
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .producing
    }

    /// Checks key, headers, envelope and payload; on failure lists every violation.
    pub fn check(&self, message: &Message<'_>) -> Result<Checked, Error> {
        let mut out = Vec::new();
        let checked = self.check_into(message, &mut out);
        match checked {
            Some(c) if out.is_empty() => Ok(c),
            _ => Err(Error::Invalid {
                topic: self.topic.clone(),
                violations: out,
            }),
        }
    }

    /// [`Contract::check`] for a producer that already holds the payload as JSON: `parsed` must
    /// be what `message.payload` parses to (the producer serialized it from `parsed`), so the
    /// bytes are not parsed a second time. The size limit still applies to the bytes.
    pub fn check_parsed(&self, message: &Message<'_>, parsed: Value) -> Result<Checked, Error> {
        let mut out = Vec::new();
        let checked = self.check_payload(message, Some(parsed), &mut out);
        match checked {
            Some(c) if out.is_empty() => Ok(c),
            _ => Err(Error::Invalid {
                topic: self.topic.clone(),
                violations: out,
            }),
        }
    }

    /// `true` when the message satisfies every rule.
    pub fn is_valid(&self, message: &Message<'_>) -> bool {
        let mut out = Vec::new();
        self.check_into(message, &mut out).is_some() && out.is_empty()
    }

    /// Validates an event (the payload, or a CloudEvent's `data`) against the payload schema alone:
    /// what a producer checks before it builds headers and key.
    pub fn check_event(&self, event: &Value) -> Result<(), Error> {
        let mut out = Vec::new();
        push_schema_errors(&self.payload, event, &Part::Payload, "", &mut out);
        if out.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                topic: self.topic.clone(),
                violations: out,
            })
        }
    }

    /// The key the key policy derives from an event (the value at the key pointer), if any.
    pub fn key_for(&self, event: &Value) -> Option<String> {
        match lookup(event, self.key_path.as_deref()?)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn check_into(&self, message: &Message<'_>, out: &mut Vec<Violation>) -> Option<Checked> {
        self.check_payload(message, None, out)
    }

    fn check_payload(
        &self,
        message: &Message<'_>,
        parsed: Option<Value>,
        out: &mut Vec<Violation>,
    ) -> Option<Checked> {
        let facts = self
            .headers
            .check(message.headers.iter().map(|(n, v)| (*n, *v)), out);
        let mut schema_id = None;
        let body = if self.within_size(message.payload, out) {
            self.unframe(message.payload.unwrap_or_default(), &mut schema_id, out)
        } else {
            None
        };
        let payload = match (parsed, body) {
            (Some(v), Some(_)) => Some(v),
            (None, Some(json)) => parse_payload(json, out),
            (_, None) => None,
        };

        let (data, cloudevent, prefix) = match self.spec.envelope.mode {
            EnvelopeMode::Plain => (payload, None, ""),
            EnvelopeMode::CloudeventsStructured => {
                let (data, ce) = cloudevents::from_structured(payload, message, out);
                (data, ce, "/data")
            }
            EnvelopeMode::CloudeventsBinary => {
                let ce = cloudevents::from_binary(message, out);
                (payload, ce, "")
            }
        };

        if let Some(data) = &data {
            let validator = if self.dataschemas.is_empty() {
                Some(&self.payload)
            } else {
                let uri = cloudevent.as_ref().and_then(|c| c.dataschema());
                let found = uri.and_then(|u| self.dataschemas.get(u));
                if found.is_none() {
                    out.push(Violation::new(
                        Part::Envelope,
                        "/dataschema",
                        "dataschema",
                        match uri {
                            Some(u) => format!("dataschema `{u}` is not one this topic accepts"),
                            None => "the event has no `dataschema`; this topic dispatches on it"
                                .to_owned(),
                        },
                    ));
                }
                found
            };
            if let Some(v) = validator {
                push_schema_errors(v, data, &Part::Payload, prefix, out);
            }
        }
        self.check_key(message.key, data.as_ref(), out);
        Some(Checked {
            payload: data?,
            identity: facts.identity,
            request_id: facts.request_id,
            cloudevent,
            schema_id,
        })
    }

    /// The JSON document of a payload: the bytes themselves, or for `wire: confluent` what
    /// follows the framing (whose id goes to `schema_id` and is checked against the registered
    /// ones). `None` (with a violation) when the framing is broken.
    fn unframe<'p>(
        &self,
        payload: &'p [u8],
        schema_id: &mut Option<u32>,
        out: &mut Vec<Violation>,
    ) -> Option<&'p [u8]> {
        if self.spec.wire == WireFormat::Json {
            return Some(payload);
        }
        match crate::confluent::unframe(payload) {
            Ok((id, json)) => {
                *schema_id = Some(id);
                if let Some(known) = self.registered_schema_ids()
                    && !known.contains(&id)
                {
                    out.push(Violation::new(
                        Part::Payload,
                        "",
                        "schema-id",
                        format!(
                            "schema id {id} is not registered for this topic's subject \
                             (registered: {})",
                            known
                                .iter()
                                .map(u32::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                Some(json)
            }
            Err(e) => {
                out.push(Violation::new(Part::Payload, "", e.rule(), e.to_string()));
                None
            }
        }
    }

    /// `false` (with a violation) for a tombstone or a payload above the size limit.
    fn within_size(&self, payload: Option<&[u8]>, out: &mut Vec<Violation>) -> bool {
        let Some(bytes) = payload else {
            out.push(Violation::new(
                Part::Payload,
                "",
                "required",
                "the message has no payload (a tombstone)".to_owned(),
            ));
            return false;
        };
        if bytes.len() > self.max_payload_bytes {
            out.push(Violation::new(
                Part::Payload,
                "",
                "maxSize",
                format!(
                    "payload is {} bytes, above the limit of {} bytes",
                    bytes.len(),
                    self.max_payload_bytes
                ),
            ));
            return false;
        }
        true
    }

    #[inline(never)]
    fn check_key(&self, key: Option<&[u8]>, data: Option<&Value>, out: &mut Vec<Violation>) {
        let policy = &self.spec.key;
        let key = match key {
            Some(k) if !k.is_empty() => k,
            Some(_) if policy.required => {
                out.push(Violation::new(
                    Part::Key,
                    "",
                    "required",
                    "the key is empty".to_owned(),
                ));
                return;
            }
            None if policy.required => {
                out.push(Violation::new(
                    Part::Key,
                    "",
                    "required",
                    "the message has no key".to_owned(),
                ));
                return;
            }
            _ => return,
        };
        if policy.pointer.is_none() && self.key_schema.is_none() {
            return;
        }
        let key = match std::str::from_utf8(key) {
            Ok(k) => k,
            Err(e) => {
                out.push(Violation::new(
                    Part::Key,
                    "",
                    "utf8",
                    format!("the key is not UTF-8 ({e})"),
                ));
                return;
            }
        };
        if let (Some(pointer), Some(data)) = (&policy.pointer, data) {
            let found = self.key_path.as_deref().and_then(|path| lookup(data, path));
            let matches = match found {
                Some(Value::String(s)) => s == key,
                Some(Value::Number(n)) => n.to_string() == key,
                _ => false,
            };
            if !matches {
                out.push(Violation::new(
                    Part::Key,
                    pointer,
                    "key-pointer",
                    format!("the key does not equal the payload value at `{pointer}`"),
                ));
            }
        }
        if let Some(v) = &self.key_schema
            && !self.key_rule.as_ref().is_some_and(|r| r.accepts(key))
        {
            push_schema_errors(v, &Value::String(key.to_owned()), &Part::Key, "", out);
        }
    }
}

fn parse_payload(payload: &[u8], out: &mut Vec<Violation>) -> Option<Value> {
    match parse_json(payload) {
        Ok(v) => Some(v),
        Err(e) => {
            out.push(Violation::new(
                Part::Payload,
                "",
                "json",
                format!("not valid JSON: {e}"),
            ));
            None
        }
    }
}

/// Parses a payload as `serde_json::from_slice` does (same value, same errors), but faster: one
/// UTF-8 check of the whole buffer, then the `&str` parser. `from_slice` checks every string of
/// the document on its own, which on a 500-byte event costs about 16 % of the parse; one pass over
/// the buffer costs 1-2 %. Input that is not UTF-8 goes to `from_slice`, which rejects it with
/// its usual line and column. [`Contract::check`] parses payloads with it.
///
/// ```
/// let v = evkit_schema::parse_json(br#"{"title": "caf\u00e9"}"#).unwrap();
/// assert_eq!(v["title"], "café");
/// assert!(evkit_schema::parse_json(b"{\"title\": \"\xff\"}").is_err());
/// ```
pub fn parse_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// A JSON pointer's segments, unescaped (`~1` is `/`, `~0` is `~`); `None` for a pointer that
/// does not start with `/` (the catalog rejects those). The empty pointer has no segments.
fn pointer_segments(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    Some(
        pointer
            .strip_prefix('/')?
            .split('/')
            .map(|raw| crate::pointer::unescape(raw).into_owned())
            .collect(),
    )
}

/// `Value::pointer` over segments split and unescaped in advance (it runs for every message
/// when the key comes from the payload).
fn lookup<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut node = value;
    for segment in path {
        node = match node {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::parse_json;

    /// JSON text from a generated document, then damaged: bytes replaced by invalid UTF-8, by
    /// multi-byte characters, by quotes and escapes, or cut short.
    fn payloads() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
        ];
        let doc = leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::btree_map(".{0,8}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        });
        let damage = prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop::sample::select(vec![
                    &b"\xff"[..],
                    b"\xc3\x28",
                    b"\xe2\x82",
                    b"\xed\xa0\x80",
                    "é".as_bytes(),
                    "😀".as_bytes(),
                    b"\"",
                    b"\\",
                    b"\\u00e9",
                    b"\\ud800",
                    b"\n",
                    b"",
                ]),
            ),
            0..3,
        );
        (doc, damage, any::<Option<prop::sample::Index>>()).prop_map(|(doc, damage, cut)| {
            let mut bytes = serde_json::to_vec(&doc).unwrap_or_default();
            for (at, with) in damage {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes.splice(i..=i, with.iter().copied());
                }
            }
            if let Some(cut) = cut
                && !bytes.is_empty()
            {
                bytes.truncate(cut.index(bytes.len()));
            }
            bytes
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// The contract's parse accepts exactly what `serde_json::from_slice` accepts, builds the
        /// same value and reports the same error (message, line and column).
        #[test]
        fn parse_json_agrees_with_from_slice(bytes in payloads()) {
            let ours = parse_json(&bytes).map_err(|e| e.to_string());
            let theirs = serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| e.to_string());
            prop_assert_eq!(ours, theirs);
        }
    }
}
