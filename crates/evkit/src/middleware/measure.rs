//! Handler attempts, outcomes and latency.

use std::sync::Arc;
use std::time::Instant;

use crate::metrics::TopicMetrics;
use crate::{Handler, Incoming, Outcome};

/// Counts every handler attempt (`evkit_dispatched_total`), its outcome (`evkit_handled_total`)
/// and its latency (`evkit_handler_duration_seconds`).
pub struct Measure {
    inner: Arc<dyn Handler>,
    metrics: Arc<TopicMetrics>,
}

impl Measure {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Handler>, metrics: Arc<TopicMetrics>) -> Self {
        Measure { inner, metrics }
    }
}

#[async_trait::async_trait]
impl Handler for Measure {
    async fn handle(&self, msg: Incoming) -> Outcome {
        self.metrics.dispatched.inc();
        let start = Instant::now();
        let outcome = self.inner.handle(msg).await;
        self.metrics.latency.observe(start.elapsed().as_secs_f64());
        let i = match outcome {
            Outcome::Ack => 0,
            Outcome::Retry(_) => 1,
            Outcome::Reject(_) => 2,
        };
        self.metrics.handled[i].inc();
        outcome
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Envelope, Metrics, handler_fn};

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
            let env = Envelope {
                topic: "t".to_owned(),
                partition: 0,
                offset,
                key: None,
                headers: Vec::new(),
                payload: None,
                timestamp_ms: None,
            };
            let _ = m.handle(Incoming::new("t", env)).await;
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
