//! Intended breaks: `contracts/allowed-breaks.yaml`, kept in git next to the contracts.
//!
//! ```yaml
//! allow:
//!   - topic: platform.evkit.todo-created
//!     rule: required-added
//!     pointer: /required
//!     reason: every producer sends `due` since todo-api 2.4 (JIRA EVK-112)
//!     expires: 2027-01-31
//! ```
//!
//! An entry lets one finding through: same topic, rule id and pointer (see `evkit gate`'s
//! output or `--format json`). Every entry needs a reason and an expiry date; after the date it
//! lets nothing through and the gate says so, so an allowance cannot outlive the migration it
//! was written for.

use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::Error;

/// The file's name inside the contracts folder.
pub const FILE: &str = "allowed-breaks.yaml";

/// One intended break.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Allowance {
    /// The topic (`(headers)` for the catalog's header schema).
    pub topic: String,
    /// The rule id.
    pub rule: String,
    /// The finding's pointer, as the gate prints it.
    pub pointer: String,
    /// Why the break is intended, and what makes it safe.
    pub reason: String,
    /// The last day the allowance applies (`YYYY-MM-DD`).
    pub expires: NaiveDate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    allow: Vec<Allowance>,
}

impl Allowance {
    /// Reads an allowed-breaks file. Every entry must name a known rule id, and carry a
    /// reason.
    pub fn load(path: &Path) -> Result<Vec<Allowance>, Error> {
        let problem = |reason: String| Error::Contracts {
            problems: vec![format!("{}: {reason}", path.display())],
        };
        let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
        Allowance::parse(&text).map_err(problem)
    }

    /// [`Allowance::load`] on the file's text.
    pub fn parse(text: &str) -> Result<Vec<Allowance>, String> {
        let file: File = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        let mut problems = Vec::new();
        for (i, a) in file.allow.iter().enumerate() {
            if !super::diff::RULES.iter().any(|(id, _, _)| *id == a.rule) {
                problems.push(format!("allow[{i}]: unknown rule id `{}`", a.rule));
            }
            if a.reason.trim().is_empty() {
                problems.push(format!("allow[{i}]: `reason` is empty"));
            }
        }
        if problems.is_empty() {
            Ok(file.allow)
        } else {
            Err(problems.join("; "))
        }
    }

    /// `true` when this allowance lets `topic`'s finding `rule` at `pointer` through.
    pub fn covers(&self, topic: &str, rule: &str, pointer: &str) -> bool {
        self.topic == topic && self.rule == rule && self.pointer == pointer
    }

    /// `true` when `today` is past the expiry date.
    pub fn expired(&self, today: NaiveDate) -> bool {
        today > self.expires
    }
}
