//! A streaming check for documents whose schema is a tree of named object properties (the
//! identity document's is): it parses and checks in one pass, building no `Value`.
//!
//! Only a subset of JSON Schema compiles into a [`Shape`]: objects with `type: "object"`,
//! `properties` and `required`; leaves that only name JSON types (`object`, `array`, `string`,
//! `boolean`, `null`); and string leaves (`type: "string"` with `minLength`, `maxLength`,
//! `pattern`, `enum`, `const`, `format`), which are checked by a validator compiled from the
//! leaf with the same options as every other schema, or, when the leaf is in its subset (the
//! identity's `org_id` and `type` are), by a [`StringRule`] that reads the text in place.
//! Annotations (`title`, `description`, ...) are ignored. A schema with anything else gets no
//! shape, and its documents are checked the ordinary way.
//!
//! The check only ever *accepts*: a document it accepts is valid by the full schema (every
//! occurrence of a duplicated key is checked, values it does not check are parsed exactly as
//! `serde_json::Value` parses them, numbers and escapes included). Anything it does not accept
//! goes to the full validator, which gives the verdict and the errors.
//!
//! It runs in two tiers. [`Plain`] first scans the plainest JSON, which is what producers send
//! (objects, arrays, strings without escapes, `true`, `false`, `null`, any JSON whitespace), in
//! one pass over the bytes; anything else in the document (a number, an escape, a duplicated
//! property the shape names, deep nesting) makes it give up, not reject. `serde_json` then checks
//! the document through serde (`Check`), as before. On a ~110-byte identity document the
//! scan costs about a third of the serde pass's instructions (`validate_instructions`).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::string_rule::StringRule;

/// JSON types a type-only leaf accepts (bit per [`Kind`]).
type Kinds = u8;

/// The kind of a JSON value, as a bit.
#[derive(Clone, Copy)]
enum Kind {
    Object = 1,
    Array = 2,
    String = 4,
    Boolean = 8,
    Null = 16,
    /// Numbers are never accepted by a type-only leaf (`integer` depends on the draft).
    Number = 32,
}

/// A compiled check; see the module docs.
pub(crate) enum Shape {
    /// An object: its named properties (at most 64, required ones included) and the bit mask of
    /// the required ones. Other properties may be anything.
    Object {
        properties: Vec<(String, Shape)>,
        required: u64,
    },
    /// Any value of these kinds.
    Kinds(Kinds),
    /// A string the validator accepts; `capture` says which [`Found`] slot keeps it. The scan
    /// asks `rule` instead when the leaf is in its subset (it answers as the validator does).
    Str {
        validator: jsonschema::Validator,
        rule: Option<Arc<StringRule>>,
        capture: Option<usize>,
    },
}

/// Keywords that only annotate.
pub(crate) const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "$comment",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Keywords a string leaf may have beside `type`.
const STRING_KEYWORDS: &[&str] = &[
    "minLength",
    "maxLength",
    "pattern",
    "enum",
    "const",
    "format",
];

impl Shape {
    /// The shape of `schema` (a subschema of a document whose `$schema` is `dialect`), or `None`
    /// when it uses anything outside the subset. String leaves at the paths in `captures` (from
    /// the root) are kept in the [`Found`] slot of the same index.
    pub(crate) fn compile(
        schema: &Value,
        dialect: Option<&Value>,
        captures: &[&[&str]],
    ) -> Option<Shape> {
        Shape::compile_at(schema, dialect, captures, &mut Vec::new())
    }

