//! The schema registry client against a scripted HTTP server (wiremock), with the request and
//! response bodies of the Confluent Schema Registry API reference: every call, every error
//! status (401, 403, 404, 409, 422, 5xx), retries, timeouts and a registry that is down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use evkit::config::{RegistryConfig, Secret, SubjectStrategy};
use evkit::registry::{Reference, Registry, SchemaText};
use serde_json::json;
use wiremock::matchers::{basic_auth, body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SUBJECT: &str = "platform.evkit.todo-created-value";
const MEDIA: &str = "application/vnd.schemaregistry.v1+json";

fn config(server: &MockServer) -> RegistryConfig {
    RegistryConfig {
        url: server.uri(),
        timeout_ms: 2_000,
        retries: 2,
        ..RegistryConfig::default()
    }
}

fn answer(status: u16, body: &serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string(), MEDIA)
}

fn schema() -> SchemaText {
    SchemaText::json(r#"{"type":"object","properties":{"id":{"type":"integer"}}}"#)
}

#[tokio::test]
async fn registers_with_basic_auth_and_the_documented_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/subjects/{SUBJECT}/versions")))
        .and(header("content-type", MEDIA))
        .and(basic_auth("svc", "s3cret"))
        .and(body_json(json!({
            "schema": schema().schema,
            "schemaType": "JSON",
            "references": [{"name": "common.json", "subject": "common.json", "version": 2}],
        })))
        .respond_with(answer(200, &json!({"id": 7})))
        .expect(1)
        .mount(&server)
        .await;
    let registry = Registry::new(&RegistryConfig {
        username: Some("svc".to_owned()),
        password: Some(Secret::new("s3cret")),
        ..config(&server)
    })
    .unwrap();
    let mut with_ref = schema();
    with_ref.references.push(Reference {
        name: "common.json".to_owned(),
        subject: "common.json".to_owned(),
        version: 2,
    });
    assert_eq!(registry.register(SUBJECT, &with_ref).await.unwrap(), 7);
    // The password never shows in Debug.
    let debug = format!("{registry:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("svc"), "{debug}");
}

#[tokio::test]
async fn lists_versions_ids_and_subjects_of_an_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/subjects/{SUBJECT}/versions")))
        .respond_with(answer(200, &json!([1, 2])))
        .mount(&server)
        .await;
    for (v, id) in [(1, 3), (2, 9)] {
        Mock::given(method("GET"))
            .and(path(format!("/subjects/{SUBJECT}/versions/{v}")))
            .respond_with(answer(
                200,
                &json!({"subject": SUBJECT, "version": v, "id": id, "schemaType": "JSON",
                       "schema": "{\"type\":\"object\"}"}),
            ))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/schemas/ids/9/versions"))
        .respond_with(answer(200, &json!([{"subject": SUBJECT, "version": 2}])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/schemas/ids/4/versions"))
        .respond_with(answer(
            200,
            &json!([{"subject": "other-value", "version": 1}]),
        ))
        .mount(&server)
        .await;
    let registry = Registry::new(&config(&server)).unwrap();
    assert_eq!(registry.versions(SUBJECT).await.unwrap(), vec![1, 2]);
    assert_eq!(registry.registered_ids(SUBJECT).await.unwrap(), vec![3, 9]);
    let v2 = registry.version(SUBJECT, "2").await.unwrap();
    assert_eq!((v2.id, v2.schema_type.as_deref()), (9, Some("JSON")));
    assert!(registry.id_in_subject(SUBJECT, 9).await.unwrap());
    assert!(!registry.id_in_subject(SUBJECT, 4).await.unwrap());
    // An id nobody registered: 40403, not listed.
    assert!(!registry.id_in_subject(SUBJECT, 5).await.unwrap());
}

#[tokio::test]
async fn looks_up_and_checks_compatibility() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/subjects/{SUBJECT}")))
        .respond_with(answer(
            200,
            &json!({"subject": SUBJECT, "id": 9, "version": 2, "schema": schema().schema}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/subjects/unknown-value"))
        .respond_with(answer(
            404,
            &json!({"error_code": 40401, "message": "Subject 'unknown-value' not found."}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/compatibility/subjects/{SUBJECT}/versions/latest"
        )))
        .and(query_param("verbose", "true"))
        .respond_with(answer(
            200,
            &json!({"is_compatible": false,
                   "messages": ["Found incompatible change: {type:REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL, location:#/required}"]}),
        ))
        .mount(&server)
        .await;
    let registry = Registry::new(&config(&server)).unwrap();
    let found = registry.lookup(SUBJECT, &schema()).await.unwrap().unwrap();
    assert_eq!((found.id, found.version), (9, 2));
    assert!(
        registry
            .lookup("unknown-value", &schema())
            .await
            .unwrap()
            .is_none()
    );
    let verdict = registry
        .check_compatibility(SUBJECT, &schema())
        .await
        .unwrap();
    assert!(!verdict.is_compatible);
    assert!(verdict.messages[0].contains("REQUIRED_PROPERTY_ADDED"));
}

/// Each error status the API documents, with its `error_code` and `message`, becomes an error
/// naming the subject and version, the status, the code and what it means; none is retried.
#[tokio::test]
async fn every_error_status_is_named_and_not_retried() {
    let cases = [
        (
            401,
            401,
            "Unauthorized",
            "unauthorized: check the registry username",
        ),
        (403, 403, "User cannot access the resource.", "forbidden"),
        (404, 40402, "Version 7 not found.", "not found"),
        (
            409,
            409,
            "Schema being registered is incompatible with an earlier schema",
            "incompatible with an earlier version",
        ),
        (
            422,
            42202,
            "The specified version '-3' is not a valid version id.",
            "rejected the request",
        ),
    ];
    for (status, code, message, hint) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/subjects/{SUBJECT}/versions/7")))
            .respond_with(answer(
                status,
                &json!({"error_code": code, "message": message}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let registry = Registry::new(&config(&server)).unwrap();
        let err = registry.version(SUBJECT, "7").await.unwrap_err();
        let text = err.to_string();
        for part in [
            &format!("subject `{SUBJECT}` version 7"),
            &format!("HTTP {status}"),
            &format!("error_code {code}"),
            message,
            hint,
        ] {
            assert!(
                text.contains(part),
                "{status}: `{part}` missing from: {text}"
            );
        }
        match err {
            evkit::Error::Registry {
                status: s,
                error_code,
                ..
            } => assert_eq!((s, error_code), (Some(status), Some(i64::from(code)))),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/subjects/{SUBJECT}/versions")))
        .respond_with(answer(
            500,
            &json!({"error_code": 50001, "message": "Error in the backend data store"}),
        ))
        .expect(3) // the first try and two retries
        .mount(&server)
        .await;
    let registry = Registry::new(&config(&server)).unwrap();
    let text = registry
        .register(SUBJECT, &schema())
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("HTTP 500"), "{text}");
    assert!(text.contains("error_code 50001"), "{text}");
    assert!(text.contains(SUBJECT), "{text}");
    assert!(text.contains("the registry failed"), "{text}");
}

#[tokio::test]
async fn a_transient_failure_is_retried_to_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/subjects/{SUBJECT}/versions")))
        .respond_with(answer(
            503,
            &json!({"error_code": 50003, "message": "Error while forwarding the request to the leader"}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/subjects/{SUBJECT}/versions")))
        .respond_with(answer(200, &json!({"id": 11})))
        .expect(1)
        .mount(&server)
        .await;
    let registry = Registry::new(&config(&server)).unwrap();
    assert_eq!(registry.register(SUBJECT, &schema()).await.unwrap(), 11);
}

#[tokio::test]
async fn a_slow_registry_times_out_after_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/subjects/{SUBJECT}/versions")))
        .respond_with(answer(200, &json!([1])).set_delay(Duration::from_secs(3)))
        .expect(2)
        .mount(&server)
        .await;
    let registry = Registry::new(&RegistryConfig {
        timeout_ms: 200,
        retries: 1,
        ..config(&server)
    })
    .unwrap();
    let text = registry.versions(SUBJECT).await.unwrap_err().to_string();
    assert!(text.contains("no answer from the registry"), "{text}");
    assert!(text.contains(SUBJECT), "{text}");
}

#[tokio::test]
async fn a_registry_that_is_down_is_a_clear_error() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let registry = Registry::new(&RegistryConfig {
        url: format!("http://127.0.0.1:{port}"),
        retries: 1,
        ..RegistryConfig::default()
    })
    .unwrap();
    let text = registry.versions(SUBJECT).await.unwrap_err().to_string();
    assert!(text.contains("no answer from the registry"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
}

#[tokio::test]
async fn an_answer_of_the_wrong_shape_is_an_error_not_a_panic() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/subjects/{SUBJECT}/versions")))
        .respond_with(answer(200, &json!({"identifier": "seven"})))
        .mount(&server)
        .await;
    let registry = Registry::new(&config(&server)).unwrap();
    let text = registry
        .register(SUBJECT, &schema())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("not what the registry API documents"),
        "{text}"
    );
}

#[test]
fn bad_settings_are_refused() {
    let err = Registry::new(&RegistryConfig {
        url: "registry:8081".to_owned(),
        ..RegistryConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("not an http"), "{err}");
    let err = Registry::new(&RegistryConfig {
        url: "http://r".to_owned(),
        password: Some(Secret::new("p")),
        ..RegistryConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("without a username"), "{err}");
}

#[test]
fn subject_strategies_name_subjects_as_confluent_does() {
    let t = "platform.evkit.todo-created";
    assert_eq!(
        SubjectStrategy::TopicName.subject(t, Some("TodoCreated")),
        Some(format!("{t}-value"))
    );
    assert_eq!(
        SubjectStrategy::RecordName.subject(t, Some("TodoCreated")),
        Some("TodoCreated".to_owned())
    );
    assert_eq!(
        SubjectStrategy::TopicRecordName.subject(t, Some("TodoCreated")),
        Some(format!("{t}-TodoCreated"))
    );
    assert_eq!(SubjectStrategy::RecordName.subject(t, None), None);
}

/// TLS: a registry behind a certificate of a private CA (`openssl s_server`, which answers any
/// GET with a status page) is reached when `ca_file` names that CA, and refused otherwise. The
/// page is not a registry answer, which shows the TLS session carried the request.
#[tokio::test]
async fn tls_trusts_the_configured_ca_and_only_it() {
    let have_openssl = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_openssl {
        assert!(
            std::env::var("EVKIT_REQUIRE_THIRD_PARTY").is_err(),
            "openssl is required here (EVKIT_REQUIRE_THIRD_PARTY is set)"
        );
        println!("skipped: no openssl command");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    make_certificates(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-www", "-quiet", "-accept"])
        .arg(port.to_string())
        .args(["-cert", &p("server.crt"), "-key", &p("server.key")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("https://localhost:{port}");
    let trusted = Registry::new(&RegistryConfig {
        url: url.clone(),
        ca_file: Some(dir.path().join("ca.crt")),
        retries: 0,
        ..RegistryConfig::default()
    })
    .unwrap();
    let through = trusted.versions(SUBJECT).await.unwrap_err().to_string();
    let untrusted = Registry::new(&RegistryConfig {
        url,
        retries: 0,
        ..RegistryConfig::default()
    })
    .unwrap();
    let refused = untrusted.versions(SUBJECT).await.unwrap_err().to_string();
    let _ = server.kill();
    let _ = server.wait();
    // With the CA: the TLS session worked, and the answer (an HTML page) is not the registry's.
    assert!(
        through.contains("not what the registry API documents"),
        "{through}"
    );
    // Without it: no answer, the certificate is not trusted.
    assert!(refused.contains("no answer from the registry"), "{refused}");
    // A CA file that is not PEM is a clear configuration error.
    std::fs::write(p("junk.pem"), "not a certificate").unwrap();
    let err = Registry::new(&RegistryConfig {
        url: "https://localhost:1".to_owned(),
        ca_file: Some(dir.path().join("junk.pem")),
        ..RegistryConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("junk.pem"), "{err}");
}

/// A private CA (`ca.crt`) and a certificate for `localhost` it signed (`server.crt`,
/// `server.key`), made with the openssl command in `dir`.
fn make_certificates(dir: &std::path::Path) {
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=evkit test CA",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.crt"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &p("server.key"),
        "-out",
        &p("server.csr"),
    ]);
    std::fs::write(p("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.crt"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p("san.ext"),
        "-out",
        &p("server.crt"),
    ]);
}
