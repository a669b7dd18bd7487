//! Helpers shared by the forwarder tests: a simulated publisher, a tiny deterministic PRNG,
//! and payloads that carry their own identity so a test can tell which original packet a
//! viewer received.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rootcast_relay::{
    Codec, Forward, InboundPacket, LayerId, MediaKind, PacketHeader, RtpBase, ViewerId,
    ViewerOptions, ViewerPreference,
};

pub const MS: Duration = Duration::from_millis(1);
pub const SEC: Duration = Duration::from_secs(1);

/// xorshift64*: deterministic, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn u16(&mut self) -> u16 {
        self.next_u64() as u16
    }

    pub fn u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
}

/// What a payload says about itself (appended after the codec bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    pub ssrc: u32,
    pub seq: u16,
}

const TAG_LEN: usize = 6;

pub fn tag_of(payload: &[u8]) -> Tag {
    let t = &payload[payload.len() - TAG_LEN..];
    Tag {
        ssrc: u32::from_be_bytes([t[0], t[1], t[2], t[3]]),
        seq: u16::from_be_bytes([t[4], t[5]]),
    }
}

fn with_tag(mut codec_bytes: Vec<u8>, ssrc: u32, seq: u16) -> Arc<[u8]> {
    codec_bytes.extend_from_slice(&ssrc.to_be_bytes());
    codec_bytes.extend_from_slice(&seq.to_be_bytes());
    Arc::from(codec_bytes)
}

/// A VP8 payload: descriptor (15-bit PictureID, TL0PICIDX, TID, KEYIDX), frame tag, and the
/// keyframe start code.
pub fn vp8_bytes(keyframe: bool, start: bool, ids: &Vp8Ids) -> Vec<u8> {
    let mut p = vec![
        0x80 | if start { 0x10 } else { 0 },
        0xf0,
        0x80 | (ids.picture_id >> 8) as u8,
        ids.picture_id as u8,
        ids.tl0_pic_idx,
        (ids.tid << 6) | (ids.key_idx & 0x1f),
    ];
    p.push(if keyframe { 0x10 } else { 0x11 });
    p.extend_from_slice(&[0x02, 0x00, 0x9d, 0x01, 0x2a]);
    p.extend_from_slice(&[0u8; 32]);
    p
}

/// The VP8 descriptor counters of one encoder, as libwebrtc keeps them per simulcast layer:
/// PictureID +1 per frame, an L1T3 temporal pattern (TID 0, 2, 1, 2 from each keyframe),
/// TL0PICIDX +1 per TID 0 frame, KEYIDX +1 per keyframe.
#[derive(Debug, Clone, Copy)]
pub struct Vp8Ids {
    pub picture_id: u16,
    pub tl0_pic_idx: u8,
    pub tid: u8,
    pub key_idx: u8,
    /// Frames since the last keyframe.
    pub since_key: u64,
}

impl Vp8Ids {
    fn random(rng: &mut Rng) -> Vp8Ids {
        Vp8Ids {
            picture_id: rng.u16() & 0x7fff,
            tl0_pic_idx: rng.u16() as u8,
            tid: 0,
            key_idx: rng.u16() as u8 & 0x1f,
            since_key: 0,
        }
    }

    /// The counters for the next frame.
    fn next_frame(&mut self, keyframe: bool) {
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        if keyframe {
            self.since_key = 0;
            self.key_idx = (self.key_idx + 1) & 0x1f;
        } else {
            self.since_key += 1;
        }
        self.tid = [0, 2, 1, 2][(self.since_key % 4) as usize];
        if self.tid == 0 {
            self.tl0_pic_idx = self.tl0_pic_idx.wrapping_add(1);
        }
    }
}

/// One RTP stream of the simulated publisher.
#[derive(Debug, Clone)]
pub struct StreamGen {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    /// VP8 counters (unused for audio).
    pub vp8: Vp8Ids,
}

/// A publisher: Opus audio and VP8 video on up to three layers, each with its own SSRC and
/// random bases (as browsers do).
#[derive(Debug, Clone)]
pub struct Publisher {
    pub audio: StreamGen,
    pub video: [StreamGen; LayerId::COUNT],
}

impl Publisher {
    pub fn new(rng: &mut Rng) -> Publisher {
        let stream = |rng: &mut Rng| StreamGen {
            ssrc: rng.u32() | 1,
            seq: rng.u16(),
            ts: rng.u32(),
            vp8: Vp8Ids::random(rng),
        };
        Publisher {
            audio: stream(rng),
            video: [stream(rng), stream(rng), stream(rng)],
        }
    }

