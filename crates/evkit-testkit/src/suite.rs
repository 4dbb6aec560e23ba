//! The generators' conformance report over the official JSON-Schema-Test-Suite.
//!
//! Each schema of a draft's test files (remote references left out, as in the issue that
//! measured them) goes through the generators:
//! - **valid side**: values drawn from [`Schema::valid`], each judged by a validator compiled
//!   afresh (formats asserted). A value it rejects is a *wrong claim*. A schema counts as
//!   *satisfiable* when the suite itself lists a valid instance for it (an independent witness).
//! - **invalid side**: every constraint-keyword site ([`Schema::sites`]) broken with
//!   [`Schema::break_site`], the result judged again by the fresh validator. A value it accepts
//!   is a wrong claim.
//!
//! [`run`] returns a [`Report`]; [`Report::table`] prints it as the README shows it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use jsonschema::Draft;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;

use crate::Error;
use crate::generate::Schema;

/// What one draft's run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The draft's folder name (`draft7`).
    pub draft: String,
    /// Schemas tried.
    pub schemas: usize,
    /// Schemas the suite lists a valid instance for.
    pub satisfiable: usize,
    /// Satisfiable schemas for which valid values were generated.
    pub valid_generated: usize,
    /// Schemas (satisfiable or not) for which valid values were generated.
    pub valid_any: usize,
    /// Valid values drawn in all.
    pub values: usize,
    /// Generated "valid" values the fresh validator rejects (must be 0).
    pub wrong_valid: usize,
    /// Constraint-keyword sites found (in schemas that accept something, redundant ones left
    /// out).
    pub sites: usize,
    /// Sites left out because the schema without them accepts the same values.
    pub redundant: usize,
    /// Sites left out because their schema accepts nothing (no valid value to break).
    pub in_empty: usize,
    /// Sites broken.
    pub broken: usize,
    /// Sites broken with nothing else broken.
    pub broken_sole: usize,
    /// Sites broken through an enclosing `anyOf`/`oneOf`.
    pub broken_via_branch: usize,
    /// Generated "invalid" values the fresh validator accepts (must be 0).
    pub wrong_invalid: usize,
    /// Why valid generation was refused, with counts (satisfiable schemas only).
    pub refusals: BTreeMap<String, usize>,
    /// Sites not broken, by keyword.
    pub unbroken: BTreeMap<String, usize>,
    /// One line per problem: file, description, what happened (wrong claims and refusals).
    pub details: Vec<String>,
    /// With [`Effort::keep`]: every generated value, as
    /// `{"schema", "value", "valid", "site"}`, for a second validator to judge.
    pub samples: Vec<Value>,
}

impl Report {
    /// Valid generation over satisfiable schemas.
    #[allow(clippy::cast_precision_loss)]
    pub fn valid_ratio(&self) -> f64 {
        self.valid_generated as f64 / self.satisfiable.max(1) as f64
    }

    /// Sites broken over sites.
    #[allow(clippy::cast_precision_loss)]
    pub fn invalid_ratio(&self) -> f64 {
        self.broken as f64 / self.sites.max(1) as f64
    }

