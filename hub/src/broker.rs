//! The [`Broker`]: where publications get their offsets, history is kept, and from where
//! every hub node learns about publications in the channels its clients are subscribed to.
//!
//! The in-memory broker ([`crate::broker_memory::MemoryBroker`]) serves one node; a Redis
//! broker (for several hub nodes) implements the same trait and must pass the same
//! conformance tests (`hub/tests/broker_conformance.rs`).
//!
//! # Guarantees every implementation gives
//! - **Ordering per channel**: the [`BrokerEvents`] handler sees the publications of one
//!   channel in offset order, each once, and never two calls for the same channel at the
//!   same time.
//! - **Offsets**: a channel's publications kept in history get offsets 1, 2, 3, … with no
//!   gap within an epoch; [`Broker::publish`] returns the position it assigned. A
//!   publication not kept (no history, or `skip_history`) gets no offset (0) and no
//!   position, and does not move the stream. The epoch changes
//!   whenever the broker may have lost the stream (restart of an in-memory broker, expiry
//!   of the stream's meta, data loss in Redis).
//! - **History**: the newest `history_size` publications younger than `history_ttl` are
//!   kept; a read with `since` either returns every publication after that position or
//!   fails with [`BrokerError::Unrecoverable`] — never a partial list.
//! - **Delivery**: a publication that `publish` acknowledged is in history (when history
//!   is on) before any subscriber sees it, so a client that subscribes with recovery
//!   either gets it in the subscribe reply or as a live push (the hub merges the two).
//! - **Idempotency**: a publish with an idempotency key seen within
//!   `idempotent_result_ttl` is not published again; the first result is returned.
//! - Join and leave events are not stored; they are delivered at most once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::protocol::{ClientInfo, Publication, StreamPosition};
use crate::stream::{HistoryFilter, HistoryLimits};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The `since` position of a history read is not covered by history.
    #[error("unrecoverable position")]
    Unrecoverable,
    /// The broker could not be reached or failed.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
}

/// How a publication is kept.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    pub history_size: usize,
    pub history_ttl: Duration,
    pub history_meta_ttl: Duration,
    pub idempotency_key: Option<String>,
    pub idempotent_result_ttl: Duration,
}

impl PublishOptions {
    pub fn limits(&self) -> HistoryLimits {
        HistoryLimits {
            size: self.history_size,
            ttl: self.history_ttl,
            meta_ttl: self.history_meta_ttl,
        }
    }
}

/// Receives what the broker delivers to this node. Called synchronously by the broker;
/// implementations only enqueue (they must not block).
pub trait BrokerEvents: Send + Sync + 'static {
    fn on_publication(&self, channel: &str, publication: &Arc<Publication>);
    fn on_join(&self, channel: &str, info: &ClientInfo);
    fn on_leave(&self, channel: &str, info: &ClientInfo);
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Connects the broker to the node's event handler. Called once, before any other
    /// method.
    fn start(&self, events: Arc<dyn BrokerEvents>);

    /// This node has a subscriber in `channel` now: deliver its events here.
    async fn subscribe(&self, channel: &str) -> Result<(), BrokerError>;

    /// This node has no subscriber in `channel` any more.
    async fn unsubscribe(&self, channel: &str) -> Result<(), BrokerError>;

    /// Keeps the publication in history per `options` with the next offset, and
    /// delivers it to every node subscribed to the channel. Returns the position, or
    /// `None` when the publication was not kept in history.
    async fn publish(
        &self,
        channel: &str,
        publication: Publication,
        options: &PublishOptions,
    ) -> Result<Option<StreamPosition>, BrokerError>;

    async fn publish_join(&self, channel: &str, info: &ClientInfo) -> Result<(), BrokerError>;

    async fn publish_leave(&self, channel: &str, info: &ClientInfo) -> Result<(), BrokerError>;

    /// Reads history and the current stream position. `meta_ttl` is the namespace's
    /// `history_meta_ttl`, used when the read creates the stream.
    async fn history(
        &self,
        channel: &str,
        filter: &HistoryFilter,
        meta_ttl: Duration,
    ) -> Result<(Vec<Arc<Publication>>, StreamPosition), BrokerError>;

    /// Drops the channel's history; offsets and epoch stay.
    async fn remove_history(&self, channel: &str) -> Result<(), BrokerError>;
}
