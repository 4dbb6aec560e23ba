//! A client of the Confluent Schema Registry REST API (feature `registry`): register and look up
//! schemas, list a subject's versions and ids, ask for compatibility. It backs `wire: confluent`
//! topics (the ids producers frame and consumers accept) and `evkit registry`.
//!
//! Requests time out after [`RegistryConfig::timeout_ms`]; a 5xx answer, a timeout or a refused
//! connection is retried with exponential backoff ([`RegistryConfig::retries`] times). Every
//! other failure is an [`Error::Registry`] that names the subject and version, the HTTP status,
//! and the registry's own `error_code` and `message`.
//!
//! ```no_run
//! # async fn run() -> Result<(), evkit::Error> {
//! use evkit::config::RegistryConfig;
//! use evkit::registry::{Registry, SchemaText};
//!
//! let registry = Registry::new(&RegistryConfig {
//!     url: "http://localhost:8081".to_owned(),
//!     ..RegistryConfig::default()
//! })?;
//! let schema = SchemaText::json(r#"{"type": "object"}"#);
//! let id = registry.register("platform.evkit.todo-created-value", &schema).await?;
//! assert!(registry.registered_ids("platform.evkit.todo-created-value").await?.contains(&id));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use backon::BackoffBuilder as _;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::config::{RegistryConfig, Secret, SubjectStrategy};

/// The registry's media type (what Confluent's clients send and accept).
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A reference from one registered schema to another (a `$ref` between catalog files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The name the referring schema uses (the `$ref` URL, e.g. `common.json`).
    pub name: String,
    /// The subject the referenced schema is registered under.
    pub subject: String,
    /// Its version.
    pub version: u32,
}

/// A schema as the registry holds it: the document as text, its type, its references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaText {
    /// The schema document, as a string.
    pub schema: String,
    /// `JSON` (absent means `AVRO` to the registry).
    #[serde(default = "avro", skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    /// References to other registered schemas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

#[allow(clippy::unnecessary_wraps)] // serde's `default` needs the field's type
fn avro() -> Option<String> {
    None
}

impl SchemaText {
    /// A JSON Schema without references.
    pub fn json(schema: impl Into<String>) -> SchemaText {
        SchemaText {
            schema: schema.into(),
            schema_type: Some("JSON".to_owned()),
            references: Vec::new(),
        }
    }

    /// The schema document parsed as JSON.
    pub fn parse(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.schema)
    }
}

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version number.
    pub version: u32,
    /// The schema's global id.
    pub id: u32,
    /// The schema document.
    pub schema: String,
    /// `JSON`, `AVRO` (when absent) or `PROTOBUF`.
    #[serde(default)]
    pub schema_type: Option<String>,
    /// References to other registered schemas.
    #[serde(default)]
    pub references: Vec<Reference>,
}

/// The registry's answer to a compatibility check.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Compatibility {
    /// Whether the schema may be registered under the subject.
    pub is_compatible: bool,
    /// Why not (with `verbose=true`).
    #[serde(default)]
    pub messages: Vec<String>,
}

/// The error body of every registry answer that is not a success.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error_code: Option<i64>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct IdBody {
    id: u32,
}

#[derive(Deserialize)]
struct SubjectVersionRef {
    subject: String,
}

/// A schema registry client. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Registry {
    http: reqwest::Client,
    base: String,
    auth: Option<(String, Secret)>,
    retries: usize,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("url", &self.base)
            .field("username", &self.auth.as_ref().map(|(u, _)| u))
            .field("password", &self.auth.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// What a request is about, for errors: `subject `x` version 3`.
fn about(subject: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("subject `{subject}` version {v}"),
        None => format!("subject `{subject}`"),
    }
}

/// What a path segment escapes: all but RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn percent(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

