//! From RTP packets back to codec frames, for the recorder: a small reorder buffer, VP8
//! frame assembly (RFC 7741) and Opus frame durations (RFC 6716). Sans-IO and
//! allocation-bounded; nothing here panics on any input.
//!
//! - [`Reorder`] puts one source's packets back in sequence order. str0m hands packets over
//!   in arrival order, and a NACK repair (RTX, unwrapped by str0m) arrives late: the buffer
//!   holds later packets for up to `max_wait_ms` (or `max_held` packets) waiting for the
//!   missing one, then gives up on it and releases what it holds. Duplicates and packets
//!   older than what was released are dropped.
//! - [`Vp8Assembler`] joins the in-order packets of one source into frames: a frame starts at
//!   a packet with `S = 1` and partition id 0, ends at the marker bit (or when the RTP
//!   timestamp changes), and must be contiguous. On a sequence gap or a malformed payload
//!   the frame in progress is dropped and every frame up to the next keyframe too (a VP8
//!   decoder cannot use them); each is counted.
//! - [`opus_frame_ms`] reads an Opus packet's duration from its TOC byte.

use std::collections::BTreeMap;

/// Puts one source's packets back in sequence order (see the module docs).
#[derive(Debug)]
pub struct Reorder<T> {
    max_held: usize,
    max_wait_ms: u64,
    /// The next extended sequence number to release.
    next: Option<i64>,
    /// The highest extended sequence number seen (the reference for extending).
    highest: Option<i64>,
    held: BTreeMap<i64, (u64, T)>,
    /// Packets never released (lost, or arrived after they were given up on).
    pub lost: u64,
    /// Duplicates and packets older than what was already released.
    pub late: u64,
}

impl<T> Reorder<T> {
    /// A buffer that waits at most `max_wait_ms` for a missing packet and holds at most
    /// `max_held` packets.
    pub fn new(max_held: usize, max_wait_ms: u64) -> Reorder<T> {
        Reorder {
            max_held: max_held.max(1),
            max_wait_ms,
            next: None,
            highest: None,
            held: BTreeMap::new(),
            lost: 0,
            late: 0,
        }
    }

    /// The extended form of a 16-bit sequence number: the value nearest the highest seen.
    fn extend(&self, seq: u16) -> i64 {
        match self.highest {
            None => i64::from(seq),
            Some(h) => h + i64::from(seq.wrapping_sub(h as u16) as i16),
        }
    }

    /// One packet (sequence number `seq`, arrival `at_ms`); released packets, in order,
    /// with their extended sequence numbers, are appended to `out`.
    pub fn push(&mut self, seq: u16, at_ms: u64, item: T, out: &mut Vec<(i64, T)>) {
        let ext = self.extend(seq);
        let next = *self.next.get_or_insert(ext);
        if ext < next || self.held.contains_key(&ext) {
            self.late += 1;
            return;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.held.insert(ext, (at_ms, item));
        self.release(out);
        // Give up on a missing packet when too much is held or the oldest waited too long.
        while let Some((&first, &(since, _))) = self.held.iter().next() {
            let waited = at_ms.saturating_sub(since) >= self.max_wait_ms;
            if self.held.len() <= self.max_held && !waited {
                break;
            }
            self.skip_to(first);
            self.release(out);
        }
    }

    /// Releases everything held, in order, skipping gaps (the end of the source).
    pub fn flush(&mut self, out: &mut Vec<(i64, T)>) {
        while let Some(&first) = self.held.keys().next() {
            self.skip_to(first);
            self.release(out);
        }
    }

    fn skip_to(&mut self, first: i64) {
        if let Some(next) = self.next {
            self.lost += first.saturating_sub(next).max(0) as u64;
        }
        self.next = Some(first);
    }

    fn release(&mut self, out: &mut Vec<(i64, T)>) {
        while let Some(next) = self.next {
            let Some((_, item)) = self.held.remove(&next) else {
                break;
            };
            out.push((next, item));
            self.next = Some(next + 1);
        }
    }
}

/// A whole VP8 frame (the VP8 bitstream, without RTP payload descriptors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp8Frame {
    /// The frame's extended RTP timestamp.
    pub timestamp: i64,
    /// A keyframe (frame tag `P` bit clear).
    pub keyframe: bool,
    /// The bitstream.
    pub data: Vec<u8>,
}

/// Largest VP8 frame assembled; a larger one is dropped (and the decoder chain with it).
pub const MAX_VP8_FRAME: usize = 4 << 20;

