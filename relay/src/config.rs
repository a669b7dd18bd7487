//! [`RelayConfig`]: the relay's own settings (the lead moves them into `rootcast-config`
//! later; the field names are meant to survive that move).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

/// Settings of the WebRTC relay.
///
/// `Default` is a safe single-machine setting: UDP on `127.0.0.1:8189`, the bind address
/// announced as the only ICE candidate. A deployment binds `0.0.0.0:8189` (or a specific
/// interface) and lists the addresses clients reach it on in `announce`. Tests use
/// [`RelayConfig::loopback`] (`127.0.0.1:0`, a free port).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// The one UDP socket every peer shares (ICE, DTLS, SRTP). Port 0 picks a free port.
    pub udp_bind: SocketAddr,
    /// IP addresses announced as host candidates, with the bound UDP port. Empty: the bind
    /// address itself (which must then be a specific address, not `0.0.0.0`/`::`).
    pub announce: Vec<IpAddr>,
    /// WHEP sessions per stream; the next one gets `503`.
    pub max_viewers_per_stream: usize,
    /// Streams (stream names with a publisher or viewers); a WHIP for a new one gets `503`.
    pub max_streams: usize,
    /// Largest SDP offer accepted, in bytes; a larger body gets `413`.
    pub max_sdp_bytes: usize,
    /// A session whose ICE has not connected this many milliseconds after its answer ends.
    pub connect_timeout_ms: u64,
    /// A session whose ICE stays disconnected this many milliseconds ends.
    pub disconnect_grace_ms: u64,
    /// The viewers' bandwidth estimator starts here (bits per second); also the estimate
    /// the forwarding core starts a viewer's layer choice from.
    pub initial_viewer_bitrate_bps: u64,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            udp_bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8189),
            announce: Vec::new(),
            max_viewers_per_stream: 500,
            max_streams: 16,
            max_sdp_bytes: 32 * 1024,
            connect_timeout_ms: 15_000,
            disconnect_grace_ms: 5_000,
            initial_viewer_bitrate_bps: 1_000_000,
        }
    }
}

impl RelayConfig {
    /// The test setting: UDP on `127.0.0.1:0`, only the loopback address announced.
    pub fn loopback() -> RelayConfig {
        RelayConfig {
            udp_bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            ..RelayConfig::default()
        }
    }

    /// How long a session may take to connect.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// How long a session may stay disconnected.
    pub fn disconnect_grace(&self) -> Duration {
        Duration::from_millis(self.disconnect_grace_ms)
    }

    /// Checks what serde cannot: returns a readable reason for the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.announce.is_empty() && self.udp_bind.ip().is_unspecified() {
            return Err(format!(
                "relay: udp_bind {} is a wildcard address; list the addresses clients reach the relay on in `announce`",
                self.udp_bind
            ));
        }
        if let Some(ip) = self.announce.iter().find(|ip| ip.is_unspecified()) {
            return Err(format!("relay: cannot announce the wildcard address {ip}"));
        }
        if self.max_streams == 0 || self.max_viewers_per_stream == 0 {
            return Err("relay: max_streams and max_viewers_per_stream must be at least 1".into());
        }
        if self.max_sdp_bytes < 256 {
            return Err("relay: max_sdp_bytes must be at least 256".into());
        }
        Ok(())
    }

    /// The host candidates to announce, given the port the socket got.
    pub fn candidate_addrs(&self, bound: SocketAddr) -> Vec<SocketAddr> {
        if self.announce.is_empty() {
            vec![bound]
        } else {
            self.announce
                .iter()
                .map(|ip| SocketAddr::new(*ip, bound.port()))
                .collect()
        }
    }
}
