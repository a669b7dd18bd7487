//! Recording live streams to WebM on the server, from the publisher's RTP, without
//! transcoding (issue 6; `docs/decisions/0006-recording.md`).
//!
//! | module | concept |
//! | --- | --- |
//! | [`depacketize`] | RTP → frames: reorder buffer, VP8 frame assembly, Opus durations (sans-IO) |
//! | [`webm`] | frames → WebM bytes and end-of-file patches (sans-IO) |
//! | this module | [`Recorder`]: one recording's state machine, packets in, bytes out (sans-IO) |
//! | [`writer`] | [`Recording`]: the recorder on its own thread behind a bounded channel, the file, names, the listing |
//! | [`http`] | `GET /recordings`, `GET /recordings/{name}` (Range) |
//!
//! [`Recorder`] invariants:
//! - **Times are explicit**: every packet carries its arrival in ms since the recording
//!   started; nothing reads a clock.
//! - **Monotonic times per track**: a frame's time is its RTP timestamp (extended across the
//!   32-bit wrap) mapped to ms from an anchor (the arrival of the source's first frame), never
//!   earlier than the track's previous frame + 1 ms. A new SSRC on a track (a publisher's
//!   encoder restart) is a new source: the old one is flushed and the new one anchored at
//!   its arrival, after the previous frame — the file goes on. A timestamp that strays more
//!   than [`RESYNC_MS`] from the arrival time re-anchors the source.
//! - **Video starts at a keyframe** and, after a loss, resumes at the next one; what is
//!   dropped is counted ([`RecordStats`]). Audio (Opus) is one packet per frame; a lost
//!   packet is a gap.
//! - Only VP8 video and Opus audio are written (WebM holds no H.264): other codecs are
//!   ignored, which the caller decides up front through [`TrackSetup`].

pub mod depacketize;
pub mod http;
pub mod webm;
pub mod writer;

pub use writer::{Recording, RecordingInfo, Selection, delete_recordings_before, list_recordings};

use crate::packet::{MediaKind, Payload};
use depacketize::{Reorder, Vp8Assembler, Vp8Frame, opus_frame_ms};
use webm::{MuxError, Patch, TrackSetup, WebmMuxer};

/// A source whose mapped time strays this far from the arrival time is re-anchored.
pub const RESYNC_MS: u64 = 5_000;
/// How long the reorder buffer waits for a missing packet (a NACK repair).
pub const REORDER_WAIT_MS: u64 = 250;
/// How many packets the reorder buffer holds at most.
pub const REORDER_MAX_PACKETS: usize = 512;
/// Keyframe requests while video waits for one: at most one per this interval.
pub const KEYFRAME_RETRY_MS: u64 = 1_000;
/// A keyframe is requested when the last one written is older than this, so the
/// recording has a seek point (a cue) at least this often.
pub const KEYFRAME_INTERVAL_MS: u64 = 10_000;

/// One RTP packet for the recorder.
#[derive(Debug, Clone)]
pub struct RecordPacket {
    /// Audio or video.
    pub kind: MediaKind,
    /// The publisher's SSRC.
    pub ssrc: u32,
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Marker bit.
    pub marker: bool,
    /// The payload (shared with the forwarder: no copy).
    pub payload: Payload,
    /// Arrival, in ms since the recording started.
    pub at_ms: u64,
}

/// What a recording wrote and what it lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordStats {
    /// Video frames written.
    pub video_frames: u64,
    /// Audio frames written.
    pub audio_frames: u64,
    /// Video frames not written: broken by a loss, malformed, or waiting for a keyframe.
    pub dropped_video_frames: u64,
    /// Packets never seen (sequence gaps the reorder buffer gave up on).
    pub lost_packets: u64,
    /// Duplicates and packets that came after they were given up on.
    pub late_packets: u64,
    /// Unreadable payloads (VP8 descriptors, empty Opus packets).
    pub malformed: u64,
    /// Sources after the first per track (SSRC changes).
    pub source_changes: u64,
    /// Packets the driver could not hand over because the writer was behind.
    pub overflow_packets: u64,
    /// The file's duration, in ms.
    pub duration_ms: u64,
}

