//! A small WebM (Matroska) muxer for the recorder, sans-IO: it turns frames into bytes and,
//! at the end, into a few fixed-size patches of bytes it wrote earlier.
//!
//! Layout of a finished file (what a browser's `<video>` needs to play and seek it):
//!
//! ```text
//! EBML header (DocType "webm", version 4: CodecDelay/SeekPreRoll)
//! Segment (8-byte size, patched at the end)
//!   SeekHead: Info, Tracks, Cues (the Cues position patched at the end)
//!   Info: TimestampScale 1 ms, Duration (8-byte float, patched), DateUTC, apps
//!   Tracks: 1 = V_VP8 (PixelWidth/PixelHeight 2-byte fields, patched with the largest
//!           keyframe's size), 2 = A_OPUS (OpusHead, CodecDelay, SeekPreRoll)
//!   Cluster*: Timestamp, SimpleBlock* (keyframe flag)
//!   Cues: one CuePoint per cluster that starts with a video keyframe (audio-only: per cluster)
//! ```
//!
//! Invariants:
//! - Bytes come out in file order ([`WebmMuxer::header`], then what [`WebmMuxer::push`]
//!   and [`WebmMuxer::finish`] append); [`Patch`]es only overwrite bytes already emitted,
//!   with the same length, so the file can be streamed to disk and patched in place.
//! - A cluster is buffered in memory and emitted whole when the next one starts (at a video
//!   keyframe, or after [`MAX_CLUSTER_MS`]); its size is therefore always known. At most
//!   [`MAX_CLUSTER_MS`] of media is held.
//! - Block timestamps are never before their cluster's (a late frame of the other track is
//!   moved to the cluster start) and fit the block's signed 16-bit offset.
//! - Nothing here panics on any input; frames larger than [`MAX_FRAME_BYTES`] are refused.
//!
//! [`read_duration`] walks the start of a finished file back to its Info duration (for the
//! recording list).

/// Timestamps are milliseconds (TimestampScale 1,000,000 ns).
pub const TIMESTAMP_SCALE_NS: u64 = 1_000_000;
/// A cluster closes after this much media even without a keyframe (well inside the
/// SimpleBlock's ±32 s offset range).
pub const MAX_CLUSTER_MS: u64 = 5_000;
/// The largest frame the muxer accepts.
pub const MAX_FRAME_BYTES: usize = 8 << 20;
/// Track number of the video track (when there is one).
pub const VIDEO_TRACK: u64 = 1;
/// Track number of the audio track: 2 with video, 1 without.
pub const AUDIO_TRACK_WITH_VIDEO: u64 = 2;
/// Opus pre-skip written in OpusHead (libopus' encoder delay at 48 kHz: 6.5 ms).
pub const OPUS_PRE_SKIP: u16 = 312;
/// SeekPreRoll for Opus, as the WebM spec recommends (80 ms, in ns).
pub const OPUS_SEEK_PRE_ROLL_NS: u64 = 80_000_000;

mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const EBML_VERSION: u32 = 0x4286;
    pub const EBML_READ_VERSION: u32 = 0x42F7;
    pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_VERSION: u32 = 0x4287;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const SEGMENT: u32 = 0x1853_8067;
    pub const SEEK_HEAD: u32 = 0x114D_9B74;
    pub const SEEK: u32 = 0x4DBB;
    pub const SEEK_ID: u32 = 0x53AB;
    pub const SEEK_POSITION: u32 = 0x53AC;
    pub const INFO: u32 = 0x1549_A966;
    pub const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub const DURATION: u32 = 0x4489;
    pub const DATE_UTC: u32 = 0x4461;
    pub const MUXING_APP: u32 = 0x4D80;
    pub const WRITING_APP: u32 = 0x5741;
    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_UID: u32 = 0x73C5;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const FLAG_LACING: u32 = 0x9C;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const CODEC_DELAY: u32 = 0x56AA;
    pub const SEEK_PRE_ROLL: u32 = 0x56BB;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub const CHANNELS: u32 = 0x9F;
    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMESTAMP: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
    pub const CUES: u32 = 0x1C53_BB6B;
    pub const CUE_POINT: u32 = 0xBB;
    pub const CUE_TIME: u32 = 0xB3;
    pub const CUE_TRACK_POSITIONS: u32 = 0xB7;
    pub const CUE_TRACK: u32 = 0xF7;
    pub const CUE_CLUSTER_POSITION: u32 = 0xF1;
    pub const VOID: u32 = 0xEC;
}

