//! The tokio driver around str0m: one UDP socket, one `str0m::Rtc` per peer, and the
//! forwarding core in between.
//!
//! A thin layer: **the core decides, the driver moves bytes.** It owns the socket and the
//! clock, feeds every `Rtc` its datagrams (`Input::Receive`) and timeouts (`Input::Timeout`),
//! drains `poll_output` until `Output::Timeout`, sends each `Transmit`, and maps str0m's
//! events into [`StreamForwarder`] calls exactly as `relay/DESIGN.md` §5 lists them:
//!
//! | str0m (peer) | core |
//! | --- | --- |
//! | publisher `Event::RtpPacket` | `handle_publisher_packet` → each [`Forward`] → the viewer's `StreamTx::write_rtp(.. .nackable(true))` |
//! | publisher `Event::StreamPaused` | `handle_publisher_paused` |
//! | viewer `Event::Connected` | `add_viewer` (random RTP bases; asks for a keyframe) |
//! | viewer `Event::KeyframeRequest` | `handle_viewer_keyframe_request` |
//! | viewer `Event::EgressBitrateEstimate` | `set_viewer_estimate` |
//! | viewer `Event::MediaEgressStats` (1 s) | none: NACKs received and packets sent, for [`StreamStats`] (str0m resends by itself) |
//! | `poll_keyframe_request()` | publisher `StreamRx::request_keyframe` for the layer's RID |
//! | `poll_timeout()` | `handle_timeout(now)` when due |
//! | ICE not connected in time, disconnected past the grace, `Closed`, DELETE | `remove_viewer` / `publisher_left`, and every map entry of the peer removed |
//!
//! One task runs everything ([`start`] spawns it); HTTP handlers talk to it through a
//! [`RelayHandle`] (an mpsc channel). The expensive, stateless part of a new session — SDP
//! checks, the DTLS certificate, `accept_offer` — runs on the caller's task
//! ([`RelayHandle::negotiate`]); the driver only decides whether to adopt the ready `Rtc`
//! (409, 404, 422, 503) so one slow offer does not stall forwarding.
//!
//! Trickle ICE and ICE restart ([`RelayHandle::patch`], WHIP/WHEP `PATCH`) run on the
//! driver task because they touch a live `Rtc`: candidates go to `Rtc::add_remote_candidate`;
//! a restart re-accepts the session's stored offer with the new credentials (str0m's own
//! path for a remote ICE restart), so str0m flushes the old pairs and answers with new ones.
//!
//! The host's [`StreamEvents`](crate::StreamEvents) hear, from this task: `stream_live` when a publisher's
//! ICE and DTLS are up, `stream_ended` when it leaves, and connected-viewer counts coalesced
//! by [`ViewerCounts`] (at most every 500 ms per stream, the last value always sent).
//!
//! Datagrams out go in batches (`sendmmsg`, a viewer's same-size runs as one UDP GSO send when
//! the kernel has it, [`crate::udp`]); only peers whose timeout is due are visited (a timer
//! heap); the driver's counters are published once per loop turn for `GET /relay/metrics`
//! ([`crate::metrics`]). See `relay/DESIGN.md` §11.
//!
//! Not yet: `recvmmsg`, header-extension pass-through (audio level, video orientation).
//! See `relay/DESIGN.md` §7.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng as _;
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::SdpOffer;
use str0m::format::{Codec as StrCodec, PayloadParams};
use str0m::media::{KeyframeRequestKind, MediaKind as StrKind, Mid, Pt, Rid};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::{
    Extension, ExtensionMap, RtpPacket, RtpWrite, SeqNo, Ssrc, Vp8Descriptor, Vp8Patch,
};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};

use crate::config::RelayConfig;
use crate::forwarder::{
    Counters, Forward, ForwarderConfig, RtpBase, StreamForwarder, ViewerId, ViewerOptions,
};
use crate::hooks::RelayHooks;
use crate::keyframes::KeyframeKind;
use crate::layers::{LayerChoice, ViewerPreference};
use crate::metrics::{DriverCounters, DriverMetrics};
use crate::packet::{Codec, InboundPacket, LayerId, MediaKind, PacketHeader};
use crate::record::{Recording, Selection};
use crate::report::ViewerCounts;
use crate::sdp_checks::{self, OfferRole, OfferSummary, SdpProblem, SectionKind};
use crate::sdpfrag::{self, Fragment};
use crate::tcp::{self, TcpEvent};
use crate::udp::{self, SendBatch};
use crate::vp8::Vp8Fields;

/// Largest datagram read from the socket.
const RECV_BUF: usize = 2048;
/// Datagrams read in one go before the peers are polled.
const RECV_BATCH: usize = 64;
/// The loop wakes at least this often (lifecycle checks).
const MAX_SLEEP: Duration = Duration::from_millis(250);
/// Peers are checked for teardown (dead, ICE timeouts) at most this often, and at once
/// when a poll found one dead.
const LIFECYCLE_INTERVAL: Duration = Duration::from_millis(20);
/// Most ICE-TCP connections open at once (a client opens one per candidate pair it tries).
const MAX_TCP_CONNECTIONS: usize = 4096;

/// Why the relay refused or could not do something. Each maps to one HTTP status
/// ([`RelayError::status`]); the `Display` text is the response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayError {
    /// 400: the offer is malformed or hostile, or str0m could not negotiate it.
    BadSdp(String),
    /// 422: no codec the relay forwards (or none the publisher sends).
    UnsupportedCodec(String),
    /// 404: WHEP for a stream that has no publisher.
    NoPublisher,
    /// 404: no such session.
    UnknownSession,
    /// 409: the stream already has a publisher.
    PublisherExists,
    /// 503: too many streams or viewers.
    AtCapacity(String),
    /// 503: the driver task is not running.
    Stopped,
    /// 412: `If-Match` does not match the session's entity tag.
    PreconditionFailed,
    /// 400: a `PATCH` fragment the relay cannot use.
    BadFragment(String),
    /// 400: a layer choice the stream cannot serve (an unknown RID).
    BadLayer(String),
}

impl RelayError {
    /// The HTTP status code for this error.
    pub fn status(&self) -> u16 {
        match self {
            RelayError::BadSdp(_) | RelayError::BadFragment(_) | RelayError::BadLayer(_) => 400,
            RelayError::PreconditionFailed => 412,
            RelayError::UnsupportedCodec(_) => 422,
            RelayError::NoPublisher | RelayError::UnknownSession => 404,
            RelayError::PublisherExists => 409,
            RelayError::AtCapacity(_) | RelayError::Stopped => 503,
        }
    }
}

impl fmt::Display for RelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayError::BadSdp(why) => write!(f, "{why}"),
            RelayError::UnsupportedCodec(why) => write!(f, "{why}"),
            RelayError::NoPublisher => write!(f, "the stream has no publisher"),
            RelayError::UnknownSession => write!(f, "no such session"),
            RelayError::PublisherExists => write!(f, "the stream already has a publisher"),
            RelayError::AtCapacity(why) => write!(f, "the relay is at capacity: {why}"),
            RelayError::Stopped => write!(f, "the relay is not running"),
            RelayError::PreconditionFailed => write!(
                f,
                "If-Match does not match the session's current entity tag (ETag)"
            ),
            RelayError::BadFragment(why) => write!(f, "{why}"),
            RelayError::BadLayer(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for RelayError {}

impl From<SdpProblem> for RelayError {
    fn from(p: SdpProblem) -> RelayError {
        match p {
            SdpProblem::Malformed(_) => RelayError::BadSdp(p.to_string()),
            SdpProblem::NoSupportedCodec => RelayError::UnsupportedCodec(p.to_string()),
        }
    }
}

/// A session the relay adopted: what the HTTP layer answers with.
#[derive(Debug, Clone)]
pub struct Negotiated {
    /// The session id (the last segment of the `Location`).
    pub session: String,
    /// The SDP answer.
    pub answer: String,
    /// The entity tag of the session's ICE state (for `If-Match` on PATCH).
    pub etag: String,
}

/// What a `PATCH` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchOutcome {
    /// Trickle ICE: the candidates were added (`204`).
    Trickled {
        /// Candidates handed to str0m.
        added: usize,
    },
    /// ICE restart (`200`): the relay's new fragment and the session's new entity tag.
    Restarted {
        /// `application/trickle-ice-sdpfrag` body: new `ice-ufrag`/`ice-pwd`, candidates.
        fragment: String,
        /// The new `ETag`.
        etag: String,
    },
}

/// A viewer's layer state (the WHEP layer route's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStatus {
    /// What the viewer asked for (`Auto` until it asks).
    pub preference: ViewerPreference,
    /// Whether the viewer's ICE and DTLS are up (it is in the forwarder).
    pub joined: bool,
    /// The layer the viewer should get.
    pub target: Option<LayerId>,
    /// The layer the viewer is getting.
    pub current: Option<LayerId>,
    /// The last bandwidth estimate (bits per second).
    pub estimate_bps: Option<u64>,
    /// Live layers: rank, the publisher's RID (if simulcast), bitrate (bits per second).
    pub available: Vec<(LayerId, Option<String>, u64)>,
}

/// A snapshot of the relay for stats and tests.
#[derive(Debug, Clone, Default)]
pub struct RelayStats {
    /// Peers (str0m `Rtc`s) alive in the driver, publishers and viewers.
    pub peers: usize,
    /// Entries of the address → peer demultiplexing map.
    pub addresses: usize,
    /// ICE-TCP connections open (claimed by a peer or not yet).
    pub tcp_connections: usize,
    /// Streams, sorted by name.
    pub streams: Vec<StreamStats>,
}

