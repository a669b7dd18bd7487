//! The WHEP layer route (`/whep/{stream}/{session}/layer`, the WHEP draft's layer selection
//! extension plus audio-only) over HTTP, with a webrtc-rs publisher and viewer on loopback:
//! the `Link` in the 201, statuses (200, 400, 404, 204 for OPTIONS), audio-only
//! stopping video while audio goes on, and no bandwidth estimate for a viewer of a
//! single-layer stream.

#[path = "common/whip.rs"]
mod whip_common;

use std::time::Duration;

use rootcast_relay::RelayConfig;
use whip_common::{Publisher, TOKEN, TestRelay, Viewer, apply_answer, wait_connected};

const SECS_10: Duration = Duration::from_secs(10);
const JSON: (&str, &str) = ("Content-Type", "application/json");
const AUTH: (&str, &str) = ("Authorization", TOKEN);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_route_picks_layers_and_audio_only() {
    tokio::time::timeout(Duration::from_secs(90), scenario())
        .await
        .expect("the scenario finishes within 90 s");
}

async fn scenario() {
    let relay = TestRelay::start(RelayConfig::loopback()).await;

    let (publisher, offer) = Publisher::new().await;
    let r = relay.post_offer("/whip/layers", &offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("link"), None, "WHIP has no layer route");
    apply_answer(&publisher.pc, &r.text()).await;
    wait_connected(&publisher.pc, SECS_10).await;

    let (viewer, offer) = Viewer::new().await;
    let r = relay.post_offer("/whep/layers", &offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.text();
    // One layer, no bandwidth estimation: the viewer offered transport-wide congestion
    // control feedback, and the answer turns it down.
    assert!(offer.contains("transport-wide-cc"), "{offer}");
    assert!(!answer.contains("transport-wide-cc"), "{answer}");
    let location = r.header("location").unwrap().to_string();
    let layer = format!("{location}/layer");
    assert_eq!(
        r.header("link"),
        Some(format!("<{layer}>; rel=\"urn:ietf:params:whep:ext:core:layer\"").as_str())
    );

    // Before the viewer connects, a choice is kept for when it joins.
    let r = relay
        .request("POST", &layer, &[JSON, AUTH], br#"{"layer":"audio"}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        r.text().contains(r#""preference":"audio","joined":false"#),
        "{}",
        r.text()
    );

    apply_answer(&viewer.pc, &answer).await;
    wait_connected(&viewer.pc, SECS_10).await;
    // Audio only from the start: audio arrives, video does not.
    viewer.wait_for(0, 50, SECS_10).await;
    assert_eq!(viewer.counts().0, 0, "no video for an audio-only viewer");

    // Back to automatic (the draft's empty object): video starts.
    let r = relay.request("POST", &layer, &[JSON, AUTH], b"{}").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains(r#""preference":"auto","joined":true"#),
        "{}",
        r.text()
    );
    viewer.wait_for(30, 0, SECS_10).await;

    // A layer by name: the publisher sends no simulcast, so "high" falls back to its one layer.
    let r = relay
        .request("POST", &layer, &[JSON, AUTH], br#"{"layer":"high"}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = relay.request("GET", &layer, &[AUTH], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains(r#""preference":"high","joined":true,"target":"low","current":"low""#),
        "{text}"
    );
    // One layer: nothing to choose, so no bandwidth estimation (and no pacing) for it.
    assert!(text.contains(r#""estimate_bps":null,"#), "{text}");
    assert!(
        text.contains(r#""layers":[{"layer":"low","encodingId":null,"#),
        "{text}"
    );

    // Audio only again, on a playing viewer: video stops, audio goes on.
    let r = relay
        .request("POST", &layer, &[JSON, AUTH], br#"{"layer":"audio"}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (video, audio) = viewer.counts();
    viewer.wait_for(video, audio + 50, SECS_10).await;
    assert_eq!(viewer.counts().0, video, "video stopped");

    // Statuses.
    for (body, why) in [
        (&br#"{"layer":"ultra"}"#[..], "unknown layer"),
        (br#"{"layer":1}"#, "not a string"),
        (b"not json", "not JSON"),
        (
            br#"{"encodingId":"q"}"#,
            "a RID the publisher does not send",
        ),
    ] {
        let r = relay.request("POST", &layer, &[JSON, AUTH], body).await;
        assert_eq!(r.status, 400, "{why}: {}", r.text());
    }
    let unknown = format!("/whep/layers/{}/layer", "0".repeat(32));
    let r = relay
        .request("POST", &unknown, &[JSON, AUTH], br#"{"layer":"low"}"#)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = relay
        .request("POST", &unknown, &[JSON, AUTH], b"not json")
        .await;
    assert_eq!(r.status, 404, "unknown session wins over a bad body");
    let r = relay.request("GET", &unknown, &[AUTH], b"").await;
    assert_eq!(r.status, 404);
    // A publisher's session is no WHEP session.
    let whip_session = format!("/whip/layers/{}/layer", "0".repeat(32));
    let r = relay
        .request("POST", &whip_session, &[JSON, AUTH], b"{}")
        .await;
    assert_eq!(r.status, 404);
    let r = relay.request("OPTIONS", &layer, &[], b"").await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, POST, OPTIONS")
    );

    // After DELETE the route is gone.
    let r = relay.request("DELETE", &location, &[AUTH], b"").await;
    assert_eq!(r.status, 204);
    let r = relay
        .request("POST", &layer, &[JSON, AUTH], br#"{"layer":"low"}"#)
        .await;
    assert_eq!(r.status, 404);

    viewer.close().await;
    publisher.close().await;
    relay.stop().await;
}
