//! Per-viewer VP8 payload descriptor rewriting: PictureID, TL0PICIDX and KEYIDX continuity.
//!
//! Every simulcast layer is its own encoder stream, and libwebrtc gives each one its own
//! PictureID, TL0PICIDX and KEYIDX counters, started at random values; a publisher that
//! reconnects starts new ones. A viewer that is switched to another layer, or keeps watching
//! across a reconnect, would see all three jump to an unrelated sequence. The receiver's VP8
//! reference finder keys its state by them (frames by PictureID, temporal base layers by
//! TL0PICIDX), so a jump can make it treat the new layer's delta frames as already decoded
//! or as missing their base layer: the keyframe decodes, the frames after it do not, until
//! the next keyframe. (RFC 7741 §4.2 defines the fields; DESIGN.md §9 has what was seen.)
//!
//! [`Vp8Rewriter`] gives each viewer one continuous sequence per field, the same way
//! [`crate::rewrite::SeqTsRewriter`] does for sequence numbers:
//!
//! - It follows the sequence number rewriter's **segments** ([`SegmentId`]): inside one
//!   segment (one source) every field is mapped with a constant offset, `out = orig + offset`
//!   modulo the field's range (2^15, 2^8, 2^5), so the encoder's own steps, gaps and
//!   reordering stay exactly as they were.
//! - A segment's offset for a field is fixed by the first packet of the segment that carries
//!   the field: its value maps to `highest + 1`, where `highest` is the newest value sent to
//!   this viewer so far (modular comparison). The first segment of a viewer has offset 0 (the
//!   publisher's values pass unchanged); a field a segment never carries keeps no offset.
//! - **Widths are preserved**: a 7-bit PictureID stays 7-bit (its value is extended to 15 bits
//!   against the previous one of its segment, mapped, and written modulo 128). The payload
//!   therefore keeps its length and bytes except the rewritten fields, which is what lets the
//!   driver apply the result as str0m's fixed-size `Vp8Patch` at serialization (no per-viewer
//!   copy of the payload, and RTX resends from str0m's cache are patched the same way).
//!   Promoting 7-bit ids to 15 bits would need a new payload per viewer and packet.
//! - Fields a packet does not carry (no `I`, `L` or `K` bit, or no extension byte at all) are
//!   left alone; the other fields are still rewritten.
//! - A payload whose descriptor does not parse ([`parse_descriptor`] fails: truncated, or
//!   TL0PICIDX without TID) is **forwarded unchanged**; the forwarder counts it
//!   (`Counters::vp8_unparsed`). Dropping it instead would leave a sequence gap the viewer
//!   NACKs in vain; the viewer's depacketizer discards such a packet anyway.
//!
//! State per viewer: three "highest" values and at most [`MAX_SEGMENTS`] offset records.
//! Nothing here allocates after the record deque has reached its bound, and nothing panics on
//! any input.

use std::collections::VecDeque;

use crate::rewrite::{MAX_CLOSED_SEGMENTS, SegmentId};

/// How many segments' offsets are remembered: the active one and as many closed ones as the
/// sequence number rewriter remembers (late packets of older segments are dropped there).
pub const MAX_SEGMENTS: usize = MAX_CLOSED_SEGMENTS + 1;

const PICTURE_ID_BITS: u32 = 15;
const TL0_BITS: u32 = 8;
const KEY_IDX_BITS: u32 = 5;

/// A PictureID as it is written in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureId {
    /// The value (below 2^15 when `long`, below 2^7 otherwise).
    pub value: u16,
    /// The 15-bit form (`M = 1`, two bytes); else the 7-bit form (one byte).
    pub long: bool,
}

/// The rewritable fields of a VP8 payload descriptor (RFC 7741 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Descriptor {
    /// PictureID, when `I = 1`.
    pub picture_id: Option<PictureId>,
    /// TL0PICIDX, when `L = 1`.
    pub tl0_pic_idx: Option<u8>,
    /// KEYIDX (5 bits), when `K = 1`.
    pub key_idx: Option<u8>,
}

