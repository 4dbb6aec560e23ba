//! Service contracts (`contracts/*.yaml`): which topics a service produces (with example
//! messages) and consumes (with the payload fields it relies on).
//!
//! ```yaml
//! service: todo-service
//! description: Stores todos and announces them.
//! produces:
//!   - topic: platform.evkit.todo-indexed
//!     examples:
//!       - name: first todo of a tenant
//!         payload: { id: 42, org_id: "12345", indexed_at: "2026-11-01T09:30:01Z", org_todo_count: 1 }
//!         # key: "12345"          (default: from the key policy)
//!         # org_id: "12345"       (identity; default: the payload's org_id)
//!         # dataschema: https://… (structured CloudEvents topics)
//! consumes:
//!   - topic: platform.evkit.todo-created
//!     relies_on: [/id, /org_id, /title]
//! ```

use std::path::{Path, PathBuf};

use evkit_schema::{Catalog, Topic};
use serde::Deserialize;
use serde_json::Value;

use crate::Error;
use crate::messages::{Generated, example_message};

/// One service's contract.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceContract {
    /// The service name.
    pub service: String,
    /// What the service does.
    #[serde(default)]
    pub description: String,
    /// Topics it produces.
    #[serde(default)]
    pub produces: Vec<Produced>,
    /// Topics it consumes.
    #[serde(default)]
    pub consumes: Vec<Consumed>,
    /// The file it came from.
    #[serde(skip)]
    pub file: PathBuf,
}

/// A topic a service produces, with what it sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Produced {
    /// The catalog topic.
    pub topic: String,
    /// Messages the service sends, as it sends them.
    #[serde(default)]
    pub examples: Vec<Example>,
}

/// An example message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// What it shows.
    pub name: String,
    /// The key (default: derived from the topic's key policy).
    #[serde(default)]
    pub key: Option<String>,
    /// The tenant of the identity header (default: the payload's `org_id`).
    #[serde(default)]
    pub org_id: Option<String>,
    /// For structured CloudEvents topics: the `dataschema` of the event.
    #[serde(default)]
    pub dataschema: Option<String>,
    /// The payload (for CloudEvents topics: the event's `data`).
    pub payload: Value,
}

/// A topic a service consumes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consumed {
    /// The catalog topic.
    pub topic: String,
    /// JSON pointers into the payload (a CloudEvent's `data`) the service reads.
    #[serde(default)]
    pub relies_on: Vec<String>,
}

impl Example {
    /// The example as a whole message for `topic`: key, identity, request id, envelope.
    pub fn message(&self, topic: &Topic) -> Generated {
        example_message(
            topic,
            &self.payload,
            self.dataschema.as_deref(),
            self.key.as_deref(),
            self.org_id.as_deref(),
            &self.name,
        )
    }
}

/// Every service contract of a folder, checked against the catalog.
#[derive(Debug, Clone, Default)]
pub struct Contracts {
    /// In file-name order.
    pub services: Vec<ServiceContract>,
}

impl Contracts {
    /// Loads every `*.yaml`/`*.yml` of `dir` (but the gate's `allowed-breaks.yaml`) and reports
    /// every problem at once: a file that does
    /// not parse, a duplicate service, an unknown topic, an example that breaks the topic's
    /// contract, a consumer relying on a field the schema does not have.
    pub fn load(dir: impl AsRef<Path>, catalog: &Catalog) -> Result<Contracts, Error> {
        let dir = dir.as_ref();
        let mut problems = Vec::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::Contracts {
                problems: vec![format!("{}: {e}", dir.display())],
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .filter(|p| p.file_name().is_none_or(|n| n != crate::gate::allow::FILE))
            .collect();
        files.sort();
        let mut services: Vec<ServiceContract> = Vec::new();
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{}: {e}", file.display()));
                    continue;
                }
            };
            let mut c: ServiceContract = match serde_norway::from_str(&text) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("{}: {e}", file.display()));
                    continue;
                }
            };
            c.file.clone_from(&file);
            if services.iter().any(|s| s.service == c.service) {
                problems.push(format!(
                    "{}: service `{}` is already described by another file",
                    file.display(),
                    c.service
                ));
            }
            check(&c, catalog, &mut problems);
            services.push(c);
        }
        if problems.is_empty() {
            Ok(Contracts { services })
        } else {
            Err(Error::Contracts { problems })
        }
    }

    /// The services that produce `topic`.
    pub fn producers<'a>(
        &'a self,
        topic: &'a str,
    ) -> impl Iterator<Item = (&'a ServiceContract, &'a Produced)> {
        self.services.iter().flat_map(move |s| {
            s.produces
                .iter()
                .filter(move |p| p.topic == topic)
                .map(move |p| (s, p))
        })
    }

    /// The services that consume `topic`.
    pub fn consumers<'a>(
        &'a self,
        topic: &'a str,
    ) -> impl Iterator<Item = (&'a ServiceContract, &'a Consumed)> {
        self.services.iter().flat_map(move |s| {
            s.consumes
                .iter()
                .filter(move |c| c.topic == topic)
                .map(move |c| (s, c))
        })
    }

    /// Every catalog topic some contract mentions, sorted, once each.
    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .services
            .iter()
            .flat_map(|s| {
                s.produces
                    .iter()
                    .map(|p| p.topic.clone())
                    .chain(s.consumes.iter().map(|c| c.topic.clone()))
            })
            .collect();
        t.sort();
        t.dedup();
        t
    }
}

fn check(c: &ServiceContract, catalog: &Catalog, problems: &mut Vec<String>) {
    let file = c.file.display();
    for (i, p) in c.produces.iter().enumerate() {
        let Ok(topic) = catalog.topic(&p.topic) else {
            problems.push(format!(
                "{file}: /produces/{i}/topic: `{}` is not a topic of the catalog",
                p.topic
            ));
            continue;
        };
        for (j, ex) in p.examples.iter().enumerate() {
            let m = ex.message(topic);
            if let Err(e) = topic.contract().check(&m.message()) {
                for v in e.violations() {
                    problems.push(format!(
                        "{file}: /produces/{i}/examples/{j} ({}): breaks the contract of {}: {v}",
                        ex.name, p.topic
                    ));
                }
            }
        }
    }
    for (i, cons) in c.consumes.iter().enumerate() {
        let Ok(topic) = catalog.topic(&cons.topic) else {
            problems.push(format!(
                "{file}: /consumes/{i}/topic: `{}` is not a topic of the catalog",
                cons.topic
            ));
            continue;
        };
        for (j, pointer) in cons.relies_on.iter().enumerate() {
            if !schema_has(topic, pointer) {
                problems.push(format!(
                    "{file}: /consumes/{i}/relies_on/{j}: the schema of {} has no field `{pointer}`",
                    cons.topic
                ));
            }
        }
    }
}

/// `true` when the topic's payload schema (any dataschema of a structured topic) describes the
/// field at `pointer`.
pub fn schema_has(topic: &Topic, pointer: &str) -> bool {
    let starts: Vec<String> = if topic.spec.envelope.dataschemas.is_empty() {
        vec![String::new()]
    } else {
        topic
            .spec
            .envelope
            .dataschemas
            .values()
            .map(|p| p.trim_start_matches('#').to_owned())
            .collect()
    };
    // The generators' walk of the schema (one walker for the project).
    let Ok(schema) = crate::generate::Schema::new(&topic.schema) else {
        return false;
    };
    starts.iter().any(|start| schema.describes(start, pointer))
}
