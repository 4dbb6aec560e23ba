//! Partition throughput: how fast evkit's consumer (validation, routing, the handler, commits)
//! works through one topic's messages as the partition count grows, on a real broker. A team
//! asks it "how many partitions for N messages a second, when my handler takes T?".
//!
//! For each partition count, valid messages generated from the topic's contract (seeded) are
//! published to a fresh topic with that many partitions; then an evkit consumer reads them all
//! with a handler that waits the given time per message (work that does not use the CPU, like a
//! database call). The rate is messages per second from the first handled message to the last.
//!
//! Beside each evkit run, two baselines read the same topic in a fresh group of their own
//! ([`Options::baselines`]): a bare rdkafka consumer that does nothing with what it reads (the
//! ceiling of the broker and client on this machine), and a hand-written one, what a team writes
//! without evkit: one loop that awaits `recv`, parses each payload with `serde_json`, validates
//! it with the payload schema compiled once by `jsonschema`, and stores the offset for
//! auto-commit (no timer per record: a watchdog beside the loop ends a stalled read). A third,
//! the whole-contract consumer, is the same loop doing the checks evkit does: key, headers,
//! identity and payload, each the plain way with `serde_json`, `base64` and `jsonschema`
//! ([`HandContract`]). Each run also reports the CPU time of the whole process per message in
//! the steady state, from the tenth of the messages to the last (client threads and, for the
//! embedded broker, the broker itself included; the group join and the shutdown left out).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
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
    /// Also run the bare and hand-written baseline consumers on each topic.
    pub baselines: bool,
    /// Passes over each topic (each consumer in a fresh group, the three consumers taking
    /// turns); each consumer's row is its pass with the median rate. Runs of a few thousand
    /// messages last milliseconds, so one pass moves with the machine's load.
    pub rounds: usize,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("messages", &self.messages)
            .field("partitions", &self.partitions)
            .field("handler_time", &self.handler_time)
            .field("seed", &self.seed)
            .field("timeout", &self.timeout)
            .field("baselines", &self.baselines)
            .field("rounds", &self.rounds)
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
            baselines: true,
            rounds: 1,
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
    /// CPU time of this process per message in the steady state (from the tenth of the
    /// messages to the last), in microseconds.
    pub cpu_per_message_us: Option<f64>,
    /// A bare rdkafka consumer on the same topic (see the module docs).
    pub bare: Option<Baseline>,
    /// A hand-written rdkafka consumer that parses and validates (see the module docs).
    pub hand_written: Option<Baseline>,
    /// evkit against the hand-written consumer, round by round (see [`Paired`]).
    pub against_hand_written: Option<Paired>,
    /// A hand-written rdkafka consumer that checks the whole contract, as evkit does: key,
    /// headers, identity and payload ([`HandContract`]).
    pub whole_contract: Option<Baseline>,
    /// evkit against the whole-contract consumer, round by round.
    pub against_whole_contract: Option<Paired>,
}

/// evkit against a baseline, compared within each round (the two passes run one after the
/// other, so a change in the machine's load between rounds moves both) and summarised by the
/// median over the rounds. Steadier than comparing the two consumers' median passes, which may
/// come from different rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// Rounds compared.
    pub rounds: usize,
    /// The median of evkit's rate over the baseline's.
    pub rate_ratio: f64,
    /// The median of evkit's CPU per message minus the baseline's, in microseconds (`None`
    /// without CPU readings).
    pub cpu_above_us: Option<f64>,
}

impl Paired {
    /// Compares evkit's passes with a baseline's, round by round (`evkit[i]` with `base[i]`);
    /// `None` when no round has both.
    pub fn of(evkit: &[Run], base: &[Baseline]) -> Option<Paired> {
        let pairs = evkit.iter().zip(base);
        let ratios: Vec<f64> = pairs
            .clone()
            .filter(|(_, b)| b.rate > 0.0)
            .map(|(e, b)| e.rate / b.rate)
            .collect();
        let above: Vec<f64> = pairs
            .filter_map(|(e, b)| Some(e.cpu_per_message_us? - b.cpu_per_message_us?))
            .collect();
        Some(Paired {
            rounds: ratios.len(),
            rate_ratio: median_by(ratios, |r| *r)?,
            cpu_above_us: median_by(above, |a| *a),
        })
    }
}

