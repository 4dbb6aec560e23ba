//! The example service end to end against a real broker (embedded, or `EVKIT_BOOTSTRAP`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;

#[test]
fn the_demo_stores_announces_dead_letters_and_commits_everything() {
    let out = Command::cargo_bin("todo-service")
        .unwrap()
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(["--demo", "60", "--broken", "8"])
        .timeout(std::time::Duration::from_secs(180))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("stored         60 todos"), "{out}");
    assert!(
        out.contains(
            "announced      60 on platform.evkit.todo-indexed (0 invalid; 0 left in the outbox)"
        ),
        "{out}"
    );
    assert!(
        out.contains(r#"dead-lettered  8 {"validation": 8}"#),
        "{out}"
    );
    assert!(
        out.contains(r#"evkit_produced_total{topic="platform.evkit.todo-indexed"} 60"#),
        "{out}"
    );
    assert!(out.contains("OK: every message"), "{out}");
}

#[test]
fn a_missing_catalog_is_an_error_not_a_panic() {
    let assert = Command::cargo_bin("todo-service")
        .unwrap()
        .args(["--demo", "1", "--catalog", "/nonexistent/catalog"])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(err.contains("/nonexistent/catalog"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Logs written to a pipe carry no ANSI colour codes.
#[test]
fn logs_to_a_pipe_are_plain_text() {
    let assert = Command::cargo_bin("todo-service")
        .unwrap()
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("RUST_LOG", "info")
        .args(["--demo", "5"])
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("INFO"), "some logs: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escapes in piped logs: {stderr}"
    );
}
