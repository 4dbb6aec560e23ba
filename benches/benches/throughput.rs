//! Partition throughput of the evkit runtime against bare rdkafka on the same broker.
//!
//! - consumer: evkit's pipeline (validate + dispatch to a no-op handler + commit) reading N
//!   pre-produced `todo-created` messages, against a bare `StreamConsumer` reading the same
//!   messages (each run a fresh group from the beginning);
//! - producer: `evkit::Producer::produce` of the generated `TodoCreatedEvent` (serialize, key
//!   policy, identity and request id headers, full contract check, send, wait for the
//!   acknowledgement) against a bare `FutureProducer` with the same settings (acks=all,
//!   idempotence) doing what a hand-written producer for this topic does per event: serialize it
//!   with `serde_json`, take the key from `org_id`, add the identity header and a fresh UUID
//!   request id. Also reported, for scale: the bare producer sending pre-serialized bytes (no
//!   per-message work at all). All keep the same number of sends in flight.
//!
//! Runs alternate (bare, evkit, bare, evkit, ...) and the ratio is the median of the per-pair
//! ratios evkit/bare of messages per second, so a slow moment of a shared machine hits both
//! sides alike. Target: ≥ 0.85 for each.
//!
//! ```text
//! cargo bench -p evkit-benches --bench throughput
//! EVKIT_BENCH_ROUNDS=7 EVKIT_BENCH_ONLY=consumer cargo bench -p evkit-benches --bench throughput
//! EVKIT_BENCH_ONLY=threads cargo bench -p evkit-benches --bench throughput   # threads at once, no Kafka
//! EVKIT_BOOTSTRAP=127.0.0.1:9092 cargo bench -p evkit-benches --bench throughput   # another broker
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use evkit::{Config, Consumer, Context, Metrics, Outcome, Producer, Router, handler_fn};
use evkit_events::generated::platform_evkit_todo_created::TodoCreatedEvent;
use evkit_schema::{Catalog, encode_identity};
use evkit_testkit::Broker;
use evkit_testkit::bench::{Check, HandContract};
use futures::StreamExt as _;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

const TOPIC: &str = "platform.evkit.todo-created";
/// Tenants (the key): enough of them to spread messages evenly over the partitions.
const TENANTS: usize = 64;
/// Partitions of the bench topics. librdkafka's mock broker keeps at most 5 MB per partition
/// (older messages are dropped, like retention), so the messages are spread over six.
const PARTITIONS: i32 = 6;
/// Sends outstanding at once, over all producing tasks.
const IN_FLIGHT: usize = 1_000;
/// Producing tasks: a service produces from many handlers at once.
const TASKS: usize = 4;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A valid todo of about 500 bytes.
fn todo(i: usize) -> Value {
    let org = format!("org-{}", i % TENANTS);
    json!({
        "id": i + 1,
        "org_id": org,
        "title": format!("Todo number {i} for the throughput bench"),
        "description": "x".repeat(330),
        "created_at": "2026-11-01T09:30:00Z",
        "tags": ["bench", "throughput"],
        "priority": "normal",
    })
}

fn base_config(broker: &Broker, topic: &str) -> Config {
    let mut config = Config {
        bootstrap_servers: broker.bootstrap_servers().to_owned(),
        group_id: broker.unique_group(),
        client_id: "evkit-bench".to_owned(),
        ..Config::default()
    };
    config.topics.insert(TOPIC.to_owned(), topic.to_owned());
    config
        .topics
        .insert(format!("{TOPIC}.dlq"), format!("{topic}.dlq"));
    config
}

/// The librdkafka settings evkit's producer uses, for the bare producer.
fn bare_producer(broker: &Broker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("client.id", "evkit-bench")
        .set("security.protocol", "plaintext")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap()
}

struct Wire {
    key: Vec<u8>,
    identity: String,
    payload: Vec<u8>,
}

fn wire(n: usize) -> Vec<Wire> {
    (0..n)
        .map(|i| {
            let v = todo(i);
            Wire {
                key: v["org_id"].as_str().unwrap().as_bytes().to_vec(),
                identity: encode_identity(v["org_id"].as_str().unwrap(), "User"),
                payload: serde_json::to_vec(&v).unwrap(),
            }
        })
        .collect()
}

