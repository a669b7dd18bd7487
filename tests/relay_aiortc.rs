//! The relay with an independent WebRTC implementation on both ends: **aiortc** (Python,
//! PyPI; `tests/relay/aiortc_whip.py` publishes synthetic VP8 video carrying a frame counter
//! plus Opus, `tests/relay/aiortc_whep.py` watches and counts *decoded* frames), against the
//! real `rootcast serve` (`TestServer`), and crossed with **webrtc-rs** peers (the relay's
//! own test helpers, `relay/tests/common/whip.rs`):
//!
//! - aiortc → relay → aiortc: decoded frames, their size and counter, audio frames;
//! - aiortc → relay → webrtc-rs: RTP arrives, video starts at a VP8 keyframe, no gaps;
//! - webrtc-rs → relay → aiortc: real VP8 (encoded up front by `tests/relay/make_ivf.py`,
//!   since webrtc-rs has no encoder) decoded by aiortc;
//! - **loss**: an in-process relay (so the test reads [`rootcast_relay::RelayStats`]),
//!   one aiortc publisher and viewer; after 8 s without loss, 5 % of the RTP/RTCP packets
//!   from the relay to the viewer are dropped by an nftables rule (`numgen random`) for 8 s.
//!   NACK/RTX must repair them: every frame the publisher made in either window is decoded
//!   (matched by the counter drawn in it), none takes a second or more from the publisher's
//!   encoder to the viewer's decoder, the relay received NACKs and str0m resent packets
//!   (RTX) only in the lossy window. The viewer re-sends a NACK every 100 ms while a packet
//!   is missing, as browsers do (aiortc alone NACKs a hole only once, so a lost
//!   retransmission stalled it for seconds). (`tc netem` would be the usual tool, but this machine's
//!   kernel has no `sch_netem`; nftables' `numgen` is built in.)
//!
//! **Containment.** aiortc gathers a host candidate on every interface address and adds
//! Google's STUN server unless told otherwise. Each test creates a private network namespace
//! (`rc-ai-<pid>-<n>`, only `lo`), re-runs itself inside it with `ip netns exec`, and
//! deletes it afterwards (a guard, also when the test fails). Inside, the relay binds
//! `127.0.0.1`, the aiortc publisher gathers only on `127.0.0.2` and the viewer only on
//! `127.0.0.3` (the scripts pin aioice's address list and configure no ICE server), and the
//! test checks every offered candidate is that one address. Nothing can leave the
//! namespace. This needs root (`CAP_SYS_ADMIN`) and `ip`; the loss test also `nft`
//! (Debian `nftables`). Without root the tests are skipped with a note, unless
//! `ROOTCAST_REQUIRE_SERVICES` is set (as `scripts/test.sh` does), then they fail.
//!
//! Python: `ROOTCAST_TEST_PYTHON` (`scripts/test.sh` points it at the venv with
//! `tests/requirements.txt`, which pins aiortc), else `$HOME/.cache/rootcast-venv`.

mod common;

#[path = "../relay/tests/common/whip.rs"]
mod whip_common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{TestServer, wait_with_timeout};
use serde_json::Value;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::media::Sample;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

/// Set (to the namespace's name) in the copy of a test that runs inside its namespace.
const INSIDE_ENV: &str = "ROOTCAST_RELAY_AIORTC_NETNS";
/// The relay's address inside the namespace (what it announces).
const RELAY_ADDR: &str = "127.0.0.1";
/// The only address the aiortc publisher gathers on.
const PUBLISHER_ADDR: &str = "127.0.0.2";
/// The only address the aiortc viewer gathers on.
const VIEWER_ADDR: &str = "127.0.0.3";
/// The synthetic picture's size (`tests/relay/rc_aiortc.py`).
const WIDTH: u64 = 640;
const HEIGHT: u64 = 480;
/// The whole copy of a test inside its namespace.
const INNER_TIMEOUT: Duration = Duration::from_secs(240);
const STEP: Duration = Duration::from_secs(45);

// ---------------------------------------------------------------------------------------
// Containment: one private network namespace per test.

