//! The outbox on a real broker: a stored message survives a crash and an outage and is sent
//! once the broker is reachable; sent rows are deleted; an invalid event is never stored; a
//! message stored in a rolled-back transaction never exists.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use common::{TODO, header, read_all, setup, sorted_ids};
use evkit::outbox::{Outbox, RelayOptions};
use evkit::{Context, Error, Metrics, Producer};
use serde_json::json;

fn event(id: u64, org: &str) -> serde_json::Value {
    json!({"id": id, "org_id": org, "title": format!("todo {id}"), "created_at": "2026-11-01T09:30:00Z"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_messages_survive_a_restart_and_are_sent_once() {
    let s = setup("outbox", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.db");
    let producer = Producer::new(&s.config, common::catalog(), Metrics::new()).unwrap();
    let ctx = Context::new()
        .for_org("org-a")
        .with_request_id("req-outbox");

    // The service's own transaction: a state change and its event, kept or dropped together.
    {
        let outbox = Outbox::open(&path).unwrap();
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("CREATE TABLE todos (id INTEGER PRIMARY KEY)", [])
            .unwrap();
        let tx = conn.transaction().unwrap();
        for id in 1..=4 {
            tx.execute("INSERT INTO todos (id) VALUES (?1)", [id])
                .unwrap();
            let m = producer.prepare(TODO, &event(id, "org-a"), &ctx).unwrap();
            Outbox::add_in(&tx, &m).unwrap();
        }
        tx.commit().unwrap();
        let tx = conn.transaction().unwrap();
        let m = producer.prepare(TODO, &event(99, "org-a"), &ctx).unwrap();
        Outbox::add_in(&tx, &m).unwrap();
        tx.rollback().unwrap();
        outbox
            .add(&producer.prepare(TODO, &event(5, "org-a"), &ctx).unwrap())
            .unwrap();
        assert_eq!(
            outbox.pending().unwrap(),
            5,
            "the rolled-back event must not be stored"
        );
        // The process stops here, before anything was sent.
    }

    let outbox = Outbox::open(&path).unwrap();
    assert_eq!(
        outbox.pending().unwrap(),
        5,
        "stored messages must survive a restart"
    );
    let report = outbox
        .relay(
            &producer,
            &RelayOptions {
                batch: 2,
                ..RelayOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((report.sent, report.failed), (5, 0), "{report:?}");
    assert_eq!(outbox.pending().unwrap(), 0, "sent rows must be deleted");
    assert!(
        report.deliveries.iter().all(|d| d.topic == s.topic),
        "{report:?}"
    );

    let again = outbox
        .relay(&producer, &RelayOptions::default())
        .await
        .unwrap();
    assert_eq!(again.sent, 0, "nothing may be sent twice");

    let back = read_all(&s.broker, &s.topic, 6, Duration::from_secs(15)).await;
    assert_eq!(sorted_ids(&back), [1, 2, 3, 4, 5]);
    for r in &back {
        assert_eq!(r.key.as_deref(), Some(&b"org-a"[..]));
        assert_eq!(header(r, "x-rh-insights-request-id"), Some("req-outbox"));
        assert!(header(r, "x-rh-identity").is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_fails_stays_stored_until_the_broker_takes_it() {
    let s = setup("outbox-down", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path().join("service.db")).unwrap();
    let ctx = Context::new().for_org("org-b");

    // No broker at this address: every send times out.
    let mut unreachable = s.config.clone();
    unreachable.bootstrap_servers = "127.0.0.1:1".to_owned();
    unreachable
        .librdkafka
        .insert("message.timeout.ms".to_owned(), "1500".to_owned());
    let down = Producer::new(&unreachable, common::catalog(), Metrics::new()).unwrap();
    let err = outbox
        .produce(&down, TODO, &event(7, "org-b"), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Kafka { .. }), "{err}");
    assert_eq!(
        outbox.pending().unwrap(),
        1,
        "a failed send must not lose the message"
    );
    assert!(
        outbox
            .last_error()
            .unwrap()
            .is_some_and(|e| e.contains("delivering"))
    );

    let report = outbox.relay(&down, &RelayOptions::default()).await.unwrap();
    assert_eq!((report.sent, report.failed), (0, 1), "{report:?}");
    assert_eq!(outbox.pending().unwrap(), 1);

    let up = Producer::new(&s.config, common::catalog(), Metrics::new()).unwrap();
    let report = outbox.relay(&up, &RelayOptions::default()).await.unwrap();
    assert_eq!((report.sent, report.failed), (1, 0), "{report:?}");
    assert_eq!(outbox.pending().unwrap(), 0);

    // The direct path: stored, sent, deleted.
    let d = outbox
        .produce(&up, TODO, &event(8, "org-b"), &ctx)
        .await
        .unwrap();
    assert_eq!(d.topic, s.topic);
    assert_eq!(outbox.pending().unwrap(), 0);

    let back = read_all(&s.broker, &s.topic, 3, Duration::from_secs(15)).await;
    assert_eq!(sorted_ids(&back), [7, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_event_is_refused_and_never_stored() {
    let s = setup("outbox-invalid", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path().join("service.db")).unwrap();
    let producer = Producer::new(&s.config, common::catalog(), Metrics::new()).unwrap();
    let bad =
        json!({"id": 1.5, "org_id": "org-c", "title": "t", "created_at": "2026-11-01T09:30:00Z"});
    let err = outbox
        .produce(&producer, TODO, &bad, &Context::new().for_org("org-c"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Schema(_)), "{err}");
    assert!(err.to_string().contains("/id"), "{err}");
    assert_eq!(outbox.pending().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_cannot_be_read_is_kept_and_does_not_block_the_rows_behind_it() {
    let s = setup("outbox-damaged", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.db");
    let outbox = Outbox::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO evkit_outbox (topic, key, headers, payload, created_at_ms) VALUES (?1, NULL, 'not json', x'7b7d', 0)",
        [TODO],
    )
    .unwrap();
    let producer = Producer::new(&s.config, common::catalog(), Metrics::new()).unwrap();
    let ctx = Context::new().for_org("org-d");
    outbox
        .add(&producer.prepare(TODO, &event(9, "org-d"), &ctx).unwrap())
        .unwrap();
    let report = outbox
        .relay(&producer, &RelayOptions::default())
        .await
        .unwrap();
    assert_eq!((report.sent, report.unreadable), (1, 1), "{report:?}");
    assert_eq!(
        outbox.pending().unwrap(),
        1,
        "the damaged row is kept, not dropped"
    );
    let why = outbox.last_error().unwrap().unwrap_or_default();
    assert!(why.contains("outbox row 1: headers"), "{why}");
    let back = read_all(&s.broker, &s.topic, 2, Duration::from_secs(10)).await;
    assert_eq!(sorted_ids(&back), [9]);
}
