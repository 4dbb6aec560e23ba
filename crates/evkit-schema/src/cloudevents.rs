//! CloudEvents 1.0 over Kafka, following the CloudEvents Kafka protocol binding.
//!
//! - Structured mode: the payload is the whole event as JSON, with `content-type:
//!   application/cloudevents+json`; the topic schema applies to the event's `data`.
//! - Binary mode: attributes travel as `ce_<name>` headers, `datacontenttype` as `content-type`;
//!   the payload is the event's `data`.
//!
//! Header names live here and nowhere else.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contract::{Message, Part, Violation};

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

/// The context attributes of a CloudEvent received on an enveloped topic, as a valid message's
/// [`Checked::cloudevent`](crate::Checked::cloudevent) holds them, read-only.
/// [`Attributes::to_event`] gives an owned [`CloudEvent`] to change or send on.
///
/// This runs for every message, so it keeps what it was given with as few allocations as it
/// can: a binary-mode event's attribute headers are copied into one buffer (instead of eight
/// `String`s), and a structured-mode event keeps the strings parsing already allocated.
///
/// Extension attributes are checked for their names but not kept.
#[derive(Clone)]
pub struct Attributes(Repr);

#[derive(Clone)]
enum Repr {
    /// Binary mode: the values of the present attributes back to back, in slot order (see
    /// [`NAMES`]); slot `i` ends at `ends[i]` and starts where slot `i - 1` ends; bit `i` of
    /// `present` is set when slot `i` is present.
    Packed {
        text: Box<str>,
        ends: [u32; 8],
        present: u8,
    },
    /// Structured mode: the strings moved out of the parsed event.
    Event(Box<CloudEvent>),
}

impl Attributes {
    /// Packs borrowed attributes (binary mode) [`attributes`] accepted; `None` unless the four
    /// required ones are present (or a value does not fit in `u32` offsets, which the payload
    /// limit rules out).
    fn pack(slots: &[Option<&str>; 8]) -> Option<Attributes> {
        if slots[..4].iter().any(Option::is_none) {
            return None;
        }
        let len = slots.iter().flatten().map(|v| v.len()).sum();
        let mut text = String::with_capacity(len);
        let mut ends = [0u32; 8];
        let mut present = 0u8;
        for (i, slot) in slots.iter().enumerate() {
            if let Some(v) = slot {
                text.push_str(v);
                present |= 1 << i;
            }
            ends[i] = u32::try_from(text.len()).ok()?;
        }
        Some(Attributes(Repr::Packed {
            text: text.into_boxed_str(),
            ends,
            present,
        }))
    }

    /// Keeps owned attributes (structured mode) [`attributes`] accepted; `None` unless the four
    /// required ones are present.
    fn owned(slots: [Option<String>; 8]) -> Option<Attributes> {
        let [
            specversion,
            id,
            source,
            event_type,
            datacontenttype,
            dataschema,
            subject,
            time,
        ] = slots;
        Some(Attributes(Repr::Event(Box::new(CloudEvent {
            specversion: specversion?,
            id: id?,
            source: source?,
            event_type: event_type?,
            datacontenttype,
            dataschema,
            subject,
            time,
        }))))
    }

    /// The value in slot `i`, when present.
    fn slot(&self, i: usize) -> Option<&str> {
        match &self.0 {
            Repr::Packed {
                text,
                ends,
                present,
            } => {
                if present & (1 << i) == 0 {
                    return None;
                }
                let end = *ends.get(i)? as usize;
                let start = i.checked_sub(1).map_or(0, |p| ends[p] as usize);
                text.get(start..end)
            }
            Repr::Event(e) => match i {
                0 => Some(&e.specversion),
                1 => Some(&e.id),
                2 => Some(&e.source),
                3 => Some(&e.event_type),
                4 => e.datacontenttype.as_deref(),
                5 => e.dataschema.as_deref(),
                6 => e.subject.as_deref(),
                7 => e.time.as_deref(),
                _ => None,
            },
        }
    }

    /// A required attribute (always present: [`Attributes`] exist only for valid events).
    fn required(&self, i: usize) -> &str {
        self.slot(i).unwrap_or_default()
    }

    /// `specversion`: always `1.0`.
    pub fn specversion(&self) -> &str {
        self.required(0)
    }

    /// `id`: unique per source.
    pub fn id(&self) -> &str {
        self.required(1)
    }

    /// `source`: URI-reference of the producer.
    pub fn source(&self) -> &str {
        self.required(2)
    }