/// Runs `body` inside a new network namespace that holds only `lo` (see the module docs).
fn contained(test: &str, body: impl FnOnce()) {
    if let Ok(namespace) = std::env::var(INSIDE_ENV) {
        let mut interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")
            .expect("listing /sys/class/net")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        interfaces.sort();
        assert_eq!(
            interfaces,
            ["lo"],
            "{INSIDE_ENV}={namespace} is set, but this is not the test's private namespace"
        );
        body();
        return;
    }
    let namespace = match Namespace::create() {
        Ok(namespace) => namespace,
        Err(why) => {
            let required = std::env::var("ROOTCAST_REQUIRE_SERVICES")
                .is_ok_and(|value| !value.is_empty() && value != "0");
            let message = format!(
                "{why}. These tests run WebRTC peers in a private network namespace, which \
                 needs root (CAP_SYS_ADMIN) and iproute2; they never run uncontained"
            );
            if required {
                panic!("{message} (ROOTCAST_REQUIRE_SERVICES is set)");
            }
            eprintln!("skipped {test}: {message}");
            return;
        }
    };
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &namespace.0])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INSIDE_ENV, &namespace.0)
        .stdin(Stdio::null())
        .spawn()
        .expect("running the test inside its namespace");
    let status = wait_with_timeout(&mut child, INNER_TIMEOUT);
    drop(namespace);
    match status {
        Some(status) => assert!(
            status.success(),
            "{test} failed inside its network namespace ({status}); its output above says which check"
        ),
        None => panic!(
            "{test} did not finish within {} s inside its namespace and was killed",
            INNER_TIMEOUT.as_secs()
        ),
    }
}

/// A network namespace with `lo` up; deleted on drop.
struct Namespace(String);

impl Namespace {
    fn create() -> Result<Namespace, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "rc-ai-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run_ip(&["netns", "add", &name])?;
        let namespace = Namespace(name);
        run_ip(&["-n", &namespace.0, "link", "set", "lo", "up"])?;
        Ok(namespace)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stdin(Stdio::null())
            .status();
    }
}

fn run_ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

// ---------------------------------------------------------------------------------------
// The Python programs.

fn python() -> PathBuf {
    let python = std::env::var_os("ROOTCAST_TEST_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/rootcast-venv/bin/python"))
        })
        .expect("neither ROOTCAST_TEST_PYTHON nor HOME is set");
    assert!(
        python.is_file(),
        "no Python venv at {} — run scripts/test.sh (it makes one with tests/requirements.txt)",
        python.display()
    );
    let check = Command::new(&python)
        .args(["-c", "import aiortc, av"])
        .stdin(Stdio::null())
        .output()
        .expect("running the venv's python");
    assert!(
        check.status.success(),
        "aiortc is not installed in {}: run scripts/test.sh (tests/requirements.txt pins it): {}",
        python.display(),
        String::from_utf8_lossy(&check.stderr).trim()
    );
    python
}

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/relay")
}

