//! The `whep-viewers` scenario (R1, relay forwarding cost): `rootcast serve` (its relay on
//! UDP 127.0.0.1 only, announcing only that address), one WHIP publisher sending synthetic
//! VP8 video and Opus audio from pre-built RTP payloads, and N WHEP viewers spread over
//! worker processes (`whep_worker.rs`); every peer is webrtc-rs and gathers only loopback
//! candidates (`webrtc_peer.rs`).
//!
//! With `--targets rootcast,janus` the same publisher and viewers also go through Janus's
//! VideoRoom (`janus.rs`), measured the same way right after rootcast for each viewer count.
//! Janus will not gather on loopback, so such a run first moves into a private network
//! namespace of its own (`netns.rs`); rootcast is measured in there too, on its loopback.
//!
//! Per target, viewer count and round: start the server, connect the publisher, join the
//! viewers at `--join-rate`, wait until every viewer has its first keyframe (or failed), let
//! the stream settle, then measure a window of `--measure-secs`: the server's CPU
//! (`/proc/<pid>/stat`), the packets every viewer received and lost (by sequence number)
//! and the packets the publisher sent. **Forwarded packets are the viewers' received
//! counts** (both tracks, RTX repairs included if any), counted the same way for both
//! servers and checked against published × viewers; rootcast's own count
//! (`GET /relay/metrics`) is reported beside it.
//!
//! Invariants: every phase has a deadline and `--duration` bounds the run (then every child
//! is killed and the program exits with 3); every SDP sent or applied names only candidates
//! of the run's network (loopback, or the namespace's two addresses); the figures of a
//! window come from readings taken at its two ends.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;
use webrtc::api::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp::header::Header;
use webrtc::rtp::packet::Packet;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};

use crate::children;
use crate::coordinator::start_run;
use crate::dialect::Kind;
use crate::histogram::Quantiles;
use crate::janus::{self, Janus};
use crate::netns;
use crate::procfs;
use crate::pump::{self, Events, Fleet as _};
use crate::report;
use crate::targets::{Launch, Target};
use crate::webrtc_peer::{self, PeerNetwork};
use crate::whep_worker::{JoinPlan, Progress, ViewerFigures, ViewerSource, WhepCommand, WhepEvent};
use crate::workers::{self, WorkerProcess};

const STREAM: &str = "r1";

/// A server `whep-viewers` measures.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    /// `rootcast serve`'s relay: WHIP in, WHEP out.
    #[default]
    Rootcast,
    /// Janus's VideoRoom, over Janus's HTTP API (needs root: a network namespace).
    Janus,
}

impl ServerKind {
    fn name(self) -> &'static str {
        match self {
            ServerKind::Rootcast => "rootcast",
            ServerKind::Janus => "janus",
        }
    }
}

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct WhepArgs {
    /// The servers to measure, one after the other for each viewer count and round.
    #[arg(long, value_delimiter = ',', default_value = "rootcast")]
    pub targets: Vec<ServerKind>,
    /// WHEP viewers; a list is a sweep: `50,150,200`.
    #[arg(long, value_delimiter = ',', default_value = "50,150,200")]
    pub viewers: Vec<usize>,
    /// Worker processes (0: one per 50 viewers, at least 2).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Viewers joined per second, all workers together.
    #[arg(long, default_value_t = 25.0)]
    pub join_rate: f64,
    /// Most joins in progress at once, per worker.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Quiet time once every viewer has its first frame, before the window.
    #[arg(long, default_value_t = 2)]
    pub settle_secs: u64,
    /// The measured window.
    #[arg(long, default_value_t = 10)]
    pub measure_secs: u64,
    /// Video frames per second.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// RTP packets per delta frame.
    #[arg(long, default_value_t = 5)]
    pub frame_packets: usize,
    /// RTP packets per keyframe.
    #[arg(long, default_value_t = 15)]
    pub keyframe_packets: usize,
    /// VP8 payload bytes per video packet (with 5 packets a frame at 30 fps, 1,100 bytes
    /// make ≈ 1.3 Mbit/s).
    #[arg(long, default_value_t = 1100)]
    pub packet_bytes: usize,
    /// Opus payload bytes per 20 ms packet (50 a second).
    #[arg(long, default_value_t = 120)]
    pub audio_bytes: usize,
    /// A keyframe at least this often (0: only when the relay asks for one).
    #[arg(long, default_value_t = 0)]
    pub keyframe_interval_secs: u64,
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Hard bound on the whole run, seconds.
    #[arg(long, default_value_t = 900)]
    pub duration: u64,
    #[arg(long, default_value = "loadtest-results-whep")]
    pub out: PathBuf,
    #[arg(long)]
    pub no_pin: bool,
    #[arg(long, default_value_t = 0)]
    pub server_core: u32,
    /// The core of the coordinator (which runs the publisher) and every worker.
    #[arg(long, default_value_t = 1)]
    pub client_core: u32,
    /// The `rootcast` binary (default: next to this one).
    #[arg(long)]
    pub rootcast_bin: Option<PathBuf>,
    /// The `janus` binary (Debian's package: `apt-get install janus`).
    #[arg(long, default_value = "janus")]
    pub janus_bin: PathBuf,
    /// Janus's shared event loops (its `event_loops` setting); 0: its default, a thread
    /// per handle.
    #[arg(long, default_value_t = 0)]
    pub janus_event_loops: u32,
    #[arg(long)]
    pub verbose: bool,
}

