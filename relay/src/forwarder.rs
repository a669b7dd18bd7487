//! One published stream (audio plus video with up to three simulcast layers) and its viewers.
//!
//! [`StreamForwarder`] is the state machine the relay driver feeds. Inputs are method calls
//! that take `now`; outputs are appended to a caller-owned `Vec<Forward>` (per-viewer writes)
//! or polled ([`StreamForwarder::poll_keyframe_request`]), and
//! [`StreamForwarder::poll_timeout`] / [`StreamForwarder::handle_timeout`] drive everything
//! that happens without input (scheduled keyframe requests, a layer going idle, an upgrade
//! hold ending, a waiting viewer asking again, cache expiry).
//!
//! Per publisher packet: the [`IngressTrack`] of its `(kind, layer)` classifies it into a
//! source and an extended sequence number and caches it (one cache per source, shared by all
//! viewers); then every viewer's [`SeqTsRewriter`] for that kind decides: forward it with
//! rewritten numbers, start a new segment with it (audio: any packet of the current source;
//! video: a keyframe of the viewer's target layer), or drop it. The payload is shared: one
//! reference-count increment per viewer, no copy. VP8 packets get per-viewer descriptor
//! fields ([`crate::vp8`]) that the driver applies while str0m serializes. A joining viewer
//! may start from the cached keyframe of its layer (`ForwarderConfig::join_from_cache`).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::ingress::Accepted;
use crate::ingress::{CacheConfig, IngressTrack};
use crate::keyframes::{KeyframeKind, KeyframeRequest, KeyframeRequests, RequestOutcome};
use crate::layers::{LayerAvailability, LayerSelector, SelectorConfig, ViewerPreference};
use crate::packet::{Codec, InboundPacket, LayerId, MediaKind, Payload, SourceKey};
use crate::rewrite::{DropReason, Rewritten, SeqTsRewriter};
use crate::vp8::{self, Vp8Descriptor, Vp8Fields, Vp8Rewriter};

/// A viewer, as the driver names it (one WHEP session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ViewerId(pub u64);

/// Tuning of a [`StreamForwarder`]. `Default` gives the values documented on each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwarderConfig {
    /// RTP clock of the audio codec (48 000 for Opus).
    pub audio_clock_rate: u32,
    /// RTP clock of video (90 000).
    pub video_clock_rate: u32,
    /// At most one keyframe request per layer per this interval (1 s).
    pub keyframe_interval: Duration,
    /// A viewer still waiting for a keyframe asks again after this long (1 s).
    pub keyframe_retry: Duration,
    /// A video layer that sent nothing for this long is not live (1 s).
    pub layer_idle_timeout: Duration,
    /// A sequence number jump larger than this on one SSRC is an encoder restart (3000).
    pub restart_jump: u16,
    /// Audio packet cache per source (128 packets, 3 s).
    pub audio_cache: CacheConfig,
    /// Video packet cache per source and layer (1024 packets, 3 s).
    pub video_cache: CacheConfig,
    /// Layer selection hysteresis.
    pub selector: SelectorConfig,
    /// Bitrate assumed for each layer until measured (150 kb/s, 500 kb/s, 1.5 Mb/s).
    pub nominal_bitrates: [u64; LayerId::COUNT],
    /// A viewer's first video (a join; not a return from audio only, which could replay
    /// frames it already had) starts from the cached keyframe of its layer, replayed with the
    /// packets after it, instead of asking the publisher for a new one, when that keyframe
    /// arrived at most this long ago — or, when the keyframe throttle would hold the request
    /// back anyway, at most `keyframe_interval` ago (R2: a join never waits for the
    /// throttle while a keyframe of the last second is cached). The cost: the viewer starts
    /// that far behind live. `None` (the default): always ask.
    pub join_from_cache: Option<Duration>,
}

impl Default for ForwarderConfig {
    fn default() -> ForwarderConfig {
        ForwarderConfig {
            audio_clock_rate: 48_000,
            video_clock_rate: 90_000,
            keyframe_interval: Duration::from_secs(1),
            keyframe_retry: Duration::from_secs(1),
            layer_idle_timeout: Duration::from_secs(1),
            restart_jump: 3000,
            audio_cache: CacheConfig {
                capacity: 128,
                max_age: Duration::from_secs(3),
            },
            video_cache: CacheConfig {
                capacity: 1024,
                max_age: Duration::from_secs(3),
            },
            selector: SelectorConfig::default(),
            nominal_bitrates: [150_000, 500_000, 1_500_000],
            join_from_cache: None,
        }
    }
}

/// The first sequence number and timestamp of one of a viewer's outgoing streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpBase {
    /// First sequence number (pick at random).
    pub seq: u16,
    /// First timestamp (pick at random).
    pub timestamp: u32,
}

/// How a viewer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ViewerOptions {
    /// Layer preference.
    pub preference: ViewerPreference,
    /// A bandwidth estimate to start from (e.g. the BWE's configured initial bitrate).
    pub initial_estimate_bps: Option<u64>,
    /// Bases of the audio stream.
    pub audio: RtpBase,
    /// Bases of the video stream.
    pub video: RtpBase,
}