/// The RTP clock of one source, mapped to the recording's ms.
#[derive(Debug)]
struct SourceClock {
    /// The last extended timestamp (for extending the next).
    last: Option<i64>,
    /// (extended RTP timestamp, ms) of the anchor.
    anchor: Option<(i64, u64)>,
    rate: i64,
}

impl SourceClock {
    fn new(rate: i64) -> SourceClock {
        SourceClock {
            last: None,
            anchor: None,
            rate,
        }
    }

    /// Extends a 32-bit timestamp to the value nearest the previous one.
    fn extend(&mut self, ts: u32) -> i64 {
        let ext = match self.last {
            None => i64::from(ts),
            Some(last) => last + i64::from(ts.wrapping_sub(last as u32) as i32),
        };
        self.last = Some(ext);
        ext
    }

    /// The time of a frame with extended timestamp `ts` that arrived at `arrival`, never
    /// before `floor`.
    fn time_ms(&mut self, ts: i64, arrival: u64, floor: u64) -> u64 {
        let mapped = self
            .anchor
            .map(|(rtp, ms)| ms as i64 + (ts - rtp) * 1000 / self.rate);
        let t = match mapped {
            Some(t) if t >= 0 && t.abs_diff(arrival as i64) <= RESYNC_MS => t as u64,
            _ => {
                let ms = arrival.max(floor);
                self.anchor = Some((ts, ms));
                ms
            }
        };
        t.max(floor)
    }
}

/// One incarnation (SSRC) of a track.
#[derive(Debug)]
struct Source {
    ssrc: u32,
    reorder: Reorder<(u32, bool, Payload, u64)>,
    clock: SourceClock,
    vp8: Vp8Assembler,
    /// Unreadable Opus packets.
    malformed_audio: u64,
}

/// One track of the file.
#[derive(Debug)]
struct Track {
    kind: MediaKind,
    number: u64,
    source: Option<Source>,
    /// Time and duration of the last frame written.
    last: Option<(u64, u64)>,
    /// Counters of sources already replaced.
    lost: u64,
    late: u64,
    dropped: u64,
    malformed: u64,
    frames: u64,
    sources: u64,
}

impl Track {
    fn new(kind: MediaKind, number: u64) -> Track {
        Track {
            kind,
            number,
            source: None,
            last: None,
            lost: 0,
            late: 0,
            dropped: 0,
            malformed: 0,
            frames: 0,
            sources: 0,
        }
    }

    /// The counters of the current source folded into the track's.
    fn fold_source(&mut self) {
        if let Some(s) = &self.source {
            self.lost += s.reorder.lost;
            self.late += s.reorder.late;
            self.dropped += s.vp8.counters.dropped_frames;
            self.malformed += s.vp8.counters.malformed + s.malformed_audio;
        }
    }
}

/// One recording: RTP packets in, WebM bytes out (see the module docs).
#[derive(Debug)]
pub struct Recorder {
    muxer: WebmMuxer,
    video: Option<Track>,
    audio: Option<Track>,
    /// Scratch for released packets and assembled frames.
    released: Vec<(i64, (u32, bool, Payload, u64))>,
    frames: Vec<Vp8Frame>,
    last_keyframe_request: Option<u64>,
    last_keyframe_ms: Option<u64>,
    /// The latest arrival seen (the recorder's notion of now).
    now_ms: u64,
    overflow: u64,
}

