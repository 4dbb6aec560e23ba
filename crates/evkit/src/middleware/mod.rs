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
//! [`CHAIN`] is this order, written once. The consumer's chain is one nested type
//! ([`crate::consumer::Chain`]): each built-in layer is generic over the [`Step`] it wraps, so a
//! message's trip through all six is a single future, not a boxed future per layer. Tests hold
//! both that type and this list to [`CHAIN`].

pub mod dead_letter;
pub mod measure;
pub mod panic;
pub mod retry;
pub mod timeout;
pub mod validate;

use std::future::Future;
use std::sync::Arc;

use crate::{Handler, Incoming, Outcome};

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

/// What a built-in layer wraps, called without boxing its future: another built-in layer, or any
/// `Arc<dyn Handler>` (your handler, behind your own layers).
pub trait Step: Send + Sync + 'static {
    /// Runs `msg` through this step and everything inside it.
    fn call(&self, msg: Incoming) -> impl Future<Output = Outcome> + Send;

    /// The built-in layers of this step, outermost first (none for a handler).
    fn layers() -> Vec<Layer>
    where
        Self: Sized;
}

impl Step for Arc<dyn Handler> {
    fn call(&self, msg: Incoming) -> impl Future<Output = Outcome> + Send {
        self.handle(msg)
    }

    fn layers() -> Vec<Layer> {
        Vec::new()
    }
}

/// `layer` followed by the layers inside `S`.
fn with_inner<S: Step>(layer: Layer) -> Vec<Layer> {
    let mut layers = vec![layer];
    layers.extend(S::layers());
    layers
}

/// Makes a built-in layer (generic over its [`Step`]) a [`Handler`] too, boxing its whole future
/// once, where a chain is handed to the consumer or used on its own.
macro_rules! handler_from_step {
    ($layer:ident) => {
        impl<S: $crate::middleware::Step> $crate::Handler for $layer<S> {
            fn handle<'life0, 'async_trait>(
                &'life0 self,
                msg: $crate::Incoming,
            ) -> ::std::pin::Pin<
                Box<dyn ::std::future::Future<Output = $crate::Outcome> + Send + 'async_trait>,
            >
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin($crate::middleware::Step::call(self, msg))
            }
        }
    };
}
pub(crate) use handler_from_step;

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

    #[test]
    fn the_consumers_chain_nests_the_layers_in_their_order() {
        use super::Step as _;
        // The order is not vacuous: a chain nested otherwise lists otherwise.
        type Swapped = super::timeout::Timeout<super::measure::Measure>;
        assert_eq!(crate::consumer::Chain::layers(), super::CHAIN);
        assert_eq!(
            Swapped::layers(),
            [super::Layer::Timeout, super::Layer::Measure]
        );
    }
}
