//! `evkit registry push|pull|check` against a scripted schema registry (wiremock, with the
//! Confluent API's documented bodies), and `validate`, `produce` and `consume` on a
//! `wire: confluent` topic. Errors exit 2, an invalid message 1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TODO: &str = "platform.evkit.todo-created";
const VALID: &str =
    r#"{"id": 42, "org_id": "12345", "title": "Water", "created_at": "2026-11-01T09:30:00Z"}"#;
const MEDIA: &str = "application/vnd.schemaregistry.v1+json";

fn samples() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))
}

/// The sample catalog with todo-created on the Confluent wire format.
fn confluent_catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    evkit_testkit::catalogs::with_confluent_wire(&samples(), dir.path(), &[TODO]).unwrap();
    dir
}

fn evkit(catalog: &Path) -> Command {
    let mut cmd = Command::cargo_bin("evkit").unwrap();
    cmd.arg("--catalog").arg(catalog);
    cmd.env_remove("EVKIT_SCHEMA_REGISTRY_URL");
    cmd.timeout(std::time::Duration::from_secs(60));
    cmd
}

fn answer(status: u16, body: &Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string(), MEDIA)
}

/// A tokio runtime and a mock registry on it (the runtime must outlive the server).
fn server() -> (tokio::runtime::Runtime, MockServer) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    (rt, server)
}