/// Why a payload's VP8 descriptor could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vp8DescriptorError {
    /// The payload ends inside the descriptor, or right after it (no VP8 data).
    Short,
    /// `L = 1` without `T = 1` (TL0PICIDX without a TID), which RFC 7741 does not allow.
    Tl0WithoutTid,
}

/// Reads the descriptor of a VP8 RTP payload (the payload without the RTP header).
///
/// Accepts exactly what str0m's `Vp8Descriptor::parse` accepts, so every descriptor read here
/// can be patched by the driver.
pub fn parse_descriptor(payload: &[u8]) -> Result<Vp8Descriptor, Vp8DescriptorError> {
    let mut bytes = payload.iter().copied();
    let mut next = || bytes.next().ok_or(Vp8DescriptorError::Short);
    let mut d = Vp8Descriptor::default();
    let required = next()?;
    if required & 0x80 != 0 {
        let ext = next()?;
        let (has_pid, has_tl0, has_tid, has_key_idx) = (
            ext & 0x80 != 0,
            ext & 0x40 != 0,
            ext & 0x20 != 0,
            ext & 0x10 != 0,
        );
        if has_tl0 && !has_tid {
            return Err(Vp8DescriptorError::Tl0WithoutTid);
        }
        if has_pid {
            let first = next()?;
            d.picture_id = Some(if first & 0x80 != 0 {
                PictureId {
                    value: u16::from(first & 0x7f) << 8 | u16::from(next()?),
                    long: true,
                }
            } else {
                PictureId {
                    value: u16::from(first),
                    long: false,
                }
            });
        }
        if has_tl0 {
            d.tl0_pic_idx = Some(next()?);
        }
        if has_tid || has_key_idx {
            let byte = next()?;
            if has_key_idx {
                d.key_idx = Some(byte & 0x1f);
            }
        }
    }
    // At least one byte of VP8 data must follow.
    next()?;
    Ok(d)
}

/// New values for a packet's descriptor fields, each in the packet's own width. `None`
/// leaves a field as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Fields {
    /// PictureID (7-bit value when the packet uses the 7-bit form).
    pub picture_id: Option<u16>,
    /// TL0PICIDX.
    pub tl0_pic_idx: Option<u8>,
    /// KEYIDX (below 32).
    pub key_idx: Option<u8>,
}

impl Vp8Fields {
    /// Writes the fields into a copy of `payload`: what a viewer receives once str0m has
    /// applied the driver's patch (the tests check the bytes with it). `None` if the payload's
    /// descriptor does not parse.
    pub fn apply(&self, payload: &[u8]) -> Option<Vec<u8>> {
        parse_descriptor(payload).ok()?;
        let mut out = payload.to_vec();
        if out[0] & 0x80 == 0 {
            return Some(out);
        }
        let ext = out[1];
        let mut at = 2;
        if ext & 0x80 != 0 {
            let long = out[at] & 0x80 != 0;
            if let Some(v) = self.picture_id {
                if long {
                    out[at] = 0x80 | ((v >> 8) as u8 & 0x7f);
                    out[at + 1] = v as u8;
                } else {
                    out[at] = v as u8 & 0x7f;
                }
            }
            at += if long { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            if let Some(v) = self.tl0_pic_idx {
                out[at] = v;
            }
            at += 1;
        }
        if ext & 0x10 != 0 {
            if let Some(v) = self.key_idx {
                out[at] = (out[at] & !0x1f) | (v & 0x1f);
            }
        }
        Some(out)
    }
}

/// `a` is ahead of `b` in a `bits`-wide wrapping counter (half the range either way).
fn ahead(a: u16, b: u16, bits: u32) -> bool {
    let mask = (1u32 << bits) - 1;
    let d = (u32::from(a).wrapping_sub(u32::from(b))) & mask;
    d != 0 && d < 1 << (bits - 1)
}

fn add(a: u16, b: u16, bits: u32) -> u16 {
    ((u32::from(a) + u32::from(b)) & ((1 << bits) - 1)) as u16
}

fn sub(a: u16, b: u16, bits: u32) -> u16 {
    (u32::from(a).wrapping_sub(u32::from(b)) & ((1 << bits) - 1)) as u16
}

/// One field's continuity across segments: the newest value sent.
#[derive(Debug, Clone, Copy, Default)]
struct Continuity {
    highest: Option<u16>,
}

impl Continuity {
    /// The offset for a segment whose first value of this field is `orig`.
    fn offset_for(&self, orig: u16, bits: u32) -> u16 {
        match self.highest {
            Some(h) => sub(add(h, 1, bits), orig, bits),
            None => 0,
        }
    }

