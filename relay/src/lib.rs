//! # rootcast-relay: the forwarding core of the WebRTC relay
//!
//! The relay carries one publisher's stream (WHIP in) to many viewers (WHEP out). WebRTC
//! itself — ICE, DTLS, SRTP, RTCP, bandwidth estimation, SDP — is str0m's job, driven by a
//! tokio task that owns the sockets. This crate is the part in between: **who receives which
//! packet, with which sequence number and timestamp, which simulcast layer each viewer gets,
//! when to ask the publisher for a keyframe, and where a joining viewer starts.**
//!
//! It is a set of plain, deterministic state machines in the style of str0m and quinn-proto:
//!
//! - **The core never opens a socket, never reads the clock, never spawns, never sleeps, and
//!   never calls back.** Every time-dependent call takes `now: Instant`; outputs are returned
//!   (appended to a caller-owned `Vec`) or polled.
//! - It depends on nothing but `std`. Payloads are `Arc<[u8]>` ([`packet::Payload`]), the type
//!   str0m produces and consumes, so a packet fans out to N viewers with N reference-count
//!   increments and zero copies.
//!
//! ## Run loop (what the driver does)
//!
//! ```text
//! loop {
//!     // 1. input: a datagram → the Rtc that accepts it; or a timeout
//!     rtc.handle_input(..)
//!     // 2. drain every Rtc's poll_output() until Output::Timeout, mapping events:
//!     //    publisher Event::RtpPacket(p)      → forwarder.handle_publisher_packet(now, &pkt, &mut writes)
//!     //    publisher Event::StreamPaused(s)   → forwarder.handle_publisher_paused(now, kind, layer, s.paused)
//!     //    viewer Event::KeyframeRequest(r)   → forwarder.handle_viewer_keyframe_request(now, viewer, kind)
//!     //    viewer Event::EgressBitrateEstimate(BweKind::Twcc{estimate,..} | Remb{..})
//!     //                                       → forwarder.set_viewer_estimate(now, viewer, estimate.as_u64())
//!     //    publisher gone (ICE/DTLS closed)   → forwarder.publisher_left(now)
//!     //    viewer gone                        → forwarder.remove_viewer(viewer)
//!     // 3. for each Forward in writes: that viewer's StreamTx::write_rtp(
//!     //        RtpWrite::new(pt, seq.into(), timestamp, received_at, payload).marker(m).nackable(true))
//!     // 4. while let Some(req) = forwarder.poll_keyframe_request():
//!     //        publisher StreamRx (mid, rid of req.layer).request_keyframe(kind)
//!     // 5. if forwarder.poll_timeout() <= now: forwarder.handle_timeout(now)
//!     //    next wake-up = min(all Rtc timeouts, forwarder.poll_timeout())
//! }
//! ```
//!
//! `relay/DESIGN.md` has the str0m facts this is built on (version, types, who answers NACKs).
//!
//! ## Modules (one concept each)
//!
//! | module | concept |
//! | --- | --- |
//! | [`packet`] | the packet view: header fields, layer, shared payload, keyframe detection (VP8, H.264, Opus) |
//! | [`rewrite`] | per-viewer, per-kind sequence number and timestamp rewriting into one continuous stream |
//! | [`vp8`] | per-viewer VP8 descriptor rewriting: continuous PictureID / TL0PICIDX / KEYIDX across switches |
//! | [`layers`] | per-viewer simulcast layer choice: estimate, hysteresis, preference, fallback |
//! | [`keyframes`] | keyframe requests to the publisher: aggregated, at most one per layer per second |
//! | [`cache`] | per-source packet cache, shared by all viewers: joins start from its newest keyframe |
//! | [`ingress`] | the publisher side of a track: sources, extended seq, restarts, liveness, bitrate |
//! | [`forwarder`] | one stream and its viewers: ties the above together, counters |
//!
//! Around the core (these do IO; the core modules above still use nothing but `std`):
//!
//! | module | concept |
//! | --- | --- |
//! | [`config`] | [`RelayConfig`]: UDP bind, announced addresses, capacity limits, ICE servers, `require_token` |
//! | [`driver`] | the tokio task: one UDP socket, one str0m `Rtc` per peer, events → core |
//! | [`hooks`] | [`StreamAuth`] (publish/view tokens, 401/403) and [`StreamEvents`] (live/ended/viewers) the host plugs in |
//! | [`report`] | [`ViewerCounts`]: viewer-count reports coalesced per stream (sans-IO) |
//! | [`sdp_checks`] | offer checks before str0m (400/422) and the media-section summary |
//! | [`sdpfrag`] | `application/trickle-ice-sdpfrag` for PATCH: parse, restart offer, answer fragment (sans-IO) |
//! | [`tcp`] | ICE-TCP: RFC 4571 framing ([`tcp::FrameDecoder`], sans-IO) and the accept/connection tasks |
//! | [`record`] | recording live streams to WebM without transcoding (sans-IO recorder, writer thread, `GET /recordings`) |
//! | [`whip`] | WHIP/WHEP over HTTP: the axum [`router`] |
//!
//! Wiring it into a server:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let relay = rootcast_relay::start(rootcast_relay::RelayConfig::default()).await?;
//! let app: axum::Router = rootcast_relay::router(relay.clone());
//! # let _ = app; Ok(()) }
//! ```
//!
//! ## Invariants
//!
//! - **A viewer sees one continuous stream per kind.** Among the packets forwarded to one
//!   viewer on one kind, in sending order of new packets, the extended sequence number
//!   increases; across a layer switch or a publisher reconnect it continues at `highest + 1`;
//!   inside one source it keeps the source's spacing, so a gap means a real upstream loss
//!   (which the viewer may NACK). Timestamps never go backwards at a switch and move by the
//!   elapsed wall-clock time.
//! - **Video switches only at a keyframe** of the target layer; until then the current layer
//!   keeps flowing.
//! - **At most one keyframe request per layer per `keyframe_interval`** reaches the publisher;
//!   none is lost: one inside the interval is deferred to its end, unless a keyframe arrives
//!   first.
//! - **One cache per publisher source**, shared by all viewers; bounded by count and age.
//! - **Bounded state.** Per track at most two sources; per viewer a fixed-size rewriter, a
//!   history of at most 16 segments, a selector. Removing a viewer removes all of it: the
//!   other structures hold no per-viewer state.
//! - **Outside input never panics.** Malformed payloads are "not a keyframe"; unknown viewers
//!   are an error value; any sequence of packets is handled.
//!
//! ## Deliberately absent
//!
//! - IO of any kind, clocks, threads, async, callbacks, logging.
//! - SRTP, RTCP parsing and generation, pacing, bandwidth estimation: str0m does them.
//! - Temporal-layer (SVC) selection and VP9/AV1 descriptor rewriting: later, see DESIGN.md.
//! - A micro-benchmark: it will live in its own bench crate, not in timed tests.