/// Which tracks the file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackSetup {
    /// A VP8 video track.
    pub video: bool,
    /// An Opus audio track.
    pub audio: bool,
}

impl TrackSetup {
    /// The audio track's number.
    pub fn audio_track(&self) -> u64 {
        if self.video {
            AUDIO_TRACK_WITH_VIDEO
        } else {
            VIDEO_TRACK
        }
    }
}

/// Overwrite `bytes.len()` bytes at `offset` (from the start of the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// Byte offset from the start of the file.
    pub offset: u64,
    /// The new bytes (same length as the ones they replace).
    pub bytes: Vec<u8>,
}

/// Applies patches to an in-memory file (tests, and any caller holding the whole file).
pub fn apply_patches(file: &mut [u8], patches: &[Patch]) {
    for p in patches {
        let Ok(start) = usize::try_from(p.offset) else {
            continue;
        };
        if let Some(target) = file.get_mut(start..start + p.bytes.len()) {
            target.copy_from_slice(&p.bytes);
        }
    }
}

/// A frame the muxer refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuxError {
    /// No such track in this file.
    NoSuchTrack,
    /// Larger than [`MAX_FRAME_BYTES`], or empty.
    BadSize,
}

/// The muxer. See the module docs for the layout and invariants.
#[derive(Debug)]
pub struct WebmMuxer {
    setup: TrackSetup,
    /// Bytes emitted so far (the file offset of the next byte).
    written: u64,
    /// File offset of the Segment's data (SeekPosition and CueClusterPosition count from it).
    segment_data: u64,
    segment_size_at: u64,
    duration_at: u64,
    /// The Cues entry of the SeekHead: where the entry starts and where its position sits.
    cues_seek_entry_at: u64,
    cues_seek_position_at: u64,
    pixel_width_at: Option<u64>,
    pixel_height_at: Option<u64>,
    video_size: Option<(u16, u16)>,
    cluster: Vec<u8>,
    cluster_time: u64,
    /// The first block of the open cluster is a video keyframe (or audio in an audio-only
    /// file): the cluster gets a cue.
    cluster_cue_track: Option<u64>,
    cues: Vec<(u64, u64, u64)>,
    /// End of the latest frame (ms): the Duration.
    end_ms: u64,
}

impl WebmMuxer {
    /// A muxer for these tracks; `date_utc_ns` is the start in nanoseconds since the Unix
    /// epoch (written as the Info DateUTC). Call [`WebmMuxer::header`] first.
    pub fn new(setup: TrackSetup) -> WebmMuxer {
        WebmMuxer {
            setup,
            written: 0,
            segment_data: 0,
            segment_size_at: 0,
            duration_at: 0,
            cues_seek_entry_at: 0,
            cues_seek_position_at: 0,
            pixel_width_at: None,
            pixel_height_at: None,
            video_size: None,
            cluster: Vec::new(),
            cluster_time: 0,
            cluster_cue_track: None,
            cues: Vec::new(),
            end_ms: 0,
        }
    }

    /// The tracks.
    pub fn setup(&self) -> TrackSetup {
        self.setup
    }

