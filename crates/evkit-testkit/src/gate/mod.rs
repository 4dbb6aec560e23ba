//! The schema gate: is a changed catalog compatible with the one already deployed? Run in CI on
//! every change to `schemas/`, it blocks, before stage, the changes that would break a producer
//! or a consumer of a topic, and explains each one.
//!
//! For every topic of the deployed catalog:
//! 1. **A static diff** ([`diff`]) of the two catalog entries (key, required headers,
//!    envelope, dataschemas), of the payload and key schemas, and of the catalog's header
//!    schema. Every change gets a stable rule id ([`RULES`]), a [`Direction`] and the JSON
//!    pointer of the keyword.
//! 2. **A proof**, where jsonschema's canonical algebra can give one: when the changed payload
//!    schema covers the deployed one, nothing breaks backward whatever the diff says (and the
//!    other way round for forward); such findings are reported as harmless and do not block.
//!    Where the algebra cannot compare regular expressions, the diff proves a direction of a
//!    `pattern` change (the two patterns as languages) or of a length bound (one the `pattern`
//!    already enforces) harmless itself ([`Finding::proof`]).
//! 3. **A search for a witness** of each finding, a message one side accepts and the other
//!    refuses: values drawn from jsonschema's canonical difference of the two schemas, values
//!    that break the consuming side's keyword at the finding's place, and whole valid messages
//!    generated from the producing side's contract (seeded, so a run is repeatable). A witness
//!    is attributed to the finding whose keyword and instance location the consuming side's
//!    validator names. A finding without one is still reported, as "no witness found"; a
//!    witness that no finding explains is a finding of its own (`unexplained`).
//!
//! When service contracts (`contracts/`) are given, they are loaded against the new catalog: an
//! example a producer sends that the new schema refuses, or a field a consumer relies on that the
//! new schema no longer has, blocks the change too. Intended breaks are let through per topic,
//! rule and pointer by an [`allow::Allowance`] (`contracts/allowed-breaks.yaml`), with a reason and
//! an expiry date.

pub mod allow;
pub mod diff;

use chrono::NaiveDate;
use evkit_schema::{Catalog, Part, Topic, Violation};
use proptest::test_runner::TestRunner;
use serde_json::Value;

pub use allow::Allowance;
pub use diff::{Change, Direction, RULES, Refusal};

use crate::Error;
use crate::contracts::Contracts;
use crate::generate::{Containment, Schema};
use crate::messages::valid_message;
use crate::verify::{draw, seeded_runner};

/// The topic name under which the catalog's header schema is reported.
pub const HEADERS: &str = "(headers)";

/// Where the header schema keeps the decoded identity's schema.
const IDENTITY: &str = "/$defs/identity";

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

    fn directions(self) -> Vec<Direction> {
        let mut out = Vec::new();
        if self.backward() {
            out.push(Direction::Backward);
        }
        if self.forward() {
            out.push(Direction::Forward);
        }
        out
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
    /// Intended breaks.
    pub allowed: Vec<Allowance>,
    /// The date allowances are checked against (today by default).
    pub today: NaiveDate,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Full,
            cases: 256,
            seed: 0,
            allowed: Vec::new(),
            today: chrono::Utc::now().date_naive(),
        }
    }
}

/// A message that shows a finding: the producing side accepts it, the consuming side refuses it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Witness {
    /// Which way it breaks: `backward` (built on the deployed schema, refused by the change) or
    /// `forward` (built on the change, refused by the deployed schema).
    pub direction: Direction,
    /// The part it shows (`payload`, `key`, `headers`, ...).
    pub part: String,
    /// The value: the payload (or header set) as JSON text.
    pub value: String,
    /// What the consuming side said.
    pub refused: String,
}

/// One change the gate found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// The topic ([`HEADERS`] for the header schema; empty for a contracts problem).
    pub topic: String,
    /// The stable rule id (see [`RULES`]).
    pub rule: String,
    /// Which way it breaks.
    pub direction: Direction,
    /// `catalog` (the topics.yaml entry), `payload`, `key`, `headers` or `contracts`.
    pub part: String,
    /// JSON pointer of the keyword: in the changed schema, or in the deployed one when the
    /// change has none; for catalog rules, in the topic's entry.
    pub pointer: String,
    /// What changed.
    pub detail: String,
    /// Messages that show it, at most one per direction.
    pub witnesses: Vec<Witness>,
    /// Directions proven unaffected, by jsonschema's canonical algebra or by [`Finding::proof`]
    /// (so they do not block, unless a witness shows otherwise).
    pub harmless: Vec<Direction>,
    /// Why the schemas themselves show the change harmless in the [`Finding::harmless`]
    /// directions (a length bound the `pattern` already enforces, a `pattern` that accepts
    /// every string the other one does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// The allowance that lets it through.
    pub allowed: Option<Allowance>,
    #[serde(skip)]
    refusal: Option<Refusal>,
}

