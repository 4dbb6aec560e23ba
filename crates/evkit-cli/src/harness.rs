//! `evkit fuzz` (generated messages to a running broker) and `evkit verify` (every contract
//! through a broker, with a report).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use evkit_schema::Catalog;
use evkit_testkit::Broker;
use evkit_testkit::contracts::Contracts;
use evkit_testkit::verify::{Options, verify};
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// What `evkit fuzz` sends.
pub struct Fuzz<'a> {
    pub topic: &'a str,
    pub to: Option<&'a str>,
    pub count: usize,
    pub invalid_ratio: f64,
    pub seed: u64,
    pub bootstrap: &'a str,
}

/// Publishes generated messages (valid and one-rule-broken) and prints what went out per rule.
pub async fn fuzz(catalog: &Catalog, f: &Fuzz<'_>) -> Result<ExitCode> {
    let topic = catalog.topic(f.topic)?;
    let messages = crate::examples::topic_messages(topic, f.count, f.invalid_ratio, f.seed)?;
    let broker = Broker::external(f.bootstrap, "kafka").await?;
    let producer: FutureProducer = broker
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .create()
        .context("creating the producer")?;
    let destination = f.to.unwrap_or(f.topic);
    let bar = ProgressBar::new(u64::try_from(f.count).unwrap_or(u64::MAX));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} messages, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    for m in messages {
        let m = m?;
        let mut headers = OwnedHeaders::new();
        for (name, value) in &m.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value),
            });
        }
        let mut record = FutureRecord::to(destination)
            .payload(&m.payload)
            .headers(headers);
        if let Some(k) = &m.key {
            record = record.key(k);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("producing to {destination}: {e}"))?;
        let label = m.broken.as_ref().map_or_else(
            || "valid".to_owned(),
            |r| format!("breaks: {}", r.keyword()),
        );
        *sent.entry(label).or_default() += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "sent {} messages to {destination} on {} (seed {})",
        f.count, f.bootstrap, f.seed
    );
    for (label, n) in &sent {
        println!("  {n:>6}  {label}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What `evkit verify` checks.
pub struct Verify<'a> {
    pub contracts: &'a Path,
    pub bootstrap: Option<&'a str>,
    pub valid: usize,
    pub invalid: usize,
    pub seed: u64,
    pub junit: Option<&'a Path>,
}

/// Loads the contracts, verifies them on a broker, prints the report and writes `JUnit` XML.
pub async fn run_verify(catalog: Catalog, v: &Verify<'_>) -> Result<ExitCode> {
    let catalog = Arc::new(catalog);
    let contracts = Contracts::load(v.contracts, &catalog)?;
    let broker = match v.bootstrap {
        Some(b) => Broker::external(b, "kafka").await?,
        None => Broker::start().await?,
    };
    println!(
        "verifying {} service contract(s) on the {} broker ({} valid + {} invalid generated messages per topic, seed {})",
        contracts.services.len(),
        broker.name(),
        v.valid,
        v.invalid,
        v.seed
    );
    let opts = Options {
        valid: v.valid,
        invalid: v.invalid,
        seed: v.seed,
        ..Options::default()
    };
    let report = verify(&broker, &catalog, &contracts, &opts).await?;
    println!("{report}");
    if let Some(path) = v.junit {
        std::fs::write(path, report.junit())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("JUnit report: {}", path.display());
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