/// One stream in [`RelayStats`].
#[derive(Debug, Clone)]
pub struct StreamStats {
    /// The stream name.
    pub name: String,
    /// Whether a publisher session is attached.
    pub has_publisher: bool,
    /// WHEP sessions attached (connected or not).
    pub viewer_sessions: usize,
    /// Viewers the forwarding core holds (connected ones).
    pub forwarder_viewers: usize,
    /// The core's counters.
    pub counters: Counters,
    /// RTCP NACK messages the stream's current viewers sent (str0m's count, at most a
    /// second old). str0m answers them itself, from each viewer's `StreamTx` RTX cache.
    pub viewer_nacks: u64,
    /// Packets str0m retransmitted (RTX) to the current viewers: what it sent beyond the
    /// relay's writes, at its last report (a lower bound; at most a second old).
    pub viewer_resends: u64,
}

/// The handle to a running relay: cheap to clone; every clone talks to the same driver task.
#[derive(Clone)]
pub struct RelayHandle {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayHandle")
            .field("udp_addr", &self.shared.udp_addr)
            .field("candidates", &self.shared.candidates)
            .finish()
    }
}

struct Shared {
    config: RelayConfig,
    hooks: RelayHooks,
    udp_addr: SocketAddr,
    candidates: Vec<SocketAddr>,
    tcp_addr: Option<SocketAddr>,
    tcp_candidates: Vec<SocketAddr>,
    /// The driver's counters, published once per loop turn (`GET /relay/metrics`).
    metrics: DriverMetrics,
    /// Streams whose publisher sends one video layer (no simulcast): their viewers are
    /// built without bandwidth estimation, so str0m does not pace them (see
    /// [`RelayHandle::negotiate`]). Written by the driver when a publisher arrives or
    /// leaves.
    single_layer_streams: std::sync::Mutex<HashSet<String>>,
}

impl Shared {
    fn single_layer_streams(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.single_layer_streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Binds the UDP socket and spawns the driver task on the current tokio runtime, with the
/// default hooks ([`RelayHooks::for_config`]: allow-all or reject-all tokens, no events).
///
/// The task runs until [`RelayHandle::shutdown`] or until every handle is dropped.
pub async fn start(config: RelayConfig) -> io::Result<RelayHandle> {
    let hooks = RelayHooks::for_config(&config);
    start_with(config, hooks).await
}

/// [`start`] with the host's token check and event sink.
pub async fn start_with(config: RelayConfig, hooks: RelayHooks) -> io::Result<RelayHandle> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let (socket, buffers) = udp::bind(config.udp_bind)?;
    let gso = udp::gso_supported(&socket);
    let udp_addr = socket.local_addr()?;
    let candidates = config.candidate_addrs(udp_addr);
    // With a wildcard bind the datagram's real destination is unknown without IP_PKTINFO;
    // str0m matches it against the local candidates, so use the (first) announced one.
    let destination = if udp_addr.ip().is_unspecified() {
        candidates[0]
    } else {
        udp_addr
    };
    let listener = match config.tcp_bind_addr() {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let tcp_addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let tcp_candidates = tcp_addr
        .map(|a| config.candidate_addrs(a))
        .unwrap_or_default();
    let tcp_destination = tcp_addr.map(|a| {
        if a.ip().is_unspecified() {
            tcp_candidates[0]
        } else {
            a
        }
    });
    let shared = Arc::new(Shared {
        config,
        hooks,
        udp_addr,
        candidates,
        tcp_addr,
        tcp_candidates,
        metrics: DriverMetrics::new(buffers),
        single_layer_streams: Default::default(),
    });
    let tcp_rx = listener.map(|listener| {
        let (events, rx) = mpsc::channel(1024);
        tokio::spawn(tcp::accept_loop(listener, events, MAX_TCP_CONNECTIONS));
        rx
    });
    let (tx, rx) = mpsc::channel(256);
    let driver = Driver {
        shared: shared.clone(),
        destination,
        peers: HashMap::new(),
        sessions: HashMap::new(),
        by_addr: HashMap::new(),
        streams: HashMap::new(),
        next_key: 1,
        dirty: HashSet::new(),
        forwards: Vec::new(),
        counts: ViewerCounts::default(),
        reports: Vec::new(),
        tcp_destination,
        tcp: HashMap::new(),
        tcp_by_source: HashMap::new(),
        finishing_recordings: Vec::new(),
        timers: BinaryHeap::new(),
        kicked: Vec::new(),
        reap: false,
        lifecycle_at: Instant::now(),
        counters: DriverCounters::default(),
        out: SendBatch::new(gso),
    };
    tokio::spawn(driver.run(socket, rx, tcp_rx));
    tracing::info!(
        udp = %udp_addr,
        receive_buffer = buffers.receive,
        send_buffer = buffers.send,
        udp_gso = gso,
        candidates = ?shared.candidates,
        tcp = ?shared.tcp_addr,
        "relay started"
    );
    Ok(RelayHandle { tx, shared })
}

impl RelayHandle {
    /// The bound UDP address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.shared.udp_addr
    }

    /// The ICE host candidates (UDP) announced in answers.
    pub fn candidates(&self) -> &[SocketAddr] {
        &self.shared.candidates
    }

    /// The bound ICE-TCP address, when ICE-TCP is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.shared.tcp_addr
    }

    /// The passive TCP candidates announced in answers (empty without ICE-TCP).
    pub fn tcp_candidates(&self) -> &[SocketAddr] {
        &self.shared.tcp_candidates
    }

    /// The configuration the relay runs with.
    pub fn config(&self) -> &RelayConfig {
        &self.shared.config
    }

    /// The token check and event sink the relay runs with.
    pub fn hooks(&self) -> &RelayHooks {
        &self.shared.hooks
    }

    /// Checks an offer, negotiates it with a new `Rtc` and hands that to the driver, which
    /// adopts it as the stream's publisher ([`OfferRole::Publish`], WHIP) or as a viewer
    /// ([`OfferRole::View`], WHEP).
    pub async fn negotiate(
        &self,
        role: OfferRole,
        stream: &str,
        offer: &str,
    ) -> Result<Negotiated, RelayError> {
        let summary = sdp_checks::check_offer(offer, role)?;
        // A viewer gets bandwidth estimation (and with it str0m's pacer) only when its
        // layer can follow the estimate: when the stream's publisher sends simulcast (or
        // is not known yet). A single-layer stream's packets were paced by the publisher
        // and are forwarded as they come; pacing them again cost a str0m timeout per
        // packet per viewer (≈ 30 % of the relay's CPU at 200 viewers, `docs/benchmarks.md`
        // R1 session 6). A viewer keeps what it got if the publisher changes.
        let estimated =
            role == OfferRole::View && !self.shared.single_layer_streams().contains(stream);
        let (rtc, answer) = self.accept(role, estimated, offer)?;
        let session = random_hex();
        let etag = new_etag();
        let (reply, answered) = oneshot::channel();
        let prepared = Prepared {
            session: session.clone(),
            role,
            stream: stream.to_string(),
            rtc: Box::new(rtc),
            summary,
            offer: offer.to_string(),
            etag: etag.clone(),
            estimated,
        };
        self.tx
            .send(Command::Adopt {
                prepared: Box::new(prepared),
                reply,
            })
            .await
            .map_err(|_| RelayError::Stopped)?;
        answered.await.map_err(|_| RelayError::Stopped)??;
        Ok(Negotiated {
            session,
            answer,
            etag,
        })
    }

    /// Ends a session (WHIP/WHEP `DELETE`). `Ok(false)` when there is no such session.
    pub async fn end(
        &self,
        role: OfferRole,
        stream: &str,
        session: &str,
    ) -> Result<bool, RelayError> {
        self.ask(|reply| Command::End {
            key: SessionRef::new(role, stream, session),
            reply,
        })
        .await
    }

    /// Whether a session exists.
    pub async fn session_exists(
        &self,
        role: OfferRole,
        stream: &str,
        session: &str,
    ) -> Result<bool, RelayError> {
        self.ask(|reply| Command::Exists {
            key: SessionRef::new(role, stream, session),
            reply,
        })
        .await
    }

    /// Trickle ICE or ICE restart on a session (WHIP/WHEP `PATCH`, RFC 9725 §4.3).
    ///
    /// `if_match` is the raw `If-Match` value: when present it must match the session's
    /// entity tag (or be `*`), else [`RelayError::PreconditionFailed`]. A fragment whose
    /// `ice-ufrag`/`ice-pwd` differ from the session's remote credentials is an ICE restart;
    /// otherwise its candidates are added.
    pub async fn patch(
        &self,
        role: OfferRole,
        stream: &str,
        session: &str,
        if_match: Option<&str>,
        fragment: Fragment,
    ) -> Result<PatchOutcome, RelayError> {
        self.ask(|reply| Command::Patch {
            key: SessionRef::new(role, stream, session),
            if_match: if_match.map(str::to_owned),
            fragment: Box::new(fragment),
            reply,
        })
        .await?
    }

    /// Sets a WHEP viewer's layer preference (the layer route): a layer, a publisher RID,
    /// automatic, or audio only. Takes effect at once; a switch to a video layer asks the
    /// publisher for a keyframe of it. A viewer not yet connected keeps the choice for when
    /// it is. [`RelayError::UnknownSession`] for no such viewer, [`RelayError::BadLayer`]
    /// for a RID the publisher does not send.
    pub async fn set_layer(
        &self,
        stream: &str,
        session: &str,
        choice: LayerChoice,
    ) -> Result<LayerStatus, RelayError> {
        self.ask(|reply| Command::SetLayer {
            key: SessionRef::new(OfferRole::View, stream, session),
            choice: Some(choice),
            reply,
        })
        .await?
    }

    /// A WHEP viewer's layer state.
    pub async fn layer_status(
        &self,
        stream: &str,
        session: &str,
    ) -> Result<LayerStatus, RelayError> {
        self.ask(|reply| Command::SetLayer {
            key: SessionRef::new(OfferRole::View, stream, session),
            choice: None,
            reply,
        })
        .await?
    }

