//! The replay job on a real broker: dead-lettered messages go back to their original topic
//! without the `evkit-dlq-*` headers, still-invalid ones stay, nothing is sent twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use common::{TODO, header, headers, read_all, setup, sorted_ids, todo};
use evkit::{Envelope, ReplayOptions, dead_letter, replay};
use evkit_testkit::clients::{producer, send};

/// Puts a dead-letter copy of `payload` (consumed from `topic`, keyed by `org`) on `dlq`, the way
/// the consumer's dead-letter layer writes it.
async fn dead_letter(
    p: &rdkafka::producer::FutureProducer,
    dlq: &str,
    topic: &str,
    org: &str,
    payload: Vec<u8>,
    reason: &str,
    offset: i64,
) {
    let envelope = Envelope {
        topic: topic.to_owned(),
        partition: 0,
        offset,
        key: Some(org.as_bytes().to_vec()),
        headers: headers(org)
            .into_iter()
            .map(|(n, v)| (n, Some(v)))
            .collect(),
        payload: Some(payload.clone()),
        timestamp_ms: None,
    };
    let h = dead_letter::headers(&envelope, reason, "test failure", &[], 1, 0);
    let refs: Vec<(&str, &[u8])> = h
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_deref().unwrap_or_default()))
        .collect();
    send(p, dlq, Some(org.as_bytes()), &refs, &payload)
        .await
        .unwrap();
}

fn options(dlq: &str, group: String) -> ReplayOptions {
    ReplayOptions {
        group_id: group,
        idle: Duration::from_secs(3),
        ..ReplayOptions::new(dlq)
    }
}

/// The replayed records: todos 1-4 of `org-a`, key and headers as before, no dead-letter headers.
fn assert_back_as_they_were(back: &[evkit_testkit::clients::Record]) {
    assert_eq!(sorted_ids(back), [1, 2, 3, 4]);
    for r in back {
        assert_eq!(r.key.as_deref(), Some(&b"org-a"[..]));
        assert!(
            r.headers.iter().all(|(n, _)| !n.starts_with("evkit-dlq-")),
            "dead-letter headers were sent back: {:?}",
            r.headers.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
        assert_eq!(header(r, "x-rh-insights-request-id"), Some("req-test"));
        assert!(header(r, "x-rh-identity").is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lettered_messages_go_back_once_and_invalid_ones_stay() {
    let s = setup("replay", 2).await;
    let p = producer(&s.broker).unwrap();
    // 4 that a since-fixed handler rejected, 2 that break the contract, 1 with no origin.
    for i in 1..=4u64 {
        dead_letter(
            &p,
            &s.dlq,
            &s.topic,
            "org-a",
            todo(i, "org-a"),
            "rejected",
            i64::try_from(i).unwrap(),
        )
        .await;
    }
    let float_id =
        br#"{"id": 1.5, "org_id": "org-b", "title": "t", "created_at": "2026-11-01T09:30:00Z"}"#;
    dead_letter(
        &p,
        &s.dlq,
        &s.topic,
        "org-b",
        float_id.to_vec(),
        "validation",
        10,
    )
    .await;
    dead_letter(
        &p,
        &s.dlq,
        &s.topic,
        "org-b",
        b"not json".to_vec(),
        "validation",
        11,
    )
    .await;
    send(&p, &s.dlq, None, &[], &todo(99, "org-c"))
        .await
        .unwrap();
    let catalog = common::catalog();
    let group = s.broker.unique_group();

    // A dry run reports and changes nothing.
    let dry = ReplayOptions {
        dry_run: true,
        ..options(&s.dlq, group.clone())
    };
    let report = replay(&s.config, catalog.clone(), &dry).await.unwrap();
    assert_eq!(report.read, 7, "{report:?}");
    assert_eq!(report.replayed.get(TODO), Some(&4), "{report:?}");
    assert_eq!(report.still_invalid.get(TODO), Some(&2), "{report:?}");
    assert_eq!(report.skipped, 1, "{report:?}");
    assert!(
        read_all(&s.broker, &s.topic, 1, Duration::from_secs(2))
            .await
            .is_empty(),
        "a dry run sent something"
    );

    // The real run: the 4 valid ones are back, as they were before they failed.
    let report = replay(&s.config, catalog.clone(), &options(&s.dlq, group.clone()))
        .await
        .unwrap();
    assert_eq!(report.replayed_total(), 4, "{report:?}");
    assert_eq!(report.still_invalid_total(), 2, "{report:?}");
    assert_eq!(report.skipped, 1, "{report:?}");
    let back = read_all(&s.broker, &s.topic, 5, Duration::from_secs(5)).await;
    assert_eq!(back.len(), 4, "replayed records: {back:?}");
    assert_back_as_they_were(&back);

    // Committed: running it again sends nothing more.
    let again = replay(&s.config, catalog.clone(), &options(&s.dlq, group))
        .await
        .unwrap();
    assert_eq!(again.read, 0, "{again:?}");
    assert_eq!(
        read_all(&s.broker, &s.topic, 5, Duration::from_secs(3))
            .await
            .len(),
        4
    );

    // A reason filter: only `validation` ones are considered (and they are still invalid).
    let only_validation = ReplayOptions {
        reasons: vec!["validation".to_owned()],
        dry_run: true,
        ..options(&s.dlq, s.broker.unique_group())
    };
    let report = replay(&s.config, catalog, &only_validation).await.unwrap();
    assert_eq!(report.replayed_total(), 0, "{report:?}");
    assert_eq!(report.still_invalid_total(), 2, "{report:?}");
    assert_eq!(report.skipped, 5, "{report:?}");
}
