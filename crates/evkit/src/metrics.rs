//! Prometheus metrics per topic, and the HTTP endpoint that serves them.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `evkit_consumed_total` | topic | records read from Kafka |
//! | `evkit_valid_total` / `evkit_invalid_total` | topic | contract check results |
//! | `evkit_dispatched_total` | topic | handler attempts started |
//! | `evkit_handled_total` | topic, outcome | handler attempts by outcome (`ack`, `retry`, `reject`) |
//! | `evkit_retried_total` | topic | retries scheduled |
//! | `evkit_dead_lettered_total` | topic, reason | messages written to the dead-letter topic |
//! | `evkit_dead_letter_errors_total` | topic | failed dead-letter publishes (retried; source offset not committed) |
//! | `evkit_produced_total` / `evkit_produce_errors_total` | topic | producer deliveries and failures |
//! | `evkit_handler_duration_seconds` | topic | handler latency histogram |
//! | `evkit_consumer_lag` | topic, partition | messages behind the high watermark |
//! | `evkit_committed_total` | topic | offset commits sent |

use std::cell::RefCell;
use std::collections::HashMap;
#[cfg(feature = "metrics-server")]
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

#[cfg(feature = "metrics-server")]
use crate::Error;

type Labels = Vec<(&'static str, String)>;

/// Finite buckets of the latency histogram: 100 µs, 200 µs, ... 100 µs × 2¹⁹ (about 52 s).
const BUCKETS: usize = 20;
#[allow(clippy::cast_possible_truncation, reason = "20 fits")]
const BUCKETS_U16: u16 = BUCKETS as u16;
/// The first bucket's upper bound in nanoseconds; each next one doubles it.
const FIRST_BOUND_NS: u64 = 100_000;

/// The bucket of an observation: the first whose upper bound is at least `ns` (`le`, as
/// Prometheus counts), or [`BUCKETS`] (`+Inf`).
fn bucket(ns: u64) -> usize {
    let q = ns.div_ceil(FIRST_BOUND_NS);
    if q <= 1 {
        return 0;
    }
    // ⌈log₂ q⌉ (at most 64): the doublings of the first bound that reach `ns`.
    let doublings = (u64::BITS - (q - 1).leading_zeros()) as usize;
    doublings.min(BUCKETS)
}

/// A latency histogram (`evkit_handler_duration_seconds`) whose buckets are atomic counters:
/// an observation takes no lock, and a partition worker's [tally](tallied) adds a whole batch
/// of observations in one pass. Encoded as an `OpenMetrics` histogram with the buckets
/// 100 µs × 2ᵏ, k = 0..19, and `+Inf`. Cheap to clone; clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct Latency(Arc<LatencyCounts>);

#[derive(Debug, Default)]
struct LatencyCounts {
    buckets: [AtomicU64; BUCKETS + 1],
    sum_ns: AtomicU64,
}

impl Latency {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let ns = duration_ns(elapsed);
        self.0.buckets[bucket(ns)].fetch_add(1, Ordering::Relaxed);
        self.0.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far (the `+Inf` bucket, `_count`).
    pub fn count(&self) -> u64 {
        self.0
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }

    /// The sum of the observations (`_sum`).
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.0.sum_ns.load(Ordering::Relaxed))
    }

    fn add(&self, counts: &[u64; BUCKETS + 1], sum_ns: u64) {
        for (b, &n) in self.0.buckets.iter().zip(counts) {
            if n > 0 {
                b.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.0.sum_ns.fetch_add(sum_ns, Ordering::Relaxed);
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        // The same bounds (and so the same `le` labels) as prometheus-client's own histogram.
        let bounds = exponential_buckets(0.000_1, 2.0, BUCKETS_U16).chain([f64::MAX]);
        let buckets: Vec<(f64, u64)> = bounds
            .zip(&self.0.buckets)
            .map(|(le, n)| (le, n.load(Ordering::Relaxed)))
            .collect();
        // `_count` from the buckets read, so it always equals the `+Inf` bucket.
        let count = buckets.iter().map(|(_, n)| n).sum();
        #[allow(
            clippy::cast_precision_loss,
            reason = "seconds as f64, as Prometheus keeps them"
        )]
        let sum = self.0.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

tokio::task_local! {
    /// The running partition worker's tally (see [`tallied`]).
    static TALLY: RefCell<Tally>;
}

/// What a partition worker counted and has not yet added to its topic's shared series.
///
/// Every handled message bumps four counters and the latency histogram. Shared by a topic's
/// partitions, those are cache lines that two cores write in turn, per message; the worker
/// counts here instead and adds the sums once per batch (and whenever a handler waits, so a
/// slow handler's attempt shows at once). Dropped, it adds what is left.
struct Tally {
    topic: Arc<TopicMetrics>,
    valid: u64,
    invalid: u64,
    dispatched: u64,
    handled: [u64; 3],
    latency: [u64; BUCKETS + 1],
    latency_ns: u64,
    dirty: bool,
}

impl Tally {
    fn new(topic: Arc<TopicMetrics>) -> Self {
        Tally {
            topic,
            valid: 0,
            invalid: 0,
            dispatched: 0,
            handled: [0; 3],
            latency: [0; BUCKETS + 1],
            latency_ns: 0,
            dirty: false,
        }
    }

    fn flush(&mut self) {
        if !std::mem::take(&mut self.dirty) {
            return;
        }
        let t = &self.topic;
        let [ack, retry, reject] = &mut self.handled;
        for (counter, n) in [
            (&t.valid, &mut self.valid),
            (&t.invalid, &mut self.invalid),
            (&t.dispatched, &mut self.dispatched),
            (&t.handled[0], ack),
            (&t.handled[1], retry),
            (&t.handled[2], reject),
        ] {
            let n = std::mem::take(n);
            if n > 0 {
                counter.inc_by(n);
            }
        }
        t.latency.add(&self.latency, self.latency_ns);
        self.latency = [0; BUCKETS + 1];
        self.latency_ns = 0;
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Runs `work` with a tally for `topic`: the counts that a chain built for that topic makes
/// inside `work` (valid, invalid, dispatched, handled, latency) stay in the tally until
/// [`flush_tally`], a handler attempt that waits, or the end of `work`, and are then added to
/// the shared series at once. The consumer runs each partition worker so; a loop of your own
/// that drives a chain (see [`crate::consumer::chain`]) can too.
pub async fn tallied<F: Future>(topic: Arc<TopicMetrics>, work: F) -> F::Output {
    TALLY.scope(RefCell::new(Tally::new(topic)), work).await
}

/// Adds the running task's tally (see [`tallied`]) to the shared series; nothing outside one.
pub fn flush_tally() {
    let _ = TALLY.try_with(|cell| {
        if let Ok(mut t) = cell.try_borrow_mut() {
            t.flush();
        }
    });
}

/// Counts into the running worker's tally when it is `topic`'s; `false` when there is none.
fn tally(topic: &Arc<TopicMetrics>, count: impl FnOnce(&mut Tally)) -> bool {
    TALLY
        .try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut t) if Arc::ptr_eq(&t.topic, topic) => {
                t.dirty = true;
                count(&mut t);
                true
            }
            _ => false,
        })
        .unwrap_or(false)
}

