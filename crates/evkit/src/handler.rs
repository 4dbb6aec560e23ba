//! What user code implements ([`Handler`]) and returns ([`Outcome`]).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use evkit_schema::{Checked, Identity, Violation};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Envelope;

/// A consumed message on its way to a handler: the envelope and, once the validate layer has
/// run, what the contract found in it (the event, identity, request id, CloudEvents attributes).
///
/// Cheap to clone (two `Arc`s).
#[derive(Clone)]
pub struct Incoming {
    envelope: Arc<Envelope>,
    topic: Arc<str>,
    checked: Option<Arc<Checked>>,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("topic", &self.topic)
            .field("envelope", &self.envelope)
            .field("validated", &self.checked.is_some())
            .finish()
    }
}

impl Incoming {
    /// A message of catalog topic `topic` (the name in `topics.yaml`, which may differ from the
    /// name on the cluster).
    pub fn new(topic: impl Into<Arc<str>>, envelope: Envelope) -> Self {
        Incoming {
            envelope: Arc::new(envelope),
            topic: topic.into(),
            checked: None,
        }
    }

    /// The same message with the contract's findings attached.
    #[must_use]
    pub fn validated(&self, checked: Checked) -> Self {
        Incoming {
            envelope: Arc::clone(&self.envelope),
            topic: Arc::clone(&self.topic),
            checked: Some(Arc::new(checked)),
        }
    }

    /// The record as consumed.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The catalog topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The validated event (the payload, or a CloudEvent's `data`); `None` before validation.
    pub fn event(&self) -> Option<&Value> {
        self.checked.as_ref().map(|c| &c.payload)
    }

    /// What the contract check found; `None` before validation.
    pub fn checked(&self) -> Option<&Checked> {
        self.checked.as_deref()
    }

    /// The caller's identity (from `x-rh-identity`), when the message carried one.
    pub fn identity(&self) -> Option<&Identity> {
        self.checked.as_ref().and_then(|c| c.identity.as_ref())
    }

    /// The `x-rh-insights-request-id`, when present.
    pub fn request_id(&self) -> Option<&str> {
        self.checked.as_ref().and_then(|c| c.request_id.as_deref())
    }

    /// Decodes the validated event into a generated type. Integral floats (`1.0`, `1e3`), which
    /// JSON Schema counts as integers, decode into integer fields (see [`evkit_schema::decode`]).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        let Some(event) = self.event() else {
            return Err(Failure::new(
                Reason::Decode,
                "the message was not validated before decoding",
            ));
        };
        evkit_schema::decode::<T>(event).map_err(|e| {
            Failure::new(
                Reason::Decode,
                format!(
                    "event does not decode into {}: {e}",
                    std::any::type_name::<T>()
                ),
            )
        })
    }
}

/// Why a message failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The message broke its contract (key, headers, envelope or payload).
    Validation,
    /// The event is valid but does not decode into the handler's type.
    Decode,
    /// The handler said the message can never succeed (poison).
    Rejected,
    /// The handler reported a transient error.
    Error,
    /// The handler took longer than its timeout.
    Timeout,
    /// The handler panicked.
    Panic,
}

impl Reason {
    /// Every reason, in the order the docs list them.
    pub const ALL: [Reason; 6] = [
        Reason::Validation,
        Reason::Decode,
        Reason::Rejected,
        Reason::Error,
        Reason::Timeout,
        Reason::Panic,
    ];

    /// The reason whose [`Reason::as_str`] is `s`.
    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The value of the `evkit-dlq-reason` header and of the `reason` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Validation => "validation",
            Reason::Decode => "decode",
            Reason::Rejected => "rejected",
            Reason::Error => "error",
            Reason::Timeout => "timeout",
            Reason::Panic => "panic",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed attempt: the reason, a message without secrets, the violations of a validation
/// failure, and how many attempts were made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Why.
    pub reason: Reason,
    /// What happened (no payload values, no identity).
    pub message: String,
    /// For [`Reason::Validation`]: every rule the message broke.
    pub violations: Vec<Violation>,
    /// Handler attempts made (0 when the handler never ran).
    pub attempts: u32,
}

