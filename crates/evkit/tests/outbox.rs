//! The outbox on a real broker, with its table in SQLite and (when `EVKIT_POSTGRES_URL` names a
//! server, as in CI) in PostgreSQL: a stored message survives a restart and an outage and is sent
//! once the broker is reachable; sent rows are deleted; an invalid event is never stored; a
//! message stored in a rolled-back transaction never exists; a damaged row blocks nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use common::{TODO, header, read_all, setup, sorted_ids};
use evkit::outbox::{Outbox, RelayOptions};
use evkit::{Context, Error, Metrics, Prepared, Producer};
use serde_json::json;

fn event(id: u64, org: &str) -> serde_json::Value {
    json!({"id": id, "org_id": org, "title": format!("todo {id}"), "created_at": "2026-11-01T09:30:00Z"})
}

/// A fresh outbox database: a SQLite file, or a new PostgreSQL database.
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }

    async fn open(&self) -> Outbox {
        Outbox::connect(&self.url).await.unwrap()
    }

    /// Runs `sql` directly (to damage a row, say).
    async fn execute(&self, sql: &str) {
        if self.is_postgres() {
            let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client.batch_execute(sql).await.unwrap();
        } else {
            rusqlite::Connection::open(&self.url)
                .unwrap()
                .execute_batch(sql)
                .unwrap();
        }
    }

    /// Stores `keep` in a committed transaction and `drop` in one rolled back, through the
    /// service's own connection, next to a row of its own table.
    async fn add_in_transactions(&self, keep: &[Prepared], drop: &Prepared) {
        if self.is_postgres() {
            let (mut client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute("CREATE TABLE todos (id BIGINT PRIMARY KEY)")
                .await
                .unwrap();
            let tx = client.transaction().await.unwrap();
            for (i, m) in keep.iter().enumerate() {
                let id = i64::try_from(i).unwrap();
                tx.execute("INSERT INTO todos (id) VALUES ($1)", &[&id])
                    .await
                    .unwrap();
                Outbox::add_in_postgres(&tx, m).await.unwrap();
            }
            tx.commit().await.unwrap();
            let tx = client.transaction().await.unwrap();
            Outbox::add_in_postgres(&tx, drop).await.unwrap();
            tx.rollback().await.unwrap();
        } else {
            let mut conn = rusqlite::Connection::open(&self.url).unwrap();
            conn.execute("CREATE TABLE todos (id INTEGER PRIMARY KEY)", [])
                .unwrap();
            let tx = conn.transaction().unwrap();
            for (i, m) in keep.iter().enumerate() {
                tx.execute("INSERT INTO todos (id) VALUES (?1)", [i])
                    .unwrap();
                Outbox::add_in(&tx, m).unwrap();
            }
            tx.commit().unwrap();
            let tx = conn.transaction().unwrap();
            Outbox::add_in(&tx, drop).unwrap();
            tx.rollback().unwrap();
        }
    }
}

