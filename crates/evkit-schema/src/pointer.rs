//! JSON Pointers (RFC 6901), written one way for the whole project: violations' instance and
//! schema paths, generators' rules, lint findings and the gate all build theirs here.

use std::borrow::Cow;
use std::fmt;

/// One reference token, escaped: `~` as `~0`, `/` as `~1`.
pub fn escape(segment: &str) -> Cow<'_, str> {
    if segment.contains(['~', '/']) {
        Cow::Owned(segment.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(segment)
    }
}

/// One reference token, unescaped (`~1` before `~0`, as RFC 6901 says).
pub fn unescape(segment: &str) -> Cow<'_, str> {
    if segment.contains('~') {
        Cow::Owned(segment.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(segment)
    }
}

/// A JSON Pointer, built segment by segment; `Display` writes it escaped (`""` is the root).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pointer(String);

impl Pointer {
    /// The root (`""`).
    pub fn root() -> Self {
        Pointer(String::new())
    }

    /// Reads an escaped pointer as written (`/a~1b/0`).
    pub fn parse(escaped: &str) -> Self {
        Pointer(escaped.to_owned())
    }

    /// This pointer with one more segment (a property name or an index), escaped.
    #[must_use]
    pub fn join(&self, segment: impl fmt::Display) -> Self {
        let segment = segment.to_string();
        Pointer(format!("{}/{}", self.0, escape(&segment)))
    }

    /// The escaped text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments, unescaped.
    pub fn segments(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.0.split('/').skip(1).map(unescape)
    }

    /// `true` for the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Pointer> for String {
    fn from(p: Pointer) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_name_with_a_slash_or_tilde_round_trips_and_resolves() {
        let p = Pointer::root().join("a/b").join("c~d").join(0);
        assert_eq!(p.as_str(), "/a~1b/c~0d/0");
        assert_eq!(p.segments().collect::<Vec<_>>(), vec!["a/b", "c~d", "0"]);
        let doc = json!({"a/b": {"c~d": ["x"]}});
        assert_eq!(doc.pointer(p.as_str()), Some(&json!("x")));
        assert_eq!(unescape("~01"), "~1", "~0 is unescaped last");
        assert!(Pointer::root().is_root());
    }
}
