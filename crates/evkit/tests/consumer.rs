//! The consumer against a real broker: bad input and failing handlers go to the dead-letter
//! topic with headers naming the failure, nothing is committed that was not handled or
//! dead-lettered, and no message is lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    clippy::too_many_lines,
    clippy::type_complexity,
    clippy::many_single_char_names,
    clippy::cast_possible_truncation
)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use evkit::{Consumer, Incoming, Metrics, Outcome, Router, dead_letter, handler_fn};
use evkit_testkit::Capability;
use evkit_testkit::clients::send;
use rdkafka::producer::FutureProducer;

fn big_producer(s: &Setup) -> FutureProducer {
    s.broker
        .client_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("message.max.bytes", "4000000")
        .create()
        .unwrap()
}

/// Acks ids below 9000; 9001 always fails, 9002 panics, 9003 hangs, 9004 is rejected.
fn behaviour(seen: Seen) -> impl evkit::Handler {
    handler_fn(move |msg: Incoming| {
        let seen = seen.clone();
        async move {
            let id = msg.event().and_then(|e| e["id"].as_u64()).unwrap_or(0);
            match id {
                9001 => Outcome::retry("database unavailable"),
                9002 => panic!("handler bug for id {id}"),
                9003 => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Outcome::Ack
                }
                9004 => Outcome::reject("unknown tenant"),
                _ => {
                    seen.push(msg.envelope().partition, msg.envelope().offset);
                    Outcome::Ack
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_and_failing_handlers_are_dead_lettered_and_nothing_is_lost() {
    let s = setup("bad-input", 3).await;
    let p = big_producer(&s);
    let ok = headers("12345");
    let okh = header_refs(&ok);
    for id in 1..=20u64 {
        let org = format!("org-{}", id % 5);
        let h = headers(&org);
        send(
            &p,
            &s.topic,
            Some(org.as_bytes()),
            &header_refs(&h),
            &todo(id, &org),
        )
        .await
        .unwrap();
    }
    let bad_identity: Vec<(&str, &[u8])> = vec![
        ("x-rh-identity", b"!!not base64!!"),
        ("x-rh-insights-request-id", b"req-x"),
    ];
    let no_identity: Vec<(&str, &[u8])> = vec![("x-rh-insights-request-id", b"req-y")];
    let oversize = format!(r#"{{"pad": "{}"}}"#, "x".repeat(1_100_000));
    // (what, key, headers, payload, expected reason, expected failed path)
    let bad: Vec<(&str, &[u8], &[(&str, &[u8])], Vec<u8>, &str, &str)> = vec![
        ("non-JSON", b"12345", &okh, b"{not json".to_vec(), "validation", "payload"),
        ("schema-invalid", b"12345", &okh, br#"{"id": 1.5, "org_id": "12345", "title": "t", "created_at": "2026-11-01T09:30:00Z"}"#.to_vec(), "validation", "payload/id"),
        ("missing identity", b"12345", &no_identity, todo(30, "12345"), "validation", "header:x-rh-identity"),
        ("garbled identity", b"12345", &bad_identity, todo(31, "12345"), "validation", "header:x-rh-identity"),
        ("empty key", b"", &okh, todo(32, "12345"), "validation", "key"),
        ("oversize", b"12345", &okh, oversize.into_bytes(), "validation", "payload"),
        ("handler error", b"12345", &okh, todo(9001, "12345"), "error", ""),
        ("handler panic", b"12345", &okh, todo(9002, "12345"), "panic", ""),
        ("handler hang", b"12345", &okh, todo(9003, "12345"), "timeout", ""),
        ("handler reject", b"12345", &okh, todo(9004, "12345"), "rejected", ""),
    ];
    let mut sent = BTreeMap::new();
    for (what, key, h, payload, _, _) in &bad {
        let at = send(&p, &s.topic, Some(key), h, payload).await.unwrap();
        sent.insert(at, *what);
    }

    let seen = Seen::default();
    let router = Router::new(catalog())
        .route(TODO, behaviour(seen.clone()))
        .build()
        .unwrap();
    let metrics = Metrics::new();
    let consumer = Consumer::new(&s.config, router, metrics.clone()).unwrap();
    let stop = consumer.shutdown_token();
    let run = tokio::spawn(consumer.run(std::future::pending()));

    let dead = read_all(&s.broker, &s.dlq, bad.len(), Duration::from_secs(60)).await;
    assert!(
        eventually(Duration::from_secs(30), || seen.len() >= 20).await,
        "handled {} of 20",
        seen.len()
    );
    assert_eq!(dead.len(), bad.len(), "dead letters: {dead:?}");
    // Every produced message was handled or dead-lettered: 20 + 10.
    assert_eq!(seen.set().len(), 20);

    for d in &dead {
        let partition: i32 = header(d, dead_letter::ORIGINAL_PARTITION)
            .unwrap()
            .parse()
            .unwrap();
        let offset: i64 = header(d, dead_letter::ORIGINAL_OFFSET)
            .unwrap()
            .parse()
            .unwrap();
        let what = sent[&(partition, offset)];
        let (_, key, _, payload, reason, path) = bad.iter().find(|b| b.0 == what).unwrap();
        assert_eq!(header(d, dead_letter::REASON), Some(*reason), "{what}");
        assert_eq!(
            header(d, dead_letter::ORIGINAL_TOPIC),
            Some(s.topic.as_str())
        );
        let paths = header(d, dead_letter::FAILED_PATHS).unwrap();
        assert!(
            paths.split(',').any(|p| p == *path) || path.is_empty(),
            "{what}: paths {paths}"
        );
        assert_eq!(
            d.payload.as_deref(),
            Some(payload.as_slice()),
            "{what}: payload changed"
        );
        assert_eq!(
            d.key.as_deref().unwrap_or_default(),
            *key,
            "{what}: key changed"
        );
        let attempts: u32 = header(d, dead_letter::ATTEMPTS).unwrap().parse().unwrap();
        let expected = match *reason {
            "validation" => 0,
            "rejected" => 1,
            _ => 4,
        };
        assert_eq!(attempts, expected, "{what}");
        assert!(
            header(d, dead_letter::TIME)
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > 1_700_000_000_000
        );
        // The original headers travel along.
        if *path != "header:x-rh-identity" {
            assert!(header(d, "x-rh-identity").is_some(), "{what}");
        }
        // Masked: no payload values in the error text.
        assert!(
            !header(d, dead_letter::ERROR).unwrap().contains("1.5"),
            "{what}"
        );
    }

    // Everything is committed, up to the end of each partition.
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o) in seen.set().into_iter().chain(sent.keys().copied()) {
        let e = ends.entry(p).or_default();
        *e = (*e).max(o + 1);
    }
    stop.cancel();
    let summary = run.await.unwrap().unwrap();
    assert_eq!(summary.consumed, 30);
    let committed = committed(&s.broker, &s.config.group_id, &s.topic, s.partitions);
    for (p, end) in &ends {
        assert_eq!(
            committed[p],
            Some(*end),
            "partition {p}: committed {committed:?}"
        );
    }
    let text = metrics.encode();
    for needle in [
        r#"evkit_consumed_total{topic="platform.evkit.todo-created"} 30"#,
        r#"evkit_invalid_total{topic="platform.evkit.todo-created"} 6"#,
        r#"evkit_valid_total{topic="platform.evkit.todo-created"} 24"#,
        r#"evkit_dead_lettered_total{topic="platform.evkit.todo-created",reason="validation"} 6"#,
        r#"evkit_dead_lettered_total{topic="platform.evkit.todo-created",reason="panic"} 1"#,
        r#"evkit_retried_total{topic="platform.evkit.todo-created"} 9"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn order_holds_within_a_partition_while_partitions_run_concurrently() {
    order_holds(true).await;
}

/// The same through the one reading loop that hands records to the partitions' workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn order_holds_through_the_shared_queue_too() {
    order_holds(false).await;
}

async fn order_holds(partition_queues: bool) {
    let mut s = setup("order", 4).await;
    s.config.consumer.partition_queues = partition_queues;
    let p = evkit_testkit::clients::producer(&s.broker).unwrap();
    let n = 200u64;
    for id in 1..=n {
        let org = format!("org-{}", id % 8);
        let h = headers(&org);
        send(
            &p,
            &s.topic,
            Some(org.as_bytes()),
            &header_refs(&h),
            &todo(id, &org),
        )
        .await
        .unwrap();
    }
    let seen = Seen::default();
    let active = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let max_active = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (seen2, a, m) = (seen.clone(), active.clone(), max_active.clone());
    let handler = handler_fn(move |msg: Incoming| {
        let (seen, a, m) = (seen2.clone(), a.clone(), m.clone());
        async move {
            use std::sync::atomic::Ordering::SeqCst;
            let now = a.fetch_add(1, SeqCst) + 1;
            m.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
            seen.push(msg.envelope().partition, msg.envelope().offset);
            a.fetch_sub(1, SeqCst);
            Outcome::Ack
        }
    });
    let router = Router::new(catalog()).route(TODO, handler).build().unwrap();
    let consumer = Consumer::new(&s.config, router, Metrics::new()).unwrap();
    let stop = consumer.shutdown_token();
    let run = tokio::spawn(consumer.run(std::future::pending()));
    assert!(eventually(Duration::from_secs(60), || seen.len() >= n as usize).await);
    stop.cancel();
    let summary = run.await.unwrap().unwrap();
    // Every record came the way the setting says: a split that silently failed (every record
    // through the shared loop) fails here.
    assert!(summary.consumed >= n, "{summary:?}");
    let expected = if partition_queues {
        summary.consumed
    } else {
        0
    };
    assert_eq!(summary.from_partition_queues, expected, "{summary:?}");
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o) in seen.all() {
        if let Some(prev) = last.insert(p, o) {
            assert!(o > prev, "partition {p}: {o} handled after {prev}");
        }
    }
    assert!(last.len() > 1, "all keys landed on one partition");
    assert!(
        max_active.load(std::sync::atomic::Ordering::SeqCst) > 1,
        "partitions never ran concurrently"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_letter_outage_never_commits_the_source_offset() {
    let s = setup("dlq-down", 1).await;
    let Some(cluster) = s.broker.embedded_cluster() else {
        assert!(
            !s.broker
                .supports(Capability::FaultInjection, "dead-letter outage")
        );
        return;
    };
    let p = evkit_testkit::clients::producer(&s.broker).unwrap();
    let ok = headers("12345");
    send(
        &p,
        &s.topic,
        Some(b"12345"),
        &header_refs(&ok),
        b"{not json",
    )
    .await
    .unwrap();
    send(
        &p,
        &s.topic,
        Some(b"12345"),
        &header_refs(&ok),
        &todo(1, "12345"),
    )
    .await
    .unwrap();

    // The dead-letter topic is unavailable: its metadata answers with an error.
    cluster
        .topic_error(
            &s.dlq,
            evkit_testkit::RespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .unwrap();
    let mut config = s.config.clone();
    config.consumer.dead_letter_timeout_ms = 500;
    let seen = Seen::default();
    let seen2 = seen.clone();
    let router = Router::new(catalog())
        .route(
            TODO,
            handler_fn(move |msg: Incoming| {
                let seen = seen2.clone();
                async move {
                    seen.push(msg.envelope().partition, msg.envelope().offset);
                    Outcome::Ack
                }
            }),
        )
        .build()
        .unwrap();
    let metrics = Metrics::new();
    let consumer = Consumer::new(&config, router, metrics.clone()).unwrap();
    let stop = consumer.shutdown_token();
    let run = tokio::spawn(consumer.run(std::future::pending()));
    assert!(
        eventually(Duration::from_secs(20), || metrics.encode().contains(
            r#"evkit_dead_letter_errors_total{topic="platform.evkit.todo-created"} 2"#
        ))
        .await,
        "{}",
        metrics.encode()
    );
    // Order holds: the valid message behind the poison one waits, and nothing is committed.
    assert_eq!(seen.len(), 0);
    let before = committed(&s.broker, &config.group_id, &s.topic, 1)[&0];
    assert!(
        matches!(before, None | Some(0)),
        "committed past the failing message: {before:?}"
    );

    cluster
        .topic_error(&s.dlq, evkit_testkit::RespErr::RD_KAFKA_RESP_ERR_NO_ERROR)
        .unwrap();
    let dead = read_all(&s.broker, &s.dlq, 1, Duration::from_secs(30)).await;
    assert_eq!(dead.len(), 1);
    assert!(eventually(Duration::from_secs(20), || seen.len() == 1).await);
    stop.cancel();
    run.await.unwrap().unwrap();
    assert_eq!(
        committed(&s.broker, &config.group_id, &s.topic, 1)[&0],
        Some(2)
    );
}

/// A partition whose handler is stuck (its queue full) pauses alone: the other partition's
/// messages, produced after the stall began, are all handled meanwhile. Once the stuck handler
/// goes on, its partition resumes where it stopped: every message once, in order, all committed.
/// (Before, the loop waited for room in the stuck partition's queue and every partition stalled.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_partition_does_not_stall_the_others() {
    stuck_partition(true).await;
}

/// The same through the one reading loop, which pauses the stuck partition's fetching itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_partition_does_not_stall_the_others_through_the_shared_queue() {
    stuck_partition(false).await;
}

async fn stuck_partition(partition_queues: bool) {
    let mut s = setup("stuck-partition", 2).await;
    s.config.consumer.partition_queues = partition_queues;
    s.config.consumer.max_in_flight_per_partition = 1;
    // Stuck for real: no handler timeout moves it on.
    s.config.consumer.handler_timeout_ms = 120_000;
    let p = big_producer(&s);
    let produce = |partition: i32, id: u64| {
        let (p, topic) = (p.clone(), s.topic.clone());
        async move {
            let h = headers("org-s");
            let mut owned = rdkafka::message::OwnedHeaders::new();
            for (n, v) in &h {
                owned = owned.insert(rdkafka::message::Header {
                    key: n.as_str(),
                    value: Some(v.as_slice()),
                });
            }
            let payload = todo(id, "org-s");
            let record = rdkafka::producer::FutureRecord::to(&topic)
                .partition(partition)
                .key("org-s")
                .payload(&payload)
                .headers(owned);
            p.send(record, Duration::from_secs(10)).await.unwrap();
        }
    };
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen: Arc<std::sync::Mutex<Vec<(i32, u64)>>> = Arc::default();
    let handler = {
        let (gate, started, seen) = (Arc::clone(&gate), Arc::clone(&started), Arc::clone(&seen));
        handler_fn(move |msg: Incoming| {
            let (gate, started, seen) =
                (Arc::clone(&gate), Arc::clone(&started), Arc::clone(&seen));
            async move {
                let partition = msg.envelope().partition;
                let id = msg.event().and_then(|e| e["id"].as_u64()).unwrap_or(0);
                if partition == 0 {
                    started.store(true, std::sync::atomic::Ordering::SeqCst);
                    gate.acquire().await.unwrap().forget();
                }
                seen.lock().unwrap().push((partition, id));
                Outcome::Ack
            }
        })
    };
    let routes = Router::new(catalog()).route(TODO, handler).build().unwrap();
    let consumer = Consumer::new(&s.config, routes, Metrics::new()).unwrap();
    let stop = consumer.shutdown_token();
    let run = tokio::spawn(consumer.run(std::future::pending()));

    // Partition 0: its first message blocks the handler; the rest fill its queue and beyond.
    for id in 1..=6 {
        produce(0, id).await;
    }
    assert!(
        eventually(Duration::from_secs(30), || started
            .load(std::sync::atomic::Ordering::SeqCst))
        .await,
        "partition 0 was never handled"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in 101..=106 {
        produce(1, id).await;
    }
    let others = |seen: &std::sync::Mutex<Vec<(i32, u64)>>| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| *p == 1)
            .map(|(_, id)| *id)
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(20), || others(&seen).len() == 6).await,
        "partition 1 stalled behind partition 0: handled {:?}",
        others(&seen)
    );
    assert_eq!(others(&seen), (101..=106).collect::<Vec<_>>());
    assert!(
        seen.lock().unwrap().iter().all(|(p, _)| *p == 1),
        "partition 0 is still stuck"
    );

    // Partition 0 goes on: all six, once each, in order.
    gate.add_permits(6);
    let mine = |seen: &std::sync::Mutex<Vec<(i32, u64)>>| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| *p == 0)
            .map(|(_, id)| *id)
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(20), || mine(&seen).len() >= 6).await,
        "partition 0 did not resume: {:?}",
        mine(&seen)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mine(&seen), (1..=6).collect::<Vec<_>>());
    stop.cancel();
    let summary = run.await.unwrap().unwrap();
    assert_eq!(
        summary.committed.values().copied().collect::<Vec<_>>(),
        [6, 6],
        "{summary:?}"
    );
}