impl Run {
    /// How many cores the process kept busy: the rate times the CPU per message. Near the
    /// machine's core count, the run was limited by the machine (on the embedded broker the
    /// broker and librdkafka's threads share those cores), not by partitions.
    pub fn cores_busy(&self) -> Option<f64> {
        Some(self.rate * self.cpu_per_message_us? * 1e-6)
    }

    /// The most messages a second `cores` cores could handle at this run's CPU per message:
    /// no partition count can beat it on this machine.
    pub fn ceiling_rate(&self, cores: usize) -> Option<f64> {
        let cpu = self.cpu_per_message_us.filter(|c| *c > 0.0)?;
        #[allow(clippy::cast_precision_loss)]
        Some(cores as f64 * 1e6 / cpu)
    }
}

/// The best `most` could do against `one` on `cores` cores, at `most`'s CPU per message: the
/// ceiling of the scaling ratio on this machine (compare the measured `most.rate / one.rate`).
pub fn scaling_ceiling(one: &Run, most: &Run, cores: usize) -> Option<f64> {
    Some(most.ceiling_rate(cores)? / one.rate)
}

/// A baseline consumer's pass over the same topic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// Messages per second, first to last.
    pub rate: f64,
    /// CPU time of this process per message in the steady state (from the tenth of the messages
    /// to the last), in microseconds.
    pub cpu_per_message_us: Option<f64>,
    /// Messages a checking baseline found invalid (counted, not refused).
    pub invalid: u64,
}

/// The CPU time this process has used so far (user and system, every thread), in seconds, from
/// the process CPU clock (nanoseconds, unlike the 10 ms ticks of `/proc/self/stat`).
pub fn process_cpu_seconds() -> Option<f64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    #[allow(clippy::cast_precision_loss)]
    Some(t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9)
}

/// The message (counted from 0) at which the steady state starts: the group join, the first
/// fetches and the shutdown stay out of the CPU per message.
pub fn steady_start(messages: u64) -> u64 {
    messages / 10
}

/// CPU microseconds per message between two [`process_cpu_seconds`] readings.
#[allow(clippy::cast_precision_loss)]
fn cpu_between(start: Option<f64>, end: Option<f64>, messages: u64) -> Option<f64> {
    Some((end? - start?) * 1e6 / messages.max(1) as f64)
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
    // The checking baselines' validators, compiled once for the whole bench.
    let checkers = opts
        .baselines
        .then(|| {
            let payload =
                jsonschema::validator_for(&topic.schema).map_err(|e| Error::Generator {
                    at: topic.name().to_owned(),
                    reason: format!("the payload schema does not compile: {e}"),
                })?;
            Ok::<_, Error>((payload, HandContract::new(topic)?))
        })
        .transpose()?;
    let mut runs = Vec::new();
    for &partitions in &opts.partitions {
        let actual = broker.unique_topic("bench");
        broker
            .create_topic(&actual, i32::try_from(partitions).unwrap_or(i32::MAX))
            .await?;
        broker
            .create_topic(&dead_letter_topic_of(&actual), 1)
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
        let (mut evkit, mut bare, mut hand, mut whole) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let rounds = opts.rounds.max(1);
        for round in 1..=rounds {
            tell(format!(
                "{partitions} partition(s): consuming (round {round} of {rounds})"
            ));
            evkit.push(consume(broker, catalog, topic, &actual, partitions, opts).await?);
            if let Some((payload, contract)) = &checkers {
                tell(format!(
                    "{partitions} partition(s): bare, hand-written and whole-contract consumers (round {round} of {rounds})"
                ));
                let read = |check| baseline(broker, &actual, check, opts.messages);
                bare.push(read(Check::Nothing).await?);
                hand.push(read(Check::Payload(payload)).await?);
                whole.push(read(Check::Whole(contract)).await?);
            }
        }
        let against_hand_written = Paired::of(&evkit, &hand);
        let against_whole_contract = Paired::of(&evkit, &whole);
        let mut run = median_by(evkit, |r| r.rate).ok_or_else(|| Error::Limit {
            what: "a bench needs at least one round".to_owned(),
        })?;
        run.against_hand_written = against_hand_written;
        run.against_whole_contract = against_whole_contract;
        run.bare = median_by(bare, |b| b.rate);
        run.hand_written = median_by(hand, |b| b.rate);
        run.whole_contract = median_by(whole, |b| b.rate);
        runs.push(run);
    }
    Ok(runs)
}