impl Failure {
    /// A failure with a reason and a message.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Failure {
            reason,
            message: message.into(),
            violations: Vec::new(),
            attempts: 0,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

/// What a handler (or a layer) says about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Handled: the offset may be committed.
    Ack,
    /// A transient failure: try again after a backoff; dead-letter after the last retry.
    Retry(Failure),
    /// A permanent failure (poison): dead-letter now, without retrying.
    Reject(Failure),
}

impl Outcome {
    /// A transient handler error.
    pub fn retry(message: impl Into<String>) -> Outcome {
        Outcome::Retry(Failure::new(Reason::Error, message))
    }

    /// A message that can never be handled.
    pub fn reject(message: impl Into<String>) -> Outcome {
        Outcome::Reject(Failure::new(Reason::Rejected, message))
    }

    /// `"ack"`, `"retry"` or `"reject"` (the `outcome` metric label).
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ack => "ack",
            Outcome::Retry(_) => "retry",
            Outcome::Reject(_) => "reject",
        }
    }
}

impl<E: fmt::Display> From<Result<(), E>> for Outcome {
    /// `Ok` acknowledges; `Err` is a transient failure (retried, then dead-lettered).
    fn from(r: Result<(), E>) -> Self {
        match r {
            Ok(()) => Outcome::Ack,
            Err(e) => Outcome::retry(e.to_string()),
        }
    }
}

/// User code for one topic. Implement it on a struct holding your service's state, or wrap a
/// closure with [`handler_fn`] or [`typed`].
///
/// A handler may be called more than once for the same message (retries, redelivery after a
/// crash): make it idempotent.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles one message.
    async fn handle(&self, msg: Incoming) -> Outcome;
}

/// Hands the shared handler's own future back, instead of boxing a second future around it
/// (what `#[async_trait]` would do here): every layer of the consumer's chain calls its inner
/// layer through an `Arc`, so this runs seven times per message.
impl<H: Handler + ?Sized> Handler for Arc<H> {
    fn handle<'life0, 'async_trait>(
        &'life0 self,
        msg: Incoming,
    ) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        (**self).handle(msg)
    }
}

/// A handler from an async closure that sees the [`Incoming`] message.
pub fn handler_fn<F, Fut>(f: F) -> FnHandler<F>
where
    F: Fn(Incoming) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    FnHandler(f)
}

/// See [`handler_fn`].
pub struct FnHandler<F>(F);

#[async_trait::async_trait]
impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(Incoming) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    async fn handle(&self, msg: Incoming) -> Outcome {
        (self.0)(msg).await
    }
}

/// A handler that receives the topic's generated type, decoded after validation. A valid event
/// that does not decode is rejected with [`Reason::Decode`].
///
/// ```
/// use evkit::{Incoming, Outcome, typed};
/// use evkit_events::generated::platform_evkit_todo_created::Event as TodoCreated;
///
/// let handler = typed(|todo: TodoCreated, _msg: Incoming| async move {
///     println!("todo {} for org {}", todo.id, todo.org_id.as_str());
///     Outcome::Ack
/// });
/// # let _ = handler;
/// ```
pub fn typed<T, F, Fut>(f: F) -> TypedHandler<T, F>
where
    T: DeserializeOwned + Send + 'static,
    F: Fn(T, Incoming) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    TypedHandler(f, PhantomData)
}

/// See [`typed`].
pub struct TypedHandler<T, F>(F, PhantomData<fn() -> T>);

#[async_trait::async_trait]
impl<T, F, Fut> Handler for TypedHandler<T, F>
where
    T: DeserializeOwned + Send + 'static,
    F: Fn(T, Incoming) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    async fn handle(&self, msg: Incoming) -> Outcome {
        match msg.decode::<T>() {
            Ok(event) => (self.0)(event, msg).await,
            Err(failure) => Outcome::Reject(failure),
        }
    }
}

/// An empty message on topic `t`, partition 0, offset 0, for the middleware unit tests.
#[cfg(test)]
pub(crate) fn test_message() -> Incoming {
    Incoming::new(
        "t",
        Envelope {
            topic: "t".to_owned(),
            partition: 0,
            offset: 0,
            key: None,
            headers: Vec::new(),
            payload: None,
            timestamp_ms: None,
        },
    )
}
