//! The schema gate on the sample catalog: an unchanged catalog passes; each kind of breaking
//! change is found, named by topic and rule id, with a witness message; a change that breaks
//! only one direction passes in the other mode; contracts are held against the change; intended
//! breaks pass with an allowance until it expires. Every catalog rule id has a test here (the
//! schema rule ids are in `gate_rules.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use evkit_schema::Catalog;
use evkit_testkit::gate::{Allowance, Direction, Finding, Mode, Options, Report, gate};
use serde_json::{Value, json};

const TODO: &str = "platform.evkit.todo-created";

fn repo(dir: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(dir)
}

/// A copy of the sample catalog to change.
fn copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo("schemas")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

fn edit_schema(dir: &Path, topic: &str, change: impl FnOnce(&mut Value)) {
    let path = dir.join(format!("{topic}.event.json"));
    let mut schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    change(&mut schema);
    std::fs::write(&path, serde_json::to_vec_pretty(&schema).unwrap()).unwrap();
}

fn edit_topics(dir: &Path, from: &str, to: &str) {
    let path = dir.join("topics.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "topics.yaml has no `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

fn run(next: &Path, mode: Mode, contracts: Option<&Path>) -> Report {
    run_with(next, mode, contracts, Vec::new(), "2026-11-29")
}

fn run_with(
    next: &Path,
    mode: Mode,
    contracts: Option<&Path>,
    allowed: Vec<Allowance>,
    today: &str,
) -> Report {
    let base = Catalog::load(repo("schemas")).unwrap();
    let next = Catalog::load(next).unwrap();
    let opts = Options {
        mode,
        cases: 64,
        seed: 7,
        allowed,
        today: today.parse().unwrap(),
    };
    gate(&base, &next, contracts, &opts).unwrap()
}

/// The blocking finding with rule `rule` on `topic`.
fn finding<'r>(report: &'r Report, topic: &str, rule: &str) -> &'r Finding {
    report
        .findings
        .iter()
        .find(|f| f.topic == topic && f.rule == rule)
        .unwrap_or_else(|| panic!("no {rule} on {topic}: {:#?}", report.findings))
}

/// (topic, rule) of every blocking finding.
fn found(report: &Report) -> Vec<(String, String)> {
    report
        .blocking()
        .map(|f| (f.topic.clone(), f.rule.clone()))
        .collect()
}

#[test]
fn an_unchanged_catalog_is_compatible() {
    let dir = copy();
    let report = run(dir.path(), Mode::Full, Some(&repo("contracts")));
    assert!(report.compatible(), "{:?}", report.findings);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.checked.len(), 4);
    assert!(report.checked.iter().all(|(_, n)| *n == 128), "{report:?}");
}

#[test]
fn a_field_made_required_breaks_backward_only() {
    let dir = copy();
    edit_schema(dir.path(), TODO, |s| {
        s["required"].as_array_mut().unwrap().push(json!("due"));
    });
    let report = run(dir.path(), Mode::Full, None);
    assert_eq!(
        found(&report),
        [(TODO.to_owned(), "required-added".to_owned())]
    );
    let f = finding(&report, TODO, "required-added");
    assert_eq!(
        (f.direction, f.pointer.as_str()),
        (Direction::Backward, "/required")
    );
    assert!(f.detail.contains("due"), "{}", f.detail);
    // The witness: a todo without `due`, which the deployed schema accepts.
    let w = &f.witnesses[0];
    let todo: Value = serde_json::from_str(&w.value).unwrap();
    assert!(todo.get("due").is_none(), "{todo}");
    assert!(w.refused.contains("required"), "{}", w.refused);
    // Deployed consumers still accept what the change produces.
    assert!(run(dir.path(), Mode::Forward, None).compatible());
}

#[test]
fn a_new_field_on_a_closed_schema_breaks_forward_only() {
    let dir = copy();
    edit_schema(dir.path(), TODO, |s| {
        s["properties"]["assignee"] = json!({"type": "string", "minLength": 1, "maxLength": 64});
    });
    let report = run(dir.path(), Mode::Full, None);
    assert_eq!(
        found(&report),
        [(TODO.to_owned(), "property-added-closed".to_owned())]
    );
    let f = finding(&report, TODO, "property-added-closed");
    assert_eq!(f.pointer, "/properties/assignee");
    let w = &f.witnesses[0];
    assert_eq!(w.direction, Direction::Forward);
    assert!(w.value.contains("assignee"), "{}", w.value);
    assert!(run(dir.path(), Mode::Backward, None).compatible());
}

#[test]
fn a_narrowed_bound_is_found_with_a_witness() {
    let dir = copy();
    edit_schema(dir.path(), TODO, |s| {
        s["properties"]["title"]["maxLength"] = json!(4);
    });
    let report = run(dir.path(), Mode::Backward, None);
    assert_eq!(
        found(&report),
        [(TODO.to_owned(), "bound-tightened".to_owned())]
    );
    let f = finding(&report, TODO, "bound-tightened");
    assert_eq!(f.pointer, "/properties/title/maxLength");
    let todo: Value = serde_json::from_str(&f.witnesses[0].value).unwrap();
    assert!(
        todo["title"].as_str().unwrap().chars().count() > 4,
        "{todo}"
    );
}

/// Bounds and constants past 2^53 are compared as the integers they are, not as doubles: a
/// maximum lowered by one at 2^53 − 1, and a `const` moved by one past 2^53, are named for
/// what they are, with the number as the schema writes it.
#[test]
fn integer_bounds_past_what_a_double_holds_are_compared_exactly() {
    let dir = copy();
    edit_schema(dir.path(), TODO, |s| {
        s["properties"]["id"]["maximum"] = json!(9_007_199_254_740_990_u64);
    });
    let report = run(dir.path(), Mode::Backward, None);
    assert_eq!(
        found(&report),
        [(TODO.to_owned(), "bound-tightened".to_owned())],
        "{:#?}",
        report.findings
    );
    let f = finding(&report, TODO, "bound-tightened");
    assert_eq!(f.pointer, "/properties/id/maximum");
    assert!(
        f.detail.contains("9007199254740991 → 9007199254740990"),
        "{}",
        f.detail
    );
    // Two constants a double cannot tell apart.
    let (old, new) = (copy(), copy());
    for (dir, n) in [
        (&old, 9_007_199_254_740_993_u64),
        (&new, 9_007_199_254_740_992),
    ] {
        edit_schema(dir.path(), TODO, |s| {
            let id = s["properties"]["id"].as_object_mut().unwrap();
            id.remove("maximum");
            id.insert("const".to_owned(), json!(n));
        });
    }
    let opts = Options {
        mode: Mode::Full,
        cases: 64,
        seed: 7,
        allowed: Vec::new(),
        today: "2026-11-29".parse().unwrap(),
    };
    let (base, next) = (
        Catalog::load(old.path()).unwrap(),
        Catalog::load(new.path()).unwrap(),
    );
    let report = gate(&base, &next, None, &opts).unwrap();
    let rules: Vec<_> = report.blocking().map(|f| f.rule.clone()).collect();
    assert!(
        rules.contains(&"const-changed".to_owned()),
        "{:#?}",
        report.findings
    );
    assert!(
        !rules.contains(&"unexplained".to_owned()),
        "{:#?}",
        report.findings
    );
}

/// The header schema and the identity inside it are diffed too, once for the catalog.
#[test]
fn header_and_identity_schema_changes_are_found() {
    let dir = copy();
    let path = dir.path().join("headers.json");
    let mut headers: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    headers["properties"]["x-rh-insights-request-id"]["maxLength"] = json!(8);
    headers["$defs"]["identity"]["properties"]["identity"]["required"] =
        json!(["org_id", "type", "account_number"]);
    std::fs::write(&path, serde_json::to_vec_pretty(&headers).unwrap()).unwrap();
    let report = run(dir.path(), Mode::Backward, None);
    let rules: Vec<(String, String, String)> = report
        .blocking()
        .map(|f| (f.topic.clone(), f.part.clone(), f.rule.clone()))
        .collect();
    assert!(
        rules.contains(&(
            "(headers)".into(),
            "headers".into(),
            "bound-tightened".into()
        )),
        "{rules:?}"
    );
    assert!(
        rules.contains(&(
            "(headers)".into(),
            "identity".into(),
            "required-added".into()
        )),
        "{rules:?}"
    );
    assert!(
        !rules.iter().any(|(_, _, r)| r == "unexplained"),
        "every refused message is explained: {:#?}",
        report.findings
    );
    let f = report
        .findings
        .iter()
        .find(|f| f.part == "headers" && f.rule == "bound-tightened")
        .unwrap();
    assert!(!f.witnesses.is_empty(), "{f:?}");
}

#[test]
fn catalog_rules_are_found() {
    let dir = copy();
    // The key of domain-registered moves from the org to the domain.
    edit_topics(
        dir.path(),
        "partitions: 6\n    closed: true\n    key:\n      required: true\n      pointer: /org_id",
        "partitions: 6\n    closed: true\n    key:\n      required: true\n      pointer: /domain_id",
    );
    // todo-indexed is gone.
    let topics = std::fs::read_to_string(dir.path().join("topics.yaml")).unwrap();
    let start = topics
        .find("  - name: platform.evkit.todo-indexed")
        .unwrap();
    let end = start + 3 + topics[start + 3..].find("  - name:").unwrap();
    std::fs::write(
        dir.path().join("topics.yaml"),
        format!("{}{}", &topics[..start], &topics[end..]),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("platform.evkit.todo-indexed.event.json")).unwrap();
    // Notifications now require an identity too, and a key no longer.
    edit_topics(
        dir.path(),
        "required_headers: [x-rh-insights-request-id]",
        "required_headers: [x-rh-insights-request-id, x-rh-identity]",
    );
    // domain-registered changes its CloudEvents type and source.
    edit_topics(
        dir.path(),
        "type: com.redhat.console.evkit.domain-registered",
        "type: com.redhat.console.evkit.domain-registered.v2",
    );
    edit_topics(
        dir.path(),
        "source: urn:redhat:source:evkit",
        "source: urn:redhat:source:evkit-v2",
    );
    let report = run(dir.path(), Mode::Full, None);
    let rules = found(&report);
    for (topic, rule) in [
        ("platform.evkit.domain-registered", "key-pointer-changed"),
        ("platform.evkit.todo-indexed", "topic-removed"),
        ("platform.notifications.ingress", "header-required-added"),
        ("platform.evkit.domain-registered", "envelope-type-changed"),
        (
            "platform.evkit.domain-registered",
            "envelope-source-changed",
        ),
    ] {
        assert!(
            rules.contains(&(topic.to_owned(), rule.to_owned())),
            "{topic} {rule}: {rules:?}"
        );
    }
    assert_eq!(
        finding(
            &report,
            "platform.evkit.domain-registered",
            "key-pointer-changed"
        )
        .pointer,
        "/key/pointer"
    );
    // The refused messages are the witnesses: messages without an identity, keys of the org.
    let header = finding(
        &report,
        "platform.notifications.ingress",
        "header-required-added",
    );
    assert!(!header.witnesses.is_empty(), "{header:?}");
    let key = finding(
        &report,
        "platform.evkit.domain-registered",
        "key-pointer-changed",
    );
    assert!(!key.witnesses.is_empty(), "{key:?}");
}

#[test]
fn key_and_header_requirements_relaxed_break_forward() {
    let dir = copy();
    edit_topics(
        dir.path(),
        "  - name: platform.evkit.todo-created\n    owner: owned\n    partitions: 3\n    closed: true\n    key:\n      required: true",
        "  - name: platform.evkit.todo-created\n    owner: owned\n    partitions: 3\n    closed: true\n    required_headers: [x-rh-insights-request-id]\n    key:\n      required: false",
    );
    let report = run(dir.path(), Mode::Full, None);
    let rules = found(&report);
    for rule in ["key-required-removed", "header-required-removed"] {
        assert!(
            rules.contains(&(TODO.to_owned(), rule.to_owned())),
            "{rule}: {rules:?}"
        );
        assert_eq!(finding(&report, TODO, rule).direction, Direction::Forward);
    }
    assert!(run(dir.path(), Mode::Backward, None).compatible());
    // And the other way: a key made required (todo-created's deployed catalog as the change).
    let base = Catalog::load(dir.path()).unwrap();
    let next = Catalog::load(repo("schemas")).unwrap();
    let report = gate(
        &base,
        &next,
        None,
        &Options {
            cases: 16,
            ..Options::default()
        },
    )
    .unwrap();
    assert!(
        report.blocking().any(|f| f.rule == "key-required-added"),
        "{:?}",
        report.findings
    );
}

#[test]
fn envelope_and_dataschema_changes_are_found() {
    let dir = copy();
    // domain-registered goes from binary to structured mode.
    edit_topics(
        dir.path(),
        "mode: cloudevents-binary",
        "mode: cloudevents-structured",
    );
    // Notifications: host-deleted events retargeted to the domain definition, and a new
    // dataschema; then one removed.
    edit_topics(
        dir.path(),
        "host-deleted.json\": \"#/$defs/HostDeleted\"",
        "host-deleted.json\": \"#/$defs/DomainHealthChanged\"\n        \"https://console.redhat.com/api/schemas/apps/x/v1/new.json\": \"#/$defs/HostDeleted\"",
    );
    let report = run(dir.path(), Mode::Full, None);
    let rules = found(&report);
    for (topic, rule) in [
        ("platform.evkit.domain-registered", "envelope-mode-changed"),
        ("platform.notifications.ingress", "dataschema-retargeted"),
        ("platform.notifications.ingress", "dataschema-added"),
    ] {
        assert!(
            rules.contains(&(topic.to_owned(), rule.to_owned())),
            "{topic} {rule}: {rules:?}"
        );
    }
    let dir = copy();
    edit_topics(
        dir.path(),
        "\n        \"https://console.redhat.com/api/schemas/apps/inventory/v1/host-deleted.json\": \"#/$defs/HostDeleted\"",
        "",
    );
    let report = run(dir.path(), Mode::Full, None);
    let f = finding(
        &report,
        "platform.notifications.ingress",
        "dataschema-removed",
    );
    assert_eq!(f.direction, Direction::Backward);
    assert!(!f.witnesses.is_empty(), "{f:?}");
}

#[test]
fn an_allowance_lets_one_finding_through_until_it_expires() {
    let dir = copy();
    edit_schema(dir.path(), TODO, |s| {
        s["required"].as_array_mut().unwrap().push(json!("due"));
    });
    let allowed = Allowance::parse(&format!(
        "allow:\n  - topic: {TODO}\n    rule: required-added\n    pointer: /required\n    \
         reason: every producer sends due since todo-api 2.4\n    expires: 2027-01-31\n"
    ))
    .unwrap();
    let report = run_with(dir.path(), Mode::Full, None, allowed.clone(), "2026-11-29");
    assert!(report.compatible(), "{:?}", report.findings);
    assert_eq!(report.used, allowed);
    let f = finding(&report, TODO, "required-added");
    assert_eq!(f.allowed.as_ref(), allowed.first());
    // After the date it lets nothing through, and says so.
    let report = run_with(dir.path(), Mode::Full, None, allowed.clone(), "2027-02-01");
    assert!(!report.compatible());
    assert_eq!(report.expired, allowed);
    // An allowance for another pointer does not apply.
    let other = Allowance::parse(&format!(
        "allow:\n  - topic: {TODO}\n    rule: required-added\n    pointer: /properties/due\n    \
         reason: r\n    expires: 2027-01-31\n"
    ))
    .unwrap();
    assert!(!run_with(dir.path(), Mode::Full, None, other, "2026-11-29").compatible());
}

#[test]
fn an_allowance_needs_a_known_rule_a_reason_and_a_date() {
    for (text, why) in [
        (
            "allow:\n  - {topic: t, rule: no-such-rule, pointer: /, reason: r, expires: 2027-01-01}\n",
            "unknown rule id",
        ),
        (
            "allow:\n  - {topic: t, rule: required-added, pointer: /, reason: ' ', expires: 2027-01-01}\n",
            "reason",
        ),
        (
            "allow:\n  - {topic: t, rule: required-added, pointer: /, reason: r}\n",
            "expires",
        ),
        (
            "allow:\n  - {topic: t, rule: required-added, pointer: /, reason: r, expires: soon}\n",
            "input",
        ),
    ] {
        let err = Allowance::parse(text).unwrap_err();
        assert!(err.contains(why), "{text}: {err}");
    }
}

#[test]
fn contracts_must_hold_against_the_change() {
    let dir = copy();
    // todo-service relies on /title; the change drops it (optional now, and not described).
    edit_schema(dir.path(), TODO, |s| {
        s["properties"].as_object_mut().unwrap().remove("title");
        s["required"]
            .as_array_mut()
            .unwrap()
            .retain(|f| f != "title");
        for example in s["examples"].as_array_mut().unwrap() {
            example.as_object_mut().unwrap().remove("title");
        }
    });
    let report = run(dir.path(), Mode::Backward, Some(&repo("contracts")));
    let contracts: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.rule == "contracts")
        .map(|f| f.detail.as_str())
        .collect();
    assert!(
        contracts.iter().any(|d| d.contains("/title")),
        "{:?}",
        report.findings
    );
    // The schema change itself: a property gone from a closed object.
    assert_eq!(
        finding(&report, TODO, "property-removed-closed").direction,
        Direction::Backward
    );
}