/// One packet to write to one viewer (`StreamTx::write_rtp` in the driver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// To whom.
    pub viewer: ViewerId,
    /// Which of the viewer's streams.
    pub kind: MediaKind,
    /// Extended outgoing sequence number (str0m's `SeqNo`); `as u16` is the wire value.
    pub seq: u64,
    /// Outgoing RTP timestamp.
    pub timestamp: u32,
    /// Marker bit.
    pub marker: bool,
    /// The publisher's payload type (the driver maps it to the viewer's).
    pub payload_type: u8,
    /// The shared payload.
    pub payload: Payload,
    /// When the packet arrived from the publisher (the `wallclock` of `RtpWrite::new`).
    pub received_at: Instant,
    /// New VP8 descriptor fields for this viewer ([`crate::vp8`]); `None`: send the payload
    /// as it is.
    pub vp8: Option<Vp8Fields>,
}

/// Counters for metrics. All only increase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Packets from the publisher.
    pub packets_in: u64,
    /// Writes to viewers.
    pub packets_out: u64,
    /// Per-viewer drops of packets that were meant for the viewer: duplicates and packets too
    /// far behind. (Packets of layers a viewer does not receive are not counted.)
    pub packets_dropped: u64,
    /// Padding-only packets from the publisher, squeezed out instead of forwarded.
    pub padding_dropped: u64,
    /// Times a viewer started a new video segment (join, layer switch, new source).
    pub layer_switches: u64,
    /// PLI/FIR received from viewers.
    pub keyframe_requests_in: u64,
    /// Keyframe requests handed to the driver for the publisher.
    pub keyframe_requests_out: u64,
    /// VP8 packets whose payload descriptor did not parse; forwarded without rewriting.
    pub vp8_unparsed: u64,
    /// Viewers that started video from a cached keyframe (`join_from_cache`).
    pub joins_from_cache: u64,
}

/// A snapshot of one viewer, for stats and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewerStatus {
    /// Layer preference.
    pub preference: ViewerPreference,
    /// Last bandwidth estimate.
    pub estimate_bps: Option<u64>,
    /// The layer the viewer should get.
    pub target_layer: Option<LayerId>,
    /// The layer the viewer is getting (its current video segment).
    pub current_layer: Option<LayerId>,
    /// Waiting for a keyframe of the target layer.
    pub waiting_for_keyframe: bool,
}

/// Errors of the viewer-facing calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardError {
    /// `add_viewer` with an id already present.
    ViewerExists(ViewerId),
    /// A call about a viewer that is not present.
    UnknownViewer(ViewerId),
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardError::ViewerExists(v) => write!(f, "viewer {} already exists", v.0),
            ForwardError::UnknownViewer(v) => write!(f, "unknown viewer {}", v.0),
        }
    }
}

impl std::error::Error for ForwardError {}

#[derive(Debug)]
struct Viewer {
    id: ViewerId,
    audio: SeqTsRewriter,
    video: SeqTsRewriter,
    vp8: Vp8Rewriter,
    selector: LayerSelector,
    /// The last keyframe request made while waiting for the target layer.
    asked: Option<(LayerId, Instant)>,
    /// Starts from a cached keyframe at the layer's next packet instead of asking.
    from_cache: bool,
}

impl Viewer {
    fn rewriter(&mut self, kind: MediaKind) -> &mut SeqTsRewriter {
        match kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video,
        }
    }

    /// The target layer, when the viewer is not yet receiving its current source.
    fn needs_keyframe(&self, video: &[IngressTrack; LayerId::COUNT]) -> Option<LayerId> {
        let target = self.selector.target()?;
        let source = video[target.index()].current()?;
        (self.video.active_source() != Some(source)).then_some(target)
    }

    fn wants_layer(&self, layer: LayerId) -> bool {
        self.selector.target() == Some(layer)
            || self.video.active_source().map(|s| s.layer) == Some(layer)
    }
}

/// Asks for a keyframe for a viewer that waits for one, at most once per `retry`. A viewer
/// that can start from a cached keyframe (see [`cached_keyframe`]) is not asked for: it
/// starts with the layer's next packet, and asks only if it still waits after `retry`.
fn ensure_flow(
    now: Instant,
    viewer: &mut Viewer,
    video: &[IngressTrack; LayerId::COUNT],
    keyframes: &mut KeyframeRequests,
    config: &ForwarderConfig,
) {
    match viewer.needs_keyframe(video) {
        None => {
            viewer.asked = None;
            viewer.from_cache = false;
        }
        Some(layer) => {
            let due = match viewer.asked {
                Some((asked_layer, at)) => {
                    asked_layer != layer || now >= at + config.keyframe_retry
                }
                None => true,
            };
            if due {
                viewer.from_cache = viewer.asked.is_none()
                    && viewer.video.highest_seq().is_none()
                    && config.join_from_cache.is_some_and(|within| {
                        let within = if keyframes.is_held_back(now, layer) {
                            within.max(config.keyframe_interval)
                        } else {
                            within
                        };
                        cached_keyframe(now, &video[layer.index()], within).is_some()
                    });
                if !viewer.from_cache {
                    keyframes.request(now, layer, KeyframeKind::Pli);
                }
                viewer.asked = Some((layer, now));
            }
        }
    }
}