/// One target, viewer count and round.
#[derive(Debug, Default, Serialize)]
pub struct WhepMeasurement {
    pub target: ServerKind,
    pub viewers: usize,
    pub round: usize,
    pub workers: usize,
    pub error: Option<String>,
    pub joined: Progress,
    pub join_errors: BTreeMap<String, u64>,
    pub join_secs: f64,
    /// Viewers counted at the window's start.
    pub measured_viewers: u64,
    pub window_secs: f64,
    pub published_video: u64,
    pub published_audio: u64,
    pub published_bits_per_sec: f64,
    pub keyframes_sent: u64,
    pub keyframe_requests: u64,
    /// RTP packets the measured viewers received in the window (video + audio).
    pub forwarded: u64,
    /// published × measured viewers.
    pub expected: u64,
    pub forwarded_per_sec: f64,
    pub server_cpu_secs: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    /// The R1 figure.
    pub forwarded_per_server_cpu_sec: Option<f64>,
    pub server_rss_kib: Option<u64>,
    /// Lost by sequence number (gaps), all measured viewers, both tracks.
    pub lost: u64,
    pub loss_percent: f64,
    /// Per viewer: loss by sequence number, parts per million.
    pub viewer_loss_ppm: Quantiles,
    pub viewers_with_loss: u64,
    /// Per viewer: received ÷ published in the window, the lowest, percent.
    pub lowest_received_percent: f64,
    /// The viewers received less than 90 % of what they should have (the server fell
    /// over or stalled): the round is left out of the medians and listed on its own.
    pub stalled: bool,
    /// All measured viewers, in the window: packets not ahead of their stream's highest
    /// sequence number (duplicates, e.g. retransmissions) and padding-only packets; both
    /// are part of `forwarded`.
    pub late: u64,
    pub padding: u64,
    /// WHEP POST → first keyframe packet, µs, every viewer that got one.
    pub first_keyframe_us: Quantiles,
    /// WHEP POST → ICE and DTLS connected, µs.
    pub connected_us: Quantiles,
    pub loadgen_cpu_secs: f64,
    /// Of one core.
    pub loadgen_cpu_percent: f64,
    pub publisher_process_cpu_percent: f64,
    pub other_cpu_percent: f64,
    /// Whether the load generator was the limit (it used ≥ 90 % of its core, or viewers
    /// received clearly less than was published while it was busy).
    pub loadgen_saturated: bool,
    pub load_average: String,
    /// rootcast's relay's own counters over the window (`GET /relay/metrics`).
    pub relay: Option<RelayWindow>,
    /// Time the server's threads spent runnable but waiting for a CPU in the window
    /// (`/proc/<pid>/task/*/schedstat`), seconds: contention from other processes.
    pub server_run_delay_secs: Option<f64>,
}

/// Differences of the relay's counters (`rootcast_relay_*_total`) between the window's ends.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RelayWindow {
    /// RTP packets written to viewers (the relay's own forwarded count).
    pub rtp_forwarded: u64,
    /// R1 by the relay's count: `rtp_forwarded` ÷ server CPU seconds.
    pub forwarded_per_server_cpu_sec: Option<f64>,
    pub rtp_received: u64,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    /// Datagrams per `sendmmsg` call.
    pub mean_send_batch: f64,
    /// Messages that carried several datagrams to one viewer as one UDP GSO send.
    pub gso_sends: u64,
    /// Datagrams per receive batch.
    pub mean_receive_batch: f64,
    pub send_drops: u64,
    /// The kernel's count for the relay's socket (`/proc/net/udp` drops).
    pub receive_queue_drops: u64,
    pub str0m_timeouts: u64,
    pub str0m_polls: u64,
    pub loop_turns: u64,
    pub socket_receive_buffer_bytes: u64,
}

/// `rootcast_relay_*` samples without labels, by name.
fn relay_metrics(address: std::net::SocketAddr) -> Option<BTreeMap<String, u64>> {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /relay/metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let samples: BTreeMap<String, u64> = text
        .lines()
        .filter(|l| l.starts_with("rootcast_relay_") && !l.contains('{'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect();
    (!samples.is_empty()).then_some(samples)
}

fn relay_window(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    server_cpu: f64,
) -> RelayWindow {
    let d = |name: &str| {
        let key = format!("rootcast_relay_{name}");
        after
            .get(&key)
            .unwrap_or(&0)
            .saturating_sub(*before.get(&key).unwrap_or(&0))
    };
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            round2(a as f64 / b as f64)
        }
    };
    let forwarded = d("rtp_forwarded_total");
    RelayWindow {
        rtp_forwarded: forwarded,
        forwarded_per_server_cpu_sec: (server_cpu > 0.0)
            .then(|| (forwarded as f64 / server_cpu).round()),
        rtp_received: d("rtp_received_total"),
        datagrams_sent: d("datagrams_sent_total"),
        datagrams_received: d("datagrams_received_total"),
        mean_send_batch: ratio(d("datagrams_sent_total"), d("send_calls_total")),
        gso_sends: d("gso_sends_total"),
        mean_receive_batch: ratio(d("datagrams_received_total"), d("receive_batches_total")),
        send_drops: d("send_would_block_total") + d("send_errors_total"),
        receive_queue_drops: d("receive_queue_drops_total"),
        str0m_timeouts: d("str0m_timeouts_total"),
        str0m_polls: d("str0m_polls_total"),
        loop_turns: d("loop_turns_total"),
        socket_receive_buffer_bytes: *after
            .get("rootcast_relay_socket_receive_buffer_bytes")
            .unwrap_or(&0),
    }
}

/// Seconds the process's threads waited runnable for a CPU (`schedstat`'s second field,
/// nanoseconds), summed over its threads.
fn run_delay_secs(pid: u32) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += text
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total as f64 / 1e9)
}