    /// The file's first bytes: EBML header, Segment start, SeekHead, Info, Tracks.
    /// `date_utc_ns` is the recording's start in nanoseconds since the Unix epoch.
    pub fn header(&mut self, date_utc_ns: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        let mut ebml = Vec::new();
        uint(&mut ebml, id::EBML_VERSION, 1);
        uint(&mut ebml, id::EBML_READ_VERSION, 1);
        uint(&mut ebml, id::EBML_MAX_ID_LENGTH, 4);
        uint(&mut ebml, id::EBML_MAX_SIZE_LENGTH, 8);
        string(&mut ebml, id::DOC_TYPE, "webm");
        uint(&mut ebml, id::DOC_TYPE_VERSION, 4);
        uint(&mut ebml, id::DOC_TYPE_READ_VERSION, 2);
        master(&mut out, id::EBML, &ebml);

        put_id(&mut out, id::SEGMENT);
        self.segment_size_at = out.len() as u64;
        out.extend_from_slice(&UNKNOWN_SIZE);
        self.segment_data = out.len() as u64;

        // SeekHead: fixed-size entries, so the positions of Info and Tracks are known from
        // its length before they are written.
        let seek_entry_len = 2 + 1 + (2 + 1 + 4) + (2 + 1 + 8);
        let seek_head_len = 4 + 1 + 3 * seek_entry_len;
        let info_pos = seek_head_len as u64;
        let info = self.info_body(date_utc_ns);
        let info_len = element_len(id::INFO, info.len());
        let tracks_pos = info_pos + info_len as u64;

        put_id(&mut out, id::SEEK_HEAD);
        put_size(&mut out, (3 * seek_entry_len) as u64);
        for (target, pos) in [
            (id::INFO, info_pos),
            (id::TRACKS, tracks_pos),
            (id::CUES, 0),
        ] {
            let entry_at = out.len() as u64;
            put_id(&mut out, id::SEEK);
            put_size(&mut out, (seek_entry_len - 3) as u64);
            binary(&mut out, id::SEEK_ID, &target.to_be_bytes());
            let value_at = uint_fixed(&mut out, id::SEEK_POSITION, pos, 8);
            if target == id::CUES {
                self.cues_seek_entry_at = entry_at;
                self.cues_seek_position_at = value_at;
            }
        }
        debug_assert_eq!(out.len() as u64 - self.segment_data, info_pos);

        let info_at = out.len() as u64;
        master(&mut out, id::INFO, &info);
        self.duration_at += info_at;

        let tracks_at = out.len() as u64;
        let (tracks, width_at, height_at) = self.tracks_body();
        put_id(&mut out, id::TRACKS);
        put_size(&mut out, tracks.len() as u64);
        let tracks_data = out.len() as u64;
        out.extend_from_slice(&tracks);
        self.pixel_width_at = width_at.map(|o| o + tracks_data);
        self.pixel_height_at = height_at.map(|o| o + tracks_data);
        debug_assert_eq!(tracks_at - self.segment_data, tracks_pos);

        self.written = out.len() as u64;
        out
    }

    /// The Info body; sets `duration_at` relative to the Info element's start.
    fn info_body(&mut self, date_utc_ns: i64) -> Vec<u8> {
        let mut info = Vec::new();
        uint(&mut info, id::TIMESTAMP_SCALE, TIMESTAMP_SCALE_NS);
        // DateUTC counts from 2001-01-01T00:00:00 UTC.
        const MILLENNIUM_NS: i64 = 978_307_200 * 1_000_000_000;
        put_id(&mut info, id::DATE_UTC);
        put_size(&mut info, 8);
        info.extend_from_slice(&(date_utc_ns - MILLENNIUM_NS).to_be_bytes());
        string(&mut info, id::MUXING_APP, "rootcast-relay");
        string(&mut info, id::WRITING_APP, "rootcast-relay");
        put_id(&mut info, id::DURATION);
        put_size(&mut info, 8);
        // Offset inside the Info element: its ID (4 bytes) and size (1 or 2 bytes) precede.
        let body_len_estimate = info.len() + 8;
        let header = 4 + size_len(body_len_estimate as u64);
        self.duration_at = (header + info.len()) as u64;
        info.extend_from_slice(&0f64.to_be_bytes());
        info
    }

