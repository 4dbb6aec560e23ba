//! The `evkit` binary: exit codes, messages and every kind of bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use assert_cmd::Command;
use base64::Engine as _;
use predicates::prelude::*;

const TODO: &str = "platform.evkit.todo-created";
const VALID: &str =
    r#"{"id": 42, "org_id": "12345", "title": "Water", "created_at": "2026-11-01T09:30:00Z"}"#;

fn catalog_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))
}

fn identity(org: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!(
        r#"{{"identity": {{"org_id": "{org}", "type": "User"}}}}"#
    ))
}

fn evkit() -> Command {
    let mut cmd = Command::cargo_bin("evkit").unwrap();
    cmd.arg("--catalog").arg(catalog_dir());
    cmd.timeout(std::time::Duration::from_secs(60));
    cmd
}

/// `evkit validate` for the todo topic with good headers and key, reading `payload` on stdin.
fn validate(payload: impl Into<Vec<u8>>, extra: &[&str]) -> assert_cmd::assert::Assert {
    let id = identity("12345");
    evkit()
        .args(["validate", "--topic", TODO, "--key", "12345"])
        .args(["--header", &format!("x-rh-identity={id}")])
        .args(["--header", "x-rh-insights-request-id=req-1"])
        .args(extra)
        .write_stdin(payload.into())
        .assert()
}

#[test]
fn valid_message_exits_zero() {
    validate(VALID, &[])
        .success()
        .stdout(predicate::str::contains(
            "valid: platform.evkit.todo-created",
        ));
}

#[test]
fn json_output_lists_every_violation() {
    let out = validate(
        r#"{"id": "x", "org_id": "12345", "created_at": "2026-11-01T09:30:00Z"}"#,
        &["--format", "json"],
    )
    .code(1)
    .get_output()
    .stdout
    .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["valid"], false);
    let v = report["violations"].as_array().unwrap();
    assert!(
        v.iter()
            .any(|v| v["instance_path"] == "/id" && v["rule"] == "type"),
        "{report}"
    );
    assert!(v.iter().any(|v| v["rule"] == "required"), "{report}");
}

#[test]
fn bad_payloads_exit_one_with_a_clear_error() {
    let mut deep = "[".repeat(10_000);
    deep.push_str(&"]".repeat(10_000));
    let mut big = br#"{"title": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    big.extend(br#""}"#);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("invalid JSON", b"{not json".to_vec(), "not valid JSON"),
        ("wrong type", br#"{"id": true, "org_id": "12345", "title": "t", "created_at": "2026-11-01T09:30:00Z"}"#.to_vec(), "payload /id"),
        ("missing required", br#"{"id": 1, "org_id": "12345", "created_at": "2026-11-01T09:30:00Z"}"#.to_vec(), "\"title\" is a required property"),
        ("unknown field", br#"{"id": 1, "org_id": "12345", "title": "t", "created_at": "2026-11-01T09:30:00Z", "x": 1}"#.to_vec(), "Additional properties are not allowed"),
        ("10 MB", big, "above the limit"),
        ("10,000 deep", deep.into_bytes(), "recursion limit"),
        ("invalid UTF-8", b"{\"id\": 1, \"org_id\": \"12345\", \"title\": \"\xff\", \"created_at\": \"2026-11-01T09:30:00Z\"}".to_vec(), "not valid JSON"),
    ];
    for (name, payload, message) in cases {
        let out = validate(payload, &[]).code(1).get_output().stdout.clone();
        let out = String::from_utf8_lossy(&out);
        assert!(
            out.contains(message),
            "{name}: expected `{message}` in:\n{out}"
        );
    }
}

#[test]
fn bad_headers_and_keys_exit_one() {
    let id = identity("12345");
    let not_json = base64::engine::general_purpose::STANDARD.encode("hello");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--key".into(),
                "12345".into(),
                "--header".into(),
                "x-rh-identity=%%%".into(),
                "--header".into(),
                "x-rh-insights-request-id=r".into(),
            ],
            "header `x-rh-identity`",
        ),
        (
            vec![
                "--key".into(),
                "12345".into(),
                "--header".into(),
                format!("x-rh-identity={not_json}"),
                "--header".into(),
                "x-rh-insights-request-id=r".into(),
            ],
            "decoded identity is not JSON",
        ),
        (
            vec![
                "--key".into(),
                "12345".into(),
                "--header".into(),
                format!("x-rh-identity={id}"),
            ],
            "\"x-rh-insights-request-id\" is a required property",
        ),
        (
            vec![
                "--key".into(),
                "12345".into(),
                "--header".into(),
                format!("x-rh-identity={id}"),
                "--header".into(),
                format!("X-RH-IDENTITY={id}"),
                "--header".into(),
                "x-rh-insights-request-id=r".into(),
            ],
            "present more than once",
        ),
        (
            vec![
                "--key".into(),
                String::new(),
                "--header".into(),
                format!("x-rh-identity={id}"),
                "--header".into(),
                "x-rh-insights-request-id=r".into(),
            ],
            "the key is empty",
        ),
    ];
    for (args, message) in cases {
        let out = evkit()
            .args(["validate", "--topic", TODO])
            .args(&args)
            .write_stdin(VALID)
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        let out = String::from_utf8_lossy(&out);
        assert!(
            out.contains(message),
            "{args:?}: expected `{message}` in:\n{out}"
        );
        assert!(!out.contains(&id), "identity leaked:\n{out}");
    }
}

