//! The conformance suite every broker must pass. It runs against whatever `Broker::start()`
//! picks: the embedded mock cluster by default, an external broker under `EVKIT_BOOTSTRAP`
//! (CI points it at tansu), Apache Kafka in a container under `EVKIT_BROKER=container`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use evkit_testkit::Broker;
use evkit_testkit::clients::{consumer, producer, receive, send, subscribe};
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(30);

async fn broker_with_topic(prefix: &str, partitions: i32) -> (Broker, String) {
    let broker = Broker::start().await.expect("broker");
    let topic = broker.unique_topic(prefix);
    broker
        .create_topic(&topic, partitions)
        .await
        .expect("topic");
    println!(
        "{prefix}: broker {} at {}",
        broker.name(),
        broker.bootstrap_servers()
    );
    (broker, topic)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_with_keys_and_headers() {
    let (broker, topic) = broker_with_topic("roundtrip", 3).await;
    let p = producer(&broker).unwrap();
    let headers: &[(&str, &[u8])] = &[("x-rh-insights-request-id", b"req-1"), ("empty", b"")];
    let (partition, offset) = send(&p, &topic, Some(b"key-1"), headers, b"{\"n\": 1}")
        .await
        .unwrap();
    assert!(offset >= 0);

    let c = consumer(&broker, &broker.unique_group()).unwrap();
    subscribe(&c, &[&topic]).unwrap();
    let got = receive(&c, 1, WAIT).await;
    assert_eq!(got.len(), 1, "nothing consumed from {topic}");
    let r = &got[0];
    assert_eq!((r.partition, r.offset), (partition, offset));
    assert_eq!(r.key.as_deref(), Some(&b"key-1"[..]));
    assert_eq!(r.payload.as_deref(), Some(&b"{\"n\": 1}"[..]));
    assert_eq!(
        r.headers,
        vec![
            (
                "x-rh-insights-request-id".to_owned(),
                Some(b"req-1".to_vec())
            ),
            ("empty".to_owned(), Some(Vec::new()))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_holds_within_a_partition() {
    let (broker, topic) = broker_with_topic("order", 4).await;
    let p = producer(&broker).unwrap();
    let keys = ["a", "b", "c", "d", "e"];
    for i in 0..200 {
        let key = keys[i % keys.len()];
        send(
            &p,
            &topic,
            Some(key.as_bytes()),
            &[],
            format!("{key}:{i}").as_bytes(),
        )
        .await
        .unwrap();
    }
    let c = consumer(&broker, &broker.unique_group()).unwrap();
    subscribe(&c, &[&topic]).unwrap();
    let got = receive(&c, 200, WAIT).await;
    assert_eq!(got.len(), 200);
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    let mut partition_of: BTreeMap<String, i32> = BTreeMap::new();
    for r in got {
        let text = String::from_utf8(r.payload.unwrap()).unwrap();
        let (key, n) = text.split_once(':').unwrap();
        let n: i64 = n.parse().unwrap();
        let prev = last.insert(key.to_owned(), n).unwrap_or(-1);
        assert!(n > prev, "key {key}: {n} arrived after {prev}");
        let p = *partition_of.entry(key.to_owned()).or_insert(r.partition);
        assert_eq!(p, r.partition, "key {key} moved partitions");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_two_splits_partitions_and_rebalances() {
    let (broker, topic) = broker_with_topic("group", 6).await;
    let group = broker.unique_group();
    let first = consumer(&broker, &group).unwrap();
    subscribe(&first, &[&topic]).unwrap();
    let p = producer(&broker).unwrap();
    for i in 0..60 {
        send(&p, &topic, Some(format!("k{i}").as_bytes()), &[], b"x")
            .await
            .unwrap();
    }
    // The first member alone reads from every partition.
    let got = receive(&first, 60, WAIT).await;
    assert_eq!(got.len(), 60);
    first.commit_consumer_state(CommitMode::Sync).unwrap();

    // A second member joins: the six partitions are split between them.
    let second = consumer(&broker, &group).unwrap();
    subscribe(&second, &[&topic]).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        // Both must poll for the rebalance to complete.
        let _ = tokio::time::timeout(Duration::from_millis(200), first.recv()).await;
        let _ = tokio::time::timeout(Duration::from_millis(200), second.recv()).await;
        let a = first.assignment().unwrap().count();
        let b = second.assignment().unwrap().count();
        if a > 0 && b > 0 && a + b == 6 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no split: {a} + {b}");
    }
    let a: HashSet<i32> = first
        .assignment()
        .unwrap()
        .elements()
        .iter()
        .map(rdkafka::topic_partition_list::TopicPartitionListElem::partition)
        .collect();
    let b: HashSet<i32> = second
        .assignment()
        .unwrap()
        .elements()
        .iter()
        .map(rdkafka::topic_partition_list::TopicPartitionListElem::partition)
        .collect();
    assert!(a.is_disjoint(&b), "{a:?} / {b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_resume_without_redelivery() {
    let (broker, topic) = broker_with_topic("resume", 2).await;
    let group = broker.unique_group();
    let p = producer(&broker).unwrap();
    for i in 0..20 {
        send(
            &p,
            &topic,
            Some(format!("k{i}").as_bytes()),
            &[],
            format!("{i}").as_bytes(),
        )
        .await
        .unwrap();
    }
    let seen: HashSet<Vec<u8>> = {
        let c = consumer(&broker, &group).unwrap();
        subscribe(&c, &[&topic]).unwrap();
        let got = receive(&c, 20, WAIT).await;
        assert_eq!(got.len(), 20);
        // Commit exactly what was read: next offset of each partition.
        let mut tpl = TopicPartitionList::new();
        for r in &got {
            tpl.add_partition_offset(&topic, r.partition, Offset::Offset(r.offset + 1))
                .unwrap();
        }
        c.commit(&tpl, CommitMode::Sync).unwrap();
        got.into_iter().map(|r| r.payload.unwrap()).collect()
    };
    for i in 20..30 {
        send(
            &p,
            &topic,
            Some(format!("k{i}").as_bytes()),
            &[],
            format!("{i}").as_bytes(),
        )
        .await
        .unwrap();
    }
    let c = consumer(&broker, &group).unwrap();
    subscribe(&c, &[&topic]).unwrap();
    let got = receive(&c, 10, WAIT).await;
    assert_eq!(got.len(), 10);
    for r in &got {
        let payload = r.payload.clone().unwrap();
        assert!(
            !seen.contains(&payload),
            "redelivered {}",
            String::from_utf8_lossy(&payload)
        );
    }
    // Nothing more arrives.
    assert!(receive(&c, 1, Duration::from_secs(2)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_partitions() {
    let (broker, topic) = broker_with_topic("many", 32).await;
    let p = producer(&broker).unwrap();
    let mut sends = Vec::new();
    for i in 0..640 {
        let key = format!("key-{i}");
        sends.push((key, format!("{i}")));
    }
    let mut partitions = HashSet::new();
    for (key, payload) in &sends {
        let (partition, _) = send(&p, &topic, Some(key.as_bytes()), &[], payload.as_bytes())
            .await
            .unwrap();
        partitions.insert(partition);
    }
    assert!(
        partitions.len() > 16,
        "keys landed on only {} partitions",
        partitions.len()
    );
    let c = consumer(&broker, &broker.unique_group()).unwrap();
    subscribe(&c, &[&topic]).unwrap();
    let got = receive(&c, 640, WAIT).await;
    let payloads: HashSet<Vec<u8>> = got.into_iter().map(|r| r.payload.unwrap()).collect();
    assert_eq!(payloads.len(), 640);
}
