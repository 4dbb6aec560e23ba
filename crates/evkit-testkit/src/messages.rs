//! Whole Kafka messages for a catalog topic: valid ones, and ones that break one named rule.

use std::fmt;

use evkit_schema::{EnvelopeMode, Message, Topic, Violation, encode_identity};
use proptest::strategy::{BoxedStrategy, Strategy};
use serde_json::{Value, json};

use crate::Error;
use crate::generate::values;

/// A generated message, owned.
#[derive(Clone, PartialEq)]
pub struct Generated {
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// For an invalid message: the rule it breaks.
    pub broken: Option<Rule>,
}

impl fmt::Debug for Generated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shown by proptest on failure: no identity values, the payload as text.
        f.debug_struct("Generated")
            .field("key", &self.key.as_deref().map(String::from_utf8_lossy))
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("payload", &String::from_utf8_lossy(&self.payload))
            .field("broken", &self.broken)
            .finish()
    }
}

impl Generated {
    /// Borrows the message for [`evkit_schema::Contract::check`].
    pub fn message(&self) -> Message<'_> {
        Message::from_parts(self.key.as_deref(), &self.headers, &self.payload)
    }
}

/// The one rule an invalid message breaks: the part, where, and the keyword the contract's
/// violation names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// A required payload field is missing (`required` at the object's path).
    MissingRequired {
        /// Instance path of the object.
        at: String,
        /// The field left out.
        field: String,
    },
    /// A payload field has a value of the wrong type (`type` at its path).
    WrongType {
        /// Instance path of the field.
        at: String,
    },
    /// A payload value crosses a bound (`maximum`, `minimum`, `maxLength`, `minLength`).
    BoundCrossed {
        /// Instance path of the field.
        at: String,
        /// The keyword crossed.
        keyword: String,
    },
    /// A payload value outside its `enum`.
    NotInEnum {
        /// Instance path of the field.
        at: String,
    },
    /// An unknown field on a closed object (`additionalProperties`).
    UnknownField {
        /// Instance path of the object.
        at: String,
    },
    /// The `x-rh-identity` header is missing.
    MissingIdentity,
    /// The `x-rh-identity` header is not base64.
    IdentityNotBase64,
    /// The request id travels under the historical misspelling `x-rh-insight-request-id`.
    MisspelledRequestId,
    /// The key is empty where one is required.
    EmptyKey,
    /// The key differs from the payload value at the key pointer.
    KeyMismatch,
}

impl Rule {
    /// The same rule with its payload path under `prefix` (a structured CloudEvent's `/data`).
    #[must_use]
    pub fn under(self, prefix: &str) -> Rule {
        let p = |at: String| format!("{prefix}{at}");
        match self {
            Rule::MissingRequired { at, field } => Rule::MissingRequired { at: p(at), field },
            Rule::WrongType { at } => Rule::WrongType { at: p(at) },
            Rule::BoundCrossed { at, keyword } => Rule::BoundCrossed { at: p(at), keyword },
            Rule::NotInEnum { at } => Rule::NotInEnum { at: p(at) },
            Rule::UnknownField { at } => Rule::UnknownField { at: p(at) },
            other => other,
        }
    }

    /// The keyword the contract's violation carries for this rule.
    pub fn keyword(&self) -> &str {
        match self {
            Rule::MissingRequired { .. }
            | Rule::MissingIdentity
            | Rule::MisspelledRequestId
            | Rule::EmptyKey => "required",
            Rule::WrongType { .. } => "type",
            Rule::BoundCrossed { keyword, .. } => keyword,
            Rule::NotInEnum { .. } => "enum",
            Rule::UnknownField { .. } => "additionalProperties",
            Rule::IdentityNotBase64 => "base64",
            Rule::KeyMismatch => "key-pointer",
        }
    }