pub fn run(args: WhepArgs) -> anyhow::Result<()> {
    if args.viewers.is_empty() || args.viewers.contains(&0) {
        bail!("--viewers: at least one count, all > 0");
    }
    if args.targets.is_empty() {
        bail!("--targets: at least one of rootcast, janus");
    }
    if args.fps == 0 || args.frame_packets == 0 || args.keyframe_packets == 0 {
        bail!("--fps, --frame-packets and --keyframe-packets must be > 0");
    }
    if args.packet_bytes < 16 || args.packet_bytes > 1200 {
        bail!("--packet-bytes: 16 to 1200 (one RTP packet within the MTU)");
    }
    if args.targets.contains(&ServerKind::Janus) {
        netns::enter_private_network()?;
    }
    let (pinned, pinning) = start_run(
        "rootcast-loadtest whep-viewers",
        "coordinator with the publisher, workers",
        (!args.no_pin).then_some((args.server_core, args.client_core)),
        args.duration,
    );
    let launch = Launch::rootcast(
        pinned.then_some(args.server_core),
        args.rootcast_bin.as_deref(),
        args.verbose,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for round in 0..args.repeat {
        for &viewers in &args.viewers {
            for &target in &args.targets {
                let workers = match args.workers {
                    0 => viewers.div_ceil(50).max(2),
                    n => n,
                }
                .min(viewers);
                let mut m = WhepMeasurement {
                    target,
                    viewers,
                    round,
                    workers,
                    ..Default::default()
                };
                eprintln!(
                    "== whep-viewers {} {viewers} (round {}): {workers} workers",
                    target.name(),
                    round + 1
                );
                let measured = Server::start(target, &args, &launch)
                    .and_then(|server| runtime.block_on(measure(&mut m, &args, &server, pinned)));
                if let Err(error) = measured {
                    m.error = Some(format!("{error:#}"));
                }
                eprintln!("{}", one_line(&m));
                results.push(m);
            }
        }
    }
    let summary = write(&args, &pinning, &results)?;
    println!("{summary}");
    let failed: Vec<String> = results
        .iter()
        .filter_map(|m| {
            Some(format!(
                "{}, {} viewers: {}",
                m.target.name(),
                m.viewers,
                m.error.as_ref()?
            ))
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} measurements failed:\n  {}",
            failed.len(),
            results.len(),
            failed.join("\n  ")
        );
    }
    Ok(())
}

/// The server of one measurement, started for it and stopped when dropped.
enum Server {
    Rootcast(Target),
    Janus(Janus),
}

impl Server {
    fn start(kind: ServerKind, args: &WhepArgs, launch: &Launch) -> anyhow::Result<Server> {
        Ok(match kind {
            ServerKind::Rootcast => Server::Rootcast(Target::start(Kind::Rootcast, launch)?),
            ServerKind::Janus => Server::Janus(Janus::start(
                &args.janus_bin,
                launch.core,
                args.janus_event_loops,
                args.verbose,
            )?),
        })
    }

    fn pid(&self) -> anyhow::Result<u32> {
        match self {
            Server::Rootcast(target) => target.pid.context("the server's pid"),
            Server::Janus(janus) => Ok(janus.pid),
        }
    }

    /// Where the peers gather candidates: rootcast's relay is on loopback; Janus is on the
    /// namespace's veth pair.
    fn network(&self) -> PeerNetwork {
        match self {
            Server::Rootcast(_) => PeerNetwork::Loopback,
            Server::Janus(_) => PeerNetwork::Namespace {
                own: netns::PEER_ADDRESS,
                server: netns::SERVER_ADDRESS,
            },
        }
    }

    fn viewer_source(&self) -> ViewerSource {
        match self {
            Server::Rootcast(target) => ViewerSource::Whep {
                server: target.address,
                stream: STREAM.to_owned(),
            },
            Server::Janus(janus) => ViewerSource::Janus { api: janus.api },
        }
    }

    /// rootcast's relay counters (`GET /relay/metrics`); `None` for Janus.
    fn relay_metrics(&self) -> Option<BTreeMap<String, u64>> {
        match self {
            Server::Rootcast(target) => relay_metrics(target.address),
            Server::Janus(_) => None,
        }
    }
}

async fn measure(
    m: &mut WhepMeasurement,
    args: &WhepArgs,
    server: &Server,
    pinned: bool,
) -> anyhow::Result<()> {
    let pid = server.pid()?;
    let publisher = Publisher::start(server, args).await?;
    let mut fleet = match WhepFleet::spawn(m.workers, pinned.then_some(args.client_core), pid) {
        Ok(fleet) => fleet,
        Err(error) => {
            publisher.close().await;
            return Err(error);
        }
    };
    let outcome = drive(m, args, server, &publisher, &mut fleet).await;
    fleet.stop();
    publisher.close().await;
    outcome
}

