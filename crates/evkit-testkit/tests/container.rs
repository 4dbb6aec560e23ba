//! Apache Kafka in a container: runs where a Docker daemon answers, otherwise says it skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use evkit_testkit::clients::{consumer, producer, receive, send, subscribe};
use evkit_testkit::{Broker, BrokerKind};

fn docker_answers() -> bool {
    if std::env::var("DOCKER_HOST").is_ok() {
        return true;
    }
    std::os::unix::net::UnixStream::connect("/var/run/docker.sock").is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_kafka_in_a_container_round_trip() {
    if !docker_answers() {
        println!(
            "skipped: apache_kafka_in_a_container_round_trip: no Docker daemon answers (DOCKER_HOST unset, /var/run/docker.sock refuses)"
        );
        return;
    }
    let broker = Broker::container().await.expect("container broker");
    assert_eq!(broker.kind(), BrokerKind::Container);
    let topic = broker.unique_topic("container");
    broker.create_topic(&topic, 3).await.unwrap();
    let p = producer(&broker).unwrap();
    send(&p, &topic, Some(b"k"), &[("h", b"v")], b"payload")
        .await
        .unwrap();
    let c = consumer(&broker, &broker.unique_group()).unwrap();
    subscribe(&c, &[&topic]).unwrap();
    let got = receive(&c, 1, Duration::from_secs(60)).await;
    assert_eq!(got[0].payload.as_deref(), Some(&b"payload"[..]));
}