    /// The Tracks body and the offsets (inside it) of the PixelWidth/PixelHeight values.
    fn tracks_body(&self) -> (Vec<u8>, Option<u64>, Option<u64>) {
        let mut tracks = Vec::new();
        let (mut width_at, mut height_at) = (None, None);
        if self.setup.video {
            let mut video = Vec::new();
            let w = uint_fixed(&mut video, id::PIXEL_WIDTH, 16, 2);
            let h = uint_fixed(&mut video, id::PIXEL_HEIGHT, 16, 2);
            let mut entry = Vec::new();
            uint(&mut entry, id::TRACK_NUMBER, VIDEO_TRACK);
            uint(&mut entry, id::TRACK_UID, VIDEO_TRACK);
            uint(&mut entry, id::TRACK_TYPE, 1);
            uint(&mut entry, id::FLAG_LACING, 0);
            string(&mut entry, id::CODEC_ID, "V_VP8");
            put_id(&mut entry, id::VIDEO);
            put_size(&mut entry, video.len() as u64);
            let video_data = entry.len() as u64;
            entry.extend_from_slice(&video);
            let entry_header = (1 + size_len(entry.len() as u64)) as u64;
            width_at = Some(entry_header + video_data + w);
            height_at = Some(entry_header + video_data + h);
            master(&mut tracks, id::TRACK_ENTRY, &entry);
        }
        if self.setup.audio {
            let track = self.setup.audio_track();
            let mut audio = Vec::new();
            float(&mut audio, id::SAMPLING_FREQUENCY, 48_000.0);
            uint(&mut audio, id::CHANNELS, 2);
            let mut entry = Vec::new();
            uint(&mut entry, id::TRACK_NUMBER, track);
            uint(&mut entry, id::TRACK_UID, track);
            uint(&mut entry, id::TRACK_TYPE, 2);
            uint(&mut entry, id::FLAG_LACING, 0);
            string(&mut entry, id::CODEC_ID, "A_OPUS");
            binary(&mut entry, id::CODEC_PRIVATE, &opus_head());
            uint(
                &mut entry,
                id::CODEC_DELAY,
                u64::from(OPUS_PRE_SKIP) * 1_000_000_000 / 48_000,
            );
            uint(&mut entry, id::SEEK_PRE_ROLL, OPUS_SEEK_PRE_ROLL_NS);
            master(&mut entry, id::AUDIO, &audio);
            master(&mut tracks, id::TRACK_ENTRY, &entry);
        }
        (tracks, width_at, height_at)
    }

    /// Adds one frame at `time_ms` (from the start of the recording) to `track`;
    /// `duration_ms` is how long it lasts (for the file's Duration). Bytes of a cluster that
    /// closed are appended to `out`. The caller keeps each track's times non-decreasing.
    pub fn push(
        &mut self,
        track: u64,
        time_ms: u64,
        duration_ms: u64,
        keyframe: bool,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), MuxError> {
        let is_video = self.setup.video && track == VIDEO_TRACK;
        let is_audio = self.setup.audio && track == self.setup.audio_track();
        if !is_video && !is_audio {
            return Err(MuxError::NoSuchTrack);
        }
        if data.is_empty() || data.len() > MAX_FRAME_BYTES {
            return Err(MuxError::BadSize);
        }
        if is_video && keyframe {
            // The largest picture (a simulcast recording moves between layers).
            let area = |(w, h): (u16, u16)| u32::from(w) * u32::from(h);
            if let Some(size) = vp8_keyframe_size(data) {
                if self.video_size.is_none_or(|old| area(size) > area(old)) {
                    self.video_size = Some(size);
                }
            }
        }
        let cluster_open = !self.cluster.is_empty();
        let starts_cluster = !cluster_open
            || (is_video && keyframe)
            || time_ms.saturating_sub(self.cluster_time) >= MAX_CLUSTER_MS;
        if starts_cluster {
            self.close_cluster(out);
            // Cluster times never go back, even when a frame of the other track is late.
            self.cluster_time = time_ms.max(self.cluster_time);
            uint(&mut self.cluster, id::TIMESTAMP, time_ms);
            let cue = if self.setup.video {
                is_video && keyframe
            } else {
                true
            };
            self.cluster_cue_track = cue.then_some(track);
        }
        let relative = time_ms
            .saturating_sub(self.cluster_time)
            .min(i16::MAX as u64) as i16;
        let flags = if keyframe || is_audio { 0x80 } else { 0x00 };
        let track_vint = 0x80 | track as u8;
        put_id(&mut self.cluster, id::SIMPLE_BLOCK);
        put_size(&mut self.cluster, 4 + data.len() as u64);
        self.cluster.push(track_vint);
        self.cluster.extend_from_slice(&relative.to_be_bytes());
        self.cluster.push(flags);
        self.cluster.extend_from_slice(data);
        let block_time = self.cluster_time + relative as u64;
        self.end_ms = self.end_ms.max(block_time + duration_ms);
        Ok(())
    }