async fn drive(
    m: &mut WhepMeasurement,
    args: &WhepArgs,
    server: &Server,
    publisher: &Publisher,
    fleet: &mut WhepFleet,
) -> anyhow::Result<()> {
    let pid = server.pid()?;
    let n = m.viewers;
    let k = m.workers;
    let join_started = Instant::now();
    for index in 0..k {
        let plan = JoinPlan {
            source: server.viewer_source(),
            network: server.network(),
            count: n / k + usize::from(index < n % k),
            rate: args.join_rate / k as f64,
            concurrency: args.concurrency,
        };
        fleet.send(index, &WhepCommand::Join(plan))?;
    }
    let join_limit = Duration::from_secs_f64(n as f64 / args.join_rate) + Duration::from_secs(40);
    let joined = fleet
        .pump_async(Instant::now() + join_limit, |f| {
            let p = f.totals();
            Ok(p.first_frames + p.failed >= n as u64)
        })
        .await?;
    m.join_secs = round2(join_started.elapsed().as_secs_f64());
    let progress = fleet.totals();
    if !joined {
        eprintln!(
            "not every viewer had a frame within {} s: {progress:?}; measuring those that did",
            join_limit.as_secs()
        );
    }
    if progress.answered == 0 {
        bail!("no viewer could join ({} failed)", progress.failed);
    }
    fleet
        .pump_async(
            Instant::now() + Duration::from_secs(args.settle_secs),
            |_| Ok(false),
        )
        .await?;

    // The window.
    let workers = fleet.pids();
    let loadgen = || {
        procfs::cpu_seconds(std::process::id())
            + workers.iter().map(|&p| procfs::cpu_seconds(p)).sum::<f64>()
    };
    let load_before = procfs::load_average();
    let published0 = publisher.sent();
    let relay0 = server.relay_metrics();
    let delay0 = run_delay_secs(pid);
    let server0 = procfs::cpu_seconds(pid);
    let loadgen0 = loadgen();
    let own0 = procfs::cpu_seconds(std::process::id());
    let busy0 = procfs::machine_busy_seconds();
    let started = Instant::now();
    fleet.broadcast(&WhepCommand::Mark)?;
    fleet
        .wait_marked(Instant::now() + Duration::from_secs(10))
        .await?;
    fleet
        .pump_async(started + Duration::from_secs(args.measure_secs), |_| {
            Ok(false)
        })
        .await?;
    fleet.broadcast(&WhepCommand::Report)?;
    let window_secs = started.elapsed().as_secs_f64();
    let published1 = publisher.sent();
    let server_cpu = procfs::cpu_seconds(pid) - server0;
    let delay1 = run_delay_secs(pid);
    let relay1 = server.relay_metrics();
    let loadgen_cpu = loadgen() - loadgen0;
    let own_cpu = procfs::cpu_seconds(std::process::id()) - own0;
    let other = procfs::machine_busy_seconds() - busy0 - server_cpu - loadgen_cpu;
    let rss = procfs::rss_kib(pid).0;
    let reports = fleet
        .wait_reports(Instant::now() + Duration::from_secs(15))
        .await?;

    let mut viewers: Vec<ViewerFigures> = Vec::new();
    let mut errors = BTreeMap::new();
    let mut totals = Progress::default();
    for report in reports {
        viewers.extend(report.viewers);
        totals += report.progress;
        for (reason, count) in report.errors {
            *errors.entry(reason).or_default() += count;
        }
    }
    let video = published1.video - published0.video;
    let audio = published1.audio - published0.audio;
    let figures = window_figures(&viewers, video + audio);
    m.joined = totals;
    m.join_errors = errors;
    m.measured_viewers = figures.measured;
    m.window_secs = round2(window_secs);
    m.published_video = video;
    m.published_audio = audio;
    m.published_bits_per_sec =
        ((published1.bytes - published0.bytes) as f64 * 8.0 / window_secs).round();
    m.keyframes_sent = published1.keyframes;
    m.keyframe_requests = published1.keyframe_requests;
    m.forwarded = figures.received;
    m.expected = figures.expected;
    m.forwarded_per_sec = (figures.received as f64 / window_secs).round();
    m.server_cpu_secs = Some(round2(server_cpu));
    m.server_cpu_percent = Some(round2(100.0 * server_cpu / window_secs));
    m.forwarded_per_server_cpu_sec =
        (server_cpu > 0.0).then(|| (figures.received as f64 / server_cpu).round());
    m.server_rss_kib = Some(rss);
    m.lost = figures.lost;
    m.loss_percent = percent(figures.lost, figures.lost + figures.received);
    m.viewer_loss_ppm = Quantiles::of_sample(&figures.loss_ppm);
    m.viewers_with_loss = figures.loss_ppm.iter().filter(|p| **p > 0).count() as u64;
    m.lowest_received_percent = round2(figures.lowest_received_share * 100.0);
    m.stalled = figures.stalled();
    let measured = viewers.iter().filter(|v| v.marked);
    m.late = measured.clone().map(|v| v.late).sum();
    m.padding = measured.map(|v| v.padding).sum();
    m.first_keyframe_us = Quantiles::of_sample(
        &viewers
            .iter()
            .filter_map(|v| v.first_keyframe_us)
            .collect::<Vec<_>>(),
    );
    m.connected_us = Quantiles::of_sample(
        &viewers
            .iter()
            .filter_map(|v| v.connected_us)
            .collect::<Vec<_>>(),
    );
    m.loadgen_cpu_secs = round2(loadgen_cpu);
    m.loadgen_cpu_percent = round2(100.0 * loadgen_cpu / window_secs);
    m.publisher_process_cpu_percent = round2(100.0 * own_cpu / window_secs);
    m.other_cpu_percent = round2(100.0 * other.max(0.0) / window_secs);
    m.loadgen_saturated = m.loadgen_cpu_percent >= 90.0
        || (m.loadgen_cpu_percent >= 70.0 && figures.received * 100 < figures.expected * 98);
    m.load_average = format!("{load_before} → {}", procfs::load_average());
    m.relay = match (&relay0, &relay1) {
        (Some(a), Some(b)) => Some(relay_window(a, b, server_cpu)),
        _ => None,
    };
    m.server_run_delay_secs = match (delay0, delay1) {
        (Some(a), Some(b)) => Some(round2(b - a)),
        _ => None,
    };
    Ok(())
}

/// What the viewers' window figures add up to.
#[derive(Debug, Default, PartialEq)]
pub struct WindowFigures {
    /// Viewers counted at the window's start.
    pub measured: u64,
    pub received: u64,
    pub lost: u64,
    /// published × measured viewers.
    pub expected: u64,
    /// Per measured viewer, loss by sequence number in ppm of its expected packets.
    pub loss_ppm: Vec<u64>,
    /// The lowest received ÷ published of a measured viewer (1.0 when none).
    pub lowest_received_share: f64,
}

