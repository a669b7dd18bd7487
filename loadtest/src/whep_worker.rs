//! A `whep-viewers` worker process (`rootcast-loadtest whep-worker`, started by the
//! coordinator in `whep.rs`): it joins its share of the viewers at the pace it is given
//! (WHEP viewers of rootcast's relay, or subscribers of a Janus VideoRoom, `janus.rs`),
//! counts every RTP packet each viewer receives (per track: received, lost by sequence
//! number, see `rtp_stats.rs`), notes each viewer's time from its WHEP `POST` (for Janus:
//! from before its session is created, three requests earlier) to its first keyframe
//! packet, and reports over standard output, one JSON object per line.
//!
//! Invariants: a viewer's counts start with its first packet and are only read through
//! [`Snapshot`]s, so the coordinator's window (from [`WhepCommand::Mark`] to
//! [`WhepCommand::Report`]) is the difference of two readings of the same counters. The
//! process exits when told to stop or when its standard input closes, so it never outlives
//! a run.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;
use tokio::sync::Semaphore;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;

use crate::janus;
use crate::rtp_stats::{SeqTracker, Snapshot, vp8_starts_keyframe};
use crate::webrtc_peer::{self, PeerNetwork};
use crate::worker::unix_ns;

/// Coordinator → worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum WhepCommand {
    Join(JoinPlan),
    /// Read every viewer's counters: the measured window starts.
    Mark,
    /// Read them again and send a [`WhepEvent::Report`].
    Report,
    Stop,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinPlan {
    pub source: ViewerSource,
    /// Where the viewers gather their candidates.
    pub network: PeerNetwork,
    pub count: usize,
    /// Viewers joined per second by this worker.
    pub rate: f64,
    /// Most joins in progress at once.
    pub concurrency: usize,
}

/// Where a viewer gets the stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ViewerSource {
    /// `POST /whep/<stream>` to rootcast's relay at `server` (`rootcast serve`).
    Whep { server: SocketAddr, stream: String },
    /// A subscriber of the publisher in Janus's VideoRoom, over Janus's HTTP API at `api`.
    Janus { api: SocketAddr },
}

/// Worker → coordinator.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum WhepEvent {
    /// Every 200 ms.
    Progress(Progress),
    /// The answer to [`WhepCommand::Mark`].
    Marked,
    Report(Box<WhepWorkerReport>),
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Progress {
    /// WHEP answered with 201 and the answer applied.
    pub answered: u64,
    /// ICE and DTLS up.
    pub connected: u64,
    /// A keyframe's first packet arrived.
    pub first_frames: u64,
    /// Joins that failed (POST refused, timeout, bad SDP).
    pub failed: u64,
    /// Connected viewers whose connection later failed or closed.
    pub dropped: u64,
    /// RTP packets received by all viewers, both tracks.
    pub packets: u64,
}

impl std::ops::AddAssign for Progress {
    fn add_assign(&mut self, o: Progress) {
        self.answered += o.answered;
        self.connected += o.connected;
        self.first_frames += o.first_frames;
        self.failed += o.failed;
        self.dropped += o.dropped;
        self.packets += o.packets;
    }
}

/// One viewer's figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ViewerFigures {
    /// From just before the WHEP `POST` to the first packet of a keyframe, µs.
    pub first_keyframe_us: Option<u64>,
    /// From just before the `POST` to the first RTP packet of any kind, µs.
    pub first_packet_us: Option<u64>,
    /// From just before the `POST` to ICE and DTLS connected, µs.
    pub connected_us: Option<u64>,
    /// Video and audio over the window: (received, lost by sequence number).
    pub video: (u64, u64),
    pub audio: (u64, u64),
    /// Over the window, both tracks: packets not ahead of the highest sequence number
    /// (duplicates such as retransmissions, or reordered), and padding-only packets.
    pub late: u64,
    pub padding: u64,
    /// Whether the viewer was counted at the window's start (joined late otherwise).
    pub marked: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WhepWorkerReport {
    pub viewers: Vec<ViewerFigures>,
    pub progress: Progress,
    /// Failed joins and dropped connections, by reason.
    pub errors: BTreeMap<String, u64>,
}

