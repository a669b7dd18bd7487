//! Per-viewer, per-kind sequence number and timestamp rewriting.
//!
//! A viewer receives one outgoing stream per kind (one SSRC for audio, one for video), while
//! what feeds it changes: simulcast layers (each with its own SSRC, sequence numbers and
//! timestamp base) and publisher reconnects (new SSRC, new random bases). The
//! [`SeqTsRewriter`] turns that into one continuous stream:
//!
//! - Forwarding is a series of **segments**. A segment maps one source ([`SourceKey`]) with a
//!   constant offset: `out_seq = orig_seq + seq_offset`, `out_ts = orig_ts + ts_offset`. Losses
//!   upstream therefore stay visible as gaps of the same size (the viewer NACKs them, and a late
//!   or repaired packet still gets the number reserved for it), and a reordered packet gets
//!   exactly the number it would have had in order.
//! - A new segment (layer switch at a keyframe, new source) starts right after the highest
//!   sequence number sent so far (`highest + 1`: no gap, no jump) and moves the timestamp on by
//!   the wall-clock time since the last forwarded packet, in clock-rate ticks (at least 1), so
//!   timestamps never go backwards and the step matches real time.
//! - Sequence numbers are kept **extended** (u64, starting with roll-over counter 0 at the
//!   viewer's random 16-bit base), because str0m's `RtpWrite::new` takes an extended `SeqNo` and
//!   derives the SRTP roll-over counter from it. The 16-bit wire value wraps at 65536 on its own;
//!   timestamps are `u32` with wrapping arithmetic.
//! - Packets already sent (duplicates) and packets more than [`DEDUP_WINDOW`] behind the
//!   highest sent are dropped; nothing is ever sent with a number at or below one that would
//!   make the stream ambiguous.
//! - A padding packet that is deliberately not forwarded ([`SeqTsRewriter::skip`]) is squeezed
//!   out: the next packet takes its number, so the viewer never waits for a packet that will
//!   not come.
//! - The segment history ([`MAX_CLOSED_SEGMENTS`]) lets a late packet of an earlier segment
//!   fill its own gap with the number reserved for it.
//!
//! Cost per forwarded packet: one comparison of the active source, two additions and a bit in
//! a 512-bit window. No allocation after the history deque has grown to its bound.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::packet::SourceKey;

/// How far behind the highest forwarded sequence number a packet may still be forwarded
/// (filling a gap); older packets are dropped because duplicates can no longer be told apart.
pub const DEDUP_WINDOW: u64 = 512;

/// How many finished segments are remembered for late packets.
pub const MAX_CLOSED_SEGMENTS: usize = 16;

/// Signed distance from `b` to `a` in 16-bit sequence space, in `-32768..=32767`.
pub(crate) fn seq_delta(a: u16, b: u16) -> i64 {
    a.wrapping_sub(b) as i16 as i64
}

/// The largest timestamp step at a segment start (about 3.3 hours at 90 kHz), so that a step
/// never reaches half the 32-bit space and reads as "backwards".
const MAX_TS_STEP: u64 = 1 << 30;

/// One segment of a viewer's stream (see the module docs): numbered from 0 in the order the
/// segments start. Codec-specific rewriting ([`crate::vp8`]) keys its offsets by it. A skip
/// (padding squeezed out) continues the same segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u64);

/// What to do with one packet for one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewritten {
    /// Send it with these values.
    Forward {
        /// Extended outgoing sequence number (`as u16` is the wire value).
        seq: u64,
        /// Outgoing RTP timestamp.
        timestamp: u32,
        /// The segment the packet belongs to.
        segment: SegmentId,
    },
    /// Do not send it.
    Drop(DropReason),
}

/// Why a packet is not sent to a viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The packet belongs to no segment: another layer, another source, or before the start of
    /// the current segment. The forwarder decides whether to start a segment with it.
    NotActive,
    /// Already sent.
    Duplicate,
    /// More than [`DEDUP_WINDOW`] behind the highest sequence number sent.
    TooOld,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    id: SegmentId,
    source: SourceKey,
    /// First original sequence number of the segment.
    orig_start: u64,
    /// Number of original sequence numbers mapped so far (0 right after a skip).
    orig_len: u64,
    /// Outgoing sequence number of `orig_start`.
    out_start: u64,
    ts_offset: u32,
}

impl Segment {
    fn contains_orig(&self, orig: u64) -> bool {
        orig >= self.orig_start && orig - self.orig_start < self.orig_len
    }

