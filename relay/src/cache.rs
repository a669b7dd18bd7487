//! A per-stream packet cache: the last packets of one publisher stream, by original sequence
//! number.
//!
//! One cache per publisher stream ([`SourceKey`](crate::packet::SourceKey)), shared by every
//! viewer. A viewer that starts video shortly after a keyframe starts from the cached keyframe
//! and the packets after it (`ForwarderConfig::join_from_cache`). It does not answer NACKs:
//! str0m answers them from each viewer's own RTX cache and does not show them to the relay
//! (`relay/DESIGN.md` §2 and §10 say why, with the memory this costs). The payload is the
//! same `Arc<[u8]>` that was forwarded, so the cache holds no copies.
//!
//! The cache is a ring indexed by `seq % capacity` (capacity a power of two), bounded by count
//! and by age: a packet older than `max_age` is never returned, and [`PacketCache::prune`]
//! releases the payloads of expired packets. Inserting or looking up is O(1), with no
//! allocation after construction.

use std::time::{Duration, Instant};

use crate::packet::{Codec, Payload};

/// One cached packet (the header fields a replay needs, and the shared payload).
#[derive(Debug, Clone)]
pub struct CachedPacket {
    /// Extended original sequence number.
    pub seq: u64,
    /// Original RTP timestamp.
    pub timestamp: u32,
    /// Marker bit.
    pub marker: bool,
    /// Original payload type.
    pub payload_type: u8,
    /// The codec (decides codec-specific rewriting when the packet is replayed).
    pub codec: Codec,
    /// Whether the packet starts a keyframe.
    pub keyframe: bool,
    /// When the packet arrived from the publisher.
    pub received_at: Instant,
    /// The shared payload.
    pub payload: Payload,
}

/// Why a lookup found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMiss {
    /// Pushed out by newer packets (more than `capacity` behind the newest).
    Evicted,
    /// Older than `max_age`.
    Expired,
    /// Never arrived (lost upstream) or not yet.
    NotReceived,
}

/// Ring buffer of recent packets of one stream. See the module docs.
#[derive(Debug)]
pub struct PacketCache {
    slots: Vec<Option<CachedPacket>>,
    mask: u64,
    max_age: Duration,
    newest: Option<u64>,
}

impl PacketCache {
    /// A cache for `capacity` packets (rounded up to a power of two, at least 1) kept for at
    /// most `max_age`.
    pub fn new(capacity: usize, max_age: Duration) -> PacketCache {
        let capacity = capacity.max(1).next_power_of_two();
        PacketCache {
            slots: vec![None; capacity],
            mask: capacity as u64 - 1,
            max_age,
            newest: None,
        }
    }

    /// How many packets fit.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// How many packets are held (expired ones included until [`PacketCache::prune`]).
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.newest.is_none() || self.len() == 0
    }

    /// Stores a packet. A packet older than the one already in its slot is ignored.
    pub fn insert(&mut self, packet: CachedPacket) {
        let slot = &mut self.slots[(packet.seq & self.mask) as usize];
        if let Some(existing) = slot {
            if existing.seq > packet.seq {
                return;
            }
        }
        self.newest = Some(self.newest.map_or(packet.seq, |n| n.max(packet.seq)));
        *slot = Some(packet);
    }

    /// The packet with this extended sequence number, if still held and not older than
    /// `max_age` at `now`.
    pub fn get(&self, now: Instant, seq: u64) -> Result<&CachedPacket, CacheMiss> {
        let Some(newest) = self.newest else {
            return Err(CacheMiss::NotReceived);
        };
        if seq > newest {
            return Err(CacheMiss::NotReceived);
        }
        if newest - seq > self.mask {
            return Err(CacheMiss::Evicted);
        }
        match &self.slots[(seq & self.mask) as usize] {
            Some(p) if p.seq == seq => {
                if now.saturating_duration_since(p.received_at) > self.max_age {
                    Err(CacheMiss::Expired)
                } else {
                    Ok(p)
                }
            }
            _ => Err(CacheMiss::NotReceived),
        }
    }

    /// Releases packets older than `max_age` (their payloads are freed once no viewer's
    /// write still holds them).
    pub fn prune(&mut self, now: Instant) {
        for slot in &mut self.slots {
            if let Some(p) = slot {
                if now.saturating_duration_since(p.received_at) > self.max_age {
                    *slot = None;
                }
            }
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
        self.newest = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pkt(seq: u64, at: Instant) -> CachedPacket {
        CachedPacket {
            seq,
            timestamp: seq as u32 * 10,
            marker: false,
            payload_type: 96,
            codec: Codec::Vp8,
            keyframe: false,
            received_at: at,
            payload: Arc::from(seq.to_be_bytes().as_slice()),
        }
    }

    #[test]
    fn hits_by_sequence_number_with_the_same_payload() {
        let t0 = Instant::now();
        let mut c = PacketCache::new(10, Duration::from_secs(3));
        assert_eq!(c.capacity(), 16);
        assert!(c.is_empty());
        let p = pkt(70_000, t0);
        let payload = p.payload.clone();
        c.insert(p);
        let hit = c.get(t0, 70_000).unwrap();
        assert!(Arc::ptr_eq(&hit.payload, &payload));
        assert_eq!(c.get(t0, 70_001).unwrap_err(), CacheMiss::NotReceived);
        assert_eq!(c.get(t0, 69_999).unwrap_err(), CacheMiss::NotReceived);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn evicted_by_count_and_expired_by_age() {
        let t0 = Instant::now();
        let mut c = PacketCache::new(16, Duration::from_secs(1));
        for s in 0..40 {
            c.insert(pkt(s, t0 + Duration::from_millis(s * 10)));
        }
        assert_eq!(c.get(t0, 10).unwrap_err(), CacheMiss::Evicted);
        assert_eq!(c.get(t0, 24).unwrap().seq, 24);
        assert_eq!(c.len(), 16);
        let later = t0 + Duration::from_millis(24 * 10) + Duration::from_millis(1001);
        assert_eq!(c.get(later, 24).unwrap_err(), CacheMiss::Expired);
        assert_eq!(c.get(later, 39).unwrap().seq, 39);
        c.prune(later);
        assert!(c.len() < 16);
        assert_eq!(c.get(later, 24).unwrap_err(), CacheMiss::NotReceived);
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.get(later, 39).unwrap_err(), CacheMiss::NotReceived);
    }

    #[test]
    fn a_late_old_packet_never_overwrites_a_newer_one() {
        let t0 = Instant::now();
        let mut c = PacketCache::new(4, Duration::from_secs(1));
        c.insert(pkt(8, t0));
        c.insert(pkt(4, t0)); // same slot, older
        assert_eq!(c.get(t0, 8).unwrap().seq, 8);
        // A late packet within range fills its own slot.
        c.insert(pkt(6, t0));
        assert_eq!(c.get(t0, 6).unwrap().seq, 6);
    }
}