/// What one viewer's track readers write and the worker reads.
#[derive(Debug, Default)]
struct ViewerLog {
    posted_ns: u64,
    connected_ns: Option<u64>,
    /// Its connection went down after it was up (counted once, however many states follow).
    dropped: bool,
    first_packet_ns: Option<u64>,
    first_keyframe_ns: Option<u64>,
    video: SeqTracker,
    audio: SeqTracker,
    padding: u64,
    /// (video, audio, padding) at the window's start.
    mark: Option<(Snapshot, Snapshot, u64)>,
}

#[derive(Default)]
struct Shared {
    answered: AtomicU64,
    connected: AtomicU64,
    first_frames: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    packets: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    viewers: Mutex<Vec<Arc<Mutex<ViewerLog>>>>,
    /// Kept alive until the process exits.
    peers: Mutex<Vec<Arc<RTCPeerConnection>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn progress(&self) -> Progress {
        Progress {
            answered: self.answered.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            first_frames: self.first_frames.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            packets: self.packets.load(Ordering::Relaxed),
        }
    }

    fn error(&self, reason: String) {
        *lock(&self.errors).entry(reason).or_default() += 1;
    }

    fn mark(&self) {
        for viewer in lock(&self.viewers).iter() {
            let mut log = lock(viewer);
            log.mark = Some((
                Snapshot::of(&log.video),
                Snapshot::of(&log.audio),
                log.padding,
            ));
        }
    }

    fn report(&self) -> WhepWorkerReport {
        let since = |at: Option<u64>, posted: u64| at.map(|ns| ns.saturating_sub(posted) / 1000);
        let viewers = lock(&self.viewers)
            .iter()
            .map(|viewer| {
                let log = lock(viewer);
                let (video0, audio0, padding0) = log.mark.unwrap_or_default();
                let (video1, audio1) = (Snapshot::of(&log.video), Snapshot::of(&log.audio));
                ViewerFigures {
                    first_keyframe_us: since(log.first_keyframe_ns, log.posted_ns),
                    first_packet_us: since(log.first_packet_ns, log.posted_ns),
                    connected_us: since(log.connected_ns, log.posted_ns),
                    video: video1.since(&video0),
                    audio: audio1.since(&audio0),
                    late: (video1.late + audio1.late).saturating_sub(video0.late + audio0.late),
                    padding: log.padding - padding0,
                    marked: log.mark.is_some(),
                }
            })
            .collect();
        WhepWorkerReport {
            viewers,
            progress: self.progress(),
            errors: lock(&self.errors).clone(),
        }
    }
}

fn emit(event: &WhepEvent) {
    let mut line = serde_json::to_string(event).expect("events serialize to JSON");
    line.push('\n');
    let mut out = std::io::stdout().lock();
    if out
        .write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        // The coordinator is gone: nobody wants our figures.
        std::process::exit(1);
    }
}

pub fn run() -> anyhow::Result<()> {
    // One runtime thread: the process is pinned to one core with the rest of the load
    // generator, and webrtc-rs's many small tasks gain nothing from a second thread there.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(serve_coordinator())
}

async fn serve_coordinator() -> anyhow::Result<()> {
    let shared = Arc::new(Shared::default());
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut progress = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.context("reading standard input")? else {
                    return Ok(()); // the coordinator went away
                };
                match serde_json::from_str::<WhepCommand>(&line)
                    .with_context(|| format!("bad command {line:?}"))?
                {
                    WhepCommand::Join(plan) => {
                        tokio::spawn(join_all(plan, shared.clone()));
                    }
                    WhepCommand::Mark => {
                        shared.mark();
                        emit(&WhepEvent::Marked);
                    }
                    WhepCommand::Report => emit(&WhepEvent::Report(Box::new(shared.report()))),
                    WhepCommand::Stop => return Ok(()),
                }
            }
            _ = progress.tick() => emit(&WhepEvent::Progress(shared.progress())),
        }
    }
}

