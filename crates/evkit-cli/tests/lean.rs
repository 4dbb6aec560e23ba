//! The dependency trees users get: the `evkit` binary ships no test frameworks, and the `evkit`
//! runtime without default features links no database, HTTP server or HTTP client. Asked of
//! `cargo tree` (offline: the lock file already names every package).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::process::Command;

/// The packages in the normal (non-dev, non-build) dependency tree of `package`.
fn tree(package: &str, extra: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree -p {package} {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_evkit_binary_ships_no_test_frameworks() {
    let deps = tree("evkit-cli", &[]);
    // The check can fail: the workspace as a whole does link them.
    assert!(deps.contains("evkit-testkit"), "{deps:?}");
    for framework in ["cucumber", "testcontainers", "testcontainers-modules"] {
        assert!(
            !deps.contains(framework),
            "the evkit binary links {framework}"
        );
    }
    let with = tree("evkit-testkit", &[]);
    assert!(
        with.contains("cucumber") && with.contains("testcontainers"),
        "{with:?}"
    );
}

#[test]
fn the_runtime_without_default_features_is_lean() {
    let lean = tree("evkit", &["--no-default-features"]);
    assert!(
        lean.contains("rdkafka") && lean.contains("evkit-schema"),
        "{lean:?}"
    );
    for heavy in [
        "rusqlite",
        "tokio-postgres",
        "axum",
        "reqwest",
        "postgres-openssl",
    ] {
        assert!(
            !lean.contains(heavy),
            "evkit without default features links {heavy}"
        );
    }
    let default = tree("evkit", &[]);
    for wanted in ["rusqlite", "axum"] {
        assert!(default.contains(wanted), "evkit's defaults lack {wanted}");
    }
    for extra in ["tokio-postgres", "reqwest"] {
        assert!(!default.contains(extra), "evkit's defaults link {extra}");
    }
}
