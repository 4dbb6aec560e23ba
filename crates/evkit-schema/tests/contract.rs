//! Key, header and payload rules of the sample catalog, and every kind of bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use evkit_schema::{Catalog, Contract, Error, Message, Part, encode_identity};
use std::sync::Arc;

const TODO: &str = "platform.evkit.todo-created";
const NOTIFICATIONS: &str = "platform.notifications.ingress";
const VALID: &[u8] =
    br#"{"id": 42, "org_id": "12345", "title": "Water the plants", "created_at": "2026-11-01T09:30:00Z"}"#;

fn catalog() -> Catalog {
    Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))
        .expect("sample catalog loads")
}

fn todo() -> Arc<Contract> {
    catalog().contract(TODO).expect("todo topic").clone()
}

fn with_headers<'a>(m: Message<'a>, identity: &'a str) -> Message<'a> {
    m.header("x-rh-identity", identity.as_bytes())
        .header("x-rh-insights-request-id", b"req-1")
}

/// Runs the check and returns `(part, instance_path, rule)` of every violation.
fn violations(contract: &Contract, m: &Message<'_>) -> Vec<(Part, String, String)> {
    match contract.check(m) {
        Ok(_) => Vec::new(),
        Err(Error::Invalid { topic, violations }) => {
            assert_eq!(topic, contract.topic());
            assert!(!contract.is_valid(m), "is_valid must agree with check");
            violations
                .into_iter()
                .map(|v| (v.part, v.instance_path, v.rule))
                .collect()
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// Whether the identity header broke `rule`.
fn identity_broke(found: &[(Part, String, String)], rule: &str) -> bool {
    found
        .iter()
        .any(|(p, _, r)| *p == Part::Header("x-rh-identity".to_owned()) && r == rule)
}

fn has(found: &[(Part, String, String)], part: &Part, path: &str, rule: &str) -> bool {
    found
        .iter()
        .any(|(p, i, r)| p == part && i == path && r == rule)
}

#[test]
fn valid_message_passes_and_reports_identity_and_request_id() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let m = with_headers(Message::new(VALID).key(b"12345"), &id);
    let checked = c.check(&m).expect("valid");
    assert!(c.is_valid(&m));
    let identity = checked.identity.expect("identity decoded");
    assert_eq!(identity.org_id(), "12345");
    assert_eq!(identity.principal_type(), "User");
    assert_eq!(checked.request_id.as_deref(), Some("req-1"));
    assert_eq!(checked.payload["title"], "Water the plants");
}

#[test]
fn header_names_match_case_insensitively() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let m = Message::new(VALID)
        .key(b"12345")
        .header("X-RH-Identity", id.as_bytes())
        .header("X-Rh-Insights-Request-Id", b"req-1");
    assert!(c.check(&m).is_ok());
}

#[test]
fn invalid_json_is_reported_with_position() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let m = with_headers(Message::new(br#"{"id": 42,"#).key(b"12345"), &id);
    let err = c.check(&m).unwrap_err();
    let v = &err.violations()[0];
    assert_eq!((v.part.clone(), v.rule.as_str()), (Part::Payload, "json"));
    assert!(v.message.contains("line 1"), "{}", v.message);
}

#[test]
fn wrong_types_missing_fields_and_unknown_fields_name_their_paths() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let payload =
        br#"{"id": 1.5, "org_id": "12345", "created_at": "2026-11-01T09:30:00Z", "colour": "red"}"#;
    let found = violations(&c, &with_headers(Message::new(payload).key(b"12345"), &id));
    assert!(has(&found, &Part::Payload, "/id", "type"), "{found:?}");
    assert!(has(&found, &Part::Payload, "", "required"), "{found:?}");
    assert!(
        has(&found, &Part::Payload, "", "additionalProperties"),
        "{found:?}"
    );
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn errors_are_masked_and_carry_schema_paths() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let secret = "hunter2-secret-title-".repeat(20);
    let payload = format!(
        r#"{{"id": 1, "org_id": "12345", "title": "{secret}", "created_at": "2026-11-01T09:30:00Z"}}"#
    );
    let err = c
        .check(&with_headers(
            Message::new(payload.as_bytes()).key(b"12345"),
            &id,
        ))
        .unwrap_err();
    let v = &err.violations()[0];
    assert_eq!(v.instance_path, "/title");
    assert_eq!(v.schema_path, "/properties/title/maxLength");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().contains(TODO), "{err}");
}