    /// The Markdown table of several reports, one column per draft.
    pub fn table(reports: &[Report]) -> String {
        let mut out = String::from("| |");
        for r in reports {
            let _ = write!(out, " {} |", r.draft);
        }
        out.push_str("\n|---|");
        for _ in reports {
            out.push_str("---:|");
        }
        let row = |out: &mut String, name: &str, f: &dyn Fn(&Report) -> String| {
            let _ = write!(out, "\n| {name} |");
            for r in reports {
                let _ = write!(out, " {} |", f(r));
            }
        };
        row(&mut out, "schemas (no remote refs)", &|r| {
            r.schemas.to_string()
        });
        row(
            &mut out,
            "satisfiable (the suite lists a valid instance)",
            &|r| r.satisfiable.to_string(),
        );
        row(&mut out, "valid generation, satisfiable schemas", &|r| {
            format!("{} ({:.1} %)", r.valid_generated, 100.0 * r.valid_ratio())
        });
        row(&mut out, "valid values drawn", &|r| r.values.to_string());
        row(&mut out, "**wrong claims, valid side**", &|r| {
            format!("**{}**", r.wrong_valid)
        });
        row(&mut out, "constraint-keyword sites", &|r| {
            r.sites.to_string()
        });
        row(
            &mut out,
            "… left out: redundant (proven by jsonschema's canonical algebra)",
            &|r| r.redundant.to_string(),
        );
        row(
            &mut out,
            "… left out: in schemas with no valid value",
            &|r| r.in_empty.to_string(),
        );
        row(&mut out, "sites broken (invalid generation)", &|r| {
            format!("{} ({:.1} %)", r.broken, 100.0 * r.invalid_ratio())
        });
        row(&mut out, "… with no other error", &|r| {
            r.broken_sole.to_string()
        });
        row(&mut out, "… through an enclosing anyOf/oneOf", &|r| {
            r.broken_via_branch.to_string()
        });
        row(&mut out, "**wrong claims, invalid side**", &|r| {
            format!("**{}**", r.wrong_invalid)
        });
        row(
            &mut out,
            "refusals (satisfiable schemas), by reason",
            &|r| {
                if r.refusals.is_empty() {
                    "none".to_owned()
                } else {
                    r.refusals
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            },
        );
        row(&mut out, "sites not broken, by keyword", &|r| {
            if r.unbroken.is_empty() {
                "none".to_owned()
            } else {
                r.unbroken
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        });
        out.push('\n');
        out
    }
}

/// The suite's draft folders evkit reports on, with the draft each is read under.
pub const DRAFTS: &[(&str, Draft)] = &[
    ("draft4", Draft::Draft4),
    ("draft6", Draft::Draft6),
    ("draft7", Draft::Draft7),
    ("draft2019-09", Draft::Draft201909),
    ("draft2020-12", Draft::Draft202012),
];

/// How much to draw per schema.
#[derive(Debug, Clone, Copy)]
pub struct Effort {
    /// Valid values drawn per schema.
    pub values: usize,
    /// Valid starting values tried per site.
    pub attempts: usize,
    /// The seed.
    pub seed: u64,
    /// Keep every generated value in [`Report::samples`].
    pub keep: bool,
}

impl Default for Effort {
    fn default() -> Self {
        Effort {
            values: 20,
            attempts: 6,
            seed: 0,
            keep: false,
        }
    }
}

/// Runs the generators over one draft folder of the suite (`suite/tests/<draft>`).
pub fn run(suite: &Path, draft_dir: &str, draft: Draft, effort: Effort) -> Result<Report, Error> {
    let dir = suite.join("tests").join(draft_dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut report = Report {
        draft: draft_dir.to_owned(),
        ..Report::default()
    };
    let mut runner = TestRunner::new_with_rng(
        Config {
            max_local_rejects: 20_000,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(effort.seed)),
    );
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
            path: file.display().to_string(),
            source,
        })?;
        let cases: Vec<Value> = serde_json::from_str(&text).map_err(|e| Error::Generator {
            at: file.display().to_string(),
            reason: e.to_string(),
        })?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for case in cases {
            let schema = &case["schema"];
            if schema.to_string().contains("localhost:1234") {
                continue;
            }
            let description = case["description"].as_str().unwrap_or("").to_owned();
            one(
                &mut report,
                &mut runner,
                schema,
                &case,
                draft,
                effort,
                &format!("{name}: {description}"),
            );
        }
    }
    Ok(report)
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&seed.to_le_bytes());
    out
}