impl Finding {
    fn new(
        topic: &str,
        part: &str,
        rule: &str,
        direction: Direction,
        pointer: &str,
        detail: String,
    ) -> Self {
        Finding {
            topic: topic.to_owned(),
            rule: rule.to_owned(),
            direction,
            part: part.to_owned(),
            pointer: pointer.to_owned(),
            detail,
            witnesses: Vec::new(),
            harmless: Vec::new(),
            proof: None,
            allowed: None,
            refusal: None,
        }
    }

    fn from_change(topic: &str, part: &str, c: Change) -> Self {
        let mut f = Finding::new(
            topic,
            part,
            c.rule,
            c.direction,
            c.pointer(),
            c.detail.clone(),
        );
        f.refusal = Some(c.refusal);
        f.harmless = c.proven;
        f.proof = c.proof;
        f
    }

    /// The directions it breaks that `mode` checks and no proof rules out.
    pub fn breaks(&self, mode: Mode) -> Vec<Direction> {
        mode.directions()
            .into_iter()
            .filter(|d| match d {
                Direction::Backward => self.direction.backward(),
                _ => self.direction.forward(),
            })
            // A witness is a message both validators judged: it overrules a proof.
            .filter(|d| !self.harmless.contains(d) || self.witnessed(*d))
            .collect()
    }

    /// `true` when it blocks the change under `mode`.
    pub fn blocks(&self, mode: Mode) -> bool {
        self.allowed.is_none() && !self.breaks(mode).is_empty()
    }

    fn witnessed(&self, d: Direction) -> bool {
        self.witnesses.iter().any(|w| w.direction == d)
    }

    fn wants(&self, d: Direction) -> bool {
        let breaks = match d {
            Direction::Backward => self.direction.backward(),
            _ => self.direction.forward(),
        };
        breaks && !self.witnessed(d)
    }
}

/// What the gate found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The mode the gate ran in.
    pub mode: Mode,
    /// Every change found, blocking or not.
    pub findings: Vec<Finding>,
    /// Topics checked, with the generated messages each one was checked with.
    pub checked: Vec<(String, u32)>,
    /// Per topic and direction, what jsonschema's canonical algebra says of the payload schemas
    /// (`yes`: proven compatible).
    pub proofs: Vec<(String, Direction, Containment)>,
    /// Allowances that let a finding through.
    pub used: Vec<Allowance>,
    /// Allowances past their expiry date (they let nothing through).
    pub expired: Vec<Allowance>,
}

impl Report {
    /// `true` when nothing blocks the change.
    pub fn compatible(&self) -> bool {
        !self.findings.iter().any(|f| f.blocks(self.mode))
    }

    /// The findings that block the change.
    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.blocks(self.mode))
    }
}

