//! Loading `schemas/topics.yaml` and the schema files it names.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::Contract;
use crate::error::{Error, Problem};
use crate::headers::HeaderRules;
use crate::validator::{CompiledSchema, Compiler, Precompiled};

/// Payloads larger than this are rejected before parsing unless the catalog sets
/// `max_payload_bytes` (Kafka's own default `message.max.bytes` is about 1 MiB).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// `topics.yaml` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default = "default_headers_file")]
    headers: String,
    #[serde(default)]
    max_payload_bytes: Option<usize>,
    topics: Vec<TopicSpec>,
}

fn default_headers_file() -> String {
    "headers.json".to_owned()
}

/// Whether this service owns a topic (produces it, defines its schema) or only uses it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Owner {
    /// This service owns the topic: produced events are always validated.
    #[default]
    Owned,
    /// Another service owns the topic; its schema here is our copy of their contract.
    Foreign,
}

/// How the key of a topic's messages is checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    /// Every message must carry a non-empty key.
    #[serde(default)]
    pub required: bool,
    /// The key must equal the payload value at this JSON pointer (e.g. `/org_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The key (as a UTF-8 string) must match this JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
}

/// How a payload is wrapped on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvelopeMode {
    /// The payload is the event, as JSON.
    #[default]
    Plain,
    /// The payload is a CloudEvent in JSON (`application/cloudevents+json`); the schema applies to `data`.
    CloudeventsStructured,
    /// CloudEvents attributes travel as `ce_*` headers; the payload is the event's data.
    CloudeventsBinary,
}

/// How the payload bytes are framed on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireFormat {
    /// The payload bytes are the JSON document.
    #[default]
    Json,
    /// The Confluent wire format: magic byte `0x00` and a 4-byte schema id, then the JSON
    /// (what Confluent's JSON Schema serializers write; see [`crate::confluent`]).
    Confluent,
}

impl WireFormat {
    #[allow(
        clippy::trivially_copy_pass_by_ref,
        reason = "serde's skip_serializing_if passes a reference"
    )]
    fn is_json(&self) -> bool {
        *self == WireFormat::Json
    }
}

/// The `envelope` of a topic entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSpec {
    /// Plain JSON or a CloudEvents mode.
    #[serde(default)]
    pub mode: EnvelopeMode,
    /// CloudEvents `type` set by the producer (required for owned CloudEvents topics).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// CloudEvents `source` set by the producer (required for owned CloudEvents topics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `dataschema` URI → JSON pointer (`#/$defs/X`) into the topic schema. When present, the
    /// event's `data` is validated by the definition its `dataschema` names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dataschemas: BTreeMap<String, String>,
}

/// One entry of `topics.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// The Kafka topic name, e.g. `platform.evkit.todo-created`.
    pub name: String,
    /// Owned or foreign.
    #[serde(default)]
    pub owner: Owner,
    /// Payload schema file, relative to the catalog; defaults to `<name>.event.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Partitions to create in development brokers.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Objects in the schema must not accept unknown fields (`additionalProperties: false`);
    /// checked by `evkit lint`.
    #[serde(default)]
    pub closed: bool,
    /// Key rules.
    #[serde(default)]
    pub key: KeyPolicy,
    /// Headers every message must carry; defaults to the header schema's `required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_headers: Option<Vec<String>>,
    /// Plain JSON or CloudEvents.
    #[serde(default)]
    pub envelope: EnvelopeSpec,
    /// How the payload bytes are framed: `json` (the default) or `confluent`.
    #[serde(default, skip_serializing_if = "WireFormat::is_json")]
    pub wire: WireFormat,
    /// Dead-letter topic; defaults to `<name>.dlq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
}

fn default_partitions() -> u32 {
    3
}

impl TopicSpec {
    /// The schema file name relative to the catalog directory.
    pub fn schema_file(&self) -> String {
        self.schema
            .clone()
            .unwrap_or_else(|| format!("{}.event.json", self.name))
    }

    /// The dead-letter topic for this topic.
    pub fn dead_letter_topic(&self) -> String {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| format!("{}.dlq", self.name))
    }
}