/// Starts the plan's viewers on a fixed schedule, at most `concurrency` joining at once.
async fn join_all(plan: JoinPlan, shared: Arc<Shared>) {
    let plan = Arc::new(plan);
    let permits = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let interval = Duration::from_secs_f64(1.0 / plan.rate.max(0.1));
    let started = tokio::time::Instant::now();
    for i in 0..plan.count {
        tokio::time::sleep_until(started + interval.mul_f64(i as f64)).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (plan, shared) = (plan.clone(), shared.clone());
        tokio::spawn(async move {
            let joined = tokio::time::timeout(Duration::from_secs(20), join(&plan, &shared)).await;
            drop(permit);
            let reason = match joined {
                Ok(Ok(())) => return,
                Ok(Err(error)) => format!("{error:#}"),
                Err(_) => "join: no answer within 20 s".to_owned(),
            };
            shared.failed.fetch_add(1, Ordering::Relaxed);
            shared.error(reason.chars().take(120).collect());
        });
    }
}

/// One viewer. WHEP: recvonly video and audio, a complete offer, the `POST`, the
/// answer. Janus: `join` as a subscriber, Janus's offer, the viewer's answer, `start`.
async fn join(plan: &JoinPlan, shared: &Arc<Shared>) -> anyhow::Result<()> {
    let pc = webrtc_peer::peer(plan.network).await?;
    let log = Arc::new(Mutex::new(ViewerLog::default()));
    let on_track = (log.clone(), shared.clone());
    pc.on_track(Box::new(move |track, _receiver, _transceiver| {
        let (log, shared) = on_track.clone();
        tokio::spawn(async move {
            let video = track.kind() == RTPCodecType::Video;
            while let Ok((packet, _)) = track.read_rtp().await {
                let now = unix_ns();
                shared.packets.fetch_add(1, Ordering::Relaxed);
                let mut log = lock(&log);
                log.first_packet_ns.get_or_insert(now);
                if packet.payload.is_empty() {
                    log.padding += 1;
                }
                if video {
                    log.video.record(packet.header.sequence_number);
                    if log.first_keyframe_ns.is_none() && vp8_starts_keyframe(&packet.payload) {
                        log.first_keyframe_ns = Some(now);
                        shared.first_frames.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    log.audio.record(packet.header.sequence_number);
                }
            }
        });
        Box::pin(async {})
    }));
    let on_state = (log.clone(), shared.clone());
    pc.on_peer_connection_state_change(Box::new(move |state| {
        let (log, shared) = on_state.clone();
        let mut log = lock(&log);
        match state {
            RTCPeerConnectionState::Connected if log.connected_ns.is_none() => {
                log.connected_ns = Some(unix_ns());
                shared.connected.fetch_add(1, Ordering::Relaxed);
            }
            RTCPeerConnectionState::Failed
            | RTCPeerConnectionState::Closed
            | RTCPeerConnectionState::Disconnected
                if log.connected_ns.is_some() && !log.dropped =>
            {
                log.dropped = true;
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                shared.error(format!("connection {state}"));
            }
            _ => {}
        }
        Box::pin(async {})
    }));
    match &plan.source {
        ViewerSource::Whep { server, stream } => {
            let recvonly = || {
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    send_encodings: vec![],
                })
            };
            pc.add_transceiver_from_kind(RTPCodecType::Video, recvonly())
                .await?;
            pc.add_transceiver_from_kind(RTPCodecType::Audio, recvonly())
                .await?;
            let offer = webrtc_peer::complete_offer(&pc, plan.network).await?;
            lock(&log).posted_ns = unix_ns();
            let answer =
                webrtc_peer::post_offer(*server, &format!("/whep/{stream}"), &offer).await?;
            webrtc_peer::apply_answer(&pc, &answer, plan.network).await?;
        }
        ViewerSource::Janus { api } => {
            lock(&log).posted_ns = unix_ns();
            let (peer, network) = (&pc, plan.network);
            janus::subscribe(*api, |offer| async move {
                webrtc_peer::answer_offer(peer, &offer, network).await
            })
            .await?;
        }
    }
    shared.answered.fetch_add(1, Ordering::Relaxed);
    lock(&shared.viewers).push(log);
    lock(&shared.peers).push(pc);
    Ok(())
}