impl TopicMetrics {
    /// A message passed its contract (`evkit_valid_total`).
    pub(crate) fn count_valid(self: &Arc<Self>) {
        if !tally(self, |t| t.valid += 1) {
            self.valid.inc();
        }
    }

    /// A message broke its contract (`evkit_invalid_total`).
    pub(crate) fn count_invalid(self: &Arc<Self>) {
        if !tally(self, |t| t.invalid += 1) {
            self.invalid.inc();
        }
    }

    /// A handler attempt started (`evkit_dispatched_total`).
    pub(crate) fn count_dispatched(self: &Arc<Self>) {
        if !tally(self, |t| t.dispatched += 1) {
            self.dispatched.inc();
        }
    }

    /// A handler attempt ended with `outcome` (0 ack, 1 retry, 2 reject) after `elapsed`
    /// (`evkit_handled_total`, `evkit_handler_duration_seconds`).
    pub(crate) fn count_handled(self: &Arc<Self>, outcome: usize, elapsed: Duration) {
        let ns = duration_ns(elapsed);
        if !tally(self, |t| {
            t.handled[outcome] += 1;
            t.latency[bucket(ns)] += 1;
            t.latency_ns = t.latency_ns.saturating_add(ns);
        }) {
            self.handled[outcome].inc();
            self.latency.observe(elapsed);
        }
    }
}

