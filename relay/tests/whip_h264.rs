//! End to end on loopback with H.264: a webrtc-rs publisher whose media engine knows only
//! H.264 video (and Opus audio) publishes through WHIP; two webrtc-rs viewers that offer
//! H.264 (one under a payload type the publisher does not use, one with VP8 listed first)
//! watch through WHEP.
//!
//! What it proves, per viewer: the WHEP answer and the received track name H.264; every
//! video packet carries the payload type that viewer negotiated; sequence numbers have no
//! gap (loopback, no loss); the first video the viewer gets is a keyframe start (SPS, PPS,
//! then the first fragment of an IDR, checked by an RTP/H.264 depacketizer written here,
//! independent of the relay's detector). And: a viewer whose offer has only VP8 video for
//! this H.264-only stream is refused with the documented 422 and leaves no session behind,
//! and so is one with VP8 video and Opus audio (it would get audio and a black picture).
//!
//! The H.264 is hand made (Annex B: a baseline SPS, a PPS, an IDR slice, then non-IDR
//! slices): the relay does not decode, it forwards. webrtc-rs's payloader sends SPS and PPS
//! as one STAP-A before the IDR, and fragments the IDR (FU-A) at its 1,200-byte MTU.

#[path = "common/whip.rs"]
mod whip_common;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rootcast_relay::RelayConfig;
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::interceptor::registry::Registry;
use webrtc::media::Sample;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use whip_common::{TestRelay, apply_answer, complete_offer, spawn_silent_opus, wait_connected};

const SECS_10: Duration = Duration::from_secs(10);

/// Constrained baseline, level 3.1, packetization mode 1: what browsers and OBS offer.
const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// The publisher's H.264 payload type.
const PUBLISHER_H264_PT: u8 = 102;

/// A baseline-profile SPS (NAL type 7), level 3.1, 640×480.
const SPS: &[u8] = &[
    0x67, 0x42, 0xe0, 0x1f, 0xda, 0x02, 0x80, 0xf6, 0x9b, 0x80, 0x80, 0x83, 0x01,
];
/// A PPS (NAL type 8).
const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

/// One video codec a peer's media engine registers.
#[derive(Debug, Clone, Copy)]
struct VideoCodec {
    mime: &'static str,
    fmtp: &'static str,
    payload_type: u8,
}

const fn h264(payload_type: u8) -> VideoCodec {
    VideoCodec {
        mime: MIME_TYPE_H264,
        fmtp: H264_FMTP,
        payload_type,
    }
}

const VP8_96: VideoCodec = VideoCodec {
    mime: MIME_TYPE_VP8,
    fmtp: "",
    payload_type: 96,
};

/// A webrtc-rs API whose media engine knows exactly `video` (in that order) and Opus, with
/// the loopback-only network settings of `whip_common::loopback_api`.
fn api_with(video: &[VideoCodec]) -> webrtc::api::API {
    let mut media = MediaEngine::default();
    let feedback = |t: &str, p: &str| webrtc::rtp_transceiver::RTCPFeedback {
        typ: t.to_owned(),
        parameter: p.to_owned(),
    };
    for c in video {
        let params = RTCRtpCodecParameters {
            capability: RTCRtpCodecCapability {
                mime_type: c.mime.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: c.fmtp.to_owned(),
                rtcp_feedback: vec![
                    feedback("nack", ""),
                    feedback("nack", "pli"),
                    feedback("ccm", "fir"),
                ],
            },
            payload_type: c.payload_type,
            ..Default::default()
        };
        media.register_codec(params, RTPCodecType::Video).unwrap();
    }
    let opus = RTCRtpCodecParameters {
        capability: RTCRtpCodecCapability {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: 111,
        ..Default::default()
    };
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

async fn peer(video: &[VideoCodec]) -> Arc<RTCPeerConnection> {
    Arc::new(
        api_with(video)
            .new_peer_connection(RTCConfiguration::default())
            .await
            .unwrap(),
    )
}

/// One Annex B access unit: SPS, PPS and an IDR slice of `len` bytes for a keyframe, else a
/// non-IDR slice. The slice bytes after the header are never zero, so no start code hides
/// in them.
fn access_unit(key: bool, len: usize, fill: u8) -> Vec<u8> {
    let fill = fill | 0x80;
    let mut au = Vec::with_capacity(len + 32);
    if key {
        for nal in [SPS, PPS] {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(nal);
        }
        au.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84]);
    } else {
        au.extend_from_slice(&[0, 0, 0, 1, 0x41, 0x9a, 0x02]);
    }
    au.resize(au.len() + len, fill);
    au
}

