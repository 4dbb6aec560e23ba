//! `todo-service --demo N`: the whole service against a real broker, with a report.
//!
//! Starts the test broker (the embedded mock cluster, or `EVKIT_BOOTSTRAP` when set), creates
//! fresh topics for todo-created, its dead-letter topic and todo-indexed, runs the service,
//! publishes `N` valid todos through evkit's producer and some deliberately broken messages
//! through a bare Kafka producer, then checks what came out: every valid todo stored once and
//! announced on todo-indexed (each follow-up valid against the catalog), every broken message on
//! the dead-letter topic with its reason, and the committed offsets at the end of each partition.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use evkit::{Config, Consumer, Context, Metrics, Producer};
use evkit_schema::{Catalog, Message, encode_identity};
use evkit_testkit::Broker;
use evkit_testkit::clients::{
    Record, consumer, producer as raw_producer, receive, send, subscribe,
};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{Error, Store, TODO_CREATED, TODO_INDEXED, routes};

const ORGS: [&str; 5] = ["12345", "67890", "acme", "globex", "initech"];

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Valid todos to publish.
    pub valid: u64,
    /// Broken messages to publish (cycling through [`BROKEN`]).
    pub broken: u64,
    /// The catalog folder.
    pub catalog: PathBuf,
    /// The SQLite file (a temporary one when `None`).
    pub db: Option<PathBuf>,
}

/// The kinds of broken message the demo publishes, with the dead-letter reason each must get.
pub const BROKEN: [(&str, &str); 4] = [
    ("id is a float (the Go service's bug)", "validation"),
    ("no x-rh-identity header", "validation"),
    ("payload is not JSON", "validation"),
    ("key differs from org_id", "validation"),
];

/// What the demo saw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Which broker ran the demo.
    pub broker: String,
    /// Valid todos published.
    pub valid: u64,
    /// Broken messages published.
    pub broken: u64,
    /// Rows in the store at the end.
    pub stored: u64,
    /// Distinct `(org_id, id)` announced on todo-indexed.
    pub announced: usize,
    /// todo-indexed records that broke the catalog's contract.
    pub announced_invalid: usize,
    /// Announcements still in the outbox at the end (stored but not acknowledged).
    pub outbox_pending: u64,
    /// Dead letters per reason.
    pub dead_letters: BTreeMap<String, u64>,
    /// Committed position per partition of todo-created at shutdown.
    pub committed: BTreeMap<i32, i64>,
    /// The end offset of each partition of todo-created.
    pub ends: BTreeMap<i32, i64>,
    /// Non-zero lines of the `/metrics` scrape about the service's two topics.
    pub metrics: Vec<String>,
    /// Wall time.
    pub elapsed: Duration,
}

impl Report {
    /// Everything that was published was handled or dead-lettered, exactly as promised.
    pub fn ok(&self) -> bool {
        self.stored == self.valid
            && self.announced == usize::try_from(self.valid).unwrap_or(usize::MAX)
            && self.announced_invalid == 0
            && self.outbox_pending == 0
            && self.dead_letters.values().sum::<u64>() == self.broken
            && self.committed == self.ends
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dead: u64 = self.dead_letters.values().sum();
        writeln!(f, "todo-service demo on the {} broker", self.broker)?;
        writeln!(
            f,
            "  published      {} valid todos + {} broken messages to {TODO_CREATED}",
            self.valid, self.broken
        )?;
        writeln!(f, "  stored         {} todos in SQLite", self.stored)?;
        writeln!(
            f,
            "  announced      {} on {TODO_INDEXED} ({} invalid; {} left in the outbox)",
            self.announced, self.announced_invalid, self.outbox_pending
        )?;
        writeln!(f, "  dead-lettered  {dead} {:?}", self.dead_letters)?;
        writeln!(
            f,
            "  committed      {:?} (partition ends {:?})",
            self.committed, self.ends
        )?;
        writeln!(f, "  metrics (scraped from /metrics):")?;
        for line in &self.metrics {
            writeln!(f, "    {line}")?;
        }
        writeln!(f, "  took {:.1} s", self.elapsed.as_secs_f64())?;
        write!(
            f,
            "{}",
            if self.ok() {
                "OK: every message was handled or dead-lettered, and committed"
            } else {
                "FAILED: the counts above do not add up"
            }
        )
    }
}