fn one(
    report: &mut Report,
    runner: &mut TestRunner,
    schema: &Value,
    case: &Value,
    draft: Draft,
    effort: Effort,
    label: &str,
) {
    report.schemas += 1;
    let Ok(judge) = jsonschema::options()
        .with_draft(draft)
        .should_validate_formats(true)
        .build(schema)
    else {
        report.details.push(format!("{label}: does not compile"));
        return;
    };
    let satisfiable = case["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["valid"] == Value::Bool(true) && judge.is_valid(&t["data"]));
    if satisfiable {
        report.satisfiable += 1;
    }
    let compiled = match Schema::with_draft(schema, Some(draft)) {
        Ok(c) => c,
        Err(e) => {
            if satisfiable {
                *report
                    .refusals
                    .entry("does not compile".to_owned())
                    .or_default() += 1;
                report.details.push(format!("{label}: {e}"));
            }
            return;
        }
    };
    // Valid side.
    let mut generated = 0;
    let mut refusal: Option<String> = None;
    match compiled.valid() {
        Ok(strategy) => {
            for _ in 0..effort.values {
                match strategy.new_tree(runner) {
                    Ok(tree) => {
                        let v = tree.current();
                        generated += 1;
                        if effort.keep {
                            report.samples.push(serde_json::json!({
                                "schema": schema, "value": v, "valid": true, "site": null,
                            }));
                        }
                        if !judge.is_valid(&v) {
                            report.wrong_valid += 1;
                            report
                                .details
                                .push(format!("{label}: WRONG valid claim {v}"));
                        }
                    }
                    Err(reason) => {
                        refusal = Some(format!("filter gave up ({reason})"));
                        break;
                    }
                }
            }
        }
        Err(Error::AcceptsNothing { .. }) => refusal = Some("accepts nothing".to_owned()),
        Err(e) => refusal = Some(e.to_string()),
    }
    report.values += generated;
    if generated > 0 {
        report.valid_any += 1;
        if satisfiable {
            report.valid_generated += 1;
        }
    } else if satisfiable {
        let reason = refusal.unwrap_or_else(|| "nothing drawn".to_owned());
        let key = if reason.starts_with("filter gave up") {
            "filter gave up".to_owned()
        } else if reason.contains("accepts nothing") {
            "proven empty (but the suite lists a valid instance)".to_owned()
        } else {
            reason.chars().take(60).collect()
        };
        *report.refusals.entry(key).or_default() += 1;
        report
            .details
            .push(format!("{label}: valid refused: {reason}"));
    }
    // Invalid side.
    let sites = compiled.sites();
    if generated == 0 {
        report.in_empty += sites.len();
        return;
    }
    invalid_side(
        report, runner, &compiled, &judge, schema, effort, label, sites,
    );
}

/// Breaks every site of `compiled`, counting and judging each breakage.
#[allow(clippy::too_many_arguments)]
fn invalid_side(
    report: &mut Report,
    runner: &mut TestRunner,
    compiled: &Schema,
    judge: &jsonschema::Validator,
    schema: &Value,
    effort: Effort,
    label: &str,
    sites: Vec<crate::generate::Site>,
) {
    let mut breaker = compiled.breaker();
    for site in sites {
        if compiled.is_redundant(&site) {
            report.redundant += 1;
            continue;
        }
        report.sites += 1;
        let Some(b) = breaker.break_site(&site, runner, effort.attempts) else {
            *report.unbroken.entry(site.keyword.clone()).or_default() += 1;
            report.details.push(format!(
                "{label}: site {site} ({}) not broken",
                site.schema_path
            ));
            continue;
        };
        if judge.is_valid(&b.value) {
            report.wrong_invalid += 1;
            report.details.push(format!(
                "{label}: WRONG invalid claim for {site}: {}",
                b.value
            ));
            continue;
        }
        report.broken += 1;
        if effort.keep {
            report.samples.push(serde_json::json!({
                "schema": schema, "value": b.value, "valid": false,
                "site": site.schema_path,
            }));
        }
        if b.sole {
            report.broken_sole += 1;
        }
        if matches!(site.via, crate::generate::Via::Branch { .. }) {
            report.broken_via_branch += 1;
        }
    }
}
