//! A live recording's IO: the [`Recorder`] on its own thread, fed over a bounded channel,
//! writing `<dir>/<name>.webm.part` and renaming it to `<name>.webm` when it is complete;
//! recording names; the listing of a recording folder.
//!
//! - **The driver never waits for the disk.** [`Recording::offer`] is a `try_send` of a
//!   packet header and a reference-counted payload; when the writer is behind and the channel
//!   ([`CHANNEL_PACKETS`]) is full the packet is dropped and counted (the recorder then sees
//!   a sequence gap and resumes video at the next keyframe).
//! - **A listed file is a finished file.** Only `*.webm` names are listed; a recording is
//!   written as `.webm.part` and renamed after its last bytes, its patches and an `fsync`.
//!   A recording that wrote no frame is removed instead.
//! - **Names**: `<stream>-<YYYYMMDD>T<HHMMSS>.<mmm>Z.webm` (UTC start, ISO 8601 basic
//!   format); a name already taken moves the start by a millisecond. Stream names are
//!   `[A-Za-z0-9._-]{1,64}` (as WHIP accepts them), so a name never holds a path separator.
//! - Keyframe requests go back through an atomic flag the driver takes
//!   ([`Recording::take_keyframe_request`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::webm::{self, Patch, TrackSetup};
use super::{RecordPacket, Recorder};
use crate::packet::{InboundPacket, LayerId, MediaKind};

/// A simulcast layer without a packet for this long is no longer recorded.
pub const LAYER_ALIVE: Duration = Duration::from_secs(1);
/// Packets the channel to the writer holds (several seconds of a 2 Mbit/s stream).
pub const CHANNEL_PACKETS: usize = 4096;
/// The file name's suffix.
pub const EXTENSION: &str = ".webm";
/// The suffix of a recording being written.
pub const PART_EXTENSION: &str = ".webm.part";
/// Longest stream name (as WHIP accepts it).
const MAX_STREAM: usize = 64;
/// Length of the time part of a name: `20261129T104231.123Z`.
const TIME_LEN: usize = 20;

/// Which of the publisher's packets a recording takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// VP8 video: the publisher's payload type (of any simulcast layer: see
    /// [`Recording::offer`]).
    pub video: Option<u8>,
    /// Opus audio: the publisher's payload type.
    pub audio: Option<u8>,
}

impl Selection {
    /// The file's tracks.
    pub fn setup(&self) -> TrackSetup {
        TrackSetup {
            video: self.video.is_some(),
            audio: self.audio.is_some(),
        }
    }
}

