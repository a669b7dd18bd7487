//! The `rootcast` binary as an operator meets it: start-up, health, metrics, graceful
//! shutdown on SIGTERM, `config check` and `token`.

mod common;

use std::time::Duration;

use common::{TestServer, http_request, rootcast_command};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn rootcast(args: &[&str]) -> std::process::Output {
    rootcast_command()
        .args(args)
        .output()
        .expect("running rootcast")
}

#[test]
fn health_and_metrics_answer() {
    let server = TestServer::start("");
    let (status, body) = http_request(&server.address, "GET", "/health", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["status"],
        "ok"
    );
    let (status, body) = http_request(&server.address, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    for metric in [
        "rootcast_connections",
        "rootcast_subscriptions",
        "rootcast_messages_in_total",
        "rootcast_messages_out_total",
        "rootcast_queue_drops_total",
        "rootcast_slow_disconnects_total",
    ] {
        assert!(text.contains(metric), "{metric} missing from /metrics");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_clients_with_3001_and_exits_cleanly() {
    let mut server = TestServer::start("");
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(&server.ws_url),
    )
    .await
    .expect("connect in time")
    .expect("websocket handshake");
    let token = server.token("alice", 60, serde_json::json!({}));
    let connect = serde_json::json!({"id": 1, "connect": {"token": token}}).to_string();
    ws.send(Message::text(connect)).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("connect reply in time")
        .expect("a message")
        .expect("not an error");
    assert!(reply.to_text().unwrap().contains("\"connect\""));

    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate(Duration::from_secs(10));
        (status, server)
    });
    // The client is told why: close code 3001, which the SDKs answer by reconnecting.
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = ws.next().await {
            if let Ok(Message::Close(frame)) = message {
                return frame;
            }
        }
        None
    })
    .await
    .expect("close frame in time")
    .expect("a close frame with a code");
    assert_eq!(close.code, CloseCode::from(3001));
    assert_eq!(close.reason.as_str(), "shutdown");
    let (status, _server) = status.await.unwrap();
    let status = status.expect("the server exits within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn config_check_names_the_unknown_key_and_accepts_the_sample() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rootcast.example.toml");
    let ok = rootcast(&["config", "check", sample]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let bad = std::env::temp_dir().join(format!("rootcast-bad-{}.toml", std::process::id()));
    std::fs::write(&bad, "[client]\nping_intervall = \"5s\"\n").unwrap();
    let out = rootcast(&["config", "check", bad.to_str().unwrap()]);
    std::fs::remove_file(&bad).ok();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("client.ping_intervall"), "stderr: {stderr}");
}

#[test]
fn token_command_signs_with_the_configured_secret() {
    let config = std::env::temp_dir().join(format!("rootcast-token-{}.toml", std::process::id()));
    std::fs::write(&config, "[client.token]\nhmac_secret_key = \"s3cret\"\n").unwrap();
    let out = rootcast(&[
        "token",
        "--config",
        config.to_str().unwrap(),
        "--user",
        "alice",
    ]);
    std::fs::remove_file(&config).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let verifier = rootcast_hub::token::TokenVerifier::new(&rootcast_config::TokenConfig {
        hmac_secret_key: "s3cret".into(),
        ..Default::default()
    })
    .unwrap();
    let claims = verifier.connection(token.trim()).unwrap();
    assert_eq!(claims.sub, "alice");
    assert!(claims.exp.is_some());
}

#[test]
fn serve_refuses_an_invalid_address_flag() {
    let out = rootcast(&["serve", "--address", "not-an-address"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("http.address"));
}

#[test]
fn the_relay_answers_whip_and_whep_on_the_same_address() {
    let server = TestServer::start("");
    // Mounted: a WHIP offer with the wrong content type gets 415, not the router's 404.
    let (status, _) = http_request(
        &server.address,
        "POST",
        "/whip/town-hall",
        &[
            ("Content-Type", "text/plain"),
            ("Authorization", "Bearer t"),
        ],
        b"v=0",
    );
    assert_eq!(status, 415);
    // A viewer's garbage offer for a stream nobody publishes is refused by the SDP check
    // (400) or the stream lookup (404), never with a 5xx. The relay's own tests cover
    // real offers end to end.
    let (status, _) = http_request(
        &server.address,
        "POST",
        "/whep/town-hall",
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", "Bearer t"),
        ],
        b"not an offer",
    );
    assert!(
        status == 400 || status == 404,
        "WHEP of a garbage offer for an unknown stream: {status}"
    );
}