/// Where a VP8 RTP payload's descriptor ends, whether the packet starts partition 0 of a
/// frame, and the offset of the VP8 bytes. `None` when the descriptor is truncated or no
/// VP8 bytes follow it.
pub fn vp8_descriptor(payload: &[u8]) -> Option<(bool, usize)> {
    let first = *payload.first()?;
    let start = first & 0x10 != 0 && first & 0x07 == 0;
    let mut at = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(at)?;
        at += 1;
        if ext & 0x80 != 0 {
            let pid = *payload.get(at)?;
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1;
        }
        if ext & 0x30 != 0 {
            at += 1;
        }
    }
    (payload.len() > at).then_some((start, at))
}

/// What happened to the frames of one VP8 source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vp8Counters {
    /// Frames handed out.
    pub frames: u64,
    /// Frames dropped: broken by a gap or a malformed packet, or not decodable because the
    /// keyframe they depend on was lost (or not seen yet).
    pub dropped_frames: u64,
    /// Payloads whose descriptor could not be read.
    pub malformed: u64,
}

/// Assembles VP8 frames from one source's packets in sequence order (see the module docs).
#[derive(Debug, Default)]
pub struct Vp8Assembler {
    last_seq: Option<i64>,
    /// The frame in progress: timestamp, keyframe, bytes.
    current: Option<(i64, bool, Vec<u8>)>,
    /// The timestamp of a broken frame whose remaining packets are being skipped.
    skipping: Option<i64>,
    /// Until a keyframe comes, frames are dropped (true at the start).
    need_keyframe: bool,
    /// Counters.
    pub counters: Vp8Counters,
}

impl Vp8Assembler {
    /// An assembler that waits for a keyframe first.
    pub fn new() -> Vp8Assembler {
        Vp8Assembler {
            need_keyframe: true,
            ..Vp8Assembler::default()
        }
    }

    /// Whether frames are being dropped until the next keyframe.
    pub fn needs_keyframe(&self) -> bool {
        self.need_keyframe
    }

    /// One packet (extended sequence number and timestamp, marker bit, payload); whole
    /// frames are appended to `out` (at most two: the previous one, ended by a timestamp
    /// change, and this one).
    pub fn push(
        &mut self,
        seq: i64,
        timestamp: i64,
        marker: bool,
        payload: &[u8],
        out: &mut Vec<Vp8Frame>,
    ) {
        let contiguous = self.last_seq.is_none_or(|last| seq == last + 1);
        self.last_seq = Some(seq);
        if !contiguous {
            self.break_chain(timestamp);
        }
        if payload.is_empty() {
            // RTP padding (bandwidth probing): it takes a sequence number, carries no media.
            return;
        }
        let Some((start, at)) = vp8_descriptor(payload) else {
            self.counters.malformed += 1;
            self.break_chain(timestamp);
            return;
        };
        // A new timestamp ends the frame before it (its marker may have been cleared).
        if self
            .current
            .as_ref()
            .is_some_and(|(ts, ..)| *ts != timestamp)
        {
            self.complete(out);
        }
        if self.skipping.is_some_and(|ts| ts != timestamp) {
            self.skipping = None;
        }
        if start {
            if self.current.is_some() {
                // A second start with the same timestamp: the packets are not one frame.
                self.break_chain(timestamp);
                return;
            }
            let keyframe = payload[at] & 0x01 == 0;
            self.current = Some((timestamp, keyframe, Vec::new()));
        }
        let Some((_, _, data)) = self.current.as_mut() else {
            // A middle packet of a frame whose start is gone: count that frame once.
            if self.skipping.is_none() {
                self.skipping = Some(timestamp);
                self.counters.dropped_frames += 1;
                self.need_keyframe = true;
            }
            return;
        };
        if data.len() + payload.len() - at > MAX_VP8_FRAME {
            self.break_chain(timestamp);
            return;
        }
        data.extend_from_slice(&payload[at..]);
        if marker {
            self.complete(out);
        }
    }

    /// The frame in progress is done: hand it out, or drop it while a keyframe is needed.
    fn complete(&mut self, out: &mut Vec<Vp8Frame>) {
        let Some((timestamp, keyframe, data)) = self.current.take() else {
            return;
        };
        if keyframe {
            self.need_keyframe = false;
        }
        if self.need_keyframe || data.is_empty() {
            self.counters.dropped_frames += 1;
            return;
        }
        self.counters.frames += 1;
        out.push(Vp8Frame {
            timestamp,
            keyframe,
            data,
        });
    }

    /// A packet was lost or unusable: the frame in progress is dropped, the rest of this
    /// timestamp's packets are skipped, and frames are dropped until the next keyframe.
    fn break_chain(&mut self, timestamp: i64) {
        if self.current.take().is_some() || self.skipping.is_none() {
            self.counters.dropped_frames += 1;
        }
        self.skipping = Some(timestamp);
        self.need_keyframe = true;
    }
}