/// A live recording: the handle the driver keeps per stream.
#[derive(Debug)]
pub struct Recording {
    stream: String,
    tx: SyncSender<RecordPacket>,
    started: Instant,
    selection: Selection,
    /// When each simulcast layer last sent a packet.
    layer_seen: [Option<Instant>; LayerId::COUNT],
    /// The layer to record: the highest one alive.
    target_layer: Option<LayerId>,
    /// The layer being recorded (it becomes the target at the target's keyframe).
    current_layer: Option<LayerId>,
    overflow: Arc<AtomicU64>,
    keyframe_wanted: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Recording {
    /// Starts recording `stream` into `dir` (created if missing) on a new thread, taking
    /// the packets `selection` names. `now` and `wallclock` are the same moment: packet
    /// times count from `now`, the name and DateUTC from `wallclock`.
    pub fn start(
        dir: &Path,
        stream: &str,
        selection: Selection,
        now: Instant,
        wallclock: SystemTime,
    ) -> io::Result<Recording> {
        let (tx, rx) = mpsc::sync_channel(CHANNEL_PACKETS);
        let overflow = Arc::new(AtomicU64::new(0));
        let keyframe_wanted = Arc::new(AtomicBool::new(false));
        let job = Job {
            dir: dir.to_path_buf(),
            stream: stream.to_owned(),
            setup: selection.setup(),
            start_ms: wallclock
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            overflow: overflow.clone(),
            keyframe_wanted: keyframe_wanted.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("rec-{stream}"))
            .spawn(move || job.run(rx))?;
        Ok(Recording {
            stream: stream.to_owned(),
            tx,
            started: now,
            selection,
            layer_seen: [None; LayerId::COUNT],
            target_layer: None,
            current_layer: None,
            overflow,
            keyframe_wanted,
            thread,
        })
    }

    /// The stream recorded.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The simulcast layer the recording wants (keyframe requests go to it).
    pub fn video_layer(&self) -> Option<LayerId> {
        self.target_layer
    }

    /// Hands one publisher packet to the writer, unless it is of a codec, track or layer
    /// not recorded. Never blocks: a full channel drops (and counts) the packet.
    ///
    /// Simulcast: the highest layer that sent a packet within [`LAYER_ALIVE`] is the
    /// target; the recording moves to it at its next keyframe (asking for one), so a layer
    /// the publisher stops (bandwidth, CPU) is replaced by the next one down. The layer's
    /// own SSRC makes the recorder start a new source there: times stay continuous.
    pub fn offer(&mut self, now: Instant, packet: &InboundPacket) {
        let pt = packet.header.payload_type;
        let wanted = match packet.kind {
            MediaKind::Video => self.selection.video == Some(pt) && self.follow_layer(now, packet),
            MediaKind::Audio => self.selection.audio == Some(pt),
        };
        if !wanted {
            return;
        }
        let record = RecordPacket {
            kind: packet.kind,
            ssrc: packet.header.ssrc,
            seq: packet.header.seq,
            timestamp: packet.header.timestamp,
            marker: packet.header.marker,
            payload: packet.payload.clone(),
            at_ms: now.saturating_duration_since(self.started).as_millis() as u64,
        };
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.overflow.fetch_add(1, Ordering::Relaxed);
            }
            // The writer stopped (it logged why).
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Notes a video packet's layer; whether it belongs to the layer recorded.
    fn follow_layer(&mut self, now: Instant, packet: &InboundPacket) -> bool {
        self.layer_seen[packet.layer.index()] = Some(now);
        let target = LayerId::ALL.into_iter().rev().find(|l| {
            self.layer_seen[l.index()]
                .is_some_and(|t| now.saturating_duration_since(t) < LAYER_ALIVE)
        });
        if target != self.target_layer {
            self.target_layer = target;
            self.keyframe_wanted.store(true, Ordering::Relaxed);
        }
        if self.current_layer != target && Some(packet.layer) == target && packet.keyframe {
            self.current_layer = target;
        }
        self.current_layer == Some(packet.layer)
    }

    /// Whether the recorder asked for a keyframe since the last call.
    pub fn take_keyframe_request(&self) -> bool {
        // A plain load first: no write to the shared cache line on every packet.
        self.keyframe_wanted.load(Ordering::Relaxed)
            && self.keyframe_wanted.swap(false, Ordering::Relaxed)
    }

    /// Ends the recording: the writer drains the channel, completes the file and renames it.
    /// Join the returned thread to wait for that.
    pub fn finish(self) -> JoinHandle<()> {
        drop(self.tx);
        self.thread
    }
}

/// What the writer thread needs.
struct Job {
    dir: PathBuf,
    stream: String,
    setup: TrackSetup,
    start_ms: u64,
    overflow: Arc<AtomicU64>,
    keyframe_wanted: Arc<AtomicBool>,
}

impl Job {
    fn run(self, rx: Receiver<RecordPacket>) {
        let (file, name) = match create_part(&self.dir, &self.stream, self.start_ms) {
            Ok(created) => created,
            Err(e) => {
                tracing::error!(stream = %self.stream, dir = %self.dir.display(), error = %e, "recording: cannot create the file; not recording");
                return;
            }
        };
        let part = self.dir.join(format!("{name}{PART_EXTENSION}"));
        match self.write(file, rx) {
            Ok(stats) if stats.video_frames + stats.audio_frames == 0 => {
                let _ = fs::remove_file(&part);
                tracing::info!(stream = %self.stream, name, "recording: no media arrived; nothing kept");
            }
            Ok(stats) => {
                let done = self.dir.join(format!("{name}{EXTENSION}"));
                match fs::rename(&part, &done) {
                    Ok(()) => tracing::info!(
                        stream = %self.stream,
                        name,
                        duration_ms = stats.duration_ms,
                        video_frames = stats.video_frames,
                        audio_frames = stats.audio_frames,
                        dropped_video_frames = stats.dropped_video_frames,
                        lost_packets = stats.lost_packets,
                        overflow_packets = stats.overflow_packets,
                        source_changes = stats.source_changes,
                        "recording: finished"
                    ),
                    Err(e) => {
                        tracing::error!(stream = %self.stream, name, error = %e, "recording: cannot rename the finished file")
                    }
                }
            }
            Err(e) => {
                tracing::error!(stream = %self.stream, name, error = %e, "recording: write failed; the partial file stays as .webm.part");
            }
        }
    }

