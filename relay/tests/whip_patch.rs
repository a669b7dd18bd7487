//! On loopback with webrtc-rs peers: publish/view tokens (401/403/201), ICE server `Link`
//! headers, trickle ICE over PATCH (the offer carries no candidate), an ICE restart over
//! PATCH (200, new credentials, new ETag, media keeps flowing), the PATCH error statuses,
//! and the live / viewer-count / ended events with their coalescing.

#[path = "common/whip.rs"]
mod whip_common;

use std::sync::Arc;
use std::time::Duration;

use rootcast_relay::{IceServer, NoEvents, RelayConfig, RelayHooks};
use webrtc::peer_connection::offer_answer_options::RTCOfferOptions;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use whip_common::{
    Heard, OfferMode, Publisher, RecordingEvents, TestAuth, TestRelay, Viewer, apply_answer,
    assert_loopback_only, wait_connected,
};

const SECS_10: Duration = Duration::from_secs(10);
const SDP: (&str, &str) = ("Content-Type", "application/sdp");
const FRAG: (&str, &str) = ("Content-Type", "application/trickle-ice-sdpfrag");

fn ice_servers() -> Vec<IceServer> {
    vec![
        IceServer {
            urls: vec!["stun:stun.example.org:3478".into()],
            username: String::new(),
            credential: String::new(),
        },
        IceServer {
            urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
            username: "rc-user".into(),
            credential: "rc-pass".into(),
        },
    ]
}

fn line_value<'a>(sdp: &'a str, prefix: &str) -> &'a str {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("{prefix} in {sdp}"))
}

/// The first media section's `m=` line and `a=mid`.
fn first_section(sdp: &str) -> (String, String) {
    let m = sdp
        .lines()
        .find(|l| l.starts_with("m="))
        .unwrap()
        .trim_end();
    let mid = sdp
        .lines()
        .find(|l| l.starts_with("a=mid:"))
        .unwrap()
        .trim_end();
    (m.to_string(), mid.to_string())
}

/// A client fragment: credentials, first section, candidates, maybe end-of-candidates.
fn fragment(sdp: &str, candidates: &[String], end: bool) -> String {
    let (m, mid) = first_section(sdp);
    let mut f = format!(
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n{m}\r\n{mid}\r\n",
        line_value(sdp, "a=ice-ufrag:"),
        line_value(sdp, "a=ice-pwd:")
    );
    for c in candidates {
        f.push_str(&format!("a={c}\r\n"));
    }
    if end {
        f.push_str("a=end-of-candidates\r\n");
    }
    f
}

async fn post(relay: &TestRelay, path: &str, token: &str, sdp: &str) -> whip_common::HttpResponse {
    let auth = format!("Bearer {token}");
    relay
        .request(
            "POST",
            path,
            &[SDP, ("Authorization", &auth)],
            sdp.as_bytes(),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_decide_401_403_201() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let hooks = RelayHooks {
            auth: Arc::new(TestAuth),
            events: Arc::new(NoEvents),
        };
        let relay = TestRelay::start_with(RelayConfig::loopback(), hooks).await;
        let (publisher, offer) = Publisher::new().await;
        let (viewer, view_offer) = Viewer::new().await;

        let r = relay
            .request("POST", "/whip/s2", &[SDP], offer.as_bytes())
            .await;
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        let r = post(&relay, "/whip/s2", "forged", &offer).await;
        assert_eq!(r.status, 401, "{}", r.text());
        let r = post(&relay, "/whip/s2", "view-only", &offer).await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(r.header("www-authenticate"), None);
        let r = post(&relay, "/whip/s2", "only-other", &offer).await;
        assert_eq!(r.status, 403, "{}", r.text());
        // The token is checked before the body: a bad token with a bad body is 401/403.
        let r = post(&relay, "/whip/s2", "view-only", "garbage").await;
        assert_eq!(r.status, 403, "{}", r.text());
        let r = post(&relay, "/whip/s2", "only-s2", &offer).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = post(&relay, "/whep/s2", "view-only", &view_offer).await;
        assert_eq!(r.status, 201, "{}", r.text());

        publisher.close().await;
        viewer.close().await;
        relay.stop().await;
    })
    .await
    .expect("finishes within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickle_restart_links_and_events() {
    tokio::time::timeout(Duration::from_secs(120), scenario())
        .await
        .expect("the scenario finishes within 120 s");
}

