//! `evkit dev` with `evkit produce/consume`, Debian's kcat and Python's kafka-python as clients.
//! Third-party clients are required when `EVKIT_REQUIRE_THIRD_PARTY=1` (CI installs them);
//! elsewhere a missing one is reported as skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt as _;

const TODO: &str = "platform.evkit.todo-created";

fn catalog_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))
}

/// An `evkit dev` child process; killed on drop so a failing test leaves nothing behind.
struct Dev {
    child: Child,
    bootstrap: String,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_dev() -> Dev {
    start_dev_on(&format!("127.0.0.1:{}", free_port()))
}

fn start_dev_on(listen: &str) -> Dev {
    let bootstrap = listen.to_owned();
    let mut child = Command::cargo_bin("evkit")
        .unwrap()
        .arg("--catalog")
        .arg(catalog_dir())
        .args(["dev", "--listen", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut dev = Dev { child, bootstrap };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("evkit dev never became ready");
        if let Some(rest) = line.split("Kafka ready on ").nth(1) {
            let addr = rest.split(' ').next().unwrap_or_default().to_owned();
            if !listen.starts_with("localhost") {
                assert_eq!(addr, dev.bootstrap, "{line}");
            }
            // A host name resolves to the address evkit dev reports.
            dev.bootstrap = addr;
            return dev;
        }
    }
}

fn evkit(dev: &Dev) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("evkit").unwrap();
    cmd.arg("--catalog")
        .arg(catalog_dir())
        .env("EVKIT_BOOTSTRAP", &dev.bootstrap);
    cmd.timeout(Duration::from_secs(60));
    cmd
}

fn identity(org: &str) -> String {
    evkit_schema::encode_identity(org, "User")
}

fn available(tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("EVKIT_REQUIRE_THIRD_PARTY").is_err(),
            "{tool} is required here (EVKIT_REQUIRE_THIRD_PARTY is set) but not installed"
        );
        println!("skipped: {tool} is not installed");
    }
    ok
}

/// A consumed message's payload (shown as the exact text it was), read as JSON.
fn payload(message: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(message["payload"].as_str().expect("a text payload")).unwrap()
}

fn consume_json(dev: &Dev, count: usize) -> Vec<serde_json::Value> {
    consume_json_with(dev, count, &[])
}

