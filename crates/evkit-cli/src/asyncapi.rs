//! `evkit asyncapi export|import`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use evkit_schema::Catalog;

#[derive(clap::Subcommand)]
pub(crate) enum AsyncApiCommand {
    /// Write one AsyncAPI 3.0 document for the catalog: a channel, message and Kafka bindings
    /// per topic, a send operation per owned topic and a receive operation per consuming
    /// service of `--contracts`.
    Export {
        /// The service contracts folder (consuming services become receive operations).
        #[arg(long)]
        contracts: Option<PathBuf>,
        /// The document's `info.title`.
        #[arg(long, default_value = "evkit event API")]
        title: String,
        /// The document's `info.version`.
        #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
        api_version: String,
        /// Where to write it (`.json` for JSON, anything else YAML); default standard output
        /// (YAML).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Build a catalog folder (topics.yaml, schema files, header schema) from an AsyncAPI 3.0
    /// document (YAML or JSON).
    Import {
        /// The AsyncAPI document.
        file: PathBuf,
        /// The catalog folder to write (created; must not hold a topics.yaml).
        #[arg(long)]
        out: PathBuf,
    },
}

pub(crate) fn run(catalog: Option<&Catalog>, command: &AsyncApiCommand) -> Result<ExitCode> {
    match command {
        AsyncApiCommand::Export {
            contracts,
            title,
            api_version,
            out,
        } => {
            let Some(catalog) = catalog else {
                bail!("export needs a catalog (--catalog DIR)");
            };
            let contracts = contracts
                .as_ref()
                .map(|dir| evkit_testkit::contracts::Contracts::load(dir, catalog))
                .transpose()?;
            let doc =
                evkit_testkit::asyncapi::export(catalog, contracts.as_ref(), title, api_version)?;
            let json_out = out
                .as_ref()
                .is_some_and(|p| p.extension().is_some_and(|e| e == "json"));
            let text = if json_out {
                let mut t = serde_json::to_string_pretty(&doc)?;
                t.push('\n');
                t
            } else {
                serde_norway::to_string(&doc)?
            };
            if let Some(path) = out {
                std::fs::write(path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            } else {
                outln!("{}", text.trim_end());
            }
            Ok(ExitCode::SUCCESS)
        }
        AsyncApiCommand::Import { file, out } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let doc: serde_json::Value = serde_norway::from_str(&text)
                .with_context(|| format!("{} is not YAML or JSON", file.display()))?;
            if out.join("topics.yaml").exists() {
                bail!(
                    "{} already holds a catalog (topics.yaml): import into an empty folder",
                    out.display()
                );
            }
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            evkit_testkit::asyncapi::import(&doc, out)
                .with_context(|| format!("importing {}", file.display()))?;
            let catalog = Catalog::load(out).with_context(|| {
                format!("the catalog imported into {} does not load", out.display())
            })?;
            eprintln!(
                "evkit: imported {} topic(s) into {}",
                catalog.topics().len(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