impl WindowFigures {
    /// The viewers received less than 90 % of what was published to them.
    pub fn stalled(&self) -> bool {
        self.received * 10 < self.expected * 9
    }
}

/// Sums the measured viewers' window counts; `published`: packets the publisher sent in
/// the window (both tracks). Viewers that joined after the window started are left out.
pub fn window_figures(viewers: &[ViewerFigures], published: u64) -> WindowFigures {
    let mut f = WindowFigures {
        lowest_received_share: 1.0,
        ..Default::default()
    };
    for v in viewers.iter().filter(|v| v.marked) {
        let received = v.video.0 + v.audio.0;
        let lost = v.video.1 + v.audio.1;
        f.measured += 1;
        f.received += received;
        f.lost += lost;
        f.expected += published;
        f.loss_ppm
            .push((lost * 1_000_000).checked_div(received + lost).unwrap_or(0));
        if published > 0 {
            f.lowest_received_share = f
                .lowest_received_share
                .min(received as f64 / published as f64);
        }
    }
    f
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round4(100.0 * part as f64 / whole as f64)
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Packets and bytes the publisher has sent, and keyframe traffic.
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    video: u64,
    audio: u64,
    bytes: u64,
    keyframes: u64,
    keyframe_requests: u64,
}

/// The WHIP publisher: VP8 frames of pre-built packets at `--fps` (a keyframe whenever the
/// relay asks with a PLI or FIR, and every `--keyframe-interval-secs`), Opus every 20 ms.
struct Publisher {
    pc: Arc<RTCPeerConnection>,
    stop: Arc<AtomicBool>,
    counters: Arc<[AtomicU64; 5]>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Publisher {
    async fn start(server: &Server, args: &WhepArgs) -> anyhow::Result<Publisher> {
        let network = server.network();
        let pc = webrtc_peer::peer(network).await?;
        let track = |mime: &str, id: &str| {
            Arc::new(TrackLocalStaticRTP::new(
                RTCRtpCodecCapability {
                    mime_type: mime.to_owned(),
                    ..Default::default()
                },
                id.to_owned(),
                "rootcast-loadtest".to_owned(),
            ))
        };
        let video = track(MIME_TYPE_VP8, "video");
        let audio = track(MIME_TYPE_OPUS, "audio");
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
            .await?;
        let audio_transceiver = pc
            .add_transceiver_from_track(
                audio.clone() as Arc<dyn TrackLocal + Send + Sync>,
                sendonly(),
            )
            .await?;
        let offer = webrtc_peer::complete_offer(&pc, network).await?;
        let answer = match server {
            Server::Rootcast(target) => {
                webrtc_peer::post_offer(target.address, &format!("/whip/{STREAM}"), &offer).await
            }
            Server::Janus(janus) => janus::publish(janus.api, &offer).await,
        }
        .context("the publisher")?;
        webrtc_peer::apply_answer(&pc, &answer, network).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while pc.connection_state() != RTCPeerConnectionState::Connected {
            if Instant::now() > deadline {
                bail!(
                    "the publisher did not connect within 10 s ({})",
                    pc.connection_state()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let stop = Arc::new(AtomicBool::new(false));
        // video, audio, bytes, keyframes, keyframe requests
        let counters: Arc<[AtomicU64; 5]> = Arc::new(Default::default());
        let want_key = Arc::new(AtomicBool::new(true));
        let mut tasks = Vec::new();
        // RTCP from the relay: PLI or FIR asks for a keyframe. Reading RTCP also runs the
        // sender's interceptors (reports); the audio sender's is drained for the same reason.
        for (transceiver, is_video) in [(video_transceiver, true), (audio_transceiver, false)] {
            let sender = transceiver.sender().await;
            let (stop, want_key, counters) = (stop.clone(), want_key.clone(), counters.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((packets, _)) = sender.read_rtcp().await else {
                        return;
                    };
                    for p in packets {
                        let any = p.as_any();
                        if is_video
                            && (any.downcast_ref::<PictureLossIndication>().is_some()
                                || any.downcast_ref::<FullIntraRequest>().is_some())
                        {
                            counters[4].fetch_add(1, Ordering::Relaxed);
                            want_key.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        {
            let (stop, want_key, counters) = (stop.clone(), want_key.clone(), counters.clone());
            let frames = FrameMaker::new(args);
            let interval = Duration::from_secs_f64(1.0 / f64::from(args.fps));
            let every = args.keyframe_interval_secs * u64::from(args.fps);
            tasks.push(tokio::spawn(async move {
                let mut frames = frames;
                let mut tick = tokio::time::interval(interval);
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    n += 1;
                    let key =
                        want_key.swap(false, Ordering::Relaxed) || (every > 0 && n % every == 0);
                    if key {
                        counters[3].fetch_add(1, Ordering::Relaxed);
                    }
                    for packet in frames.frame(key) {
                        let bytes = packet.payload.len() as u64;
                        if video.write_rtp(&packet).await.is_err() {
                            return;
                        }
                        counters[0].fetch_add(1, Ordering::Relaxed);
                        counters[2].fetch_add(bytes, Ordering::Relaxed);
                    }
                }
            }));
        }
        {
            let (stop, counters) = (stop.clone(), counters.clone());
            let payload = opus_payload(args.audio_bytes);
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                let (mut seq, mut timestamp) = (7u16, 4242u32);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let packet = Packet {
                        header: Header {
                            version: 2,
                            sequence_number: seq,
                            timestamp,
                            ..Default::default()
                        },
                        payload: payload.clone(),
                    };
                    if audio.write_rtp(&packet).await.is_err() {
                        return;
                    }
                    seq = seq.wrapping_add(1);
                    timestamp = timestamp.wrapping_add(960);
                    counters[1].fetch_add(1, Ordering::Relaxed);
                    counters[2].fetch_add(payload.len() as u64, Ordering::Relaxed);
                }
            }));
        }
        Ok(Publisher {
            pc,
            stop,
            counters,
            tasks,
        })
    }

    fn sent(&self) -> Sent {
        let c = |i: usize| self.counters[i].load(Ordering::Relaxed);
        Sent {
            video: c(0),
            audio: c(1),
            bytes: c(2),
            keyframes: c(3),
            keyframe_requests: c(4),
        }
    }

    async fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.pc.close()).await;
    }
}

/// A 20 ms Opus packet: the TOC byte of a CELT frame, then filler.
fn opus_payload(len: usize) -> Bytes {
    let mut p = vec![0x5a; len.max(3)];
    p[0] = 0xfc;
    Bytes::from(p)
}

/// Pre-built VP8 frames as RTP packets: a payload descriptor with a 15-bit picture ID
/// (as browsers send), then a frame whose first packet carries a valid frame tag (and, for
/// keyframes, the start code and size) and filler. Sequence numbers, timestamps
/// (90 kHz) and the marker on each frame's last packet are set here.
pub struct FrameMaker {
    seq: u16,
    timestamp: u32,
    timestamp_step: u32,
    picture_id: u16,
    packets: usize,
    key_packets: usize,
    bytes: usize,
}

impl FrameMaker {
    fn new(args: &WhepArgs) -> FrameMaker {
        FrameMaker {
            seq: 1000,
            timestamp: 90_000,
            timestamp_step: 90_000 / args.fps.max(1),
            picture_id: 0,
            packets: args.frame_packets.max(1),
            key_packets: args.keyframe_packets.max(1),
            bytes: args.packet_bytes.max(16),
        }
    }

