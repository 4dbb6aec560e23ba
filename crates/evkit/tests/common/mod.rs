//! Shared set-up for the runtime's broker tests: a catalog topic mapped onto a fresh topic of the
//! test broker, its dead-letter topic, fast timings, and readers for what landed where.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evkit::Config;
use evkit::config::{ConsumerConfig, RetryConfig};
use evkit_schema::{Catalog, encode_identity};
use evkit_testkit::Broker;
use evkit_testkit::clients::{Record, consumer, receive, subscribe};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

pub const TODO: &str = "platform.evkit.todo-created";
pub const TODO_DLQ: &str = "platform.evkit.todo-created.dlq";

pub fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas")).unwrap())
}

/// A test's view of one catalog topic on the broker.
pub struct Setup {
    pub broker: Broker,
    pub config: Config,
    pub topic: String,
    pub dlq: String,
    pub partitions: i32,
}

/// Timings short enough for tests: 3 retries from 10 ms, commits every 50 ms.
pub fn fast_consumer() -> ConsumerConfig {
    ConsumerConfig {
        max_in_flight_per_partition: 16,
        handler_timeout_ms: 1_000,
        retry: RetryConfig {
            max_retries: 3,
            min_delay_ms: 10,
            max_delay_ms: 50,
            factor: 2.0,
            jitter: true,
        },
        commit_interval_ms: 50,
        shutdown_deadline_ms: 10_000,
        auto_offset_reset: "earliest".to_owned(),
        dead_letter_timeout_ms: 3_000,
        lag_interval_ms: 100,
        partition_queues: true,
    }
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

pub async fn setup(prefix: &str, partitions: i32) -> Setup {
    init_tracing();
    let broker = Broker::start().await.unwrap();
    let topic = broker.unique_topic(prefix);
    let dlq = format!("{topic}.dlq");
    broker.create_topic(&topic, partitions).await.unwrap();
    broker.create_topic(&dlq, partitions).await.unwrap();
    let mut config = Config {
        bootstrap_servers: broker.bootstrap_servers().to_owned(),
        group_id: broker.unique_group(),
        client_id: format!("evkit-test-{prefix}"),
        consumer: fast_consumer(),
        ..Config::default()
    };
    config.topics.insert(TODO.to_owned(), topic.clone());
    config.topics.insert(TODO_DLQ.to_owned(), dlq.clone());
    config
        .librdkafka_consumer
        .insert("session.timeout.ms".to_owned(), "6000".to_owned());
    config
        .librdkafka_consumer
        .insert("heartbeat.interval.ms".to_owned(), "500".to_owned());
    Setup {
        broker,
        config,
        topic,
        dlq,
        partitions,
    }
}

/// A valid todo-created payload.
pub fn todo(id: u64, org: &str) -> Vec<u8> {
    format!(
        r#"{{"id": {id}, "org_id": "{org}", "title": "todo {id}", "created_at": "2026-11-01T09:30:00Z"}}"#
    )
    .into_bytes()
}

/// The headers every valid message carries.
pub fn headers(org: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "x-rh-identity".to_owned(),
            encode_identity(org, "User").into_bytes(),
        ),
        ("x-rh-insights-request-id".to_owned(), b"req-test".to_vec()),
    ]
}

pub fn header_refs(h: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    h.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect()
}

/// Everything on `topic` (up to `n` records within `timeout`).
pub async fn read_all(broker: &Broker, topic: &str, n: usize, timeout: Duration) -> Vec<Record> {
    let c = consumer(broker, &broker.unique_group()).unwrap();
    subscribe(&c, &[topic]).unwrap();
    receive(&c, n, timeout).await
}

/// The committed offset of `group` per partition of `topic` (`None`: nothing committed).
pub fn committed(
    broker: &Broker,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Option<i64>> {
    let c: BaseConsumer = broker
        .client_config()
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    got.elements()
        .iter()
        .map(|e| {
            (
                e.partition(),
                match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                },
            )
        })
        .collect()
}

/// Polls the group's committed offsets until they reach `ends` (partition → end offset) (or `timeout` passes) and returns
/// the last answer. Redelivery after a failed commit (a restart, a rebalance) can still be running
/// when every message has been seen once, so tests wait for the commits, not only the handling.
pub async fn committed_to(
    broker: &Broker,
    group: &str,
    topic: &str,
    ends: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> BTreeMap<i32, Option<i64>> {
    let partitions = ends.keys().max().map_or(0, |p| p + 1);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut got = tokio::task::block_in_place(|| committed(broker, group, topic, partitions));
        got.retain(|p, _| ends.contains_key(p));
        if ends.iter().all(|(p, e)| got.get(p) == Some(&Some(*e)))
            || tokio::time::Instant::now() >= deadline
        {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What the handlers saw: (partition, offset) in handling order, shared across tasks.
#[derive(Clone, Default)]
pub struct Seen(pub Arc<Mutex<Vec<(i32, i64)>>>);

impl Seen {
    pub fn push(&self, partition: i32, offset: i64) {
        self.0.lock().unwrap().push((partition, offset));
    }
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    pub fn set(&self) -> BTreeSet<(i32, i64)> {
        self.0.lock().unwrap().iter().copied().collect()
    }
    pub fn all(&self) -> Vec<(i32, i64)> {
        self.0.lock().unwrap().clone()
    }
}

/// Waits until `cond` holds, for at most `timeout`.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// The value of a header on a record.
pub fn header<'a>(r: &'a Record, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The `id` of each record's JSON payload, sorted.
pub fn sorted_ids(records: &[Record]) -> Vec<u64> {
    let mut ids: Vec<u64> = records
        .iter()
        .map(|r| {
            let v: serde_json::Value =
                serde_json::from_slice(r.payload.as_deref().unwrap()).unwrap();
            v["id"].as_u64().unwrap()
        })
        .collect();
    ids.sort_unstable();
    ids
}