struct Inner {
    registry: Registry,
    consumed: Family<Labels, Counter>,
    valid: Family<Labels, Counter>,
    invalid: Family<Labels, Counter>,
    dispatched: Family<Labels, Counter>,
    handled: Family<Labels, Counter>,
    retried: Family<Labels, Counter>,
    dead_lettered: Family<Labels, Counter>,
    dead_letter_errors: Family<Labels, Counter>,
    produced: Family<Labels, Counter>,
    produce_errors: Family<Labels, Counter>,
    committed: Family<Labels, Counter>,
    latency: Family<Labels, Latency>,
    lag: Family<Labels, Gauge>,
    topics: Mutex<HashMap<String, Arc<TopicMetrics>>>,
}

/// The metrics of one process. Cheap to clone; clones share the registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Handles to one topic's series, looked up once so the hot path does not hash label sets.
#[derive(Clone, Debug)]
pub struct TopicMetrics {
    /// `evkit_consumed_total`.
    pub consumed: Counter,
    /// `evkit_valid_total`.
    pub valid: Counter,
    /// `evkit_invalid_total`.
    pub invalid: Counter,
    /// `evkit_dispatched_total`.
    pub dispatched: Counter,
    /// `evkit_retried_total`.
    pub retried: Counter,
    /// `evkit_dead_letter_errors_total`.
    pub dead_letter_errors: Counter,
    /// `evkit_produced_total`.
    pub produced: Counter,
    /// `evkit_produce_errors_total`.
    pub produce_errors: Counter,
    /// `evkit_committed_total`.
    pub committed: Counter,
    /// `evkit_handler_duration_seconds`.
    pub latency: Latency,
    /// `evkit_handled_total{outcome="ack"}`, `retry`, `reject`.
    pub handled: [Counter; 3],
}

