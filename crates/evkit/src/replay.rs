//! The replay job: sends dead-lettered messages back to the topic they came from.
//!
//! After a fix ships (a handler bug, a schema that was too strict, a dependency that was down),
//! the messages that piled up on a dead-letter topic can be replayed: each one goes back to its
//! original topic (the `evkit-dlq-original-topic` header) with its original key, payload and
//! headers, the `evkit-dlq-*` headers removed. A message that still breaks the catalog contract of
//! its topic is not sent again; it stays on the dead-letter topic and is counted. The job reads
//! with its own consumer group and commits only what it handled (sent and acknowledged, or judged
//! still invalid), so running it twice does not send anything twice, and a crash in the middle
//! resumes where the last commit left off (at-least-once, like the consumer).
//!
//! Every wait is bounded: the broker and the dead-letter topic are checked first (10 s), the
//! group's assignment is awaited for at most 30 s, and the job stops after `idle` without a
//! message. A message whose original topic is not in the catalog is not sent (nothing can
//! check it) unless `allow_foreign` says so; it is counted as `foreign`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use evkit_schema::Catalog;
use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::dead_letter;
use crate::{Config, Context, Envelope, Error, Metrics, Producer, Reason};

/// How long the job waits for its consumer group to assign it the dead-letter topic's partitions.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the job waits for the broker to confirm its commit.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the job waits for the broker to describe the dead-letter topic.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Called with the report so far, after each message read (for progress output).
pub type Progress = Arc<dyn Fn(&ReplayReport) + Send + Sync>;

/// What to replay and how.
#[derive(Clone)]
pub struct ReplayOptions {
    /// The dead-letter topic to read, as named on the cluster.
    pub dead_letter_topic: String,
    /// The replay job's consumer group: its committed offsets say what was already replayed.
    pub group_id: String,
    /// Only messages dead-lettered for one of these reasons (see [`Reason`]: `validation`,
    /// `decode`, `rejected`, `error`, `timeout`, `panic`); empty: every reason. Others are
    /// skipped and committed. An unknown reason is an error before anything is read.
    pub reasons: Vec<String>,
    /// Stop after this many messages read.
    pub limit: Option<u64>,
    /// Stop when no message arrived for this long (the topic is drained).
    pub idle: Duration,
    /// Read and check, report what would happen, send and commit nothing.
    pub dry_run: bool,
    /// Send messages whose original topic is not in the catalog, unchecked (default: leave
    /// them, counted as `foreign`).
    pub allow_foreign: bool,
    /// Told of the progress after each message read.
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for ReplayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayOptions")
            .field("dead_letter_topic", &self.dead_letter_topic)
            .field("group_id", &self.group_id)
            .field("reasons", &self.reasons)
            .field("limit", &self.limit)
            .field("idle", &self.idle)
            .field("dry_run", &self.dry_run)
            .field("allow_foreign", &self.allow_foreign)
            .finish_non_exhaustive()
    }
}

impl ReplayOptions {
    /// Replays every message of `dead_letter_topic` with the group `evkit-replay`.
    pub fn new(dead_letter_topic: impl Into<String>) -> Self {
        ReplayOptions {
            dead_letter_topic: dead_letter_topic.into(),
            group_id: "evkit-replay".to_owned(),
            reasons: Vec::new(),
            limit: None,
            idle: Duration::from_secs(5),
            dry_run: false,
            allow_foreign: false,
            progress: None,
        }
    }
}

/// What a replay did, per original topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Messages read from the dead-letter topic.
    pub read: u64,
    /// Sent back to their original topic (in a dry run: would have been).
    pub replayed: BTreeMap<String, u64>,
    /// Still invalid against their topic's contract: left on the dead-letter topic.
    pub still_invalid: BTreeMap<String, u64>,
    /// Skipped: another reason than the ones asked for, or no `evkit-dlq-original-topic` header.
    pub skipped: u64,
    /// Messages left because their original topic is not in the catalog, by that topic.
    pub foreign: BTreeMap<String, u64>,
}

impl ReplayReport {
    /// Messages sent back, over all topics.
    pub fn replayed_total(&self) -> u64 {
        self.replayed.values().sum()
    }

    /// Messages still invalid, over all topics.
    pub fn still_invalid_total(&self) -> u64 {
        self.still_invalid.values().sum()
    }
}

/// What one dead-lettered record turned into.
enum Verdict {
    Replayed(String),
    StillInvalid(String),
    Foreign(String),
    Skipped,
}