/// Runs the demo. An error means the demo could not run; a run whose counts do not add up returns
/// a report whose [`Report::ok`] is `false`.
pub async fn run(opts: &Options) -> Result<Report, Error> {
    let started = Instant::now();
    // The build-time validators of the generated crate answer `is_valid` for every schema that
    // still matches the one they were generated from.
    let catalog = Arc::new(
        Catalog::load_with(&opts.catalog, evkit_events::generated::PRECOMPILED)
            .map_err(evkit::Error::Schema)?,
    );
    let broker = Broker::start().await?;
    let created = broker.unique_topic("todo-created");
    let dlq = format!("{created}.dlq");
    let indexed = broker.unique_topic("todo-indexed");
    for t in [&created, &dlq, &indexed] {
        broker.create_topic(t, 3).await?;
    }
    let config = service_config(&broker, &created, &dlq, &indexed);
    let tmp = tempfile::tempdir().map_err(|e| Error::Demo(format!("temporary dir: {e}")))?;
    let db = opts
        .db
        .clone()
        .unwrap_or_else(|| tmp.path().join("todos.db"));
    let store = Store::open(&db)?;
    let metrics = Metrics::new();
    let server = metrics
        .serve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await?;
    let producer = Arc::new(Producer::new(
        &config,
        Arc::clone(&catalog),
        metrics.clone(),
    )?);
    let service = Consumer::new(
        &config,
        routes(Arc::clone(&catalog), store.clone(), Arc::clone(&producer))?,
        metrics.clone(),
    )?;
    let stop = service.shutdown_token();
    let running = tokio::spawn(service.run(std::future::pending()));

    let mut ends = BTreeMap::new();
    for i in 1..=opts.valid {
        let org = ORGS[usize::try_from(i).unwrap_or_default() % ORGS.len()];
        let priority = ["low", "normal", "high"][usize::try_from(i % 3).unwrap_or_default()];
        let todo = json!({
            "id": i,
            "org_id": org,
            "title": format!("todo {i} of {org}"),
            "created_at": chrono::Utc::now().to_rfc3339(),
            "priority": priority,
        });
        let d = producer
            .produce(TODO_CREATED, &todo, &Context::new().for_org(org))
            .await?;
        ends.insert(d.partition, d.offset + 1);
    }
    publish_broken(&broker, &created, opts.broken, &mut ends).await?;

    let announced = read(&broker, &indexed, opts.valid, "announcements").await?;
    let dead = read(&broker, &dlq, opts.broken, "dead letters").await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.count().await? < opts.valid && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let scraped = scrape(server.addr()).await?;
    stop.cancel();
    running
        .await
        .map_err(|e| Error::Demo(format!("consumer task: {e}")))??;
    let committed = group_committed(&broker, &config.group_id, &created)?;

    let contract = catalog
        .contract(TODO_INDEXED)
        .map_err(evkit::Error::Schema)?;
    let (distinct, announced_invalid) = announcements(contract, &announced);
    Ok(Report {
        broker: broker.name().to_owned(),
        valid: opts.valid,
        broken: opts.broken,
        stored: store.count().await?,
        announced: distinct,
        announced_invalid,
        outbox_pending: store.outbox()?.pending().await?,
        dead_letters: reasons(&dead),
        committed,
        ends,
        metrics: scraped
            .lines()
            .filter(|l| {
                !l.starts_with('#') && (l.contains(TODO_CREATED) || l.contains(TODO_INDEXED))
            })
            .filter(|l| !l.ends_with(" 0"))
            .filter(|l| !l.contains("_bucket"))
            .map(str::to_owned)
            .collect(),
        elapsed: started.elapsed(),
    })
}

/// The service's config for the demo: catalog topics mapped onto the demo's fresh topics.
fn service_config(broker: &Broker, created: &str, dlq: &str, indexed: &str) -> Config {
    let mut config = Config {
        bootstrap_servers: broker.bootstrap_servers().to_owned(),
        group_id: broker.unique_group(),
        client_id: "todo-service-demo".to_owned(),
        ..Config::default()
    };
    config.consumer.commit_interval_ms = 200;
    config
        .topics
        .insert(TODO_CREATED.to_owned(), created.to_owned());
    config
        .topics
        .insert(format!("{TODO_CREATED}.dlq"), dlq.to_owned());
    config
        .topics
        .insert(TODO_INDEXED.to_owned(), indexed.to_owned());
    config
}

