//! What a WHEP viewer of `whep-viewers` counts on each received RTP stream, without IO:
//! packets received and packets lost (RFC 3550 §A.3: extended highest sequence number −
//! first + 1 − received, from 16-bit sequence numbers that wrap), and whether a VP8 payload
//! starts a keyframe (the first frame a viewer can decode).
//!
//! Invariant: `expected() − received()` counts sequence numbers never seen between the
//! first and the highest (the loss); a duplicate counts as received (as RFC 3550 does), so the loss
//! of a window is clamped at 0.

/// Received and expected packets of one RTP stream (one SSRC: the relay rewrites every
/// viewer's stream onto one).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeqTracker {
    /// Extended (32-bit, counting wraps) sequence number of the first packet.
    first: Option<u64>,
    /// Extended highest sequence number seen.
    highest: u64,
    received: u64,
    /// Packets that were not ahead of the highest: duplicates (e.g. retransmissions of
    /// packets that had arrived) or reordered ones.
    late: u64,
}

/// How far a sequence number may jump ahead of the highest and still count as newer
/// (RFC 3550's MAX_DROPOUT); anything further back is a late (reordered) packet.
const MAX_DROPOUT: u16 = 3000;

impl SeqTracker {
    pub fn record(&mut self, seq: u16) {
        self.received += 1;
        let Some(_) = self.first else {
            // Start one wrap up, so a reordered packet from just before the first one can
            // still be placed below it.
            let extended = (1u64 << 16) | u64::from(seq);
            self.first = Some(extended);
            self.highest = extended;
            return;
        };
        let last = self.highest as u16;
        let ahead = seq.wrapping_sub(last);
        if ahead != 0 && ahead < MAX_DROPOUT {
            self.highest += u64::from(ahead);
            return;
        }
        self.late += 1;
        if ahead != 0 {
            // Behind the highest: a late packet. It may be older than the first one seen.
            let behind = u64::from(last.wrapping_sub(seq));
            let extended = self.highest.saturating_sub(behind);
            if let Some(first) = self.first
                && extended < first
            {
                self.first = Some(extended);
            }
        }
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn late(&self) -> u64 {
        self.late
    }

    /// Sequence numbers from the first to the highest, inclusive.
    pub fn expected(&self) -> u64 {
        self.first.map_or(0, |first| self.highest - first + 1)
    }
}

/// (received, expected) of a tracker at one moment: a window's loss is the difference of
/// two of them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub received: u64,
    pub expected: u64,
    pub late: u64,
}

impl Snapshot {
    pub fn of(tracker: &SeqTracker) -> Snapshot {
        Snapshot {
            received: tracker.received(),
            expected: tracker.expected(),
            late: tracker.late(),
        }
    }

    /// Packets received and lost between `earlier` and `self`. A late packet that filled
    /// a gap counts as received, so a window's loss is what was still missing at its end.
    pub fn since(&self, earlier: &Snapshot) -> (u64, u64) {
        let received = self.received.saturating_sub(earlier.received);
        let expected = self.expected.saturating_sub(earlier.expected);
        (received, expected.saturating_sub(received))
    }
}

/// Whether an RTP payload (VP8 payload descriptor, RFC 7741 §4.2, then the VP8 frame)
/// is the first packet of a keyframe: S = 1 and partition 0 in the descriptor, then a frame
/// tag with P = 0 and the keyframe start code `9d 01 2a`.
pub fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let start_of_partition = first & 0x10 != 0;
    let partition = first & 0x07;
    if !start_of_partition || partition != 0 {
        return false;
    }
    let mut at = 1;
    if first & 0x80 != 0 {
        // X: an extension byte I L T K, then the fields it announces.
        let Some(&extension) = payload.get(1) else {
            return false;
        };
        at = 2;
        if extension & 0x80 != 0 {
            // I: a PictureID of 7 bits, or 15 when its first bit (M) is set.
            let Some(&picture_id) = payload.get(at) else {
                return false;
            };
            at += if picture_id & 0x80 != 0 { 2 } else { 1 };
        }
        if extension & 0x40 != 0 {
            at += 1; // L: TL0PICIDX
        }
        if extension & 0x30 != 0 {
            at += 1; // T or K: TID/Y/KEYIDX
        }
    }
    let Some(frame) = payload.get(at..) else {
        return false;
    };
    frame.len() >= 6 && frame[0] & 0x01 == 0 && frame[3..6] == [0x9d, 0x01, 0x2a]
}

