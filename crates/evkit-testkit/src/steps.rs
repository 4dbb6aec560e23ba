//! Reusable cucumber steps for contract features, on a real broker.
//!
//! Run them from a test target with `harness = false`:
//!
//! ```no_run
//! use cucumber::World as _;
//! use evkit_testkit::steps::EvkitWorld;
//!
//! # async fn run() {
//! EvkitWorld::cucumber()
//!     .fail_on_skipped()
//!     .run_and_exit("features")
//!     .await;
//! # }
//! ```
//!
//! The world finds `schemas/` and `contracts/` in the working directory or the nearest parent
//! that has `schemas/topics.yaml`. Steps:
//!
//! - `Given the catalog`, `Given a broker`, `Given topic "T" with N partitions`
//! - `When service "S" publishes its example "E"`, `When service "S" publishes every example`
//! - `When N generated valid messages are published to "T"` (also `a generated valid message`;
//!   `N generated valid messages for K tenants` gives them K keys, for plain topics keyed by `org_id`)
//! - `When a message that breaks "R" is published to "T"` (R: a rule keyword such as `required`
//!   or `maxLength`, or words of its description such as `missing x-rh-identity`)
//! - `When a valid message with its request id header spelled "H" is published to "T"`
//! - `Then the consumer of "T" dispatches it to its handler with the decoded event`
//! - `Then it lands on the dead-letter topic with reason "R" and the failed path "P"`
//! - `Then every message produced is handled or dead-lettered exactly once`
//! - `Then messages with the same key are handled in the order they were produced`
//! - `Then contract verification passes for every service` / `... fails for service "S"`
//! - `Given the service under test "S"` (routes a team registered with [`register_service`]),
//!   then `Then the service under test passes consumer verification of "T" with N valid and M
//!   invalid messages` / `... fails consumer verification of "T" with ...`: its **real**
//!   handlers run through [`crate::service::verify_consumer`]

// A cucumber step fails by panicking (like a test's assert): that is how these report.
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    reason = "cucumber steps fail by panicking"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cucumber::{given, then, when};
use evkit_schema::Catalog;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rdkafka::producer::FutureProducer;

use crate::Broker;
use crate::contracts::{Consumed, Contracts};
use crate::messages::{Generated, invalid_message_for, valid_message};
use crate::verify::{Observed, Options, observe, publish, verify};

/// Builds a service's real routes over the scenario's catalog.
pub type ServiceFactory =
    Arc<dyn Fn(Arc<Catalog>) -> Result<evkit::Routes, String> + Send + Sync + 'static>;

static SERVICES: std::sync::LazyLock<std::sync::Mutex<BTreeMap<String, ServiceFactory>>> =
    std::sync::LazyLock::new(Default::default);

/// Registers service `name` for `Given the service under test "name"`: `routes` builds its
/// real routes (with whatever store the test provides) from the scenario's catalog. Call it in
/// the feature runner's `main` before running the features.
pub fn register_service(
    name: &str,
    routes: impl Fn(Arc<Catalog>) -> Result<evkit::Routes, String> + Send + Sync + 'static,
) {
    SERVICES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(name.to_owned(), Arc::new(routes));
}

/// One published message.
#[derive(Debug, Clone)]
pub struct Published {
    /// The catalog topic.
    pub topic: String,
    /// The message.
    pub message: Generated,
    /// Whether the contract accepts it.
    pub valid: bool,
}

/// The state of one scenario.
#[derive(cucumber::World)]
#[world(init = Self::new)]
pub struct EvkitWorld {
    root: PathBuf,
    catalog: Option<Arc<Catalog>>,
    contracts: Option<Contracts>,
    broker: Option<Broker>,
    producer: Option<FutureProducer>,
    /// Catalog topic → broker topic of this scenario.
    topics: BTreeMap<String, String>,
    published: Vec<Published>,
    observed: BTreeMap<String, Observed>,
    runner: TestRunner,
    service: Option<(String, ServiceFactory)>,
}

impl std::fmt::Debug for EvkitWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvkitWorld")
            .field("topics", &self.topics)
            .field("published", &self.published.len())
            .finish_non_exhaustive()
    }
}

/// The nearest directory, from `start` up, that holds `schemas/topics.yaml`.
fn find_root(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|d| d.join("schemas/topics.yaml").is_file())
        .unwrap_or(start)
        .to_path_buf()
}

