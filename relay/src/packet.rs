//! The minimal view of an RTP packet that the forwarding core needs, and keyframe detection.
//!
//! The driver builds an [`InboundPacket`] from str0m's `Event::RtpPacket` (header fields, the
//! layer it mapped from the stream's RID, and the payload `Arc<[u8]>` str0m already allocated).
//! The core never parses the RTP header itself: str0m did that, and SRTP too.
//!
//! The payload is a [`Payload`] (`Arc<[u8]>`): forwarding one packet to N viewers clones the
//! pointer N times and never copies the bytes. `Arc<[u8]>` rather than `bytes::Bytes` because
//! it is the type str0m hands out (`RtpPacket::payload`) and takes back
//! (`RtpWrite::new(.., payload: impl Into<Arc<[u8]>>)`); a `Bytes` would have to be copied into
//! a new `Arc<[u8]>` for every viewer on the way out.
//!
//! Keyframe detection looks at the codec payload only (never at header extensions):
//! - **VP8** (RFC 7741): start of partition (`S = 1`, `PID = 0`) and the frame tag's `P` bit
//!   clear, with the keyframe start code `9d 01 2a` present.
//! - **H.264** (RFC 6184): a NAL unit of type 5 (IDR) or 7 (SPS) as a single NAL unit, inside a
//!   STAP-A, or as the first fragment (`S = 1`) of an FU-A.
//! - **Opus** and every other audio codec: always "key"; any audio packet is a valid place to
//!   start forwarding.
//! - Other video codecs (VP9, AV1): not detected yet, so never "key".
//!
//! Every parser returns `false` on truncated or malformed input; none panics.

use std::sync::Arc;

/// A shared RTP payload (without the RTP header). Cloning is a reference-count increment.
pub type Payload = Arc<[u8]>;

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Audio (Opus). One layer only.
    Audio,
    /// Video (VP8, H.264). Up to [`LayerId::COUNT`] simulcast layers.
    Video,
}

/// The codec of a publisher track, as negotiated in SDP. Decides keyframe detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Opus audio.
    Opus,
    /// VP8 video.
    Vp8,
    /// H.264 video (packetization mode 0 or 1).
    H264,
    /// Anything else. Audio packets of any codec count as keyframes; video packets never do.
    Other,
}

/// A simulcast layer, by quality rank: 0 is the lowest resolution/bitrate.
///
/// The driver maps a stream's RID (`StreamRx::rid()` in str0m) to a rank; a track without
/// simulcast has only [`LayerId::LOW`]. Audio always uses [`LayerId::LOW`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerId(u8);

impl LayerId {
    /// How many layers a track can have (three RIDs).
    pub const COUNT: usize = 3;
    /// The lowest layer; also the only layer of audio and of video without simulcast.
    pub const LOW: LayerId = LayerId(0);
    /// The middle layer.
    pub const MID: LayerId = LayerId(1);
    /// The highest layer.
    pub const HIGH: LayerId = LayerId(2);
    /// All layers, lowest first.
    pub const ALL: [LayerId; LayerId::COUNT] = [LayerId::LOW, LayerId::MID, LayerId::HIGH];

    /// The layer with this rank, or `None` when `rank >= COUNT`.
    pub fn new(rank: u8) -> Option<LayerId> {
        ((rank as usize) < Self::COUNT).then_some(LayerId(rank))
    }

    /// The rank as an index into per-layer arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One incarnation of one publisher stream: the unit that sequence numbers, timestamps and
/// the packet cache belong to.
///
/// A new key is made when a `(kind, layer)` track starts, changes SSRC, jumps its sequence
/// numbers (an encoder restart), or comes back after the publisher left; `generation` is
/// unique within one forwarder, so a publisher that reconnects with the same SSRC still gets
/// a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceKey {
    /// Audio or video.
    pub kind: MediaKind,
    /// Simulcast layer.
    pub layer: LayerId,
    /// The publisher's SSRC.
    pub ssrc: u32,
    /// Unique per forwarder; increases with every new source.
    pub generation: u32,
}

/// The RTP header fields the core uses (str0m's `RtpHeader` has many more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    /// Synchronisation source of the publisher's stream.
    pub ssrc: u32,
    /// The publisher's 16-bit sequence number.
    pub seq: u16,
    /// The publisher's RTP timestamp.
    pub timestamp: u32,
    /// Marker bit (end of a video frame; start of a talk spurt for audio).
    pub marker: bool,
    /// The publisher's payload type. The driver maps it to each viewer's negotiated one.
    pub payload_type: u8,
}