    fn sent(&mut self, out: u16, bits: u32) {
        if self.highest.is_none_or(|h| ahead(out, h, bits)) {
            self.highest = Some(out);
        }
    }
}

/// The offsets of one segment (`None`: the field has not appeared in it yet).
#[derive(Debug, Clone, Copy)]
struct SegmentOffsets {
    segment: SegmentId,
    picture_id: Option<u16>,
    tl0_pic_idx: Option<u16>,
    key_idx: Option<u16>,
    /// The newest original PictureID of the segment in 15 bits, to extend 7-bit ones.
    picture_id_ref: Option<u16>,
}

impl SegmentOffsets {
    /// A packet's PictureID in 15 bits (a 7-bit one extended against the segment's newest).
    fn extend(&self, pid: PictureId) -> u16 {
        if pid.long {
            return pid.value & 0x7fff;
        }
        let low = pid.value & 0x7f;
        match self.picture_id_ref {
            None => low,
            Some(r) => {
                let delta = (low.wrapping_sub(r) & 0x7f) as i16;
                let delta = if delta >= 64 { delta - 128 } else { delta };
                (r as i16).wrapping_add(delta) as u16 & 0x7fff
            }
        }
    }
}

/// Writes a 15-bit PictureID in the packet's width.
fn in_width(out15: u16, long: bool) -> u16 {
    if long { out15 } else { out15 & 0x7f }
}

/// Rewrites one viewer's VP8 descriptors. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct Vp8Rewriter {
    segments: VecDeque<SegmentOffsets>,
    picture_id: Continuity,
    tl0_pic_idx: Continuity,
    key_idx: Continuity,
}

impl Vp8Rewriter {
    /// A rewriter that has sent nothing.
    pub fn new() -> Vp8Rewriter {
        Vp8Rewriter::default()
    }

    /// The new field values for a packet the sequence number rewriter forwards in `segment`.
    /// `None` when nothing changes (the viewer's first segment, a descriptor without the
    /// fields) or the segment is too old to be remembered.
    pub fn rewrite(&mut self, segment: SegmentId, d: &Vp8Descriptor) -> Option<Vp8Fields> {
        let i = self.segment_index(segment)?;
        let seg = &mut self.segments[i];
        let mut fields = Vp8Fields::default();
        if let Some(pid) = d.picture_id {
            let orig = seg.extend(pid);
            if seg
                .picture_id_ref
                .is_none_or(|r| ahead(orig, r, PICTURE_ID_BITS))
            {
                seg.picture_id_ref = Some(orig);
            }
            let offset = *seg
                .picture_id
                .get_or_insert_with(|| self.picture_id.offset_for(orig, PICTURE_ID_BITS));
            let out = add(orig, offset, PICTURE_ID_BITS);
            self.picture_id.sent(out, PICTURE_ID_BITS);
            fields.picture_id = (offset != 0).then_some(in_width(out, pid.long));
        }
        if let Some(tl0) = d.tl0_pic_idx {
            let orig = u16::from(tl0);
            let offset = *seg
                .tl0_pic_idx
                .get_or_insert_with(|| self.tl0_pic_idx.offset_for(orig, TL0_BITS));
            let out = add(orig, offset, TL0_BITS);
            self.tl0_pic_idx.sent(out, TL0_BITS);
            fields.tl0_pic_idx = (offset != 0).then_some(out as u8);
        }
        if let Some(key_idx) = d.key_idx {
            let orig = u16::from(key_idx & 0x1f);
            let offset = *seg
                .key_idx
                .get_or_insert_with(|| self.key_idx.offset_for(orig, KEY_IDX_BITS));
            let out = add(orig, offset, KEY_IDX_BITS);
            self.key_idx.sent(out, KEY_IDX_BITS);
            fields.key_idx = (offset != 0).then_some(out as u8);
        }
        (fields != Vp8Fields::default()).then_some(fields)
    }