/// The current source of `track` and the extended sequence number of its newest keyframe
/// start, if that arrived within `max_age` and is still in the cache.
fn cached_keyframe(
    now: Instant,
    track: &IngressTrack,
    max_age: Duration,
) -> Option<(SourceKey, u64)> {
    let source = track.source(track.current()?)?;
    let (seq, at) = source.last_keyframe?;
    if now.saturating_duration_since(at) > max_age {
        return None;
    }
    source
        .cache
        .get(now, seq)
        .ok()
        .filter(|p| p.keyframe)
        .map(|_| (source.key, seq))
}

/// Starts `viewer`'s video at the cached keyframe `from` of `source` and forwards every
/// cached packet after it up to (not including) `until`, with their original arrival times
/// (str0m's sender reports stay consistent). Lost packets stay gaps, as live ones would.
#[allow(clippy::too_many_arguments)]
fn replay_from_cache(
    now: Instant,
    viewer: &mut Viewer,
    track: &IngressTrack,
    source: SourceKey,
    from: u64,
    until: u64,
    out: &mut Vec<Forward>,
    counters: &mut Counters,
) {
    let Some(state) = track.source(source) else {
        return;
    };
    for seq in from..until {
        let Ok(p) = state.cache.get(now, seq) else {
            continue;
        };
        let result = if seq == from {
            viewer.video.start_segment(now, source, seq, p.timestamp)
        } else {
            viewer.video.rewrite(now, source, seq, p.timestamp)
        };
        let Rewritten::Forward {
            seq: out_seq,
            timestamp,
            segment,
        } = result
        else {
            continue;
        };
        let vp8 = match p.codec {
            Codec::Vp8 => vp8::parse_descriptor(&p.payload)
                .ok()
                .and_then(|d| viewer.vp8.rewrite(segment, &d)),
            _ => None,
        };
        out.push(Forward {
            viewer: viewer.id,
            kind: MediaKind::Video,
            seq: out_seq,
            timestamp,
            marker: p.marker,
            payload_type: p.payload_type,
            payload: p.payload.clone(),
            received_at: p.received_at,
            vp8,
        });
        counters.packets_out += 1;
    }
    counters.layer_switches += 1;
    counters.joins_from_cache += 1;
    viewer.asked = None;
    viewer.from_cache = false;
}

/// The forwarding state of one published stream. See the module docs.
#[derive(Debug)]
pub struct StreamForwarder {
    config: ForwarderConfig,
    next_generation: u32,
    audio: IngressTrack,
    video: [IngressTrack; LayerId::COUNT],
    availability: LayerAvailability,
    keyframes: KeyframeRequests,
    viewers: Vec<Viewer>,
    index: HashMap<ViewerId, usize>,
    next_prune: Option<Instant>,
    counters: Counters,
}

impl StreamForwarder {
    /// A forwarder with no publisher and no viewers.
    pub fn new(config: ForwarderConfig) -> StreamForwarder {
        let video_track = |layer| {
            IngressTrack::new(
                MediaKind::Video,
                layer,
                config.video_cache,
                config.restart_jump,
                config.layer_idle_timeout,
            )
        };
        StreamForwarder {
            audio: IngressTrack::new(
                MediaKind::Audio,
                LayerId::LOW,
                config.audio_cache,
                config.restart_jump,
                config.layer_idle_timeout,
            ),
            video: LayerId::ALL.map(video_track),
            availability: LayerAvailability::none(),
            keyframes: KeyframeRequests::new(config.keyframe_interval),
            viewers: Vec::new(),
            index: HashMap::new(),
            next_prune: None,
            counters: Counters::default(),
            next_generation: 0,
            config,
        }
    }

    // ----- viewers -------------------------------------------------------------------------

    /// Adds a viewer. Asks the publisher for a keyframe of the viewer's layer at once (or at
    /// the end of the throttle interval), so the first frame arrives fast.
    pub fn add_viewer(
        &mut self,
        now: Instant,
        id: ViewerId,
        options: ViewerOptions,
    ) -> Result<(), ForwardError> {
        if self.index.contains_key(&id) {
            return Err(ForwardError::ViewerExists(id));
        }
        let mut selector = LayerSelector::new(self.config.selector, options.preference);
        if let Some(bps) = options.initial_estimate_bps {
            selector.set_estimate(bps);
        }
        self.viewers.push(Viewer {
            id,
            audio: SeqTsRewriter::new(
                self.config.audio_clock_rate,
                options.audio.seq,
                options.audio.timestamp,
            ),
            video: SeqTsRewriter::new(
                self.config.video_clock_rate,
                options.video.seq,
                options.video.timestamp,
            ),
            vp8: Vp8Rewriter::new(),
            selector,
            asked: None,
            from_cache: false,
        });
        let i = self.viewers.len() - 1;
        self.index.insert(id, i);
        self.reevaluate(now, i);
        Ok(())
    }

