//! Shutdown mid-flight and a second group member joining: no message lost, nothing committed
//! that was not handled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use evkit::{Consumer, Incoming, Metrics, Outcome, Router, handler_fn};
use evkit_testkit::clients::send;

async fn produce(s: &Setup, n: u64) -> BTreeMap<i32, i64> {
    let p = evkit_testkit::clients::producer(&s.broker).unwrap();
    let mut ends = BTreeMap::new();
    for id in 1..=n {
        let org = format!("org-{}", id % 6);
        let h = headers(&org);
        let (partition, offset) = send(
            &p,
            &s.topic,
            Some(org.as_bytes()),
            &header_refs(&h),
            &todo(id, &org),
        )
        .await
        .unwrap();
        ends.insert(partition, offset + 1);
    }
    ends
}

fn slow(seen: Seen, delay: Duration) -> impl evkit::Handler {
    handler_fn(move |msg: Incoming| {
        let seen = seen.clone();
        async move {
            tokio::time::sleep(delay).await;
            seen.push(msg.envelope().partition, msg.envelope().offset);
            Outcome::Ack
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_mid_flight_commits_only_what_was_handled_and_a_restart_loses_nothing() {
    let s = setup("shutdown", 2).await;
    let ends = produce(&s, 60).await;
    let first = Seen::default();
    let router = Router::new(catalog())
        .route(TODO, slow(first.clone(), Duration::from_millis(40)))
        .build()
        .unwrap();
    let consumer = Consumer::new(&s.config, router, Metrics::new()).unwrap();
    let stop = consumer.shutdown_token();
    let run = tokio::spawn(consumer.run(std::future::pending()));
    assert!(eventually(Duration::from_secs(30), || first.len() >= 10).await);
    let asked = Instant::now();
    stop.cancel();
    let summary = run.await.unwrap().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(11),
        "took {:?}",
        asked.elapsed()
    );
    let handled = first.set();
    assert!(
        handled.len() < 60,
        "everything finished before shutdown; the test proves nothing"
    );
    let at_stop = committed(&s.broker, &s.config.group_id, &s.topic, s.partitions);
    for (p, c) in &at_stop {
        for o in 0..c.unwrap_or(0) {
            assert!(
                handled.contains(&(*p, o)),
                "partition {p}: committed {c:?} but {o} was never handled"
            );
        }
    }
    assert_eq!(
        summary.committed.values().copied().sum::<i64>(),
        at_stop.values().map(|c| c.unwrap_or(0)).sum::<i64>()
    );

    // A restart in the same group picks up where the commits stopped.
    let second = Seen::default();
    let router = Router::new(catalog())
        .route(TODO, slow(second.clone(), Duration::ZERO))
        .build()
        .unwrap();
    let consumer = Consumer::new(&s.config, router, Metrics::new()).unwrap();
    let stop = consumer.shutdown_token();
    let run = tokio::spawn(consumer.run(std::future::pending()));
    let all: usize = ends.values().map(|e| usize::try_from(*e).unwrap()).sum();
    assert!(
        eventually(Duration::from_secs(30), || handled
            .union(&second.set())
            .count()
            == all)
        .await,
        "lost messages: handled {} + {} of {all}",
        handled.len(),
        second.len()
    );
    stop.cancel();
    run.await.unwrap().unwrap();
    let committed = committed(&s.broker, &s.config.group_id, &s.topic, s.partitions);
    for (p, end) in &ends {
        assert_eq!(committed[p], Some(*end), "partition {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_member_joining_rebalances_without_losing_messages() {
    let s = setup("rebalance", 4).await;
    let ends = produce(&s, 240).await;
    let a_seen = Seen::default();
    let b_seen = Seen::default();
    let make = |seen: &Seen| {
        let router = Router::new(catalog())
            .route(TODO, slow(seen.clone(), Duration::from_millis(40)))
            .build()
            .unwrap();
        Consumer::new(&s.config, router, Metrics::new()).unwrap()
    };
    let a = make(&a_seen);
    let a_stop = a.shutdown_token();
    let a_run = tokio::spawn(a.run(std::future::pending()));
    assert!(eventually(Duration::from_secs(30), || a_seen.len() >= 10).await);
    let b = make(&b_seen);
    let b_stop = b.shutdown_token();
    let b_run = tokio::spawn(b.run(std::future::pending()));
    let all: usize = ends.values().map(|e| usize::try_from(*e).unwrap()).sum();
    assert!(
        eventually(Duration::from_secs(90), || a_seen
            .set()
            .union(&b_seen.set())
            .count()
            == all)
        .await,
        "lost messages: {} + {} of {all}",
        a_seen.len(),
        b_seen.len()
    );
    // Redelivery after the rebalance may still be running: wait for the commits to reach the end.
    let want: BTreeMap<i32, Option<i64>> = ends.iter().map(|(p, e)| (*p, Some(*e))).collect();
    let live = committed_to(
        &s.broker,
        &s.config.group_id,
        &s.topic,
        &ends,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(live, want, "committed while running");
    a_stop.cancel();
    b_stop.cancel();
    a_run.await.unwrap().unwrap();
    b_run.await.unwrap().unwrap();
    assert!(b_seen.len() > 0, "the second member never got a partition");
    let committed = committed(&s.broker, &s.config.group_id, &s.topic, s.partitions);
    for (p, end) in &ends {
        assert_eq!(committed[p], Some(*end), "partition {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_restart_during_consumption_loses_nothing() {
    init_tracing();
    let s = setup("restart", 3).await;
    let Some(cluster) = s.broker.embedded_cluster() else {
        assert!(
            !s.broker
                .supports(evkit_testkit::Capability::FaultInjection, "broker restart")
        );
        return;
    };
    let ends = produce(&s, 90).await;
    let seen = Seen::default();
    let router = Router::new(catalog())
        .route(TODO, slow(seen.clone(), Duration::from_millis(10)))
        .build()
        .unwrap();
    let consumer = Consumer::new(&s.config, router, Metrics::new()).unwrap();
    let stop = consumer.shutdown_token();
    let run = tokio::spawn(consumer.run(std::future::pending()));
    assert!(eventually(Duration::from_secs(30), || seen.len() >= 10).await);
    for id in 1..=cluster.broker_count() {
        cluster.broker_down(id).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in 1..=cluster.broker_count() {
        cluster.broker_up(id).unwrap();
    }
    let all: usize = ends.values().map(|e| usize::try_from(*e).unwrap()).sum();
    assert!(
        eventually(Duration::from_secs(60), || seen.set().len() == all).await,
        "lost messages: {} of {all}",
        seen.set().len()
    );
    // A commit that failed while the coordinator was away means redelivery: wait for it.
    let want: BTreeMap<i32, Option<i64>> = ends.iter().map(|(p, e)| (*p, Some(*e))).collect();
    let live = committed_to(
        &s.broker,
        &s.config.group_id,
        &s.topic,
        &ends,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(live, want, "committed while running");
    stop.cancel();
    run.await.unwrap().unwrap();
    let mut committed = committed(&s.broker, &s.config.group_id, &s.topic, s.partitions);
    committed.retain(|p, _| ends.contains_key(p));
    assert_eq!(committed, want, "committed after shutdown");
}
