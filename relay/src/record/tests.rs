//! The recorder end to end, sans-IO: synthetic VP8 and Opus RTP in, WebM bytes out, read
//! back with an independent demuxer (`matroska-demuxer`).

use std::io::Cursor;
use std::sync::Arc;

use matroska_demuxer::{Frame, MatroskaFile, TrackType};

use super::webm::{self, TrackSetup, apply_patches, segment_children, test_ids};
use super::*;

const WIDTH: u16 = 640;
const HEIGHT: u16 = 360;
/// Frame interval of the synthetic video, ms (90 kHz: 2970 ticks).
const VIDEO_MS: u64 = 33;
const AUDIO_MS: u64 = 20;

/// A VP8 bitstream frame: frame tag, and for keyframes the start code and the size.
fn vp8_frame(key: bool, n: u64) -> Vec<u8> {
    let len = if key {
        2500
    } else {
        700 + (n % 5) as usize * 10
    };
    let mut f: Vec<u8> = (0..len).map(|i| (i as u64 * 7 + n) as u8).collect();
    f[0] = if key { 0x10 } else { 0x11 };
    if key {
        f[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        f[6..8].copy_from_slice(&WIDTH.to_le_bytes());
        f[8..10].copy_from_slice(&HEIGHT.to_le_bytes());
    }
    f
}

/// A synthetic publisher: VP8 at ~30 fps (a keyframe every `key_every` frames, split in
/// 1,000-byte packets with a 15-bit picture id descriptor) and 20 ms Opus packets.
struct Gen {
    video_ssrc: u32,
    audio_ssrc: u32,
    video_seq: u16,
    audio_seq: u16,
    video_ts: u32,
    audio_ts: u32,
    frame_no: u64,
    key_every: u64,
    /// Frames sent, in order: (RTP timestamp, bytes).
    sent: Vec<(u32, Vec<u8>)>,
}

impl Gen {
    fn new(seq: u16, ts: u32, key_every: u64) -> Gen {
        Gen {
            video_ssrc: 0x1111,
            audio_ssrc: 0x2222,
            video_seq: seq,
            audio_seq: seq.wrapping_add(1000),
            video_ts: ts,
            audio_ts: ts.wrapping_add(12345),
            frame_no: 0,
            key_every,
            sent: Vec::new(),
        }
    }

    fn video(&mut self, at_ms: u64) -> Vec<RecordPacket> {
        let key = self.frame_no % self.key_every == 0;
        let frame = vp8_frame(key, self.frame_no);
        let chunks: Vec<&[u8]> = frame.chunks(1000).collect();
        let picture_id = (self.frame_no & 0x7fff) as u16 | 0x8000;
        let mut packets = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut payload = vec![0x80 | if i == 0 { 0x10 } else { 0 }, 0x80];
            payload.extend_from_slice(&picture_id.to_be_bytes());
            payload.extend_from_slice(chunk);
            packets.push(RecordPacket {
                kind: MediaKind::Video,
                ssrc: self.video_ssrc,
                seq: self.video_seq,
                timestamp: self.video_ts,
                marker: i + 1 == chunks.len(),
                payload: Arc::from(payload),
                at_ms,
            });
            self.video_seq = self.video_seq.wrapping_add(1);
        }
        self.sent.push((self.video_ts, frame));
        self.video_ts = self.video_ts.wrapping_add(2970);
        self.frame_no += 1;
        packets
    }

    fn audio(&mut self, at_ms: u64) -> RecordPacket {
        let p = RecordPacket {
            kind: MediaKind::Audio,
            ssrc: self.audio_ssrc,
            seq: self.audio_seq,
            timestamp: self.audio_ts,
            marker: false,
            payload: Arc::from(vec![0xf8, 0xff, 0xfe, self.audio_seq as u8]),
            at_ms,
        };
        self.audio_seq = self.audio_seq.wrapping_add(1);
        self.audio_ts = self.audio_ts.wrapping_add(960);
        p
    }

    /// Every packet due in `[from, to)` ms, in time order.
    fn packets(&mut self, from: u64, to: u64, video: bool) -> Vec<RecordPacket> {
        let mut out = Vec::new();
        for t in from..to {
            if video && (t - from) % VIDEO_MS == 0 {
                out.extend(self.video(t));
            }
            if (t - from) % AUDIO_MS == 0 {
                out.push(self.audio(t));
            }
        }
        out
    }
}