#![deny(missing_docs)]

pub mod cache;
pub mod config;
pub mod driver;
pub mod forwarder;
pub mod hooks;
pub mod ingress;
pub mod keyframes;
pub mod layers;
pub mod metrics;
pub mod packet;
pub mod record;
pub mod report;
pub mod rewrite;
pub mod sdp_checks;
pub mod sdpfrag;
pub mod tcp;
pub mod udp;
pub mod vp8;
pub mod whip;

pub use cache::{CacheMiss, CachedPacket, PacketCache};
pub use forwarder::{
    Counters, Forward, ForwardError, ForwarderConfig, RtpBase, StreamForwarder, ViewerId,
    ViewerOptions, ViewerStatus,
};
pub use ingress::CacheConfig;
pub use keyframes::{KeyframeKind, KeyframeRequest, KeyframeRequests, RequestOutcome};
pub use layers::{LayerAvailability, LayerSelector, SelectorConfig, ViewerPreference};
pub use packet::{Codec, InboundPacket, LayerId, MediaKind, PacketHeader, Payload, SourceKey};
pub use rewrite::{DropReason, Rewritten, SegmentId, SeqTsRewriter};
pub use vp8::{Vp8Fields, Vp8Rewriter};

pub use config::{IceServer, RelayConfig};
pub use driver::{
    Negotiated, PatchOutcome, RelayError, RelayHandle, RelayStats, StreamStats, start, start_with,
};
pub use hooks::{
    Access, AllowAll, AuthRejection, NoEvents, RejectAll, RelayHooks, StreamAuth, StreamEvents,
};
pub use metrics::DriverCounters;
pub use report::ViewerCounts;
pub use sdp_checks::OfferRole;
pub use whip::router;
