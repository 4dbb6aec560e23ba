//! Contract verification through a real broker.
//!
//! For every catalog topic a contract mentions: the producers' examples, `valid` generated valid
//! messages and `invalid` generated invalid ones are published to a fresh topic; then each
//! consuming service's contract runs as an evkit consumer (its own group and dead-letter topic)
//! whose handler checks the fields the service relies on. A case passes when an example or a
//! valid message reaches the handler with every relied-on field, and when an invalid message
//! lands on the dead-letter topic with reason `validation` instead.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use evkit::{Config, Consumer, Incoming, Metrics, Outcome, Router, handler_fn};
use evkit_schema::{Catalog, Topic};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;

use crate::Broker;
use crate::Error;
use crate::clients::{consumer, producer, receive, send, subscribe};
use crate::contracts::{Consumed, Contracts};
use crate::messages::{Generated, invalid_message, valid_message};

/// The header that carries a case's number through the broker (and onto the dead-letter topic).
pub const CASE_HEADER: &str = "evkit-verify-case";

/// How much to generate.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Generated valid messages per topic.
    pub valid: usize,
    /// Generated invalid messages per topic.
    pub invalid: usize,
    /// Seed of the generators.
    pub seed: u64,
    /// How long a consumer may take to handle or dead-letter everything.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            valid: 20,
            invalid: 10,
            seed: 0,
            timeout: Duration::from_secs(60),
        }
    }
}

/// One checked expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The service whose contract is checked.
    pub service: String,
    /// The topic.
    pub topic: String,
    /// What was checked (`example "…" of todo-api`, `generated valid #3`, `breaks: …`).
    pub name: String,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
}

/// Every case, in order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The cases.
    pub cases: Vec<Case>,
}

impl Report {
    /// No case failed.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.failure.is_none())
    }

    /// `(passed, failed)`.
    pub fn counts(&self) -> (usize, usize) {
        let failed = self.cases.iter().filter(|c| c.failure.is_some()).count();
        (self.cases.len() - failed, failed)
    }

    /// Cases grouped by `(service, topic)`.
    pub fn groups(&self) -> BTreeMap<(String, String), Vec<&Case>> {
        let mut g: BTreeMap<(String, String), Vec<&Case>> = BTreeMap::new();
        for c in &self.cases {
            g.entry((c.service.clone(), c.topic.clone()))
                .or_default()
                .push(c);
        }
        g
    }

    /// The report as `JUnit` XML: one test suite per service and topic.
    pub fn junit(&self) -> String {
        let mut report = quick_junit::Report::new("evkit verify");
        for ((service, topic), cases) in self.groups() {
            let mut suite = quick_junit::TestSuite::new(format!("{service} / {topic}"));
            for c in cases {
                suite.add_test_case(junit_case(
                    &c.name,
                    &format!("{service}.{topic}"),
                    c.failure.as_deref(),
                ));
            }
            report.add_test_suite(suite);
        }
        junit_text(&report)
    }
}

/// A `JUnit` report as XML (a comment saying why, when it cannot be written).
pub(crate) fn junit_text(report: &quick_junit::Report) -> String {
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- junit serialization failed: {e} -->"))
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for ((service, topic), cases) in self.groups() {
            let failed: Vec<&&Case> = cases.iter().filter(|c| c.failure.is_some()).collect();
            let mark = if failed.is_empty() { "ok  " } else { "FAIL" };
            writeln!(
                f,
                "{mark} {service} / {topic}: {} of {} passed",
                cases.len() - failed.len(),
                cases.len()
            )?;
            for c in failed {
                writeln!(
                    f,
                    "       {}: {}",
                    c.name,
                    c.failure.as_deref().unwrap_or_default()
                )?;
            }
        }
        let (ok, failed) = self.counts();
        write!(f, "{ok} passed, {failed} failed")
    }
}

