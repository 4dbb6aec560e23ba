//! A panicking handler is a failed attempt, not a crashed consumer.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt as _;

use super::{Layer, Step};
use crate::{Failure, Handler, Incoming, Outcome, Reason};

/// Catches a panic in the handler's future and turns it into a transient failure
/// ([`Reason::Panic`]): it is retried, then dead-lettered, and the partition goes on.
pub struct CatchPanic<S = Arc<dyn Handler>> {
    inner: S,
}

impl CatchPanic {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Handler>) -> Self {
        CatchPanic::around(inner)
    }
}

impl<S: Step> CatchPanic<S> {
    /// Wraps `inner`, another layer or a handler.
    pub fn around(inner: S) -> Self {
        CatchPanic { inner }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    // Keep dead-letter headers short.
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("handler panicked: {}", &text[..end])
}

super::handler_from_step!(CatchPanic);

impl<S: Step> Step for CatchPanic<S> {
    fn layers() -> Vec<Layer> {
        super::with_inner::<S>(Layer::CatchPanic)
    }

    async fn call(&self, msg: Incoming) -> Outcome {
        match AssertUnwindSafe(self.inner.call(msg)).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(payload) => {
                tracing::error!("handler panicked");
                Outcome::Retry(Failure::new(Reason::Panic, panic_message(&*payload)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::manual_assert)]

    use super::*;
    use crate::handler::test_message as msg;
    use crate::handler_fn;

    #[tokio::test]
    async fn a_panic_becomes_a_transient_failure() {
        let boom = handler_fn(|msg: Incoming| async move {
            if msg.envelope().offset == 0 {
                panic!("boom at {}", msg.envelope().offset);
            }
            Outcome::Ack
        });
        let guard = CatchPanic::new(Arc::new(boom));
        let Outcome::Retry(f) = guard.handle(msg()).await else {
            panic!("panic not caught")
        };
        assert_eq!(f.reason, Reason::Panic);
        assert_eq!(f.message, "handler panicked: boom at 0");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(300);
        let m = panic_message(&long);
        assert!(m.len() <= "handler panicked: ".len() + 200);
        assert!(m.ends_with('é'));
    }
}
