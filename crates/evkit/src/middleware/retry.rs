//! Retries of transient failures: bounded exponential backoff with jitter.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use super::{Layer, Step};
use crate::config::RetryConfig;
use crate::metrics::TopicMetrics;
use crate::{Handler, Incoming, Outcome};

/// Calls the handler again after `Retry` outcomes, waiting longer each time (exponential, capped,
/// jittered; [backon]). When the retries run out the last failure becomes a `Reject` carrying the
/// number of attempts, for the dead-letter layer. `Ack` and `Reject` pass straight through.
///
/// The wait happens inside the partition's own task, so other partitions keep flowing, and the
/// partition's order holds (the next message waits for this one).
pub struct Retry<S = Arc<dyn Handler>> {
    inner: S,
    policy: ExponentialBuilder,
    metrics: Option<Arc<TopicMetrics>>,
}

impl Retry {
    /// Wraps `inner` with `policy`.
    pub fn new(
        inner: Arc<dyn Handler>,
        policy: &RetryConfig,
        metrics: Option<Arc<TopicMetrics>>,
    ) -> Self {
        Retry::around(inner, policy, metrics)
    }
}

impl<S: Step> Retry<S> {
    /// Wraps `inner`, another layer or a handler.
    pub fn around(inner: S, policy: &RetryConfig, metrics: Option<Arc<TopicMetrics>>) -> Self {
        let mut builder = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(policy.min_delay_ms))
            .with_max_delay(Duration::from_millis(
                policy.max_delay_ms.max(policy.min_delay_ms),
            ))
            .with_factor(policy.factor.max(1.0))
            .with_max_times(policy.max_retries as usize);
        if policy.jitter {
            builder = builder.with_jitter();
        }
        Retry {
            inner,
            policy: builder,
            metrics,
        }
    }

    /// The delays this policy would wait, in order (for tests and docs).
    pub fn delays(&self) -> Vec<Duration> {
        self.policy.build().collect()
    }
}

super::handler_from_step!(Retry);

impl<S: Step> Step for Retry<S> {
    fn layers() -> Vec<Layer> {
        super::with_inner::<S>(Layer::Retry)
    }

    async fn call(&self, msg: Incoming) -> Outcome {
        // Most first attempts succeed (or fail for good): the backoff is built only after a
        // transient failure.
        let failure = match self.inner.call(msg.clone()).await {
            Outcome::Ack => return Outcome::Ack,
            Outcome::Reject(mut f) => {
                f.attempts = 1;
                return Outcome::Reject(f);
            }
            Outcome::Retry(f) => f,
        };
        // Boxed: the retries' state (backoff, timer, a second attempt) stays out of every
        // message's future.
        Box::pin(self.retry(msg, failure)).await
    }
}

impl<S: Step> Retry<S> {
    /// After a first attempt failed with `failure`: waits and tries again until an attempt
    /// settles or the retries run out.
    async fn retry(&self, msg: Incoming, mut failure: crate::Failure) -> Outcome {
        let mut delays = self.policy.build();
        let mut attempts = 1u32;
        loop {
            let Some(after) = delays.next() else {
                failure.attempts = attempts;
                failure.message = format!("gave up after {attempts} attempts: {}", failure.message);
                return Outcome::Reject(failure);
            };
            if let Some(m) = &self.metrics {
                m.retried.inc();
            }
            tracing::warn!(reason = %failure.reason, retry_in = ?after, "transient failure, retrying");
            tokio::time::sleep(after).await;
            attempts += 1;
            match self.inner.call(msg.clone()).await {
                Outcome::Ack => return Outcome::Ack,
                Outcome::Reject(mut f) => {
                    f.attempts = attempts;
                    return Outcome::Reject(f);
                }
                Outcome::Retry(f) => failure = f,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::handler::test_message as msg;
    use crate::{Metrics, Reason, handler_fn};

    fn policy(max_retries: u32) -> RetryConfig {
        RetryConfig {
            max_retries,
            min_delay_ms: 100,
            max_delay_ms: 1_000,
            factor: 2.0,
            jitter: true,
        }
    }

    /// Fails `failures` times, then acknowledges.
    fn flaky(failures: usize) -> (Arc<dyn Handler>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let h = handler_fn(move |_| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < failures {
                    Outcome::retry("db down")
                } else {
                    Outcome::Ack
                }
            }
        });
        (Arc::new(h), calls)
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let metrics = Metrics::new();
        let (h, calls) = flaky(2);
        let r = Retry::new(h, &policy(3), Some(metrics.topic("t")));
        let start = tokio::time::Instant::now();
        assert_eq!(r.handle(msg()).await, Outcome::Ack);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Two backoffs: at least the minimum delay each (jitter only adds).
        assert!(
            start.elapsed() >= Duration::from_millis(100 + 200),
            "{:?}",
            start.elapsed()
        );
        assert!(
            metrics
                .encode()
                .contains(r#"evkit_retried_total{topic="t"} 2"#)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_retries_become_a_reject_with_the_attempt_count() {
        let (h, calls) = flaky(usize::MAX);
        let r = Retry::new(h, &policy(3), None);
        let Outcome::Reject(f) = r.handle(msg()).await else {
            panic!("not rejected")
        };
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(f.attempts, 4);
        assert_eq!(f.reason, Reason::Error);
        assert!(
            f.message.starts_with("gave up after 4 attempts: db down"),
            "{}",
            f.message
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_reject_is_not_retried() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let h = handler_fn(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            async { Outcome::reject("poison") }
        });
        let r = Retry::new(Arc::new(h), &policy(5), None);
        let Outcome::Reject(f) = r.handle(msg()).await else {
            panic!("not rejected")
        };
        assert_eq!((calls.load(Ordering::SeqCst), f.attempts), (1, 1));
    }

    #[test]
    fn delays_grow_are_capped_and_bounded_in_number() {
        let (h, _) = flaky(0);
        let d = Retry::new(h, &policy(6), None).delays();
        assert_eq!(d.len(), 6);
        for (i, delay) in d.iter().enumerate() {
            // Jitter adds up to one more base delay.
            assert!(
                *delay >= Duration::from_millis((100u64 << i).min(1_000)),
                "{d:?}"
            );
            assert!(*delay <= Duration::from_secs(2), "{d:?}");
        }
    }
}