    pub fn frame(&mut self, key: bool) -> Vec<Packet> {
        let count = if key { self.key_packets } else { self.packets };
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let start = i == 0;
            let mut payload = vec![0u8; self.bytes];
            payload[0] = 0x80 | if start { 0x10 } else { 0 };
            payload[1] = 0x80;
            payload[2] = 0x80 | (self.picture_id >> 8) as u8;
            payload[3] = self.picture_id as u8;
            if start {
                // Frame tag: P = 0 for a keyframe, version 0, shown, partition size.
                payload[4] = if key { 0x10 } else { 0x11 };
                payload[5] = 0x02;
                if key {
                    payload[7..10].copy_from_slice(&[0x9d, 0x01, 0x2a]);
                    payload[10..12].copy_from_slice(&640u16.to_le_bytes());
                    payload[12..14].copy_from_slice(&360u16.to_le_bytes());
                }
            }
            out.push(Packet {
                header: Header {
                    version: 2,
                    marker: i + 1 == count,
                    sequence_number: self.seq,
                    timestamp: self.timestamp,
                    ..Default::default()
                },
                payload: Bytes::from(payload),
            });
            self.seq = self.seq.wrapping_add(1);
        }
        self.timestamp = self.timestamp.wrapping_add(self.timestamp_step);
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        out
    }
}

/// The viewers' worker processes and their events.
struct WhepFleet {
    workers: Vec<WorkerProcess>,
    events: Events<pump::AsyncChannel<WhepEvent>>,
    progress: Vec<Progress>,
    marked: Vec<bool>,
    reports: Vec<Option<crate::whep_worker::WhepWorkerReport>>,
}

impl WhepFleet {
    fn spawn(count: usize, core: Option<u32>, server_pid: u32) -> anyhow::Result<WhepFleet> {
        let (tx, events) = mpsc::unbounded_channel();
        let workers = workers::spawn(
            count,
            core,
            "whep-worker",
            "whep worker",
            move |index, event| tx.send((index, event)).is_ok(),
        )?;
        for worker in &workers {
            eprintln!("whep worker {}: pid {}", worker.index(), worker.pid);
        }
        Ok(WhepFleet {
            events: Events::new(events, "whep worker", &workers, vec![server_pid]),
            workers,
            progress: vec![Progress::default(); count],
            marked: vec![false; count],
            reports: (0..count).map(|_| None).collect(),
        })
    }

    fn send(&mut self, index: usize, command: &WhepCommand) -> anyhow::Result<()> {
        self.workers[index].send(command)
    }

    fn broadcast(&mut self, command: &WhepCommand) -> anyhow::Result<()> {
        for index in 0..self.workers.len() {
            self.send(index, command)?;
        }
        Ok(())
    }

    fn pids(&self) -> Vec<u32> {
        workers::pids(&self.workers)
    }

    fn totals(&self) -> Progress {
        let mut t = Progress::default();
        for p in &self.progress {
            t += *p;
        }
        t
    }

    async fn wait_marked(&mut self, until: Instant) -> anyhow::Result<()> {
        self.marked.iter_mut().for_each(|m| *m = false);
        loop {
            if self.marked.iter().all(|m| *m) {
                return Ok(());
            }
            // `pump_async` returns on its own schedule; check the marks between its turns.
            if !self
                .pump_async(
                    until.min(Instant::now() + Duration::from_millis(50)),
                    |_| Ok(false),
                )
                .await
                .map(|_| Instant::now() < until)?
            {
                bail!("the workers did not mark the window within 10 s");
            }
        }
    }

    async fn wait_reports(
        &mut self,
        until: Instant,
    ) -> anyhow::Result<Vec<crate::whep_worker::WhepWorkerReport>> {
        loop {
            if self.reports.iter().all(Option::is_some) {
                return Ok(self.reports.iter_mut().filter_map(Option::take).collect());
            }
            if !self
                .pump_async(
                    until.min(Instant::now() + Duration::from_millis(50)),
                    |_| Ok(false),
                )
                .await
                .map(|_| Instant::now() < until)?
            {
                bail!("the workers did not report within 15 s");
            }
        }
    }

