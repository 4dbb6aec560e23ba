//! Strings: the generic alphabet (with the characters consumers trip on), every format
//! jsonschema asserts, and ECMA-262 patterns through proptest's regex strategies.

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Just, Strategy};
use regex_syntax::hir::{Hir, HirKind, Look};

/// Every format jsonschema asserts (with `should_validate_formats(true)`), and so every format
/// the generators build strings for. A format outside this list is not asserted, so any string
/// satisfies it.
pub use evkit_schema::lint::FORMATS;

/// Characters of generated free text: mostly ASCII letters, with digits, spaces, non-ASCII
/// letters, an astral-plane emoji and characters JSON must escape, so consumers meet what the
/// JSON text allows.
fn text_char() -> BoxedStrategy<char> {
    // One `select` over a weighted alphabet: a draw is an index, not a union of strategies.
    static ALPHABET: std::sync::LazyLock<Vec<char>> = std::sync::LazyLock::new(|| {
        let mut a = Vec::new();
        for _ in 0..2 {
            a.extend('a'..='z');
        }
        a.extend('A'..='Z');
        a.extend('0'..='9');
        a.extend([' ', ' ', ' ', ' ']);
        a.extend(['é', 'ß', 'ñ', 'Ω', '日', '本', '😀', '𝄞']);
        a.extend(['"', '\\', '\n', '\t', '/', '\u{1}', '\u{7f}', '\u{2028}']);
        a
    });
    proptest::sample::select(ALPHABET.as_slice()).boxed()
}

/// Free text of `min..=max` characters (code points, as JSON Schema counts them).
pub fn free_text(min: usize, max: usize) -> BoxedStrategy<String> {
    proptest::collection::vec(text_char(), min..=max.max(min))
        .prop_map(|cs| cs.into_iter().collect())
        .boxed()
}

/// Object keys: short lower-case names mostly, sometimes text with escapes or non-ASCII.
pub fn key() -> BoxedStrategy<String> {
    prop_oneof![
        6 => re("[a-z][a-z0-9_]{0,7}"),
        1 => free_text(0, 6),
    ]
    .boxed()
}

/// A strategy for strings of `format`; `None` for a format jsonschema does not assert.
pub fn format(format: &str) -> Option<BoxedStrategy<String>> {
    let s: BoxedStrategy<String> = match format {
        "uuid" => any::<u128>()
            .prop_map(|n| uuid::Uuid::from_u128(n).to_string())
            .boxed(),
        "date-time" => (date(), time())
            .prop_map(|(d, t)| format!("{d}T{t}"))
            .boxed(),
        "date" => date(),
        "time" => time(),
        "duration" => prop_oneof![
            re("P[1-9][0-9]{0,2}D"),
            re("P[1-9][0-9]?Y([1-9]M([1-9]D)?)?(T[1-9]H([1-9]M([1-9]S)?)?)?"),
            re("PT[1-9][0-9]{0,2}[HMS]"),
            re("P[1-9]W"),
        ]
        .boxed(),
        "email" => re("[a-z][a-z0-9]{0,8}(\\.[a-z0-9]{1,6}){0,2}@[a-z]{1,10}\\.(com|org|example)"),
        "idn-email" => prop_oneof![
            re("[a-z][a-z0-9]{0,8}@[a-z]{1,10}\\.(com|org|example)"),
            re("(żółw|δοκιμή|実例)@(example|例え)\\.(com|jp)"),
        ]
        .boxed(),
        "hostname" => hostname(),
        "idn-hostname" => prop_oneof![
            hostname(),
            re("(münchen|δοκιμή|実例|例え)(\\.[a-z]{2,6}){0,2}"),
        ]
        .boxed(),
        "ipv4" => any::<[u8; 4]>()
            .prop_map(|b| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]))
            .boxed(),
        "ipv6" => prop_oneof![
            any::<[u16; 8]>().prop_map(|w| {
                w.iter()
                    .map(|x| format!("{x:x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            }),
            any::<u128>().prop_map(|n| std::net::Ipv6Addr::from(n).to_string()),
            Just("::1".to_owned()),
        ]
        .boxed(),
        "uri" => re(
            "(https|http|urn|mailto|ftp):(//)?[a-z]{1,10}\\.example(/[a-z0-9_~.-]{1,8}){0,2}(\\?[a-z]{1,4}=[a-z0-9]{1,4})?(#[a-z]{0,4})?",
        ),
        "iri" => prop_oneof![
            re("https://[a-z]{1,10}\\.example(/[a-z0-9]{1,8}){0,3}"),
            re("https://(ñandú|δοκιμή|例え)\\.example/(ü|é|日本){1,3}"),
        ]
        .boxed(),
        "uri-reference" => prop_oneof![
            re("https://[a-z]{1,10}\\.example(/[a-z0-9]{1,8}){0,3}"),
            re("(/[a-z0-9]{1,8}){0,3}(#[a-z]{0,4})?"),
            re("[a-z]{1,8}(/[a-z0-9]{1,8}){0,2}"),
        ]
        .boxed(),
        "iri-reference" => prop_oneof![
            re("https://[a-z]{1,10}\\.example(/[a-z0-9]{1,8}){0,3}"),
            re("(/(ü|é|日本|[a-z]){1,6}){0,3}"),
        ]
        .boxed(),
        "uri-template" => re("https://[a-z]{1,8}\\.example(/[a-z]{1,6}|/\\{[a-z]{1,6}\\}){0,3}"),
        "json-pointer" => re("(/([a-z0-9 ]|~0|~1){0,6}){0,4}"),
        "relative-json-pointer" => re("(0|[1-9][0-9]?)((/([a-z0-9]|~0|~1){0,6}){0,3}|#)"),
        "regex" => prop_oneof![
            re("\\^?[a-z]{1,6}(\\[a-z\\]\\+|\\.\\*|[0-9])?\\$?"),
            Just("^\\d{3}-\\w+$".to_owned()),
            Just("(a|b)*c".to_owned()),
        ]
        .boxed(),
        _ => return None,
    };
    Some(s)
}

fn date() -> BoxedStrategy<String> {
    (1i32..=9999, 1u32..=12, 1u32..=28)
        .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
        .boxed()
}

fn time() -> BoxedStrategy<String> {
    (
        0u32..24,
        0u32..60,
        0u32..60,
        proptest::option::of(0u32..1000),
        prop_oneof![
            Just("Z".to_owned()),
            (0u32..=14, 0u32..60, any::<bool>())
                .prop_map(|(h, m, neg)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })),
        ],
    )
        .prop_map(|(h, m, s, frac, tz)| {
            let frac = frac.map(|f| format!(".{f:03}")).unwrap_or_default();
            format!("{h:02}:{m:02}:{s:02}{frac}{tz}")
        })
        .boxed()
}

