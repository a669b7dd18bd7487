//! Channel batching (`batch_max_delay`): a channel's publications made within the delay
//! reach each subscriber in one WebSocket message, in order, with their offsets; a
//! subscriber that arrives while a batch is gathering sees each publication exactly once.

mod common;

use std::time::Duration;

use common::{Event, TestHub, namespace};
use rootcast_config::NamespaceOptions;
use serde_json::{Value, json};

/// Long enough that a loop of in-process publishes always fits inside it.
const BATCH_DELAY: Duration = Duration::from_millis(400);
const BURST: u64 = 5;

async fn start() -> TestHub {
    TestHub::start_with(|c| {
        c.channel.namespaces.push(namespace(
            "batched",
            NamespaceOptions {
                batch_max_delay: BATCH_DELAY,
                history_size: 100,
                history_ttl: Duration::from_secs(300),
                force_recovery: true,
                allow_subscribe_for_client: true,
                ..NamespaceOptions::default()
            },
        ))
    })
    .await
}

async fn publish(hub: &TestHub, channel: &str, n: u64) {
    let data = serde_json::value::to_raw_value(&json!({ "n": n })).expect("raw JSON");
    hub.node
        .publish(channel, data, Default::default())
        .await
        .expect("publish");
}

/// The pushes of the next WebSocket message, as (n, offset) pairs.
async fn next_message(client: &mut common::Client) -> Vec<(u64, u64)> {
    match client.next_event(Duration::from_secs(10)).await {
        Event::Messages(values) => values.iter().map(n_and_offset).collect(),
        other => panic!("expected publications, got {other:?}"),
    }
}

fn n_and_offset(push: &Value) -> (u64, u64) {
    let publication = &push["push"]["pub"];
    let n = publication["data"]["n"].as_u64();
    let offset = publication["offset"].as_u64();
    n.zip(offset)
        .unwrap_or_else(|| panic!("not a publication: {push}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_arrives_in_one_message_in_order() {
    let hub = start().await;
    let mut client = hub.connect("reader").await;
    client.subscribe("batched:room").await;

    for n in 1..=BURST {
        publish(&hub, "batched:room", n).await;
    }
    let expected: Vec<(u64, u64)> = (1..=BURST).map(|n| (n, n)).collect();
    assert_eq!(next_message(&mut client).await, expected);
    assert_eq!(
        hub.metric("rootcast_messages_out_total").await as u64,
        BURST,
        "each publication of the batch counted as one delivery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_arriving_during_a_batch_sees_each_publication_once() {
    let hub = start().await;
    let mut early = hub.connect("early").await;
    let reply = early.subscribe("batched:race").await;
    let epoch = reply["epoch"].as_str().expect("epoch").to_owned();

    publish(&hub, "batched:race", 1).await;
    publish(&hub, "batched:race", 2).await;
    // The batch holding 1 and 2 is still gathering: the late subscriber recovers them
    // from history in its reply, and must not receive them again when the batch goes out.
    let mut late = hub.connect("late").await;
    let reply = late
        .call(
            "subscribe",
            json!({ "channel": "batched:race", "recover": true, "offset": 0, "epoch": epoch }),
        )
        .await;
    let recovered: Vec<(u64, u64)> = reply["publications"]
        .as_array()
        .expect("recovered publications")
        .iter()
        .map(|p| n_and_offset(&json!({ "push": { "pub": p } })))
        .collect();
    assert_eq!(recovered, [(1, 1), (2, 2)], "{reply}");
    publish(&hub, "batched:race", 3).await;

    assert_eq!(next_message(&mut early).await, [(1, 1), (2, 2), (3, 3)]);
    assert_eq!(
        next_message(&mut late).await,
        [(3, 3)],
        "only what came after it"
    );
}
