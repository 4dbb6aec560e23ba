//! Bad input and faults: unreachable brokers, taken ports, unknown topics, brokers going down,
//! injected request errors, and teardown when a test panics. Fault injection needs the embedded
//! broker; on other brokers those tests say they are skipped and why.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use evkit_testkit::clients::{consumer, producer, receive, send, subscribe};
use evkit_testkit::{ApiKey, Broker, Capability, EmbeddedBroker, Error, RespErr};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_a_clear_error_within_bounded_time() {
    // Reserve a port, then close it: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let err = Broker::external(&format!("127.0.0.1:{port}"), "kafka")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_fails_before_anything_starts() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = EmbeddedBroker::start(1)
        .unwrap()
        .front(addr)
        .await
        .err()
        .expect("bind must fail");
    assert!(matches!(err, Error::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_serves_clients_on_a_fixed_address() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let front = EmbeddedBroker::start(1)
        .unwrap()
        .front(listen)
        .await
        .unwrap();
    assert_eq!(front.bootstrap_servers(), listen.to_string());
    front.cluster().create_topic("fixed-address", 2).unwrap();
    let broker = Broker::external(front.bootstrap_servers(), "embedded")
        .await
        .unwrap();
    let p = producer(&broker).unwrap();
    send(&p, "fixed-address", Some(b"k"), &[], b"hello")
        .await
        .unwrap();
    let c = consumer(&broker, &broker.unique_group()).unwrap();
    subscribe(&c, &["fixed-address"]).unwrap();
    let got = receive(&c, 1, Duration::from_secs(30)).await;
    assert_eq!(got[0].payload.as_deref(), Some(&b"hello"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_that_does_not_exist() {
    let broker = Broker::start().await.unwrap();
    let topic = broker.unique_topic("missing");
    if let Some(cluster) = broker.embedded_cluster() {
        cluster
            .topic_error(&topic, RespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            .unwrap();
    } else if broker.capabilities().has(Capability::AutoCreateTopics) {
        println!(
            "skipped: a_topic_that_does_not_exist: broker {} creates topics on use",
            broker.name()
        );
        return;
    }
    let p: FutureProducer = broker
        .client_config()
        .set("message.timeout.ms", "3000")
        .create()
        .unwrap();
    let started = Instant::now();
    let result = p
        .send(
            FutureRecord::<[u8], [u8]>::to(&topic).payload(b"x"),
            Duration::from_secs(5),
        )
        .await;
    let (err, _) = result.expect_err("producing to a missing topic must fail");
    println!("missing topic: {err}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_request_errors_retriable_and_fatal() {
    let broker = Broker::start().await.unwrap();
    if !broker.supports(
        Capability::FaultInjection,
        "injected_request_errors_retriable_and_fatal",
    ) {
        return;
    }
    let cluster = broker.embedded_cluster().unwrap();
    let topic = broker.unique_topic("inject");
    broker.create_topic(&topic, 1).await.unwrap();

    // Retriable errors are retried by the client: the send still succeeds.
    let p = producer(&broker).unwrap();
    cluster.push_request_errors(
        ApiKey::Produce,
        &[
            RespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    send(&p, &topic, None, &[], b"survives").await.unwrap();

    // A fatal error fails the send (a fresh producer: authorization errors stick to one).
    let fresh = producer(&broker).unwrap();
    cluster.push_request_errors(
        ApiKey::Produce,
        &[RespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let err = send(&fresh, &topic, None, &[], b"refused")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Authorization"), "{err}");
    cluster.clear_request_errors(ApiKey::Produce);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_goes_down_and_comes_back() {
    let broker = Broker::start().await.unwrap();
    if !broker.supports(
        Capability::FaultInjection,
        "a_broker_that_goes_down_and_comes_back",
    ) {
        return;
    }
    let cluster = broker.embedded_cluster().unwrap();
    let topic = broker.unique_topic("down");
    broker.create_topic(&topic, 1).await.unwrap();
    cluster.partition_leader(&topic, 0, 1).unwrap();
    let p = producer(&broker).unwrap();
    send(&p, &topic, None, &[], b"before").await.unwrap();

    cluster.broker_down(1).unwrap();
    let pending = {
        let p = p.clone();
        let topic = topic.clone();
        tokio::spawn(async move { send(&p, &topic, None, &[], b"during").await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !pending.is_finished(),
        "a send to a down leader cannot complete"
    );
    cluster.broker_up(1).unwrap();
    pending
        .await
        .unwrap()
        .expect("delivered once the broker is back");

    let c = consumer(&broker, &broker.unique_group()).unwrap();
    subscribe(&c, &[&topic]).unwrap();
    let got = receive(&c, 2, Duration::from_secs(30)).await;
    let payloads: Vec<_> = got.iter().map(|r| r.payload.clone().unwrap()).collect();
    assert_eq!(payloads, vec![b"before".to_vec(), b"during".to_vec()]);

    cluster
        .round_trip_time(1, Duration::from_millis(300))
        .unwrap();
    let started = Instant::now();
    send(&p, &topic, None, &[], b"slow").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "rtt not applied"
    );
}

#[test]
fn a_panicking_test_still_tears_the_broker_down() {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let broker = EmbeddedBroker::start(3).unwrap();
        tx.send(broker.bootstrap_servers().to_owned()).unwrap();
        panic!("test body failed");
    });
    assert!(handle.join().is_err(), "the thread panicked");
    let bootstrap = rx.recv().unwrap();
    for addr in bootstrap.split(',') {
        let addr: SocketAddr = addr.parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "{addr} still accepts connections"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn capabilities_are_declared_per_flavor() {
    assert!(!evkit_testkit::Capabilities::for_flavor("tansu").has(Capability::AutoCreateTopics));
    assert!(
        !evkit_testkit::Capabilities::for_flavor("tansu").has(Capability::AccurateHighWatermark)
    );
    assert!(evkit_testkit::Capabilities::for_flavor("embedded").has(Capability::FaultInjection));
    let _ = ClientConfig::new();
}
