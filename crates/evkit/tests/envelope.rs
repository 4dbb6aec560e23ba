//! Envelopes from a real broker: copied off the wire, checked by a contract, dead-lettered with
//! headers naming the failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use evkit::{Envelope, dead_letter};
use evkit_schema::{Catalog, encode_identity};
use evkit_testkit::Broker;
use evkit_testkit::clients::{consumer, producer, send, subscribe};
use rdkafka::consumer::StreamConsumer;

const TODO: &str = "platform.evkit.todo-created";

async fn next(c: &StreamConsumer) -> Envelope {
    let m = tokio::time::timeout(Duration::from_secs(30), c.recv())
        .await
        .expect("a message")
        .expect("no error");
    Envelope::from_kafka(&m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_from_the_wire_are_checked_and_dead_lettered() {
    let catalog = Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas")).unwrap();
    let contract = catalog.contract(TODO).unwrap();
    let broker = Broker::start().await.unwrap();
    let topic = broker.unique_topic("envelope");
    broker.create_topic(&topic, 1).await.unwrap();
    let p = producer(&broker).unwrap();
    let id = encode_identity("12345", "User");
    let headers: &[(&str, &[u8])] = &[
        ("x-rh-identity", id.as_bytes()),
        ("x-rh-insights-request-id", b"r-1"),
    ];
    send(
        &p,
        &topic,
        Some(b"12345"),
        headers,
        br#"{"id": 1, "org_id": "12345", "title": "ok", "created_at": "2026-11-01T09:30:00Z"}"#,
    )
    .await
    .unwrap();
    send(
        &p,
        &topic,
        Some(b"12345"),
        headers,
        br#"{"id": 1.5, "org_id": "12345", "title": "bad", "created_at": "2026-11-01T09:30:00Z"}"#,
    )
    .await
    .unwrap();
    send(&p, &topic, None, &[], b"\xff not json").await.unwrap();

    let c = consumer(&broker, &broker.unique_group()).unwrap();
    subscribe(&c, &[&topic]).unwrap();
    let good = next(&c).await;
    assert_eq!((good.partition, good.offset), (0, 0));
    assert_eq!(good.header("X-RH-INSIGHTS-REQUEST-ID"), Some(&b"r-1"[..]));
    assert!(good.timestamp_ms.is_some());
    let checked = contract.check(&good.message()).unwrap();
    assert_eq!(checked.identity.unwrap().org_id(), "12345");
    let debug = format!("{good:?}");
    assert!(!debug.contains(&id) && !debug.contains("ok\""), "{debug}");

    for expected_offset in [1, 2] {
        let bad = next(&c).await;
        assert_eq!(bad.offset, expected_offset);
        let err = contract.check(&bad.message()).unwrap_err();
        let dlq = dead_letter::headers(
            &bad,
            "validation",
            &err.to_string(),
            err.violations(),
            1,
            1_764_300_000_000,
        );
        let get = |n: &str| {
            dlq.iter()
                .find(|(k, _)| k == n)
                .and_then(|(_, v)| v.clone())
                .map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(
            get(dead_letter::ORIGINAL_TOPIC).as_deref(),
            Some(topic.as_str())
        );
        assert_eq!(
            get(dead_letter::ORIGINAL_OFFSET),
            Some(expected_offset.to_string())
        );
        assert_eq!(get(dead_letter::ATTEMPTS).as_deref(), Some("1"));
        let paths = get(dead_letter::FAILED_PATHS).unwrap();
        if expected_offset == 1 {
            assert_eq!(paths, "payload/id");
            // The original headers come first, unchanged.
            assert_eq!(&dlq[..bad.headers.len()], bad.headers.as_slice());
        } else {
            assert!(
                paths.contains("payload")
                    && paths.contains("header:x-rh-identity")
                    && paths.contains("key"),
                "{paths}"
            );
        }
    }
}