/// The dead-letter topic of a bench topic.
fn dead_letter_topic_of(actual: &str) -> String {
    format!("{actual}.dlq")
}

/// The element with the median `key` (the upper one of an even count), `None` when empty.
fn median_by<T>(mut items: Vec<T>, key: impl Fn(&T) -> f64) -> Option<T> {
    items.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let mid = items.len() / 2;
    items.into_iter().nth(mid)
}

/// A baseline consumer reads `messages` records of `actual` in a fresh group, from the start
/// (see the module docs), doing `check` with each record. Timed from the first record to the
/// last.
pub async fn baseline(
    broker: &Broker,
    actual: &str,
    check: Check<'_>,
    messages: usize,
) -> Result<Baseline, Error> {
    baseline_within(broker, actual, check, messages, IDLE_LIMIT).await
}

/// What a baseline consumer does with each record it reads.
#[derive(Clone, Copy)]
pub enum Check<'a> {
    /// Nothing (the bare consumer; auto-commit stores every offset).
    Nothing,
    /// Parses the payload and validates it with its schema, then stores the offset (the
    /// hand-written consumer).
    Payload(&'a jsonschema::Validator),
    /// Checks the whole contract the plain way ([`HandContract`]), then stores the offset.
    Whole(&'a HandContract),
}

impl Check<'_> {
    fn name(self) -> &'static str {
        match self {
            Check::Nothing => "bare",
            Check::Payload(_) => "hand-written",
            Check::Whole(_) => "whole-contract",
        }
    }

    /// Whether `m` passes (always, for [`Check::Nothing`]).
    fn passes(self, m: &impl rdkafka::Message) -> bool {
        match self {
            Check::Nothing => true,
            Check::Payload(schema) => {
                serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or_default())
                    .is_ok_and(|event| schema.is_valid(&event))
            }
            Check::Whole(contract) => contract.is_valid(m),
        }
    }
}

/// [`baseline`], giving up with [`Error::Stalled`] after `idle` without a new record.
async fn baseline_within(
    broker: &Broker,
    actual: &str,
    check: Check<'_>,
    messages: usize,
    idle: Duration,
) -> Result<Baseline, Error> {
    use rdkafka::consumer::Consumer as _;

    let what = check.name();
    let checks = !matches!(check, Check::Nothing);
    let mut cpu = None;
    let c: rdkafka::consumer::StreamConsumer = broker
        .client_config()
        .set("group.id", broker.unique_group())
        .set("auto.offset.reset", "earliest")
        .set(
            "enable.auto.offset.store",
            if checks { "false" } else { "true" },
        )
        .create()
        .map_err(crate::kafka("creating a baseline consumer"))?;
    c.subscribe(&[actual])
        .map_err(crate::kafka("subscribing a baseline consumer"))?;
    let want = u64::try_from(messages).unwrap_or(u64::MAX);
    let (mut got, mut first, mut invalid) = (0u64, None, 0u64);
    // A plain `recv` per record, as a team writes it: the stall check is a watchdog beside the
    // loop, not a timer per record (that would cost the baseline a clock read and a timer each).
    let progress = AtomicU64::new(0);
    let read = async {
        while got < want {
            let Ok(m) = c.recv().await else { continue };
            first.get_or_insert_with(Instant::now);
            if got == steady_start(want) {
                cpu = process_cpu_seconds();
            }
            if checks {
                // Generated valid messages: a message that fails here is counted (the point is
                // the cost of looking), and its offset is stored all the same.
                invalid += u64::from(!check.passes(&m));
                c.store_offset_from_message(&m)
                    .map_err(crate::kafka("storing an offset"))?;
            }
            got += 1;
            progress.store(got, Ordering::Relaxed);
        }
        Ok::<(), Error>(())
    };
    let watchdog = async {
        let mut seen = 0;
        loop {
            tokio::time::sleep(idle).await;
            let now = progress.load(Ordering::Relaxed);
            if now == seen {
                return now;
            }
            seen = now;
        }
    };
    tokio::select! {
        read = read => read?,
        stuck = watchdog => {
            return Err(Error::Stalled {
                what: format!("{what} baseline consumer: {stuck} of {want} messages read"),
            });
        }
    }
    let took = first.map_or(Duration::ZERO, |t| t.elapsed());
    #[allow(clippy::cast_precision_loss)]
    let rate = got.saturating_sub(1) as f64 / took.as_secs_f64().max(1e-9);
    Ok(Baseline {
        rate,
        cpu_per_message_us: cpu_between(
            cpu,
            process_cpu_seconds(),
            got.saturating_sub(steady_start(want)),
        ),
        invalid,
    })
}

