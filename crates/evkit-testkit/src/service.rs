//! Verifying a service's **real code** against the catalog, from its own `cargo test`.
//!
//! [`verify_consumer`] takes the [`Routes`] the service builds for production (its real
//! handlers, with whatever store or client the test gives them), runs them as a consumer-group
//! member on a real broker, and feeds them every producer example the contracts list for the
//! topic, `valid` generated valid messages and `invalid` generated invalid ones. It passes when:
//! - every valid message ends in `Ack` (not `Retry` until the dead-letter topic, not a panic, a
//!   timeout or a `decode` dead letter);
//! - every invalid message is dead-lettered with reason `validation` and never reaches the
//!   handler;
//! - nothing is lost, and offsets are committed to the end of every partition.
//!
//! A failing generated message is shrunk: the service's handler runs in-process on smaller and
//! smaller messages from the same generator until no smaller one fails, and the report shows
//! that minimal message with the outcome, the handler's error or panic text, and the seed.
//!
//! ```no_run
//! # async fn doc(routes: evkit::Routes) -> Result<(), evkit_testkit::Error> {
//! use evkit_testkit::{Broker, service::{ConsumerCheck, verify_consumer}};
//!
//! let broker = Broker::start().await?;
//! let report = verify_consumer(&broker, routes, "platform.evkit.todo-created", &ConsumerCheck::default()).await?;
//! assert!(report.passed(), "{report}");
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use evkit::{Config, Consumer, Envelope, Handler, Incoming, Metrics, Middleware, Outcome, Routes};
use evkit_schema::Topic;
use futures::FutureExt as _;
use proptest::strategy::{Strategy, ValueTree};

use crate::clients::{consumer, producer, receive, subscribe};
use crate::contracts::Contracts;
use crate::messages::{Generated, invalid_message, valid_message};
use crate::verify::{case_of, header, publish, seeded_runner};
use crate::{Broker, Error};

/// What to feed the service.
#[derive(Debug, Clone)]
pub struct ConsumerCheck {
    /// Generated valid messages.
    pub valid: usize,
    /// Generated invalid messages (each breaks one named rule).
    pub invalid: usize,
    /// Seed of the generators: the same seed gives the same messages.
    pub seed: u64,
    /// How long the service may take to handle or dead-letter everything.
    pub timeout: Duration,
    /// Producer examples (`contracts/`), when given.
    pub contracts: Option<Contracts>,
    /// How many shrinking steps a failing message gets (0: no shrinking).
    pub shrink_steps: usize,
}

impl Default for ConsumerCheck {
    fn default() -> Self {
        ConsumerCheck {
            valid: 256,
            invalid: 32,
            seed: 0,
            timeout: Duration::from_secs(120),
            contracts: None,
            shrink_steps: 256,
        }
    }
}

/// One message fed to the service and what became of it.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// What it was (`example "…" of todo-api`, `generated valid #3`, `generated invalid #2
    /// (maxLength@/title)`).
    pub name: String,
    /// Whether the contract accepts it.
    pub valid: bool,
    /// What the service's handler returned on each attempt (`ack`, `retry: …`, `reject: …`,
    /// `panic: …`), in order; empty when the handler never saw it.
    pub attempts: Vec<String>,
    /// The dead-letter reason, when it was dead-lettered.
    pub dead_lettered: Option<String>,
    /// Why this is a failure; `None` when it passed.
    pub failure: Option<String>,
}

/// What [`verify_consumer`] found.
#[derive(Debug, Clone)]
pub struct ConsumerReport {
    /// The catalog topic.
    pub topic: String,
    /// The seed, to replay.
    pub seed: u64,
    /// Every message, in the order sent.
    pub verdicts: Vec<Verdict>,
    /// Partitions whose committed offset fell short of their end: `(partition, committed,
    /// end)`.
    pub uncommitted: Vec<(i32, i64, i64)>,
    /// The smallest generated message that still fails, with its outcome, when one failed.
    pub minimal: Option<(Generated, String)>,
}