async fn scenario() {
    let config = RelayConfig {
        ice_servers: ice_servers(),
        ..RelayConfig::loopback()
    };
    let events = Arc::new(RecordingEvents::default());
    let hooks = RelayHooks {
        auth: Arc::new(TestAuth),
        events: events.clone(),
    };
    let relay = TestRelay::start_with(config, hooks).await;
    let turn_link = r#"<turn:turn.example.org:3478?transport=udp>; rel="ice-server"; username="rc-user"; credential="rc-pass"; credential-type="password""#;
    let stun_link = r#"<stun:stun.example.org:3478>; rel="ice-server""#;

    // OPTIONS on the endpoint: CORS and the ICE servers.
    let r = relay.request("OPTIONS", "/whip/live", &[], b"").await;
    assert_eq!(r.status, 204);
    let links = r.header("link").unwrap_or_default().to_string();
    assert!(
        links.contains(turn_link) && links.contains(stun_link),
        "{links}"
    );

    // A trickling publisher: the offer has no candidate; they follow by PATCH.
    let (publisher, offer, candidates) = Publisher::with_mode(OfferMode::Trickle).await;
    let mut candidates = candidates.unwrap();
    let r = post(&relay, "/whip/live", "test-token", &offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let links = r.header("link").unwrap_or_default().to_string();
    assert!(
        links.contains(turn_link) && links.contains(stun_link),
        "{links}"
    );
    let location = r.header("location").unwrap().to_string();
    let etag = r.header("etag").unwrap().to_string();
    let answer = r.text();
    apply_answer(&publisher.pc, &answer).await;

    let mut trickled = 0;
    loop {
        let next = tokio::time::timeout(SECS_10, candidates.recv())
            .await
            .expect("a candidate or the end of gathering within 10 s")
            .expect("the channel stays open");
        let (lines, end) = match next {
            Some(c) => {
                let addr = c.split(' ').nth(4).unwrap();
                assert!(
                    addr.parse::<std::net::IpAddr>().unwrap().is_loopback(),
                    "{c}"
                );
                (vec![c], false)
            }
            None => (Vec::new(), true),
        };
        let body = fragment(&offer, &lines, end);
        let r = relay
            .request(
                "PATCH",
                &location,
                &[FRAG, ("If-Match", &etag)],
                body.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 204, "trickle PATCH: {}", r.text());
        if end {
            break;
        }
        trickled += 1;
    }
    assert!(trickled >= 1, "at least one candidate trickled");
    wait_connected(&publisher.pc, SECS_10).await;
    events.wait_for(&Heard::Live("live".into()), SECS_10).await;

    // PATCH errors on the live session.
    let r = relay
        .request(
            "PATCH",
            &location,
            &[FRAG, ("If-Match", "\"stale\"")],
            b"a=end-of-candidates\r\n",
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.text());
    let r = relay
        .request("PATCH", &location, &[SDP], b"a=end-of-candidates\r\n")
        .await;
    assert_eq!(r.status, 415, "{}", r.text());
    for bad in [&b"garbage"[..], b"", &[0xff, 0xfe], b"a=ice-ufrag:only\r\n"] {
        let r = relay.request("PATCH", &location, &[FRAG], bad).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
    }
    let unknown = format!("/whip/live/{}", "0".repeat(32));
    let r = relay
        .request("PATCH", &unknown, &[FRAG], b"a=end-of-candidates\r\n")
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // The session's OPTIONS names PATCH.
    let r = relay.request("OPTIONS", &location, &[], b"").await;
    assert_eq!(r.status, 204);
    assert!(r.header("allow").unwrap().contains("PATCH"));
    assert_eq!(
        r.header("accept-patch"),
        Some("application/trickle-ice-sdpfrag")
    );

    // A viewer (complete offer) with a view-only token.
    let (viewer, view_offer) = Viewer::new().await;
    let r = post(&relay, "/whep/live", "view-only", &view_offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.header("link").unwrap_or_default().contains(turn_link));
    let viewer_location = r.header("location").unwrap().to_string();
    apply_answer(&viewer.pc, &r.text()).await;
    wait_connected(&viewer.pc, SECS_10).await;
    viewer.wait_for(30, 30, Duration::from_secs(15)).await;
    events
        .wait_for(&Heard::Viewers("live".into(), 1), SECS_10)
        .await;

    // ICE restart of the publisher over PATCH (If-Match: *).
    let restart = publisher
        .pc
        .create_offer(Some(RTCOfferOptions {
            ice_restart: true,
            ..Default::default()
        }))
        .await
        .unwrap();
    let mut gathered = publisher.pc.gathering_complete_promise().await;
    publisher.pc.set_local_description(restart).await.unwrap();
    tokio::time::timeout(SECS_10, gathered.recv())
        .await
        .expect("gathering after the restart");
    let restart_offer = publisher.pc.local_description().await.unwrap().sdp;
    assert_loopback_only(&restart_offer);
    assert_ne!(
        line_value(&restart_offer, "a=ice-ufrag:"),
        line_value(&offer, "a=ice-ufrag:"),
        "webrtc-rs made new credentials"
    );
    let restart_candidates: Vec<String> = restart_offer
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("a="))
        .filter(|l| l.starts_with("candidate:"))
        .map(str::to_string)
        .collect();
    let body = fragment(&restart_offer, &restart_candidates, true);
    let r = relay
        .request(
            "PATCH",
            &location,
            &[FRAG, ("If-Match", "*")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "ICE restart: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/trickle-ice-sdpfrag")
    );
    let new_etag = r.header("etag").unwrap().to_string();
    assert_ne!(new_etag, etag);
    let server_frag = r.text();
    let new_ufrag = line_value(&server_frag, "a=ice-ufrag:").to_string();
    let new_pwd = line_value(&server_frag, "a=ice-pwd:").to_string();
    assert_ne!(new_ufrag, line_value(&answer, "a=ice-ufrag:"));
    assert!(server_frag.contains("a=end-of-candidates"));
    let server_candidates: Vec<&str> = server_frag
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    assert!(!server_candidates.is_empty(), "{server_frag}");
    assert_loopback_only(&server_frag);

    // The old entity tag is stale now.
    let r = relay
        .request(
            "PATCH",
            &location,
            &[FRAG, ("If-Match", &etag)],
            b"a=end-of-candidates\r\n",
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.text());

    // The publisher applies the relay's new credentials and candidates as an answer.
    let mut restarted_answer = String::new();
    for line in answer.lines() {
        let line = line.trim_end();
        if line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            continue;
        }
        if line.starts_with("a=ice-ufrag:") {
            restarted_answer.push_str(&format!("a=ice-ufrag:{new_ufrag}\r\n"));
        } else if line.starts_with("a=ice-pwd:") {
            restarted_answer.push_str(&format!("a=ice-pwd:{new_pwd}\r\n"));
        } else {
            restarted_answer.push_str(line);
            restarted_answer.push_str("\r\n");
            if line.starts_with("a=mid:") {
                for c in &server_candidates {
                    restarted_answer.push_str(c);
                    restarted_answer.push_str("\r\n");
                }
            }
        }
    }
    publisher
        .pc
        .set_remote_description(RTCSessionDescription::answer(restarted_answer).unwrap())
        .await
        .unwrap();
    // Media keeps flowing through the restarted ICE session.
    let (video, audio) = viewer.counts();
    viewer
        .wait_for(video + 60, audio + 60, Duration::from_secs(15))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (video2, _) = viewer.counts();
    viewer.wait_for(video2 + 30, 0, SECS_10).await;
    wait_connected(&publisher.pc, SECS_10).await;
    let stats = relay.relay.stats().await.unwrap();
    assert_eq!(stats.peers, 2, "{stats:?}");

    // The viewer leaves, then the publisher: viewers 0, then ended.
    let r = relay.request("DELETE", &viewer_location, &[], b"").await;
    assert_eq!(r.status, 204);
    events
        .wait_for(&Heard::Viewers("live".into(), 0), SECS_10)
        .await;
    let r = relay.request("DELETE", &location, &[], b"").await;
    assert_eq!(r.status, 204);
    events.wait_for(&Heard::Ended("live".into()), SECS_10).await;
    assert_eq!(
        events.list(),
        vec![
            Heard::Live("live".into()),
            Heard::Viewers("live".into(), 1),
            Heard::Viewers("live".into(), 0),
            Heard::Ended("live".into()),
        ]
    );

    publisher.close().await;
    viewer.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_counts_are_coalesced_to_one_report_per_half_second() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let events = Arc::new(RecordingEvents::default());
        let hooks = RelayHooks {
            auth: Arc::new(TestAuth),
            events: events.clone(),
        };
        let relay = TestRelay::start_with(RelayConfig::loopback(), hooks).await;
        let (publisher, offer) = Publisher::new().await;
        let r = post(&relay, "/whip/crowd", "test-token", &offer).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let publisher_location = r.header("location").unwrap().to_string();
        apply_answer(&publisher.pc, &r.text()).await;
        wait_connected(&publisher.pc, SECS_10).await;

        // Four viewers join at about the same time.
        let mut viewers = Vec::new();
        for _ in 0..4 {
            let (viewer, view_offer) = Viewer::new().await;
            let r = post(&relay, "/whep/crowd", "test-token", &view_offer).await;
            assert_eq!(r.status, 201, "{}", r.text());
            apply_answer(&viewer.pc, &r.text()).await;
            viewers.push((viewer, r.header("location").unwrap().to_string()));
        }
        for (v, _) in &viewers {
            wait_connected(&v.pc, SECS_10).await;
        }
        events
            .wait_for(&Heard::Viewers("crowd".into(), 4), SECS_10)
            .await;
        // They leave at once; the last count (0) is reported, then ended.
        for (_, location) in &viewers {
            let r = relay.request("DELETE", location, &[], b"").await;
            assert_eq!(r.status, 204);
        }
        events
            .wait_for(&Heard::Viewers("crowd".into(), 0), SECS_10)
            .await;
        let r = relay.request("DELETE", &publisher_location, &[], b"").await;
        assert_eq!(r.status, 204);
        events
            .wait_for(&Heard::Ended("crowd".into()), SECS_10)
            .await;

        let heard = events.heard.lock().unwrap().clone();
        let counts: Vec<(tokio::time::Instant, usize)> = heard
            .iter()
            .filter_map(|(t, h)| match h {
                Heard::Viewers(_, n) => Some((*t, *n)),
                _ => None,
            })
            .collect();
        for pair in counts.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            // 500 ms apart, minus scheduling slack of the recording itself.
            assert!(
                gap >= Duration::from_millis(450),
                "two reports {gap:?} apart: {heard:?}"
            );
        }
        assert!(counts.len() < 8, "coalesced: {heard:?}");
        assert_eq!(heard.first().unwrap().1, Heard::Live("crowd".into()));
        assert_eq!(heard.last().unwrap().1, Heard::Ended("crowd".into()));
        assert_eq!(counts.last().unwrap().1, 0);

        publisher.close().await;
        for (v, _) in viewers {
            v.close().await;
        }
        relay.stop().await;
    })
    .await
    .expect("finishes within 90 s");
}
