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

use std::collections::HashMap;
#[cfg(feature = "metrics-server")]
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[cfg(feature = "metrics-server")]
use crate::Error;

type Labels = Vec<(&'static str, String)>;

fn histogram() -> Histogram {
    // 100 µs .. ~52 s
    Histogram::new(exponential_buckets(0.000_1, 2.0, 20))
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
    latency: Family<Labels, Histogram, fn() -> Histogram>,
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
    pub latency: Histogram,
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
        let latency: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(histogram);
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