impl ConsumerReport {
    /// Every message passed and every offset was committed.
    pub fn passed(&self) -> bool {
        self.uncommitted.is_empty() && self.verdicts.iter().all(|v| v.failure.is_none())
    }

    /// The failing verdicts.
    pub fn failures(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| v.failure.is_some())
    }

    /// The report as `JUnit` XML (one test case per message, one for the commits).
    pub fn junit(&self) -> String {
        let mut report = quick_junit::Report::new("evkit service verification");
        let mut suite = quick_junit::TestSuite::new(format!("consumer / {}", self.topic));
        let case = |name: &str, failure: Option<&String>| {
            crate::verify::junit_case(name, &self.topic, failure.map(String::as_str))
        };
        for v in &self.verdicts {
            suite.add_test_case(case(&v.name, v.failure.as_ref()));
        }
        let commits = (!self.uncommitted.is_empty()).then(|| format!("{:?}", self.uncommitted));
        suite.add_test_case(case("offsets committed to the end", commits.as_ref()));
        report.add_test_suite(suite);
        crate::verify::junit_text(&report)
    }
}

impl std::fmt::Display for ConsumerReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failed = self.failures().count();
        writeln!(
            f,
            "{} consumer of {}: {} of {} messages passed (seed {})",
            if self.passed() { "ok  " } else { "FAIL" },
            self.topic,
            self.verdicts.len() - failed,
            self.verdicts.len(),
            self.seed
        )?;
        for v in self.failures() {
            writeln!(
                f,
                "       {}: {}",
                v.name,
                v.failure.as_deref().unwrap_or_default()
            )?;
        }
        for (p, committed, end) in &self.uncommitted {
            writeln!(
                f,
                "       partition {p}: committed {committed}, but the partition ends at {end}"
            )?;
        }
        if let Some((m, outcome)) = &self.minimal {
            writeln!(f, "       minimal failing message (shrunk): {m:?}")?;
            writeln!(f, "         outcome: {outcome}")?;
            writeln!(
                f,
                "         replay: ConsumerCheck {{ seed: {}, .. }}",
                self.seed
            )?;
        }
        Ok(())
    }
}

/// What the observer saw per case.
type Seen = Arc<Mutex<BTreeMap<usize, Vec<String>>>>;

/// A layer that records each outcome of the handler it wraps, per case, and passes it on
/// unchanged (a panic is recorded, then resumed).
struct Observe(Seen);

struct Observed {
    inner: Arc<dyn Handler>,
    seen: Seen,
}

impl Middleware for Observe {
    fn wrap(&self, inner: Arc<dyn Handler>) -> Arc<dyn Handler> {
        Arc::new(Observed {
            inner,
            seen: Arc::clone(&self.0),
        })
    }
}

