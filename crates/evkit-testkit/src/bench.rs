//! Partition throughput: how fast evkit's consumer (validation, routing, the handler, commits)
//! works through one topic's messages as the partition count grows, on a real broker. A team
//! asks it "how many partitions for N messages a second, when my handler takes T?".
//!
//! For each partition count, valid messages generated from the topic's contract (seeded) are
//! published to a fresh topic with that many partitions; then an evkit consumer reads them all
//! with a handler that waits the given time per message (work that does not use the CPU, like a
//! database call). The rate is messages per second from the first handled message to the last.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use evkit::{Config, Consumer, Incoming, Metrics, Outcome, Router, handler_fn};
use evkit_schema::{Catalog, Topic};

use crate::Error;
use crate::clients::producer;
use crate::messages::Generated;
use crate::messages::valid_message;
use crate::verify::{draw, publish, seeded_runner};
use crate::{Broker, BrokerKind};

/// Told what the bench is doing (for progress output).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// What to run.
#[derive(Clone)]
pub struct Options {
    /// Messages per run.
    pub messages: usize,
    /// The partition counts to compare.
    pub partitions: Vec<u32>,
    /// Time the handler waits per message.
    pub handler_time: Duration,
    /// Seed of the message generator.
    pub seed: u64,
    /// Give up on a run after this long.
    pub timeout: Duration,
    /// Told of each step.
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("messages", &self.messages)
            .field("partitions", &self.partitions)
            .field("handler_time", &self.handler_time)
            .field("seed", &self.seed)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            messages: 5_000,
            partitions: vec![1, 2, 4, 8],
            handler_time: Duration::ZERO,
            seed: 0,
            timeout: Duration::from_secs(300),
            progress: None,
        }
    }
}

/// One run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Partitions of the topic.
    pub partitions: u32,
    /// Messages handled (each one once).
    pub handled: u64,
    /// Messages handled per partition.
    pub per_partition: BTreeMap<i32, u64>,
    /// Handled messages per second, first to last.
    pub rate: f64,
    /// Offsets committed at the end, over all partitions (equals `handled`).
    pub committed: i64,
}

/// Runs one consumer pass per partition count; see the module docs.
pub async fn partition_throughput(
    broker: &Broker,
    catalog: &Arc<Catalog>,
    topic: &Topic,
    opts: &Options,
) -> Result<Vec<Run>, Error> {
    if opts.messages == 0 || opts.partitions.contains(&0) || opts.partitions.is_empty() {
        return Err(Error::Limit {
            what: "a bench needs at least one message and partition counts of 1 or more".to_owned(),
        });
    }
    let strategy = valid_message(topic)?;
    if broker.kind() == BrokerKind::Embedded {
        // Refused before anything is generated: the size is estimated from a sample.
        let mut runner = seeded_runner(opts.seed);
        let sample = (0..opts.messages.min(256))
            .map(|_| draw(&strategy, &mut runner))
            .collect::<Result<Vec<_>, _>>()?;
        fits_the_mock_broker(&sample, opts.messages, opts)?;
    }
    let tell = |what: String| {
        if let Some(p) = &opts.progress {
            p(&what);
        }
    };
    let p = producer(broker)?;
    let mut runs = Vec::new();
    for &partitions in &opts.partitions {
        let actual = broker.unique_topic("bench");
        broker
            .create_topic(&actual, i32::try_from(partitions).unwrap_or(i32::MAX))
            .await?;
        // Generated as they are sent, 1,000 at a time (the same seed gives every run the same
        // messages), so memory does not grow with --messages. Many sends in flight, so the
        // producer batches as a service's would (one record per batch would make the
        // consumer's fetches, not evkit, the bottleneck).
        let mut runner = seeded_runner(opts.seed);
        let mut sent = 0;
        while sent < opts.messages {
            let n = (opts.messages - sent).min(1_000);
            let chunk = (0..n)
                .map(|_| draw(&strategy, &mut runner))
                .collect::<Result<Vec<_>, _>>()?;
            let sends = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| publish(&p, &actual, sent + i, m));
            futures::future::try_join_all(sends).await?;
            sent += n;
            if sent % 100_000 == 0 || sent == opts.messages {
                tell(format!(
                    "{partitions} partition(s): {sent} of {} messages sent",
                    opts.messages
                ));
            }
        }
        tell(format!("{partitions} partition(s): consuming"));
        runs.push(consume(broker, catalog, topic, &actual, partitions, opts).await?);
    }
    Ok(runs)
}

/// librdkafka's mock broker keeps about 5 MB per partition and drops older records (like
/// retention), so a run that puts more on one partition would wait for records that are gone.
const MOCK_PARTITION_BYTES: usize = 4 << 20;

