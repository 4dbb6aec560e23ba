//! Handler attempts, outcomes and latency.

use std::sync::Arc;
use std::time::Instant;

use super::{Layer, Step};
use crate::metrics::TopicMetrics;
use crate::{Handler, Incoming, Outcome};

/// Counts every handler attempt (`evkit_dispatched_total`), its outcome (`evkit_handled_total`)
/// and its latency (`evkit_handler_duration_seconds`).
pub struct Measure<S = Arc<dyn Handler>> {
    inner: S,
    metrics: Arc<TopicMetrics>,
}

impl Measure {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Handler>, metrics: Arc<TopicMetrics>) -> Self {
        Measure::around(inner, metrics)
    }
}

impl<S: Step> Measure<S> {
    /// Wraps `inner`, another layer or a handler.
    pub fn around(inner: S, metrics: Arc<TopicMetrics>) -> Self {
        Measure { inner, metrics }
    }
}

super::handler_from_step!(Measure);

impl<S: Step> Step for Measure<S> {
    fn layers() -> Vec<Layer> {
        super::with_inner::<S>(Layer::Measure)
    }

    async fn call(&self, msg: Incoming) -> Outcome {
        self.metrics.count_dispatched();
        let start = Instant::now();
        let mut attempt = std::pin::pin!(self.inner.call(msg));
        let outcome = std::future::poll_fn(|cx| {
            let poll = attempt.as_mut().poll(cx);
            if poll.is_pending() {
                // The attempt waits: show what the worker counted so far (this attempt's
                // start included) while it does.
                crate::metrics::flush_tally();
            }
            poll
        })
        .await;
        let i = match outcome {
            Outcome::Ack => 0,
            Outcome::Retry(_) => 1,
            Outcome::Reject(_) => 2,
        };
        self.metrics.count_handled(i, start.elapsed());
        outcome
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Envelope, Metrics, handler_fn};

    /// An empty record of topic `t`, partition 0, at `offset`.
    fn record(offset: i64) -> Incoming {
        Incoming::new(
            "t",
            Envelope {
                topic: "t".to_owned(),
                partition: 0,
                offset,
                key: None,
                headers: Vec::new(),
                payload: None,
                timestamp_ms: None,
            },
        )
    }

    /// Inside a partition worker's tally, an attempt that waits shows in
    /// `evkit_dispatched_total` while it waits, not only once the batch ends.
    #[tokio::test]
    async fn a_waiting_attempt_shows_at_once_inside_a_workers_tally() {
        let metrics = Metrics::new();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let wait = std::sync::Mutex::new(Some(wait));
        let h = handler_fn(move |msg: Incoming| {
            let wait = if msg.envelope().offset == 1 {
                wait.lock().unwrap().take()
            } else {
                None
            };
            async move {
                if let Some(w) = wait {
                    let _ = w.await;
                }
                Outcome::Ack
            }
        });
        let m = Measure::new(Arc::new(h), metrics.topic("t"));
        let scraped = metrics.clone();
        let worker = crate::metrics::tallied(metrics.topic("t"), async move {
            // The first attempt finishes at once and stays in the tally.
            let _ = m.handle(record(0)).await;
            let _ = m.handle(record(1)).await;
        });
        let task = tokio::spawn(worker);
        // The second attempt waits: both starts and the first outcome are visible.
        let mut text = String::new();
        for _ in 0..200 {
            text = scraped.encode();
            if text.contains(r#"evkit_dispatched_total{topic="t"} 2"#) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(
            text.contains(r#"evkit_dispatched_total{topic="t"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"evkit_handled_total{topic="t",outcome="ack"} 1"#),
            "{text}"
        );
        go.send(()).unwrap();
        task.await.unwrap();
        let text = scraped.encode();
        assert!(
            text.contains(r#"evkit_handled_total{topic="t",outcome="ack"} 2"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn attempts_outcomes_and_latency_are_recorded() {
        let metrics = Metrics::new();
        let h = handler_fn(|msg: Incoming| async move {
            if msg.envelope().offset % 2 == 0 {
                Outcome::Ack
            } else {
                Outcome::retry("odd")
            }
        });
        let m = Measure::new(Arc::new(h), metrics.topic("t"));
        for offset in 0..5 {
            let _ = m.handle(record(offset)).await;
        }
        let text = metrics.encode();
        assert!(
            text.contains(r#"evkit_dispatched_total{topic="t"} 5"#),
            "{text}"
        );
        assert!(
            text.contains(r#"evkit_handled_total{topic="t",outcome="ack"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"evkit_handled_total{topic="t",outcome="retry"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"evkit_handler_duration_seconds_count{topic="t"} 5"#),
            "{text}"
        );
    }
}
