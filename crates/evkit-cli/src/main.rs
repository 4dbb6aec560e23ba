//! `evkit`: schema-first event APIs on Kafka, from one folder of schemas.
//!
//! Exit codes: 0 success, 1 the input broke a rule (invalid message, lint error, drift),
//! 2 the command could not run (bad arguments, unreadable catalog or file).

/// mimalloc, as the README recommends for services: `consume`, `bench` and `dev` build and drop
/// JSON values on several threads, where glibc's per-thread arenas cost several times the work.
/// With the `override` feature (Cargo.toml) it also answers C's `malloc`, so librdkafka's own
/// allocations (each fetched message, its parsed headers, and the embedded broker's) use it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `println!` that ends the process quietly when stdout is closed (`evkit consume | head -1`),
/// instead of panicking.
macro_rules! outln {
    () => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock()) {
            $crate::stdout_failed(&e);
        }
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::stdout_failed(&e);
        }
    }};
}

mod asyncapi;
mod examples;
mod harness;
mod kafka;
mod registry;

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use evkit_schema::lint::{Severity, lint_catalog};
use evkit_schema::{Catalog, Message, Violation};
use serde_json::json;

#[derive(Parser)]
#[command(name = "evkit", version, about = "Schema-first event APIs on Kafka")]
struct Cli {
    /// The catalog directory (topics.yaml, one schema per topic, headers.json).
    #[arg(long, global = true, env = "EVKIT_CATALOG", default_value = "schemas")]
    catalog: PathBuf,
    /// Worker threads of the async runtime (default: one per core).
    #[arg(long, global = true, env = "EVKIT_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    #[command(subcommand)]
    command: Command,
}

