//! The publisher side of one track (audio, or one simulcast layer of video): which source is
//! current, extended sequence numbers, restart detection, liveness, bitrate, and the packet
//! cache.
//!
//! An [`IngressTrack`] turns each arriving packet into `(SourceKey, extended seq)`:
//!
//! - The first packet, a new SSRC, or a sequence jump larger than `restart_jump` (an encoder
//!   restart) starts a **new source** with a fresh [`SourceKey`]; the previous source is kept so
//!   that its late packets (reordering around the switch, RTX repairs) are still recognised
//!   and cached under the old key instead of flipping the track back and forth. If the
//!   previous source resumes with newer packets, it becomes current again.
//! - Sequence numbers are extended to u64 relative to the source's highest so far; the first
//!   packet of a source is placed at `65536 + seq` so that packets reordered before it never
//!   underflow.
//! - The track is **live** while it has a current source, is not paused (str0m's
//!   `StreamPaused`) and has sent a packet within `idle_timeout`.
//! - The bitrate is measured over one-second windows, counting payload plus a fixed
//!   per-packet overhead so it compares with a viewer's bandwidth estimate.
//!
//! At most two sources (current and previous) and their caches exist per track, whatever the
//! publisher sends.

use std::time::{Duration, Instant};

use crate::cache::{CachedPacket, PacketCache};
use crate::packet::{InboundPacket, LayerId, MediaKind, SourceKey};
use crate::rewrite::seq_delta;

/// Bytes added to each packet's payload for the bitrate: RTP header with extensions (≈ 24),
/// SRTP tag (10), UDP (8) and IPv4 (20).
pub const PACKET_OVERHEAD_BYTES: u64 = 62;

/// The bitrate window.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// Sizing of a track's caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Packets per source (rounded up to a power of two).
    pub capacity: usize,
    /// Oldest packet that may be resent.
    pub max_age: Duration,
}

/// One publisher stream incarnation and its cache.
#[derive(Debug)]
pub struct SourceState {
    /// Identity.
    pub key: SourceKey,
    /// Highest extended sequence number seen.
    pub highest: u64,
    /// When the last packet (of any order) arrived.
    pub last_packet_at: Instant,
    /// Recent packets, by extended sequence number.
    pub cache: PacketCache,
    /// The newest keyframe start seen (extended sequence number, arrival), for viewers that
    /// start from the cache.
    pub last_keyframe: Option<(u64, Instant)>,
}

/// Where an arriving packet belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Its source.
    pub source: SourceKey,
    /// Its extended sequence number within that source.
    pub seq: u64,
    /// The source is the track's current one (false for late packets of the previous one).
    pub is_current: bool,
    /// The current source changed with this packet.
    pub source_changed: bool,
    /// The packet is the newest of its source so far (false for reordered and late packets).
    pub is_newest: bool,
}

#[derive(Debug, Clone, Copy)]
struct RateMeter {
    window_start: Option<Instant>,
    bytes: u64,
    rate_bps: Option<u64>,
}

impl RateMeter {
    fn add(&mut self, now: Instant, bytes: u64) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            self.rate_bps =
                Some((u128::from(self.bytes) * 8 * 1_000_000 / elapsed.as_micros()) as u64);
            self.window_start = Some(now);
            self.bytes = 0;
        }
        self.bytes += bytes;
    }
}

/// The publisher side of one track. See the module docs.
#[derive(Debug)]
pub struct IngressTrack {
    kind: MediaKind,
    layer: LayerId,
    cache_config: CacheConfig,
    restart_jump: u16,
    idle_timeout: Duration,
    current: Option<SourceState>,
    previous: Option<SourceState>,
    paused: bool,
    meter: RateMeter,
}

impl IngressTrack {
    /// An empty track.
    pub fn new(
        kind: MediaKind,
        layer: LayerId,
        cache_config: CacheConfig,
        restart_jump: u16,
        idle_timeout: Duration,
    ) -> IngressTrack {
        IngressTrack {
            kind,
            layer,
            cache_config,
            restart_jump,
            idle_timeout,
            current: None,
            previous: None,
            paused: false,
            meter: RateMeter {
                window_start: None,
                bytes: 0,
                rate_bps: None,
            },
        }
    }

    /// The current source.
    pub fn current(&self) -> Option<SourceKey> {
        self.current.as_ref().map(|s| s.key)
    }

    /// The state of `key`, if it is the current or previous source.
    pub fn source(&self, key: SourceKey) -> Option<&SourceState> {
        self.current
            .iter()
            .chain(self.previous.iter())
            .find(|s| s.key == key)
    }

    /// The measured bitrate, once a full window has passed.
    pub fn measured_bitrate(&self) -> Option<u64> {
        self.meter.rate_bps
    }

    /// Whether str0m reported the stream paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Records str0m's `StreamPaused`.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Live: a current source, not paused, and a packet within the idle timeout.
    pub fn is_live(&self, now: Instant) -> bool {
        match &self.current {
            Some(s) => {
                !self.paused && now.saturating_duration_since(s.last_packet_at) < self.idle_timeout
            }
            None => false,
        }
    }