impl Metrics {
    /// A fresh registry with every evkit metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let mut counter = |name: &str, help: &str| {
            let f = Family::<Labels, Counter>::default();
            registry.register(name, help, f.clone());
            f
        };
        let consumed = counter("evkit_consumed", "Records read from Kafka");
        let valid = counter("evkit_valid", "Records that passed their contract");
        let invalid = counter("evkit_invalid", "Records that broke their contract");
        let dispatched = counter("evkit_dispatched", "Handler attempts started");
        let handled = counter("evkit_handled", "Handler attempts by outcome");
        let retried = counter(
            "evkit_retried",
            "Retries scheduled after a transient failure",
        );
        let dead_lettered = counter(
            "evkit_dead_lettered",
            "Messages written to the dead-letter topic",
        );
        let dead_letter_errors = counter(
            "evkit_dead_letter_errors",
            "Failed dead-letter publishes (retried; the source offset is not committed)",
        );
        let produced = counter("evkit_produced", "Messages delivered by the producer");
        let produce_errors = counter(
            "evkit_produce_errors",
            "Messages the producer refused or could not deliver",
        );
        let committed = counter("evkit_committed", "Offset commits sent");
        let latency = Family::<Labels, Latency>::default();
        registry.register_with_unit(
            "evkit_handler_duration",
            "Handler latency per attempt",
            prometheus_client::registry::Unit::Seconds,
            latency.clone(),
        );
        let lag = Family::<Labels, Gauge>::default();
        registry.register(
            "evkit_consumer_lag",
            "Messages behind the partition's high watermark",
            lag.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            consumed,
            valid,
            invalid,
            dispatched,
            handled,
            retried,
            dead_lettered,
            dead_letter_errors,
            produced,
            produce_errors,
            committed,
            latency,
            lag,
            topics: Mutex::new(HashMap::new()),
        }))
    }

    /// The series of one topic (created on first use); shared, so a per-message lookup costs one
    /// map probe and one reference count.
    pub fn topic(&self, topic: &str) -> Arc<TopicMetrics> {
        let mut topics = self.0.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = topics.get(topic) {
            return Arc::clone(t);
        }
        let l: Labels = vec![("topic", topic.to_owned())];
        let i = &self.0;
        let outcome = |o: &str| {
            i.handled.get_or_create_owned(&vec![
                ("topic", topic.to_owned()),
                ("outcome", o.to_owned()),
            ])
        };
        let t = Arc::new(TopicMetrics {
            consumed: i.consumed.get_or_create_owned(&l),
            valid: i.valid.get_or_create_owned(&l),
            invalid: i.invalid.get_or_create_owned(&l),
            dispatched: i.dispatched.get_or_create_owned(&l),
            retried: i.retried.get_or_create_owned(&l),
            dead_letter_errors: i.dead_letter_errors.get_or_create_owned(&l),
            produced: i.produced.get_or_create_owned(&l),
            produce_errors: i.produce_errors.get_or_create_owned(&l),
            committed: i.committed.get_or_create_owned(&l),
            latency: i.latency.get_or_create_owned(&l),
            handled: [outcome("ack"), outcome("retry"), outcome("reject")],
        });
        topics.insert(topic.to_owned(), Arc::clone(&t));
        t
    }

    /// Counts a dead-lettered message.
    pub fn dead_lettered(&self, topic: &str, reason: &str) {
        self.0
            .dead_lettered
            .get_or_create(&vec![
                ("topic", topic.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    /// Sets a partition's consumer lag.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.0
            .lag
            .get_or_create(&vec![
                ("topic", topic.to_owned()),
                ("partition", partition.to_string()),
            ])
            .set(lag);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }

    /// Serves `GET /metrics` (Prometheus text) and `GET /healthz` on `addr` until the returned
    /// server is dropped. Port 0 picks a free port: see [`MetricsServer::addr`].
    #[cfg(feature = "metrics-server")]
    pub async fn serve(&self, addr: SocketAddr) -> Result<MetricsServer, Error> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Io {
                context: format!("metrics endpoint cannot listen on {addr}"),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Io {
            context: "metrics endpoint address".to_owned(),
            source,
        })?;
        let metrics = self.clone();
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let metrics = metrics.clone();
                    async move {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            metrics.encode(),
                        )
                    }
                }),
            )
            .route("/healthz", axum::routing::get(|| async { "ok\n" }));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "metrics endpoint stopped");
            }
        });
        Ok(MetricsServer { addr, task })
    }
}

/// A running `/metrics` endpoint; dropping it stops the server.
#[cfg(feature = "metrics-server")]
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

