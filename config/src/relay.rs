//! [`RelayConfig`]: the WebRTC relay's settings (`[relay]`), used by `rootcast-relay`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of the WebRTC relay.
///
/// `Default` is a safe single-machine setting: UDP on `127.0.0.1:8189`, the bind address
/// announced as the only ICE candidate. A deployment binds `0.0.0.0:8189` (or a specific
/// interface) and lists the addresses clients reach it on in `announce`. Tests use
/// [`RelayConfig::loopback`] (`127.0.0.1:0`, a free port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

    /// Checks what serde cannot: every problem, as (key, reason).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.announce.is_empty() && self.udp_bind.ip().is_unspecified() {
            problems.push((
                "relay.udp_bind",
                format!(
                    "{} is a wildcard address; list the addresses clients reach the relay on in relay.announce",
                    self.udp_bind
                ),
            ));
        }
        if let Some(ip) = self.announce.iter().find(|ip| ip.is_unspecified()) {
            problems.push((
                "relay.announce",
                format!("cannot announce the wildcard address {ip}"),
            ));
        }
        if self.max_streams == 0 {
            problems.push(("relay.max_streams", "must be at least 1".to_owned()));
        }
        if self.max_viewers_per_stream == 0 {
            problems.push((
                "relay.max_viewers_per_stream",
                "must be at least 1".to_owned(),
            ));
        }
        if self.max_sdp_bytes < 256 {
            problems.push(("relay.max_sdp_bytes", "must be at least 256".to_owned()));
        }
        problems
    }

    /// The first problem [`RelayConfig::problems`] finds, as one readable line.
    pub fn validate(&self) -> Result<(), String> {
        match self.problems().into_iter().next() {
            Some((key, reason)) => Err(format!("{key}: {reason}")),
            None => Ok(()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_announces_its_bind_address() {
        let config = RelayConfig::default();
        assert!(config.problems().is_empty());
        let bound: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert_eq!(config.candidate_addrs(bound), vec![bound]);
    }

    #[test]
    fn a_wildcard_bind_needs_announced_addresses_with_the_bound_port() {
        let mut config = RelayConfig {
            udp_bind: "0.0.0.0:8189".parse().unwrap(),
            ..RelayConfig::default()
        };
        let problems = config.problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "relay.udp_bind");
        config.announce = vec!["203.0.113.7".parse().unwrap()];
        assert!(config.validate().is_ok());
        let bound: SocketAddr = "0.0.0.0:8189".parse().unwrap();
        assert_eq!(
            config.candidate_addrs(bound),
            vec!["203.0.113.7:8189".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let config = RelayConfig {
            announce: vec!["0.0.0.0".parse().unwrap()],
            max_streams: 0,
            max_viewers_per_stream: 0,
            max_sdp_bytes: 10,
            ..RelayConfig::default()
        };
        let keys: Vec<&str> = config.problems().iter().map(|(key, _)| *key).collect();
        assert_eq!(
            keys,
            vec![
                "relay.announce",
                "relay.max_streams",
                "relay.max_viewers_per_stream",
                "relay.max_sdp_bytes"
            ]
        );
    }
}