    /// When the track stops being live if nothing arrives.
    pub fn idle_deadline(&self) -> Option<Instant> {
        match &self.current {
            Some(s) if !self.paused => Some(s.last_packet_at + self.idle_timeout),
            _ => None,
        }
    }

    /// Classifies an arriving packet; `next_generation` hands out new source keys.
    pub fn accept(
        &mut self,
        now: Instant,
        packet: &InboundPacket,
        next_generation: &mut u32,
    ) -> Accepted {
        let ssrc = packet.header.ssrc;
        let seq16 = packet.header.seq;
        let jump = i64::from(self.restart_jump);
        self.meter
            .add(now, packet.payload.len() as u64 + PACKET_OVERHEAD_BYTES);
        self.paused = false;

        if let Some(cur) = self.current.as_mut() {
            if cur.key.ssrc == ssrc {
                let d = seq_delta(seq16, cur.highest as u16);
                if d.abs() <= jump {
                    let seq = (cur.highest as i64 + d) as u64;
                    cur.highest = cur.highest.max(seq);
                    cur.last_packet_at = now;
                    return Accepted {
                        source: cur.key,
                        seq,
                        is_current: true,
                        source_changed: false,
                        is_newest: d > 0,
                    };
                }
            }
        }
        if let Some(prev) = self.previous.as_mut() {
            if prev.key.ssrc == ssrc {
                let d = seq_delta(seq16, prev.highest as u16);
                if d.abs() <= jump {
                    let seq = (prev.highest as i64 + d) as u64;
                    if d <= 0 {
                        // A late packet of the previous source.
                        return Accepted {
                            source: prev.key,
                            seq,
                            is_current: false,
                            source_changed: false,
                            is_newest: false,
                        };
                    }
                    // The previous source resumed: it is current again.
                    prev.highest = seq;
                    prev.last_packet_at = now;
                    let key = prev.key;
                    std::mem::swap(&mut self.current, &mut self.previous);
                    return Accepted {
                        source: key,
                        seq,
                        is_current: true,
                        source_changed: true,
                        is_newest: true,
                    };
                }
            }
        }
        *next_generation = next_generation.wrapping_add(1);
        let key = SourceKey {
            kind: self.kind,
            layer: self.layer,
            ssrc,
            generation: *next_generation,
        };
        let seq = (1u64 << 16) + u64::from(seq16);
        self.previous = self.current.take();
        self.current = Some(SourceState {
            key,
            highest: seq,
            last_packet_at: now,
            cache: PacketCache::new(self.cache_config.capacity, self.cache_config.max_age),
            last_keyframe: None,
        });
        Accepted {
            source: key,
            seq,
            is_current: true,
            source_changed: true,
            is_newest: true,
        }
    }

    /// Stores a packet in its source's cache.
    pub fn cache(&mut self, now: Instant, accepted: &Accepted, packet: &InboundPacket) {
        let state = self
            .current
            .iter_mut()
            .chain(self.previous.iter_mut())
            .find(|s| s.key == accepted.source);
        if let Some(state) = state {
            if packet.keyframe
                && state
                    .last_keyframe
                    .is_none_or(|(seq, _)| accepted.seq > seq)
            {
                state.last_keyframe = Some((accepted.seq, now));
            }
            state.cache.insert(CachedPacket {
                seq: accepted.seq,
                timestamp: packet.header.timestamp,
                marker: packet.header.marker,
                payload_type: packet.header.payload_type,
                codec: packet.codec,
                keyframe: packet.keyframe,
                received_at: now,
                payload: packet.payload.clone(),
            });
        }
    }

    /// The publisher left: the current source ends (it stays as the previous one so NACKs for
    /// its last packets can still be answered until its cache expires).
    pub fn end(&mut self) {
        if self.current.is_some() {
            self.previous = self.current.take();
        }
        self.paused = false;
    }

    /// Releases expired cache entries; forgets the previous source once its cache is empty
    /// and it has been silent for longer than the cache age.
    pub fn prune(&mut self, now: Instant) {
        let max_age = self.cache_config.max_age;
        for s in self.current.iter_mut().chain(self.previous.iter_mut()) {
            s.cache.prune(now);
        }
        if let Some(prev) = &self.previous {
            if now.saturating_duration_since(prev.last_packet_at) > max_age {
                self.previous = None;
            }
        }
    }

