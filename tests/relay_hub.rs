//! The relay inside `rootcast serve` with `relay.require_token = true`: tokens minted by
//! `rootcast token --stream … --access …` decide WHIP/WHEP (201, 401, 403), and `sys:relay`
//! carries the stream's live / viewers / ended reports while a webrtc-rs publisher and
//! viewer come and go. Every peer and candidate is on loopback (the relay announces
//! 127.0.0.1; the webrtc-rs peers gather on `lo` only).

mod common;

#[path = "../relay/tests/common/whip.rs"]
mod whip_common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{HMAC_SECRET, TestServer, rootcast_command};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use whip_common::{HttpResponse, Publisher, Viewer, apply_answer, http_request, wait_connected};

const SECS_10: Duration = Duration::from_secs(10);

/// `rootcast token --user … --stream … --access …` with the server's secret.
fn mint(user: &str, stream: &str, access: &str) -> String {
    let output = rootcast_command()
        .args([
            "token", "--user", user, "--stream", stream, "--access", access,
        ])
        .env("ROOTCAST_CLIENT_TOKEN_HMAC_SECRET_KEY", HMAC_SECRET)
        .output()
        .expect("running rootcast token");
    assert!(
        output.status.success(),
        "rootcast token failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

async fn post(http: SocketAddr, path: &str, token: Option<&str>, sdp: &str) -> HttpResponse {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/sdp")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b));
    }
    http_request(http, "POST", path, &headers, sdp.as_bytes()).await
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Waits for the next publication on `sys:relay` whose data satisfies `want`.
async fn next_report(ws: &mut Ws, want: impl Fn(&Value) -> bool, seen: &mut Vec<Value>) -> Value {
    let wait = async {
        loop {
            let message = ws.next().await.expect("socket open").expect("no error");
            let Ok(text) = message.to_text() else {
                continue;
            };
            for frame in text.lines() {
                let Ok(v) = serde_json::from_str::<Value>(frame) else {
                    continue;
                };
                let push = &v["push"];
                if push["channel"] == "sys:relay" {
                    let data = push["pub"]["data"].clone();
                    seen.push(data.clone());
                    if want(&data) {
                        return data;
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), wait)
        .await
        .unwrap_or_else(|_| panic!("a matching sys:relay report within 15 s; saw {seen:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_tokens_gate_the_relay_and_sys_relay_reports_the_stream() {
    tokio::time::timeout(Duration::from_secs(120), scenario())
        .await
        .expect("finishes within 120 s");
}

async fn scenario() {
    let server = TestServer::start("[relay]\nrequire_token = true\n");
    let http: SocketAddr = server.address.parse().unwrap();

    // A watcher of sys:relay (anyone may subscribe to sys:*).
    let (mut ws, _) =
        tokio::time::timeout(SECS_10, tokio_tungstenite::connect_async(&server.ws_url))
            .await
            .expect("connect in time")
            .expect("websocket handshake");
    let token = server.token("watcher", 300, json!({}));
    ws.send(Message::text(
        json!({"id": 1, "connect": {"token": token}}).to_string(),
    ))
    .await
    .unwrap();
    ws.send(Message::text(
        json!({"id": 2, "subscribe": {"channel": "sys:relay"}}).to_string(),
    ))
    .await
    .unwrap();
    let subscribed = tokio::time::timeout(SECS_10, async {
        loop {
            let m = ws.next().await.unwrap().unwrap();
            let text = m.to_text().unwrap_or_default().to_owned();
            if text
                .lines()
                .any(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["id"] == 2))
            {
                return text;
            }
        }
    })
    .await
    .expect("subscribe reply");
    assert!(!subscribed.contains("\"error\""), "{subscribed}");

    let publish = mint("camera-1", "hall", "publish");
    let view = mint("screen-1", "hall", "view");
    let other = mint("camera-2", "lobby", "publish");

    let (publisher, offer) = Publisher::new().await;
    // No token: 401. A view token, or a token for another stream: 403.
    let r = post(http, "/whip/hall", None, &offer).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = post(http, "/whip/hall", Some("not-a-jwt"), &offer).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = post(http, "/whip/hall", Some(&view), &offer).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post(http, "/whip/hall", Some(&other), &offer).await;
    assert_eq!(r.status, 403, "{}", r.text());
    // A connection token without the relay claim: 403.
    let plain = server.token("someone", 60, json!({}));
    let r = post(http, "/whip/hall", Some(&plain), &offer).await;
    assert_eq!(r.status, 403, "{}", r.text());

    // The publish token: 201; the stream goes live once ICE and DTLS are up.
    let r = post(http, "/whip/hall", Some(&publish), &offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let publisher_location = r.header("location").unwrap().to_string();
    apply_answer(&publisher.pc, &r.text()).await;
    wait_connected(&publisher.pc, SECS_10).await;
    let mut seen = Vec::new();
    let live = next_report(&mut ws, |d| d["state"] == "live", &mut seen).await;
    assert_eq!(
        live,
        json!({"stream": "hall", "state": "live", "viewers": 0})
    );

    // A viewer with the view token (the publish token does not view).
    let (viewer, view_offer) = Viewer::new().await;
    let r = post(http, "/whep/hall", Some(&publish), &view_offer).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post(http, "/whep/hall", Some(&view), &view_offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let viewer_location = r.header("location").unwrap().to_string();
    apply_answer(&viewer.pc, &r.text()).await;
    wait_connected(&viewer.pc, SECS_10).await;
    viewer.wait_for(20, 20, Duration::from_secs(15)).await;
    let one = next_report(&mut ws, |d| d["viewers"] == 1, &mut seen).await;
    assert_eq!(
        one,
        json!({"stream": "hall", "state": "live", "viewers": 1})
    );

    // The viewer leaves, then the publisher.
    let r = http_request(http, "DELETE", &viewer_location, &[], b"").await;
    assert_eq!(r.status, 204);
    let zero = next_report(&mut ws, |d| d["viewers"] == 0, &mut seen).await;
    assert_eq!(
        zero,
        json!({"stream": "hall", "state": "live", "viewers": 0})
    );
    let r = http_request(http, "DELETE", &publisher_location, &[], b"").await;
    assert_eq!(r.status, 204);
    let ended = next_report(&mut ws, |d| d["state"] == "ended", &mut seen).await;
    assert_eq!(
        ended,
        json!({"stream": "hall", "state": "ended", "viewers": 0})
    );
    assert_eq!(seen.len(), 4, "one report per change: {seen:?}");

    publisher.close().await;
    viewer.close().await;
}