/// Runs `send(i)` for every `i < n` from `TASKS` tasks with `IN_FLIGHT` sends outstanding in
/// all (the same shape for the bare and the evkit producer); returns how many succeeded.
async fn fan_out<F, Fut>(n: usize, send: F) -> usize
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let send = send.clone();
            tokio::spawn(async move {
                futures::stream::iter((t..n).step_by(TASKS))
                    .map(send)
                    .buffer_unordered(IN_FLIGHT / TASKS)
                    .filter(|ok| futures::future::ready(*ok))
                    .count()
                    .await
            })
        })
        .collect();
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum()
}

/// One bare send with the two required headers; `true` when the broker acknowledged it.
async fn send_bare(
    p: &FutureProducer,
    topic: &str,
    key: &[u8],
    identity: &str,
    request_id: &str,
    payload: &[u8],
) -> bool {
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "x-rh-identity",
            value: Some(identity.as_bytes()),
        })
        .insert(Header {
            key: "x-rh-insights-request-id",
            value: Some(request_id.as_bytes()),
        });
    let record = FutureRecord::to(topic)
        .key(key)
        .payload(payload)
        .headers(headers);
    p.send(record, Duration::from_secs(30)).await.is_ok()
}

/// Bare producer: pre-serialized messages with the two headers. Returns msgs/s.
async fn produce_bare(p: &FutureProducer, topic: &str, msgs: &Arc<Vec<Wire>>, n: usize) -> f64 {
    let start = Instant::now();
    let (p, msgs, topic) = (p.clone(), Arc::clone(msgs), Arc::<str>::from(topic));
    let sent = fan_out(n, move |i| {
        let (p, msgs, topic) = (p.clone(), Arc::clone(&msgs), Arc::clone(&topic));
        async move {
            let m = &msgs[i];
            let request_id = format!("bench-{i}");
            send_bare(&p, &topic, &m.key, &m.identity, &request_id, &m.payload).await
        }
    })
    .await;
    assert_eq!(sent, n, "bare producer lost messages");
    rate(n, start.elapsed())
}

/// A typed event and the identity header its producer sends with it.
struct Typed {
    event: TodoCreatedEvent,
    identity: String,
    ctx: Context,
}

fn typed(n: usize) -> Vec<Typed> {
    (0..n)
        .map(|i| {
            let event: TodoCreatedEvent = serde_json::from_value(todo(i)).unwrap();
            let org = event.org_id.as_str().to_owned();
            Typed {
                event,
                identity: encode_identity(&org, "User"),
                ctx: Context::new().for_org(&org),
            }
        })
        .collect()
}

/// Bare producer doing a hand-written producer's work per event: serialize, key from `org_id`,
/// identity header, fresh UUID request id. Returns msgs/s.
async fn produce_bare_typed(
    p: &FutureProducer,
    topic: &str,
    events: &Arc<Vec<Typed>>,
    n: usize,
) -> f64 {
    let start = Instant::now();
    let (p, events, topic) = (p.clone(), Arc::clone(events), Arc::<str>::from(topic));
    let sent = fan_out(n, move |i| {
        let (p, events, topic) = (p.clone(), Arc::clone(&events), Arc::clone(&topic));
        async move {
            let t = &events[i];
            let payload = serde_json::to_vec(&t.event).unwrap();
            let request_id = uuid::Uuid::new_v4().to_string();
            let key = t.event.org_id.as_bytes();
            send_bare(&p, &topic, key, &t.identity, &request_id, &payload).await
        }
    })
    .await;
    assert_eq!(sent, n, "bare producer lost messages");
    rate(n, start.elapsed())
}

/// evkit's producer: typed events in, everything else done per message. Returns msgs/s.
async fn produce_evkit(p: &Arc<Producer>, events: &Arc<Vec<Typed>>, n: usize) -> f64 {
    let start = Instant::now();
    let (p, events) = (Arc::clone(p), Arc::clone(events));
    let sent = fan_out(n, move |i| {
        let (p, events) = (Arc::clone(&p), Arc::clone(&events));
        async move {
            let t = &events[i];
            p.produce(TOPIC, &t.event, &t.ctx).await.is_ok()
        }
    })
    .await;
    assert_eq!(sent, n, "evkit producer lost messages");
    rate(n, start.elapsed())
}

