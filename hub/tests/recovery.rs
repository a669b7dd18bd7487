//! Recovery of missed publications on resubscribe, and the guarantee that a subscriber
//! sees every publication exactly once, in order, even when publications race with its
//! subscribe.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestHub, within};
use rootcast_hub::ServerPublish;
use serde_json::{Value, json};

fn offsets(publications: &Value) -> Vec<u64> {
    publications
        .as_array()
        .map(|pubs| {
            pubs.iter()
                .map(|p| p["offset"].as_u64().expect("offset"))
                .collect()
        })
        .unwrap_or_default()
}

/// Subscribes to a recoverable channel and returns `(offset, epoch)` from the reply.
async fn position_of(result: &Value) -> (u64, String) {
    assert_eq!(result["recoverable"], true, "{result}");
    let epoch = result["epoch"].as_str().expect("epoch").to_owned();
    assert!(!epoch.is_empty());
    (result["offset"].as_u64().unwrap_or(0), epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribe_recovers_exactly_the_missed_publications() {
    let hub = TestHub::start().await;
    hub.publish("rec:r", json!({ "n": 0 })).await;
    let mut client = hub.connect("alice").await;
    let (offset, epoch) = position_of(&client.subscribe("rec:r").await).await;
    assert_eq!(offset, 1);
    drop(client);

    for n in 1..=3 {
        hub.publish("rec:r", json!({ "n": n })).await;
    }

    let mut client = hub.connect("alice").await;
    let result = client
        .call(
            "subscribe",
            json!({ "channel": "rec:r", "recover": true, "offset": offset, "epoch": epoch }),
        )
        .await;
    assert_eq!(result["recovered"], true, "{result}");
    assert_eq!(result["was_recovering"], true);
    assert_eq!(result["recoverable"], true);
    assert_eq!(result["epoch"], epoch.as_str());
    assert_eq!(result["offset"], 4);
    assert_eq!(
        result["publications"],
        json!([
            { "data": { "n": 1 }, "offset": 2 },
            { "data": { "n": 2 }, "offset": 3 },
            { "data": { "n": 3 }, "offset": 4 }
        ])
    );
    // Live publications continue right after the recovered ones.
    hub.publish("rec:r", json!({ "n": 4 })).await;
    assert_eq!(client.recv_pub("rec:r").await["offset"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_from_a_channel_that_was_empty_when_first_subscribed() {
    let hub = TestHub::start().await;
    let mut client = hub.connect("alice").await;
    let (offset, epoch) = position_of(&client.subscribe("rec:fresh").await).await;
    assert_eq!(offset, 0);
    drop(client);

    hub.publish("rec:fresh", json!("a")).await;
    hub.publish("rec:fresh", json!("b")).await;

    let mut client = hub.connect("alice").await;
    let result = client
        .call(
            "subscribe",
            json!({ "channel": "rec:fresh", "recover": true, "offset": 0, "epoch": epoch }),
        )
        .await;
    assert_eq!(result["recovered"], true, "{result}");
    assert_eq!(
        result["epoch"],
        epoch.as_str(),
        "the epoch the first reply gave holds"
    );
    assert_eq!(
        result["publications"],
        json!([{ "data": "a", "offset": 1 }, { "data": "b", "offset": 2 }])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribe_at_the_top_recovers_nothing_and_succeeds() {
    let hub = TestHub::start().await;
    hub.publish("rec:top", json!(1)).await;
    let mut client = hub.connect("alice").await;
    let (offset, epoch) = position_of(&client.subscribe("rec:top").await).await;
    client
        .call("unsubscribe", json!({ "channel": "rec:top" }))
        .await;
    let result = client
        .call(
            "subscribe",
            json!({ "channel": "rec:top", "recover": true, "offset": offset, "epoch": epoch }),
        )
        .await;
    assert_eq!(result["recovered"], true, "{result}");
    assert!(result.get("publications").is_none(), "{result}");
    assert_eq!(result["offset"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gap_larger_than_history_is_not_recovered() {
    let hub = TestHub::start().await;
    hub.publish("rec:gap", json!(0)).await;
    let mut client = hub.connect("alice").await;
    let (offset, epoch) = position_of(&client.subscribe("rec:gap").await).await;
    drop(client);

    // `rec` keeps 10: after 15 more, publication 2 is gone.
    for n in 1..=15 {
        hub.publish("rec:gap", json!(n)).await;
    }
    let mut client = hub.connect("alice").await;
    let result = client
        .call(
            "subscribe",
            json!({ "channel": "rec:gap", "recover": true, "offset": offset, "epoch": epoch }),
        )
        .await;
    assert_ne!(result["recovered"], true, "{result}");
    assert_eq!(result["was_recovering"], true);
    assert_eq!(result["offset"], 16);
    assert_eq!(result["epoch"], epoch.as_str());
    // Whatever came back, nothing is claimed as a gapless continuation from offset 1.
    let recovered = offsets(&result["publications"]);
    assert!(
        recovered.first().is_none_or(|first| *first > offset + 1),
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_epoch_is_not_recovered() {
    let hub = TestHub::start().await;
    hub.publish("rec:epoch", json!(0)).await;
    hub.publish("rec:epoch", json!(1)).await;
    let mut client = hub.connect("alice").await;
    let result = client
        .call(
            "subscribe",
            json!({ "channel": "rec:epoch", "recover": true, "offset": 1, "epoch": "stale-epoch" }),
        )
        .await;
    assert_ne!(result["recovered"], true, "{result}");
    assert_eq!(result["was_recovering"], true);
    assert_eq!(result["offset"], 2);
    let epoch = result["epoch"].as_str().expect("epoch");
    assert!(!epoch.is_empty() && epoch != "stale-epoch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_is_not_offered_where_the_namespace_does_not_allow_it() {
    let hub = TestHub::start().await;
    hub.publish("news:plain", json!(1)).await;
    let mut client = hub.connect("alice").await;
    hub.api_ok(
        "subscribe",
        json!({ "user": "alice", "channel": "news:plain" }),
    )
    .await;
    // `news` keeps history but has no recovery: the subscribe push carries no position.
    assert_eq!(
        client.recv_push().await,
        json!({ "push": { "channel": "news:plain", "subscribe": {} } })
    );
}

/// Reads publication pushes of `channel` until `last_offset`; returns their offsets.
async fn read_until(client: &mut common::Client, channel: &str, last_offset: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    while seen.last().is_none_or(|last| *last < last_offset) {
        let value = client.recv().await;
        let push = &value["push"];
        assert_eq!(push["channel"], channel, "unexpected message {value}");
        let offset = push["pub"]["offset"].as_u64().expect("publication offset");
        seen.push(offset);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_racing_with_subscribes_are_neither_lost_nor_duplicated() {
    const CHANNEL: &str = "race:hot";
    const PUBLICATIONS: u64 = 3000;
    const SUBSCRIBERS: usize = 24;
    let hub = TestHub::start_with(|c| {
        c.channel.namespaces.push(common::namespace(
            "race",
            rootcast_config::NamespaceOptions {
                history_size: 5000,
                history_ttl: Duration::from_secs(300),
                force_recovery: true,
                allow_subscribe_for_client: true,
                ..Default::default()
            },
        ));
    })
    .await;
    let hub = Arc::new(hub);
    let first = hub.publish(CHANNEL, json!(0)).await;
    assert_eq!(first["offset"], 1);
    let epoch = hub.api_ok("history", json!({ "channel": CHANNEL })).await["epoch"]
        .as_str()
        .expect("epoch")
        .to_owned();
    let last = 1 + PUBLICATIONS;

    // The publisher hammers the channel in-process while subscribers come and go.
    let node = hub.node.clone();
    let publisher = tokio::spawn(async move {
        for n in 1..=PUBLICATIONS {
            let data = serde_json::value::to_raw_value(&n).expect("raw");
            node.publish(CHANNEL, data, ServerPublish::default())
                .await
                .expect("publish");
            if n % 4 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });

    let mut subscribers = Vec::new();
    for i in 0..SUBSCRIBERS {
        let hub = hub.clone();
        let epoch = epoch.clone();
        subscribers.push(tokio::spawn(async move {
            // Stagger the subscribes over the publishing run.
            tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
            let mut client = hub.connect(&format!("user{i}")).await;
            // Half recover from the first publication, half start at the live position.
            let request = if i % 2 == 0 {
                json!({ "channel": CHANNEL, "recover": true, "offset": 1, "epoch": epoch })
            } else {
                json!({ "channel": CHANNEL })
            };
            let result = client.call("subscribe", request).await;
            let mut seen = Vec::new();
            if i % 2 == 0 {
                assert_eq!(result["recovered"], true, "subscriber {i}: {result}");
                seen.push(1);
                seen.extend(offsets(&result["publications"]));
            } else {
                seen.push(result["offset"].as_u64().unwrap_or(0));
            }
            assert_eq!(
                result["offset"].as_u64().unwrap_or(0),
                *seen.last().expect("not empty"),
                "subscriber {i}: the reply's offset is its last publication"
            );
            if *seen.last().expect("not empty") < last {
                seen.extend(read_until(&mut client, CHANNEL, last).await);
            }
            let start = seen[0];
            let expected: Vec<u64> = (start..=last).collect();
            assert_eq!(seen, expected, "subscriber {i} saw gaps or duplicates");
            client.expect_silence().await;
            start
        }));
    }

    within(publisher).await.expect("publisher");
    let mut mid_stream = 0;
    for subscriber in subscribers {
        let start = within(subscriber).await.expect("subscriber passed");
        if start > 1 && start < last {
            mid_stream += 1;
        }
    }
    // Live subscribers really did join while the publisher ran (else this proves little).
    assert!(mid_stream > 0, "no subscriber joined while publishing");
}
