//! Layers around a handler, in the style of a tower or watermill chain. Each layer is a
//! [`Handler`] that wraps another.
//!
//! The consumer builds this chain for every routed topic (outermost first):
//!
//! 1. [`DeadLetter`](dead_letter::DeadLetter): a `Reject` (or an exhausted retry) is written to the
//!    dead-letter topic before the offset may be committed; a failed publish is retried, never
//!    committed;
//! 2. [`Validate`](validate::Validate): the contract check; a broken contract is rejected at once;
//! 3. [`Retry`](retry::Retry): `Retry` outcomes are retried with bounded exponential backoff and
//!    jitter (backon), inside the partition's task so other partitions keep going;
//! 4. [`Timeout`](timeout::Timeout): an attempt that takes too long is a transient failure;
//! 5. [`CatchPanic`](panic::CatchPanic): a panicking handler is a transient failure, not a
//!    crashed consumer;
//! 6. [`Measure`](measure::Measure): handler attempts, outcomes and latency;
//! 7. your own layers ([`crate::Router::layer`]), then the handler.

pub mod dead_letter;
pub mod measure;
pub mod panic;
pub mod retry;
pub mod timeout;
pub mod validate;

use std::sync::Arc;

use crate::Handler;

/// Wraps a handler in another handler.
pub trait Middleware: Send + Sync + 'static {
    /// The wrapped handler.
    fn wrap(&self, inner: Arc<dyn Handler>) -> Arc<dyn Handler>;
}

impl<F> Middleware for F
where
    F: Fn(Arc<dyn Handler>) -> Arc<dyn Handler> + Send + Sync + 'static,
{
    fn wrap(&self, inner: Arc<dyn Handler>) -> Arc<dyn Handler> {
        self(inner)
    }
}