/// What a team writes by hand to check a topic's whole contract, not only its payload: the
/// payload parsed with `serde_json` and validated by its schema, the key compared with the
/// payload value the topic keys by, the headers gathered into a JSON object (names in lower
/// case, each once) and validated by the catalog's header schema, and the identity header
/// decoded (base64, then JSON) and validated by the identity document's schema. Every schema
/// is compiled once by `jsonschema`, with `format` asserted; no cache, no error report: a
/// `bool` per message. The bench's third baseline ([`Run::whole_contract`]): the work evkit's
/// contract check does, written the plain way.
pub struct HandContract {
    payload: jsonschema::Validator,
    headers: jsonschema::Validator,
    identity: Option<jsonschema::Validator>,
    key_pointer: Option<String>,
    key_required: bool,
}

impl HandContract {
    /// Compiles `topic`'s payload schema, its header schema (with the topic's
    /// `required_headers`) and the header schema's `$defs/identity` (when it has one), the
    /// latter as a `$ref` into the header document, so references inside it resolve.
    pub fn new(topic: &Topic) -> Result<HandContract, Error> {
        // Formats asserted, as the contract asserts them: for a 2020-12 schema jsonschema's
        // defaults treat `format` as an annotation, and `date-time` would go unchecked.
        let compile = |what: &str, schema: &serde_json::Value| {
            jsonschema::options()
                .should_validate_formats(true)
                .build(schema)
                .map_err(|e| Error::Generator {
                    at: topic.name().to_owned(),
                    reason: format!("the {what} schema does not compile: {e}"),
                })
        };
        let headers = topic.headers_schema();
        let mut narrowed = headers.clone();
        if let (Some(required), Some(schema)) =
            (&topic.spec.required_headers, narrowed.as_object_mut())
        {
            schema.insert("required".to_owned(), serde_json::json!(required));
        }
        Ok(HandContract {
            payload: compile("payload", &topic.schema)?,
            headers: compile("header", &narrowed)?,
            identity: headers
                .pointer("/$defs/identity")
                .is_some()
                .then(|| {
                    let mut doc: serde_json::Map<String, serde_json::Value> =
                        ["$schema", "$id", "$defs"]
                            .into_iter()
                            .filter_map(|k| Some((k.to_owned(), headers.get(k)?.clone())))
                            .collect();
                    doc.insert("$ref".to_owned(), "#/$defs/identity".into());
                    compile("identity", &serde_json::Value::Object(doc))
                })
                .transpose()?,
            key_pointer: topic.spec.key.pointer.clone(),
            key_required: topic.spec.key.required,
        })
    }