    fn write(&self, file: File, rx: Receiver<RecordPacket>) -> io::Result<super::RecordStats> {
        let mut file = io::BufWriter::with_capacity(256 * 1024, file);
        let date_ns = i64::try_from(self.start_ms).unwrap_or(0) * 1_000_000;
        let (mut recorder, header) = Recorder::new(self.setup, date_ns);
        file.write_all(&header)?;
        let mut out = Vec::new();
        while let Ok(packet) = rx.recv() {
            let now_ms = packet.at_ms;
            recorder.push(packet, &mut out);
            file.write_all(&out)?;
            out.clear();
            if recorder.poll_keyframe_request(now_ms) {
                self.keyframe_wanted.store(true, Ordering::Relaxed);
            }
        }
        recorder.add_overflow(self.overflow.load(Ordering::Relaxed));
        let (patches, stats) = recorder.finish(&mut out);
        file.write_all(&out)?;
        let mut file = file.into_inner().map_err(|e| e.into_error())?;
        apply_file_patches(&mut file, &patches)?;
        file.sync_all()?;
        Ok(stats)
    }
}

fn apply_file_patches(file: &mut File, patches: &[Patch]) -> io::Result<()> {
    for p in patches {
        file.seek(SeekFrom::Start(p.offset))?;
        file.write_all(&p.bytes)?;
    }
    Ok(())
}

/// Creates `<dir>/<name>.webm.part` for a new recording (and `dir` if missing); a name in
/// use (finished or being written) moves the start by a millisecond.
fn create_part(dir: &Path, stream: &str, start_ms: u64) -> io::Result<(File, String)> {
    if !valid_stream(stream) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the stream name is not a valid file name part",
        ));
    }
    fs::create_dir_all(dir)?;
    for bump in 0..1000 {
        let name = recording_name(stream, start_ms + bump);
        if dir.join(format!("{name}{EXTENSION}")).exists() {
            continue;
        }
        let part = dir.join(format!("{name}{PART_EXTENSION}"));
        match OpenOptions::new().write(true).create_new(true).open(&part) {
            Ok(file) => return Ok((file, name)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free recording name",
    ))
}

/// A stream name as WHIP accepts it.
fn valid_stream(stream: &str) -> bool {
    !stream.is_empty()
        && stream.len() <= MAX_STREAM
        && stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `<stream>-<YYYYMMDD>T<HHMMSS>.<mmm>Z` (without the extension).
pub fn recording_name(stream: &str, start_unix_ms: u64) -> String {
    format!("{stream}-{}", basic_time(start_unix_ms))
}

/// A finished recording's name → (stream, start in ms since the Unix epoch). `None` for
/// anything that is not exactly such a name (this is also the path check of the HTTP route).
pub fn parse_name(file_name: &str) -> Option<(&str, u64)> {
    let stem = file_name.strip_suffix(EXTENSION)?;
    let split = stem.len().checked_sub(TIME_LEN + 1)?;
    let (stream, rest) = (stem.get(..split)?, stem.get(split..)?);
    let time = rest.strip_prefix('-')?;
    if !valid_stream(stream) {
        return None;
    }
    Some((stream, parse_basic_time(time)?))
}

/// One finished recording (what `GET /recordings` lists).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingInfo {
    /// The file name (`<stream>-<start>.webm`), the id in `/recordings/{name}`.
    pub name: String,
    /// The stream recorded.
    pub stream: String,
    /// Start, ms since the Unix epoch.
    pub started_unix_ms: u64,
    /// Duration in seconds (from the file's Info), 0 when unreadable.
    pub duration_s: f64,
    /// File size in bytes.
    pub size: u64,
}

