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
//! 4. [`Measure`](measure::Measure): handler attempts, outcomes and latency, outside the guards
//!    below, so a panicking or timed-out attempt is counted (as `retry`) and timed too;
//! 5. [`Timeout`](timeout::Timeout): an attempt that takes too long is a transient failure;
//! 6. [`CatchPanic`](panic::CatchPanic): a panicking handler is a transient failure, not a
//!    crashed consumer;
//! 7. your own layers ([`crate::Router::layer`]), then the handler.
//!
//! [`CHAIN`] is this order; the consumer builds the chain from it, and a test holds this list to
//! it.

pub mod dead_letter;
pub mod measure;
pub mod panic;
pub mod retry;
pub mod timeout;
pub mod validate;

use std::sync::Arc;

use crate::Handler;

/// A built-in layer of the consumer's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// [`dead_letter::DeadLetter`].
    DeadLetter,
    /// [`validate::Validate`].
    Validate,
    /// [`retry::Retry`].
    Retry,
    /// [`measure::Measure`].
    Measure,
    /// [`timeout::Timeout`].
    Timeout,
    /// [`panic::CatchPanic`].
    CatchPanic,
}

impl Layer {
    /// The layer's type name, as the module docs list it.
    pub fn name(self) -> &'static str {
        match self {
            Layer::DeadLetter => "DeadLetter",
            Layer::Validate => "Validate",
            Layer::Retry => "Retry",
            Layer::Measure => "Measure",
            Layer::Timeout => "Timeout",
            Layer::CatchPanic => "CatchPanic",
        }
    }
}

/// The built-in chain, outermost first: the one place its order is written.
pub const CHAIN: [Layer; 6] = [
    Layer::DeadLetter,
    Layer::Validate,
    Layer::Retry,
    Layer::Measure,
    Layer::Timeout,
    Layer::CatchPanic,
];

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

#[cfg(test)]
mod tests {
    /// The module docs list the chain in [`super::CHAIN`]'s order.
    #[test]
    fn the_docs_list_the_chain_in_its_order() {
        let source = include_str!("mod.rs");
        let listed: Vec<&str> = source
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .filter_map(|l| {
                let rest = l.trim_start_matches("//! ");
                let (n, item) = rest.split_once(". [`")?;
                n.parse::<u8>().ok()?;
                item.split('`').next()
            })
            .collect();
        let chain: Vec<&str> = super::CHAIN.iter().map(|l| l.name()).collect();
        assert_eq!(listed, chain);
    }
}