    /// A snapshot of peers, streams and counters.
    pub async fn stats(&self) -> Result<RelayStats, RelayError> {
        self.ask(|reply| Command::Stats { reply }).await
    }

    /// The driver's own counters as of its last loop turn (no round trip to the driver).
    pub fn counters(&self) -> DriverCounters {
        self.shared.metrics.snapshot()
    }

    /// The socket buffer sizes the kernel granted.
    pub fn socket_buffers(&self) -> udp::BufferSizes {
        self.shared.metrics.buffers
    }

    /// The kernel's count of datagrams the relay's UDP socket dropped because its receive
    /// queue was full (`None` where `/proc/net/udp` does not list it).
    pub fn receive_drops(&self) -> Option<u64> {
        udp::receive_drops(self.shared.udp_addr)
    }

    /// Stops the driver task (every session ends) and waits until it has ended, with its
    /// recordings finished.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
        self.tx.closed().await;
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RelayError> {
        let (reply, answered) = oneshot::channel();
        self.tx
            .send(command(reply))
            .await
            .map_err(|_| RelayError::Stopped)?;
        answered.await.map_err(|_| RelayError::Stopped)
    }

    /// A new `Rtc` for the offer, and its answer; `estimated` (viewers only) turns on
    /// str0m's bandwidth estimation, and with it its pacer.
    fn accept(
        &self,
        role: OfferRole,
        estimated: bool,
        offer: &str,
    ) -> Result<(Rtc, String), RelayError> {
        let config = &self.shared.config;
        let mut builder = Rtc::builder()
            .set_rtp_mode(true)
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true);
        if role == OfferRole::View {
            if estimated {
                builder = builder.enable_bwe(Some(Bitrate::bps(config.initial_viewer_bitrate_bps)));
            } else {
                // Without an estimate, transport-wide sequence numbers would only make the
                // viewer send feedback str0m reads and throws away (10 % of the relay's CPU
                // at 200 viewers).
                builder = builder.set_extension_map(extensions_without_twcc());
            }
            // `Event::MediaEgressStats`: NACKs received and packets sent (`Egress`).
            builder = builder.set_stats_interval(Some(Duration::from_secs(1)));
        }
        // str0m's SDP parser and negotiation are not ours: a panic on hostile input must
        // become a 400, not a dead handler.
        let negotiated = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let offer = SdpOffer::from_sdp_string(offer)
                .map_err(|e| RelayError::BadSdp(format!("malformed SDP offer: {e}")))?;
            let mut rtc = builder.build(Instant::now());
            for addr in &self.shared.candidates {
                let candidate = Candidate::host(*addr, "udp")
                    .map_err(|e| RelayError::BadSdp(format!("candidate {addr}: {e}")))?;
                rtc.add_local_candidate(candidate);
            }
            for addr in &self.shared.tcp_candidates {
                let candidate = Candidate::builder()
                    .tcp()
                    .host(*addr)
                    .tcptype(TcpType::Passive)
                    .build()
                    .map_err(|e| RelayError::BadSdp(format!("TCP candidate {addr}: {e}")))?;
                rtc.add_local_candidate(candidate);
            }
            let answer = rtc
                .sdp_api()
                .accept_offer(offer)
                .map_err(|e| RelayError::BadSdp(format!("cannot negotiate the offer: {e}")))?;
            Ok::<_, RelayError>((rtc, answer.to_sdp_string()))
        }));
        match negotiated {
            Ok(result) => result,
            Err(_) => Err(RelayError::BadSdp(
                "the SDP offer could not be negotiated".to_string(),
            )),
        }
    }
}

/// A fresh strong entity tag.
fn new_etag() -> String {
    format!("\"{}\"", &random_hex()[..16])
}

fn random_hex() -> String {
    let n: u128 = rand::rng().random();
    format!("{n:032x}")
}

/// Names a session from the HTTP side.
#[derive(Debug)]
struct SessionRef {
    role: OfferRole,
    stream: String,
    session: String,
}

impl SessionRef {
    fn new(role: OfferRole, stream: &str, session: &str) -> SessionRef {
        SessionRef {
            role,
            stream: stream.to_string(),
            session: session.to_string(),
        }
    }
}

struct Prepared {
    session: String,
    role: OfferRole,
    stream: String,
    rtc: Box<Rtc>,
    summary: OfferSummary,
    offer: String,
    etag: String,
    /// A viewer built with bandwidth estimation.
    estimated: bool,
}

enum Command {
    Adopt {
        prepared: Box<Prepared>,
        reply: oneshot::Sender<Result<(), RelayError>>,
    },
    End {
        key: SessionRef,
        reply: oneshot::Sender<bool>,
    },
    Exists {
        key: SessionRef,
        reply: oneshot::Sender<bool>,
    },
    Patch {
        key: SessionRef,
        if_match: Option<String>,
        fragment: Box<Fragment>,
        reply: oneshot::Sender<Result<PatchOutcome, RelayError>>,
    },
    Stats {
        reply: oneshot::Sender<RelayStats>,
    },
    /// Sets (`Some`) or reads (`None`) a viewer's layer preference.
    SetLayer {
        key: SessionRef,
        choice: Option<LayerChoice>,
        reply: oneshot::Sender<Result<LayerStatus, RelayError>>,
    },
    Shutdown,
}

/// A peer's key inside the driver; a viewer's [`ViewerId`] is its key.
type Key = u64;

struct Peer {
    rtc: Box<Rtc>,
    session: String,
    stream: Arc<str>,
    role: Role,
    /// When the `Rtc` next wants `Input::Timeout`.
    timeout: Instant,
    /// The time of this peer's one live entry in `Driver::timers` (older entries are
    /// stale and skipped).
    timer_at: Instant,
    created: Instant,
    connected: bool,
    disconnected_since: Option<Instant>,
    /// Since when an ICE restart waits for ICE to connect again.
    restarting_since: Option<Instant>,
    dead: bool,
    /// The offer as last accepted (the base of an ICE restart).
    offer: String,
    /// The remote `ice-ufrag`/`ice-pwd` of that offer.
    remote_creds: Option<(String, String)>,
    /// The session's entity tag (changes at an ICE restart).
    etag: String,
}

enum Role {
    Publisher(Publisher),
    Viewer(Viewer),
}

struct Publisher {
    /// mid → kind, for the sections that carry media.
    kinds: HashMap<Mid, MediaKind>,
    /// The video mid (one video track per publisher).
    video_mid: Option<Mid>,
    /// Simulcast RIDs of the video mid with their layer.
    rid_layers: Vec<(Rid, LayerId)>,
    /// SSRC → (kind, layer), learned from `StreamRx` on first sight.
    sources: HashMap<Ssrc, Option<(MediaKind, LayerId)>>,
    /// Payload type → codec.
    codecs: HashMap<u8, Codec>,
}

struct Viewer {
    joined: bool,
    /// The layer preference (applied at `add_viewer`, then kept in step with the core's).
    preference: ViewerPreference,
    /// The offer's `a=rtpmap` entries per mid (payload type, lower-case codec name).
    offered: HashMap<Mid, Vec<(u8, String)>>,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    /// Publisher payload type → this viewer's payload type.
    pts: HashMap<u8, Pt>,
    /// Per mid: what str0m sent and the NACKs it got (its stats events), for [`StreamStats`].
    egress: HashMap<Mid, Egress>,
    /// Built with bandwidth estimation: its layer follows the estimate (else it has none).
    estimated: bool,
}

/// One viewer mid's egress figures. str0m answers the viewer's NACKs itself (RTX from the
/// `StreamTx` cache) and does not expose resends; they are what it sent beyond our writes.
#[derive(Debug, Default, Clone, Copy)]
struct Egress {
    /// Packets written to str0m (`write_rtp`).
    written: u64,
    /// `written` when str0m's last `MediaEgressStats` came.
    written_at_report: u64,
    /// str0m: RTP packets sent, retransmissions included (last report).
    sent: u64,
    /// str0m: RTCP NACK feedback messages received (last report).
    nacks: u64,
}

impl Egress {
    /// Retransmissions as of the last report (packets still queued in str0m's pacer at
    /// that moment make this an underestimate, never an overestimate).
    fn resends(&self) -> u64 {
        self.sent.saturating_sub(self.written_at_report)
    }
}

struct Stream {
    forwarder: StreamForwarder,
    publisher: Option<Key>,
    /// The publisher's negotiated payload parameters, for the viewers' PT maps.
    params: Vec<PublisherCodec>,
    viewers: HashSet<Key>,
    /// `stream_live` was reported for the current publisher.
    live: bool,
    /// Viewers whose ICE and DTLS are up (what `viewer_count` reports).
    connected_viewers: usize,
    /// The current publisher's recording (`[relay] record`), from live to its end.
    recording: Option<Recording>,
}

struct Driver {
    shared: Arc<Shared>,
    destination: SocketAddr,
    peers: HashMap<Key, Peer>,
    sessions: HashMap<String, Key>,
    by_addr: HashMap<SocketAddr, Key>,
    streams: HashMap<Arc<str>, Stream>,
    next_key: Key,
    dirty: HashSet<Key>,
    forwards: Vec<Forward>,
    counts: ViewerCounts,
    reports: Vec<(Arc<str>, usize)>,
    /// The destination of every ICE-TCP frame (the TCP candidate; see UDP's).
    tcp_destination: Option<SocketAddr>,
    /// Open ICE-TCP connections.
    tcp: HashMap<u64, TcpConn>,
    /// Remote address → connection, for `Transmit`s with `Protocol::Tcp`.
    tcp_by_source: HashMap<SocketAddr, u64>,
    /// Recordings completing their files on their writer threads (joined at shutdown).
    finishing_recordings: Vec<std::thread::JoinHandle<()>>,
    /// Peers' timeouts, soonest first: `(time, key)`, at most `MAX_SLEEP` ahead; an entry
    /// whose time is not its peer's `timer_at` is stale. Only due peers are visited.
    timers: BinaryHeap<Reverse<(Instant, Key)>>,
    /// Peers to feed `Input::Timeout` in this turn whatever their timeout (a keyframe
    /// request str0m 0.24 only sends from `handle_timeout`).
    kicked: Vec<Key>,
    /// A peer was found dead: run `lifecycle` in this turn.
    reap: bool,
    /// When `lifecycle` last ran.
    lifecycle_at: Instant,
    /// Counted on this task, published to `shared.metrics` once per loop turn.
    counters: DriverCounters,
    /// UDP datagrams of this loop turn, sent with `sendmmsg` (full batch, end of turn).
    out: SendBatch,
}