    /// Asks every worker to stop, waits up to 3 s each, kills what is left.
    fn stop(mut self) {
        let _ = self.broadcast(&WhepCommand::Stop);
        for pid in self.pids() {
            children::stop(pid, Duration::from_secs(3));
        }
    }
}

impl pump::Fleet for WhepFleet {
    type Event = WhepEvent;
    type Channel = pump::AsyncChannel<WhepEvent>;

    fn events(&mut self) -> &mut Events<Self::Channel> {
        &mut self.events
    }

    fn apply(&mut self, index: usize, event: WhepEvent) {
        match event {
            WhepEvent::Progress(p) => self.progress[index] = p,
            WhepEvent::Marked => self.marked[index] = true,
            WhepEvent::Report(report) => {
                self.progress[index] = report.progress;
                self.reports[index] = Some(*report);
            }
        }
    }

    fn progress_line(&mut self, elapsed_secs: f64, _since_last_secs: f64) -> String {
        let t = self.totals();
        format!(
            "[whep] {:>5.1} s  answered {}  connected {}  first frames {}  failed {}  dropped {}  packets {}",
            elapsed_secs, t.answered, t.connected, t.first_frames, t.failed, t.dropped, t.packets
        )
    }
}

fn ms(us: u64) -> f64 {
    round2(us as f64 / 1000.0)
}

fn one_line(m: &WhepMeasurement) -> String {
    if let Some(error) = &m.error {
        return format!(
            "whep-viewers {} {}: FAILED: {error}",
            m.target.name(),
            m.viewers
        );
    }
    format!(
        "whep-viewers {} {} (measured {}): {:.0} forwarded/s, server CPU {:.1} % → {} forwarded per server CPU-second; loss {:.3} %; first keyframe p50 {} ms p99 {} ms; load generator {:.0} % of a core{}",
        m.target.name(),
        m.viewers,
        m.measured_viewers,
        m.forwarded_per_sec,
        m.server_cpu_percent.unwrap_or(0.0),
        m.forwarded_per_server_cpu_sec
            .map_or("?".to_owned(), |x| format!("{x:.0}")),
        m.loss_percent,
        ms(m.first_keyframe_us.p50),
        ms(m.first_keyframe_us.p99),
        m.loadgen_cpu_percent,
        if m.loadgen_saturated {
            " (SATURATED: the load generator may be the limit)"
        } else if m.stalled {
            " (STALLED: the viewers got less than 90 % of the stream)"
        } else {
            ""
        },
    ) + &relay_line(m)
}