const AV: TrackSetup = TrackSetup {
    video: true,
    audio: true,
};

/// A recorder fed `packets`; the finished file and the stats.
fn record(setup: TrackSetup, packets: Vec<RecordPacket>) -> (Vec<u8>, RecordStats) {
    let (mut recorder, mut file) = Recorder::new(setup, 1_795_948_951_123_000_000);
    let mut out = Vec::new();
    for p in packets {
        recorder.push(p, &mut out);
        file.append(&mut out);
    }
    let (patches, stats) = recorder.finish(&mut out);
    file.append(&mut out);
    apply_patches(&mut file, &patches);
    (file, stats)
}

struct Demuxed {
    mkv: MatroskaFile<Cursor<Vec<u8>>>,
    video: Vec<Frame>,
    audio: Vec<Frame>,
}

fn demux(file: &[u8]) -> Demuxed {
    let mut mkv = MatroskaFile::open(Cursor::new(file.to_vec())).expect("the file opens");
    let video_track = mkv
        .tracks()
        .iter()
        .find(|t| t.track_type() == TrackType::Video)
        .map(|t| t.track_number().get());
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    let mut frame = Frame::default();
    while mkv.next_frame(&mut frame).expect("frames parse") {
        if Some(frame.track) == video_track {
            video.push(frame.clone());
        } else {
            audio.push(frame.clone());
        }
    }
    Demuxed { mkv, video, audio }
}

fn assert_increasing(frames: &[Frame], what: &str) {
    for w in frames.windows(2) {
        assert!(
            w[1].timestamp > w[0].timestamp,
            "{what}: {} then {}",
            w[0].timestamp,
            w[1].timestamp
        );
    }
}

fn cue_points(file: &[u8]) -> usize {
    let Some(&(_, at, size)) = segment_children(file)
        .iter()
        .find(|(id, ..)| *id == test_ids::CUES)
    else {
        return 0;
    };
    // CuePoint elements are one-byte IDs with a one-byte size here.
    let body = &file[at..at + size];
    let (mut i, mut n) = (0, 0);
    while i + 1 < body.len() {
        assert_eq!(u32::from(body[i]), test_ids::CUE_POINT);
        n += 1;
        i += 2 + (body[i + 1] & 0x7f) as usize;
    }
    n
}

#[test]
fn ten_seconds_of_video_and_audio_round_trip() {
    let mut g = Gen::new(1000, 50_000, 30);
    let packets = g.packets(0, 10_000, true);
    let (file, stats) = record(AV, packets);
    let d = demux(&file);

    assert_eq!(d.mkv.ebml_header().doc_type(), "webm");
    assert_eq!(d.mkv.info().timestamp_scale().get(), 1_000_000);
    let duration = d.mkv.info().duration().expect("a duration");
    assert!((9_900.0..=10_100.0).contains(&duration), "{duration}");
    let tracks = d.mkv.tracks();
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[0].codec_id(), "V_VP8");
    let video = tracks[0].video().expect("video settings");
    assert_eq!(
        (video.pixel_width().get(), video.pixel_height().get()),
        (u64::from(WIDTH), u64::from(HEIGHT))
    );
    assert_eq!(tracks[1].codec_id(), "A_OPUS");
    let head = tracks[1].codec_private().expect("OpusHead");
    assert_eq!(&head[..8], b"OpusHead");
    assert_eq!(tracks[1].codec_delay(), Some(6_500_000));
    assert_eq!(tracks[1].seek_pre_roll(), Some(80_000_000));
    assert_eq!(tracks[1].audio().unwrap().sampling_frequency(), 48_000.0);

    // Every frame, byte for byte, in order, keyframe first.
    assert_eq!(d.video.len(), g.sent.len());
    for (got, (_, sent)) in d.video.iter().zip(&g.sent) {
        assert_eq!(&got.data, sent);
    }
    assert_eq!(d.video[0].is_keyframe, Some(true));
    let keyframes = d
        .video
        .iter()
        .filter(|f| f.is_keyframe == Some(true))
        .count();
    assert_eq!(keyframes, g.sent.len().div_ceil(30));
    assert_eq!(d.audio.len(), 500);
    assert_increasing(&d.video, "video");
    assert_increasing(&d.audio, "audio");
    // RTP time maps to ms: frame n at 33 n.
    assert_eq!(d.video[30].timestamp, 990);
    assert_eq!(d.audio[50].timestamp, 1000);

    assert_eq!(stats.video_frames, g.sent.len() as u64);
    assert_eq!(stats.audio_frames, 500);
    assert_eq!(
        stats.dropped_video_frames + stats.lost_packets + stats.malformed,
        0
    );

    // A cue per keyframe cluster (the first cluster starts with the keyframe at 0).
    assert_eq!(cue_points(&file), keyframes);
    let ids: Vec<u32> = segment_children(&file).iter().map(|c| c.0).collect();
    assert_eq!(
        &ids[..3],
        &[test_ids::SEEK_HEAD, test_ids::INFO, test_ids::TRACKS]
    );
    assert_eq!(ids.last(), Some(&test_ids::CUES));
    assert_eq!(webm::read_duration(&file), Some(duration / 1000.0));
}

