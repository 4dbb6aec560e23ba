//! The Confluent wire format: what Confluent's serializers (Java, Python, Go, .NET) put before a
//! payload. A JSON Schema payload is framed as one magic byte `0x00`, the registry's schema id
//! as a big-endian `u32`, then the JSON document.
//!
//! ```
//! use evkit_schema::confluent;
//!
//! let framed = confluent::frame(42, br#"{"id": 1}"#);
//! assert_eq!(&framed[..5], &[0, 0, 0, 0, 42]);
//! assert_eq!(confluent::unframe(&framed), Ok((42, &br#"{"id": 1}"#[..])));
//! // A plain JSON payload is not framed: its first byte is `{`, not the magic byte.
//! assert!(confluent::unframe(br#"{"id": 1}"#).is_err());
//! ```

use std::fmt;

/// The first byte of a framed payload.
pub const MAGIC_BYTE: u8 = 0;

/// Magic byte plus schema id: the bytes before the JSON document.
pub const HEADER_LEN: usize = 5;

/// Why a payload is not in the Confluent wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// Fewer than [`HEADER_LEN`] bytes: no room for the magic byte and the schema id.
    TooShort(usize),
    /// The first byte is not [`MAGIC_BYTE`] (the byte found).
    Magic(u8),
}

impl FramingError {
    /// The contract rule this breaks: `wire-length` or `wire-magic`.
    pub fn rule(self) -> &'static str {
        match self {
            FramingError::TooShort(_) => "wire-length",
            FramingError::Magic(_) => "wire-magic",
        }
    }
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::TooShort(n) => write!(
                f,
                "the payload is {n} byte(s): the Confluent wire format needs a magic byte and a \
                 4-byte schema id before the JSON"
            ),
            FramingError::Magic(b'{' | b'[') => f.write_str(
                "the payload starts with JSON, not the Confluent wire format's magic byte 0x00 \
                 (was it produced without a Confluent serializer?)",
            ),
            FramingError::Magic(b) => write!(
                f,
                "the payload starts with byte 0x{b:02x}, not the Confluent wire format's magic \
                 byte 0x00"
            ),
        }
    }
}

impl std::error::Error for FramingError {}

/// Asks a schema registry about an id a topic's contract does not know yet (a version registered
/// after the contract read the subject's ids). The runtime's consumer asks it before it rejects a
/// message for its schema id; `evkit::registry` implements it.
pub trait SchemaIdLookup: Send + Sync {
    /// Whether schema `id` is registered under `topic`'s subject.
    fn is_registered<'a>(
        &'a self,
        topic: &'a str,
        id: u32,
    ) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

/// Frames `json` with `schema_id`: `0x00`, the id big-endian, the document.
pub fn frame(schema_id: u32, json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + json.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(json);
    out
}

/// Splits a framed payload into its schema id and JSON document.
pub fn unframe(payload: &[u8]) -> Result<(u32, &[u8]), FramingError> {
    match payload {
        [MAGIC_BYTE, a, b, c, d, json @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), json)),
        [first, ..] if *first != MAGIC_BYTE => Err(FramingError::Magic(*first)),
        _ => Err(FramingError::TooShort(payload.len())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn frames_and_unframes_every_id() {
        for id in [0, 1, 255, 256, 65_536, u32::MAX] {
            let framed = frame(id, b"{}");
            assert_eq!(framed.len(), HEADER_LEN + 2);
            assert_eq!(unframe(&framed).unwrap(), (id, &b"{}"[..]));
        }
        // An empty document after a complete header is framed; the JSON parse rejects it.
        assert_eq!(unframe(&[0, 0, 0, 0, 7]).unwrap(), (7, &b""[..]));
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(unframe(b""), Err(FramingError::TooShort(0)));
        assert_eq!(unframe(&[0, 0, 1]), Err(FramingError::TooShort(3)));
        assert_eq!(unframe(b"{\"a\":1}"), Err(FramingError::Magic(b'{')));
        // Magic byte 1 is Confluent's newer GUID framing, which this format does not read.
        assert_eq!(unframe(&[1, 0, 0, 0, 0, b'{']), Err(FramingError::Magic(1)));
        assert!(
            FramingError::Magic(b'{')
                .to_string()
                .contains("starts with JSON")
        );
        assert_eq!(FramingError::Magic(9).rule(), "wire-magic");
        assert_eq!(FramingError::TooShort(2).rule(), "wire-length");
    }
}
