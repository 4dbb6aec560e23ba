//! The consumer loop: validate, dispatch per partition, commit at least once, drain on shutdown.
//!
//! Each assigned partition has a worker task that reads the partition's own librdkafka queue,
//! split from the consumer's when the partition is assigned (in the rebalance callback, before
//! librdkafka starts fetching it, so none of its records reach the shared queue). A worker
//! takes what is waiting, up to a batch, begins the offsets under one lock, and runs each message
//! in order through the topic's chain ([`crate::middleware`]): order holds within a partition,
//! partitions run (and are read) in parallel, and no record crosses threads. A handler that is
//! stuck stops its worker reading; librdkafka stops fetching that partition when its queue is
//! full, and the others keep flowing.
//!
//! The reading loop polls the shared queue: it serves rebalances, errors and statistics, and the
//! records of any partition whose queue was not split (`partition_queues: false`, or a split
//! that failed). Those it hands to the partition's worker through a bounded queue
//! (`max_in_flight_per_partition`). A full queue is backpressure: the loop waits for room
//! (committing meanwhile), and if none comes within 100 ms it pauses that partition alone, holds
//! the record until the worker's queue is half empty, and resumes fetching the partition then;
//! the other partitions keep flowing. (Waiting without a limit would stall every partition
//! behind one stuck handler; pausing at once would refetch a partition for every short wait.)
//!
//! Offsets are committed only up to the last contiguous finished message of each partition
//! ([`OffsetTracker`]; workers report how far they got once per batch, and at least every
//! millisecond): on a timer, when partitions are revoked, and once more at shutdown.
//! At most one timer commit is in flight (a synchronous commit on a blocking thread): librdkafka
//! retries a commit that met a broken connection, and two commits in flight could then land out
//! of order, leaving an older position as the group's last word.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures::{FutureExt as _, StreamExt as _};
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::config::ConsumerConfig;
use crate::metrics::{Metrics, TopicMetrics};
use crate::middleware::dead_letter::{DeadLetter, Target};
use crate::middleware::measure::Measure;
use crate::middleware::panic::CatchPanic;
use crate::middleware::retry::Retry;
use crate::middleware::timeout::Timeout;
use crate::middleware::validate::Validate;
use crate::producer::producer_config;
use crate::router::Routes;
use crate::{Config, Envelope, Error, Handler, Incoming, OffsetTracker, Outcome, Position};

type Key = (String, i32);

struct Worker {
    tx: Option<mpsc::Sender<Envelope>>,
    epoch: u64,
    revoked: Revoked,
    task: Option<JoinHandle<()>>,
}

/// Tells a partition's worker it was revoked: a flag it reads per message (a
/// `CancellationToken` read takes its lock), and a token it can wait on.
#[derive(Clone, Default)]
struct Revoked {
    flag: Arc<AtomicBool>,
    token: CancellationToken,
}

impl Revoked {
    fn revoke(&self) {
        self.flag.store(true, Ordering::Release);
        self.token.cancel();
    }

