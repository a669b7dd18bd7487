//! The in-memory [`Broker`] for a single node.
//!
//! Streams live in sharded maps; the shard lock is held while a publication gets its
//! offset and is handed to the node's [`BrokerEvents`], which is what keeps per-channel
//! order (the handler only enqueues, so the lock is held for microseconds per
//! subscriber). A new epoch is drawn for each stream created, so a restarted process
//! never claims to continue an old stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::broker::{Broker, BrokerError, BrokerEvents, PublishOptions};
use crate::protocol::{ClientInfo, Publication, StreamPosition};
use crate::stream::{ChannelStream, HistoryFilter};

const SHARDS: usize = 64;
const DEFAULT_META_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub struct MemoryBroker {
    /// A plain `std` mutex per shard: it is never held across an `.await`.
    shards: Vec<Mutex<Shard>>,
    events: OnceLock<Arc<dyn BrokerEvents>>,
}

#[derive(Default)]
struct Shard {
    streams: HashMap<String, ChannelStream>,
    idempotent: HashMap<(String, String), (Instant, Option<StreamPosition>)>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    pub fn new() -> Self {
        MemoryBroker {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            events: OnceLock::new(),
        }
    }

    fn shard(&self, channel: &str) -> std::sync::MutexGuard<'_, Shard> {
        let index = shard_index(channel, SHARDS);
        // A poisoned lock means a panic happened while holding it; the map itself is
        // still consistent (every mutation is a single insert/remove), so carry on.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn events(&self) -> Option<&Arc<dyn BrokerEvents>> {
        self.events.get()
    }
}

/// FNV-1a: stable, fast, good enough to spread channel names over shards.
pub(crate) fn shard_index(key: &str, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in key.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    (hash % shards as u64) as usize
}

fn new_epoch() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

fn meta_ttl_or_default(ttl: Duration) -> Duration {
    if ttl.is_zero() { DEFAULT_META_TTL } else { ttl }
}

fn stream_for<'a>(
    shard: &'a mut Shard,
    channel: &str,
    now: Instant,
    meta_ttl: Duration,
) -> &'a mut ChannelStream {
    let expired = shard
        .streams
        .get(channel)
        .is_some_and(|s| s.is_expired(now));
    if expired {
        shard.streams.remove(channel);
    }
    shard
        .streams
        .entry(channel.to_owned())
        .or_insert_with(|| ChannelStream::new(new_epoch(), now, meta_ttl))
}

#[async_trait]
impl Broker for MemoryBroker {
    fn start(&self, events: Arc<dyn BrokerEvents>) {
        let _ = self.events.set(events);
    }

    async fn subscribe(&self, _channel: &str) -> Result<(), BrokerError> {
        Ok(())
    }

    async fn unsubscribe(&self, _channel: &str) -> Result<(), BrokerError> {
        Ok(())
    }

    async fn publish(
        &self,
        channel: &str,
        publication: Publication,
        options: &PublishOptions,
    ) -> Result<Option<StreamPosition>, BrokerError> {
        let now = Instant::now();
        let mut shard = self.shard(channel);
        if let Some(key) = &options.idempotency_key {
            shard.idempotent.retain(|_, (expires, _)| *expires > now);
            if let Some((_, position)) = shard.idempotent.get(&(channel.to_owned(), key.clone())) {
                return Ok(position.clone());
            }
        }
        let mut limits = options.limits();
        limits.meta_ttl = meta_ttl_or_default(limits.meta_ttl);
        let (publication, position) = if limits.size > 0 && !limits.ttl.is_zero() {
            stream_for(&mut shard, channel, now, limits.meta_ttl).append(publication, now, limits)
        } else {
            (Arc::new(publication), None)
        };
        if let Some(key) = &options.idempotency_key {
            shard.idempotent.insert(
                (channel.to_owned(), key.clone()),
                (now + options.idempotent_result_ttl, position.clone()),
            );
        }
        // Delivered while the shard lock is held: this is what orders a channel's
        // publications for every subscriber.
        if let Some(events) = self.events() {
            events.on_publication(channel, &publication);
        }
        Ok(position)
    }

    async fn publish_join(&self, channel: &str, info: &ClientInfo) -> Result<(), BrokerError> {
        let _shard = self.shard(channel);
        if let Some(events) = self.events() {
            events.on_join(channel, info);
        }
        Ok(())
    }

    async fn publish_leave(&self, channel: &str, info: &ClientInfo) -> Result<(), BrokerError> {
        let _shard = self.shard(channel);
        if let Some(events) = self.events() {
            events.on_leave(channel, info);
        }
        Ok(())
    }

    async fn history(
        &self,
        channel: &str,
        filter: &HistoryFilter,
        meta_ttl: Duration,
    ) -> Result<(Vec<Arc<Publication>>, StreamPosition), BrokerError> {
        let now = Instant::now();
        let mut shard = self.shard(channel);
        let stream = stream_for(&mut shard, channel, now, meta_ttl_or_default(meta_ttl));
        stream
            .read(filter, now)
            .map_err(|_| BrokerError::Unrecoverable)
    }

    async fn remove_history(&self, channel: &str) -> Result<(), BrokerError> {
        if let Some(stream) = self.shard(channel).streams.get_mut(channel) {
            stream.clear_history();
        }
        Ok(())
    }
}