/// One ICE-TCP connection as the driver sees it.
struct TcpConn {
    source: SocketAddr,
    /// Framed writes; dropping it closes the connection.
    writer: mpsc::Sender<Vec<u8>>,
    /// The peer whose `Rtc` accepted its first packet.
    peer: Option<Key>,
    opened: Instant,
}

enum Wake {
    Datagram(io::Result<(usize, SocketAddr)>),
    Command(Option<Command>),
    Tcp(Option<TcpEvent>),
    Timer,
}

async fn recv_tcp(rx: &mut Option<mpsc::Receiver<TcpEvent>>) -> Option<TcpEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn run(
        mut self,
        socket: UdpSocket,
        mut rx: mpsc::Receiver<Command>,
        mut tcp_rx: Option<mpsc::Receiver<TcpEvent>>,
    ) {
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let now = Instant::now();
            self.drive(now, &socket);
            self.flush(&socket);
            self.counters.loop_turns += 1;
            self.shared.metrics.publish(&self.counters);
            let deadline = self.next_deadline(now);
            let wake = tokio::select! {
                r = socket.recv_from(&mut buf) => Wake::Datagram(r),
                c = rx.recv() => Wake::Command(c),
                e = recv_tcp(&mut tcp_rx) => Wake::Tcp(e),
                _ = tokio::time::sleep_until(deadline.into()) => Wake::Timer,
            };
            match wake {
                Wake::Datagram(Ok((n, source))) => {
                    let now = Instant::now();
                    self.receive(now, &buf[..n], source, &socket);
                    let mut batch = 1;
                    while batch < RECV_BATCH {
                        match socket.try_recv_from(&mut buf) {
                            Ok((n, source)) => self.receive(now, &buf[..n], source, &socket),
                            Err(_) => break,
                        }
                        batch += 1;
                    }
                    self.counters.receive_batches += 1;
                    self.counters.largest_receive_batch =
                        self.counters.largest_receive_batch.max(batch as u64);
                }
                Wake::Datagram(Err(e)) => {
                    // ICMP errors surface here on some systems (e.g. a peer's port closed).
                    tracing::debug!(error = %e, "relay: UDP receive error");
                }
                Wake::Command(None) | Wake::Command(Some(Command::Shutdown)) => break,
                Wake::Command(Some(c)) => self.command(Instant::now(), c),
                Wake::Tcp(Some(event)) => self.tcp_event(Instant::now(), event, &socket),
                Wake::Tcp(None) => tcp_rx = None,
                Wake::Timer => {}
            }
        }
        self.tcp.clear();
        self.tcp_by_source.clear();
        let now = Instant::now();
        let keys: Vec<Key> = self.peers.keys().copied().collect();
        for key in keys {
            self.remove_peer(now, key, "relay stopped");
        }
        // Recordings complete their files before the driver ends (and `shutdown` returns).
        let finishing = std::mem::take(&mut self.finishing_recordings);
        let _ =
            tokio::task::spawn_blocking(move || finishing.into_iter().for_each(|t| drop(t.join())))
                .await;
        self.flush(&socket);
        self.shared.metrics.publish(&self.counters);
        tracing::info!("relay stopped");
    }

    /// Sends the datagrams queued in this loop turn.
    fn flush(&mut self, socket: &UdpSocket) {
        if self.out.is_empty() {
            return;
        }
        let done = self.out.flush(socket);
        self.counters.add_flushed(done);
    }

    fn next_deadline(&self, now: Instant) -> Instant {
        let mut deadline = now + MAX_SLEEP;
        if !self.kicked.is_empty() || !self.dirty.is_empty() {
            return now;
        }
        if let Some(Reverse((t, _))) = self.timers.peek() {
            deadline = deadline.min(*t);
        }
        for stream in self.streams.values() {
            if let Some(t) = stream.forwarder.poll_timeout() {
                deadline = deadline.min(t);
            }
        }
        if let Some(t) = self.counts.poll_timeout() {
            deadline = deadline.min(t);
        }
        deadline.max(now)
    }

    /// An ICE-TCP connection opened, sent a frame, or closed.
    fn tcp_event(&mut self, now: Instant, event: TcpEvent, socket: &UdpSocket) {
        match event {
            TcpEvent::Open {
                conn,
                source,
                local,
                writer,
            } => {
                tracing::trace!(%source, %local, "relay: ICE-TCP connection");
                self.tcp.insert(
                    conn,
                    TcpConn {
                        source,
                        writer,
                        peer: None,
                        opened: now,
                    },
                );
            }
            TcpEvent::Data { conn, data } => {
                let Some(destination) = self.tcp_destination else {
                    return;
                };
                let Some(c) = self.tcp.get(&conn) else {
                    return;
                };
                let (source, bound) = (c.source, c.peer);
                let Ok(contents) = data.as_slice().try_into() else {
                    return;
                };
                let input = Input::Receive(
                    now,
                    Receive {
                        proto: Protocol::Tcp,
                        source,
                        destination,
                        contents,
                    },
                );
                let Some(key) = self.demux(&input, bound) else {
                    tracing::trace!(%source, "relay: no peer accepts the TCP frame");
                    return;
                };
                if bound != Some(key) {
                    if let Some(c) = self.tcp.get_mut(&conn) {
                        c.peer = Some(key);
                    }
                    self.tcp_by_source.insert(source, conn);
                }
                self.input(now, key, input, socket);
            }
            TcpEvent::Closed { conn } => self.close_tcp(conn),
        }
    }

    fn close_tcp(&mut self, conn: u64) {
        if let Some(c) = self.tcp.remove(&conn) {
            if self.tcp_by_source.get(&c.source) == Some(&conn) {
                self.tcp_by_source.remove(&c.source);
            }
        }
    }

    /// The peer for an input: the one it is bound to if that one accepts it, else the first
    /// that does.
    fn demux(&self, input: &Input<'_>, bound: Option<Key>) -> Option<Key> {
        bound
            .filter(|k| self.peers.get(k).is_some_and(|p| p.rtc.accepts(input)))
            .or_else(|| {
                self.peers
                    .iter()
                    .find(|(_, p)| p.rtc.accepts(input))
                    .map(|(k, _)| *k)
            })
    }

    /// Feeds one input to a peer and polls it at once.
    fn input(&mut self, now: Instant, key: Key, input: Input<'_>, socket: &UdpSocket) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(session = %peer.session, error = %e, "relay: input refused");
            peer.dead = true;
        }
        // In RTP mode str0m holds ONE pending `RtpPacket` per `Rtc`: a second datagram fed
        // before `poll_output` overwrites the first. Poll right away, before the next input.
        self.poll_peer(now, key, socket);
    }

    /// One datagram: to the peer whose `Rtc` accepts it.
    fn receive(&mut self, now: Instant, data: &[u8], source: SocketAddr, socket: &UdpSocket) {
        self.counters.datagrams_in += 1;
        self.counters.bytes_in += data.len() as u64;
        let Ok(contents) = data.try_into() else {
            self.counters.datagrams_unclaimed += 1;
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.destination,
                contents,
            },
        );
        let bound = self.by_addr.get(&source).copied();
        let Some(key) = self.demux(&input, bound) else {
            tracing::trace!(%source, "relay: no peer accepts the datagram");
            self.counters.datagrams_unclaimed += 1;
            return;
        };
        if bound != Some(key) {
            self.by_addr.insert(source, key);
        }
        self.input(now, key, input, socket);
    }

    /// Timeouts, polling, forwarding, keyframe requests, teardown — until nothing is left.
    fn drive(&mut self, now: Instant, socket: &UdpSocket) {
        // Due timers only: no scan of every peer (hundreds of viewers, thousands of turns a
        // second).
        while let Some(&Reverse((at, key))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if peer.timer_at != at {
                continue;
            }
            if peer.timeout > now {
                // An entry capped at MAX_SLEEP: the peer's own timeout is later.
                let next = peer.timeout.min(now + MAX_SLEEP);
                peer.timer_at = next;
                self.timers.push(Reverse((next, key)));
                continue;
            }
            self.kicked.push(key);
        }
        let names: Vec<Arc<str>> = self
            .streams
            .iter()
            .filter(|(_, s)| s.forwarder.poll_timeout().is_some_and(|t| t <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            if let Some(stream) = self.streams.get_mut(&name) {
                stream.forwarder.handle_timeout(now);
            }
            self.keyframe_requests(&name);
        }
        // Polling a publisher makes viewers dirty (forwards) and polling a viewer can make
        // the publisher dirty (keyframe requests): repeat until quiet. Bounded, because
        // str0m only emits events for input it was given.
        let mut rounds = 0;
        while (!self.dirty.is_empty() || !self.kicked.is_empty()) && rounds < 8 {
            rounds += 1;
            for key in std::mem::take(&mut self.kicked) {
                let Some(peer) = self.peers.get_mut(&key) else {
                    continue;
                };
                if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!(session = %peer.session, error = %e, "relay: timeout refused");
                    peer.dead = true;
                }
                // Until the poll below says when next: a fallback entry, so the peer is
                // never without one.
                peer.timeout = now + MAX_SLEEP;
                peer.timer_at = peer.timeout;
                self.timers.push(Reverse((peer.timeout, key)));
                self.counters.str0m_timeouts += 1;
                self.dirty.insert(key);
            }
            let dirty: Vec<Key> = self.dirty.drain().collect();
            for key in dirty {
                self.poll_peer(now, key, socket);
            }
        }
        if self.reap || now.saturating_duration_since(self.lifecycle_at) >= LIFECYCLE_INTERVAL {
            self.reap = false;
            self.lifecycle_at = now;
            self.lifecycle(now);
        }
        self.counts.due(now, &mut self.reports);
        for (name, viewers) in self.reports.drain(..) {
            self.shared.hooks.events.viewer_count(&name, viewers);
        }
    }

    fn poll_peer(&mut self, now: Instant, key: Key, socket: &UdpSocket) {
        let Driver {
            peers,
            streams,
            forwards,
            tcp,
            tcp_by_source,
            counters,
            out,
            timers,
            kicked,
            ..
        } = self;
        let Some(peer) = peers.get_mut(&key) else {
            return;
        };
        counters.str0m_polls += 1;
        let mut joined = false;
        let mut left = false;
        loop {
            if !peer.rtc.is_alive() {
                peer.dead = true;
                break;
            }
            let output = match peer.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!(session = %peer.session, error = %e, "relay: poll_output failed");
                    peer.dead = true;
                    break;
                }
            };
            match output {
                Output::Timeout(t) => {
                    peer.timeout = t;
                    let at = t.min(now + MAX_SLEEP);
                    if at != peer.timer_at {
                        peer.timer_at = at;
                        timers.push(Reverse((at, key)));
                    }
                    break;
                }
                Output::Transmit(t) if t.proto == Protocol::Tcp => {
                    let conn = tcp_by_source.get(&t.destination).and_then(|c| tcp.get(c));
                    let framed = tcp::frame(&t.contents);
                    if let (Some(conn), Some(framed)) = (conn, framed) {
                        if conn.writer.try_send(framed).is_err() {
                            tracing::trace!(to = %t.destination, "relay: TCP send dropped");
                            counters.tcp_frames_dropped += 1;
                        }
                    }
                }
                Output::Transmit(t) => {
                    out.push(t.destination, t.contents.into());
                    if out.is_full() {
                        counters.add_flushed(out.flush(socket));
                    }
                }
                Output::Event(event) => {
                    counters.str0m_events += 1;
                    let stream = streams.get_mut(&peer.stream);
                    match event {
                        Event::Connected => {
                            peer.connected = true;
                            joined = true;
                            tracing::debug!(session = %peer.session, stream = %peer.stream, "relay: peer connected");
                        }
                        Event::IceConnectionStateChange(state) => match state {
                            IceConnectionState::Disconnected => {
                                peer.disconnected_since.get_or_insert(now);
                            }
                            IceConnectionState::Connected | IceConnectionState::Completed => {
                                peer.disconnected_since = None;
                                peer.restarting_since = None;
                            }
                            _ => {}
                        },
                        Event::Closed => {
                            left = true;
                        }
                        Event::RtpPacket(packet) => {
                            counters.rtp_received += 1;
                            if let (Role::Publisher(p), Some(stream)) = (&mut peer.role, stream) {
                                if let Some(inbound) = inbound_packet(p, &mut peer.rtc, packet) {
                                    if let Some(recording) = &mut stream.recording {
                                        recording.offer(now, &inbound);
                                        if recording.take_keyframe_request() {
                                            recording_keyframe(p, &mut peer.rtc, recording);
                                            // Sent with the next timeout (see keyframe_requests).
                                            kicked.push(key);
                                        }
                                    }
                                    stream
                                        .forwarder
                                        .handle_publisher_packet(now, &inbound, forwards);
                                }
                            }
                        }
                        Event::StreamPaused(paused) => {
                            if let (Role::Publisher(p), Some(stream)) = (&peer.role, stream) {
                                if let Some(&kind) = p.kinds.get(&paused.mid) {
                                    let layer = p.layer_of(kind, paused.rid);
                                    if let Some(layer) = layer {
                                        stream.forwarder.handle_publisher_paused(
                                            now,
                                            kind,
                                            layer,
                                            paused.paused,
                                        );
                                    }
                                }
                            }
                        }
                        Event::KeyframeRequest(request) => {
                            if let (Role::Viewer(v), Some(stream)) = (&peer.role, stream) {
                                if v.joined && v.video_mid == Some(request.mid) {
                                    let kind = match request.kind {
                                        KeyframeRequestKind::Fir => KeyframeKind::Fir,
                                        _ => KeyframeKind::Pli,
                                    };
                                    let _ = stream.forwarder.handle_viewer_keyframe_request(
                                        now,
                                        ViewerId(key),
                                        kind,
                                    );
                                }
                            }
                        }
                        Event::MediaEgressStats(s) => {
                            if let Role::Viewer(v) = &mut peer.role {
                                let e = v.egress.entry(s.mid).or_default();
                                e.sent = s.packets;
                                e.nacks = s.nacks;
                                e.written_at_report = e.written;
                            }
                        }
                        Event::EgressBitrateEstimate(bwe) => {
                            if let (Role::Viewer(v), Some(stream)) = (&peer.role, stream) {
                                let estimate = match bwe {
                                    BweKind::Twcc { estimate, .. } => Some(estimate),
                                    BweKind::Remb { estimate, .. } => Some(estimate),
                                    #[allow(unreachable_patterns)]
                                    _ => None,
                                };
                                if let (true, Some(e)) = (v.joined, estimate) {
                                    let _ = stream.forwarder.set_viewer_estimate(
                                        now,
                                        ViewerId(key),
                                        e.as_u64(),
                                    );
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        let stream_name = peer.stream.clone();
        if left {
            peer.dead = true;
        }
        if peer.dead {
            self.reap = true;
        }
        if joined {
            self.peer_connected(now, key);
        }
        self.write_forwards();
        self.keyframe_requests(&stream_name);
    }

    /// A peer's ICE and DTLS are up: a publisher makes the stream live; a viewer starts
    /// receiving (and asks for a keyframe).
    fn peer_connected(&mut self, now: Instant, key: Key) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(stream) = self.streams.get_mut(&peer.stream) else {
            return;
        };
        let viewer = match &mut peer.role {
            Role::Viewer(viewer) if !viewer.joined => viewer,
            Role::Viewer(_) => return,
            Role::Publisher(_) => {
                if stream.publisher == Some(key) && !stream.live {
                    stream.live = true;
                    let config = &self.shared.config;
                    stream.recording = start_recording(config, &peer.stream, &stream.params, now);
                    self.shared.hooks.events.stream_live(&peer.stream);
                }
                return;
            }
        };
        let mut rng = rand::rng();
        let options = ViewerOptions {
            preference: viewer.preference,
            initial_estimate_bps: viewer
                .estimated
                .then_some(self.shared.config.initial_viewer_bitrate_bps),
            audio: RtpBase {
                // Below 2^15 so the extended numbers stay far from a roll-over at the start.
                seq: rng.random_range(0..0x8000),
                timestamp: rng.random(),
            },
            video: RtpBase {
                seq: rng.random_range(0..0x8000),
                timestamp: rng.random(),
            },
        };
        match stream.forwarder.add_viewer(now, ViewerId(key), options) {
            Ok(()) => {
                viewer.joined = true;
                stream.connected_viewers += 1;
                if let Some(n) = self
                    .counts
                    .changed(now, &peer.stream, stream.connected_viewers)
                {
                    self.shared.hooks.events.viewer_count(&peer.stream, n);
                }
            }
            Err(e) => tracing::warn!(error = ?e, "relay: add_viewer failed"),
        }
        let name = peer.stream.clone();
        self.keyframe_requests(&name);
    }

    /// Each [`Forward`] → the viewer's `StreamTx::write_rtp`.
    fn write_forwards(&mut self) {
        for f in self.forwards.drain(..) {
            let key = f.viewer.0;
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let Role::Viewer(viewer) = &mut peer.role else {
                continue;
            };
            let mid = match f.kind {
                MediaKind::Audio => viewer.audio_mid,
                MediaKind::Video => viewer.video_mid,
            };
            let (Some(mid), Some(&pt)) = (mid, viewer.pts.get(&f.payload_type)) else {
                continue;
            };
            let mut api = peer.rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(mid, None) else {
                continue;
            };
            let patch = f.vp8.and_then(|fields| vp8_patch(&f.payload, fields));
            let payload_len = f.payload.len() as u64;
            let mut write = RtpWrite::new(
                pt,
                SeqNo::from(f.seq),
                f.timestamp,
                f.received_at,
                f.payload,
            )
            .marker(f.marker)
            .nackable(true);
            if let Some(patch) = patch {
                write = write.vp8_patch(patch);
            }
            tx.write_rtp(write);
            self.counters.rtp_forwarded += 1;
            self.counters.rtp_forwarded_bytes += payload_len;
            viewer.egress.entry(mid).or_default().written += 1;
            self.dirty.insert(key);
        }
    }

    /// The core's keyframe requests → the publisher's `StreamRx::request_keyframe`.
    fn keyframe_requests(&mut self, stream_name: &Arc<str>) {
        let Some(stream) = self.streams.get_mut(stream_name) else {
            return;
        };
        while let Some(request) = stream.forwarder.poll_keyframe_request() {
            let Some(key) = stream.publisher else {
                continue;
            };
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let Role::Publisher(p) = &peer.role else {
                continue;
            };
            let Some(mid) = p.video_mid else {
                continue;
            };
            let rid = p
                .rid_layers
                .iter()
                .find(|(_, l)| *l == request.layer)
                .map(|(r, _)| *r);
            let kind = match request.kind {
                KeyframeKind::Pli => KeyframeRequestKind::Pli,
                KeyframeKind::Fir => KeyframeRequestKind::Fir,
            };
            if let Some(rx) = peer.rtc.direct_api().stream_rx_by_mid(mid, rid) {
                tracing::debug!(stream = %stream_name, ?rid, ?kind, "relay: keyframe request");
                rx.request_keyframe(kind);
                // str0m 0.24 builds the PLI/FIR in its next `handle_timeout` (up to the TWCC
                // interval, 50 ms, or an RTCP interval away). A join waits on it (R2): make
                // `drive` feed it `Input::Timeout` at once. 0.25 does this itself (#1081).
                self.kicked.push(key);
            }
        }
    }

    /// Ends peers that died, never connected, or stayed disconnected too long.
    fn lifecycle(&mut self, now: Instant) {
        let connect = self.shared.config.connect_timeout();
        let grace = self.shared.config.disconnect_grace();
        let ended: Vec<(Key, &'static str)> = self
            .peers
            .iter()
            .filter_map(|(key, p)| {
                let why = if p.dead || !p.rtc.is_alive() {
                    "closed"
                } else if !p.connected && now.saturating_duration_since(p.created) > connect {
                    "ICE did not connect in time"
                } else if p
                    .disconnected_since
                    .is_some_and(|t| now.saturating_duration_since(t) > grace)
                {
                    "ICE disconnected"
                } else if p
                    .restarting_since
                    .is_some_and(|t| now.saturating_duration_since(t) > connect)
                {
                    "ICE did not reconnect in time after an ICE restart"
                } else {
                    return None;
                };
                Some((*key, why))
            })
            .collect();
        for (key, why) in ended {
            self.remove_peer(now, key, why);
        }
        // ICE-TCP connections no peer claimed within the connect timeout close.
        let stale: Vec<u64> = self
            .tcp
            .iter()
            .filter(|(_, c)| c.peer.is_none() && now.saturating_duration_since(c.opened) > connect)
            .map(|(conn, _)| *conn)
            .collect();
        for conn in stale {
            self.close_tcp(conn);
        }
    }

    /// Removes a peer and every trace of it: maps, the forwarder's viewer or publisher
    /// state, and the stream itself when nobody is left.
    fn remove_peer(&mut self, now: Instant, key: Key, why: &str) {
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        peer.rtc.disconnect();
        self.sessions.remove(&peer.session);
        self.by_addr.retain(|_, k| *k != key);
        self.dirty.remove(&key);
        // Its ICE-TCP connections close (their writers are dropped).
        self.tcp.retain(|_, c| c.peer != Some(key));
        let tcp = &self.tcp;
        self.tcp_by_source.retain(|_, conn| tcp.contains_key(conn));
        tracing::info!(session = %peer.session, stream = %peer.stream, why, "relay: session ended");
        let Some(stream) = self.streams.get_mut(&peer.stream) else {
            return;
        };
        let events = &self.shared.hooks.events;
        match peer.role {
            Role::Publisher(_) => {
                if stream.publisher == Some(key) {
                    stream.publisher = None;
                    stream.params.clear();
                    self.shared.single_layer_streams().remove(&*peer.stream);
                    stream.forwarder.publisher_left(now);
                    if let Some(recording) = stream.recording.take() {
                        self.finishing_recordings.retain(|t| !t.is_finished());
                        self.finishing_recordings.push(recording.finish());
                    }
                    if stream.live {
                        stream.live = false;
                        if let Some(n) = self.counts.flush(now, &peer.stream) {
                            events.viewer_count(&peer.stream, n);
                        }
                        events.stream_ended(&peer.stream);
                    }
                }
            }
            Role::Viewer(viewer) => {
                stream.viewers.remove(&key);
                stream.forwarder.remove_viewer(ViewerId(key));
                if viewer.joined {
                    stream.connected_viewers = stream.connected_viewers.saturating_sub(1);
                    if let Some(n) =
                        self.counts
                            .changed(now, &peer.stream, stream.connected_viewers)
                    {
                        events.viewer_count(&peer.stream, n);
                    }
                }
            }
        }
        if stream.publisher.is_none() && stream.viewers.is_empty() {
            self.streams.remove(&peer.stream);
            if let Some(n) = self.counts.flush(now, &peer.stream) {
                events.viewer_count(&peer.stream, n);
            }
            self.counts.remove(&peer.stream);
        }
    }

    /// Trickle ICE or ICE restart on a live session (see [`RelayHandle::patch`]).
    fn patch(
        &mut self,
        now: Instant,
        key: &SessionRef,
        if_match: Option<&str>,
        fragment: Fragment,
    ) -> Result<PatchOutcome, RelayError> {
        let k = self.find(key).ok_or(RelayError::UnknownSession)?;
        let peer = self.peers.get_mut(&k).ok_or(RelayError::UnknownSession)?;
        if if_match.is_some_and(|h| !sdpfrag::if_match(h, &peer.etag)) {
            return Err(RelayError::PreconditionFailed);
        }
        let restart = match (&fragment.ufrag, &fragment.pwd, &peer.remote_creds) {
            (Some(u), Some(p), Some((cu, cp))) => u != cu || p != cp,
            _ => false,
        };
        let mut outcome = None;
        if restart {
            let (ufrag, pwd) = (
                fragment.ufrag.clone().unwrap_or_default(),
                fragment.pwd.clone().unwrap_or_default(),
            );
            let offer = sdpfrag::restart_offer(&peer.offer, &ufrag, &pwd);
            let rtc = &mut peer.rtc;
            let accepted = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let sdp = SdpOffer::from_sdp_string(&offer)
                    .map_err(|e| RelayError::BadFragment(format!("ICE restart: {e}")))?;
                rtc.sdp_api()
                    .accept_offer(sdp)
                    .map_err(|e| RelayError::BadFragment(format!("ICE restart refused: {e}")))
            }));
            let answer = match accepted {
                Ok(result) => result?,
                Err(_) => {
                    // str0m's state after a panic is unknown: end the session.
                    peer.dead = true;
                    self.dirty.insert(k);
                    return Err(RelayError::BadFragment(
                        "the ICE restart could not be applied; the session ends".to_owned(),
                    ));
                }
            };
            let answer = answer.to_sdp_string();
            peer.offer = offer;
            peer.remote_creds = Some((ufrag, pwd));
            peer.etag = new_etag();
            peer.restarting_since = Some(now);
            tracing::debug!(session = %peer.session, "relay: ICE restart");
            outcome = Some(PatchOutcome::Restarted {
                fragment: sdpfrag::answer_fragment(&answer),
                etag: peer.etag.clone(),
            });
        }
        // Candidates of another generation (an older ufrag) are dropped (RFC 8838 §4).
        let current = peer.remote_creds.as_ref().map(|(u, _)| u.as_str());
        let mut added = 0;
        for c in fragment.candidates {
            if c.ufrag().is_some_and(|u| Some(u) != current) {
                continue;
            }
            peer.rtc.add_remote_candidate(c);
            added += 1;
        }
        self.dirty.insert(k);
        Ok(outcome.unwrap_or(PatchOutcome::Trickled { added }))
    }

    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Adopt { prepared, reply } => {
                let result = self.adopt(now, *prepared);
                let _ = reply.send(result);
            }
            Command::End { key, reply } => {
                let found = self.find(&key);
                if let Some(k) = found {
                    self.remove_peer(now, k, "DELETE");
                }
                let _ = reply.send(found.is_some());
            }
            Command::Exists { key, reply } => {
                let _ = reply.send(self.find(&key).is_some());
            }
            Command::Patch {
                key,
                if_match,
                fragment,
                reply,
            } => {
                let result = self.patch(now, &key, if_match.as_deref(), *fragment);
                let _ = reply.send(result);
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.stats());
            }
            Command::SetLayer { key, choice, reply } => {
                let result = self.set_layer(now, &key, choice);
                let _ = reply.send(result);
            }
            Command::Shutdown => {}
        }
    }

    fn find(&self, r: &SessionRef) -> Option<Key> {
        let key = *self.sessions.get(&r.session)?;
        let peer = self.peers.get(&key)?;
        let role_matches = matches!(
            (&peer.role, r.role),
            (Role::Publisher(_), OfferRole::Publish) | (Role::Viewer(_), OfferRole::View)
        );
        (role_matches && *peer.stream == *r.stream).then_some(key)
    }

    /// Applies (`Some`) or reads (`None`) a viewer's layer choice (see
    /// [`RelayHandle::set_layer`]).
    fn set_layer(
        &mut self,
        now: Instant,
        key: &SessionRef,
        choice: Option<LayerChoice>,
    ) -> Result<LayerStatus, RelayError> {
        let k = self.find(key).ok_or(RelayError::UnknownSession)?;
        let name = self
            .peers
            .get(&k)
            .ok_or(RelayError::UnknownSession)?
            .stream
            .clone();
        let stream = self
            .streams
            .get_mut(&name)
            .ok_or(RelayError::UnknownSession)?;
        // The publisher's RIDs, by layer.
        let rids: Vec<(String, LayerId)> = stream
            .publisher
            .and_then(|p| self.peers.get(&p))
            .and_then(|p| match &p.role {
                Role::Publisher(p) => Some(
                    p.rid_layers
                        .iter()
                        .map(|(r, l)| (r.to_string(), *l))
                        .collect(),
                ),
                Role::Viewer(_) => None,
            })
            .unwrap_or_default();
        let Some(Peer {
            role: Role::Viewer(viewer),
            ..
        }) = self.peers.get_mut(&k)
        else {
            return Err(RelayError::UnknownSession);
        };
        if let Some(choice) = choice {
            let by_rid: Vec<(&str, LayerId)> = rids.iter().map(|(r, l)| (r.as_str(), *l)).collect();
            let preference = choice.resolve(&by_rid).ok_or_else(|| {
                RelayError::BadLayer(format!(
                    "the publisher sends no encoding with that RID (it sends: {})",
                    if by_rid.is_empty() {
                        "no simulcast".to_string()
                    } else {
                        rids.iter()
                            .map(|(r, _)| r.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ))
            })?;
            viewer.preference = preference;
            if viewer.joined {
                let _ = stream
                    .forwarder
                    .set_viewer_preference(now, ViewerId(k), preference);
            }
        }
        let status = stream.forwarder.viewer_status(ViewerId(k));
        let available = stream
            .forwarder
            .availability()
            .live()
            .map(|(l, rate)| {
                let rid = rids.iter().find(|(_, rl)| *rl == l).map(|(r, _)| r.clone());
                (l, rid, rate)
            })
            .collect();
        let answer = LayerStatus {
            preference: viewer.preference,
            joined: viewer.joined,
            target: status.and_then(|s| s.target_layer),
            current: status.and_then(|s| s.current_layer),
            estimate_bps: status.and_then(|s| s.estimate_bps),
            available,
        };
        // A switch may have asked for a keyframe: hand it to the publisher now.
        self.keyframe_requests(&name);
        Ok(answer)
    }

    /// Sums `figure` over the egress of `stream`'s viewers.
    fn viewer_egress(&self, stream: &Stream, figure: impl Fn(&Egress) -> u64) -> u64 {
        let viewers = stream.viewers.iter().filter_map(|k| self.peers.get(k));
        viewers
            .filter_map(|p| match &p.role {
                Role::Viewer(v) => Some(v.egress.values().map(&figure).sum::<u64>()),
                Role::Publisher(_) => None,
            })
            .sum()
    }

    fn stats(&self) -> RelayStats {
        let mut streams: Vec<StreamStats> = self
            .streams
            .iter()
            .map(|(name, s)| StreamStats {
                name: name.to_string(),
                has_publisher: s.publisher.is_some(),
                viewer_sessions: s.viewers.len(),
                forwarder_viewers: s.forwarder.viewer_count(),
                counters: s.forwarder.counters(),
                viewer_nacks: self.viewer_egress(s, |e| e.nacks),
                viewer_resends: self.viewer_egress(s, Egress::resends),
            })
            .collect();
        streams.sort_by(|a, b| a.name.cmp(&b.name));
        RelayStats {
            peers: self.peers.len(),
            addresses: self.by_addr.len(),
            tcp_connections: self.tcp.len(),
            streams,
        }
    }

    fn adopt(&mut self, now: Instant, prepared: Prepared) -> Result<(), RelayError> {
        let Prepared {
            session,
            role,
            stream: name,
            rtc,
            summary,
            offer,
            etag,
            estimated,
        } = prepared;
        let config = &self.shared.config;
        let name: Arc<str> = Arc::from(name.as_str());
        let key = self.next_key;
        let peer_role = match role {
            OfferRole::Publish => {
                match self.streams.get(&name) {
                    Some(s) if s.publisher.is_some() => return Err(RelayError::PublisherExists),
                    None if self.streams.len() >= config.max_streams => {
                        return Err(RelayError::AtCapacity(format!(
                            "{} streams are live",
                            self.streams.len()
                        )));
                    }
                    _ => {}
                }
                let publisher = Publisher::new(&rtc, &summary);
                let params = publisher_params(&rtc, &publisher);
                let mut single_layer = self.shared.single_layer_streams();
                if publisher.rid_layers.len() <= 1 {
                    single_layer.insert(name.to_string());
                } else {
                    single_layer.remove(&*name);
                }
                drop(single_layer);
                let stream = self.streams.entry(name.clone()).or_insert_with(Stream::new);
                stream.publisher = Some(key);
                stream.params = params;
                // Viewers that stayed through a publisher change map to the new PTs.
                for viewer_key in stream.viewers.iter() {
                    if let Some(peer) = self.peers.get_mut(viewer_key) {
                        if let Role::Viewer(v) = &mut peer.role {
                            v.pts = viewer_pts(&peer.rtc, v, &stream.params);
                        }
                    }
                }
                Role::Publisher(publisher)
            }
            OfferRole::View => {
                let Some(stream) = self.streams.get_mut(&name) else {
                    return Err(RelayError::NoPublisher);
                };
                if stream.publisher.is_none() {
                    return Err(RelayError::NoPublisher);
                }
                let mut viewer = Viewer::new(&rtc, &summary, estimated);
                viewer.pts = viewer_pts(&rtc, &viewer, &stream.params);
                // The viewer must take at least one codec the publisher actually sends.
                let takes_one = stream
                    .params
                    .iter()
                    .any(|c| c.primary && viewer.pts.contains_key(&*c.params.pt()));
                if !takes_one {
                    return Err(RelayError::UnsupportedCodec(format!(
                        "the offer accepts none of the publisher's codecs ({})",
                        codec_list(&stream.params, None)
                    )));
                }
                // And for each kind it asks for that the publisher sends, one of those
                // codecs: a video section that can never be fed would play as a black
                // picture (the relay does not transcode). A player that wants audio only
                // offers no video section.
                for (kind, mid, name) in [
                    (MediaKind::Audio, viewer.audio_mid, "audio"),
                    (MediaKind::Video, viewer.video_mid, "video"),
                ] {
                    let mut sent = stream
                        .params
                        .iter()
                        .filter(|c| c.primary && c.kind == kind)
                        .peekable();
                    if mid.is_none() || sent.peek().is_none() {
                        continue;
                    }
                    if !sent.any(|c| viewer.pts.contains_key(&*c.params.pt())) {
                        return Err(RelayError::UnsupportedCodec(format!(
                            "the offer's {name} section accepts none of the publisher's \
                             {name} codecs ({}); offer one of them, or no {name} section",
                            codec_list(&stream.params, Some(kind))
                        )));
                    }
                }
                if stream.viewers.len() >= config.max_viewers_per_stream {
                    return Err(RelayError::AtCapacity(format!(
                        "the stream has {} viewers",
                        stream.viewers.len()
                    )));
                }
                stream.viewers.insert(key);
                Role::Viewer(viewer)
            }
        };
        self.next_key += 1;
        self.sessions.insert(session.clone(), key);
        self.peers.insert(
            key,
            Peer {
                rtc,
                session,
                stream: name,
                role: peer_role,
                timeout: now,
                timer_at: now,
                created: now,
                connected: false,
                disconnected_since: None,
                restarting_since: None,
                dead: false,
                remote_creds: sdpfrag::ice_credentials(&offer),
                offer,
                etag,
            },
        );
        self.timers.push(Reverse((now, key)));
        self.dirty.insert(key);
        Ok(())
    }
}

impl Stream {
    fn new() -> Stream {
        Stream {
            forwarder: StreamForwarder::new(forwarder_config()),
            publisher: None,
            params: Vec::new(),
            viewers: HashSet::new(),
            live: false,
            connected_viewers: 0,
            recording: None,
        }
    }
}

/// The core's tuning in the relay: the defaults, plus the fast start (R2): an automatic
/// viewer starts on the lowest live layer (the smallest keyframe: encoded, paced and decoded
/// soonest) and moves to its estimate's layer after a second.
fn forwarder_config() -> ForwarderConfig {
    let mut config = ForwarderConfig::default();
    config.selector.start_lowest = Some(Duration::from_secs(1));
    // R2: a join right after a keyframe would otherwise wait for the keyframe throttle.
    config.join_from_cache = Some(Duration::from_millis(500));
    config
}

fn kind_of(kind: SectionKind) -> Option<MediaKind> {
    match kind {
        SectionKind::Audio => Some(MediaKind::Audio),
        SectionKind::Video => Some(MediaKind::Video),
        SectionKind::Other => None,
    }
}

fn str_kind(kind: StrKind) -> MediaKind {
    if kind == StrKind::Audio {
        MediaKind::Audio
    } else {
        MediaKind::Video
    }
}

/// The core's VP8 descriptor fields for one viewer → str0m's `Vp8Patch`, applied when str0m
/// serializes the packet (and its RTX resends): same length, no copy of the shared payload.
/// The core parses descriptors exactly as str0m does, so `None` (the payload is sent as it
/// is) means a bug, logged.
fn vp8_patch(payload: &[u8], fields: Vp8Fields) -> Option<Vp8Patch> {
    let descriptor = Vp8Descriptor::parse(payload).ok()?;
    let mut patch = descriptor.patch();
    if let Some(v) = fields.picture_id {
        patch = patch.picture_id(v);
    }
    if let Some(v) = fields.tl0_pic_idx {
        patch = patch.tl0_pic_idx(v);
    }
    if let Some(v) = fields.key_idx {
        patch = patch.key_idx(v);
    }
    match patch.build() {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %e, ?fields, "relay: VP8 descriptor patch refused");
            None
        }
    }
}

