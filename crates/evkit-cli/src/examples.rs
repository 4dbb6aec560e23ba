//! `evkit generate-examples`: generated messages as JSON lines, deterministic for a seed.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, ensure};
use evkit_schema::Catalog;
use evkit_testkit::generate::{Draft, Schema};
use evkit_testkit::messages::{
    Generated, Rule, breakable_sites, invalid_message_for, invalid_payloads, rules, valid_message,
};
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

/// What to generate.
pub struct Args<'a> {
    /// A catalog topic: whole messages.
    pub topic: Option<&'a str>,
    /// Any JSON Schema file: payloads only.
    pub schema: Option<&'a Path>,
    /// How many.
    pub count: usize,
    /// Share of messages that break one rule (0..=1), spread evenly.
    pub invalid_ratio: f64,
    /// The seed.
    pub seed: u64,
    /// Only this rule is broken (see [`evkit_testkit::messages::Rule::matches`]).
    pub rule: Option<&'a str>,
    /// List the breakable rules instead of generating.
    pub list_rules: bool,
    /// The draft a `--schema` without `$schema` is read under.
    pub draft: Option<&'a str>,
}

/// `--draft`'s value as a jsonschema draft.
fn parse_draft(d: &str) -> Result<Draft> {
    Ok(
        match d.trim_start_matches("draft").trim_start_matches('-') {
            "4" | "04" => Draft::Draft4,
            "6" | "06" => Draft::Draft6,
            "7" | "07" => Draft::Draft7,
            "2019-09" => Draft::Draft201909,
            "2020-12" => Draft::Draft202012,
            other => anyhow::bail!("--draft must be 4, 6, 7, 2019-09 or 2020-12, not `{other}`"),
        },
    )
}

/// The `--schema` file compiled for generation, under `--draft` when given.
fn compile_schema(path: &Path, draft: Option<&str>) -> Result<Schema> {
    let doc = read_schema(path)?;
    let draft = draft.map(parse_draft).transpose()?;
    Ok(Schema::with_draft(&doc, draft)?)
}

/// Message `i` of `count` is invalid when the running share of invalid ones steps up there:
/// exactly `round(count * ratio)` invalid messages, spread evenly, no randomness needed.
fn is_invalid(i: usize, ratio: f64) -> bool {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let at = |n: usize| (n as f64 * ratio + 0.5).floor() as u64;
    at(i + 1) > at(i)
}

fn runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

fn draw<T: std::fmt::Debug>(s: &BoxedStrategy<T>, r: &mut TestRunner) -> Result<T> {
    Ok(s.new_tree(r)
        .map_err(|e| anyhow!("generating a message: {e}"))?
        .current())
}

fn message_line(topic: &evkit_schema::Topic, m: &Generated) -> Value {
    let (payload, schema_id) = payload_json(topic.spec.wire, &m.payload);
    let mut line = json!({
        "topic": topic.name(),
        "key": m.key.as_deref().map_or(Value::Null, bytes_json),
        "headers": headers_json(m.headers.iter().map(|(n, v)| (n.as_str(), Some(v.as_slice())))),
        "payload": payload,
        "broken": m.broken.as_ref().map(ToString::to_string),
    });
    if let Some(id) = schema_id {
        line["schema_id"] = id.into();
    }
    line
}

/// A payload as a message line shows it: for a `wire: confluent` topic whose payload is framed,
/// the JSON after the frame and the frame's schema id (a line with `schema_id` is framed again
/// when read back); otherwise [`bytes_json`] of the bytes.
pub fn payload_json(wire: evkit_schema::WireFormat, bytes: &[u8]) -> (Value, Option<u32>) {
    if wire == evkit_schema::WireFormat::Confluent
        && let Ok((id, json)) = evkit_schema::confluent::unframe(bytes)
    {
        return (bytes_json(json), Some(id));
    }
    (bytes_json(bytes), None)
}

/// Bytes as a message line shows them: the text itself when UTF-8, `{"base64": ...}`
/// otherwise. The same in `generate-examples`, `consume`, `tail` and `validate --lines`.
pub fn bytes_json(bytes: &[u8]) -> Value {
    use base64::Engine as _;
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => json!({"base64": base64::engine::general_purpose::STANDARD.encode(bytes)}),
    }
}

/// Headers as a message line shows them: `[{"name": ..., "value": ...}]` in order (a header
/// may repeat), values as [`bytes_json`] shows them, `null` for a header without a value.
pub fn headers_json<'a>(headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>) -> Value {
    Value::Array(
        headers
            .map(|(n, v)| json!({"name": n, "value": v.map_or(Value::Null, bytes_json)}))
            .collect(),
    )
}

/// The bytes a [`bytes_json`] value stands for.
fn json_bytes(v: &Value, what: &str) -> Result<Vec<u8>> {
    use base64::Engine as _;
    match v {
        Value::String(s) => Ok(s.clone().into_bytes()),
        Value::Object(o) if o.len() == 1 && o.get("base64").is_some_and(Value::is_string) => {
            base64::engine::general_purpose::STANDARD
                .decode(o["base64"].as_str().unwrap_or_default())
                .with_context(|| format!("{what}: not base64"))
        }
        other => anyhow::bail!("{what} must be a string or {{\"base64\": ...}}, not {other}"),
    }
}