/// A running script from `tests/relay/`: its stdout is JSON, one object per line, each with
/// an `event`; stderr goes to the test's output. Killed on drop.
struct Script {
    name: String,
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Script {
    fn start(script: &str, args: &[&str]) -> Script {
        let mut child = Command::new(python())
            .arg(script_dir().join(script))
            .args(args)
            .current_dir(script_dir())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        let name = script.to_owned();
        let reader_name = name.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => {
                        if tx.send(value).is_err() {
                            return;
                        }
                    }
                    Err(_) => eprintln!("{reader_name}: {line}"),
                }
            }
        });
        Script { name, child, lines }
    }

    /// The next line whose `event` is `event` (earlier lines of other events are skipped).
    fn expect(&mut self, event: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(value) if value["event"] == event => return value,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("{}: no `{event}` line within {within:?}", self.name);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!(
                        "{} ended ({status:?}) before its `{event}` line; its stderr above says why",
                        self.name
                    );
                }
            }
        }
    }

    /// The `done` line, then a successful exit.
    fn finish(&mut self, within: Duration) -> Value {
        let done = self.expect("done", within);
        match wait_with_timeout(&mut self.child, Duration::from_secs(15)) {
            Some(status) => assert!(status.success(), "{} exited with {status}", self.name),
            None => panic!("{} did not exit after its summary", self.name),
        }
        done
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every address in `line[field]` is `address` (and there is at least one).
fn assert_only_candidates(line: &Value, field: &str, address: &str) {
    let candidates: Vec<&str> = line[field]
        .as_array()
        .unwrap_or_else(|| panic!("no `{field}` in {line}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!candidates.is_empty(), "no candidate in {field}: {line}");
    assert!(
        candidates.iter().all(|c| *c == address),
        "{field} must all be {address}: {candidates:?}"
    );
}

fn publisher(server_http: &str, stream: &str, seconds: u32) -> Script {
    let mut publisher = Script::start(
        "aiortc_whip.py",
        &[
            "--url",
            &format!("{server_http}/whip/{stream}"),
            "--address",
            PUBLISHER_ADDR,
            "--seconds",
            &seconds.to_string(),
        ],
    );
    let offer = publisher.expect("offer", STEP);
    assert_only_candidates(&offer, "candidates", PUBLISHER_ADDR);
    let connected = publisher.expect("connected", STEP);
    assert_only_candidates(&connected, "answer_candidates", RELAY_ADDR);
    publisher
}

fn viewer(server_http: &str, stream: &str, seconds: u32) -> Script {
    let mut viewer = Script::start(
        "aiortc_whep.py",
        &[
            "--url",
            &format!("{server_http}/whep/{stream}"),
            "--address",
            VIEWER_ADDR,
            "--seconds",
            &seconds.to_string(),
        ],
    );
    let offer = viewer.expect("offer", STEP);
    assert_only_candidates(&offer, "candidates", VIEWER_ADDR);
    viewer
}

fn u(value: &Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no number `{field}` in {value}"))
}

/// The aiortc viewer's summary shows decoded video of the right size with readable,
/// advancing counters.
fn assert_decoded(done: &Value, min_frames: u64, min_audio: u64) {
    eprintln!("aiortc viewer: {done}");
    let frames = u(done, "frames");
    assert!(
        frames >= min_frames,
        "decoded {frames} frames, wanted ≥ {min_frames}"
    );
    assert_eq!((u(done, "width"), u(done, "height")), (WIDTH, HEIGHT));
    assert!(
        u(done, "distinct_counters") * 10 >= frames * 9,
        "the frame counter was unreadable in too many frames: {done}"
    );
    assert!(
        u(done, "counter_last") > u(done, "counter_first"),
        "the counter did not advance: {done}"
    );
    assert!(
        u(done, "audio_frames") >= min_audio,
        "{} audio frames, wanted ≥ {min_audio}",
        u(done, "audio_frames")
    );
    assert!(
        u(done, "first_frame_ms") < 10_000,
        "first frame after {} ms",
        u(done, "first_frame_ms")
    );
    assert_eq!(done["errors"], serde_json::json!([]), "decoder errors");
    assert_eq!(u(done, "delete_status"), 204, "the viewer's DELETE");
}

// ---------------------------------------------------------------------------------------
// aiortc → relay → aiortc

#[test]
fn aiortc_publishes_and_aiortc_watches() {
    contained("aiortc_publishes_and_aiortc_watches", || {
        let server = TestServer::start("");
        let mut publisher = publisher(&server.http_url, "aiortc-pair", 14);
        let mut viewer = viewer(&server.http_url, "aiortc-pair", 6);
        let connected = viewer.expect("connected", STEP);
        assert_only_candidates(&connected, "answer_candidates", RELAY_ADDR);
        assert_eq!(connected["rtx_negotiated"], true, "RTX in the answer");
        let done = viewer.finish(STEP);
        // 6 s at 30 fps is 180 frames; ≥ 10 fps leaves room for a loaded machine.
        assert_decoded(&done, 60, 100);
        let published = publisher.finish(STEP);
        eprintln!("aiortc publisher: {published}");
        assert_eq!(
            u(&published, "delete_status"),
            204,
            "the publisher's DELETE"
        );
    });
}

// ---------------------------------------------------------------------------------------
// aiortc → relay → webrtc-rs

#[test]
fn aiortc_publishes_and_webrtc_rs_watches() {
    contained("aiortc_publishes_and_webrtc_rs_watches", || {
        let server = TestServer::start("");
        let http: SocketAddr = server.address.parse().expect("the server's address");
        let mut publisher = publisher(&server.http_url, "aiortc-to-webrtc-rs", 10);
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        runtime.block_on(async {
            let (viewer, offer) = whip_common::Viewer::new().await;
            let response = whip_common::http_request(
                http,
                "POST",
                "/whep/aiortc-to-webrtc-rs",
                &[("Content-Type", "application/sdp")],
                offer.as_bytes(),
            )
            .await;
            assert_eq!(response.status, 201, "WHEP: {}", response.text());
            let location = response.header("location").expect("Location").to_owned();
            whip_common::apply_answer(&viewer.pc, &response.text()).await;
            whip_common::wait_connected(&viewer.pc, Duration::from_secs(15)).await;
            // aiortc sends 30 frames (VP8, about 1 packet each at 640x480) and 50 Opus
            // packets a second.
            viewer.wait_for(90, 150, Duration::from_secs(20)).await;
            let (video, audio) = {
                let log = viewer.log.lock().unwrap();
                (log.video.clone(), log.audio.clone())
            };
            eprintln!(
                "webrtc-rs viewer: {} video packets ({} sequence breaks), {} audio packets",
                video.packets,
                video.seq_breaks.len(),
                audio.packets
            );
            let first = video.first_payload.expect("a video packet");
            assert!(
                whip_common::vp8_payload_is_keyframe_start(&first),
                "video must start at a VP8 keyframe: {:02x?}",
                &first[..first.len().min(12)]
            );
            assert!(
                video.seq_breaks.is_empty(),
                "gaps in the video on loopback: {:?}",
                video.seq_breaks
            );
            let deleted = whip_common::http_request(http, "DELETE", &location, &[], b"").await;
            assert_eq!(deleted.status, 204);
            viewer.close().await;
        });
        let published = publisher.finish(STEP);
        assert_eq!(u(&published, "delete_status"), 204);
    });
}

// ---------------------------------------------------------------------------------------
// webrtc-rs → relay → aiortc

/// The frames of a VP8 IVF file (32-byte file header; per frame a 12-byte header: size
/// (LE u32), timestamp (LE u64)).
fn ivf_frames(path: &Path) -> Vec<Bytes> {
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        data.starts_with(b"DKIF") && &data[8..12] == b"VP80",
        "not a VP8 IVF file"
    );
    let header_len = u16::from_le_bytes([data[6], data[7]]) as usize;
    let mut frames = Vec::new();
    let mut at = header_len;
    while at + 12 <= data.len() {
        let size = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        let start = at + 12;
        assert!(start + size <= data.len(), "truncated IVF frame");
        frames.push(Bytes::copy_from_slice(&data[start..start + size]));
        at = start + size;
    }
    frames
}

#[test]
fn webrtc_rs_publishes_and_aiortc_watches() {
    contained("webrtc_rs_publishes_and_aiortc_watches", || {
        // Real VP8 for the webrtc-rs publisher: 90 frames (3 s, keyframe every 30), looped.
        let ivf = std::env::temp_dir().join(format!("rootcast-aiortc-{}.ivf", std::process::id()));
        let mut encoder = Script::start("make_ivf.py", &[ivf.to_str().unwrap(), "90"]);
        encoder.finish(STEP);
        let frames = ivf_frames(&ivf);
        let _ = std::fs::remove_file(&ivf);
        assert_eq!(frames.len(), 90);

        let server = TestServer::start("");
        let http: SocketAddr = server.address.parse().expect("the server's address");
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let stop = Arc::new(AtomicBool::new(false));
        let (pc, location) = runtime.block_on(async {
            let pc = whip_common::loopback_peer().await;
            let track = |mime: &str, id: &str| {
                Arc::new(TrackLocalStaticSample::new(
                    RTCRtpCodecCapability {
                        mime_type: mime.to_owned(),
                        ..Default::default()
                    },
                    id.to_owned(),
                    "rootcast-webrtc-rs".to_owned(),
                ))
            };
            let video = track(MIME_TYPE_VP8, "video");
            let audio = track(MIME_TYPE_OPUS, "audio");
            for t in [video.clone(), audio.clone()] {
                pc.add_transceiver_from_track(
                    t as Arc<dyn TrackLocal + Send + Sync>,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendonly,
                        send_encodings: vec![],
                    }),
                )
                .await
                .unwrap();
            }
            let offer = whip_common::complete_offer(&pc).await;
            let response = whip_common::http_request(
                http,
                "POST",
                "/whip/webrtc-rs-to-aiortc",
                &[("Content-Type", "application/sdp")],
                offer.as_bytes(),
            )
            .await;
            assert_eq!(response.status, 201, "WHIP: {}", response.text());
            let location = response.header("location").expect("Location").to_owned();
            whip_common::apply_answer(&pc, &response.text()).await;
            whip_common::wait_connected(&pc, Duration::from_secs(15)).await;
            let video_stop = stop.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(33));
                for frame in frames.iter().cycle() {
                    tick.tick().await;
                    if video_stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let sample = Sample {
                        data: frame.clone(),
                        duration: Duration::from_millis(33),
                        ..Default::default()
                    };
                    if video.write_sample(&sample).await.is_err() {
                        break;
                    }
                }
            });
            let audio_stop = stop.clone();
            tokio::spawn(async move {
                // 20 ms Opus frames: a silent CELT frame's TOC plus filler.
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                while !audio_stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let sample = Sample {
                        data: Bytes::from_static(&[0xf8, 0xff, 0xfe]),
                        duration: Duration::from_millis(20),
                        ..Default::default()
                    };
                    if audio.write_sample(&sample).await.is_err() {
                        break;
                    }
                }
            });
            (pc, location)
        });

        let mut viewer = viewer(&server.http_url, "webrtc-rs-to-aiortc", 6);
        let done = viewer.finish(STEP);
        // The IVF loop restarts its counter every 90 frames; the check on advancing
        // counters holds within 6 s only if the first and last frames are in one loop, so
        // check the decoded frames and their size here.
        eprintln!("aiortc viewer: {done}");
        let decoded = u(&done, "frames");
        assert!(decoded >= 60, "decoded {decoded} frames, wanted ≥ 60");
        assert_eq!((u(&done, "width"), u(&done, "height")), (WIDTH, HEIGHT));
        assert!(
            u(&done, "distinct_counters") >= 60,
            "frame counters unreadable: {done}"
        );
        assert_eq!(done["errors"], serde_json::json!([]), "decoder errors");
        assert!(u(&done, "audio_frames") >= 100, "audio frames: {done}");

        stop.store(true, Ordering::Relaxed);
        runtime.block_on(async {
            let deleted = whip_common::http_request(http, "DELETE", &location, &[], b"").await;
            assert_eq!(deleted.status, 204);
            let _ = pc.close().await;
        });
    });
}