/// The duration of an Opus packet in milliseconds (RFC 6716 §3.1), rounded up; `None` for
/// an empty or malformed packet.
pub fn opus_frame_ms(packet: &[u8]) -> Option<u64> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame size in 48 kHz samples: SILK 10/20/40/60 ms, hybrid 10/20 ms, CELT 2.5-20 ms.
    let samples: u64 = match config {
        0..=11 => [480, 960, 1920, 2880][(config % 4) as usize],
        12..=15 => [480, 960][(config % 2) as usize],
        _ => [120, 240, 480, 960][(config % 4) as usize],
    };
    let frames: u64 = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u64::from(*packet.get(1)? & 0x3f),
    };
    if frames == 0 {
        return None;
    }
    let total = samples * frames;
    // At most 120 ms per packet.
    (total <= 5760).then_some(total.div_ceil(48))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 RTP payload: descriptor with a 15-bit picture id, then VP8 bytes.
    fn vp8(start: bool, key: bool, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80 | if start { 0x10 } else { 0 }, 0x80, 0x81, 0x02];
        if start {
            p.push(if key { 0x10 } else { 0x11 });
        }
        p.extend_from_slice(body);
        p
    }

    fn assemble(a: &mut Vp8Assembler, packets: &[(i64, i64, bool, Vec<u8>)]) -> Vec<Vp8Frame> {
        let mut out = Vec::new();
        for (seq, ts, marker, payload) in packets {
            a.push(*seq, *ts, *marker, payload, &mut out);
        }
        out
    }

    #[test]
    fn joins_the_packets_of_a_frame_without_their_descriptors() {
        let mut a = Vp8Assembler::new();
        let frames = assemble(
            &mut a,
            &[
                (1, 100, false, vp8(true, true, b"ab")),
                (2, 100, false, vp8(false, false, b"cd")),
                (3, 100, true, vp8(false, false, b"ef")),
                (4, 3100, true, vp8(true, false, b"gh")),
            ],
        );
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].data, b"\x10abcdef");
        assert!(frames[0].keyframe);
        assert_eq!(frames[0].timestamp, 100);
        assert_eq!(frames[1].data, b"\x11gh");
        assert!(!frames[1].keyframe);
        assert_eq!(a.counters.frames, 2);
        assert_eq!(a.counters.dropped_frames, 0);
    }

    #[test]
    fn waits_for_a_keyframe_first() {
        let mut a = Vp8Assembler::new();
        let frames = assemble(
            &mut a,
            &[
                (1, 0, true, vp8(true, false, b"x")),
                (2, 3000, true, vp8(true, false, b"y")),
                (3, 6000, true, vp8(true, true, b"k")),
                (4, 9000, true, vp8(true, false, b"z")),
            ],
        );
        assert_eq!(frames.len(), 2);
        assert!(frames[0].keyframe);
        assert_eq!(a.counters.dropped_frames, 2);
    }

    #[test]
    fn a_gap_drops_the_broken_frame_and_everything_until_the_next_keyframe() {
        let mut a = Vp8Assembler::new();
        let frames = assemble(
            &mut a,
            &[
                (1, 0, true, vp8(true, true, b"k1")),
                (2, 3000, false, vp8(true, false, b"d1")),
                // seq 3 (the end of d1) is lost
                (4, 6000, true, vp8(true, false, b"d2")),
                (5, 9000, true, vp8(true, false, b"d3")),
                (6, 12000, false, vp8(true, true, b"k2")),
                (7, 12000, true, vp8(false, false, b"k2b")),
                (8, 15000, true, vp8(true, false, b"d4")),
            ],
        );
        let ts: Vec<i64> = frames.iter().map(|f| f.timestamp).collect();
        assert_eq!(ts, vec![0, 12000, 15000]);
        assert_eq!(frames[1].data, b"\x10k2k2b");
        assert_eq!(a.counters.dropped_frames, 3, "d1, d2, d3");
    }

    #[test]
    fn a_lost_first_packet_drops_that_frame() {
        let mut a = Vp8Assembler::new();
        let frames = assemble(
            &mut a,
            &[
                (1, 0, true, vp8(true, true, b"k")),
                // seq 2 (start of the next keyframe) lost
                (3, 3000, false, vp8(false, false, b"rest")),
                (4, 3000, true, vp8(false, false, b"rest")),
                (5, 6000, true, vp8(true, true, b"k2")),
            ],
        );
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].timestamp, 6000);
        assert_eq!(a.counters.dropped_frames, 1);
    }

    #[test]
    fn padding_takes_a_sequence_number_without_breaking_the_chain() {
        let mut a = Vp8Assembler::new();
        let frames = assemble(
            &mut a,
            &[
                (1, 0, true, vp8(true, true, b"k")),
                (2, 0, false, Vec::new()),
                (3, 0, false, Vec::new()),
                (4, 3000, true, vp8(true, false, b"d")),
            ],
        );
        assert_eq!(frames.len(), 2);
        assert_eq!(a.counters.dropped_frames + a.counters.malformed, 0);
    }

    #[test]
    fn a_missing_marker_ends_the_frame_at_the_next_timestamp() {
        let mut a = Vp8Assembler::new();
        let frames = assemble(
            &mut a,
            &[
                (10, 0, false, vp8(true, true, b"k")),
                (11, 3000, true, vp8(true, false, b"d")),
            ],
        );
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].data, b"\x10k");
    }

    #[test]
    fn malformed_payloads_are_counted_never_a_panic() {
        let mut a = Vp8Assembler::new();
        let mut out = Vec::new();
        a.push(1, 0, true, &vp8(true, true, b"k"), &mut out);
        for (i, bad) in [&[0x80][..], &[0x90, 0x80], &[0x90, 0x80, 0x81], &[0x10]]
            .iter()
            .enumerate()
        {
            a.push(2 + i as i64, 3000, true, bad, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(a.counters.malformed, 4);
        assert!(a.needs_keyframe());
        // Random bytes.
        let mut x: u32 = 7;
        for seq in 100..5000 {
            let len = (seq % 23) as usize;
            let p: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            a.push(seq, seq / 3, x & 1 == 0, &p, &mut out);
        }
    }

    #[test]
    fn reorder_puts_late_packets_back_in_place() {
        let mut r = Reorder::new(64, 100);
        let mut out = Vec::new();
        for (seq, at) in [(1u16, 0u64), (3, 1), (4, 2), (2, 3), (5, 4)] {
            r.push(seq, at, seq, &mut out);
        }
        let seqs: Vec<u16> = out.iter().map(|(_, s)| *s).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        assert_eq!((r.lost, r.late), (0, 0));
        // A duplicate and a packet older than what was released are dropped.
        r.push(5, 5, 5, &mut out);
        r.push(1, 5, 1, &mut out);
        assert_eq!(r.late, 2);
    }

    #[test]
    fn reorder_gives_up_on_a_lost_packet_after_the_wait() {
        let mut r = Reorder::new(64, 100);
        let mut out = Vec::new();
        r.push(1, 0, 1, &mut out);
        r.push(3, 10, 3, &mut out);
        r.push(4, 50, 4, &mut out);
        assert_eq!(out.len(), 1, "2 may still come");
        r.push(5, 110, 5, &mut out);
        let seqs: Vec<u16> = out.iter().map(|(_, s)| *s).collect();
        assert_eq!(seqs, vec![1, 3, 4, 5]);
        assert_eq!(r.lost, 1);
        // 2 arriving now is too late.
        r.push(2, 120, 2, &mut out);
        assert_eq!(r.late, 1);
    }

    #[test]
    fn reorder_gives_up_when_too_much_is_held_and_crosses_the_wraparound() {
        let mut r = Reorder::new(4, 10_000);
        let mut out = Vec::new();
        r.push(65_533, 0, 0, &mut out);
        // 65_534 lost; 65_535, 0, 1, 2, 3 arrive.
        for (i, seq) in [65_535u16, 0, 1, 2, 3].into_iter().enumerate() {
            r.push(seq, i as u64, i + 1, &mut out);
        }
        let ext: Vec<i64> = out.iter().map(|(e, _)| *e).collect();
        assert_eq!(ext, vec![65_533, 65_535, 65_536, 65_537, 65_538, 65_539]);
        assert_eq!(r.lost, 1);
    }

    #[test]
    fn reorder_flush_releases_everything_in_order() {
        let mut r = Reorder::new(64, 10_000);
        let mut out = Vec::new();
        for seq in [10u16, 13, 12, 15] {
            r.push(seq, 0, seq, &mut out);
        }
        r.flush(&mut out);
        let seqs: Vec<u16> = out.iter().map(|(_, s)| *s).collect();
        assert_eq!(seqs, vec![10, 12, 13, 15]);
        assert_eq!(r.lost, 2);
    }

    #[test]
    fn opus_durations_come_from_the_toc() {
        // config 31 (CELT FB 20 ms), one frame: WebRTC's usual packet.
        assert_eq!(opus_frame_ms(&[0xf8, 0xff, 0xfe]), Some(20));
        // config 1 (SILK NB 20 ms), code 1: two frames.
        assert_eq!(opus_frame_ms(&[0x09, 0, 0]), Some(40));
        // config 16 (CELT NB 2.5 ms), code 3 with 4 frames.
        assert_eq!(opus_frame_ms(&[0x83, 0x04]), Some(10));
        assert_eq!(opus_frame_ms(&[]), None);
        assert_eq!(opus_frame_ms(&[0x03]), None, "code 3 without a count");
        assert_eq!(opus_frame_ms(&[0x03, 0x00]), None, "zero frames");
        assert_eq!(opus_frame_ms(&[0x1b, 0x3f]), None, "over 120 ms");
    }
}
