//! `client.write_delay`: after a write, a connection holds its output that long, so what
//! is published meanwhile reaches the client in one WebSocket message, in order, and
//! nothing is lost or held back for good.

mod common;

use std::time::Duration;

use common::{Event, TestHub};
use serde_json::json;

const CHANNEL: &str = "room";
/// Long enough that a loop of in-process publishes always fits inside it.
const WRITE_DELAY: Duration = Duration::from_millis(400);
const BURST: u64 = 10;

async fn publish(hub: &TestHub, n: u64) {
    let data = serde_json::value::to_raw_value(&json!({ "n": n })).expect("raw JSON");
    hub.node
        .publish(CHANNEL, data, Default::default())
        .await
        .expect("publish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_during_the_hold_share_one_message() {
    let hub = TestHub::start_with(|c| c.client.write_delay = WRITE_DELAY).await;
    let mut client = hub.connect("reader").await;
    client.subscribe(CHANNEL).await;

    // The first publication is a write: the hold starts when it goes out.
    publish(&hub, 0).await;
    let first = client.recv_pub(CHANNEL).await;
    assert_eq!(first["data"]["n"], 0);

    // Everything published while the hold runs comes out together, in order.
    for n in 1..=BURST {
        publish(&hub, n).await;
    }
    let messages = match client.next_event(Duration::from_secs(10)).await {
        Event::Messages(values) => values,
        other => panic!("expected the held publications, got {other:?}"),
    };
    let numbers: Vec<u64> = messages
        .iter()
        .map(|push| {
            push["push"]["pub"]["data"]["n"]
                .as_u64()
                .expect("a publication")
        })
        .collect();
    assert_eq!(
        numbers,
        (1..=BURST).collect::<Vec<_>>(),
        "all {BURST} publications in one WebSocket message"
    );

    // Commands are still read during a hold, and their replies follow it.
    publish(&hub, BURST + 1).await;
    let reply = client
        .call(
            "rpc",
            json!({ "method": "echo", "data": { "during": "hold" } }),
        )
        .await;
    assert_eq!(reply["data"]["during"], "hold", "{reply}");
    let last = client.recv_pub(CHANNEL).await;
    assert_eq!(last["data"]["n"], BURST + 1);
}
