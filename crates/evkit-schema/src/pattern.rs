//! What an ECMA-262 `pattern` implies about the strings it accepts, read as jsonschema reads
//! it (its own ECMA-to-Rust translation, parsed by `regex-syntax`). `evkit lint` uses it to
//! find a pattern no length bound beside it lets through; the schema gate, to prove a length
//! bound harmless that the pattern already enforces; the generators, to leave out a string
//! that cannot exist.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// The lengths, in characters (what `minLength` and `maxLength` count: Unicode code points), of
/// the strings an ECMA-262 `pattern` accepts, read as jsonschema reads it (its own ECMA-to-Rust
/// translation). `Some((min, max))` only for a pattern anchored at both ends on every path
/// (`^…$`), so that a match is the whole string; `max` is `None` when unbounded. `None` for an
/// unanchored pattern (a search: any text may surround the match), one that matches nothing,
/// or one the translation or the parser cannot read (lookarounds, back-references).
pub fn lengths(pattern: &str) -> Option<(usize, Option<usize>)> {
    let translated = jsonschema_regex::to_rust_regex(pattern).ok()?;
    let hir = regex_syntax::Parser::new().parse(&translated).ok()?;
    let props = hir.properties();
    if !props.look_set_prefix().contains(Look::Start)
        || !props.look_set_suffix().contains(Look::End)
    {
        return None;
    }
    chars(&hir)
}

/// Fewest and most characters `hir` can match (`None` when it can match nothing, or matches
/// bytes rather than characters); a `None` maximum is unbounded.
fn chars(hir: &Hir) -> Option<(usize, Option<usize>)> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Some((0, Some(0))),
        HirKind::Literal(lit) => {
            let n = std::str::from_utf8(&lit.0).ok()?.chars().count();
            Some((n, Some(n)))
        }
        HirKind::Class(Class::Unicode(c)) => (!c.ranges().is_empty()).then_some((1, Some(1))),
        HirKind::Class(Class::Bytes(_)) => None,
        HirKind::Capture(c) => chars(&c.sub),
        HirKind::Repetition(r) => {
            let (lo, hi) = chars(&r.sub)?;
            let times = |n: usize, k: u32| n.checked_mul(usize::try_from(k).ok()?);
            let hi = match (hi, r.max) {
                (Some(0), _) => Some(0),
                (Some(h), Some(m)) => Some(times(h, m)?),
                _ => None,
            };
            Some((times(lo, r.min)?, hi))
        }
        HirKind::Concat(parts) => parts
            .iter()
            .try_fold((0usize, Some(0usize)), |(lo, hi), p| {
                let (plo, phi) = chars(p)?;
                Some((
                    lo.checked_add(plo)?,
                    hi.zip(phi).and_then(|(a, b)| a.checked_add(b)),
                ))
            }),
        HirKind::Alternation(branches) => {
            // Branches that match nothing do not count.
            let spans: Vec<_> = branches.iter().filter_map(chars).collect();
            let lo = spans.iter().map(|s| s.0).min()?;
            let hi = spans
                .iter()
                .try_fold(0, |m: usize, s| s.1.map(|h| m.max(h)));
            Some((lo, hi))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn anchored_patterns_have_lengths() {
        for (p, want) in [
            ("^[0-9a-f]{32}$", Some((32, Some(32)))),
            ("^[a-z]{1,4}$", Some((1, Some(4)))),
            ("^[a-z]+$", Some((1, None))),
            ("^(ab|c)d?$", Some((1, Some(3)))),
            ("^ab$|^c$", Some((1, Some(2)))),
            (r"^\d{3}-\d{4}$", Some((8, Some(8)))),
            // Characters, not bytes: `é` is two bytes in UTF-8, one character.
            ("^é{4}$", Some((4, Some(4)))),
            ("^.{2,3}$", Some((2, Some(3)))),
            ("^$", Some((0, Some(0)))),
            // Unanchored on some path, or a search: any length.
            ("[0-9a-f]{32}", None),
            ("^[a-z]{4}", None),
            ("[a-z]{4}$", None),
            ("^ab$|c", None),
            ("^(a$)?", None),
            // Lookarounds and back-references: unread.
            ("^(?=a)[a-z]{2}$", None),
            (r"^(a)\1$", None),
        ] {
            assert_eq!(lengths(p), want, "{p}");
        }
    }
}
