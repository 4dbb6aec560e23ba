//! Restarts after `kill -9`: the service process is killed hard mid-stream and started again.
//!
//! - As a static member (`EVKIT_GROUP_INSTANCE_ID`), the new process takes over the dead one's
//!   partitions at once: handling resumes within 10 s, with the default 45 s session timeout.
//! - As a dynamic member, the same restart waits for the dead member's session to expire: the
//!   stall the static member avoids, measured with a 20 s session timeout.
//!
//! Both lose nothing: every todo published before, during and after the kill is stored.
//! Runs against the embedded broker or `EVKIT_BOOTSTRAP` (tansu in CI). A broker without static
//! membership (the embedded mock cluster) skips the first test, and one that never expires a
//! dead member's session (tansu 0.6) the second, each saying why.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evkit::{Config, Context, Metrics, Producer};
use evkit_schema::Catalog;
use evkit_testkit::{Broker, Capability};
use serde_json::json;
use todo_service::{Store, TODO_CREATED, TODO_INDEXED};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

struct Scenario {
    broker: Broker,
    topics: String,
    group: String,
    producer: Producer,
    dir: tempfile::TempDir,
    store: Store,
    published: u64,
}

impl Scenario {
    async fn new() -> Scenario {
        let broker = Broker::start().await.unwrap();
        let created = broker.unique_topic("restart-created");
        let dlq = format!("{created}.dlq");
        let indexed = broker.unique_topic("restart-indexed");
        for t in [&created, &dlq, &indexed] {
            broker.create_topic(t, 3).await.unwrap();
        }
        let mut config = Config {
            bootstrap_servers: broker.bootstrap_servers().to_owned(),
            ..Config::default()
        };
        let pairs = [
            (TODO_CREATED.to_owned(), created.clone()),
            (format!("{TODO_CREATED}.dlq"), dlq.clone()),
            (TODO_INDEXED.to_owned(), indexed.clone()),
        ];
        config.topics.extend(pairs.iter().cloned());
        let topics = pairs
            .iter()
            .map(|(c, a)| format!("{c}={a}"))
            .collect::<Vec<_>>()
            .join(",");
        let catalog = Arc::new(Catalog::load(Path::new(ROOT).join("schemas")).unwrap());
        let producer = Producer::new(&config, catalog, Metrics::new()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("todos.db")).unwrap();
        Scenario {
            group: broker.unique_group(),
            broker,
            topics,
            producer,
            dir,
            store,
            published: 0,
        }
    }

    async fn publish(&mut self, n: u64) {
        for _ in 0..n {
            self.published += 1;
            let id = self.published;
            let org = ["12345", "acme", "globex"][usize::try_from(id % 3).unwrap()];
            let todo = json!({
                "id": id,
                "org_id": org,
                "title": format!("todo {id}"),
                "created_at": "2026-11-30T12:00:00Z",
            });
            self.producer
                .produce(TODO_CREATED, &todo, &Context::new().for_org(org))
                .await
                .unwrap();
        }
    }

    /// Starts the service (`todo-service --db`, config from `EVKIT_*`), logging to a file.
    fn start(&self, instance: Option<&str>, config_file: Option<&Path>, run: u32) -> Child {
        let log = std::fs::File::create(self.log(run)).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_todo-service"));
        cmd.current_dir(ROOT)
            .arg("--db")
            .arg(self.dir.path().join("todos.db"))
            .env("EVKIT_BOOTSTRAP_SERVERS", self.broker.bootstrap_servers())
            .env("EVKIT_GROUP_ID", &self.group)
            .env("EVKIT_TOPICS", &self.topics)
            .env("RUST_LOG", "warn")
            .env_remove("EVKIT_CONFIG")
            .env_remove("ACG_CONFIG")
            .env_remove("EVKIT_GROUP_INSTANCE_ID")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(id) = instance {
            cmd.env("EVKIT_GROUP_INSTANCE_ID", id);
        }
        if let Some(f) = config_file {
            cmd.env("EVKIT_CONFIG", f);
        }
        cmd.spawn().unwrap()
    }

    fn log(&self, run: u32) -> PathBuf {
        self.dir.path().join(format!("service-{run}.log"))
    }