    /// `true` when `m` keeps the whole contract.
    pub fn is_valid(&self, m: &impl rdkafka::Message) -> bool {
        use base64::Engine as _;
        use rdkafka::message::Headers as _;
        use serde_json::Value;

        let Ok(event) = serde_json::from_slice::<Value>(m.payload().unwrap_or_default()) else {
            return false;
        };
        if !self.payload.is_valid(&event) {
            return false;
        }
        let key = m.key().filter(|k| !k.is_empty());
        if let Some(pointer) = &self.key_pointer {
            let want = event.pointer(pointer).and_then(Value::as_str);
            if want.is_none_or(|w| key != Some(w.as_bytes())) {
                return false;
            }
        } else if self.key_required && key.is_none() {
            return false;
        }
        let mut headers = serde_json::Map::new();
        for h in m.headers().into_iter().flat_map(|hs| hs.iter()) {
            let Some(value) = h.value.and_then(|v| std::str::from_utf8(v).ok()) else {
                return false;
            };
            let name = h.key.to_ascii_lowercase();
            if headers
                .insert(name, Value::String(value.to_owned()))
                .is_some()
            {
                return false;
            }
        }
        let headers = Value::Object(headers);
        if !self.headers.is_valid(&headers) {
            return false;
        }
        let Some(identity) = &self.identity else {
            return true;
        };
        // Absent only where the topic does not require it (the header schema said so).
        let Some(raw) = headers.get(evkit_schema::IDENTITY_HEADER) else {
            return true;
        };
        raw.as_str()
            .and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
            .and_then(|doc| serde_json::from_slice::<Value>(&doc).ok())
            .is_some_and(|doc| identity.is_valid(&doc))
    }
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

/// What the handler records: how many, where, when the first and the last came. One counter
/// per partition, so the bench's own bookkeeping does not serialise the partitions it measures.
struct Tally {
    count: AtomicU64,
    per_partition: Vec<AtomicU64>,
    first: OnceLock<Instant>,
    last: OnceLock<Instant>,
    /// The process CPU clock when the steady state began and when the last message was handled
    /// (as the baselines read theirs).
    cpu_at_steady: OnceLock<Option<f64>>,
    cpu_at_last: OnceLock<Option<f64>>,
}

/// The bench's handler: waits `pause`, then counts the message in `tally` (the time and the
/// CPU clock of the first and the `want`th).
fn counting(tally: Arc<Tally>, pause: Duration, want: u64) -> impl evkit::Handler {
    handler_fn(move |msg: Incoming| {
        let tally = Arc::clone(&tally);
        let partition = msg.envelope().partition;
        async move {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            if let Some(c) = usize::try_from(partition)
                .ok()
                .and_then(|p| tally.per_partition.get(p))
            {
                c.fetch_add(1, Ordering::Relaxed);
            }
            let seen = tally.count.fetch_add(1, Ordering::Relaxed) + 1;
            if seen == 1 {
                let _ = tally.first.set(Instant::now());
            }
            if seen == steady_start(want) + 1 {
                let _ = tally.cpu_at_steady.set(process_cpu_seconds());
            }
            if seen == want {
                let _ = tally.last.set(Instant::now());
                let _ = tally.cpu_at_last.set(process_cpu_seconds());
            }
            Outcome::Ack
        }
    })
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
    // Created with the topic (`dead_letter_topic_of`): every round's consumer shares it.
    let dlq = dead_letter_topic_of(actual);
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
    let tally = Arc::new(Tally {
        count: AtomicU64::new(0),
        per_partition: (0..partitions).map(|_| AtomicU64::new(0)).collect(),
        first: OnceLock::new(),
        last: OnceLock::new(),
        cpu_at_steady: OnceLock::new(),
        cpu_at_last: OnceLock::new(),
    });
    let on_message = counting(Arc::clone(&tally), opts.handler_time, want);
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
    let per_partition = tally
        .per_partition
        .iter()
        .zip(0..)
        .map(|(c, p)| (p, c.load(Ordering::Relaxed)))
        .collect();
    Ok(Run {
        partitions,
        handled,
        per_partition,
        rate,
        committed: summary.committed.values().sum(),
        cpu_per_message_us: cpu_between(
            tally.cpu_at_steady.get().copied().flatten(),
            tally.cpu_at_last.get().copied().flatten(),
            handled.saturating_sub(steady_start(want)),
        ),
        bare: None,
        hand_written: None,
        against_hand_written: None,
        whole_contract: None,
        against_whole_contract: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn run(partitions: u32, rate: f64, cpu: Option<f64>) -> Run {
        Run {
            partitions,
            handled: 1,
            per_partition: BTreeMap::new(),
            rate,
            committed: 1,
            cpu_per_message_us: cpu,
            bare: None,
            hand_written: None,
            against_hand_written: None,
            whole_contract: None,
            against_whole_contract: None,
        }
    }

    fn base(rate: f64, cpu: Option<f64>) -> Baseline {
        Baseline {
            rate,
            cpu_per_message_us: cpu,
            invalid: 0,
        }
    }

    /// The whole-contract baseline is judged by evkit's contract check (an independent
    /// implementation of the same rules): on generated valid messages and on messages that
    /// break each rule of the contract once, its verdict must be the contract's. It must also
    /// fail: a key, a header, the identity document and the payload, each broken, are refused.
    #[test]
    fn the_whole_contract_baseline_agrees_with_evkit_on_every_rule() {
        use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};
        let record = |g: &Generated| {
            let headers = g.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
                h.insert(Header {
                    key: k.as_str(),
                    value: Some(v),
                })
            });
            OwnedMessage::new(
                Some(g.payload.clone()),
                g.key.clone(),
                "t".to_owned(),
                Timestamp::NotAvailable,
                0,
                0,
                Some(headers),
            )
        };
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas");
        let catalog = Catalog::load(dir).unwrap();
        for name in ["platform.evkit.todo-created", "platform.evkit.todo-indexed"] {
            let topic = catalog.topic(name).unwrap();
            let hand = HandContract::new(topic).unwrap();
            let mut runner = seeded_runner(7);
            let valid = valid_message(topic).unwrap();
            let invalid = crate::messages::invalid_message(topic).unwrap();
            let (mut refused, mut disagreed) = (0, Vec::new());
            for i in 0..600 {
                let g = draw(if i < 200 { &valid } else { &invalid }, &mut runner).unwrap();
                let evkit = topic.contract().is_valid(&g.message());
                let plain = hand.is_valid(&record(&g));
                assert_eq!(evkit, g.broken.is_none(), "{name}: evkit on {g:?}");
                refused += usize::from(!plain);
                if plain != evkit {
                    disagreed.push(g.broken.map(|r| r.to_string()));
                }
            }
            assert!(disagreed.is_empty(), "{name}: {disagreed:?}");
            assert_eq!(refused, 400, "{name}");
            // Each part, broken by hand.
            let good = draw(&valid, &mut runner).unwrap();
            assert!(hand.is_valid(&record(&good)));
            let mut bad = good.clone();
            bad.key = Some(b"someone-else".to_vec());
            assert!(!hand.is_valid(&record(&bad)), "{name}: a foreign key");
            let mut bad = good.clone();
            bad.headers
                .retain(|(n, _)| n != evkit_schema::REQUEST_ID_HEADER);
            assert!(!hand.is_valid(&record(&bad)), "{name}: no request id");
            let mut bad = good.clone();
            for (n, v) in &mut bad.headers {
                if n == evkit_schema::IDENTITY_HEADER {
                    *v = evkit_schema::encode_identity("", "User").into_bytes();
                }
            }
            assert!(!hand.is_valid(&record(&bad)), "{name}: an empty org_id");
            let mut bad = good;
            bad.payload = b"{}".to_vec();
            assert!(!hand.is_valid(&record(&bad)), "{name}: an empty payload");
        }
    }

