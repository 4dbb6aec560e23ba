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
        // A `Handler` written by hand may panic before it returns its future, not only in it.
        let attempt = match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(msg))) {
            Ok(attempt) => attempt,
            Err(payload) => return panicked(&*payload),
        };
        match AssertUnwindSafe(attempt).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(payload) => panicked(&*payload),
        }
    }
}

/// The outcome of an attempt that panicked with `payload`.
fn panicked(payload: &(dyn std::any::Any + Send)) -> Outcome {
    tracing::error!("handler panicked");
    Outcome::Retry(Failure::new(Reason::Panic, panic_message(payload)))
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

    /// A handler written without `async_trait` that panics before it returns its future.
    struct PanicsEarly;

    impl Handler for PanicsEarly {
        fn handle<'life0, 'async_trait>(
            &'life0 self,
            _msg: Incoming,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            panic!("before the future")
        }
    }

    #[tokio::test]
    async fn a_panic_before_the_handlers_future_is_caught_too() {
        let guard = CatchPanic::new(Arc::new(PanicsEarly));
        let Outcome::Retry(f) = guard.handle(msg()).await else {
            panic!("panic not caught")
        };
        assert_eq!(f.reason, Reason::Panic);
        assert_eq!(f.message, "handler panicked: before the future");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(300);
        let m = panic_message(&long);
        assert!(m.len() <= "handler panicked: ".len() + 200);
        assert!(m.ends_with('é'));
    }
}
