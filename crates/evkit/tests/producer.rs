//! The producer against a real broker: validated before sending, headers and key added,
//! CloudEvents binary mode, topic-name mapping, delivery reported; and the metrics endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    clippy::too_many_lines,
    clippy::type_complexity,
    clippy::many_single_char_names,
    clippy::cast_possible_truncation
)]

mod common;

use std::time::Duration;

use common::*;
use evkit::{Context, Metrics, Producer, Router};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const DOMAIN: &str = "platform.evkit.domain-registered";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_events_are_validated_keyed_and_delivered_with_headers() {
    let s = setup("produce", 3).await;
    let domain_topic = s.broker.unique_topic("produce-domain");
    s.broker.create_topic(&domain_topic, 2).await.unwrap();
    let mut config = s.config.clone();
    config
        .topics
        .insert(DOMAIN.to_owned(), domain_topic.clone());
    let metrics = Metrics::new();
    let producer = Producer::new(&config, catalog(), metrics.clone()).unwrap();
    let ctx = Context::new().for_org("12345").with_request_id("req-42");
    assert!(!format!("{ctx:?}").contains("eyJ"), "identity in Debug");

    let event = json!({"id": 7, "org_id": "12345", "title": "Water the plants", "created_at": "2026-11-01T09:30:00Z"});
    let d = producer.produce(TODO, &event, &ctx).await.unwrap();
    assert_eq!(d.topic, s.topic);
    assert!(d.offset >= 0);

    // Invalid: an error, and nothing on the wire.
    let bad =
        json!({"id": 1.5, "org_id": "12345", "title": "x", "created_at": "2026-11-01T09:30:00Z"});
    let err = producer
        .produce(TODO, &bad, &ctx)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/id"), "{err}");
    // No identity where the contract requires one.
    let err = producer
        .produce(TODO, &event, &Context::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("x-rh-identity"), "{err}");
    // Unknown topic.
    assert!(
        producer
            .produce("no.such.topic", &event, &ctx)
            .await
            .is_err()
    );

    let got = read_all(&s.broker, &s.topic, 2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "only the valid event was sent");
    let r = &got[0];
    assert_eq!((r.partition, r.offset), (d.partition, d.offset));
    assert_eq!(r.key.as_deref(), Some(&b"12345"[..]));
    assert_eq!(header(r, "x-rh-insights-request-id"), Some("req-42"));
    let identity =
        evkit_schema::Identity::from_header(header(r, "x-rh-identity").unwrap().as_bytes())
            .unwrap();
    assert_eq!(identity.org_id(), "12345");

    // CloudEvents binary mode: ce_* headers, the payload is the data.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/platform.evkit.domain-registered.event.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let domain = schema["examples"][0].clone();
    match producer.produce(DOMAIN, &domain, &ctx).await {
        Ok(_) => {
            let got = read_all(&s.broker, &domain_topic, 1, Duration::from_secs(10)).await;
            assert_eq!(got.len(), 1);
            assert_eq!(
                header(&got[0], "ce_type"),
                Some("com.redhat.console.evkit.domain-registered")
            );
            assert_eq!(header(&got[0], "ce_specversion"), Some("1.0"));
            assert!(header(&got[0], "ce_id").is_some());
            assert_eq!(header(&got[0], "content-type"), Some("application/json"));
            let data: serde_json::Value =
                serde_json::from_slice(got[0].payload.as_deref().unwrap()).unwrap();
            assert_eq!(data["org_id"], "12345");
        }
        Err(e) => panic!("domain-registered example rejected: {e}"),
    }

    // produce_raw: a topic the catalog does not know goes out unchecked, with the context headers.
    let foreign = s.broker.unique_topic("produce-foreign");
    s.broker.create_topic(&foreign, 1).await.unwrap();
    producer
        .produce_raw(&foreign, Some(b"k"), &[], b"opaque bytes", &ctx)
        .await
        .unwrap();
    let got = read_all(&s.broker, &foreign, 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].payload.as_deref(), Some(&b"opaque bytes"[..]));
    assert_eq!(header(&got[0], "x-rh-insights-request-id"), Some("req-42"));

    let text = metrics.encode();
    assert!(
        text.contains(r#"evkit_produced_total{topic="platform.evkit.todo-created"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"evkit_produce_errors_total{topic="platform.evkit.todo-created"} 2"#),
        "{text}"
    );
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_over_http() {
    let s = setup("metrics", 1).await;
    let p = evkit_testkit::clients::producer(&s.broker).unwrap();
    let h = headers("12345");
    for id in 1..=3 {
        evkit_testkit::clients::send(
            &p,
            &s.topic,
            Some(b"12345"),
            &header_refs(&h),
            &todo(id, "12345"),
        )
        .await
        .unwrap();
    }
    let metrics = Metrics::new();
    let server = metrics.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let seen = Seen::default();
    let seen2 = seen.clone();
    let router = Router::new(catalog())
        .route(
            TODO,
            evkit::typed(
                move |todo: evkit_events::generated::platform_evkit_todo_created::Event,
                      msg: evkit::Incoming| {
                    let seen = seen2.clone();
                    async move {
                        assert_eq!(todo.org_id.as_str(), "12345");
                        seen.push(msg.envelope().partition, msg.envelope().offset);
                        evkit::Outcome::Ack
                    }
                },
            ),
        )
        .build()
        .unwrap();
    let consumer = evkit::Consumer::new(&s.config, router, metrics.clone()).unwrap();
    let stop = consumer.shutdown_token();
    let run = tokio::spawn(consumer.run(std::future::pending()));
    assert!(eventually(Duration::from_secs(20), || seen.len() == 3).await);

    let health = get(server.addr(), "/healthz").await;
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    let lag_line = r#"evkit_consumer_lag{topic="platform.evkit.todo-created",partition="0"} 0"#;
    let accurate = s
        .broker
        .capabilities()
        .has(evkit_testkit::Capability::AccurateHighWatermark);
    let mut body = String::new();
    for _ in 0..100 {
        body = get(server.addr(), "/metrics").await;
        if !accurate || body.contains(lag_line) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for needle in [
        r#"evkit_consumed_total{topic="platform.evkit.todo-created"} 3"#,
        r#"evkit_dispatched_total{topic="platform.evkit.todo-created"} 3"#,
        r#"evkit_handled_total{topic="platform.evkit.todo-created",outcome="ack"} 3"#,
        r#"evkit_handler_duration_seconds_count{topic="platform.evkit.todo-created"} 3"#,
    ] {
        assert!(body.contains(needle), "missing {needle} in\n{body}");
    }
    if accurate {
        assert!(body.contains(lag_line), "no lag series in\n{body}");
    }
    stop.cancel();
    let summary = run.await.unwrap().unwrap();
    assert_eq!(summary.committed.get(&(s.topic.clone(), 0)), Some(&3));
}

#[test]
fn building_a_router_lists_every_problem() {
    let ok = evkit::handler_fn(|_| async { evkit::Outcome::Ack });
    let err = Router::new(catalog())
        .route(
            "no.such.topic",
            evkit::handler_fn(|_| async { evkit::Outcome::Ack }),
        )
        .route(TODO, ok)
        .route(TODO, evkit::handler_fn(|_| async { evkit::Outcome::Ack }))
        .subscribe(&[TODO, DOMAIN])
        .build()
        .unwrap_err()
        .to_string();
    for needle in [
        "`no.such.topic` is not in the catalog",
        "routed twice",
        "subscribed topic `platform.evkit.domain-registered` has no handler",
    ] {
        assert!(err.contains(needle), "missing {needle}: {err}");
    }
}

/// A panicking and a hanging handler: every attempt counts in `evkit_handled_total` (as
/// `retry`) and in the duration histogram, scraped over HTTP. (With `Measure` inside the panic
/// and timeout guards, those attempts counted as dispatched and vanished from both.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_and_timed_out_attempts_are_measured() {
    let mut s = setup("measured", 1).await;
    s.config.consumer.handler_timeout_ms = 200;
    s.config.consumer.retry.max_retries = 1;
    let p = evkit_testkit::clients::producer(&s.broker).unwrap();
    let h = headers("12345");
    for id in [1, 2] {
        evkit_testkit::clients::send(
            &p,
            &s.topic,
            Some(b"12345"),
            &header_refs(&h),
            &todo(id, "12345"),
        )
        .await
        .unwrap();
    }
    let metrics = Metrics::new();
    let server = metrics.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let handler = evkit::handler_fn(|msg: evkit::Incoming| async move {
        // The first todo panics (a handler bug); the second hangs past the timeout.
        assert!(
            msg.event().and_then(|e| e["id"].as_u64()) != Some(1),
            "handler bug"
        );
        tokio::time::sleep(Duration::from_secs(3600)).await;
        evkit::Outcome::Ack
    });
    let router = Router::new(catalog()).route(TODO, handler).build().unwrap();
    let consumer = evkit::Consumer::new(&s.config, router, metrics.clone()).unwrap();
    let stop = consumer.shutdown_token();
    let run = tokio::spawn(consumer.run(std::future::pending()));
    // Two messages, two attempts each (one retry), all ending in `retry`, then dead letters.
    let dispatched = r#"evkit_dispatched_total{topic="platform.evkit.todo-created"} 4"#;
    let outcomes = r#"evkit_handled_total{topic="platform.evkit.todo-created",outcome="retry"} 4"#;
    let timed = r#"evkit_handler_duration_seconds_count{topic="platform.evkit.todo-created"} 4"#;
    let mut body = String::new();
    for _ in 0..200 {
        body = get(server.addr(), "/metrics").await;
        if body.contains(dispatched) && body.contains(outcomes) && body.contains(timed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    run.await.unwrap().unwrap();
    for needle in [dispatched, outcomes, timed] {
        assert!(body.contains(needle), "{needle} not in:\n{body}");
    }
}