    /// `type`: the event type.
    pub fn event_type(&self) -> &str {
        self.required(3)
    }

    /// `datacontenttype`: media type of `data` (binary mode: the `content-type` header).
    pub fn datacontenttype(&self) -> Option<&str> {
        self.slot(4)
    }

    /// `dataschema`: URI of the schema `data` follows.
    pub fn dataschema(&self) -> Option<&str> {
        self.slot(5)
    }

    /// `subject`: subject of the event within the source.
    pub fn subject(&self) -> Option<&str> {
        self.slot(6)
    }

    /// `time`: RFC 3339 timestamp.
    pub fn time(&self) -> Option<&str> {
        self.slot(7)
    }

    /// The attributes as an owned [`CloudEvent`].
    pub fn to_event(&self) -> CloudEvent {
        let owned = |v: Option<&str>| v.map(str::to_owned);
        CloudEvent {
            specversion: self.specversion().to_owned(),
            id: self.id().to_owned(),
            source: self.source().to_owned(),
            event_type: self.event_type().to_owned(),
            datacontenttype: owned(self.datacontenttype()),
            dataschema: owned(self.dataschema()),
            subject: owned(self.subject()),
            time: owned(self.time()),
        }
    }
}

impl From<&Attributes> for CloudEvent {
    fn from(attributes: &Attributes) -> Self {
        attributes.to_event()
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        (0..NAMES.len()).all(|i| self.slot(i) == other.slot(i))
    }
}

impl Eq for Attributes {}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Attributes");
        for (i, name) in NAMES.iter().enumerate() {
            if let Some(v) = self.slot(i) {
                s.field(name, &v);
            }
        }
        s.finish()
    }
}

/// The context attributes evkit knows, in slot order.
const NAMES: [&str; 8] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
];

/// The slot of a known attribute.
fn slot(name: &str) -> Option<usize> {
    Some(match name {
        "specversion" => 0,
        "id" => 1,
        "source" => 2,
        "type" => 3,
        "datacontenttype" => 4,
        "dataschema" => 5,
        "subject" => 6,
        "time" => 7,
        _ => return None,
    })
}

/// A format rule: attribute slot, predicate, rule name, what is wrong.
type FormatRule = (usize, fn(&str) -> bool, &'static str, &'static str);

const FORMAT_RULES: [FormatRule; 6] = [
    (0, |v| v == SPEC_VERSION, "const", "must be \"1.0\""),
    (2, is_uri_reference, "format", "is not a URI-reference"),
    (5, is_absolute_uri, "format", "is not an absolute URI"),
    (7, is_rfc3339, "format", "is not an RFC 3339 timestamp"),
    (6, |s| !s.is_empty(), "minLength", "is empty"),
    (4, is_json_media_type, "pattern", "is not a JSON media type"),
];

/// Checks CloudEvents 1.0 context attributes, given as `(slot, name, value)` triples (the slot
/// [`slot`] gives the name; names without the `ce_` prefix; `None` for a value that is not a
/// string). The rules are the spec's, in code
/// rather than a schema: they are fixed, and this runs for every message. Returns the known
/// attributes by slot (see [`NAMES`]) when every rule holds; values are taken as given (borrowed
/// header values in binary mode, strings moved out of the parsed event in structured mode).
fn attributes<N: AsRef<str>, V: AsRef<str>>(
    triples: impl Iterator<Item = (Option<usize>, N, Option<V>)>,
    out: &mut Vec<Violation>,
) -> Option<[Option<V>; 8]> {
    let before = out.len();
    let mut bad = |attr: &str, rule: &str, message: String| {
        out.push(Violation::new(
            Part::Envelope,
            &format!("/{attr}"),
            rule,
            message,
        ));
    };
    let mut attrs: [Option<V>; 8] = Default::default();
    for (i, name, value) in triples {
        let name = name.as_ref();
        let Some(i) = i else {
            let legal = !name.is_empty()
                && name.len() <= 20
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !legal {
                let why = "extension attribute names are 1-20 lower-case letters or digits";
                bad(name, "propertyNames", why.to_owned());
            }
            continue;
        };
        match value {
            Some(v) => attrs[i] = Some(v),
            None => bad(name, "type", format!("`{name}` must be a string")),
        }
    }
    for (i, name) in NAMES.iter().enumerate().take(4) {
        match attrs[i].as_ref().map(AsRef::as_ref) {
            None => bad(
                name,
                "required",
                format!("\"{name}\" is a required attribute"),
            ),
            Some("") => bad(name, "minLength", format!("`{name}` is empty")),
            Some(_) => {}
        }
    }
    for (i, ok, rule, what) in FORMAT_RULES {
        if attrs[i].as_ref().is_some_and(|v| !ok(v.as_ref())) {
            let name = NAMES[i];
            bad(name, rule, format!("`{name}` {what}"));
        }
    }
    (out.len() == before).then_some(attrs)
}