// ---------------------------------------------------------------------------------------
// Loss between relay and viewer

/// An nftables table in the test's namespace that drops `percent` % of the RTP/RTCP
/// datagrams (first two payload bits = version 2: STUN and DTLS are spared) the relay's
/// socket `relay` sends to `viewer`. Deleted on drop (the namespace goes too, anyway).
struct Loss;

const LOSS_TABLE: &str = "rootcast_loss";

impl Loss {
    fn start(relay: SocketAddr, viewer: &str, percent: u32) -> Loss {
        let rules = format!(
            "table ip {LOSS_TABLE} {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    \
             ip saddr {} ip daddr {viewer} udp sport {} @th,64,2 2 numgen random mod 100 < {percent} counter drop\n  }}\n}}\n",
            relay.ip(),
            relay.port()
        );
        nft(&["-f", "-"], Some(&rules));
        Loss
    }

    /// Packets the rule dropped so far.
    fn dropped(&self) -> u64 {
        let listing = nft(&["list", "table", "ip", LOSS_TABLE], None);
        listing
            .split("counter packets ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter in the nft listing:\n{listing}"))
    }
}

impl Drop for Loss {
    fn drop(&mut self) {
        let _ = Command::new(nft_program())
            .args(["delete", "table", "ip", LOSS_TABLE])
            .stdin(Stdio::null())
            .status();
    }
}

