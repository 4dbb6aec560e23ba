//! The contract check before dispatch.

use std::sync::Arc;

use evkit_schema::Contract;

use super::{Layer, Step};
use crate::metrics::TopicMetrics;
use crate::{Failure, Handler, Incoming, Outcome, Reason};

/// Checks key, headers, envelope and payload against the topic's contract; passes the message
/// on with what the check found ([`Incoming::event`], identity, request id), or rejects it with
/// [`Reason::Validation`] and every violation (never retried: a broken message stays broken).
///
/// On a `wire: confluent` topic whose only violation is a schema id the contract does not know,
/// the contract's [`SchemaIdLookup`](evkit_schema::confluent::SchemaIdLookup) (the registry) is
/// asked first: an id registered since the contract read its subject is added and the message
/// checked again.
pub struct Validate<S = Arc<dyn Handler>> {
    inner: S,
    contract: Arc<Contract>,
    metrics: Option<Arc<TopicMetrics>>,
}

impl Validate {
    /// Wraps `inner`; counts `evkit_valid_total`/`evkit_invalid_total` when given metrics.
    pub fn new(
        inner: Arc<dyn Handler>,
        contract: Arc<Contract>,
        metrics: Option<Arc<TopicMetrics>>,
    ) -> Self {
        Validate::around(inner, contract, metrics)
    }
}

impl<S: Step> Validate<S> {
    /// Wraps `inner`, another layer or a handler.
    pub fn around(inner: S, contract: Arc<Contract>, metrics: Option<Arc<TopicMetrics>>) -> Self {
        Validate {
            inner,
            contract,
            metrics,
        }
    }
}

super::handler_from_step!(Validate);

impl<S: Step> Step for Validate<S> {
    fn layers() -> Vec<Layer> {
        super::with_inner::<S>(Layer::Validate)
    }

    async fn call(&self, msg: Incoming) -> Outcome {
        let mut checked = self.contract.check(&msg.envelope().message());
        if let Err(e) = &checked
            && let Some(id) = unknown_schema_id(e, &msg)
            && let Some(lookup) = self.contract.schema_id_lookup()
            && lookup.is_registered(self.contract.topic(), id).await
        {
            self.contract.add_registered_schema_id(id);
            checked = self.contract.check(&msg.envelope().message());
        }
        match checked {
            Ok(checked) => {
                if let Some(m) = &self.metrics {
                    m.count_valid();
                }
                self.inner.call(msg.validated(checked)).await
            }
            Err(e) => {
                if let Some(m) = &self.metrics {
                    m.count_invalid();
                }
                let mut failure = Failure::new(Reason::Validation, e.to_string());
                failure.violations = e.violations().to_vec();
                Outcome::Reject(failure)
            }
        }
    }
}

/// The framed schema id, when it is the message's only fault.
fn unknown_schema_id(e: &evkit_schema::Error, msg: &Incoming) -> Option<u32> {
    let violations = e.violations();
    if violations.is_empty() || violations.iter().any(|v| v.rule != "schema-id") {
        return None;
    }
    let payload = msg.envelope().payload.as_deref()?;
    evkit_schema::confluent::unframe(payload)
        .ok()
        .map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::{Envelope, handler_fn};

    fn contract() -> Arc<Contract> {
        let catalog =
            evkit_schema::Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))
                .unwrap();
        Arc::clone(catalog.contract("platform.evkit.todo-created").unwrap())
    }

    fn envelope(payload: &[u8], identity: bool) -> Envelope {
        let mut headers = vec![(
            "x-rh-insights-request-id".to_owned(),
            Some(b"req-1".to_vec()),
        )];
        if identity {
            headers.push((
                "x-rh-identity".to_owned(),
                Some(evkit_schema::encode_identity("12345", "User").into_bytes()),
            ));
        }
        Envelope {
            topic: "platform.evkit.todo-created".to_owned(),
            partition: 0,
            offset: 7,
            key: Some(b"12345".to_vec()),
            headers,
            payload: Some(payload.to_vec()),
            timestamp_ms: None,
        }
    }

    fn layer() -> Validate {
        let inner = handler_fn(|msg: Incoming| async move {
            assert_eq!(msg.identity().unwrap().org_id(), "12345");
            assert_eq!(msg.request_id(), Some("req-1"));
            assert_eq!(msg.event().unwrap()["title"], "ok");
            Outcome::Ack
        });
        Validate::new(Arc::new(inner), contract(), None)
    }

    #[tokio::test]
    async fn a_valid_message_reaches_the_handler_with_its_findings() {
        let msg = Incoming::new(
            "platform.evkit.todo-created",
            envelope(
                br#"{"id": 1, "org_id": "12345", "title": "ok", "created_at": "2026-11-01T09:30:00Z"}"#,
                true,
            ),
        );
        assert_eq!(layer().handle(msg).await, Outcome::Ack);
    }

    #[tokio::test]
    async fn an_invalid_message_is_rejected_with_its_paths() {
        let msg = Incoming::new(
            "platform.evkit.todo-created",
            envelope(
                br#"{"id": 1.5, "org_id": "12345", "title": "ok", "created_at": "2026-11-01T09:30:00Z"}"#,
                false,
            ),
        );
        let Outcome::Reject(f) = layer().handle(msg).await else {
            panic!("not rejected");
        };
        assert_eq!(f.reason, Reason::Validation);
        let paths: Vec<String> = f
            .violations
            .iter()
            .map(|v| format!("{}{}", v.part, v.instance_path))
            .collect();
        assert!(paths.contains(&"payload/id".to_owned()), "{paths:?}");
        assert!(
            paths.iter().any(|p| p.contains("x-rh-identity")),
            "{paths:?}"
        );
        assert!(!f.message.contains("1.5"), "value leaked: {}", f.message);
    }
}