fn fits_the_mock_broker(sample: &[Generated], count: usize, opts: &Options) -> Result<(), Error> {
    let sampled: usize = sample
        .iter()
        .map(|m| {
            m.payload.len()
                + m.key.as_ref().map_or(0, Vec::len)
                + m.headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>()
                + 64
        })
        .sum();
    let bytes = sampled / sample.len().max(1) * count;
    let fewest = opts.partitions.iter().copied().min().unwrap_or(1).max(1) as usize;
    // Keys spread unevenly: leave a third of room.
    let per_partition = bytes / fewest * 4 / 3;
    if per_partition <= MOCK_PARTITION_BYTES {
        return Ok(());
    }
    let each = (bytes / count.max(1)).max(1);
    let most = MOCK_PARTITION_BYTES * 3 / 4 * fewest / each;
    Err(Error::Limit {
        what: format!(
            "{count} messages of about {each} bytes on {fewest} partition(s) exceed what the \
             embedded broker keeps per partition (about 5 MB; it drops older records): use at \
             most {most} messages, more partitions, or a real broker (--bootstrap)"
        ),
    })
}

/// What the handler records: how many, where, when the first and the last came.
#[derive(Default)]
struct Tally {
    count: AtomicU64,
    per_partition: Mutex<BTreeMap<i32, u64>>,
    first: OnceLock<Instant>,
    last: OnceLock<Instant>,
}

/// A run that handles nothing new for this long has stalled.
const IDLE_LIMIT: Duration = Duration::from_secs(30);

async fn consume(
    broker: &Broker,
    catalog: &Arc<Catalog>,
    topic: &Topic,
    actual: &str,
    partitions: u32,
    opts: &Options,
) -> Result<Run, Error> {
    let dlq = format!("{actual}.dlq");
    broker.create_topic(&dlq, 1).await?;
    let mut config = Config {
        bootstrap_servers: broker.bootstrap_servers().to_owned(),
        group_id: broker.unique_group(),
        client_id: "evkit-bench".to_owned(),
        ..Config::default()
    };
    config
        .topics
        .insert(topic.name().to_owned(), actual.to_owned());
    config
        .topics
        .insert(topic.spec.dead_letter_topic(), dlq.clone());
    let want = u64::try_from(opts.messages).unwrap_or(u64::MAX);
    let tally = Arc::new(Tally::default());
    let on_message = {
        let tally = Arc::clone(&tally);
        let pause = opts.handler_time;
        handler_fn(move |msg: Incoming| {
            let tally = Arc::clone(&tally);
            let partition = msg.envelope().partition;
            async move {
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                *tally
                    .per_partition
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(partition)
                    .or_default() += 1;
                let seen = tally.count.fetch_add(1, Ordering::Relaxed) + 1;
                if seen == 1 {
                    let _ = tally.first.set(Instant::now());
                }
                if seen == want {
                    let _ = tally.last.set(Instant::now());
                }
                Outcome::Ack
            }
        })
    };
    let routes = Router::new(Arc::clone(catalog))
        .route(topic.name(), on_message)
        .build()?;
    let consumer = Consumer::new(&config, routes, Metrics::new())?;
    let stop = consumer.shutdown_token();
    let running = tokio::spawn(consumer.run(std::future::pending()));
    let deadline = Instant::now() + opts.timeout;
    // Also give up when nothing new was handled for a while (records lost on the broker).
    let (mut seen, mut progressed) = (0, Instant::now());
    while tally.last.get().is_none() && Instant::now() < deadline && !running.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = tally.count.load(Ordering::Relaxed);
        if now != seen {
            (seen, progressed) = (now, Instant::now());
        } else if progressed.elapsed() > IDLE_LIMIT {
            break;
        }
    }
    stop.cancel();
    let summary = running.await.map_err(|e| Error::Stalled {
        what: format!("bench consumer task on {partitions} partition(s): {e}"),
    })??;
    let handled = tally.count.load(Ordering::Relaxed);
    let (Some(first), Some(last)) = (tally.first.get(), tally.last.get()) else {
        return Err(Error::Stalled {
            what: format!(
                "bench consumer on {partitions} partition(s): {handled} of {want} messages handled \
                 (the run stops after {:?}, or {IDLE_LIMIT:?} without progress)",
                opts.timeout
            ),
        });
    };
    #[allow(clippy::cast_precision_loss)]
    let rate = handled.saturating_sub(1) as f64 / (*last - *first).as_secs_f64().max(1e-9);
    let per_partition = std::mem::take(
        &mut *tally
            .per_partition
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    Ok(Run {
        partitions,
        handled,
        per_partition,
        rate,
        committed: summary.committed.values().sum(),
    })
}
