//! Property-style tests: random publishers, networks and viewer behaviour from a small
//! deterministic PRNG, checking the viewer-side invariants after every run.
//!
//! Each payload carries its original `(ssrc, seq)`, so the checks can relate what a viewer got
//! to what the publisher sent:
//!
//! 1. a viewer's sequence number is used once per kind, and an original packet reaches a
//!    viewer at most once;
//! 2. in sending order, consecutive sequence numbers are less than 2^15 apart (the 16-bit wire
//!    value is unambiguous), and new packets increase;
//! 3. ordered by sequence number, timestamps never decrease;
//! 4. ordered by sequence number, neighbours from the same source keep the source's spacing,
//!    and any other neighbour is exactly `+1` and starts a segment (any audio packet, a video
//!    keyframe); every viewer's first video packet is a keyframe;
//! 5. on a clean network (no loss, reordering or duplicates) there are no gaps at all;
//! 6. VP8 descriptors as the viewer sees them (the forwarder's `Vp8Fields` applied): on a
//!    clean network, in sending order, the PictureID goes up by exactly one per frame,
//!    TL0PICIDX by one per TID 0 frame and KEYIDX by one per keyframe — also across layer
//!    switches and publisher reconnects, where the publisher's own counters jump.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use common::{Publisher, Rng, Tag, tag_of, ts_delta};
use rootcast_relay::packet::vp8_is_keyframe_start;
use rootcast_relay::vp8::parse_descriptor;
use rootcast_relay::{
    Forward, ForwarderConfig, InboundPacket, KeyframeKind, LayerId, MediaKind, RtpBase,
    StreamForwarder, ViewerId, ViewerOptions, ViewerPreference,
};

#[derive(Debug, Clone, Copy)]
struct Network {
    loss_percent: u64,
    duplicate_percent: u64,
    reorder_percent: u64,
}

const CLEAN: Network = Network {
    loss_percent: 0,
    duplicate_percent: 0,
    reorder_percent: 0,
};

const LOSSY: Network = Network {
    loss_percent: 3,
    duplicate_percent: 2,
    reorder_percent: 5,
};

#[derive(Debug, Clone)]
struct Rec {
    seq: u64,
    timestamp: u32,
    tag: Tag,
    key: bool,
    /// When it was handed out.
    at_ms: u64,
    /// Video: the descriptor as the viewer receives it.
    vp8: Option<Ids>,
}

/// PictureID, TL0PICIDX, TID, KEYIDX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ids {
    picture_id: u16,
    tl0: u8,
    tid: u8,
    key_idx: u8,
}

impl Rec {
    fn of(f: &Forward, at_ms: u64) -> Rec {
        let vp8 = (f.kind == MediaKind::Video).then(|| {
            let bytes = match f.vp8 {
                Some(fields) => {
                    let out = fields.apply(&f.payload).expect("the fields apply");
                    assert_eq!(out.len(), f.payload.len(), "the payload keeps its length");
                    out
                }
                None => f.payload.to_vec(),
            };
            let d = parse_descriptor(&bytes).expect("a readable descriptor");
            Ids {
                picture_id: d.picture_id.expect("a PictureID").value,
                tl0: d.tl0_pic_idx.expect("a TL0PICIDX"),
                tid: bytes[5] >> 6,
                key_idx: d.key_idx.expect("a KEYIDX"),
            }
        });
        Rec {
            seq: f.seq,
            timestamp: f.timestamp,
            tag: tag_of(&f.payload),
            key: f.kind == MediaKind::Audio || vp8_is_keyframe_start(&f.payload),
            at_ms,
            vp8,
        }
    }
}

#[derive(Default)]
struct Received {
    live: Vec<Rec>,
}

struct World {
    rng: Rng,
    net: Network,
    f: StreamForwarder,
    publisher: Publisher,
    publishing: bool,
    /// Layers the publisher currently sends.
    sending: [bool; LayerId::COUNT],
    want_key: [bool; LayerId::COUNT],
    /// Packets in flight: (delivery ms, order, packet).
    in_flight: BTreeMap<(u64, u64), InboundPacket>,
    order: u64,
    viewers: Vec<ViewerId>,
    next_viewer: u64,
    received: HashMap<(ViewerId, MediaKind), Received>,
    out: Vec<Forward>,
}

impl World {
    fn new(seed: u64, net: Network) -> World {
        let mut rng = Rng::new(seed);
        let publisher = new_publisher(&mut rng);
        World {
            rng,
            net,
            // Odd seeds start viewers from cached keyframes when they can.
            f: StreamForwarder::new(ForwarderConfig {
                join_from_cache: (seed % 2 == 1).then_some(std::time::Duration::from_millis(500)),
                ..ForwarderConfig::default()
            }),
            publisher,
            publishing: true,
            sending: [true; LayerId::COUNT],
            want_key: [true; LayerId::COUNT],
            in_flight: BTreeMap::new(),
            order: 0,
            viewers: Vec::new(),
            next_viewer: 0,
            received: HashMap::new(),
            out: Vec::new(),
        }
    }