fn hostname() -> BoxedStrategy<String> {
    // Labels built from index draws rather than a regex (regex strategies draw a boxed tree per
    // character): a letter, up to six letters or digits, and an optional `-` part.
    const LETTERS: &[char] = &[
        'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r',
        's', 't', 'u', 'v', 'w', 'x', 'y', 'z',
    ];
    const ALNUM: &[char] = &[
        'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r',
        's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
    ];
    let label = (
        proptest::sample::select(LETTERS),
        proptest::collection::vec(proptest::sample::select(ALNUM), 0..=6),
        proptest::option::of(proptest::collection::vec(
            proptest::sample::select(ALNUM),
            1..=4,
        )),
    )
        .prop_map(|(first, rest, dash)| {
            let mut l = String::with_capacity(12);
            l.push(first);
            l.extend(rest);
            if let Some(d) = dash {
                l.push('-');
                l.extend(d);
            }
            l
        });
    proptest::collection::vec(label, 1..=4)
        .prop_map(|labels| labels.join("."))
        .boxed()
}

/// A compiled regex strategy. (A `&str` used as a strategy parses its regex on every draw,
/// which dominated generation time; these literals are held to their formats by a test.)
pub(crate) fn re(pattern: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(pattern)
        .map_or_else(|_| Just(String::new()).boxed(), Strategy::boxed)
}

/// A strategy for strings that match `pattern` (ECMA-262, unanchored), when proptest's regex
/// strategies can read it. The strings contain a whole match; where the pattern is not
/// anchored at an end, one in four has other text on that side too, since that is what a
/// search accepts (`[a-z]` accepts `"1a!"`) and what a consumer that reads the pattern as a
/// whole-string rule gets wrong.
pub fn pattern(pattern: &str) -> Option<BoxedStrategy<String>> {
    let hir = regex_syntax::Parser::new()
        .parse(&ecma_to_rust(pattern))
        .ok()?;
    let props = hir.properties();
    let (start, end) = (
        props.look_set_prefix().contains(Look::Start),
        props.look_set_suffix().contains(Look::End),
    );
    let whole = proptest::string::string_regex_parsed(&without_anchors(hir)).ok()?;
    if start && end {
        return Some(whole.boxed());
    }
    let around = |anchored: bool| {
        if anchored {
            Just(String::new()).boxed()
        } else {
            prop_oneof![3 => Just(String::new()), 1 => free_text(1, 3)].boxed()
        }
    };
    Some(
        (around(start), whole, around(end))
            .prop_map(|(before, matched, after)| before + &matched + &after)
            .boxed(),
    )
}