/// One `JUnit` test case: passed, or failed with `failure` as its message.
pub(crate) fn junit_case(name: &str, class: &str, failure: Option<&str>) -> quick_junit::TestCase {
    let status = match failure {
        None => quick_junit::TestCaseStatus::success(),
        Some(why) => {
            let mut s =
                quick_junit::TestCaseStatus::non_success(quick_junit::NonSuccessKind::Failure);
            s.set_message(why.to_owned());
            s
        }
    };
    let mut tc = quick_junit::TestCase::new(name.to_owned(), status);
    tc.set_classname(class.to_owned());
    tc
}

/// A message to publish, what it is, and what a consumer must do with it.
struct Planned {
    name: String,
    message: Generated,
    valid: bool,
}

/// One value of `s`, or why generation gave up.
pub(crate) fn draw<T: std::fmt::Debug>(
    s: &proptest::strategy::BoxedStrategy<T>,
    r: &mut TestRunner,
) -> Result<T, Error> {
    s.new_tree(r)
        .map(|t| t.current())
        .map_err(|e| Error::Unsupported {
            keyword: format!("generation gave up: {e}"),
            at: "/".to_owned(),
        })
}

/// A test runner whose generators are fixed by `seed` (the same seed gives the same messages).
pub(crate) fn seeded_runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        RunnerConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

fn plan(
    topic: &Topic,
    contracts: &Contracts,
    opts: &Options,
    r: &mut TestRunner,
) -> Result<Vec<Planned>, Error> {
    let mut out = Vec::new();
    for (service, produced) in contracts.producers(topic.name()) {
        for ex in &produced.examples {
            out.push(Planned {
                name: format!("example \"{}\" of {}", ex.name, service.service),
                message: ex.message(topic),
                valid: true,
            });
        }
    }
    let valid = valid_message(topic)?;
    for i in 0..opts.valid {
        out.push(Planned {
            name: format!("generated valid #{i}"),
            message: draw(&valid, r)?,
            valid: true,
        });
    }
    if opts.invalid > 0 {
        let invalid = invalid_message(topic)?;
        for i in 0..opts.invalid {
            let m = draw(&invalid, r)?;
            let rule = m
                .broken
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            out.push(Planned {
                name: format!("generated invalid #{i} ({rule})"),
                message: m,
                valid: false,
            });
        }
    }
    Ok(out)
}

/// The relied-on fields `event` lacks (for CloudEvents topics the event is the `data`).
pub(crate) fn missing_fields(consumed: &Consumed, event: Option<&Value>) -> Vec<String> {
    consumed
        .relies_on
        .iter()
        .filter(|p| !has_field(event, p))
        .cloned()
        .collect()
}

/// `true` when the pointer resolves; `*` matches every element of an array (all must have it;
/// an empty array has nothing to lack).
fn has_field(v: Option<&Value>, pointer: &str) -> bool {
    fn walk(v: &Value, tokens: &[&str]) -> bool {
        let Some((first, rest)) = tokens.split_first() else {
            return true;
        };
        if *first == "*" {
            return v
                .as_array()
                .is_some_and(|a| a.iter().all(|x| walk(x, rest)));
        }
        let token = evkit_schema::pointer::unescape(first);
        match v {
            Value::Object(m) => m.get(token.as_ref()).is_some_and(|x| walk(x, rest)),
            Value::Array(a) => token
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i))
                .is_some_and(|x| walk(x, rest)),
            _ => false,
        }
    }
    let tokens: Vec<&str> = pointer.split('/').skip(1).collect();
    v.is_some_and(|v| walk(v, &tokens))
}

/// Sends a message to the broker topic `actual`, tagged with its case number.
pub async fn publish(
    p: &rdkafka::producer::FutureProducer,
    actual: &str,
    case: usize,
    m: &Generated,
) -> Result<(i32, i64), Error> {
    let case = case.to_string();
    let mut headers: Vec<(&str, &[u8])> = m
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    headers.push((CASE_HEADER, case.as_bytes()));
    send(p, actual, m.key.as_deref(), &headers, &m.payload).await
}

