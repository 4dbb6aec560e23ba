//! Topic → handler, checked against the catalog.

use std::collections::BTreeMap;
use std::sync::Arc;

use evkit_schema::{Catalog, Contract};

use crate::middleware::Middleware;
use crate::{Error, Handler};

/// One handler per catalog topic, plus the layers every handler gets.
///
/// [`Router::build`] fails, listing every problem, when a routed topic is not in the catalog, a
/// topic is routed twice, or a topic passed to [`Router::subscribe`] has no handler.
pub struct Router {
    catalog: Arc<Catalog>,
    routes: BTreeMap<String, Arc<dyn Handler>>,
    layers: Vec<Arc<dyn Middleware>>,
    subscribe: Option<Vec<String>>,
    problems: Vec<String>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("topics", &self.routes.keys().collect::<Vec<_>>())
            .field("layers", &self.layers.len())
            .field("subscribe", &self.subscribe)
            .finish_non_exhaustive()
    }
}

/// A routed topic: its contract and its handler with the user's layers applied.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) contract: Arc<Contract>,
    pub(crate) handler: Arc<dyn Handler>,
}

impl Router {
    /// An empty router over `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Router {
            catalog,
            routes: BTreeMap::new(),
            layers: Vec::new(),
            subscribe: None,
            problems: Vec::new(),
        }
    }

    /// Routes catalog topic `topic` (its name in `topics.yaml`) to `handler`.
    #[must_use]
    pub fn route(mut self, topic: &str, handler: impl Handler) -> Self {
        if self.catalog.topic(topic).is_err() {
            self.problems.push(format!(
                "topic `{topic}` is not in the catalog at {}",
                self.catalog.dir().display()
            ));
        }
        if self
            .routes
            .insert(topic.to_owned(), Arc::new(handler))
            .is_some()
        {
            self.problems
                .push(format!("topic `{topic}` is routed twice"));
        }
        self
    }

    /// Adds a layer around every handler (inside the built-in chain: it sees validated messages).
    /// The first layer added is the outermost.
    #[must_use]
    pub fn layer(mut self, layer: impl Middleware) -> Self {
        self.layers.push(Arc::new(layer));
        self
    }

    /// Subscribes to exactly these topics instead of every routed one; each must have a handler.
    #[must_use]
    pub fn subscribe(mut self, topics: &[&str]) -> Self {
        self.subscribe = Some(topics.iter().map(|t| (*t).to_owned()).collect());
        self
    }

    /// Checks the routes against the catalog and the subscription.
    pub fn build(mut self) -> Result<Routes, Error> {
        let topics = self
            .subscribe
            .take()
            .unwrap_or_else(|| self.routes.keys().cloned().collect());
        for t in &topics {
            if !self.routes.contains_key(t) {
                self.problems
                    .push(format!("subscribed topic `{t}` has no handler"));
            }
        }
        if topics.is_empty() {
            self.problems.push("no topic is routed".to_owned());
        }
        if !self.problems.is_empty() {
            return Err(Error::Router(self.problems));
        }
        let mut routes = BTreeMap::new();
        for t in topics {
            let Some(handler) = self.routes.get(&t) else {
                continue;
            };
            let contract = Arc::clone(self.catalog.contract(&t)?);
            let mut handler = Arc::clone(handler);
            for layer in self.layers.iter().rev() {
                handler = layer.wrap(handler);
            }
            routes.insert(t, Route { contract, handler });
        }
        Ok(Routes {
            catalog: self.catalog,
            routes,
        })
    }
}

/// A checked router, ready for a [`crate::Consumer`].
#[derive(Clone)]
pub struct Routes {
    catalog: Arc<Catalog>,
    routes: BTreeMap<String, Route>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("topics", &self.routes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Routes {
    /// The catalog topics to subscribe to.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The same routes with `layer` around every handler, outside the layers the router added
    /// (still inside the built-in chain: it sees validated messages). A test harness uses it
    /// to observe what a service's real handlers do without changing them.
    #[must_use]
    pub fn layer(mut self, layer: &dyn Middleware) -> Routes {
        for route in self.routes.values_mut() {
            route.handler = layer.wrap(Arc::clone(&route.handler));
        }
        self
    }

    /// The handler routed for catalog topic `topic` (with its layers), to run in-process.
    pub fn handler(&self, topic: &str) -> Option<Arc<dyn Handler>> {
        self.routes.get(topic).map(|r| Arc::clone(&r.handler))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Route)> {
        self.routes.iter()
    }
}