impl RecordingInfo {
    /// The start as RFC 3339 (`2026-11-29T10:42:31.123Z`).
    pub fn started_at(&self) -> String {
        rfc3339_time(self.started_unix_ms)
    }

    /// The end: the start plus the duration, in ms since the Unix epoch. The file's time 0
    /// is its start (the publisher's session began), so a wall time `w` inside
    /// `started_unix_ms..=ended_unix_ms()` is `w - started_unix_ms` ms into the file.
    pub fn ended_unix_ms(&self) -> u64 {
        self.started_unix_ms + (self.duration_s.max(0.0) * 1000.0).round() as u64
    }
}

/// A file in a recording folder named like a finished recording.
struct RecordingFileEntry {
    path: PathBuf,
    name: String,
    stream: String,
    started_unix_ms: u64,
    meta: fs::Metadata,
}

/// The regular files in `dir` named like finished recordings (`.webm.part` files and
/// anything else are left out). A missing folder holds none.
fn recording_files(dir: &Path) -> io::Result<Vec<RecordingFileEntry>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some((stream, started)) = file_name.to_str().and_then(parse_name) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_file() {
            files.push(RecordingFileEntry {
                path: entry.path(),
                name: file_name.to_string_lossy().into_owned(),
                stream: stream.to_owned(),
                started_unix_ms: started,
                meta,
            });
        }
    }
    Ok(files)
}