#[test]
fn ten_megabyte_payload_is_rejected_before_parsing() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let mut big = br#"{"id": 1, "org_id": "12345", "title": "x", "created_at": "2026-11-01T09:30:00Z", "description": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    big.extend(br#""}"#);
    let found = violations(&c, &with_headers(Message::new(&big).key(b"12345"), &id));
    assert!(has(&found, &Part::Payload, "", "maxSize"), "{found:?}");
}

#[test]
fn json_nested_ten_thousand_deep_is_an_error_not_a_stack_overflow() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let mut deep = "[".repeat(10_000);
    deep.push_str(&"]".repeat(10_000));
    let found = violations(
        &c,
        &with_headers(Message::new(deep.as_bytes()).key(b"12345"), &id),
    );
    assert!(has(&found, &Part::Payload, "", "json"), "{found:?}");
    // Deep but under the parser's limit: the schema rejects it, nothing overflows.
    let mut nested = r#"{"id": 1, "org_id": "12345", "title": "x", "created_at": "2026-11-01T09:30:00Z", "tags": "#.to_owned();
    nested.push_str(&"[".repeat(100));
    nested.push_str(&"]".repeat(100));
    nested.push('}');
    let found = violations(
        &c,
        &with_headers(Message::new(nested.as_bytes()).key(b"12345"), &id),
    );
    assert!(
        found.iter().any(|(_, path, _)| path.starts_with("/tags")),
        "{found:?}"
    );
}

#[test]
fn invalid_utf8_in_payload_key_and_headers() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let payload = b"{\"id\": 1, \"org_id\": \"12345\", \"title\": \"\xff\xfe\", \"created_at\": \"2026-11-01T09:30:00Z\"}";
    let found = violations(&c, &with_headers(Message::new(payload).key(b"12345"), &id));
    assert!(has(&found, &Part::Payload, "", "json"), "{found:?}");

    let found = violations(
        &c,
        &with_headers(Message::new(VALID).key(b"\xff12345"), &id),
    );
    assert!(has(&found, &Part::Key, "", "utf8"), "{found:?}");

    let m = Message::new(VALID)
        .key(b"12345")
        .header("x-rh-identity", b"\xc3\x28")
        .header("x-rh-insights-request-id", b"r");
    let found = violations(&c, &m);
    assert!(
        has(&found, &Part::Header("x-rh-identity".into()), "", "utf8"),
        "{found:?}"
    );
}