/// The `a=rtpmap` name (lower case) of a codec the relay forwards.
fn codec_name(codec: StrCodec) -> &'static str {
    match codec {
        StrCodec::Opus => "opus",
        StrCodec::Vp8 => "vp8",
        StrCodec::H264 => "h264",
        _ => "",
    }
}

fn codec_of(codec: StrCodec) -> Codec {
    match codec {
        StrCodec::Opus => Codec::Opus,
        StrCodec::Vp8 => Codec::Vp8,
        StrCodec::H264 => Codec::H264,
        _ => Codec::Other,
    }
}

/// The quality rank of a conventional RID name (`q/h/f`, `l/m/h`, `0/1/2`), lowest first.
fn rid_score(rid: &str, all: &[String]) -> u32 {
    let qhf = all.iter().any(|r| r == "q" || r == "f");
    match rid {
        "q" | "l" | "lo" | "low" | "0" => 0,
        "m" | "mid" | "1" => 10,
        "h" if qhf => 10,
        "h" | "f" | "hi" | "high" | "full" | "2" => 20,
        _ => 100,
    }
}

impl Publisher {
    fn new(rtc: &Rtc, summary: &OfferSummary) -> Publisher {
        let mut kinds = HashMap::new();
        let mut video_mid = None;
        let mut rid_layers = Vec::new();
        for section in summary.usable(OfferRole::Publish) {
            let mid = Mid::from(section.mid.as_str());
            let Some(media) = rtc.media(mid) else {
                continue;
            };
            let kind = str_kind(media.kind());
            if kind_of(section.kind) != Some(kind) {
                continue;
            }
            kinds.insert(mid, kind);
            if kind == MediaKind::Video && video_mid.is_none() {
                video_mid = Some(mid);
                let mut rids: Vec<(usize, &String)> =
                    section.simulcast_send.iter().enumerate().collect();
                rids.sort_by_key(|(i, r)| (rid_score(r, &section.simulcast_send), *i));
                rid_layers = rids
                    .into_iter()
                    .take(LayerId::COUNT)
                    .enumerate()
                    .filter_map(|(rank, (_, r))| {
                        Some((Rid::from(r.as_str()), LayerId::new(rank as u8)?))
                    })
                    .collect();
            }
        }
        let mut codecs = HashMap::new();
        for params in rtc.codec_config().params() {
            codecs.insert(*params.pt(), codec_of(params.spec().codec));
        }
        Publisher {
            kinds,
            video_mid,
            rid_layers,
            sources: HashMap::new(),
            codecs,
        }
    }