fn todo_schema() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(samples().join(format!("{TODO}.event.json"))).unwrap(),
    )
    .unwrap()
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn push_registers_every_owned_topic_once() {
    let (rt, server) = server();
    rt.block_on(async {
        // todo-created is registered already; every other subject is new.
        Mock::given(method("POST"))
            .and(path(format!("/subjects/{TODO}-value")))
            .respond_with(answer(
                200,
                &json!({"subject": format!("{TODO}-value"), "id": 5, "version": 1, "schema": "{}"}),
            ))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/subjects/[^/]+-value$"))
            .respond_with(answer(
                404,
                &json!({"error_code": 40401, "message": "Subject not found."}),
            ))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/subjects/[^/]+-value/versions$"))
            .respond_with(answer(200, &json!({"id": 17})))
            .mount(&server)
            .await;
    });
    let out = evkit(&samples())
        .args([
            "registry",
            "push",
            "--registry",
            &server.uri(),
            "--format",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lines = json_lines(&out);
    let catalog = evkit_schema::Catalog::load(samples()).unwrap();
    let owned: Vec<&str> = catalog
        .topics()
        .iter()
        .filter(|t| t.spec.owner == evkit_schema::Owner::Owned)
        .map(evkit_schema::Topic::name)
        .collect();
    assert_eq!(lines.len(), owned.len(), "{lines:?}");
    for line in &lines {
        let topic = line["topic"].as_str().unwrap();
        assert!(owned.contains(&topic), "{line}");
        assert_eq!(line["subject"], format!("{topic}-value"));
        if topic == TODO {
            assert_eq!(
                (line["id"].as_u64(), line["registered"].as_bool()),
                (Some(5), Some(false))
            );
        } else {
            assert_eq!(
                (line["id"].as_u64(), line["registered"].as_bool()),
                (Some(17), Some(true))
            );
        }
    }
    // What was registered is the catalog's schema, as a JSON Schema.
    let requests = rt.block_on(server.received_requests()).unwrap();
    let registered: Vec<Value> = requests
        .iter()
        .filter(|r| r.url.path().ends_with("/versions"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(registered.len(), owned.len() - 1);
    for body in &registered {
        assert_eq!(body["schemaType"], "JSON");
        let schema: Value = serde_json::from_str(body["schema"].as_str().unwrap()).unwrap();
        assert!(schema.is_object());
    }
}

#[test]
fn registry_errors_name_the_subject_status_and_cause() {
    let (rt, server) = server();
    rt.block_on(
        Mock::given(method("POST"))
            .respond_with(answer(
                401,
                &json!({"error_code": 401, "message": "Unauthorized"}),
            ))
            .mount(&server),
    );
    evkit(&samples())
        .args([
            "registry",
            "push",
            "--topic",
            TODO,
            "--registry",
            &server.uri(),
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(format!("subject `{TODO}-value`")))
        .stderr(predicates::str::contains("HTTP 401"))
        .stderr(predicates::str::contains(
            "check the registry username and password",
        ));
    // No registry at all.
    evkit(&samples())
        .args(["registry", "push"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--registry URL"));
    // A registry that is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    evkit(&samples())
        .args(["registry", "pull", "--subject", "x-value"])
        .args(["--registry", &format!("http://127.0.0.1:{port}")])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no answer from the registry"));
}

#[test]
fn pull_writes_every_version_and_the_topics_schema() {
    let (rt, server) = server();
    let subject = format!("{TODO}-value");
    let v1 = json!({"type": "object"});
    let v2 = todo_schema();
    rt.block_on(async {
        Mock::given(method("GET"))
            .and(path(format!("/subjects/{subject}/versions")))
            .respond_with(answer(200, &json!([1, 2])))
            .mount(&server)
            .await;
        for (v, schema) in [(1, &v1), (2, &v2)] {
            Mock::given(method("GET"))
                .and(path(format!("/subjects/{subject}/versions/{v}")))
                .respond_with(answer(
                    200,
                    &json!({"subject": subject, "version": v, "id": 10 + v, "schemaType": "JSON",
                            "schema": schema.to_string()}),
                ))
                .mount(&server)
                .await;
        }
    });
    let out = tempfile::tempdir().unwrap();
    evkit(&samples())
        .args([
            "registry",
            "pull",
            "--topic",
            TODO,
            "--registry",
            &server.uri(),
        ])
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let read = |name: String| -> Value {
        serde_json::from_str(&std::fs::read_to_string(out.path().join(name)).unwrap()).unwrap()
    };
    assert_eq!(read(format!("{subject}.v1.json")), v1);
    assert_eq!(read(format!("{subject}.v2.json")), v2);
    assert_eq!(read(format!("{TODO}.event.json")), v2);
    // A subject the registry does not have.
    rt.block_on(
        Mock::given(method("GET"))
            .and(path("/subjects/nope-value/versions"))
            .respond_with(answer(
                404,
                &json!({"error_code": 40401, "message": "Subject 'nope-value' not found."}),
            ))
            .mount(&server),
    );
    evkit(&samples())
        .args([
            "registry",
            "pull",
            "--subject",
            "nope-value",
            "--registry",
            &server.uri(),
        ])
        .arg("--out")
        .arg(out.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("subject `nope-value`"))
        .stderr(predicates::str::contains("error_code 40401"));
}

/// `check` shows the registry's verdict and evkit's gate side by side; the gate's verdict is
/// computed here, on the registered schema and the catalog's.
#[test]
fn check_shows_the_registrys_verdict_beside_the_gates() {
    let subject = format!("{TODO}-value");
    // The registered version lacks `title` from `required`: the catalog's schema rejects what
    // producers of the registered one may send (backward incompatible).
    let mut older = todo_schema();
    let required = older["required"].as_array_mut().unwrap();
    required.retain(|r| r != "title");
    for (registered, registry_says, exit) in [(older, false, 1), (todo_schema(), true, 0)] {
        let (rt, server) = server();
        rt.block_on(async {
            Mock::given(method("GET"))
                .and(path(format!("/subjects/{subject}/versions/latest")))
                .respond_with(answer(
                    200,
                    &json!({"subject": subject, "version": 3, "id": 30, "schemaType": "JSON",
                            "schema": registered.to_string()}),
                ))
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path(format!(
                    "/compatibility/subjects/{subject}/versions/latest"
                )))
                .respond_with(answer(
                    200,
                    &json!({"is_compatible": registry_says, "messages": if registry_says { json!([]) } else { json!(["REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/required"]) }}),
                ))
                .mount(&server)
                .await;
        });
        let out = evkit(&samples())
            .args([
                "registry",
                "check",
                "--topic",
                TODO,
                "--registry",
                &server.uri(),
            ])
            .args(["--format", "json"])
            .assert()
            .code(exit)
            .get_output()
            .stdout
            .clone();
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["registered_version"], 3);
        assert_eq!(line["registry"]["compatible"], registry_says, "{line}");
        assert_eq!(line["evkit"]["compatible"], registry_says, "{line}");
        if !registry_says {
            let findings = line["evkit"]["findings"].to_string();
            assert!(findings.contains("required"), "{line}");
        }
    }
}

#[test]
fn validate_reads_and_frames_the_confluent_wire_format() {
    let catalog = confluent_catalog();
    let id = evkit_schema::encode_identity("12345", "User");
    let validate = |payload: Vec<u8>, extra: &[&str]| {
        evkit(catalog.path())
            .args([
                "validate", "--topic", TODO, "--key", "12345", "--format", "json",
            ])
            .args(["--header", &format!("x-rh-identity={id}")])
            .args(["--header", "x-rh-insights-request-id=req-1"])
            .args(extra)
            .write_stdin(payload)
            .assert()
    };
    // A framed payload is read as it is.
    let framed = evkit_schema::confluent::frame(7, VALID.as_bytes());
    let out = validate(framed, &[]).success().get_output().stdout.clone();
    assert_eq!(json_lines(&out)[0]["schema_id"], 7);
    // Plain JSON is framed with --schema-id.
    let out = validate(VALID.into(), &["--schema-id", "9"])
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(json_lines(&out)[0]["schema_id"], 9);
    // Without an id, plain JSON breaks the framing rule.
    let out = validate(VALID.into(), &[])
        .code(1)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json_lines(&out)[0]["violations"][0]["rule"], "wire-magic");
    // --schema-id on a JSON topic is a usage mistake.
    evkit(&samples())
        .args(["validate", "--topic", TODO, "--schema-id", "9"])
        .write_stdin(VALID)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("JSON topic"));
    // With --registry, the id is the one the registry gave the catalog's schema.
    let (rt, server) = server();
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(format!("/subjects/{TODO}-value")))
            .respond_with(answer(
                200,
                &json!({"subject": format!("{TODO}-value"), "id": 42, "version": 1, "schema": "{}"}),
            ))
            .mount(&server),
    );
    let out = validate(VALID.into(), &["--registry", &server.uri()])
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(json_lines(&out)[0]["schema_id"], 42);
}

#[test]
fn produce_frames_and_consume_shows_the_schema_id() {
    let catalog = confluent_catalog();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker = rt.block_on(evkit_testkit::Broker::start()).unwrap();
    rt.block_on(broker.create_topic(TODO, 1)).unwrap();
    let bootstrap = broker.bootstrap_servers().to_owned();
    let produce = || {
        let mut cmd = evkit(catalog.path());
        cmd.args(["produce", "--topic", TODO, "--org-id", "12345"])
            .args(["--bootstrap", &bootstrap]);
        cmd
    };
    // Without an id the producer refuses, saying how to give one.
    produce()
        .write_stdin(VALID)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--schema-id"));
    produce()
        .args(["--schema-id", "42"])
        .write_stdin(VALID)
        .assert()
        .success();
    let out = evkit(catalog.path())
        .args([
            "consume",
            "--topic",
            TODO,
            "--from-beginning",
            "--count",
            "1",
        ])
        .args(["--bootstrap", &bootstrap, "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let line = &json_lines(&out)[0];
    assert_eq!(line["schema_id"], 42, "{line}");
    assert_eq!(line["valid"], true, "{line}");
    let payload: Value = serde_json::from_str(line["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["title"], "Water");
}

/// Generated message lines of a `wire: confluent` topic carry the frame's `schema_id` beside
/// the JSON, and `validate --lines` frames them again: valid lines pass, and a line that lost
/// its `schema_id` breaks the framing rule.
#[test]
fn message_lines_carry_the_schema_id_through_generate_and_validate() {
    let catalog = confluent_catalog();
    let out = evkit(catalog.path())
        .args(["generate-examples", "--topic", TODO, "--count", "5"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let mut lines = json_lines(&out);
    assert_eq!(lines.len(), 5);
    for line in &lines {
        assert_eq!(line["schema_id"], 1, "{line}");
        let _: Value = serde_json::from_str(line["payload"].as_str().unwrap()).unwrap();
    }
    let text = |lines: &[Value]| {
        lines
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    evkit(catalog.path())
        .args(["validate", "--lines"])
        .write_stdin(text(&lines))
        .assert()
        .success();
    lines[2].as_object_mut().unwrap().remove("schema_id");
    evkit(catalog.path())
        .args(["validate", "--lines"])
        .write_stdin(text(&lines))
        .assert()
        .code(1)
        .stdout(predicates::str::contains("wire-magic"));
}
