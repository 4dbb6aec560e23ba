//! The generators against the official JSON-Schema-Test-Suite (vendored in
//! `tests/data/json-schema-test-suite`, see its VENDORED.md): the README's targets, held in
//! `cargo test`. For every draft: valid values for at least 97 % of the satisfiable schemas,
//! at least 90 % of the constraint-keyword sites broken, and no wrong claim either way (a
//! freshly compiled validator judges every value).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use evkit_testkit::suite::{DRAFTS, Effort, Report, run};

#[test]
fn the_generators_meet_their_targets_on_every_draft_of_the_suite() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/json-schema-test-suite");
    let effort = Effort {
        values: 10,
        attempts: 4,
        ..Effort::default()
    };
    let mut reports = Vec::new();
    for (dir, draft) in DRAFTS {
        let r = run(&suite, dir, *draft, effort).unwrap();
        let problems: Vec<&String> = r.details.iter().filter(|d| d.contains("WRONG")).collect();
        assert_eq!(r.wrong_valid, 0, "{dir}: {problems:#?}");
        assert_eq!(r.wrong_invalid, 0, "{dir}: {problems:#?}");
        assert!(r.schemas > 100, "{dir}: only {} schemas read", r.schemas);
        assert!(
            r.valid_ratio() >= 0.97,
            "{dir}: valid generation {:.3} < 0.97: {:#?}",
            r.valid_ratio(),
            r.details
                .iter()
                .filter(|d| d.contains("refused"))
                .collect::<Vec<_>>()
        );
        assert!(
            r.invalid_ratio() >= 0.90,
            "{dir}: invalid generation {:.3} < 0.90 ({:?})",
            r.invalid_ratio(),
            r.unbroken
        );
        reports.push(r);
    }
    println!("{}", Report::table(&reports));
}