    fn layer_of(&self, kind: MediaKind, rid: Option<Rid>) -> Option<LayerId> {
        match (kind, rid) {
            (MediaKind::Audio, _) | (MediaKind::Video, None) => Some(LayerId::LOW),
            (MediaKind::Video, Some(rid)) => self
                .rid_layers
                .iter()
                .find(|(r, _)| *r == rid)
                .map(|(_, l)| *l),
        }
    }
}

/// Starts recording a stream that went live when recording is on (`[relay] record`):
/// the publisher's VP8 (its highest live simulcast layer, see `Recording::offer`) and
/// Opus. WebM cannot hold H.264, and the relay does not transcode: such a stream is
/// recorded audio only.
fn start_recording(
    config: &RelayConfig,
    name: &str,
    params: &[PublisherCodec],
    now: Instant,
) -> Option<Recording> {
    let dir = config.recording_target()?;
    let pt_of = |kind: MediaKind, codec: Codec| {
        let found = params
            .iter()
            .find(|c| c.kind == kind && codec_of(c.params.spec().codec) == codec);
        found.map(|c| *c.params.pt())
    };
    let selection = Selection {
        video: pt_of(MediaKind::Video, Codec::Vp8),
        audio: pt_of(MediaKind::Audio, Codec::Opus),
    };
    let sends = params
        .iter()
        .find(|c| c.primary && c.kind == MediaKind::Video);
    if let Some(c) = sends.filter(|c| codec_of(c.params.spec().codec) != Codec::Vp8) {
        let codec = c.params.spec().codec;
        tracing::warn!(
            stream = name,
            ?codec,
            "recording: WebM holds only VP8 video and the relay does not transcode; recording audio only"
        );
    }
    if selection.video.is_none() && selection.audio.is_none() {
        tracing::warn!(
            stream = name,
            "recording: the publisher sends neither VP8 nor Opus; not recording"
        );
        return None;
    }
    match Recording::start(&dir, name, selection, now, std::time::SystemTime::now()) {
        Ok(recording) => Some(recording),
        Err(e) => {
            tracing::error!(stream = name, error = %e, "recording: cannot start the writer");
            None
        }
    }
}