/// Verifies every contract of `contracts` on `broker`.
pub async fn verify(
    broker: &Broker,
    catalog: &Arc<Catalog>,
    contracts: &Contracts,
    opts: &Options,
) -> Result<Report, Error> {
    let mut runner = seeded_runner(opts.seed);
    let mut report = Report::default();
    let p = producer(broker)?;
    for name in contracts.topics() {
        let topic = catalog.topic(&name)?;
        // Producer verification: what each producing service sends passes the topic's contract.
        for (service, produced) in contracts.producers(&name) {
            for ex in &produced.examples {
                report.cases.push(Case {
                    service: service.service.clone(),
                    topic: name.clone(),
                    name: format!("produces example \"{}\"", ex.name),
                    failure: topic
                        .contract()
                        .check(&ex.message(topic).message())
                        .err()
                        .map(|e| e.to_string()),
                });
            }
        }
        let consumers: Vec<_> = contracts.consumers(&name).collect();
        if consumers.is_empty() {
            continue;
        }
        // Consumer verification: publish once; every consuming service reads the same records.
        let planned = plan(topic, contracts, opts, &mut runner)?;
        let actual = broker.unique_topic("verify");
        let partitions = i32::try_from(topic.spec.partitions.max(1)).unwrap_or(1);
        broker.create_topic(&actual, partitions).await?;
        for (i, pl) in planned.iter().enumerate() {
            publish(&p, &actual, i, &pl.message).await?;
        }
        for (service, consumed) in consumers {
            let outcome: Outcomes = observe(
                broker,
                catalog,
                topic,
                consumed,
                &actual,
                planned.len(),
                opts.timeout,
            )
            .await?
            .into();
            for (i, pl) in planned.iter().enumerate() {
                report.cases.push(Case {
                    service: service.service.clone(),
                    topic: name.clone(),
                    name: format!("consumes {}", pl.name),
                    failure: judge(
                        pl.valid,
                        outcome.handled.get(&i),
                        outcome.dead.get(&i),
                        opts.timeout,
                    ),
                });
            }
        }
    }
    Ok(report)
}

/// Why a case failed, from what the consumer did with it; `None` when it did the right thing.
fn judge(
    valid: bool,
    handled: Option<&Vec<String>>,
    dead: Option<&String>,
    timeout: Duration,
) -> Option<String> {
    match (valid, handled, dead) {
        (true, Some(missing), None) if missing.is_empty() => None,
        (true, Some(missing), None) => Some(format!(
            "dispatched, but the event lacks fields the service relies on: {}",
            missing.join(", ")
        )),
        (true, _, Some(reason)) => Some(format!("dead-lettered ({reason}) although valid")),
        (false, None, Some(reason)) if reason == "validation" => None,
        (false, Some(_), _) => {
            Some("dispatched to the handler although it breaks the contract".to_owned())
        }
        (false, None, Some(reason)) => Some(format!(
            "dead-lettered with reason `{reason}`, not `validation`"
        )),
        (_, None, None) => Some(format!(
            "neither handled nor dead-lettered within {timeout:?}"
        )),
    }
}

/// A case the consumer's handler saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The case number (from [`CASE_HEADER`]).
    pub case: usize,
    /// Relied-on fields the event lacked.
    pub missing: Vec<String>,
    /// The validated event (a CloudEvent's `data`).
    pub event: Option<Value>,
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// Where it was read.
    pub partition: i32,
}

/// A case the consumer dead-lettered.
#[derive(Debug, Clone)]
pub struct Dead {
    /// The case number.
    pub case: usize,
    /// `evkit-dlq-reason`.
    pub reason: String,
    /// `evkit-dlq-failed-paths`.
    pub failed_paths: String,
}

/// What one consuming service did, in handling order (handled may repeat on redelivery).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Handler invocations.
    pub handled: Vec<Seen>,
    /// Dead letters.
    pub dead: Vec<Dead>,
}