    /// The baselines read with a plain `recv`; their watchdog still ends a read that stops
    /// making progress, saying how far it got.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_baseline_that_runs_out_of_records_stalls_with_its_count() {
        let broker = Broker::embedded().unwrap();
        broker.create_topic("bench-stall", 1).await.unwrap();
        let producer = crate::clients::producer(&broker).unwrap();
        for i in 0..3u8 {
            crate::clients::send(&producer, "bench-stall", None, &[], &[b'{', b'}', i])
                .await
                .unwrap();
        }
        let idle = Duration::from_millis(1500);
        let read = baseline_within(&broker, "bench-stall", Check::Nothing, 3, idle)
            .await
            .unwrap();
        assert!(read.rate > 0.0, "{read:?}");
        // Bounded here, so a watchdog that never fires fails the test instead of hanging it.
        let err = tokio::time::timeout(
            Duration::from_secs(15),
            baseline_within(&broker, "bench-stall", Check::Nothing, 5, idle),
        )
        .await
        .expect("the watchdog never fired")
        .unwrap_err();
        assert!(
            matches!(&err, Error::Stalled { what } if what.contains("bare baseline consumer: 3 of 5")),
            "{err}"
        );
    }

    #[test]
    fn evkit_is_compared_with_a_baseline_round_by_round() {
        // Round 2 was disturbed for evkit alone (half the baseline's rate, 4 µs more CPU).
        // Round by round, evkit reaches 1.0, 0.5 and 0.97 of the baseline with 0.5, 4.0 and
        // 0.5 µs more CPU: medians 0.97 and 0.5 µs.
        let evkit = [
            run(1, 100.0, Some(3.0)),
            run(1, 200.0, Some(6.0)),
            run(1, 300.0, Some(4.0)),
        ];
        let hand = [
            base(100.0, Some(2.5)),
            base(400.0, Some(2.0)),
            base(310.0, Some(3.5)),
        ];
        let p = Paired::of(&evkit, &hand).unwrap();
        assert_eq!(p.rounds, 3);
        assert!((p.rate_ratio - 300.0 / 310.0).abs() < 1e-9, "{p:?}");
        assert!((p.cpu_above_us.unwrap() - 0.5).abs() < 1e-9, "{p:?}");
        // The two median passes come from different rounds (evkit's from round 2, the
        // baseline's from round 3): 0.65 and 2.5 µs, the disturbed round's numbers.
        let e = median_by(evkit.to_vec(), |r| r.rate).unwrap();
        let h = median_by(hand.to_vec(), |b| b.rate).unwrap();
        assert!((e.rate / h.rate - 200.0 / 310.0).abs() < 1e-9);
        assert!((e.cpu_per_message_us.unwrap() - h.cpu_per_message_us.unwrap() - 2.5).abs() < 1e-9);
        // Without CPU readings there is a ratio but no CPU difference; without a baseline,
        // nothing.
        let p = Paired::of(&evkit, &[base(300.0, None)]).unwrap();
        assert_eq!((p.rounds, p.cpu_above_us), (1, None));
        assert!(Paired::of(&evkit, &[]).is_none());
    }

    #[test]
    fn each_consumer_keeps_its_median_pass() {
        let runs: Vec<Run> = [300.0, 100.0, 500.0, 200.0, 400.0]
            .into_iter()
            .map(|rate| run(1, rate, Some(rate / 100.0)))
            .collect();
        let median = median_by(runs, |r| r.rate).unwrap();
        // The pass itself, with its own CPU reading, not a mix of passes.
        assert!((median.rate - 300.0).abs() < 1e-9);
        assert!((median.cpu_per_message_us.unwrap() - 3.0).abs() < 1e-9);
        let even = median_by(vec![2.0, 1.0], |x| *x).unwrap();
        assert!((even - 2.0).abs() < 1e-9);
        assert!(median_by(Vec::<f64>::new(), |x| *x).is_none());
    }

    #[test]
    fn the_ceiling_is_the_cores_over_the_cpu_per_message() {
        // One partition: 250,000/s at 4 µs a message keeps one core busy.
        let one = run(1, 250_000.0, Some(4.0));
        assert!((one.cores_busy().unwrap() - 1.0).abs() < 1e-9);
        // Two partitions at 5 µs a message: two cores allow 400,000/s, 1.6x one partition,
        // whatever the partitions could do on more cores.
        let two = run(2, 380_000.0, Some(5.0));
        assert!((two.ceiling_rate(2).unwrap() - 400_000.0).abs() < 1e-6);
        assert!((scaling_ceiling(&one, &two, 2).unwrap() - 1.6).abs() < 1e-9);
        assert!((two.cores_busy().unwrap() - 1.9).abs() < 1e-9);
        // On 16 cores the same CPU per message leaves room for 12.8x.
        assert!((scaling_ceiling(&one, &two, 16).unwrap() - 12.8).abs() < 1e-9);
        // Without a CPU reading there is no ceiling.
        assert!(scaling_ceiling(&one, &run(2, 1.0, None), 2).is_none());
        assert!(run(2, 1.0, Some(0.0)).ceiling_rate(2).is_none());
    }
}
