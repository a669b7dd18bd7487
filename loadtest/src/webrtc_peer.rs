//! The webrtc-rs side of `whep-viewers`: peers that gather **only loopback candidates**
//! (an IP filter and an interface filter for `lo`, loopback candidates included — webrtc-rs
//! skips them by default —, UDP over IPv4 only, mDNS off, no STUN or TURN server), and the
//! one HTTP request WHIP and WHEP need (POST an SDP offer, read the answer).
//!
//! Invariant: no SDP with a non-loopback candidate is ever sent or applied
//! ([`loopback_only`] is checked on every offer and answer), so no packet of a run can leave
//! the loopback interface.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
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

/// A peer connection whose ICE agent gathers only 127.0.0.1 host candidates, with the
/// default codecs and interceptors (NACK, RTCP reports, transport-wide congestion control
/// feedback), as a browser would have.
pub async fn loopback_peer() -> anyhow::Result<Arc<RTCPeerConnection>> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    let registry = register_default_interceptors(Registry::new(), &mut media)?;
    let mut settings = SettingEngine::default();
    settings.set_ip_filter(Box::new(|ip: IpAddr| ip.is_loopback()));
    settings.set_interface_filter(Box::new(|name: &str| name == "lo"));
    settings.set_include_loopback_candidate(true);
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
/// trickle need every candidate in the offer. Fails if any candidate is not loopback.
pub async fn complete_offer(pc: &RTCPeerConnection) -> anyhow::Result<String> {
    let offer = pc.create_offer(None).await?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await?;
    tokio::time::timeout(Duration::from_secs(10), gathered.recv())
        .await
        .context("ICE gathering did not complete within 10 s")?;
    let sdp = pc
        .local_description()
        .await
        .context("no local description")?
        .sdp;
    loopback_only(&sdp).context("our own offer")?;
    Ok(sdp)
}

/// Applies the relay's answer, once it is known to name only loopback candidates.
pub async fn apply_answer(pc: &RTCPeerConnection, answer: &str) -> anyhow::Result<()> {
    loopback_only(answer).context("the relay's answer")?;
    pc.set_remote_description(RTCSessionDescription::answer(answer.to_owned())?)
        .await?;
    Ok(())
}

/// `Ok` when the SDP has candidates and every `a=candidate` names a 127.0.0.0/8 address.
pub fn loopback_only(sdp: &str) -> anyhow::Result<()> {
    let mut candidates = 0;
    for line in sdp.lines() {
        let Some(candidate) = line.strip_prefix("a=candidate:") else {
            continue;
        };
        candidates += 1;
        let address = candidate.split(' ').nth(4).unwrap_or_default();
        match address.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => {}
            _ => bail!("a candidate that is not on loopback: {line}"),
        }
    }
    if candidates == 0 {
        bail!("the SDP has no candidate");
    }
    Ok(())
}

/// POSTs an SDP offer to a loopback WHIP/WHEP endpoint (`Connection: close`, at most
/// 10 s); returns the answer of a `201`, or fails with the status and body.
pub async fn post_offer(server: SocketAddr, path: &str, offer: &str) -> anyhow::Result<String> {
    if !server.ip().is_loopback() {
        bail!("{server} is not a loopback address");
    }
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server).await?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
            offer.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(offer.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .with_context(|| format!("POST {path}: no answer within 10 s"))??;
    let (status, body) = parse_response(&raw).with_context(|| format!("POST {path}"))?;
    if status != 201 {
        bail!(
            "POST {path}: {status} {}",
            body.chars().take(200).collect::<String>()
        );
    }
    Ok(body)
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
    fn only_loopback_candidates_pass() {
        let ok = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n";
        assert!(loopback_only(ok).is_ok());
        let lan = format!("{ok}a=candidate:2 1 udp 2130706431 192.168.1.4 5000 typ host\r\n");
        assert!(loopback_only(&lan).is_err());
        let mdns = "a=candidate:3 1 udp 2130706431 abcd.local 5000 typ host\r\n";
        assert!(loopback_only(mdns).is_err());
        assert!(loopback_only("v=0\r\n").is_err(), "no candidate at all");
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
