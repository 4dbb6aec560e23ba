//! AsyncAPI 3.0: the catalog (and the service contracts) as one AsyncAPI document, and a
//! catalog built back from one.
//!
//! [`export`] writes, per topic:
//! - a channel whose `address` is the topic, with a Kafka channel binding (topic, partitions);
//! - a message: payload and headers as JSON Schema 2020-12 (multi-format schema objects), the
//!   content type (`application/cloudevents+json` for structured CloudEvents, whose payload is
//!   the envelope with the event's schema as `data`; `ce_*` headers for binary mode), and a
//!   Kafka message binding with the key schema;
//! - a `send` operation for an owned topic, and a `receive` operation per consuming service of
//!   `contracts/`, with that service's group in the Kafka operation binding.
//!
//! What AsyncAPI has no field for (the key pointer, `closed`, dead-letter topic, wire format,
//! CloudEvents type and source, dataschemas) travels in an `x-evkit` extension on the channel,
//! so that [`import`] of an export gives back an equal catalog. A document without `x-evkit`
//! imports too: a topic is owned when some operation sends to it.

use std::path::Path;

use serde_json::{Map, Value, json};

use evkit_schema::{Catalog, EnvelopeMode, Owner, TopicSpec};

use crate::Error;
use crate::contracts::Contracts;

/// The schema format of every schema evkit writes (the catalog's JSON Schema dialect).
pub const SCHEMA_FORMAT: &str = "application/schema+json;version=2020-12";
const KAFKA_BINDING: &str = "0.5.0";
const HEADERS_SCHEMA: &str = "evkit-headers";

fn problem(message: impl Into<String>) -> Error {
    Error::AsyncApi(message.into())
}

/// A multi-format schema object for `schema`, which sits at JSON pointer `at` of the
/// document (up to the object): the schema's own references (`#/$defs/x`) are rewritten to
/// point into the document (`#<at>/schema/$defs/x`), as AsyncAPI tools resolve them against
/// the document, not the schema's `$id`.
fn multi(schema: &Value, at: &str) -> Value {
    json!({"schemaFormat": SCHEMA_FORMAT, "schema": rebased(schema, &format!("#{at}/schema"))})
}

/// `schema` with its own references pointing below `base` in the document.
fn rebased(schema: &Value, base: &str) -> Value {
    let mut schema = schema.clone();
    rebase_refs(&mut schema, "#", base);
    schema
}

/// Rewrites every `$ref` that starts with `from` (a whole pointer prefix) to start with `to`.
fn rebase_refs(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "$ref"
                    && let Value::String(r) = child
                    && let Some(rest) = r.strip_prefix(from)
                    && (rest.is_empty() || rest.starts_with('/'))
                {
                    *r = format!("{to}{rest}");
                } else {
                    rebase_refs(child, from, to);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                rebase_refs(item, from, to);
            }
        }
        _ => {}
    }
}

/// The schema of the multi-format schema object at pointer `at` of `doc`, its references
/// rewritten back to be the schema's own (the inverse of [`multi`]); `inner` is a pointer
/// inside the schema (`/properties/data` for a structured CloudEvent's event).
fn unmulti(doc: &Value, at: &str, inner: &str) -> Option<Value> {
    let object = doc.pointer(at)?;
    let (base, schema) = match object.get("schema") {
        Some(s) => (format!("#{at}/schema{inner}"), s),
        None => (format!("#{at}{inner}"), object),
    };
    let mut schema = schema.pointer(inner)?.clone();
    rebase_refs(&mut schema, &base, "#");
    Some(schema)
}

