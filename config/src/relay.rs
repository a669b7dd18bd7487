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
    /// IP addresses announced as host candidates, with the bound UDP port (and the bound
    /// TCP port for ICE-TCP). Empty: the bind address itself (which must then be a specific
    /// address, not `0.0.0.0`/`::`).
    pub announce: Vec<IpAddr>,
    /// ICE-TCP (RFC 6544 passive candidates, RFC 4571 framing) for clients whose networks
    /// block UDP: the TCP address to listen on, e.g. `0.0.0.0:8189` or `0.0.0.0:443`.
    /// Empty (the default): no ICE-TCP. Port 0 picks a free port.
    pub tcp_bind: String,
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
    /// Whether WHIP/WHEP POSTs need a publish/view token issued by the hub (401 without a
    /// valid one, 403 for another stream or access). Off by default so the embedded demo
    /// works without tokens; turn it on for any deployment reachable by others.
    pub require_token: bool,
    /// STUN/TURN servers handed to clients in `Link: <url>; rel="ice-server"` headers
    /// (RFC 9725 §4.6) on every 201 and on `OPTIONS`. The relay itself uses none.
    pub ice_servers: Vec<IceServer>,
    /// Record every live stream to WebM in `recording_dir` (VP8 and Opus as they arrive,
    /// no transcoding). Default on.
    pub record: bool,
    /// The folder for recordings (relative to the working directory; created when
    /// missing), listed at `GET /recordings`. Empty: no recording and no list.
    pub recording_dir: String,
    /// Finished recordings that started more than this many days ago are deleted (checked
    /// at start-up and every hour). 0, the default: every recording is kept.
    pub recording_retention_days: u32,
}

/// One STUN or TURN server for clients (`[[relay.ice_servers]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:`, `stuns:`, `turn:` or `turns:` URLs (RFC 7064/7065), e.g.
    /// `turn:turn.example.org:3478?transport=udp`.
    pub urls: Vec<String>,
    /// TURN user name (required for `turn:`/`turns:`; empty for STUN).
    #[serde(default)]
    pub username: String,
    /// TURN password (`credential-type="password"`).
    #[serde(default)]
    pub credential: String,
}

impl IceServer {
    /// The `Link` header values for this server: one per URL.
    pub fn link_values(&self) -> Vec<String> {
        self.urls
            .iter()
            .map(|url| {
                let mut v = format!("<{url}>; rel=\"ice-server\"");
                if is_turn(url) && !self.username.is_empty() {
                    v.push_str(&format!(
                        "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                        self.username, self.credential
                    ));
                }
                v
            })
            .collect()
    }
}

fn is_turn(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("turn:") || lower.starts_with("turns:")
}

/// Why a STUN/TURN URL is not acceptable, if it is not.
fn ice_url_problem(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once(':') else {
        return Some(format!(
            "{url:?} has no scheme (stun:, stuns:, turn:, turns:)"
        ));
    };
    if !matches!(scheme, "stun" | "stuns" | "turn" | "turns") {
        return Some(format!(
            "{url:?}: the scheme must be stun:, stuns:, turn: or turns:"
        ));
    }
    let host = rest.split(['?', ':']).next().unwrap_or("");
    // An IPv6 literal is written [..]: its host part starts with '['.
    if host.is_empty() && !rest.starts_with('[') {
        return Some(format!("{url:?} names no host"));
    }
    if url.len() > 512 {
        return Some(format!("{url:?} is longer than 512 characters"));
    }
    if url
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | '"' | ','))
    {
        return Some(format!(
            "{url:?} contains a space, a control character or one of < > \" ,"
        ));
    }
    if (scheme == "stun" || scheme == "stuns") && rest.contains("transport=") {
        return Some(format!("{url:?}: stun: URLs take no ?transport="));
    }
    None
}

/// Whether a value can go into a quoted `Link` parameter as it is.
fn quotable(value: &str) -> bool {
    value.len() <= 512
        && value
            .chars()
            .all(|c| !c.is_control() && c != '"' && c != '\\' && c.is_ascii())
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            udp_bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8189),
            announce: Vec::new(),
            tcp_bind: String::new(),
            max_viewers_per_stream: 500,
            max_streams: 16,
            max_sdp_bytes: 32 * 1024,
            connect_timeout_ms: 15_000,
            disconnect_grace_ms: 5_000,
            initial_viewer_bitrate_bps: 1_000_000,
            require_token: false,
            ice_servers: Vec::new(),
            record: true,
            recording_dir: "data/recordings".to_owned(),
            recording_retention_days: 0,
        }
    }
}

impl RelayConfig {
    /// The test setting: UDP on `127.0.0.1:0`, only the loopback address announced, no
    /// recording (a test that records sets its own `recording_dir`).
    pub fn loopback() -> RelayConfig {
        RelayConfig {
            udp_bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            recording_dir: String::new(),
            ..RelayConfig::default()
        }
    }

    /// The recording folder, when one is set (`recording_dir` not empty).
    pub fn recording_folder(&self) -> Option<std::path::PathBuf> {
        let dir = self.recording_dir.trim();
        (!dir.is_empty()).then(|| std::path::PathBuf::from(dir))
    }