/// Publishes `n` broken messages with a bare Kafka producer (evkit's own producer refuses them).
async fn publish_broken(
    broker: &Broker,
    created: &str,
    n: u64,
    ends: &mut BTreeMap<i32, i64>,
) -> Result<(), Error> {
    let raw = raw_producer(broker)?;
    for i in 0..n {
        let kind = usize::try_from(i).unwrap_or_default() % BROKEN.len();
        let org = ORGS[kind];
        let identity = encode_identity(org, "User");
        let good = format!(
            r#"{{"id": {}, "org_id": "{org}", "title": "broken", "created_at": "2026-11-01T09:30:00Z"}}"#,
            1_000_000 + i
        );
        let mut headers: Vec<(&str, &[u8])> = vec![("x-rh-insights-request-id", b"demo-broken")];
        let (key, payload): (&[u8], Vec<u8>) = match kind {
            0 => (
                org.as_bytes(),
                good.replace(&format!("{}", 1_000_000 + i), "4.5")
                    .into_bytes(),
            ),
            1 => (org.as_bytes(), good.clone().into_bytes()),
            2 => (org.as_bytes(), b"{not json".to_vec()),
            _ => (b"someone-else", good.clone().into_bytes()),
        };
        if kind != 1 {
            headers.push(("x-rh-identity", identity.as_bytes()));
        }
        let (p, o) = send(&raw, created, Some(key), &headers, &payload).await?;
        ends.insert(p, ends.get(&p).copied().unwrap_or_default().max(o + 1));
    }
    Ok(())
}

/// Distinct valid announcements, and how many broke the contract.
fn announcements(contract: &evkit_schema::Contract, records: &[Record]) -> (usize, usize) {
    let mut distinct = BTreeSet::new();
    let mut invalid = 0;
    for r in records {
        if check(contract, r) {
            let v: serde_json::Value =
                serde_json::from_slice(r.payload.as_deref().unwrap_or_default())
                    .unwrap_or_default();
            distinct.insert((v["org_id"].to_string(), v["id"].to_string()));
        } else {
            invalid += 1;
        }
    }
    (distinct.len(), invalid)
}

/// Dead letters per `evkit-dlq-reason`.
fn reasons(dead: &[Record]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in dead {
        let reason = r
            .headers
            .iter()
            .find(|(n, _)| n == evkit::dead_letter::REASON)
            .and_then(|(_, v)| v.as_deref())
            .map_or("(none)".to_owned(), |v| {
                String::from_utf8_lossy(v).into_owned()
            });
        *out.entry(reason).or_insert(0) += 1;
    }
    out
}

/// What the broker says the group committed on `topic` (asked after the service stopped).
fn group_committed(broker: &Broker, group: &str, topic: &str) -> Result<BTreeMap<i32, i64>, Error> {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let kafka = |e| evkit_testkit::Error::Kafka {
        context: format!("reading the committed offsets of {group}"),
        source: e,
    };
    let c: BaseConsumer = broker
        .client_config()
        .set("group.id", group)
        .create()
        .map_err(kafka)?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .map_err(kafka)?;
    Ok(got
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}

/// Reads `n` records of `topic` from the beginning.
async fn read(broker: &Broker, topic: &str, n: u64, what: &str) -> Result<Vec<Record>, Error> {
    let c = consumer(broker, &broker.unique_group())?;
    subscribe(&c, &[topic])?;
    let want = usize::try_from(n).unwrap_or(usize::MAX);
    let got = receive(&c, want, Duration::from_secs(60)).await;
    if got.len() < want {
        tracing::warn!(topic, got = got.len(), want, "fewer {what} than expected");
    }
    Ok(got)
}

fn check(contract: &evkit_schema::Contract, r: &Record) -> bool {
    let mut m = Message::new(r.payload.as_deref().unwrap_or_default());
    if let Some(k) = &r.key {
        m = m.key(k);
    }
    for (name, value) in &r.headers {
        if let Some(v) = value {
            m = m.header(name, v);
        }
    }
    contract.is_valid(&m)
}

/// `GET /metrics` over plain HTTP/1.0, the way Prometheus scrapes it.
async fn scrape(addr: std::net::SocketAddr) -> Result<String, Error> {
    let io = |e: std::io::Error| Error::Demo(format!("scraping http://{addr}/metrics: {e}"));
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(io)?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .map_err(io)?;
    let mut body = String::new();
    s.read_to_string(&mut body).await.map_err(io)?;
    Ok(body
        .split_once("\r\n\r\n")
        .map_or(body.clone(), |(_, b)| b.to_owned()))
}