/// A topic of the catalog: its entry, its schema and its compiled [`Contract`].
#[derive(Debug, Clone)]
pub struct Topic {
    /// The `topics.yaml` entry.
    pub spec: TopicSpec,
    /// Path of the payload schema file.
    pub schema_path: PathBuf,
    /// The payload schema as loaded.
    pub schema: Value,
    contract: Arc<Contract>,
    headers_schema: Arc<Value>,
}

impl Topic {
    /// The topic name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The compiled contract (validators are built once, at load).
    pub fn contract(&self) -> &Arc<Contract> {
        &self.contract
    }

    /// The catalog's header schema (`headers.json`), which this topic's headers answer to.
    pub fn headers_schema(&self) -> &Value {
        &self.headers_schema
    }
}

/// The loaded catalog: every topic with its compiled contract.
#[derive(Debug, Clone)]
pub struct Catalog {
    dir: PathBuf,
    headers_path: PathBuf,
    headers_schema: Value,
    topics: Vec<Topic>,
    schemas: Vec<CompiledSchema>,
}

impl Catalog {
    /// Loads `dir/topics.yaml` and every schema it names, compiling all validators.
    ///
    /// Every problem found is reported at once in [`Error::Catalog`]: a missing file, invalid YAML or
    /// JSON (with line and column), a duplicate or illegal topic name, a `$ref` to a file that is not
    /// a schema of this catalog, a schema that does not compile, a key pointer or dataschema that
    /// points nowhere.
    pub fn load(dir: impl AsRef<Path>) -> Result<Catalog, Error> {
        Catalog::load_with(dir, &[])
    }

    /// [`Catalog::load`], with validators generated at build time for some of the schemas (the
    /// `PRECOMPILED` list that `evkit generate` writes): a contract answers `is_valid` with the
    /// one generated from a schema equal to its own, and lists errors with the runtime validator.
    /// [`Catalog::schemas`] tells which schemas found one.
    pub fn load_with(dir: impl AsRef<Path>, precompiled: &[Precompiled]) -> Result<Catalog, Error> {
        let dir = dir.as_ref().to_path_buf();
        let compiler = Compiler::new(precompiled);
        let mut problems = Vec::new();
        let index_path = dir.join("topics.yaml");
        let fail = |problems: Vec<Problem>| Error::Catalog {
            dir: dir.clone(),
            problems,
        };
        let text = match std::fs::read_to_string(&index_path) {
            Ok(t) => t,
            Err(e) => {
                return Err(fail(vec![problem(
                    &index_path,
                    "",
                    format!("cannot read: {e}"),
                )]));
            }
        };
        let file: CatalogFile = match serde_norway::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                let location = e
                    .location()
                    .map(|l| format!("line {} column {}", l.line(), l.column()))
                    .unwrap_or_default();
                let first = e.to_string();
                let mut all = vec![problem(&index_path, &location, first.clone())];
                all.extend(
                    other_entry_problems(&text, &first)
                        .into_iter()
                        .map(|m| problem(&index_path, "", m)),
                );
                return Err(fail(all));
            }
        };

        let headers_path = dir.join(&file.headers);
        let headers_schema = read_json(&headers_path, &mut problems);
        let header_base = headers_schema
            .as_ref()
            .and_then(|s| match HeaderRules::base(s) {
                Ok(b) => Some(b),
                Err(e) => {
                    problems.push(problem(&headers_path, "", e));
                    None
                }
            });

        let schema_files: HashSet<String> =
            file.topics.iter().map(TopicSpec::schema_file).collect();
        let mut seen = HashSet::new();
        let mut topics = Vec::new();
        for (i, spec) in file.topics.iter().enumerate() {
            if !seen.insert(spec.name.clone()) {
                problems.push(problem(
                    &index_path,
                    &format!("/topics/{i}/name"),
                    format!("duplicate topic `{}`", spec.name),
                ));
                continue;
            }
            let ctx = TopicContext {
                dir: &dir,
                index_path: &index_path,
                schema_files: &schema_files,
                header_base: header_base.as_ref(),
                max_payload_bytes: file.max_payload_bytes,
                compiler: &compiler,
            };
            if let Some(topic) = ctx.load(i, spec, &mut problems) {
                topics.push(topic);
            }
        }
        if !problems.is_empty() {
            return Err(fail(problems));
        }
        let headers_schema = headers_schema.unwrap_or(Value::Null);
        let shared = Arc::new(headers_schema.clone());
        for t in &mut topics {
            t.headers_schema = Arc::clone(&shared);
        }
        Ok(Catalog {
            dir,
            headers_path,
            headers_schema,
            topics,
            schemas: compiler.into_compiled(),
        })
    }

    /// The catalog directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the shared header schema.
    pub fn headers_path(&self) -> &Path {
        &self.headers_path
    }

    /// The shared header schema.
    pub fn headers_schema(&self) -> &Value {
        &self.headers_schema
    }

    /// Every distinct schema the catalog compiled into a validator: payload schemas, the
    /// wrappers of dataschemas and of the identity document, key schemas, each topic's header
    /// schema and each header's. `evkit generate` writes a build-time validator for each.
    pub fn schemas(&self) -> &[CompiledSchema] {
        &self.schemas
    }

    /// All topics, in catalog order.
    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    /// One topic by name.
    pub fn topic(&self, name: &str) -> Result<&Topic, Error> {
        self.topics
            .iter()
            .find(|t| t.spec.name == name)
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_owned(),
                known: self
                    .topics
                    .iter()
                    .map(|t| t.spec.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// A topic of the catalog, or `None` (no error built: for callers that also handle foreign
    /// topics).
    pub fn get(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.spec.name == name)
    }

    /// The compiled contract of a topic.
    pub fn contract(&self, name: &str) -> Result<&Arc<Contract>, Error> {
        self.topic(name).map(Topic::contract)
    }
}