    /// The record of `segment`, created when it is newer than every known one.
    fn segment_index(&mut self, segment: SegmentId) -> Option<usize> {
        if self.segments.back().is_none_or(|s| s.segment < segment) {
            if self.segments.len() == MAX_SEGMENTS {
                self.segments.pop_front();
            }
            self.segments.push_back(SegmentOffsets {
                segment,
                picture_id: None,
                tl0_pic_idx: None,
                key_idx: None,
                picture_id_ref: None,
            });
            return Some(self.segments.len() - 1);
        }
        self.segments.iter().rposition(|s| s.segment == segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor with the given fields and one byte of VP8 data.
    fn payload(
        pid: Option<PictureId>,
        tl0: Option<u8>,
        tid: Option<u8>,
        key: Option<u8>,
    ) -> Vec<u8> {
        let mut ext = 0u8;
        let mut rest = Vec::new();
        if let Some(p) = pid {
            ext |= 0x80;
            if p.long {
                rest.extend_from_slice(&[0x80 | (p.value >> 8) as u8, p.value as u8]);
            } else {
                rest.push(p.value as u8);
            }
        }
        if let Some(t) = tl0 {
            ext |= 0x40;
            rest.push(t);
        }
        if tid.is_some() || key.is_some() {
            ext |= (if tid.is_some() { 0x20 } else { 0 }) | (if key.is_some() { 0x10 } else { 0 });
            rest.push((tid.unwrap_or(0) << 6) | 0x20 | key.unwrap_or(0));
        }
        let mut p = vec![0x90, ext];
        p.extend_from_slice(&rest);
        p.extend_from_slice(&[0x10, 0x02, 0x00]);
        p
    }

    fn long(value: u16) -> Option<PictureId> {
        Some(PictureId { value, long: true })
    }

    fn short(value: u16) -> Option<PictureId> {
        Some(PictureId { value, long: false })
    }

    /// A frame of a simulated encoder: PictureID, TL0PICIDX, KEYIDX.
    fn desc(pid: u16, tl0: u8, key_idx: u8) -> Vp8Descriptor {
        parse_descriptor(&payload(long(pid), Some(tl0), Some(0), Some(key_idx))).unwrap()
    }

    /// The values a viewer sees for `d` given the rewrite result.
    fn seen(d: &Vp8Descriptor, f: Option<Vp8Fields>) -> (u16, u8, u8) {
        let f = f.unwrap_or_default();
        (
            f.picture_id.unwrap_or(d.picture_id.unwrap().value),
            f.tl0_pic_idx.unwrap_or(d.tl0_pic_idx.unwrap()),
            f.key_idx.unwrap_or(d.key_idx.unwrap()),
        )
    }

    #[test]
    fn parses_every_field_and_width() {
        let d = parse_descriptor(&payload(long(0x1234), Some(7), Some(1), Some(9))).unwrap();
        assert_eq!(d.picture_id, long(0x1234));
        assert_eq!((d.tl0_pic_idx, d.key_idx), (Some(7), Some(9)));
        let d = parse_descriptor(&payload(short(0x55), None, None, None)).unwrap();
        assert_eq!(d.picture_id, short(0x55));
        assert_eq!((d.tl0_pic_idx, d.key_idx), (None, None));
        // TID without KEYIDX: the byte is there, KEYIDX is not reported.
        let d = parse_descriptor(&payload(None, Some(3), Some(2), None)).unwrap();
        assert_eq!(
            (d.picture_id, d.tl0_pic_idx, d.key_idx),
            (None, Some(3), None)
        );
        // No extension at all (X = 0).
        assert_eq!(
            parse_descriptor(&[0x10, 0x00]),
            Ok(Vp8Descriptor::default())
        );
    }

    #[test]
    fn short_and_malformed_descriptors_are_errors_never_panics() {
        let full = payload(long(0x1234), Some(7), Some(1), Some(9));
        // Every truncation, down to nothing, including the descriptor without VP8 data.
        for len in 0..full.len() - 3 {
            assert_eq!(
                parse_descriptor(&full[..len]),
                Err(Vp8DescriptorError::Short),
                "{len} bytes"
            );
        }
        assert!(parse_descriptor(&full[..full.len() - 2]).is_ok());
        // L without T.
        assert_eq!(
            parse_descriptor(&[0x90, 0x40, 0x05, 0x10]),
            Err(Vp8DescriptorError::Tl0WithoutTid)
        );
        // Arbitrary bytes: no panic, and a parsed descriptor can always be applied.
        let mut x = 0x2545_f491_u32;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let bytes: Vec<u8> = x.to_le_bytes()[..(x % 5) as usize].to_vec();
            let mut p = vec![(x >> 8) as u8, (x >> 16) as u8];
            p.extend_from_slice(&bytes);
            if parse_descriptor(&p).is_ok() {
                let all = Vp8Fields {
                    picture_id: Some(1),
                    tl0_pic_idx: Some(2),
                    key_idx: Some(3),
                };
                assert_eq!(all.apply(&p).unwrap().len(), p.len());
            } else {
                assert_eq!(Vp8Fields::default().apply(&p), None);
            }
        }
    }

    #[test]
    fn first_segment_passes_unchanged_and_a_switch_continues_at_highest_plus_one() {
        let mut r = Vp8Rewriter::new();
        // Low layer: pid 1000.., tl0 50.., keyidx 3.
        for i in 0..5 {
            assert_eq!(
                r.rewrite(SegmentId(0), &desc(1000 + i, 50 + i as u8, 3)),
                None
            );
        }
        // Switch to high: an unrelated encoder (pid 20_000, tl0 200, keyidx 17).
        let k = desc(20_000, 200, 17);
        assert_eq!(seen(&k, r.rewrite(SegmentId(1), &k)), (1005, 55, 4));
        // Its second packet of the same frame: same values.
        assert_eq!(seen(&k, r.rewrite(SegmentId(1), &k)), (1005, 55, 4));
        // Next frames keep the encoder's own steps, including a skipped picture id.
        let d = desc(20_001, 200, 17);
        assert_eq!(seen(&d, r.rewrite(SegmentId(1), &d)), (1006, 55, 4));
        let d = desc(20_003, 201, 17);
        assert_eq!(seen(&d, r.rewrite(SegmentId(1), &d)), (1008, 56, 4));
        // A reordered frame of the segment gets its place.
        let d = desc(20_002, 201, 17);
        assert_eq!(seen(&d, r.rewrite(SegmentId(1), &d)), (1007, 56, 4));
        // A late packet of the closed low segment keeps the low segment's (zero) offsets.
        assert_eq!(r.rewrite(SegmentId(0), &desc(1004, 54, 3)), None);
        // Back to low (a publisher reconnect looks the same): continues after 1008.
        let k = desc(1010, 60, 3);
        assert_eq!(seen(&k, r.rewrite(SegmentId(2), &k)), (1009, 57, 5));
    }

    #[test]
    fn every_field_wraps_around() {
        let mut r = Vp8Rewriter::new();
        // The viewer's numbers are at the top of each range.
        r.rewrite(SegmentId(0), &desc(0x7ffe, 254, 30));
        r.rewrite(SegmentId(0), &desc(0x7fff, 255, 31));
        let k = desc(300, 9, 0);
        assert_eq!(seen(&k, r.rewrite(SegmentId(1), &k)), (0, 0, 0));
        // The source wraps inside its segment too.
        let mut r = Vp8Rewriter::new();
        r.rewrite(SegmentId(0), &desc(10, 10, 10));
        let k = desc(0x7fff, 255, 31);
        assert_eq!(seen(&k, r.rewrite(SegmentId(1), &k)), (11, 11, 11));
        let d = desc(0, 0, 0);
        assert_eq!(seen(&d, r.rewrite(SegmentId(1), &d)), (12, 12, 12));
        // Highest is compared modulo the range: 12 is ahead of 11 after the source's wrap.
        let k = desc(5000, 77, 7);
        assert_eq!(seen(&k, r.rewrite(SegmentId(2), &k)), (13, 13, 13));
    }

    #[test]
    fn seven_bit_picture_ids_keep_their_width() {
        let mut r = Vp8Rewriter::new();
        r.rewrite(SegmentId(0), &desc(0x0200, 1, 1));
        // A 7-bit source from 120, wrapping at 128.
        let seq: Vec<u16> = (0..12)
            .map(|i| {
                let p = payload(short((120 + i) % 128), None, None, None);
                let d = parse_descriptor(&p).unwrap();
                let f = r.rewrite(SegmentId(1), &d).unwrap();
                let out = f.apply(&p).unwrap();
                assert_eq!(out.len(), p.len(), "the width is kept");
                assert_eq!(out[2] & 0x80, 0, "M stays 0");
                u16::from(out[2])
            })
            .collect();
        let want: Vec<u16> = (0..12).map(|i| (0x0201 + i) & 0x7f).collect();
        assert_eq!(seq, want);
        // The next 15-bit segment continues after the 15-bit value behind them.
        let k = desc(9, 9, 9);
        assert_eq!(seen(&k, r.rewrite(SegmentId(2), &k)).0, 0x0201 + 12);
    }

    #[test]
    fn missing_fields_are_left_alone_and_get_offsets_when_they_appear() {
        let mut r = Vp8Rewriter::new();
        r.rewrite(SegmentId(0), &desc(100, 100, 10));
        // New segment without I and K: only TL0PICIDX changes.
        let p = payload(None, Some(7), Some(0), None);
        let d = parse_descriptor(&p).unwrap();
        let f = r.rewrite(SegmentId(1), &d).unwrap();
        assert_eq!(
            f,
            Vp8Fields {
                picture_id: None,
                tl0_pic_idx: Some(101),
                key_idx: None
            }
        );
        // The PictureID shows up later in the segment: it continues from 100.
        let d = desc(555, 8, 0);
        assert_eq!(seen(&d, r.rewrite(SegmentId(1), &d)), (101, 102, 11));
        // No extension at all: nothing to do.
        assert_eq!(r.rewrite(SegmentId(1), &Vp8Descriptor::default()), None);
        assert_eq!(r.rewrite(SegmentId(2), &Vp8Descriptor::default()), None);
    }

    #[test]
    fn forgotten_segments_are_left_alone() {
        let mut r = Vp8Rewriter::new();
        r.rewrite(SegmentId(0), &desc(100, 1, 1));
        let d = desc(9000, 50, 20);
        assert!(r.rewrite(SegmentId(1), &d).is_some());
        for s in 2..(2 + MAX_SEGMENTS as u64) {
            r.rewrite(SegmentId(s), &desc(s as u16 * 1000, 0, 0));
        }
        assert_eq!(r.segments.len(), MAX_SEGMENTS);
        assert_eq!(r.rewrite(SegmentId(1), &d), None, "a forgotten segment");
    }

    #[test]
    fn apply_changes_only_the_fields() {
        let p = payload(long(0x1234), Some(7), Some(2), Some(9));
        let f = Vp8Fields {
            picture_id: Some(0x7abc),
            tl0_pic_idx: Some(0xee),
            key_idx: Some(0x1f),
        };
        let out = f.apply(&p).unwrap();
        let d = parse_descriptor(&out).unwrap();
        assert_eq!(d.picture_id, long(0x7abc));
        assert_eq!((d.tl0_pic_idx, d.key_idx), (Some(0xee), Some(0x1f)));
        assert_eq!(out[0..2], p[0..2]);
        assert_eq!(out[5] & 0xe0, p[5] & 0xe0, "TID and Y are kept");
        assert_eq!(out[6..], p[6..]);
    }
}