/// A SQLite database, plus a fresh PostgreSQL database on the server `EVKIT_POSTGRES_URL`
/// names (e.g. `postgres://postgres@127.0.0.1:55432/postgres`); without it, says so.
async fn databases() -> Vec<Db> {
    let dir = tempfile::tempdir().unwrap();
    let mut dbs = vec![Db {
        url: dir.path().join("service.db").to_str().unwrap().to_owned(),
        _dir: Some(dir),
    }];
    match std::env::var("EVKIT_POSTGRES_URL") {
        Ok(admin) => {
            let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let name = format!("evkit_{}", uuid::Uuid::new_v4().simple());
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            dbs.push(Db {
                url: format!("{base}/{name}"),
                _dir: None,
            });
        }
        Err(_) => eprintln!(
            "outbox on PostgreSQL: not run here, EVKIT_POSTGRES_URL is not set (CI sets it)"
        ),
    }
    dbs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_messages_survive_a_restart_and_are_sent_once() {
    for db in databases().await {
        let s = setup("outbox", 2).await;
        let producer = Producer::new(&s.config, common::catalog(), Metrics::new()).unwrap();
        let ctx = Context::new()
            .for_org("org-a")
            .with_request_id("req-outbox");
        let prepare = |id| producer.prepare(TODO, &event(id, "org-a"), &ctx).unwrap();
        {
            let outbox = db.open().await;
            let keep: Vec<Prepared> = (1..=4).map(prepare).collect();
            db.add_in_transactions(&keep, &prepare(99)).await;
            outbox.add(&prepare(5)).await.unwrap();
            assert_eq!(
                outbox.pending().await.unwrap(),
                5,
                "{}: the rolled-back event must not be stored",
                db.url
            );
            // The process stops here, before anything was sent.
        }

        let outbox = db.open().await;
        assert_eq!(outbox.pending().await.unwrap(), 5, "{}: restart", db.url);
        let options = RelayOptions {
            batch: 2,
            ..RelayOptions::default()
        };
        let report = outbox.relay(&producer, &options).await.unwrap();
        assert_eq!((report.sent, report.failed), (5, 0), "{report:?}");
        assert_eq!(
            outbox.pending().await.unwrap(),
            0,
            "sent rows must be deleted"
        );
        assert!(
            report.deliveries.iter().all(|d| d.topic == s.topic),
            "{report:?}"
        );

        let again = outbox
            .relay(&producer, &RelayOptions::default())
            .await
            .unwrap();
        assert_eq!(again.sent, 0, "{}: nothing may be sent twice", db.url);

        let back = read_all(&s.broker, &s.topic, 6, Duration::from_secs(15)).await;
        assert_eq!(sorted_ids(&back), [1, 2, 3, 4, 5], "{}", db.url);
        for r in &back {
            assert_eq!(r.key.as_deref(), Some(&b"org-a"[..]));
            assert_eq!(header(r, "x-rh-insights-request-id"), Some("req-outbox"));
            assert!(header(r, "x-rh-identity").is_some());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_fails_stays_stored_until_the_broker_takes_it() {
    for db in databases().await {
        let s = setup("outbox-down", 1).await;
        let outbox = db.open().await;
        let ctx = Context::new().for_org("org-b");

        // No broker at this address: every send times out.
        let mut unreachable = s.config.clone();
        unreachable.bootstrap_servers = "127.0.0.1:1".to_owned();
        unreachable
            .librdkafka
            .insert("message.timeout.ms".to_owned(), "1500".to_owned());
        let down = Producer::new(&unreachable, common::catalog(), Metrics::new()).unwrap();
        let err = outbox
            .produce(&down, TODO, &event(7, "org-b"), &ctx)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Kafka { .. }), "{err}");
        assert_eq!(
            outbox.pending().await.unwrap(),
            1,
            "{}: a failed send must not lose the message",
            db.url
        );
        let why = outbox.last_error().await.unwrap().unwrap_or_default();
        assert!(why.contains("delivering"), "{why}");

        let report = outbox.relay(&down, &RelayOptions::default()).await.unwrap();
        assert_eq!((report.sent, report.failed), (0, 1), "{report:?}");
        assert_eq!(outbox.pending().await.unwrap(), 1);

        let up = Producer::new(&s.config, common::catalog(), Metrics::new()).unwrap();
        let report = outbox.relay(&up, &RelayOptions::default()).await.unwrap();
        assert_eq!((report.sent, report.failed), (1, 0), "{report:?}");
        assert_eq!(outbox.pending().await.unwrap(), 0);

        // The direct path: stored, sent, deleted.
        let d = outbox
            .produce(&up, TODO, &event(8, "org-b"), &ctx)
            .await
            .unwrap();
        assert_eq!(d.topic, s.topic);
        assert_eq!(outbox.pending().await.unwrap(), 0);

        let back = read_all(&s.broker, &s.topic, 3, Duration::from_secs(15)).await;
        assert_eq!(sorted_ids(&back), [7, 8], "{}", db.url);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_event_is_refused_and_never_stored() {
    let s = setup("outbox-invalid", 1).await;
    let producer = Producer::new(&s.config, common::catalog(), Metrics::new()).unwrap();
    for db in databases().await {
        let outbox = db.open().await;
        let bad = json!({"id": 1.5, "org_id": "org-c", "title": "t", "created_at": "2026-11-01T09:30:00Z"});
        let err = outbox
            .produce(&producer, TODO, &bad, &Context::new().for_org("org-c"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Schema(_)), "{err}");
        assert!(err.to_string().contains("/id"), "{err}");
        assert_eq!(outbox.pending().await.unwrap(), 0, "{}", db.url);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_cannot_be_read_is_kept_and_does_not_block_the_rows_behind_it() {
    for db in databases().await {
        let s = setup("outbox-damaged", 1).await;
        let outbox = db.open().await;
        let payload = if db.is_postgres() {
            "'\\x7b7d'::bytea"
        } else {
            "x'7b7d'"
        };
        db.execute(&format!(
            "INSERT INTO evkit_outbox (topic, key, headers, payload, created_at_ms) \
             VALUES ('{TODO}', NULL, 'not json', {payload}, 0)"
        ))
        .await;
        let producer = Producer::new(&s.config, common::catalog(), Metrics::new()).unwrap();
        let ctx = Context::new().for_org("org-d");
        outbox
            .add(&producer.prepare(TODO, &event(9, "org-d"), &ctx).unwrap())
            .await
            .unwrap();
        let report = outbox
            .relay(&producer, &RelayOptions::default())
            .await
            .unwrap();
        assert_eq!((report.sent, report.unreadable), (1, 1), "{report:?}");
        assert_eq!(
            outbox.pending().await.unwrap(),
            1,
            "{}: the damaged row is kept, not dropped",
            db.url
        );
        let why = outbox.last_error().await.unwrap().unwrap_or_default();
        assert!(why.contains("outbox row 1: headers"), "{why}");
        let back = read_all(&s.broker, &s.topic, 2, Duration::from_secs(10)).await;
        assert_eq!(sorted_ids(&back), [9], "{}", db.url);
    }
}

/// Relays running at once (two clones of one outbox and another connection, as another replica
/// of the service or `evkit outbox --relay` would hold) send every message exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_relays_send_each_message_once() {
    const N: u64 = 60;
    for db in databases().await {
        let s = setup("outbox-relays", 2).await;
        let producer = Producer::new(&s.config, common::catalog(), Metrics::new()).unwrap();
        let ctx = Context::new().for_org("org-c");
        let first = db.open().await;
        for id in 1..=N {
            let m = producer.prepare(TODO, &event(id, "org-c"), &ctx).unwrap();
            first.add(&m).await.unwrap();
        }
        let clone = first.clone();
        let other = db.open().await;
        let options = RelayOptions {
            batch: 4,
            ..RelayOptions::default()
        };
        let (a, b, c) = tokio::join!(
            first.relay(&producer, &options),
            clone.relay(&producer, &options),
            other.relay(&producer, &options),
        );
        let reports = [a.unwrap(), b.unwrap(), c.unwrap()];
        let summary: Vec<(u64, bool)> = reports.iter().map(|r| (r.sent, r.busy)).collect();
        assert!(
            summary.iter().any(|(_, busy)| *busy),
            "{}: passes at the same time must find the relay busy: (sent, busy) {summary:?}",
            db.url
        );
        assert!(
            summary.iter().all(|(sent, busy)| !busy || *sent == 0),
            "{summary:?}"
        );
        let mut sent: u64 = summary.iter().map(|(sent, _)| sent).sum();
        // Whatever the first passes left (none, unless a pass started after another finished).
        sent += other.relay(&producer, &options).await.unwrap().sent;
        assert_eq!(sent, N, "{}: (sent, busy) {summary:?}", db.url);
        assert_eq!(first.pending().await.unwrap(), 0);

        let back = read_all(
            &s.broker,
            &s.topic,
            usize::try_from(N).unwrap() + 5,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(
            sorted_ids(&back),
            (1..=N).collect::<Vec<_>>(),
            "{}: every message exactly once",
            db.url
        );
    }
}

/// A SQLite relay pass holds `<database>-relay.lock`: while another process holds it (here a
/// file lock the test takes, as `evkit outbox --relay` would), a pass sends nothing and reports
/// busy; once it is released, the next pass sends everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_relay_waits_for_another_process_holding_the_lock_file() {
    let s = setup("outbox-lockfile", 1).await;
    let producer = Producer::new(&s.config, common::catalog(), Metrics::new()).unwrap();
    let ctx = Context::new().for_org("org-l");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.db");
    let outbox = Outbox::open(&path).unwrap();
    for id in 1..=3 {
        let m = producer.prepare(TODO, &event(id, "org-l"), &ctx).unwrap();
        outbox.add(&m).await.unwrap();
    }
    let lock_path = format!("{}-relay.lock", path.display());
    let holder = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    holder.lock().unwrap();

    let report = outbox
        .relay(&producer, &RelayOptions::default())
        .await
        .unwrap();
    assert!(report.busy, "{report:?}");
    assert_eq!(report.sent, 0);
    assert_eq!(outbox.pending().await.unwrap(), 3);

    holder.unlock().unwrap();
    let report = outbox
        .relay(&producer, &RelayOptions::default())
        .await
        .unwrap();
    assert!(!report.busy, "{report:?}");
    assert_eq!(report.sent, 3);
    assert_eq!(outbox.pending().await.unwrap(), 0);
    // The pass released the lock when it ended.
    holder.try_lock().unwrap();
    let back = read_all(&s.broker, &s.topic, 5, Duration::from_secs(10)).await;
    assert_eq!(sorted_ids(&back), [1, 2, 3]);
}

/// When PostgreSQL drops the outbox's connection (a restart, an idle timeout, an administrator),
/// the outbox connects again on its next call: messages are stored and relayed without
/// reopening it. Runs when CI names a PostgreSQL server in `EVKIT_POSTGRES_URL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outbox_reconnects_after_the_server_drops_it() {
    let Some(db) = databases().await.into_iter().find(Db::is_postgres) else {
        return;
    };
    let s = setup("outbox-reconnect", 1).await;
    let producer = Producer::new(&s.config, common::catalog(), Metrics::new()).unwrap();
    let ctx = Context::new().for_org("org-r");
    let outbox = db.open().await;
    let m = producer.prepare(TODO, &event(1, "org-r"), &ctx).unwrap();
    outbox.add(&m).await.unwrap();

    // Terminate every other session on the test database: the outbox's connection.
    let admin = std::env::var("EVKIT_POSTGRES_URL").unwrap();
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let name = db.url.rsplit_once('/').unwrap().1;
    let killed: i64 = client
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1, "the outbox holds one connection");

    // A call racing the termination may fail; a later one reconnects.
    let mut stored = None;
    for _ in 0..50 {
        let m = producer.prepare(TODO, &event(2, "org-r"), &ctx).unwrap();
        match outbox.add(&m).await {
            Ok(id) => {
                stored = Some(id);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(stored.is_some(), "the outbox never reconnected");
    assert_eq!(outbox.pending().await.unwrap(), 2);
    let report = outbox
        .relay(&producer, &RelayOptions::default())
        .await
        .unwrap();
    assert_eq!((report.sent, report.busy), (2, false), "{report:?}");
    let back = read_all(&s.broker, &s.topic, 4, Duration::from_secs(5)).await;
    assert_eq!(sorted_ids(&back), [1, 2]);
}

/// Every cause in an error's chain, for assertions on what a failure says.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// TLS to the outbox's PostgreSQL, with libpq's `sslmode` and `sslrootcert`. Runs when CI names
/// a server with a self-signed certificate (`EVKIT_POSTGRES_URL`, its CA in
/// `EVKIT_POSTGRES_CA`; the certificate names `localhost` only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outbox_connects_over_tls_and_checks_the_server_certificate() {
    let (Ok(admin), Ok(ca)) = (
        std::env::var("EVKIT_POSTGRES_URL"),
        std::env::var("EVKIT_POSTGRES_CA"),
    ) else {
        eprintln!(
            "outbox over TLS: not run here, EVKIT_POSTGRES_URL and EVKIT_POSTGRES_CA are not set \
             (CI sets them)"
        );
        return;
    };
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // postgres://user@127.0.0.1:PORT/db → the same server by name (`localhost`) and by address.
    let rest = admin.split_once("://").unwrap().1;
    let (user, rest) = rest.split_once('@').unwrap();
    let (hostport, db) = rest.split_once('/').unwrap();
    let port = hostport.rsplit_once(':').unwrap().1;
    let url = |host: &str, params: &str| format!("postgres://{user}@{host}:{port}/{db}?{params}");
    // Whether the server sees the outbox's session (by application name) as TLS.
    let on_tls = |app: &'static str| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "SELECT bool_and(s.ssl), count(*) FROM pg_stat_ssl s
                     JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
                    &[&app],
                )
                .await
                .unwrap();
            let n: i64 = row.get(1);
            assert!(n >= 1, "no session named {app}");
            row.get::<_, Option<bool>>(0).unwrap_or(false)
        }
    };

    // verify-full by name with the CA: TLS, and the outbox works.
    let outbox = Outbox::connect(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}&application_name=evkit_tls_full"),
    ))
    .await
    .unwrap();
    assert_eq!(outbox.pending().await.unwrap(), 0);
    assert!(on_tls("evkit_tls_full").await, "verify-full is TLS");
    // verify-ca by address: the chain is checked, the name is not.
    let by_address = Outbox::connect(&url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}&application_name=evkit_tls_ca"),
    ))
    .await
    .unwrap();
    assert!(on_tls("evkit_tls_ca").await, "verify-ca is TLS");
    // The control: sslmode=disable is seen as plain text by the same check.
    let plain = Outbox::connect(&url(
        "127.0.0.1",
        "sslmode=disable&application_name=evkit_tls_off",
    ))
    .await
    .unwrap();
    assert!(
        !on_tls("evkit_tls_off").await,
        "sslmode=disable is plain text"
    );

    // verify-full by address: the certificate names localhost only.
    let err = Outbox::connect(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .unwrap_err();
    let text = causes(&err);
    assert!(text.contains("certificate verify failed"), "{text}");
    assert!(text.contains("IP address mismatch"), "{text}");
    // verify-ca against the system's CAs, which do not include the self-signed one.
    let err = Outbox::connect(&url("localhost", "sslmode=verify-ca"))
        .await
        .unwrap_err();
    let text = causes(&err);
    assert!(text.contains("certificate verify failed"), "{text}");
    drop((outbox, by_address, plain));
}

/// A bad `sslmode` or CA file is a clear error that never repeats the URL's password.
#[tokio::test]
async fn a_bad_tls_setting_names_itself_and_not_the_password() {
    let err = Outbox::connect("postgres://svc:s3cret-pw@127.0.0.1:1/db?sslmode=verify-everything")
        .await
        .unwrap_err();
    let text = causes(&err);
    assert!(text.contains("sslmode `verify-everything`"), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
    let err = Outbox::connect(
        "postgres://svc:s3cret-pw@127.0.0.1:1/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
    )
    .await
    .unwrap_err();
    let text = causes(&err);
    assert!(text.contains("sslrootcert /nonexistent/ca.pem"), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
}
