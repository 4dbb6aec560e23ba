use std::fmt;
use std::path::PathBuf;

use crate::contract::Violation;

/// One problem found while loading a catalog: which file, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in (`topics.yaml`, a schema file, ...).
    pub file: PathBuf,
    /// Where in the file: a JSON pointer (`/topics/2/key/pointer`) or `line L column C`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{} at {}: {}",
                self.file.display(),
                self.location,
                self.message
            )
        }
    }
}

/// Everything that can go wrong in `evkit-schema`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The catalog could not be loaded; every problem found is listed.
    #[error("catalog {dir} has {} problem(s):\n{}", problems.len(), list(problems))]
    Catalog {
        /// The catalog directory.
        dir: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
    /// A topic name that the catalog does not declare.
    #[error("topic `{topic}` is not in the catalog (known: {known})")]
    UnknownTopic {
        /// The requested topic.
        topic: String,
        /// The topics the catalog declares, comma separated.
        known: String,
    },
    /// A message broke its topic's contract.
    #[error("message on topic `{topic}` is invalid:\n{}", list(violations))]
    Invalid {
        /// The topic whose contract was checked.
        topic: String,
        /// Every rule the message broke.
        violations: Vec<Violation>,
    },
    /// An event could not be encoded for its topic.
    #[error("topic `{topic}`: the event does not serialize to JSON: {source}")]
    Encode {
        /// The topic.
        topic: String,
        /// What `serde_json` said.
        #[source]
        source: serde_json::Error,
    },
    /// A `wire: confluent` topic's message needs a schema id and none is known.
    #[error(
        "topic `{topic}` uses the Confluent wire format and no schema id is known for it: \
         configure a schema registry (`registry.url`, `EVKIT_SCHEMA_REGISTRY_URL`) or pass one"
    )]
    NoSchemaId {
        /// The topic.
        topic: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The violations of an [`Error::Invalid`]; empty for any other error.
    pub fn violations(&self) -> &[Violation] {
        match self {
            Error::Invalid { violations, .. } => violations,
            _ => &[],
        }
    }

    /// The problems of an [`Error::Catalog`]; empty for any other error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::Catalog { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}
