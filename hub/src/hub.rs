//! The subscriber map and fan-out.
//!
//! Channels are spread over [`SHARDS`] shards, each a plain `std` mutex over a map from
//! channel name to its subscribers (never held across an `.await`). A publication is
//! encoded once into [`Bytes`]; each subscriber's queue gets a reference-counted clone of
//! the same bytes, so delivering to 19,000 subscribers costs 19,000 pointer copies and
//! wake-ups, not 19,000 encodings.
//!
//! # Batched channels
//! In a namespace with `batch_max_delay`, a channel's publications are gathered (in the
//! channel's entry, under its shard lock) and go out together when the first of them has
//! waited that long or the batch holds `batch_max_size`: joined once into one frame, each
//! subscriber's queue gets one entry and one wake-up for the whole batch. Invariants:
//! - a subscriber receives exactly the publications it would have received without
//!   batching, in order: a batch is cut at the subscriber's arrival (those published
//!   before it was added are left out, as they would have been), and a subscription
//!   being set up still holds the batch's publications aside one by one, with their
//!   offsets, so its subscribe reply and the batch never overlap;
//! - a join or leave push on a batched channel first sends the batch out, so pushes keep
//!   the order in which they happened;
//! - a batch whose channel loses its last subscriber is dropped with it (nobody to
//!   deliver to); a batch's timer finding a newer batch leaves it alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rootcast_config::ChannelConfig;

use crate::broker::BrokerEvents;
use crate::broker_memory::shard_index;
use crate::channel;
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
    /// Subscribers added so far; each remembers its number (see [`Subscriber::arrival`]).
    arrivals: u64,
    /// The namespace's batching, read when the channel's first subscriber arrives.
    batching: Option<Batching>,
    /// Publications gathered for the next batch (batched channels only).
    batch: Option<Batch>,
}

struct Subscriber {
    conn: Arc<ConnHandle>,
    /// Wants join and leave pushes.
    join_leave: bool,
    /// The channel's [`ChannelSubscribers::arrivals`] when this subscriber was added: a
    /// batched publication made before then is not for it.
    arrival: u64,
}

/// A namespace's `batch_max_delay` and `batch_max_size` (0 = no limit).
#[derive(Debug, Clone, Copy)]
struct Batching {
    max_delay: Duration,
    max_size: usize,
}

/// Publications of one channel waiting to go out together.
struct Batch {
    /// Tells this batch's timer apart from a later batch's.
    id: u64,
    publications: Vec<BatchedPublication>,
}

struct BatchedPublication {
    offset: u64,
    /// The channel's arrivals when it was published: subscribers with a higher
    /// [`Subscriber::arrival`] came after it.
    arrivals: u64,
    frame: Bytes,
}

type Shard = HashMap<String, ChannelSubscribers>;

pub struct Hub {
    shards: Vec<Mutex<Shard>>,
    metrics: Arc<Metrics>,
    /// Namespaces, for each channel's batching.
    channels: ChannelConfig,
    /// This hub, for the timers of batches.
    me: Weak<Hub>,
    next_batch: AtomicU64,
}

impl Hub {
    pub fn new(metrics: Arc<Metrics>, channels: ChannelConfig) -> Arc<Self> {
        Arc::new_cyclic(|me| Hub {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            metrics,
            channels,
            me: me.clone(),
            next_batch: AtomicU64::new(1),
        })
    }