#[test]
fn usage_errors_exit_two() {
    evkit()
        .args(["validate", "--topic", "no.such.topic"])
        .write_stdin(VALID)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not in the catalog"));
    evkit()
        .args(["validate", "--topic", TODO, "/no/such/file.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read /no/such/file.json"));
    evkit()
        .args(["validate", "--topic", TODO, "--header", "novalue"])
        .write_stdin(VALID)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("NAME=VALUE"));
    Command::cargo_bin("evkit")
        .unwrap()
        .args(["--catalog", "/no/such/dir", "topics"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("topics.yaml"));
}

#[test]
fn topics_lists_the_catalog() {
    evkit()
        .arg("topics")
        .assert()
        .success()
        .stdout(predicate::str::contains(TODO).and(predicate::str::contains("cloudevents-binary")));
    let out = evkit()
        .args(["topics", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let list: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 4);
    assert_eq!(list[0]["dead_letter"], "platform.evkit.todo-created.dlq");
}

#[test]
fn lint_fails_on_ignored_keywords() {
    evkit()
        .arg("lint")
        .assert()
        .success()
        .stdout(predicate::str::contains("0 error(s)"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        catalog_dir().join("headers.json"),
        dir.path().join("headers.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("topics.yaml"), "topics:\n  - name: a.b\n").unwrap();
    std::fs::write(
        dir.path().join("a.b.event.json"),
        r#"{"$id": "urn:a", "title": "A", "type": "object", "required": ["id"], "properties": {"id": {"type": "number", "format": "int", "minValue": 1}}}"#,
    )
    .unwrap();
    Command::cargo_bin("evkit")
        .unwrap()
        .arg("--catalog")
        .arg(dir.path())
        .arg("lint")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("minValue").and(predicate::str::contains("2 error(s)")));
}

#[test]
fn generate_check_detects_drift() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gen");
    evkit()
        .args(["generate", "--out"])
        .arg(&out)
        .assert()
        .success();
    evkit()
        .args(["generate", "--check", "--out"])
        .arg(&out)
        .assert()
        .success();
    std::fs::write(out.join("mod.rs"), "// edited").unwrap();
    evkit()
        .args(["generate", "--check", "--out"])
        .arg(&out)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("mod.rs"));
    // The repository's own generated code is current.
    evkit()
        .args(["generate", "--check", "--out"])
        .arg(catalog_dir().join("../crates/evkit-events/src/generated"))
        .assert()
        .success();
}

/// The bytes a message line's value stands for: the text, or `{"base64": ...}`.
fn bytes(v: &serde_json::Value) -> Vec<u8> {
    match v {
        serde_json::Value::String(s) => s.clone().into_bytes(),
        other => base64::engine::general_purpose::STANDARD
            .decode(other["base64"].as_str().unwrap())
            .unwrap(),
    }
}

fn examples(args: &[&str]) -> Vec<serde_json::Value> {
    let out = evkit()
        .arg("generate-examples")
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn generate_examples_writes_valid_and_named_invalid_messages_deterministically() {
    let catalog =
        evkit_schema::Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas")).unwrap();
    let contract = catalog.contract(TODO).unwrap();
    let args = [
        "--topic",
        TODO,
        "--count",
        "20",
        "--invalid-ratio",
        "0.25",
        "--seed",
        "7",
    ];
    let lines = examples(&args);
    assert_eq!(lines.len(), 20);
    let mut invalid = 0;
    for l in &lines {
        let payload = bytes(&l["payload"]);
        let headers: Vec<(String, Vec<u8>)> = l["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["name"].as_str().unwrap().to_owned(), bytes(&h["value"])))
            .collect();
        let key = l["key"].as_str().map(str::as_bytes);
        let m = evkit_schema::Message::from_parts(key, &headers, &payload);
        if l["broken"].is_null() {
            assert!(contract.check(&m).is_ok(), "{l}");
        } else {
            invalid += 1;
            assert!(contract.check(&m).is_err(), "{l}");
        }
    }
    assert_eq!(invalid, 5, "a quarter of 20");
    assert_eq!(examples(&args), lines, "same seed, same messages");
    let other = examples(&[
        "--topic",
        TODO,
        "--count",
        "20",
        "--invalid-ratio",
        "0.25",
        "--seed",
        "8",
    ]);
    assert_ne!(other, lines, "another seed, other messages");
    // CloudEvents ids come from the seed too.
    let ce = [
        "--topic",
        "platform.evkit.domain-registered",
        "--count",
        "5",
        "--seed",
        "3",
    ];
    assert_eq!(examples(&ce), examples(&ce));
}

#[test]
fn generate_examples_takes_any_schema_without_a_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("s.json");
    std::fs::write(
        &schema,
        r#"{"type": "object", "required": ["n"], "additionalProperties": false,
            "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 3}}}"#,
    )
    .unwrap();
    let out = evkit()
        .current_dir(dir.path())
        .args([
            "generate-examples",
            "--schema",
            schema.to_str().unwrap(),
            "--count",
            "8",
            "--invalid-ratio",
            "0.5",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    for l in &lines {
        let n = &l["payload"]["n"];
        let ok = n.as_i64().is_some_and(|n| (1..=3).contains(&n))
            && l["payload"].as_object().unwrap().len() == 1;
        assert_eq!(ok, l["broken"].is_null(), "{l}");
    }
    // A bad ratio and an unsupported keyword are errors, not panics.
    evkit()
        .args([
            "generate-examples",
            "--schema",
            schema.to_str().unwrap(),
            "--invalid-ratio",
            "2",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--invalid-ratio"));
    // A schema that accepts nothing, and one that does not compile: clear refusals.
    std::fs::write(
        &schema,
        r#"{"type": "object", "properties": {"a": false}, "required": ["a"]}"#,
    )
    .unwrap();
    evkit()
        .args(["generate-examples", "--schema", schema.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("accepts nothing"));
    std::fs::write(&schema, r#"{"type": "no-such-type"}"#).unwrap();
    evkit()
        .args(["generate-examples", "--schema", schema.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not compile"));
}

#[test]
fn generate_examples_lists_rules_and_breaks_the_one_asked_for() {
    let listed = evkit()
        .args([
            "generate-examples",
            "--topic",
            "platform.evkit.todo-created",
            "--list-rules",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let listed = String::from_utf8(listed).unwrap();
    for rule in [
        "maxLength@/title",
        "required@/",
        "type@/id",
        "additionalProperties@/",
        "header x-rh-identity: missing x-rh-identity",
        "key: key differs",
    ] {
        assert!(listed.contains(rule), "{rule} not listed:\n{listed}");
    }
    let out = evkit()
        .args([
            "generate-examples",
            "--topic",
            "platform.evkit.todo-created",
            "--count",
            "8",
            "--break",
            "maxLength@/title",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    for l in &lines {
        assert_eq!(l["broken"], "maxLength@/title", "{l}");
        let payload: serde_json::Value = serde_json::from_slice(&bytes(&l["payload"])).unwrap();
        assert!(
            payload["title"].as_str().unwrap().chars().count() > 255,
            "{l}"
        );
    }
    evkit()
        .args([
            "generate-examples",
            "--topic",
            "platform.evkit.todo-created",
            "--break",
            "maxLength@/nowhere",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no rule matches `maxLength@/nowhere`",
        ));
}

#[test]
fn verify_passes_the_repository_contracts_and_writes_junit() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("verify.xml");
    let contracts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts");
    evkit()
        .args(["verify", "--count", "5", "--invalid", "3", "--contracts"])
        .arg(&contracts)
        .arg("--junit")
        .arg(&junit)
        .timeout(std::time::Duration::from_secs(300))
        .assert()
        .success()
        .stdout(
            predicate::str::contains(", 0 failed").and(predicate::str::contains(
                "ok   todo-service / platform.evkit.todo-created",
            )),
        );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"failures="0""#), "{xml}");
}

#[test]
fn verify_fails_when_a_consumer_relies_on_what_producers_may_omit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("needy.yaml"),
        "service: needy\nconsumes:\n  - topic: platform.evkit.todo-created\n    relies_on: [/priority]\n",
    )
    .unwrap();
    evkit()
        .args(["verify", "--count", "12", "--invalid", "1", "--contracts"])
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(300))
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "FAIL needy / platform.evkit.todo-created",
        ));
    // A contract that does not load is wrong (exit 1), naming the problem; a broker that
    // does not answer is "could not run" (exit 2).
    std::fs::write(
        dir.path().join("bad.yaml"),
        "service: bad\nconsumes:\n  - topic: platform.nope\n",
    )
    .unwrap();
    evkit()
        .args(["verify", "--contracts"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("`platform.nope` is not a topic"));
    std::fs::remove_file(dir.path().join("bad.yaml")).unwrap();
    evkit()
        .args(["verify", "--bootstrap", "127.0.0.1:1", "--contracts"])
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .code(2);
}

/// A copy of the sample catalog whose todo-created schema is changed by `change`.
fn catalog_with(change: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(catalog_dir()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let path = dir.path().join(format!("{TODO}.event.json"));
    let mut schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    change(&mut schema);
    std::fs::write(&path, serde_json::to_vec_pretty(&schema).unwrap()).unwrap();
    dir
}

/// The original float-id bug, in an example: `lint` and `verify` refuse it, and an owned,
/// closed topic without examples is an error too.
#[test]
fn lint_and_verify_check_every_schema_example() {
    let bad = catalog_with(|s| {
        s["examples"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"id": 1.5, "org_id": "", "extra": 1}));
    });
    let n = 2; // the sample schema has two examples before it
    Command::cargo_bin("evkit")
        .unwrap()
        .arg("--catalog")
        .arg(bad.path())
        .arg("lint")
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "at /examples/{n}: example {n} breaks the schema it documents"
        )))
        .stdout(predicate::str::contains("/id"))
        .stdout(predicate::str::contains("[invalid-example]"));
    Command::cargo_bin("evkit")
        .unwrap()
        .arg("--catalog")
        .arg(bad.path())
        .arg("verify")
        .arg("--contracts")
        .arg(catalog_dir().join("../contracts"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("[invalid-example]"));
    let none = catalog_with(|s| {
        s.as_object_mut().unwrap().remove("examples");
    });
    Command::cargo_bin("evkit")
        .unwrap()
        .arg("--catalog")
        .arg(none.path())
        .arg("lint")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("[missing-examples]"));
}

/// `evkit gate`: the unchanged catalog passes (exit 0); a field made required is blocked
/// (exit 1) with the topic, rule id, direction, pointer and a witness, in both formats; an
/// allowance in `<contracts>/allowed-breaks.yaml` lets it through until it expires; a bad
/// allowances file is exit 2.
#[test]
fn gate_blocks_an_incompatible_change() {
    let base = catalog_dir();
    let next = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&base).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, next.path().join(path.file_name().unwrap())).unwrap();
    }
    let gate = |catalog: &std::path::Path, extra: &[&str]| {
        let mut cmd = Command::cargo_bin("evkit").unwrap();
        cmd.arg("--catalog")
            .arg(catalog)
            .args(["gate", "--cases", "32", "--base"])
            .arg(&base)
            .args(extra)
            .timeout(std::time::Duration::from_secs(60));
        cmd.assert()
    };
    gate(next.path(), &[])
        .success()
        .stdout(predicate::str::contains("compatible"))
        .stdout(predicate::str::contains("BLOCKS").not());

    let path = next.path().join(format!("{TODO}.event.json"));
    let mut schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    schema["required"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!("priority"));
    std::fs::write(&path, serde_json::to_vec(&schema).unwrap()).unwrap();
    gate(next.path(), &[])
        .code(1)
        .stdout(predicate::str::contains(format!(
            "BLOCKS      {TODO} [required-added] backward payload /required"
        )))
        .stdout(predicate::str::contains("witness (backward, payload)"))
        .stdout(predicate::str::contains(
            "\"priority\" is a required property",
        ));
    let out = gate(next.path(), &["--format", "json"]).code(1);
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["compatible"], false);
    let f = &report["findings"][0];
    assert_eq!(f["topic"], TODO);
    assert_eq!(f["rule"], "required-added");
    assert_eq!(f["direction"], "backward");
    assert_eq!(f["pointer"], "/required");
    assert_eq!(f["status"], "blocks");
    assert_eq!(f["witnesses"][0]["direction"], "backward");
    let witness: serde_json::Value =
        serde_json::from_str(f["witnesses"][0]["value"].as_str().unwrap()).unwrap();
    assert!(witness.get("priority").is_none(), "{witness}");
    // Only the deployed consumers' side: they accept what the change produces.
    gate(next.path(), &["--mode", "forward"]).success();

    // The intended break, allowed until the end of January.
    let contracts = tempfile::tempdir().unwrap();
    std::fs::write(
        contracts.path().join("allowed-breaks.yaml"),
        format!(
            "allow:\n  - topic: {TODO}\n    rule: required-added\n    pointer: /required\n    \
             reason: every producer sets a priority since todo-api 2.4\n    expires: 2027-01-31\n"
        ),
    )
    .unwrap();
    let dir = contracts.path().to_str().unwrap();
    gate(next.path(), &["--contracts", dir, "--today", "2026-12-01"])
        .success()
        .stdout(predicate::str::contains(format!(
            "allowance used: {TODO} [required-added] /required (until 2027-01-31)"
        )));
    gate(next.path(), &["--contracts", dir, "--today", "2027-02-01"])
        .code(1)
        .stdout(predicate::str::contains("allowance EXPIRED on 2027-01-31"));
    std::fs::write(
        contracts.path().join("allowed-breaks.yaml"),
        "allow:\n  - {topic: t, rule: made-up, pointer: /, reason: r, expires: 2027-01-01}\n",
    )
    .unwrap();
    gate(next.path(), &["--contracts", dir])
        .code(2)
        .stderr(predicate::str::contains("unknown rule id `made-up`"));
}

/// `evkit bench` on the embedded broker: one JSON row per partition count, every message
/// handled and committed once, spread over that many partitions.
#[test]
fn bench_reports_each_partition_count() {
    let out = evkit()
        .args([
            "bench",
            "--topic",
            TODO,
            "--messages",
            "300",
            "--partitions",
            "1,3",
            "--rounds",
            "2",
            "--format",
            "json",
        ])
        .timeout(std::time::Duration::from_secs(180))
        .assert()
        .success();
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.get_output().stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, partitions) in rows.iter().zip([1u64, 3]) {
        assert_eq!(row["partitions"], partitions);
        assert_eq!(row["messages"], 300);
        assert_eq!(row["committed"], 300);
        assert!(row["rate"].as_f64().unwrap() > 0.0, "{row}");
        let spread = row["per_partition"].as_object().unwrap();
        assert_eq!(spread.len() as u64, partitions, "{row}");
        let total: u64 = spread.values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(total, 300, "{row}");
        // The baselines read the same topic, and every run reports its CPU per message.
        for baseline in ["hand_written", "bare", "whole_contract"] {
            assert!(row[baseline]["rate"].as_f64().unwrap() > 0.0, "{row}");
            assert!(
                row[baseline]["cpu_per_message_us"].as_f64().unwrap() > 0.0,
                "{row}"
            );
        }
        assert!(row["cpu_per_message_us"].as_f64().unwrap() > 0.0, "{row}");
        // evkit against the hand-written consumer, compared in each of the two rounds.
        let paired = &row["against_hand_written"];
        assert_eq!(paired["rounds"], 2, "{row}");
        assert!(paired["rate_ratio"].as_f64().unwrap() > 0.0, "{row}");
        assert!(paired["cpu_above_us"].as_f64().is_some(), "{row}");
        // The whole-contract consumer found every generated message valid, as evkit did.
        assert_eq!(row["whole_contract"]["invalid"], 0, "{row}");
        assert_eq!(row["against_whole_contract"]["rounds"], 2, "{row}");
        // Cores busy is the rate times the CPU per message; the ceiling, the cores over it.
        let cpu = row["cpu_per_message_us"].as_f64().unwrap();
        let busy = row["cores_busy"].as_f64().unwrap();
        assert!(
            (busy - row["rate"].as_f64().unwrap() * cpu * 1e-6).abs() < 1e-6,
            "{row}"
        );
        let cores =
            f64::from(u32::try_from(std::thread::available_parallelism().unwrap().get()).unwrap());
        let ceiling = row["ceiling_rate"].as_f64().unwrap();
        assert!(
            (ceiling * cpu - cores * 1e6).abs() < 1e-3 * cores * 1e6,
            "{row}"
        );
    }
    // More than the embedded broker keeps on one partition: refused up front, with what fits.
    evkit()
        .args([
            "bench",
            "--topic",
            TODO,
            "--messages",
            "20000",
            "--partitions",
            "1",
        ])
        .timeout(std::time::Duration::from_secs(180))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("use at most"));
}