/// Compares `next` (the changed catalog) with `base` (the deployed one); see the module docs.
/// `contracts` is the service contracts folder, loaded against `next`.
#[allow(clippy::too_many_lines)] // reason: the steps of the module docs, in order
pub fn gate(
    base: &Catalog,
    next: &Catalog,
    contracts: Option<&std::path::Path>,
    opts: &Options,
) -> Result<Report, Error> {
    let mut runner = seeded_runner(opts.seed);
    let mut report = Report {
        mode: opts.mode,
        ..Report::default()
    };
    // The header schema, once for the catalog.
    let mut shared: Vec<Finding> = Vec::new();
    for (part, at) in [("headers", ""), ("identity", IDENTITY)] {
        let (a, b) = (base.headers_schema(), next.headers_schema());
        let mut found: Vec<Finding> = diff::diff(a, at, b, at)
            .into_iter()
            .map(|c| Finding::from_change(HEADERS, part, c))
            .collect();
        if found.is_empty() {
            continue;
        }
        let sub = |doc: &Value| doc.pointer(at).cloned().unwrap_or(Value::Bool(true));
        if let (Ok(p), Ok(c)) = (Schema::new(&sub(a)), Schema::new(&sub(b))) {
            let extra = search_schemas(
                HEADERS,
                &mut found,
                part,
                &p,
                &c,
                opts,
                &mut runner,
                &mut Vec::new(),
            );
            found.extend(extra);
        }
        shared.extend(found);
    }
    for old in base.topics() {
        let name = old.name().to_owned();
        let Ok(new) = next.topic(&name) else {
            report.findings.push(Finding::new(
                &name,
                "catalog",
                "topic-removed",
                Direction::Both,
                "",
                "the topic is no longer in the catalog; its producers and consumers still use it"
                    .to_owned(),
            ));
            continue;
        };
        let mut found = catalog_rules(old, new);
        let mut payload: Vec<Finding> = diff::diff(&old.schema, "", &new.schema, "")
            .into_iter()
            .map(|c| Finding::from_change(&name, "payload", c))
            .collect();
        let mut proofs = Vec::new();
        if let (Ok(p), Ok(c)) = (Schema::new(&old.schema), Schema::new(&new.schema)) {
            let extra = search_schemas(
                &name,
                &mut payload,
                "payload",
                &p,
                &c,
                opts,
                &mut runner,
                &mut proofs,
            );
            payload.extend(extra);
        }
        report
            .proofs
            .extend(proofs.into_iter().map(|(d, v)| (name.clone(), d, v)));
        found.extend(payload);
        if let (Some(a), Some(b)) = (&old.spec.key.schema, &new.spec.key.schema) {
            let mut key: Vec<Finding> = diff::diff(a, "", b, "")
                .into_iter()
                .map(|c| Finding::from_change(&name, "key", c))
                .collect();
            if let (Ok(p), Ok(c)) = (Schema::new(a), Schema::new(b)) {
                let extra = search_schemas(
                    &name,
                    &mut key,
                    "key",
                    &p,
                    &c,
                    opts,
                    &mut runner,
                    &mut Vec::new(),
                );
                key.extend(extra);
            }
            found.extend(key);
        } else if old.spec.key.schema != new.spec.key.schema {
            let added = new.spec.key.schema.is_some();
            found.push(Finding::new(
                &name,
                "key",
                if added {
                    "constraint-added"
                } else {
                    "constraint-removed"
                },
                if added {
                    Direction::Backward
                } else {
                    Direction::Forward
                },
                "/key/schema",
                format!(
                    "the key schema is {}",
                    if added { "added" } else { "removed" }
                ),
            ));
        }
        let mut cases = 0;
        for d in opts.mode.directions() {
            let (from, to) = match d {
                Direction::Backward => (old, new),
                _ => (new, old),
            };
            cases += messages(
                from,
                to,
                d,
                opts.cases,
                &mut runner,
                &mut found,
                &mut shared,
            )?;
        }
        report.checked.push((name, cases));
        report.findings.extend(found);
    }
    report.findings.extend(shared);
    if let Some(dir) = contracts {
        match Contracts::load(dir, next) {
            Ok(_) => {}
            Err(Error::Contracts { problems }) => {
                report.findings.extend(
                    problems.into_iter().map(|p| {
                        Finding::new("", "contracts", "contracts", Direction::Both, "", p)
                    }),
                );
            }
            Err(e) => return Err(e),
        }
    }
    for f in &mut report.findings {
        if let Some(a) = opts
            .allowed
            .iter()
            .find(|a| a.covers(&f.topic, &f.rule, &f.pointer))
        {
            if a.expired(opts.today) {
                if !report.expired.contains(a) {
                    report.expired.push(a.clone());
                }
            } else {
                f.allowed = Some(a.clone());
                if !report.used.contains(a) {
                    report.used.push(a.clone());
                }
            }
        }
    }
    Ok(report)
}

/// The gate on two schema documents alone, outside a catalog (`old` deployed, `new` the
/// change): the static diff's findings, with proofs and witnesses, as [`gate`] gives them for a
/// topic's payload. The findings' topic is empty.
pub fn compare(old: &Value, new: &Value, opts: &Options) -> Result<Vec<Finding>, Error> {
    let (p, c) = (Schema::new(old)?, Schema::new(new)?);
    let mut findings: Vec<Finding> = diff::diff(old, "", new, "")
        .into_iter()
        .map(|c| Finding::from_change("", "payload", c))
        .collect();
    let mut runner = seeded_runner(opts.seed);
    let extra = search_schemas(
        "",
        &mut findings,
        "payload",
        &p,
        &c,
        opts,
        &mut runner,
        &mut Vec::new(),
    );
    findings.extend(extra);
    Ok(findings)
}