    fn logs(&self) -> String {
        (1..=2)
            .map(|run| std::fs::read_to_string(self.log(run)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// How long until every published todo is stored, or `None` after `limit`.
    async fn all_stored_within(&self, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.store.count().await.unwrap() >= self.published {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Publishes 150 todos, starts the service, kills it hard once it has stored some, publishes
    /// 60 more and starts it again: how long the new process took to store them all.
    async fn kill_and_restart(
        &mut self,
        instance: Option<&str>,
        config_file: Option<&Path>,
        limit: Duration,
    ) -> Option<Duration> {
        self.publish(150).await;
        let mut first = self.start(instance, config_file, 1);
        let stored = self.all_stored_within(Duration::from_secs(60)).await;
        assert!(
            stored.is_some(),
            "the first run stored {} of {}:\n{}",
            self.store.count().await.unwrap(),
            self.published,
            self.logs()
        );
        // Past a commit, so the group has positions the next member must take over.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        first.kill().unwrap();
        first.wait().unwrap();
        self.publish(60).await;
        let mut second = self.start(instance, config_file, 2);
        let resumed = self.all_stored_within(limit).await;
        second.kill().unwrap();
        second.wait().unwrap();
        resumed
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_killed_hard_resumes_within_10_s_and_loses_nothing() {
    let mut s = Scenario::new().await;
    if !s.broker.supports(
        Capability::StaticMembership,
        "a_static_member_killed_hard_resumes_within_10_s_and_loses_nothing",
    ) {
        return;
    }
    let resumed = s
        .kill_and_restart(Some("todo-service-0"), None, Duration::from_secs(10))
        .await;
    let stored = s.store.count().await.unwrap();
    println!(
        "static member on {}: resumed in {resumed:?}, stored {stored} of {}",
        s.broker.name(),
        s.published
    );
    assert!(
        resumed.is_some(),
        "not resumed within 10 s (stored {stored} of {}):\n{}",
        s.published,
        s.logs()
    );
    assert_eq!(stored, s.published, "a todo was lost");
}

/// The same restart without an instance id stalls until the dead member's session expires: the
/// 10 s check above fails for a dynamic member, and nothing is lost once it resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_member_killed_hard_stalls_until_its_session_expires() {
    let mut s = Scenario::new().await;
    if !s.broker.supports(
        Capability::SessionExpiry,
        "a_dynamic_member_killed_hard_stalls_until_its_session_expires",
    ) {
        return;
    }
    let config = s.dir.path().join("evkit.yaml");
    std::fs::write(&config, "librdkafka:\n  session.timeout.ms: \"20000\"\n").unwrap();
    let started = Instant::now();
    let resumed = s
        .kill_and_restart(None, Some(&config), Duration::from_secs(60))
        .await;
    let stored = s.store.count().await.unwrap();
    // The dead member's session ends 17-20 s after the kill (its last heartbeat came up to 3 s
    // before), less the time the second process took to start and join.
    println!(
        "dynamic member on {}: resumed in {resumed:?} (session timeout 20 s), stored {stored} of \
         {} ({:?} in all)",
        s.broker.name(),
        s.published,
        started.elapsed()
    );
    let resumed = resumed.unwrap_or_else(|| {
        panic!(
            "not resumed within 60 s (stored {stored} of {}):\n{}",
            s.published,
            s.logs()
        )
    });
    assert!(
        resumed > Duration::from_secs(10),
        "a dynamic member resumed in {resumed:?}: faster than the dead member's session timeout"
    );
    assert_eq!(stored, s.published, "a todo was lost");
}

/// SIGTERM ends the service within its shutdown deadline (1 s) plus the commit grace (3 s)
/// when the broker went away first, with positions still uncommitted and the outbox relay and
/// producer to close. Needs a broker the test can take down (the embedded one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_service_within_its_deadline_when_the_broker_is_gone() {
    let mut s = Scenario::new().await;
    if !s.broker.supports(
        Capability::FaultInjection,
        "sigterm_stops_the_service_within_its_deadline_when_the_broker_is_gone",
    ) {
        return;
    }
    let config = s.dir.path().join("evkit.yaml");
    std::fs::write(
        &config,
        "consumer:\n  shutdown_deadline_ms: 1000\n  commit_interval_ms: 600000\n",
    )
    .unwrap();
    s.publish(50).await;
    let mut service = s.start(None, Some(&config), 1);
    assert!(
        s.all_stored_within(Duration::from_secs(60)).await.is_some(),
        "stored {} of {}:\n{}",
        s.store.count().await.unwrap(),
        s.published,
        s.logs()
    );
    let cluster = s.broker.embedded_cluster().unwrap();
    for id in 1..=3 {
        cluster.broker_down(id).unwrap();
    }
    let started = Instant::now();
    let pid = service.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let limit = Duration::from_secs(8);
    let status = loop {
        if let Some(status) = service.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            service.kill().unwrap();
            panic!("still running {limit:?} after SIGTERM:\n{}", s.logs());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("stopped {:?} after SIGTERM: {status}", started.elapsed());
    assert!(status.success(), "{status}:\n{}", s.logs());
}
