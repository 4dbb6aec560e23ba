//! A deadline per handler attempt.

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use super::{Layer, Step};
use crate::{Failure, Handler, Incoming, Outcome, Reason};

/// An attempt that takes longer than `after` is dropped and counts as a transient failure
/// ([`Reason::Timeout`]), so a hung handler cannot stall its partition forever.
pub struct Timeout<S = Arc<dyn Handler>> {
    inner: S,
    after: Duration,
}

impl Timeout {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Handler>, after: Duration) -> Self {
        Timeout::around(inner, after)
    }
}

impl<S: Step> Timeout<S> {
    /// Wraps `inner`, another layer or a handler.
    pub fn around(inner: S, after: Duration) -> Self {
        Timeout { inner, after }
    }
}

super::handler_from_step!(Timeout);

impl<S: Step> Step for Timeout<S> {
    fn layers() -> Vec<Layer> {
        super::with_inner::<S>(Layer::Timeout)
    }

    async fn call(&self, msg: Incoming) -> Outcome {
        let mut attempt = std::pin::pin!(self.inner.call(msg));
        // Most attempts finish in their first poll: the timer is armed only for one that does
        // not (its first poll, which a timer could not interrupt anyway, is not counted).
        if let Poll::Ready(outcome) = futures::poll!(attempt.as_mut()) {
            return outcome;
        }
        // Boxed: the timer stays out of every message's future.
        match Box::pin(tokio::time::timeout(self.after, attempt)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Retry(Failure::new(
                Reason::Timeout,
                format!("handler took longer than {:?}", self.after),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::handler::test_message as msg;
    use crate::handler_fn;

    #[tokio::test(start_paused = true)]
    async fn a_hung_handler_times_out_as_a_transient_failure() {
        let hung = handler_fn(|_| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Outcome::Ack
        });
        let t = Timeout::new(Arc::new(hung), Duration::from_secs(2));
        let Outcome::Retry(f) = t.handle(msg()).await else {
            panic!("no timeout")
        };
        assert_eq!(f.reason, Reason::Timeout);
        assert!(f.message.contains("2s"), "{}", f.message);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_handler_is_untouched() {
        let quick = handler_fn(|_| async { Outcome::reject("nope") });
        let t = Timeout::new(Arc::new(quick), Duration::from_secs(2));
        assert_eq!(t.handle(msg()).await, Outcome::reject("nope"));
    }
}