#[async_trait::async_trait]
impl Handler for Observed {
    async fn handle(&self, msg: Incoming) -> Outcome {
        let case = case_of(&msg.envelope().headers);
        let result = AssertUnwindSafe(self.inner.handle(msg))
            .catch_unwind()
            .await;
        let label = match &result {
            Ok(o) => describe(o),
            Err(p) => format!("panic: {}", panic_text(p.as_ref())),
        };
        if let Some(case) = case {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(case)
                .or_default()
                .push(label);
        }
        match result {
            Ok(o) => o,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Ack => "ack".to_owned(),
        Outcome::Retry(f) => format!("retry: {f}"),
        Outcome::Reject(f) => format!("reject: {f}"),
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_owned())
}

/// A planned message; generated valid ones keep their value tree for shrinking.
struct Planned {
    name: String,
    message: Generated,
    valid: bool,
    tree: Option<Box<dyn ValueTree<Value = Generated>>>,
}

fn plan(topic: &Topic, check: &ConsumerCheck) -> Result<Vec<Planned>, Error> {
    let mut out = Vec::new();
    if let Some(contracts) = &check.contracts {
        for (service, produced) in contracts.producers(topic.name()) {
            for ex in &produced.examples {
                out.push(Planned {
                    name: format!("example \"{}\" of {}", ex.name, service.service),
                    message: ex.message(topic),
                    valid: true,
                    tree: None,
                });
            }
        }
    }
    let mut runner = seeded_runner(check.seed);
    let gave_up = |e: String| Error::Generator {
        at: topic.name().to_owned(),
        reason: format!("generation gave up: {e}"),
    };
    let valid = valid_message(topic)?;
    for i in 0..check.valid {
        let tree = valid
            .new_tree(&mut runner)
            .map_err(|e| gave_up(e.to_string()))?;
        out.push(Planned {
            name: format!("generated valid #{i}"),
            message: tree.current(),
            valid: true,
            tree: Some(tree),
        });
    }
    if check.invalid > 0 {
        let invalid = invalid_message(topic)?;
        for i in 0..check.invalid {
            let m = invalid
                .new_tree(&mut runner)
                .map_err(|e| gave_up(e.to_string()))?
                .current();
            let rule = m
                .broken
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            out.push(Planned {
                name: format!("generated invalid #{i} ({rule})"),
                message: m,
                valid: false,
                tree: None,
            });
        }
    }
    Ok(out)
}

/// Runs the service's real `routes` for catalog topic `topic` as a consumer-group member on
/// `broker` and feeds it what [`ConsumerCheck`] says (see the module documentation).
///
/// The routes' catalog names the topic; the run uses a fresh broker topic and dead-letter topic
/// mapped onto it, so runs never collide. Side effects of the real code (databases, HTTP) stay
/// the test's business.
// One pass: plan, publish, run, watch the dead-letter topic, judge, shrink; the steps share
// too much state to split usefully.
#[allow(clippy::too_many_lines)]
pub async fn verify_consumer(
    broker: &Broker,
    routes: Routes,
    topic: &str,
    check: &ConsumerCheck,
) -> Result<ConsumerReport, Error> {
    let catalog = Arc::clone(routes.catalog());
    let t = catalog.topic(topic)?.clone();
    let mut planned = plan(&t, check)?;
    let actual = broker.unique_topic("verify-service");
    let partitions = i32::try_from(t.spec.partitions.max(1)).unwrap_or(1);
    broker.create_topic(&actual, partitions).await?;
    let dlq = format!("{actual}.dlq");
    broker.create_topic(&dlq, 1).await?;

    // Publish everything first; remember where each partition ends.
    let p = producer(broker)?;
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for (i, m) in planned.iter().enumerate() {
        let (partition, offset) = publish(&p, &actual, i, &m.message).await?;
        let end = ends.entry(partition).or_insert(0);
        *end = (*end).max(offset + 1);
    }

    let mut config = Config {
        bootstrap_servers: broker.bootstrap_servers().to_owned(),
        group_id: broker.unique_group(),
        client_id: "evkit-verify-service".to_owned(),
        ..Config::default()
    };
    config.consumer.commit_interval_ms = 100;
    config.consumer.retry.max_retries = 2;
    config.consumer.retry.min_delay_ms = 5;
    config.consumer.retry.max_delay_ms = 20;
    config.consumer.handler_timeout_ms = 10_000;
    config.topics.insert(t.name().to_owned(), actual.clone());
    config
        .topics
        .insert(t.spec.dead_letter_topic(), dlq.clone());
    let seen: Seen = Arc::default();
    let observed = routes.clone().layer(&Observe(Arc::clone(&seen)));
    let service = Consumer::new(&config, observed, Metrics::new())?;
    let stop = service.shutdown_token();
    let running = tokio::spawn(service.run(std::future::pending()));

    let reader = consumer(broker, &broker.unique_group())?;
    subscribe(&reader, &[dlq.as_str()])?;
    let mut dead: BTreeMap<usize, String> = BTreeMap::new();
    let deadline = Instant::now() + check.timeout;
    let total = planned.len();
    loop {
        let settled = {
            let seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
            planned
                .iter()
                .enumerate()
                .filter(|(i, m)| {
                    dead.contains_key(i)
                        || (m.valid
                            && seen
                                .get(i)
                                .and_then(|a| a.last())
                                .is_some_and(|l| l == "ack"))
                })
                .count()
        };
        if settled >= total || Instant::now() >= deadline {
            break;
        }
        for r in receive(&reader, total, Duration::from_millis(100)).await {
            if let Some(case) = case_of(&r.headers) {
                dead.insert(case, header(&r.headers, evkit::dead_letter::REASON));
            }
        }
    }
    // Let the last commits land before stopping.
    let wait_commits = Instant::now() + Duration::from_millis(500);
    while Instant::now() < wait_commits {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let summary = running.await.map_err(|e| Error::Stalled {
        what: format!("the service's consumer task failed: {e}"),
    })??;

    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
    let mut verdicts = Vec::with_capacity(total);
    for (i, m) in planned.iter().enumerate() {
        let attempts = seen.get(&i).cloned().unwrap_or_default();
        let dead_lettered = dead.get(&i).cloned();
        let failure = judge(m.valid, &attempts, dead_lettered.as_deref(), check.timeout);
        verdicts.push(Verdict {
            name: m.name.clone(),
            valid: m.valid,
            attempts,
            dead_lettered,
            failure,
        });
    }
    let uncommitted = ends
        .iter()
        .filter_map(|(p, end)| {
            let committed = summary
                .committed
                .get(&(actual.clone(), *p))
                .copied()
                .unwrap_or(0);
            (committed < *end).then_some((*p, committed, *end))
        })
        .collect();
    let first_failing = verdicts
        .iter()
        .position(|v| v.valid && v.failure.is_some())
        .filter(|i| planned[*i].tree.is_some());
    let minimal = match first_failing {
        Some(i) if check.shrink_steps > 0 => {
            let tree = planned[i].tree.take();
            match (tree, routes.handler(t.name())) {
                (Some(tree), Some(handler)) => {
                    Some(shrink(tree, &handler, &t, check.shrink_steps).await)
                }
                _ => None,
            }
        }
        _ => None,
    };
    Ok(ConsumerReport {
        topic: t.name().to_owned(),
        seed: check.seed,
        verdicts,
        uncommitted,
        minimal,
    })
}

/// Why a message's fate is a failure, or `None`.
fn judge(
    valid: bool,
    attempts: &[String],
    dead: Option<&str>,
    timeout: Duration,
) -> Option<String> {
    let last = attempts.last().map(String::as_str);
    match (valid, last, dead) {
        (true, Some("ack"), None) | (false, None, Some("validation")) => None,
        (true, _, Some(reason)) => Some(format!(
            "valid, but dead-lettered with reason `{reason}` after {} attempt(s){}",
            attempts.len(),
            last.map(|l| format!(": {l}")).unwrap_or_default()
        )),
        (true, Some(l), None) => Some(format!("valid, but its last outcome was {l}")),
        (true, None, None) => Some(format!(
            "lost: neither handled nor dead-lettered within {timeout:?}"
        )),
        (false, Some(_), _) => Some(format!(
            "invalid, but it reached the handler ({})",
            attempts.join(", ")
        )),
        (false, None, Some(reason)) => Some(format!(
            "invalid, dead-lettered with reason `{reason}`, not `validation`"
        )),
        (false, None, None) => Some(format!(
            "lost: an invalid message was not dead-lettered within {timeout:?}"
        )),
    }
}

/// The outcome of the service's handler on `m`, in-process (validated as the consumer would):
/// `None` for `Ack`.
async fn outcome_of(handler: &Arc<dyn Handler>, topic: &Topic, m: &Generated) -> Option<String> {
    let incoming = match incoming(topic, m) {
        Ok(i) => i,
        Err(e) => return Some(format!("no longer valid: {e}")),
    };
    match AssertUnwindSafe(handler.handle(incoming))
        .catch_unwind()
        .await
    {
        Ok(Outcome::Ack) => None,
        Ok(o) => Some(describe(&o)),
        Err(p) => Some(format!("panic: {}", panic_text(p.as_ref()))),
    }
}

/// Shrinks a failing generated message: simpler and simpler values from the same tree while
/// the handler still fails on them (proptest's simplify/complicate walk).
async fn shrink(
    mut tree: Box<dyn ValueTree<Value = Generated>>,
    handler: &Arc<dyn Handler>,
    topic: &Topic,
    steps: usize,
) -> (Generated, String) {
    let mut best = tree.current();
    let mut why = outcome_of(handler, topic, &best).await.unwrap_or_else(|| {
        "ack in-process (the failure needs the broker's retries or timing)".to_owned()
    });
    let mut failing = true;
    for _ in 0..steps {
        let moved = if failing {
            tree.simplify()
        } else {
            tree.complicate()
        };
        if !moved {
            break;
        }
        let candidate = tree.current();
        match outcome_of(handler, topic, &candidate).await {
            Some(w) if !w.starts_with("no longer valid") => {
                best = candidate;
                why = w;
                failing = true;
            }
            _ => failing = false,
        }
    }
    (best, why)
}

/// What [`verify_producer`] checks against.
#[derive(Debug, Clone)]
pub struct ProducerCheck {
    /// Every other service's `relies_on` fields for the topic (`contracts/`), when given.
    pub contracts: Option<Contracts>,
    /// How long to wait for the produced messages after the producing code returned.
    pub timeout: Duration,
    /// At least this many messages must have been produced.
    pub at_least: usize,
}

impl Default for ProducerCheck {
    fn default() -> Self {
        ProducerCheck {
            contracts: None,
            timeout: Duration::from_secs(30),
            at_least: 1,
        }
    }
}

/// One produced message and what is wrong with it.
#[derive(Debug, Clone)]
pub struct Produced {
    /// Partition and offset on the test topic.
    pub at: (i32, i64),
    /// The message as read back.
    pub message: Generated,
    /// Every problem: contract violations (`payload /id: … [type]`) and fields a consumer
    /// relies on that are missing (`todo-search relies on /title`).
    pub problems: Vec<String>,
}

/// What [`verify_producer`] found.
#[derive(Debug, Clone)]
pub struct ProducerReport {
    /// The catalog topic.
    pub topic: String,
    /// Every message read back, in order.
    pub produced: Vec<Produced>,
    /// The producing code's own error, when it returned one.
    pub error: Option<String>,
    /// The minimum asked for ([`ProducerCheck::at_least`]).
    pub at_least: usize,
}

impl ProducerReport {
    /// The code produced enough messages, returned no error, and every message passed.
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self.produced.len() >= self.at_least
            && self.produced.iter().all(|p| p.problems.is_empty())
    }
}

impl std::fmt::Display for ProducerReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bad = self
            .produced
            .iter()
            .filter(|p| !p.problems.is_empty())
            .count();
        writeln!(
            f,
            "{} producer of {}: {} of {} messages passed",
            if self.passed() { "ok  " } else { "FAIL" },
            self.topic,
            self.produced.len() - bad,
            self.produced.len()
        )?;
        if let Some(e) = &self.error {
            writeln!(f, "       the producing code failed: {e}")?;
        }
        if self.produced.len() < self.at_least {
            writeln!(
                f,
                "       only {} message(s) produced, at least {} expected",
                self.produced.len(),
                self.at_least
            )?;
        }
        for p in self.produced.iter().filter(|p| !p.problems.is_empty()) {
            writeln!(
                f,
                "       message at partition {} offset {}: {:?}",
                p.at.0, p.at.1, p.message
            )?;
            for problem in &p.problems {
                writeln!(f, "         {problem}")?;
            }
        }
        Ok(())
    }
}

