//! The webrtc-rs side of `whep-viewers`: peers that gather candidates on **one contained
//! network** only ([`PeerNetwork`]: loopback, or one address inside the private network
//! namespace a Janus run makes; UDP over IPv4, mDNS off, no STUN or TURN server), and the
//! HTTP requests WHIP, WHEP and Janus's API need.
//!
//! Invariant: no SDP with a candidate outside the run's network is ever sent or applied
//! ([`PeerNetwork::check`] runs on every offer and answer), so no packet of a run can leave
//! the loopback interface or the run's own namespace.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;

use crate::netns;

/// Where a run's peers gather candidates and which candidates they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerNetwork {
    /// 127.0.0.1 host candidates; only 127.0.0.0/8 candidates accepted (rootcast's relay).
    Loopback,
    /// Inside a private network namespace (`netns.rs`): gather on `own` only; accept
    /// candidates on `own`, `server` or loopback (Janus, which will not gather on `lo`).
    Namespace { own: Ipv4Addr, server: Ipv4Addr },
}

impl PeerNetwork {
    /// `Ok` when the SDP has candidates and every `a=candidate` names an address of this
    /// network.
    pub fn check(self, sdp: &str) -> anyhow::Result<()> {
        let mut candidates = 0;
        for line in sdp.lines() {
            let Some(candidate) = line.strip_prefix("a=candidate:") else {
                continue;
            };
            candidates += 1;
            let address = candidate.split(' ').nth(4).unwrap_or_default();
            match address.parse::<IpAddr>() {
                Ok(ip) if self.contains(ip) => {}
                _ => bail!("a candidate outside the run's network ({self:?}): {line}"),
            }
        }
        if candidates == 0 {
            bail!("the SDP has no candidate");
        }
        Ok(())
    }

    fn contains(self, ip: IpAddr) -> bool {
        match self {
            PeerNetwork::Loopback => ip.is_loopback(),
            PeerNetwork::Namespace { own, server } => {
                ip.is_loopback() || ip == IpAddr::V4(own) || ip == IpAddr::V4(server)
            }
        }
    }
}

/// A peer connection whose ICE agent gathers only on `network`'s own address, with the
/// default codecs and interceptors (NACK, RTCP reports, transport-wide congestion control
/// feedback), as a browser would have.
pub async fn peer(network: PeerNetwork) -> anyhow::Result<Arc<RTCPeerConnection>> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    let registry = register_default_interceptors(Registry::new(), &mut media)?;
    let mut settings = SettingEngine::default();
    match network {
        PeerNetwork::Loopback => {
            settings.set_ip_filter(Box::new(|ip: IpAddr| ip.is_loopback()));
            settings.set_interface_filter(Box::new(|name: &str| name == "lo"));
            settings.set_include_loopback_candidate(true);
        }
        PeerNetwork::Namespace { own, .. } => {
            settings.set_ip_filter(Box::new(move |ip: IpAddr| ip == IpAddr::V4(own)));
        }
    }
    settings.set_network_types(vec![NetworkType::Udp4]);
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    let api = APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build();
    Ok(Arc::new(
        api.new_peer_connection(RTCConfiguration::default()).await?,
    ))
}

/// Creates the offer and waits (at most 10 s) for ICE gathering: WHIP and WHEP without
/// trickle need every candidate in the offer. Fails if a candidate is outside `network`.
pub async fn complete_offer(
    pc: &RTCPeerConnection,
    network: PeerNetwork,
) -> anyhow::Result<String> {
    let offer = pc.create_offer(None).await?;
    complete_local(pc, offer, network)
        .await
        .context("our own offer")
}

/// Applies a server's offer (Janus offers to its subscribers) and returns the complete
/// answer.
pub async fn answer_offer(
    pc: &RTCPeerConnection,
    offer: &str,
    network: PeerNetwork,
) -> anyhow::Result<String> {
    network.check(offer).context("the server's offer")?;
    pc.set_remote_description(RTCSessionDescription::offer(offer.to_owned())?)
        .await?;
    let answer = pc.create_answer(None).await?;
    complete_local(pc, answer, network)
        .await
        .context("our own answer")
}

async fn complete_local(
    pc: &RTCPeerConnection,
    description: RTCSessionDescription,
    network: PeerNetwork,
) -> anyhow::Result<String> {
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(description).await?;
    tokio::time::timeout(Duration::from_secs(10), gathered.recv())
        .await
        .context("ICE gathering did not complete within 10 s")?;
    let sdp = pc
        .local_description()
        .await
        .context("no local description")?
        .sdp;
    network.check(&sdp)?;
    Ok(sdp)
}

