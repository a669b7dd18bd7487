//! The server HTTP API at `/api/<method>`: authentication, error paths and the methods
//! that answer with data.

mod common;

use common::{API_KEY, TestHub};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_key_is_401() {
    let hub = TestHub::start().await;
    let body = json!({ "channel": "news:x", "data": 1 }).to_string();
    let missing = hub.http("POST", "/api/publish", &[], &body).await;
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert_eq!(
        missing.json(),
        json!({ "error": { "code": 101, "message": "unauthorized" } })
    );
    let wrong = hub
        .http("POST", "/api/publish", &[("X-API-Key", "nope")], &body)
        .await;
    assert_eq!(wrong.status, 401);
    let wrong_scheme = hub
        .http(
            "POST",
            "/api/publish",
            &[("Authorization", &format!("Bearer {API_KEY}"))],
            &body,
        )
        .await;
    assert_eq!(wrong_scheme.status, 401);
    // Nothing was published by the refused requests.
    let history = hub.api_ok("history", json!({ "channel": "news:x" })).await;
    assert_eq!(history["offset"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_apikey_header_is_accepted() {
    let hub = TestHub::start().await;
    let body = json!({ "channel": "news:x", "data": 1 }).to_string();
    let response = hub
        .http(
            "POST",
            "/api/publish",
            &[("Authorization", &format!("apikey {API_KEY}"))],
            &body,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["result"]["offset"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_method_is_404() {
    let hub = TestHub::start().await;
    let response = hub.api("teleport", json!({})).await;
    assert_eq!(response.status, 404, "{}", response.body);
    assert_eq!(response.json()["error"]["code"], 104);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_body_is_400() {
    let hub = TestHub::start().await;
    let not_json = hub
        .http("POST", "/api/publish", &[("X-API-Key", API_KEY)], "{nope")
        .await;
    assert_eq!(not_json.status, 400, "{}", not_json.body);
    assert_eq!(not_json.json()["error"]["code"], 107);
    let missing_field = hub.api("publish", json!({ "channel": "news:x" })).await;
    assert_eq!(missing_field.status, 400, "{}", missing_field.body);
    let wrong_type = hub
        .api("history", json!({ "channel": "news:x", "limit": "all" }))
        .await;
    assert_eq!(wrong_type.status, 400, "{}", wrong_type.body);
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_channel_is_error_102_in_a_200_answer() {
    let hub = TestHub::start().await;
    let response = hub
        .api("publish", json!({ "channel": "nowhere:x", "data": 1 }))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json(),
        json!({ "error": { "code": 102, "message": "unknown channel" } })
    );
    let response = hub
        .api(
            "subscribe",
            json!({ "user": "alice", "channel": "nowhere:x" }),
        )
        .await;
    assert_eq!(response.json()["error"]["code"], 102);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_returns_the_stream_position() {
    let hub = TestHub::start().await;
    let first = hub
        .api_ok("publish", json!({ "channel": "news:pos", "data": 1 }))
        .await;
    let second = hub
        .api_ok("publish", json!({ "channel": "news:pos", "data": 2 }))
        .await;
    assert_eq!(first["offset"], 1);
    assert_eq!(second["offset"], 2);
    assert_eq!(first["epoch"], second["epoch"]);
    assert!(first["epoch"].as_str().is_some_and(|e| !e.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_answers_per_channel() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    client.subscribe("room").await;
    let result = hub
        .api_ok(
            "broadcast",
            json!({ "channels": ["room", "nowhere:x", "news:b"], "data": { "all": true } }),
        )
        .await;
    let responses = result["responses"].as_array().expect("responses");
    assert_eq!(responses.len(), 3, "{result}");
    // `room` keeps no history: a result without a position.
    assert_eq!(responses[0], json!({ "result": {} }));
    assert_eq!(
        responses[1],
        json!({ "error": { "code": 102, "message": "unknown channel" } })
    );
    assert_eq!(responses[2]["result"]["offset"], 1);
    assert_eq!(
        client.recv_pub("room").await["data"],
        json!({ "all": true })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_publishes_once() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    client.subscribe("rec:idem").await;
    let request = json!({ "channel": "rec:idem", "data": "once", "idempotency_key": "k1" });
    let first = hub.api_ok("publish", request.clone()).await;
    let second = hub.api_ok("publish", request).await;
    assert_eq!(first["offset"], 1);
    assert_eq!(first, second, "the repeat answers with the first result");
    assert_eq!(client.recv_pub("rec:idem").await["data"], "once");
    client.expect_silence().await;
    // Another key publishes again.
    let third = hub
        .api_ok(
            "publish",
            json!({ "channel": "rec:idem", "data": "again", "idempotency_key": "k2" }),
        )
        .await;
    assert_eq!(third["offset"], 2);
    assert_eq!(client.recv_pub("rec:idem").await["data"], "again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_lists_active_channels_matching_a_pattern() {
    let hub = TestHub::start().await;
    let mut alice = hub.connect("alice").await;
    let mut bob = hub.connect("bob").await;
    alice.subscribe("chat:one").await;
    bob.subscribe("chat:one").await;
    alice.subscribe("chat:two").await;
    alice.subscribe("room").await;

    let chats = hub.api_ok("channels", json!({ "pattern": "chat:*" })).await;
    assert_eq!(
        chats,
        json!({ "channels": {
            "chat:one": { "num_clients": 2 },
            "chat:two": { "num_clients": 1 }
        } })
    );
    let all = hub.api_ok("channels", json!({})).await;
    assert_eq!(all["channels"].as_object().expect("map").len(), 3);
    let none = hub.api_ok("channels", json!({ "pattern": "news:*" })).await;
    assert_eq!(none, json!({ "channels": {} }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_describes_the_node() {
    let hub = TestHub::start().await;
    let mut alice = hub.connect("alice").await;
    let _alice_again = hub.connect("alice").await;
    let _bob = hub.connect("bob").await;
    alice.subscribe("room").await;

    let info = hub.api_ok("info", json!({})).await;
    let nodes = info["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1);
    let node = &nodes[0];
    assert_eq!(node["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(node["num_clients"], 3);
    assert_eq!(node["num_users"], 2);
    assert_eq!(node["num_channels"], 1);
    assert_eq!(node["num_subs"], 1);
    assert!(node["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(node["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(node["uptime"].is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_history_and_history_remove() {
    let hub = TestHub::start().await;
    let mut alice = hub.connect("alice").await;
    alice.subscribe("chat:api").await;
    alice
        .call("publish", json!({ "channel": "chat:api", "data": "hi" }))
        .await;

    let presence = hub
        .api_ok("presence", json!({ "channel": "chat:api" }))
        .await;
    assert_eq!(
        presence["presence"][&alice.id],
        json!({ "user": "alice", "client": alice.id })
    );
    let stats = hub
        .api_ok("presence_stats", json!({ "channel": "chat:api" }))
        .await;
    assert_eq!(stats, json!({ "num_clients": 1, "num_users": 1 }));

    let history = hub
        .api_ok("history", json!({ "channel": "chat:api", "limit": -1 }))
        .await;
    assert_eq!(history["publications"][0]["data"], "hi");
    assert_eq!(
        history["publications"][0]["info"],
        json!({ "user": "alice", "client": alice.id })
    );

    hub.api_ok("history_remove", json!({ "channel": "chat:api" }))
        .await;
    let history = hub
        .api_ok("history", json!({ "channel": "chat:api", "limit": -1 }))
        .await;
    assert_eq!(history["publications"], json!([]));
    assert_eq!(history["offset"], 1, "removing history keeps the position");

    let not_kept = hub.api("presence", json!({ "channel": "room" })).await;
    assert_eq!(not_kept.json()["error"]["code"], 108);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_history_publishes_without_a_position() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    client.subscribe("rec:skip").await;
    hub.publish("rec:skip", json!("kept")).await;
    let skipped = hub
        .api_ok(
            "publish",
            json!({ "channel": "rec:skip", "data": "transient", "skip_history": true }),
        )
        .await;
    assert_eq!(skipped, json!({}));
    assert_eq!(
        client.recv_pub("rec:skip").await,
        json!({ "data": "kept", "offset": 1 })
    );
    assert_eq!(
        client.recv_pub("rec:skip").await,
        json!({ "data": "transient" })
    );
    let history = hub
        .api_ok("history", json!({ "channel": "rec:skip", "limit": -1 }))
        .await;
    assert_eq!(
        history["publications"],
        json!([{ "data": "kept", "offset": 1 }])
    );
    assert_eq!(history["offset"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_needs_a_user_and_a_code_in_range() {
    let hub = TestHub::start().await;
    let mut alice = hub.connect("alice").await;
    let no_user = hub.api("disconnect", json!({ "user": "" })).await;
    assert_eq!(no_user.status, 200);
    assert_eq!(no_user.json()["error"]["code"], 107);
    let bad_code = hub
        .api(
            "disconnect",
            json!({ "user": "alice", "disconnect": { "code": 1000, "reason": "x" } }),
        )
        .await;
    assert_eq!(bad_code.json()["error"]["code"], 107);
    // Neither request touched alice.
    alice.call("ping", json!({})).await;
}
