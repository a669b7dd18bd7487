//! The subscriber map and fan-out.
//!
//! Channels are spread over [`SHARDS`] shards, each a plain `std` mutex over a map from
//! channel name to its subscribers (never held across an `.await`). A publication is
//! encoded once into [`Bytes`]; each subscriber's queue gets a reference-counted clone of
//! the same bytes, so delivering to 19,000 subscribers costs 19,000 pointer copies and
//! wake-ups, not 19,000 encodings.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

use crate::broker::BrokerEvents;
use crate::broker_memory::shard_index;
use crate::metrics::Metrics;
use crate::outbound::{Outbound, Pushed};
use crate::protocol::{self, ClientInfo, JoinLeave, Publication};

pub const SHARDS: usize = 64;

/// What the hub and the server API know of a connection; its task holds the rest.
pub struct ConnHandle {
    /// Process-unique key, cheaper than the client ID string in maps.
    pub key: u64,
    /// The client ID sent to the client in the connect reply.
    pub client_id: String,
    /// Set once when the connect command succeeds.
    pub user: OnceLock<String>,
    pub outbound: Outbound,
}

impl ConnHandle {
    pub fn new(client_id: String, queue_cap: usize) -> Self {
        static NEXT_KEY: AtomicU64 = AtomicU64::new(1);
        ConnHandle {
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            client_id,
            user: OnceLock::new(),
            outbound: Outbound::new(queue_cap),
        }
    }

    pub fn user(&self) -> &str {
        self.user.get().map_or("", String::as_str)
    }
}

/// The subscribers of one channel on this node. A vector for fast iteration plus an
/// index for O(1) removal.
#[derive(Default)]
struct ChannelSubscribers {
    conns: Vec<Subscriber>,
    index: HashMap<u64, usize>,
}

struct Subscriber {
    conn: Arc<ConnHandle>,
    /// Wants join and leave pushes.
    join_leave: bool,
}

type Shard = HashMap<String, ChannelSubscribers>;

pub struct Hub {
    shards: Vec<Mutex<Shard>>,
    metrics: Arc<Metrics>,
}

impl Hub {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Hub {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            metrics,
        }
    }

    fn shard(&self, channel: &str) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[shard_index(channel, SHARDS)]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a subscriber. Returns `(added, first)`: `added` is false when it was already
    /// there; `first` is true when it is the channel's first subscriber on this node (the
    /// caller then subscribes the node at the broker).
    pub fn add(&self, channel: &str, conn: &Arc<ConnHandle>, join_leave: bool) -> (bool, bool) {
        let mut shard = self.shard(channel);
        let subs = shard.entry(channel.to_owned()).or_default();
        if subs.index.contains_key(&conn.key) {
            return (false, false);
        }
        let first = subs.conns.is_empty();
        subs.index.insert(conn.key, subs.conns.len());
        subs.conns.push(Subscriber {
            conn: conn.clone(),
            join_leave,
        });
        drop(shard);
        self.metrics.subscriptions.inc();
        (true, first)
    }

    /// Removes a subscriber. Returns true when the channel has no subscriber left here.
    pub fn remove(&self, channel: &str, conn_key: u64) -> bool {
        let mut shard = self.shard(channel);
        let Some(subs) = shard.get_mut(channel) else {
            return false;
        };
        let Some(position) = subs.index.remove(&conn_key) else {
            return false;
        };
        subs.conns.swap_remove(position);
        if let Some(moved) = subs.conns.get(position) {
            subs.index.insert(moved.conn.key, position);
        }
        let last = subs.conns.is_empty();
        if last {
            shard.remove(channel);
        }
        drop(shard);
        self.metrics.subscriptions.dec();
        last
    }

    /// Channels with at least one subscriber here, with their subscriber counts.
    pub fn channels(&self) -> Vec<(String, usize)> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            all.extend(
                shard
                    .iter()
                    .map(|(name, subs)| (name.clone(), subs.conns.len())),
            );
        }
        all
    }

    pub fn channel_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Queues `frame` for every subscriber of `channel` (only those that want join/leave
    /// pushes when `join_leave`). Publications carry their offset (0 for joins, leaves
    /// and publications without history) so a syncing subscription can hold them aside.
    fn deliver(&self, channel: &str, offset: u64, join_leave: bool, frame: &Bytes) {
        let shard = self.shard(channel);
        let Some(subs) = shard.get(channel) else {
            return;
        };
        let mut delivered = 0u64;
        let mut slow = 0u64;
        let mut dropped = 0u64;
        for sub in &subs.conns {
            if join_leave && !sub.join_leave {
                continue;
            }
            // Joins and leaves go through the same hold as publications so a subscriber
            // never sees one before its subscribe reply.
            let pushed = sub.conn.outbound.push_publication(channel, offset, frame);
            match pushed {
                Pushed::Queued => delivered += 1,
                Pushed::Overflow { dropped: frames } => {
                    slow += 1;
                    dropped += frames as u64;
                }
                Pushed::Closed => {}
            }
        }
        drop(shard);
        self.metrics.messages_out.inc_by(delivered);
        if slow > 0 {
            self.metrics.slow_disconnects.inc_by(slow);
            self.metrics.queue_drops.inc_by(dropped);
        }
    }
}

impl BrokerEvents for Hub {
    fn on_publication(&self, channel: &str, publication: &Arc<Publication>) {
        let frame = protocol::encode_publication_push(channel, publication);
        self.deliver(channel, publication.offset, false, &frame);
    }

    fn on_join(&self, channel: &str, info: &ClientInfo) {
        let frame = protocol::encode_push(channel, "join", &JoinLeave { info });
        self.deliver(channel, 0, true, &frame);
    }

    fn on_leave(&self, channel: &str, info: &ClientInfo) {
        let frame = protocol::encode_push(channel, "leave", &JoinLeave { info });
        self.deliver(channel, 0, true, &frame);
    }
}
