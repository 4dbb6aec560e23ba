//! The one wire encoding of an event for a catalog topic: payload bytes, CloudEvents attributes
//! (binary-mode `ce_*` headers or the structured envelope) and the context headers. The
//! runtime's producer and the testkit's generators both call [`encode`], so tests send exactly
//! what services send.

use serde_json::Value;

use crate::cloudevents::{CONTENT_TYPE_HEADER, CloudEvent, STRUCTURED_CONTENT_TYPE};
use crate::{Contract, EnvelopeMode, Error, IDENTITY_HEADER, REQUEST_ID_HEADER, WireFormat};

/// What varies per message besides the event: CloudEvents attributes and context headers.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    /// The CloudEvents `id` (enveloped topics).
    pub id: String,
    /// The CloudEvents `time` (RFC 3339), when set.
    pub time: Option<String>,
    /// The CloudEvents `dataschema` (structured topics dispatching on it).
    pub dataschema: Option<String>,
    /// The `x-rh-identity` header value (base64), added unless `None`.
    pub identity: Option<String>,
    /// The `x-rh-insights-request-id` header value, added unless `None`.
    pub request_id: Option<String>,
    /// The schema id framed into a `wire: confluent` topic's payload; when `None`, the id set
    /// on the contract ([`Contract::schema_id`]).
    pub schema_id: Option<u32>,
}

/// An encoded message: what goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The record key (from the key policy's pointer), when one applies.
    pub key: Option<Vec<u8>>,
    /// Headers, in order: envelope headers, then identity, then request id.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

/// Encodes `event` for `contract`'s topic: the key from the key pointer, the envelope the
/// catalog entry names (type and source from the entry, `urn:evkit` and the topic name when it
/// names none), the context headers in `attributes`, and for a `wire: confluent` topic the
/// framing with the schema id.
pub fn encode(
    contract: &Contract,
    event: &Value,
    attributes: &Attributes,
) -> Result<Encoded, Error> {
    let topic = contract.topic();
    let json = |e| Error::Encode {
        topic: topic.to_owned(),
        source: e,
    };
    let spec = &contract.spec().envelope;
    let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(8);
    let payload = match spec.mode {
        EnvelopeMode::Plain => serde_json::to_vec(event).map_err(json)?,
        EnvelopeMode::CloudeventsBinary | EnvelopeMode::CloudeventsStructured => {
            let mut ce = CloudEvent::new(
                attributes.id.clone(),
                spec.source
                    .clone()
                    .unwrap_or_else(|| "urn:evkit".to_owned()),
                spec.event_type.clone().unwrap_or_else(|| topic.to_owned()),
            );
            ce.time.clone_from(&attributes.time);
            ce.dataschema.clone_from(&attributes.dataschema);
            if spec.mode == EnvelopeMode::CloudeventsBinary {
                headers.extend(
                    ce.binary_headers()
                        .into_iter()
                        .map(|(n, v)| (n, v.into_bytes())),
                );
                serde_json::to_vec(event).map_err(json)?
            } else {
                headers.push((
                    CONTENT_TYPE_HEADER.to_owned(),
                    STRUCTURED_CONTENT_TYPE.as_bytes().to_vec(),
                ));
                serde_json::to_vec(&ce.structured(event.clone())).map_err(json)?
            }
        }
    };
    if let Some(id) = &attributes.identity {
        headers.push((IDENTITY_HEADER.to_owned(), id.as_bytes().to_vec()));
    }
    if let Some(r) = &attributes.request_id {
        headers.push((REQUEST_ID_HEADER.to_owned(), r.as_bytes().to_vec()));
    }
    let payload = match contract.wire() {
        WireFormat::Json => payload,
        WireFormat::Confluent => {
            let id = attributes
                .schema_id
                .or_else(|| contract.schema_id())
                .ok_or_else(|| Error::NoSchemaId {
                    topic: topic.to_owned(),
                })?;
            crate::confluent::frame(id, &payload)
        }
    };
    Ok(Encoded {
        key: contract.key_for(event).map(String::into_bytes),
        headers,
        payload,
    })
}
