//! Helpers for the WHIP/WHEP tests: the relay and its HTTP server on loopback, a tiny
//! HTTP/1.1 client, and webrtc-rs peers (the independent implementation) that gather **only
//! loopback candidates**: an IP filter and an interface filter for `lo`, loopback candidates
//! explicitly included (webrtc-rs skips them by default), UDP over IPv4 only, mDNS off, no
//! STUN/TURN servers. The relay announces only `127.0.0.1`, so no packet leaves loopback.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rootcast_relay::{
    Access, AuthRejection, RelayConfig, RelayHandle, RelayHooks, StreamAuth, StreamEvents,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::interceptor::registry::Registry;
use webrtc::media::Sample;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecCapability, RTPCodecType};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

pub const TOKEN: &str = "Bearer test-token";

/// A relay on `127.0.0.1:0` (UDP) with its router served on `127.0.0.1:<free port>`.
pub struct TestRelay {
    pub relay: RelayHandle,
    pub http: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl TestRelay {
    pub async fn start(config: RelayConfig) -> TestRelay {
        let hooks = RelayHooks::for_config(&config);
        TestRelay::start_with(config, hooks).await
    }

    pub async fn start_with(config: RelayConfig, hooks: RelayHooks) -> TestRelay {
        assert!(
            config.udp_bind.ip().is_loopback(),
            "tests bind loopback only"
        );
        let relay = rootcast_relay::start_with(config, hooks)
            .await
            .expect("relay starts");
        assert!(
            relay.candidates().iter().all(|c| c.ip().is_loopback()),
            "the relay announces only loopback candidates: {:?}",
            relay.candidates()
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = listener.local_addr().unwrap();
        let app = rootcast_relay::router(relay.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestRelay {
            relay,
            http,
            server,
        }
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http_request(self.http, method, path, headers, body).await
    }

    /// POSTs an SDP offer with a token; returns the response.
    pub async fn post_offer(&self, path: &str, sdp: &str) -> HttpResponse {
        self.request(
            "POST",
            path,
            &[
                ("Content-Type", "application/sdp"),
                ("Authorization", TOKEN),
            ],
            sdp.as_bytes(),
        )
        .await
    }

    pub async fn stop(self) {
        self.relay.shutdown().await;
        self.server.abort();
    }
}

/// A token check for tests: `test-token` allows everything; `view-only` allows only
/// viewing; `only-<stream>` allows both on that stream only; anything else (or none) is 401.
pub struct TestAuth;

impl StreamAuth for TestAuth {
    fn authorize(
        &self,
        access: Access,
        stream: &str,
        bearer: Option<&str>,
    ) -> Result<(), AuthRejection> {
        match bearer {
            None => Err(AuthRejection::Unauthorized("no token".into())),
            Some("test-token") => Ok(()),
            Some("view-only") if access == Access::View => Ok(()),
            Some("view-only") => Err(AuthRejection::Forbidden("view only".into())),
            Some(t) if t.strip_prefix("only-") == Some(stream) => Ok(()),
            Some(t) if t.starts_with("only-") => {
                Err(AuthRejection::Forbidden("another stream".into()))
            }
            Some(_) => Err(AuthRejection::Unauthorized("bad token".into())),
        }
    }
}

/// What a [`RecordingEvents`] heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    Live(String),
    Ended(String),
    Viewers(String, usize),
}

/// Records every event with the time it arrived.
#[derive(Default)]
pub struct RecordingEvents {
    pub heard: Mutex<Vec<(tokio::time::Instant, Heard)>>,
}

impl RecordingEvents {
    fn push(&self, h: Heard) {
        self.heard
            .lock()
            .unwrap()
            .push((tokio::time::Instant::now(), h));
    }

    pub fn list(&self) -> Vec<Heard> {
        self.heard
            .lock()
            .unwrap()
            .iter()
            .map(|(_, h)| h.clone())
            .collect()
    }

    /// Waits until `want` has been heard.
    pub async fn wait_for(&self, want: &Heard, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.list().contains(want) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "heard {want:?} within {within:?}; heard {:?}",
                self.list()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl StreamEvents for RecordingEvents {
    fn stream_live(&self, stream: &str) {
        self.push(Heard::Live(stream.into()));
    }
    fn stream_ended(&self, stream: &str) {
        self.push(Heard::Ended(stream.into()));
    }
    fn viewer_count(&self, stream: &str, viewers: usize) {
        self.push(Heard::Viewers(stream.into(), viewers));
    }
}

/// How a test peer hands out its offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferMode {
    /// Wait for ICE gathering: every candidate is in the offer.
    Complete,
    /// Right after `set_local_description`: candidates trickle to the returned channel.
    Trickle,
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request over a fresh loopback connection (`Connection: close`).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    assert!(addr.ip().is_loopback());
    let fut = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes()).await.unwrap();
        // The server may answer (413) and close before reading a large body.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        parse_response(&raw)
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("HTTP request within 10 s")
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = HashMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            // A repeated field (Link) is joined with ", ", as HTTP allows.
            headers
                .entry(k.trim().to_ascii_lowercase())
                .and_modify(|old: &mut String| {
                    old.push_str(", ");
                    old.push_str(v.trim());
                })
                .or_insert_with(|| v.trim().to_string());
        }
    }
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size_str = String::from_utf8_lossy(&data[..pos]);
        let size = usize::from_str_radix(size_str.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = &data[(end + 2).min(data.len())..];
    }
    out
}

