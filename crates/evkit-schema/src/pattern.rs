//! What an ECMA-262 `pattern` implies about the strings it accepts, read as jsonschema reads
//! it (its own ECMA-to-Rust translation, parsed by `regex-syntax`). `evkit lint` uses it to
//! find a pattern no length bound beside it lets through; the schema gate, to prove a length
//! bound harmless that the pattern already enforces, and a pattern change harmless in a
//! direction where one pattern accepts every string the other does; the generators, to leave
//! out a string that cannot exist.

use std::collections::{HashSet, VecDeque};

use regex_automata::dfa::{Automaton as _, StartKind, dense};
use regex_automata::{Anchored, MatchKind, util::start};
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// How many pairs of states [`accepts_all_of`] visits before it gives up.
const MAX_PAIRS: usize = 100_000;

/// Whether `wide` accepts every string `narrow` accepts, both ECMA-262 patterns read as
/// jsonschema reads them (a search: `[a-z]` accepts `"1a"`; the empty pattern accepts every
/// string). Decided exactly, on a product of the two patterns' DFAs (`regex-automata`, over
/// UTF-8 bytes): `Some(false)` when a string `narrow` accepts reaches a state `wide` does not
/// accept in. `None` when either pattern cannot be read or made a DFA (lookarounds,
/// back-references, Unicode word boundaries), or the product grows past its budget.
pub fn accepts_all_of(wide: &str, narrow: &str) -> Option<bool> {
    accepts_all_of_within(wide, narrow, 0, None)
}

/// [`accepts_all_of`] for the strings `narrow` accepts that are `min..=max` characters long (the
/// `minLength`/`maxLength` beside it): `^[a-z]{1,20}$` accepts every string that `^[a-z]+$`
/// with `maxLength: 20` does. Lengths are counted in characters as the bytes go by.
pub fn accepts_all_of_within(
    wide: &str,
    narrow: &str,
    min: usize,
    max: Option<usize>,
) -> Option<bool> {
    let build = |pattern: &str| {
        let translated = jsonschema_regex::to_rust_regex(pattern).ok()?;
        dense::Builder::new()
            .configure(
                dense::Config::new()
                    .match_kind(MatchKind::All)
                    .start_kind(StartKind::Anchored)
                    .dfa_size_limit(Some(1 << 23))
                    .determinize_size_limit(Some(1 << 23)),
            )
            // A search: any text before and after the match.
            .build(&format!("(?s:.*)(?:{translated})(?s:.*)"))
            .ok()
    };
    let (n, w) = (build(narrow)?, build(wide)?);
    let anchored = start::Config::new().anchored(Anchored::Yes);
    // Characters read so far, counted up to `cap` (past `max` a path is over; with no `max`,
    // at least `min` is all that matters).
    let cap = max.map_or(min, |m| m.saturating_add(1));
    let first = (
        n.start_state(&anchored).ok()?,
        w.start_state(&anchored).ok()?,
        0,
    );
    let mut seen = HashSet::from([first]);
    let mut queue = VecDeque::from([first]);
    while let Some((a, b, read)) = queue.pop_front() {
        // The input ends here: `narrow` matches, the length fits, and `wide` does not match.
        if read >= min
            && max.is_none_or(|m| read <= m)
            && n.is_match_state(n.next_eoi_state(a))
            && !w.is_match_state(w.next_eoi_state(b))
        {
            return Some(false);
        }
        for byte in 0..=u8::MAX {
            // A byte that is not a UTF-8 continuation starts a character.
            let read = if byte & 0xC0 == 0x80 {
                read
            } else {
                (read + 1).min(cap)
            };
            if max.is_some_and(|m| read > m) {
                continue;
            }
            let next = (n.next_state(a, byte), w.next_state(b, byte), read);
            // Nothing `narrow` accepts starts so (invalid UTF-8 included).
            if n.is_dead_state(next.0) {
                continue;
            }
            if n.is_quit_state(next.0) || w.is_quit_state(next.1) {
                return None;
            }
            if seen.insert(next) {
                if seen.len() > MAX_PAIRS {
                    return None;
                }
                queue.push_back(next);
            }
        }
    }
    Some(true)
}

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

    #[test]
    fn patterns_compare_as_languages() {
        for (wide, narrow, want) in [
            ("^[a-z0-9]+$", "^[a-z]+$", Some(true)),
            ("^[a-z]+$", "^[a-z0-9]+$", Some(false)),
            // A search accepts text around the match.
            ("[a-z]", "^[a-z]+$", Some(true)),
            ("^[a-z]+$", "[a-z]", Some(false)),
            // The same language, written two ways.
            ("^[a-z]+$", "^[a-z]+$|^x{30}$", Some(true)),
            ("^[a-z]+$|^x{30}$", "^[a-z]+$", Some(true)),
            ("^(ab|cd)$", "^(?:cd|ab)$", Some(true)),
            // The empty pattern accepts every string; `.` no line terminator.
            ("", "^[a-z]{3}$", Some(true)),
            ("^[a-z]{3}$", "", Some(false)),
            ("", "^.*$", Some(true)),
            ("^.*$", "", Some(false)),
            ("^[\\s\\S]*$", "", Some(true)),
            // Characters, not bytes.
            ("^.{2}$", "^é{2}$", Some(true)),
            ("^[a-z]{1,20}$", "^[a-z]+$", Some(false)),
            // Unreadable: back-references.
            ("^(a)\\1$", "^aa$", None),
        ] {
            assert_eq!(accepts_all_of(wide, narrow), want, "{wide} ⊇ {narrow}");
        }
        // With the narrow side's length bounds.
        for (wide, narrow, min, max, want) in [
            ("^[a-z]{1,20}$", "^[a-z]+$", 0, Some(20), true),
            ("^[a-z]{1,20}$", "^[a-z]+$", 0, Some(21), false),
            ("^.{1,20}$", "^[a-z]+$", 1, Some(20), true),
            ("^[a-z]{3,}$", "^[a-z]+$", 3, None, true),
            ("^[a-z]{3,}$", "^[a-z]+$", 2, None, false),
            // Characters, not bytes: four two-byte characters are four.
            ("^.{0,4}$", "^é*$", 0, Some(4), true),
            ("^.{0,3}$", "^é*$", 0, Some(4), false),
        ] {
            assert_eq!(
                accepts_all_of_within(wide, narrow, min, max),
                Some(want),
                "{wide} ⊇ {narrow} within {min}..={max:?}"
            );
        }
    }
}