/// `nft` from PATH, or Debian's `/usr/sbin/nft` when PATH lacks the sbin folders.
fn nft_program() -> &'static str {
    if Path::new("/usr/sbin/nft").is_file() {
        "/usr/sbin/nft"
    } else {
        "nft"
    }
}

fn nft(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new(nft_program())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `nft` (install Debian's `nftables`; scripts/test.sh does): {e}")
        });
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .expect("writing to nft");
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("waiting for nft");
    assert!(
        output.status.success(),
        "`nft {}` failed: {} — the loss test needs nftables with `numgen` in the kernel",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The viewer's `tick` line for `second`.
fn tick(viewer: &mut Script, second: u64) -> Value {
    loop {
        let line = viewer.expect("tick", STEP);
        if u(&line, "second") >= second {
            return line;
        }
    }
}

/// When each frame was made (publisher) and first decoded (viewer), by the counter drawn in
/// it; both scripts read CLOCK_MONOTONIC, so the times compare.
struct FrameTimes {
    created_ms: Vec<u64>,
    decoded_ms: std::collections::HashMap<u64, u64>,
}

/// The frames made in one window: which were never decoded and how long the others took.
struct WindowFrames {
    made: usize,
    missing: Vec<u64>,
    latencies_ms: Vec<u64>,
}

impl FrameTimes {
    fn new(published: &Value, viewed: &Value) -> FrameTimes {
        let created_ms = published["frame_created_ms"]
            .as_array()
            .expect("the publisher's frame times")
            .iter()
            .map(|t| t.as_u64().expect("a time"))
            .collect();
        let decoded_ms = viewed["frame_decoded_ms"]
            .as_array()
            .expect("the viewer's frame times")
            .iter()
            .map(|pair| (pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap()))
            .collect();
        FrameTimes {
            created_ms,
            decoded_ms,
        }
    }

    /// Frames made in `[from_ms, until_ms)` (CLOCK_MONOTONIC ms).
    fn window(&self, from_ms: u64, until_ms: u64) -> WindowFrames {
        let mut window = WindowFrames {
            made: 0,
            missing: Vec::new(),
            latencies_ms: Vec::new(),
        };
        for (counter, &created) in self.created_ms.iter().enumerate() {
            if !(from_ms..until_ms).contains(&created) {
                continue;
            }
            window.made += 1;
            match self.decoded_ms.get(&(counter as u64 & 0xFFFF)) {
                Some(&decoded) => window.latencies_ms.push(decoded.saturating_sub(created)),
                None => window.missing.push(counter as u64),
            }
        }
        window.latencies_ms.sort_unstable();
        window
    }
}

impl WindowFrames {
    fn percentile_ms(&self, p: f64) -> u64 {
        let n = self.latencies_ms.len();
        if n == 0 {
            return 0;
        }
        self.latencies_ms[((n - 1) as f64 * p).round() as usize]
    }
}

impl std::fmt::Display for WindowFrames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} made, {} never decoded, encoder→decoder p50 {} ms, p95 {} ms, max {} ms",
            self.made,
            self.missing.len(),
            self.percentile_ms(0.5),
            self.percentile_ms(0.95),
            self.percentile_ms(1.0)
        )
    }
}