    fn compile_at(
        schema: &Value,
        dialect: Option<&Value>,
        captures: &[&[&str]],
        path: &mut Vec<String>,
    ) -> Option<Shape> {
        let all = Kind::Object as u8
            | Kind::Array as u8
            | Kind::String as u8
            | Kind::Boolean as u8
            | Kind::Null as u8;
        let obj = match schema {
            Value::Bool(true) => return Some(Shape::Kinds(all)),
            Value::Object(o) => o,
            _ => return None,
        };
        let keywords: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| !ANNOTATIONS.contains(k))
            .collect();
        if keywords.is_empty() {
            return Some(Shape::Kinds(all));
        }
        let ty = obj.get("type");
        if ty.and_then(Value::as_str) == Some("object")
            && keywords
                .iter()
                .all(|k| matches!(*k, "type" | "properties" | "required"))
        {
            let mut properties = Vec::new();
            if let Some(props) = obj.get("properties") {
                for (name, sub) in props.as_object()? {
                    path.push(name.clone());
                    let shape = Shape::compile_at(sub, dialect, captures, path);
                    path.pop();
                    properties.push((name.clone(), shape?));
                }
            }
            let mut required = 0u64;
            for name in obj
                .get("required")
                .map_or(Some(&Vec::new()), Value::as_array)?
            {
                let name = name.as_str()?;
                let i = if let Some(i) = properties.iter().position(|(n, _)| n == name) {
                    i
                } else {
                    let any = all | Kind::Number as u8;
                    properties.push((name.to_owned(), Shape::Kinds(any)));
                    properties.len() - 1
                };
                required |= 1u64.checked_shl(u32::try_from(i).ok()?)?;
            }
            if properties.len() > 64 {
                return None;
            }
            return Some(Shape::Object {
                properties,
                required,
            });
        }
        if keywords == ["type"] {
            let names: Vec<&str> = match ty? {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().map(Value::as_str).collect::<Option<_>>()?,
                _ => return None,
            };
            let mut kinds = 0;
            for n in names {
                kinds |= match n {
                    "object" => Kind::Object as u8,
                    "array" => Kind::Array as u8,
                    "string" => Kind::String as u8,
                    "boolean" => Kind::Boolean as u8,
                    "null" => Kind::Null as u8,
                    _ => return None,
                };
            }
            return Some(Shape::Kinds(kinds));
        }
        if ty.and_then(Value::as_str) == Some("string")
            && keywords
                .iter()
                .all(|k| *k == "type" || STRING_KEYWORDS.contains(k))
        {
            let rule = StringRule::compile(schema).map(Arc::new);
            let mut leaf = obj.clone();
            if let Some(d) = dialect {
                leaf.insert("$schema".to_owned(), d.clone());
            }
            let validator = crate::validator::runtime(&Value::Object(leaf)).ok()?;
            let capture = captures
                .iter()
                .position(|c| c.iter().copied().eq(path.iter().map(String::as_str)));
            return Some(Shape::Str {
                validator,
                rule,
                capture,
            });
        }
        None
    }

    /// Checks the JSON `text`; `Some` with the captured strings when the document is valid by
    /// the shape, `None` when it is not or cannot tell (see the module docs). The identity check
    /// uses [`Shape::accept_learning`], which is this and a [`Template`].
    #[cfg(test)]
    pub(crate) fn accept(&self, text: &str, slots: usize) -> Option<Found> {
        if let Some(found) = self.accept_plain(text, slots) {
            return Some(found);
        }
        self.accept_serde(text, slots)
    }

    /// The first tier: `Some` when [`Plain`] reads the whole document and it is valid by the
    /// shape; `None` when it is not, or when the document holds anything [`Plain`] leaves to
    /// `serde_json`.
    #[cfg(test)]
    fn accept_plain(&self, text: &str, slots: usize) -> Option<Found> {
        self.scan_plain(text, slots, None).map(|(found, _)| found)
    }

    /// [`Shape::accept`], which also hands back a [`Template`] of the document when [`Plain`]
    /// read it (and every string leaf it met has a [`StringRule`]).
    pub(crate) fn accept_learning(
        &self,
        text: &str,
        slots: usize,
    ) -> Option<(Found, Option<Template>)> {
        if let Some((found, learned)) = self.scan_plain(text, slots, Some(Vec::new())) {
            let template = learned.map(|slots| Template {
                text: text.into(),
                slots,
            });
            return Some((found, template));
        }
        self.accept_serde(text, slots).map(|found| (found, None))
    }

    fn scan_plain(
        &self,
        text: &str,
        slots: usize,
        learn: Option<Vec<Slot>>,
    ) -> Option<(Found, Option<Vec<Slot>>)> {
        let mut found = Found::empty(slots);
        let mut scan = Plain { text, at: 0, learn };
        scan.whitespace();
        scan.value(self, &mut found, 0)?;
        scan.whitespace();
        (scan.at == text.len()).then_some((found, scan.learn))
    }

    /// The second tier: the document through `serde_json`'s deserializer.
    fn accept_serde(&self, text: &str, slots: usize) -> Option<Found> {
        let mut found = Found::empty(slots);
        let mut de = serde_json::Deserializer::from_str(text);
        Check {
            shape: self,
            found: &mut found,
        }
        .deserialize(&mut de)
        .ok()?;
        de.end().ok()?;
        Some(found)
    }
}

/// A scanner for the plainest JSON, checking a [`Shape`] as it goes. What it reads, it reads as
/// `serde_json` does (RFC 8259): whitespace is space, tab, line feed and carriage return; a string
/// is any UTF-8 (the text is a `str`) up to the next quote, and a control character or a
/// backslash in it makes the scanner give up. It gives up (`None`) on numbers, on a property the
/// shape names appearing twice, and below [`Plain::MAX_DEPTH`] levels of nesting (`serde_json`
/// refuses 128); the caller then asks `serde_json`. Property names are compared as written, which
/// is their value when they hold no escape.
struct Plain<'t> {
    text: &'t str,
    /// The next byte to read.
    at: usize,
    /// The string values read so far, when the scan is making a [`Template`]; `None` when it is
    /// not, or when it met a string leaf a template cannot check (one without a [`StringRule`]).
    learn: Option<Vec<Slot>>,
}