/// The recorder wants a keyframe: a PLI to the publisher's recorded layer.
fn recording_keyframe(p: &Publisher, rtc: &mut Rtc, recording: &Recording) {
    let (Some(mid), Some(layer)) = (p.video_mid, recording.video_layer()) else {
        return;
    };
    let rid = p
        .rid_layers
        .iter()
        .find(|(_, l)| *l == layer)
        .map(|(r, _)| *r);
    if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, rid) {
        rx.request_keyframe(KeyframeRequestKind::Pli);
    }
}

/// The publisher's negotiated payload parameters per kind (its media's remote PTs).
fn publisher_params(rtc: &Rtc, publisher: &Publisher) -> Vec<PublisherCodec> {
    let mut out = Vec::new();
    for (mid, kind) in &publisher.kinds {
        let Some(media) = rtc.media(*mid) else {
            continue;
        };
        let mut primary = true;
        for pt in media.remote_pts() {
            if let Some(p) = rtc.codec_config().find(|p| p.pt() == *pt) {
                if codec_of(p.spec().codec) != Codec::Other {
                    out.push(PublisherCodec {
                        kind: *kind,
                        params: *p,
                        primary,
                    });
                    primary = false;
                }
            }
        }
    }
    out
}

/// One payload type the publisher negotiated.
#[derive(Debug, Clone, Copy)]
struct PublisherCodec {
    kind: MediaKind,
    params: PayloadParams,
    /// The first supported codec of its m-line in the publisher's order: the one senders
    /// (browsers, OBS, webrtc-rs) actually use.
    primary: bool,
}

