//! Breaking a message outside its payload, judged by the topic's contract: every keyword of each
//! header's schema (`headers.json`), every keyword of the decoded identity's schema
//! (`headers.json#/$defs/identity`), and the CloudEvents attributes of enveloped topics.

use std::collections::HashMap;

use base64::Engine as _;
use evkit_schema::{EnvelopeMode, IDENTITY_HEADER, Part, Topic};
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use crate::generate::{Breaker, Schema, Site};
use crate::messages::{Generated, Rule};

/// One way to break a message outside its payload.
#[derive(Clone)]
pub(crate) enum Outside {
    /// A keyword of header `name`'s schema.
    Header {
        /// The header.
        name: String,
        /// Index of its schema in [`Outsides::schemas`].
        schema: usize,
        /// The keyword.
        site: Site,
    },
    /// A keyword of the decoded identity's schema.
    Identity {
        /// Index of the identity schema in [`Outsides::schemas`].
        schema: usize,
        /// The keyword.
        site: Site,
    },
    /// A CloudEvents attribute set to a value, or removed (`None`).
    Attribute {
        /// The attribute (`specversion`, `time`, ..., `datacontenttype`).
        name: &'static str,
        /// Its new value.
        value: Option<&'static str>,
    },
}

/// The outside-the-payload rules of one topic, with the breakers they share.
pub(crate) struct Outsides {
    pub(crate) items: Vec<Outside>,
    schemas: Vec<Schema>,
    breakers: HashMap<usize, Breaker>,
}

/// Attribute mutations: each required attribute removed and emptied or mistyped, the optional
/// ones given values their rules refuse.
const ATTRIBUTES: &[(&str, Option<&str>)] = &[
    ("specversion", None),
    ("specversion", Some("0.3")),
    ("id", None),
    ("id", Some("")),
    ("source", None),
    ("source", Some("")),
    ("type", None),
    ("type", Some("")),
    ("time", Some("2026-02-30T10:00:00Z")),
    ("time", Some("yesterday")),
    ("dataschema", Some("not a uri")),
    ("datacontenttype", Some("text/plain")),
];