impl<'t> Plain<'t> {
    /// Deeper documents go to `serde_json`.
    const MAX_DEPTH: usize = 64;

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Steps over `byte`, or gives up.
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// A string without escapes or control characters: its text.
    fn string(&mut self) -> Option<&'t str> {
        self.eat(b'"')?;
        let start = self.at;
        let rest = self.text.as_bytes().get(start..)?;
        let len = string_end(rest)?;
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        self.at = start + len + 1;
        // Both ends are next to an ASCII quote, so on character boundaries.
        self.text.get(start..start + len)
    }

    /// `literal` (`true`, `false` or `null`), whose first byte is next.
    fn literal(&mut self, literal: &str, kind: Kind) -> Option<Kind> {
        if !self
            .text
            .as_bytes()
            .get(self.at..)?
            .starts_with(literal.as_bytes())
        {
            return None;
        }
        self.at += literal.len();
        Some(kind)
    }

    /// A value checked against `shape`.
    fn value(&mut self, shape: &Shape, found: &mut Found, depth: usize) -> Option<()> {
        match shape {
            Shape::Object {
                properties,
                required,
            } => {
                if self.peek()? != b'{' {
                    return None;
                }
                self.object(properties, *required, found, depth)
            }
            Shape::Kinds(kinds) => {
                let kind = self.any(depth)?;
                (kinds & (kind as u8) != 0).then_some(())
            }
            Shape::Str {
                validator,
                rule,
                capture,
            } => {
                let start = self.at + 1;
                let text = self.string()?;
                let valid = match rule {
                    Some(rule) => rule.accepts(text),
                    None => validator.is_valid(&Value::String(text.to_owned())),
                };
                if !valid {
                    return None;
                }
                if let Some(slots) = &mut self.learn {
                    match rule {
                        Some(rule) => slots.push(Slot {
                            start,
                            end: start + text.len(),
                            rule: Some(Arc::clone(rule)),
                            capture: *capture,
                        }),
                        None => self.learn = None,
                    }
                }
                if let Some(slot) = capture.and_then(|i| found.0.get_mut(i)) {
                    *slot = Some(text.to_owned());
                }
                Some(())
            }
        }
    }

    /// An object whose `{` is next: the named `properties` checked against their shapes (each
    /// at most once), the others read as any value, and the `required` ones (a bit mask over
    /// `properties`) present.
    fn object(
        &mut self,
        properties: &[(String, Shape)],
        required: u64,
        found: &mut Found,
        depth: usize,
    ) -> Option<()> {
        if depth >= Self::MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        self.whitespace();
        let mut seen = 0u64;
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            loop {
                let key = self.string()?;
                self.whitespace();
                self.eat(b':')?;
                self.whitespace();
                // The first byte rules out most names without a call to `memcmp`.
                let first = key.as_bytes().first();
                match properties
                    .iter()
                    .position(|(name, _)| name.as_bytes().first() == first && name == key)
                {
                    Some(i) => {
                        let bit = 1u64 << i;
                        if seen & bit != 0 {
                            return None;
                        }
                        seen |= bit;
                        self.value(&properties.get(i)?.1, found, depth + 1)?;
                    }
                    None => {
                        self.any(depth + 1)?;
                    }
                }
                if !self.more(b'}')? {
                    break;
                }
            }
        }
        (seen & required == required).then_some(())
    }

    /// An array whose `[` is next, of any values.
    fn array(&mut self, depth: usize) -> Option<()> {
        if depth >= Self::MAX_DEPTH {
            return None;
        }
        self.eat(b'[')?;
        self.whitespace();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.any(depth + 1)?;
            if !self.more(b']')? {
                return Some(());
            }
        }
    }

    /// After a member or an element: `true` past a comma (another follows), `false` past
    /// `close` (the container ends), or gives up.
    fn more(&mut self, close: u8) -> Option<bool> {
        self.whitespace();
        let next = self.peek()?;
        self.at += 1;
        if next == b',' {
            self.whitespace();
            Some(true)
        } else {
            (next == close).then_some(false)
        }
    }

    /// Any value the scanner reads (not a number): its kind.
    fn any(&mut self, depth: usize) -> Option<Kind> {
        match self.peek()? {
            b'{' => {
                let mut none = Found(smallvec::SmallVec::new());
                self.object(&[], 0, &mut none, depth)?;
                Some(Kind::Object)
            }
            b'[' => {
                self.array(depth)?;
                Some(Kind::Array)
            }
            b'"' => {
                let start = self.at + 1;
                let text = self.string()?;
                if let Some(slots) = &mut self.learn {
                    slots.push(Slot {
                        start,
                        end: start + text.len(),
                        rule: None,
                        capture: None,
                    });
                }
                Some(Kind::String)
            }
            b't' => self.literal("true", Kind::Boolean),
            b'f' => self.literal("false", Kind::Boolean),
            b'n' => self.literal("null", Kind::Null),
            _ => None,
        }
    }
}

/// A document [`Plain`] accepted, kept to check the next ones by comparing bytes: a document that
/// is this one with only string *values* changed (every byte outside them equal, property names
/// included) has the same structure, so it is valid by the shape when each new value is. A value
/// the shape does not constrain (under a type-only leaf, an unnamed property, an array) may be
/// any string; a value at a string leaf must satisfy the leaf's [`StringRule`]. A new value is
/// read as [`Plain`] reads strings (no escape, no control character). Anything else, the caller
/// checks with [`Shape::accept`]. Identity headers from one producer usually share their
/// structure and differ in the tenant's values, so most new identities take this path.
pub(crate) struct Template {
    text: Box<str>,
    /// The string values of `text`, in order.
    slots: Vec<Slot>,
}

/// A string value of a [`Template`]: the byte range of its text (between the quotes), and what
/// the shape asks of it.
struct Slot {
    start: usize,
    end: usize,
    /// The leaf's rule; `None` where the shape takes any string.
    rule: Option<Arc<StringRule>>,
    /// The [`Found`] slot that keeps it.
    capture: Option<usize>,
}