#[test]
fn nack_and_rtx_repair_loss_between_relay_and_viewer() {
    contained("nack_and_rtx_repair_loss_between_relay_and_viewer", || {
        const CLEAN_FROM: u64 = 4;
        const LOSS_FROM: u64 = 12;
        const LOSS_UNTIL: u64 = 20;
        const LOSS_PERCENT: u32 = 5;
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let relay = runtime.block_on(whip_common::TestRelay::start(
            rootcast_relay::RelayConfig::loopback(),
        ));
        let base = format!("http://{}", relay.http);
        let stream = "lossy";
        let stats = |relay: &whip_common::TestRelay| {
            let stats = runtime.block_on(relay.relay.stats()).expect("relay stats");
            stats
                .streams
                .into_iter()
                .find(|s| s.name == stream)
                .expect("the stream in the stats")
        };

        let mut publisher = publisher(&base, stream, 40);
        let mut viewer = viewer(&base, stream, LOSS_UNTIL as u32 + 2);
        viewer.expect("connected", STEP);

        let clean_start = tick(&mut viewer, CLEAN_FROM);
        let relay_clean_start = stats(&relay);
        let loss_start = tick(&mut viewer, LOSS_FROM);
        let relay_loss_start = stats(&relay);
        let loss = Loss::start(relay.relay.udp_addr(), VIEWER_ADDR, LOSS_PERCENT);
        let mut lossy_ticks = vec![loss_start.clone()];
        for second in LOSS_FROM + 1..=LOSS_UNTIL {
            lossy_ticks.push(tick(&mut viewer, second));
        }
        let relay_loss_end = stats(&relay);
        let dropped = loss.dropped();
        drop(loss);
        let loss_end = lossy_ticks.last().unwrap().clone();
        let done = viewer.finish(STEP);
        eprintln!("aiortc viewer: {done}");

        let delta = |a: &Value, b: &Value, field: &str| u(b, field) - u(a, field);
        let clean_frames = delta(&clean_start, &loss_start, "frames");
        let lossy_frames = delta(&loss_start, &loss_end, "frames");
        let clean_rtx = delta(&clean_start, &loss_start, "rtx_received");
        let lossy_rtx = delta(&loss_start, &loss_end, "rtx_received");
        let clean_nacks_sent = delta(&clean_start, &loss_start, "nacks_sent");
        let lossy_nacks_sent = delta(&loss_start, &loss_end, "nacks_sent");
        let plis = delta(&clean_start, &loss_start, "plis_sent");
        let lossy_plis = delta(&loss_start, &loss_end, "plis_sent");
        let relay_clean_nacks = relay_loss_start.viewer_nacks - relay_clean_start.viewer_nacks;
        let relay_lossy_nacks = relay_loss_end.viewer_nacks - relay_loss_start.viewer_nacks;
        let relay_clean_resends =
            relay_loss_start.viewer_resends - relay_clean_start.viewer_resends;
        let relay_lossy_resends = relay_loss_end.viewer_resends - relay_loss_start.viewer_resends;
        let window = LOSS_UNTIL - LOSS_FROM;
        eprintln!(
            "over {window} s each — without loss: {clean_frames} frames decoded, viewer sent \
             {clean_nacks_sent} NACKs and got {clean_rtx} RTX packets, relay counted \
             {relay_clean_nacks} NACKs and {relay_clean_resends} resends, {plis} PLIs; with \
             {LOSS_PERCENT} % loss ({dropped} datagrams dropped): {lossy_frames} frames decoded, \
             viewer sent {lossy_nacks_sent} NACKs and {lossy_plis} PLIs and got {lossy_rtx} RTX \
             packets, relay counted \
             {relay_lossy_nacks} NACKs and {relay_lossy_resends} resends; \
             per second with loss (frames, tick at ms, longest gap between frames ms): {:?}",
            lossy_ticks
                .windows(2)
                .map(|w| (
                    u(&w[1], "frames") - u(&w[0], "frames"),
                    u(&w[1], "t_ms"),
                    u(&w[1], "max_gap_ms")
                ))
                .collect::<Vec<_>>()
        );

        assert!(
            clean_frames >= 8 * window,
            "too few frames without loss: {clean_frames}"
        );
        assert!(dropped > 0, "the nftables rule dropped nothing");
        let published = publisher.finish(Duration::from_secs(60));
        assert_eq!(u(&published, "delete_status"), 204);
        // Every frame the publisher made in a window must have been decoded (a frame lost
        // for good would leave its counter out), and how long each took from the encoder to
        // the decoder says whether playback kept going. Counting decoded frames per second
        // would mix in how fast the publisher made them, which on a busy machine is not
        // 30 a second.
        let frames = FrameTimes::new(&published, &done);
        let clean = frames.window(
            u(&clean_start, "monotonic_ms"),
            u(&loss_start, "monotonic_ms"),
        );
        let lossy = frames.window(u(&loss_start, "monotonic_ms"), u(&loss_end, "monotonic_ms"));
        eprintln!("frames end to end — without loss: {clean}; with loss: {lossy}");
        assert!(
            clean.missing.is_empty() && lossy.missing.is_empty(),
            "frames never decoded: {:?} without loss, {:?} with loss (repair log: {})",
            clean.missing,
            lossy.missing,
            done["repair_log"]
        );
        // 41/45/61 ms (p50/p95/max) without loss and 108/133/148 ms with it on a quiet
        // machine; a second would mean playback stood still.
        assert!(
            lossy.percentile_ms(1.0) < 1000,
            "with loss a frame took {} ms from the encoder to the decoder (without loss: \
             {clean}; repair log: {})",
            lossy.percentile_ms(1.0),
            done["repair_log"]
        );
        // Without loss: nothing to repair.
        assert_eq!(clean_rtx, 0, "RTX packets without loss");
        assert!(
            relay_clean_nacks <= 1,
            "{relay_clean_nacks} NACKs without loss"
        );
        assert!(
            relay_clean_resends <= 1,
            "{relay_clean_resends} resends without loss"
        );
        // With loss: the viewer NACKed, the relay (str0m's per-viewer RTX cache) resent.
        assert!(lossy_nacks_sent > 0, "the viewer sent no NACK under loss");
        assert!(
            relay_lossy_nacks > 0,
            "the relay counted no NACK under loss"
        );
        assert!(
            relay_lossy_resends > 0,
            "the relay resent nothing under loss"
        );
        assert!(lossy_rtx > 0, "the viewer got no RTX packet under loss");
        runtime.block_on(relay.stop());
    });
}