    /// The batching of `channel`'s namespace; `None` when it delivers at once (or the
    /// name is not a valid channel, which cannot have subscribers).
    fn batching_of(&self, channel: &str) -> Option<Batching> {
        let options = channel::options_for(&self.channels, channel).ok()?;
        (!options.batch_max_delay.is_zero()).then_some(Batching {
            max_delay: options.batch_max_delay,
            max_size: options.batch_max_size,
        })
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
        let subs = shard
            .entry(channel.to_owned())
            .or_insert_with(|| ChannelSubscribers {
                batching: self.batching_of(channel),
                ..ChannelSubscribers::default()
            });
        if subs.index.contains_key(&conn.key) {
            return (false, false);
        }
        let first = subs.conns.is_empty();
        subs.arrivals += 1;
        subs.index.insert(conn.key, subs.conns.len());
        subs.conns.push(Subscriber {
            conn: conn.clone(),
            join_leave,
            arrival: subs.arrivals,
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
        let mut shard = self.shard(channel);
        let Some(subs) = shard.get_mut(channel) else {
            return;
        };
        if subs.batching.is_some() {
            if !join_leave {
                self.gather(channel, subs, offset, frame);
                return;
            }
            // A join or leave must not overtake the publications made before it.
            if let Some(batch) = subs.batch.take() {
                self.deliver_batch(channel, subs, batch);
            }
        }
        let mut tally = Tally::default();
        for sub in &subs.conns {
            if join_leave && !sub.join_leave {
                continue;
            }
            // Joins and leaves go through the same hold as publications so a subscriber
            // never sees one before its subscribe reply.
            tally.count(
                sub.conn.outbound.push_publication(channel, offset, frame),
                1,
            );
        }
        drop(shard);
        tally.record(&self.metrics);
    }

    /// Adds a publication to the channel's batch, starting the batch (and its timer) if
    /// there is none, and sends the batch out when it is full.
    fn gather(&self, channel: &str, subs: &mut ChannelSubscribers, offset: u64, frame: &Bytes) {
        let Some(batching) = subs.batching else {
            return;
        };
        let arrivals = subs.arrivals;
        let mut timed = true;
        let batch = subs.batch.get_or_insert_with(|| {
            let id = self.next_batch.fetch_add(1, Ordering::Relaxed);
            timed = self.start_timer(channel, id, batching.max_delay);
            Batch {
                id,
                publications: Vec::new(),
            }
        });
        batch.publications.push(BatchedPublication {
            offset,
            arrivals,
            frame: frame.clone(),
        });
        let full = batching.max_size > 0 && batch.publications.len() >= batching.max_size;
        // Without a runtime there is no timer: nothing may wait.
        if full || !timed {
            if let Some(batch) = subs.batch.take() {
                self.deliver_batch(channel, subs, batch);
            }
        }
    }

    /// Sends batch `id` of `channel` out after `delay`, unless it went out before;
    /// `false` when there is no runtime to wait on.
    fn start_timer(&self, channel: &str, id: u64, delay: Duration) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let hub = self.me.clone();
        let channel = channel.to_owned();
        runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(hub) = hub.upgrade() {
                hub.flush(&channel, id);
            }
        });
        true
    }

    /// The timer of batch `id` fired: send it out if it is still the channel's batch.
    fn flush(&self, channel: &str, id: u64) {
        let mut shard = self.shard(channel);
        let Some(subs) = shard.get_mut(channel) else {
            return;
        };
        if subs.batch.as_ref().is_none_or(|batch| batch.id != id) {
            return;
        }
        if let Some(batch) = subs.batch.take() {
            self.deliver_batch(channel, subs, batch);
        }
    }

    /// Queues a batch for every subscriber: one joined frame for those that were there
    /// before its first publication, the part published after their arrival for the
    /// others. Called with the channel's shard locked.
    fn deliver_batch(&self, channel: &str, subs: &ChannelSubscribers, batch: Batch) {
        let publications = batch.publications;
        let Some(first) = publications.first() else {
            return;
        };
        let joined = join_frames(&publications);
        let parts = || publications.iter().map(|p| (p.offset, &p.frame));
        let mut tally = Tally::default();
        for sub in &subs.conns {
            if sub.arrival <= first.arrivals {
                let pushed = sub.conn.outbound.push_batch(channel, &joined, parts());
                tally.count(pushed, publications.len() as u64);
                continue;
            }
            // Arrived while the batch was gathering: only what came after it.
            for publication in publications.iter().filter(|p| p.arrivals >= sub.arrival) {
                let pushed = sub.conn.outbound.push_publication(
                    channel,
                    publication.offset,
                    &publication.frame,
                );
                tally.count(pushed, 1);
            }
        }
        tally.record(&self.metrics);
    }
}

/// The publications of a batch as one frame: their frames joined with `\n`, as the
/// connection joins what it writes in one WebSocket message.
fn join_frames(publications: &[BatchedPublication]) -> Bytes {
    if let [only] = publications {
        return only.frame.clone();
    }
    let len = publications
        .iter()
        .map(|p| p.frame.len() + 1)
        .sum::<usize>();
    let mut joined = BytesMut::with_capacity(len);
    for (i, publication) in publications.iter().enumerate() {
        if i > 0 {
            joined.extend_from_slice(b"\n");
        }
        joined.extend_from_slice(&publication.frame);
    }
    joined.freeze()
}

/// What one delivery did, for the metrics.
#[derive(Default)]
struct Tally {
    /// Publications queued (a batch counts each of its publications).
    delivered: u64,
    /// Subscribers closed for being slow, and the frames dropped with them.
    slow: u64,
    dropped: u64,
}

impl Tally {
    fn count(&mut self, pushed: Pushed, publications: u64) {
        match pushed {
            Pushed::Queued => self.delivered += publications,
            Pushed::Overflow { dropped } => {
                self.slow += 1;
                self.dropped += dropped as u64;
            }
            Pushed::Closed => {}
        }
    }