    /// One 20 ms Opus packet.
    pub fn audio(&mut self) -> InboundPacket {
        let s = &mut self.audio;
        let header = PacketHeader {
            ssrc: s.ssrc,
            seq: s.seq,
            timestamp: s.ts,
            marker: false,
            payload_type: 111,
        };
        let payload = with_tag(vec![0xfc, 0xff, 0xfe], s.ssrc, s.seq);
        s.seq = s.seq.wrapping_add(1);
        s.ts = s.ts.wrapping_add(960);
        InboundPacket::new(MediaKind::Audio, LayerId::LOW, Codec::Opus, header, payload)
    }

    /// One 30 fps video frame on `layer`, sized so the layers measure about 150 kb/s,
    /// 500 kb/s and 1.5 Mb/s (the forwarder's nominal rates).
    pub fn frame(&mut self, layer: LayerId, keyframe: bool) -> Vec<InboundPacket> {
        const PACKETS: [usize; 3] = [1, 2, 5];
        const BYTES: [usize; 3] = [560, 1000, 1180];
        self.frame_sized(
            layer,
            keyframe,
            PACKETS[layer.index()],
            BYTES[layer.index()],
        )
    }

    /// One video frame of `packets` packets of about `bytes` each on `layer` (the timestamp
    /// advances by 3000 after it).
    pub fn frame_sized(
        &mut self,
        layer: LayerId,
        keyframe: bool,
        packets: usize,
        bytes: usize,
    ) -> Vec<InboundPacket> {
        let s = &mut self.video[layer.index()];
        s.vp8.next_frame(keyframe);
        let mut out = Vec::with_capacity(packets);
        for i in 0..packets.max(1) {
            let header = PacketHeader {
                ssrc: s.ssrc,
                seq: s.seq,
                timestamp: s.ts,
                marker: i + 1 == packets.max(1),
                payload_type: 96,
            };
            let mut bytes_i = vp8_bytes(keyframe, i == 0, &s.vp8);
            bytes_i.resize(bytes.max(bytes_i.len()), 0);
            let payload = with_tag(bytes_i, s.ssrc, s.seq);
            out.push(InboundPacket::new(
                MediaKind::Video,
                layer,
                Codec::Vp8,
                header,
                payload,
            ));
            s.seq = s.seq.wrapping_add(1);
        }
        s.ts = s.ts.wrapping_add(3000);
        out
    }

    /// A padding-only packet on `layer` (takes a sequence number, carries nothing).
    pub fn padding(&mut self, layer: LayerId) -> InboundPacket {
        let s = &mut self.video[layer.index()];
        let header = PacketHeader {
            ssrc: s.ssrc,
            seq: s.seq,
            timestamp: s.ts,
            marker: false,
            payload_type: 96,
        };
        s.seq = s.seq.wrapping_add(1);
        InboundPacket::new(
            MediaKind::Video,
            layer,
            Codec::Vp8,
            header,
            Arc::from(Vec::new()),
        )
    }
}

pub fn options(
    rng: &mut Rng,
    preference: ViewerPreference,
    estimate: Option<u64>,
) -> ViewerOptions {
    ViewerOptions {
        preference,
        initial_estimate_bps: estimate,
        audio: RtpBase {
            seq: rng.u16(),
            timestamp: rng.u32(),
        },
        video: RtpBase {
            seq: rng.u16(),
            timestamp: rng.u32(),
        },
    }
}

/// The writes for one viewer and kind, in output order.
pub fn writes(out: &[Forward], viewer: ViewerId, kind: MediaKind) -> Vec<Forward> {
    out.iter()
        .filter(|f| f.viewer == viewer && f.kind == kind)
        .cloned()
        .collect()
}

/// Signed distance between two timestamps.
pub fn ts_delta(a: u32, b: u32) -> i64 {
    a.wrapping_sub(b) as i32 as i64
}

/// Asserts writes in output order have consecutive sequence numbers and non-decreasing
/// timestamps (for tests without loss or reordering).
pub fn assert_continuous(ws: &[Forward]) {
    for pair in ws.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq + 1,
            "sequence gap or jump: {pair:#?}"
        );
        assert!(
            ts_delta(pair[1].timestamp, pair[0].timestamp) >= 0,
            "timestamp went backwards: {pair:#?}"
        );
    }
}