impl EvkitWorld {
    fn new() -> Self {
        let cwd = std::env::current_dir().unwrap_or_default();
        EvkitWorld {
            root: find_root(&cwd),
            catalog: None,
            contracts: None,
            broker: None,
            producer: None,
            topics: BTreeMap::new(),
            published: Vec::new(),
            observed: BTreeMap::new(),
            runner: TestRunner::new_with_rng(
                Config::default(),
                TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
            ),
            service: None,
        }
    }

    fn catalog(&self) -> Arc<Catalog> {
        Arc::clone(
            self.catalog
                .as_ref()
                .expect("step order: `Given the catalog` first"),
        )
    }

    fn broker(&self) -> &Broker {
        self.broker
            .as_ref()
            .expect("step order: `Given a broker` first")
    }

    /// The scenario's broker topic for a catalog topic (created with the catalog's partition
    /// count on first use).
    async fn actual(&mut self, topic: &str) -> String {
        if let Some(a) = self.topics.get(topic) {
            return a.clone();
        }
        let partitions = self
            .catalog()
            .topic(topic)
            .map(|t| i32::try_from(t.spec.partitions.max(1)).unwrap_or(1))
            .expect("a catalog topic");
        self.create(topic, partitions).await
    }

    async fn create(&mut self, topic: &str, partitions: i32) -> String {
        let actual = self.broker().unique_topic("feature");
        self.broker()
            .create_topic(&actual, partitions)
            .await
            .expect("topic created");
        self.topics.insert(topic.to_owned(), actual.clone());
        actual
    }

    async fn send(&mut self, topic: &str, message: Generated, valid: bool) {
        let actual = self.actual(topic).await;
        if self.producer.is_none() {
            self.producer = Some(crate::clients::producer(self.broker()).expect("producer"));
        }
        let case = self.published.len();
        let p = self.producer.as_ref().expect("producer");
        publish(p, &actual, case, &message)
            .await
            .expect("message published");
        self.published.push(Published {
            topic: topic.to_owned(),
            message,
            valid,
        });
    }

    fn draw(&mut self, s: &proptest::strategy::BoxedStrategy<Generated>) -> Generated {
        s.new_tree(&mut self.runner)
            .expect("a generated message")
            .current()
    }

    /// Runs the topic's consumer (once per scenario) over everything published to it.
    async fn observed(&mut self, topic: &str) -> Observed {
        if let Some(o) = self.observed.get(topic) {
            return o.clone();
        }
        let catalog = self.catalog();
        let t = catalog.topic(topic).expect("a catalog topic").clone();
        let actual = self.actual(topic).await;
        let total = self.published.iter().filter(|p| p.topic == topic).count();
        let consumed = Consumed {
            topic: topic.to_owned(),
            relies_on: Vec::new(),
        };
        let o = observe(
            self.broker(),
            &catalog,
            &t,
            &consumed,
            &actual,
            total,
            Duration::from_secs(60),
        )
        .await
        .expect("consumer ran");
        self.observed.insert(topic.to_owned(), o.clone());
        o
    }

    fn last(&self) -> (usize, &Published) {
        let i = self
            .published
            .len()
            .checked_sub(1)
            .expect("a message was published");
        (i, &self.published[i])
    }
}

#[given("the catalog")]
fn the_catalog(w: &mut EvkitWorld) {
    let catalog = Arc::new(Catalog::load(w.root.join("schemas")).expect("the catalog loads"));
    let dir = w.root.join("contracts");
    if dir.is_dir() {
        w.contracts = Some(Contracts::load(&dir, &catalog).expect("the contracts load"));
    }
    w.catalog = Some(catalog);
}

#[given("a broker")]
async fn a_broker(w: &mut EvkitWorld) {
    w.broker = Some(Broker::start().await.expect("a broker"));
}

#[given(expr = "topic {string} with {int} partition(s)")]
async fn topic_with_partitions(w: &mut EvkitWorld, topic: String, partitions: i32) {
    w.create(&topic, partitions).await;
}

#[when(expr = "service {string} publishes its example {string}")]
async fn publishes_example(w: &mut EvkitWorld, service: String, example: String) {
    let catalog = w.catalog();
    let contracts = w.contracts.as_ref().expect("contracts/ exists");
    let (topic, ex) = contracts
        .services
        .iter()
        .filter(|s| s.service == service)
        .flat_map(|s| s.produces.iter())
        .find_map(|p| {
            p.examples
                .iter()
                .find(|e| e.name == example)
                .map(|e| (p.topic.clone(), e.clone()))
        })
        .unwrap_or_else(|| panic!("service {service} has no example {example:?}"));
    let m = ex.message(catalog.topic(&topic).expect("a catalog topic"));
    w.send(&topic, m, true).await;
}