    fn emit(&mut self, ms: u64, packet: InboundPacket) {
        if self.rng.chance(self.net.loss_percent) {
            return;
        }
        let copies = if self.rng.chance(self.net.duplicate_percent) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if self.rng.chance(self.net.reorder_percent) {
                1 + self.rng.below(40)
            } else {
                0
            };
            self.order += 1;
            self.in_flight
                .insert((ms + delay, self.order), packet.clone());
        }
    }

    fn publish(&mut self, ms: u64) {
        if !self.publishing {
            return;
        }
        if ms % 20 == 0 {
            let p = self.publisher.audio();
            self.emit(ms, p);
        }
        if ms % 33 == 0 {
            for layer in LayerId::ALL {
                if !self.sending[layer.index()] {
                    continue;
                }
                let key = std::mem::take(&mut self.want_key[layer.index()]) || self.rng.chance(1);
                let packets = self.publisher.frame(layer, key);
                for p in packets {
                    self.emit(ms, p);
                }
            }
        }
    }

    fn deliver(&mut self, ms: u64) {
        let now = common::t(self.start(), ms);
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > ms {
                break;
            }
            let packet = entry.remove();
            self.f.handle_publisher_packet(now, &packet, &mut self.out);
        }
    }

    fn start(&self) -> std::time::Instant {
        START.with(|s| *s)
    }

    fn random_event(&mut self, ms: u64) {
        let now = common::t(self.start(), ms);
        match self.rng.below(1000) {
            0..=4 if self.viewers.len() < 6 => {
                let id = ViewerId(self.next_viewer);
                self.next_viewer += 1;
                let preference = self.random_preference();
                let estimate = self
                    .rng
                    .chance(50)
                    .then(|| 100_000 + self.rng.below(4_000_000));
                // Bases near the 16-bit and 32-bit wraps for half the viewers.
                let near_wrap = self.rng.chance(50);
                let base = |rng: &mut Rng| RtpBase {
                    seq: if near_wrap {
                        65_400 + rng.below(100) as u16
                    } else {
                        rng.u16()
                    },
                    timestamp: if near_wrap {
                        u32::MAX - rng.below(500_000) as u32
                    } else {
                        rng.u32()
                    },
                };
                let options = ViewerOptions {
                    preference,
                    initial_estimate_bps: estimate,
                    audio: base(&mut self.rng),
                    video: base(&mut self.rng),
                };
                self.f.add_viewer(now, id, options).unwrap();
                self.viewers.push(id);
            }
            5..=6 if !self.viewers.is_empty() => {
                let i = self.rng.below(self.viewers.len() as u64) as usize;
                let id = self.viewers.swap_remove(i);
                assert!(self.f.remove_viewer(id));
            }
            7..=26 if !self.viewers.is_empty() => {
                let id = self.pick();
                let bps = 50_000 + self.rng.below(5_000_000);
                self.f.set_viewer_estimate(now, id, bps).unwrap();
            }
            27..=30 if !self.viewers.is_empty() => {
                let id = self.pick();
                let preference = self.random_preference();
                self.f.set_viewer_preference(now, id, preference).unwrap();
            }
            31..=34 if !self.viewers.is_empty() => {
                let id = self.pick();
                let kind = if self.rng.chance(80) {
                    KeyframeKind::Pli
                } else {
                    KeyframeKind::Fir
                };
                self.f
                    .handle_viewer_keyframe_request(now, id, kind)
                    .unwrap();
            }
            40..=41 => {
                // A layer stops or starts; sometimes str0m reports the pause.
                let layer = LayerId::ALL[self.rng.below(3) as usize];
                let sending = !self.sending[layer.index()];
                self.sending[layer.index()] = sending;
                if self.rng.chance(50) {
                    self.f
                        .handle_publisher_paused(now, MediaKind::Video, layer, !sending);
                }
            }
            42 if self.publishing => {
                self.publishing = false;
                self.f.publisher_left(now);
            }
            43..=52 if !self.publishing => {
                // A new publisher: new SSRCs, new random bases.
                self.publisher = new_publisher(&mut self.rng);
                self.publishing = true;
                self.want_key = [true; LayerId::COUNT];
            }
            _ => {}
        }
    }

    fn pick(&mut self) -> ViewerId {
        self.viewers[self.rng.below(self.viewers.len() as u64) as usize]
    }

    fn random_preference(&mut self) -> ViewerPreference {
        match self.rng.below(6) {
            0 => ViewerPreference::AudioOnly,
            1 => ViewerPreference::Pin(LayerId::ALL[self.rng.below(3) as usize]),
            _ => ViewerPreference::Auto,
        }
    }

    fn collect(&mut self, ms: u64) {
        for f in self.out.drain(..) {
            self.received
                .entry((f.viewer, f.kind))
                .or_default()
                .live
                .push(Rec::of(&f, ms));
        }
    }

    fn run(&mut self, until_ms: u64) {
        for ms in 0..until_ms {
            let now = common::t(self.start(), ms);
            self.random_event(ms);
            self.publish(ms);
            self.deliver(ms);
            if self.f.poll_timeout().is_some_and(|t| t <= now) {
                self.f.handle_timeout(now);
                assert!(
                    self.f.poll_timeout().is_none_or(|t| t > now),
                    "timeout spin at {ms} ms"
                );
            }
            while let Some(req) = self.f.poll_keyframe_request() {
                // The publisher usually answers on its next frame of that layer.
                if self.rng.chance(90) {
                    self.want_key[req.layer.index()] = true;
                }
            }
            self.collect(ms);
        }
    }
}