/// The rules decided by the catalog entries alone.
#[allow(clippy::too_many_lines)] // reason: one check per field of the entry
fn catalog_rules(old: &Topic, new: &Topic) -> Vec<Finding> {
    let (a, b) = (&old.spec, &new.spec);
    let name = a.name.as_str();
    let mut out = Vec::new();
    let mut push = |rule: &str, d: Direction, pointer: &str, detail: String, part: Part| {
        let mut f = Finding::new(name, "catalog", rule, d, pointer, detail);
        f.refusal = Some(Refusal {
            instance: part_tag(&part),
            keyword: None,
            deeper: true,
        });
        out.push(f);
    };
    if a.envelope.mode != b.envelope.mode {
        push(
            "envelope-mode-changed",
            Direction::Both,
            "/envelope/mode",
            format!(
                "the envelope changes from {:?} to {:?}: no consumer reads both",
                a.envelope.mode, b.envelope.mode
            ),
            Part::Envelope,
        );
    }
    if a.envelope.event_type != b.envelope.event_type {
        push(
            "envelope-type-changed",
            Direction::Both,
            "/envelope/type",
            format!(
                "the CloudEvents type changes from {:?} to {:?}",
                a.envelope.event_type, b.envelope.event_type
            ),
            Part::Envelope,
        );
    }
    if a.envelope.source != b.envelope.source {
        push(
            "envelope-source-changed",
            Direction::Both,
            "/envelope/source",
            format!(
                "the CloudEvents source changes from {:?} to {:?}",
                a.envelope.source, b.envelope.source
            ),
            Part::Envelope,
        );
    }
    let uri_ptr = |uri: &str| {
        format!(
            "/envelope/dataschemas/{}",
            evkit_schema::pointer::escape(uri)
        )
    };
    for (uri, target) in &a.envelope.dataschemas {
        match b.envelope.dataschemas.get(uri) {
            None => push(
                "dataschema-removed",
                Direction::Backward,
                &uri_ptr(uri),
                format!("events with dataschema `{uri}` are no longer accepted"),
                Part::Envelope,
            ),
            Some(t) if t != target => {
                let changes = diff::diff(
                    &old.schema,
                    target.trim_start_matches('#'),
                    &new.schema,
                    t.trim_start_matches('#'),
                );
                if let Some(d) = changes.iter().map(|c| c.direction).reduce(Direction::join) {
                    push(
                        "dataschema-retargeted",
                        d,
                        &uri_ptr(uri),
                        format!("dataschema `{uri}` now names {t} (was {target})"),
                        Part::Payload,
                    );
                }
            }
            Some(_) => {}
        }
    }
    for uri in b.envelope.dataschemas.keys() {
        if !a.envelope.dataschemas.contains_key(uri) {
            push(
                "dataschema-added",
                Direction::Forward,
                &uri_ptr(uri),
                format!("events with dataschema `{uri}`, which deployed consumers refuse"),
                Part::Envelope,
            );
        }
    }
    if a.key.pointer != b.key.pointer {
        push(
            "key-pointer-changed",
            Direction::Both,
            "/key/pointer",
            format!(
                "the key changes from {} to {}: an entity's messages move to another partition \
                 and lose their order",
                a.key.pointer.as_deref().unwrap_or("(none)"),
                b.key.pointer.as_deref().unwrap_or("(none)")
            ),
            Part::Key,
        );
    }
    if b.key.required && !a.key.required {
        push(
            "key-required-added",
            Direction::Backward,
            "/key/required",
            "a key becomes required: messages without one, as deployed producers may send, are \
             refused"
                .to_owned(),
            Part::Key,
        );
    }
    if a.key.required && !b.key.required {
        push(
            "key-required-removed",
            Direction::Forward,
            "/key/required",
            "a key is no longer required: deployed consumers refuse messages without one"
                .to_owned(),
            Part::Key,
        );
    }
    let required = |t: &Topic| t.contract().required_headers().to_vec();
    let (before, after) = (required(old), required(new));
    for h in after.iter().filter(|h| !before.contains(h)) {
        push(
            "header-required-added",
            Direction::Backward,
            "/required_headers",
            format!("header `{h}` becomes required; deployed producers may not send it"),
            Part::Header(h.clone()),
        );
    }
    for h in before.iter().filter(|h| !after.contains(h)) {
        push(
            "header-required-removed",
            Direction::Forward,
            "/required_headers",
            format!("header `{h}` is no longer required; deployed consumers require it"),
            Part::Header(h.clone()),
        );
    }
    out
}