/// The relay's own view of the window, when it serves `/relay/metrics`.
fn relay_line(m: &WhepMeasurement) -> String {
    let Some(r) = &m.relay else {
        return String::new();
    };
    format!(
        "\n  relay: {} written ({} per server CPU-s), {} datagrams sent in batches of {:.1} ({} GSO sends), {} received in batches of {:.1}; drops: {} receive queue, {} send; {} str0m timeouts, {} polls, {} loop turns; server waited {:.2} s for a CPU",
        r.rtp_forwarded,
        r.forwarded_per_server_cpu_sec
            .map_or("?".to_owned(), |x| format!("{x:.0}")),
        r.datagrams_sent,
        r.mean_send_batch,
        r.gso_sends,
        r.datagrams_received,
        r.mean_receive_batch,
        r.receive_queue_drops,
        r.send_drops,
        r.str0m_timeouts,
        r.str0m_polls,
        r.loop_turns,
        m.server_run_delay_secs.unwrap_or(0.0),
    )
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Writes `results.json` and `summary.md` under `--out`; returns the summary.
fn write(args: &WhepArgs, pinning: &str, results: &[WhepMeasurement]) -> anyhow::Result<String> {
    std::fs::create_dir_all(&args.out)?;
    let json = serde_json::json!({
        "scenario": "whep-viewers",
        "machine": report::machine(),
        "pinning": pinning,
        "args": args,
        "forwarded_means": "RTP packets the viewers received in the window (both tracks); `relay.rtp_forwarded` is the relay's own count (GET /relay/metrics)",
        "measurements": results,
    });
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    let mut s = String::new();
    s.push_str("# whep-viewers (R1)\n\n");
    s.push_str(&format!(
        "{pinning}. One WHIP publisher: VP8 {} fps, {} packets a frame ({} a keyframe) of {} bytes; Opus 50 packets/s of {} bytes. Window {} s. Medians over rounds; every round in results.json.\n\n",
        args.fps,
        args.frame_packets,
        args.keyframe_packets,
        args.packet_bytes,
        args.audio_bytes,
        args.measure_secs
    ));
    s.push_str("| viewers | server | rounds ok | forwarded/s | server CPU % | **forwarded per server CPU-s** | loss % (worst viewer ppm) | lowest received % | first keyframe p50 / p99 ms | load generator % of a core | other % |\n");
    s.push_str("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    let mut ratios = String::new();
    for &n in &args.viewers {
        let mut r1_medians = BTreeMap::new();
        for &target in &args.targets {
            let ok: Vec<&WhepMeasurement> = results
                .iter()
                .filter(|m| m.viewers == n && m.target == target && m.error.is_none() && !m.stalled)
                .collect();
            let med = |f: &dyn Fn(&WhepMeasurement) -> f64| {
                median(ok.iter().map(|m| f(m)).collect()).unwrap_or(0.0)
            };
            let forwarded_per_cpu = med(&|m| m.forwarded_per_server_cpu_sec.unwrap_or(0.0));
            r1_medians.insert(target, forwarded_per_cpu);
            s.push_str(&format!(
                "| {n} | {} | {}/{} | {:.0} | {:.1} | **{:.0}** | {:.4} ({:.0}) | {:.2} | {:.0} / {:.0} | {:.0}{} | {:.0} |\n",
                target.name(),
                ok.len(),
                args.repeat,
                med(&|m| m.forwarded_per_sec),
                med(&|m| m.server_cpu_percent.unwrap_or(0.0)),
                forwarded_per_cpu,
                med(&|m| m.loss_percent),
                med(&|m| m.viewer_loss_ppm.max as f64),
                med(&|m| m.lowest_received_percent),
                med(&|m| ms(m.first_keyframe_us.p50)),
                med(&|m| ms(m.first_keyframe_us.p99)),
                med(&|m| m.loadgen_cpu_percent),
                if ok.iter().any(|m| m.loadgen_saturated) {
                    " (saturated)"
                } else {
                    ""
                },
                med(&|m| m.other_cpu_percent),
            ));
        }
        if let (Some(&ours), Some(&janus)) = (
            r1_medians.get(&ServerKind::Rootcast),
            r1_medians.get(&ServerKind::Janus),
        ) && ours > 0.0
            && janus > 0.0
        {
            ratios.push_str(&format!(
                "- {n} viewers: rootcast {ours:.0} ÷ Janus {janus:.0} = **{:.1} ×** forwarded packets per server CPU-second\n",
                ours / janus
            ));
        }
    }
    if !ratios.is_empty() {
        s.push_str("\nSide by side (medians; R1 asks for ≥ 10 × Janus):\n\n");
        s.push_str(&ratios);
    }
    for m in results.iter().filter(|m| m.relay.is_some()) {
        s.push_str(&format!(
            "\n- rootcast, {} viewers, round {}, load average {}:{}\n",
            m.viewers,
            m.round + 1,
            m.load_average,
            relay_line(m)
                .trim_start_matches('\n')
                .trim_start_matches("  relay")
        ));
    }
    for m in results.iter().filter(|m| m.stalled) {
        s.push_str(&format!(
            "\n- {}, {} viewers, round {}: STALLED (not in the medians): the viewers received {} of {} packets published to them ({:.1} %) with the server at {:.0} % of its core\n",
            m.target.name(),
            m.viewers,
            m.round + 1,
            m.forwarded,
            m.expected,
            percent(m.forwarded, m.expected),
            m.server_cpu_percent.unwrap_or(0.0),
        ));
    }
    for m in results.iter().filter(|m| m.error.is_some()) {
        s.push_str(&format!(
            "\n- {}, {} viewers, round {}: FAILED: {}\n",
            m.target.name(),
            m.viewers,
            m.round + 1,
            m.error.as_deref().unwrap_or_default()
        ));
    }
    std::fs::write(args.out.join("summary.md"), &s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp_stats::vp8_starts_keyframe;

    fn viewer(marked: bool, video: (u64, u64), audio: (u64, u64)) -> ViewerFigures {
        ViewerFigures {
            video,
            audio,
            marked,
            ..Default::default()
        }
    }

    #[test]
    fn window_figures_count_only_viewers_present_at_the_start() {
        let viewers = [
            viewer(true, (1500, 0), (500, 0)),
            viewer(true, (1490, 10), (499, 1)),
            viewer(false, (700, 0), (200, 0)), // joined mid-window
        ];
        let f = window_figures(&viewers, 2000);
        assert_eq!(f.measured, 2);
        assert_eq!(f.received, 3989);
        assert_eq!(f.lost, 11);
        assert_eq!(f.expected, 4000);
        assert_eq!(f.loss_ppm, vec![0, 5500]);
        assert!((f.lowest_received_share - 0.9945).abs() < 1e-9);
        assert!(!f.stalled());
        // A server that stopped delivering to one of two viewers.
        let half = [
            viewer(true, (1500, 0), (500, 0)),
            viewer(true, (0, 0), (0, 0)),
        ];
        let f = window_figures(&half, 2000);
        assert_eq!((f.received, f.expected, f.lost), (2000, 4000, 0));
        assert!(
            f.stalled(),
            "no gap is lost by sequence number, yet half is missing"
        );
    }

    #[test]
    fn frames_carry_keyframes_markers_and_continuous_numbers() {
        let args = WhepArgs {
            viewers: vec![1],
            workers: 0,
            join_rate: 1.0,
            concurrency: 1,
            settle_secs: 0,
            measure_secs: 1,
            fps: 30,
            frame_packets: 5,
            keyframe_packets: 12,
            packet_bytes: 1100,
            audio_bytes: 100,
            keyframe_interval_secs: 0,
            repeat: 1,
            duration: 1,
            out: PathBuf::new(),
            no_pin: true,
            server_core: 0,
            client_core: 1,
            rootcast_bin: None,
            targets: vec![ServerKind::Rootcast],
            janus_bin: PathBuf::new(),
            janus_event_loops: 0,
            verbose: false,
        };
        let mut maker = FrameMaker::new(&args);
        let key = maker.frame(true);
        let delta = maker.frame(false);
        assert_eq!((key.len(), delta.len()), (12, 5));
        assert!(vp8_starts_keyframe(&key[0].payload));
        assert!(!key[1..].iter().any(|p| vp8_starts_keyframe(&p.payload)));
        assert!(!delta.iter().any(|p| vp8_starts_keyframe(&p.payload)));
        let markers: Vec<bool> = delta.iter().map(|p| p.header.marker).collect();
        assert_eq!(markers, [false, false, false, false, true]);
        let seqs: Vec<u16> = key
            .iter()
            .chain(&delta)
            .map(|p| p.header.sequence_number)
            .collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
        assert_eq!(
            delta[0]
                .header
                .timestamp
                .wrapping_sub(key[0].header.timestamp),
            3000
        );
        assert!(key.iter().all(|p| p.payload.len() == 1100));
    }
}