/// `evkit gate`.
#[derive(clap::Args)]
struct GateArgs {
    /// The deployed catalog, e.g. extracted with
    /// `git archive origin/main schemas | tar -x -C /tmp/base` (then `/tmp/base/schemas`).
    #[arg(long)]
    base: PathBuf,
    /// The service contracts folder, checked against the changed catalog.
    #[arg(long)]
    contracts: Option<PathBuf>,
    /// `full` (both directions), `backward` (the change accepts what deployed producers
    /// send) or `forward` (deployed consumers accept what the change produces).
    #[arg(long, value_enum, default_value_t = GateMode::Full)]
    mode: GateMode,
    /// Generated messages per topic and direction.
    #[arg(long, default_value_t = 256)]
    cases: u32,
    /// Seed of the generators.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Intended breaks (topic, rule, pointer, reason, expiry); default
    /// `<contracts>/allowed-breaks.yaml` when that file exists.
    #[arg(long)]
    allow: Option<PathBuf>,
    /// The date allowances expire against, `YYYY-MM-DD` (default: today, UTC).
    #[arg(long)]
    today: Option<chrono::NaiveDate>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// `evkit gate --mode`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum GateMode {
    Full,
    Backward,
    Forward,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Format {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check one message (key, headers, payload) against its topic's contract, or many whole
    /// messages as JSON lines (`--lines`).
    Validate {
        /// The topic whose contract applies (with `--lines`: for lines that name none).
        #[arg(long, required_unless_present = "lines")]
        topic: Option<String>,
        /// The record key.
        #[arg(long)]
        key: Option<String>,
        /// A header as `name=value`; repeat for more.
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
        /// Adds an `x-rh-identity` for this tenant when none is given.
        #[arg(long)]
        org_id: Option<String>,
        /// Read JSON lines of whole messages (`topic`, `key`, `headers`, `payload`, `broken`: the
        /// shape `generate-examples` and `consume --format json` write) and print a summary. A
        /// line labelled `broken` must be invalid, any other valid.
        #[arg(long, conflicts_with_all = ["key", "headers", "org_id", "schema_id"])]
        lines: bool,
        /// For a `wire: confluent` topic: frame a JSON payload with this schema id before the
        /// check (default: the id the registry gave the catalog's schema, with `--registry`; a
        /// framed payload is checked as it is).
        #[arg(long)]
        schema_id: Option<u32>,
        #[command(flatten)]
        registry: registry::RegistryArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// The payload file (with `--lines`, the lines); `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Find schema mistakes that validators silently ignore.
    Lint {
        /// Fail on warnings too.
        #[arg(long)]
        deny_warnings: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Write Rust types for every topic (typify), or check that the checked-in ones are current.
    Generate {
        /// Where the modules go (default: `crates/evkit-events/src/generated`, when run from the
        /// workspace root).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Do not write; exit 1 when the files differ from what the schemas generate.
        #[arg(long)]
        check: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Run the embedded Kafka broker on a fixed address with every catalog topic (and its
    /// dead-letter topic) created, until ctrl-c.
    Dev {
        /// Where clients connect (`HOST:PORT`; a host name such as `localhost` is resolved);
        /// broker N listens on this port + N - 1.
        #[arg(long, default_value = "127.0.0.1:9092", value_parser = resolve_listen)]
        listen: SocketAddr,
        /// How many brokers the cluster has.
        #[arg(long, default_value_t = 1)]
        brokers: i32,
    },
    /// Send one message, validated against the catalog first.
    Produce {
        /// The topic.
        #[arg(long)]
        topic: String,
        /// The record key.
        #[arg(long)]
        key: Option<String>,
        /// A header as `name=value`; repeat for more.
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
        /// Adds an `x-rh-identity` for this tenant when none is given.
        #[arg(long)]
        org_id: Option<String>,
        /// Send even when the message breaks the contract (or the topic is not in the catalog).
        #[arg(long)]
        no_validate: bool,
        /// The CloudEvents `dataschema` of the event, for a structured topic that dispatches
        /// on it.
        #[arg(long)]
        dataschema: Option<String>,
        /// For a `wire: confluent` topic: the schema id to frame the payload with (default:
        /// the id the registry gave the catalog's schema, with `--registry`).
        #[arg(long)]
        schema_id: Option<u32>,
        #[command(flatten)]
        registry: registry::RegistryArgs,
        /// Bootstrap servers.
        #[arg(long, env = "EVKIT_BOOTSTRAP", default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// The payload file; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Print messages of one topic with key, headers (identity masked), payload and verdict.
    Consume {
        /// The topic.
        #[arg(long)]
        topic: String,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Like `consume`, for every topic of the catalog.
    Tail {
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Write generated messages as JSON lines: valid ones and, with `--invalid-ratio`, ones that
    /// break one named rule (`broken` says which). Deterministic for a seed.
    GenerateExamples {
        /// A catalog topic: whole messages (key, headers, payload).
        #[arg(long, required_unless_present = "schema", conflicts_with = "schema")]
        topic: Option<String>,
        /// Any JSON Schema file instead of a topic: payloads only (no catalog needed).
        #[arg(long)]
        schema: Option<PathBuf>,
        /// The draft `--schema` is read under when it has no `$schema`: 4, 6, 7, 2019-09 or
        /// 2020-12 (the default).
        #[arg(long, requires = "schema")]
        draft: Option<String>,
        /// How many messages.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Share of messages that break a rule, 0 to 1.
        #[arg(long, default_value_t = 0.0)]
        invalid_ratio: f64,
        /// Seed: the same seed gives the same messages.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Break only this rule in the invalid messages: `keyword@/instance/path`
        /// (`maxLength@/title`), a keyword (`pattern`), or words of a header or key rule
        /// (`missing x-rh-identity`). Implies `--invalid-ratio 1` unless a ratio is given.
        #[arg(long = "break", value_name = "RULE")]
        break_rule: Option<String>,
        /// List the rules an invalid message can break (one per line: the rule, how, and the
        /// schema path of the keyword) and exit.
        #[arg(long)]
        list_rules: bool,
    },
    /// Publish generated messages (valid and one-rule-broken) to a running broker, to fuzz the
    /// service that consumes the topic; prints how many were sent per rule.
    Fuzz {
        /// The catalog topic whose contract drives the generator.
        #[arg(long)]
        topic: String,
        /// Send to this Kafka topic instead (e.g. a mapped or test topic).
        #[arg(long)]
        to: Option<String>,
        /// How many messages.
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// Share of messages that break a rule, 0 to 1.
        #[arg(long, default_value_t = 0.2)]
        invalid_ratio: f64,
        /// Seed: the same seed sends the same messages.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Bootstrap servers.
        #[arg(long, env = "EVKIT_BOOTSTRAP", default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Verify every service contract in `contracts/` through a real broker (embedded unless
    /// `--bootstrap` or `EVKIT_BOOTSTRAP`): producers' examples against the catalog, then
    /// examples and generated messages through each consuming service's checks.
    Verify {
        /// The contracts folder.
        #[arg(long, default_value = "contracts")]
        contracts: PathBuf,
        /// A running broker instead of the embedded one.
        #[arg(long)]
        bootstrap: Option<String>,
        /// Generated valid messages per topic.
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// Generated invalid messages per topic.
        #[arg(long, default_value_t = 10)]
        invalid: usize,
        /// Seed of the generators.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also write the report as `JUnit` XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Send dead-lettered messages back to the topic they came from, without the `evkit-dlq-*`
    /// headers; messages that still break their topic's contract stay where they are. The job
    /// commits under its own group, so running it again sends nothing twice. Connection settings
    /// come from `EVKIT_CONFIG` / `ACG_CONFIG` / `EVKIT_*` like a service's.
    Replay(ReplayArgs),
    /// Show what an outbox database holds (messages stored but not yet acknowledged), or with
    /// `--relay` send them, oldest first, deleting each one the broker acknowledges. Exits 1 when
    /// messages are left. Connection settings as for `replay`.
    Outbox(OutboxArgs),
    /// Block incompatible schema changes: compare the catalog (`--catalog`, the change) with
    /// the deployed one (`--base`): topics removed, envelope or key changes, newly required
    /// headers, and generated messages of each side checked by the other side's contract. With
    /// `--contracts`, the service contracts must still hold against the change. Exits 1 when
    /// the change is incompatible.
    Gate(GateArgs),
    /// Partition throughput: valid messages generated for `--topic` are published to fresh
    /// topics of each `--partitions` count, and an evkit consumer (validation, routing, a
    /// handler that waits `--handler-ms`, commits) reads them; prints messages per second per
    /// partition count. On the embedded broker unless `--bootstrap`.
    Bench(harness::BenchArgs),
    /// The Confluent Schema Registry: register the catalog's schemas (`push`), fetch a
    /// subject's versions (`pull`), and compare the registry's compatibility verdict with
    /// evkit's gate (`check`).
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// AsyncAPI 3.0: describe the catalog in one document (`export`), or build a catalog from
    /// one (`import`).
    #[command(subcommand)]
    Asyncapi(asyncapi::AsyncApiCommand),
    /// List the topics of the catalog.
    Topics {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// The dead-letter topic, as named on the cluster (e.g. `platform.evkit.todo-created.dlq`).
    #[arg(long)]
    from: String,
    /// The replay job's consumer group.
    #[arg(long, default_value = "evkit-replay")]
    group: String,
    /// Only messages dead-lettered for this reason; repeat for more. Default: every reason.
    #[arg(long = "reason", value_parser = ["validation", "decode", "rejected", "error", "timeout", "panic"])]
    reasons: Vec<String>,
    /// Also send messages whose original topic is not in the catalog (unchecked: nothing here
    /// describes them). Default: leave them on the dead-letter topic, counted as foreign.
    #[arg(long)]
    allow_foreign: bool,
    /// Stop after reading this many messages.
    #[arg(long)]
    limit: Option<u64>,
    /// Stop after this many seconds without a message.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    idle_timeout: u64,
    /// Report what would be replayed; send and commit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Bootstrap servers (overrides the configuration).
    #[arg(long, env = "EVKIT_BOOTSTRAP")]
    bootstrap: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(clap::Args)]
struct OutboxArgs {
    /// The database holding the `evkit_outbox` table (e.g. the service's own): a SQLite file
    /// path, or a `postgres://` URL.
    #[arg(long, value_name = "PATH|URL")]
    db: String,
    /// Send the stored messages instead of only counting them.
    #[arg(long)]
    relay: bool,
    /// Relay at most this many messages.
    #[arg(long, requires = "relay")]
    limit: Option<u64>,
    /// Bootstrap servers (overrides the configuration).
    #[arg(long, env = "EVKIT_BOOTSTRAP")]
    bootstrap: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(clap::Args)]
struct ReadArgs {
    /// Start from the earliest offset instead of new messages only.
    #[arg(long)]
    from_beginning: bool,
    /// Stop after this many messages.
    #[arg(long)]
    count: Option<usize>,
    /// Stop after this many seconds without a message.
    #[arg(long, value_name = "SECONDS")]
    idle_timeout: Option<u64>,
    /// Consumer group: what it read is committed, so the next run with it goes on from there
    /// (default: a fresh group, so nothing is committed).
    #[arg(long)]
    group: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Bootstrap servers.
    #[arg(long, env = "EVKIT_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
}

impl ReadArgs {
    fn consume(&self, topics: Vec<String>) -> kafka::Consume<'_> {
        kafka::Consume {
            bootstrap: &self.bootstrap,
            topics,
            from_beginning: self.from_beginning,
            count: self.count,
            idle_timeout: self.idle_timeout.map(std::time::Duration::from_secs),
            group: self.group.as_deref(),
            format: self.format,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        let _ = THREADS.set(usize::from(n));
    }
    match run(&cli) {
        Ok(code) => code,
        // The reader went away (`| head`): what it wanted it has; end quietly.
        Err(e) if closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if cli.command.format() == Format::Json => {
            eprintln!("{}", json!({"error": chain_text(&e), "exit": 2}));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("evkit: {}", chain_text(&e));
            ExitCode::from(2)
        }
    }
}

impl Command {
    /// The output format the command was asked for.
    fn format(&self) -> Format {
        match self {
            Command::Validate { format, .. }
            | Command::Lint { format, .. }
            | Command::Generate { format, .. }
            | Command::Produce { format, .. }
            | Command::Fuzz { format, .. }
            | Command::Verify { format, .. }
            | Command::Topics { format } => *format,
            Command::Consume { read, .. } | Command::Tail { read } => read.format,
            Command::Gate(a) => a.format,
            Command::Bench(a) => a.format,
            Command::Replay(a) => a.format,
            Command::Outbox(a) => a.format,
            _ => Format::Human,
        }
    }
}

/// The error and its causes, each said once: a cause whose text its parent already shows (an
/// error type that prints its source) is not repeated.
fn chain_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// `--listen`: an address, or a host name and port (the first address it resolves to).
fn resolve_listen(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    s.to_socket_addrs()
        .map_err(|e| format!("`{s}` is not HOST:PORT: {e}"))?
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

/// `true` when `e` is, or was caused by, writing to a closed pipe.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Ends the process after a failed write to stdout: quietly (exit 0) when the reader closed
/// the pipe, with the error (exit 2) otherwise.
pub(crate) fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("evkit: writing to stdout: {e}");
    std::process::exit(2);
}

fn run(cli: &Cli) -> Result<ExitCode> {
    if let Command::GenerateExamples {
        topic,
        schema,
        count,
        invalid_ratio,
        seed,
        break_rule,
        list_rules,
        draft,
    } = &cli.command
    {
        // Needs the catalog only for `--topic`.
        let invalid_ratio = if break_rule.is_some() && *invalid_ratio <= 0.0 {
            1.0
        } else {
            *invalid_ratio
        };
        return examples::run(
            &cli.catalog,
            &examples::Args {
                topic: topic.as_deref(),
                schema: schema.as_deref(),
                count: *count,
                invalid_ratio,
                seed: *seed,
                rule: break_rule.as_deref(),
                list_rules: *list_rules,
                draft: draft.as_deref(),
            },
        );
    }
    if let Command::Asyncapi(command @ asyncapi::AsyncApiCommand::Import { .. }) = &cli.command {
        // Builds a catalog; needs none.
        return asyncapi::run(None, command);
    }
    run_with_catalog(cli, &Catalog::load(&cli.catalog)?)
}

#[allow(clippy::too_many_lines)] // reason: one arm per command
fn run_with_catalog(cli: &Cli, catalog: &Catalog) -> Result<ExitCode> {
    match &cli.command {
        Command::Validate {
            topic,
            key,
            headers,
            org_id,
            lines,
            schema_id,
            registry,
            format,
            file,
        } => {
            if *lines {
                validate_lines(catalog, topic.as_deref(), *format, file.as_ref())
            } else {
                let topic = topic.as_deref().unwrap_or_default();
                let schema_id = registry::schema_id(catalog, topic, *schema_id, registry)?;
                validate(
                    catalog,
                    topic,
                    key.as_deref(),
                    (headers, org_id.as_deref()),
                    schema_id,
                    *format,
                    file.as_ref(),
                )
            }
        }
        Command::Lint {
            deny_warnings,
            format,
        } => Ok(lint(catalog, *deny_warnings, *format)),
        Command::Generate { out, check, format } => {
            let out = if let Some(o) = out {
                o.clone()
            } else {
                let crate_dir = Path::new("crates/evkit-events");
                if !crate_dir.is_dir() {
                    bail!(
                        "there is no {} here ({}): run `evkit generate` from the workspace root, \
                         or pass --out DIR",
                        crate_dir.display(),
                        std::env::current_dir().unwrap_or_default().display()
                    );
                }
                crate_dir.join("src/generated")
            };
            generate(catalog, &out, *check, *format)
        }
        Command::Dev { listen, brokers } => {
            runtime()?.block_on(kafka::dev(catalog, *listen, *brokers))
        }
        Command::Produce {
            topic,
            key,
            headers,
            org_id,
            no_validate,
            dataschema,
            schema_id,
            registry,
            bootstrap,
            format,
            file,
        } => {
            let payload = read_input(file.as_ref())?;
            let schema_id = registry::schema_id(catalog, topic, *schema_id, registry)?;
            let p = kafka::Produce {
                bootstrap,
                topic,
                key: key.as_deref(),
                headers,
                org_id: org_id.as_deref(),
                validate: !no_validate,
                dataschema: dataschema.as_deref(),
                format: *format,
                payload: &payload,
                schema_id,
            };
            runtime()?.block_on(kafka::produce(catalog, &p))
        }
        Command::Consume { topic, read } => {
            runtime()?.block_on(kafka::consume(catalog, &read.consume(vec![topic.clone()])))
        }
        Command::Tail { read } => {
            let topics = catalog
                .topics()
                .iter()
                .map(|t| t.name().to_owned())
                .collect();
            runtime()?.block_on(kafka::consume(catalog, &read.consume(topics)))
        }
        Command::Replay(args) => replay(catalog, args),
        Command::Outbox(args) => outbox(catalog, args),
        Command::Topics { format } => Ok(topics(catalog, *format)),
        Command::Registry(command) => registry::run(catalog, command),
        Command::Asyncapi(command) => asyncapi::run(Some(catalog), command),
        Command::Gate(args) => gate(catalog, args),
        Command::Bench(args) => runtime()?.block_on(harness::bench(catalog.clone(), args)),
        Command::Fuzz {
            topic,
            to,
            count,
            invalid_ratio,
            seed,
            bootstrap,
            format,
        } => runtime()?.block_on(harness::fuzz(
            catalog,
            &harness::Fuzz {
                topic,
                to: to.as_deref(),
                count: *count,
                invalid_ratio: *invalid_ratio,
                seed: *seed,
                bootstrap,
                format: *format,
            },
        )),
        Command::Verify {
            contracts,
            bootstrap,
            count,
            invalid,
            seed,
            junit,
            format,
        } => runtime()?.block_on(harness::run_verify(
            catalog.clone(),
            &harness::Verify {
                contracts,
                bootstrap: bootstrap.as_deref(),
                valid: *count,
                invalid: *invalid,
                seed: *seed,
                junit: junit.as_deref(),
                format: *format,
            },
        )),
        // Handled in `run`, before a catalog is needed.
        Command::GenerateExamples { .. } => Ok(ExitCode::SUCCESS),
    }
}

fn gate(catalog: &Catalog, args: &GateArgs) -> Result<ExitCode> {
    use evkit_testkit::gate::{Allowance, Mode, Options, allow};
    let base = Catalog::load(&args.base)
        .with_context(|| format!("loading the base catalog {}", args.base.display()))?;
    let allow_file = args.allow.clone().or_else(|| {
        args.contracts
            .as_ref()
            .map(|c| c.join(allow::FILE))
            .filter(|p| p.is_file())
    });
    let allowed = match &allow_file {
        Some(path) => Allowance::load(path)?,
        None => Vec::new(),
    };
    let mut opts = Options {
        mode: match args.mode {
            GateMode::Full => Mode::Full,
            GateMode::Backward => Mode::Backward,
            GateMode::Forward => Mode::Forward,
        },
        cases: args.cases,
        seed: args.seed,
        allowed,
        ..Options::default()
    };
    if let Some(today) = args.today {
        opts.today = today;
    }
    let report = evkit_testkit::gate::gate(&base, catalog, args.contracts.as_deref(), &opts)?;
    print_gate(&report, args.format, allow_file.as_deref());
    Ok(if report.compatible() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[allow(clippy::too_many_lines)] // reason: the two formats side by side
fn print_gate(
    report: &evkit_testkit::gate::Report,
    format: Format,
    allow_file: Option<&std::path::Path>,
) {
    use evkit_testkit::gate::Finding;
    let status = |f: &Finding| {
        if f.blocks(report.mode) {
            "blocks"
        } else if f.allowed.is_some() {
            "allowed"
        } else if f.breaks(report.mode).is_empty() && !f.harmless.is_empty() {
            "harmless"
        } else {
            "not checked"
        }
    };
    match format {
        Format::Json => {
            let findings: Vec<_> = report
                .findings
                .iter()
                .map(|f| {
                    let mut v = serde_json::to_value(f).unwrap_or_default();
                    v["status"] = json!(status(f));
                    v
                })
                .collect();
            let checked: Vec<_> = report
                .checked
                .iter()
                .map(|(t, n)| json!({"topic": t, "messages": n}))
                .collect();
            let proofs: Vec<_> = report
                .proofs
                .iter()
                .map(|(t, d, c)| json!({"topic": t, "direction": d, "covered": c.as_str()}))
                .collect();
            outln!(
                "{}",
                json!({
                    "compatible": report.compatible(),
                    "findings": findings,
                    "checked": checked,
                    "proofs": proofs,
                    "allowances": {
                        "file": allow_file.map(|p| p.display().to_string()),
                        "used": report.used,
                        "expired": report.expired,
                    },
                })
            );
        }
        Format::Human => {
            for (topic, n) in &report.checked {
                outln!("checked {topic} ({n} generated messages)");
            }
            for (topic, d, c) in &report.proofs {
                if c.as_str() == "yes" {
                    outln!(
                        "proven {d}-compatible: {topic} (jsonschema's canonical algebra: the \
                         consuming side accepts everything the producing side does)"
                    );
                }
            }
            for f in &report.findings {
                let topic = if f.topic.is_empty() { "-" } else { &f.topic };
                let pointer = if f.pointer.is_empty() {
                    "/"
                } else {
                    &f.pointer
                };
                outln!(
                    "{:<11} {topic} [{}] {} {} {pointer}: {}",
                    status(f).to_uppercase(),
                    f.rule,
                    f.direction,
                    f.part,
                    f.detail
                );
                if let Some(proof) = &f.proof {
                    outln!("            proof: {proof}");
                }
                if f.witnesses.is_empty()
                    && f.part != "contracts"
                    && !f.breaks(report.mode).is_empty()
                {
                    outln!("            no witness found");
                }
                for w in &f.witnesses {
                    outln!(
                        "            witness ({}, {}): {}",
                        w.direction,
                        w.part,
                        w.value
                    );
                    outln!("            refused: {}", w.refused);
                }
                if let Some(a) = &f.allowed {
                    outln!("            allowed until {}: {}", a.expires, a.reason);
                }
            }
            for a in &report.used {
                outln!(
                    "allowance used: {} [{}] {} (until {}): {}",
                    a.topic,
                    a.rule,
                    a.pointer,
                    a.expires,
                    a.reason
                );
            }
            for a in &report.expired {
                outln!(
                    "allowance EXPIRED on {}: {} [{}] {} (it lets nothing through)",
                    a.expires,
                    a.topic,
                    a.rule,
                    a.pointer
                );
            }
            let blocking = report.blocking().count();
            if blocking == 0 {
                outln!(
                    "compatible ({} finding(s), none blocking)",
                    report.findings.len()
                );
            } else {
                outln!("{blocking} incompatibilities");
            }
        }
    }
}

fn replay(catalog: &Catalog, args: &ReplayArgs) -> Result<ExitCode> {
    let mut config = evkit::Config::load()?;
    if let Some(b) = &args.bootstrap {
        config.bootstrap_servers.clone_from(b);
    }
    let options = evkit::ReplayOptions {
        group_id: args.group.clone(),
        reasons: args.reasons.clone(),
        limit: args.limit,
        idle: std::time::Duration::from_secs(args.idle_timeout),
        dry_run: args.dry_run,
        allow_foreign: args.allow_foreign,
        progress: Some(std::sync::Arc::new(|r: &evkit::ReplayReport| {
            // The first message (the job has its partitions and reads), then every 1000th.
            if r.read == 1 || r.read.is_multiple_of(1000) {
                eprintln!(
                    "replay: read {}, replayed {}, still invalid {}",
                    r.read,
                    r.replayed_total(),
                    r.still_invalid_total()
                );
            }
        })),
        ..evkit::ReplayOptions::new(&args.from)
    };
    eprintln!(
        "replay: reading {} as group {} (stops after {} s without a message)",
        args.from, args.group, args.idle_timeout
    );
    let report = runtime()?.block_on(evkit::replay(
        &config,
        std::sync::Arc::new(catalog.clone()),
        &options,
    ))?;
    print_replay(&report, args.dry_run, args.format);
    Ok(ExitCode::SUCCESS)
}

fn print_replay(report: &evkit::ReplayReport, dry_run: bool, format: Format) {
    match format {
        Format::Json => outln!(
            "{}",
            json!({
                "dry_run": dry_run,
                "read": report.read,
                "replayed": report.replayed,
                "still_invalid": report.still_invalid,
                "skipped": report.skipped,
                "foreign": report.foreign,
            })
        ),
        Format::Human => {
            let verb = if dry_run { "would replay" } else { "replayed" };
            outln!(
                "read {}, {verb} {}, still invalid {} (left on the dead-letter topic), skipped {}",
                report.read,
                report.replayed_total(),
                report.still_invalid_total(),
                report.skipped
            );
            for (topic, n) in &report.replayed {
                outln!("  {verb} {n} to {topic}");
            }
            for (topic, n) in &report.still_invalid {
                outln!("  {n} still invalid for {topic}");
            }
            for (topic, n) in &report.foreign {
                outln!(
                    "  {n} left for {topic}: not in the catalog (--allow-foreign sends them unchecked)"
                );
            }
        }
    }
}

fn outbox(catalog: &Catalog, args: &OutboxArgs) -> Result<ExitCode> {
    let postgres = args.db.starts_with("postgres://") || args.db.starts_with("postgresql://");
    if !postgres && !Path::new(args.db.strip_prefix("sqlite:").unwrap_or(&args.db)).exists() {
        anyhow::bail!("{}: no such database", args.db);
    }
    let producer = if args.relay {
        let mut config = evkit::Config::load()?;
        if let Some(b) = &args.bootstrap {
            config.bootstrap_servers.clone_from(b);
        }
        Some(evkit::Producer::new(
            &config,
            std::sync::Arc::new(catalog.clone()),
            evkit::Metrics::new(),
        )?)
    } else {
        None
    };
    let options = evkit::outbox::RelayOptions {
        limit: args.limit,
        ..evkit::outbox::RelayOptions::default()
    };
    let (report, pending, last_error) = runtime()?.block_on(async {
        // Showing only reads; relaying deletes what it sent. Neither creates a table.
        let outbox = evkit::outbox::Outbox::open_existing(&args.db, args.relay).await?;
        let report = match &producer {
            Some(p) => Some(outbox.relay(p, &options).await?),
            None => None,
        };
        Ok::<_, evkit::Error>((report, outbox.pending().await?, outbox.last_error().await?))
    })?;
    match args.format {
        Format::Json => outln!(
            "{}",
            json!({
                "sent": report.as_ref().map(|r| r.sent),
                "failed": report.as_ref().map(|r| r.failed),
                "unreadable": report.as_ref().map(|r| r.unreadable),
                "busy": report.as_ref().map(|r| r.busy),
                "pending": pending,
                "last_error": last_error,
            })
        ),
        Format::Human => {
            if let Some(r) = &report {
                if r.busy {
                    outln!("another relay is sending from this outbox; sent nothing");
                } else {
                    outln!(
                        "sent {}, failed {}, unreadable {}",
                        r.sent,
                        r.failed,
                        r.unreadable
                    );
                }
            }
            outln!("{pending} message(s) in the outbox");
            if let Some(e) = last_error {
                outln!("  last error: {e}");
            }
        }
    }
    Ok(if pending == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--threads`, read once in `main`.
static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// The runtime's worker threads: `--threads`, or one per core.
/// The cores this process may run on.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

fn threads() -> usize {
    THREADS
        .get()
        .copied()
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        })
        .max(1)
}

/// The async runtime: `--threads` workers, one per core by default.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads())
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn read_input(file: Option<&PathBuf>) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match file {
        Some(path) if path.as_os_str() != "-" => {
            bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
        }
    }
    Ok(bytes)
}

fn validate(
    catalog: &Catalog,
    topic: &str,
    key: Option<&str>,
    (headers, org_id): (&[String], Option<&str>),
    schema_id: Option<u32>,
    format: Format,
    file: Option<&PathBuf>,
) -> Result<ExitCode> {
    let contract = catalog.contract(topic)?;
    let mut payload = read_input(file)?;
    if let Some(id) = schema_id
        && payload.first() != Some(&evkit_schema::confluent::MAGIC_BYTE)
    {
        payload = evkit_schema::confluent::frame(id, &payload);
    }
    let given = |name: &str| {
        headers.iter().any(|h| {
            h.split_once('=')
                .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
        })
    };
    let identity = org_id
        .filter(|_| !given(evkit_schema::IDENTITY_HEADER))
        .map(|org| evkit_schema::encode_identity(org, "User"));
    let mut message = Message::new(&payload);
    message.key = key.map(str::as_bytes);
    for h in headers {
        let Some((name, value)) = h.split_once('=') else {
            bail!("--header `{h}` is not NAME=VALUE");
        };
        message = message.header(name, value.as_bytes());
    }
    if let Some(id) = &identity {
        message = message.header(evkit_schema::IDENTITY_HEADER, id.as_bytes());
    }
    let result = contract.check(&message);
    let violations = result
        .as_ref()
        .err()
        .map(evkit_schema::Error::violations)
        .unwrap_or_default();
    match format {
        Format::Json => {
            let report = json!({
                "topic": topic,
                "valid": result.is_ok(),
                "org_id": result.as_ref().ok().and_then(|c| c.identity.as_ref()).map(evkit_schema::Identity::org_id),
                "schema_id": result.as_ref().ok().and_then(|c| c.schema_id),
                "violations": violations.iter().map(violation_json).collect::<Vec<_>>(),
            });
            outln!("{report}");
        }
        Format::Human if result.is_ok() => outln!("valid: {topic}"),
        Format::Human => {
            outln!("invalid: {topic}: {} violation(s)", violations.len());
            for line in summarise(violations) {
                outln!("  - {line}");
            }
        }
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Violations as lines, identical ones once with their count (10,000 copies of one header
/// give one line, not 9,999).
fn summarise(violations: &[Violation]) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for v in violations {
        let text = v.to_string();
        match out.iter_mut().find(|(t, _)| *t == text) {
            Some((_, n)) => *n += 1,
            None => out.push((text, 1)),
        }
    }
    out.into_iter()
        .map(|(t, n)| if n > 1 { format!("{t} (×{n})") } else { t })
        .collect()
}

/// `validate --lines`: every message line against its topic's contract, and a summary.
fn validate_lines(
    catalog: &Catalog,
    topic: Option<&str>,
    format: Format,
    file: Option<&PathBuf>,
) -> Result<ExitCode> {
    let input = read_input(file)?;
    let text = String::from_utf8(input).context("the lines are not UTF-8")?;
    let (mut valid, mut invalid, mut wrong) = (0u64, 0u64, 0u64);
    for (i, line) in text.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let n = i + 1;
        let m = examples::read_line(line).with_context(|| format!("line {n}"))?;
        let Some(name) = topic.map(str::to_owned).or(m.topic.clone()) else {
            bail!("line {n} names no topic; pass --topic");
        };
        let contract = catalog
            .contract(&name)
            .with_context(|| format!("line {n}"))?;
        let mut message = Message::new(&m.payload);
        message.key = m.key.as_deref();
        for (h, v) in &m.headers {
            message = match v {
                Some(v) => message.header(h, v),
                None => message.null_header(h),
            };
        }
        let result = contract.check(&message);
        let ok = result.is_ok();
        if ok {
            valid += 1;
        } else {
            invalid += 1;
        }
        // A labelled line must be invalid; any other valid.
        let as_labelled = ok == m.broken.is_none();
        if !as_labelled {
            wrong += 1;
        }
        let violations = result
            .as_ref()
            .err()
            .map(evkit_schema::Error::violations)
            .unwrap_or_default();
        match format {
            Format::Json => outln!(
                "{}",
                json!({
                    "line": n,
                    "topic": name,
                    "valid": ok,
                    "broken": m.broken,
                    "as_labelled": as_labelled,
                    "violations": violations.iter().map(violation_json).collect::<Vec<_>>(),
                })
            ),
            Format::Human if as_labelled => {}
            Format::Human => {
                if let Some(rule) = &m.broken {
                    outln!("line {n}: {name}: labelled `{rule}` but valid");
                } else {
                    outln!(
                        "line {n}: invalid: {name}: {} violation(s)",
                        violations.len()
                    );
                }
                for s in summarise(violations) {
                    outln!("  - {s}");
                }
            }
        }
    }
    let summary = format!(
        "{} message(s): {valid} valid, {invalid} invalid, {wrong} not as labelled",
        valid + invalid
    );
    match format {
        Format::Json => outln!(
            "{}",
            json!({"summary": {"messages": valid + invalid, "valid": valid, "invalid": invalid, "not_as_labelled": wrong}})
        ),
        Format::Human => outln!("{summary}"),
    }
    Ok(if wrong == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn violation_json(v: &Violation) -> serde_json::Value {
    json!({
        "part": v.part.to_string(),
        "instance_path": v.instance_path,
        "schema_path": v.schema_path,
        "rule": v.rule,
        "message": v.message,
    })
}

fn lint(catalog: &Catalog, deny_warnings: bool, format: Format) -> ExitCode {
    let findings = lint_catalog(catalog);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    match format {
        Format::Json => {
            let list: Vec<_> = findings
                .iter()
                .map(|f| {
                    json!({
                        "severity": f.severity.to_string(),
                        "file": f.file.display().to_string(),
                        "pointer": f.pointer,
                        "rule": f.rule,
                        "message": f.message,
                    })
                })
                .collect();
            outln!(
                "{}",
                json!({ "errors": errors, "warnings": warnings, "findings": list })
            );
        }
        Format::Human => {
            for f in &findings {
                outln!("{f}");
            }
            outln!(
                "{} topic(s) linted: {errors} error(s), {warnings} warning(s)",
                catalog.topics().len()
            );
        }
    }
    if errors > 0 || (deny_warnings && warnings > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn generate(
    catalog: &Catalog,
    out: &std::path::Path,
    check: bool,
    format: Format,
) -> Result<ExitCode> {
    let generated = evkit_codegen::generate(catalog)?;
    let say = |human: String, data: serde_json::Value| match format {
        Format::Json => outln!("{data}"),
        Format::Human => outln!("{human}"),
    };
    if check {
        return match evkit_codegen::check(&generated, out) {
            Ok(()) => {
                say(
                    format!("generated code in {} is up to date", out.display()),
                    json!({"out": out, "up_to_date": true}),
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e @ evkit_codegen::Error::Drift { .. }) => {
                say(
                    e.to_string(),
                    json!({"out": out, "up_to_date": false, "detail": e.to_string()}),
                );
                Ok(ExitCode::from(1))
            }
            Err(e) => Err(e.into()),
        };
    }
    evkit_codegen::write(&generated, out)?;
    say(
        format!(
            "wrote {} file(s) to {}",
            generated.files.len(),
            out.display()
        ),
        json!({"out": out, "files": generated.files.keys().collect::<Vec<_>>()}),
    );
    Ok(ExitCode::SUCCESS)
}

fn topics(catalog: &Catalog, format: Format) -> ExitCode {
    match format {
        Format::Json => {
            let list: Vec<_> = catalog
                .topics()
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name(),
                        "owner": t.spec.owner,
                        "partitions": t.spec.partitions,
                        "schema": t.spec.schema_file(),
                        "key": t.spec.key,
                        "envelope": t.spec.envelope,
                        "required_headers": t.contract().required_headers(),
                        "dead_letter": t.spec.dead_letter_topic(),
                    })
                })
                .collect();
            outln!("{}", serde_json::Value::Array(list));
        }
        Format::Human => {
            outln!(
                "{:<40} {:<8} {:>10}  {:<22} KEY",
                "TOPIC",
                "OWNER",
                "PARTITIONS",
                "ENVELOPE"
            );
            for t in catalog.topics() {
                let owner = match t.spec.owner {
                    evkit_schema::Owner::Owned => "owned",
                    evkit_schema::Owner::Foreign => "foreign",
                };
                let envelope = match t.spec.envelope.mode {
                    evkit_schema::EnvelopeMode::Plain => "json",
                    evkit_schema::EnvelopeMode::CloudeventsStructured => "cloudevents-structured",
                    evkit_schema::EnvelopeMode::CloudeventsBinary => "cloudevents-binary",
                };
                let key = match (&t.spec.key.pointer, &t.spec.key.schema, t.spec.key.required) {
                    (Some(p), _, true) => format!("required, = payload {p}"),
                    (Some(p), _, false) => format!("optional, = payload {p}"),
                    (None, Some(_), r) => {
                        format!("{}, schema", if r { "required" } else { "optional" })
                    }
                    (None, None, true) => "required".to_owned(),
                    (None, None, false) => "optional".to_owned(),
                };
                outln!(
                    "{:<40} {:<8} {:>10}  {:<22} {key}",
                    t.name(),
                    owner,
                    t.spec.partitions,
                    envelope
                );
            }
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod allocator {
    /// The process's C allocations (librdkafka's messages and headers, the embedded broker's
    /// records) come from mimalloc, as Rust's do: the workspace's `mimalloc` dependency has the
    /// `override` feature. Without it, `malloc` is glibc's and this fails.
    #[test]
    #[allow(unsafe_code)]
    fn c_malloc_is_mimalloc_too() {
        let rust = Box::new([0u8; 64]);
        // SAFETY: `mi_is_in_heap_region` only compares an address with mimalloc's regions.
        let from_rust = unsafe { libmimalloc_sys::mi_is_in_heap_region(rust.as_ptr().cast()) };
        assert!(from_rust, "the global allocator is mimalloc");
        // SAFETY: a plain allocation, looked up as above, then freed once by the same `free`.
        let from_c = unsafe {
            let p = libc::malloc(64);
            assert!(!p.is_null());
            let ours = libmimalloc_sys::mi_is_in_heap_region(p);
            libc::free(p);
            ours
        };
        assert!(
            from_c,
            "C's malloc is not mimalloc's: give the mimalloc dependency its `override` feature"
        );
    }
}