/// The H.264 publisher: sendonly H.264 and Opus tracks fed at 30 and 50 packets a second;
/// a keyframe first and on every PLI/FIR.
struct H264Publisher {
    pc: Arc<RTCPeerConnection>,
    keyframe_requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl H264Publisher {
    async fn new() -> (H264Publisher, String) {
        let pc = peer(&[h264(PUBLISHER_H264_PT)]).await;
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
        let sendonly = || {
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                send_encodings: vec![],
            })
        };
        let video_transceiver = pc
            .add_transceiver_from_track(
                video.clone() as Arc<dyn TrackLocal + Send + Sync>,
                sendonly(),
            )
            .await
            .unwrap();
        pc.add_transceiver_from_track(
            audio.clone() as Arc<dyn TrackLocal + Send + Sync>,
            sendonly(),
        )
        .await
        .unwrap();
        let offer = complete_offer(&pc).await;

        let stop = Arc::new(AtomicBool::new(false));
        let want_key = Arc::new(AtomicBool::new(true));
        let keyframe_requests = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        let sender = video_transceiver.sender().await;
        {
            let (stop, want_key, requests) =
                (stop.clone(), want_key.clone(), keyframe_requests.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((packets, _)) = sender.read_rtcp().await else {
                        break;
                    };
                    for p in packets {
                        let any = p.as_any();
                        if any.downcast_ref::<PictureLossIndication>().is_some()
                            || any.downcast_ref::<FullIntraRequest>().is_some()
                        {
                            requests.fetch_add(1, Ordering::Relaxed);
                            want_key.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        // Video: 30 access units a second; IDR slices of 2,500 bytes (three FU-A
        // fragments), other slices 400 bytes (one packet).
        {
            let (stop, want_key) = (stop.clone(), want_key.clone());
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(33));
                let mut n: u8 = 0;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    n = n.wrapping_add(1);
                    let key = want_key.swap(false, Ordering::Relaxed);
                    let sample = Sample {
                        data: Bytes::from(access_unit(key, if key { 2500 } else { 400 }, n)),
                        duration: Duration::from_millis(33),
                        ..Default::default()
                    };
                    if video.write_sample(&sample).await.is_err() {
                        break;
                    }
                }
            }));
        }
        tasks.push(spawn_silent_opus(audio, stop.clone()));
        (
            H264Publisher {
                pc,
                keyframe_requests,
                stop,
                tasks,
            },
            offer,
        )
    }

    async fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.pc.close().await;
        for t in self.tasks {
            t.abort();
        }
    }
}

/// What a viewer received on its video track.
#[derive(Debug, Default)]
struct VideoLog {
    /// The track's codec as webrtc-rs negotiated it: (mime type, payload type).
    codec: Option<(String, u8)>,
    packets: u64,
    /// Payload types seen, in order of first appearance.
    payload_types: Vec<u8>,
    /// The first payloads, for the keyframe check.
    first_payloads: Vec<Vec<u8>>,
    last_seq: Option<u16>,
    /// (previous, next, packets before) where a sequence number did not follow by 1.
    seq_breaks: Vec<(u16, u16, u64)>,
}

/// How many leading video payloads a viewer keeps.
const KEPT_PAYLOADS: usize = 8;

#[derive(Debug, Default)]
struct ViewerLog {
    video: VideoLog,
    audio_packets: u64,
}

/// A webrtc-rs WHEP viewer (recvonly) whose media engine knows `video` and Opus.
struct H264Viewer {
    pc: Arc<RTCPeerConnection>,
    log: Arc<Mutex<ViewerLog>>,
}

