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
use evkit::{Config, Consumer, Incoming, Metrics, Outcome, Router, handler_fn};
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
    config.topics.insert(TODO_DLQ.to_owned(), dlq.to_owned());
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