/// A webrtc-rs API whose ICE agent gathers only 127.0.0.1 host candidates.
pub fn loopback_api() -> webrtc::api::API {
    let mut media = MediaEngine::default();
    media.register_default_codecs().unwrap();
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

/// A peer connection with no ICE servers (host candidates only).
pub async fn loopback_peer() -> Arc<RTCPeerConnection> {
    Arc::new(
        loopback_api()
            .new_peer_connection(RTCConfiguration::default())
            .await
            .unwrap(),
    )
}

/// Creates the offer and waits for ICE gathering (non-trickle, as WHIP without PATCH needs).
/// Asserts that every candidate in it is a loopback one.
pub async fn complete_offer(pc: &RTCPeerConnection) -> String {
    let offer = pc.create_offer(None).await.unwrap();
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), gathered.recv())
        .await
        .expect("ICE gathering within 10 s");
    let sdp = pc.local_description().await.unwrap().sdp;
    assert_loopback_only(&sdp);
    sdp
}

/// Every `a=candidate` of the SDP names a 127.0.0.0/8 address.
pub fn assert_loopback_only(sdp: &str) {
    let mut n = 0;
    for line in sdp.lines() {
        if let Some(c) = line.strip_prefix("a=candidate:") {
            n += 1;
            let addr = c.split(' ').nth(4).unwrap_or("");
            let ip: IpAddr = addr
                .parse()
                .unwrap_or_else(|_| panic!("candidate address {addr}"));
            assert!(ip.is_loopback(), "non-loopback candidate: {line}");
        }
    }
    assert!(n > 0, "the SDP has candidates");
}

pub async fn apply_answer(pc: &RTCPeerConnection, answer: &str) {
    assert_loopback_only(answer);
    pc.set_remote_description(RTCSessionDescription::answer(answer.to_string()).unwrap())
        .await
        .unwrap();
}

