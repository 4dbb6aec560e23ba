//! Shutdown is bounded when the broker is gone: the consumer handled messages, the broker went
//! away with their offsets still uncommitted, and the stop ends within `shutdown_deadline_ms`
//! plus the commit grace (3 s), instead of waiting for a coordinator that never answers (once a
//! service still ran 30 minutes after SIGTERM). Runs on the embedded broker, whose brokers the
//! test can take down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use evkit::outbox::{Outbox, RelayOptions};
use evkit::{Config, Consumer, Context, Incoming, Metrics, Outcome, Producer, Router, handler_fn};
use evkit_testkit::EmbeddedBroker;
use evkit_testkit::clients::send;
use rdkafka::producer::FutureProducer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_when_the_broker_is_gone() {
    init_tracing();
    let cluster = EmbeddedBroker::start(1).unwrap();
    let (topic, dlq) = ("evkit-shutdown-bounded", "evkit-shutdown-bounded.dlq");
    cluster.create_topic(topic, 2).unwrap();
    cluster.create_topic(dlq, 2).unwrap();
    let mut config = Config {
        bootstrap_servers: cluster.bootstrap_servers().to_owned(),
        group_id: "evkit-shutdown-bounded".to_owned(),
        client_id: "evkit-test-shutdown".to_owned(),
        consumer: evkit::config::ConsumerConfig {
            // Nothing is committed on the way: every position is still open at the stop.
            commit_interval_ms: 600_000,
            shutdown_deadline_ms: 1_000,
            ..fast_consumer()
        },
        ..Config::default()
    };
    config.topics.insert(TODO.to_owned(), topic.to_owned());
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .unwrap();
    let n: u64 = 20;
    for id in 1..=n {
        let h = headers("42");
        send(
            &producer,
            topic,
            Some(b"42"),
            &header_refs(&h),
            &todo(id, "42"),
        )
        .await
        .unwrap();
    }
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let handler = handler_fn(move |_msg: Incoming| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Outcome::Ack
        }
    });
    let router = Router::new(catalog()).route(TODO, handler).build().unwrap();
    let consumer = Consumer::new(&config, router, Metrics::new()).unwrap();
    let stop = consumer.shutdown_token();
    let run = tokio::spawn(consumer.run(std::future::pending()));
    assert!(
        eventually(Duration::from_secs(60), || seen.load(Ordering::SeqCst)
            as u64
            >= n)
        .await,
        "handled {}",
        seen.load(Ordering::SeqCst)
    );
    cluster.broker_down(1).unwrap();
    let started = Instant::now();
    stop.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the consumer stops while the broker is gone")
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    // The deadline (1 s) plus the commit grace (3 s), and a margin for a loaded machine.
    assert!(took < Duration::from_secs(6), "stopped after {took:?}");
    assert_eq!(summary.consumed, n);
    // Nothing is claimed committed that the broker never confirmed.
    assert!(summary.committed.is_empty(), "{:?}", summary.committed);
}

/// A config for `cluster` whose producer would wait 10 minutes for a broker that is gone.
fn patient_config(cluster: &EmbeddedBroker, topic: &str) -> Config {
    let mut config = Config {
        bootstrap_servers: cluster.bootstrap_servers().to_owned(),
        client_id: "evkit-test-shutdown-producer".to_owned(),
        ..Config::default()
    };
    config
        .librdkafka
        .insert("message.timeout.ms".to_owned(), "600000".to_owned());
    config.topics.insert(TODO.to_owned(), topic.to_owned());
    config
}

fn todo_event(id: u64) -> serde_json::Value {
    serde_json::json!({
        "id": id, "org_id": "42", "title": format!("todo {id}"),
        "created_at": "2026-11-30T09:30:00Z"
    })
}

