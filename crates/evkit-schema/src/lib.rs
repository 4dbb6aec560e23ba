//! The schema-first core of evkit: everything that comes from one folder of schemas, without Kafka.
//!
//! - [`Catalog`]: `schemas/topics.yaml`, one payload schema per topic and the shared header schema,
//!   loaded with every problem reported at once.
//! - [`Contract`]: a topic's compiled rules for key, headers and payload (validators built once).
//! - [`Identity`]: the decoded `x-rh-identity` header.
//! - [`cloudevents`]: the CloudEvents Kafka protocol binding (structured and binary mode).
//! - [`confluent`]: the Confluent wire format (magic byte and schema id before the JSON).
//! - [`lint`]: mistakes that validators silently ignore.
//! - [`pattern`]: the lengths an anchored `pattern` allows.
//!
//! ```
//! use evkit_schema::{Catalog, Message};
//!
//! let catalog = Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))?;
//! let contract = catalog.contract("platform.evkit.todo-created")?;
//! let payload = br#"{"id": 1, "org_id": "12345", "title": "Buy milk",
//!                    "created_at": "2026-11-01T09:30:00Z"}"#;
//! let identity = evkit_schema::encode_identity("12345", "User");
//! let message = Message::new(payload)
//!     .key(b"12345")
//!     .header("x-rh-identity", identity.as_bytes())
//!     .header("x-rh-insights-request-id", b"req-1");
//! let checked = contract.check(&message)?;
//! assert_eq!(checked.identity.as_ref().map(|i| i.org_id()), Some("12345"));
//!
//! // A broken message: every problem is listed, with the JSON path that failed.
//! let bad = Message::new(br#"{"id": 1.5, "org_id": "12345", "created_at": "x"}"#).key(b"12345");
//! let err = contract.check(&bad).unwrap_err();
//! assert!(err.violations().iter().any(|v| v.instance_path == "/id"));
//! # Ok::<(), evkit_schema::Error>(())
//! ```

mod catalog;
pub mod cloudevents;
pub mod confluent;
mod contract;
mod decode;
mod error;
mod headers;
pub mod lint;
pub mod pattern;
pub mod pointer;
pub mod walk;
pub mod wire;
pub use decode::decode;
#[cfg(feature = "buildtime")]
pub mod sequence_pattern;
mod shape;
mod string_rule;
mod validator;

pub use catalog::{
    Catalog, DEFAULT_MAX_PAYLOAD_BYTES, EnvelopeMode, EnvelopeSpec, KeyPolicy, Owner, Topic,
    TopicSpec, WireFormat,
};
pub use contract::{Checked, Contract, Headers, Message, Part, Violation, parse_json};
pub use error::{Error, Problem};
pub use headers::{IDENTITY_HEADER, Identity, REQUEST_ID_HEADER, encode_identity};
pub use validator::{CompiledSchema, Precompiled};

/// A schema that validates what `pointer` (`#/$defs/X`, `#/properties/y`) names inside `schema`.
/// It keeps the document's `$schema`, `$id` and definitions, and the root member the pointer
/// goes through, so references inside the target still resolve.
pub(crate) fn ref_schema(schema: &serde_json::Value, pointer: &str) -> serde_json::Value {
    let fragment = pointer.strip_prefix('#').unwrap_or(pointer);
    let through = pointer::unescape(
        fragment
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default(),
    )
    .into_owned();
    let mut wrapper = serde_json::Map::new();
    for k in ["$schema", "$id", "$defs", "definitions", through.as_str()] {
        if let Some(v) = schema.get(k) {
            wrapper.insert(k.to_owned(), v.clone());
        }
    }
    wrapper.insert(
        "$ref".to_owned(),
        serde_json::Value::String(format!("#{fragment}")),
    );
    serde_json::Value::Object(wrapper)
}