struct TopicContext<'a> {
    dir: &'a Path,
    index_path: &'a Path,
    schema_files: &'a HashSet<String>,
    header_base: Option<&'a HeaderRules>,
    max_payload_bytes: Option<usize>,
    compiler: &'a Compiler,
}

impl TopicContext<'_> {
    /// Checks one `topics.yaml` entry and compiles its contract; every problem goes to `problems`.
    fn load(&self, i: usize, spec: &TopicSpec, problems: &mut Vec<Problem>) -> Option<Topic> {
        let index_path = self.index_path;
        let at = |field: &str| format!("/topics/{i}{field}");
        if let Err(why) = check_topic_name(&spec.name) {
            problems.push(problem(index_path, &at("/name"), why));
        }
        if let Some(p) = spec.key.pointer.as_ref().filter(|p| !p.starts_with('/')) {
            problems.push(problem(
                index_path,
                &at("/key/pointer"),
                format!("`{p}` is not a JSON pointer (it must start with `/`)"),
            ));
        }
        if spec.key.pointer.is_some() && spec.key.schema.is_some() {
            problems.push(problem(
                index_path,
                &at("/key"),
                "set either `pointer` or `schema`, not both".to_owned(),
            ));
        }
        let cloudevents = spec.envelope.mode != EnvelopeMode::Plain;
        if !cloudevents && !spec.envelope.dataschemas.is_empty() {
            problems.push(problem(
                index_path,
                &at("/envelope/dataschemas"),
                "dataschemas need a CloudEvents envelope mode".to_owned(),
            ));
        }
        if cloudevents
            && spec.owner == Owner::Owned
            && (spec.envelope.event_type.is_none() || spec.envelope.source.is_none())
        {
            problems.push(problem(
                index_path,
                &at("/envelope"),
                "an owned CloudEvents topic needs `type` and `source` for its producer".to_owned(),
            ));
        }

        let schema_path = self.dir.join(spec.schema_file());
        let schema = read_json(&schema_path, problems)?;
        let before = problems.len();
        check_refs(&schema, "", &schema_path, self.schema_files, problems);
        if let Some(p) = spec.key.pointer.as_deref().filter(|p| p.starts_with('/'))
            && property_schema(&schema, p).is_none()
        {
            problems.push(problem(
                index_path,
                &at("/key/pointer"),
                format!("`{p}` names no property of {}", schema_path.display()),
            ));
        }
        for (uri, pointer) in &spec.envelope.dataschemas {
            let frag = pointer.strip_prefix('#').unwrap_or(pointer);
            if schema.pointer(frag).is_none() {
                problems.push(problem(
                    index_path,
                    &format!("{}/{uri}", at("/envelope/dataschemas")),
                    format!("`{pointer}` points nowhere in {}", schema_path.display()),
                ));
            }
        }
        if problems.len() > before {
            return None;
        }
        match Contract::compile(
            self.compiler,
            spec,
            &schema,
            self.header_base?,
            self.max_payload_bytes,
        ) {
            Ok(contract) => Some(Topic {
                spec: spec.clone(),
                schema_path,
                schema,
                contract: Arc::new(contract),
                headers_schema: Arc::new(Value::Null),
            }),
            Err((field, message)) => {
                let (file, location) = if field.is_empty() {
                    (schema_path.as_path(), String::new())
                } else {
                    (index_path, at(&field))
                };
                problems.push(problem(file, &location, message));
                None
            }
        }
    }
}