#[test]
fn a_seek_lands_through_the_cues() {
    let mut g = Gen::new(7, 0, 30);
    let (file, _) = record(AV, g.packets(0, 6_000, true));
    let mut d = demux(&file);
    d.mkv.seek(4_000).expect("seek");
    let mut frame = Frame::default();
    assert!(d.mkv.next_frame(&mut frame).unwrap());
    assert!(
        (4_000..4_100).contains(&frame.timestamp),
        "{}",
        frame.timestamp
    );
}

#[test]
fn a_loss_drops_the_broken_frames_until_the_next_keyframe_and_asks_for_one() {
    let mut g = Gen::new(100, 900, 30);
    let mut packets = g.packets(0, 3_000, true);
    // Lose the second packet of... delta frames have one packet: lose frame 40 whole
    // (at 1320 ms) — frames 40..=59 cannot be decoded, 60 is a keyframe.
    let lost_ts = g.sent[40].0;
    let before = packets.len();
    packets.retain(|p| !(p.kind == MediaKind::Video && p.timestamp == lost_ts));
    assert_eq!(before - packets.len(), 1);

    let (mut recorder, mut file) = Recorder::new(AV, 0);
    let mut out = Vec::new();
    let mut asked_at = Vec::new();
    let mut asked = false;
    for p in packets {
        let at = p.at_ms;
        recorder.push(p, &mut out);
        file.append(&mut out);
        if recorder.poll_keyframe_request(at) {
            asked_at.push(at);
            asked = true;
        }
    }
    let (patches, stats) = recorder.finish(&mut out);
    file.append(&mut out);
    apply_patches(&mut file, &patches);

    assert!(asked, "a keyframe is requested after the loss");
    assert!(
        asked_at.iter().any(|t| (1320..1700).contains(t)),
        "{asked_at:?}"
    );
    // Frames 41..=59 arrive but are dropped (40 never arrived: counted once as broken).
    assert_eq!(stats.dropped_video_frames, 20);
    assert_eq!(stats.lost_packets, 1);
    let d = demux(&file);
    assert_eq!(d.video.len(), g.sent.len() - 20);
    let times: Vec<u64> = d.video.iter().map(|f| f.timestamp).collect();
    assert_eq!(times[39], 39 * 33);
    assert_eq!(times[40], 60 * 33, "resumes at the keyframe");
    assert_eq!(d.video[40].is_keyframe, Some(true));
    assert_increasing(&d.video, "video");
    assert_eq!(d.audio.len(), 150);
}

#[test]
fn reordered_packets_are_put_back_and_nothing_is_lost() {
    let mut g = Gen::new(5, 5, 30);
    let mut packets = g.packets(0, 2_000, true);
    // Swap neighbours of each keyframe's packets (the keyframes have three), except the
    // first one's: the first packet seen starts the sequence.
    let mut i = 3;
    while i + 1 < packets.len() {
        if packets[i].kind == MediaKind::Video
            && packets[i + 1].kind == MediaKind::Video
            && packets[i].timestamp == packets[i + 1].timestamp
        {
            packets.swap(i, i + 1);
            i += 2;
        } else {
            i += 1;
        }
    }
    let (file, stats) = record(AV, packets);
    assert_eq!(stats.dropped_video_frames + stats.lost_packets, 0);
    let d = demux(&file);
    assert_eq!(d.video.len(), g.sent.len());
    for (got, (_, sent)) in d.video.iter().zip(&g.sent) {
        assert_eq!(&got.data, sent);
    }
}

