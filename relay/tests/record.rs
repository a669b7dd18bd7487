//! Recording end to end on loopback: a webrtc-rs publisher does WHIP (VP8 + Opus) for a few
//! seconds; the relay records it to WebM; the recording is listed at `GET /recordings`,
//! served with Range support at `GET /recordings/{name}`, and its bytes parse back with an
//! independent demuxer (`matroska-demuxer`). A second scenario stops the relay while a
//! stream is live: the recording is finished before `shutdown` returns.

#[path = "common/whip.rs"]
mod whip_common;

use std::io::Cursor;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use matroska_demuxer::{Frame, MatroskaFile, TrackType};
use rootcast_relay::RelayConfig;
use rootcast_relay::RelayHooks;
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::interceptor::registry::Registry;
use webrtc::media::Sample;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use whip_common::{Publisher, TestAuth, TestRelay, apply_answer, complete_offer, wait_connected};

const SECS_10: Duration = Duration::from_secs(10);

/// A fresh folder under the system's temporary directory.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rootcast-record-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn recording_config(dir: &std::path::Path) -> RelayConfig {
    RelayConfig {
        record: true,
        recording_dir: dir.to_string_lossy().into_owned(),
        ..RelayConfig::loopback()
    }
}

/// Publishes to `stream` until `publish_for` has passed since the connection; returns the
/// publisher, its session location and how long it was connected.
async fn publish(relay: &TestRelay, stream: &str, publish_for: Duration) -> (Publisher, String) {
    let (publisher, offer) = Publisher::new().await;
    let r = relay.post_offer(&format!("/whip/{stream}"), &offer).await;
    assert_eq!(r.status, 201, "WHIP answer: {}", r.text());
    let location = r.header("location").unwrap().to_string();
    apply_answer(&publisher.pc, &r.text()).await;
    wait_connected(&publisher.pc, SECS_10).await;
    tokio::time::sleep(publish_for).await;
    (publisher, location)
}