impl Recorder {
    /// A recorder for these tracks and the file's first bytes (`date_utc_ns`: the start, in
    /// ns since the Unix epoch).
    pub fn new(setup: TrackSetup, date_utc_ns: i64) -> (Recorder, Vec<u8>) {
        let mut muxer = WebmMuxer::new(setup);
        let header = muxer.header(date_utc_ns);
        let recorder = Recorder {
            muxer,
            video: setup
                .video
                .then(|| Track::new(MediaKind::Video, webm::VIDEO_TRACK)),
            audio: setup
                .audio
                .then(|| Track::new(MediaKind::Audio, setup.audio_track())),
            released: Vec::new(),
            frames: Vec::new(),
            last_keyframe_request: None,
            last_keyframe_ms: None,
            now_ms: 0,
            overflow: 0,
        };
        (recorder, header)
    }

    /// One packet; bytes for the file (whole clusters) are appended to `out`.
    pub fn push(&mut self, packet: RecordPacket, out: &mut Vec<u8>) {
        self.now_ms = self.now_ms.max(packet.at_ms);
        let is_video = packet.kind == MediaKind::Video;
        let Some(track) = (if is_video {
            self.video.as_mut()
        } else {
            self.audio.as_mut()
        }) else {
            return;
        };
        if track.source.as_ref().is_some_and(|s| s.ssrc != packet.ssrc) {
            self.end_source(is_video, out);
        }
        let track = if is_video {
            self.video.as_mut()
        } else {
            self.audio.as_mut()
        };
        let Some(track) = track else {
            return;
        };
        let source = track.source.get_or_insert_with(|| Source {
            ssrc: packet.ssrc,
            reorder: Reorder::new(REORDER_MAX_PACKETS, REORDER_WAIT_MS),
            clock: SourceClock::new(if is_video { 90_000 } else { 48_000 }),
            vp8: Vp8Assembler::new(),
            malformed_audio: 0,
        });
        let item = (
            packet.timestamp,
            packet.marker,
            packet.payload,
            packet.at_ms,
        );
        source
            .reorder
            .push(packet.seq, packet.at_ms, item, &mut self.released);
        self.write_released(is_video, out);
    }

    /// Flushes a track's source (its held packets, its frame in progress is dropped) and
    /// forgets it; the next packet starts a new one.
    fn end_source(&mut self, is_video: bool, out: &mut Vec<u8>) {
        let track = if is_video {
            self.video.as_mut()
        } else {
            self.audio.as_mut()
        };
        let Some(track) = track else {
            return;
        };
        if let Some(source) = track.source.as_mut() {
            source.reorder.flush(&mut self.released);
        }
        self.write_released(is_video, out);
        let track = if is_video {
            self.video.as_mut()
        } else {
            self.audio.as_mut()
        };
        if let Some(track) = track {
            track.fold_source();
            if track.source.take().is_some() {
                track.sources += 1;
            }
        }
    }

    /// Turns the released packets of a track into frames and writes them.
    fn write_released(&mut self, is_video: bool, out: &mut Vec<u8>) {
        let Recorder {
            muxer,
            video,
            audio,
            released,
            frames,
            last_keyframe_ms,
            ..
        } = self;
        let track = if is_video {
            video.as_mut()
        } else {
            audio.as_mut()
        };
        let Some(track) = track else {
            released.clear();
            return;
        };
        let Some(source) = track.source.as_mut() else {
            released.clear();
            return;
        };
        for (seq, (timestamp, marker, payload, at)) in released.drain(..) {
            let ts = source.clock.extend(timestamp);
            if track.kind == MediaKind::Video {
                source.vp8.push(seq, ts, marker, &payload, frames);
                for frame in frames.drain(..) {
                    let time = source.clock.time_ms(frame.timestamp, at, floor(track.last));
                    // Until the next frame comes, a frame lasts as long as the one before.
                    let duration = track
                        .last
                        .map_or(33, |(t, _)| time.saturating_sub(t))
                        .clamp(1, 1000);
                    if write(
                        muxer,
                        track.number,
                        time,
                        duration,
                        frame.keyframe,
                        &frame.data,
                        out,
                    ) {
                        track.last = Some((time, duration));
                        track.frames += 1;
                        if frame.keyframe {
                            *last_keyframe_ms = Some(time);
                        }
                    } else {
                        source.vp8.counters.dropped_frames += 1;
                    }
                }
            } else {
                if payload.is_empty() {
                    // RTP padding: no media.
                    continue;
                }
                let Some(duration) = opus_frame_ms(&payload) else {
                    source.malformed_audio += 1;
                    continue;
                };
                let time = source.clock.time_ms(ts, at, floor(track.last));
                if write(muxer, track.number, time, duration, true, &payload, out) {
                    track.last = Some((time, duration));
                    track.frames += 1;
                }
            }
        }
    }