/// One RTP packet from the publisher, as the core sees it.
#[derive(Debug, Clone)]
pub struct InboundPacket {
    /// Audio or video.
    pub kind: MediaKind,
    /// Simulcast layer (always [`LayerId::LOW`] for audio).
    pub layer: LayerId,
    /// Header fields.
    pub header: PacketHeader,
    /// The codec, as negotiated for the packet's payload type.
    pub codec: Codec,
    /// Whether a decoder can start at this packet (see the module docs). Always true for audio.
    pub keyframe: bool,
    /// Payload without the RTP header. Empty means padding only.
    pub payload: Payload,
}

impl InboundPacket {
    /// Builds the packet view and detects whether it starts a keyframe.
    pub fn new(
        kind: MediaKind,
        layer: LayerId,
        codec: Codec,
        header: PacketHeader,
        payload: Payload,
    ) -> InboundPacket {
        let keyframe = is_keyframe_start(kind, codec, &payload);
        let layer = match kind {
            MediaKind::Audio => LayerId::LOW,
            MediaKind::Video => layer,
        };
        InboundPacket {
            kind,
            layer,
            header,
            codec,
            keyframe,
            payload,
        }
    }

    /// True when the packet carries no media (RTP padding only).
    pub fn is_padding(&self) -> bool {
        self.payload.is_empty()
    }
}

/// Whether a packet of this kind and codec is a place where a decoder can start.
pub fn is_keyframe_start(kind: MediaKind, codec: Codec, payload: &[u8]) -> bool {
    match kind {
        MediaKind::Audio => true,
        MediaKind::Video => match codec {
            Codec::Vp8 => vp8_is_keyframe_start(payload),
            Codec::H264 => h264_is_keyframe(payload),
            Codec::Opus | Codec::Other => false,
        },
    }
}