/// `GET /recordings` until it lists `n` recordings (within 10 s).
async fn wait_listed(relay: &TestRelay, n: usize) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + SECS_10;
    loop {
        let r = relay.request("GET", "/recordings", &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
        let list = body["recordings"].as_array().expect("a list").clone();
        if list.len() >= n {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} recordings listed within 10 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Parsed {
    duration_ms: f64,
    video: Vec<Frame>,
    audio: Vec<Frame>,
    size: (u64, u64),
}

fn parse(bytes: &[u8]) -> Parsed {
    let mut mkv = MatroskaFile::open(Cursor::new(bytes.to_vec())).expect("the WebM opens");
    assert_eq!(mkv.ebml_header().doc_type(), "webm");
    let tracks = mkv.tracks().to_vec();
    assert_eq!(tracks.len(), 2, "video and audio");
    let video_track = tracks
        .iter()
        .find(|t| t.track_type() == TrackType::Video)
        .expect("a video track");
    assert_eq!(video_track.codec_id(), "V_VP8");
    let v = video_track.video().unwrap();
    let size = (v.pixel_width().get(), v.pixel_height().get());
    let audio_track = tracks
        .iter()
        .find(|t| t.track_type() == TrackType::Audio)
        .expect("an audio track");
    assert_eq!(audio_track.codec_id(), "A_OPUS");
    let video_number = video_track.track_number().get();
    let duration_ms = mkv.info().duration().expect("a duration");
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    let mut frame = Frame::default();
    while mkv.next_frame(&mut frame).expect("frames parse") {
        if frame.track == video_number {
            video.push(frame.clone());
        } else {
            audio.push(frame.clone());
        }
    }
    Parsed {
        duration_ms,
        video,
        audio,
        size,
    }
}

fn assert_increasing(frames: &[Frame], what: &str) {
    for w in frames.windows(2) {
        assert!(
            w[1].timestamp > w[0].timestamp,
            "{what} timestamps increase: {} then {}",
            w[0].timestamp,
            w[1].timestamp
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_stream_is_recorded_listed_and_served_with_ranges() {
    tokio::time::timeout(Duration::from_secs(90), recorded_and_served())
        .await
        .expect("the scenario finishes within 90 s");
}

async fn recorded_and_served() {
    let dir = temp_dir("serve");
    let relay = TestRelay::start(recording_config(&dir)).await;
    assert!(wait_listed(&relay, 0).await.is_empty());

    let started = Instant::now();
    let (publisher, location) = publish(&relay, "rec-test", Duration::from_secs(4)).await;
    let r = relay.request("DELETE", &location, &[], b"").await;
    assert_eq!(r.status, 204);
    let live_for = started.elapsed();
    publisher.close().await;

    let list = wait_listed(&relay, 1).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let entry = &list[0];
    let name = entry["name"].as_str().unwrap().to_owned();
    assert_eq!(entry["stream"], "rec-test");
    assert!(
        name.starts_with("rec-test-") && name.ends_with("Z.webm"),
        "{name}"
    );
    let started_at = entry["started_at"].as_str().unwrap();
    assert_eq!(
        started_at.len(),
        "2026-11-29T10:42:31.123Z".len(),
        "{started_at}"
    );
    assert!(started_at.ends_with('Z') && started_at.as_bytes()[10] == b'T');
    let on_disk = std::fs::read(dir.join(&name)).unwrap();
    assert_eq!(entry["size"].as_u64(), Some(on_disk.len() as u64));
    let listed_duration = entry["duration"].as_f64().unwrap();
    // At least the 4 s published after connecting; at most the whole session.
    assert!(
        (3.5..=live_for.as_secs_f64() + 0.5).contains(&listed_duration),
        "duration {listed_duration} s for a session of {live_for:?}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy() != name)
        .collect();
    assert!(leftovers.is_empty(), "no .part left: {leftovers:?}");

    // The whole file.
    let path = format!("/recordings/{name}");
    let r = relay.request("GET", &path, &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("video/webm"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.body, on_disk);

    let parsed = parse(&r.body);
    assert_eq!(
        parsed.size,
        (320, 240),
        "the size of the publisher's keyframe"
    );
    assert!((parsed.duration_ms / 1000.0 - listed_duration).abs() < 0.001);
    assert_eq!(
        parsed.video[0].is_keyframe,
        Some(true),
        "video starts at a keyframe"
    );
    assert_eq!(parsed.video[0].data[3..6], [0x9d, 0x01, 0x2a]);
    assert_increasing(&parsed.video, "video");
    assert_increasing(&parsed.audio, "audio");
    // The publisher sends 30 frames and 50 Opus packets a second. Loopback loses little;
    // allow a tenth for the start (video waits for the first keyframe) and timer jitter.
    let seconds = parsed.duration_ms / 1000.0;
    let (video, audio) = (parsed.video.len() as f64, parsed.audio.len() as f64);
    assert!(
        (0.9 * 30.0 * seconds - 10.0..=31.0 * seconds).contains(&video),
        "{video} video frames in {seconds} s"
    );
    assert!(
        (0.9 * 50.0 * seconds - 10.0..=51.0 * seconds).contains(&audio),
        "{audio} audio frames in {seconds} s"
    );
    // Every video frame is one whole synthetic frame: 2,500-byte keyframes, 400-byte others.
    for f in &parsed.video {
        let expected = if f.is_keyframe == Some(true) {
            2500
        } else {
            400
        };
        assert_eq!(f.data.len(), expected);
    }

    // Ranges, as a <video> element asks for them when it seeks.
    let size = on_disk.len();
    let r = relay
        .request("GET", &path, &[("Range", "bytes=100-199")], b"")
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 100-199/{size}").as_str())
    );
    assert_eq!(r.body, on_disk[100..200]);
    let r = relay
        .request("GET", &path, &[("Range", "bytes=-10")], b"")
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, on_disk[size - 10..]);
    let r = relay
        .request(
            "GET",
            &path,
            &[("Range", &format!("bytes={}-", size - 5))],
            b"",
        )
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, on_disk[size - 5..]);
    let r = relay
        .request("GET", &path, &[("Range", &format!("bytes={size}-"))], b"")
        .await;
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{size}").as_str())
    );

    // Nothing but a finished recording's name is served.
    std::fs::write(dir.join("secret.txt"), b"not a recording").unwrap();
    for bad in [
        "/recordings/secret.txt",
        "/recordings/..%2Fsecret.txt",
        "/recordings/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/recordings/rec-test-20261129T104231.123Z.webm",
        &format!("/recordings/{name}.part"),
    ] {
        let r = relay.request("GET", bad, &[], b"").await;
        assert_eq!(r.status, 404, "{bad}: {}", r.text());
    }
    let r = relay.request("GET", "/recordings/a/b.webm", &[], b"").await;
    assert_eq!(r.status, 404);

    relay.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_a_live_recording() {
    tokio::time::timeout(Duration::from_secs(60), shutdown_finishes())
        .await
        .expect("the scenario finishes within 60 s");
}

async fn shutdown_finishes() {
    let dir = temp_dir("shutdown");
    let relay = TestRelay::start(recording_config(&dir)).await;
    let (publisher, _) = publish(&relay, "live", Duration::from_secs(2)).await;
    // No DELETE: the relay stops while the stream is live.
    relay.stop().await;
    publisher.close().await;

    let list = rootcast_relay::record::list_recordings(&dir).unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].stream, "live");
    assert!(list[0].duration_s >= 1.5, "{list:?}");
    let bytes = std::fs::read(dir.join(&list[0].name)).unwrap();
    let parsed = parse(&bytes);
    assert!(!parsed.video.is_empty() && !parsed.audio.is_empty());
    assert_eq!(parsed.video[0].is_keyframe, Some(true));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_off_writes_nothing_and_lists_nothing() {
    tokio::time::timeout(Duration::from_secs(60), recording_off())
        .await
        .expect("the scenario finishes within 60 s");
}

async fn recording_off() {
    let dir = temp_dir("off");
    let config = RelayConfig {
        record: false,
        ..recording_config(&dir)
    };
    let relay = TestRelay::start(config).await;
    let (publisher, location) = publish(&relay, "quiet", Duration::from_secs(1)).await;
    let r = relay.request("DELETE", &location, &[], b"").await;
    assert_eq!(r.status, 204);
    publisher.close().await;
    relay.stop().await;
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h264_publisher_is_recorded_audio_only() {
    tokio::time::timeout(Duration::from_secs(60), h264_audio_only())
        .await
        .expect("the scenario finishes within 60 s");
}

/// A webrtc-rs peer that knows only H.264 and Opus (as OBS offers), loopback only.
fn h264_api() -> webrtc::api::API {
    let mut media = MediaEngine::default();
    let codec =
        |mime: &str, clock_rate, channels, fmtp: &str, payload_type| RTCRtpCodecParameters {
            capability: RTCRtpCodecCapability {
                mime_type: mime.to_owned(),
                clock_rate,
                channels,
                sdp_fmtp_line: fmtp.to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type,
            ..Default::default()
        };
    let h264 = codec(
        MIME_TYPE_H264,
        90_000,
        0,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        102,
    );
    let opus = codec(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1", 111);
    media.register_codec(h264, RTPCodecType::Video).unwrap();
    media.register_codec(opus, RTPCodecType::Audio).unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
    let mut settings = SettingEngine::default();
    settings.set_ip_filter(Box::new(|ip: IpAddr| ip.is_loopback()));
    settings.set_interface_filter(Box::new(|name: &str| name == "lo"));
    settings.set_include_loopback_candidate(true);
    settings.set_network_types(vec![NetworkType::Udp4]);
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build()
}

async fn h264_audio_only() {
    let dir = temp_dir("h264");
    let relay = TestRelay::start(recording_config(&dir)).await;
    let pc = Arc::new(
        h264_api()
            .new_peer_connection(RTCConfiguration::default())
            .await
            .unwrap(),
    );
    let track = |mime: &str, id: &str| {
        Arc::new(TrackLocalStaticSample::new(
            RTCRtpCodecCapability {
                mime_type: mime.to_owned(),
                ..Default::default()
            },
            id.to_owned(),
            "rootcast-h264".to_owned(),
        ))
    };
    let (video, audio) = (
        track(MIME_TYPE_H264, "video"),
        track(MIME_TYPE_OPUS, "audio"),
    );
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
    let offer = complete_offer(&pc).await;
    let r = relay.post_offer("/whip/h264-test", &offer).await;
    assert_eq!(r.status, 201, "WHIP answer: {}", r.text());
    let location = r.header("location").unwrap().to_string();
    apply_answer(&pc, &r.text()).await;
    wait_connected(&pc, SECS_10).await;
    // Two seconds of H.264 (an IDR, then P slices; Annex B) and Opus.
    for i in 0..100u32 {
        let nal: &[u8] = if i % 50 == 0 {
            &[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x33]
        } else {
            &[0, 0, 0, 1, 0x41, 0x9a, 0x02, 0x03, 0x04]
        };
        let sample = |data: Bytes, ms| Sample {
            data,
            duration: Duration::from_millis(ms),
            ..Default::default()
        };
        video
            .write_sample(&sample(Bytes::copy_from_slice(nal), 20))
            .await
            .unwrap();
        audio
            .write_sample(&sample(Bytes::from_static(&[0xf8, 0xff, 0xfe]), 20))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = relay.request("DELETE", &location, &[], b"").await;
    assert_eq!(r.status, 204);
    let _ = pc.close().await;

    let list = wait_listed(&relay, 1).await;
    let name = list[0]["name"].as_str().unwrap();
    let bytes = std::fs::read(dir.join(name)).unwrap();
    let mut mkv = MatroskaFile::open(Cursor::new(bytes)).expect("the WebM opens");
    let tracks = mkv.tracks().to_vec();
    assert_eq!(tracks.len(), 1, "audio only: {tracks:?}");
    assert_eq!(tracks[0].codec_id(), "A_OPUS");
    let mut frames = 0;
    let mut frame = Frame::default();
    while mkv.next_frame(&mut frame).unwrap() {
        frames += 1;
    }
    assert!(
        (60..=101).contains(&frames),
        "{frames} Opus frames of 100 sent"
    );
    relay.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_require_token_recordings_need_a_view_token_for_their_stream() {
    tokio::time::timeout(Duration::from_secs(30), tokens())
        .await
        .expect("the scenario finishes within 30 s");
}

async fn tokens() {
    let dir = temp_dir("tokens");
    let (a, b) = ("a-20261129T104231.123Z.webm", "b-20261129T104232.123Z.webm");
    std::fs::write(dir.join(a), b"recording a").unwrap();
    std::fs::write(dir.join(b), b"recording b").unwrap();
    let config = RelayConfig {
        require_token: true,
        ..recording_config(&dir)
    };
    let hooks = RelayHooks {
        auth: Arc::new(TestAuth),
        ..RelayHooks::for_config(&config)
    };
    let relay = TestRelay::start_with(config, hooks).await;
    let names = |r: &whip_common::HttpResponse| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.text());
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        body["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };

    let r = relay.request("GET", "/recordings", &[], b"").await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = relay
        .request(
            "GET",
            "/recordings",
            &[("Authorization", "Bearer only-a")],
            b"",
        )
        .await;
    assert_eq!(names(&r), vec![a.to_owned()]);
    let r = relay
        .request("GET", "/recordings?token=test-token", &[], b"")
        .await;
    assert_eq!(names(&r), vec![b.to_owned(), a.to_owned()], "newest first");
    // Not WebM: listed with a zero duration.
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["recordings"][0]["duration"].as_f64(), Some(0.0));

    let path = format!("/recordings/{a}");
    let r = relay.request("GET", &path, &[], b"").await;
    assert_eq!(r.status, 401);
    let r = relay
        .request("GET", &format!("{path}?token=only-b"), &[], b"")
        .await;
    assert_eq!(r.status, 403);
    let r = relay
        .request("GET", &format!("{path}?token=only-a"), &[], b"")
        .await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"recording a"[..]));
    let r = relay
        .request("GET", &path, &[("Authorization", "Bearer view-only")], b"")
        .await;
    assert_eq!(r.status, 200);
    relay.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
