//! Whole Kafka messages for a catalog topic: valid ones, and ones that break one named rule.

use std::fmt;

use evkit_schema::{Message, Part, Topic, Violation, encode_identity};
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;

use crate::Error;
use crate::generate::{Breakage, Schema, Site, values};
use crate::outside::Outsides;

/// A generated message, owned.
#[derive(Clone, PartialEq)]
pub struct Generated {
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// For an invalid message: the rule it breaks.
    pub broken: Option<Rule>,
}

impl fmt::Debug for Generated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shown by proptest on failure: no identity values, the payload as text.
        f.debug_struct("Generated")
            .field("key", &self.key.as_deref().map(String::from_utf8_lossy))
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("payload", &String::from_utf8_lossy(&self.payload))
            .field("broken", &self.broken)
            .finish()
    }
}

impl Generated {
    /// Borrows the message for [`evkit_schema::Contract::check`].
    pub fn message(&self) -> Message<'_> {
        Message::from_parts(self.key.as_deref(), &self.headers, &self.payload)
    }
}

/// The one rule an invalid message breaks: the part, where, the schema keyword (or evkit rule)
/// and how it was broken. `Display` writes `keyword@/instance/path` for the payload,
/// `header NAME: keyword` for a header and `key: keyword` for the key (the form `--break`
/// takes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Key, a header or the payload (for CloudEvents, the event's `data` under `/data`).
    pub part: Part,
    /// JSON pointer of the failing value inside that part (empty for the root).
    pub instance_path: String,
    /// JSON pointer of the broken keyword in the schema document (empty for rules outside a
    /// schema).
    pub schema_path: String,
    /// The keyword the contract's violation names (`maxLength`, `required`, `anyOf`, ...), or
    /// an evkit rule (`base64`, `key-pointer`); empty when any violation of the part will do.
    pub keyword: String,
    /// How it was broken, in words ("missing required `title`", "maxLength broken").
    pub how: String,
}

impl Rule {
    fn header(name: &str, keyword: &str, how: &str) -> Rule {
        Rule {
            part: Part::Header(name.to_owned()),
            instance_path: String::new(),
            schema_path: String::new(),
            keyword: keyword.to_owned(),
            how: how.to_owned(),
        }
    }

    /// A rule of the payload's Confluent frame (`wire-magic`, `wire-length`).
    fn framing(keyword: &str, how: &str) -> Rule {
        Rule {
            part: Part::Payload,
            instance_path: String::new(),
            schema_path: String::new(),
            keyword: keyword.to_owned(),
            how: how.to_owned(),
        }
    }

    fn key(keyword: &str, how: &str) -> Rule {
        Rule {
            part: Part::Key,
            instance_path: String::new(),
            schema_path: String::new(),
            keyword: keyword.to_owned(),
            how: how.to_owned(),
        }
    }

    /// The rule a payload breakage shows as: the keyword and place the validator reports.
    pub fn from_breakage(b: &Breakage) -> Rule {
        let (instance_path, schema_path, keyword) = b.reported.clone();
        let how = match b.site.keyword.as_str() {
            "required" => {
                let missing: Vec<String> = b
                    .value
                    .pointer(&instance_path)
                    .and_then(Value::as_object)
                    .map(|o| {
                        b.site_required()
                            .into_iter()
                            .filter(|r| !o.contains_key(r))
                            .map(|r| format!("`{r}`"))
                            .collect()
                    })
                    .unwrap_or_default();
                format!("missing required {}", missing.join(", "))
            }
            k if k == keyword => format!("{k} broken"),
            k => format!("{k} broken in {keyword} at {}", b.site.schema_path),
        };
        Rule {
            part: Part::Payload,
            instance_path,
            schema_path,
            keyword,
            how,
        }
    }

    /// The same rule with its payload path under `prefix` (a structured CloudEvent's `/data`).
    #[must_use]
    pub fn under(mut self, prefix: &str) -> Rule {
        if matches!(self.part, Part::Payload) {
            self.instance_path = format!("{prefix}{}", self.instance_path);
        }
        self
    }

    /// The keyword the contract's violation carries for this rule.
    pub fn keyword(&self) -> &str {
        &self.keyword
    }

    /// `true` when `v` is the violation this rule predicts: same part, same instance path
    /// (payload), same keyword (when the rule names one).
    pub fn explains(&self, v: &Violation) -> bool {
        v.part == self.part
            && (v.instance_path == self.instance_path
                || (!matches!(self.part, Part::Payload) && self.instance_path.is_empty()))
            && (self.keyword.is_empty() || v.rule == self.keyword)
    }