/// Replays `options.dead_letter_topic` (see the module docs). Topic names in the
/// `evkit-dlq-original-topic` header are cluster names; `config.topics` maps them back to the
/// catalog, whose contract decides whether a message may be sent again.
#[allow(clippy::too_many_lines)] // reason: read, judge and commit, with their bounded waits
pub async fn replay(
    config: &Config,
    catalog: Arc<Catalog>,
    options: &ReplayOptions,
) -> Result<ReplayReport, Error> {
    for r in &options.reasons {
        if Reason::parse(r).is_none() {
            return Err(Error::Config {
                source_name: "replay".to_owned(),
                message: format!(
                    "unknown reason `{r}`: dead letters carry one of {}",
                    Reason::ALL.map(Reason::as_str).join(", ")
                ),
            });
        }
    }
    check_topic(config, &options.dead_letter_topic).await?;
    let mut client = config.consumer_client_config()?;
    client
        .set("group.id", &options.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    if !config.sets_consumer_property("session.timeout.ms") {
        // A short-lived job that polls all the time: the brokers' minimum session (6 s) is
        // plenty, and the next run of the job is not kept waiting for a departed member's long
        // default session (librdkafka's mock cluster waits a session out even after a leave).
        client.set("session.timeout.ms", "6000");
    }
    let consumer: StreamConsumer = client
        .create()
        .map_err(config.client_error("creating the replay consumer"))?;
    consumer
        .subscribe(&[options.dead_letter_topic.as_str()])
        .map_err(Error::kafka(format!(
            "subscribing to {}",
            options.dead_letter_topic
        )))?;
    let producer = Producer::new(config, catalog, Metrics::new())?;
    let mut report = ReplayReport::default();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let started = Instant::now();
    // `idle` counts from the moment the group gave this job its partitions (so a slow group
    // join does not look like an empty topic), then from the last message read. It is a
    // deadline, not a wait per poll: consume errors (a broker gone) do not restart it, and
    // partitions lost after that moment (the session timed out) do not send the job back to
    // waiting for a join, so it goes on to commit (which then reports what comes again).
    let mut idle_from: Option<Instant> = None;
    while options.limit.is_none_or(|l| report.read < l) {
        if idle_from.is_none() && consumer.assignment().is_ok_and(|a| a.count() > 0) {
            idle_from = Some(Instant::now());
        }
        let wait = match idle_from {
            Some(from) => options.idle.saturating_sub(from.elapsed()),
            None => Duration::from_millis(200),
        };
        let Ok(received) = tokio::time::timeout(wait, consumer.recv()).await else {
            if idle_from.is_some() {
                break;
            }
            if started.elapsed() > JOIN_TIMEOUT {
                return Err(Error::Config {
                    source_name: "replay".to_owned(),
                    message: format!(
                        "group {} got no partition of {} within {} s",
                        options.group_id,
                        options.dead_letter_topic,
                        JOIN_TIMEOUT.as_secs()
                    ),
                });
            }
            continue;
        };
        let message = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "replay: consume error (librdkafka retries)");
                continue;
            }
        };
        idle_from = Some(Instant::now());
        let envelope = Envelope::from_kafka(&message);
        report.read += 1;
        match replay_one(config, &producer, &envelope, options).await? {
            Verdict::Replayed(topic) => *report.replayed.entry(topic).or_default() += 1,
            Verdict::StillInvalid(topic) => *report.still_invalid.entry(topic).or_default() += 1,
            Verdict::Foreign(topic) => *report.foreign.entry(topic).or_default() += 1,
            Verdict::Skipped => report.skipped += 1,
        }
        if let Some(progress) = &options.progress {
            progress(&report);
        }
        next.insert(message.partition(), message.offset() + 1);
    }
    if !options.dry_run && !next.is_empty() {
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in &next {
            tpl.add_partition_offset(
                &options.dead_letter_topic,
                *partition,
                Offset::Offset(*offset),
            )
            .map_err(Error::kafka("building the replay commit"))?;
        }
        // On a thread of its own, with a deadline: a coordinator that went away must not hold
        // the job (the messages then come again on the next run, at-least-once).
        let consumer = Arc::new(consumer);
        let (tx, rx) = std::sync::mpsc::channel();
        let committer = Arc::clone(&consumer);
        let done = crate::consumer::on_thread(move || {
            let _ = tx.send(committer.commit(&tpl, CommitMode::Sync));
        });
        let answered = tokio::time::timeout(COMMIT_TIMEOUT, done).await.is_ok();
        match rx.try_recv() {
            Ok(result) if answered => result.map_err(Error::kafka(format!(
                "committing the replay of {}",
                options.dead_letter_topic
            )))?,
            _ => {
                return Err(Error::Config {
                    source_name: "replay".to_owned(),
                    message: format!(
                        "the broker did not confirm the commit of {} within {} s: the {} \
                         message(s) read may be replayed again by the next run",
                        options.dead_letter_topic,
                        COMMIT_TIMEOUT.as_secs(),
                        report.read
                    ),
                });
            }
        }
        // Leave the group now, so the next run of the job is assigned at once instead of
        // waiting for this member's session to time out.
        consumer.unsubscribe();
        return Ok(report);
    }
    // Leave the group now, so the next run of the job is assigned at once instead of waiting
    // for this member's session to time out.
    consumer.unsubscribe();
    drop(consumer);
    Ok(report)
}