impl H264Viewer {
    /// A viewer with recvonly video and, when `audio`, recvonly audio; returns its complete
    /// offer.
    async fn new(video: &[VideoCodec], audio: bool) -> (H264Viewer, String) {
        let pc = peer(video).await;
        let recvonly = || {
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                send_encodings: vec![],
            })
        };
        pc.add_transceiver_from_kind(RTPCodecType::Video, recvonly())
            .await
            .unwrap();
        if audio {
            pc.add_transceiver_from_kind(RTPCodecType::Audio, recvonly())
                .await
                .unwrap();
        }
        let log = Arc::new(Mutex::new(ViewerLog::default()));
        let on_track_log = log.clone();
        pc.on_track(Box::new(move |track, _receiver, _transceiver| {
            let log = on_track_log.clone();
            Box::pin(async move {
                let video = track.kind() == RTPCodecType::Video;
                if video {
                    let codec = track.codec();
                    log.lock().unwrap().video.codec =
                        Some((codec.capability.mime_type, track.payload_type()));
                }
                tokio::spawn(async move {
                    while let Ok((packet, _)) = track.read_rtp().await {
                        let mut log = log.lock().unwrap();
                        if !video {
                            log.audio_packets += 1;
                            continue;
                        }
                        let v = &mut log.video;
                        let seq = packet.header.sequence_number;
                        if let Some(last) = v.last_seq {
                            if seq != last.wrapping_add(1) {
                                v.seq_breaks.push((last, seq, v.packets));
                            }
                        }
                        v.last_seq = Some(seq);
                        if !v.payload_types.contains(&packet.header.payload_type) {
                            v.payload_types.push(packet.header.payload_type);
                        }
                        if v.first_payloads.len() < KEPT_PAYLOADS {
                            v.first_payloads.push(packet.payload.to_vec());
                        }
                        v.packets += 1;
                    }
                });
            })
        }));
        let offer = complete_offer(&pc).await;
        (H264Viewer { pc, log }, offer)
    }

    fn counts(&self) -> (u64, u64) {
        let log = self.log.lock().unwrap();
        (log.video.packets, log.audio_packets)
    }

    /// Waits until at least `video` video and `audio` audio packets arrived.
    async fn wait_for(&self, video: u64, audio: u64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (v, a) = self.counts();
            if v >= video && a >= audio {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "viewer got {v} video / {a} audio packets within {within:?}, wanted {video} / {audio}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn close(self) {
        let _ = self.pc.close().await;
    }
}

/// What one RTP payload (RFC 6184) holds, as NAL unit types: a single NAL unit gives its
/// type; a STAP-A gives the types it aggregates; an FU-A gives the fragmented type on its
/// start fragment and `None` (continuation of a NAL unit begun earlier) otherwise.
fn nal_types(payload: &[u8]) -> Vec<Option<u8>> {
    let Some(&header) = payload.first() else {
        return vec![None];
    };
    match header & 0x1f {
        t @ 1..=23 => vec![Some(t)],
        24 => {
            let mut types = Vec::new();
            let mut rest = &payload[1..];
            while rest.len() >= 3 {
                let size = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                if size == 0 || rest.len() < 2 + size {
                    break;
                }
                types.push(Some(rest[2] & 0x1f));
                rest = &rest[2 + size..];
            }
            types
        }
        28 => match payload.get(1) {
            Some(fu) if fu & 0x80 != 0 => vec![Some(fu & 0x1f)],
            _ => vec![None],
        },
        _ => vec![None],
    }
}

/// Whether the NAL units of the first payloads begin a decodable picture: an IDR (5), or
/// SPS (7) and PPS (8) followed by an IDR.
fn starts_at_keyframe(payloads: &[Vec<u8>]) -> bool {
    let types: Vec<Option<u8>> = payloads.iter().flat_map(|p| nal_types(p)).collect();
    types.starts_with(&[Some(5)]) || types.starts_with(&[Some(7), Some(8), Some(5)])
}

/// The payload types an SDP's first video section maps to `codec` (`a=rtpmap:<pt>
/// <codec>/…`, case-insensitive), and all the payload types of that section's m-line.
fn video_section_pts(sdp: &str, codec: &str) -> (Vec<u8>, Vec<u8>) {
    let mut in_video = false;
    let mut seen_video = false;
    let (mut matching, mut all) = (Vec::new(), Vec::new());
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            in_video = m.starts_with("video ") && !seen_video;
            if in_video {
                seen_video = true;
                all = m
                    .split(' ')
                    .skip(3)
                    .filter_map(|pt| pt.parse().ok())
                    .collect();
            }
        } else if in_video {
            if let Some(map) = line.strip_prefix("a=rtpmap:") {
                let mut parts = map.splitn(2, ' ');
                let pt = parts.next().and_then(|pt| pt.parse().ok());
                let name = parts.next().unwrap_or("").split('/').next().unwrap_or("");
                if let Some(pt) = pt.filter(|_| name.eq_ignore_ascii_case(codec)) {
                    matching.push(pt);
                }
            }
        }
    }
    (matching, all)
}