    /// `true` when `selector` picks this rule: `keyword@/path`, `keyword`, `@/path`, or words
    /// of its description (`missing x-rh-identity`).
    pub fn matches(&self, selector: &str) -> bool {
        if let Some((k, path)) = selector.split_once('@') {
            let path = if path == "/" { "" } else { path };
            return (k.is_empty() || k == self.keyword)
                && matches!(self.part, Part::Payload)
                && path == self.instance_path;
        }
        selector == self.keyword || self.to_string() == selector || self.how.contains(selector)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.part {
            Part::Payload => write!(
                f,
                "{}@{}",
                self.keyword,
                if self.instance_path.is_empty() {
                    "/"
                } else {
                    &self.instance_path
                }
            ),
            Part::Header(h) => write!(f, "header {h}: {}", self.how),
            Part::Key => write!(f, "key: {}", self.how),
            other => write!(f, "{other}: {}", self.how),
        }
    }
}

/// What the topic's payload (or CloudEvents `data`) schema is, per dataschema for structured
/// topics: `(dataschema URI, schema document)`.
fn payload_schemas(topic: &Topic) -> Vec<(Option<String>, Value)> {
    let env = &topic.spec.envelope;
    if env.dataschemas.is_empty() {
        return vec![(None, topic.schema.clone())];
    }
    env.dataschemas
        .iter()
        .map(|(uri, pointer)| {
            // The definition, with the document's $defs kept in scope for its $refs.
            let mut doc = topic
                .schema
                .pointer(pointer.trim_start_matches('#'))
                .cloned()
                .unwrap_or(Value::Bool(false));
            if let (Some(d), Some(defs)) = (doc.as_object_mut(), topic.schema.get("$defs")) {
                d.insert("$defs".to_owned(), defs.clone());
            }
            (Some(uri.clone()), doc)
        })
        .collect()
}

/// A request id and a CloudEvents id, both from the strategy (so a seed fixes them).
fn ids() -> impl Strategy<Value = (String, String)> {
    (
        crate::generate::text::re("[A-Za-z0-9][A-Za-z0-9._-]{0,40}"),
        proptest::arbitrary::any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
    )
}