    fn is_revoked(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

#[derive(Default)]
struct State {
    tracker: OffsetTracker,
    /// Topic → partition → worker; keyed by topic first so the per-message lookup borrows the
    /// topic name.
    workers: HashMap<String, HashMap<i32, Worker>>,
    next_epoch: u64,
    committed: BTreeMap<Key, i64>,
}

impl State {
    fn worker(&self, topic: &str, partition: i32) -> Option<&Worker> {
        self.workers.get(topic)?.get(&partition)
    }

    fn worker_mut(&mut self, (topic, partition): &Key) -> Option<&mut Worker> {
        self.workers.get_mut(topic.as_str())?.get_mut(partition)
    }

    fn remove_worker(&mut self, (topic, partition): &Key) -> Option<Worker> {
        self.workers.get_mut(topic.as_str())?.remove(partition)
    }

    fn all_workers(&mut self) -> impl Iterator<Item = &mut Worker> {
        self.workers.values_mut().flat_map(HashMap::values_mut)
    }
}

struct Shared {
    state: Mutex<State>,
    metrics: Metrics,
    /// Cluster topic name → catalog topic name.
    catalog_names: HashMap<String, String>,
    revoke_wait: Duration,
    /// A timer commit is in flight.
    committing: AtomicBool,
    /// Counts revocations, so the reading loop sees one that ran while it was taking a batch.
    rebalances: AtomicU64,
    /// Cluster topic → the route's chain.
    chains: HashMap<String, Route>,
    /// The capacity of a worker's queue (`max_in_flight_per_partition`); a worker reading its
    /// partition's own queue takes at most this many records (and at most [`BATCH`]) at once.
    capacity: usize,
    /// The consumer itself, for splitting the queues of assigned partitions (weak: it owns us);
    /// unset when `partition_queues` is off.
    kafka: OnceLock<Weak<StreamConsumer<Ctx>>>,
    /// Records the workers read from their partitions' own queues.
    consumed: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The worker of `key` (if it is still `epoch`'s) handled every message up to `offset`.
    fn finish_through(&self, key: &Key, offset: i64, epoch: u64) {
        let mut st = self.lock();
        if st.worker(&key.0, key.1).is_some_and(|w| w.epoch == epoch) {
            st.tracker.finish_through(&key.0, key.1, offset);
        }
    }

    /// Partitions are being taken away: let their current message finish (briefly), then
    /// commit how far each got, and forget them.
    fn revoke(&self, consumer: &BaseConsumer<Ctx>, tpl: &TopicPartitionList) {
        self.rebalances.fetch_add(1, Ordering::AcqRel);
        let keys: Vec<Key> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        {
            let mut st = self.lock();
            for k in &keys {
                if let Some(w) = st.worker_mut(k) {
                    w.revoked.revoke();
                    w.tx = None;
                }
            }
        }
        let can_block = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if can_block {
            let deadline = Instant::now() + self.revoke_wait;
            tokio::task::block_in_place(|| {
                while Instant::now() < deadline {
                    let busy = {
                        let st = self.lock();
                        keys.iter().any(|k| {
                            st.worker(&k.0, k.1)
                                .and_then(|w| w.task.as_ref())
                                .is_some_and(|t| !t.is_finished())
                        })
                    };
                    if !busy {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
        let mut positions = Vec::new();
        {
            let mut st = self.lock();
            for k in &keys {
                if let Some(w) = st.remove_worker(k)
                    && let Some(t) = w.task
                {
                    t.abort();
                }
                if let Some(p) = st.tracker.revoke(&k.0, k.1) {
                    st.committed.insert(k.clone(), p.offset);
                    positions.push(p);
                }
            }
        }
        if !positions.is_empty() {
            tracing::info!(
                partitions = positions.len(),
                "committing revoked partitions"
            );
            if let Err(e) = commit(consumer, &positions, CommitMode::Sync) {
                tracing::warn!(error = %e, "commit on revocation failed; those messages will be redelivered");
            } else {
                self.count_commits(&positions);
            }
        }
    }

    /// Partitions are being assigned (before librdkafka starts fetching them): each gets a worker
    /// that reads the partition's own queue, split from the consumer's. Nothing of such a
    /// partition reaches the shared queue, so its records are copied, checked and handled on
    /// one task, with no hand-off, and partitions are read in parallel.
    fn assign(self: &Arc<Self>, tpl: &TopicPartitionList) {
        let Some(kafka) = self.kafka.get().and_then(Weak::upgrade) else {
            return;
        };
        let mut st = self.lock();
        for e in tpl.elements() {
            let Some(chain) = self.chains.get(e.topic()) else {
                continue;
            };
            if st.worker(e.topic(), e.partition()).is_some() {
                continue;
            }
            let Some(queue) = kafka.split_partition_queue(e.topic(), e.partition()) else {
                // The shared queue delivers its records to a worker started on the first one.
                tracing::warn!(
                    topic = e.topic(),
                    partition = e.partition(),
                    "cannot split the partition's queue; reading it through the shared one"
                );
                continue;
            };
            self.spawn_worker(
                &mut st,
                (e.topic().to_owned(), e.partition()),
                chain,
                Some(queue),
            );
        }
    }

    /// Starts the worker of partition `key`: it handles what the reading loop sends it and,
    /// when given one, what it reads from the partition's own queue.
    fn spawn_worker(
        self: &Arc<Self>,
        st: &mut State,
        key: Key,
        chain: &Route,
        queue: Option<PartitionQueue>,
    ) -> (mpsc::Sender<Envelope>, u64) {
        let epoch = st.next_epoch;
        st.next_epoch += 1;
        let (tx, rx) = mpsc::channel(self.capacity);
        let revoked = Revoked::default();
        let task = tokio::spawn(crate::metrics::tallied(
            Arc::clone(&chain.metrics),
            work(
                rx,
                queue,
                Work {
                    chain: Arc::clone(&chain.handler),
                    metrics: Arc::clone(&chain.metrics),
                    shared: Arc::clone(self),
                    // The worker's own copy: every message clones it (a reference count), and one
                    // shared by the topic's workers is a cache line their cores write in turn.
                    catalog_topic: Arc::from(&*chain.catalog_topic),
                    key: key.clone(),
                    epoch,
                    revoked: revoked.clone(),
                    done: None,
                    reported: Instant::now(),
                },
            ),
        ));
        st.workers.entry(key.0).or_default().insert(
            key.1,
            Worker {
                tx: Some(tx.clone()),
                epoch,
                revoked,
                task: Some(task),
            },
        );
        (tx, epoch)
    }

    /// Begins the records a worker read from its partition's queue, under one lock; drops (and
    /// logs) duplicates. `false` when the worker is no longer the partition's.
    fn begin_own(&self, key: &Key, epoch: u64, batch: &mut Vec<Envelope>) -> bool {
        let mut st = self.lock();
        if st.worker(&key.0, key.1).is_none_or(|w| w.epoch != epoch) {
            return false;
        }
        // A partition's own queue holds only its records: one lookup for the batch.
        let mut begin = st.tracker.begin_in(&key.0, key.1);
        batch.retain(|env| {
            if env.partition != key.1 || env.topic != key.0 {
                tracing::error!(
                    topic = %env.topic, partition = env.partition, offset = env.offset,
                    queue_partition = key.1,
                    "record in another partition's queue; not handled, not committed"
                );
                return false;
            }
            match begin.begin(env.offset) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "duplicate delivery skipped");
                    false
                }
            }
        });
        true
    }

    fn commit_failed(&self, offsets: &TopicPartitionList) {
        let mut st = self.lock();
        for e in offsets.elements() {
            st.tracker.commit_failed(e.topic(), e.partition());
        }
    }

    /// Records the outcome of committing `positions`.
    fn committed(&self, positions: &[Position], result: KafkaResult<()>) {
        match result {
            Ok(()) => self.count_commits(positions),
            Err(e) => {
                tracing::warn!(error = %e, "offset commit failed; retrying on the next tick");
                let mut st = self.lock();
                for p in positions {
                    st.tracker.commit_failed(&p.topic, p.partition);
                }
            }
        }
    }

    fn count_commits(&self, positions: &[Position]) {
        for p in positions {
            let name = self
                .catalog_names
                .get(&p.topic)
                .map_or(p.topic.as_str(), String::as_str);
            self.metrics.topic(name).committed.inc();
        }
    }
}

fn commit<C: rdkafka::consumer::Consumer<Ctx>>(
    consumer: &C,
    positions: &[Position],
    mode: CommitMode,
) -> KafkaResult<()> {
    let mut tpl = TopicPartitionList::with_capacity(positions.len());
    for p in positions {
        tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.offset))?;
    }
    consumer.commit(&tpl, mode)
}

/// librdkafka callbacks: rebalances, commit results, statistics (consumer lag).
struct Ctx {
    shared: Arc<Shared>,
}

impl ClientContext for Ctx {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            let name = self
                .shared
                .catalog_names
                .get(topic)
                .map_or(topic.as_str(), String::as_str);
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.shared
                        .metrics
                        .set_lag(name, *partition, p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => self.shared.revoke(consumer, tpl),
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = tpl.count(), "partitions assigned");
                self.shared.assign(tpl);
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(error = %e, "offset commit failed; retrying on the next tick");
            self.shared.commit_failed(offsets);
        }
    }
}

/// A route's chain and what its workers need with it.
struct Route {
    catalog_topic: Arc<str>,
    handler: Arc<dyn Handler>,
    metrics: Arc<TopicMetrics>,
}

/// The chain of built-in layers around a route's handler, as one type: [`middleware::CHAIN`]
/// from the outside in (a test holds the two to each other).
///
/// [`middleware::CHAIN`]: crate::middleware::CHAIN
pub type Chain = DeadLetter<Validate<Retry<Measure<Timeout<CatchPanic<Arc<dyn Handler>>>>>>>;

/// The chain the consumer runs every message of catalog topic `topic` through: the layers of
/// [`crate::middleware::CHAIN`], in its order, around `handler` (see [`Chain`]).
/// [`Consumer::new`] builds one per route; it is public so benches and tests run the same chain.
pub fn chain(
    handler: Arc<dyn Handler>,
    contract: Arc<evkit_schema::Contract>,
    config: &ConsumerConfig,
    metrics: &Metrics,
    topic: &str,
    dead_letter: Target,
    shutdown: CancellationToken,
) -> Arc<dyn Handler> {
    let tm = metrics.topic(topic);
    let guarded = Timeout::around(CatchPanic::around(handler), config.handler_timeout());
    let measured = Measure::around(guarded, tm.clone());
    let retried = Retry::around(measured, &config.retry, Some(tm.clone()));
    let validated = Validate::around(retried, contract, Some(tm));
    let chain: Chain = DeadLetter::around(validated, dead_letter, metrics.clone(), topic, shutdown);
    Arc::new(chain)
}

/// What a consumer did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records read from Kafka.
    pub consumed: u64,
    /// Of those, the records partitions' workers read from their own queues (the rest came
    /// through the shared reading loop).
    pub from_partition_queues: u64,
    /// The last position committed per (cluster topic, partition).
    pub committed: BTreeMap<(String, i32), i64>,
}