#[when(expr = "service {string} publishes every example")]
async fn publishes_every_example(w: &mut EvkitWorld, service: String) {
    let catalog = w.catalog();
    let contracts = w.contracts.clone().expect("contracts/ exists");
    let mut n = 0;
    for s in contracts.services.iter().filter(|s| s.service == service) {
        for p in &s.produces {
            let topic = catalog.topic(&p.topic).expect("a catalog topic");
            for ex in &p.examples {
                w.send(&p.topic, ex.message(topic), true).await;
                n += 1;
            }
        }
    }
    assert!(n > 0, "service {service} has no examples");
}

#[when(regex = r#"^(\d+|a) generated valid messages? (?:are|is) published to "([^"]+)"$"#)]
async fn generated_valid(w: &mut EvkitWorld, n: String, topic: String) {
    let n: usize = if n == "a" {
        1
    } else {
        n.parse().expect("a count")
    };
    let strategy = valid_message(w.catalog().topic(&topic).expect("a catalog topic"))
        .expect("the topic's schema is supported");
    for _ in 0..n {
        let m = w.draw(&strategy);
        w.send(&topic, m, true).await;
    }
}

#[when(expr = "{int} generated valid messages for {int} tenants are published to {string}")]
async fn generated_for_tenants(w: &mut EvkitWorld, n: usize, tenants: usize, topic: String) {
    let catalog = w.catalog();
    let t = catalog.topic(&topic).expect("a catalog topic");
    let strategy = valid_message(t).expect("the topic's schema is supported");
    for i in 0..n {
        let m = w.draw(&strategy);
        let mut data: serde_json::Value = serde_json::from_slice(&m.payload).expect("JSON");
        let org = format!("tenant-{}", i % tenants.max(1));
        data["org_id"] = serde_json::json!(org);
        let m = crate::messages::example_message(
            t,
            &data,
            None,
            None,
            Some(&org),
            &format!("generated-{i}"),
        );
        w.send(&topic, m, true).await;
    }
}

#[when(expr = "a message that breaks {string} is published to {string}")]
async fn breaking(w: &mut EvkitWorld, rule: String, topic: String) {
    let strategy = invalid_message_for(
        w.catalog().topic(&topic).expect("a catalog topic"),
        Some(&rule),
    )
    .unwrap_or_else(|e| panic!("{topic}: {e}"));
    for _ in 0..200 {
        let m = w.draw(&strategy);
        if m.broken.as_ref().is_some_and(|r| r.matches(&rule)) {
            w.send(&topic, m, false).await;
            return;
        }
    }
    panic!("no generated message of {topic} breaks {rule:?}");
}

#[when(
    expr = "a valid message with its request id header spelled {string} is published to {string}"
)]
async fn request_id_spelled(w: &mut EvkitWorld, header: String, topic: String) {
    let strategy = valid_message(w.catalog().topic(&topic).expect("a catalog topic"))
        .expect("the topic's schema is supported");
    let mut m = w.draw(&strategy);
    for (n, _) in &mut m.headers {
        if n == "x-rh-insights-request-id" {
            n.clone_from(&header);
        }
    }
    let valid = header.eq_ignore_ascii_case("x-rh-insights-request-id");
    w.send(&topic, m, valid).await;
}

#[then(expr = "the consumer of {string} dispatches it to its handler with the decoded event")]
async fn dispatched(w: &mut EvkitWorld, topic: String) {
    let o = w.observed(&topic).await;
    let (case, p) = w.last();
    let seen = o
        .handled
        .iter()
        .find(|s| s.case == case)
        .unwrap_or_else(|| {
            panic!(
                "message {case} was not dispatched; dead letters: {:?}",
                o.dead
            )
        });
    let sent: serde_json::Value = serde_json::from_slice(&p.message.payload).expect("JSON");
    let expected = match sent.get("data") {
        Some(d) if sent.get("specversion").is_some() => d.clone(),
        _ => sent,
    };
    assert_eq!(seen.event.as_ref(), Some(&expected), "the decoded event");
}

#[then(
    expr = "it lands on the dead-letter topic with reason {string} and the failed path {string}"
)]
async fn dead_lettered(w: &mut EvkitWorld, reason: String, path: String) {
    let topic = w.last().1.topic.clone();
    let o = w.observed(&topic).await;
    let (case, _) = w.last();
    let d = o
        .dead
        .iter()
        .find(|d| d.case == case)
        .unwrap_or_else(|| panic!("message {case} is not on the dead-letter topic"));
    assert_eq!(d.reason, reason);
    assert!(
        d.failed_paths.split(',').any(|p| p == path),
        "failed paths {:?} lack {path:?}",
        d.failed_paths
    );
    assert!(
        o.handled.iter().all(|s| s.case != case),
        "it was dispatched too"
    );
}