#[test]
fn timestamps_and_sequence_numbers_wrap_around() {
    // Video wraps its RTP timestamp after ~1 s, sequence numbers after a few packets.
    let mut g = Gen::new(65_530, u32::MAX - 90_000, 30);
    let (file, stats) = record(AV, g.packets(0, 4_000, true));
    assert_eq!(stats.lost_packets + stats.dropped_video_frames, 0);
    let d = demux(&file);
    assert_eq!(d.video.len(), g.sent.len());
    assert_increasing(&d.video, "video");
    assert_increasing(&d.audio, "audio");
    let last = d.video.last().unwrap().timestamp;
    assert_eq!(last, (g.sent.len() as u64 - 1) * 33);
    let duration = d.mkv.info().duration().unwrap();
    assert!((3_900.0..=4_100.0).contains(&duration), "{duration}");
}

#[test]
fn a_publisher_restart_with_new_ssrcs_continues_the_file_after_the_pause() {
    let mut g = Gen::new(10, 10, 30);
    let mut packets = g.packets(0, 3_000, true);
    let first_frames = g.sent.len();
    // 2 s without media, then new SSRCs, sequence numbers and timestamps.
    g.video_ssrc = 0x9999;
    g.audio_ssrc = 0x8888;
    g.video_seq = 40_000;
    g.audio_seq = 3;
    g.video_ts = 7;
    g.audio_ts = 4_000_000_000;
    g.frame_no = 0;
    packets.extend(g.packets(5_000, 8_000, true));
    let (file, stats) = record(AV, packets);
    assert_eq!(stats.source_changes, 2, "{stats:?}");
    assert_eq!(stats.dropped_video_frames, 0);
    let d = demux(&file);
    assert_eq!(d.video.len(), g.sent.len());
    assert_increasing(&d.video, "video");
    assert_increasing(&d.audio, "audio");
    let resumed = d.video[first_frames].timestamp;
    assert_eq!(resumed, 5_000, "the new source starts at its arrival");
    assert_eq!(d.video[first_frames].is_keyframe, Some(true));
    assert_eq!(d.audio[150].timestamp, 5_000);
    let duration = d.mkv.info().duration().unwrap();
    assert!((7_900.0..=8_100.0).contains(&duration), "{duration}");
}

#[test]
fn a_timestamp_jump_inside_a_source_is_re_anchored_at_the_arrival() {
    let mut g = Gen::new(10, 10, 30);
    let mut packets = g.packets(0, 2_000, true);
    // The same SSRCs jump their RTP clocks by an hour.
    g.video_ts = g.video_ts.wrapping_add(90_000 * 3600);
    g.audio_ts = g.audio_ts.wrapping_add(48_000 * 3600);
    packets.extend(g.packets(2_000, 4_000, true));
    let (file, _) = record(AV, packets);
    let d = demux(&file);
    assert_increasing(&d.video, "video");
    assert_increasing(&d.audio, "audio");
    let duration = d.mkv.info().duration().unwrap();
    assert!((3_900.0..=4_100.0).contains(&duration), "{duration}");
}

#[test]
fn audio_only_has_a_cue_per_cluster_every_five_seconds() {
    let setup = TrackSetup {
        video: false,
        audio: true,
    };
    let mut g = Gen::new(0, 0, 30);
    // Video packets (e.g. H.264, which WebM cannot hold) are ignored.
    let (file, stats) = record(setup, g.packets(0, 12_000, true));
    assert_eq!(stats.video_frames, 0);
    let d = demux(&file);
    assert_eq!(d.mkv.tracks().len(), 1);
    assert_eq!(d.mkv.tracks()[0].codec_id(), "A_OPUS");
    assert!(d.video.is_empty());
    assert_eq!(d.audio.len(), 600);
    assert_increasing(&d.audio, "audio");
    assert_eq!(cue_points(&file), 3, "clusters at 0, 5 and 10 s");
}

