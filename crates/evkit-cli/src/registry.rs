//! `evkit registry push|pull|check`, and the schema id of `wire: confluent` topics for
//! `validate` and `produce`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use evkit::config::{RegistryConfig, SubjectStrategy};
use evkit::registry::{Registry, schema_text, subject_for};
use evkit_schema::{Catalog, WireFormat};
use serde_json::json;

use crate::Format;

/// Where the registry is: the flag, or `EVKIT_SCHEMA_REGISTRY_*` / `EVKIT_CONFIG` like a
/// service's configuration.
#[derive(clap::Args, Clone)]
pub(crate) struct RegistryArgs {
    /// The schema registry's URL (default: `EVKIT_SCHEMA_REGISTRY_URL` or the configuration's
    /// `registry.url`). Basic auth and a CA file come from `EVKIT_SCHEMA_REGISTRY_USERNAME`,
    /// `_PASSWORD` and `_CA_FILE`.
    #[arg(long = "registry", value_name = "URL")]
    pub url: Option<String>,
    /// How subjects are named: `topic-name` (`<topic>-value`), `record-name` (the schema's
    /// `title`) or `topic-record-name`.
    #[arg(long, value_enum)]
    pub subject_strategy: Option<Strategy>,
}

/// `--subject-strategy` (named as Confluent's `*NameStrategy` classes).
#[derive(Clone, Copy, clap::ValueEnum)]
#[allow(
    clippy::enum_variant_names,
    reason = "the names users know from Confluent"
)]
pub(crate) enum Strategy {
    TopicName,
    RecordName,
    TopicRecordName,
}

impl RegistryArgs {
    /// The registry settings, when a URL is known.
    fn config(&self) -> Result<Option<RegistryConfig>> {
        let mut registry = evkit::Config::load()?.registry;
        if let Some(url) = &self.url {
            registry
                .get_or_insert_with(RegistryConfig::default)
                .url
                .clone_from(url);
        }
        if let (Some(r), Some(s)) = (&mut registry, self.subject_strategy) {
            r.subject_strategy = match s {
                Strategy::TopicName => SubjectStrategy::TopicName,
                Strategy::RecordName => SubjectStrategy::RecordName,
                Strategy::TopicRecordName => SubjectStrategy::TopicRecordName,
            };
        }
        Ok(registry.filter(|r| !r.url.is_empty()))
    }

    fn client(&self) -> Result<(Registry, SubjectStrategy)> {
        let Some(config) = self.config()? else {
            bail!("no schema registry: pass --registry URL or set EVKIT_SCHEMA_REGISTRY_URL");
        };
        Ok((Registry::new(&config)?, config.subject_strategy))
    }
}

/// The schema id to frame `topic`'s payloads with: `--schema-id`, else the id the registry
/// gave the catalog's schema (when a registry is configured); `None` for a JSON topic.
pub(crate) fn schema_id(
    catalog: &Catalog,
    topic: &str,
    given: Option<u32>,
    registry: &RegistryArgs,
) -> Result<Option<u32>> {
    let Some(t) = catalog.get(topic) else {
        return Ok(given);
    };
    if t.spec.wire != WireFormat::Confluent {
        if given.is_some() {
            bail!(
                "{topic} is a JSON topic (no `wire: confluent` in topics.yaml): --schema-id does not apply"
            );
        }
        return Ok(None);
    }
    if given.is_some() {
        return Ok(given);
    }
    if registry.config()?.is_none() {
        return Ok(None);
    }
    let (client, strategy) = registry.client()?;
    let subject = subject_for(t, topic, strategy)?;
    let found = crate::runtime()?.block_on(client.lookup(&subject, &schema_text(t)))?;
    match found {
        Some(v) => Ok(Some(v.id)),
        None => bail!(
            "the catalog's schema of {topic} is not registered under subject `{subject}` at {} \
             (register it with `evkit registry push`)",
            client.url()
        ),
    }
}