impl Template {
    /// `Some` with the captured strings when `text` is this template with only string values
    /// changed, each valid where it stands; `None` otherwise (not a rejection: see the type).
    pub(crate) fn accept(&self, text: &str, slots: usize) -> Option<Found> {
        let (old, new) = (self.text.as_bytes(), text.as_bytes());
        let mut found = Found::empty(slots);
        let (mut o, mut n) = (0, 0);
        for slot in &self.slots {
            // Equal up to the value's opening quote.
            let same = old.get(o..slot.start)?;
            if new.get(n..n + same.len())? != same {
                return None;
            }
            n += same.len();
            let len = string_end(new.get(n..)?)?;
            if new.get(n + len) != Some(&b'"') {
                return None;
            }
            // Both ends are next to an ASCII quote, so on character boundaries.
            let value = text.get(n..n + len)?;
            if let Some(rule) = &slot.rule
                && !rule.accepts(value)
            {
                return None;
            }
            if let Some(i) = slot.capture {
                *found.0.get_mut(i)? = Some(value.to_owned());
            }
            n += len;
            o = slot.end;
        }
        (new.get(n..)? == old.get(o..)?).then_some(found)
    }
}

/// The index in `bytes` of the first quote, backslash or control character (below 0x20),
/// eight bytes at a time (the same SWAR test `serde_json`'s string scan uses: a byte's high bit is
/// set in the mask when it matches, and a borrow can only set bits above the first match).
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let quote = x ^ (ONES * u64::from(b'"'));
        let quote = quote.wrapping_sub(ONES) & !quote;
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let backslash = backslash.wrapping_sub(ONES) & !backslash;
        let found = (control | quote | backslash) & HIGH;
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

/// The strings a check captured, by slot.
#[derive(Debug)]
pub(crate) struct Found(pub smallvec::SmallVec<[Option<String>; 2]>);

impl Found {
    /// `slots` empty slots (on the stack for two, the identity's).
    fn empty(slots: usize) -> Found {
        let mut found = smallvec::SmallVec::from_buf([None, None]);
        found.resize(slots, None);
        Found(found)
    }
}

/// Checks one value against a shape.
struct Check<'s, 'f> {
    shape: &'s Shape,
    found: &'f mut Found,
}

/// Why the check stopped (the reason does not matter: the full validator decides).
fn mismatch<E: de::Error>() -> E {
    E::custom("not accepted by the shape")
}

impl<'de> DeserializeSeed<'de> for Check<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.shape {
            Shape::Object {
                properties,
                required,
            } => d.deserialize_map(ObjectVisitor {
                properties,
                required: *required,
                found: self.found,
            }),
            Shape::Kinds(kinds) => {
                let kind = d.deserialize_any(SkipVisitor)?;
                if kinds & (kind as u8) == 0 {
                    return Err(mismatch());
                }
                Ok(())
            }
            Shape::Str {
                validator, capture, ..
            } => {
                let s = d.deserialize_str(StrVisitor)?;
                let value = Value::String(s.into_owned());
                if !validator.is_valid(&value) {
                    return Err(mismatch());
                }
                if let (Some(i), Value::String(s)) = (capture, value)
                    && let Some(slot) = self.found.0.get_mut(*i)
                {
                    *slot = Some(s);
                }
                Ok(())
            }
        }
    }
}

struct ObjectVisitor<'s, 'f> {
    properties: &'s [(String, Shape)],
    required: u64,
    found: &'f mut Found,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = 0u64;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.properties.iter().position(|(n, _)| *n == *key) {
                Some(i) => {
                    map.next_value_seed(Check {
                        shape: &self.properties[i].1,
                        found: self.found,
                    })?;
                    seen |= 1 << i;
                }
                None => {
                    map.next_value_seed(Skip)?;
                }
            }
        }
        if seen & self.required != self.required {
            return Err(mismatch());
        }
        Ok(())
    }
}