#[test]
fn malformed_payloads_never_panic_and_the_file_still_parses() {
    let mut g = Gen::new(300, 300, 15);
    let mut packets = Vec::new();
    let mut x: u32 = 99;
    let mut next = || {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        x >> 8
    };
    for p in g.packets(0, 3_000, true) {
        let r = next();
        if r % 17 == 0 {
            // Replace the payload with random bytes of a random length.
            let len = (r % 40) as usize;
            let junk: Vec<u8> = (0..len).map(|i| (next() as usize + i) as u8).collect();
            packets.push(RecordPacket {
                payload: Arc::from(junk),
                ..p
            });
        } else if r % 23 == 0 {
            // A stray packet with a random sequence number and timestamp.
            packets.push(p.clone());
            packets.push(RecordPacket {
                seq: next() as u16,
                timestamp: next(),
                ..p
            });
        } else {
            packets.push(p);
        }
    }
    let (file, stats) = record(AV, packets);
    let d = demux(&file);
    assert!(
        stats.video_frames > 0 && stats.audio_frames > 0,
        "{stats:?}"
    );
    assert_eq!(d.video.len() as u64, stats.video_frames);
    assert_eq!(d.audio.len() as u64, stats.audio_frames);
    assert_eq!(d.video[0].is_keyframe, Some(true));
    assert_increasing(&d.video, "video");
    assert_increasing(&d.audio, "audio");
}

#[test]
fn a_recording_without_media_still_ends_as_a_valid_file() {
    // (The writer deletes such a file; it must still be well formed.)
    let (file, stats) = record(AV, Vec::new());
    assert_eq!(stats.video_frames + stats.audio_frames, 0);
    let ids: Vec<u32> = segment_children(&file).iter().map(|c| c.0).collect();
    assert_eq!(
        ids,
        vec![test_ids::SEEK_HEAD, test_ids::INFO, test_ids::TRACKS]
    );
    // The SeekHead's Cues entry became a Void: it names Info and Tracks only.
    let (_, at, size) = segment_children(&file)[0];
    let seek_head = &file[at..at + size];
    assert_eq!(seek_head.len(), 63);
    assert_eq!(seek_head[42], 0xEC, "a Void where the Cues entry was");
    assert_eq!(webm::read_duration(&file), Some(0.0));
    // matroska-demuxer refuses a file without a cluster ("CantFindCluster").
    assert!(MatroskaFile::open(Cursor::new(file)).is_err());
}

#[test]
fn keyframes_are_requested_while_waiting_and_then_every_interval() {
    let (mut recorder, _) = Recorder::new(AV, 0);
    assert!(!recorder.poll_keyframe_request(0), "no video source yet");
    let mut g = Gen::new(0, 0, 1_000_000);
    // A delta frame first (the keyframe was missed): ask, then not again within a second.
    g.frame_no = 1;
    let mut out = Vec::new();
    for p in g.video(0) {
        recorder.push(p, &mut out);
    }
    assert!(recorder.poll_keyframe_request(0));
    assert!(!recorder.poll_keyframe_request(500));
    assert!(recorder.poll_keyframe_request(1_000));
    g.frame_no = 0;
    for p in g.video(1_100) {
        recorder.push(p, &mut out);
    }
    assert!(!recorder.poll_keyframe_request(1_200), "got one");
    assert!(!recorder.poll_keyframe_request(10_000));
    assert!(
        recorder.poll_keyframe_request(11_100),
        "10 s after the last keyframe"
    );
    assert!(!recorder.poll_keyframe_request(12_000));
}

#[test]
fn the_header_carries_the_largest_keyframe_size() {
    let key = |w: u16, h: u16| {
        let mut f = vp8_frame(true, 0);
        f[6..8].copy_from_slice(&w.to_le_bytes());
        f[8..10].copy_from_slice(&h.to_le_bytes());
        f
    };
    let setup = TrackSetup {
        video: true,
        audio: false,
    };
    let mut mux = webm::WebmMuxer::new(setup);
    let mut file = mux.header(0);
    for (i, (w, h)) in [(320, 180), (1280, 720), (640, 360)]
        .into_iter()
        .enumerate()
    {
        mux.push(
            webm::VIDEO_TRACK,
            i as u64 * 1000,
            33,
            true,
            &key(w, h),
            &mut file,
        )
        .unwrap();
    }
    let patches = mux.finish(&mut file);
    apply_patches(&mut file, &patches);
    let mkv = MatroskaFile::open(Cursor::new(file)).unwrap();
    let video = mkv.tracks()[0].video().unwrap();
    assert_eq!(
        (video.pixel_width().get(), video.pixel_height().get()),
        (1280, 720)
    );
}