/// A consumer-group member that runs a router's handlers at least once.
pub struct Consumer {
    kafka: Arc<StreamConsumer<Ctx>>,
    shared: Arc<Shared>,
    subscriptions: Vec<String>,
    commit_interval: Duration,
    shutdown_deadline: Duration,
    /// Cancelled by the user: stop fetching and drain.
    stop: CancellationToken,
    /// Cancelled when the shutdown deadline passes: dead-letter retries give up.
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("subscriptions", &self.subscriptions)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Creates the group member and, for every route, the chain
    /// dead letter → validate → retry → timeout → panic guard → metrics → handler.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "the consumer takes over the router and metrics"
    )]
    pub fn new(config: &Config, routes: Routes, metrics: Metrics) -> Result<Consumer, Error> {
        let cc = &config.consumer;
        let mut catalog_names = HashMap::new();
        for t in routes.topics() {
            catalog_names.insert(config.actual_topic(t).to_owned(), t.to_owned());
        }
        let dlq_timeout = Duration::from_millis(cc.dead_letter_timeout_ms.max(1));
        // A dead letter carries whatever was consumed, however large the broker let it be.
        let dlq_producer: rdkafka::producer::FutureProducer = producer_config(config, dlq_timeout)?
            .set("message.max.bytes", "100000000")
            .create()
            .map_err(config.client_error("creating the dead-letter producer"))?;
        let shutdown = CancellationToken::new();
        let mut chains = HashMap::new();
        let mut subscriptions = Vec::new();
        for (topic, route) in routes.iter() {
            let dlq = config
                .actual_topic(&route.contract.spec().dead_letter_topic())
                .to_owned();
            let h = chain(
                Arc::clone(&route.handler),
                Arc::clone(&route.contract),
                cc,
                &metrics,
                topic,
                Target {
                    topic: dlq,
                    producer: dlq_producer.clone(),
                    timeout: dlq_timeout,
                },
                shutdown.clone(),
            );
            let tm = metrics.topic(topic);
            let actual = config.actual_topic(topic).to_owned();
            subscriptions.push(actual.clone());
            chains.insert(
                actual,
                Route {
                    catalog_topic: Arc::from(topic.as_str()),
                    handler: h,
                    metrics: tm,
                },
            );
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            metrics: metrics.clone(),
            catalog_names,
            revoke_wait: cc.shutdown_deadline().min(Duration::from_secs(5)),
            committing: AtomicBool::new(false),
            rebalances: AtomicU64::new(0),
            chains,
            capacity: cc.max_in_flight_per_partition.max(1),
            kafka: OnceLock::new(),
            consumed: AtomicU64::new(0),
        });
        let mut client = config.consumer_client_config()?;
        client
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", &cc.auto_offset_reset)
            .set("statistics.interval.ms", cc.lag_interval_ms.to_string());
        if let Some(id) = &config.group_instance_id {
            client.set("group.instance.id", id);
        }
        let kafka: Arc<StreamConsumer<Ctx>> = Arc::new(
            client
                .create_with_context(Ctx {
                    shared: Arc::clone(&shared),
                })
                .map_err(config.client_error("creating the consumer"))?,
        );
        // Set before subscribing, so every assignment can split its partitions' queues.
        if cc.partition_queues {
            let _ = shared.kafka.set(Arc::downgrade(&kafka));
        }
        Ok(Consumer {
            kafka,
            shared,
            subscriptions,
            commit_interval: cc.commit_interval(),
            shutdown_deadline: cc.shutdown_deadline(),
            stop: CancellationToken::new(),
            shutdown,
        })
    }

    /// A token that stops [`Consumer::run`] when cancelled (like the `signal` future).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Consumes until `signal` completes (or the shutdown token is cancelled), then stops
    /// fetching, lets in-flight messages finish within `shutdown_deadline_ms`, commits, and leaves
    /// the group.
    pub async fn run(self, signal: impl Future<Output = ()>) -> Result<Summary, Error> {
        let topics: Vec<&str> = self.subscriptions.iter().map(String::as_str).collect();
        self.kafka.subscribe(&topics).map_err(Error::kafka(format!(
            "subscribing to {}",
            topics.join(", ")
        )))?;
        tracing::info!(topics = ?topics, "consumer started");
        let consumed = self.read(signal).await;
        // Held records are not handled; their offsets stay uncommitted, so they come again.
        Ok(self.drain(consumed).await)
    }

    /// The reading loop: takes what librdkafka has fetched, up to [`BATCH`] records at a time,
    /// begins them all under one lock and hands each partition's share to its worker in one
    /// burst (one wake per partition, not per record). Returns how many records it read.
    async fn read(&self, signal: impl Future<Output = ()>) -> u64 {
        let mut tick = tokio::time::interval(self.commit_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(signal);
        let stopped = self.stop.cancelled();
        tokio::pin!(stopped);
        // One stream for the whole run: `recv` would register and drop a waker slot per record.
        let mut stream = self.kafka.stream();
        let mut consumed = 0u64;
        // Partitions paused because their worker's queue was full, with the records held for it.
        let mut parked: Vec<Parked> = Vec::new();
        let (room_tx, mut room_rx) = mpsc::unbounded_channel::<Key>();
        let mut batch: Vec<Envelope> = Vec::with_capacity(BATCH);
        let mut ready: Vec<(Envelope, mpsc::Sender<Envelope>, u64)> = Vec::with_capacity(BATCH);
        loop {
            let mut rebalances = self.shared.rebalances.load(Ordering::Acquire);
            let first = tokio::select! {
                biased;
                () = &mut signal => return consumed,
                () = &mut stopped => return consumed,
                _ = tick.tick() => {
                    self.commit_in_background();
                    continue;
                }
                Some(key) = room_rx.recv() => {
                    self.unpark(&key, &mut parked, &room_tx);
                    continue;
                }
                m = stream.next() => match m {
                    Some(Ok(m)) => Envelope::from_kafka(&m),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "consume error (librdkafka retries)");
                        continue;
                    }
                    None => return consumed,
                },
            };
            batch.push(first);
            take_ready(&mut stream, &mut batch, BATCH, |batch| {
                // A rebalance ran inside that poll: records read before it from partitions it
                // took away belong to their next owner now.
                let now = self.shared.rebalances.load(Ordering::Acquire);
                if now != rebalances {
                    rebalances = now;
                    let last = batch.pop();
                    self.keep_assigned(batch);
                    batch.extend(last);
                }
            });
            consumed += batch.len() as u64;
            self.begin(&mut batch, &mut ready);
            for (env, tx, epoch) in ready.drain(..) {
                // A record of a paused partition fetched before the pause took hold: behind the
                // held ones, in order.
                if let Some(p) = parked
                    .iter_mut()
                    .find(|p| p.key.1 == env.partition && p.key.0 == env.topic)
                {
                    p.queue.push_back(env);
                    continue;
                }
                match tx.try_reserve() {
                    Ok(permit) => permit.send(env),
                    Err(mpsc::error::TrySendError::Full(())) => {
                        // Room usually comes soon (the handler is working through its queue):
                        // wait a little. Pausing costs a fetch when the partition resumes.
                        let deadline = tokio::time::sleep(PARK_AFTER);
                        tokio::pin!(deadline);
                        let permit = loop {
                            tokio::select! {
                                biased;
                                () = &mut signal => return consumed,
                                () = &mut stopped => return consumed,
                                p = tx.reserve() => break Some(p),
                                _ = tick.tick() => self.commit_in_background(),
                                () = &mut deadline => break None,
                            }
                        };
                        match permit {
                            Some(Ok(permit)) => permit.send(env),
                            Some(Err(_)) => {}
                            // Stuck: pause this partition alone and go on with the others.
                            None => {
                                let key = (env.topic.clone(), env.partition);
                                self.pause(&key, true);
                                wait_for_room(tx.clone(), key.clone(), room_tx.clone());
                                parked.push(Parked {
                                    key,
                                    epoch,
                                    queue: std::collections::VecDeque::from([env]),
                                });
                            }
                        }
                    }
                    // The partition was revoked: its records come again to its next owner.
                    Err(mpsc::error::TrySendError::Closed(())) => {}
                }
            }
        }
    }

    /// Drops the records of partitions this member no longer owns. If the assignment cannot be
    /// read, keeps them all: handling a record twice is allowed, skipping one is not.
    fn keep_assigned(&self, batch: &mut Vec<Envelope>) {
        if batch.is_empty() {
            return;
        }
        match self.kafka.assignment() {
            Ok(tpl) => batch.retain(|e| tpl.find_partition(&e.topic, e.partition).is_some()),
            Err(e) => tracing::debug!(error = %e, "reading the assignment"),
        }
    }

    /// The worker of a parked partition has room: hands it the held records (until it is full
    /// again) and resumes fetching the partition once none are left. Records held for a worker
    /// that has since been revoked or replaced are dropped: their offsets were never committed.
    fn unpark(&self, key: &Key, parked: &mut Vec<Parked>, room: &mpsc::UnboundedSender<Key>) {
        let Some(i) = parked.iter().position(|p| p.key == *key) else {
            return;
        };
        let current = {
            let st = self.shared.lock();
            st.worker(&key.0, key.1)
                .and_then(|w| w.tx.clone().map(|tx| (tx, w.epoch)))
        };
        if let Some((tx, epoch)) = current
            && epoch == parked[i].epoch
        {
            while let Some(env) = parked[i].queue.pop_front() {
                match tx.try_reserve() {
                    Ok(permit) => permit.send(env),
                    Err(mpsc::error::TrySendError::Full(())) => {
                        parked[i].queue.push_front(env);
                        wait_for_room(tx.clone(), key.clone(), room.clone());
                        return;
                    }
                    Err(mpsc::error::TrySendError::Closed(())) => break,
                }
            }
        }
        parked.swap_remove(i);
        self.pause(key, false);
    }

    /// Pauses (or resumes) fetching one partition. librdkafka drops what it fetched for a paused
    /// partition and fetches again from the last record it handed over.
    fn pause(&self, (topic, partition): &Key, pause: bool) {
        let mut tpl = TopicPartitionList::with_capacity(1);
        tpl.add_partition(topic, *partition);
        let result = if pause {
            self.kafka.pause(&tpl)
        } else {
            self.kafka.resume(&tpl)
        };
        if let Err(e) = result {
            // A partition revoked meanwhile: nothing to pause or resume.
            tracing::debug!(error = %e, topic, partition, pause, "pausing a partition");
        }
    }

    /// Begins every record of `batch` under one lock and pairs it with its partition's worker
    /// (started if needed) in `ready`. Records of a topic with no route, and duplicates, are
    /// dropped (and logged).
    fn begin(
        &self,
        batch: &mut Vec<Envelope>,
        ready: &mut Vec<(Envelope, mpsc::Sender<Envelope>, u64)>,
    ) {
        let mut st = self.shared.lock();
        for env in batch.drain(..) {
            let Some(chain) = self.shared.chains.get(&env.topic) else {
                tracing::error!(topic = %env.topic, "record from a topic with no route; not committed");
                continue;
            };
            chain.metrics.consumed.inc();
            if let Err(e) = st.tracker.begin(&env.topic, env.partition, env.offset) {
                tracing::warn!(error = %e, "duplicate delivery skipped");
                continue;
            }
            if let Some(w) = st.worker(&env.topic, env.partition)
                && let Some(tx) = &w.tx
            {
                let (tx, epoch) = (tx.clone(), w.epoch);
                ready.push((env, tx, epoch));
                continue;
            }
            let key = (env.topic.clone(), env.partition);
            let (tx, epoch) = self.shared.spawn_worker(&mut st, key, chain, None);
            ready.push((env, tx, epoch));
        }
    }

    /// Positions that moved since the last commit, marked as committed.
    fn take_commits(&self) -> Vec<Position> {
        let mut st = self.shared.lock();
        let positions = st.tracker.take_commits();
        for p in &positions {
            st.committed
                .insert((p.topic.clone(), p.partition), p.offset);
        }
        positions
    }

    /// Commits what moved on a blocking thread, unless a commit is still in flight (then the next
    /// tick picks the positions up).
    fn commit_in_background(&self) {
        if self.shared.committing.swap(true, Ordering::AcqRel) {
            return;
        }
        let positions = self.take_commits();
        if positions.is_empty() {
            self.shared.committing.store(false, Ordering::Release);
            return;
        }
        let kafka = Arc::clone(&self.kafka);
        let shared = Arc::clone(&self.shared);
        // Nobody waits for the answer: the flag says when it is done.
        drop(on_thread(move || {
            let result = commit(&*kafka, &positions, CommitMode::Sync);
            shared.committed(&positions, result);
            shared.committing.store(false, Ordering::Release);
        }));
    }

    /// Commits what moved and waits for the answer until `until`; `false` when none came in
    /// time (every position is then logged: the next member reads it again, at-least-once).
    async fn commit_now(&self, until: tokio::time::Instant) -> bool {
        let positions = self.take_commits();
        if positions.is_empty() {
            return true;
        }
        let kafka = Arc::clone(&self.kafka);
        let shared = Arc::clone(&self.shared);
        let sent = positions.clone();
        let done = on_thread(move || {
            let result = commit(&*kafka, &sent, CommitMode::Sync);
            shared.committed(&sent, result);
        });
        if tokio::time::timeout_at(until, done).await.is_ok() {
            return true;
        }
        let mut st = self.shared.lock();
        for p in &positions {
            tracing::warn!(
                topic = %p.topic, partition = p.partition, offset = p.offset,
                "shutdown: the commit got no answer before the deadline; these messages come \
                 again to the next member"
            );
            st.committed.remove(&(p.topic.clone(), p.partition));
        }
        false
    }

    async fn drain(self, consumed: u64) -> Summary {
        let deadline = tokio::time::Instant::now() + self.shutdown_deadline;
        let mut tasks: Vec<JoinHandle<()>> = {
            let mut st = self.shared.lock();
            st.all_workers()
                .filter_map(|w| {
                    w.tx = None;
                    w.task.take()
                })
                .collect()
        };
        let in_flight = tasks.len();
        if tokio::time::timeout_at(deadline, futures::future::join_all(tasks.iter_mut()))
            .await
            .is_err()
        {
            tracing::warn!(
                deadline = ?self.shutdown_deadline,
                "shutdown deadline passed; unfinished messages stay uncommitted"
            );
            self.shutdown.cancel();
            tasks.retain(|t| !t.is_finished());
            for t in &tasks {
                t.abort();
            }
            // An aborted worker lets go of its partition's queue (and with it a reference to the
            // consumer) when its task is dropped: wait for that, briefly, so the consumer closes
            // here and not inside some task's drop.
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                futures::future::join_all(tasks.iter_mut()),
            )
            .await;
        }
        // The commits get a deadline of their own, a little past the handlers' (so a broker
        // that is gone cannot hold the process).
        let hard = tokio::time::Instant::now().max(deadline) + COMMIT_GRACE;
        // Let a timer commit in flight finish first, so the final commit is the last word; it
        // restates every position and is retried briefly when the coordinator is moving.
        while self.shared.committing.load(Ordering::Acquire) && tokio::time::Instant::now() < hard {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.shared.lock().tracker.restate();
        for _ in 0..20 {
            if !self.commit_now(hard).await || !self.shared.lock().tracker.pending() {
                break;
            }
            if tokio::time::Instant::now() + Duration::from_millis(250) >= hard {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let committed = self.shared.lock().committed.clone();
        let from_partition_queues = self.shared.consumed.load(Ordering::Relaxed);
        let consumed = consumed + from_partition_queues;
        tracing::info!(consumed, partitions = in_flight, "consumer stopped");
        Summary {
            consumed,
            from_partition_queues,
            committed,
        }
    }
}

/// How long the final commits may take past the shutdown deadline.
const COMMIT_GRACE: Duration = Duration::from_secs(3);

/// Runs `work` (a synchronous commit) on a thread of its own, not on the runtime's blocking
/// pool: a commit to a coordinator that never answers must not hold the runtime's shutdown,
/// which waits for every blocking task. The receiver answers when the work is done.
pub(crate) fn on_thread(
    work: impl FnOnce() + Send + 'static,
) -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Shared with the thread, so the work still runs (here) if no thread can start.
    let job = Arc::new(Mutex::new(Some((work, tx))));
    let theirs = Arc::clone(&job);
    let spawned = std::thread::Builder::new()
        .name("evkit-commit".to_owned())
        .spawn(move || {
            let taken = theirs.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some((work, tx)) = taken {
                work();
                let _ = tx.send(());
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a commit thread; committing here");
        let taken = job.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some((work, tx)) = taken {
            work();
            let _ = tx.send(());
        }
    }
    rx
}

/// The most records the reading loop takes at once, and a worker handles between reports.
const BATCH: usize = 256;

/// How often a busy worker reports its progress to the offset tracker.
const REPORT_EVERY: Duration = Duration::from_millis(1);

/// How long the loop waits for room in a full partition queue before it pauses that partition
/// and goes on with the others.
const PARK_AFTER: Duration = Duration::from_millis(100);

/// A partition paused because its worker's queue was full, and the records held for it.
struct Parked {
    key: Key,
    /// The worker the records were begun for.
    epoch: u64,
    queue: std::collections::VecDeque<Envelope>,
}

/// Tells the consumer loop when `tx`'s queue is at least half empty (or its worker is gone).
/// Resuming at the first free slot would pause and resume the partition, and fetch it again,
/// for every message or two.
fn wait_for_room(tx: mpsc::Sender<Envelope>, key: Key, room: mpsc::UnboundedSender<Key>) {
    tokio::spawn(async move {
        // The permits are dropped at once: the room stays for the loop, the only sender.
        let half = (tx.max_capacity() / 2).max(1);
        let _ = tx.reserve_many(half).await;
        let _ = room.send(key);
    });
}

/// Adds to `batch` the records `stream` already holds, without waiting, until it has `limit`;
/// `after_each` sees the batch after each record.
fn take_ready<S, M>(
    stream: &mut S,
    batch: &mut Vec<Envelope>,
    limit: usize,
    mut after_each: impl FnMut(&mut Vec<Envelope>),
) where
    S: futures::Stream<Item = KafkaResult<M>> + Unpin,
    M: rdkafka::Message,
{
    while batch.len() < limit {
        let Some(Some(m)) = stream.next().now_or_never() else {
            break;
        };
        match m {
            Ok(m) => batch.push(Envelope::from_kafka(&m)),
            Err(e) => {
                tracing::warn!(error = %e, "consume error (librdkafka retries)");
                break;
            }
        }
        after_each(batch);
    }
}

/// A partition's own librdkafka queue.
type PartitionQueue = StreamPartitionQueue<Ctx>;

/// What a partition's worker needs to handle its messages and report its progress.
struct Work {
    chain: Arc<dyn Handler>,
    metrics: Arc<TopicMetrics>,
    shared: Arc<Shared>,
    catalog_topic: Arc<str>,
    key: Key,
    epoch: u64,
    revoked: Revoked,
    /// The last handled offset not yet reported to the tracker.
    done: Option<i64>,
    /// When progress was last reported.
    reported: Instant,
}

impl Work {
    /// Handles `batch` in order; `false` when the worker must stop (revoked, or a message was
    /// left unfinished at shutdown).
    async fn handle(&mut self, batch: &mut Vec<Envelope>) -> bool {
        for env in batch.drain(..) {
            if self.revoked.is_revoked() {
                return false;
            }
            let offset = env.offset;
            let span = tracing::info_span!(
                "evkit.message",
                topic = %self.catalog_topic,
                partition = self.key.1,
                offset,
                request_id = tracing::field::Empty,
            );
            let incoming = Incoming::new(Arc::clone(&self.catalog_topic), env);
            let outcome = if span.is_disabled() {
                self.chain.handle(incoming).await
            } else {
                if let Some(id) = incoming.envelope().header(evkit_schema::REQUEST_ID_HEADER) {
                    span.record("request_id", String::from_utf8_lossy(id).as_ref());
                }
                self.chain.handle(incoming).instrument(span).await
            };
            if outcome != Outcome::Ack {
                // Only at shutdown (the dead-letter layer gave up): leave it uncommitted.
                return false;
            }
            self.done = Some(offset);
            // Messages are handled in order, so one report covers every earlier one; a busy
            // worker reports at least every millisecond, so slow handlers do not hold commits.
            if self.reported.elapsed() >= REPORT_EVERY {
                self.report();
            }
        }
        true
    }

    /// Tells the tracker how far the partition got.
    fn report(&mut self) {
        crate::metrics::flush_tally();
        if let Some(offset) = self.done.take() {
            self.shared.finish_through(&self.key, offset, self.epoch);
        }
        self.reported = Instant::now();
    }
}

/// A partition's worker: handles, in order, what the reading loop sends it and, when it has
/// one, what it reads from the partition's own queue (taking what is there, up to a batch, and
/// beginning it under one lock). It stops when revoked, when its sender is dropped (revocation,
/// shutdown), or when a message is left unfinished at shutdown.
async fn work(mut rx: mpsc::Receiver<Envelope>, queue: Option<PartitionQueue>, mut w: Work) {
    let limit = w.shared.capacity.min(BATCH);
    let mut buf = Vec::with_capacity(limit);
    let Some(queue) = queue else {
        while rx.recv_many(&mut buf, limit).await > 0 {
            if !w.handle(&mut buf).await {
                break;
            }
            w.report();
        }
        w.report();
        return;
    };
    let mut stream = queue.stream();
    let revoked = w.revoked.token.clone();
    loop {
        tokio::select! {
            biased;
            () = revoked.cancelled() => break,
            n = rx.recv_many(&mut buf, limit) => {
                if n == 0 {
                    break;
                }
            }
            m = stream.next() => {
                match m {
                    Some(Ok(m)) => buf.push(Envelope::from_kafka(&m)),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "consume error (librdkafka retries)");
                        continue;
                    }
                    None => break,
                }
                take_ready(&mut stream, &mut buf, limit, |_| {});
                let read = buf.len() as u64;
                w.shared.consumed.fetch_add(read, Ordering::Relaxed);
                w.metrics.consumed.inc_by(read);
                if !w.shared.begin_own(&w.key, w.epoch, &mut buf) {
                    break;
                }
            }
        }
        if !w.handle(&mut buf).await {
            break;
        }
        w.report();
    }
    w.report();
}