    /// Where live streams are recorded: the folder, when `record` is on and one is set.
    pub fn recording_target(&self) -> Option<std::path::PathBuf> {
        self.recording_folder().filter(|_| self.record)
    }

    /// The ICE-TCP listen address, when ICE-TCP is on (`tcp_bind` set and valid).
    pub fn tcp_bind_addr(&self) -> Option<SocketAddr> {
        self.tcp_bind.trim().parse().ok()
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
        if !self.tcp_bind.trim().is_empty() {
            match self.tcp_bind_addr() {
                None => problems.push((
                    "relay.tcp_bind",
                    format!(
                        "{:?} is not an address with a port (e.g. 0.0.0.0:8189); empty turns ICE-TCP off",
                        self.tcp_bind
                    ),
                )),
                Some(addr) if addr.ip().is_unspecified() && self.announce.is_empty() => problems
                    .push((
                        "relay.tcp_bind",
                        format!(
                            "{addr} is a wildcard address; list the addresses clients reach the relay on in relay.announce"
                        ),
                    )),
                Some(_) => {}
            }
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
        for (i, server) in self.ice_servers.iter().enumerate() {
            let mut problem = |reason: String| {
                problems.push(("relay.ice_servers", format!("entry {}: {reason}", i + 1)));
            };
            if server.urls.is_empty() {
                problem("lists no urls".to_owned());
            }
            for url in &server.urls {
                if let Some(reason) = ice_url_problem(url) {
                    problem(reason);
                }
            }
            let turn = server.urls.iter().any(|u| is_turn(u));
            if turn && (server.username.is_empty() || server.credential.is_empty()) {
                problem("a turn:/turns: server needs a username and a credential".to_owned());
            }
            let has_credentials = !server.username.is_empty() || !server.credential.is_empty();
            if !turn && has_credentials {
                problem("username and credential are for turn:/turns: servers only".to_owned());
            }
            if !quotable(&server.username) || !quotable(&server.credential) {
                problem(
                    "username and credential must be printable ASCII without \" or \\, at most 512 characters"
                        .to_owned(),
                );
            }
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
    fn ice_servers_become_link_headers_and_are_checked() {
        let turn = IceServer {
            urls: vec![
                "turn:turn.example.org:3478?transport=udp".into(),
                "turns:turn.example.org:5349?transport=tcp".into(),
            ],
            username: "u1".into(),
            credential: "p@ss".into(),
        };
        let stun = IceServer {
            urls: vec!["stun:stun.example.org".into()],
            username: String::new(),
            credential: String::new(),
        };
        assert_eq!(
            turn.link_values()[0],
            r#"<turn:turn.example.org:3478?transport=udp>; rel="ice-server"; username="u1"; credential="p@ss"; credential-type="password""#
        );
        assert_eq!(
            stun.link_values(),
            vec![r#"<stun:stun.example.org>; rel="ice-server""#.to_owned()]
        );
        let config = RelayConfig {
            ice_servers: vec![turn.clone(), stun.clone()],
            ..RelayConfig::default()
        };
        assert!(config.problems().is_empty(), "{:?}", config.problems());

        let bad = |server: IceServer| {
            let config = RelayConfig {
                ice_servers: vec![server],
                ..RelayConfig::default()
            };
            let problems = config.problems();
            assert!(!problems.is_empty(), "{config:?}");
            assert!(problems.iter().all(|(k, _)| *k == "relay.ice_servers"));
        };
        bad(IceServer {
            urls: vec![],
            ..stun.clone()
        });
        bad(IceServer {
            urls: vec!["http://example.org".into()],
            ..stun.clone()
        });
        bad(IceServer {
            urls: vec!["stun:".into()],
            ..stun.clone()
        });
        bad(IceServer {
            urls: vec!["stun:a b".into()],
            ..stun.clone()
        });
        bad(IceServer {
            urls: vec!["turn:x>y".into()],
            ..turn.clone()
        });
        bad(IceServer {
            username: String::new(),
            ..turn.clone()
        });
        bad(IceServer {
            credential: "quote\"inside".into(),
            ..turn.clone()
        });
        bad(IceServer {
            username: "u".into(),
            credential: "p".into(),
            ..stun.clone()
        });
    }

    #[test]
    fn tcp_bind_is_off_by_default_and_checked() {
        let mut config = RelayConfig::default();
        assert_eq!(config.tcp_bind_addr(), None);
        config.tcp_bind = "127.0.0.1:8189".into();
        assert!(config.problems().is_empty());
        assert_eq!(
            config.tcp_bind_addr(),
            Some("127.0.0.1:8189".parse().unwrap())
        );
        config.tcp_bind = "8189".into();
        assert_eq!(config.problems()[0].0, "relay.tcp_bind");
        config.tcp_bind = "0.0.0.0:443".into();
        assert_eq!(config.problems()[0].0, "relay.tcp_bind");
        config.announce = vec!["203.0.113.7".parse().unwrap()];
        assert!(config.problems().is_empty());
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