impl Outsides {
    pub(crate) fn new(topic: &Topic) -> Self {
        let doc = topic.headers_schema();
        let defs = doc.get("$defs").cloned().unwrap_or(Value::Null);
        let with_defs = |s: &Value| {
            let mut s = s.clone();
            if let Some(o) = s.as_object_mut()
                && !defs.is_null()
            {
                o.insert("$defs".to_owned(), defs.clone());
            }
            s
        };
        let mut schemas = Vec::new();
        let mut items = Vec::new();
        let generated = [IDENTITY_HEADER, evkit_schema::REQUEST_ID_HEADER];
        for (name, s) in doc
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if !generated.contains(&name.as_str()) {
                continue;
            }
            let Ok(schema) = Schema::new(&with_defs(s)) else {
                continue;
            };
            let at = schemas.len();
            for site in schema.sites() {
                if site.keyword != "type" && !schema.is_redundant(&site) {
                    items.push(Outside::Header {
                        name: name.clone(),
                        schema: at,
                        site,
                    });
                }
            }
            schemas.push(schema);
        }
        if let Some(identity) = defs.get("identity")
            && let Ok(schema) = Schema::new(&with_defs(identity))
        {
            let at = schemas.len();
            for site in schema.sites() {
                if !schema.is_redundant(&site) {
                    items.push(Outside::Identity { schema: at, site });
                }
            }
            schemas.push(schema);
        }
        if topic.spec.envelope.mode != EnvelopeMode::Plain {
            for (name, value) in ATTRIBUTES {
                items.push(Outside::Attribute {
                    name,
                    value: *value,
                });
            }
        }
        Outsides {
            items,
            schemas,
            breakers: HashMap::new(),
        }
    }

    /// Breaks `m` (a valid message of `topic`) the way item `i` says; the rule is the
    /// contract's own violation. `None` when this message cannot carry it.
    pub(crate) fn apply(
        &mut self,
        topic: &Topic,
        i: usize,
        mut m: Generated,
        runner: &mut TestRunner,
    ) -> Option<Generated> {
        let item = self.items.get(i)?.clone();
        let (part, how) = match &item {
            Outside::Header { name, schema, site } => {
                let current = header(&m, name)?;
                let b = self
                    .breaker(*schema)
                    .break_from(site, Value::String(current), runner)?;
                let text = b.value.as_str()?.to_owned();
                set_header(&mut m, name, Some(text.into_bytes()));
                (
                    Part::Header(name.clone()),
                    format!("{} broken in header {name}", site.keyword),
                )
            }
            Outside::Identity { schema, site } => {
                let raw = header(&m, IDENTITY_HEADER)?;
                let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
                let doc: Value = serde_json::from_slice(&bytes).ok()?;
                let b = self.breaker(*schema).break_from(site, doc, runner)?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(b.value.to_string());
                set_header(&mut m, IDENTITY_HEADER, Some(encoded.into_bytes()));
                (
                    Part::Header(IDENTITY_HEADER.to_owned()),
                    format!("identity {} broken at {}", site.keyword, b.instance_path),
                )
            }
            Outside::Attribute { name, value } => {
                set_attribute(topic, &mut m, name, *value)?;
                (
                    Part::Envelope,
                    match value {
                        Some(v) => format!("cloudevent {name} set to {v:?}"),
                        None => format!("cloudevent {name} removed"),
                    },
                )
            }
        };
        let err = topic.contract().check(&m.message()).err()?;
        let v = err
            .violations()
            .iter()
            .find(|v| v.part == part)
            .or_else(|| err.violations().first())?;
        m.broken = Some(Rule {
            part: v.part.clone(),
            instance_path: v.instance_path.clone(),
            schema_path: v.schema_path.clone(),
            keyword: v.rule.clone(),
            how,
        });
        Some(m)
    }

    fn breaker(&mut self, schema: usize) -> &mut Breaker {
        let schemas = &self.schemas;
        self.breakers
            .entry(schema)
            .or_insert_with(|| schemas[schema].breaker())
    }
}

fn header(m: &Generated, name: &str) -> Option<String> {
    m.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| String::from_utf8(v.clone()).ok())
}

fn set_header(m: &mut Generated, name: &str, value: Option<Vec<u8>>) {
    m.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    if let Some(v) = value {
        m.headers.push((name.to_owned(), v));
    }
}

/// Sets (or removes) a CloudEvents attribute the way the topic's envelope carries it.
fn set_attribute(topic: &Topic, m: &mut Generated, name: &str, value: Option<&str>) -> Option<()> {
    match topic.spec.envelope.mode {
        EnvelopeMode::Plain => None,
        EnvelopeMode::CloudeventsBinary => {
            let header = if name == "datacontenttype" {
                "content-type".to_owned()
            } else {
                format!("ce_{name}")
            };
            set_header(m, &header, value.map(|v| v.as_bytes().to_vec()));
            Some(())
        }
        EnvelopeMode::CloudeventsStructured => {
            // On a `wire: confluent` topic the envelope follows the frame, which stays.
            let framed = evkit_schema::confluent::unframe(&m.payload)
                .ok()
                .filter(|_| topic.spec.wire == evkit_schema::WireFormat::Confluent);
            let (frame_id, json) = match framed {
                Some((id, json)) => (Some(id), json),
                None => (None, m.payload.as_slice()),
            };
            let mut event: Value = serde_json::from_slice(json).ok()?;
            let o = event.as_object_mut()?;
            match value {
                Some(v) => {
                    o.insert(name.to_owned(), json!(v));
                }
                None => {
                    o.remove(name);
                }
            }
            let json = serde_json::to_vec(&event).ok()?;
            m.payload = match frame_id {
                Some(id) => evkit_schema::confluent::frame(id, &json),
                None => json,
            };
            Some(())
        }
    }
}