/// The problems of every topic entry other than the one serde stopped at (it reports only the
/// first): each entry is read on its own.
fn other_entry_problems(text: &str, first: &str) -> Vec<String> {
    let Ok(doc) = serde_norway::from_str::<serde_norway::Value>(text) else {
        return Vec::new();
    };
    let Some(topics) = doc.get("topics").and_then(serde_norway::Value::as_sequence) else {
        return Vec::new();
    };
    topics
        .iter()
        .enumerate()
        .filter(|(i, _)| !first.starts_with(&format!("topics[{i}]")))
        .filter_map(|(i, entry)| {
            let e = TopicSpec::deserialize(entry.clone()).err()?;
            let name = entry
                .get("name")
                .and_then(serde_norway::Value::as_str)
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            Some(format!("topics[{i}]{name}: {e}"))
        })
        .collect()
}

fn problem(file: &Path, location: &str, message: String) -> Problem {
    Problem {
        file: file.to_path_buf(),
        location: location.to_owned(),
        message,
    }
}

fn read_json(path: &Path, problems: &mut Vec<Problem>) -> Option<Value> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(problem(path, "", format!("cannot read: {e}")));
            return None;
        }
    };
    match serde_json::from_slice(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            let location = format!("line {} column {}", e.line(), e.column());
            problems.push(problem(path, &location, format!("invalid JSON: {e}")));
            None
        }
    }
}

/// Kafka's own rule: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 249 || name == "." || name == ".." {
        return Err(format!(
            "`{name}` is not a legal Kafka topic name (1-249 characters)"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "`{name}` is not a legal Kafka topic name: `{c}` is not one of [a-zA-Z0-9._-]"
        ));
    }
    Ok(())
}

/// Reports every `$ref` (in a subschema position, see [`crate::walk`]) that leaves the
/// document: to a file that is not a schema of this catalog (an unknown topic) or to another
/// topic's schema (not supported: typify cannot follow it).
fn check_refs(
    value: &Value,
    pointer: &str,
    file: &Path,
    schema_files: &HashSet<String>,
    problems: &mut Vec<Problem>,
) {
    for (at, s) in crate::walk::subschemas(value) {
        let Some(r) = s
            .get("$ref")
            .and_then(Value::as_str)
            .filter(|r| !r.starts_with('#'))
        else {
            continue;
        };
        let target = r.split('#').next().unwrap_or(r);
        let name = target.rsplit('/').next().unwrap_or(target);
        let message = if schema_files.contains(name) {
            format!(
                "`$ref` to `{r}`: references between topic schemas are not supported; keep shared definitions in this file's `$defs`"
            )
        } else {
            format!("`$ref` to `{r}`: no topic of this catalog has that schema")
        };
        problems.push(problem(file, &format!("{pointer}{at}/$ref"), message));
    }
}

/// The subschema describing the value at `pointer` in instances of `schema`, following
/// `properties` (and one level of `$ref` into `$defs`).
pub(crate) fn property_schema<'a>(schema: &'a Value, pointer: &str) -> Option<&'a Value> {
    let root = schema;
    let mut node = schema;
    for segment in pointer.split('/').skip(1) {
        let segment = crate::pointer::unescape(segment);
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            node = root.pointer(r.strip_prefix('#')?)?;
        }
        node = node.get("properties")?.get(segment.as_ref())?;
    }
    Some(node)
}