#[test]
fn identity_must_be_base64_json_with_an_org_id() {
    let c = todo();
    let cases: Vec<(String, &str)> = vec![
        ("not base64 at all!".to_owned(), "base64"),
        ("QUJD".to_owned(), "json"), // base64 of "ABC"
        (base64_of(r#"{"identity": {"type": "User"}}"#), "required"),
        (
            base64_of(r#"{"identity": {"org_id": 12345, "type": "User"}}"#),
            "type",
        ),
        (base64_of("[1, 2, 3]"), "type"),
    ];
    for (value, rule) in cases {
        let m = Message::new(VALID)
            .key(b"12345")
            .header("x-rh-identity", value.as_bytes())
            .header("x-rh-insights-request-id", b"req-1");
        let found = violations(&c, &m);
        assert!(
            identity_broke(&found, rule),
            "{value}: wanted {rule}, got {found:?}"
        );
        // The raw identity never appears in the error text.
        let text = c.check(&m).unwrap_err().to_string();
        assert!(!text.contains(&value), "{text}");
    }
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn missing_and_duplicated_headers() {
    let c = todo();
    let found = violations(&c, &Message::new(VALID).key(b"12345"));
    assert!(
        has(
            &found,
            &Part::Header("x-rh-identity".into()),
            "",
            "required"
        ),
        "{found:?}"
    );
    assert!(
        has(
            &found,
            &Part::Header("x-rh-insights-request-id".into()),
            "",
            "required"
        ),
        "{found:?}"
    );

    let id = encode_identity("12345", "User");
    let m = with_headers(Message::new(VALID).key(b"12345"), &id)
        .header("X-RH-INSIGHTS-REQUEST-ID", b"other");
    let found = violations(&c, &m);
    assert!(
        has(
            &found,
            &Part::Header("x-rh-insights-request-id".into()),
            "",
            "unique"
        ),
        "{found:?}"
    );

    let m = Message::new(VALID)
        .key(b"12345")
        .header("x-rh-identity", id.as_bytes())
        .null_header("x-rh-insights-request-id");
    let found = violations(&c, &m);
    assert!(
        has(
            &found,
            &Part::Header("x-rh-insights-request-id".into()),
            "",
            "type"
        ),
        "{found:?}"
    );
}

#[test]
fn request_id_format() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let check = |request_id: &[u8]| {
        let m = Message::new(VALID)
            .key(b"12345")
            .header("x-rh-identity", id.as_bytes())
            .header("x-rh-insights-request-id", request_id);
        c.check(&m)
    };
    for good in [&b"req-1"[..], b"3f1c2a9e-bench.request_2", b"A"] {
        let checked = check(good).expect("a valid request id");
        assert_eq!(checked.request_id.as_deref().map(str::as_bytes), Some(good));
    }
    for (bad, rule, path) in [
        (
            &b"-starts-with-dash"[..],
            "not",
            "/properties/x-rh-insights-request-id/not",
        ),
        (
            b".hidden",
            "not",
            "/properties/x-rh-insights-request-id/not",
        ),
        (
            b"has space",
            "pattern",
            "/properties/x-rh-insights-request-id/pattern",
        ),
        (
            b"",
            "minLength",
            "/properties/x-rh-insights-request-id/minLength",
        ),
    ] {
        let Err(Error::Invalid { violations, .. }) = check(bad) else {
            panic!("{:?} must be refused", String::from_utf8_lossy(bad));
        };
        assert!(
            violations.iter().any(
                |v| v.part == Part::Header("x-rh-insights-request-id".into())
                    && v.rule == rule
                    && v.schema_path == path
            ),
            "{:?}: {violations:?}",
            String::from_utf8_lossy(bad)
        );
        // The value is never echoed.
        if !bad.is_empty() {
            let text = String::from_utf8_lossy(bad);
            assert!(violations.iter().all(|v| !v.message.contains(&*text)));
        }
    }
}

#[test]
fn the_historical_request_id_misspelling_does_not_count() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let m = Message::new(VALID)
        .key(b"12345")
        .header("x-rh-identity", id.as_bytes())
        .header("x-rh-insight-request-id", b"req-1");
    let found = violations(&c, &m);
    assert!(
        has(
            &found,
            &Part::Header("x-rh-insights-request-id".into()),
            "",
            "required"
        ),
        "{found:?}"
    );
}

#[test]
fn key_rules() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let found = violations(&c, &with_headers(Message::new(VALID).key(b""), &id));
    assert!(has(&found, &Part::Key, "", "required"), "{found:?}");
    let found = violations(&c, &with_headers(Message::new(VALID), &id));
    assert!(has(&found, &Part::Key, "", "required"), "{found:?}");
    let found = violations(&c, &with_headers(Message::new(VALID).key(b"54321"), &id));
    assert!(
        has(&found, &Part::Key, "/org_id", "key-pointer"),
        "{found:?}"
    );
    assert_eq!(
        c.key_for(&serde_json::json!({"org_id": "777"})).as_deref(),
        Some("777")
    );
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(2_000))]
    /// A key schema (notifications: a string of 1 to 128 characters) is judged as jsonschema
    /// judges the key on its own: code points, not bytes, at both bounds.
    #[test]
    fn a_key_schema_judges_keys_as_jsonschema_does(
        key in proptest::string::string_regex("(a|é|😀|-| ){0,130}").unwrap(),
    ) {
        static CATALOG: std::sync::LazyLock<Catalog> = std::sync::LazyLock::new(catalog);
        let catalog = &*CATALOG;
        let topic = catalog.topic(NOTIFICATIONS).unwrap();
        let schema = topic.spec.key.schema.clone().unwrap();
        let oracle = jsonschema::validator_for(&schema).unwrap();
        let c = catalog.contract(NOTIFICATIONS).unwrap();
        let found = violations(c, &Message::new(b"{}").key(key.as_bytes()));
        let refused = found.iter().any(|(p, _, _)| *p == Part::Key);
        let expected = !key.is_empty() && !oracle.is_valid(&serde_json::Value::String(key.clone()));
        proptest::prop_assert_eq!(refused, expected, "key {:?}: {:?}", key, found);
    }
}