impl Registry {
    /// A client for `config.url`, with its basic auth and CA file.
    pub fn new(config: &RegistryConfig) -> Result<Registry, Error> {
        let invalid = |message: String| Error::Config {
            source_name: "registry".to_owned(),
            message,
        };
        let base = config.url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(invalid(format!(
                "registry url `{base}` is not an http:// or https:// URL"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms.max(1)))
            .user_agent(concat!("evkit/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| Error::Io {
                context: format!("registry CA file {}", path.display()),
                source: e,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| invalid(format!("registry CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(invalid(format!(
                    "registry CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| invalid(format!("registry client: {e}")))?;
        let auth = match (&config.username, &config.password) {
            (Some(u), p) => Some((u.clone(), p.clone().unwrap_or_default())),
            (None, Some(_)) => {
                return Err(invalid(
                    "registry password given without a username".to_owned(),
                ));
            }
            (None, None) => None,
        };
        Ok(Registry {
            http,
            base,
            auth,
            retries: config.retries,
        })
    }

    /// The registry's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Sends one request (retrying 5xx, timeouts and connection failures) and decodes the
    /// answer. `Ok(None)` for a 404 when `missing_ok`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &str,
        missing_ok: bool,
    ) -> Result<Option<T>, Error> {
        let url = format!("{}{path}", self.base);
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(self.retries)
            .with_jitter()
            .build();
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header(reqwest::header::ACCEPT, CONTENT_TYPE);
            if let Some(b) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                    .body(b.to_string());
            }
            if let Some((user, password)) = &self.auth {
                request = request.basic_auth(user, Some(password.expose()));
            }
            let transient = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        let bytes = response.bytes().await.map_err(|e| {
                            registry_error(what, Some(status.as_u16()), None, e.to_string())
                        })?;
                        return serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                            registry_error(
                                what,
                                Some(status.as_u16()),
                                None,
                                format!("the answer is not what the registry API documents: {e}"),
                            )
                        });
                    }
                    if status == reqwest::StatusCode::NOT_FOUND && missing_ok {
                        return Ok(None);
                    }
                    let text = response.text().await.unwrap_or_default();
                    let body: Option<ErrorBody> = serde_json::from_str(&text).ok();
                    let code = body.as_ref().and_then(|b| b.error_code);
                    let message = body
                        .and_then(|b| b.message)
                        .unwrap_or_else(|| text.chars().take(200).collect());
                    let error = registry_error(what, Some(status.as_u16()), code, message);
                    if !status.is_server_error() {
                        return Err(error);
                    }
                    error
                }
                Err(e) if e.is_timeout() || e.is_connect() || e.is_request() => {
                    registry_error(what, None, None, format!("{e} ({url})"))
                }
                Err(e) => return Err(registry_error(what, None, None, e.to_string())),
            };
            match delays.next() {
                Some(delay) => {
                    tracing::warn!(error = %transient, ?delay, "schema registry: retrying");
                    tokio::time::sleep(delay).await;
                }
                None => return Err(transient),
            }
        }
    }

    /// Registers `schema` under `subject` (or finds it already registered) and returns its id.
    pub async fn register(&self, subject: &str, schema: &SchemaText) -> Result<u32, Error> {
        let body = serde_json::to_value(schema)
            .map_err(|e| registry_error(&about(subject, None), None, None, e.to_string()))?;
        let what = format!("registering a schema under {}", about(subject, None));
        let found: Option<IdBody> = self
            .call(
                reqwest::Method::POST,
                &format!("/subjects/{}/versions", percent(subject)),
                Some(&body),
                &what,
                false,
            )
            .await?;
        found
            .map(|b| b.id)
            .ok_or_else(|| registry_error(&what, None, None, "no answer".to_owned()))
    }

    /// The version and id `schema` has under `subject`; `None` when it is not registered there
    /// (or the subject does not exist).
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &SchemaText,
    ) -> Result<Option<SubjectVersion>, Error> {
        let body = serde_json::to_value(schema)
            .map_err(|e| registry_error(&about(subject, None), None, None, e.to_string()))?;
        self.call(
            reqwest::Method::POST,
            &format!("/subjects/{}", percent(subject)),
            Some(&body),
            &format!("looking up a schema under {}", about(subject, None)),
            true,
        )
        .await
    }

    /// The subject's versions, oldest first (an error naming the subject when it does not exist).
    pub async fn versions(&self, subject: &str) -> Result<Vec<u32>, Error> {
        Ok(self
            .list_versions(subject, false)
            .await?
            .unwrap_or_default())
    }

    /// `GET /subjects/{subject}/versions`; `None` for a subject the registry does not have when
    /// `missing_ok`.
    async fn list_versions(
        &self,
        subject: &str,
        missing_ok: bool,
    ) -> Result<Option<Vec<u32>>, Error> {
        self.call(
            reqwest::Method::GET,
            &format!("/subjects/{}/versions", percent(subject)),
            None,
            &format!("listing the versions of {}", about(subject, None)),
            missing_ok,
        )
        .await
    }

    /// One version of a subject: a number or `latest`.
    pub async fn version(&self, subject: &str, version: &str) -> Result<SubjectVersion, Error> {
        let what = format!("reading {}", about(subject, Some(version)));
        let found: Option<SubjectVersion> = self
            .call(
                reqwest::Method::GET,
                &format!(
                    "/subjects/{}/versions/{}",
                    percent(subject),
                    percent(version)
                ),
                None,
                &what,
                false,
            )
            .await?;
        found.ok_or_else(|| registry_error(&what, None, None, "no answer".to_owned()))
    }

    /// The ids of every version of `subject` (empty when the subject does not exist).
    pub async fn registered_ids(&self, subject: &str) -> Result<Vec<u32>, Error> {
        let versions = self.list_versions(subject, true).await?;
        let mut ids = Vec::new();
        for v in versions.unwrap_or_default() {
            ids.push(self.version(subject, &v.to_string()).await?.id);
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Whether the schema with global id `id` is registered under `subject` (asks
    /// `/schemas/ids/{id}/versions`).
    pub async fn id_in_subject(&self, subject: &str, id: u32) -> Result<bool, Error> {
        let found: Option<Vec<SubjectVersionRef>> = self
            .call(
                reqwest::Method::GET,
                &format!("/schemas/ids/{id}/versions"),
                None,
                &format!("finding the subjects of schema id {id}"),
                true,
            )
            .await?;
        Ok(found
            .unwrap_or_default()
            .iter()
            .any(|r| r.subject == subject))
    }

    /// Whether `schema` is compatible with the subject's latest version under the subject's
    /// compatibility level (`verbose`: with the registry's reasons).
    pub async fn check_compatibility(
        &self,
        subject: &str,
        schema: &SchemaText,
    ) -> Result<Compatibility, Error> {
        let body = serde_json::to_value(schema)
            .map_err(|e| registry_error(&about(subject, None), None, None, e.to_string()))?;
        let what = format!(
            "checking compatibility with {}",
            about(subject, Some("latest"))
        );
        let found: Option<Compatibility> = self
            .call(
                reqwest::Method::POST,
                &format!(
                    "/compatibility/subjects/{}/versions/latest?verbose=true",
                    percent(subject)
                ),
                Some(&body),
                &what,
                false,
            )
            .await?;
        found.ok_or_else(|| registry_error(&what, None, None, "no answer".to_owned()))
    }
}

/// An [`Error::Registry`], with what the status means to a user.
fn registry_error(
    what: &str,
    status: Option<u16>,
    code: Option<i64>,
    message: impl fmt::Display,
) -> Error {
    let hint = match status {
        Some(401) => "unauthorized: check the registry username and password",
        Some(403) => "forbidden: these credentials may not do this",
        Some(404) => "not found",
        Some(409) => "incompatible with an earlier version under the subject's compatibility level",
        Some(422) => "the registry rejected the request (invalid schema or version)",
        Some(s) if s >= 500 => "the registry failed",
        Some(_) => "unexpected answer",
        None => "no answer from the registry",
    };
    Error::Registry {
        what: what.to_owned(),
        status,
        error_code: code,
        message: format!("{hint}: {message}"),
    }
}

/// The registry subject of `topic`'s payload schema under `strategy`, for the topic named
/// `actual` on the cluster (Confluent's serializers name subjects after the topic they write
/// to); the record name is the schema's `title`.
pub fn subject_for(
    topic: &evkit_schema::Topic,
    actual: &str,
    strategy: SubjectStrategy,
) -> Result<String, Error> {
    let title = topic
        .schema
        .get("title")
        .and_then(serde_json::Value::as_str);
    strategy
        .subject(actual, title)
        .ok_or_else(|| Error::Config {
            source_name: "registry".to_owned(),
            message: format!(
                "topic {}: the {strategy:?} subject strategy names subjects after the schema's \
             `title`, and {} has none",
                topic.name(),
                topic.schema_path.display()
            ),
        })
}

/// The schema registry's text of a topic's payload schema.
pub fn schema_text(topic: &evkit_schema::Topic) -> SchemaText {
    SchemaText::json(topic.schema.to_string())
}

/// What [`attach`] found for one `wire: confluent` topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The catalog topic.
    pub topic: String,
    /// Its subject.
    pub subject: String,
    /// The ids the subject lists: what a consumer accepts.
    pub registered: Vec<u32>,
    /// The id of the catalog's own schema under the subject, which producers frame; `None`
    /// when the catalog's schema is not registered there (`evkit registry push` registers it).
    pub schema_id: Option<u32>,
}

/// Connects every `wire: confluent` topic of `catalog` to the registry: its contract accepts
/// the ids its subject lists (and asks the registry about any other id before rejecting a
/// message for it), and frames produced messages with the id of the catalog's schema. Subjects
/// follow `config`'s registry strategy and topic names on the cluster (`config.topics`). Call
/// it once at start-up, before the consumer and producer run.
pub async fn attach(
    catalog: &evkit_schema::Catalog,
    registry: &Registry,
    config: &crate::Config,
) -> Result<Vec<Attached>, Error> {
    let strategy = config
        .registry
        .as_ref()
        .map(|r| r.subject_strategy)
        .unwrap_or_default();
    let mut subjects = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for topic in catalog.topics() {
        if topic.spec.wire != evkit_schema::WireFormat::Confluent {
            continue;
        }
        let subject = subject_for(topic, config.actual_topic(topic.name()), strategy)?;
        let registered = registry.registered_ids(&subject).await?;
        let schema_id = registry
            .lookup(&subject, &schema_text(topic))
            .await?
            .map(|v| v.id);
        let contract = topic.contract();
        contract.set_registered_schema_ids(registered.iter().copied());
        if let Some(id) = schema_id {
            contract.set_schema_id(id);
        }
        subjects.insert(topic.name().to_owned(), subject.clone());
        out.push(Attached {
            topic: topic.name().to_owned(),
            subject,
            registered,
            schema_id,
        });
    }
    let lookup = std::sync::Arc::new(Lookup {
        registry: registry.clone(),
        subjects,
        misses: std::sync::Mutex::default(),
    });
    for topic in catalog.topics() {
        if topic.spec.wire == evkit_schema::WireFormat::Confluent {
            topic.contract().set_schema_id_lookup(lookup.clone());
        }
    }
    Ok(out)
}

/// How long an id the registry did not list is not asked about again.
const MISS_TTL: Duration = Duration::from_secs(60);

/// At most this many misses are remembered: a stream of made-up ids cannot grow the memory
/// without bound (expired ones go first; past that, all of them).
const MAX_MISSES: usize = 4096;

/// The registry as a contract's [`SchemaIdLookup`](evkit_schema::confluent::SchemaIdLookup):
/// a miss is remembered for a minute, so a stream of messages with a foreign id does not become
/// a stream of requests; an unreachable registry counts as "not registered" (the message is
/// dead-lettered and can be replayed).
struct Lookup {
    registry: Registry,
    subjects: std::collections::BTreeMap<String, String>,
    misses: std::sync::Mutex<std::collections::HashMap<(String, u32), std::time::Instant>>,
}

impl evkit_schema::confluent::SchemaIdLookup for Lookup {
    fn is_registered<'a>(
        &'a self,
        topic: &'a str,
        id: u32,
    ) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let Some(subject) = self.subjects.get(topic) else {
                return false;
            };
            let key = (subject.clone(), id);
            {
                let misses = self
                    .misses
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if misses.get(&key).is_some_and(|at| at.elapsed() < MISS_TTL) {
                    return false;
                }
            }
            match self.registry.id_in_subject(subject, id).await {
                Ok(true) => true,
                Ok(false) => {
                    let mut misses = self
                        .misses
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if misses.len() >= MAX_MISSES {
                        misses.retain(|_, at| at.elapsed() < MISS_TTL);
                        if misses.len() >= MAX_MISSES {
                            misses.clear();
                        }
                    }
                    misses.insert(key, std::time::Instant::now());
                    false
                }
                Err(e) => {
                    tracing::warn!(topic, id, error = %e, "schema registry: cannot check a schema id");
                    false
                }
            }
        })
    }
}

