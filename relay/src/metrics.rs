//! The relay's own counters and their Prometheus text at `GET /relay/metrics`.
//!
//! The driver counts in a plain [`DriverCounters`] on its task and publishes a copy once per
//! loop turn ([`DriverMetrics::publish`]); the HTTP handler reads that copy without asking
//! the driver, so the figures stay readable while the driver is busy (the per-stream ones
//! come from [`RelayHandle::stats`](crate::RelayHandle::stats) and are left out if the driver
//! does not answer within a second). The socket's receive drops are the kernel's count
//! (`/proc/net/udp`, [`crate::udp::receive_drops`]), read at each request.
//!
//! The hub serves its own `/metrics`; the relay's are on their own path so the two
//! crates stay independent (a Prometheus job per path).

use std::fmt::Write as _;
use std::sync::Mutex;

use crate::driver::RelayStats;
use crate::udp::{BufferSizes, Flushed};

/// The driver's counters. All only increase, except [`largest_receive_batch`], a maximum.
///
/// [`largest_receive_batch`]: DriverCounters::largest_receive_batch
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverCounters {
    /// Turns of the driver's loop (one wake-up each: datagrams, a command, a timer).
    pub loop_turns: u64,
    /// UDP datagrams read from the socket.
    pub datagrams_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Batches of datagrams read in one go (the mean batch is `datagrams_in / receive_batches`).
    pub receive_batches: u64,
    /// The most datagrams read in one batch.
    pub largest_receive_batch: u64,
    /// Datagrams no peer accepted (unknown source, stale session).
    pub datagrams_unclaimed: u64,
    /// UDP datagrams the kernel took (media, RTCP, STUN, DTLS).
    pub datagrams_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// `sendmmsg` calls (the mean batch is `datagrams_out / send_calls`).
    pub send_calls: u64,
    /// Messages that carried several datagrams to one viewer as one UDP GSO send.
    pub gso_sends: u64,
    /// Datagrams dropped because the socket's send buffer was full.
    pub send_would_block: u64,
    /// Datagrams the kernel refused for another reason.
    pub send_errors: u64,
    /// ICE-TCP frames dropped because the connection's queue was full.
    pub tcp_frames_dropped: u64,
    /// RTP packets from publishers (str0m `Event::RtpPacket`).
    pub rtp_received: u64,
    /// RTP packets written to viewers (`StreamTx::write_rtp`): the forwarded packets. str0m
    /// sends them (paced) and may resend some as RTX.
    pub rtp_forwarded: u64,
    /// Payload bytes of those packets.
    pub rtp_forwarded_bytes: u64,
    /// str0m events handled (every `Output::Event` of every peer).
    pub str0m_events: u64,
    /// `Input::Timeout`s fed to peers.
    pub str0m_timeouts: u64,
    /// `poll_output` rounds (one per peer polled until its `Output::Timeout`).
    pub str0m_polls: u64,
}

/// The latest [`DriverCounters`] the driver published, plus facts of its socket.
#[derive(Debug, Default)]
pub struct DriverMetrics {
    /// A plain mutex: locked for a copy, never across an `.await`.
    latest: Mutex<DriverCounters>,
    /// Socket buffer sizes granted at start.
    pub buffers: BufferSizes,
}

impl DriverCounters {
    /// Adds what a flush of the send batch did.
    pub fn add_flushed(&mut self, done: Flushed) {
        self.datagrams_out += done.datagrams;
        self.bytes_out += done.bytes;
        self.send_calls += done.calls;
        self.gso_sends += done.gso_sends;
        self.send_would_block += done.would_block;
        self.send_errors += done.errors;
    }
}

impl DriverMetrics {
    /// For a socket with these buffers.
    pub fn new(buffers: BufferSizes) -> DriverMetrics {
        DriverMetrics {
            latest: Mutex::new(DriverCounters::default()),
            buffers,
        }
    }

    /// Publishes the driver's figures.
    pub fn publish(&self, counters: &DriverCounters) {
        // A poisoned lock only means a panic elsewhere while copying: keep going.
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        *latest = *counters;
    }

