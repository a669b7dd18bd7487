//! What the server does to clients without them asking: server-side subscriptions (from
//! the token's `channels` claim and through the server API), server unsubscribes and
//! disconnects, and join/leave pushes.

mod common;

use common::{Client, TestHub, token};
use serde_json::{Value, json};

/// Everything received within a short wait, in order.
async fn drain(client: &mut Client) -> Vec<Value> {
    let mut all = Vec::new();
    while let Some(value) = client.try_recv(common::QUIET).await {
        all.push(value);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_channels_are_subscribed_at_connect() {
    let hub = TestHub::start().await;
    hub.publish("rec:feed", json!("before")).await;
    let with_channels = token(&json!({ "sub": "alice", "channels": ["news:a", "rec:feed"] }));
    let (mut client, result) = hub.connect_with_token(&with_channels).await;

    let subs = result["subs"].as_object().expect("connect result has subs");
    assert_eq!(subs.len(), 2, "{result}");
    assert_eq!(subs["news:a"], json!({}));
    // A recoverable channel reports its position.
    assert_eq!(subs["rec:feed"]["recoverable"], true);
    assert_eq!(subs["rec:feed"]["offset"], 1);
    assert!(
        subs["rec:feed"]["epoch"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );

    hub.publish("news:a", json!({ "n": 1 })).await;
    assert_eq!(
        client.recv_push().await,
        json!({ "push": { "channel": "news:a", "pub": { "data": { "n": 1 }, "offset": 1 } } })
    );
    hub.publish("rec:feed", json!("after")).await;
    let publication = client.recv_pub("rec:feed").await;
    assert_eq!(publication, json!({ "data": "after", "offset": 2 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_channel_of_an_unknown_namespace_is_skipped() {
    let hub = TestHub::start().await;
    let with_channels = token(&json!({ "sub": "alice", "channels": ["nowhere:x", "news:b"] }));
    let (_client, result) = hub.connect_with_token(&with_channels).await;
    let subs = result["subs"].as_object().expect("subs");
    assert_eq!(subs.keys().collect::<Vec<_>>(), vec!["news:b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_channels_are_recovered_from_the_positions_sent_in_connect() {
    let hub = TestHub::start().await;
    hub.publish("rec:resume", json!(1)).await;
    let epoch = hub
        .api_ok("history", json!({ "channel": "rec:resume" }))
        .await["epoch"]
        .as_str()
        .expect("epoch")
        .to_owned();
    hub.publish("rec:resume", json!(2)).await;
    hub.publish("rec:resume", json!(3)).await;

    let with_channels = token(&json!({ "sub": "alice", "channels": ["rec:resume"] }));
    let mut client = hub.open().await;
    let result = client
        .call(
            "connect",
            json!({
                "token": with_channels,
                "subs": { "rec:resume": { "recover": true, "offset": 1, "epoch": epoch } }
            }),
        )
        .await;
    let sub = &result["subs"]["rec:resume"];
    assert_eq!(sub["recovered"], true, "{result}");
    assert_eq!(sub["was_recovering"], true);
    assert_eq!(
        sub["publications"],
        json!([{ "data": 2, "offset": 2 }, { "data": 3, "offset": 3 }])
    );
    assert_eq!(sub["offset"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_reply_comes_before_any_push_of_token_channels() {
    let hub = TestHub::start().await;
    // `chat` pushes join/leave to every subscriber, the new one included.
    let with_channels = token(&json!({ "sub": "alice", "channels": ["chat:lobby"] }));
    let mut client = hub.open().await;
    let id = client
        .send_command("connect", json!({ "token": with_channels }))
        .await;
    let first = client.recv().await;
    assert_eq!(
        first["id"], id,
        "the connect reply must be the first frame, got {first}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_subscribe_pushes_subscribe_then_publications() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    hub.api_ok("subscribe", json!({ "user": "alice", "channel": "news:x" }))
        .await;
    assert_eq!(
        client.recv_push().await,
        json!({ "push": { "channel": "news:x", "subscribe": {} } })
    );
    hub.publish("news:x", json!("hello")).await;
    assert_eq!(client.recv_pub("news:x").await["data"], "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_subscribe_targets_one_client_when_given() {
    let hub = TestHub::start().await;
    let mut first = hub.connect("alice").await;
    let mut second = hub.connect("alice").await;
    hub.api_ok(
        "subscribe",
        json!({ "user": "alice", "channel": "news:one", "client": second.id }),
    )
    .await;
    assert_eq!(second.recv_push().await["push"]["subscribe"], json!({}));
    first.expect_silence().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_unsubscribe_pushes_unsubscribe_2000_and_stops_publications() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    client.subscribe("room").await;
    hub.api_ok("unsubscribe", json!({ "user": "alice", "channel": "room" }))
        .await;
    assert_eq!(
        client.recv_push().await,
        json!({ "push": { "channel": "room", "unsubscribe": { "code": 2000, "reason": "server unsubscribe" } } })
    );
    hub.publish("room", json!(1)).await;
    client.expect_silence().await;
    // The client may subscribe again.
    client.subscribe("room").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_disconnect_closes_with_the_given_code() {
    let hub = TestHub::start().await;
    let mut alice = hub.connect("alice").await;
    let mut bob = hub.connect("bob").await;
    hub.api_ok(
        "disconnect",
        json!({ "user": "alice", "disconnect": { "code": 4001, "reason": "go away" } }),
    )
    .await;
    assert_eq!(alice.expect_close().await, (4001, "go away".to_owned()));
    // Other users are untouched.
    bob.call("ping", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_disconnect_without_code_uses_3503() {
    let hub = TestHub::start().await;
    let mut alice = hub.connect("alice").await;
    hub.api_ok("disconnect", json!({ "user": "alice" })).await;
    assert_eq!(
        alice.expect_close().await,
        (3503, "force disconnect".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_and_leave_are_pushed_to_subscribers() {
    let hub = TestHub::start().await;
    let mut alice = hub.connect("alice").await;
    alice.subscribe("chat:jl").await;
    drain(&mut alice).await; // alice's own join, if any

    let mut bob = hub.connect("bob").await;
    let bob_id = bob.id.clone();
    bob.subscribe("chat:jl").await;
    assert_eq!(
        alice.recv_push().await,
        json!({ "push": { "channel": "chat:jl", "join": { "info": { "user": "bob", "client": bob_id } } } })
    );

    bob.call("unsubscribe", json!({ "channel": "chat:jl" }))
        .await;
    assert_eq!(
        alice.recv_push().await,
        json!({ "push": { "channel": "chat:jl", "leave": { "info": { "user": "bob", "client": bob_id } } } })
    );

    // Closing the connection leaves too.
    let mut carol = hub.connect("carol").await;
    let carol_id = carol.id.clone();
    carol.subscribe("chat:jl").await;
    assert_eq!(
        alice.recv_push().await["push"]["join"]["info"]["client"],
        carol_id.as_str()
    );
    drop(carol);
    assert_eq!(
        alice.recv_push().await,
        json!({ "push": { "channel": "chat:jl", "leave": { "info": { "user": "carol", "client": carol_id } } } })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_reply_comes_before_the_subscribers_own_join() {
    let hub = TestHub::start().await;
    let mut alice = hub.connect("alice").await;
    let id = alice
        .send_command("subscribe", json!({ "channel": "chat:order" }))
        .await;
    let received = drain(&mut alice).await;
    assert!(!received.is_empty(), "no subscribe reply");
    assert_eq!(
        received[0]["id"], id,
        "a push for chat:order arrived before its subscribe reply: {received:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_not_pushed_without_force_push_or_request() {
    let hub = TestHub::start_with(|c| {
        let chat = c
            .channel
            .namespaces
            .iter_mut()
            .find(|ns| ns.name == "chat")
            .expect("chat namespace");
        chat.options.force_push_join_leave = false;
    })
    .await;
    let mut quiet = hub.connect("alice").await;
    quiet.subscribe("chat:q").await;
    let mut asking = hub.open().await;
    asking
        .call("connect", json!({ "token": hub.token("dave") }))
        .await;
    asking
        .call(
            "subscribe",
            json!({ "channel": "chat:q", "join_leave": true }),
        )
        .await;
    drain(&mut asking).await;

    let mut bob = hub.connect("bob").await;
    bob.subscribe("chat:q").await;
    assert_eq!(
        asking.recv_push().await["push"]["join"]["info"]["user"],
        "bob"
    );
    // alice did not ask for join/leave and the namespace does not force it.
    let unexpected: Vec<_> = drain(&mut quiet)
        .await
        .into_iter()
        .filter(|v| v.get("push").is_some())
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_subscribe_hands_its_data_to_the_client() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    hub.api_ok(
        "subscribe",
        json!({ "user": "alice", "channel": "news:d", "data": { "welcome": true } }),
    )
    .await;
    assert_eq!(
        client.recv_push().await,
        json!({ "push": { "channel": "news:d", "subscribe": { "data": { "welcome": true } } } })
    );
}