#[cfg(test)]
mod tests {
    use super::*;

    impl SeqTracker {
        fn lost(&self) -> u64 {
            self.expected().saturating_sub(self.received)
        }
    }

    fn tracker(seqs: &[u16]) -> SeqTracker {
        let mut t = SeqTracker::default();
        for &s in seqs {
            t.record(s);
        }
        t
    }

    #[test]
    fn a_continuous_stream_loses_nothing() {
        let t = tracker(&[10, 11, 12, 13]);
        assert_eq!((t.received(), t.expected(), t.lost()), (4, 4, 0));
    }

    #[test]
    fn gaps_are_counted_across_the_wrap() {
        // 65534, 65535, (0 lost), 1, (2, 3 lost), 4
        let t = tracker(&[65534, 65535, 1, 4]);
        assert_eq!((t.received(), t.expected(), t.lost()), (4, 7, 3));
    }

    #[test]
    fn a_late_packet_fills_its_gap_and_one_before_the_first_extends_the_range() {
        let t = tracker(&[100, 102, 101]);
        assert_eq!((t.lost(), t.late()), (0, 1));
        // 5 arrives first, then 3 (late): 3, (4 lost), 5.
        let t = tracker(&[5, 3]);
        assert_eq!((t.received(), t.expected(), t.lost()), (2, 3, 1));
        // The same just after a wrap: 1 first, then 65535 (late), 0 never.
        let t = tracker(&[1, 65535]);
        assert_eq!((t.expected(), t.lost()), (3, 1));
    }

    #[test]
    fn many_wraps_keep_counting() {
        let mut t = SeqTracker::default();
        let mut seq: u16 = 60000;
        for i in 0..200_000u32 {
            if i % 1000 != 999 {
                t.record(seq);
            }
            seq = seq.wrapping_add(1);
        }
        assert_eq!(
            t.expected(),
            199_999,
            "the last one (i = 199,999) was skipped"
        );
        assert_eq!(t.lost(), 199);
    }

    #[test]
    fn duplicates_do_not_make_loss_negative_and_windows_subtract() {
        let mut t = tracker(&[1, 2, 2, 3]);
        assert_eq!((t.lost(), t.late()), (0, 1));
        let before = Snapshot::of(&t);
        for s in [4, 5, 8, 9] {
            t.record(s);
        }
        // 4, 5, (6, 7 lost), 8, 9
        assert_eq!(Snapshot::of(&t).since(&before), (4, 2));
    }

    #[test]
    fn vp8_keyframe_starts_are_told_from_other_packets() {
        let frame = |key: bool| {
            let mut f = vec![if key { 0x10 } else { 0x11 }, 0x02, 0x00];
            f.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]);
            f
        };
        // Minimal descriptor: S = 1, partition 0.
        let mut key = vec![0x10];
        key.extend(frame(true));
        assert!(vp8_starts_keyframe(&key));
        // With X, I (15-bit PictureID), L, T: 1 + 1 + 2 + 1 + 1 descriptor bytes.
        let mut extended = vec![0x90, 0xe0, 0x81, 0x02, 0x05, 0x20];
        extended.extend(frame(true));
        assert!(vp8_starts_keyframe(&extended));
        // A delta frame, a continuation packet, a non-zero partition, too short.
        let mut delta = vec![0x10];
        delta.extend(frame(false));
        assert!(!vp8_starts_keyframe(&delta));
        let mut continuation = vec![0x00];
        continuation.extend(frame(true));
        assert!(!vp8_starts_keyframe(&continuation));
        let mut partition = vec![0x11];
        partition.extend(frame(true));
        assert!(!vp8_starts_keyframe(&partition));
        assert!(!vp8_starts_keyframe(&[0x90, 0x80]));
        assert!(!vp8_starts_keyframe(&[]));
    }
}