/// The finished recordings in `dir`, newest first. A missing folder is an empty list.
/// Blocking (file system): call it off the async threads.
pub fn list_recordings(dir: &Path) -> io::Result<Vec<RecordingInfo>> {
    let mut list: Vec<RecordingInfo> = recording_files(dir)?
        .into_iter()
        .map(|file| RecordingInfo {
            duration_s: read_file_duration(&file.path).unwrap_or(0.0),
            size: file.meta.len(),
            name: file.name,
            stream: file.stream,
            started_unix_ms: file.started_unix_ms,
        })
        .collect();
    list.sort_by(|a, b| {
        b.started_unix_ms
            .cmp(&a.started_unix_ms)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(list)
}

/// Deletes the finished recordings in `dir` that started before `cutoff_unix_ms` and were
/// last written before it too. A recording still being written (`.webm.part`) and any file
/// that is not named like a recording are never touched. Returns the names deleted; a file
/// that cannot be deleted is logged and left. Blocking, like [`list_recordings`].
pub fn delete_recordings_before(dir: &Path, cutoff_unix_ms: u64) -> io::Result<Vec<String>> {
    let mut deleted = Vec::new();
    for file in recording_files(dir)? {
        let modified_ms = file
            .meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(u64::MAX, |d| d.as_millis() as u64);
        if file.started_unix_ms >= cutoff_unix_ms || modified_ms >= cutoff_unix_ms {
            continue;
        }
        match fs::remove_file(&file.path) {
            Ok(()) => deleted.push(file.name),
            Err(error) => tracing::warn!(
                name = %file.name,
                %error,
                "recording: could not delete an expired recording"
            ),
        }
    }
    deleted.sort();
    Ok(deleted)
}

/// The Info duration of a WebM file (its first 4 KiB hold the header).
fn read_file_duration(path: &Path) -> Option<f64> {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    File::open(path)
        .ok()?
        .take(4096)
        .read_to_end(&mut head)
        .ok()?;
    webm::read_duration(&head)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Broken-down UTC time of `unix_ms`.
fn parts(unix_ms: u64) -> (i64, u32, u32, u64, u64, u64, u64) {
    let secs = unix_ms / 1000;
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    (
        y,
        mo,
        d,
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        unix_ms % 1000,
    )
}

fn basic_time(unix_ms: u64) -> String {
    let (y, mo, d, h, mi, s, ms) = parts(unix_ms);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}.{ms:03}Z")
}

fn rfc3339_time(unix_ms: u64) -> String {
    let (y, mo, d, h, mi, s, ms) = parts(unix_ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// Parses `YYYYMMDDTHHMMSS.mmmZ` strictly.
fn parse_basic_time(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != TIME_LEN || b[8] != b'T' || b[15] != b'.' || b[19] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, sec, ms) = (num(9..11)?, num(11..13)?, num(13..15)?, num(16..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y as i64, mo as u32, d as u32);
    // Reject dates that do not exist (e.g. 31 February): they do not round-trip.
    if civil_from_days(days) != (y as i64, mo as u32, d as u32) || days < 0 {
        return None;
    }
    Some(((days as u64 * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_carry_the_utc_start() {
        // 2026-11-29T10:42:31.123Z
        let ms = 1_795_948_951_123;
        let name = recording_name("town-hall_1.a", ms);
        assert_eq!(name, "town-hall_1.a-20261129T104231.123Z");
        let file = format!("{name}.webm");
        assert_eq!(parse_name(&file), Some(("town-hall_1.a", ms)));
        assert_eq!(rfc3339_time(ms), "2026-11-29T10:42:31.123Z");
        assert_eq!(basic_time(0), "19700101T000000.000Z");
        assert_eq!(rfc3339_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        for ms in [0, 951_782_400_000, 4_102_444_799_999, 1_795_948_951_123] {
            assert_eq!(parse_basic_time(&basic_time(ms)), Some(ms));
        }
    }

    #[test]
    fn anything_else_is_not_a_recording_name() {
        for bad in [
            "",
            ".webm",
            "x.webm",
            "a-20261129T104231.123Z.webm.part",
            "a-20261129T104231.123Z.mp4",
            "-20261129T104231.123Z.webm",
            "a_20261129T104231.123Z.webm",
            "../a-20261129T104231.123Z.webm",
            "a/b-20261129T104231.123Z.webm",
            "a-20261131T104231.123Z.webm",
            "a-20261129T244231.123Z.webm",
            "a-2026112xT104231.123Z.webm",
            "a-20261129T104231.12+Z.webm",
            "é-20261129T104231.123Z.webm",
        ] {
            assert_eq!(parse_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_finished_recordings_past_the_cutoff_are_deleted() {
        let dir = std::env::temp_dir().join(format!(
            "rootcast-retention-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::create_dir_all(&dir).unwrap();
        let day_ms = 86_400_000;
        let now_ms = 1_795_948_951_123;
        let cutoff = now_ms - 30 * day_ms;
        let old_time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(cutoff - day_ms);
        let old = format!("{}.webm", recording_name("hall", cutoff - 2 * day_ms));
        let recent = format!("{}.webm", recording_name("hall", cutoff + day_ms));
        // Started long ago but written since (a clock set back, a copy): kept.
        let touched = format!("{}.webm", recording_name("hall", cutoff - 3 * day_ms));
        let part = format!(
            "{}{PART_EXTENSION}",
            recording_name("hall", cutoff - 2 * day_ms)
        );
        let other = "notes-20000101T000000.000Z.txt";
        for name in [&old, &recent, &touched, &part, &other.to_owned()] {
            fs::write(dir.join(name), b"x").unwrap();
        }
        for name in [&old, &recent, &part, &other.to_owned()] {
            File::options()
                .write(true)
                .open(dir.join(name))
                .unwrap()
                .set_modified(old_time)
                .unwrap();
        }

        assert_eq!(
            delete_recordings_before(&dir, cutoff).unwrap(),
            vec![old.clone()]
        );
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected = vec![recent, touched, part, other.to_owned()];
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(
            delete_recordings_before(&dir, cutoff).unwrap(),
            Vec::<String>::new(),
            "nothing more to delete"
        );
        fs::remove_dir_all(&dir).unwrap();
        assert!(
            delete_recordings_before(&dir, cutoff).unwrap().is_empty(),
            "a missing folder holds nothing to delete"
        );
    }

    /// A VP8 packet of `layer` (SSRC = layer + 1), a keyframe start or not.
    fn vp8_packet(layer: LayerId, seq: u16, key: bool) -> InboundPacket {
        use crate::packet::{Codec, PacketHeader};
        let mut payload = vec![0x10, if key { 0x10 } else { 0x11 }, 0, 0, 0x9d, 0x01, 0x2a];
        payload.extend_from_slice(&[0x80, 0x02, 0xe0, 0x01]);
        let header = PacketHeader {
            ssrc: layer.index() as u32 + 1,
            seq,
            timestamp: u32::from(seq) * 3000,
            marker: true,
            payload_type: 96,
        };
        InboundPacket::new(
            MediaKind::Video,
            layer,
            Codec::Vp8,
            header,
            Arc::from(payload),
        )
    }

    #[test]
    fn simulcast_follows_the_highest_live_layer_switching_at_keyframes() {
        let dir = std::env::temp_dir().join(format!(
            "rootcast-rec-layers-{}-{}",
            std::process::id(),
            line!()
        ));
        let _ = fs::remove_dir_all(&dir);
        let t0 = Instant::now();
        let selection = Selection {
            video: Some(96),
            audio: Some(111),
        };
        let mut rec = Recording::start(&dir, "s", selection, t0, SystemTime::now()).unwrap();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let (low, high) = (LayerId::LOW, LayerId::HIGH);

        rec.offer(ms(0), &vp8_packet(low, 1, true));
        assert_eq!(
            (rec.target_layer, rec.current_layer),
            (Some(low), Some(low))
        );
        assert!(rec.take_keyframe_request());
        // The high layer appears: it is the target; low stays until high's keyframe.
        rec.offer(ms(10), &vp8_packet(high, 1, false));
        assert_eq!(
            (rec.target_layer, rec.current_layer),
            (Some(high), Some(low))
        );
        assert!(rec.take_keyframe_request(), "a keyframe of the new target");
        assert!(!rec.take_keyframe_request());
        assert!(!rec.follow_layer(ms(20), &vp8_packet(high, 2, false)));
        assert!(rec.follow_layer(ms(30), &vp8_packet(high, 3, true)));
        assert_eq!(rec.current_layer, Some(high));
        assert!(!rec.follow_layer(ms(40), &vp8_packet(low, 2, true)));
        // High stops: after a second, low is the target again, from its next keyframe.
        assert!(!rec.follow_layer(ms(1100), &vp8_packet(low, 3, false)));
        assert_eq!(
            (rec.target_layer, rec.current_layer),
            (Some(low), Some(high))
        );
        assert!(rec.take_keyframe_request());
        assert!(rec.follow_layer(ms(1110), &vp8_packet(low, 4, true)));
        assert_eq!(rec.current_layer, Some(low));
        // Another payload type (say H.264 next to VP8) is never taken.
        let mut other = vp8_packet(low, 5, true);
        other.header.payload_type = 102;
        rec.offer(ms(1120), &other);
        rec.finish().join().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_taken_name_moves_the_start_by_a_millisecond() {
        let dir = std::env::temp_dir().join(format!(
            "rootcast-rec-names-{}-{}",
            std::process::id(),
            line!()
        ));
        let _ = fs::remove_dir_all(&dir);
        let (_, first) = create_part(&dir, "s", 1000).unwrap();
        let (_, second) = create_part(&dir, "s", 1000).unwrap();
        assert_eq!(first, "s-19700101T000001.000Z");
        assert_eq!(second, "s-19700101T000001.001Z");
        // Parts are never listed.
        assert_eq!(list_recordings(&dir).unwrap(), Vec::new());
        assert!(create_part(&dir, "../x", 1000).is_err());
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(list_recordings(&dir).unwrap(), Vec::new(), "missing folder");
    }
}