/// A whole message read back from a message line (the shape [`message_line`] writes).
pub struct LineMessage {
    /// The line's `topic`, when it names one.
    pub topic: Option<String>,
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// Headers in order (`None`: no value).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The payload.
    pub payload: Vec<u8>,
    /// The rule the line says the message breaks (`null`: valid).
    pub broken: Option<String>,
}

/// Reads one message line.
pub fn read_line(line: &str) -> Result<LineMessage> {
    let v: Value = serde_json::from_str(line).context("not a JSON object")?;
    let key = match &v["key"] {
        Value::Null => None,
        k => Some(json_bytes(k, "key")?),
    };
    let mut headers = Vec::new();
    match &v["headers"] {
        Value::Null => {}
        Value::Array(hs) => {
            for h in hs {
                let name = h["name"]
                    .as_str()
                    .context("every header needs a string `name`")?;
                let value = match &h["value"] {
                    Value::Null => None,
                    x => Some(json_bytes(x, &format!("header {name}"))?),
                };
                headers.push((name.to_owned(), value));
            }
        }
        _ => anyhow::bail!("`headers` must be an array of {{\"name\", \"value\"}}"),
    }
    let mut payload = json_bytes(&v["payload"], "payload")?;
    match &v["schema_id"] {
        Value::Null => {}
        id => {
            let id = id
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .context("`schema_id` must be a schema registry id (0 to 4294967295)")?;
            payload = evkit_schema::confluent::frame(id, &payload);
        }
    }
    Ok(LineMessage {
        topic: v["topic"].as_str().map(str::to_owned),
        key,
        headers,
        payload,
        broken: v["broken"].as_str().map(str::to_owned),
    })
}

/// `count` messages for `topic`, `round(count * ratio)` of them breaking one rule, from `seed`.
pub fn topic_messages(
    topic: &evkit_schema::Topic,
    count: usize,
    invalid_ratio: f64,
    seed: u64,
) -> Result<impl Iterator<Item = Result<Generated>>> {
    topic_messages_breaking(topic, count, invalid_ratio, seed, None)
}

/// Like [`topic_messages`], the invalid ones breaking only rules `rule` selects.
pub fn topic_messages_breaking(
    topic: &evkit_schema::Topic,
    count: usize,
    invalid_ratio: f64,
    seed: u64,
    rule: Option<&str>,
) -> Result<impl Iterator<Item = Result<Generated>>> {
    ensure!(
        (0.0..=1.0).contains(&invalid_ratio),
        "--invalid-ratio must be between 0 and 1, not {invalid_ratio}"
    );
    let mut r = runner(seed);
    let valid = valid_message(topic)?;
    let invalid = if invalid_ratio > 0.0 {
        Some(invalid_message_for(topic, rule)?)
    } else {
        None
    };
    Ok((0..count).map(move |i| {
        let s = match &invalid {
            Some(inv) if is_invalid(i, invalid_ratio) => inv,
            _ => &valid,
        };
        draw(s, &mut r)
    }))
}

fn read_schema(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// Writes `count` JSON lines to standard output.
pub fn run(catalog_dir: &Path, a: &Args<'_>) -> Result<ExitCode> {
    ensure!(
        (0.0..=1.0).contains(&a.invalid_ratio),
        "--invalid-ratio must be between 0 and 1, not {}",
        a.invalid_ratio
    );
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.list_rules {
        let listed: Vec<(Rule, String)> = if let Some(name) = a.topic {
            let catalog = Catalog::load(catalog_dir)?;
            rules(catalog.topic(name)?)?
                .into_iter()
                .map(|r| {
                    let at = r.schema_path.clone();
                    (r, at)
                })
                .collect()
        } else if let Some(path) = a.schema {
            let schema = compile_schema(path, a.draft)?;
            breakable_sites(&schema)
                .into_iter()
                .map(|(site, b)| (Rule::from_breakage(&b), site.schema_path))
                .collect()
        } else {
            Vec::new()
        };
        for (r, at) in listed {
            let at = if at.is_empty() {
                String::new()
            } else {
                format!("\t{at}")
            };
            writeln!(out, "{r}\t{}{at}", r.how)?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(name) = a.topic {
        let catalog = Catalog::load(catalog_dir)?;
        let topic = catalog.topic(name)?;
        for m in topic_messages_breaking(topic, a.count, a.invalid_ratio, a.seed, a.rule)? {
            writeln!(out, "{}", message_line(topic, &m?))?;
        }
    } else if let Some(path) = a.schema {
        let schema = compile_schema(path, a.draft)?;
        let mut r = runner(a.seed);
        let valid = schema.valid()?;
        let invalid = if a.invalid_ratio > 0.0 {
            Some(invalid_payloads(&schema, a.rule)?)
        } else {
            None
        };
        for i in 0..a.count {
            let line = match &invalid {
                Some(inv) if is_invalid(i, a.invalid_ratio) => {
                    let (rule, v) = draw(inv, &mut r)?;
                    json!({"payload": v, "broken": rule.to_string()})
                }
                _ => json!({"payload": draw(&valid, &mut r)?, "broken": null}),
            };
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::is_invalid;

    #[test]
    fn invalid_messages_are_spread_evenly_and_counted_exactly() {
        let count = |n: usize, ratio: f64| (0..n).filter(|i| is_invalid(*i, ratio)).count();
        assert_eq!(count(20, 0.25), 5);
        assert_eq!(count(100, 0.2), 20);
        assert_eq!(count(10, 0.0), 0);
        assert_eq!(count(10, 1.0), 10);
        assert!(!is_invalid(0, 0.2), "the first message is valid at 0.2");
    }
}
