//! Variants of a catalog folder for tests: the same schemas, with some topics' entries changed.

use std::path::Path;

use serde_norway::Value;

use crate::Error;

/// Copies the files of the catalog folder `src` (topics.yaml, schemas) into `dst`, which must
/// exist.
pub fn copy(src: &Path, dst: &Path) -> Result<(), Error> {
    let io = |what: &Path, source: std::io::Error| Error::Io {
        path: what.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(src).map_err(|e| io(src, e))? {
        let entry = entry.map_err(|e| io(src, e))?;
        if entry.path().is_file() {
            std::fs::copy(entry.path(), dst.join(entry.file_name()))
                .map_err(|e| io(&entry.path(), e))?;
        }
    }
    Ok(())
}

/// Copies the catalog in `src` into `dst` (which must exist) with `wire: confluent` set on
/// `topics` (catalog names). Comments in `topics.yaml` are not kept.
pub fn with_confluent_wire(src: &Path, dst: &Path, topics: &[&str]) -> Result<(), Error> {
    let io = |what: &Path, source: std::io::Error| Error::Io {
        path: what.display().to_string(),
        source,
    };
    let yaml = |e: serde_norway::Error| Error::Contracts {
        problems: vec![format!("{}: {e}", dst.join("topics.yaml").display())],
    };
    copy(src, dst)?;
    let path = dst.join("topics.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    let mut doc: Value = serde_norway::from_str(&text).map_err(yaml)?;
    let mut found = 0;
    if let Some(entries) = doc.get_mut("topics").and_then(Value::as_sequence_mut) {
        for entry in entries {
            let named = entry
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| topics.contains(&n));
            if let (true, Some(map)) = (named, entry.as_mapping_mut()) {
                map.insert("wire".into(), "confluent".into());
                found += 1;
            }
        }
    }
    if found != topics.len() {
        return Err(Error::Contracts {
            problems: vec![format!(
                "{}: not every topic of {topics:?} is in the catalog",
                path.display()
            )],
        });
    }
    let text = serde_norway::to_string(&doc).map_err(yaml)?;
    std::fs::write(&path, text).map_err(|e| io(&path, e))
}