pub async fn wait_connected(pc: &RTCPeerConnection, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if pc.connection_state() == RTCPeerConnectionState::Connected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "peer connected within {within:?} (state {:?})",
            pc.connection_state()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fake VP8 frame: a one-partition bitstream whose frame tag and (for keyframes) start
/// code are valid, which is all a keyframe detector looks at. webrtc-rs's VP8 payloader adds
/// the payload descriptor (`S = 1`, `PID = 0` on the first packet).
pub fn vp8_frame(key: bool, len: usize, fill: u8) -> Vec<u8> {
    let mut f = vec![fill; len.max(10)];
    // Frame tag: P (inverse key frame) bit, version 0, show_frame, first partition size.
    let size = (len as u32) << 5;
    f[0] = (if key { 0x00 } else { 0x01 }) | 0x10 | (size as u8 & 0xe0);
    f[1] = (size >> 8) as u8;
    f[2] = (size >> 16) as u8;
    if key {
        f[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        f[6..8].copy_from_slice(&320u16.to_le_bytes());
        f[8..10].copy_from_slice(&240u16.to_le_bytes());
    }
    f
}

/// Whether an RTP payload (VP8 descriptor + frame) starts a keyframe, independently of the
/// relay's own detector.
pub fn vp8_payload_is_keyframe_start(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    if b0 & 0x10 == 0 || b0 & 0x07 != 0 {
        return false;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let x = payload.get(1).copied().unwrap_or(0);
        i = 2;
        if x & 0x80 != 0 {
            i += if payload.get(i).copied().unwrap_or(0) & 0x80 != 0 {
                2
            } else {
                1
            };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    payload.len() >= i + 6 && payload[i] & 0x01 == 0 && payload[i + 3..i + 6] == [0x9d, 0x01, 0x2a]
}

/// Creates the offer without waiting for gathering; the `a=candidate:…` attribute values
/// (`candidate:…`) arrive on the channel, then `None` when gathering is complete.
pub async fn trickle_offer(
    pc: &RTCPeerConnection,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<Option<String>>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    pc.on_ice_candidate(Box::new(move |c| {
        let line = c.and_then(|c| c.to_json().ok()).map(|j| j.candidate);
        let _ = tx.send(line);
        Box::pin(async {})
    }));
    let offer = pc.create_offer(None).await.unwrap();
    let sdp = offer.sdp.clone();
    pc.set_local_description(offer).await.unwrap();
    assert!(
        !sdp.contains("a=candidate:"),
        "the trickle offer carries no candidates"
    );
    (sdp, rx)
}

/// A webrtc-rs WHIP publisher: one VP8 and one Opus track (sendonly) fed with synthetic
/// samples; answers PLI/FIR with a keyframe (and sends one at the start).
pub struct Publisher {
    pub pc: Arc<RTCPeerConnection>,
    pub keyframes_sent: Arc<std::sync::atomic::AtomicU64>,
    pub keyframe_requests: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Publisher {
    pub async fn new() -> (Publisher, String) {
        let (publisher, offer, _) = Publisher::with_mode(OfferMode::Complete).await;
        (publisher, offer)
    }

    /// A publisher whose offer is made as `mode` says; with [`OfferMode::Trickle`] the
    /// candidates come on the returned channel.
    pub async fn with_mode(
        mode: OfferMode,
    ) -> (
        Publisher,
        String,
        Option<tokio::sync::mpsc::UnboundedReceiver<Option<String>>>,
    ) {
        let pc = loopback_peer().await;
        let video = Arc::new(TrackLocalStaticSample::new(
            RTCRtpCodecCapability {
                mime_type: MIME_TYPE_VP8.to_owned(),
                ..Default::default()
            },
            "video".to_owned(),
            "rootcast-test".to_owned(),
        ));
        let audio = Arc::new(TrackLocalStaticSample::new(
            RTCRtpCodecCapability {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                ..Default::default()
            },
            "audio".to_owned(),
            "rootcast-test".to_owned(),
        ));
        let sendonly = || {
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                send_encodings: vec![],
            })
        };
        let vt = pc
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
        let (offer, candidates) = match mode {
            OfferMode::Complete => (complete_offer(&pc).await, None),
            OfferMode::Trickle => {
                let (offer, rx) = trickle_offer(&pc).await;
                (offer, Some(rx))
            }
        };

        let stop = Arc::new(AtomicBool::new(false));
        let want_key = Arc::new(AtomicBool::new(true));
        let keyframes_sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let keyframe_requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = Vec::new();

        // RTCP from the relay: a PLI or FIR asks for a keyframe.
        let sender = vt.sender().await;
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
        // Video: 30 frames a second; keyframes 2,500 bytes (two or three packets), delta
        // frames 400 bytes.
        {
            let (stop, want_key, sent) = (stop.clone(), want_key.clone(), keyframes_sent.clone());
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(33));
                let mut n: u8 = 0;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    n = n.wrapping_add(1);
                    let key = want_key.swap(false, Ordering::Relaxed);
                    if key {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    let frame = vp8_frame(key, if key { 2500 } else { 400 }, n);
                    let sample = Sample {
                        data: Bytes::from(frame),
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
            Publisher {
                pc,
                keyframes_sent,
                keyframe_requests,
                stop,
                tasks,
            },
            offer,
            candidates,
        )
    }

    pub async fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.pc.close().await;
        for t in self.tasks {
            t.abort();
        }
    }
}

/// What a viewer received on one track.
#[derive(Debug, Default, Clone)]
pub struct TrackLog {
    pub packets: u64,
    pub first_payload: Option<Vec<u8>>,
    pub last_seq: Option<u16>,
    /// Sequence numbers that did not follow the previous one by exactly 1.
    pub seq_breaks: Vec<(u16, u16, u64)>,
    pub ssrcs: Vec<u32>,
}

#[derive(Debug, Default)]
pub struct ViewerLog {
    pub video: TrackLog,
    pub audio: TrackLog,
}

/// A webrtc-rs WHEP viewer: recvonly video and audio; records every RTP packet.
pub struct Viewer {
    pub pc: Arc<RTCPeerConnection>,
    pub log: Arc<Mutex<ViewerLog>>,
}

impl Viewer {
    pub async fn new() -> (Viewer, String) {
        let pc = loopback_peer().await;
        let recvonly = || {
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                send_encodings: vec![],
            })
        };
        pc.add_transceiver_from_kind(RTPCodecType::Video, recvonly())
            .await
            .unwrap();
        pc.add_transceiver_from_kind(RTPCodecType::Audio, recvonly())
            .await
            .unwrap();
        let log = Arc::new(Mutex::new(ViewerLog::default()));
        let on_track_log = log.clone();
        pc.on_track(Box::new(move |track, _receiver, _transceiver| {
            let log = on_track_log.clone();
            Box::pin(async move {
                let video = track.kind() == RTPCodecType::Video;
                tokio::spawn(async move {
                    while let Ok((packet, _)) = track.read_rtp().await {
                        let mut log = log.lock().unwrap();
                        let t = if video {
                            &mut log.video
                        } else {
                            &mut log.audio
                        };
                        let seq = packet.header.sequence_number;
                        if let Some(last) = t.last_seq {
                            if seq != last.wrapping_add(1) {
                                t.seq_breaks.push((last, seq, t.packets));
                            }
                        }
                        t.last_seq = Some(seq);
                        if t.first_payload.is_none() {
                            t.first_payload = Some(packet.payload.to_vec());
                        }
                        if !t.ssrcs.contains(&packet.header.ssrc) {
                            t.ssrcs.push(packet.header.ssrc);
                        }
                        t.packets += 1;
                    }
                });
            })
        }));
        let offer = complete_offer(&pc).await;
        (Viewer { pc, log }, offer)
    }

    pub fn counts(&self) -> (u64, u64) {
        let log = self.log.lock().unwrap();
        (log.video.packets, log.audio.packets)
    }

    /// Waits until at least `video` video and `audio` audio packets arrived.
    pub async fn wait_for(&self, video: u64, audio: u64, within: Duration) {
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

    pub async fn close(self) {
        let _ = self.pc.close().await;
    }
}

/// Sends a 20 ms Opus packet (the TOC of a silent CELT frame plus filler) on `audio`
/// every 20 ms until `stop` is set or the track is closed.
pub fn spawn_silent_opus(
    audio: Arc<TrackLocalStaticSample>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let sample = Sample {
                data: Bytes::from_static(&[0xf8, 0xff, 0xfe, 0x00, 0x01, 0x02]),
                duration: Duration::from_millis(20),
                ..Default::default()
            };
            if audio.write_sample(&sample).await.is_err() {
                break;
            }
        }
    })
}