    /// Emits the open cluster (if any) and notes its cue.
    fn close_cluster(&mut self, out: &mut Vec<u8>) {
        if self.cluster.is_empty() {
            return;
        }
        let position = self.written - self.segment_data;
        if let Some(track) = self.cluster_cue_track.take() {
            self.cues.push((self.cluster_time, track, position));
        }
        let before = out.len();
        master(out, id::CLUSTER, &self.cluster);
        self.written += (out.len() - before) as u64;
        self.cluster.clear();
    }

    /// The file's Duration so far, in ms.
    pub fn duration_ms(&self) -> u64 {
        self.end_ms
    }

    /// The largest video keyframe's size, once one is seen.
    pub fn video_size(&self) -> Option<(u16, u16)> {
        self.video_size
    }

    /// Ends the file: the last cluster and the Cues are appended to `out`; the returned
    /// patches fill in the Segment size, Duration, Cues position and video size.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Vec<Patch> {
        self.close_cluster(out);
        let mut patches = Vec::new();
        if self.cues.is_empty() {
            // No cue: the SeekHead's Cues entry becomes a Void of the same length.
            let entry_len = 2 + 1 + (2 + 1 + 4) + (2 + 1 + 8);
            let mut void = vec![0u8; entry_len];
            void[0] = id::VOID as u8;
            void[1] = 0x80 | (entry_len - 2) as u8;
            patches.push(Patch {
                offset: self.cues_seek_entry_at,
                bytes: void,
            });
        } else {
            let cues_position = self.written - self.segment_data;
            let mut cues = Vec::new();
            for (time, track, position) in &self.cues {
                let mut positions = Vec::new();
                uint(&mut positions, id::CUE_TRACK, *track);
                uint(&mut positions, id::CUE_CLUSTER_POSITION, *position);
                let mut point = Vec::new();
                uint(&mut point, id::CUE_TIME, *time);
                master(&mut point, id::CUE_TRACK_POSITIONS, &positions);
                master(&mut cues, id::CUE_POINT, &point);
            }
            let before = out.len();
            master(out, id::CUES, &cues);
            self.written += (out.len() - before) as u64;
            patches.push(Patch {
                offset: self.cues_seek_position_at,
                bytes: cues_position.to_be_bytes().to_vec(),
            });
        }
        let segment_size = self.written - self.segment_data;
        let mut size = segment_size.to_be_bytes();
        size[0] = 0x01;
        patches.push(Patch {
            offset: self.segment_size_at,
            bytes: size.to_vec(),
        });
        patches.push(Patch {
            offset: self.duration_at,
            bytes: (self.end_ms as f64).to_be_bytes().to_vec(),
        });
        if let (Some((w, h)), Some(w_at), Some(h_at)) =
            (self.video_size, self.pixel_width_at, self.pixel_height_at)
        {
            patches.push(Patch {
                offset: w_at,
                bytes: w.to_be_bytes().to_vec(),
            });
            patches.push(Patch {
                offset: h_at,
                bytes: h.to_be_bytes().to_vec(),
            });
        }
        patches
    }
}

/// An 8-byte "unknown" size (all value bits set), patched at the end.
const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// The Opus identification header (RFC 7845 §5.1): version 1, two channels, pre-skip,
/// 48 kHz input rate, gain 0, mapping family 0. WebRTC's Opus is negotiated as
/// `opus/48000/2`; a decoder set up for two channels decodes mono packets too.
pub fn opus_head() -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(2);
    head.extend_from_slice(&OPUS_PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

/// The width and height of a VP8 keyframe (RFC 6386 §9.1), from the frame itself (no RTP
/// descriptor). `None` when it is not a keyframe or is truncated.
pub fn vp8_keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[0] & 0x01 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}

fn id_len(id: u32) -> usize {
    match id {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        0x1_0000..=0xFF_FFFF => 3,
        _ => 4,
    }
}

fn put_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    out.extend_from_slice(&bytes[4 - id_len(id)..]);
}

/// The length of the shortest size field for `size` (all-ones values are reserved).
fn size_len(size: u64) -> usize {
    let mut n = 1;
    while n < 8 && size >= (1u64 << (7 * n)) - 1 {
        n += 1;
    }
    n
}

fn put_size(out: &mut Vec<u8>, size: u64) {
    let n = size_len(size);
    let marked = size | (1u64 << (7 * n));
    out.extend_from_slice(&marked.to_be_bytes()[8 - n..]);
}