/// `Producer::close` ends within its deadline while the broker is gone, says how many messages
/// it gave up, and the sends waiting for them fail instead of hanging (their callers keep them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_producer_is_bounded_when_the_broker_is_gone() {
    init_tracing();
    let cluster = EmbeddedBroker::start(1).unwrap();
    let topic = "evkit-shutdown-producer";
    cluster.create_topic(topic, 1).unwrap();
    let config = patient_config(&cluster, topic);
    let producer = Arc::new(Producer::new(&config, catalog(), Metrics::new()).unwrap());
    let ctx = Context::new().for_org("42");
    // Delivered while the broker is up.
    producer.produce(TODO, &todo_event(1), &ctx).await.unwrap();
    cluster.broker_down(1).unwrap();
    let waiting: Vec<_> = (2..=4)
        .map(|id| {
            let (p, ctx) = (Arc::clone(&producer), ctx.clone());
            tokio::spawn(async move { p.produce(TODO, &todo_event(id), &ctx).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let left = producer.close(Duration::from_secs(1)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    assert_eq!(left, 3, "the three sends the broker never acknowledged");
    for w in waiting {
        let sent = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("a send given up at close fails at once")
            .unwrap();
        let err = sent.expect_err("not acknowledged, so not reported as sent");
        assert!(err.to_string().contains("Purged"), "{err}");
    }
}

/// The outbox relay stops at once when told to, even with a pass under way against a broker
/// that is gone; its rows stay stored for the next relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_outbox_relay_is_bounded_when_the_broker_is_gone() {
    init_tracing();
    let cluster = EmbeddedBroker::start(1).unwrap();
    let topic = "evkit-shutdown-relay";
    cluster.create_topic(topic, 1).unwrap();
    let config = patient_config(&cluster, topic);
    let producer = Producer::new(&config, catalog(), Metrics::new()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path().join("outbox.db")).unwrap();
    let ctx = Context::new().for_org("42");
    for id in 1..=5 {
        let m = producer.prepare(TODO, &todo_event(id), &ctx).unwrap();
        outbox.add(&m).await.unwrap();
    }
    cluster.broker_down(1).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let relay = tokio::spawn({
        let (outbox, stop) = (outbox.clone(), stop.clone());
        async move {
            outbox
                .run_relay(
                    &producer,
                    &RelayOptions::default(),
                    Duration::from_millis(10),
                    stop,
                )
                .await;
            producer.close(Duration::from_millis(200)).await
        }
    });
    // The first pass is under way, waiting for the broker.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    stop.cancel();
    let left = tokio::time::timeout(Duration::from_secs(5), relay)
        .await
        .expect("the relay stops while a pass waits for the broker")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped after {:?}",
        started.elapsed()
    );
    assert!(left > 0, "the abandoned pass had sends in flight");
    assert_eq!(
        outbox.pending().await.unwrap(),
        5,
        "every row is still stored"
    );
}

/// The replay job ends in bounded time when the broker goes away after it read, before its
/// idle time is up: it goes on to commit, which fails, and says the messages read may come
/// again. It used to restart its idle wait on each consume error and, once the dead session
/// cost it its partitions, wait for a group join until its 30 s join deadline
/// (`group evkit-replay got no partition ... within 30 s`, seen on CI in the `evkit replay` test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_is_bounded_when_the_broker_goes_after_it_read() {
    init_tracing();
    let cluster = Arc::new(EmbeddedBroker::start(1).unwrap());
    let (topic, dlq) = ("evkit-shutdown-replay", "evkit-shutdown-replay.dlq");
    cluster.create_topic(topic, 1).unwrap();
    cluster.create_topic(dlq, 1).unwrap();
    let config = patient_config(&cluster, topic);
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .unwrap();
    // Still invalid against the contract: the job reads it and sends nothing back.
    send(
        &producer,
        dlq,
        None,
        &[
            ("evkit-dlq-original-topic", topic.as_bytes()),
            ("evkit-dlq-reason", b"validation"),
        ],
        b"{}",
    )
    .await
    .unwrap();
    let idle = Duration::from_secs(8);
    let down = Arc::clone(&cluster);
    let options = evkit::ReplayOptions {
        group_id: "evkit-shutdown-replay".to_owned(),
        idle,
        // The broker goes as soon as the first message is judged: the session (6 s) then
        // expires within the idle time.
        progress: Some(Arc::new(move |r: &evkit::ReplayReport| {
            if r.read == 1 {
                down.broker_down(1).unwrap();
            }
        })),
        ..evkit::ReplayOptions::new(dlq)
    };
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        evkit::replay(&config, catalog(), &options),
    )
    .await
    .expect("the replay job ends while the broker is gone");
    let took = started.elapsed();
    let err = result.expect_err("nothing could be committed").to_string();
    assert!(
        err.contains("did not confirm the commit") || err.contains("committing"),
        "after {took:?}: {err}"
    );
    // Joining, the idle time and the commit deadline (10 s), with a margin for a loaded machine.
    assert!(
        took < idle + Duration::from_secs(18),
        "ended after {took:?}: {err}"
    );
}
