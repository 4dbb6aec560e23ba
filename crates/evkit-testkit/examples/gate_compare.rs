//! evkit's gate on every case of `tests/data/gate-cases.json`, one JSON line per case: the
//! rule ids it found, whether it blocks each direction, and its witnesses. Read by
//! `benches/gate/compare.py`, which runs the peer tools on the same cases.
//!
//! ```sh
//! cargo run -p evkit-testkit --example gate_compare > /tmp/evkit-gate.jsonl
//! ```

use evkit_testkit::gate::{Direction, Mode, Options, compare};
use serde_json::{Value, json};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cases: Vec<Value> = serde_json::from_str(include_str!("../tests/data/gate-cases.json"))?;
    let opts = Options {
        cases: 64,
        seed: 11,
        ..Options::default()
    };
    for case in cases {
        let started = std::time::Instant::now();
        let findings = compare(&case["old"], &case["new"], &opts)?;
        let elapsed = started.elapsed();
        let blocks = |d: Direction| {
            findings
                .iter()
                .any(|f| f.blocks(Mode::Full) && f.breaks(Mode::Full).contains(&d))
        };
        let witnesses: Vec<Value> = findings
            .iter()
            .flat_map(|f| &f.witnesses)
            .map(|w| json!({"direction": w.direction, "value": w.value}))
            .collect();
        println!(
            "{}",
            json!({
                "rule": case["rule"],
                "rules": findings.iter().map(|f| f.rule.clone()).collect::<Vec<_>>(),
                "backward": blocks(Direction::Backward),
                "forward": blocks(Direction::Forward),
                "witnesses": witnesses,
                "micros": elapsed.as_micros(),
            })
        );
    }
    Ok(())
}