    /// Removes a viewer and all its state. Returns whether it was present.
    pub fn remove_viewer(&mut self, id: ViewerId) -> bool {
        let Some(i) = self.index.remove(&id) else {
            return false;
        };
        self.viewers.swap_remove(i);
        if let Some(moved) = self.viewers.get(i) {
            self.index.insert(moved.id, i);
        }
        true
    }

    /// How many viewers there are.
    pub fn viewer_count(&self) -> usize {
        self.viewers.len()
    }

    /// A snapshot of one viewer.
    pub fn viewer_status(&self, id: ViewerId) -> Option<ViewerStatus> {
        let v = &self.viewers[*self.index.get(&id)?];
        Some(ViewerStatus {
            preference: v.selector.preference(),
            estimate_bps: v.selector.estimate(),
            target_layer: v.selector.target(),
            current_layer: v.video.active_source().map(|s| s.layer),
            waiting_for_keyframe: v.needs_keyframe(&self.video).is_some(),
        })
    }

    /// A new bandwidth estimate for a viewer (str0m's `EgressBitrateEstimate`).
    pub fn set_viewer_estimate(
        &mut self,
        now: Instant,
        id: ViewerId,
        bitrate_bps: u64,
    ) -> Result<(), ForwardError> {
        let i = self.viewer_index(id)?;
        self.viewers[i].selector.set_estimate(bitrate_bps);
        self.reevaluate(now, i);
        Ok(())
    }

    /// The viewer picked a layer, automatic selection, or audio only.
    pub fn set_viewer_preference(
        &mut self,
        now: Instant,
        id: ViewerId,
        preference: ViewerPreference,
    ) -> Result<(), ForwardError> {
        let i = self.viewer_index(id)?;
        self.viewers[i].selector.set_preference(preference);
        self.reevaluate(now, i);
        Ok(())
    }

    /// A PLI or FIR from a viewer (str0m's `Event::KeyframeRequest` on the viewer's
    /// connection). Becomes at most one throttled request for the layer the viewer receives
    /// (or waits for). Returns what happened to it, `None` when there is nothing to ask for.
    pub fn handle_viewer_keyframe_request(
        &mut self,
        now: Instant,
        id: ViewerId,
        kind: KeyframeKind,
    ) -> Result<Option<RequestOutcome>, ForwardError> {
        let i = self.viewer_index(id)?;
        self.counters.keyframe_requests_in += 1;
        let v = &self.viewers[i];
        let receiving = v
            .video
            .active_source()
            .filter(|s| self.video[s.layer.index()].current() == Some(*s))
            .map(|s| s.layer);
        let layer = receiving.or_else(|| v.needs_keyframe(&self.video));
        Ok(match layer {
            Some(layer) if self.video[layer.index()].is_live(now) => {
                Some(self.keyframes.request(now, layer, kind))
            }
            _ => None,
        })
    }

    // ----- publisher -----------------------------------------------------------------------

    /// A packet from the publisher: appends one [`Forward`] per viewer that gets it to `out`.
    pub fn handle_publisher_packet(
        &mut self,
        now: Instant,
        packet: &InboundPacket,
        out: &mut Vec<Forward>,
    ) {
        self.counters.packets_in += 1;
        let kind = packet.kind;
        let layer = packet.layer;
        let track = match kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video[layer.index()],
        };
        let was_live = track.is_live(now);
        let acc = track.accept(now, packet, &mut self.next_generation);
        let became_live = !was_live && track.is_live(now);
        if !packet.is_padding() {
            track.cache(now, &acc, packet);
        }
        self.next_prune.get_or_insert(now + self.prune_interval());

        let mut layers_changed = false;
        if kind == MediaKind::Video && became_live {
            layers_changed = self.refresh_layers(now);
        }

        if packet.is_padding() {
            self.counters.padding_dropped += 1;
            if acc.is_current {
                for v in &mut self.viewers {
                    v.rewriter(kind).skip(acc.source, acc.seq);
                }
            }
        } else {
            if kind == MediaKind::Video && packet.keyframe && acc.is_current {
                self.keyframes.on_keyframe(layer);
            }
            self.fan_out(now, packet, &acc, out);
        }