/// The catalog as an AsyncAPI 3.0 document titled `title`, version `version`; operations for
/// consuming services come from `contracts`.
pub fn export(
    catalog: &Catalog,
    contracts: Option<&Contracts>,
    title: &str,
    version: &str,
) -> Result<Value, Error> {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    let headers_file = catalog
        .headers_path()
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    for topic in catalog.topics() {
        let name = topic.name();
        messages.insert(name.to_owned(), message(topic)?);
        channels.insert(name.to_owned(), channel(topic)?);
        topic_operations(topic, contracts, &mut operations);
    }
    // The order of topics.yaml (JSON objects here are sorted by key).
    let order: Vec<&str> = catalog
        .topics()
        .iter()
        .map(evkit_schema::Topic::name)
        .collect();
    let mut extension = json!({"headers": headers_file, "topics": order});
    let max = catalog
        .topics()
        .first()
        .map(|t| t.contract().max_payload_bytes());
    if let Some(m) = max.filter(|m| *m != evkit_schema::DEFAULT_MAX_PAYLOAD_BYTES) {
        extension["max_payload_bytes"] = json!(m);
    }
    Ok(json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Event API generated by `evkit asyncapi export` from the catalog's topics.yaml and schemas.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {HEADERS_SCHEMA: multi(catalog.headers_schema(), &format!("/components/schemas/{HEADERS_SCHEMA}"))},
        },
        "x-evkit": extension,
    }))
}

/// The channel of `topic`: its address, message, Kafka binding, and `x-evkit` for what
/// AsyncAPI has no field for.
fn channel(topic: &evkit_schema::Topic) -> Result<Value, Error> {
    let name = topic.name();
    let spec = &topic.spec;
    let mut evkit = serde_json::to_value(spec).map_err(|e| problem(e.to_string()))?;
    let evkit_map = evkit
        .as_object_mut()
        .ok_or_else(|| problem("a topic entry is not an object"))?;
    // What AsyncAPI says natively is not repeated.
    for native in ["name", "partitions", "owner"] {
        evkit_map.remove(native);
    }
    if let Some(key) = evkit_map.get_mut("key").and_then(Value::as_object_mut) {
        key.remove("schema");
    }
    Ok(json!({
        "address": name,
        "messages": {name: {"$ref": format!("#/components/messages/{name}")}},
        "bindings": {"kafka": {
            "topic": name,
            "partitions": spec.partitions,
            "bindingVersion": KAFKA_BINDING,
        }},
        "x-evkit": evkit,
    }))
}

/// The message of `topic`: payload and headers schemas, content type, Kafka binding.
fn message(topic: &evkit_schema::Topic) -> Result<Value, Error> {
    let name = topic.name();
    let spec = &topic.spec;
    let mut headers = topic.headers_schema().clone();
    let required: Vec<String> = topic.contract().required_headers().to_vec();
    headers["required"] = json!(required);
    let at = format!("/components/messages/{}", escape(name));
    let payload_at = format!("{at}/payload");
    let (content_type, payload) = match spec.envelope.mode {
        EnvelopeMode::Plain => ("application/json", multi(&topic.schema, &payload_at)),
        EnvelopeMode::CloudeventsBinary => {
            let props = headers["properties"]
                .as_object_mut()
                .ok_or_else(|| problem(format!("{name}: the header schema has no properties")))?;
            for (h, what) in [
                ("ce_specversion", "CloudEvents specversion (1.0)"),
                ("ce_id", "CloudEvents id"),
                ("ce_source", "CloudEvents source"),
                ("ce_type", "CloudEvents type"),
            ] {
                props.insert(h.to_owned(), json!({"type": "string", "description": what}));
            }
            if let Some(r) = headers["required"].as_array_mut() {
                for h in ["ce_specversion", "ce_id", "ce_source", "ce_type"] {
                    r.push(json!(h));
                }
            }
            ("application/json", multi(&topic.schema, &payload_at))
        }
        EnvelopeMode::CloudeventsStructured => (
            "application/cloudevents+json",
            json!({"schemaFormat": SCHEMA_FORMAT, "schema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["specversion", "id", "source", "type", "data"],
                "properties": {
                    "specversion": {"const": "1.0"},
                    "id": {"type": "string", "minLength": 1},
                    "source": {"type": "string", "minLength": 1},
                    "type": {"type": "string", "minLength": 1},
                    "time": {"type": "string", "format": "date-time"},
                    "dataschema": {"type": "string", "format": "uri"},
                    "datacontenttype": {"type": "string"},
                    "data": rebased(&topic.schema, &format!("#{payload_at}/schema/properties/data")),
                },
            }}),
        ),
    };
    let mut kafka_message = json!({"bindingVersion": KAFKA_BINDING});
    if let Some(key) = &spec.key.schema {
        kafka_message["key"] = key.clone();
    }
    let mut message = json!({
        "name": name,
        "contentType": content_type,
        "headers": multi(&headers, &format!("{at}/headers")),
        "payload": payload,
        "bindings": {"kafka": kafka_message},
    });
    if let Some(t) = topic.schema.get("title").and_then(Value::as_str) {
        message["title"] = json!(t);
    }
    if let Some(d) = topic.schema.get("description").and_then(Value::as_str) {
        message["summary"] = json!(d);
    }
    Ok(message)
}