/// proptest generates strings the regex matches whole, and reads no look-around: `^` and `$`
/// become empty wherever they are (`^a$|^b$` included). Where they stood at the ends of the
/// match, the whole string still matches; elsewhere (`a^b` matches nothing) the value filter
/// catches what comes out.
fn without_anchors(hir: Hir) -> Hir {
    match hir.into_kind() {
        HirKind::Look(Look::Start | Look::End) | HirKind::Empty => Hir::empty(),
        HirKind::Look(look) => Hir::look(look),
        HirKind::Literal(lit) => Hir::literal(lit.0),
        HirKind::Class(class) => Hir::class(class),
        HirKind::Repetition(mut rep) => {
            rep.sub = Box::new(without_anchors(*rep.sub));
            Hir::repetition(rep)
        }
        HirKind::Capture(mut cap) => {
            cap.sub = Box::new(without_anchors(*cap.sub));
            Hir::capture(cap)
        }
        HirKind::Concat(parts) => Hir::concat(parts.into_iter().map(without_anchors).collect()),
        HirKind::Alternation(branches) => {
            Hir::alternation(branches.into_iter().map(without_anchors).collect())
        }
    }
}

/// ECMA-262's `\d`, `\w` and `\s` are ASCII classes (and `\s` a fixed list); Rust's regex
/// reads the first two as Unicode classes. ECMA-262's `.` matches no line terminator (`\n`,
/// `\r`, U+2028, U+2029); Rust's only excludes `\n`. Translate them so generated text stays
/// inside what the validator's ECMA semantics accept.
fn ecma_to_rust(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut chars = p.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        if c != '\\' {
            match c {
                '[' => in_class = true,
                ']' => in_class = false,
                _ => {}
            }
            if c == '.' && !in_class {
                out.push_str("[^\\n\\r\\u{2028}\\u{2029}]");
            } else {
                out.push(c);
            }
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[A-Za-z0-9_]"),
            Some('W') => out.push_str("[^A-Za-z0-9_]"),
            Some('s') => out.push_str("[ \\t\\n]"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use serde_json::json;

    use super::*;

    /// Every format strategy produces strings jsonschema's own format check accepts (the
    /// generators' filter would catch the others, but a strategy that needs it is a bug).
    #[test]
    fn every_format_strategy_satisfies_jsonschemas_format_check() {
        let mut runner = TestRunner::deterministic();
        for f in FORMATS {
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&json!({"format": f}))
                .unwrap();
            let strategy = format(f).unwrap();
            let mut rejected = Vec::new();
            for _ in 0..200 {
                let s = strategy.new_tree(&mut runner).unwrap().current();
                // Under 64 characters: the generators skip a format-only node's own filter
                // when its maxLength is at least 64.
                if !validator.is_valid(&json!(s)) || s.chars().count() >= 64 {
                    rejected.push(s);
                }
            }
            assert!(rejected.is_empty(), "format {f}: {rejected:?}");
        }
    }

    /// Anchors anywhere a match can start or end (each branch of an alternation, inside a
    /// group) are read, and every drawn string is one jsonschema's `pattern` accepts.
    #[test]
    fn patterns_anchored_in_each_branch_are_generated() {
        let mut runner = TestRunner::deterministic();
        for p in [
            "^[a-z]{1,4}$|^x+$",
            "^(ab|cd)$",
            "(^a$)|(^b+$)",
            "^[0-9a-f]{32}$",
            "^.$",
            "[a-z]{2}",
            "^[a-z]",
            "[0-9]$",
        ] {
            let judge = jsonschema::validator_for(&json!({ "pattern": p })).unwrap();
            let strategy = pattern(p);
            assert!(strategy.is_some(), "{p}: not generated");
            let strategy = strategy.unwrap();
            for _ in 0..200 {
                let s = strategy.new_tree(&mut runner).unwrap().current();
                assert!(judge.is_valid(&json!(s)), "{p}: drew {s:?}");
            }
        }
    }

    /// An unanchored pattern is a search: text around the match is drawn too, on the open
    /// sides only.
    #[test]
    fn unanchored_patterns_get_text_around_the_match() {
        let mut runner = TestRunner::deterministic();
        let draw = |p: &str, runner: &mut TestRunner| -> Vec<String> {
            let strategy = pattern(p).unwrap();
            (0..200)
                .map(|_| strategy.new_tree(runner).unwrap().current())
                .collect()
        };
        let open = draw("[a-z]", &mut runner);
        assert!(open.iter().any(|s| s.chars().count() > 1), "{open:?}");
        assert!(open.iter().any(|s| s.chars().count() == 1), "{open:?}");
        let left = draw("^[a-z]", &mut runner);
        assert!(
            left.iter()
                .all(|s| s.starts_with(|c: char| c.is_ascii_lowercase()))
        );
        assert!(left.iter().any(|s| s.chars().count() > 1), "{left:?}");
        let closed = draw("^[a-z]$", &mut runner);
        assert!(closed.iter().all(|s| s.chars().count() == 1), "{closed:?}");
    }

    /// The pattern-inclusion proof the gate uses (`evkit_schema::pattern::accepts_all_of`),
    /// judged by jsonschema on every pair of a pool of patterns: where it says the wide one
    /// accepts all the narrow one does, no string drawn from the narrow one is refused by the
    /// wide one's validator; where it says not, one drawn is.
    #[test]
    fn pattern_inclusion_agrees_with_jsonschema() {
        let pool = [
            "^[a-z]+$",
            "^[a-z0-9]+$",
            "[a-z]",
            "^[a-z]{1,3}$",
            "^[a-z]+$|^x{30}$",
            "^(ab|cd)$",
            "^.{2}$",
            "^[0-9]{2,4}$",
            "[0-9]$",
            "^a",
            "",
        ];
        let mut runner = TestRunner::deterministic();
        let (mut proven, mut refuted) = (0, 0);
        for narrow in pool {
            let strategy = pattern(narrow).unwrap();
            let drawn: Vec<String> = (0..400)
                .map(|_| strategy.new_tree(&mut runner).unwrap().current())
                .collect();
            for wide in pool {
                let judge = jsonschema::validator_for(&json!({ "pattern": wide })).unwrap();
                let outside = drawn.iter().find(|s| !judge.is_valid(&json!(s)));
                let verdict = evkit_schema::pattern::accepts_all_of(wide, narrow);
                assert!(verdict.is_some(), "{wide} ⊇ {narrow}: undecided");
                if verdict == Some(true) {
                    proven += 1;
                    assert!(
                        outside.is_none(),
                        "{wide} ⊇ {narrow}, but refuses {outside:?}"
                    );
                } else {
                    refuted += 1;
                    assert!(
                        outside.is_some(),
                        "{wide} ⊉ {narrow}, but refuses none drawn"
                    );
                }
            }
        }
        assert!(
            proven > 20 && refuted > 20,
            "{proven} proven, {refuted} refuted"
        );
    }

    #[test]
    fn ecma_classes_are_ascii() {
        assert_eq!(ecma_to_rust(r"^\d+\w$"), "^[0-9]+[A-Za-z0-9_]$");
        assert_eq!(ecma_to_rust(r"a\.b\\d"), r"a\.b\\d");
        assert_eq!(ecma_to_rust("^.[.]$"), r"^[^\n\r\u{2028}\u{2029}][.]$");
    }

    /// Judged by jsonschema: strings drawn from each pattern (the generators' own strategy)
    /// pass the pattern with the lengths it implies as `minLength`/`maxLength`, and the
    /// shortest and longest lengths are drawn (the bounds are tight, not merely safe).
    #[test]
    fn implied_lengths_hold_for_strings_the_pattern_accepts() {
        use proptest::strategy::{Strategy as _, ValueTree as _};
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        for p in [
            "^[0-9a-f]{32}$",
            "^[a-z]{1,4}$",
            "^(ab|c)d?$",
            r"^\d{3}-\d{4}$",
            "^é{4}$",
            "^.{2,3}$",
            "^[A-Z][a-z]{0,2}(-[0-9]{2})?$",
            "^(x|yy|zzz){2}$",
        ] {
            let (lo, hi) = evkit_schema::pattern::lengths(p).unwrap();
            let hi = hi.unwrap();
            let schema = serde_json::json!({"pattern": p, "minLength": lo, "maxLength": hi});
            let judge = jsonschema::validator_for(&schema).unwrap();
            let plain = jsonschema::validator_for(&serde_json::json!({"pattern": p})).unwrap();
            let strategy = pattern(p).unwrap();
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..500 {
                let s = strategy.new_tree(&mut runner).unwrap().current();
                let v = serde_json::json!(s);
                assert!(plain.is_valid(&v), "{p}: drew {s:?}");
                assert!(judge.is_valid(&v), "{p}: {s:?} is outside {lo}..={hi}");
                seen.insert(s.chars().count());
            }
            assert_eq!(
                (seen.first().copied(), seen.last().copied()),
                (Some(lo), Some(hi)),
                "{p}"
            );
        }
    }
}