/// A consumer pass: messages per second (first to last), and the steady-state CPU per message
/// (the process CPU clock from the tenth of the messages to the last, so the group join, the
/// first fetches and the shutdown are left out), as `evkit_testkit::bench::baseline` measures
/// the bare and hand-written consumers.
struct Pass {
    rate: f64,
    steady_cpu_us: f64,
}

/// The message (counted from 0) where the steady state starts.
fn steady_start(n: usize) -> usize {
    let n = u64::try_from(n).unwrap();
    usize::try_from(evkit_testkit::bench::steady_start(n)).unwrap()
}

/// A baseline consumer of `evkit_testkit::bench` (bare, hand-written or whole-contract, by
/// `check`) reads the topic; every message must be valid.
async fn consume_baseline(broker: &Broker, topic: &str, check: Check<'_>, n: usize) -> Pass {
    let b = evkit_testkit::bench::baseline(broker, topic, check, n)
        .await
        .unwrap();
    assert_eq!(b.invalid, 0, "a valid message failed a baseline's check");
    Pass {
        rate: b.rate,
        steady_cpu_us: b.cpu_per_message_us.unwrap(),
    }
}

/// evkit's consumer: validate + dispatch to a no-op handler + commit, timed like the bare one.
async fn consume_evkit(broker: &Broker, topic: &str, catalog: &Arc<Catalog>, n: usize) -> Pass {
    let config = base_config(broker, topic);
    let count = Arc::new(AtomicU64::new(0));
    let first: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let last: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    // The CPU clock at the steady state's first message and at the last.
    let cpu: Arc<[std::sync::OnceLock<f64>; 2]> = Arc::default();
    let want = u64::try_from(n).unwrap();
    let steady = u64::try_from(steady_start(n)).unwrap() + 1;
    let handler = {
        let (count, first, last, cpu) = (
            Arc::clone(&count),
            Arc::clone(&first),
            Arc::clone(&last),
            Arc::clone(&cpu),
        );
        handler_fn(move |_msg| {
            let seen = count.fetch_add(1, Ordering::Relaxed) + 1;
            if seen == 1 {
                let _ = first.set(Instant::now());
            }
            if seen == steady {
                let _ = cpu[0].set(process_cpu_seconds());
            }
            if seen == want {
                let _ = last.set(Instant::now());
                let _ = cpu[1].set(process_cpu_seconds());
            }
            async { Outcome::Ack }
        })
    };
    let routes = Router::new(Arc::clone(catalog))
        .route(TOPIC, handler)
        .build()
        .unwrap();
    let consumer = Consumer::new(&config, routes, Metrics::new()).unwrap();
    let stop = consumer.shutdown_token();
    let run = tokio::spawn(consumer.run(std::future::pending()));
    let deadline = Instant::now() + Duration::from_secs(120);
    while last.get().is_none() {
        assert!(
            Instant::now() < deadline,
            "evkit consumer stalled at {count:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.cancel();
    let summary = run.await.unwrap().unwrap();
    let committed: i64 = summary.committed.values().sum();
    assert_eq!(committed, i64::try_from(n).unwrap(), "not all committed");
    let counted = f64::from(u32::try_from(n - steady_start(n)).unwrap());
    Pass {
        rate: rate(n - 1, *last.get().unwrap() - *first.get().unwrap()),
        steady_cpu_us: (cpu[1].get().unwrap() - cpu[0].get().unwrap()) * 1e6 / counted,
    }
}

#[allow(clippy::cast_precision_loss)]
fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = env_usize("EVKIT_BENCH_MESSAGES", if quick { 2_000 } else { 20_000 });
    let rounds = env_usize("EVKIT_BENCH_ROUNDS", if quick { 1 } else { 5 });
    let catalog = Arc::new(evkit_benches::catalog().unwrap());
    let msgs = Arc::new(wire(n));
    let only = std::env::var("EVKIT_BENCH_ONLY").unwrap_or_default();
    if only == "threads" {
        thread_scaling(&catalog, &owned_records(&msgs), &msgs);
        return;
    }
    let broker = Broker::start().await.unwrap();
    println!(
        "throughput: {n} messages of ~{} bytes, {rounds} rounds, {} broker, {} in flight, allocator {}",
        msgs[0].payload.len(),
        broker.name(),
        IN_FLIGHT,
        evkit_benches::ALLOCATOR
    );

    if only != "consumer" {
        producer_cpu_breakdown(&catalog);
    }
    let bare = bare_producer(&broker);
    if only != "consumer" {
        bench_producer(&broker, &catalog, &bare, &msgs, rounds).await;
    }
    if only != "producer" {
        consumer_cpu_breakdown(&catalog, &msgs).await;
        thread_scaling(&catalog, &owned_records(&msgs), &msgs);
        bench_consumer(&broker, &catalog, &bare, &msgs, rounds).await;
    }
}

async fn bench_producer(
    broker: &Broker,
    catalog: &Arc<Catalog>,
    bare: &FutureProducer,
    msgs: &Arc<Vec<Wire>>,
    rounds: usize,
) {
    let n = msgs.len();
    let events = Arc::new(typed(n));
    // Long-lived clients and topics on both sides, as in a service; the order of the three runs
    // rotates every round so none of them always runs first or last.
    let t_bare = broker.unique_topic("bench-produce-bare");
    let t_evkit = broker.unique_topic("bench-produce-evkit");
    broker.create_topic(&t_bare, PARTITIONS).await.unwrap();
    broker.create_topic(&t_evkit, PARTITIONS).await.unwrap();
    let producer = Arc::new(
        Producer::new(
            &base_config(broker, &t_evkit),
            Arc::clone(catalog),
            Metrics::new(),
        )
        .unwrap(),
    );
    produce_bare(bare, &t_bare, msgs, n.min(1_000)).await;
    produce_evkit(&producer, &events, n.min(1_000)).await;
    let (mut produce_ratios, mut bytes_ratios) = (Vec::new(), Vec::new());
    let (mut bare_rates, mut bytes_rates, mut evkit_rates) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu_per_msg = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds {
        let mut rate = [0.0; 3];
        for k in 0..3 {
            let which = (round + k) % 3;
            let c0 = process_cpu_seconds();
            rate[which] = match which {
                0 => produce_bare(bare, &t_bare, msgs, n).await,
                1 => produce_bare_typed(bare, &t_bare, &events, n).await,
                _ => produce_evkit(&producer, &events, n).await,
            };
            cpu_per_msg[which]
                .push((process_cpu_seconds() - c0) * 1e6 / f64::from(u32::try_from(n).unwrap()));
        }
        let [raw, b, e] = rate;
        println!(
            "  produce round {round}: bare (pre-serialized) {raw:>9.0} msg/s  bare {b:>9.0} msg/s  evkit {e:>9.0} msg/s  ratio {:.3} ({:.3} to pre-serialized)",
            e / b,
            e / raw
        );
        produce_ratios.push(e / b);
        bytes_ratios.push(e / raw);
        bare_rates.push(b);
        bytes_rates.push(raw);
        evkit_rates.push(e);
    }
    let [cpu_raw, cpu_bare, cpu_evkit] = cpu_per_msg.map(median);
    println!(
        "producer: bare {:.0} msg/s, evkit {:.0} msg/s, ratio evkit/bare {:.3} (target >= 0.85); bare pre-serialized {:.0} msg/s, ratio {:.3}",
        median(bare_rates),
        median(evkit_rates),
        median(produce_ratios),
        median(bytes_rates),
        median(bytes_ratios)
    );
    println!(
        "producer CPU per message of this process (the embedded broker included when it runs in-process): bare pre-serialized {cpu_raw:.1} µs, bare {cpu_bare:.1} µs, evkit {cpu_evkit:.1} µs"
    );
}

/// Where the producer's extra CPU goes, on one thread and without Kafka: what a bare producer
/// does before `send` (serialize the event) against the steps `Producer::produce` takes (the event
/// as a JSON value, serialized from that value, key from the key policy, headers, full check).
fn producer_cpu_breakdown(catalog: &Catalog) {
    let events = typed(20_000);
    let contract = Arc::clone(catalog.contract(TOPIC).unwrap());
    let per_msg = |f: &mut dyn FnMut(&Typed)| {
        let mut runs: Vec<f64> = (0..5)
            .map(|_| {
                let t0 = Instant::now();
                events.iter().for_each(&mut *f);
                t0.elapsed().as_secs_f64() * 1e6 / f64::from(u32::try_from(events.len()).unwrap())
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        runs[2]
    };
    let serialize = per_msg(&mut |t| {
        std::hint::black_box(serde_json::to_vec(&t.event).unwrap());
    });
    let to_value = per_msg(&mut |t| {
        std::hint::black_box(serde_json::to_value(&t.event).unwrap());
    });
    let via_value = per_msg(&mut |t| {
        let v = serde_json::to_value(&t.event).unwrap();
        std::hint::black_box(serde_json::to_vec(&v).unwrap());
    });
    let evkit = per_msg(&mut |t| {
        let v = serde_json::to_value(&t.event).unwrap();
        let bytes = serde_json::to_vec(&v).unwrap();
        let key = contract.key_for(&v).unwrap();
        let headers = vec![
            ("x-rh-identity".to_owned(), t.identity.as_bytes().to_vec()),
            (
                "x-rh-insights-request-id".to_owned(),
                uuid::Uuid::new_v4().to_string().into_bytes(),
            ),
        ];
        let message = evkit_schema::Message::from_parts(Some(key.as_bytes()), &headers, &bytes);
        std::hint::black_box(contract.check_parsed(&message, v).unwrap());
    });
    println!(
        "producer work before send, one thread, per message: serialize the event {serialize:.2} µs; \
         event -> JSON value {to_value:.2} µs; event -> value -> bytes {via_value:.2} µs; \
         evkit's whole preparation (value, bytes, key, headers, check) {evkit:.2} µs"
    );
}

/// The bench's messages as records off the wire (with both required headers).
fn owned_records(msgs: &[Wire]) -> Vec<rdkafka::message::OwnedMessage> {
    use rdkafka::message::{OwnedMessage, Timestamp};
    msgs.iter()
        .enumerate()
        .map(|(i, m)| {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "x-rh-identity",
                    value: Some(m.identity.as_bytes()),
                })
                .insert(Header {
                    key: "x-rh-insights-request-id",
                    value: Some(uuid::Uuid::new_v4().to_string().as_bytes()),
                });
            OwnedMessage::new(
                Some(m.payload.clone()),
                Some(m.key.clone()),
                TOPIC.to_owned(),
                Timestamp::CreateTime(1_700_000_000_000),
                0,
                i64::try_from(i).unwrap(),
                Some(headers),
            )
        })
        .collect()
}

/// Where the consumer's extra CPU goes, on one thread and without Kafka: copying a record off
/// the wire, the contract check alone, and the whole chain the consumer runs per message
/// ([`evkit::consumer::chain`] around a no-op handler).
async fn consumer_cpu_breakdown(catalog: &Catalog, msgs: &[Wire]) {
    use evkit::{Envelope, Handler as _, Incoming};

    let records = owned_records(msgs);
    let contract = Arc::clone(catalog.contract(TOPIC).unwrap());
    let metrics = Metrics::new();
    let chain = evkit_benches::noop_chain(catalog, &metrics, TOPIC).unwrap();
    let topic: Arc<str> = Arc::from(TOPIC);
    let n = f64::from(u32::try_from(records.len()).unwrap());
    let (mut copy, mut check, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let t0 = Instant::now();
        for r in &records {
            std::hint::black_box(Envelope::from_kafka(r));
        }
        copy.push(t0.elapsed().as_secs_f64() * 1e6 / n);
        let envs: Vec<Envelope> = records.iter().map(Envelope::from_kafka).collect();
        let t0 = Instant::now();
        for e in &envs {
            std::hint::black_box(contract.check(&e.message()).unwrap());
        }
        check.push(t0.elapsed().as_secs_f64() * 1e6 / n);
        let t0 = Instant::now();
        for e in envs {
            assert_eq!(
                chain.handle(Incoming::new(Arc::clone(&topic), e)).await,
                Outcome::Ack
            );
        }
        whole.push(t0.elapsed().as_secs_f64() * 1e6 / n);
    }
    let (check, whole) = (median(check), median(whole));
    println!(
        "consumer work per message, one thread, no Kafka: copy the record {:.2} µs; contract check {check:.2} µs; \
         whole chain {whole:.2} µs, so the middleware around the check {:.2} µs",
        median(copy),
        whole - check
    );
    // Two partitions' workers on two threads at once, sharing the topic's chain (its contract,
    // identity cache and metrics), as the consumer runs them; against two threads that share
    // nothing (a catalog and metrics each): the difference is what sharing costs.
    let own_metrics = Metrics::new();
    let own_catalog = evkit_benches::catalog().unwrap();
    let own = evkit_benches::noop_chain(&own_catalog, &own_metrics, TOPIC).unwrap();
    let mut per = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..9 {
        let (pair, tally) = match round % 3 {
            0 => ([(&chain, &metrics), (&chain, &metrics)], false),
            1 => ([(&chain, &metrics), (&chain, &metrics)], true),
            _ => ([(&chain, &metrics), (&own, &own_metrics)], true),
        };
        per[round % 3].push(chain_on_threads(&pair, &records, tally));
    }
    let [direct, tallied, apart] = per.map(median);
    println!(
        "whole chain, two threads at once, no Kafka, per message per thread: {tallied:.2} µs sharing the \
         topic's chain as the consumer does ({direct:.2} µs counting into the shared metrics without \
         the workers' tallies), {apart:.2} µs sharing nothing"
    );
}

/// Wall time per message per thread of `chains.len()` threads at once, thread `i` running
/// `chains[i]` (counting into its metrics) over its own copy of `records`; with `tally`, each
/// thread counts into its own tally, as a partition worker does.
fn chain_on_threads(
    chains: &[(&Arc<dyn evkit::Handler>, &Metrics)],
    records: &[rdkafka::message::OwnedMessage],
    tally: bool,
) -> f64 {
    use evkit::{Envelope, Incoming};
    let barrier = Arc::new(std::sync::Barrier::new(chains.len()));
    let per_thread: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = chains
            .iter()
            .map(|&(chain, metrics)| {
                let metrics = metrics.topic(TOPIC);
                let envs: Vec<Envelope> = records.iter().map(Envelope::from_kafka).collect();
                // Each worker has its own copy of the topic name, as in the consumer.
                let topic: Arc<str> = Arc::from(TOPIC);
                let (chain, barrier) = (Arc::clone(chain), Arc::clone(&barrier));
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    let n = f64::from(u32::try_from(envs.len()).unwrap());
                    let run = async move {
                        barrier.wait();
                        let t0 = Instant::now();
                        for e in envs {
                            assert_eq!(
                                chain.handle(Incoming::new(Arc::clone(&topic), e)).await,
                                Outcome::Ack
                            );
                        }
                        t0.elapsed().as_secs_f64() * 1e6 / n
                    };
                    if tally {
                        rt.block_on(evkit::metrics::tallied(metrics, run))
                    } else {
                        rt.block_on(run)
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    per_thread.iter().sum::<f64>() / f64::from(u32::try_from(per_thread.len()).unwrap())
}

/// Wall time per message per thread of `threads` threads at once each doing what the
/// hand-written consumer does per record (parse the payload, jsonschema's `is_valid` with a
/// validator of its own), over its own copy of `msgs`: work that shares nothing, so its growth
/// with the threads is the machine's (caches, memory, clock), not contention.
fn hand_on_threads(threads: usize, schema: &Value, msgs: &[Wire]) -> f64 {
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let per_thread: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let validator = jsonschema::validator_for(schema).unwrap();
                let payloads: Vec<Vec<u8>> = msgs.iter().map(|m| m.payload.clone()).collect();
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    let n = f64::from(u32::try_from(payloads.len()).unwrap());
                    barrier.wait();
                    let t0 = Instant::now();
                    for p in &payloads {
                        let v: Value = serde_json::from_slice(p).unwrap();
                        assert!(validator.is_valid(&v));
                    }
                    t0.elapsed().as_secs_f64() * 1e6 / n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    per_thread.iter().sum::<f64>() / f64::from(u32::try_from(per_thread.len()).unwrap())
}

/// How the work per message grows when more threads run at once, without Kafka, for 1, 2, 4,
/// ... threads up to the machine's cores: evkit's chain shared by all threads as the consumer
/// shares it (one topic, several partition workers), evkit's chain with nothing shared (a
/// catalog and metrics per thread), and the hand-written consumer's parse and check. Where
/// the last grows as much as the others, the growth is the machine's, not evkit's sharing.
fn thread_scaling(catalog: &Catalog, records: &[rdkafka::message::OwnedMessage], msgs: &[Wire]) {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let metrics = Metrics::new();
    let shared = evkit_benches::noop_chain(catalog, &metrics, TOPIC).unwrap();
    let schema = catalog.topic(TOPIC).unwrap().schema.clone();
    println!(
        "threads at once, no Kafka, µs per message per thread (median of 5; × = against one thread):"
    );
    println!(
        "| threads | evkit chain, shared | × | evkit chain, nothing shared | × | hand-written | × |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut one = [f64::NAN; 3];
    let mut n = 1;
    while n <= cores {
        let own: Vec<(Metrics, Catalog)> = (0..n)
            .map(|_| (Metrics::new(), evkit_benches::catalog().unwrap()))
            .collect();
        let own_chains: Vec<Arc<dyn evkit::Handler>> = own
            .iter()
            .map(|(m, c)| evkit_benches::noop_chain(c, m, TOPIC).unwrap())
            .collect();
        let shared_pairs: Vec<_> = (0..n).map(|_| (&shared, &metrics)).collect();
        let own_pairs: Vec<_> = own_chains
            .iter()
            .zip(&own)
            .map(|(c, (m, _))| (c, m))
            .collect();
        let mut per = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..5 {
            per[0].push(chain_on_threads(&shared_pairs, records, true));
            per[1].push(chain_on_threads(&own_pairs, records, true));
            per[2].push(hand_on_threads(n, &schema, msgs));
        }
        let row = per.map(median);
        if n == 1 {
            one = row;
        }
        println!(
            "| {n} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            row[0],
            row[0] / one[0],
            row[1],
            row[1] / one[1],
            row[2],
            row[2] / one[2]
        );
        n *= 2;
    }
}

/// User + system CPU time of this process (all threads, the embedded broker's included), in
/// seconds, from the process CPU clock.
fn process_cpu_seconds() -> f64 {
    evkit_testkit::bench::process_cpu_seconds().unwrap_or(0.0)
}

async fn bench_consumer(
    broker: &Broker,
    catalog: &Arc<Catalog>,
    bare: &FutureProducer,
    msgs: &Arc<Vec<Wire>>,
    rounds: usize,
) {
    let n = msgs.len();
    // One pre-produced topic, read by a fresh group each run.
    let topic = broker.unique_topic("bench-consume");
    broker.create_topic(&topic, PARTITIONS).await.unwrap();
    produce_bare(bare, &topic, msgs, n).await;
    let schema = jsonschema::validator_for(&catalog.topic(TOPIC).unwrap().schema).unwrap();
    let whole = HandContract::new(catalog.topic(TOPIC).unwrap()).unwrap();
    let (mut consume_ratios, mut hand_ratios, mut whole_ratios) =
        (Vec::new(), Vec::new(), Vec::new());
    let (mut bare_rates, mut hand_rates, mut evkit_rates) = (Vec::new(), Vec::new(), Vec::new());
    let mut whole_rates = Vec::new();
    let mut cpu_per_msg = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let mut steady = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let per_msg =
        |c0: f64| (process_cpu_seconds() - c0) * 1e6 / f64::from(u32::try_from(n).unwrap());
    // For profiling one consumer alone: EVKIT_BENCH_CONSUMERS=evkit (or bare, hand, whole, a
    // list).
    let chosen = std::env::var("EVKIT_BENCH_CONSUMERS").unwrap_or_default();
    let runs = |name: &str| chosen.is_empty() || chosen.split(',').any(|c| c == name);
    for round in 0..rounds {
        let (mut bare_now, mut hand_now, mut evkit_now, mut whole_now) =
            (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
        if runs("bare") {
            let c0 = process_cpu_seconds();
            let pass = consume_baseline(broker, &topic, Check::Nothing, n).await;
            cpu_per_msg[0].push(per_msg(c0));
            steady[0].push(pass.steady_cpu_us);
            bare_now = pass.rate;
        }
        if runs("hand") {
            let c0 = process_cpu_seconds();
            let pass = consume_baseline(broker, &topic, Check::Payload(&schema), n).await;
            cpu_per_msg[1].push(per_msg(c0));
            steady[1].push(pass.steady_cpu_us);
            hand_now = pass.rate;
        }
        if runs("whole") {
            let c0 = process_cpu_seconds();
            let pass = consume_baseline(broker, &topic, Check::Whole(&whole), n).await;
            cpu_per_msg[3].push(per_msg(c0));
            steady[3].push(pass.steady_cpu_us);
            whole_now = pass.rate;
        }
        if runs("evkit") {
            let c0 = process_cpu_seconds();
            let pass = consume_evkit(broker, &topic, catalog, n).await;
            cpu_per_msg[2].push(per_msg(c0));
            steady[2].push(pass.steady_cpu_us);
            evkit_now = pass.rate;
        }
        println!(
            "  consume round {round}: bare {bare_now:>9.0} msg/s  hand-written {hand_now:>9.0} msg/s  whole contract {whole_now:>9.0} msg/s  evkit {evkit_now:>9.0} msg/s  ratio to bare {:.3}, to hand-written {:.3}, to whole contract {:.3}",
            evkit_now / bare_now,
            evkit_now / hand_now,
            evkit_now / whole_now
        );
        consume_ratios.push(evkit_now / bare_now);
        hand_ratios.push(evkit_now / hand_now);
        whole_ratios.push(evkit_now / whole_now);
        whole_rates.push(whole_now);
        bare_rates.push(bare_now);
        hand_rates.push(hand_now);
        evkit_rates.push(evkit_now);
    }
    let consume_ratio = median(consume_ratios);
    let hand_ratio = median(hand_ratios);
    println!(
        "consumer: bare {:.0} msg/s, hand-written (parse + jsonschema + offset store) {:.0} msg/s, evkit {:.0} msg/s; ratio evkit/bare {consume_ratio:.3} (target >= 0.85), evkit/hand-written {hand_ratio:.3} (target >= 0.9)",
        median(bare_rates),
        median(hand_rates),
        median(evkit_rates)
    );
    println!(
        "consumer against the whole contract checked by hand (key, headers, identity, payload; serde_json, base64, jsonschema): {:.0} msg/s; ratio evkit/whole contract {:.3}",
        median(whole_rates),
        median(whole_ratios)
    );
    let medians = |v: [Vec<f64>; 4]| v.map(|v| if v.is_empty() { f64::NAN } else { median(v) });
    let [cpu_bare, cpu_hand, cpu_evkit, cpu_whole] = medians(cpu_per_msg);
    println!(
        "consumer CPU per message of this process, whole run (group join, fetch, shutdown and the embedded broker included): bare {cpu_bare:.2} µs, hand-written {cpu_hand:.2} µs, evkit {cpu_evkit:.2} µs, whole contract {cpu_whole:.2} µs; evkit - hand-written {:.2} µs",
        cpu_evkit - cpu_hand
    );
    let [s_bare, s_hand, s_evkit, s_whole] = medians(steady);
    println!(
        "consumer CPU per message of this process, steady state (the last 90% of the messages; fetch and the embedded broker included): bare {s_bare:.2} µs, hand-written {s_hand:.2} µs, evkit {s_evkit:.2} µs, whole contract {s_whole:.2} µs; evkit - hand-written {:.2} µs (target <= 1.0)",
        s_evkit - s_hand
    );
}