fn element_len(id: u32, body: usize) -> usize {
    id_len(id) + size_len(body as u64) + body
}

fn master(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    put_id(out, id);
    put_size(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn uint(out: &mut Vec<u8>, id: u32, value: u64) {
    let n = (8 - value.leading_zeros() as usize / 8).max(1);
    put_id(out, id);
    put_size(out, n as u64);
    out.extend_from_slice(&value.to_be_bytes()[8 - n..]);
}

/// An unsigned integer in exactly `width` bytes; returns the offset of the value in `out`.
fn uint_fixed(out: &mut Vec<u8>, id: u32, value: u64, width: usize) -> u64 {
    put_id(out, id);
    put_size(out, width as u64);
    let at = out.len() as u64;
    out.extend_from_slice(&value.to_be_bytes()[8 - width..]);
    at
}

fn float(out: &mut Vec<u8>, id: u32, value: f64) {
    put_id(out, id);
    put_size(out, 8);
    out.extend_from_slice(&value.to_be_bytes());
}

fn string(out: &mut Vec<u8>, id: u32, value: &str) {
    binary(out, id, value.as_bytes());
}

fn binary(out: &mut Vec<u8>, id: u32, value: &[u8]) {
    put_id(out, id);
    put_size(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Reads an element ID at `at`: (id, length).
fn read_id(data: &[u8], at: usize) -> Option<(u32, usize)> {
    let first = *data.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 {
        return None;
    }
    let bytes = data.get(at..at + len)?;
    Some((
        bytes.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b)),
        len,
    ))
}

/// Reads a size at `at`: (size, length); `None` size for "unknown".
fn read_size(data: &[u8], at: usize) -> Option<(Option<u64>, usize)> {
    let first = *data.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let bytes = data.get(at..at + len)?;
    let mask = if len == 8 { 0 } else { 0xFFu8 >> len };
    let mut value = u64::from(first & mask);
    for b in &bytes[1..] {
        value = (value << 8) | u64::from(*b);
    }
    let all_ones = value == (1u64 << (7 * len)) - 1;
    Some(((!all_ones).then_some(value), len))
}

/// The Info Duration of a WebM file, in seconds, from the file's first bytes (the Info
/// element must be inside `data`). `None` when the bytes are not such a file.
pub fn read_duration(data: &[u8]) -> Option<f64> {
    let (ebml, n) = read_id(data, 0)?;
    if ebml != id::EBML {
        return None;
    }
    let (size, m) = read_size(data, n)?;
    let mut at = n + m + usize::try_from(size?).ok()?;
    let (segment, n) = read_id(data, at)?;
    if segment != id::SEGMENT {
        return None;
    }
    let (_, m) = read_size(data, at + n)?;
    at += n + m;
    // Top-level elements of the Segment until Info.
    while at < data.len() {
        let (element, n) = read_id(data, at)?;
        let (size, m) = read_size(data, at + n)?;
        let size = usize::try_from(size?).ok()?;
        let body = at + n + m;
        if element == id::INFO {
            let info = data.get(body..body.checked_add(size)?)?;
            let mut scale = TIMESTAMP_SCALE_NS as f64;
            let mut duration = None;
            let mut i = 0;
            while i < info.len() {
                let (child, n) = read_id(info, i)?;
                let (size, m) = read_size(info, i + n)?;
                let size = usize::try_from(size?).ok()?;
                let value = info.get(i + n + m..i + n + m + size)?;
                match (child, size) {
                    (id::TIMESTAMP_SCALE, 1..=8) => {
                        scale = value.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)) as f64;
                    }
                    (id::DURATION, 8) => {
                        duration = Some(f64::from_be_bytes(value.try_into().ok()?));
                    }
                    (id::DURATION, 4) => {
                        duration = Some(f64::from(f32::from_be_bytes(value.try_into().ok()?)));
                    }
                    _ => {}
                }
                i += n + m + size;
            }
            return duration.map(|d| d * scale / 1e9);
        }
        if element == id::CLUSTER {
            return None;
        }
        at = body.checked_add(size)?;
    }
    None
}