    fn record(self, metrics: &Metrics) {
        metrics.messages_out.inc_by(self.delivered);
        if self.slow > 0 {
            metrics.slow_disconnects.inc_by(self.slow);
            metrics.queue_drops.inc_by(self.dropped);
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

#[cfg(test)]
mod tests {
    use rootcast_config::{Namespace, NamespaceOptions};

    use super::*;

    const DELAY: Duration = Duration::from_millis(50);

    /// A hub whose namespace `b` batches for [`DELAY`], at most 3 publications.
    fn hub() -> Arc<Hub> {
        let mut channels = ChannelConfig::default();
        channels.namespaces.push(Namespace {
            name: "b".to_owned(),
            options: NamespaceOptions {
                batch_max_delay: DELAY,
                batch_max_size: 3,
                ..NamespaceOptions::default()
            },
        });
        Hub::new(Arc::new(Metrics::new()), channels)
    }

    fn subscriber(hub: &Hub, channel: &str) -> Arc<ConnHandle> {
        let conn = Arc::new(ConnHandle::new(String::new(), 1 << 20));
        hub.add(channel, &conn, true);
        conn
    }

    fn publish(hub: &Hub, channel: &str, offset: u64) {
        let data = serde_json::value::to_raw_value(&offset).expect("raw JSON");
        let publication = Publication {
            data,
            info: None,
            offset,
            tags: None,
        };
        hub.on_publication(channel, &Arc::new(publication));
    }

    /// The offsets in what the connection would write now, and in how many queue entries.
    fn written(conn: &ConnHandle) -> (Vec<u64>, usize) {
        let drained = conn.outbound.drain(1 << 20);
        let text = std::str::from_utf8(&drained.payload).expect("UTF-8");
        let offsets = text
            .split('\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                let push: serde_json::Value = serde_json::from_str(line).expect("JSON");
                push["push"]["pub"]["offset"].as_u64().unwrap_or(0)
            })
            .collect();
        (offsets, drained.frames)
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_its_delay_then_goes_out_as_one_entry() {
        let hub = hub();
        let conn = subscriber(&hub, "b:room");
        publish(&hub, "b:room", 1);
        publish(&hub, "b:room", 2);
        assert_eq!(written(&conn), (vec![], 0), "held until the delay");
        tokio::time::sleep(DELAY + Duration::from_millis(1)).await;
        assert_eq!(written(&conn), (vec![1, 2], 1));
        assert_eq!(
            hub.metrics.messages_out.get(),
            2,
            "each publication counted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_goes_out_at_once_and_its_timer_leaves_the_next_alone() {
        let hub = hub();
        let conn = subscriber(&hub, "b:room");
        for offset in 1..=4 {
            publish(&hub, "b:room", offset);
        }
        assert_eq!(written(&conn), (vec![1, 2, 3], 1), "max size 3");
        // The first batch's timer fires first; the second batch (4, 5) waits for its own.
        tokio::time::sleep(DELAY / 2).await;
        publish(&hub, "b:room", 5);
        tokio::time::sleep(DELAY / 2 + Duration::from_millis(1)).await;
        assert_eq!(written(&conn), (vec![4, 5], 1), "its own timer sent it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscriber_added_during_a_batch_gets_only_what_came_after_it() {
        let hub = hub();
        let early = subscriber(&hub, "b:room");
        publish(&hub, "b:room", 1);
        let late = subscriber(&hub, "b:room");
        publish(&hub, "b:room", 2);
        tokio::time::sleep(DELAY + Duration::from_millis(1)).await;
        assert_eq!(written(&early), (vec![1, 2], 1));
        assert_eq!(written(&late), (vec![2], 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_join_push_sends_the_batch_first() {
        let hub = hub();
        let conn = subscriber(&hub, "b:room");
        publish(&hub, "b:room", 1);
        let info = ClientInfo {
            client: "c".to_owned(),
            user: "u".to_owned(),
            conn_info: None,
            chan_info: None,
        };
        hub.on_join("b:room", &info);
        let (offsets, entries) = written(&conn);
        assert_eq!(
            (offsets, entries),
            (vec![1, 0], 2),
            "publication, then the join"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_namespaces_deliver_at_once() {
        let hub = hub();
        let conn = subscriber(&hub, "room");
        publish(&hub, "room", 1);
        publish(&hub, "room", 2);
        assert_eq!(written(&conn), (vec![1, 2], 2));
    }

    #[test]
    fn without_a_runtime_nothing_waits() {
        let hub = hub();
        let conn = subscriber(&hub, "b:room");
        publish(&hub, "b:room", 1);
        assert_eq!(written(&conn), (vec![1], 1));
    }
}