pub fn t(start: Instant, ms: u64) -> Instant {
    start + Duration::from_millis(ms)
}

/// A forwarder, a publisher and a millisecond clock, with a publisher that answers keyframe
/// requests on its next frame.
pub struct Sim {
    pub f: rootcast_relay::StreamForwarder,
    pub p: Publisher,
    pub rng: Rng,
    pub start: Instant,
    pub ms: u64,
    pub out: Vec<Forward>,
    /// Every keyframe request the forwarder made, with the millisecond it was polled.
    pub requests: Vec<(u64, rootcast_relay::KeyframeRequest)>,
    /// Whether the publisher answers keyframe requests.
    pub answer_requests: bool,
    pending_key: [bool; LayerId::COUNT],
}

impl Sim {
    pub fn new(seed: u64) -> Sim {
        Sim::with_config(seed, rootcast_relay::ForwarderConfig::default())
    }

    pub fn with_config(seed: u64, config: rootcast_relay::ForwarderConfig) -> Sim {
        let mut rng = Rng::new(seed);
        Sim {
            f: rootcast_relay::StreamForwarder::new(config),
            p: Publisher::new(&mut rng),
            rng,
            start: Instant::now(),
            ms: 0,
            out: Vec::new(),
            requests: Vec::new(),
            answer_requests: true,
            pending_key: [false; LayerId::COUNT],
        }
    }

    pub fn now(&self) -> Instant {
        self.start + Duration::from_millis(self.ms)
    }

    pub fn drain(&mut self) {
        while let Some(r) = self.f.poll_keyframe_request() {
            self.requests.push((self.ms, r));
            self.pending_key[r.layer.index()] = true;
        }
    }

    /// Runs due timeouts and collects keyframe requests.
    pub fn timeouts(&mut self) {
        let now = self.now();
        if self.f.poll_timeout().is_some_and(|t| t <= now) {
            self.f.handle_timeout(now);
            // A driver that loops on poll_timeout must not spin.
            assert!(
                self.f.poll_timeout().is_none_or(|t| t > now),
                "a timeout is still due right after handle_timeout at {} ms",
                self.ms
            );
        }
        self.drain();
    }

    pub fn send(&mut self, packets: Vec<InboundPacket>) {
        let now = self.now();
        for p in &packets {
            self.f.handle_publisher_packet(now, p, &mut self.out);
        }
        self.drain();
    }

    pub fn audio(&mut self) {
        let p = self.p.audio();
        self.send(vec![p]);
    }

    /// A frame on `layer`: a keyframe if `key`, or if a request is pending and answered.
    pub fn frame(&mut self, layer: LayerId, key: bool) {
        let key = key || (self.answer_requests && self.pending_key[layer.index()]);
        if key {
            self.pending_key[layer.index()] = false;
        }
        let packets = self.p.frame(layer, key);
        self.send(packets);
    }

    /// Advances the clock to `until_ms`: audio every 20 ms, a frame on each of `layers` every
    /// 33 ms, timeouts every millisecond.
    pub fn run(&mut self, until_ms: u64, layers: &[LayerId]) {
        while self.ms < until_ms {
            self.ms += 1;
            self.timeouts();
            if self.ms % 20 == 0 {
                self.audio();
            }
            if self.ms % 33 == 0 {
                for &l in layers {
                    self.frame(l, false);
                }
            }
        }
    }

    pub fn add(
        &mut self,
        id: u64,
        preference: ViewerPreference,
        estimate: Option<u64>,
    ) -> ViewerId {
        let opts = options(&mut self.rng, preference, estimate);
        let now = self.now();
        self.f.add_viewer(now, ViewerId(id), opts).unwrap();
        self.drain();
        ViewerId(id)
    }

    pub fn requests_since(&self, ms: u64) -> Vec<rootcast_relay::KeyframeRequest> {
        self.requests
            .iter()
            .filter(|(at, _)| *at >= ms)
            .map(|(_, r)| *r)
            .collect()
    }

    pub fn video_of(&self, viewer: ViewerId) -> Vec<Forward> {
        writes(&self.out, viewer, MediaKind::Video)
    }

    pub fn audio_of(&self, viewer: ViewerId) -> Vec<Forward> {
        writes(&self.out, viewer, MediaKind::Audio)
    }

    pub fn clear_out(&mut self) {
        self.out.clear();
    }
}
