//! CloudEvents structured and binary mode, and dispatch on `dataschema`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evkit_schema::cloudevents::{CloudEvent, STRUCTURED_CONTENT_TYPE};
use evkit_schema::{Catalog, Message, Part, encode_identity};
use serde_json::json;

const HEALTH: &str =
    "https://console.redhat.com/api/schemas/apps/rhel-idm/v1/domain-health-changed.json";
const DELETED: &str = "https://console.redhat.com/api/schemas/apps/inventory/v1/host-deleted.json";

fn catalog() -> Catalog {
    Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))
        .expect("sample catalog loads")
}

fn notification(dataschema: &str, data: serde_json::Value) -> Vec<u8> {
    let mut ce = CloudEvent::new(
        "evt-1",
        "urn:redhat:source:console:app:idmsvc",
        "com.redhat.console.notification",
    );
    ce.dataschema = Some(dataschema.to_owned());
    ce.time = Some("2026-11-01T12:05:00Z".to_owned());
    serde_json::to_vec(&ce.structured(data)).unwrap()
}

fn health() -> serde_json::Value {
    json!({"domain_id": "4f5ac7a4-51b0-4fb5-9b4e-6f1e6f0f5f6c", "status": "degraded"})
}

#[test]
fn structured_mode_validates_data_by_its_dataschema() {
    let catalog = catalog();
    let c = catalog.contract("platform.notifications.ingress").unwrap();
    let payload = notification(HEALTH, health());
    let m = Message::new(&payload)
        .header("content-type", STRUCTURED_CONTENT_TYPE.as_bytes())
        .header("x-rh-insights-request-id", b"r-1");
    let checked = c.check(&m).expect("valid notification");
    assert_eq!(checked.payload["status"], "degraded");
    let ce = checked.cloudevent.unwrap();
    assert_eq!(ce.dataschema(), Some(HEALTH));
    assert_eq!(ce.event_type(), "com.redhat.console.notification");
    // Every attribute the producer set comes back, and nothing it did not set.
    let mut sent = CloudEvent::new(
        "evt-1",
        "urn:redhat:source:console:app:idmsvc",
        "com.redhat.console.notification",
    );
    sent.dataschema = Some(HEALTH.to_owned());
    sent.time = Some("2026-11-01T12:05:00Z".to_owned());
    assert_eq!(ce.to_event(), sent);
    assert_eq!(ce.subject(), None);

    // The same data under the other dataschema breaks that definition's rules.
    let payload = notification(DELETED, health());
    let err = c
        .check(&Message::new(&payload).header("x-rh-insights-request-id", b"r-1"))
        .unwrap_err();
    assert!(
        err.violations()
            .iter()
            .any(|v| v.part == Part::Payload && v.rule == "required"),
        "{err}"
    );
    assert!(
        err.violations()
            .iter()
            .all(|v| v.instance_path.starts_with("/data") || v.instance_path.is_empty()),
        "{err}"
    );
}

#[test]
fn structured_mode_rejects_unknown_dataschema_missing_attributes_and_wrong_content_type() {
    let catalog = catalog();
    let c = catalog.contract("platform.notifications.ingress").unwrap();
    let payload = notification("https://example.test/other.json", health());
    let err = c
        .check(&Message::new(&payload).header("x-rh-insights-request-id", b"r"))
        .unwrap_err();
    assert!(
        err.violations().iter().any(|v| v.rule == "dataschema"),
        "{err}"
    );

    let payload =
        serde_json::to_vec(&json!({"specversion": "0.3", "data": health(), "dataschema": HEALTH}))
            .unwrap();
    let err = c
        .check(&Message::new(&payload).header("x-rh-insights-request-id", b"r"))
        .unwrap_err();
    let rules: Vec<_> = err
        .violations()
        .iter()
        .map(|v| (v.part.clone(), v.rule.as_str()))
        .collect();
    assert!(rules.contains(&(Part::Envelope, "required")), "{rules:?}");
    assert!(rules.contains(&(Part::Envelope, "const")), "{rules:?}");

    let payload = notification(HEALTH, health());
    let m = Message::new(&payload)
        .header("content-type", b"text/plain")
        .header("x-rh-insights-request-id", b"r");
    let err = c.check(&m).unwrap_err();
    assert!(
        err.violations().iter().any(|v| v.rule == "content-type"),
        "{err}"
    );

    let err = c
        .check(&Message::new(b"[1]").header("x-rh-insights-request-id", b"r"))
        .unwrap_err();
    assert!(
        err.violations()
            .iter()
            .any(|v| v.part == Part::Envelope && v.rule == "type"),
        "{err}"
    );
}