/// A catalog finding's refusal names the part only: `@key`, `@header NAME`, `@envelope`,
/// `@payload`.
fn part_tag(p: &Part) -> String {
    match p {
        Part::Key => "@key".to_owned(),
        Part::Headers => "@headers".to_owned(),
        Part::Header(h) => format!("@header {h}"),
        Part::Envelope => "@envelope".to_owned(),
        Part::Payload => "@payload".to_owned(),
    }
}

/// Proofs and witnesses for the findings of one schema pair (`old` is the deployed schema).
#[allow(clippy::too_many_arguments)]
fn search_schemas(
    topic: &str,
    findings: &mut [Finding],
    part: &str,
    old: &Schema,
    new: &Schema,
    opts: &Options,
    runner: &mut TestRunner,
    proofs: &mut Vec<(Direction, Containment)>,
) -> Vec<Finding> {
    let mut unexplained = Vec::new();
    for d in opts.mode.directions() {
        let (producer, consumer) = match d {
            Direction::Backward => (old, new),
            _ => (new, old),
        };
        let verdict = consumer.covers(producer);
        proofs.push((d, verdict));
        if verdict == Containment::Yes {
            for f in findings.iter_mut().filter(|f| !f.harmless.contains(&d)) {
                f.harmless.push(d);
            }
            continue;
        }
        // 1. Values drawn from the canonical difference: each is a witness of the finding it
        //    shows, or of none (a break the diff did not classify).
        if let Ok(Some(strat)) = producer.difference(consumer) {
            for i in 0..opts.cases.clamp(16, 64) {
                let Ok(v) = draw(&strat, runner) else { break };
                if !attribute(findings, part, d, consumer, &v, true)
                    && !unexplained.iter().any(|f: &Finding| f.direction == d)
                {
                    let mut f = Finding::new(
                        topic,
                        part,
                        "unexplained",
                        d,
                        "",
                        format!(
                            "the {} schema refuses a value the {} one accepts, and no change \
                             found explains it",
                            if d == Direction::Backward {
                                "changed"
                            } else {
                                "deployed"
                            },
                            if d == Direction::Backward {
                                "deployed"
                            } else {
                                "changed"
                            },
                        ),
                    );
                    f.refusal = Some(Refusal {
                        instance: String::new(),
                        keyword: None,
                        deeper: true,
                    });
                    attribute(std::slice::from_mut(&mut f), part, d, consumer, &v, false);
                    unexplained.push(f);
                }
                if i >= 16 && !findings.iter().any(|f| f.wants(d)) {
                    break;
                }
            }
        }
        // 2. Values that break the consuming side's keyword where the finding is.
        let sites = consumer.sites();
        let mut breaker = consumer.breaker();
        for i in 0..findings.len() {
            if !findings[i].wants(d) {
                continue;
            }
            let at = findings[i].pointer.clone();
            for site in sites
                .iter()
                .filter(|s| s.schema_path.starts_with(&at))
                .take(4)
            {
                let Some(b) = breaker.break_site(site, runner, 8) else {
                    continue;
                };
                if producer.is_valid(&b.value) {
                    attribute(&mut findings[i..=i], part, d, consumer, &b.value, false);
                } else if let Some(instance) = findings[i]
                    .refusal
                    .as_ref()
                    .map(|r| r.instance.clone())
                    .filter(|at| !at.split('/').any(|s| s == "*"))
                {
                    // The rest of the document is the consuming side's (a change elsewhere
                    // can make the producing side refuse it): the broken value goes into
                    // messages the producing side generated, at the finding's place.
                    for v in transplanted(producer, &b.value, &instance, runner) {
                        if producer.is_valid(&v) {
                            attribute(&mut findings[i..=i], part, d, consumer, &v, false);
                            if !findings[i].wants(d) {
                                break;
                            }
                        }
                    }
                }
                if !findings[i].wants(d) {
                    break;
                }
            }
        }
    }
    unexplained
}