/// The topics named in `only`, or when it is empty every owned topic: what `push` and
/// `evkit registry check` work on.
pub fn selected<'a>(
    catalog: &'a evkit_schema::Catalog,
    only: &'a [String],
) -> impl Iterator<Item = &'a evkit_schema::Topic> {
    catalog.topics().iter().filter(move |topic| {
        if only.is_empty() {
            topic.spec.owner == evkit_schema::Owner::Owned
        } else {
            only.iter().any(|t| t == topic.name())
        }
    })
}

/// What [`push`] did for one owned topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The catalog topic.
    pub topic: String,
    /// The subject registered under.
    pub subject: String,
    /// The schema's id.
    pub id: u32,
    /// `true` when the schema was registered now, `false` when it already was.
    pub new: bool,
}

/// Registers the payload schema of every owned topic of `catalog` (or of `only`) under its
/// subject (named after the catalog's topic names). A schema already registered there is left as it is.
pub async fn push(
    catalog: &evkit_schema::Catalog,
    registry: &Registry,
    strategy: SubjectStrategy,
    only: &[String],
) -> Result<Vec<Pushed>, Error> {
    let mut out = Vec::new();
    for topic in selected(catalog, only) {
        let subject = subject_for(topic, topic.name(), strategy)?;
        let text = schema_text(topic);
        let (id, new) = match registry.lookup(&subject, &text).await? {
            Some(found) => (found.id, false),
            None => (registry.register(&subject, &text).await?, true),
        };
        out.push(Pushed {
            topic: topic.name().to_owned(),
            subject,
            id,
            new,
        });
    }
    Ok(out)
}