/// Fails at once, with what to do, when no broker answers or the topic does not exist.
async fn check_topic(config: &Config, topic: &str) -> Result<(), Error> {
    let client = config.consumer_client_config()?;
    let topic = topic.to_owned();
    let bootstrap = config.bootstrap_servers.clone();
    tokio::task::spawn_blocking(move || {
        let probe: BaseConsumer = client
            .create()
            .map_err(Error::kafka("creating the replay probe"))?;
        let metadata = probe
            .fetch_metadata(Some(&topic), METADATA_TIMEOUT)
            .map_err(Error::kafka(format!(
                "no broker at {bootstrap} described {topic} within {} s",
                METADATA_TIMEOUT.as_secs()
            )))?;
        let exists = metadata
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
        if exists {
            Ok(())
        } else {
            Err(Error::Config {
                source_name: "replay".to_owned(),
                message: format!("the dead-letter topic {topic} does not exist on {bootstrap}"),
            })
        }
    })
    .await
    .map_err(|e| Error::Config {
        source_name: "replay".to_owned(),
        message: format!("the topic check did not finish: {e}"),
    })?
}

async fn replay_one(
    config: &Config,
    producer: &Producer,
    envelope: &Envelope,
    options: &ReplayOptions,
) -> Result<Verdict, Error> {
    let header = |name: &str| {
        envelope
            .header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    };
    let Some(original) = header(dead_letter::ORIGINAL_TOPIC) else {
        tracing::warn!(
            topic = %envelope.topic, partition = envelope.partition, offset = envelope.offset,
            "replay: no {} header; skipped", dead_letter::ORIGINAL_TOPIC
        );
        return Ok(Verdict::Skipped);
    };
    let reason = header(dead_letter::REASON).unwrap_or_default();
    if !options.reasons.is_empty() && !options.reasons.iter().any(|r| r == reason) {
        return Ok(Verdict::Skipped);
    }
    let topic = config.catalog_topic(original).to_owned();
    if producer.catalog().get(&topic).is_none() && !options.allow_foreign {
        tracing::warn!(
            topic = %envelope.topic, partition = envelope.partition, offset = envelope.offset,
            original = %topic, "replay: the original topic is not in the catalog; left"
        );
        return Ok(Verdict::Foreign(topic));
    }
    let headers: Vec<(&str, &[u8])> = envelope
        .headers
        .iter()
        .filter(|(name, _)| !name.starts_with("evkit-dlq-"))
        .filter_map(|(name, value)| value.as_deref().map(|v| (name.as_str(), v)))
        .collect();
    let payload = envelope.payload.as_deref().unwrap_or_default();
    if options.dry_run {
        // Judge it as `produce_raw` would send it: with a request id when it has none.
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut message = evkit_schema::Message {
            key: envelope.key.as_deref(),
            headers: headers.iter().map(|(n, v)| (*n, Some(*v))).collect(),
            payload: Some(payload),
        };
        if header(evkit_schema::REQUEST_ID_HEADER).is_none() {
            message
                .headers
                .push((evkit_schema::REQUEST_ID_HEADER, Some(request_id.as_bytes())));
        }
        let valid = producer
            .catalog()
            .get(&topic)
            .is_none_or(|t| t.contract().is_valid(&message));
        return Ok(if valid {
            Verdict::Replayed(topic)
        } else {
            Verdict::StillInvalid(topic)
        });
    }
    match producer
        .produce_raw(
            &topic,
            envelope.key.as_deref(),
            &headers,
            payload,
            &Context::new(),
        )
        .await
    {
        Ok(_) => Ok(Verdict::Replayed(topic)),
        Err(Error::Schema(evkit_schema::Error::Invalid { violations, .. })) => {
            tracing::info!(
                topic = %envelope.topic, partition = envelope.partition, offset = envelope.offset,
                original = %topic, violations = violations.len(),
                "replay: still invalid; left on the dead-letter topic"
            );
            Ok(Verdict::StillInvalid(topic))
        }
        Err(e) => Err(e),
    }
}