#[derive(clap::Subcommand)]
pub(crate) enum RegistryCommand {
    /// Register each owned topic's payload schema (or each `--topic`'s) under its subject;
    /// a schema already registered there is left as it is.
    Push {
        /// Only these topics (owned or foreign); repeat for more.
        #[arg(long = "topic")]
        topics: Vec<String>,
        #[command(flatten)]
        registry: RegistryArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Fetch every version of a subject into a folder: `<subject>.v<N>.json` each, and with
    /// `--topic` the latest as the topic's schema file (`<topic>.event.json`).
    Pull {
        /// The subject (default: the `--topic`'s subject).
        #[arg(long, required_unless_present = "topic")]
        subject: Option<String>,
        /// The catalog topic the subject belongs to.
        #[arg(long)]
        topic: Option<String>,
        /// Where the files go.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// For each owned topic (or each `--topic`): the registry's compatibility verdict for the
    /// catalog's schema against the subject's latest version, and evkit's own gate on the same
    /// pair, side by side. Exits 1 when either finds the change incompatible.
    Check {
        /// Only these topics; repeat for more.
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// The gate's direction: `backward` (the registry's default level: the new schema
        /// reads what the registered one wrote), `forward` or `full`.
        #[arg(long, value_enum, default_value_t = crate::GateMode::Backward)]
        mode: crate::GateMode,
        #[command(flatten)]
        registry: RegistryArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

pub(crate) fn run(catalog: &Catalog, command: &RegistryCommand) -> Result<ExitCode> {
    match command {
        RegistryCommand::Push {
            topics,
            registry,
            format,
        } => {
            let (client, strategy) = registry.client()?;
            for t in topics {
                catalog.topic(t)?;
            }
            let pushed = crate::runtime()?
                .block_on(evkit::registry::push(catalog, &client, strategy, topics))?;
            for p in &pushed {
                match format {
                    Format::Json => outln!(
                        "{}",
                        json!({"topic": p.topic, "subject": p.subject, "id": p.id, "registered": p.new})
                    ),
                    Format::Human => outln!(
                        "{} → {} id {} ({})",
                        p.topic,
                        p.subject,
                        p.id,
                        if p.new {
                            "registered"
                        } else {
                            "already registered"
                        }
                    ),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RegistryCommand::Pull {
            subject,
            topic,
            out,
            registry,
            format,
        } => pull(
            catalog,
            subject.as_deref(),
            topic.as_deref(),
            out,
            registry,
            *format,
        ),
        RegistryCommand::Check {
            topics,
            mode,
            registry,
            format,
        } => check(catalog, topics, *mode, registry, *format),
    }
}

fn pull(
    catalog: &Catalog,
    subject: Option<&str>,
    topic: Option<&str>,
    out: &Path,
    registry: &RegistryArgs,
    format: Format,
) -> Result<ExitCode> {
    let (client, strategy) = registry.client()?;
    let subject = match (subject, topic) {
        (Some(s), _) => s.to_owned(),
        (None, Some(t)) => subject_for(catalog.topic(t)?, t, strategy)?,
        (None, None) => bail!("pass --subject or --topic"),
    };
    let rt = crate::runtime()?;
    let versions = rt.block_on(client.versions(&subject))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    let mut latest = None;
    for v in versions {
        let found = rt.block_on(client.version(&subject, &v.to_string()))?;
        if found.schema_type.as_deref().is_some_and(|t| t != "JSON") {
            bail!(
                "subject `{subject}` version {v} is a {} schema; evkit catalogs hold JSON Schema",
                found.schema_type.unwrap_or_default()
            );
        }
        let doc: serde_json::Value = serde_json::from_str(&found.schema).with_context(|| {
            format!("subject `{subject}` version {v}: the registry's schema is not JSON")
        })?;
        let path = out.join(format!("{subject}.v{v}.json"));
        write_json(&path, &doc)?;
        written.push(json!({"version": v, "id": found.id, "file": path}));
        latest = Some(doc);
    }
    if let (Some(t), Some(doc)) = (topic, &latest) {
        let path = out.join(catalog.topic(t)?.spec.schema_file());
        write_json(&path, doc)?;
        written.push(json!({"version": "latest", "file": path}));
    }
    match format {
        Format::Json => outln!("{}", json!({"subject": subject, "files": written})),
        Format::Human => {
            for w in &written {
                outln!(
                    "{subject} version {} → {}",
                    w["version"],
                    w["file"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_json(path: &Path, doc: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(doc)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn check(
    catalog: &Catalog,
    topics: &[String],
    mode: crate::GateMode,
    registry: &RegistryArgs,
    format: Format,
) -> Result<ExitCode> {
    use evkit_testkit::gate::{Mode, Options};
    let (client, strategy) = registry.client()?;
    let rt = crate::runtime()?;
    let mut all_ok = true;
    for topic in evkit::registry::selected(catalog, topics) {
        let subject = subject_for(topic, topic.name(), strategy)?;
        let latest = match rt.block_on(client.version(&subject, "latest")) {
            Ok(v) => v,
            Err(evkit::Error::Registry {
                status: Some(404),
                error_code: Some(40401),
                ..
            }) => {
                report_new(topic.name(), &subject, format);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let registry_verdict =
            rt.block_on(client.check_compatibility(&subject, &schema_text(topic)))?;
        // evkit's gate on the same pair: a copy of the catalog whose schema for this topic is
        // the registered one, as the base.
        let base_dir = tempfile::tempdir()?;
        evkit_testkit::catalogs::copy(catalog.dir(), base_dir.path())?;
        let registered: serde_json::Value = serde_json::from_str(&latest.schema)
            .with_context(|| format!("subject `{subject}` version {}: not JSON", latest.version))?;
        write_json(&base_dir.path().join(topic.spec.schema_file()), &registered)?;
        let base = Catalog::load(base_dir.path()).with_context(|| {
            format!(
                "subject `{subject}` version {} does not load as {}'s schema",
                latest.version,
                topic.name()
            )
        })?;
        let mode_name = match mode {
            crate::GateMode::Full => "full",
            crate::GateMode::Backward => "backward",
            crate::GateMode::Forward => "forward",
        };
        let opts = Options {
            mode: match mode {
                crate::GateMode::Full => Mode::Full,
                crate::GateMode::Backward => Mode::Backward,
                crate::GateMode::Forward => Mode::Forward,
            },
            ..Options::default()
        };
        let report = evkit_testkit::gate::gate(&base, catalog, None, &opts)?;
        let findings: Vec<String> = report
            .blocking()
            .map(|f| format!("{} {}: {}", f.rule, f.pointer, f.detail))
            .collect();
        let gate_ok = report.compatible();
        all_ok &= gate_ok && registry_verdict.is_compatible;
        match format {
            Format::Json => outln!(
                "{}",
                json!({
                    "topic": topic.name(),
                    "subject": subject,
                    "registered_version": latest.version,
                    "registry": {"compatible": registry_verdict.is_compatible, "messages": registry_verdict.messages},
                    "evkit": {"compatible": gate_ok, "findings": findings},
                })
            ),
            Format::Human => {
                outln!(
                    "{} against {subject} version {}:",
                    topic.name(),
                    latest.version
                );
                let word = |ok: bool| if ok { "compatible" } else { "INCOMPATIBLE" };
                outln!("  registry: {}", word(registry_verdict.is_compatible));
                for m in &registry_verdict.messages {
                    outln!("    - {m}");
                }
                outln!("  evkit gate ({mode_name}): {}", word(gate_ok));
                for f in &findings {
                    outln!("    - {f}");
                }
            }
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn report_new(topic: &str, subject: &str, format: Format) {
    match format {
        Format::Json => outln!(
            "{}",
            json!({"topic": topic, "subject": subject, "registered_version": null,
                   "registry": {"compatible": true, "messages": ["subject not registered yet"]},
                   "evkit": {"compatible": true, "findings": []}})
        ),
        Format::Human => {
            outln!(
                "{topic}: subject {subject} is not registered yet: nothing to be compatible with"
            );
        }
    }
}
