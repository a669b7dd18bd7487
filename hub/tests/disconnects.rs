//! Every way the hub closes a connection, with the close code the client sees, and proof
//! that the hub keeps serving everyone else afterwards.

mod common;

use std::time::Duration;

use common::{Event, TestHub, sub_token, token, unix_now, within};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_closes_with_3501_after_earlier_replies() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    client.send_text("{\"id\":1,\"ping\":{}}\n{not json").await;
    assert_eq!(
        client.expect_close().await,
        (3501, "bad request".to_owned())
    );
    // The command before the bad line was still answered.
    assert_eq!(client.take_pending(), vec![json!({ "id": 1, "ping": {} })]);
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_that_is_not_a_command_closes_with_3501() {
    let hub = TestHub::start().await;
    for bad in ["[1,2,3]", "\"text\"", r#"{"id":"one","ping":{}}"#] {
        let mut client = hub.connect("alice").await;
        client.send_text(bad).await;
        assert_eq!(client.expect_close().await.0, 3501, "for {bad}");
    }
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_before_connect_closes_with_3501() {
    let hub = TestHub::start().await;
    let mut client = hub.open().await;
    client
        .send_command("subscribe", json!({ "channel": "room" }))
        .await;
    assert_eq!(client.expect_close().await.0, 3501);
    assert!(client.take_pending().is_empty());
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connect_closes_with_3501() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    client
        .send_command("connect", json!({ "token": hub.token("alice") }))
        .await;
    assert_eq!(client.expect_close().await.0, 3501);
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_message_closes_with_3501() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    client.send_binary(br#"{"id":2,"ping":{}}"#).await;
    assert_eq!(client.expect_close().await.0, 3501);
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_connection_tokens_close_with_3500() {
    let hub = TestHub::start().await;
    let genuine = hub.token("alice");
    let wrong_secret =
        rootcast_hub::token::issue_hs256("not-the-secret", &json!({ "sub": "alice" }))
            .expect("signs");
    // {"alg":"none","typ":"JWT"} . {"sub":"alice"} . no signature
    let alg_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSJ9.".to_owned();
    // The genuine header and signature around another user's claims.
    let mut parts: Vec<&str> = genuine.split('.').collect();
    parts[1] = "eyJzdWIiOiJhZG1pbiJ9"; // {"sub":"admin"}
    let tampered = parts.join(".");
    for (what, bad) in [
        ("wrong secret", wrong_secret),
        ("alg none", alg_none),
        ("tampered claims", tampered),
        ("not a JWT", "garbage".to_owned()),
    ] {
        let mut client = hub.open().await;
        client
            .send_command("connect", json!({ "token": bad }))
            .await;
        assert_eq!(
            client.expect_close().await,
            (3500, "invalid token".to_owned()),
            "{what}"
        );
    }
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_token_for_another_channel_closes_with_3500() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let other_channel = sub_token("alice", "secret:other", json!({}));
    client
        .send_command(
            "subscribe",
            json!({ "channel": "secret:vault", "token": other_channel }),
        )
        .await;
    assert_eq!(client.expect_close().await.0, 3500);
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_token_for_another_user_closes_with_3500() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let other_user = sub_token("bob", "secret:vault", json!({}));
    client
        .send_command(
            "subscribe",
            json!({ "channel": "secret:vault", "token": other_user }),
        )
        .await;
    assert_eq!(client.expect_close().await.0, 3500);
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_without_connect_is_closed_as_stale_3502() {
    let hub =
        TestHub::start_with(|c| c.client.stale_close_delay = Duration::from_millis(300)).await;
    let mut client = hub.open().await;
    // Pongs do not authenticate: the connection is still stale.
    client.send_text("{}").await;
    assert_eq!(client.expect_close().await, (3502, "stale".to_owned()));
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_never_answers_pings_is_closed_with_3012() {
    let hub = TestHub::start_with(|c| {
        c.client.ping_interval = Duration::from_secs(1);
        c.client.pong_timeout = Duration::from_millis(500);
    })
    .await;
    let mut client = hub.connect("alice").await;
    assert_eq!(client.expect_close().await, (3012, "no pong".to_owned()));
    assert_eq!(
        client.take_pending(),
        vec![json!({})],
        "one ping, then the close"
    );
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_past_its_token_expiry_is_closed_with_3005() {
    let hub = TestHub::start_with(|c| c.client.expired_close_delay = Duration::ZERO).await;
    let short = token(&json!({ "sub": "alice", "exp": unix_now() + 1 }));
    let (mut client, result) = hub.connect_with_token(&short).await;
    assert_eq!(result["expires"], true);
    assert_eq!(
        client.expect_close().await,
        (3005, "connection expired".to_owned())
    );
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_past_the_rate_limit_closes_with_3013() {
    let hub = TestHub::start_with(|c| {
        c.client.command_rate_limit = 1;
        c.client.command_rate_burst = 2;
        c.client.command_rate_disconnect_after = 3;
    })
    .await;
    let mut client = hub.connect("alice").await;
    let frame: Vec<String> = (1..=10)
        .map(|id| json!({ "id": id, "ping": {} }).to_string())
        .collect();
    client.send_text(&frame.join("\n")).await;
    assert_eq!(
        client.expect_close().await,
        (3013, "too many requests".to_owned())
    );
    // Two within the burst, three refused with 111, the fourth refusal in a row closes.
    let codes: Vec<_> = client
        .take_pending()
        .iter()
        .map(|reply| reply["error"]["code"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(codes, vec![0, 0, 111, 111, 111]);
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_over_the_size_limit_closes_the_connection() {
    let hub = TestHub::start_with(|c| c.client.message_size_limit = 1024).await;
    let mut client = hub.connect("alice").await;
    let big = json!({ "id": 5, "rpc": { "method": "echo", "data": "x".repeat(4096) } });
    client.send_text(&big.to_string()).await;
    match client.next_event(common::TIMEOUT).await {
        // What the hub sends: the read fails, and it closes with 3501 "bad request".
        Event::Close(code, reason) => assert_eq!((code, reason.as_str()), (3501, "bad request")),
        other => panic!("expected a close frame, got {other:?}"),
    }
    // Just under the limit is fine on another connection.
    let mut other = hub.connect("bob").await;
    let fits = json!({ "id": 1, "rpc": { "method": "echo", "data": "y".repeat(900) } });
    other.send_text(&fits.to_string()).await;
    assert_eq!(other.reply(1).await["rpc"]["data"], "y".repeat(900));
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_client_with_3001_and_serve_returns() {
    let mut hub = TestHub::start().await;
    let mut alice = hub.connect("alice").await;
    let mut bob = hub.connect("bob").await;
    bob.subscribe("room").await;
    // Not yet authenticated: told too.
    let mut early = hub.open().await;

    let served = hub.shutdown();
    let closes = async {
        (
            alice.expect_close().await,
            bob.expect_close().await,
            early.expect_close().await,
        )
    };
    let (result, (a, b, e)) = tokio::join!(served, closes);
    result.expect("serve returns Ok");
    for close in [a, b, e] {
        assert_eq!(close, (3001, "shutdown".to_owned()));
    }
    assert_eq!(hub.node.connection_count(), 0);
    // Nothing listens any more.
    assert!(
        within(tokio::net::TcpStream::connect(hub.addr))
            .await
            .is_err(),
        "the listener is closed after serve returns"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_refresh_with_a_token_for_another_channel_closes_with_3500() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let token = sub_token("alice", "secret:vault", json!({}));
    client
        .call(
            "subscribe",
            json!({ "channel": "secret:vault", "token": token }),
        )
        .await;
    let other = sub_token("alice", "secret:other", json!({}));
    client
        .send_command(
            "sub_refresh",
            json!({ "channel": "secret:vault", "token": other }),
        )
        .await;
    assert_eq!(client.expect_close().await.0, 3500);
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_past_the_user_connection_limit_closes_with_3504() {
    let hub = TestHub::start_with(|c| c.client.user_connection_limit = 1).await;
    let mut first = hub.connect("alice").await;
    let mut second = hub.open().await;
    second
        .send_command("connect", json!({ "token": hub.token("alice") }))
        .await;
    assert_eq!(
        second.expect_close().await,
        (3504, "connection limit".to_owned())
    );
    first.call("ping", json!({})).await;
    // Other users are not limited by alice's connections.
    hub.connect("bob").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_with_more_channels_than_the_limit_closes_with_3505() {
    let hub = TestHub::start_with(|c| c.client.channel_limit = 1).await;
    let mut client = hub.open().await;
    let too_many = token(&json!({ "sub": "alice", "channels": ["news:a", "news:b"] }));
    client
        .send_command("connect", json!({ "token": too_many }))
        .await;
    assert_eq!(
        client.expect_close().await,
        (3505, "channel limit".to_owned())
    );
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_subscribe_past_the_channel_limit_closes_with_3505() {
    let hub = TestHub::start_with(|c| c.client.channel_limit = 1).await;
    let mut client = hub.connect("alice").await;
    client.subscribe("room").await;
    hub.api_ok("subscribe", json!({ "user": "alice", "channel": "news:x" }))
        .await;
    assert_eq!(client.expect_close().await.0, 3505);
    hub.assert_still_serving().await;
}