thread_local! {
    static START: std::time::Instant = std::time::Instant::now();
}

fn new_publisher(rng: &mut Rng) -> Publisher {
    let mut p = Publisher::new(rng);
    // Sources near their own 16-bit wrap half the time.
    for s in p.video.iter_mut().chain(std::iter::once(&mut p.audio)) {
        if rng.chance(50) {
            s.seq = 65_300 + rng.below(200) as u16;
            s.ts = u32::MAX - rng.below(100_000) as u32;
        }
    }
    p
}

fn check(world: &World, clean: bool) -> (usize, usize) {
    let (mut live_total, mut switches) = (0, 0);
    for ((viewer, kind), got) in &world.received {
        let ctx = format!("viewer {} {:?}", viewer.0, kind);
        // 1. Unique numbers and unique originals.
        let mut by_seq: BTreeMap<u64, &Rec> = BTreeMap::new();
        let mut originals = HashSet::new();
        for r in &got.live {
            assert!(
                by_seq.insert(r.seq, r).is_none(),
                "{ctx}: seq {} used twice",
                r.seq
            );
            assert!(
                originals.insert(r.tag),
                "{ctx}: {:?} forwarded twice",
                r.tag
            );
        }
        // 2. Sending order.
        let mut max_seq = None;
        for pair in got.live.windows(2) {
            let d = pair[1].seq as i64 - pair[0].seq as i64;
            assert!(d.abs() < 1 << 15, "{ctx}: ambiguous jump {d}");
            assert_eq!(
                (pair[1].seq as u16).wrapping_sub(pair[0].seq as u16) as i16 as i64,
                d,
                "{ctx}: wire sequence numbers disagree"
            );
        }
        for r in &got.live {
            if clean {
                if let Some(m) = max_seq {
                    assert_eq!(r.seq, m + 1, "{ctx}: gap or reorder on a clean network");
                }
            }
            max_seq = Some(max_seq.map_or(r.seq, |m: u64| m.max(r.seq)));
        }
        // 6. VP8 counters continue across frames, switches and reconnects.
        if clean && *kind == MediaKind::Video {
            for pair in got.live.windows(2) {
                let (a, b) = (pair[0].vp8.unwrap(), pair[1].vp8.unwrap());
                if a.picture_id == b.picture_id {
                    assert_eq!((a.tl0, a.key_idx), (b.tl0, b.key_idx), "{ctx}: one frame");
                    continue;
                }
                let at = pair[1].seq;
                assert_eq!(
                    b.picture_id,
                    (a.picture_id + 1) & 0x7fff,
                    "{ctx}: PictureID at seq {at}"
                );
                let tl0_step = u8::from(b.tid == 0);
                assert_eq!(
                    b.tl0,
                    a.tl0.wrapping_add(tl0_step),
                    "{ctx}: TL0PICIDX at seq {at}"
                );
                let key_step = u8::from(pair[1].key);
                assert_eq!(
                    b.key_idx,
                    (a.key_idx + key_step) & 0x1f,
                    "{ctx}: KEYIDX at seq {at}"
                );
            }
        }
        // 3 and 4. Ordered by sequence number.
        let ordered: Vec<&Rec> = by_seq.values().copied().collect();
        if *kind == MediaKind::Video {
            if let Some(first) = ordered.first() {
                assert!(first.key, "{ctx}: video does not start at a keyframe");
            }
        }
        for pair in ordered.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(
                ts_delta(b.timestamp, a.timestamp) >= 0,
                "{ctx}: timestamp backwards {} -> {} at seq {}",
                a.timestamp,
                b.timestamp,
                b.seq
            );
            let out_delta = b.seq - a.seq;
            let same_spacing =
                a.tag.ssrc == b.tag.ssrc && out_delta as u16 == b.tag.seq.wrapping_sub(a.tag.seq);
            if !same_spacing {
                assert_eq!(
                    out_delta, 1,
                    "{ctx}: jump at a segment boundary, seq {}",
                    b.seq
                );
                assert!(
                    b.key,
                    "{ctx}: segment starts without a keyframe at seq {}",
                    b.seq
                );
                // The timestamp moves by the wall-clock time since the previous packet.
                let rate = if *kind == MediaKind::Audio { 48 } else { 90 };
                let expect = ((b.at_ms - a.at_ms) * rate).max(1) as i64;
                assert_eq!(
                    ts_delta(b.timestamp, a.timestamp),
                    expect,
                    "{ctx}: step at seq {}",
                    b.seq
                );
                switches += 1;
            }
            if clean {
                assert_eq!(
                    out_delta, 1,
                    "{ctx}: gap on a clean network at seq {}",
                    b.seq
                );
            }
        }
        live_total += got.live.len();
    }
    (live_total, switches)
}