#[then("every message produced is handled or dead-lettered exactly once")]
async fn exactly_once(w: &mut EvkitWorld) {
    let topics: Vec<String> = w.topics.keys().cloned().collect();
    for topic in topics {
        let o = w.observed(&topic).await;
        for (case, p) in w
            .published
            .iter()
            .enumerate()
            .filter(|(_, p)| p.topic == topic)
        {
            let handled = o.handled.iter().filter(|s| s.case == case).count();
            let dead = o.dead.iter().filter(|d| d.case == case).count();
            assert_eq!(
                (handled, dead),
                if p.valid { (1, 0) } else { (0, 1) },
                "message {case} on {topic}"
            );
        }
    }
}

#[then("messages with the same key are handled in the order they were produced")]
async fn key_order(w: &mut EvkitWorld) {
    let topics: Vec<String> = w.topics.keys().cloned().collect();
    for topic in topics {
        let o = w.observed(&topic).await;
        let mut last: BTreeMap<Option<Vec<u8>>, usize> = BTreeMap::new();
        for s in &o.handled {
            if let Some(prev) = last.insert(s.key.clone(), s.case) {
                assert!(
                    prev < s.case,
                    "key {:?}: {} handled after {}",
                    s.key,
                    s.case,
                    prev
                );
            }
        }
    }
}

async fn verification(w: &EvkitWorld) -> crate::verify::Report {
    let contracts = w.contracts.as_ref().expect("contracts/ exists");
    let opts = Options {
        valid: 6,
        invalid: 4,
        ..Options::default()
    };
    verify(w.broker(), &w.catalog(), contracts, &opts)
        .await
        .expect("verification ran")
}

#[then("contract verification passes for every service")]
async fn verification_passes(w: &mut EvkitWorld) {
    let report = verification(w).await;
    assert!(report.passed(), "{report}");
}

#[then(expr = "contract verification fails for service {string}")]
async fn verification_fails(w: &mut EvkitWorld, service: String) {
    let report = verification(w).await;
    assert!(
        report
            .cases
            .iter()
            .any(|c| c.service == service && c.failure.is_some()),
        "{report}"
    );
}

#[given(expr = "service {string} relies on {string} of {string}")]
fn relies_on(w: &mut EvkitWorld, service: String, pointer: String, topic: String) {
    // A contract written inline by the scenario: replaces the folder's contracts.
    let mut c = crate::contracts::ServiceContract {
        service,
        description: String::new(),
        produces: Vec::new(),
        consumes: Vec::new(),
        file: PathBuf::from("(scenario)"),
    };
    c.consumes.push(Consumed {
        topic,
        relies_on: vec![pointer],
    });
    w.contracts = Some(Contracts { services: vec![c] });
}

#[given(expr = "the service under test {string}")]
fn service_under_test(w: &mut EvkitWorld, name: String) {
    let factory = SERVICES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&name)
        .cloned()
        .unwrap_or_else(|| panic!("no service `{name}` was registered (register_service)"));
    w.service = Some((name, factory));
}

async fn service_verification(
    w: &mut EvkitWorld,
    topic: &str,
    valid: usize,
    invalid: usize,
) -> crate::service::ConsumerReport {
    let (name, factory) = w
        .service
        .clone()
        .expect("step order: `Given the service under test \"S\"` first");
    let routes = factory(w.catalog()).unwrap_or_else(|e| panic!("service `{name}`: {e}"));
    let check = crate::service::ConsumerCheck {
        valid,
        invalid,
        contracts: w.contracts.clone(),
        ..crate::service::ConsumerCheck::default()
    };
    crate::service::verify_consumer(w.broker(), routes, topic, &check)
        .await
        .expect("verification ran")
}

#[then(
    expr = "the service under test passes consumer verification of {string} with {int} valid and {int} invalid messages"
)]
async fn service_passes(w: &mut EvkitWorld, topic: String, valid: usize, invalid: usize) {
    let report = service_verification(w, &topic, valid, invalid).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
}

#[then(
    expr = "the service under test fails consumer verification of {string} with {int} valid and {int} invalid messages"
)]
async fn service_fails(w: &mut EvkitWorld, topic: String, valid: usize, invalid: usize) {
    let report = service_verification(w, &topic, valid, invalid).await;
    println!("{report}");
    assert!(!report.passed(), "the service passed: {report}");
}