        if kind == MediaKind::Video && acc.is_current && (layers_changed || acc.source_changed) {
            for v in &mut self.viewers {
                if acc.source_changed && v.selector.target() == Some(layer) {
                    // The viewer's earlier request was for the old source.
                    v.asked = None;
                }
                ensure_flow(now, v, &self.video, &mut self.keyframes, &self.config);
            }
        }
    }

    fn fan_out(
        &mut self,
        now: Instant,
        packet: &InboundPacket,
        acc: &Accepted,
        out: &mut Vec<Forward>,
    ) {
        let kind = packet.kind;
        let h = packet.header;
        // The newest packet of its source cannot fill a gap of a finished segment, so a viewer
        // whose current segment is another source can skip the lookup.
        let may_fill_gap = !acc.is_newest;
        // Parsed once for all viewers; an unreadable descriptor is forwarded as it is.
        let vp8: Option<Vp8Descriptor> = match (kind, packet.codec) {
            (MediaKind::Video, Codec::Vp8) => match vp8::parse_descriptor(&packet.payload) {
                Ok(d) => Some(d),
                Err(_) => {
                    self.counters.vp8_unparsed += 1;
                    None
                }
            },
            _ => None,
        };
        for v in &mut self.viewers {
            let target = v.selector.target();
            let rewriter = match kind {
                MediaKind::Audio => &mut v.audio,
                MediaKind::Video => &mut v.video,
            };
            let active = rewriter.active_source() == Some(acc.source);
            let mut result = if active || may_fill_gap {
                rewriter.rewrite(now, acc.source, acc.seq, h.timestamp)
            } else {
                Rewritten::Drop(DropReason::NotActive)
            };
            if let Rewritten::Drop(DropReason::NotActive) = result {
                let may_start = acc.is_current
                    && !active
                    && match kind {
                        MediaKind::Audio => true,
                        MediaKind::Video => packet.keyframe && target == Some(packet.layer),
                    };
                // A joining viewer that was not asked for (`ensure_flow`): from the cache, with
                // any keyframe still there (the age was checked when the choice was made).
                let wants_cache = v.from_cache
                    && kind == MediaKind::Video
                    && acc.is_current
                    && acc.is_newest
                    && target == Some(packet.layer);
                let from_cache = (wants_cache && !may_start)
                    .then(|| {
                        let track = &self.video[packet.layer.index()];
                        cached_keyframe(now, track, self.config.video_cache.max_age)
                    })
                    .flatten()
                    .filter(|(source, seq)| *source == acc.source && *seq < acc.seq);
                if wants_cache && !may_start && from_cache.is_none() {
                    // The keyframe is gone (a new source): ask after all.
                    v.from_cache = false;
                    self.keyframes.request(now, packet.layer, KeyframeKind::Pli);
                    v.asked = Some((packet.layer, now));
                }
                if let Some((source, from)) = from_cache {
                    let track = &self.video[packet.layer.index()];
                    replay_from_cache(
                        now,
                        v,
                        track,
                        source,
                        from,
                        acc.seq,
                        out,
                        &mut self.counters,
                    );
                    result = v.video.rewrite(now, acc.source, acc.seq, h.timestamp);
                } else if may_start {
                    result = rewriter.start_segment(now, acc.source, acc.seq, h.timestamp);
                    if kind == MediaKind::Video {
                        self.counters.layer_switches += 1;
                        v.asked = None;
                        v.from_cache = false;
                    }
                } else {
                    continue;
                }
            }
            match result {
                Rewritten::Forward {
                    seq,
                    timestamp,
                    segment,
                } => {
                    let vp8 = vp8.as_ref().and_then(|d| v.vp8.rewrite(segment, d));
                    out.push(Forward {
                        viewer: v.id,
                        kind,
                        seq,
                        timestamp,
                        marker: h.marker,
                        payload_type: h.payload_type,
                        payload: packet.payload.clone(),
                        received_at: now,
                        vp8,
                    });
                    self.counters.packets_out += 1;
                }
                Rewritten::Drop(_) => self.counters.packets_dropped += 1,
            }
        }
    }

    /// str0m's `Event::StreamPaused` for one of the publisher's streams.
    pub fn handle_publisher_paused(
        &mut self,
        now: Instant,
        kind: MediaKind,
        layer: LayerId,
        paused: bool,
    ) {
        match kind {
            MediaKind::Audio => self.audio.set_paused(paused),
            MediaKind::Video => {
                self.video[layer.index()].set_paused(paused);
                if self.refresh_layers(now) {
                    self.ensure_flow_all(now);
                }
            }
        }
    }

    /// The publisher is gone (DELETE, ICE timeout). Viewers keep their state; when a publisher
    /// comes back its packets are new sources, and every viewer continues its numbering.
    pub fn publisher_left(&mut self, now: Instant) {
        self.audio.end();
        for t in &mut self.video {
            t.end();
        }
        self.keyframes.reset();
        self.refresh_layers(now);
        for v in &mut self.viewers {
            v.asked = None;
        }
    }

    /// Which video layers are live, with their bitrates.
    pub fn availability(&self) -> LayerAvailability {
        self.availability
    }

    // ----- output and time -----------------------------------------------------------------

    /// The next keyframe request for the publisher (`StreamRx::request_keyframe` on the RID of
    /// `layer`).
    pub fn poll_keyframe_request(&mut self) -> Option<KeyframeRequest> {
        let r = self.keyframes.poll_request();
        if r.is_some() {
            self.counters.keyframe_requests_out += 1;
        }
        r
    }

    /// When [`StreamForwarder::handle_timeout`] next has work, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retry = self.config.keyframe_retry;
        let viewers = self.viewers.iter().flat_map(|v| {
            let waiting = v
                .needs_keyframe(&self.video)
                .and(v.asked)
                .map(|(_, at)| at + retry);
            [v.selector.next_timeout(), waiting]
        });
        // Only layers still counted live: once handle_timeout has seen one go idle, its
        // deadline is in the past and must not be reported again.
        let idle = LayerId::ALL
            .into_iter()
            .filter(|l| self.availability.is_live(*l))
            .filter_map(|l| self.video[l.index()].idle_deadline());
        [self.keyframes.poll_timeout(), self.next_prune]
            .into_iter()
            .chain(viewers)
            .flatten()
            .chain(idle)
            .min()
    }

    /// Does what is due at `now`. Calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Requests nobody wants any more are dropped before they go out.
        for layer in LayerId::ALL {
            if self.keyframes.is_pending(layer)
                && !self.viewers.iter().any(|v| v.wants_layer(layer))
            {
                self.keyframes.cancel(layer);
            }
        }
        self.keyframes.handle_timeout(now);
        self.refresh_layers(now);
        for i in 0..self.viewers.len() {
            if self.viewers[i]
                .selector
                .next_timeout()
                .is_some_and(|t| t <= now)
            {
                self.viewers[i].selector.evaluate(now, &self.availability);
            }
        }
        self.ensure_flow_all(now);
        if self.next_prune.is_some_and(|t| t <= now) {
            self.audio.prune(now);
            for t in &mut self.video {
                t.prune(now);
            }
            let any_source =
                self.audio.source_count() > 0 || self.video.iter().any(|t| t.source_count() > 0);
            self.next_prune = any_source.then(|| now + self.prune_interval());
        }
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    // ----- internals -----------------------------------------------------------------------

    fn viewer_index(&self, id: ViewerId) -> Result<usize, ForwardError> {
        self.index
            .get(&id)
            .copied()
            .ok_or(ForwardError::UnknownViewer(id))
    }

    fn prune_interval(&self) -> Duration {
        self.config
            .video_cache
            .max_age
            .min(self.config.audio_cache.max_age)
            / 2
    }

    /// Recomputes which layers are live; re-evaluates every viewer's target if that changed.
    /// Returns whether it changed.
    fn refresh_layers(&mut self, now: Instant) -> bool {
        let mut availability = LayerAvailability::none();
        for layer in LayerId::ALL {
            let track = &self.video[layer.index()];
            if track.is_live(now) {
                let rate = track
                    .measured_bitrate()
                    .unwrap_or(self.config.nominal_bitrates[layer.index()]);
                availability.set(layer, Some(rate));
            }
        }
        if availability == self.availability {
            return false;
        }
        self.availability = availability;
        for v in &mut self.viewers {
            v.selector.evaluate(now, &availability);
        }
        true
    }

    /// Re-evaluates one viewer's target and asks for a keyframe if it now waits for one.
    fn reevaluate(&mut self, now: Instant, i: usize) {
        let v = &mut self.viewers[i];
        v.selector.evaluate(now, &self.availability);
        if v.selector.preference() == ViewerPreference::AudioOnly {
            v.video.stop();
        }
        ensure_flow(now, v, &self.video, &mut self.keyframes, &self.config);
    }

    fn ensure_flow_all(&mut self, now: Instant) {
        for v in &mut self.viewers {
            ensure_flow(now, v, &self.video, &mut self.keyframes, &self.config);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The viewer layer override (the WHEP layer route) in simulated time: pin, audio only,
    //! back to auto; every switch asks for a keyframe of the new layer and keeps the viewer's
    //! numbering continuous.

    use std::sync::Arc;

    use super::*;
    use crate::packet::{Codec, PacketHeader};

    /// Three video layers and audio; every layer sends a keyframe only when asked.
    struct Pub {
        seq: [u16; 4],
        ts: [u32; 4],
        want_key: [bool; 3],
    }

    fn vp8(keyframe: bool) -> Arc<[u8]> {
        let mut p = vec![0x90, 0x80, 0x81, 0x02, if keyframe { 0x10 } else { 0x11 }];
        p.extend_from_slice(&[0x02, 0x00, 0x9d, 0x01, 0x2a]);
        p.extend_from_slice(&[0u8; 300]);
        Arc::from(p)
    }

    impl Pub {
        fn packet(&mut self, i: usize, keyframe: bool) -> InboundPacket {
            let (kind, layer, codec, payload) = if i == 3 {
                let p: Arc<[u8]> = Arc::from(vec![0xfc, 0xff, 0xfe]);
                (MediaKind::Audio, LayerId::LOW, Codec::Opus, p)
            } else {
                let l = LayerId::new(i as u8).unwrap();
                (MediaKind::Video, l, Codec::Vp8, vp8(keyframe))
            };
            let header = PacketHeader {
                ssrc: 1000 + i as u32,
                seq: self.seq[i],
                timestamp: self.ts[i],
                marker: true,
                payload_type: if i == 3 { 111 } else { 96 },
            };
            self.seq[i] = self.seq[i].wrapping_add(1);
            self.ts[i] = self.ts[i].wrapping_add(if i == 3 { 960 } else { 3000 });
            InboundPacket::new(kind, layer, codec, header, payload)
        }
    }

    struct Sim {
        f: StreamForwarder,
        p: Pub,
        t0: Instant,
        ms: u64,
        out: Vec<Forward>,
        requests: Vec<(u64, KeyframeRequest)>,
    }

    impl Sim {
        fn new() -> Sim {
            Sim {
                f: StreamForwarder::new(ForwarderConfig::default()),
                p: Pub {
                    seq: [100, 30_000, 65_000, 7],
                    ts: [1, 2, 3, 4],
                    want_key: [true; 3],
                },
                t0: Instant::now(),
                ms: 0,
                out: Vec::new(),
                requests: Vec::new(),
            }
        }

        fn now(&self) -> Instant {
            self.t0 + Duration::from_millis(self.ms)
        }

        /// Runs 10 ms steps until `until` ms: audio every 20 ms, a frame per layer every
        /// 30 ms, a keyframe on a layer that was asked for one.
        fn run(&mut self, until: u64) {
            while self.ms < until {
                self.ms += 10;
                let now = self.now();
                if self.f.poll_timeout().is_some_and(|t| t <= now) {
                    self.f.handle_timeout(now);
                }
                while let Some(r) = self.f.poll_keyframe_request() {
                    self.requests.push((self.ms, r));
                    self.p.want_key[r.layer.index()] = true;
                }
                let mut packets = Vec::new();
                if self.ms % 20 == 0 {
                    packets.push(self.p.packet(3, false));
                }
                if self.ms % 30 == 0 {
                    for i in 0..3 {
                        let key = std::mem::take(&mut self.p.want_key[i]);
                        packets.push(self.p.packet(i, key));
                    }
                }
                for p in packets {
                    self.f.handle_publisher_packet(now, &p, &mut self.out);
                }
            }
        }

        fn status(&self, v: ViewerId) -> ViewerStatus {
            self.f.viewer_status(v).unwrap()
        }

        fn set(&mut self, v: ViewerId, p: ViewerPreference) {
            let now = self.now();
            self.f.set_viewer_preference(now, v, p).unwrap();
            while let Some(r) = self.f.poll_keyframe_request() {
                self.requests.push((self.ms, r));
                self.p.want_key[r.layer.index()] = true;
            }
        }

        fn kind(&self, v: ViewerId, kind: MediaKind) -> Vec<&Forward> {
            self.out
                .iter()
                .filter(|f| f.viewer == v && f.kind == kind)
                .collect()
        }

        fn asked_since(&self, ms: u64, layer: LayerId) -> bool {
            self.requests
                .iter()
                .any(|(at, r)| *at >= ms && r.layer == layer)
        }
    }

    fn continuous(ws: &[&Forward]) {
        for pair in ws.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1, "sequence numbers continue");
            let step = pair[1].timestamp.wrapping_sub(pair[0].timestamp) as i32;
            assert!(step >= 0, "timestamps never go back ({step})");
        }
    }

    #[test]
    fn pinning_switches_at_a_requested_keyframe_and_audio_only_stops_video() {
        let mut s = Sim::new();
        s.run(200);
        let v = ViewerId(1);
        let options = ViewerOptions {
            initial_estimate_bps: Some(5_000_000),
            ..ViewerOptions::default()
        };
        s.f.add_viewer(s.now(), v, options).unwrap();
        s.run(400);
        assert_eq!(
            s.status(v).current_layer,
            Some(LayerId::HIGH),
            "auto: best fit"
        );

        // Pin LOW: a keyframe request for LOW, the switch at its keyframe.
        let at = s.ms;
        s.set(v, ViewerPreference::Pin(LayerId::LOW));
        assert!(s.asked_since(at, LayerId::LOW), "{:?}", s.requests);
        assert_eq!(s.status(v).target_layer, Some(LayerId::LOW));
        s.run(at + 100);
        assert_eq!(s.status(v).current_layer, Some(LayerId::LOW));
        // The pin holds whatever the estimate says.
        let now = s.now();
        s.f.set_viewer_estimate(now, v, 10_000_000).unwrap();
        s.run(at + 2_000);
        assert_eq!(s.status(v).current_layer, Some(LayerId::LOW));

        // Pin HIGH again.
        let at = s.ms;
        s.set(v, ViewerPreference::Pin(LayerId::HIGH));
        assert!(s.asked_since(at, LayerId::HIGH), "{:?}", s.requests);
        s.run(at + 100);
        assert_eq!(s.status(v).current_layer, Some(LayerId::HIGH));

        // Audio only: no video at all, audio goes on.
        s.set(v, ViewerPreference::AudioOnly);
        let status = s.status(v);
        assert_eq!((status.target_layer, status.current_layer), (None, None));
        assert!(!status.waiting_for_keyframe);
        let video = s.kind(v, MediaKind::Video).len();
        let audio = s.kind(v, MediaKind::Audio).len();
        let at = s.ms;
        s.run(at + 1_000);
        assert_eq!(s.kind(v, MediaKind::Video).len(), video, "no video packets");
        assert!(
            s.kind(v, MediaKind::Audio).len() >= audio + 45,
            "audio continues"
        );
        assert!(
            !s.requests.iter().any(|(t, _)| *t > at),
            "no keyframe requests while audio only"
        );

        // Back to auto: video again, from a requested keyframe of the estimate's layer.
        let at = s.ms;
        s.set(v, ViewerPreference::Auto);
        assert_eq!(s.status(v).target_layer, Some(LayerId::HIGH));
        assert!(s.asked_since(at, LayerId::HIGH));
        s.run(at + 100);
        assert_eq!(s.status(v).current_layer, Some(LayerId::HIGH));

        let video = s.kind(v, MediaKind::Video);
        continuous(&video);
        continuous(&s.kind(v, MediaKind::Audio));
        // Every segment starts with a keyframe.
        assert_eq!(s.f.counters().layer_switches, 4);
    }

    #[test]
    fn a_join_shortly_after_a_keyframe_starts_from_the_cache_without_a_request() {
        let mut s = Sim::new();
        s.f = StreamForwarder::new(ForwarderConfig {
            join_from_cache: Some(Duration::from_millis(500)),
            ..ForwarderConfig::default()
        });
        // Keyframes on every layer at 30 ms, then deltas only.
        s.run(330);
        let v = ViewerId(1);
        let options = ViewerOptions {
            preference: ViewerPreference::Pin(LayerId::MID),
            video: RtpBase {
                seq: 500,
                timestamp: 7,
            },
            ..ViewerOptions::default()
        };
        let at = s.ms;
        s.f.add_viewer(s.now(), v, options).unwrap();
        assert_eq!(
            s.f.poll_keyframe_request(),
            None,
            "no request: the cache has one"
        );
        s.run(at + 30);
        let video = s.kind(v, MediaKind::Video);
        // The keyframe of 30 ms and the ten frames after it, then the live one.
        assert_eq!(video.len(), 11 + 1, "{video:?}");
        assert!(crate::packet::vp8_is_keyframe_start(&video[0].payload));
        assert_eq!((video[0].seq, video[0].timestamp), (500, 7));
        continuous(&video);
        assert_eq!(
            video[10].timestamp,
            7 + 10 * 3000,
            "the source's spacing is kept"
        );
        assert_eq!(s.status(v).current_layer, Some(LayerId::MID));
        assert_eq!(s.f.counters().joins_from_cache, 1);
        assert!(!s.asked_since(at, LayerId::MID));

        // Too old a keyframe (more than 500 ms): a join asks for a new one.
        s.run(900);
        let w = ViewerId(2);
        let options = ViewerOptions {
            preference: ViewerPreference::Pin(LayerId::MID),
            ..ViewerOptions::default()
        };
        s.f.add_viewer(s.now(), w, options).unwrap();
        let request = s.f.poll_keyframe_request();
        assert_eq!(request.map(|r| r.layer), Some(LayerId::MID));
        s.p.want_key[LayerId::MID.index()] = true;
        s.run(960);
        let fresh = s.kind(w, MediaKind::Video);
        assert_eq!(
            fresh.len(),
            2,
            "the new keyframe at 930 ms and the frame at 960 ms"
        );
        assert!(crate::packet::vp8_is_keyframe_start(&fresh[0].payload));
        assert_eq!(s.f.counters().joins_from_cache, 1);

        // The throttle holds a new request back (MID was asked for at 900 ms, its keyframe
        // came at 930): a join at 1500 ms starts from that 570 ms old keyframe instead of
        // waiting until 1900 ms.
        s.run(1500);
        let x = ViewerId(3);
        let options = ViewerOptions {
            preference: ViewerPreference::Pin(LayerId::MID),
            ..ViewerOptions::default()
        };
        s.f.add_viewer(s.now(), x, options).unwrap();
        assert_eq!(s.f.poll_keyframe_request(), None);
        s.run(1530);
        let video = s.kind(x, MediaKind::Video);
        assert!(crate::packet::vp8_is_keyframe_start(&video[0].payload));
        assert_eq!(
            video.len(),
            20 + 1,
            "the keyframe, 19 frames after it, the live one"
        );
        assert_eq!(s.f.counters().joins_from_cache, 2);
    }

    #[test]
    fn a_preference_set_before_joining_applies_at_join() {
        let mut s = Sim::new();
        s.run(200);
        let v = ViewerId(7);
        let options = ViewerOptions {
            preference: ViewerPreference::Pin(LayerId::MID),
            initial_estimate_bps: Some(100_000),
            ..ViewerOptions::default()
        };
        let at = s.ms;
        s.f.add_viewer(s.now(), v, options).unwrap();
        assert_eq!(s.status(v).target_layer, Some(LayerId::MID));
        while let Some(r) = s.f.poll_keyframe_request() {
            s.requests.push((s.ms, r));
            s.p.want_key[r.layer.index()] = true;
        }
        assert!(
            s.asked_since(at, LayerId::MID),
            "a join asks for its layer's keyframe"
        );
        s.run(at + 100);
        assert_eq!(s.status(v).current_layer, Some(LayerId::MID));
        assert!(
            s.f.set_viewer_preference(s.now(), ViewerId(8), ViewerPreference::Auto)
                .is_err()
        );
    }
}