/// The send operation of an owned `topic`, and a receive operation per consuming service.
fn topic_operations(
    topic: &evkit_schema::Topic,
    contracts: Option<&Contracts>,
    operations: &mut Map<String, Value>,
) {
    let name = topic.name();
    let spec = &topic.spec;
    let channel_ref = json!({"$ref": format!("#/channels/{name}")});
    let message_ref = json!([{"$ref": format!("#/channels/{name}/messages/{name}")}]);
    if spec.owner == Owner::Owned {
        let producers: Vec<&str> = contracts
            .map(|c| c.producers(name).map(|(s, _)| s.service.as_str()).collect())
            .unwrap_or_default();
        let mut op = json!({
            "action": "send",
            "channel": channel_ref,
            "messages": message_ref,
            "summary": format!("Publish {name}"),
        });
        if !producers.is_empty() {
            op["description"] = json!(format!("Produced by {}.", producers.join(", ")));
        }
        operations.insert(format!("{name}.send"), op);
    }
    if let Some(c) = contracts {
        for (service, consumed) in c.consumers(name) {
            let mut op = json!({
                "action": "receive",
                "channel": channel_ref,
                "messages": message_ref,
                "summary": format!("{} consumes {name}", service.service),
                "bindings": {"kafka": {
                    "groupId": {"type": "string", "enum": [service.service]},
                    "bindingVersion": KAFKA_BINDING,
                }},
            });
            if !consumed.relies_on.is_empty() {
                op["x-evkit-relies-on"] = json!(consumed.relies_on);
            }
            operations.insert(format!("{name}.receive.{}", service.service), op);
        }
    }
}

/// A JSON pointer segment for `s` (`~` and `/` escaped).
fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Follows a local `$ref` (`#/components/messages/x`) in `doc`.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> Result<&'a Value, Error> {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').ok_or_else(|| {
                problem(format!(
                    "`{r}`: only references inside the document are read"
                ))
            })?;
            doc.pointer(pointer)
                .ok_or_else(|| problem(format!("`{r}` points at nothing")))
        }
        None => Ok(v),
    }
}

