//! Prints the generators' conformance table over the vendored JSON-Schema-Test-Suite:
//! `cargo run --release -p evkit-testkit --example suite_report [-- --details] [--dump DIR]`.

use std::path::Path;

use evkit_testkit::suite::{DRAFTS, Effort, Report, run};

fn main() -> Result<(), evkit_testkit::Error> {
    let details = std::env::args().any(|a| a == "--details");
    // `--dump DIR`: every generated value as JSON lines, one file per draft, for
    // benches/generators/compare.py to judge with python-jsonschema.
    let args: Vec<String> = std::env::args().collect();
    let dump = args
        .iter()
        .position(|a| a == "--dump")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    let only = std::env::args().skip(1).find(|a| a.starts_with("draft"));
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/json-schema-test-suite");
    let mut reports = Vec::new();
    for (dir, draft) in DRAFTS {
        if only.as_deref().is_some_and(|o| o != *dir) {
            continue;
        }
        let t = std::time::Instant::now();
        let effort = Effort {
            keep: dump.is_some(),
            ..Effort::default()
        };
        let r = run(&suite, dir, *draft, effort)?;
        if let Some(d) = &dump {
            let lines: Vec<String> = r.samples.iter().map(ToString::to_string).collect();
            let path = d.join(format!("{dir}.jsonl"));
            std::fs::write(&path, lines.join("\n") + "\n").map_err(|source| {
                evkit_testkit::Error::Io {
                    path: path.display().to_string(),
                    source,
                }
            })?;
        }
        eprintln!("{dir}: {:.1} s", t.elapsed().as_secs_f64());
        if details {
            for d in &r.details {
                println!("{dir} {d}");
            }
        }
        reports.push(r);
    }
    print!("{}", Report::table(&reports));
    Ok(())
}