    /// The figures last published.
    pub fn snapshot(&self) -> DriverCounters {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The Prometheus text exposition (format 0.0.4) of the relay's figures.
pub fn render(
    c: &DriverCounters,
    buffers: BufferSizes,
    receive_drops: Option<u64>,
    stats: Option<&RelayStats>,
) -> String {
    let mut out = String::new();
    let counters: [(&str, &str, u64); 19] = [
        (
            "loop_turns",
            "Turns of the relay driver's loop",
            c.loop_turns,
        ),
        ("datagrams_received", "UDP datagrams read", c.datagrams_in),
        ("received_bytes", "UDP bytes read", c.bytes_in),
        (
            "receive_batches",
            "Batches of datagrams read in one go",
            c.receive_batches,
        ),
        (
            "datagrams_unclaimed",
            "Datagrams no peer accepted",
            c.datagrams_unclaimed,
        ),
        (
            "datagrams_sent",
            "UDP datagrams the kernel took",
            c.datagrams_out,
        ),
        ("sent_bytes", "UDP bytes sent", c.bytes_out),
        ("send_calls", "sendmmsg calls", c.send_calls),
        (
            "gso_sends",
            "Messages that carried several datagrams as one UDP GSO send",
            c.gso_sends,
        ),
        (
            "send_would_block",
            "Datagrams dropped: the socket's send buffer was full",
            c.send_would_block,
        ),
        (
            "send_errors",
            "Datagrams the kernel refused for another reason",
            c.send_errors,
        ),
        (
            "tcp_frames_dropped",
            "ICE-TCP frames dropped: the connection's queue was full",
            c.tcp_frames_dropped,
        ),
        (
            "rtp_received",
            "RTP packets from publishers",
            c.rtp_received,
        ),
        (
            "rtp_forwarded",
            "RTP packets written to viewers",
            c.rtp_forwarded,
        ),
        (
            "rtp_forwarded_payload_bytes",
            "Payload bytes of the RTP packets written to viewers",
            c.rtp_forwarded_bytes,
        ),
        ("str0m_events", "str0m events handled", c.str0m_events),
        (
            "str0m_timeouts",
            "Timeouts fed to str0m peers",
            c.str0m_timeouts,
        ),
        (
            "str0m_polls",
            "Peers polled until their next timeout",
            c.str0m_polls,
        ),
        (
            "receive_queue_drops",
            "Datagrams the kernel dropped: the socket's receive queue was full",
            receive_drops.unwrap_or(0),
        ),
    ];
    for (name, help, value) in counters {
        if name == "receive_queue_drops" && receive_drops.is_none() {
            continue;
        }
        let _ = writeln!(out, "# HELP rootcast_relay_{name}_total {help}.");
        let _ = writeln!(out, "# TYPE rootcast_relay_{name}_total counter");
        let _ = writeln!(out, "rootcast_relay_{name}_total {value}");
    }
    let gauges: [(&str, &str, u64); 3] = [
        (
            "largest_receive_batch",
            "The most datagrams read in one batch",
            c.largest_receive_batch,
        ),
        (
            "socket_receive_buffer_bytes",
            "SO_RCVBUF granted (the kernel's doubled figure)",
            buffers.receive as u64,
        ),
        (
            "socket_send_buffer_bytes",
            "SO_SNDBUF granted (the kernel's doubled figure)",
            buffers.send as u64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP rootcast_relay_{name} {help}.");
        let _ = writeln!(out, "# TYPE rootcast_relay_{name} gauge");
        let _ = writeln!(out, "rootcast_relay_{name} {value}");
    }
    if let Some(stats) = stats {
        let _ = writeln!(out, "# HELP rootcast_relay_peers str0m peers alive.");
        let _ = writeln!(out, "# TYPE rootcast_relay_peers gauge");
        let _ = writeln!(out, "rootcast_relay_peers {}", stats.peers);
        let per_stream: [(&str, &str, &str, StreamFigure); 6] = [
            (
                "stream_viewers",
                "gauge",
                "Connected viewers of the stream",
                |s| s.forwarder_viewers as u64,
            ),
            (
                "stream_packets_in_total",
                "counter",
                "Packets from the stream's publisher",
                |s| s.counters.packets_in,
            ),
            (
                "stream_packets_out_total",
                "counter",
                "Packets the stream's forwarder wrote to viewers",
                |s| s.counters.packets_out,
            ),
            (
                "stream_packets_dropped_total",
                "counter",
                "Per-viewer drops of duplicates and packets too far behind",
                |s| s.counters.packets_dropped,
            ),
            (
                "stream_viewer_nacks",
                "gauge",
                "NACKs the stream's current viewers sent (str0m's count)",
                |s| s.viewer_nacks,
            ),
            (
                "stream_viewer_resends",
                "gauge",
                "Packets str0m resent to the stream's current viewers (lower bound)",
                |s| s.viewer_resends,
            ),
        ];
        for (name, kind, help, value) in per_stream {
            let _ = writeln!(out, "# HELP rootcast_relay_{name} {help}.");
            let _ = writeln!(out, "# TYPE rootcast_relay_{name} {kind}");
            for s in &stats.streams {
                let _ = writeln!(
                    out,
                    "rootcast_relay_{name}{{stream=\"{}\"}} {}",
                    escape_label(&s.name),
                    value(s)
                );
            }
        }
    }
    out
}

/// Reads one per-stream figure.
type StreamFigure = fn(&crate::StreamStats) -> u64;

/// A label value with `\`, `"` and newlines escaped (stream names cannot hold them, but
/// the format is kept valid whatever the name).
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forwarder::Counters;

    /// The value of one sample line, by its full name (labels included).
    fn sample(text: &str, name: &str) -> Option<u64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn every_counter_is_one_sample_with_help_and_type() {
        let c = DriverCounters {
            loop_turns: 1,
            datagrams_in: 2,
            bytes_in: 3,
            receive_batches: 4,
            largest_receive_batch: 5,
            datagrams_unclaimed: 6,
            datagrams_out: 7,
            bytes_out: 8,
            send_calls: 9,
            send_would_block: 10,
            send_errors: 11,
            tcp_frames_dropped: 12,
            rtp_received: 13,
            rtp_forwarded: 14,
            rtp_forwarded_bytes: 15,
            str0m_events: 16,
            str0m_timeouts: 17,
            str0m_polls: 18,
            gso_sends: 20,
        };
        let buffers = BufferSizes {
            receive: 8_388_608,
            send: 4096,
        };
        let text = render(&c, buffers, Some(19), None);
        let expected = [
            ("rootcast_relay_loop_turns_total", 1),
            ("rootcast_relay_datagrams_received_total", 2),
            ("rootcast_relay_received_bytes_total", 3),
            ("rootcast_relay_receive_batches_total", 4),
            ("rootcast_relay_largest_receive_batch", 5),
            ("rootcast_relay_datagrams_unclaimed_total", 6),
            ("rootcast_relay_datagrams_sent_total", 7),
            ("rootcast_relay_sent_bytes_total", 8),
            ("rootcast_relay_send_calls_total", 9),
            ("rootcast_relay_gso_sends_total", 20),
            ("rootcast_relay_send_would_block_total", 10),
            ("rootcast_relay_send_errors_total", 11),
            ("rootcast_relay_tcp_frames_dropped_total", 12),
            ("rootcast_relay_rtp_received_total", 13),
            ("rootcast_relay_rtp_forwarded_total", 14),
            ("rootcast_relay_rtp_forwarded_payload_bytes_total", 15),
            ("rootcast_relay_str0m_events_total", 16),
            ("rootcast_relay_str0m_timeouts_total", 17),
            ("rootcast_relay_str0m_polls_total", 18),
            ("rootcast_relay_receive_queue_drops_total", 19),
            ("rootcast_relay_socket_receive_buffer_bytes", 8_388_608),
            ("rootcast_relay_socket_send_buffer_bytes", 4096),
        ];
        for (name, value) in expected {
            assert_eq!(sample(&text, name), Some(value), "{name} in\n{text}");
            let family = name;
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} has a TYPE line"
            );
        }
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, expected.len());
        // Without the kernel's figure the series is absent rather than a false zero.
        let text = render(&c, buffers, None, None);
        assert_eq!(
            sample(&text, "rootcast_relay_receive_queue_drops_total"),
            None
        );
    }

    #[test]
    fn streams_are_labelled() {
        let stats = RelayStats {
            peers: 3,
            addresses: 3,
            tcp_connections: 0,
            streams: vec![crate::StreamStats {
                name: "hall".to_string(),
                has_publisher: true,
                viewer_sessions: 2,
                forwarder_viewers: 2,
                counters: Counters {
                    packets_in: 100,
                    packets_out: 200,
                    ..Counters::default()
                },
                viewer_nacks: 4,
                viewer_resends: 3,
            }],
        };
        let text = render(
            &DriverCounters::default(),
            BufferSizes::default(),
            None,
            Some(&stats),
        );
        assert_eq!(sample(&text, "rootcast_relay_peers"), Some(3));
        assert_eq!(
            sample(&text, "rootcast_relay_stream_viewers{stream=\"hall\"}"),
            Some(2)
        );
        assert_eq!(
            sample(
                &text,
                "rootcast_relay_stream_packets_out_total{stream=\"hall\"}"
            ),
            Some(200)
        );
        assert_eq!(
            sample(
                &text,
                "rootcast_relay_stream_viewer_resends{stream=\"hall\"}"
            ),
            Some(3)
        );
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn the_published_copy_is_what_the_driver_counted() {
        let m = DriverMetrics::new(BufferSizes::default());
        assert_eq!(m.snapshot(), DriverCounters::default());
        let c = DriverCounters {
            rtp_forwarded: 42,
            ..DriverCounters::default()
        };
        m.publish(&c);
        assert_eq!(m.snapshot().rtp_forwarded, 42);
    }
}