/// Writes the catalog an AsyncAPI 3.0 document describes into `dir` (which must exist):
/// `topics.yaml`, one schema file per topic, and the header schema.
pub fn import(doc: &Value, dir: &Path) -> Result<(), Error> {
    let version = doc
        .get("asyncapi")
        .and_then(Value::as_str)
        .ok_or_else(|| problem("not an AsyncAPI document: no `asyncapi` version field"))?;
    if !version.starts_with("3.0.") {
        return Err(problem(format!(
            "AsyncAPI {version}: only 3.0 documents are read (convert with `asyncapi convert`)"
        )));
    }
    let channels = doc
        .get("channels")
        .and_then(Value::as_object)
        .ok_or_else(|| problem("the document has no `channels`"))?;
    let operations = doc.get("operations").and_then(Value::as_object);
    let extension = doc.get("x-evkit").cloned().unwrap_or_else(|| json!({}));
    let headers_file = extension["headers"]
        .as_str()
        .unwrap_or("headers.json")
        .to_owned();
    let mut headers_doc: Option<Value> =
        unmulti(doc, &format!("/components/schemas/{HEADERS_SCHEMA}"), "");
    let mut topics = Vec::new();
    for (id, channel) in channels {
        let channel = resolve(doc, channel)?;
        let at = |what: &str| format!("channel `{id}`: {what}");
        if channel.get("address").and_then(Value::as_str).is_none() {
            return Err(problem(at("no `address` (the topic)")));
        }
        let messages = channel
            .get("messages")
            .and_then(Value::as_object)
            .ok_or_else(|| problem(at("no `messages`")))?;
        if messages.len() != 1 {
            return Err(problem(at(&format!(
                "{} messages: an evkit topic has exactly one payload schema",
                messages.len()
            ))));
        }
        let message_ref = messages
            .values()
            .next()
            .ok_or_else(|| problem(at("no message")))?;
        let message = resolve(doc, message_ref)?;
        // Where the message is, for its schemas' references.
        let message_at = match message_ref.get("$ref").and_then(Value::as_str) {
            Some(r) => r.trim_start_matches('#').to_owned(),
            None => format!(
                "/channels/{}/messages/{}",
                escape(id),
                escape(messages.keys().next().map_or("", String::as_str))
            ),
        };
        let spec = topic_spec(channel, message, &format!("#/channels/{id}"), operations)
            .map_err(|e| problem(at(&e)))?;
        let inner = if spec.envelope.mode == EnvelopeMode::CloudeventsStructured {
            "/properties/data"
        } else {
            ""
        };
        let schema = unmulti(doc, &format!("{message_at}/payload"), inner).ok_or_else(|| {
            problem(at(if inner.is_empty() {
                "the message has no payload schema"
            } else {
                "a structured CloudEvents payload without `data`"
            }))
        })?;
        if headers_doc.is_none() {
            headers_doc = unmulti(doc, &format!("{message_at}/headers"), "");
        }
        write(dir, &spec.schema_file(), &schema)?;
        topics.push(spec);
    }
    if let Some(order) = extension["topics"].as_array() {
        let rank = |name: &str| order.iter().position(|o| o == name).unwrap_or(usize::MAX);
        topics.sort_by_key(|t| rank(&t.name));
    }
    let headers_doc = headers_doc.ok_or_else(|| problem("no header schema in the document"))?;
    write(dir, &headers_file, &headers_doc)?;
    let mut catalog = json!({"headers": headers_file, "topics": topics});
    if let Some(m) = extension.get("max_payload_bytes") {
        catalog["max_payload_bytes"] = m.clone();
    }
    let text = format!(
        "# Imported from an AsyncAPI document by `evkit asyncapi import`.\n{}",
        serde_norway::to_string(&catalog).map_err(|e| problem(e.to_string()))?
    );
    let path = dir.join("topics.yaml");
    std::fs::write(&path, text).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The topics.yaml entry of a channel: `x-evkit`, with the address, the partitions of the
/// Kafka binding, the key schema of the message's binding, and owned when an operation sends
/// to `channel_ref`.
fn topic_spec(
    channel: &Value,
    message: &Value,
    channel_ref: &str,
    operations: Option<&Map<String, Value>>,
) -> Result<TopicSpec, String> {
    let mut spec = channel.get("x-evkit").cloned().unwrap_or_else(|| json!({}));
    let spec_map = spec.as_object_mut().ok_or("`x-evkit` is not an object")?;
    let address = channel
        .get("address")
        .and_then(Value::as_str)
        .unwrap_or_default();
    spec_map.insert("name".to_owned(), json!(address));
    if let Some(p) = channel.pointer("/bindings/kafka/partitions") {
        spec_map.insert("partitions".to_owned(), p.clone());
    }
    let sends = operations.is_some_and(|ops| {
        ops.values().any(|op| {
            op["action"] == "send" && op.pointer("/channel/$ref") == Some(&json!(channel_ref))
        })
    });
    spec_map.insert(
        "owner".to_owned(),
        json!(if sends { "owned" } else { "foreign" }),
    );
    if let Some(key) = message.pointer("/bindings/kafka/key") {
        let key_map = spec_map
            .entry("key")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or("`x-evkit.key` is not an object")?;
        key_map.insert("schema".to_owned(), key.clone());
    }
    serde_json::from_value(spec).map_err(|e| format!("not an evkit topic: {e}"))
}

fn write(dir: &Path, file: &str, doc: &Value) -> Result<(), Error> {
    if file.contains('/') || file.contains("..") {
        return Err(problem(format!(
            "`{file}` is not a file name inside the catalog"
        )));
    }
    let path = dir.join(file);
    let mut text = serde_json::to_string_pretty(doc).map_err(|e| problem(e.to_string()))?;
    text.push('\n');
    std::fs::write(&path, text).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}