impl Viewer {
    fn new(rtc: &Rtc, summary: &OfferSummary, estimated: bool) -> Viewer {
        let mut viewer = Viewer {
            estimated,
            joined: false,
            preference: ViewerPreference::Auto,
            offered: HashMap::new(),
            audio_mid: None,
            video_mid: None,
            pts: HashMap::new(),
            egress: HashMap::new(),
        };
        for section in summary.usable(OfferRole::View) {
            let mid = Mid::from(section.mid.as_str());
            let Some(media) = rtc.media(mid) else {
                continue;
            };
            viewer.offered.insert(mid, section.rtpmap.clone());
            match str_kind(media.kind()) {
                MediaKind::Audio if viewer.audio_mid.is_none() => viewer.audio_mid = Some(mid),
                MediaKind::Video if viewer.video_mid.is_none() => viewer.video_mid = Some(mid),
                _ => {}
            }
        }
        viewer
    }
}

/// str0m's standard RTP header extensions but transport-wide sequence numbers (TWCC), for
/// viewers without bandwidth estimation.
fn extensions_without_twcc() -> ExtensionMap {
    let mut map = ExtensionMap::empty();
    for (id, extension) in ExtensionMap::standard().iter() {
        if *extension != Extension::TransportSequenceNumber {
            map.set(id, extension.clone());
        }
    }
    map
}

/// Publisher PT → viewer PT, for every publisher codec the viewer negotiated.
/// The publisher's codecs (of `kind`, or all), for an error message: "H264, Opus".
fn codec_list(params: &[PublisherCodec], kind: Option<MediaKind>) -> String {
    let names: Vec<String> = params
        .iter()
        .filter(|c| c.primary && kind.is_none_or(|k| c.kind == k))
        .map(|c| format!("{:?}", c.params.spec().codec))
        .collect();
    names.join(", ")
}

fn viewer_pts(rtc: &Rtc, viewer: &Viewer, params: &[PublisherCodec]) -> HashMap<u8, Pt> {
    let mut map = HashMap::new();
    for PublisherCodec {
        kind, params: p, ..
    } in params
    {
        let mid = match kind {
            MediaKind::Audio => viewer.audio_mid,
            MediaKind::Video => viewer.video_mid,
        };
        let Some(mid) = mid else {
            continue;
        };
        let Some(media) = rtc.media(mid) else {
            continue;
        };
        let Some(local) = rtc.codec_config().match_params(*p) else {
            continue;
        };
        // str0m answers a recvonly offer with the offerer's payload types; the viewer must
        // have offered this one under the same codec name.
        let name = codec_name(p.spec().codec);
        let offered = viewer
            .offered
            .get(&mid)
            .is_some_and(|m| m.iter().any(|(pt, n)| *pt == *local.pt() && n == name));
        if local.spec().codec == p.spec().codec
            && offered
            && media.remote_pts().contains(&local.pt())
        {
            map.insert(*p.pt(), local.pt());
        }
    }
    map
}

/// str0m's `RtpPacket` → the core's [`InboundPacket`] (kind and layer from the `StreamRx`
/// of the SSRC, codec from the payload type).
fn inbound_packet(p: &mut Publisher, rtc: &mut Rtc, packet: RtpPacket) -> Option<InboundPacket> {
    let ssrc = packet.header.ssrc;
    let source = match p.sources.get(&ssrc) {
        Some(s) => *s,
        None => {
            let found = rtc
                .direct_api()
                .stream_rx(&ssrc)
                .map(|rx| (rx.mid(), rx.rid()));
            let source = found.and_then(|(mid, rid)| {
                let kind = *p.kinds.get(&mid)?;
                Some((kind, p.layer_of(kind, rid)?))
            });
            // Bounded: a publisher has a handful of SSRCs; a hostile one cycling SSRCs is
            // cut off at 64 entries (further unknown SSRCs are looked up each time).
            if p.sources.len() < 64 {
                p.sources.insert(ssrc, source);
            }
            source
        }
    };
    let (kind, layer) = source?;
    let pt = *packet.header.payload_type;
    let codec = p.codecs.get(&pt).copied().unwrap_or(Codec::Other);
    let header = PacketHeader {
        ssrc: *ssrc,
        seq: packet.header.sequence_number,
        timestamp: packet.header.timestamp,
        marker: packet.header.marker,
        payload_type: pt,
    };
    Some(InboundPacket::new(
        kind,
        layer,
        codec,
        header,
        packet.payload,
    ))
}