/// Up to 8 valid documents of `producer` with the value `broken` holds at `instance` put in
/// their place (added to its parent object where a document lacks it).
fn transplanted(
    producer: &Schema,
    broken: &Value,
    instance: &str,
    runner: &mut TestRunner,
) -> Vec<Value> {
    // At the root, the broken value is the whole document, already refused.
    let Some(value) = broken.pointer(instance).filter(|_| !instance.is_empty()) else {
        return Vec::new();
    };
    let Ok(strategy) = producer.valid() else {
        return Vec::new();
    };
    let (parent, name) = instance.rsplit_once('/').unwrap_or(("", instance));
    let name = evkit_schema::pointer::unescape(name).into_owned();
    (0..8)
        .filter_map(|_| {
            let mut doc = draw(&strategy, runner).ok()?;
            match doc.pointer_mut(parent)? {
                Value::Object(map) => {
                    map.insert(name.clone(), value.clone());
                }
                Value::Array(items) => *items.get_mut(name.parse::<usize>().ok()?)? = value.clone(),
                _ => return None,
            }
            Some(doc)
        })
        .collect()
}

/// Gives `value` (accepted by the producing side) as a witness to the first finding whose
/// refusal the consuming side's errors show.
fn attribute(
    findings: &mut [Finding],
    part: &str,
    d: Direction,
    consumer: &Schema,
    value: &Value,
    any: bool,
) -> bool {
    let errors: Vec<(String, String, String)> = consumer
        .validator()
        .iter_errors(value)
        .map(|e| {
            (
                e.instance_path().as_str().to_owned(),
                e.kind().keyword().to_owned(),
                e.to_string(),
            )
        })
        .collect();
    if errors.is_empty() {
        return false;
    }
    let breaks = |f: &Finding| match d {
        Direction::Backward => f.direction.backward(),
        _ => f.direction.forward(),
    };
    let mut explained = false;
    for f in findings.iter_mut().filter(|f| breaks(f)) {
        let Some(r) = &f.refusal else { continue };
        if let Some((path, keyword, message)) = errors.iter().find(|(p, k, _)| r.matches(p, k)) {
            explained = true;
            if f.wants(d) {
                f.witnesses.push(Witness {
                    direction: d,
                    part: part.to_owned(),
                    value: shown(value),
                    refused: format!(
                        "{keyword} at {}: {message}",
                        if path.is_empty() { "/" } else { path }
                    ),
                });
                return true;
            }
            if !any {
                return true;
            }
        }
    }
    explained
}

fn shown(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 400 {
        format!("{}…", text.chars().take(400).collect::<String>())
    } else {
        text
    }
}

