//! CloudEvents 1.0 over Kafka, following the CloudEvents Kafka protocol binding.
//!
//! - Structured mode: the payload is the whole event as JSON, with `content-type:
//!   application/cloudevents+json`; the topic schema applies to the event's `data`.
//! - Binary mode: attributes travel as `ce_<name>` headers, `datacontenttype` as `content-type`;
//!   the payload is the event's `data`.
//!
//! Header names live here and nowhere else.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contract::{Message, Part, Violation, push_schema_errors};

/// Prefix of binary-mode attribute headers.
pub const HEADER_PREFIX: &str = "ce_";
/// The Kafka header carrying the content type.
pub const CONTENT_TYPE_HEADER: &str = "content-type";
/// Content type of a structured-mode event.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";
/// Content type of JSON data.
pub const JSON_CONTENT_TYPE: &str = "application/json";
/// The only spec version evkit speaks.
pub const SPEC_VERSION: &str = "1.0";

/// The context attributes of a CloudEvent (everything but `data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: String,
    /// Unique per source.
    pub id: String,
    /// URI-reference of the producer.
    pub source: String,
    /// Event type, e.g. `com.redhat.console.evkit.domain-registered`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Media type of `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    /// URI of the schema `data` follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
    /// Subject of the event within the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// RFC 3339 timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

impl CloudEvent {
    /// A JSON event with the required attributes.
    pub fn new(
        id: impl Into<String>,
        source: impl Into<String>,
        event_type: impl Into<String>,
    ) -> Self {
        CloudEvent {
            specversion: SPEC_VERSION.to_owned(),
            id: id.into(),
            source: source.into(),
            event_type: event_type.into(),
            datacontenttype: Some(JSON_CONTENT_TYPE.to_owned()),
            dataschema: None,
            subject: None,
            time: None,
        }
    }

    /// Binary-mode headers: `ce_*` for each attribute and `content-type` for `datacontenttype`.
    pub fn binary_headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![
            (
                format!("{HEADER_PREFIX}specversion"),
                self.specversion.clone(),
            ),
            (format!("{HEADER_PREFIX}id"), self.id.clone()),
            (format!("{HEADER_PREFIX}source"), self.source.clone()),
            (format!("{HEADER_PREFIX}type"), self.event_type.clone()),
        ];
        for (name, value) in [
            ("dataschema", &self.dataschema),
            ("subject", &self.subject),
            ("time", &self.time),
        ] {
            if let Some(v) = value {
                headers.push((format!("{HEADER_PREFIX}{name}"), v.clone()));
            }
        }
        if let Some(ct) = &self.datacontenttype {
            headers.push((CONTENT_TYPE_HEADER.to_owned(), ct.clone()));
        }
        headers
    }

    /// The structured-mode payload: the attributes plus `data`.
    pub fn structured(&self, data: Value) -> Value {
        let mut event = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        event.insert("data".to_owned(), data);
        Value::Object(event)
    }
}

/// The JSON Schema of CloudEvents 1.0 context attributes (data is not constrained here).
pub fn attributes_schema() -> Value {
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "CloudEvents 1.0 attributes",
        "type": "object",
        "required": ["specversion", "id", "source", "type"],
        "properties": {
            "specversion": { "const": SPEC_VERSION },
            "id": { "type": "string", "minLength": 1 },
            "source": { "type": "string", "minLength": 1, "format": "uri-reference" },
            "type": { "type": "string", "minLength": 1 },
            "datacontenttype": { "type": "string", "pattern": "^application/([A-Za-z0-9.+-]+\\+)?json( *;.*)?$" },
            "dataschema": { "type": "string", "format": "uri" },
            "subject": { "type": "string", "minLength": 1 },
            "time": { "type": "string", "format": "date-time" }
        },
        "propertyNames": { "pattern": "^[a-z0-9_]{1,20}$" }
    })
}

pub(crate) fn attributes_validator() -> Result<jsonschema::Validator, String> {
    crate::compile(&attributes_schema())
}

fn attributes(
    doc: &Value,
    validator: &jsonschema::Validator,
    out: &mut Vec<Violation>,
) -> Option<CloudEvent> {
    let before = out.len();
    push_schema_errors(validator, doc, &Part::Envelope, "", out);
    if out.len() > before {
        return None;
    }
    CloudEvent::deserialize(doc).ok()
}

/// Splits a structured-mode event into its data and attributes.
pub(crate) fn from_structured(
    payload: Option<Value>,
    message: &Message<'_>,
    validator: &jsonschema::Validator,
    out: &mut Vec<Violation>,
) -> (Option<Value>, Option<CloudEvent>) {
    if let Some(ct) = message.header_value(CONTENT_TYPE_HEADER) {
        let ok = std::str::from_utf8(ct).is_ok_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/cloudevents+json")
        });
        if !ok {
            out.push(Violation::new(
                Part::Envelope,
                "",
                "content-type",
                "a structured-mode topic needs `content-type: application/cloudevents+json`"
                    .to_owned(),
            ));
        }
    }
    let Some(payload) = payload else {
        return (None, None);
    };
    let Value::Object(mut event) = payload else {
        out.push(Violation::new(
            Part::Envelope,
            "",
            "type",
            "a structured-mode CloudEvent must be a JSON object".to_owned(),
        ));
        return (None, None);
    };
    let data = event.remove("data");
    if event.contains_key("data_base64") {
        out.push(Violation::new(
            Part::Envelope,
            "/data_base64",
            "data_base64",
            "binary `data_base64` is not accepted: this topic carries JSON `data`".to_owned(),
        ));
    }
    let attrs = attributes(&Value::Object(event), validator, out);
    if data.is_none() {
        out.push(Violation::new(
            Part::Envelope,
            "/data",
            "required",
            "the CloudEvent has no `data`".to_owned(),
        ));
    }
    (data, attrs)
}

/// Reads binary-mode attributes from `ce_*` headers and `content-type`.
pub(crate) fn from_binary(
    message: &Message<'_>,
    validator: &jsonschema::Validator,
    out: &mut Vec<Violation>,
) -> Option<CloudEvent> {
    let mut doc = Map::new();
    for (name, value) in &message.headers {
        let lower = name.to_ascii_lowercase();
        let attr = if let Some(a) = lower.strip_prefix(HEADER_PREFIX) {
            a.to_owned()
        } else if lower == CONTENT_TYPE_HEADER {
            "datacontenttype".to_owned()
        } else {
            continue;
        };
        let part = Part::Header(lower.clone());
        if doc.contains_key(&attr) {
            out.push(Violation::new(
                part,
                "",
                "unique",
                format!("header `{lower}` is present more than once"),
            ));
            continue;
        }
        match value.map(std::str::from_utf8) {
            Some(Ok(v)) => {
                doc.insert(attr, Value::String(v.to_owned()));
            }
            Some(Err(_)) => out.push(Violation::new(
                part,
                "",
                "utf8",
                format!("header `{lower}` is not UTF-8"),
            )),
            None => out.push(Violation::new(
                part,
                "",
                "type",
                format!("header `{lower}` has no value"),
            )),
        }
    }
    attributes(&Value::Object(doc), validator, out)
}