fn run_seeds(net: Network, clean: bool, seeds: std::ops::Range<u64>) {
    let mut total = 0;
    let mut switches = 0;
    let mut from_cache = 0;
    for seed in seeds {
        let mut world = World::new(seed, net);
        world.run(8_000);
        let (n, s) = check(&world, clean);
        total += n;
        switches += s;
        from_cache += world.f.counters().joins_from_cache;
        // Every viewer that left took its state with it.
        assert_eq!(world.f.viewer_count(), world.viewers.len());
    }
    // The runs did exercise the interesting paths.
    assert!(total > 10_000, "only {total} packets forwarded");
    assert!(switches > 20, "only {switches} segment switches");
    assert!(
        from_cache > 5,
        "only {from_cache} viewers started from the cache"
    );
}

#[test]
fn viewer_streams_stay_continuous_on_a_clean_network() {
    run_seeds(CLEAN, true, 0..12);
}

#[test]
fn viewer_streams_stay_consistent_under_loss_duplicates_and_reordering() {
    run_seeds(LOSSY, false, 100..112);
}

#[test]
fn the_prng_is_deterministic() {
    let mut a = Rng::new(42);
    let mut b = Rng::new(42);
    let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
    let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
    assert_eq!(xs, ys);
    assert_ne!(xs[0], xs[1]);
}

/// The driver applies the core's VP8 fields as str0m's `Vp8Patch`: for any payload, the core
/// reads a descriptor exactly when str0m does, with the same values, and str0m accepts a patch
/// of every field the core found (so a `Vp8Fields` never fails to apply in the driver).
#[test]
fn the_core_and_str0m_read_vp8_descriptors_alike() {
    let mut rng = Rng::new(7);
    let mut parsed = 0;
    for _ in 0..50_000 {
        let len = rng.below(8) as usize;
        let mut p: Vec<u8> = (0..len).map(|_| rng.u16() as u8).collect();
        // Mostly extended descriptors, so the interesting branches are hit.
        if let Some(first) = p.first_mut() {
            if rng.chance(80) {
                *first |= 0x80;
            }
        }
        let ours = parse_descriptor(&p);
        let theirs = str0m::rtp::Vp8Descriptor::parse(&p);
        assert_eq!(ours.is_ok(), theirs.is_ok(), "{p:02x?}");
        let (Ok(ours), Ok(theirs)) = (ours, theirs) else {
            continue;
        };
        parsed += 1;
        assert_eq!(
            ours.picture_id.map(|x| x.value),
            theirs.picture_id(),
            "{p:02x?}"
        );
        assert_eq!(ours.tl0_pic_idx, theirs.tl0_pic_idx(), "{p:02x?}");
        assert_eq!(ours.key_idx, theirs.key_idx(), "{p:02x?}");
        let mut patch = theirs.patch();
        if let Some(pid) = ours.picture_id {
            patch = patch.picture_id(if pid.long { 0x7fff } else { 0x7f });
        }
        if ours.tl0_pic_idx.is_some() {
            patch = patch.tl0_pic_idx(0xff);
        }
        if ours.key_idx.is_some() {
            patch = patch.key_idx(0x1f);
        }
        assert!(patch.build().is_ok(), "{p:02x?}");
    }
    assert!(parsed > 10_000, "only {parsed} payloads parsed");
}