/// Runs a service's real producing code and checks what it sent.
///
/// `produce` gets a [`Config`] whose bootstrap servers are `broker`'s and whose topic map sends
/// catalog topic `topic` to a fresh broker topic; it runs the service's own code with it (a
/// `Producer::new(&config, …)`, a relay, a handler that announces). Every message read back
/// from that topic is checked against the topic's contract (key policy, headers, envelope,
/// payload) and against every consuming service's `relies_on` fields in the contracts.
pub async fn verify_producer<F, Fut>(
    broker: &Broker,
    catalog: &Arc<evkit_schema::Catalog>,
    topic: &str,
    check: &ProducerCheck,
    produce: F,
) -> Result<ProducerReport, Error>
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let t = catalog.topic(topic)?.clone();
    let actual = broker.unique_topic("verify-producer");
    let partitions = i32::try_from(t.spec.partitions.max(1)).unwrap_or(1);
    broker.create_topic(&actual, partitions).await?;
    let mut config = Config {
        bootstrap_servers: broker.bootstrap_servers().to_owned(),
        client_id: "evkit-verify-producer".to_owned(),
        ..Config::default()
    };
    config.topics.insert(t.name().to_owned(), actual.clone());
    let error = produce(config).await.err();

    let reader = consumer(broker, &broker.unique_group())?;
    subscribe(&reader, &[actual.as_str()])?;
    let mut records = Vec::new();
    let deadline = Instant::now() + check.timeout;
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        let got = receive(&reader, 1_000, Duration::from_millis(200)).await;
        if got.is_empty() {
            // Done once nothing more arrives for a second (after the minimum arrived).
            if records.len() >= check.at_least && quiet_since.elapsed() > Duration::from_secs(1) {
                break;
            }
        } else {
            quiet_since = Instant::now();
            records.extend(got);
        }
    }
    let consumers: Vec<(String, crate::contracts::Consumed)> = check
        .contracts
        .iter()
        .flat_map(|c| {
            c.consumers(t.name())
                .map(|(s, consumed)| (s.service.clone(), consumed.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let produced = records
        .into_iter()
        .map(|r| {
            let message = Generated {
                key: r.key.clone(),
                headers: r
                    .headers
                    .iter()
                    .map(|(n, v)| (n.clone(), v.clone().unwrap_or_default()))
                    .collect(),
                payload: r.payload.clone().unwrap_or_default(),
                broken: None,
            };
            let mut problems = Vec::new();
            match t.contract().check(&message.message()) {
                Ok(checked) => {
                    for (service, consumed) in &consumers {
                        for field in crate::verify::missing_fields(consumed, Some(&checked.payload))
                        {
                            problems.push(format!("{service} relies on {field}, which is missing"));
                        }
                    }
                }
                Err(e) => {
                    problems.extend(e.violations().iter().map(ToString::to_string));
                }
            }
            Produced {
                at: (r.partition, r.offset),
                message,
                problems,
            }
        })
        .collect();
    Ok(ProducerReport {
        topic: t.name().to_owned(),
        produced,
        error,
        at_least: check.at_least,
    })
}

/// The message as the consumer would hand it to a handler: checked by the topic's contract
/// (`Err` with the violations when it fails), validated, on partition 0 offset 0.
pub fn incoming(topic: &Topic, m: &Generated) -> Result<Incoming, String> {
    let checked = topic
        .contract()
        .check(&m.message())
        .map_err(|e| e.to_string())?;
    let envelope = Envelope {
        topic: topic.name().to_owned(),
        partition: 0,
        offset: 0,
        key: m.key.clone(),
        headers: m
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), Some(v.clone())))
            .collect(),
        payload: Some(m.payload.clone()),
        timestamp_ms: None,
    };
    Ok(Incoming::new(topic.name(), envelope).validated(checked))
}