/// Applies the server's answer, once its candidates are known to be inside `network`.
pub async fn apply_answer(
    pc: &RTCPeerConnection,
    answer: &str,
    network: PeerNetwork,
) -> anyhow::Result<()> {
    network.check(answer).context("the server's answer")?;
    pc.set_remote_description(RTCSessionDescription::answer(answer.to_owned())?)
        .await?;
    Ok(())
}

/// POSTs an SDP offer to a WHIP/WHEP endpoint; returns the answer of a `201`, or fails
/// with the status and body.
pub async fn post_offer(server: SocketAddr, path: &str, offer: &str) -> anyhow::Result<String> {
    let (status, body) = request(
        server,
        "POST",
        path,
        Some(("application/sdp", offer)),
        Duration::from_secs(10),
    )
    .await?;
    if status != 201 {
        bail!(
            "POST {path}: {status} {}",
            body.chars().take(200).collect::<String>()
        );
    }
    Ok(body)
}

/// One HTTP/1.1 request (`Connection: close`) to a server on loopback or at Janus's
/// address in a run's private namespace (`netns.rs`), with an optional (content type,
/// body); the status and body of the response, within `limit`.
pub async fn request(
    server: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
    limit: Duration,
) -> anyhow::Result<(u16, String)> {
    if !(server.ip().is_loopback() || server.ip() == IpAddr::V4(netns::SERVER_ADDRESS)) {
        bail!("{server} is neither on loopback nor Janus's address in the run's namespace");
    }
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server).await?;
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n");
        if let Some((content_type, body)) = body {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        if let Some((_, body)) = body {
            stream.write_all(body.as_bytes()).await?;
        }
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(limit, exchange)
        .await
        .with_context(|| format!("{method} {path}: no answer within {} s", limit.as_secs()))??;
    parse_response(&raw).with_context(|| format!("{method} {path}"))
}

/// The status and body of an HTTP/1.1 response read to its end (plain or chunked).
fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, String)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("an incomplete HTTP response")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .replace(' ', "")
            .starts_with("transfer-encoding:chunked")
    });
    let mut body = &raw[split + 4..];
    if !chunked {
        return Ok((status, String::from_utf8_lossy(body).into_owned()));
    }
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16)
            .context("a bad chunk size")?;
        if size == 0 {
            break;
        }
        let data = body
            .get(end + 2..end + 2 + size)
            .context("a truncated chunk")?;
        out.extend_from_slice(data);
        body = body.get(end + 4 + size..).unwrap_or_default();
    }
    Ok((status, String::from_utf8_lossy(&out).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_candidates_inside_the_runs_network_pass() {
        let loopback = PeerNetwork::Loopback;
        let ok = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n";
        assert!(loopback.check(ok).is_ok());
        let lan = format!("{ok}a=candidate:2 1 udp 2130706431 192.168.1.4 5000 typ host\r\n");
        assert!(loopback.check(&lan).is_err());
        let mdns = "a=candidate:3 1 udp 2130706431 abcd.local 5000 typ host\r\n";
        assert!(loopback.check(mdns).is_err());
        assert!(loopback.check("v=0\r\n").is_err(), "no candidate at all");

        let namespace = PeerNetwork::Namespace {
            own: Ipv4Addr::new(10, 77, 0, 2),
            server: Ipv4Addr::new(10, 77, 0, 1),
        };
        let janus = "a=candidate:1 1 udp 2015363327 10.77.0.1 20000 typ host\r\n";
        assert!(namespace.check(janus).is_ok());
        assert!(loopback.check(janus).is_err(), "not loopback");
        assert!(
            namespace.check(ok).is_ok(),
            "loopback is inside the namespace too"
        );
        let neighbour = "a=candidate:1 1 udp 2015363327 10.77.0.3 20000 typ host\r\n";
        assert!(
            namespace.check(neighbour).is_err(),
            "only the two addresses"
        );
        assert!(namespace.check(&lan).is_err());
    }

    #[test]
    fn responses_plain_and_chunked() {
        let plain = b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nv=0";
        assert_eq!(parse_response(plain).unwrap(), (201, "v=0".to_owned()));
        let chunked =
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfull\r\n2\r\n!!\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (503, "full!!".to_owned()));
        assert!(parse_response(b"HTTP/1.1 201").is_err());
    }
}