/// Checks `cases` whole messages generated from `from` against `to`'s contract; each refusal is
/// a witness of the finding it shows, or an `unexplained` finding. Returns how many ran.
#[allow(clippy::too_many_lines)] // reason: targeted witnesses, then the sampled messages
fn messages(
    from: &Topic,
    to: &Topic,
    d: Direction,
    cases: u32,
    runner: &mut TestRunner,
    findings: &mut Vec<Finding>,
    shared: &mut [Finding],
) -> Result<u32, Error> {
    let strategy = valid_message(from)?;
    let contract = to.contract();
    let structured = !to.spec.envelope.dataschemas.is_empty();
    // Requirements on a key or a header: a valid message without it.
    for f in findings
        .iter_mut()
        .filter(|f| f.wants(d) && f.part == "catalog")
    {
        let header = f
            .refusal
            .as_ref()
            .and_then(|r| r.instance.strip_prefix("@header "))
            .map(str::to_owned);
        let key = f.rule.starts_with("key-required");
        if header.is_none() && !key {
            continue;
        }
        for _ in 0..8 {
            let mut m = draw(&strategy, runner)?;
            if key {
                m.key = None;
            }
            if let Some(h) = &header {
                m.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(h));
            }
            if from.contract().check(&m.message()).is_err() {
                continue;
            }
            if let Err(e) = contract.check(&m.message()) {
                f.witnesses.push(Witness {
                    direction: d,
                    part: if key { "key" } else { "headers" }.to_owned(),
                    value: format!(
                        "a valid message {}: {}",
                        header.as_ref().map_or_else(
                            || "without a key".to_owned(),
                            |h| format!("without header `{h}`")
                        ),
                        String::from_utf8_lossy(&m.payload)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    ),
                    refused: e.to_string(),
                });
                break;
            }
        }
    }
    let mut unexplained: Option<Finding> = None;
    let mut refused = 0u32;
    for _ in 0..cases {
        let message = draw(&strategy, runner)?;
        let Err(e) = contract.check(&message.message()) else {
            continue;
        };
        refused += 1;
        let violations = e.violations();
        let payload = String::from_utf8_lossy(&message.payload);
        let shown: String = payload.chars().take(400).collect();
        let explained = violations.iter().any(|v| {
            explain(findings, v, d, structured, &shown) || explain(shared, v, d, false, &shown)
        });
        if !explained && unexplained.is_none() {
            let v = violations.first();
            let mut f = Finding::new(
                from.name(),
                v.map_or("payload".to_owned(), |v| part_name(&v.part))
                    .as_str(),
                "unexplained",
                d,
                v.map_or("", |v| v.schema_path.as_str()),
                format!(
                    "the {} contract refuses a message built on the {} schema, and no change \
                     above explains it: {e}",
                    if d == Direction::Backward {
                        "new"
                    } else {
                        "deployed"
                    },
                    if d == Direction::Backward {
                        "deployed"
                    } else {
                        "new"
                    },
                ),
            );
            f.witnesses.push(Witness {
                direction: d,
                part: f.part.clone(),
                value: shown.clone(),
                refused: e.to_string(),
            });
            unexplained = Some(f);
        }
    }
    if let Some(mut f) = unexplained {
        f.detail = format!(
            "{} ({refused} of {cases} generated messages refused)",
            f.detail
        );
        findings.push(f);
    }
    Ok(cases)
}

/// `true` when a violation of part `p` can show finding `f` (of a schema part).
fn same_part(f: &Finding, p: &Part) -> bool {
    match f.part.as_str() {
        "payload" => matches!(p, Part::Payload),
        "key" => matches!(p, Part::Key),
        "headers" => matches!(p, Part::Headers | Part::Header(_)),
        "identity" => matches!(p, Part::Header(h) if h == "x-rh-identity"),
        _ => false,
    }
}

fn part_name(p: &Part) -> String {
    match p {
        Part::Key => "key".to_owned(),
        Part::Headers | Part::Header(_) => "headers".to_owned(),
        Part::Envelope => "envelope".to_owned(),
        Part::Payload => "payload".to_owned(),
    }
}

/// Attributes a contract violation to a finding (as a witness when that finding has none yet);
/// `true` when some finding of the direction explains it.
fn explain(
    findings: &mut [Finding],
    v: &Violation,
    d: Direction,
    structured: bool,
    shown: &str,
) -> bool {
    let breaks = |f: &Finding| match d {
        Direction::Backward => f.direction.backward(),
        _ => f.direction.forward(),
    };
    let path = if structured {
        v.instance_path
            .strip_prefix("/data")
            .unwrap_or(&v.instance_path)
    } else {
        v.instance_path.as_str()
    };
    let tag = part_tag(&v.part);
    let strict = |f: &Finding| {
        f.refusal.as_ref().is_some_and(|r| {
            if r.instance.starts_with('@') {
                r.instance == tag
                    || (matches!(v.part, Part::Headers | Part::Header(_))
                        && r.instance.starts_with("@header"))
            } else {
                let payload_like = same_part(f, &v.part);
                payload_like && r.matches(path, &v.rule)
            }
        })
    };
    // Loosely: a finding of the same part at a location on the violation's path (a
    // combinator or a reference may report above or below the keyword).
    let loose = |f: &Finding| {
        same_part(f, &v.part)
            || (f.part == "catalog" && f.refusal.as_ref().is_some_and(|r| r.instance == tag))
    };
    let witness = Witness {
        direction: d,
        part: part_name(&v.part),
        value: shown.to_owned(),
        refused: format!("{}: {}", v.part, v.message),
    };
    for pass in [0, 1] {
        let mut hit = false;
        for f in findings.iter_mut().filter(|f| breaks(f)) {
            let ok = if pass == 0 { strict(f) } else { loose(f) };
            if ok {
                hit = true;
                if !f.witnessed(d) {
                    f.witnesses.push(witness.clone());
                }
                break;
            }
        }
        if hit {
            return true;
        }
    }
    false
}
