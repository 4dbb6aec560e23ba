//! The dead-letter topic: where rejected and exhausted messages go, so nothing is lost.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout as KafkaTimeout;
use tokio_util::sync::CancellationToken;

use super::{Layer, Step};
use crate::metrics::{Metrics, TopicMetrics};
use crate::{Failure, Handler, Incoming, Outcome, Reason};

/// Where a topic's failures go.
#[derive(Clone)]
pub struct Target {
    /// The dead-letter topic's name on the cluster.
    pub topic: String,
    /// The producer that writes it (acks=all, idempotent).
    pub producer: FutureProducer,
    /// How long one publish may take before it counts as failed.
    pub timeout: Duration,
}

/// Turns a `Reject` into a message on the dead-letter topic: the original key, payload and
/// headers, plus `evkit-dlq-*` headers naming the reason, the failed JSON paths, the original
/// topic, partition, offset, the attempts and the time ([`crate::dead_letter`]).
///
/// Only a delivered dead letter acknowledges the source message. A failed publish is retried
/// with capped backoff for as long as it takes (the partition waits, its offset is not
/// committed); only shutdown stops the retries, and then the message stays uncommitted and is
/// consumed again after restart.
pub struct DeadLetter<S = Arc<dyn Handler>> {
    inner: S,
    target: Target,
    metrics: Metrics,
    topic_metrics: Arc<TopicMetrics>,
    shutdown: CancellationToken,
}

impl DeadLetter {
    /// Wraps `inner`; `shutdown` ends publish retries.
    pub fn new(
        inner: Arc<dyn Handler>,
        target: Target,
        metrics: Metrics,
        topic: &str,
        shutdown: CancellationToken,
    ) -> Self {
        DeadLetter::around(inner, target, metrics, topic, shutdown)
    }
}

impl<S: Step> DeadLetter<S> {
    /// Wraps `inner`, another layer or a handler; `shutdown` ends publish retries.
    pub fn around(
        inner: S,
        target: Target,
        metrics: Metrics,
        topic: &str,
        shutdown: CancellationToken,
    ) -> Self {
        DeadLetter {
            inner,
            target,
            topic_metrics: metrics.topic(topic),
            metrics,
            shutdown,
        }
    }

    async fn publish(&self, msg: &Incoming, failure: &Failure) -> Result<(), String> {
        let env = msg.envelope();
        let now = chrono::Utc::now().timestamp_millis();
        let headers = crate::dead_letter::headers(
            env,
            failure.reason.as_str(),
            &failure.message,
            &failure.violations,
            failure.attempts,
            now,
        );
        let mut owned = OwnedHeaders::new_with_capacity(headers.len());
        for (name, value) in &headers {
            owned = owned.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.target.topic).headers(owned);
        if let Some(k) = env.key.as_deref() {
            record = record.key(k);
        }
        if let Some(p) = env.payload.as_deref() {
            record = record.payload(p);
        }
        self.target
            .producer
            .send(record, KafkaTimeout::After(self.target.timeout))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    }
}

super::handler_from_step!(DeadLetter);

impl<S: Step> Step for DeadLetter<S> {
    fn layers() -> Vec<Layer> {
        super::with_inner::<S>(Layer::DeadLetter)
    }

    async fn call(&self, msg: Incoming) -> Outcome {
        let failure = match self.inner.call(msg.clone()).await {
            Outcome::Ack => return Outcome::Ack,
            Outcome::Reject(f) | Outcome::Retry(f) => f,
        };
        // Boxed: the publish's state (record, delivery, backoff, timer) stays out of every
        // message's future.
        Box::pin(self.dead_letter(msg, failure)).await
    }
}

impl<S: Step> DeadLetter<S> {
    /// Publishes `msg` to the dead-letter topic, retrying until it is delivered or shutdown.
    async fn dead_letter(&self, msg: Incoming, failure: Failure) -> Outcome {
        let env = msg.envelope();
        let mut delays = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            match self.publish(&msg, &failure).await {
                Ok(()) => {
                    self.metrics
                        .dead_lettered(msg.topic(), failure.reason.as_str());
                    tracing::warn!(
                        reason = %failure.reason,
                        dead_letter_topic = %self.target.topic,
                        error = %failure.message,
                        "message dead-lettered"
                    );
                    return Outcome::Ack;
                }
                Err(e) => {
                    self.topic_metrics.dead_letter_errors.inc();
                    let wait = delays.next().unwrap_or(Duration::from_secs(5));
                    tracing::error!(
                        dead_letter_topic = %self.target.topic,
                        error = %e,
                        retry_in = ?wait,
                        "dead-letter publish failed; the source offset stays uncommitted"
                    );
                    tokio::select! {
                        () = self.shutdown.cancelled() => {
                            return Outcome::Retry(Failure::new(
                                Reason::Error,
                                format!(
                                    "shutting down before {}[{}]@{} reached the dead-letter topic",
                                    env.topic, env.partition, env.offset
                                ),
                            ));
                        }
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}