/// VP8 (RFC 7741 §4.2–4.3): the first packet of a keyframe.
///
/// Requires the start of partition 0 (`S = 1`, `PID = 0`), a frame tag with the `P`
/// (inverse key frame) bit clear, and the keyframe start code `9d 01 2a`.
pub fn vp8_is_keyframe_start(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x07;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut offset = 1;
    if extended {
        let Some(&ext) = payload.get(offset) else {
            return false;
        };
        offset += 1;
        let has_picture_id = ext & 0x80 != 0;
        let has_tl0picidx = ext & 0x40 != 0;
        let has_tid_or_keyidx = ext & 0x30 != 0;
        if has_picture_id {
            let Some(&pid) = payload.get(offset) else {
                return false;
            };
            // M bit: a 15-bit picture id takes two bytes.
            offset += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if has_tl0picidx {
            offset += 1;
        }
        if has_tid_or_keyidx {
            offset += 1;
        }
    }
    // Frame tag (3 bytes) then, for keyframes, the start code (3 bytes).
    let Some(frame) = payload.get(offset..) else {
        return false;
    };
    if frame.len() < 6 {
        return false;
    }
    let inverse_key_frame = frame[0] & 0x01 != 0;
    !inverse_key_frame && frame[3..6] == [0x9d, 0x01, 0x2a]
}

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;

fn h264_starts_keyframe(nal_type: u8) -> bool {
    nal_type == H264_IDR || nal_type == H264_SPS
}

/// H.264 (RFC 6184): whether the packet starts (or is) an IDR picture or carries an SPS.
///
/// Single NAL unit packets (types 1–23), STAP-A (24: any aggregated NAL unit) and FU-A (28:
/// only the first fragment) are understood; STAP-B, MTAP and FU-B are not used by WebRTC
/// (packetization mode 1) and count as non-key.
pub fn h264_is_keyframe(payload: &[u8]) -> bool {
    let Some(&nal_header) = payload.first() else {
        return false;
    };
    match nal_header & 0x1f {
        t @ 1..=23 => h264_starts_keyframe(t),
        H264_STAP_A => {
            let mut rest = &payload[1..];
            while rest.len() >= 2 {
                let size = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                rest = &rest[2..];
                if size == 0 || size > rest.len() {
                    return false;
                }
                if h264_starts_keyframe(rest[0] & 0x1f) {
                    return true;
                }
                rest = &rest[size..];
            }
            false
        }
        H264_FU_A => {
            let Some(&fu_header) = payload.get(1) else {
                return false;
            };
            let start = fu_header & 0x80 != 0;
            start && h264_starts_keyframe(fu_header & 0x1f)
        }
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A VP8 payload: descriptor with a 15-bit picture id, then a frame tag and start code.
    pub(crate) fn vp8_payload(keyframe: bool, start: bool) -> Vec<u8> {
        let mut p = vec![0x80 | if start { 0x10 } else { 0 }, 0x80, 0x80 | 0x12, 0x34];
        // Frame tag: P bit (bit 0) clear for a keyframe, then the start code.
        p.push(if keyframe { 0x10 } else { 0x11 });
        p.extend_from_slice(&[0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
        p
    }

    #[test]
    fn vp8_keyframe_needs_start_partition_zero_and_p_clear() {
        assert!(vp8_is_keyframe_start(&vp8_payload(true, true)));
        assert!(!vp8_is_keyframe_start(&vp8_payload(false, true)));
        assert!(!vp8_is_keyframe_start(&vp8_payload(true, false)));
        // Partition id 1 is not the start of the frame.
        let mut p = vp8_payload(true, true);
        p[0] |= 0x01;
        assert!(!vp8_is_keyframe_start(&p));
        // Minimal descriptor (no X), 7-bit picture id, TL0PICIDX and TID variants.
        let tail = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
        let mut short = vec![0x10];
        short.extend_from_slice(&tail);
        assert!(vp8_is_keyframe_start(&short));
        let mut all = vec![0x90, 0xe0, 0x05, 0x07, 0x20];
        all.extend_from_slice(&tail);
        assert!(vp8_is_keyframe_start(&all));
        // Wrong start code.
        let mut bad = short.clone();
        bad[5] = 0x00;
        assert!(!vp8_is_keyframe_start(&bad));
    }

    #[test]
    fn vp8_truncated_input_is_not_key_and_never_panics() {
        let full = vp8_payload(true, true);
        for n in 0..full.len() {
            let _ = vp8_is_keyframe_start(&full[..n]);
        }
        assert!(!vp8_is_keyframe_start(&[]));
        assert!(!vp8_is_keyframe_start(&[0x90]));
        assert!(!vp8_is_keyframe_start(&[0x90, 0x80]));
    }

    #[test]
    fn h264_single_nal_types() {
        assert!(h264_is_keyframe(&[0x65, 0x88])); // IDR
        assert!(h264_is_keyframe(&[0x67, 0x42])); // SPS
        assert!(!h264_is_keyframe(&[0x68, 0xce])); // PPS alone
        assert!(!h264_is_keyframe(&[0x41, 0x9a])); // non-IDR slice
        assert!(!h264_is_keyframe(&[]));
    }

    #[test]
    fn h264_stap_a_with_sps_or_idr() {
        // STAP-A: [hdr][len=2][SPS..][len=2][PPS..]
        let stap = [0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce];
        assert!(h264_is_keyframe(&stap));
        let stap_idr_second = [0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x02, 0x65, 0x88];
        assert!(h264_is_keyframe(&stap_idr_second));
        let stap_plain = [0x78, 0x00, 0x02, 0x41, 0x9a, 0x00, 0x02, 0x06, 0x05];
        assert!(!h264_is_keyframe(&stap_plain));
        // A length running past the end is malformed.
        assert!(!h264_is_keyframe(&[0x78, 0x00, 0x09, 0x67]));
        assert!(!h264_is_keyframe(&[0x78, 0x00]));
    }

    #[test]
    fn h264_fu_a_only_first_fragment_of_idr() {
        assert!(h264_is_keyframe(&[0x7c, 0x85, 0x88])); // FU-A, S=1, type 5
        assert!(!h264_is_keyframe(&[0x7c, 0x05, 0x88])); // middle fragment
        assert!(!h264_is_keyframe(&[0x7c, 0x45, 0x88])); // end fragment
        assert!(!h264_is_keyframe(&[0x7c, 0x81, 0x88])); // start of a non-IDR slice
        assert!(!h264_is_keyframe(&[0x7c]));
    }

    #[test]
    fn audio_is_always_key_and_unknown_video_never() {
        assert!(is_keyframe_start(MediaKind::Audio, Codec::Opus, &[1, 2, 3]));
        assert!(is_keyframe_start(MediaKind::Audio, Codec::Other, &[]));
        assert!(!is_keyframe_start(MediaKind::Video, Codec::Other, &[0x65]));
    }

    #[test]
    fn audio_packets_are_forced_onto_the_low_layer() {
        let header = PacketHeader {
            ssrc: 1,
            seq: 2,
            timestamp: 3,
            marker: false,
            payload_type: 111,
        };
        let p = InboundPacket::new(
            MediaKind::Audio,
            LayerId::HIGH,
            Codec::Opus,
            header,
            Arc::from(&[1u8][..]),
        );
        assert_eq!(p.layer, LayerId::LOW);
        assert!(p.keyframe);
        assert!(!p.is_padding());
        assert_eq!(LayerId::new(3), None);
        assert_eq!(LayerId::new(2), Some(LayerId::HIGH));
    }
}