    /// How many sources are held (0, 1 or 2).
    pub fn source_count(&self) -> usize {
        usize::from(self.current.is_some()) + usize::from(self.previous.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Codec, PacketHeader};
    use std::sync::Arc;

    const MS: Duration = Duration::from_millis(1);

    fn track() -> IngressTrack {
        let cache = CacheConfig {
            capacity: 64,
            max_age: Duration::from_secs(1),
        };
        IngressTrack::new(
            MediaKind::Video,
            LayerId::MID,
            cache,
            3000,
            Duration::from_millis(500),
        )
    }

    fn pkt(ssrc: u32, seq: u16, len: usize) -> InboundPacket {
        let header = PacketHeader {
            ssrc,
            seq,
            timestamp: 0,
            marker: false,
            payload_type: 96,
        };
        InboundPacket::new(
            MediaKind::Video,
            LayerId::MID,
            Codec::Vp8,
            header,
            Arc::from(vec![0u8; len]),
        )
    }

    #[test]
    fn extends_across_the_wrap_and_below_the_first_packet() {
        let t0 = Instant::now();
        let mut t = track();
        let mut g = 0;
        let a = t.accept(t0, &pkt(7, 65_534, 10), &mut g);
        assert!(a.source_changed && a.is_current);
        assert_eq!(a.seq, 65_536 + 65_534);
        let b = t.accept(t0, &pkt(7, 1, 10), &mut g);
        assert_eq!(b.seq, a.seq + 3);
        assert!(!b.source_changed);
        let c = t.accept(t0, &pkt(7, 65_530, 10), &mut g);
        assert_eq!(c.seq, a.seq - 4);
        assert_eq!(t.current(), Some(a.source));
        assert_eq!(g, 1);
    }

    #[test]
    fn new_ssrc_or_big_jump_is_a_new_source_and_late_old_packets_stay_old() {
        let t0 = Instant::now();
        let mut t = track();
        let mut g = 0;
        let a = t.accept(t0, &pkt(1, 100, 10), &mut g);
        t.accept(t0, &pkt(1, 101, 10), &mut g);
        let b = t.accept(t0, &pkt(2, 5000, 10), &mut g);
        assert!(b.source_changed);
        assert_ne!(a.source, b.source);
        // A late packet of SSRC 1 does not flip the track back.
        let late = t.accept(t0, &pkt(1, 99, 10), &mut g);
        assert_eq!(late.source, a.source);
        assert!(!late.is_current && !late.source_changed);
        assert_eq!(t.current(), Some(b.source));
        // A big jump on the same SSRC is a restart.
        let c = t.accept(t0, &pkt(2, 30_000, 10), &mut g);
        assert!(c.source_changed);
        assert_ne!(c.source, b.source);
        assert_eq!(t.source_count(), 2);
        // Only two sources are ever held: SSRC 1 is forgotten now.
        let d = t.accept(t0, &pkt(1, 102, 10), &mut g);
        assert!(d.source_changed);
        assert_ne!(d.source, a.source);
        assert_eq!(t.source_count(), 2);
    }

    #[test]
    fn a_resuming_previous_source_becomes_current_again() {
        let t0 = Instant::now();
        let mut t = track();
        let mut g = 0;
        let a = t.accept(t0, &pkt(1, 100, 10), &mut g);
        let b = t.accept(t0, &pkt(2, 7, 10), &mut g);
        let again = t.accept(t0, &pkt(1, 101, 10), &mut g);
        assert_eq!(again.source, a.source);
        assert!(again.is_current && again.source_changed);
        assert_eq!(t.current(), Some(a.source));
        assert!(t.source(b.source).is_some());
    }

    #[test]
    fn liveness_pause_and_end() {
        let t0 = Instant::now();
        let mut t = track();
        let mut g = 0;
        assert!(!t.is_live(t0));
        let a = t.accept(t0, &pkt(1, 1, 10), &mut g);
        assert!(t.is_live(t0 + 499 * MS));
        assert!(!t.is_live(t0 + 500 * MS));
        assert_eq!(t.idle_deadline(), Some(t0 + 500 * MS));
        t.set_paused(true);
        assert!(!t.is_live(t0) && t.is_paused());
        assert_eq!(t.idle_deadline(), None);
        t.accept(t0 + MS, &pkt(1, 2, 10), &mut g);
        assert!(t.is_live(t0 + MS));
        t.end();
        assert!(!t.is_live(t0 + MS));
        assert_eq!(t.current(), None);
        assert!(t.source(a.source).is_some());
        t.prune(t0 + Duration::from_secs(2));
        assert_eq!(t.source_count(), 0);
    }

    #[test]
    fn caches_under_the_right_source_and_measures_bitrate() {
        let t0 = Instant::now();
        let mut t = track();
        let mut g = 0;
        for i in 0..=100u16 {
            let p = pkt(1, i, 1000 - PACKET_OVERHEAD_BYTES as usize);
            let acc = t.accept(t0 + u32::from(i) * 10 * MS, &p, &mut g);
            t.cache(t0, &acc, &p);
        }
        // 100 packets of 1000 bytes per second.
        assert_eq!(t.measured_bitrate(), Some(800_000));
        let key = t.current().unwrap();
        let state = t.source(key).unwrap();
        assert_eq!(
            state.cache.get(t0, (1 << 16) + 100).unwrap().payload.len(),
            938
        );
    }
}
