//! Every client command answered as Centrifugo's client protocol v2 (JSON) answers it.

mod common;

use std::time::Duration;

use common::{TestHub, sub_token, token, unix_now};
use serde_json::{Value, json};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn offsets(publications: &Value) -> Vec<u64> {
    publications
        .as_array()
        .expect("publications is an array")
        .iter()
        .map(|p| p["offset"].as_u64().expect("publication has an offset"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_reply_has_client_version_ping_and_pong() {
    let hub = TestHub::start().await;
    let (_client, result) = hub.connect_with_token(&hub.token("alice")).await;
    let client = result["client"].as_str().expect("client ID");
    assert_eq!(client.len(), 36, "client ID is a UUID: {result}");
    assert_eq!(result["version"], VERSION);
    assert_eq!(result["ping"], 25);
    assert_eq!(result["pong"], true);
    assert!(result["node"].as_str().is_some_and(|n| !n.is_empty()));
    // No `exp` claim: the connection does not expire.
    assert!(result.get("expires").is_none(), "{result}");
    assert!(result.get("ttl").is_none(), "{result}");
    assert!(result.get("subs").is_none(), "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_with_exp_claim_reports_expires_and_ttl() {
    let hub = TestHub::start().await;
    let exp = unix_now() + 600;
    let (_client, result) = hub
        .connect_with_token(&token(&json!({ "sub": "alice", "exp": exp })))
        .await;
    assert_eq!(result["expires"], true, "{result}");
    let ttl = result["ttl"].as_u64().expect("ttl");
    assert!((598..=600).contains(&ttl), "ttl {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_connect_is_accepted_when_allowed() {
    let hub = TestHub::start_with(|c| c.client.allow_anonymous_connect_without_token = true).await;
    let mut client = hub.open().await;
    let result = client.call("connect", json!({})).await;
    assert!(result["client"].as_str().is_some_and(|c| !c.is_empty()));
    // Anonymous clients get what the namespace allows anonymous clients.
    assert_eq!(client.subscribe("open:lobby").await, json!({}));
    assert_eq!(
        client
            .call_error("subscribe", json!({ "channel": "chat:room" }))
            .await,
        103
    );
    let rpc = client.call("rpc", json!({ "method": "whoami" })).await;
    assert_eq!(rpc["data"]["user"], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_connect_is_refused_with_3500_when_not_allowed() {
    let hub = TestHub::start().await;
    let mut client = hub.open().await;
    client.send_command("connect", json!({})).await;
    let (code, reason) = client.expect_close().await;
    assert_eq!((code, reason.as_str()), (3500, "invalid token"));
    assert!(client.take_pending().is_empty());
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_then_unsubscribe_stops_publications() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    assert_eq!(client.subscribe("room").await, json!({}));
    hub.publish("room", json!({ "n": 1 })).await;
    let publication = client.recv_pub("room").await;
    // No history in this namespace: no offset either.
    assert_eq!(publication, json!({ "data": { "n": 1 } }));

    assert_eq!(
        client
            .call("unsubscribe", json!({ "channel": "room" }))
            .await,
        json!({})
    );
    hub.publish("room", json!({ "n": 2 })).await;
    client.expect_silence().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_publish_reaches_every_subscriber_with_publisher_info() {
    let hub = TestHub::start().await;
    let mut alice = hub.connect("alice").await;
    let mut bob = hub.connect("bob").await;
    // `rec` keeps history, so publications carry their offset.
    alice.subscribe("rec:room").await;
    bob.subscribe("rec:room").await;

    let reply = alice
        .call(
            "publish",
            json!({ "channel": "rec:room", "data": { "text": "hi" } }),
        )
        .await;
    assert_eq!(reply, json!({}));

    let expected = json!({
        "push": {
            "channel": "rec:room",
            "pub": {
                "data": { "text": "hi" },
                "info": { "user": "alice", "client": alice.id },
                "offset": 1
            }
        }
    });
    assert_eq!(alice.recv_push().await, expected);
    assert_eq!(bob.recv_push().await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publication_info_carries_connection_info_from_the_token() {
    let hub = TestHub::start().await;
    let connection_token = token(&json!({ "sub": "alice", "info": { "name": "Alice" } }));
    let (mut alice, _) = hub.connect_with_token(&connection_token).await;
    alice.subscribe("room").await;
    alice
        .call("publish", json!({ "channel": "room", "data": 1 }))
        .await;
    let publication = alice.recv_pub("room").await;
    assert_eq!(
        publication["info"],
        json!({ "user": "alice", "client": alice.id, "conn_info": { "name": "Alice" } })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_maps_client_ids_to_client_info() {
    let hub = TestHub::start().await;
    let mut alice = hub.connect("alice").await;
    let mut bob = hub.connect("bob").await;
    alice.subscribe("chat:presence").await;
    bob.subscribe("chat:presence").await;

    let presence = alice
        .call("presence", json!({ "channel": "chat:presence" }))
        .await;
    let mut expected = serde_json::Map::new();
    expected.insert(
        alice.id.clone(),
        json!({ "user": "alice", "client": alice.id }),
    );
    expected.insert(bob.id.clone(), json!({ "user": "bob", "client": bob.id }));
    assert_eq!(presence, json!({ "presence": expected }));

    let stats = bob
        .call("presence_stats", json!({ "channel": "chat:presence" }))
        .await;
    assert_eq!(stats, json!({ "num_clients": 2, "num_users": 2 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_stats_count_users_once() {
    let hub = TestHub::start().await;
    let mut first = hub.connect("alice").await;
    let mut second = hub.connect("alice").await;
    first.subscribe("chat:twice").await;
    second.subscribe("chat:twice").await;
    let stats = first
        .call("presence_stats", json!({ "channel": "chat:twice" }))
        .await;
    assert_eq!(stats, json!({ "num_clients": 2, "num_users": 1 }));

    second
        .call("unsubscribe", json!({ "channel": "chat:twice" }))
        .await;
    let stats = first
        .call("presence_stats", json!({ "channel": "chat:twice" }))
        .await;
    assert_eq!(stats, json!({ "num_clients": 1, "num_users": 1 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_honours_limit_reverse_and_since() {
    let hub = TestHub::start().await;
    for n in 1..=5 {
        hub.publish("rec:history", json!({ "n": n })).await;
    }
    let mut client = hub.connect("alice").await;

    let all = client
        .call("history", json!({ "channel": "rec:history", "limit": -1 }))
        .await;
    assert_eq!(offsets(&all["publications"]), vec![1, 2, 3, 4, 5]);
    assert_eq!(
        all["publications"][0],
        json!({ "data": { "n": 1 }, "offset": 1 })
    );
    assert_eq!(all["offset"], 5);
    let epoch = all["epoch"].as_str().expect("epoch").to_owned();
    assert!(!epoch.is_empty());

    let first_two = client
        .call("history", json!({ "channel": "rec:history", "limit": 2 }))
        .await;
    assert_eq!(offsets(&first_two["publications"]), vec![1, 2]);

    let newest_two = client
        .call(
            "history",
            json!({ "channel": "rec:history", "limit": 2, "reverse": true }),
        )
        .await;
    assert_eq!(offsets(&newest_two["publications"]), vec![5, 4]);

    let since = client
        .call(
            "history",
            json!({
                "channel": "rec:history",
                "limit": -1,
                "since": { "offset": 3, "epoch": epoch }
            }),
        )
        .await;
    assert_eq!(offsets(&since["publications"]), vec![4, 5]);

    let position_only = client
        .call("history", json!({ "channel": "rec:history", "limit": 0 }))
        .await;
    assert_eq!(
        position_only,
        json!({ "publications": [], "epoch": epoch, "offset": 5 })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_since_with_reverse_pages_backwards() {
    // As in Centrifugo: with `reverse`, `since` is the oldest publication the client
    // already has, and it gets the ones before it, newest first ("load older messages").
    let hub = TestHub::start().await;
    for n in 1..=5 {
        hub.publish("rec:back", json!(n)).await;
    }
    let mut client = hub.connect("alice").await;
    let position = client
        .call("history", json!({ "channel": "rec:back", "limit": 0 }))
        .await;
    let epoch = position["epoch"].as_str().expect("epoch").to_owned();
    let older = client
        .call(
            "history",
            json!({
                "channel": "rec:back",
                "limit": 2,
                "reverse": true,
                "since": { "offset": 4, "epoch": epoch }
            }),
        )
        .await;
    assert_eq!(offsets(&older["publications"]), vec![3, 2], "{older}");
    assert_eq!(older["offset"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_since_an_unrecoverable_position_is_112() {
    let hub = TestHub::start().await;
    // `rec` keeps 10 publications: after 15, offset 2 onwards is gone.
    for n in 1..=15 {
        hub.publish("rec:gone", json!(n)).await;
    }
    let mut client = hub.connect("alice").await;
    let position = client
        .call("history", json!({ "channel": "rec:gone", "limit": 0 }))
        .await;
    let epoch = position["epoch"].as_str().expect("epoch").to_owned();
    let code = client
        .call_error(
            "history",
            json!({ "channel": "rec:gone", "limit": -1, "since": { "offset": 1, "epoch": epoch } }),
        )
        .await;
    assert_eq!(code, 112);
    let code = client
        .call_error(
            "history",
            json!({ "channel": "rec:gone", "limit": -1, "since": { "offset": 14, "epoch": "other" } }),
        )
        .await;
    assert_eq!(code, 112);
    // Still covered: offset 5 onwards is kept.
    let kept = client
        .call(
            "history",
            json!({ "channel": "rec:gone", "limit": -1, "since": { "offset": 5, "epoch": epoch } }),
        )
        .await;
    assert_eq!(offsets(&kept["publications"]), (6..=15).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_calls_a_registered_method() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let echoed = client
        .call("rpc", json!({ "method": "echo", "data": { "x": [1, 2] } }))
        .await;
    assert_eq!(echoed, json!({ "data": { "x": [1, 2] } }));
    let caller = client.call("rpc", json!({ "method": "whoami" })).await;
    assert_eq!(
        caller,
        json!({ "data": { "user": "alice", "client": client.id } })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_of_an_unknown_method_is_104() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let reply = client
        .command("rpc", json!({ "method": "nope", "data": {} }))
        .await;
    assert_eq!(
        reply["error"],
        json!({ "code": 104, "message": "method not found" })
    );
    // The connection is still usable.
    client.call("ping", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_with_a_new_token_extends_the_connection() {
    let hub = TestHub::start_with(|c| c.client.expired_close_delay = Duration::ZERO).await;
    let short = token(&json!({ "sub": "alice", "exp": unix_now() + 2 }));
    let (mut client, result) = hub.connect_with_token(&short).await;
    assert_eq!(result["expires"], true);

    let long = token(&json!({ "sub": "alice", "exp": unix_now() + 3600 }));
    let refreshed = client.call("refresh", json!({ "token": long })).await;
    assert_eq!(refreshed["client"], client.id.as_str());
    assert_eq!(refreshed["version"], VERSION);
    assert_eq!(refreshed["expires"], true);
    let ttl = refreshed["ttl"].as_u64().expect("ttl");
    assert!((3598..=3600).contains(&ttl), "ttl {ttl}");

    // Past the first token's expiry the connection is still open.
    if let Some(value) = client.try_recv(Duration::from_millis(3200)).await {
        panic!("expected nothing, got {value}");
    }
    client.call("ping", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_with_another_users_token_closes_with_3500() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    client
        .send_command("refresh", json!({ "token": hub.token("mallory") }))
        .await;
    assert_eq!(client.expect_close().await.0, 3500);
    hub.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_refresh_extends_a_subscription() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let first = sub_token("alice", "secret:s", json!({ "exp": unix_now() + 600 }));
    let result = client
        .call(
            "subscribe",
            json!({ "channel": "secret:s", "token": first }),
        )
        .await;
    assert_eq!(result["expires"], true, "{result}");
    let ttl = result["ttl"].as_u64().expect("ttl");
    assert!((598..=600).contains(&ttl), "ttl {ttl}");

    let second = sub_token("alice", "secret:s", json!({ "exp": unix_now() + 1200 }));
    let refreshed = client
        .call(
            "sub_refresh",
            json!({ "channel": "secret:s", "token": second }),
        )
        .await;
    assert_eq!(refreshed["expires"], true);
    let ttl = refreshed["ttl"].as_u64().expect("ttl");
    assert!((1198..=1200).contains(&ttl), "ttl {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_without_refresh_ends_with_unsubscribe_2501() {
    let hub = TestHub::start_with(|c| c.client.expired_close_delay = Duration::ZERO).await;
    let mut client = hub.connect("alice").await;
    let short = sub_token("alice", "secret:short", json!({ "exp": unix_now() + 1 }));
    client
        .call(
            "subscribe",
            json!({ "channel": "secret:short", "token": short }),
        )
        .await;
    let push = client.recv_push().await;
    assert_eq!(
        push,
        json!({ "push": { "channel": "secret:short", "unsubscribe": { "code": 2501, "reason": "subscription expired" } } })
    );
    // The connection stays; only the subscription ended.
    hub.publish("secret:short", json!(1)).await;
    client.expect_silence().await;
    client.call("ping", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_command_gets_an_empty_reply() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let id = client.send_command("ping", json!({})).await;
    assert_eq!(client.recv().await, json!({ "id": id, "ping": {} }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_is_accepted_without_a_reply() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    client
        .send_text(r#"{"send":{"data":{"hello":"server"}}}"#)
        .await;
    let id = client.send_command("ping", json!({})).await;
    // The first thing back is the ping's reply: nothing answered the send.
    assert_eq!(client.recv().await, json!({ "id": id, "ping": {} }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_commands_in_one_frame_are_answered_in_order() {
    let hub = TestHub::start().await;
    let mut client = hub.open().await;
    let frame = [
        json!({ "id": 1, "connect": { "token": hub.token("alice") } }),
        json!({ "id": 2, "subscribe": { "channel": "room" } }),
        json!({ "id": 3, "rpc": { "method": "echo", "data": "x" } }),
        json!({ "id": 4, "ping": {} }),
        json!({ "id": 5, "publish": { "channel": "room", "data": { "n": 1 } } }),
        json!({ "id": 6, "unsubscribe": { "channel": "room" } }),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    client.send_text(&frame).await;

    let mut received = Vec::new();
    while received.len() < 7 {
        received.push(client.recv().await);
    }
    let replies: Vec<u64> = received.iter().filter_map(|v| v["id"].as_u64()).collect();
    assert_eq!(replies, vec![1, 2, 3, 4, 5, 6], "{received:?}");
    // The client's own publication arrives once, while it is subscribed: after the
    // subscribe reply and before the unsubscribe reply.
    let pushes: Vec<usize> = (0..received.len())
        .filter(|&i| received[i].get("push").is_some())
        .collect();
    assert_eq!(pushes.len(), 1, "{received:?}");
    assert!(pushes[0] > 1 && pushes[0] < 6, "{received:?}");
    assert_eq!(
        received[pushes[0]]["push"]["pub"]["data"],
        json!({ "n": 1 })
    );
    assert_eq!(received[2], json!({ "id": 3, "rpc": { "data": "x" } }));
    client.expect_silence().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_server_pings_with_pong_keeps_the_connection_open() {
    let hub = TestHub::start_with(|c| {
        c.client.ping_interval = Duration::from_secs(1);
        c.client.pong_timeout = Duration::from_millis(500);
    })
    .await;
    let (mut client, result) = hub.connect_with_token(&hub.token("alice")).await;
    assert_eq!(result["ping"], 1);
    for _ in 0..3 {
        let ping = client.recv().await;
        assert_eq!(ping, json!({}), "the server's ping is an empty object");
        client.send_text("{}").await;
    }
    // Three ping intervals passed, each answered: still connected, and the pong itself
    // got no reply.
    let id = client.send_command("ping", json!({})).await;
    assert_eq!(client.recv().await, json!({ "id": id, "ping": {} }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_forgets_a_client_that_disconnects() {
    let hub = TestHub::start().await;
    let mut alice = hub.connect("alice").await;
    alice.subscribe("chat:gone").await;
    let mut bob = hub.connect("bob").await;
    bob.subscribe("chat:gone").await;
    let bob_id = bob.id.clone();
    drop(bob);
    // `chat` pushes leaves; presence is updated before the leave is published.
    loop {
        let push = alice.recv_push().await;
        if push["push"]["leave"]["info"]["client"] == bob_id.as_str() {
            break;
        }
    }
    let presence = alice
        .call("presence", json!({ "channel": "chat:gone" }))
        .await;
    let clients: Vec<&String> = presence["presence"]
        .as_object()
        .expect("presence map")
        .keys()
        .collect();
    assert_eq!(clients, vec![&alice.id]);
}