/// What one consuming service did with each case.
struct Outcomes {
    /// Case → relied-on fields missing from the dispatched event.
    handled: BTreeMap<usize, Vec<String>>,
    /// Case → dead-letter reason.
    dead: BTreeMap<usize, String>,
}

impl From<Observed> for Outcomes {
    fn from(o: Observed) -> Self {
        Outcomes {
            handled: o.handled.into_iter().map(|s| (s.case, s.missing)).collect(),
            dead: o.dead.into_iter().map(|d| (d.case, d.reason)).collect(),
        }
    }
}

/// The case number a record carries in [`CASE_HEADER`].
pub(crate) fn case_of(headers: &[(String, Option<Vec<u8>>)]) -> Option<usize> {
    headers
        .iter()
        .find(|(n, _)| n == CASE_HEADER)
        .and_then(|(_, v)| v.as_deref())
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
}

/// Header `name`'s value as text (empty when absent).
pub(crate) fn header(headers: &[(String, Option<Vec<u8>>)], name: &str) -> String {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
        .map_or_else(String::new, |v| String::from_utf8_lossy(v).into_owned())
}

/// Runs `consumed`'s service as an evkit consumer (fresh group, its own dead-letter topic) on
/// the broker topic `actual` until `total` cases were handled or dead-lettered, or the timeout.
pub async fn observe(
    broker: &Broker,
    catalog: &Arc<Catalog>,
    topic: &Topic,
    consumed: &Consumed,
    actual: &str,
    total: usize,
    timeout: Duration,
) -> Result<Observed, Error> {
    let dlq = format!("{actual}.{}.dlq", broker.unique_group());
    broker.create_topic(&dlq, 1).await?;
    let mut config = Config {
        bootstrap_servers: broker.bootstrap_servers().to_owned(),
        group_id: broker.unique_group(),
        client_id: "evkit-verify".to_owned(),
        ..Config::default()
    };
    config.consumer.commit_interval_ms = 200;
    config
        .topics
        .insert(topic.name().to_owned(), actual.to_owned());
    config
        .topics
        .insert(topic.spec.dead_letter_topic(), dlq.clone());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = {
        let seen = Arc::clone(&seen);
        let consumed = consumed.clone();
        handler_fn(move |msg: Incoming| {
            let env = msg.envelope();
            if let Some(case) = case_of(&env.headers) {
                let s = Seen {
                    case,
                    missing: missing_fields(&consumed, msg.event()),
                    event: msg.event().cloned(),
                    key: env.key.clone(),
                    partition: env.partition,
                };
                seen.lock().unwrap_or_else(PoisonError::into_inner).push(s);
            }
            async { Outcome::Ack }
        })
    };
    let routes = Router::new(Arc::clone(catalog))
        .route(topic.name(), record)
        .build()?;
    let service = Consumer::new(&config, routes, Metrics::new())?;
    let stop = service.shutdown_token();
    let running = tokio::spawn(service.run(std::future::pending()));
    let reader = consumer(broker, &broker.unique_group())?;
    subscribe(&reader, &[dlq.as_str()])?;
    let mut dead = Vec::new();
    let deadline = Instant::now() + timeout;
    loop {
        let handled: std::collections::BTreeSet<usize> = seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|s| s.case)
            .collect();
        if handled.len() + dead.len() >= total || Instant::now() >= deadline {
            break;
        }
        for r in receive(&reader, total, Duration::from_millis(200)).await {
            if let Some(case) = case_of(&r.headers) {
                dead.push(Dead {
                    case,
                    reason: header(&r.headers, evkit::dead_letter::REASON),
                    failed_paths: header(&r.headers, evkit::dead_letter::FAILED_PATHS),
                });
            }
        }
    }
    stop.cancel();
    let _ = running.await;
    let handled = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(Observed { handled, dead })
}