#[test]
fn tombstones_are_rejected() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let found = violations(&c, &with_headers(Message::tombstone().key(b"12345"), &id));
    assert!(has(&found, &Part::Payload, "", "required"), "{found:?}");
}

#[test]
fn integer_ids_reject_floats() {
    // The Go service's `format: int` let ids become floats; here `type: integer` holds.
    let c = todo();
    let event = serde_json::json!({"id": 42.5, "org_id": "1", "title": "t", "created_at": "2026-11-01T09:30:00Z"});
    let err = c.check_event(&event).unwrap_err();
    assert_eq!(err.violations()[0].instance_path, "/id");
}

#[test]
fn debug_output_hides_identity_and_payload() {
    let id = encode_identity("12345", "User");
    let m = with_headers(Message::new(VALID).key(b"12345"), &id);
    let debug = format!("{m:?}");
    assert!(!debug.contains(&id), "{debug}");
    assert!(!debug.contains("Water"), "{debug}");
    let checked = todo().check(&m).expect("valid");
    let debug = format!("{:?}", checked.identity);
    assert!(debug.contains("12345") && !debug.contains(&id), "{debug}");
}

#[test]
fn identity_cache_keeps_results_per_header_value() {
    // Valid identities are remembered per raw value; invalid ones are re-checked every time.
    let c = todo();
    for round in 0..3 {
        for org in ["1", "2", "3"] {
            let id = encode_identity(org, "User");
            let m = Message::new(VALID)
                .key(b"12345")
                .header("x-rh-identity", id.as_bytes())
                .header("x-rh-insights-request-id", b"r");
            let checked = c.check(&m).unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(checked.identity.unwrap().org_id(), org);
        }
        let bad = base64_of(r#"{"identity": {"type": "User"}}"#);
        let m = Message::new(VALID)
            .key(b"12345")
            .header("x-rh-identity", bad.as_bytes())
            .header("x-rh-insights-request-id", b"r");
        assert!(c.check(&m).is_err(), "round {round}");
    }
    // More distinct identities than the cache holds: every one still decodes correctly.
    for n in 0..1500 {
        let org = format!("org{n}");
        let id = encode_identity(&org, "System");
        let m = Message::new(VALID)
            .key(b"12345")
            .header("x-rh-identity", id.as_bytes())
            .header("x-rh-insights-request-id", b"r");
        assert_eq!(c.check(&m).unwrap().identity.unwrap().org_id(), org);
    }
}

#[test]
fn check_parsed_agrees_with_check_and_keeps_the_size_limit() {
    let c = todo();
    let id = encode_identity("12345", "User");
    let good =
        br#"{"id": 3, "org_id": "12345", "title": "t", "created_at": "2026-11-01T09:30:00Z"}"#;
    let parsed: serde_json::Value = serde_json::from_slice(good).unwrap();
    let m = with_headers(Message::new(good).key(b"12345"), &id);
    assert!(c.check(&m).is_ok());
    assert!(c.check_parsed(&m, parsed.clone()).is_ok());

    // The same violations as the parsing path: the schema and the key pointer.
    let bad =
        br#"{"id": 1.5, "org_id": "other", "title": "t", "created_at": "2026-11-01T09:30:00Z"}"#;
    let bad_parsed: serde_json::Value = serde_json::from_slice(bad).unwrap();
    let m = with_headers(Message::new(bad).key(b"12345"), &id);
    let from_bytes = c.check(&m).unwrap_err().to_string();
    let from_value = c.check_parsed(&m, bad_parsed).unwrap_err().to_string();
    assert_eq!(from_bytes, from_value);
    assert!(from_value.contains("/id"), "{from_value}");

    // Bytes above the limit are refused even though the parsed value is small.
    let huge = vec![b' '; c.max_payload_bytes() + 1];
    let m = with_headers(Message::new(&huge).key(b"12345"), &id);
    let err = c.check_parsed(&m, parsed).unwrap_err().to_string();
    assert!(err.contains("above the limit"), "{err}");
}

/// The sample catalog with todo-created on the Confluent wire format.
fn confluent_todo() -> (tempfile::TempDir, Arc<Contract>) {
    let dir = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"));
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let topics = dir.path().join("topics.yaml");
    let text = std::fs::read_to_string(&topics).unwrap().replacen(
        "  - name: platform.evkit.todo-created\n",
        "  - name: platform.evkit.todo-created\n    wire: confluent\n",
        1,
    );
    std::fs::write(&topics, text).unwrap();
    let contract = Catalog::load(dir.path())
        .unwrap()
        .contract(TODO)
        .unwrap()
        .clone();
    (dir, contract)
}

#[test]
fn confluent_framing_is_read_checked_and_reported() {
    let (_dir, c) = confluent_todo();
    let id = encode_identity("12345", "User");
    let framed = evkit_schema::confluent::frame(7, VALID);
    let m = with_headers(Message::new(&framed).key(b"12345"), &id);
    let checked = c.check(&m).unwrap();
    assert_eq!(checked.schema_id, Some(7));
    assert_eq!(checked.payload["id"], 42);

    // Unframed JSON, a short frame, a frame around broken JSON, a frame around an invalid event.
    let cases: [(&[u8], &str, &str); 4] = [
        (VALID, "", "wire-magic"),
        (&[0, 0, 1], "", "wire-length"),
        (&evkit_schema::confluent::frame(7, b"{not json"), "", "json"),
        (
            &evkit_schema::confluent::frame(
                7,
                br#"{"id": 1.5, "org_id": "12345", "title": "t", "created_at": "2026-11-01T09:30:00Z"}"#,
            ),
            "/id",
            "type",
        ),
    ];
    for (payload, path, rule) in cases {
        let m = with_headers(Message::new(payload).key(b"12345"), &id);
        let found = violations(&c, &m);
        assert!(has(&found, &Part::Payload, path, rule), "{rule}: {found:?}");
    }

    // Any id is accepted until the registry's ids are known; then only those.
    c.set_registered_schema_ids([3, 9]);
    let found = violations(&c, &m);
    assert!(has(&found, &Part::Payload, "", "schema-id"), "{found:?}");
    let text = c.check(&m).unwrap_err().to_string();
    assert!(
        text.contains("schema id 7") && text.contains("3, 9"),
        "{text}"
    );
    c.add_registered_schema_id(7);
    assert_eq!(c.check(&m).unwrap().schema_id, Some(7));

    // A JSON topic does not read a frame: the magic byte is not JSON.
    let plain = todo();
    let m = with_headers(Message::new(&framed).key(b"12345"), &id);
    assert!(has(&violations(&plain, &m), &Part::Payload, "", "json"));
}

#[test]
fn the_producers_encoding_frames_with_the_registrys_id() {
    let (_dir, c) = confluent_todo();
    let event: serde_json::Value = serde_json::from_slice(VALID).unwrap();
    let attributes = evkit_schema::wire::Attributes {
        identity: Some(encode_identity("12345", "User")),
        request_id: Some("req-1".to_owned()),
        ..Default::default()
    };
    // No id known: a clear error naming the topic.
    let err = evkit_schema::wire::encode(&c, &event, &attributes).unwrap_err();
    assert!(
        matches!(err, Error::NoSchemaId { ref topic } if topic == TODO),
        "{err}"
    );
    c.set_schema_id(42);
    let encoded = evkit_schema::wire::encode(&c, &event, &attributes).unwrap();
    assert_eq!(&encoded.payload[..5], &[0, 0, 0, 0, 42]);
    let m = Message::from_parts(encoded.key.as_deref(), &encoded.headers, &encoded.payload);
    assert_eq!(c.check(&m).unwrap().schema_id, Some(42));
}

/// The identity cache is one per shard of threads: checked from many threads at once, every
/// message still gets its own tenant's identity (never another's, cached by another thread),
/// and an identity that is not valid is never taken from a cache.
#[test]
fn identities_checked_on_many_threads_at_once_stay_each_messages_own() {
    let c = todo();
    let threads = 8;
    std::thread::scope(|s| {
        for t in 0..threads {
            let c = Arc::clone(&c);
            s.spawn(move || {
                for i in 0..1_500_usize {
                    // Orgs overlap between threads, and each thread walks them in its own order.
                    let org = format!("org-{}", (i * (t + 1) + t) % 37);
                    let payload = format!(
                        r#"{{"id": {i}, "org_id": "{org}", "title": "t", "created_at": "2026-11-01T09:30:00Z"}}"#
                    );
                    if i % 97 == 0 {
                        // Same org, but not base64: a violation whatever was cached before.
                        let broken = format!("!{}", encode_identity(&org, "User"));
                        let m = with_headers(
                            Message::new(payload.as_bytes()).key(org.as_bytes()),
                            &broken,
                        );
                        let found = violations(&c, &m);
                        assert!(
                            has(
                                &found,
                                &Part::Header("x-rh-identity".to_owned()),
                                "",
                                "base64"
                            ),
                            "{found:?}"
                        );
                        continue;
                    }
                    let principal = if i % 2 == 0 { "User" } else { "System" };
                    let id = encode_identity(&org, principal);
                    let m = with_headers(Message::new(payload.as_bytes()).key(org.as_bytes()), &id);
                    let checked = c.check(&m).unwrap_or_else(|e| panic!("{org}: {e}"));
                    let identity = checked.identity.expect("identity decoded");
                    assert_eq!(identity.org_id(), org);
                    assert_eq!(identity.principal_type(), principal);
                }
            });
        }
    });
}

#[test]
fn new_identities_of_one_structure_are_checked_value_by_value() {
    // After the first identity, each new one of the same structure is compared with it byte by
    // byte (the identity template); its new values must still pass their rules, and an identity
    // that breaks one is refused with the rule's violation.
    let c = todo();
    let doc = |org: &str, ty: &str| {
        format!(
            r#"{{"identity":{{"auth_type":"jwt-auth","internal":{{"org_id":"{org}"}},"org_id":"{org}","type":"{ty}"}}}}"#
        )
    };
    for n in 0..200 {
        let org = format!("tenant-{n:05}");
        let id = base64_of(&doc(&org, if n % 2 == 0 { "User" } else { "System" }));
        let m = with_headers(Message::new(VALID).key(b"12345"), &id);
        let checked = c.check(&m).unwrap_or_else(|e| panic!("{org}: {e}"));
        let identity = checked.identity.unwrap();
        assert_eq!(identity.org_id(), org);
        assert_eq!(
            identity.principal_type(),
            if n % 2 == 0 { "User" } else { "System" }
        );
        for (bad_org, bad_type, rule) in [
            ("tenant 1", "User", "pattern"),
            ("", "User", "minLength"),
            ("tenant-1", "Robot", "enum"),
        ] {
            let id = base64_of(&doc(bad_org, bad_type));
            let m = with_headers(Message::new(VALID).key(b"12345"), &id);
            let found = violations(&c, &m);
            assert!(
                identity_broke(&found, rule),
                "{bad_org:?} {bad_type:?}: {found:?}"
            );
        }
    }
}