/// No whitespace or control characters (a URI-reference may be relative).
fn is_uri_reference(s: &str) -> bool {
    !has_space_or_control(s.as_bytes())
}

/// Any ASCII whitespace or control character (everything up to space, and DEL)? Written as a
/// fold without an early exit, which the compiler turns into SIMD compares: attribute values
/// are scanned for every message.
#[inline(never)]
fn has_space_or_control(bytes: &[u8]) -> bool {
    let found = bytes.iter().fold(0u8, |found, &b| {
        found | u8::from(b <= b' ') | u8::from(b == 0x7f)
    });
    found != 0
}

/// Any ASCII upper-case letter? (A fold, as in [`has_space_or_control`].)
#[inline(never)]
fn has_upper_case(bytes: &[u8]) -> bool {
    let found = bytes
        .iter()
        .fold(0u8, |found, &b| found | u8::from(b.is_ascii_uppercase()));
    found != 0
}

/// `application/json`, `application/<x>+json`, with optional parameters.
fn is_json_media_type(ct: &str) -> bool {
    // The usual value, checked for every binary-mode message.
    if ct == JSON_CONTENT_TYPE {
        return true;
    }
    let essence = ct.split(';').next().unwrap_or_default().trim().as_bytes();
    let prefix = b"application/";
    let starts =
        essence.len() >= prefix.len() && essence[..prefix.len()].eq_ignore_ascii_case(prefix);
    let ends = |suffix: &[u8]| {
        essence.len() >= suffix.len()
            && essence[essence.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    starts && (essence.len() == prefix.len() + 4 && ends(b"json") || ends(b"+json"))
}

/// `scheme:rest` per RFC 3986, without whitespace.
fn is_absolute_uri(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(colon) = b.iter().position(|&c| c == b':') else {
        return false;
    };
    let (scheme, rest) = (&b[..colon], &b[colon + 1..]);
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && !has_space_or_control(b)
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with ranges checked.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .map(|d| d.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return false;
    };
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            b.len() == i + 6
                && b[i + 3] == b':'
                && digits(i + 1..i + 3).is_some_and(|h| h <= 23)
                && digits(i + 4..i + 6).is_some_and(|m| m <= 59)
        }
        _ => false,
    }
}