async fn stream_stats(relay: &TestRelay, name: &str) -> Option<rootcast_relay::StreamStats> {
    let stats = relay.relay.stats().await.unwrap();
    stats.streams.into_iter().find(|s| s.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_publisher_reaches_two_h264_viewers() {
    tokio::time::timeout(Duration::from_secs(90), scenario())
        .await
        .expect("the scenario finishes within 90 s");
}

async fn scenario() {
    let relay = TestRelay::start(RelayConfig::loopback()).await;

    // Publisher: WHIP, H.264 only.
    let (publisher, offer) = H264Publisher::new().await;
    let (h264_in_offer, all_in_offer) = video_section_pts(&offer, "H264");
    assert_eq!(
        (h264_in_offer, all_in_offer),
        (vec![PUBLISHER_H264_PT], vec![PUBLISHER_H264_PT]),
        "the publisher offers H.264 and nothing else for video:\n{offer}"
    );
    let r = relay.post_offer("/whip/h264-live", &offer).await;
    assert_eq!(r.status, 201, "WHIP answer: {}", r.text());
    let answer = r.text();
    assert_eq!(
        video_section_pts(&answer, "H264").0,
        [PUBLISHER_H264_PT],
        "the relay accepts H.264 from the publisher:\n{answer}"
    );
    let publisher_location = r.header("location").unwrap().to_string();
    apply_answer(&publisher.pc, &answer).await;
    wait_connected(&publisher.pc, SECS_10).await;

    // Two viewers: one offers H.264 only, under a payload type the publisher does not use
    // (the relay must rewrite it); one offers VP8 first, then H.264 under the publisher's
    // payload type.
    let viewer_codecs: [&[VideoCodec]; 2] = [&[h264(127)], &[VP8_96, h264(PUBLISHER_H264_PT)]];
    let mut viewers = Vec::new();
    let mut viewer_pts = Vec::new();
    let mut locations = Vec::new();
    for codecs in viewer_codecs {
        let (viewer, offer) = H264Viewer::new(codecs, true).await;
        let r = relay.post_offer("/whep/h264-live", &offer).await;
        assert_eq!(r.status, 201, "WHEP answer: {}", r.text());
        let answer = r.text();
        let (h264_pts, _) = video_section_pts(&answer, "H264");
        let wanted = codecs.iter().find(|c| c.mime == MIME_TYPE_H264).unwrap();
        assert_eq!(
            h264_pts,
            [wanted.payload_type],
            "the WHEP answer maps the viewer's H.264 payload type:\n{answer}"
        );
        locations.push(r.header("location").unwrap().to_string());
        apply_answer(&viewer.pc, &answer).await;
        viewers.push(viewer);
        viewer_pts.push(wanted.payload_type);
    }
    for v in &viewers {
        wait_connected(&v.pc, SECS_10).await;
    }
    for v in &viewers {
        v.wait_for(60, 40, Duration::from_secs(15)).await;
    }

    // A viewer whose offer has only VP8 video: none of the publisher's codecs, 422, and no
    // session is left behind.
    let (vp8_viewer, vp8_offer) = H264Viewer::new(&[VP8_96], false).await;
    let r = relay.post_offer("/whep/h264-live", &vp8_offer).await;
    assert_eq!(r.status, 422, "a VP8-only viewer: {}", r.text());
    assert!(
        r.text().contains("H264"),
        "the 422 names the publisher's codecs: {}",
        r.text()
    );
    assert!(r.header("location").is_none());
    vp8_viewer.close().await;
    let s = stream_stats(&relay, "h264-live").await.unwrap();
    assert_eq!((s.viewer_sessions, s.forwarder_viewers), (2, 2), "{s:?}");

    // A viewer with VP8 video and Opus audio takes the publisher's audio but none of its
    // video: its video section could never be fed (the relay does not transcode), so it is
    // refused with 422 naming the video codec, rather than answered with a black picture.
    let (vp8_opus_viewer, offer) = H264Viewer::new(&[VP8_96], true).await;
    let r = relay.post_offer("/whep/h264-live", &offer).await;
    assert_eq!(r.status, 422, "a VP8 + Opus viewer: {}", r.text());
    assert!(
        r.text().contains("video") && r.text().contains("H264"),
        "the 422 says which section and which codec: {}",
        r.text()
    );
    assert!(r.header("location").is_none());
    vp8_opus_viewer.close().await;
    let s = stream_stats(&relay, "h264-live").await.unwrap();
    assert_eq!((s.viewer_sessions, s.forwarder_viewers), (2, 2), "{s:?}");

    // Packets keep arriving.
    let before: Vec<(u64, u64)> = viewers.iter().map(|v| v.counts()).collect();
    for (v, (video, audio)) in viewers.iter().zip(before) {
        v.wait_for(video + 15, audio + 10, SECS_10).await;
    }

    for (v, pt) in viewers.iter().zip(&viewer_pts) {
        let log = v.log.lock().unwrap();
        let video = &log.video;
        let (mime, track_pt) = video.codec.clone().expect("a video track arrived");
        assert!(
            mime.eq_ignore_ascii_case(MIME_TYPE_H264),
            "the viewer's video track is H.264: {mime}"
        );
        assert_eq!(track_pt, *pt, "the track's payload type");
        assert_eq!(
            video.payload_types,
            [*pt],
            "every video packet carries the viewer's H.264 payload type"
        );
        assert!(
            video.seq_breaks.is_empty(),
            "video sequence numbers continuous: {:?}",
            video.seq_breaks
        );
        assert!(
            starts_at_keyframe(&video.first_payloads),
            "the first video is SPS/PPS + IDR or an IDR; NAL types {:?}, first bytes {:02x?}",
            video
                .first_payloads
                .iter()
                .map(|p| nal_types(p))
                .collect::<Vec<_>>(),
            video
                .first_payloads
                .iter()
                .map(|p| &p[..p.len().min(6)])
                .collect::<Vec<_>>()
        );
    }
    assert!(
        publisher.keyframe_requests.load(Ordering::Relaxed) >= 1,
        "the relay asked the H.264 publisher for a keyframe"
    );

    // Everyone leaves: nothing is left.
    for location in locations.iter().chain([&publisher_location]) {
        let r = relay.request("DELETE", location, &[], b"").await;
        assert_eq!(r.status, 204, "DELETE {location}: {}", r.text());
    }
    let stats = relay.relay.stats().await.unwrap();
    assert_eq!(stats.peers, 0, "{stats:?}");
    assert!(stats.streams.is_empty(), "{stats:?}");

    publisher.close().await;
    for v in viewers {
        v.close().await;
    }
    relay.stop().await;
}

#[test]
fn depacketizer_reads_single_stap_a_and_fu_a() {
    // A single IDR, a single non-IDR slice.
    assert_eq!(nal_types(&[0x65, 0x88]), [Some(5)]);
    assert_eq!(nal_types(&[0x41, 0x9a]), [Some(1)]);
    // STAP-A with SPS and PPS.
    let mut stap = vec![0x78];
    for nal in [SPS, PPS] {
        stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        stap.extend_from_slice(nal);
    }
    assert_eq!(nal_types(&stap), [Some(7), Some(8)]);
    // FU-A: the start of an IDR, a middle fragment.
    assert_eq!(nal_types(&[0x7c, 0x85, 0x88]), [Some(5)]);
    assert_eq!(nal_types(&[0x7c, 0x05, 0x88]), [None]);

    let idr_start = vec![0x7c, 0x85, 0x88];
    let idr_middle = vec![0x7c, 0x05, 0x88];
    assert!(starts_at_keyframe(&[stap.clone(), idr_start.clone()]));
    assert!(starts_at_keyframe(std::slice::from_ref(&idr_start)));
    assert!(!starts_at_keyframe(&[idr_middle.clone(), stap.clone()]));
    assert!(!starts_at_keyframe(&[vec![0x41, 0x9a], stap, idr_start]));
    assert!(!starts_at_keyframe(&[]));
}