    fn out_for(&self, orig: u64) -> u64 {
        self.out_start + (orig - self.orig_start)
    }
}

#[derive(Debug, Clone, Copy)]
struct Highest {
    seq: u64,
    ts: u32,
    at: Instant,
}

/// Which of the last [`DEDUP_WINDOW`] outgoing sequence numbers were sent.
#[derive(Debug, Clone, Default)]
struct SentWindow {
    bits: [u64; (DEDUP_WINDOW / 64) as usize],
}

impl SentWindow {
    fn slot(seq: u64) -> (usize, u64) {
        let i = seq % DEDUP_WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn contains(&self, seq: u64) -> bool {
        let (word, bit) = Self::slot(seq);
        self.bits[word] & bit != 0
    }

    fn mark(&mut self, seq: u64) {
        let (word, bit) = Self::slot(seq);
        self.bits[word] |= bit;
    }

    /// The highest moves from `from` to `to`: the slots of `from+1..=to` become free.
    fn advance(&mut self, from: u64, to: u64) {
        if to - from >= DEDUP_WINDOW {
            self.bits = Default::default();
            return;
        }
        for seq in from + 1..=to {
            let (word, bit) = Self::slot(seq);
            self.bits[word] &= !bit;
        }
    }
}

/// Rewrites one kind (audio or video) of one viewer's outgoing stream. See the module docs.
#[derive(Debug, Clone)]
pub struct SeqTsRewriter {
    clock_rate: u32,
    seq_base: u16,
    ts_base: u32,
    active: Option<Segment>,
    closed: VecDeque<Segment>,
    highest: Option<Highest>,
    sent: SentWindow,
    next_segment: u64,
}

impl SeqTsRewriter {
    /// A rewriter whose first packet gets `seq_base` and `ts_base` (the driver picks them at
    /// random, as RFC 3550 asks). `clock_rate` is the RTP clock (90 000 video, 48 000 Opus).
    pub fn new(clock_rate: u32, seq_base: u16, ts_base: u32) -> SeqTsRewriter {
        SeqTsRewriter {
            clock_rate: clock_rate.max(1),
            seq_base,
            ts_base,
            active: None,
            closed: VecDeque::new(),
            highest: None,
            sent: SentWindow::default(),
            next_segment: 0,
        }
    }

    /// The source of the current segment, if any.
    pub fn active_source(&self) -> Option<SourceKey> {
        self.active.map(|s| s.source)
    }

    /// The highest extended sequence number sent so far.
    pub fn highest_seq(&self) -> Option<u64> {
        self.highest.map(|h| h.seq)
    }

    /// Maps a packet of the current segment (or a gap of a remembered one).
    ///
    /// `orig_seq` is the extended sequence number from the forwarder's ingress. Returns
    /// [`DropReason::NotActive`] for packets that no segment covers; the caller may then start
    /// a segment with [`SeqTsRewriter::start_segment`].
    pub fn rewrite(
        &mut self,
        now: Instant,
        source: SourceKey,
        orig_seq: u64,
        orig_ts: u32,
    ) -> Rewritten {
        if let Some(seg) = self.active {
            if seg.source == source && orig_seq >= seg.orig_start {
                let result = self.emit(
                    now,
                    seg.out_for(orig_seq),
                    orig_ts.wrapping_add(seg.ts_offset),
                    seg.id,
                );
                let len = orig_seq - seg.orig_start + 1;
                if let (Rewritten::Forward { .. }, Some(active)) = (result, self.active.as_mut()) {
                    active.orig_len = active.orig_len.max(len);
                }
                return result;
            }
        }
        let found = self
            .closed
            .iter()
            .rev()
            .find(|s| s.source == source && s.contains_orig(orig_seq))
            .copied();
        match found {
            Some(seg) => self.emit(
                now,
                seg.out_for(orig_seq),
                orig_ts.wrapping_add(seg.ts_offset),
                seg.id,
            ),
            None => Rewritten::Drop(DropReason::NotActive),
        }
    }

    /// Starts a new segment with this packet (which the caller has checked is a keyframe start
    /// for video) and returns its outgoing values. Never drops.
    pub fn start_segment(
        &mut self,
        now: Instant,
        source: SourceKey,
        orig_seq: u64,
        orig_ts: u32,
    ) -> Rewritten {
        self.close_active();
        let (out_seq, out_ts) = match self.highest {
            None => (u64::from(self.seq_base), self.ts_base),
            Some(h) => (
                h.seq + 1,
                h.ts.wrapping_add(self.ts_step(now.saturating_duration_since(h.at))),
            ),
        };
        let id = SegmentId(self.next_segment);
        self.next_segment += 1;
        self.active = Some(Segment {
            id,
            source,
            orig_start: orig_seq,
            orig_len: 1,
            out_start: out_seq,
            ts_offset: out_ts.wrapping_sub(orig_ts),
        });
        self.emit(now, out_seq, out_ts, id)
    }