/// Splits a structured-mode event into its data and attributes.
#[inline(never)]
pub(crate) fn from_structured(
    payload: Option<Value>,
    message: &Message<'_>,
    out: &mut Vec<Violation>,
) -> (Option<Value>, Option<Attributes>) {
    if let Some(ct) = message.header_value(CONTENT_TYPE_HEADER) {
        const STRUCTURED: &[u8] = b"application/cloudevents+json";
        let ok = std::str::from_utf8(ct).is_ok_and(|ct| {
            ct.trim_start()
                .as_bytes()
                .get(..STRUCTURED.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(STRUCTURED))
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
    let strings = event.into_iter().map(|(k, v)| match v {
        Value::String(s) => (slot(&k), k, Some(s)),
        _ => (slot(&k), k, None),
    });
    let attrs = attributes(strings, out).and_then(Attributes::owned);
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

/// A binary-mode attribute: its slot (for a known one), name and value.
type BinaryAttribute<'a> = (Option<usize>, Cow<'a, str>, &'a str);

/// Reads binary-mode attributes from `ce_*` headers and `content-type`.
#[inline(never)]
pub(crate) fn from_binary(message: &Message<'_>, out: &mut Vec<Violation>) -> Option<Attributes> {
    // Header names are matched case-insensitively; lower-case copies only when needed.
    let mut attrs: smallvec::SmallVec<[BinaryAttribute<'_>; 8]> = smallvec::SmallVec::new();
    let mut seen = [false; 8];
    for (name, value) in &message.headers {
        let prefixed = name.len() > HEADER_PREFIX.len()
            && name.as_bytes()[..HEADER_PREFIX.len()]
                .eq_ignore_ascii_case(HEADER_PREFIX.as_bytes());
        let attr: Cow<'_, str> = if prefixed {
            let a = &name[HEADER_PREFIX.len()..];
            if has_upper_case(a.as_bytes()) {
                Cow::Owned(a.to_ascii_lowercase())
            } else {
                Cow::Borrowed(a)
            }
        } else if name.eq_ignore_ascii_case(CONTENT_TYPE_HEADER) {
            Cow::Borrowed("datacontenttype")
        } else {
            continue;
        };
        let part = || Part::Header(name.to_ascii_lowercase());
        // Known attributes are tracked by slot; only extensions need comparing by name.
        let i = slot(&attr);
        let repeated = match i {
            Some(i) => std::mem::replace(&mut seen[i], true),
            None => attrs.iter().any(|(_, a, _)| *a == attr),
        };
        if repeated {
            out.push(Violation::new(
                part(),
                "",
                "unique",
                format!("header `{name}` is present more than once"),
            ));
            continue;
        }
        match value.map(std::str::from_utf8) {
            Some(Ok(v)) => attrs.push((i, attr, v)),
            Some(Err(_)) => out.push(Violation::new(
                part(),
                "",
                "utf8",
                format!("header `{name}` is not UTF-8"),
            )),
            None => out.push(Violation::new(
                part(),
                "",
                "type",
                format!("header `{name}` has no value"),
            )),
        }
    }
    let before = out.len();
    let found = attributes(
        attrs.iter().map(|(i, a, v)| (*i, a.as_ref(), Some(*v))),
        out,
    );
    // In binary mode a missing attribute is a missing header: say which.
    for v in &mut out[before..] {
        if v.rule == "required" {
            let attr = v.instance_path.trim_start_matches('/');
            v.message = format!(
                "header `{HEADER_PREFIX}{attr}` is missing (binary mode carries the `{attr}` \
                 attribute in it)"
            );
        }
    }
    found.and_then(|a| Attributes::pack(&a))
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::{Attributes, has_space_or_control, has_upper_case, is_json_media_type};

    #[test]
    fn byte_scans() {
        for clean in ["", "urn:redhat:source:console", "https://x/y?z=1#f", "é~!"] {
            assert!(!has_space_or_control(clean.as_bytes()), "{clean:?}");
        }
        for dirty in [
            " ",
            "a b",
            "urn:x\t",
            "\0",
            "x\u{7f}",
            "long-prefix-long-prefix-\n",
        ] {
            assert!(has_space_or_control(dirty.as_bytes()), "{dirty:?}");
        }
        assert!(!has_upper_case(b"specversion-09_"));
        assert!(has_upper_case(b"specVersion"));
        assert!(has_upper_case(b"Z"));
    }

    #[test]
    fn attributes_keep_each_slot_apart() {
        let slots = [
            Some("1.0"),
            Some("e-1"),
            Some("urn:x"),
            Some("t"),
            None,
            Some("https://x/s.json"),
            Some(""),
            None,
        ];
        let a = Attributes::pack(&slots).expect("the required four are present");
        assert_eq!(
            (a.specversion(), a.id(), a.source(), a.event_type()),
            ("1.0", "e-1", "urn:x", "t")
        );
        assert_eq!(a.datacontenttype(), None);
        assert_eq!(a.dataschema(), Some("https://x/s.json"));
        // Present but empty is not absent.
        assert_eq!(a.subject(), Some(""));
        assert_eq!(a.time(), None);
        let mut missing = slots;
        missing[2] = None;
        assert!(Attributes::pack(&missing).is_none());
        // Kept as parsed (structured mode): the same attributes, equal to the packed ones.
        let owned = Attributes::owned(slots.map(|v| v.map(str::to_owned))).expect("complete");
        assert_eq!(owned, a);
        assert_eq!(owned.subject(), Some(""));
        assert_eq!(owned.to_event(), a.to_event());
        assert!(Attributes::owned(missing.map(|v| v.map(str::to_owned))).is_none());
        let mut other = slots;
        other[7] = Some("2026-11-01T12:00:00Z");
        assert_ne!(Attributes::pack(&other), Some(a));
    }

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            " application/json ;charset=UTF-8",
            "application/cloudevents+json",
            "application/vnd.api+json; q=1",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "",
            "application/",
            "application/jsonx",
            "application/xml",
            "text/json",
            "text/plain; application/json",
            "application/json+xml",
            "+json",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }
}