/// `generate-examples --schema` on every draft-7 schema of the official JSON-Schema-Test-Suite:
/// valid output, invalid output naming a keyword, or a clear refusal (exit 2 with a message);
/// a validator compiled here judges every line, and never disagrees.
#[test]
fn generate_examples_answers_every_suite_schema_and_never_wrongly() {
    let suite = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../evkit-testkit/tests/data/json-schema-test-suite/tests/draft7");
    let dir = tempfile::tempdir().unwrap();
    let (mut answered, mut refused, mut lines) = (0, 0, 0);
    let mut files: Vec<_> = std::fs::read_dir(&suite)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for file in files {
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for (i, case) in cases.iter().enumerate() {
            let schema = &case["schema"];
            if schema.to_string().contains("localhost:1234") {
                continue;
            }
            let path = dir.path().join(format!("s{i}.json"));
            std::fs::write(&path, schema.to_string()).unwrap();
            let out = evkit()
                .args(["generate-examples", "--draft", "7", "--count", "4"])
                .args(["--invalid-ratio", "0.5", "--schema"])
                .arg(&path)
                .output()
                .unwrap();
            let judge = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .should_validate_formats(true)
                .build(schema)
                .unwrap();
            match out.status.code() {
                Some(0) => {
                    answered += 1;
                    for line in String::from_utf8(out.stdout).unwrap().lines() {
                        let l: serde_json::Value = serde_json::from_str(line).unwrap();
                        let valid = judge.is_valid(&l["payload"]);
                        assert_eq!(
                            valid,
                            l["broken"].is_null(),
                            "{}: {schema}: {l}",
                            file.display()
                        );
                        lines += 1;
                    }
                }
                Some(2) => {
                    refused += 1;
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert!(
                        err.contains("generator:") && !err.contains("panicked"),
                        "{}: {schema}: {err}",
                        file.display()
                    );
                }
                other => panic!("{}: {schema}: exit {other:?}", file.display()),
            }
        }
    }
    // Refusals: schemas that accept nothing, and schemas with no keyword a value can break
    // (`true`, `{}`) when invalid lines are asked for.
    assert!(answered >= 190, "answered {answered}, refused {refused}");
    assert!(lines >= 750, "{lines} lines");
}

