//! `todo-service`: consumes todo-created, stores todos in SQLite, produces todo-indexed.
//!
//! ```text
//! todo-service --demo 200            # against the embedded broker, with a report; exit 1 if off
//! todo-service --db todos.db         # as a service: config from EVKIT_CONFIG / ACG_CONFIG / EVKIT_*
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use evkit::outbox::RelayOptions;
use evkit::{Config, Consumer, Metrics, Producer};
use evkit_schema::Catalog;
use todo_service::{Store, demo, routes};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc malloc: a service that builds and drops JSON values on several
/// threads spends several times less CPU in the allocator (see the README's Benchmarks and `docs/benchmarks.md`). With
/// the `override` feature it also answers C's `malloc`, so librdkafka's allocations (each
/// message, its parsed headers) use it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An example evkit service: todo-created → SQLite → todo-indexed.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Run against the embedded broker (or `EVKIT_BOOTSTRAP`): publish N valid todos plus broken
    /// messages, run the service, print a report, exit non-zero when the counts do not add up.
    #[arg(long, value_name = "N")]
    demo: Option<u64>,
    /// Broken messages the demo publishes besides the valid ones.
    #[arg(long, default_value_t = 8, requires = "demo")]
    broken: u64,
    /// The catalog folder.
    #[arg(long, default_value = "schemas", env = "EVKIT_CATALOG")]
    catalog: PathBuf,
    /// The SQLite database file (the demo uses a temporary one unless given).
    #[arg(long)]
    db: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colours only for a terminal (and never with NO_COLOR): logs collected from a pipe or
        // a file stay plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let cli = Cli::parse();
    if let Some(valid) = cli.demo {
        let report = demo::run(&demo::Options {
            valid,
            broken: cli.broken,
            catalog: cli.catalog,
            db: cli.db,
        })
        .await?;
        println!("{report}");
        if !report.ok() {
            std::process::exit(1);
        }
        return Ok(());
    }
    serve(&cli).await
}

/// The service proper: runs until SIGTERM or Ctrl-C, then drains and commits.
async fn serve(cli: &Cli) -> anyhow::Result<()> {
    let config = Config::load()?;
    let catalog = Arc::new(
        // With the generated crate's build-time validators (used where the schema still matches).
        Catalog::load_with(&cli.catalog, evkit_events::generated::PRECOMPILED)
            .with_context(|| format!("loading the catalog {}", cli.catalog.display()))?,
    );
    let db = cli
        .db
        .clone()
        .unwrap_or_else(|| PathBuf::from("todo-service.db"));
    let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
    let metrics = Metrics::new();
    let _server = match config.metrics_listen {
        Some(addr) => Some(metrics.serve(addr).await?),
        None => None,
    };
    let producer = Arc::new(Producer::new(
        &config,
        Arc::clone(&catalog),
        metrics.clone(),
    )?);
    // Announcements an earlier run stored but could not send go out first, then every 10 s
    // (only rows older than a minute, so none whose first send is still in flight).
    let outbox = store.outbox()?;
    let left = outbox.relay(&producer, &RelayOptions::default()).await?;
    tracing::info!(
        sent = left.sent,
        failed = left.failed,
        "outbox relayed at start-up"
    );
    let stop_relay = CancellationToken::new();
    let relay = tokio::spawn({
        let (producer, stop) = (Arc::clone(&producer), stop_relay.clone());
        async move {
            let options = RelayOptions {
                older_than: Duration::from_secs(60),
                ..RelayOptions::default()
            };
            outbox
                .run_relay(&producer, &options, Duration::from_secs(10), stop)
                .await;
        }
    });
    let consumer = Consumer::new(
        &config,
        routes(catalog, store, Arc::clone(&producer))?,
        metrics,
    )?;
    let summary = consumer.run(shutdown_signal()).await;
    // Each step is bounded: the relay abandons a pass under way (its rows stay stored), and
    // the producer gives up what the broker has not acknowledged by the deadline (those
    // announcements are in the outbox, and go out at the next start).
    stop_relay.cancel();
    let _ = relay.await;
    producer.close(config.consumer.shutdown_deadline()).await;
    tracing::info!(consumed = summary?.consumed, "todo-service stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