    /// Ends the current segment (audio-only, publisher gone). Late packets can still fill its
    /// gaps; new packets are [`DropReason::NotActive`] until the next `start_segment`.
    pub fn stop(&mut self) {
        self.close_active();
    }

    /// A packet of the current segment that will not be forwarded (padding). If it is the next
    /// one in order, the following packet takes its sequence number and `true` is returned; a
    /// skipped packet that arrives out of order leaves its gap (`false`).
    pub fn skip(&mut self, source: SourceKey, orig_seq: u64) -> bool {
        let Some(seg) = self.active else {
            return false;
        };
        if seg.source != source || orig_seq != seg.orig_start + seg.orig_len {
            return false;
        }
        self.close_active();
        self.active = Some(Segment {
            id: seg.id,
            source,
            orig_start: orig_seq + 1,
            orig_len: 0,
            out_start: seg.out_start + seg.orig_len,
            ts_offset: seg.ts_offset,
        });
        true
    }

    /// The timestamp step for a new segment after `elapsed` without forwarding.
    fn ts_step(&self, elapsed: Duration) -> u32 {
        let ticks = elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        ticks.clamp(1, u128::from(MAX_TS_STEP)) as u32
    }

    fn close_active(&mut self) {
        if let Some(seg) = self.active.take() {
            if seg.orig_len > 0 {
                if self.closed.len() == MAX_CLOSED_SEGMENTS {
                    self.closed.pop_front();
                }
                self.closed.push_back(seg);
            }
        }
    }

