//! Bad and hostile input to the WHIP/WHEP endpoints: each gets its documented status, none
//! panics, and the relay keeps answering afterwards. Loopback only; no media flows.

#[path = "common/whip.rs"]
mod whip_common;

use std::time::Duration;

use rootcast_relay::RelayConfig;
use whip_common::{Publisher, TOKEN, TestRelay, Viewer};

const SDP: (&str, &str) = ("Content-Type", "application/sdp");
const AUTH: (&str, &str) = ("Authorization", TOKEN);

/// xorshift64*: deterministic mutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of a real offer: byte flips, dropped/duplicated/swapped lines, truncation,
/// hostile numbers, garbage and oversized attributes.
fn mutate(offer: &str, rng: &mut Rng) -> Vec<u8> {
    let mut lines: Vec<String> = offer.split("\r\n").map(str::to_string).collect();
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(lines.len());
        match rng.below(10) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3 => lines[i] = lines[i].replace(|c: char| c.is_ascii_digit(), "9"),
            4 => lines[i].push_str(" 4294967296 -1 99999999999999999999"),
            5 => {
                lines[i] = format!(
                    "a=rtpmap:{} {}/0/0",
                    rng.below(300),
                    "x".repeat(rng.below(40))
                )
            }
            6 => lines[i] = format!("m=video {} RTP/AVP {}", rng.below(70000), rng.below(300)),
            7 => lines[i] = "a=simulcast:send ;;;~~~ recv".to_string(),
            8 => {
                let cut = rng.below(lines[i].len() + 1);
                lines[i].truncate(cut);
            }
            _ => lines[i] = format!("a=ssrc-group:FID {} {}", rng.next(), rng.next()),
        }
    }
    let mut bytes = lines.join("\r\n").into_bytes();
    // Sometimes flip a few bytes (may make it non-UTF-8), sometimes truncate.
    if rng.below(3) == 0 {
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
    }
    if rng.below(5) == 0 {
        bytes.truncate(rng.below(bytes.len() + 1));
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_bad_input_gets_documented_statuses() {
    tokio::time::timeout(Duration::from_secs(120), bad_input())
        .await
        .expect("finishes within 120 s");
}

async fn bad_input() {
    let hooks = rootcast_relay::RelayHooks {
        auth: std::sync::Arc::new(whip_common::TestAuth),
        events: std::sync::Arc::new(rootcast_relay::NoEvents),
    };
    let relay = TestRelay::start_with(RelayConfig::loopback(), hooks).await;
    let (publisher, offer) = Publisher::new().await;
    let (viewer, view_offer) = Viewer::new().await;

    // 401: no token, or an empty one.
    let r = relay
        .request("POST", "/whip/s1", &[SDP], offer.as_bytes())
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = relay
        .request(
            "POST",
            "/whip/s1",
            &[SDP, ("Authorization", "Bearer ")],
            offer.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 401);
    // 415: not application/sdp.
    let r = relay
        .request(
            "POST",
            "/whip/s1",
            &[("Content-Type", "text/plain"), AUTH],
            offer.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text());
    let r = relay
        .request("POST", "/whip/s1", &[AUTH], offer.as_bytes())
        .await;
    assert_eq!(r.status, 415);
    // 413: larger than max_sdp_bytes.
    let big = format!("{offer}{}", "a=x-padding:0123456789abcdef\r\n".repeat(2000));
    let r = relay
        .request("POST", "/whip/s1", &[SDP, AUTH], big.as_bytes())
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    // 400: not SDP, not UTF-8, a bad stream name.
    for body in [&b"hello"[..], b"", b"v=0\r\n", &[0xff, 0xfe, 0x00]] {
        let r = relay.request("POST", "/whip/s1", &[SDP, AUTH], body).await;
        assert_eq!(r.status, 400, "{:?}: {}", body, r.text());
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        assert!(!r.text().trim().is_empty());
    }
    let r = relay.post_offer("/whip/bad%20name", &offer).await;
    assert_eq!(r.status, 400, "{}", r.text());
    // 400: a WHEP (recvonly) offer posted to WHIP, and a WHIP offer posted to WHEP.
    let r = relay.post_offer("/whip/s1", &view_offer).await;
    assert_eq!(r.status, 400, "{}", r.text());
    // 422: no Opus, VP8 or H.264.
    let no_codec = offer
        .replace("opus/", "x-opus/")
        .replace("VP8/", "x-vp8/")
        .replace("H264/", "x-h264/");
    let r = relay.post_offer("/whip/s1", &no_codec).await;
    assert_eq!(r.status, 422, "{}", r.text());
    // 404: WHEP for a stream with no publisher.
    let r = relay.post_offer("/whep/nobody-here", &view_offer).await;
    assert_eq!(r.status, 404, "{}", r.text());
    // 404: DELETE and PATCH of unknown sessions.
    let r = relay
        .request("DELETE", "/whip/s1/0123456789abcdef", &[AUTH], b"")
        .await;
    assert_eq!(r.status, 404);
    let r = relay
        .request("DELETE", "/whep/s1/0123456789abcdef", &[AUTH], b"")
        .await;
    assert_eq!(r.status, 404);
    let r = relay
        .request("PATCH", "/whip/s1/0123456789abcdef", &[AUTH], b"")
        .await;
    assert_eq!(r.status, 404);
    // OPTIONS: CORS preflight.
    let r = relay.request("OPTIONS", "/whip/s1", &[], b"").await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert_eq!(r.header("accept-post"), Some("application/sdp"));
    // Methods the endpoint does not have.
    let r = relay.request("GET", "/whip/s1", &[], b"").await;
    assert_eq!(r.status, 405);

    // A WHIP offer to WHEP is 400 (it does not receive) once the stream is live; the real
    // publisher gets 201 and a second one 409.
    let r = relay.post_offer("/whip/s1", &offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let location = r.header("location").unwrap().to_string();
    let r = relay.post_offer("/whep/s1", &offer).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = relay.post_offer("/whip/s1", &offer).await;
    assert_eq!(r.status, 409, "{}", r.text());

    // Hundreds of mutated offers: only 201, 400 or 422; never a panic or a hang.
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..300 {
        let body = mutate(&offer, &mut rng);
        let path = format!("/whip/fuzz-{i}");
        let r = relay.request("POST", &path, &[SDP, AUTH], &body).await;
        *seen.entry(r.status).or_insert(0) += 1;
        assert!(
            matches!(r.status, 201 | 400 | 422),
            "mutation {i}: {} {}\n{}",
            r.status,
            r.text(),
            String::from_utf8_lossy(&body)
        );
        if r.status == 201 {
            let loc = r.header("location").unwrap().to_string();
            let d = relay.request("DELETE", &loc, &[AUTH], b"").await;
            assert_eq!(d.status, 204);
        }
    }
    eprintln!("fuzz statuses: {seen:?}");
    assert!(seen.get(&400).copied().unwrap_or(0) > 100, "{seen:?}");

    // Still alive and clean: only the s1 publisher (never connected) is left.
    let stats = relay.relay.stats().await.unwrap();
    assert_eq!(stats.peers, 1, "{stats:?}");
    assert_eq!(stats.streams.len(), 1, "{stats:?}");
    let r = relay.request("DELETE", &location, &[AUTH], b"").await;
    assert_eq!(r.status, 204);
    let stats = relay.relay.stats().await.unwrap();
    assert_eq!((stats.peers, stats.streams.len()), (0, 0), "{stats:?}");

    publisher.close().await;
    viewer.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_capacity_gets_503() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let config = RelayConfig {
            max_streams: 1,
            max_viewers_per_stream: 1,
            ..RelayConfig::loopback()
        };
        let relay = TestRelay::start(config).await;
        let (publisher, offer) = Publisher::new().await;
        let r = relay.post_offer("/whip/one", &offer).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = relay.post_offer("/whip/two", &offer).await;
        assert_eq!(r.status, 503, "{}", r.text());

        let (v1, o1) = Viewer::new().await;
        let (v2, o2) = Viewer::new().await;
        let r = relay.post_offer("/whep/one", &o1).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = relay.post_offer("/whep/one", &o2).await;
        assert_eq!(r.status, 503, "{}", r.text());

        // A viewer that offers only H.264 video (no VP8, no Opus) to a VP8 + Opus publisher:
        // valid on its own, but nothing in common with the publisher: 422.
        let no_common = o2.replace("VP8/", "x-vp8/").replace("opus/", "x-opus/");
        assert!(no_common.contains("H264/"));
        let r = relay.post_offer("/whep/one", &no_common).await;
        assert_eq!(r.status, 422, "{}", r.text());

        publisher.close().await;
        v1.close().await;
        v2.close().await;
        relay.stop().await;
    })
    .await
    .expect("finishes within 60 s");
}
