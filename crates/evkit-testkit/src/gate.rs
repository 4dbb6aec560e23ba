//! The schema gate: is a changed catalog compatible with the one already deployed? Run in CI on
//! every change to `schemas/`, it blocks, before stage, the changes that would break a producer
//! or a consumer of a topic.
//!
//! Two kinds of checks, for every topic of the base catalog:
//! - **Rules** that are decided from the catalog entries alone: a topic removed, its envelope
//!   mode, key pointer or key requirement changed, a header newly required, a `dataschema` no
//!   longer accepted.
//! - **Messages**: valid messages generated from one catalog (the same generators as the fuzzers
//!   and the contract suite, seeded, so a run is repeatable) are checked against the other's
//!   contract. *Backward*: the new contract accepts what the deployed producers send (and what is
//!   still on the topic, or replayed from its dead-letter topic). *Forward*: the deployed
//!   consumers accept what producers built on the new schema send. A message check finds what
//!   its samples happen to reach, so it is a search, not a proof: a narrowed `maxLength` is found
//!   when a generated string is longer than the new bound.
//!
//! When service contracts (`contracts/`) are given, they are loaded against the new catalog: an
//! example a producer sends that the new schema refuses, or a field a consumer relies on that the
//! new schema no longer has, blocks the change too.

use evkit_schema::{Catalog, Topic};
use proptest::test_runner::TestRunner;

use crate::Error;
use crate::contracts::Contracts;
use crate::messages::valid_message;
use crate::verify::{draw, seeded_runner};

/// Which direction must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The new contract accepts messages built on the old schema.
    Backward,
    /// The old contract accepts messages built on the new schema.
    Forward,
    /// Both (the default: consumers and producers deploy independently).
    #[default]
    Full,
}

impl Mode {
    fn backward(self) -> bool {
        matches!(self, Mode::Backward | Mode::Full)
    }

    fn forward(self) -> bool {
        matches!(self, Mode::Forward | Mode::Full)
    }
}

/// How the gate runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directions to check.
    pub mode: Mode,
    /// Generated messages per topic and direction.
    pub cases: u32,
    /// Seed of the generators.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Full,
            cases: 256,
            seed: 0,
        }
    }
}

/// One incompatibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The topic (empty for a contracts problem that names its own).
    pub topic: String,
    /// `topic-removed`, `envelope`, `key-pointer`, `key-required`, `header-required`,
    /// `dataschema-removed`, `backward`, `forward` or `contracts`.
    pub rule: String,
    /// What breaks, and for a message check which rule of the other contract refused it.
    pub detail: String,
}

/// What the gate found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every incompatibility; empty when the change may go ahead.
    pub findings: Vec<Finding>,
    /// Topics checked, with the generated messages each one was checked with.
    pub checked: Vec<(String, u32)>,
}

impl Report {
    /// `true` when nothing blocks the change.
    pub fn compatible(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Compares `next` (the changed catalog) with `base` (the deployed one); see the module docs.
/// `contracts` is the service contracts folder, loaded against `next`.
pub fn gate(
    base: &Catalog,
    next: &Catalog,
    contracts: Option<&std::path::Path>,
    opts: &Options,
) -> Result<Report, Error> {
    let mut runner = seeded_runner(opts.seed);
    let mut report = Report::default();
    for old in base.topics() {
        let name = old.name().to_owned();
        let Ok(new) = next.topic(&name) else {
            report.findings.push(Finding {
                topic: name,
                rule: "topic-removed".to_owned(),
                detail: "the topic is no longer in the catalog; its producers and consumers \
                         still use it"
                    .to_owned(),
            });
            continue;
        };
        rules(old, new, opts.mode, &mut report.findings);
        let mut cases = 0;
        if opts.mode.backward() {
            cases += messages(old, new, "backward", opts.cases, &mut runner, &mut report)?;
        }
        if opts.mode.forward() {
            cases += messages(new, old, "forward", opts.cases, &mut runner, &mut report)?;
        }
        report.checked.push((name, cases));
    }
    if let Some(dir) = contracts {
        match Contracts::load(dir, next) {
            Ok(_) => {}
            Err(Error::Contracts { problems }) => {
                report
                    .findings
                    .extend(problems.into_iter().map(|p| Finding {
                        topic: String::new(),
                        rule: "contracts".to_owned(),
                        detail: p,
                    }));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// The checks decided by the catalog entries alone.
fn rules(old: &Topic, new: &Topic, mode: Mode, out: &mut Vec<Finding>) {
    let (a, b) = (&old.spec, &new.spec);
    let mut push = |rule: &str, detail: String| {
        out.push(Finding {
            topic: a.name.clone(),
            rule: rule.to_owned(),
            detail,
        });
    };
    if a.envelope.mode != b.envelope.mode {
        push(
            "envelope",
            format!(
                "the envelope changes from {:?} to {:?}: no consumer reads both",
                a.envelope.mode, b.envelope.mode
            ),
        );
    }
    if a.key.pointer != b.key.pointer {
        push(
            "key-pointer",
            format!(
                "the key changes from {} to {}: an entity's messages move to another partition \
                 and lose their order",
                a.key.pointer.as_deref().unwrap_or("(none)"),
                b.key.pointer.as_deref().unwrap_or("(none)")
            ),
        );
    }
    if mode.backward() && b.key.required && !a.key.required {
        push(
            "key-required",
            "a key becomes required: messages without one, as deployed producers may send, \
             are refused"
                .to_owned(),
        );
    }
    if mode.backward() {
        let required = |t: &Topic| t.contract().required_headers().to_vec();
        let before = required(old);
        for h in required(new) {
            if !before.contains(&h) {
                push(
                    "header-required",
                    format!("header `{h}` becomes required; deployed producers may not send it"),
                );
            }
        }
        for uri in a.envelope.dataschemas.keys() {
            if !b.envelope.dataschemas.contains_key(uri) {
                push(
                    "dataschema-removed",
                    format!("events with dataschema `{uri}` are no longer accepted"),
                );
            }
        }
    }
}

/// Checks `cases` messages generated from `from` against `to`'s contract; returns how many ran.
fn messages(
    from: &Topic,
    to: &Topic,
    direction: &str,
    cases: u32,
    runner: &mut TestRunner,
    report: &mut Report,
) -> Result<u32, Error> {
    let strategy = valid_message(from)?;
    let contract = to.contract();
    let mut refused = 0u32;
    let mut first: Vec<String> = Vec::new();
    for _ in 0..cases {
        let message = draw(&strategy, runner)?;
        if let Err(e) = contract.check(&message.message()) {
            refused += 1;
            if first.len() < 3 {
                let payload = String::from_utf8_lossy(&message.payload);
                let shown: String = payload.chars().take(300).collect();
                first.push(format!("{e} (message: {shown})"));
            }
        }
    }
    if refused > 0 {
        let (built, checked) = match direction {
            "backward" => ("deployed", "new"),
            _ => ("new", "deployed"),
        };
        report.findings.push(Finding {
            topic: from.name().to_owned(),
            rule: direction.to_owned(),
            detail: format!(
                "the {checked} contract refuses {refused} of {cases} messages built on the \
                 {built} schema; first: {}",
                first.join("; ")
            ),
        });
    }
    Ok(cases)
}
