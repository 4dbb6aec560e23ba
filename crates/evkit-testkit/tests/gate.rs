//! The schema gate on the sample catalog: an unchanged catalog passes; each kind of breaking
//! change is found, named by topic and rule; a change that breaks only one direction passes in
//! the other mode; contracts are held against the change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use evkit_schema::Catalog;
use evkit_testkit::gate::{Mode, Options, Report, gate};
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
    let base = Catalog::load(repo("schemas")).unwrap();
    let next = Catalog::load(next).unwrap();
    let opts = Options {
        mode,
        cases: 64,
        seed: 7,
    };
    gate(&base, &next, contracts, &opts).unwrap()
}

/// (topic, rule) of every finding.
fn found(report: &Report) -> Vec<(String, String)> {
    report
        .findings
        .iter()
        .map(|f| (f.topic.clone(), f.rule.clone()))
        .collect()
}

#[test]
fn an_unchanged_catalog_is_compatible() {
    let dir = copy();
    let report = run(dir.path(), Mode::Full, Some(&repo("contracts")));
    assert!(report.compatible(), "{:?}", report.findings);
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
    assert_eq!(found(&report), [(TODO.to_owned(), "backward".to_owned())]);
    let detail = &report.findings[0].detail;
    assert!(
        detail.contains("required") && detail.contains("due"),
        "names the rule and the field: {detail}"
    );
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
    assert_eq!(found(&report), [(TODO.to_owned(), "forward".to_owned())]);
    assert!(
        report.findings[0].detail.contains("additionalProperties")
            || report.findings[0].detail.contains("assignee"),
        "{}",
        report.findings[0].detail
    );
    assert!(run(dir.path(), Mode::Backward, None).compatible());
}

#[test]
fn a_narrowed_bound_is_found_in_generated_messages() {
    let dir = copy();
    edit_schema(dir.path(), TODO, |s| {
        s["properties"]["title"]["maxLength"] = json!(4);
    });
    let report = run(dir.path(), Mode::Backward, None);
    assert_eq!(found(&report), [(TODO.to_owned(), "backward".to_owned())]);
    assert!(report.findings[0].detail.contains("maxLength"));
}

#[test]
fn catalog_rules_are_found_without_messages() {
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
    // Notifications now require an identity too.
    edit_topics(
        dir.path(),
        "required_headers: [x-rh-insights-request-id]",
        "required_headers: [x-rh-insights-request-id, x-rh-identity]",
    );
    let report = run(dir.path(), Mode::Full, None);
    let mut rules = found(&report);
    rules.sort();
    assert!(
        rules.contains(&(
            "platform.evkit.domain-registered".to_owned(),
            "key-pointer".to_owned()
        )),
        "{rules:?}"
    );
    assert!(
        rules.contains(&(
            "platform.evkit.todo-indexed".to_owned(),
            "topic-removed".to_owned()
        )),
        "{rules:?}"
    );
    assert!(
        rules.contains(&(
            "platform.notifications.ingress".to_owned(),
            "header-required".to_owned()
        )),
        "{rules:?}"
    );
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
}