    /// Whether to ask the publisher for a keyframe now (`now_ms`: ms since the start): video
    /// waits for one (at most every [`KEYFRAME_RETRY_MS`]), or the last one is older than
    /// [`KEYFRAME_INTERVAL_MS`]. A `true` counts as a request made.
    pub fn poll_keyframe_request(&mut self, now_ms: u64) -> bool {
        let Some(track) = &self.video else {
            return false;
        };
        let Some(source) = &track.source else {
            return false;
        };
        let since_request = self
            .last_keyframe_request
            .map_or(u64::MAX, |t| now_ms.saturating_sub(t));
        let stale = self
            .last_keyframe_ms
            .is_some_and(|t| now_ms.saturating_sub(t) >= KEYFRAME_INTERVAL_MS);
        let want = (source.vp8.needs_keyframe() && since_request >= KEYFRAME_RETRY_MS)
            || (stale && since_request >= KEYFRAME_INTERVAL_MS);
        if want {
            self.last_keyframe_request = Some(now_ms);
        }
        want
    }

    /// Counts packets the caller could not hand over (a full channel).
    pub fn add_overflow(&mut self, packets: u64) {
        self.overflow += packets;
    }

    /// The counters so far.
    pub fn stats(&self) -> RecordStats {
        let mut stats = RecordStats {
            overflow_packets: self.overflow,
            duration_ms: self.muxer.duration_ms(),
            ..RecordStats::default()
        };
        for track in [&self.video, &self.audio].into_iter().flatten() {
            let (mut lost, mut late, mut dropped, mut malformed) =
                (track.lost, track.late, track.dropped, track.malformed);
            if let Some(s) = &track.source {
                lost += s.reorder.lost;
                late += s.reorder.late;
                dropped += s.vp8.counters.dropped_frames;
                malformed += s.vp8.counters.malformed + s.malformed_audio;
            }
            stats.lost_packets += lost;
            stats.late_packets += late;
            stats.malformed += malformed;
            let sources = track.sources + u64::from(track.source.is_some());
            stats.source_changes += sources.saturating_sub(1);
            match track.kind {
                MediaKind::Video => {
                    stats.video_frames = track.frames;
                    stats.dropped_video_frames = dropped;
                }
                MediaKind::Audio => stats.audio_frames = track.frames,
            }
        }
        stats
    }

    /// Ends the recording: what was held is written, then the last cluster and the cues are
    /// appended to `out`; the patches complete the header.
    pub fn finish(mut self, out: &mut Vec<u8>) -> (Vec<Patch>, RecordStats) {
        self.end_source(true, out);
        self.end_source(false, out);
        let stats = self.stats();
        (self.muxer.finish(out), stats)
    }
}

/// The earliest time a track's next frame may have: 1 ms after its last one.
fn floor(last: Option<(u64, u64)>) -> u64 {
    last.map_or(0, |(t, _)| t + 1)
}

/// Hands one frame to the muxer; `false` when it refused it.
fn write(
    muxer: &mut WebmMuxer,
    track: u64,
    time: u64,
    duration: u64,
    keyframe: bool,
    data: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    match muxer.push(track, time, duration, keyframe, data, out) {
        Ok(()) => true,
        Err(MuxError::NoSuchTrack | MuxError::BadSize) => false,
    }
}

#[cfg(test)]
mod tests;