    fn emit(&mut self, now: Instant, out: u64, ts: u32, segment: SegmentId) -> Rewritten {
        match self.highest {
            Some(h) if out <= h.seq => {
                if h.seq - out >= DEDUP_WINDOW {
                    return Rewritten::Drop(DropReason::TooOld);
                }
                if self.sent.contains(out) {
                    return Rewritten::Drop(DropReason::Duplicate);
                }
            }
            Some(h) => {
                self.sent.advance(h.seq, out);
                self.highest = Some(Highest {
                    seq: out,
                    ts,
                    at: now,
                });
            }
            None => {
                self.highest = Some(Highest {
                    seq: out,
                    ts,
                    at: now,
                })
            }
        }
        self.sent.mark(out);
        Rewritten::Forward {
            seq: out,
            timestamp: ts,
            segment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{LayerId, MediaKind};

    fn src(layer: LayerId, ssrc: u32, generation: u32) -> SourceKey {
        SourceKey {
            kind: MediaKind::Video,
            layer,
            ssrc,
            generation,
        }
    }

    fn fwd(r: Rewritten) -> (u64, u32) {
        match r {
            Rewritten::Forward { seq, timestamp, .. } => (seq, timestamp),
            Rewritten::Drop(d) => panic!("expected forward, got {d:?}"),
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_segment_starts_at_the_base_and_keeps_offsets() {
        let t0 = Instant::now();
        let a = src(LayerId::LOW, 1, 1);
        let mut r = SeqTsRewriter::new(90_000, 1000, 5000);
        assert_eq!(
            r.rewrite(t0, a, 70_000, 3000),
            Rewritten::Drop(DropReason::NotActive)
        );
        assert_eq!(fwd(r.start_segment(t0, a, 70_000, 3000)), (1000, 5000));
        assert_eq!(fwd(r.rewrite(t0, a, 70_001, 3000)), (1001, 5000));
        // Upstream loss of 70_002 stays a gap of one.
        assert_eq!(fwd(r.rewrite(t0 + 33 * MS, a, 70_003, 6000)), (1003, 8000));
        // The late packet gets the reserved number.
        assert_eq!(fwd(r.rewrite(t0 + 40 * MS, a, 70_002, 3000)), (1002, 5000));
        assert_eq!(r.highest_seq(), Some(1003));
    }

    #[test]
    fn switch_continues_right_after_the_highest_with_a_real_time_step() {
        let t0 = Instant::now();
        let low = src(LayerId::LOW, 1, 1);
        let high = src(LayerId::HIGH, 3, 2);
        let mut r = SeqTsRewriter::new(90_000, 100, 0);
        fwd(r.start_segment(t0, low, 10, 1_000_000));
        fwd(r.rewrite(t0 + 10 * MS, low, 11, 1_000_000));
        // High layer: unrelated seq and ts bases. Switch 50 ms after the last forward.
        let (seq, ts) = fwd(r.start_segment(t0 + 60 * MS, high, 40_000, 7));
        assert_eq!(seq, 102);
        assert_eq!(ts, 50 * 90);
        assert_eq!(fwd(r.rewrite(t0 + 61 * MS, high, 40_001, 7)), (103, 4500));
        assert_eq!(
            fwd(r.rewrite(t0 + 94 * MS, high, 40_002, 3007)),
            (104, 7500)
        );
        // The old layer is no longer forwarded, except to fill its own gaps.
        assert_eq!(
            r.rewrite(t0 + 95 * MS, low, 12, 1_003_000),
            Rewritten::Drop(DropReason::NotActive)
        );
        // Zero elapsed still moves the timestamp on.
        let back = fwd(r.start_segment(t0 + 94 * MS, low, 20, 9));
        assert_eq!(back, (105, 7501));
    }

    #[test]
    fn reconnect_with_new_ssrc_and_random_bases_is_continuous() {
        let t0 = Instant::now();
        let old = src(LayerId::LOW, 0xdead, 1);
        let new = src(LayerId::LOW, 0xbeef, 7);
        let mut r = SeqTsRewriter::new(48_000, 65_534, u32::MAX - 100);
        let mut last = (0, 0);
        for i in 0..5u64 {
            last = if i == 0 {
                fwd(r.start_segment(t0, old, 5 + i, 960 * i as u32))
            } else {
                fwd(r.rewrite(t0 + 20 * MS * i as u32, old, 5 + i, 960 * i as u32))
            };
        }
        // Crossed the 16-bit wrap (65534 + 4) and the 32-bit timestamp wrap.
        assert_eq!(last.0, 65_538);
        assert_eq!(last.0 as u16, 2);
        assert_eq!(last.1, (u32::MAX - 100).wrapping_add(3840));
        // The publisher comes back 2 s later with a new SSRC and random bases.
        let t1 = t0 + Duration::from_secs(2) + 80 * MS;
        let (seq, ts) = fwd(r.start_segment(t1, new, 123_456_789, 0x1234_5678));
        assert_eq!(seq, 65_539);
        assert_eq!(ts, last.1.wrapping_add(2 * 48_000));
        assert_eq!(
            fwd(r.rewrite(t1 + 20 * MS, new, 123_456_790, 0x1234_5678 + 960)),
            (65_540, ts.wrapping_add(960))
        );
    }

    #[test]
    fn duplicates_and_too_old_packets_are_dropped() {
        let t0 = Instant::now();
        let a = src(LayerId::LOW, 1, 1);
        let mut r = SeqTsRewriter::new(90_000, 0, 0);
        fwd(r.start_segment(t0, a, 1000, 0));
        fwd(r.rewrite(t0, a, 1001, 0));
        assert_eq!(
            r.rewrite(t0, a, 1001, 0),
            Rewritten::Drop(DropReason::Duplicate)
        );
        fwd(r.rewrite(t0, a, 1003, 0));
        // Jump far ahead, leaving 1002 more than the window behind.
        fwd(r.rewrite(t0, a, 1003 + DEDUP_WINDOW, 0));
        assert_eq!(
            r.rewrite(t0, a, 1002, 0),
            Rewritten::Drop(DropReason::TooOld)
        );
        // Inside the window a gap can still be filled, once.
        fwd(r.rewrite(t0, a, 1010, 0));
        assert_eq!(
            r.rewrite(t0, a, 1010, 0),
            Rewritten::Drop(DropReason::Duplicate)
        );
        // Before the start of the segment is nobody's packet.
        assert_eq!(
            r.rewrite(t0, a, 999, 0),
            Rewritten::Drop(DropReason::NotActive)
        );
    }

    #[test]
    fn late_packets_fill_gaps_of_a_closed_segment_but_never_extend_it() {
        let t0 = Instant::now();
        let low = src(LayerId::LOW, 1, 1);
        let mid = src(LayerId::MID, 2, 2);
        let mut r = SeqTsRewriter::new(90_000, 0, 0);
        fwd(r.start_segment(t0, low, 10, 0)); // out 0
        fwd(r.rewrite(t0, low, 12, 0)); // out 2, 11 missing
        fwd(r.start_segment(t0, mid, 500, 0)); // out 3
        assert_eq!(fwd(r.rewrite(t0, low, 11, 0)).0, 1);
        assert_eq!(
            r.rewrite(t0, low, 13, 0),
            Rewritten::Drop(DropReason::NotActive)
        );
        assert_eq!(fwd(r.rewrite(t0, mid, 501, 0)).0, 4);
    }

    #[test]
    fn skipped_padding_is_squeezed_out() {
        let t0 = Instant::now();
        let a = src(LayerId::LOW, 1, 1);
        let mut r = SeqTsRewriter::new(90_000, 0, 0);
        fwd(r.start_segment(t0, a, 100, 0)); // out 0
        assert!(r.skip(a, 101));
        assert!(r.skip(a, 102));
        assert_eq!(fwd(r.rewrite(t0, a, 103, 0)).0, 1);
        // Out of order padding leaves its gap.
        assert!(!r.skip(a, 105));
        assert_eq!(fwd(r.rewrite(t0, a, 106, 0)).0, 4);
        // The late packet fills its own gap.
        assert_eq!(fwd(r.rewrite(t0, a, 104, 0)).0, 2);
        assert!(!r.skip(src(LayerId::MID, 9, 9), 107));
    }

    #[test]
    fn history_is_bounded() {
        let t0 = Instant::now();
        let mut r = SeqTsRewriter::new(90_000, 0, 0);
        for g in 0..(MAX_CLOSED_SEGMENTS as u32 * 3) {
            fwd(r.start_segment(t0, src(LayerId::LOW, g, g), 0, 0));
        }
        assert_eq!(r.closed.len(), MAX_CLOSED_SEGMENTS);
        // A segment with a gap: its late packet fills it while the segment is remembered, and
        // is dropped once MAX_CLOSED_SEGMENTS newer segments have closed after it.
        let mut r = SeqTsRewriter::new(90_000, 0, 0);
        let first = src(LayerId::LOW, 1000, 1000);
        fwd(r.start_segment(t0, first, 0, 0));
        fwd(r.rewrite(t0, first, 2, 0)); // 1 is missing
        for g in 0..(MAX_CLOSED_SEGMENTS as u32) {
            fwd(r.start_segment(t0, src(LayerId::LOW, g, g), 0, 0));
        }
        // Still remembered (the active one plus MAX_CLOSED_SEGMENTS closed): fills its gap.
        assert_eq!(fwd(r.rewrite(t0, first, 1, 0)).0, 1);
        let mut r = SeqTsRewriter::new(90_000, 0, 0);
        fwd(r.start_segment(t0, first, 0, 0));
        fwd(r.rewrite(t0, first, 2, 0));
        for g in 0..(MAX_CLOSED_SEGMENTS as u32 + 1) {
            fwd(r.start_segment(t0, src(LayerId::LOW, g, g), 0, 0));
        }
        assert_eq!(
            r.rewrite(t0, first, 1, 0),
            Rewritten::Drop(DropReason::NotActive),
            "forgotten"
        );
    }

    #[test]
    fn segments_are_numbered_in_start_order_and_a_skip_continues_one() {
        let t0 = Instant::now();
        let low = src(LayerId::LOW, 1, 1);
        let high = src(LayerId::HIGH, 3, 2);
        let segment = |r: Rewritten| match r {
            Rewritten::Forward { segment, .. } => segment,
            Rewritten::Drop(d) => panic!("expected forward, got {d:?}"),
        };
        let mut r = SeqTsRewriter::new(90_000, 0, 0);
        assert_eq!(segment(r.start_segment(t0, low, 10, 0)), SegmentId(0));
        assert!(r.skip(low, 11));
        assert_eq!(segment(r.rewrite(t0, low, 12, 0)), SegmentId(0));
        fwd(r.rewrite(t0, low, 14, 0));
        assert_eq!(segment(r.start_segment(t0, high, 500, 0)), SegmentId(1));
        // A late packet of the low segment says which segment it fills.
        assert_eq!(segment(r.rewrite(t0, low, 13, 0)), SegmentId(0));
        assert_eq!(segment(r.rewrite(t0, high, 501, 0)), SegmentId(1));
        assert_eq!(segment(r.start_segment(t0, low, 20, 0)), SegmentId(2));
    }

    #[test]
    fn seq_delta_is_the_nearest_distance() {
        assert_eq!(seq_delta(1, 65_535), 2);
        assert_eq!(seq_delta(65_535, 1), -2);
        assert_eq!(seq_delta(5, 5), 0);
    }
}