#[cfg(feature = "metrics-server")]
impl MetricsServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[cfg(feature = "metrics-server")]
impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::time::Duration;

    use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
    use prometheus_client::registry::Registry;

    use super::{BUCKETS, Latency, Metrics, bucket, flush_tally, tallied};

    fn text(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    #[test]
    fn buckets_are_le_bounds_that_double_from_100_microseconds() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(100_000), 0, "a bound belongs to its own bucket (le)");
        assert_eq!(bucket(100_001), 1);
        assert_eq!(bucket(200_000), 1);
        assert_eq!(bucket(200_001), 2);
        assert_eq!(bucket(100_000 << 19), BUCKETS - 1);
        assert_eq!(bucket((100_000 << 19) + 1), BUCKETS, "+Inf");
        assert_eq!(bucket(u64::MAX), BUCKETS);
    }

    /// prometheus-client's own histogram, with the buckets evkit used before, is the oracle:
    /// the same observations give the same exposition, line for line.
    #[test]
    fn the_exposition_matches_prometheus_clients_histogram() {
        let (mut ours, mut theirs) = (Registry::default(), Registry::default());
        let latency = Latency::default();
        let oracle = Histogram::new(exponential_buckets(0.000_1, 2.0, 20));
        ours.register("d", "h", latency.clone());
        theirs.register("d", "h", oracle.clone());
        // Exact bounds, one past them, zero, and past the last bound; in whole microseconds
        // so that both sums are exact in f64.
        let mut micros = vec![0_u64, 1, 99, 100, 101, 200, 201, 52_428_800, 52_428_801];
        micros.extend((0..300).map(|i| (i * 7_919) % 2_000_000));
        for us in micros {
            latency.observe(Duration::from_micros(us));
            #[allow(clippy::cast_precision_loss)]
            oracle.observe(us as f64 / 1e6);
        }
        let (ours, theirs) = (text(&ours), text(&theirs));
        let lines = |t: &str| {
            t.lines()
                .filter(|l| !l.starts_with("d_sum"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(lines(&ours), lines(&theirs), "{ours}\n{theirs}");
        let sum = |t: &str| -> f64 {
            let line = t.lines().find(|l| l.starts_with("d_sum")).unwrap();
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!((sum(&ours) - sum(&theirs)).abs() < 1e-9, "{ours}\n{theirs}");
        assert_eq!(latency.count(), 309);
    }

    #[tokio::test]
    async fn a_workers_counts_wait_in_its_tally_until_flushed_or_dropped() {
        let metrics = Metrics::new();
        let topic = metrics.topic("t");
        let other = metrics.topic("u");
        let count = |name: &str| {
            let text = metrics.encode();
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        };
        tallied(std::sync::Arc::clone(&topic), async {
            topic.count_valid();
            topic.count_dispatched();
            topic.count_handled(0, Duration::from_micros(150));
            // Another topic's counts are not this worker's: they go straight to the series.
            other.count_invalid();
            assert_eq!(count(r#"evkit_valid_total{topic="t"}"#), 0);
            assert_eq!(count(r#"evkit_invalid_total{topic="u"}"#), 1);
            flush_tally();
            assert_eq!(count(r#"evkit_valid_total{topic="t"}"#), 1);
            assert_eq!(count(r#"evkit_dispatched_total{topic="t"}"#), 1);
            assert_eq!(count(r#"evkit_handled_total{topic="t",outcome="ack"}"#), 1);
            assert_eq!(
                count(r#"evkit_handler_duration_seconds_bucket{le="0.0002",topic="t"}"#),
                1
            );
            topic.count_handled(2, Duration::from_secs(60));
            topic.count_invalid();
        })
        .await;
        // The worker ended: what it had not flushed is added.
        assert_eq!(count(r#"evkit_invalid_total{topic="t"}"#), 1);
        assert_eq!(
            count(r#"evkit_handled_total{topic="t",outcome="reject"}"#),
            1
        );
        assert_eq!(
            count(r#"evkit_handler_duration_seconds_bucket{le="+Inf",topic="t"}"#),
            2
        );
        assert_eq!(
            count(r#"evkit_handler_duration_seconds_count{topic="t"}"#),
            2
        );
        // Outside a worker, counts go straight to the series.
        topic.count_valid();
        assert_eq!(count(r#"evkit_valid_total{topic="t"}"#), 2);
    }
}