/// A key, borrowed from the text when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Parses any value exactly as `serde_json::Value` would (strings with their escapes checked,
/// numbers with their range), keeping nothing but its kind. (`serde::de::IgnoredAny` would not
/// do: it skips strings without checking their escapes, so a lone surrogate passes it and fails
/// `Value`.)
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = Kind;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Boolean)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::String)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(Kind::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        while map.next_key_seed(KeySeed)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(Kind::Object)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    fn identity_schema() -> (Value, Value) {
        let doc: Value =
            serde_json::from_str(include_str!("../../../schemas/headers.json")).unwrap();
        let def = doc["$defs"]["identity"].clone();
        (doc, def)
    }

    fn shape() -> (Shape, jsonschema::Validator) {
        let (doc, def) = identity_schema();
        let shape = Shape::compile(
            &def,
            doc.get("$schema"),
            &[&["identity", "org_id"], &["identity", "type"]],
        )
        .expect("the identity schema is in the subset");
        let full = crate::validator::runtime(&crate::ref_schema(&doc, "#/$defs/identity")).unwrap();
        (shape, full)
    }

    #[test]
    fn a_valid_identity_is_accepted_and_its_fields_captured() {
        let (shape, _) = shape();
        let text = r#"{"identity":{"org_id":"o-1","type":"User","auth_type":"jwt-auth","internal":{"org_id":"o-1"},"user":{"username":"a\u00e9"},"account_number":"12"},"entitlements":{"x":[1,2.5,null,true]}}"#;
        let found = shape.accept(text, 2).expect("accepted");
        assert_eq!(
            found.0.to_vec(),
            vec![Some("o-1".to_owned()), Some("User".to_owned())]
        );
    }

    #[test]
    fn what_the_full_schema_rejects_is_never_accepted() {
        let (shape, full) = shape();
        for text in [
            r#"{"identity":{"type":"User"}}"#,
            r#"{"identity":{"org_id":"","type":"User"}}"#,
            r#"{"identity":{"org_id":"o 1","type":"User"}}"#,
            r#"{"identity":{"org_id":"o","type":"Robot"}}"#,
            r#"{"identity":{"org_id":"o","type":"User","internal":[]}}"#,
            r#"{"identity":{"org_id":"o","type":"User","internal":5}}"#,
            r#"{"identity":{"org_id":5,"type":"User"}}"#,
            r#"{"identity":[]}"#,
            r"[]",
            // A duplicate whose first occurrence breaks the rules.
            r#"{"identity":{"org_id":"o","org_id":"o 1","type":"User"}}"#,
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert!(!full.is_valid(&v), "{text} should be invalid");
            assert!(shape.accept(text, 2).is_none(), "{text} accepted");
        }
        // Not JSON to `Value`: a lone surrogate, a number out of range, trailing text.
        for text in [
            r#"{"identity":{"org_id":"o","type":"User","user":{"n":"\ud800"}}}"#,
            r#"{"identity":{"org_id":"o","type":"User"},"x":1e400}"#,
            r#"{"identity":{"org_id":"o","type":"User"}} x"#,
        ] {
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
            assert!(shape.accept(text, 2).is_none(), "{text} accepted");
        }
    }

    #[test]
    fn schemas_outside_the_subset_get_no_shape() {
        for schema in [
            json!({"type": "object", "additionalProperties": false}),
            json!({"type": "object", "properties": {"a": {"$ref": "#/x"}}}),
            json!({"type": "object", "properties": {"a": {"type": "integer"}}}),
            json!({"properties": {"a": {"type": "string"}}}),
            json!({"type": "object", "properties": {"a": {"type": "string", "minLength": 1, "oneOf": []}}}),
        ] {
            assert!(Shape::compile(&schema, None, &[]).is_none(), "{schema}");
        }
    }

    /// Every combination of a few identity-like pieces, valid and not, duplicates included.
    /// The full validator is the oracle: whatever the shape accepts parses as JSON and is valid
    /// by the full schema, and what it captured is what the document says; and every valid
    /// document without a duplicated key is accepted (so the check is really used).
    #[test]
    fn accepted_means_valid_and_valid_means_accepted() {
        let (shape, full) = shape();
        let orgs = [
            r#""o-1""#.to_owned(),
            r#""""#.to_owned(),
            r#""o 1""#.to_owned(),
            "7".to_owned(),
            r#""\u006f""#.to_owned(),
            format!(r#""{}""#, "a".repeat(64)),
            format!(r#""{}""#, "a".repeat(65)),
        ];
        let types = [r#""User""#, r#""System""#, r#""user""#, "null"];
        let extras = [
            "",
            r#","internal":{"org_id":"o"}"#,
            r#","internal":"o""#,
            r#","user":{"a":"\ud800"}"#,
            r#","user":{"a":"\ud83d\ude00"}"#,
            r#","account_number":5"#,
            r#","account_number":"12""#,
            r#","org_id":"o 1""#,
            r#","x":[1e400]"#,
            r#","x":[1e30,-0,{"y":null}]"#,
            r#","service_account":null"#,
        ];
        let (mut accepted, mut valid, mut plain) = (0, 0, 0);
        for org in &orgs {
            for ty in types {
                for extra in extras {
                    for with_org in [true, false] {
                        for dup in [true, false] {
                            let org_part = if with_org {
                                format!(r#""org_id":{org},"#)
                            } else {
                                String::new()
                            };
                            let dup_part = if dup { r#","type":"User""# } else { "" };
                            let inner = format!(r#"{org_part}"type":{ty}{extra}{dup_part}"#);
                            let text = format!(r#"{{"identity":{{{inner}}}}}"#);
                            let parsed = serde_json::from_str::<Value>(&text).ok();
                            let is_valid = parsed.as_ref().is_some_and(|v| full.is_valid(v));
                            valid += usize::from(is_valid);
                            if let Some(found) = shape.accept_plain(&text, 2) {
                                plain += 1;
                                assert!(is_valid, "{text} accepted by the scan but invalid");
                                let v = parsed.as_ref().unwrap();
                                assert_eq!(found.0[0].as_deref(), v["identity"]["org_id"].as_str());
                                assert_eq!(found.0[1].as_deref(), v["identity"]["type"].as_str());
                            } else if is_valid && !dup && !text.contains('\\') {
                                // Valid, and nothing the scan leaves to serde_json but numbers.
                                assert!(
                                    text.contains(['0', '1', '5', '7']),
                                    "{text} is plain and valid and the scan gave up"
                                );
                            }
                            match shape.accept(&text, 2) {
                                Some(found) => {
                                    accepted += 1;
                                    assert!(is_valid, "{text} accepted but invalid");
                                    let v = parsed.unwrap();
                                    assert_eq!(
                                        found.0[0].as_deref(),
                                        v["identity"]["org_id"].as_str()
                                    );
                                    assert_eq!(
                                        found.0[1].as_deref(),
                                        v["identity"]["type"].as_str()
                                    );
                                }
                                None => assert!(
                                    !is_valid || dup || extra.contains("\"org_id\":\"o 1\""),
                                    "{text} is valid and was not accepted"
                                ),
                            }
                        }
                    }
                }
            }
        }
        assert!(
            accepted > 50 && valid > accepted / 2 && plain * 6 >= accepted,
            "{accepted} accepted ({plain} by the scan), {valid} valid"
        );
    }

    /// A small deterministic generator (xorshift) for the scan's oracle test.
    /// `.1`: whether this document may be damaged (broken atoms, bad whitespace).
    struct Dice(u64, bool);

    impl Dice {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// One of `good`, or, in a document that may be damaged, now and then one of `bad`.
        fn either<'a>(&mut self, good: &[&'a str], bad: &[&'a str]) -> &'a str {
            if self.1 && self.below(6) == 0 {
                self.pick(bad)
            } else {
                self.pick(good)
            }
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap()
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
    }

    /// JSON whitespace, and bytes `serde_json` does not take for whitespace.
    fn space(d: &mut Dice) -> &'static str {
        d.either(
            &["", "", "", " ", "\n", "\t", "\r", "  \r\n "],
            &["\u{0b}", "\u{a0}", "\u{feff}", "\u{c}"],
        )
    }

    /// A string literal: plain, escaped, with raw control characters or broken escapes.
    fn string(d: &mut Dice) -> String {
        let body = d.either(
            &[
                "o-1",
                "",
                "o 1",
                "User",
                "System",
                "a\u{e9}\u{1f600}",
                "x\u{7f}",
                "\\u0061",
                "\\u006f",
                "\\ud83d\\ude00",
                "\\\"q",
                "\\n",
                "org_id",
                "type",
                "an organisation name well over sixteen bytes long",
                "over sixteen bytes, then an escape: \\u0061 and more text after it",
                "sixteen bytes \u{e9}\u{e9}\u{1f600} of non-ASCII text, and more to follow",
            ],
            &[
                "\\ud800",
                "\\x",
                "tab\there",
                "nl\nhere",
                "\u{1}",
                "\\u12",
                "a long string with a tab\tin its second word of eight",
                "a long string with a unit separator \u{1f} in it",
                "a long string with a stray DEL\u{7f} and NUL\u{0}",
            ],
        );
        format!("\"{body}\"")
    }

    /// Any value, `depth` levels deep at most: what the identity's open parts may hold.
    fn value(d: &mut Dice, depth: u32) -> String {
        let pick = if depth == 0 { d.below(6) } else { d.below(9) };
        match pick {
            0 | 1 => string(d),
            2 => d
                .either(&["true", "false", "null"], &["nul", "True", "truex"])
                .to_owned(),
            3 => d
                .either(&["0", "-1", "2.5", "7"], &["1e400", "01", "-"])
                .to_owned(),
            4 => d
                .either(&["{}", "[]", "[ ]", "{ }"], &["[,]", "{,}"])
                .to_owned(),
            5 => format!("{{\"org_id\":{}}}", string(d)),
            6 | 7 => {
                let n = d.below(4);
                let members: Vec<String> = (0..n)
                    .map(|_| {
                        format!(
                            "{}{}:{}{}",
                            string(d),
                            space(d),
                            space(d),
                            value(d, depth - 1)
                        )
                    })
                    .collect();
                let sep = d.either(&[",", ", ", " ,"], &[",,"]);
                format!("{{{}{}}}", space(d), members.join(sep))
            }
            _ => {
                let n = d.below(4);
                let items: Vec<String> = (0..n).map(|_| value(d, depth - 1)).collect();
                let sep = d.either(&[",", " , "], &[",,"]);
                format!("[{}]", items.join(sep))
            }
        }
    }

    /// Random identity documents, mostly plain and valid, each damaged or varied in some way
    /// (whitespace, escapes, numbers, duplicates, wrong kinds, truncation, trailing text), each
    /// judged by `serde_json` and the full validator. Whatever the scan accepts must be valid,
    /// with the same captured strings; what it gives up on goes to serde, and the two tiers
    /// together must still never accept an invalid document.
    /// An identity document: valid or not (wrong types, missing or duplicated fields, escapes,
    /// raw control characters, numbers, whitespace of every kind), and one in three damaged
    /// (cut, trailing text, wrapped in an array) when `d.1` is drawn so.
    fn identity_doc(d: &mut Dice) -> String {
        d.1 = d.below(3) == 0;
        let mut fields: Vec<String> = Vec::new();
        let org = match d.below(8) {
            0 => string(d),
            1 => value(d, 1),
            _ => "\"o-1\"".to_owned(),
        };
        if d.below(10) != 0 {
            fields.push(format!("\"org_id\":{org}"));
        }
        let ty = match d.below(8) {
            0 => value(d, 1),
            _ => d.pick(&["\"User\"", "\"System\"", "\"X509\""]).to_owned(),
        };
        if d.below(10) != 0 {
            fields.push(format!("\"type\":{ty}"));
        }
        for _ in 0..d.below(4) {
            let name = d.pick(&[
                "auth_type",
                "internal",
                "user",
                "account_number",
                "x",
                "org_id",
                "type",
                "service_account",
                "org\\u005fid",
            ]);
            fields.push(format!("\"{name}\":{}", value(d, 3)));
        }
        // Shuffle.
        for i in (1..fields.len()).rev() {
            fields.swap(i, d.below(i + 1));
        }
        let sep = |d: &mut Dice| format!("{},{}", space(d), space(d));
        let mut inner = String::new();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                inner.push_str(&sep(d));
            }
            inner.push_str(f);
        }
        let mut text = format!(
            "{}{{{}\"identity\"{}:{}{{{}{}}}{}}}{}",
            space(d),
            space(d),
            space(d),
            space(d),
            space(d),
            inner,
            space(d),
            space(d)
        );
        match if d.1 { d.below(8) } else { 3 } {
            0 => {
                let mut at = d.below(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
            }
            1 => text.push_str(d.pick(&["x", "}", " {}", ",", "\u{0}"])),
            2 => text = format!("[{text}]"),
            _ => {}
        }
        text
    }

    /// The captured `org_id` and `type` are the parsed document's.
    fn assert_captured(found: &Found, v: &Value, text: &str) {
        assert_eq!(
            found.0[0].as_deref(),
            v["identity"]["org_id"].as_str(),
            "{text:?}"
        );
        assert_eq!(
            found.0[1].as_deref(),
            v["identity"]["type"].as_str(),
            "{text:?}"
        );
    }

    #[test]
    fn the_scan_accepts_only_what_the_full_validator_accepts() {
        let (shape, full) = shape();
        let mut d = Dice(0x9e37_79b9_7f4a_7c15, false);
        let (mut plain, mut valid, mut total) = (0, 0, 0);
        for _ in 0..20_000 {
            let text = identity_doc(&mut d);
            let parsed = serde_json::from_str::<Value>(&text).ok();
            let is_valid = parsed.as_ref().is_some_and(|v| full.is_valid(v));
            valid += usize::from(is_valid);
            total += 1;
            if let Some(found) = shape.accept_plain(&text, 2) {
                plain += 1;
                assert!(is_valid, "{text:?} accepted by the scan but invalid");
                assert_captured(&found, parsed.as_ref().unwrap(), &text);
            }
            if shape.accept(&text, 2).is_some() {
                assert!(is_valid, "{text:?} accepted but invalid");
            }
        }
        // The scan is really used: most valid documents here are plain.
        assert!(
            plain * 3 > valid && valid * 10 > total && valid * 10 < total * 9,
            "{plain} accepted by the scan, {valid} valid of {total}"
        );
    }

    /// A template accepts a document only when the full validator does, and captures the same
    /// fields: templates of the plain documents above, against their own values swapped for
    /// strings of every kind (quotes, escapes, control characters, invalid `org_id`s and
    /// `type`s, JSON punctuation), against damage one character wide, and against unrelated
    /// documents.
    #[test]
    fn a_template_accepts_only_what_the_full_validator_accepts() {
        let (shape, full) = shape();
        let mut d = Dice(0x2545_f491_4f6c_dd1d, false);
        let contents = [
            "o-1",
            "tenant-00042",
            "",
            "o 1",
            "User",
            "System",
            "Robot",
            "a\u{e9}\u{1f600}",
            "an organisation name well over sixteen bytes long",
            "}",
            "{",
            "\\u0061",
            "\\\"",
            "\"",
            "a\"b",
            "\",\"x\":\"",
            "\u{1}",
            "\t",
            "\\",
        ];
        let (mut templates, mut swapped, mut accepted) = (0, 0, 0);
        for _ in 0..20_000 {
            let text = identity_doc(&mut d);
            let Some((_, Some(template))) = shape.accept_learning(&text, 2) else {
                continue;
            };
            templates += 1;
            for _ in 0..4 {
                let variant: String = match d.below(4) {
                    0 | 1 => {
                        swapped += 1;
                        let mut out = String::new();
                        let mut at = 0;
                        for slot in &template.slots {
                            out.push_str(&text[at..slot.start]);
                            if d.below(2) == 0 {
                                out.push_str(d.pick(&contents));
                            } else {
                                out.push_str(&text[slot.start..slot.end]);
                            }
                            at = slot.end;
                        }
                        out.push_str(&text[at..]);
                        out
                    }
                    2 => {
                        let mut chars: Vec<char> = text.chars().collect();
                        let at = d.below(chars.len() + 1);
                        let c = d
                            .pick(&["\"", ",", ":", " ", "x", "{", "}", "\\", "0", "\u{e9}"])
                            .chars()
                            .next()
                            .unwrap();
                        match d.below(3) {
                            0 if at < chars.len() => {
                                chars.remove(at);
                            }
                            1 if at < chars.len() => chars[at] = c,
                            _ => chars.insert(at, c),
                        }
                        chars.into_iter().collect()
                    }
                    _ => identity_doc(&mut d),
                };
                let Some(found) = template.accept(&variant, 2) else {
                    continue;
                };
                accepted += 1;
                let parsed = serde_json::from_str::<Value>(&variant).ok();
                assert!(
                    parsed.as_ref().is_some_and(|v| full.is_valid(v)),
                    "{variant:?} accepted by the template of {text:?} but invalid"
                );
                assert_captured(&found, parsed.as_ref().unwrap(), &variant);
            }
        }
        // Templates are made, and documents of their structure with new values pass.
        assert!(
            templates > 1_000 && accepted * 10 > swapped,
            "{templates} templates, {accepted} accepted, {swapped} with values swapped"
        );
    }

    /// A template is made only where every string leaf has a rule, and only from what the plain
    /// scan reads; a document of the same structure with a new value at a leaf is checked by
    /// the leaf's rule.
    #[test]
    fn a_template_checks_new_values_at_the_leaves() {
        let (shape, _) = shape();
        let text = r#"{"identity":{"org_id":"o-1","type":"User","internal":{"org_id":"o-1"}}}"#;
        let (_, template) = shape.accept_learning(text, 2).unwrap();
        let template = template.expect("a plain document makes a template");
        assert_eq!(template.slots.len(), 3);
        let ok = r#"{"identity":{"org_id":"tenant-7","type":"System","internal":{"org_id":"any thing"}}}"#;
        let found = template
            .accept(ok, 2)
            .expect("same structure, valid values");
        assert_eq!(
            found.0.to_vec(),
            vec![Some("tenant-7".to_owned()), Some("System".to_owned())]
        );
        for bad in [
            r#"{"identity":{"org_id":"o 1","type":"User","internal":{"org_id":"o-1"}}}"#,
            r#"{"identity":{"org_id":"o-1","type":"Robot","internal":{"org_id":"o-1"}}}"#,
            r#"{"identity":{"org_id":"o-1","type":"User","internal":{"org_id":"o-1"}}} "#,
            r#"{"identity":{"org_xd":"o-1","type":"User","internal":{"org_id":"o-1"}}}"#,
            r#"{"identity":{"org_id":"o\u002d1","type":"User","internal":{"org_id":"o-1"}}}"#,
        ] {
            assert!(template.accept(bad, 2).is_none(), "{bad}");
        }
        // A document with a number is not plain: no template.
        let number = r#"{"identity":{"org_id":"o-1","type":"User","n":1}}"#;
        assert!(matches!(shape.accept_learning(number, 2), Some((_, None))));
    }

    /// The eight-bytes-at-a-time scan finds the first quote, backslash or control character
    /// wherever it is, against a byte-by-byte search as the oracle: every byte value at every
    /// position of strings up to 40 bytes long, after text of every other kind.
    #[test]
    fn string_end_finds_the_first_stop_in_every_position() {
        let naive = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let fillers: [&[u8]; 3] = [b"a", "\u{e9}".as_bytes(), b"\x7f"];
        for len in 0..40 {
            for filler in fillers {
                let base: Vec<u8> = filler.iter().copied().cycle().take(len).collect();
                assert_eq!(string_end(&base), naive(&base), "{base:?}");
                for at in 0..len {
                    for byte in 0..=255u8 {
                        let mut s = base.clone();
                        s[at] = byte;
                        // A second stop further on must not hide the first.
                        if at + 3 < len {
                            s[at + 3] = b'"';
                        }
                        assert_eq!(string_end(&s), naive(&s), "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_scan_gives_up_on_what_it_does_not_read() {
        let (shape, _) = shape();
        let base = r#"{"identity":{"org_id":"o","type":"User"}}"#;
        assert!(shape.accept_plain(base, 2).is_some());
        let deep = format!(
            r#"{{"identity":{{"org_id":"o","type":"User","x":{}1{}}}}}"#,
            "[".repeat(70),
            "]".repeat(70)
        );
        let too_deep = format!(
            r#"{{"identity":{{"org_id":"o","type":"User","x":{}{}}}}}"#,
            "[".repeat(Plain::MAX_DEPTH),
            "]".repeat(Plain::MAX_DEPTH)
        );
        for text in [
            // Numbers, escapes, a duplicated named property: serde_json's to judge.
            r#"{"identity":{"org_id":"o","type":"User","n":1}}"#,
            r#"{"identity":{"org_id":"\u006f","type":"User"}}"#,
            r#"{"identity":{"org_id":"o","type":"User","type":"User"}}"#,
            deep.as_str(),
            too_deep.as_str(),
        ] {
            assert!(shape.accept_plain(text, 2).is_none(), "{text}");
        }
        // Each of these is valid, and the serde tier accepts it.
        for text in [
            r#"{"identity":{"org_id":"o","type":"User","n":1}}"#,
            r#"{"identity":{"org_id":"\u006f","type":"User"}}"#,
            too_deep.as_str(),
        ] {
            assert!(shape.accept(text, 2).is_some(), "{text}");
        }
    }
}
