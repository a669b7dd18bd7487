//! Every error reply the hub emits, with its code, for the input that causes it. An error
//! reply leaves the connection open: each test ends by using it again.

mod common;

use common::{Client, TestHub, sub_token, token, unix_now};
use serde_json::json;

/// The connection still answers commands after an error reply.
async fn assert_usable(client: &mut Client) {
    client.call("ping", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_namespace_is_102_for_every_channel_command() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let channel = json!({ "channel": "nowhere:room" });
    let reply = client.command("subscribe", channel.clone()).await;
    assert_eq!(
        reply["error"],
        json!({ "code": 102, "message": "unknown channel" })
    );
    let publish = json!({ "channel": "nowhere:room", "data": {} });
    assert_eq!(client.call_error("publish", publish).await, 102);
    assert_eq!(client.call_error("presence", channel.clone()).await, 102);
    assert_eq!(
        client.call_error("presence_stats", channel.clone()).await,
        102
    );
    assert_eq!(client.call_error("history", channel).await, 102);
    assert_usable(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_where_clients_may_not_is_103() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let reply = client
        .command("subscribe", json!({ "channel": "closed:room" }))
        .await;
    assert_eq!(
        reply["error"],
        json!({ "code": 103, "message": "permission denied" })
    );
    assert_usable(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_where_clients_may_not_is_103() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let code = client
        .call_error("publish", json!({ "channel": "closed:room", "data": 1 }))
        .await;
    assert_eq!(code, 103);
    // Without namespace only subscribers publish, and alice is not subscribed.
    let code = client
        .call_error("publish", json!({ "channel": "room", "data": 1 }))
        .await;
    assert_eq!(code, 103);
    assert_usable(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_history_where_clients_may_not_are_103() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let channel = json!({ "channel": "closed:room" });
    assert_eq!(client.call_error("presence", channel.clone()).await, 103);
    assert_eq!(
        client.call_error("presence_stats", channel.clone()).await,
        103
    );
    assert_eq!(client.call_error("history", channel).await, 103);
    // `chat` allows presence and history to subscribers only.
    let channel = json!({ "channel": "chat:room" });
    assert_eq!(client.call_error("presence", channel.clone()).await, 103);
    assert_eq!(client.call_error("history", channel).await, 103);
    assert_usable(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_namespace_needs_a_subscription_token_else_103() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let code = client
        .call_error("subscribe", json!({ "channel": "secret:vault" }))
        .await;
    assert_eq!(code, 103);
    let token = sub_token("alice", "secret:vault", json!({}));
    let result = client
        .call(
            "subscribe",
            json!({ "channel": "secret:vault", "token": token }),
        )
        .await;
    assert_eq!(result, json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_limited_channel_refuses_users_not_listed_with_103() {
    let hub = TestHub::start().await;
    let mut bob = hub.connect("bob").await;
    let code = bob
        .call_error("subscribe", json!({ "channel": "dm:x#alice" }))
        .await;
    assert_eq!(code, 103);
    let mut alice = hub.connect("alice").await;
    assert_eq!(alice.subscribe("dm:x#alice").await, json!({}));
    assert_eq!(bob.subscribe("dm:y#alice,bob").await, json!({}));
    assert_usable(&mut bob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_client_where_only_users_may_is_103() {
    let hub = TestHub::start_with(|c| c.client.allow_anonymous_connect_without_token = true).await;
    let mut client = hub.open().await;
    client.call("connect", json!({})).await;
    let code = client
        .call_error("subscribe", json!({ "channel": "room" }))
        .await;
    assert_eq!(code, 103);
    // `dm` channels list users; anonymous is never one of them.
    let code = client
        .call_error("subscribe", json!({ "channel": "dm:x#" }))
        .await;
    assert_eq!(code, 103);
    assert_usable(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_without_a_method_is_104() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    client.send_text(r#"{"id":77}"#).await;
    let reply = client.reply(77).await;
    assert_eq!(
        reply,
        json!({ "id": 77, "error": { "code": 104, "message": "method not found" } })
    );
    assert_usable(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_twice_is_105() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    client.subscribe("room").await;
    let reply = client
        .command("subscribe", json!({ "channel": "room" }))
        .await;
    assert_eq!(
        reply["error"],
        json!({ "code": 105, "message": "already subscribed" })
    );
    // The first subscription is intact: publications arrive once.
    hub.publish("room", json!(1)).await;
    assert_eq!(client.recv_pub("room").await["data"], 1);
    client.expect_silence().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_past_the_channel_limit_is_106() {
    let hub = TestHub::start_with(|c| c.client.channel_limit = 2).await;
    let mut client = hub.connect("alice").await;
    client.subscribe("one").await;
    client.subscribe("two").await;
    let reply = client
        .command("subscribe", json!({ "channel": "three" }))
        .await;
    assert_eq!(
        reply["error"],
        json!({ "code": 106, "message": "limit exceeded" })
    );
    client
        .call("unsubscribe", json!({ "channel": "one" }))
        .await;
    client.subscribe("three").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_or_too_long_channel_is_107() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let reply = client.command("subscribe", json!({ "channel": "" })).await;
    assert_eq!(
        reply["error"],
        json!({ "code": 107, "message": "bad request" })
    );
    let too_long = "x".repeat(256);
    assert_eq!(
        client
            .call_error("subscribe", json!({ "channel": too_long }))
            .await,
        107
    );
    assert_eq!(
        client
            .call_error("publish", json!({ "channel": too_long, "data": 1 }))
            .await,
        107
    );
    // The longest allowed name works.
    client.subscribe(&"x".repeat(255)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_history_where_not_kept_are_108() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    client.subscribe("open:room").await;
    let channel = json!({ "channel": "open:room" });
    let reply = client.command("presence", channel.clone()).await;
    assert_eq!(
        reply["error"],
        json!({ "code": 108, "message": "not available" })
    );
    assert_eq!(
        client.call_error("presence_stats", channel.clone()).await,
        108
    );
    assert_eq!(client.call_error("history", channel).await, 108);
    assert_usable(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_with_an_expired_token_is_109() {
    let hub = TestHub::start().await;
    let mut client = hub.open().await;
    let expired = token(&json!({ "sub": "alice", "exp": unix_now() - 10 }));
    let reply = client.command("connect", json!({ "token": expired })).await;
    assert_eq!(
        reply["error"],
        json!({ "code": 109, "message": "token expired" })
    );
    // The client may try again with a fresh token on the same connection.
    let result = client
        .call("connect", json!({ "token": hub.token("alice") }))
        .await;
    assert!(result["client"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_with_an_expired_subscription_token_is_109() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let expired = sub_token("alice", "secret:vault", json!({ "exp": unix_now() - 10 }));
    let code = client
        .call_error(
            "subscribe",
            json!({ "channel": "secret:vault", "token": expired }),
        )
        .await;
    assert_eq!(code, 109);
    assert_usable(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_past_the_rate_limit_are_111() {
    let hub = TestHub::start_with(|c| {
        c.client.command_rate_limit = 1;
        c.client.command_rate_burst = 3;
        c.client.command_rate_disconnect_after = 100;
    })
    .await;
    let mut client = hub.connect("alice").await;
    let frame: Vec<String> = (1..=5)
        .map(|id| json!({ "id": id, "ping": {} }).to_string())
        .collect();
    client.send_text(&frame.join("\n")).await;
    for id in 1..=3 {
        assert_eq!(client.recv().await, json!({ "id": id, "ping": {} }));
    }
    for id in 4..=5 {
        assert_eq!(
            client.recv().await,
            json!({ "id": id, "error": { "code": 111, "message": "too many requests", "temporary": true } })
        );
    }
    // Pongs are not commands: they are never limited, and do not count.
    client.send_text("{}").await;
    client.expect_silence().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_since_an_unrecoverable_position_is_112() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    hub.publish("rec:e", json!(1)).await;
    let reply = client
        .command(
            "history",
            json!({ "channel": "rec:e", "since": { "offset": 1, "epoch": "not-the-epoch" } }),
        )
        .await;
    assert_eq!(
        reply["error"],
        json!({ "code": 112, "message": "unrecoverable position" })
    );
    assert_usable(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_with_an_expired_token_is_109() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let expired = token(&json!({ "sub": "alice", "exp": unix_now() - 10 }));
    assert_eq!(
        client
            .call_error("refresh", json!({ "token": expired }))
            .await,
        109
    );
    assert_usable(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_refresh_of_a_channel_not_subscribed_is_103() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let token = sub_token("alice", "secret:vault", json!({ "exp": unix_now() + 600 }));
    let code = client
        .call_error(
            "sub_refresh",
            json!({ "channel": "secret:vault", "token": token }),
        )
        .await;
    assert_eq!(code, 103);
    assert_usable(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_in_a_frame_does_not_stop_the_commands_after_it() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let frame = [
        json!({ "id": 10, "ping": {} }),
        json!({ "id": 11, "subscribe": { "channel": "nowhere:x" } }),
        json!({ "id": 12, "rpc": { "method": "echo", "data": 12 } }),
    ]
    .map(|command| command.to_string())
    .join("\n");
    client.send_text(&frame).await;
    assert_eq!(client.recv().await, json!({ "id": 10, "ping": {} }));
    assert_eq!(client.recv().await["error"]["code"], 102);
    assert_eq!(
        client.recv().await,
        json!({ "id": 12, "rpc": { "data": 12 } })
    );
}
