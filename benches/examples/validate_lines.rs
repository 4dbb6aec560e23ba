//! Times evkit's checks on whole messages read from JSON lines (what `evkit generate-examples`
//! writes), for the side by side with the validators teams use elsewhere
//! (`benches/validators/compare.py` runs them all on the same file). Prints one JSON object:
//! microseconds per message (the median of the passes) for
//!
//! - `full`: the whole contract check (key, headers with identity, payload), with the
//!   generated crate's build-time validators, as a service runs it;
//! - `full_runtime`: the same with runtime validators only, as `evkit validate` runs it;
//! - `payload`: `serde_json` parse of the payload and the payload schema alone
//!   (`Contract::check_event`): the same work as a payload-only validator;
//! - `parse`: the `serde_json` parse alone;
//!
//! how many messages each accepted, and the payload check's verdict on every message, in order
//! (for the comparison's agreement check).
//!
//! ```text
//! validate_lines platform.evkit.todo-created messages.jsonl 7
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use evkit_schema::{Contract, Message};
use serde_json::Value;

struct Owned {
    key: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    payload: Vec<u8>,
}

impl Owned {
    fn message(&self) -> Message<'_> {
        let m = Message::from_parts(None, &self.headers, &self.payload);
        match &self.key {
            Some(k) => m.key(k),
            None => m,
        }
    }
}

fn read(path: &str) -> Vec<Owned> {
    std::fs::read_to_string(path)
        .expect("the JSON lines file")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            Owned {
                key: v["key"].as_str().map(|k| k.as_bytes().to_vec()),
                headers: v["headers"]
                    .as_array()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| {
                                (
                                    h["name"].as_str().unwrap().to_owned(),
                                    h["value"].as_str().unwrap_or_default().as_bytes().to_vec(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                payload: v["payload"]
                    .as_str()
                    .expect("a payload")
                    .as_bytes()
                    .to_vec(),
            }
        })
        .collect()
}

/// Microseconds per message of `each` over `msgs` (the median of `passes`), and how many
/// messages it accepted.
fn time(msgs: &[Owned], passes: usize, each: impl Fn(&Owned) -> bool) -> (f64, usize) {
    let accepted = msgs.iter().filter(|m| each(m)).count();
    let mut per = Vec::with_capacity(passes);
    for _ in 0..passes {
        let t0 = Instant::now();
        for m in msgs {
            black_box(each(black_box(m)));
        }
        per.push(t0.elapsed().as_secs_f64() * 1e6 / f64::from(u32::try_from(msgs.len()).unwrap()));
    }
    per.sort_by(f64::total_cmp);
    (per[per.len() / 2], accepted)
}

fn payload_ok(contract: &Contract, m: &Owned) -> bool {
    serde_json::from_slice::<Value>(&m.payload).is_ok_and(|v| contract.check_event(&v).is_ok())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: validate_lines TOPIC FILE PASSES";
    let topic = args.next().expect(usage);
    let path = args.next().expect(usage);
    let passes: usize = args.next().expect(usage).parse().expect(usage);
    let msgs = read(&path);
    assert!(!msgs.is_empty(), "{path} holds no messages");
    let built = evkit_benches::catalog().expect("sample catalog");
    let runtime = evkit_benches::catalog_runtime().expect("sample catalog");
    let contract = built
        .contract(&topic)
        .expect("a topic of the sample catalog");
    let contract_rt = runtime
        .contract(&topic)
        .expect("a topic of the sample catalog");
    let (full, full_ok) = time(&msgs, passes, |m| contract.check(&m.message()).is_ok());
    let (full_rt, full_rt_ok) = time(&msgs, passes, |m| contract_rt.check(&m.message()).is_ok());
    let (payload, _) = time(&msgs, passes, |m| payload_ok(contract, m));
    let payload_verdicts: Vec<bool> = msgs.iter().map(|m| payload_ok(contract, m)).collect();
    let payload_ok_n = payload_verdicts.iter().filter(|&&v| v).count();
    let (parse, _) = time(&msgs, passes, |m| {
        serde_json::from_slice::<Value>(&m.payload).is_ok()
    });
    println!(
        "{}",
        serde_json::json!({
            "messages": msgs.len(),
            "full": full, "full_accepted": full_ok,
            "full_runtime": full_rt, "full_runtime_accepted": full_rt_ok,
            "payload": payload, "payload_accepted": payload_ok_n,
            "payload_verdicts": payload_verdicts,
            "parse": parse,
        })
    );
}
