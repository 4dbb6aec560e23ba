//! What a dead-lettered message carries besides its original key, headers and payload.
//!
//! Header names live here and nowhere else.

use evkit_schema::Violation;

use crate::Envelope;

/// Why the message was dead-lettered (`validation`, `rejected`, `retries-exhausted`, `panic`, ...).
pub const REASON: &str = "evkit-dlq-reason";
/// Human description of the failure (masked: never the offending value).
pub const ERROR: &str = "evkit-dlq-error";
/// The JSON paths that failed validation, comma separated (`payload/id,key`).
pub const FAILED_PATHS: &str = "evkit-dlq-failed-paths";
/// The topic the message was consumed from.
pub const ORIGINAL_TOPIC: &str = "evkit-dlq-original-topic";
/// Its partition.
pub const ORIGINAL_PARTITION: &str = "evkit-dlq-original-partition";
/// Its offset.
pub const ORIGINAL_OFFSET: &str = "evkit-dlq-original-offset";
/// How many times a handler was tried.
pub const ATTEMPTS: &str = "evkit-dlq-attempts";
/// When it was dead-lettered, milliseconds since the epoch.
pub const TIME: &str = "evkit-dlq-time-ms";

/// The headers of the dead-letter copy of `envelope`: its own headers first, unchanged, then the
/// `evkit-dlq-*` headers describing the failure.
pub fn headers(
    envelope: &Envelope,
    reason: &str,
    error: &str,
    violations: &[Violation],
    attempts: u32,
    now_ms: i64,
) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = envelope.headers.clone();
    let paths = violations
        .iter()
        .map(|v| {
            let part = match &v.part {
                evkit_schema::Part::Header(h) => format!("header:{h}"),
                other => other.to_string(),
            };
            format!("{part}{}", v.instance_path)
        })
        .collect::<Vec<_>>()
        .join(",");
    for (name, value) in [
        (REASON, reason.to_owned()),
        (ERROR, error.to_owned()),
        (FAILED_PATHS, paths),
        (ORIGINAL_TOPIC, envelope.topic.clone()),
        (ORIGINAL_PARTITION, envelope.partition.to_string()),
        (ORIGINAL_OFFSET, envelope.offset.to_string()),
        (ATTEMPTS, attempts.to_string()),
        (TIME, now_ms.to_string()),
    ] {
        out.push((name.to_owned(), Some(value.into_bytes())));
    }
    out
}