fn domain() -> serde_json::Value {
    json!({
        "org_id": "12345",
        "domain_id": "4f5ac7a4-51b0-4fb5-9b4e-6f1e6f0f5f6c",
        "domain_name": "ipa.example.test",
        "domain_type": "rhel-idm",
        "registered_at": "2026-11-01T12:00:00Z",
        "servers": [{"fqdn": "ipa1.ipa.example.test", "subscription_manager_id": "d7d5c0a2-0c59-4d7b-8a41-1f3a1d6e2f10"}]
    })
}

#[test]
fn binary_mode_reads_ce_headers_and_validates_the_payload_as_data() {
    let catalog = catalog();
    let c = catalog
        .contract("platform.evkit.domain-registered")
        .unwrap();
    let mut ce = CloudEvent::new(
        "evt-9",
        "urn:redhat:source:evkit",
        "com.redhat.console.evkit.domain-registered",
    );
    ce.subject = Some("domains/4f5ac7a4".to_owned());
    let headers = ce.binary_headers();
    let id = encode_identity("12345", "System");
    let payload = serde_json::to_vec(&domain()).unwrap();
    let mut m = Message::new(&payload)
        .key(b"12345")
        .header("x-rh-identity", id.as_bytes())
        .header("x-rh-insights-request-id", b"r-2");
    for (n, v) in &headers {
        m = m.header(n, v.as_bytes());
    }
    let checked = c.check(&m).expect("valid binary event");
    let got = checked.cloudevent.unwrap();
    assert_eq!(got.id(), "evt-9");
    assert_eq!(got.specversion(), "1.0");
    assert_eq!(got.source(), "urn:redhat:source:evkit");
    assert_eq!(got.datacontenttype(), Some("application/json"));
    assert_eq!(got.subject(), Some("domains/4f5ac7a4"));
    assert_eq!((got.dataschema(), got.time()), (None, None));
    assert_eq!(CloudEvent::from(&got), ce);
    let debug = format!("{got:?}");
    assert!(
        debug.contains("id: \"evt-9\"") && !debug.contains("time"),
        "{debug}"
    );
    assert_eq!(checked.payload["domain_name"], "ipa.example.test");

    // Without the ce_* headers the envelope is missing.
    let bare = Message::new(&payload)
        .key(b"12345")
        .header("x-rh-identity", id.as_bytes())
        .header("x-rh-insights-request-id", b"r-2");
    let err = c.check(&bare).unwrap_err();
    assert!(
        err.violations()
            .iter()
            .any(|v| v.part == Part::Envelope && v.rule == "required"),
        "{err}"
    );

    // A ce_ header twice, and a non-JSON content type.
    let dup = m
        .clone()
        .header("CE_ID", b"evt-10")
        .header("content-type", b"text/xml");
    let err = c.check(&dup).unwrap_err();
    assert!(err.violations().iter().any(|v| v.rule == "unique"), "{err}");
}

#[test]
fn structured_event_roundtrips_through_attributes() {
    let ce = CloudEvent::new("1", "urn:x", "t");
    let v = ce.structured(json!({"a": 1}));
    assert_eq!(v["specversion"], "1.0");
    assert_eq!(v["data"]["a"], 1);
    let back: CloudEvent = serde_json::from_value(v).unwrap();
    assert_eq!(back, ce);
}

#[test]
fn attribute_formats_are_checked() {
    let catalog = catalog();
    let c = catalog.contract("platform.notifications.ingress").unwrap();
    let rule_for = |event: serde_json::Value| -> Vec<(String, String)> {
        let payload = serde_json::to_vec(&event).unwrap();
        match c.check(&Message::new(&payload).header("x-rh-insights-request-id", b"r")) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .violations()
                .iter()
                .map(|v| (v.instance_path.clone(), v.rule.clone()))
                .collect(),
        }
    };
    let base = || {
        json!({"specversion": "1.0", "id": "1", "source": "urn:x", "type": "t",
               "dataschema": HEALTH, "time": "2026-11-01T12:05:00.5+02:00", "data": health()})
    };
    assert!(rule_for(base()).is_empty(), "{:?}", rule_for(base()));
    for (field, value, rule) in [
        ("time", json!("2026-02-30T12:00:00Z"), "format"),
        ("time", json!("2026-11-01 12:00"), "format"),
        ("time", json!("2026-11-01T25:00:00Z"), "format"),
        ("dataschema", json!("not a uri"), "format"),
        ("source", json!("has space"), "format"),
        ("id", json!(""), "minLength"),
        ("id", json!(42), "type"),
        ("datacontenttype", json!("text/xml"), "pattern"),
        ("BadExtension", json!("x"), "propertyNames"),
    ] {
        let mut event = base();
        event[field] = value.clone();
        let found = rule_for(event);
        assert!(
            found
                .iter()
                .any(|(path, r)| path == &format!("/{field}") && r == rule),
            "{field}={value}: wanted {rule}, got {found:?}"
        );
    }
}