/// The Segment's top-level elements of a file: (id, offset of the body, body size).
/// For tests that look at the layout.
#[cfg(test)]
pub(crate) fn segment_children(data: &[u8]) -> Vec<(u32, usize, usize)> {
    let mut out = Vec::new();
    let Some((_, n)) = read_id(data, 0) else {
        return out;
    };
    let Some((Some(size), m)) = read_size(data, n) else {
        return out;
    };
    let mut at = n + m + size as usize;
    let Some((_, n)) = read_id(data, at) else {
        return out;
    };
    let Some((_, m)) = read_size(data, at + n) else {
        return out;
    };
    at += n + m;
    while let (Some((element, n)), Some((Some(size), m))) = (
        read_id(data, at),
        read_size(data, at + read_id(data, at).map_or(0, |x| x.1)),
    ) {
        out.push((element, at + n + m, size as usize));
        at += n + m + size as usize;
    }
    out
}

/// Element IDs the tests look for.
#[cfg(test)]
pub(crate) mod test_ids {
    pub use super::id::{CUE_POINT, CUES, INFO, SEEK_HEAD, TRACKS};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_the_shortest_field_and_avoid_the_reserved_value() {
        let enc = |v| {
            let mut out = Vec::new();
            put_size(&mut out, v);
            out
        };
        assert_eq!(enc(0), vec![0x80]);
        assert_eq!(enc(126), vec![0xFE]);
        // 127 in one byte would be 0xFF, "unknown": two bytes instead.
        assert_eq!(enc(127), vec![0x40, 0x7F]);
        assert_eq!(enc(16_382), vec![0x7F, 0xFE]);
        assert_eq!(enc(16_383), vec![0x20, 0x3F, 0xFF]);
        for v in [0, 1, 126, 127, 128, 16_383, 1 << 30, (1 << 49) + 5] {
            let bytes = enc(v);
            assert_eq!(read_size(&bytes, 0), Some((Some(v), bytes.len())));
        }
    }

    #[test]
    fn ids_keep_their_marker_bits() {
        let mut out = Vec::new();
        put_id(&mut out, id::SEGMENT);
        put_id(&mut out, id::SIMPLE_BLOCK);
        put_id(&mut out, id::TIMESTAMP_SCALE);
        assert_eq!(out, [0x18, 0x53, 0x80, 0x67, 0xA3, 0x2A, 0xD7, 0xB1]);
        assert_eq!(read_id(&out, 0), Some((id::SEGMENT, 4)));
        assert_eq!(read_id(&out, 4), Some((id::SIMPLE_BLOCK, 1)));
        assert_eq!(read_id(&out, 5), Some((id::TIMESTAMP_SCALE, 3)));
    }

    #[test]
    fn the_duration_is_read_back_from_a_finished_file() {
        let mut mux = WebmMuxer::new(TrackSetup {
            video: false,
            audio: true,
        });
        let mut file = mux.header(1_700_000_000_000_000_000);
        for i in 0..100 {
            mux.push(1, i * 20, 20, true, &[0xf8, 1, 2], &mut file)
                .unwrap();
        }
        assert_eq!(read_duration(&file), Some(0.0), "the placeholder");
        let patches = mux.finish(&mut file);
        apply_patches(&mut file, &patches);
        assert_eq!(read_duration(&file), Some(2.0));
        assert_eq!(
            read_duration(&file[..40]),
            None,
            "Info not inside the bytes"
        );
        assert_eq!(read_duration(b"not a webm file"), None);
    }

    #[test]
    fn refuses_unknown_tracks_and_bad_sizes() {
        let mut mux = WebmMuxer::new(TrackSetup {
            video: false,
            audio: true,
        });
        let mut out = mux.header(0);
        assert_eq!(
            mux.push(2, 0, 20, true, &[1], &mut out),
            Err(MuxError::NoSuchTrack)
        );
        assert_eq!(
            mux.push(1, 0, 20, true, &[], &mut out),
            Err(MuxError::BadSize)
        );
    }

    #[test]
    fn reading_never_panics_on_truncated_or_random_bytes() {
        let mut mux = WebmMuxer::new(TrackSetup {
            video: true,
            audio: true,
        });
        let header = mux.header(0);
        for end in 0..header.len() {
            let _ = read_duration(&header[..end]);
        }
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = read_duration(&bytes);
        }
    }
}