/// Wraps generated event data into a message for `topic`: key, identity, request id, envelope.
fn assemble(
    topic: &Topic,
    dataschema: Option<&str>,
    data: &Value,
    (req, id): (String, String),
) -> Generated {
    let org = data
        .get("org_id")
        .and_then(Value::as_str)
        .filter(|o| !o.is_empty() && o.len() <= 64)
        .filter(|o| {
            o.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .unwrap_or("12345")
        .to_owned();
    // The producer's own encoding (evkit_schema::wire), so tests send what services send.
    let attributes = evkit_schema::wire::Attributes {
        id,
        time: None,
        dataschema: dataschema.map(str::to_owned),
        identity: Some(encode_identity(&org, "User")),
        request_id: Some(req),
        // A `wire: confluent` topic: the id its producers frame, else a registered one, else 1
        // (a contract that has not asked a registry accepts any id).
        schema_id: topic.contract().schema_id().or_else(|| {
            topic
                .contract()
                .registered_schema_ids()
                .and_then(|ids| ids.first().copied())
                .or(Some(1))
        }),
    };
    let encoded = evkit_schema::wire::encode(topic.contract(), data, &attributes);
    let (key, headers, payload) = match encoded {
        Ok(e) => (e.key, e.headers, e.payload),
        Err(_) => (None, Vec::new(), Vec::new()),
    };
    // A key policy without a pointer: the producer needs the caller's key; ours is the tenant.
    let key = key.or_else(|| topic.spec.key.required.then(|| org.into_bytes()));
    Generated {
        key,
        headers,
        payload,
        broken: None,
    }
}

/// An example message of a contract, built the way a producer sends it (key from the key policy
/// unless given, identity for `org_id` or the payload's `org_id`, a request id from the name).
pub fn example_message(
    topic: &Topic,
    data: &Value,
    dataschema: Option<&str>,
    key: Option<&str>,
    org_id: Option<&str>,
    name: &str,
) -> Generated {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(48)
        .collect();
    let ids = (format!("example-{slug}"), format!("example-{slug}"));
    let mut m = assemble(topic, dataschema, data, ids);
    if let Some(k) = key {
        m.key = Some(k.as_bytes().to_vec());
    }
    if let Some(org) = org_id {
        for (n, v) in &mut m.headers {
            if n == "x-rh-identity" {
                *v = encode_identity(org, "User").into_bytes();
            }
        }
    }
    m
}

/// Messages `topic`'s contract accepts: payload from the schema, key from the key policy,
/// identity and request id headers, CloudEvents attributes per the envelope.
pub fn valid_message(topic: &Topic) -> Result<BoxedStrategy<Generated>, Error> {
    let mut options = Vec::new();
    for (uri, schema) in payload_schemas(topic) {
        let data = values(&schema)?;
        let topic = topic.clone();
        options.push(
            (data, ids())
                .prop_map(move |(d, req)| assemble(&topic, uri.as_deref(), &d, req))
                .boxed(),
        );
    }
    Ok(proptest::strategy::Union::new(options).boxed())
}

/// Header and key rules that apply to `topic`.
fn message_rules(topic: &Topic) -> Vec<Rule> {
    let mut out = Vec::new();
    let required: Vec<&str> = topic
        .contract()
        .required_headers()
        .iter()
        .map(String::as_str)
        .collect();
    if required.contains(&"x-rh-identity") {
        out.push(Rule::header(
            "x-rh-identity",
            "required",
            "missing x-rh-identity",
        ));
    }
    out.push(Rule::header(
        "x-rh-identity",
        "base64",
        "x-rh-identity not base64",
    ));
    if required.contains(&"x-rh-insights-request-id") {
        out.push(Rule::header(
            "x-rh-insights-request-id",
            "",
            "request id as x-rh-insight-request-id",
        ));
    }
    if topic.spec.key.required {
        out.push(Rule::key("required", "empty key"));
    }
    if topic.spec.key.pointer.is_some() {
        out.push(Rule::key(
            "key-pointer",
            "key differs from the key pointer's value",
        ));
    }
    if topic.spec.wire == evkit_schema::WireFormat::Confluent {
        out.push(Rule::framing(
            "wire-magic",
            "payload sent without the Confluent frame",
        ));
        out.push(Rule::framing("wire-length", "Confluent frame cut short"));
    }
    out
}

fn break_message(mut m: Generated, rule: &Rule) -> Generated {
    match (&rule.part, rule.keyword.as_str()) {
        (Part::Header(h), "required") if h == "x-rh-identity" => {
            m.headers.retain(|(n, _)| n != "x-rh-identity");
        }
        (Part::Header(h), "base64") if h == "x-rh-identity" => {
            for (n, v) in &mut m.headers {
                if n == "x-rh-identity" {
                    *v = b"not base64 at all!".to_vec();
                }
            }
        }
        (Part::Header(h), _) if h == "x-rh-insights-request-id" => {
            for (n, _) in &mut m.headers {
                if n == "x-rh-insights-request-id" {
                    "x-rh-insight-request-id".clone_into(n);
                }
            }
        }
        (Part::Key, "required") => m.key = Some(Vec::new()),
        (Part::Payload, "wire-magic") => {
            if let Ok((_, json)) = evkit_schema::confluent::unframe(&m.payload) {
                m.payload = json.to_vec();
            }
        }
        (Part::Payload, "wire-length") => m.payload.truncate(3),
        (Part::Key, "key-pointer") => {
            let mut k = m.key.take().unwrap_or_default();
            k.extend_from_slice(b"-other");
            m.key = Some(k);
        }
        _ => {}
    }
    m.broken = Some(rule.clone());
    m
}

/// A breakable payload site of one payload schema.
struct PayloadRules {
    uri: Option<String>,
    schema: Schema,
    sites: Vec<Site>,
    valid: BoxedStrategy<Value>,
}

/// How many valid starting values a site gets when the rules are listed.
const PROBE_ATTEMPTS: usize = 8;

/// The payload sites of `schema` that generation can break (redundant ones left out), each
/// with an example breakage, found with a deterministic runner.
pub fn breakable_sites(schema: &Schema) -> Vec<(Site, Breakage)> {
    let mut runner = TestRunner::deterministic();
    let mut breaker = schema.breaker();
    schema
        .sites()
        .into_iter()
        .filter(|s| !schema.is_redundant(s))
        .filter_map(|s| {
            breaker
                .break_site(&s, &mut runner, PROBE_ATTEMPTS)
                .map(|b| (s, b))
        })
        .collect()
}

fn payload_rules(topic: &Topic) -> Result<Vec<PayloadRules>, Error> {
    let mut out = Vec::new();
    for (uri, doc) in payload_schemas(topic) {
        let schema = Schema::new(&doc)?;
        let sites = breakable_sites(&schema)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let valid = schema.valid()?;
        out.push(PayloadRules {
            uri,
            schema,
            sites,
            valid,
        });
    }
    Ok(out)
}

/// Every rule of `topic` an invalid message can break, as [`invalid_message`] names them
/// (payload rules from an example breakage of each site, then header and key rules).
pub fn rules(topic: &Topic) -> Result<Vec<Rule>, Error> {
    let mut out = Vec::new();
    for p in payload_rules(topic)? {
        let prefix = if p.uri.is_some() { "/data" } else { "" };
        for (_, b) in breakable_sites(&p.schema) {
            let r = Rule::from_breakage(&b).under(prefix);
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out.extend(message_rules(topic));
    let mut outsides = Outsides::new(topic);
    for (_, r) in probe_outside(topic, &mut outsides) {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// Each outside-the-payload rule applied to a few valid messages: `(index, rule)` for those
/// the contract rejects.
fn probe_outside(topic: &Topic, outsides: &mut Outsides) -> Vec<(usize, Rule)> {
    let Some((uri, doc)) = payload_schemas(topic).into_iter().next() else {
        return Vec::new();
    };
    let Ok(valid) = Schema::new(&doc).and_then(|s| s.valid()) else {
        return Vec::new();
    };
    let mut runner = TestRunner::deterministic();
    let mut out = Vec::new();
    for i in 0..outsides.items.len() {
        for _ in 0..PROBE_ATTEMPTS {
            let Ok(tree) = valid.new_tree(&mut runner) else {
                break;
            };
            let m = assemble(
                topic,
                uri.as_deref(),
                &tree.current(),
                ("probe-request".to_owned(), "probe-id".to_owned()),
            );
            if let Some(b) = outsides
                .apply(topic, i, m, &mut runner)
                .and_then(|m| m.broken)
            {
                out.push((i, b));
                break;
            }
        }
    }
    out
}

/// A runner for the samples a breakage draws inside a strategy, seeded from the draw.
fn inner_runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        proptest::test_runner::Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// Messages that break exactly one named rule of `topic`'s contract (see [`Generated::broken`]):
/// any constraint keyword of the payload schema at the instance location it applies to (for
/// structured CloudEvents topics, of every dataschema), and the header and key rules of the
/// catalog entry. `selector` (see [`Rule::matches`]) narrows the rules; `None` takes all.
// Three families of rules (payload sites, fixed header and key rules, header/identity/envelope
// keywords) share the selection logic here.
#[allow(clippy::too_many_lines)]
pub fn invalid_message_for(
    topic: &Topic,
    selector: Option<&str>,
) -> Result<BoxedStrategy<Generated>, Error> {
    let payloads = payload_rules(topic)?;
    let headers: Vec<Rule> = message_rules(topic)
        .into_iter()
        .filter(|r| selector.is_none_or(|s| r.matches(s)))
        .collect();
    let mut options: Vec<BoxedStrategy<Generated>> = Vec::new();
    for p in payloads {
        let prefix = if p.uri.is_some() { "/data" } else { "" };
        let sites: Vec<Site> = match selector {
            None => p.sites.clone(),
            Some(sel) => {
                let mut runner = TestRunner::deterministic();
                let mut breaker = p.schema.breaker();
                p.sites
                    .iter()
                    .filter(|s| {
                        s.keyword == sel
                            || breaker
                                .break_site(s, &mut runner, PROBE_ATTEMPTS)
                                .is_some_and(|b| Rule::from_breakage(&b).under(prefix).matches(sel))
                    })
                    .cloned()
                    .collect()
            }
        };
        if sites.is_empty() {
            continue;
        }
        let breaker = std::cell::RefCell::new(p.schema.breaker());
        let topic = topic.clone();
        let uri = p.uri.clone();
        let n = sites.len();
        options.push(
            (
                p.valid.clone(),
                ids(),
                0..n,
                proptest::arbitrary::any::<u64>(),
            )
                .prop_filter_map(
                    "this value cannot carry the rule",
                    move |(d, req, i, seed)| {
                        let mut runner = inner_runner(seed);
                        let b =
                            breaker
                                .try_borrow_mut()
                                .ok()?
                                .break_from(&sites[i], d, &mut runner)?;
                        let mut m = assemble(&topic, uri.as_deref(), &b.value, req);
                        m.broken = Some(Rule::from_breakage(&b).under(prefix));
                        Some(m)
                    },
                )
                .boxed(),
        );
    }
    let first = payload_schemas(topic).into_iter().next();
    if let Some((uri, doc)) = first {
        let valid = Schema::new(&doc)?.valid()?;
        if !headers.is_empty() {
            let topic = topic.clone();
            let uri = uri.clone();
            let n = headers.len();
            options.push(
                (valid.clone(), ids(), 0..n)
                    .prop_map(move |(d, req, i)| {
                        break_message(assemble(&topic, uri.as_deref(), &d, req), &headers[i])
                    })
                    .boxed(),
            );
        }
        // Header schemas, the identity's schema and CloudEvents attributes, judged by the
        // contract itself.
        let mut outsides = Outsides::new(topic);
        if let Some(sel) = selector {
            let probe = probe_outside(topic, &mut outsides);
            let keep: Vec<usize> = probe
                .iter()
                .filter(|(_, r)| r.matches(sel))
                .map(|(i, _)| *i)
                .collect();
            outsides.items = keep
                .iter()
                .filter_map(|i| outsides.items.get(*i).cloned())
                .collect();
        }
        if !outsides.items.is_empty() {
            let n = outsides.items.len();
            let topic = topic.clone();
            let outsides = std::cell::RefCell::new(outsides);
            options.push(
                (valid, ids(), 0..n, proptest::arbitrary::any::<u64>())
                    .prop_filter_map(
                        "this message cannot carry the rule",
                        move |(d, req, i, seed)| {
                            let m = assemble(&topic, uri.as_deref(), &d, req);
                            let mut runner = inner_runner(seed);
                            outsides
                                .try_borrow_mut()
                                .ok()?
                                .apply(&topic, i, m, &mut runner)
                        },
                    )
                    .boxed(),
            );
        }
    }
    if options.is_empty() {
        return Err(Error::Generator {
            at: topic.name().to_owned(),
            reason: match selector {
                Some(s) => format!("no rule matches `{s}` (see --list-rules)"),
                None => "no rule to break".to_owned(),
            },
        });
    }
    Ok(proptest::strategy::Union::new(options).boxed())
}

/// Messages that break exactly one named rule of `topic`'s contract (every rule; see
/// [`invalid_message_for`]).
pub fn invalid_message(topic: &Topic) -> Result<BoxedStrategy<Generated>, Error> {
    invalid_message_for(topic, None)
}

/// Payloads that break exactly one constraint keyword of `schema` (no key or headers): for
/// any JSON Schema, not only catalog topics. `selector` narrows the rules (see
/// [`Rule::matches`]).
pub fn invalid_payload_for(
    schema: &Value,
    selector: Option<&str>,
) -> Result<BoxedStrategy<(Rule, Value)>, Error> {
    invalid_payloads(&Schema::new(schema)?, selector)
}

/// Like [`invalid_payload_for`], for a compiled [`Schema`] (read under the draft it was
/// compiled with).
pub fn invalid_payloads(
    compiled: &Schema,
    selector: Option<&str>,
) -> Result<BoxedStrategy<(Rule, Value)>, Error> {
    let sites: Vec<Site> = breakable_sites(compiled)
        .into_iter()
        .filter(|(s, b)| {
            selector.is_none_or(|sel| s.keyword == sel || Rule::from_breakage(b).matches(sel))
        })
        .map(|(s, _)| s)
        .collect();
    if sites.is_empty() {
        return Err(Error::Generator {
            at: "/".to_owned(),
            reason: match selector {
                Some(s) => format!("no breakable rule matches `{s}` (see --list-rules)"),
                None => "no constraint keyword that a value can break".to_owned(),
            },
        });
    }
    let valid = compiled.valid()?;
    let breaker = std::cell::RefCell::new(compiled.breaker());
    let n = sites.len();
    Ok((valid, 0..n, proptest::arbitrary::any::<u64>())
        .prop_filter_map("this value cannot carry the rule", move |(d, i, seed)| {
            let mut runner = inner_runner(seed);
            let b = breaker
                .try_borrow_mut()
                .ok()?
                .break_from(&sites[i], d, &mut runner)?;
            Some((Rule::from_breakage(&b), b.value))
        })
        .boxed())
}

/// Payloads that break exactly one constraint keyword of `schema` (every breakable one).
pub fn invalid_payload(schema: &Value) -> Result<BoxedStrategy<(Rule, Value)>, Error> {
    invalid_payload_for(schema, None)
}