    /// `true` when `v` is the violation this rule predicts (payload path and keyword, or the
    /// header or key it concerns).
    pub fn explains(&self, v: &Violation) -> bool {
        use evkit_schema::Part;
        let payload_at = |at: &str| matches!(v.part, Part::Payload) && v.instance_path == at;
        match self {
            Rule::MissingRequired { at, .. }
            | Rule::UnknownField { at }
            | Rule::WrongType { at }
            | Rule::NotInEnum { at }
            | Rule::BoundCrossed { at, .. } => payload_at(at) && v.rule == self.keyword(),
            Rule::MissingIdentity | Rule::IdentityNotBase64 => {
                matches!(&v.part, Part::Header(h) if h == "x-rh-identity")
                    && v.rule == self.keyword()
            }
            Rule::MisspelledRequestId => {
                matches!(&v.part, Part::Header(h) if h == "x-rh-insights-request-id")
            }
            Rule::EmptyKey | Rule::KeyMismatch => {
                matches!(v.part, Part::Key) && v.rule == self.keyword()
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::MissingRequired { at, field } => {
                write!(f, "missing required `{field}` at {at:?}")
            }
            Rule::WrongType { at } => write!(f, "wrong type at {at}"),
            Rule::BoundCrossed { at, keyword } => write!(f, "{keyword} crossed at {at}"),
            Rule::NotInEnum { at } => write!(f, "value outside enum at {at}"),
            Rule::UnknownField { at } => write!(f, "unknown field at {at:?}"),
            Rule::MissingIdentity => f.write_str("missing x-rh-identity"),
            Rule::IdentityNotBase64 => f.write_str("x-rh-identity not base64"),
            Rule::MisspelledRequestId => f.write_str("request id as x-rh-insight-request-id"),
            Rule::EmptyKey => f.write_str("empty key"),
            Rule::KeyMismatch => f.write_str("key differs from the key pointer's value"),
        }
    }
}

/// What the topic's payload (or CloudEvents `data`) schema is, per dataschema for structured
/// topics: `(dataschema URI, schema document)`.
fn payload_schemas(topic: &Topic) -> Vec<(Option<String>, Value)> {
    let env = &topic.spec.envelope;
    if env.dataschemas.is_empty() {
        return vec![(None, topic.schema.clone())];
    }
    env.dataschemas
        .iter()
        .map(|(uri, pointer)| {
            // The definition, with the document's $defs kept in scope for its $refs.
            let mut doc = topic
                .schema
                .pointer(pointer.trim_start_matches('#'))
                .cloned()
                .unwrap_or(Value::Bool(false));
            if let (Some(d), Some(defs)) = (doc.as_object_mut(), topic.schema.get("$defs")) {
                d.insert("$defs".to_owned(), defs.clone());
            }
            (Some(uri.clone()), doc)
        })
        .collect()
}

/// A request id and a CloudEvents id, both from the strategy (so a seed fixes them).
fn ids() -> impl Strategy<Value = (String, String)> {
    (
        "[A-Za-z0-9][A-Za-z0-9._-]{0,40}",
        proptest::arbitrary::any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
    )
}

/// Wraps generated event data into a message for `topic`: key, identity, request id, envelope.
fn assemble(
    topic: &Topic,
    dataschema: Option<&str>,
    data: Value,
    (req, id): (String, String),
) -> Generated {
    let policy = &topic.spec.key;
    let at_pointer = policy
        .pointer
        .as_deref()
        .and_then(|p| data.pointer(p))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    let org = data
        .get("org_id")
        .and_then(Value::as_str)
        .filter(|o| !o.is_empty() && o.len() <= 64)
        .filter(|o| {
            o.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .unwrap_or("12345")
        .to_owned();
    let key = at_pointer.or_else(|| policy.required.then(|| org.clone()));
    let mut headers = vec![
        (
            "x-rh-identity".to_owned(),
            encode_identity(&org, "User").into_bytes(),
        ),
        ("x-rh-insights-request-id".to_owned(), req.into_bytes()),
    ];
    let env = &topic.spec.envelope;
    let source = env
        .source
        .clone()
        .unwrap_or_else(|| "urn:evkit:generated".to_owned());
    let kind = env
        .event_type
        .clone()
        .unwrap_or_else(|| topic.name().to_owned());
    let payload = match env.mode {
        EnvelopeMode::Plain => data,
        EnvelopeMode::CloudeventsBinary => {
            headers.push(("ce_specversion".to_owned(), b"1.0".to_vec()));
            headers.push(("ce_id".to_owned(), id.into_bytes()));
            headers.push(("ce_source".to_owned(), source.into_bytes()));
            headers.push(("ce_type".to_owned(), kind.into_bytes()));
            headers.push(("content-type".to_owned(), b"application/json".to_vec()));
            data
        }
        EnvelopeMode::CloudeventsStructured => {
            headers.push((
                "content-type".to_owned(),
                b"application/cloudevents+json".to_vec(),
            ));
            let mut ce = json!({
                "specversion": "1.0", "id": id, "source": source, "type": kind,
                "datacontenttype": "application/json", "data": data,
            });
            if let Some(ds) = dataschema {
                ce["dataschema"] = json!(ds);
            }
            ce
        }
    };
    Generated {
        key: key.map(String::into_bytes),
        headers,
        payload: serde_json::to_vec(&payload).unwrap_or_default(),
        broken: None,
    }
}

/// An example message of a contract, built the way a producer sends it (key from the key policy
/// unless given, identity for `org_id` or the payload's `org_id`, a request id from the name).
pub fn example_message(
    topic: &Topic,
    data: Value,
    dataschema: Option<&str>,
    key: Option<&str>,
    org_id: Option<&str>,
    name: &str,
) -> Generated {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(48)
        .collect();
    let ids = (format!("example-{slug}"), format!("example-{slug}"));
    let mut m = assemble(topic, dataschema, data, ids);
    if let Some(k) = key {
        m.key = Some(k.as_bytes().to_vec());
    }
    if let Some(org) = org_id {
        for (n, v) in &mut m.headers {
            if n == "x-rh-identity" {
                *v = encode_identity(org, "User").into_bytes();
            }
        }
    }
    m
}

/// Messages `topic`'s contract accepts: payload from the schema, key from the key policy,
/// identity and request id headers, CloudEvents attributes per the envelope.
pub fn valid_message(topic: &Topic) -> Result<BoxedStrategy<Generated>, Error> {
    let mut options = Vec::new();
    for (uri, schema) in payload_schemas(topic) {
        let data = values(&schema)?;
        let topic = topic.clone();
        options.push(
            (data, ids())
                .prop_map(move |(d, req)| assemble(&topic, uri.as_deref(), d, req))
                .boxed(),
        );
    }
    Ok(proptest::strategy::Union::new(options).boxed())
}

/// `schema` with a top-level `allOf` merged into one object (the rules and mutations below walk
/// `properties`), definitions kept.
fn flatten(schema: &Value) -> Value {
    let Some(all) = schema.get("allOf").and_then(Value::as_array) else {
        return schema.clone();
    };
    let mut merged = schema.clone();
    if let Some(m) = merged.as_object_mut() {
        m.remove("allOf");
    }
    for part in all {
        let part = match part.get("$ref").and_then(Value::as_str) {
            Some(r) => schema
                .pointer(r.trim_start_matches('#'))
                .cloned()
                .unwrap_or_default(),
            None => part.clone(),
        };
        crate::generate::merge(&mut merged, &part);
    }
    merged
}

/// The payload rules a schema offers to break.
fn payload_rules(schema: &Value) -> Vec<Rule> {
    let mut out = Vec::new();
    collect_rules(schema, schema, "", &mut out, 0);
    out
}

fn collect_rules(root: &Value, schema: &Value, at: &str, out: &mut Vec<Rule>, depth: usize) {
    if depth > 2 {
        return;
    }
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => root
            .pointer(r.trim_start_matches('#'))
            .unwrap_or(&Value::Null),
        None => schema,
    };
    let Some(obj) = schema.as_object() else {
        return;
    };
    let props = obj.get("properties").and_then(Value::as_object);
    for r in obj
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        out.push(Rule::MissingRequired {
            at: at.to_owned(),
            field: r.to_owned(),
        });
        let Some(p) = props.and_then(|p| p.get(r)) else {
            continue;
        };
        let p = match p.get("$ref").and_then(Value::as_str) {
            Some(rf) => root.pointer(rf.trim_start_matches('#')).unwrap_or(p),
            None => p,
        };
        let here = format!("{at}/{r}");
        if p.get("type").and_then(Value::as_str).is_some() && p.get("oneOf").is_none() {
            out.push(Rule::WrongType { at: here.clone() });
        }
        for kw in ["maximum", "minimum", "maxLength", "minLength"] {
            if p.get(kw).is_some() && !(kw == "minLength" && p[kw] == json!(0)) {
                out.push(Rule::BoundCrossed {
                    at: here.clone(),
                    keyword: kw.to_owned(),
                });
            }
        }
        if p.get("enum").is_some() {
            out.push(Rule::NotInEnum { at: here.clone() });
        }
        if p.get("type") == Some(&json!("object")) {
            collect_rules(root, p, &here, out, depth + 1);
        }
    }
    if obj.get("additionalProperties") == Some(&Value::Bool(false)) {
        out.push(Rule::UnknownField { at: at.to_owned() });
    }
}

/// Applies a payload rule to valid data; `None` when this data cannot carry it.
fn break_data(schema: &Value, mut data: Value, rule: &Rule) -> Option<Value> {
    let field_schema = |at: &str| -> Option<Value> {
        let mut s = schema.clone();
        for part in at.split('/').skip(1) {
            let next = s.get("properties")?.get(part)?.clone();
            s = match next.get("$ref").and_then(Value::as_str) {
                Some(r) => schema.pointer(r.trim_start_matches('#'))?.clone(),
                None => next,
            };
        }
        Some(s)
    };
    match rule {
        Rule::MissingRequired { at, field } => {
            data.pointer_mut(at)?.as_object_mut()?.remove(field)?;
        }
        Rule::UnknownField { at } => {
            data.pointer_mut(at)?
                .as_object_mut()?
                .insert("evkit_unknown_field".to_owned(), json!(true));
        }
        Rule::WrongType { at } => {
            let s = field_schema(at)?;
            let wrong = match s.get("type")?.as_str()? {
                "string" => json!(12345),
                "integer" => json!("not a number"),
                "number" | "boolean" | "array" | "null" => json!({"not": "this"}),
                _ => json!("not an object"),
            };
            *data.pointer_mut(at)? = wrong;
        }
        Rule::NotInEnum { at } => {
            *data.pointer_mut(at)? = json!("evkit-not-in-enum-\u{1f4a5}");
        }
        Rule::BoundCrossed { at, keyword } => {
            let s = field_schema(at)?;
            let bound = s.get(keyword)?.as_f64()?;
            let value = data.pointer_mut(at)?;
            *value = match keyword.as_str() {
                "maximum" => json!(bound.floor() + 1.0),
                "minimum" => json!(bound.ceil() - 1.0),
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                "maxLength" => json!("a".repeat(bound as usize + 1)),
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                "minLength" => json!("a".repeat((bound as usize).saturating_sub(1))),
                _ => return None,
            };
            if s.get("type") == Some(&json!("integer")) && value.is_f64() {
                #[allow(clippy::cast_possible_truncation)]
                let i = value.as_f64()? as i64;
                *value = json!(i);
            }
        }
        _ => return None,
    }
    Some(data)
}

/// Header and key rules that apply to `topic`.
fn message_rules(topic: &Topic) -> Vec<Rule> {
    let mut out = Vec::new();
    let required: Vec<&str> = topic
        .contract()
        .required_headers()
        .iter()
        .map(String::as_str)
        .collect();
    if required.contains(&"x-rh-identity") {
        out.push(Rule::MissingIdentity);
    }
    out.push(Rule::IdentityNotBase64);
    if required.contains(&"x-rh-insights-request-id") {
        out.push(Rule::MisspelledRequestId);
    }
    if topic.spec.key.required {
        out.push(Rule::EmptyKey);
    }
    if topic.spec.key.pointer.is_some() {
        out.push(Rule::KeyMismatch);
    }
    out
}

fn break_message(mut m: Generated, rule: &Rule) -> Generated {
    match rule {
        Rule::MissingIdentity => m.headers.retain(|(n, _)| n != "x-rh-identity"),
        Rule::IdentityNotBase64 => {
            for (n, v) in &mut m.headers {
                if n == "x-rh-identity" {
                    *v = b"not base64 at all!".to_vec();
                }
            }
        }
        Rule::MisspelledRequestId => {
            for (n, _) in &mut m.headers {
                if n == "x-rh-insights-request-id" {
                    "x-rh-insight-request-id".clone_into(n);
                }
            }
        }
        Rule::EmptyKey => m.key = Some(Vec::new()),
        Rule::KeyMismatch => {
            let mut k = m.key.take().unwrap_or_default();
            k.extend_from_slice(b"-other");
            m.key = Some(k);
        }
        _ => {}
    }
    m.broken = Some(rule.clone());
    m
}

/// Messages that break exactly one named rule of `topic`'s contract (see [`Generated::broken`]).
/// Payload rules come from the payload schema (for structured CloudEvents topics, the first
/// dataschema); header and key rules from the catalog entry.
pub fn invalid_message(topic: &Topic) -> Result<BoxedStrategy<Generated>, Error> {
    let (uri, schema) = payload_schemas(topic)
        .into_iter()
        .map(|(u, s)| (u, flatten(&s)))
        .next()
        .ok_or_else(|| Error::Unsupported {
            keyword: "payload schema".to_owned(),
            at: topic.name().to_owned(),
        })?;
    let data = values(&schema)?;
    let mut rules = payload_rules(&schema);
    let payload_count = rules.len();
    rules.extend(message_rules(topic));
    if rules.is_empty() {
        return Err(Error::Unsupported {
            keyword: "no rule to break".to_owned(),
            at: topic.name().to_owned(),
        });
    }
    let topic = topic.clone();
    Ok((data, ids(), 0..rules.len())
        .prop_filter_map("this value cannot carry the rule", move |(d, req, i)| {
            let rule = &rules[i];
            if i < payload_count {
                let broken = break_data(&schema, d, rule)?;
                let mut m = assemble(&topic, uri.as_deref(), broken, req);
                let prefix = if uri.is_some() { "/data" } else { "" };
                m.broken = Some(rule.clone().under(prefix));
                Some(m)
            } else {
                Some(break_message(
                    assemble(&topic, uri.as_deref(), d, req),
                    rule,
                ))
            }
        })
        .boxed())
}

/// Payloads that break exactly one named rule of `schema` (no key or headers): for any JSON
/// Schema, not only catalog topics.
pub fn invalid_payload(schema: &Value) -> Result<BoxedStrategy<(Rule, Value)>, Error> {
    let schema = &flatten(schema);
    let data = values(schema)?;
    let rules = payload_rules(schema);
    if rules.is_empty() {
        return Err(Error::Unsupported {
            keyword:
                "no payload rule to break (no required fields, bounds, enums or closed objects)"
                    .to_owned(),
            at: "/".to_owned(),
        });
    }
    let schema = schema.clone();
    Ok((data, 0..rules.len())
        .prop_filter_map("this value cannot carry the rule", move |(d, i)| {
            let rule = rules[i].clone();
            break_data(&schema, d, &rule).map(|v| (rule, v))
        })
        .boxed())
}
