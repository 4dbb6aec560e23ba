//! `evkit fuzz` (generated messages to a running broker), `evkit verify` (every contract
//! through a broker, with a report) and `evkit bench` (partition throughput).

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
    pub format: crate::Format,
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
    if f.format == crate::Format::Json {
        outln!(
            "{}",
            serde_json::json!({
                "sent": f.count,
                "to": destination,
                "bootstrap": f.bootstrap,
                "seed": f.seed,
                "by_rule": sent,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "sent {} messages to {destination} on {} (seed {})",
        f.count,
        f.bootstrap,
        f.seed
    );
    for (label, n) in &sent {
        outln!("  {n:>6}  {label}");
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
    pub format: crate::Format,
}

/// Loads the contracts, verifies them on a broker, prints the report and writes `JUnit` XML.
pub async fn run_verify(catalog: Catalog, v: &Verify<'_>) -> Result<ExitCode> {
    let catalog = Arc::new(catalog);
    // Exit 1 when the contracts or the schemas' own examples are wrong; 2 when it cannot run.
    let mut wrong: Vec<String> = catalog
        .topics()
        .iter()
        .flat_map(evkit_schema::lint::lint_examples)
        .filter(|f| f.severity == evkit_schema::lint::Severity::Error)
        .map(|f| f.to_string())
        .collect();
    let contracts = match Contracts::load(v.contracts, &catalog) {
        Ok(c) => Some(c),
        Err(evkit_testkit::Error::Contracts { problems }) => {
            wrong.extend(problems);
            None
        }
        Err(e) => return Err(e.into()),
    };
    let Some(contracts) = contracts.filter(|_| wrong.is_empty()) else {
        if v.format == crate::Format::Json {
            outln!(
                "{}",
                serde_json::json!({"passed": false, "problems": wrong, "cases": []})
            );
        } else {
            eprintln!("evkit verify: the contracts do not hold:");
            for w in &wrong {
                eprintln!("  - {w}");
            }
        }
        return Ok(ExitCode::from(1));
    };
    let broker = match v.bootstrap {
        Some(b) => Broker::external(b, "kafka").await?,
        None => Broker::start().await?,
    };
    let human = v.format == crate::Format::Human;
    if human {
        outln!(
            "verifying {} service contract(s) on the {} broker ({} valid + {} invalid generated messages per topic, seed {})",
            contracts.services.len(),
            broker.name(),
            v.valid,
            v.invalid,
            v.seed
        );
    }
    let opts = Options {
        valid: v.valid,
        invalid: v.invalid,
        seed: v.seed,
        ..Options::default()
    };
    let report = verify(&broker, &catalog, &contracts, &opts).await?;
    if human {
        outln!("{report}");
    } else {
        let cases: Vec<_> = report
            .cases
            .iter()
            .map(|c| {
                serde_json::json!({
                    "service": c.service,
                    "topic": c.topic,
                    "name": c.name,
                    "passed": c.failure.is_none(),
                    "failure": c.failure,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::json!({"passed": report.passed(), "problems": [], "cases": cases})
        );
    }
    if let Some(path) = v.junit {
        std::fs::write(path, report.junit())
            .with_context(|| format!("writing {}", path.display()))?;
        if human {
            outln!("JUnit report: {}", path.display());
        }
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `evkit bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// The catalog topic whose contract the messages follow.
    #[arg(long)]
    pub topic: String,
    /// Messages per run (1 or more).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: u64,
    /// Partition counts to compare (comma-separated, each 1 or more).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4, 8], value_parser = clap::value_parser!(u32).range(1..))]
    pub partitions: Vec<u32>,
    /// Milliseconds the handler waits per message (work that does not use the CPU, such as a
    /// database call); 0 measures evkit alone.
    #[arg(long, default_value_t = 0.0)]
    pub handler_ms: f64,
    /// A running broker instead of the embedded one (fresh topics are created on it).
    #[arg(long)]
    pub bootstrap: Option<String>,
    /// Seed of the message generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip the baselines (a bare rdkafka consumer, a hand-written one that parses and
    /// validates the payload with jsonschema, and one that checks the whole contract by hand:
    /// key, headers, identity and payload) that otherwise read each topic after evkit.
    #[arg(long)]
    pub no_baselines: bool,
    /// Passes over each topic (evkit and the baselines taking turns, each in a fresh group);
    /// each row shows the pass with the median rate, and evkit against the hand-written
    /// consumer as the median of each round's comparison. Short runs move with the machine's
    /// load: use 5 or more when comparing.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub rounds: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::Format::Human)]
    pub format: crate::Format,
}

/// Runs the partition-throughput benchmark and prints one row per partition count.
pub async fn bench(catalog: Catalog, args: &BenchArgs) -> Result<ExitCode> {
    let catalog = Arc::new(catalog);
    let topic = catalog.topic(&args.topic)?.clone();
    let broker = match &args.bootstrap {
        Some(b) => Broker::external(b, "kafka").await?,
        None => Broker::start().await?,
    };
    if !(args.handler_ms.is_finite() && args.handler_ms >= 0.0) {
        anyhow::bail!("--handler-ms must be a number of milliseconds, 0 or more");
    }
    let opts = evkit_testkit::bench::Options {
        messages: usize::try_from(args.messages).unwrap_or(usize::MAX),
        progress: Some(Arc::new(|what: &str| eprintln!("bench: {what}"))),
        partitions: args.partitions.clone(),
        handler_time: Duration::from_secs_f64(args.handler_ms / 1000.0),
        seed: args.seed,
        baselines: !args.no_baselines,
        rounds: usize::try_from(args.rounds).unwrap_or(usize::MAX),
        ..evkit_testkit::bench::Options::default()
    };
    if args.format == crate::Format::Human {
        outln!(
            "{} messages of {} per run on the {} broker, handler {} ms",
            opts.messages,
            topic.name(),
            broker.name(),
            args.handler_ms
        );
    }
    let runs = evkit_testkit::bench::partition_throughput(&broker, &catalog, &topic, &opts).await?;
    if args.format == crate::Format::Human {
        outln!(
            "| partitions | messages/s | per partition (min-max) | committed | CPU µs/message | cores busy | hand-written messages/s | its CPU µs/message | bare messages/s | bare CPU µs/message | evkit / hand-written (median of rounds) | CPU above hand-written (µs, median of rounds) | whole-contract messages/s | evkit / whole contract (median of rounds) |"
        );
        outln!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    let show = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
    };
    for run in &runs {
        let min = run.per_partition.values().min().copied().unwrap_or(0);
        let max = run.per_partition.values().max().copied().unwrap_or(0);
        let hand = run.hand_written;
        // Compared round by round (the median of each round's comparison), not pass with pass.
        let paired = run.against_hand_written;
        let ratio = paired.map(|p| p.rate_ratio);
        let above = paired.and_then(|p| p.cpu_above_us);
        let whole = run.whole_contract;
        let against_whole = run.against_whole_contract;
        match args.format {
            crate::Format::Human => outln!(
                "| {} | {:.0} | {min}-{max} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                run.partitions,
                run.rate,
                run.committed,
                show(run.cpu_per_message_us, 1),
                show(run.cores_busy(), 2),
                show(hand.map(|h| h.rate), 0),
                show(hand.and_then(|h| h.cpu_per_message_us), 1),
                show(run.bare.map(|b| b.rate), 0),
                show(run.bare.and_then(|b| b.cpu_per_message_us), 1),
                show(ratio, 2),
                show(above, 1),
                show(whole.map(|w| w.rate), 0),
                show(against_whole.map(|p| p.rate_ratio), 2),
            ),
            crate::Format::Json => outln!("{}", json_row(run)),
        }
    }
    if args.format == crate::Format::Human {
        scaling_summary(&runs);
    }
    Ok(ExitCode::SUCCESS)
}

/// One `evkit bench --format json` row.
fn json_row(run: &evkit_testkit::bench::Run) -> serde_json::Value {
    let pair = |p: Option<evkit_testkit::bench::Paired>| {
        p.map(|p| {
            serde_json::json!({
                "rounds": p.rounds,
                "rate_ratio": p.rate_ratio,
                "cpu_above_us": p.cpu_above_us,
            })
        })
    };
    let base = |b: Option<evkit_testkit::bench::Baseline>| {
        b.map(|b| {
            serde_json::json!({
                "rate": b.rate, "cpu_per_message_us": b.cpu_per_message_us, "invalid": b.invalid,
            })
        })
    };
    serde_json::json!({
        "partitions": run.partitions,
        "messages": run.handled,
        "rate": run.rate,
        "per_partition": run.per_partition,
        "committed": run.committed,
        "cpu_per_message_us": run.cpu_per_message_us,
        "cores_busy": run.cores_busy(),
        "ceiling_rate": run.ceiling_rate(crate::cores()),
        "hand_written": base(run.hand_written),
        // Compared round by round (the median of each round's comparison), not pass with pass.
        "against_hand_written": pair(run.against_hand_written),
        "bare": base(run.bare),
        "whole_contract": base(run.whole_contract),
        "against_whole_contract": pair(run.against_whole_contract),
    })
}

/// The scaling line under `evkit bench`'s table, and the ceiling the machine's cores set.
fn scaling_summary(runs: &[evkit_testkit::bench::Run]) {
    let show = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
    };
    if let (Some(one), Some(most)) = (
        runs.iter().find(|r| r.partitions == 1),
        runs.iter().max_by_key(|r| r.partitions),
    ) && most.partitions > 1
    {
        outln!(
            "scaling: {} partitions reach {:.2}x one partition ({} worker threads); targets: evkit / hand-written >= 0.9, CPU above hand-written <= 1.0 µs",
            most.partitions,
            most.rate / one.rate,
            crate::threads(),
        );
        if let Some(ceiling) = evkit_testkit::bench::scaling_ceiling(one, most, crate::cores()) {
            outln!(
                "ceiling on this machine: {} cores at {} µs of CPU per message allow at most {}/s, {ceiling:.2}x one partition (on the embedded broker the broker's and librdkafka's threads use the same cores)",
                crate::cores(),
                show(most.cpu_per_message_us, 1),
                show(most.ceiling_rate(crate::cores()), 0),
            );
        }
    }
}