/// Reads one line of `args`' output, closes the pipe, and returns how the process ended.
fn first_line_then_close(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    use std::io::BufRead as _;
    use std::process::{Command as Std, Stdio};
    let mut child = Std::new(assert_cmd::cargo::cargo_bin("evkit"))
        .arg("--catalog")
        .arg(catalog_dir())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        first,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `evkit … | head -1` ends quietly: exit 0 and nothing on stderr, for a command that prints
/// with `println!`-style lines and one that writes a stream.
#[test]
fn a_closed_stdout_ends_commands_quietly() {
    let (status, first, stderr) =
        first_line_then_close(&["generate-examples", "--topic", TODO, "--count", "20000"]);
    assert!(first.starts_with('{'), "{first}");
    assert!(
        status.success() && stderr.is_empty(),
        "{status:?}: {stderr}"
    );
    let (status, first, stderr) =
        first_line_then_close(&["generate-examples", "--list-rules", "--topic", TODO]);
    assert!(!first.is_empty());
    assert!(
        status.success() && stderr.is_empty(),
        "{status:?}: {stderr}"
    );
    let (status, _, stderr) = first_line_then_close(&["lint"]);
    assert!(
        status.success() && !stderr.contains("panicked"),
        "{status:?}: {stderr}"
    );
}

/// `evkit outbox --db FILE` only shows: on a database that is not an outbox it says so (exit
/// 2) and leaves the file exactly as it was (no table created, no WAL switch).
#[test]
fn outbox_show_never_changes_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unrelated.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep');")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    evkit()
        .args(["outbox", "--db", db.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no evkit_outbox table"));
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file changed");
    assert!(!dir.path().join("unrelated.db-wal").exists());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'evkit_outbox'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
}

/// `validate --lines` reads the lines `generate-examples` writes (every topic, with broken
/// ones): each labelled line is invalid and every other valid, exit 0; a mislabelled line is
/// exit 1, named. `--org-id` builds the identity header; identical violations print once with a
/// count.
#[test]
fn validate_reads_message_lines_and_builds_the_identity() {
    for topic in [
        TODO,
        "platform.evkit.domain-registered",
        "platform.notifications.ingress",
    ] {
        let lines = evkit()
            .args(["generate-examples", "--topic", topic, "--count", "40"])
            .args(["--invalid-ratio", "0.4", "--seed", "5"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        evkit()
            .args(["validate", "--lines"])
            .write_stdin(lines.clone())
            .assert()
            .success()
            .stdout(predicate::str::contains(
                "40 message(s): 24 valid, 16 invalid, 0 not as labelled",
            ));
        // Relabel a broken line as valid: it is named, exit 1.
        let text = String::from_utf8(lines).unwrap();
        let mut relabelled: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let i = relabelled
            .iter()
            .position(|l| !l["broken"].is_null())
            .unwrap();
        relabelled[i]["broken"] = serde_json::Value::Null;
        let input: String = relabelled.iter().map(|l| l.to_string() + "\n").collect();
        evkit()
            .args(["validate", "--lines"])
            .write_stdin(input)
            .assert()
            .code(1)
            .stdout(predicate::str::contains(format!(
                "line {}: invalid: {topic}",
                i + 1
            )));
    }
    let todo = r#"{"id": 1, "org_id": "77", "title": "t", "created_at": "2026-11-01T09:30:00Z"}"#;
    evkit()
        .args(["validate", "--topic", TODO, "--key", "77", "--org-id", "77"])
        .args(["--header", "x-rh-insights-request-id=r-1"])
        .write_stdin(todo)
        .assert()
        .success();
    // Without --org-id the identity is missing.
    evkit()
        .args(["validate", "--topic", TODO, "--key", "77"])
        .args(["--header", "x-rh-insights-request-id=r-1"])
        .write_stdin(todo)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("x-rh-identity"));
    // 1,000 copies of one header: one line with the count.
    let mut args = vec!["validate".to_owned(), "--topic".to_owned(), TODO.to_owned()];
    args.extend(["--key", "77", "--org-id", "77"].map(str::to_owned));
    for _ in 0..1000 {
        args.push("--header".to_owned());
        args.push("x-rh-insights-request-id=r-1".to_owned());
    }
    let out = evkit()
        .args(&args)
        .write_stdin(todo)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.lines().count() < 5, "{out}");
    assert!(out.contains("(×999)"), "{out}");
}

/// `generate` refuses, saying what to change: a schema without a `title`, a definition named
/// `Event` next to another root type, and a run outside the workspace root without `--out`
/// (which once created `crates/evkit-events/src/generated/` wherever it was run).
#[test]
fn generate_refuses_what_would_not_compile_and_says_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        catalog_dir().join("headers.json"),
        dir.path().join("headers.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("topics.yaml"), "topics:\n  - name: a.b\n").unwrap();
    let schema = dir.path().join("a.b.event.json");
    let generate = |schema_text: &str| {
        std::fs::write(&schema, schema_text).unwrap();
        Command::cargo_bin("evkit")
            .unwrap()
            .arg("--catalog")
            .arg(dir.path())
            .args(["generate", "--out"])
            .arg(dir.path().join("out"))
            .assert()
    };
    generate(r#"{"type": "object", "properties": {"id": {"type": "integer"}}}"#)
        .code(2)
        .stderr(predicate::str::contains("has no `title`"))
        .stderr(predicate::str::contains("a.b.event.json"));
    generate(
        r##"{"title": "Thing", "type": "object", "properties": {"e": {"$ref": "#/$defs/Event"}},
            "$defs": {"Event": {"type": "object", "properties": {"n": {"type": "integer"}}}}}"##,
    )
    .code(2)
    .stderr(predicate::str::contains(
        "a generated type is named `Event`",
    ));
    generate(r#"{"title": "Event", "type": "object", "properties": {"id": {"type": "integer"}}}"#)
        .success();
    let code = std::fs::read_to_string(dir.path().join("out/a_b.rs")).unwrap();
    assert!(code.contains("pub struct Event"), "{code}");
    assert!(!code.contains("pub type Event"), "{code}");
    // Without --out, outside the workspace root: refused, nothing created.
    Command::cargo_bin("evkit")
        .unwrap()
        .current_dir(dir.path())
        .args(["--catalog", "."])
        .arg("generate")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "run `evkit generate` from the workspace root",
        ));
    assert!(!dir.path().join("crates").exists());
}

/// `evkit dev --listen` takes a host name.
#[test]
fn dev_listen_accepts_a_host_name() {
    evkit()
        .args(["dev", "--listen", "no-such-host.invalid:9096"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not HOST:PORT"));
}

/// `bench` refuses bad sizes before generating anything: more than the embedded broker keeps
/// per partition (once found only after 19 s of generating), zero partitions, zero messages.
#[test]
fn bench_refuses_bad_sizes_up_front() {
    let started = std::time::Instant::now();
    evkit()
        .args([
            "bench",
            "--topic",
            TODO,
            "--messages",
            "20000",
            "--partitions",
            "1",
        ])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("use at most"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    for bad in [["--partitions", "0"], ["--messages", "0"]] {
        evkit()
            .args(["bench", "--topic", TODO])
            .args(bad)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("is not in 1.."));
    }
}

/// `--format json` on `generate` and `verify`, and an error under `--format json` is JSON too
/// (on stderr, exit 2).
#[test]
fn json_output_and_json_errors() {
    let out = evkit()
        .args(["generate", "--check", "--format", "json", "--out"])
        .arg(catalog_dir().join("../crates/evkit-events/src/generated"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["up_to_date"], true, "{v}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "service: bad\nconsumes:\n  - topic: platform.nope\n",
    )
    .unwrap();
    let out = evkit()
        .args(["verify", "--format", "json", "--contracts"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["passed"], false, "{v}");
    assert!(
        v["problems"][0].as_str().unwrap().contains("platform.nope"),
        "{v}"
    );
    for args in [
        &["validate", "--topic", "platform.nope", "--format", "json"][..],
        &["lint", "--format", "json", "--catalog", "/no/such/catalog"][..],
    ] {
        let out = evkit()
            .args(args)
            .write_stdin("{}")
            .assert()
            .code(2)
            .get_output()
            .stderr
            .clone();
        let v: serde_json::Value = serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out)));
        assert_eq!(v["exit"], 2, "{v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
}

/// Catalog problems are all reported, each with its place: every bad `topics.yaml` entry (not
/// only the first), and where in a schema the compile error is.
#[test]
fn catalog_problems_are_all_reported_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        catalog_dir().join("headers.json"),
        dir.path().join("headers.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("topics.yaml"),
        "topics:\n  - name: a.b\n    partitions: many\n  - name: c.d\n    closed: maybe\n",
    )
    .unwrap();
    let lint = || {
        Command::cargo_bin("evkit")
            .unwrap()
            .arg("--catalog")
            .arg(dir.path())
            .arg("lint")
            .assert()
            .code(2)
    };
    lint()
        .stderr(predicate::str::contains("2 problem(s)"))
        .stderr(predicate::str::contains(
            "line 3 column 17: topics[0].partitions",
        ))
        .stderr(predicate::str::contains("topics[1] (c.d): invalid type"));
    std::fs::write(dir.path().join("topics.yaml"), "topics:\n  - name: a.b\n").unwrap();
    std::fs::write(
        dir.path().join("a.b.event.json"),
        r#"{"title": "A", "type": "object", "properties": {"x": {"minLength": "3"}}}"#,
    )
    .unwrap();
    lint().stderr(predicate::str::contains(
        "schema does not compile: at /properties/x/minLength",
    ));
}

/// The README's add-a-topic walkthrough, pasted as shown: its `topics.yaml` snippet is a valid
/// catalog entry, and a schema written as step 1 says passes `evkit lint`.
#[test]
fn the_readme_add_a_topic_snippet_works_as_pasted() {
    let readme = std::fs::read_to_string(catalog_dir().join("../README.md")).unwrap();
    let step = &readme[readme.find("2. **Catalog entry.**").unwrap()..];
    let block = &step[step.find("```yaml\n").unwrap() + 8..];
    let block = &block[..block.find("```").unwrap()];
    let snippet: String = block
        .lines()
        .map(|l| l.strip_prefix("   ").unwrap_or(l).to_owned() + "\n")
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        catalog_dir().join("headers.json"),
        dir.path().join("headers.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("topics.yaml"), &snippet).unwrap();
    std::fs::write(
        dir.path()
            .join("platform.myservice.thing-happened.event.json"),
        r#"{"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://example.test/thing-happened.json", "title": "ThingHappened",
            "type": "object", "additionalProperties": false, "required": ["id", "org_id"],
            "properties": {"id": {"type": "integer"}, "org_id": {"type": "string", "minLength": 1}},
            "examples": [{"id": 1, "org_id": "12345"}]}"#,
    )
    .unwrap();
    Command::cargo_bin("evkit")
        .unwrap()
        .arg("--catalog")
        .arg(dir.path())
        .args(["lint", "--deny-warnings"])
        .assert()
        .success();
}

/// `replay --help` lists the reasons dead letters really carry (it once offered
/// `retries-exhausted`, which nothing produces).
#[test]
fn replay_help_lists_the_real_reasons() {
    let out = evkit()
        .args(["replay", "--help"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(out).unwrap();
    assert!(!help.contains("retries-exhausted"), "{help}");
    for reason in [
        "validation",
        "decode",
        "rejected",
        "error",
        "timeout",
        "panic",
    ] {
        assert!(help.contains(reason), "{reason}: {help}");
    }
}

/// `--threads` sizes the runtime of the commands that consume; 0 is refused.
#[test]
fn threads_size_the_runtime() {
    evkit()
        .args(["--threads", "0", "topics"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("0 is not in 1.."));
    evkit()
        .args([
            "--threads",
            "3",
            "bench",
            "--topic",
            TODO,
            "--messages",
            "100",
        ])
        .args(["--partitions", "2", "--format", "json"])
        .assert()
        .success()
        .stdout(predicate::str::contains(r#""messages":100"#));
}