/// `evkit consume` of the todo topic from the beginning as JSON lines, with `extra` arguments.
fn consume_json_with(dev: &Dev, count: usize, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = evkit(dev)
        .args([
            "consume",
            "--topic",
            TODO,
            "--from-beginning",
            "--format",
            "json",
            "--idle-timeout",
            "10",
        ])
        .args(["--count", &count.to_string()])
        .args(extra)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn produce_validates_and_consume_reports_verdicts() {
    let dev = start_dev();
    let valid = r#"{"id": 1, "org_id": "12345", "title": "valid one", "created_at": "2026-11-01T09:30:00Z"}"#;
    evkit(&dev)
        .args([
            "produce", "--topic", TODO, "--key", "12345", "--org-id", "12345",
        ])
        .write_stdin(valid)
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "produced to platform.evkit.todo-created",
        ));
    // Invalid: refused before sending.
    evkit(&dev)
        .args([
            "produce", "--topic", TODO, "--key", "12345", "--org-id", "12345",
        ])
        .write_stdin(r#"{"id": 1.5}"#)
        .assert()
        .code(1)
        .stdout(predicates::str::is_empty())
        .stderr(predicates::str::contains("not sent"));
    // Forced through: the consumer shows it as invalid.
    evkit(&dev)
        .args(["produce", "--topic", TODO, "--no-validate"])
        .write_stdin("not json")
        .assert()
        .success();
    let messages = consume_json(&dev, 2);
    assert_eq!(messages.len(), 2, "{messages:?}");
    let good = messages
        .iter()
        .find(|m| m["valid"] == true)
        .expect("the valid message");
    assert_eq!(payload(good)["title"], "valid one");
    assert_eq!(good["key"], "12345");
    let id = good["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "x-rh-identity")
        .unwrap();
    assert_eq!(id["value"]["org_id"], "12345");
    assert!(
        !serde_json::to_string(good)
            .unwrap()
            .contains(&identity("12345")),
        "identity not masked"
    );
    let bad = messages
        .iter()
        .find(|m| m["valid"] == false)
        .expect("the invalid message");
    let rules: Vec<&str> = bad["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"json") && rules.contains(&"required"),
        "{rules:?}"
    );
}

#[test]
fn kcat_produces_to_and_consumes_from_evkit_dev() {
    if !available("kcat", &["-V"]) {
        return;
    }
    let dev = start_dev();
    let id = identity("777");
    let sent =
        r#"{"id": 7, "org_id": "777", "title": "from kcat", "created_at": "2026-11-01T09:30:00Z"}"#;
    let mut kcat = Command::new("kcat")
        .args(["-b", &dev.bootstrap, "-P", "-t", TODO, "-k", "777"])
        .args([
            "-H",
            &format!("x-rh-identity={id}"),
            "-H",
            "x-rh-insights-request-id=kcat-1",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(kcat.stdin.as_mut().unwrap(), sent.as_bytes()).unwrap();
    drop(kcat.stdin.take());
    assert!(kcat.wait().unwrap().success());

    let messages = consume_json(&dev, 1);
    assert_eq!(messages[0]["payload"], sent, "the exact bytes kcat sent");
    assert_eq!(messages[0]["valid"], true, "{}", messages[0]);

    let out = Command::new("timeout")
        .args([
            "60",
            "kcat",
            "-b",
            &dev.bootstrap,
            "-C",
            "-t",
            TODO,
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k %s\n",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("777 {\"id\": 7"), "{text}");
}

#[test]
fn kafka_python_produces_to_and_consumes_from_evkit_dev() {
    if !available("python3", &["-c", "import kafka"]) {
        return;
    }
    let dev = start_dev();
    evkit(&dev)
        .args(["produce", "--topic", TODO, "--key", "12345", "--org-id", "12345"])
        .write_stdin(r#"{"id": 2, "org_id": "12345", "title": "from evkit", "created_at": "2026-11-01T09:30:00Z"}"#)
        .assert()
        .success();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/kafka_python_roundtrip.py"
    );
    let out = Command::new("timeout")
        .args([
            "120",
            "python3",
            script,
            &dev.bootstrap,
            TODO,
            &identity("31337"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kafka-python failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(r#"consumed ["from evkit", "from kafka-python"]"#),
        "{text}"
    );
    let messages = consume_json(&dev, 2);
    let py = messages
        .iter()
        .find(|m| payload(m)["title"] == "from kafka-python")
        .unwrap();
    assert_eq!(py["valid"], true, "{py}");
}

#[test]
fn a_taken_port_and_an_absent_broker_are_clear_errors() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_cmd::Command::cargo_bin("evkit")
        .unwrap()
        .arg("--catalog")
        .arg(catalog_dir())
        .args(["dev", "--listen", &addr])
        .timeout(Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicates::str::contains(format!(
            "cannot listen on {addr}"
        )))
        // The cause is said once, not repeated by each error that wraps it.
        .stderr(predicates::function::function(|err: &str| {
            err.matches("Address already in use").count() == 1
        }));
    let nobody = format!("127.0.0.1:{}", free_port());
    assert_cmd::Command::cargo_bin("evkit")
        .unwrap()
        .arg("--catalog")
        .arg(catalog_dir())
        .args(["consume", "--topic", TODO, "--bootstrap", &nobody])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicates::str::contains(format!(
            "no Kafka broker answered at {nobody}"
        )));
}

#[test]
fn sigterm_stops_evkit_dev_cleanly() {
    let mut dev = start_dev();
    let pid = dev.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = dev.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "evkit dev ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
    let addr: std::net::SocketAddr = dev.bootstrap.parse().unwrap();
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
        "port still open"
    );
}

#[test]
fn tail_reads_every_catalog_topic() {
    let dev = start_dev();
    evkit(&dev)
        .args(["produce", "--topic", TODO, "--key", "12345", "--org-id", "12345"])
        .write_stdin(r#"{"id": 3, "org_id": "12345", "title": "tailed", "created_at": "2026-11-01T09:30:00Z"}"#)
        .assert()
        .success();
    evkit(&dev)
        .args([
            "produce",
            "--topic",
            "platform.notifications.ingress",
            "--no-validate",
        ])
        .write_stdin(r#"{"specversion": "1.0"}"#)
        .assert()
        .success();
    let out = evkit(&dev)
        .args([
            "tail",
            "--from-beginning",
            "--count",
            "2",
            "--idle-timeout",
            "15",
            "--format",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut topics: Vec<&str> = lines.iter().map(|m| m["topic"].as_str().unwrap()).collect();
    topics.sort_unstable();
    assert_eq!(
        topics,
        [
            "platform.evkit.todo-created",
            "platform.notifications.ingress"
        ]
    );
    let notification = lines
        .iter()
        .find(|m| m["topic"] == "platform.notifications.ingress")
        .unwrap();
    assert_eq!(notification["valid"], false, "{notification}");
}

#[test]
fn fuzz_publishes_generated_messages_and_consume_sees_the_same_verdicts() {
    let dev = start_dev();
    let out = evkit(&dev)
        .args([
            "fuzz",
            "--topic",
            TODO,
            "--count",
            "20",
            "--invalid-ratio",
            "0.25",
            "--seed",
            "11",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("sent 20 messages to platform.evkit.todo-created"),
        "{out}"
    );
    assert!(out.contains("    15  valid"), "{out}");
    let messages = consume_json(&dev, 20);
    assert_eq!(messages.len(), 20);
    let invalid = messages.iter().filter(|m| m["valid"] == false).count();
    assert_eq!(invalid, 5, "a quarter of the fuzz messages break a rule");
}

#[test]
fn outbox_reports_and_relays_what_a_service_left_behind() {
    let dev = start_dev();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("service.db");
    // What a service stored and could not send before it stopped.
    {
        let catalog = std::sync::Arc::new(evkit_schema::Catalog::load(catalog_dir()).unwrap());
        let config = evkit::Config {
            bootstrap_servers: "127.0.0.1:1".to_owned(),
            ..evkit::Config::default()
        };
        let producer = evkit::Producer::new(&config, catalog, evkit::Metrics::new()).unwrap();
        let outbox = evkit::outbox::Outbox::open(&db).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        for id in [41, 42] {
            let event = serde_json::json!({
                "id": id, "org_id": "12345", "title": format!("stored {id}"),
                "created_at": "2026-11-01T09:30:00Z"
            });
            let m = producer
                .prepare(TODO, &event, &evkit::Context::new().for_org("12345"))
                .unwrap();
            rt.block_on(outbox.add(&m)).unwrap();
        }
    }
    let run = |extra: &[&str], ok: bool| -> serde_json::Value {
        let assert = evkit(&dev)
            .args(["outbox", "--db", db.to_str().unwrap(), "--format", "json"])
            .args(extra)
            .assert();
        let assert = if ok { assert.success() } else { assert.code(1) };
        serde_json::from_slice(&assert.get_output().stdout).unwrap()
    };
    let status = run(&[], false);
    assert_eq!(status["pending"], 2, "{status}");
    assert_eq!(status["sent"], serde_json::Value::Null, "{status}");
    let relayed = run(&["--relay"], true);
    assert_eq!(relayed["sent"], 2, "{relayed}");
    assert_eq!(relayed["pending"], 0, "{relayed}");
    let messages = consume_json(&dev, 2);
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.iter().all(|m| m["valid"] == true), "{messages:?}");
    evkit(&dev)
        .args([
            "outbox",
            "--db",
            dir.path().join("absent.db").to_str().unwrap(),
        ])
        .assert()
        .failure()
        .stderr(predicates::str::contains("no such database"));
}

#[test]
fn replay_sends_dead_lettered_messages_back_once() {
    let dev = start_dev();
    let dlq = format!("{TODO}.dlq");
    let dead_letter = |payload: &str| {
        evkit(&dev)
            .args([
                "produce",
                "--topic",
                &dlq,
                "--no-validate",
                "--key",
                "12345",
            ])
            .args(["--org-id", "12345"])
            .args(["--header", &format!("evkit-dlq-original-topic={TODO}")])
            .args(["--header", "evkit-dlq-reason=rejected"])
            .args(["--header", "x-rh-insights-request-id=replayed-1"])
            .write_stdin(payload.to_owned())
            .assert()
            .success();
    };
    dead_letter(
        r#"{"id": 7, "org_id": "12345", "title": "fixed since", "created_at": "2026-11-01T09:30:00Z"}"#,
    );
    dead_letter(
        r#"{"id": 7.5, "org_id": "12345", "title": "still broken", "created_at": "2026-11-01T09:30:00Z"}"#,
    );
    let replay = |extra: &[&str]| -> serde_json::Value {
        let out = evkit(&dev)
            .args([
                "replay",
                "--from",
                &dlq,
                "--format",
                "json",
                "--idle-timeout",
                "3",
            ])
            .args(extra)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).unwrap()
    };
    let dry = replay(&["--dry-run"]);
    assert_eq!(dry["read"], 2, "{dry}");
    assert_eq!(dry["replayed"][TODO], 1, "{dry}");
    let done = replay(&[]);
    assert_eq!(done["replayed"][TODO], 1, "{done}");
    assert_eq!(done["still_invalid"][TODO], 1, "{done}");
    // Committed: a second run reads nothing.
    let again = replay(&[]);
    assert_eq!(again["read"], 0, "{again}");
    // The valid one is back on its topic, without the dead-letter headers.
    let messages = consume_json(&dev, 1);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["valid"], true, "{}", messages[0]);
    assert_eq!(payload(&messages[0])["title"], "fixed since");
    let names: Vec<&str> = messages[0]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("evkit-dlq-")),
        "{names:?}"
    );
}

#[test]
fn a_named_group_goes_on_where_the_last_run_stopped() {
    let dev = start_dev();
    let produce = |id: u32| {
        evkit(&dev)
            .args(["produce", "--topic", TODO, "--key", "12345", "--org-id", "12345"])
            .write_stdin(format!(
                r#"{{"id": {id}, "org_id": "12345", "title": "todo {id}", "created_at": "2026-11-01T09:30:00Z"}}"#
            ))
            .assert()
            .success();
    };
    let read = || consume_json_with(&dev, 5, &["--group", "cli-readers"]);
    produce(1);
    let first = read();
    assert_eq!(first.len(), 1, "{first:?}");
    produce(2);
    // The same group again, soon after: assigned at once, and only what is new.
    let second = read();
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(payload(&second[0])["title"], "todo 2");
}

/// `evkit consume … | head -1`: the reader closes the pipe after one line; evkit ends quietly
/// (exit 0, nothing on stderr) instead of panicking.
#[test]
fn consume_ends_quietly_when_its_reader_goes_away() {
    let dev = start_dev();
    evkit(&dev)
        .args(["fuzz", "--topic", TODO, "--count", "300", "--seed", "3"])
        .assert()
        .success();
    let mut child = Command::cargo_bin("evkit")
        .unwrap()
        .arg("--catalog")
        .arg(catalog_dir())
        .env("EVKIT_BOOTSTRAP", &dev.bootstrap)
        .args([
            "consume",
            "--topic",
            TODO,
            "--from-beginning",
            "--count",
            "300",
        ])
        .args(["--idle-timeout", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    // The reader is gone (dropped above); evkit must notice on its next write.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `consume` of a topic the broker does not have: exit 2 at once with a clear message, with
/// `--idle-timeout` and with `--count` (which waited forever before); `produce` likewise.
#[test]
fn a_missing_topic_is_a_clear_error() {
    let dev = start_dev();
    for extra in [["--idle-timeout", "5"], ["--count", "1"]] {
        evkit(&dev)
            .args(["consume", "--topic", "platform.evkit.nope"])
            .args(extra)
            .timeout(Duration::from_secs(30))
            .assert()
            .code(2)
            .stderr(predicates::str::contains(
                "topic `platform.evkit.nope` does not exist on",
            ));
    }
    evkit(&dev)
        .args(["produce", "--topic", "platform.evkit.nope", "--no-validate"])
        .write_stdin("{}")
        .timeout(Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("does not exist"));
}

/// `consume` shows what was on the wire, as kcat does: the payload's exact text (big numbers,
/// duplicate keys, key order and `1e3` kept), base64 when it is not UTF-8, header values as
/// strings, and the record's timestamp.
#[test]
fn consume_shows_the_exact_bytes() {
    let dev = start_dev();
    let text = r#"{"b":1e3,"a":123456789012345678901234,"a":"dup","n":null}"#;
    evkit(&dev)
        .args(["produce", "--topic", TODO, "--no-validate", "--key", "one"])
        .args([
            "--header",
            "x-n=1e3",
            "--header",
            "x-s=null",
            "--header",
            "x-big=12345678901234567890123",
        ])
        .write_stdin(text)
        .assert()
        .success();
    evkit(&dev)
        .args(["produce", "--topic", TODO, "--no-validate", "--key", "one"])
        .write_stdin(b"\xff\xfe not utf-8".to_vec())
        .assert()
        .success();
    let messages = consume_json(&dev, 2);
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["payload"], text, "{}", messages[0]);
    let header = |name: &str| {
        messages[0]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == name)
            .map(|h| h["value"].clone())
            .unwrap()
    };
    assert_eq!(header("x-n"), "1e3");
    assert_eq!(header("x-s"), "null");
    assert_eq!(header("x-big"), "12345678901234567890123");
    assert!(messages[0]["timestamp"]["ms"].as_i64().unwrap() > 1_600_000_000_000);
    assert_eq!(
        messages[1]["payload"]["base64"],
        base64_of(b"\xff\xfe not utf-8"),
        "{}",
        messages[1]
    );
    // The human format prints the same text.
    let out = evkit(&dev)
        .args([
            "consume",
            "--topic",
            TODO,
            "--from-beginning",
            "--count",
            "1",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(&format!("payload: {text}")), "{out}");
    assert!(out.contains("header x-n: 1e3"), "{out}");
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `replay` never waits unbounded and never sends what it cannot check: no broker and a
/// missing dead-letter topic are exit 2 within seconds, an unknown `--reason` is refused, and a
/// message for a topic outside the catalog stays unless `--allow-foreign`.
#[test]
fn replay_refuses_what_it_cannot_check() {
    let started = Instant::now();
    assert_cmd::Command::cargo_bin("evkit")
        .unwrap()
        .arg("--catalog")
        .arg(catalog_dir())
        .args(["replay", "--from", "x.dlq", "--bootstrap", "127.0.0.1:1"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no broker at 127.0.0.1:1"));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let dev = start_dev();
    let started = Instant::now();
    evkit(&dev)
        .args(["replay", "--from", "platform.nope.dlq"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "the dead-letter topic platform.nope.dlq does not exist",
        ));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    evkit(&dev)
        .args([
            "replay",
            "--from",
            &format!("{TODO}.dlq"),
            "--reason",
            "bogus",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("validation"));
    // A dead letter whose original topic is another team's, not in this catalog.
    evkit(&dev)
        .args([
            "produce",
            "--topic",
            &format!("{TODO}.dlq"),
            "--no-validate",
        ])
        .args(["--header", "evkit-dlq-original-topic=other.team.events"])
        .args(["--header", "evkit-dlq-reason=validation"])
        .write_stdin(r#"{"anything": true}"#)
        .assert()
        .success();
    let out = evkit(&dev)
        .args([
            "replay",
            "--from",
            &format!("{TODO}.dlq"),
            "--format",
            "json",
        ])
        .args(["--idle-timeout", "3", "--dry-run"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["foreign"]["other.team.events"], 1, "{report}");
    assert_eq!(report["replayed"], serde_json::json!({}), "{report}");
    let out = evkit(&dev)
        .args([
            "replay",
            "--from",
            &format!("{TODO}.dlq"),
            "--format",
            "json",
        ])
        .args(["--idle-timeout", "3", "--dry-run", "--allow-foreign"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["replayed"]["other.team.events"], 1, "{report}");
}

/// `produce` uses what the catalog knows: the key from the key pointer, and the CloudEvents
/// attributes of an enveloped topic (binary headers, or the structured envelope with the
/// `--dataschema` the topic dispatches on); a binary message without them names the missing
/// `ce_*` header.
#[test]
fn produce_derives_the_key_and_the_cloudevents_attributes() {
    const DOMAINS: &str = "platform.evkit.domain-registered";
    const NOTIFICATIONS: &str = "platform.notifications.ingress";
    let dev = start_dev();
    let schema = |topic: &str| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(catalog_dir().join(format!("{topic}.event.json"))).unwrap(),
        )
        .unwrap()
    };
    let domain = schema(DOMAINS)["examples"][0].to_string();
    evkit(&dev)
        .args(["produce", "--topic", DOMAINS, "--org-id", "12345"])
        .write_stdin(domain.clone())
        .assert()
        .success()
        .stderr(predicates::str::contains("key `12345` from /org_id"))
        .stderr(predicates::str::contains("ce_specversion"));
    let health = schema(NOTIFICATIONS)["examples"][0].to_string();
    evkit(&dev)
        .args(["produce", "--topic", NOTIFICATIONS])
        .write_stdin(health.clone())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("pass --dataschema"));
    evkit(&dev)
        .args(["produce", "--topic", NOTIFICATIONS, "--dataschema"])
        .arg("https://console.redhat.com/api/schemas/apps/rhel-idm/v1/domain-health-changed.json")
        .write_stdin(health)
        .assert()
        .success();
    for topic in [DOMAINS, NOTIFICATIONS] {
        let out = evkit(&dev)
            .args([
                "consume",
                "--topic",
                topic,
                "--from-beginning",
                "--format",
                "json",
            ])
            .args(["--count", "1", "--idle-timeout", "10"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let m: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(m["valid"], true, "{m}");
        if topic == DOMAINS {
            assert_eq!(m["key"], "12345", "{m}");
        }
    }
    // Validating a binary-mode message without its attributes names the header.
    evkit(&dev)
        .args([
            "validate", "--topic", DOMAINS, "--key", "12345", "--org-id", "12345",
        ])
        .args(["--header", "x-rh-insights-request-id=r-1"])
        .write_stdin(domain)
        .assert()
        .code(1)
        .stdout(predicates::str::contains(
            "header `ce_specversion` is missing",
        ));
}

/// `evkit dev --listen localhost:PORT` resolves the host name.
#[test]
fn dev_listens_on_a_host_name() {
    let dev = start_dev_on(&format!("localhost:{}", free_port()));
    evkit(&dev).arg("topics").assert().success();
}

/// `produce` and `fuzz` with `--format json`: one JSON object on stdout.
#[test]
fn produce_and_fuzz_speak_json() {
    let dev = start_dev();
    let todo =
        r#"{"id": 5, "org_id": "55", "title": "json", "created_at": "2026-11-01T09:30:00Z"}"#;
    let out = evkit(&dev)
        .args([
            "produce", "--topic", TODO, "--org-id", "55", "--format", "json",
        ])
        .write_stdin(todo)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (v["sent"].clone(), v["key"].clone()),
        (true.into(), "55".into()),
        "{v}"
    );
    assert!(v["offset"].is_i64(), "{v}");
    let out = evkit(&dev)
        .args(["produce", "--topic", TODO, "--format", "json"])
        .write_stdin(r#"{"id": 1.5}"#)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["sent"], false, "{v}");
    assert!(!v["violations"].as_array().unwrap().is_empty(), "{v}");
    let out = evkit(&dev)
        .args(["fuzz", "--topic", TODO, "--count", "10", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["sent"], 10, "{v}");
}

/// Admin clients create topics on `evkit dev` (the mock cluster alone has no `CreateTopics` and
/// names no controller): `bench --bootstrap` and `verify --bootstrap` (librdkafka's admin API
/// through the testkit), and kafka-python's `KafkaAdminClient`, each with the partition count
/// asked for.
#[test]
fn admin_clients_create_topics_on_evkit_dev() {
    let dev = start_dev();
    let out = evkit(&dev)
        .args([
            "bench",
            "--topic",
            TODO,
            "--messages",
            "200",
            "--partitions",
            "1,3",
        ])
        .args(["--format", "json", "--bootstrap", &dev.bootstrap])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let rows: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, partitions) in rows.iter().zip([1, 3]) {
        assert_eq!(row["partitions"], partitions, "{row}");
        assert_eq!(row["messages"], 200, "{row}");
        assert_eq!(
            row["per_partition"].as_object().unwrap().len(),
            partitions,
            "every partition of the created topic got messages: {row}"
        );
    }
    evkit(&dev)
        .args([
            "verify",
            "--count",
            "3",
            "--invalid",
            "1",
            "--bootstrap",
            &dev.bootstrap,
        ])
        .arg("--contracts")
        .arg(catalog_dir().join("../contracts"))
        .timeout(Duration::from_secs(300))
        .assert()
        .success();
    if !available("python3", &["-c", "import kafka"]) {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kafka_python_admin.py");
    let out = Command::new("timeout")
        .args([
            "120",
            "python3",
            script,
            &dev.bootstrap,
            "evkit.admin.python",
            "5",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kafka-python admin failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("created evkit.admin.python partitions=5"),
        "{text}"
    );
    assert!(
        text.contains("exists"),
        "a second create is refused: {text}"
    );
}

/// The broker goes away under `consume --group` and `replay`, after they read and before they
/// commit: each ends within its 10 s commit deadline (exit 2, saying what comes again) instead
/// of waiting for a coordinator that never answers.
///
/// The broker is killed once the command shows it read a message (`consume` prints it, `replay`
/// reports its first), not after a fixed pause: a group join slower than the pause left the
/// job waiting for partitions instead (CI, stop 31: `got no partition ... within 30 s`).
#[test]
fn consumers_stop_in_bounded_time_when_the_broker_is_gone() {
    let run_then_kill_broker = |args: &[&str], prepare: &dyn Fn(&Dev), read: (bool, &str)| {
        let mut dev = start_dev();
        prepare(&dev);
        let mut child = Command::cargo_bin("evkit")
            .unwrap()
            .arg("--catalog")
            .arg(catalog_dir())
            .env("EVKIT_BOOTSTRAP", &dev.bootstrap)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let readers = [
            lines_to(child.stdout.take().unwrap(), false, tx.clone()),
            lines_to(child.stderr.take().unwrap(), true, tx),
        ];
        // Read, then idle: the broker goes before the idle timeout ends and the commit starts.
        let mut stderr = String::new();
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            let Ok((is_stderr, line)) =
                rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                panic!("{args:?} showed no message read within 45 s: {stderr}");
            };
            if is_stderr {
                stderr.push_str(&line);
                stderr.push('\n');
            }
            if is_stderr == read.0 && line.starts_with(read.1) {
                break;
            }
        }
        let _ = dev.child.kill();
        let _ = dev.child.wait();
        let started = Instant::now();
        let status = child.wait().unwrap();
        let took = started.elapsed();
        for reader in readers {
            reader.join().unwrap();
        }
        stderr.extend(rx.try_iter().filter(|(e, _)| *e).map(|(_, l)| l + "\n"));
        assert!(
            took < Duration::from_secs(25),
            "{args:?} took {took:?}: {stderr}"
        );
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        // The broker refused the commit at once, or never answered within the deadline.
        assert!(
            stderr.contains("did not confirm the commit") || stderr.contains("committing"),
            "{args:?}: {stderr}"
        );
    };
    run_then_kill_broker(
        &[
            "consume",
            "--topic",
            TODO,
            "--from-beginning",
            "--group",
            "bounded",
        ]
        .iter()
        .chain(&["--idle-timeout", "5"])
        .copied()
        .collect::<Vec<_>>(),
        &|dev| {
            evkit(dev)
                .args([
                    "fuzz",
                    "--topic",
                    TODO,
                    "--count",
                    "20",
                    "--invalid-ratio",
                    "0",
                ])
                .assert()
                .success();
        },
        // A message shown on stdout.
        (false, "--- "),
    );
    let dlq = format!("{TODO}.dlq");
    run_then_kill_broker(
        &["replay", "--from", &dlq, "--idle-timeout", "5"],
        &|dev| {
            evkit(dev)
                .args(["produce", "--topic", &dlq, "--no-validate"])
                .args(["--header", &format!("evkit-dlq-original-topic={TODO}")])
                .args(["--header", "evkit-dlq-reason=validation"])
                .write_stdin("{}")
                .assert()
                .success();
        },
        (true, "replay: read 1,"),
    );
}

/// Sends each line of `from` to `to`, tagged with `is_stderr`.
fn lines_to(
    from: impl std::io::Read + Send + 'static,
    is_stderr: bool,
    to: std::sync::mpsc::Sender<(bool, String)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            let _ = to.send((is_stderr, line));
        }
    })
}
