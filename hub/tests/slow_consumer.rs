//! A client that stops reading is disconnected as slow once its queue passes
//! `client.queue_max_size`, without holding up the other subscribers of its channels.

mod common;

use std::time::Duration;

use common::{Client, Event, TestHub, metric_value, within};
use serde_json::json;
use tokio::net::TcpSocket;

const CHANNEL: &str = "room";
/// Publications of about 8 KiB: eight fill the slow client's 64 KiB queue.
const PAYLOAD_BYTES: usize = 8 * 1024;
/// Published between two reads of the healthy subscriber: half its queue.
const BATCH: u64 = 4;
/// Enough to fill any socket buffers between the hub and the slow client many times.
const MAX_PUBLICATIONS: u64 = 4000;

/// A client whose socket has a small receive buffer, so the hub's writes to it back up
/// after a few kilobytes once it stops reading.
async fn client_with_small_receive_buffer(hub: &TestHub) -> Client {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(hub.addr).await.expect("tcp connect");
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (ws, _) = within(tokio_tungstenite::client_async(hub.ws_url(), stream))
        .await
        .expect("websocket handshake");
    Client::new(ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_stops_reading_is_disconnected_and_others_get_everything() {
    let hub = TestHub::start_with(|c| c.client.queue_max_size = 64 * 1024).await;
    let mut healthy = hub.connect("healthy").await;
    healthy.subscribe(CHANNEL).await;

    let mut slow = client_with_small_receive_buffer(&hub).await;
    slow.call("connect", json!({ "token": hub.token("slow") }))
        .await;
    slow.subscribe(CHANNEL).await;
    // From here on the slow client's socket is not read until the end of the test.

    let payload = "x".repeat(PAYLOAD_BYTES);
    let mut published = 0;
    let mut expected = 1;
    while published < MAX_PUBLICATIONS {
        for _ in 0..BATCH {
            published += 1;
            let data = serde_json::value::to_raw_value(&json!({ "n": published, "pad": payload }))
                .expect("raw JSON");
            hub.node
                .publish(CHANNEL, data, Default::default())
                .await
                .expect("publish");
        }
        // The healthy subscriber keeps up: everything, in order, before the next batch.
        while expected <= published {
            let publication = healthy.recv_pub(CHANNEL).await;
            assert_eq!(publication["data"]["n"], expected);
            expected += 1;
        }
        if metric_value(&hub.metrics().await, "rootcast_slow_disconnects_total") >= 1.0 {
            break;
        }
    }
    assert!(
        published < MAX_PUBLICATIONS,
        "the slow client was never disconnected after {published} publications of {PAYLOAD_BYTES} bytes"
    );

    // The hub lets the slow connection go without the client reading anything: only
    // the healthy one stays.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let metrics = hub.metrics().await;
        if metric_value(&metrics, "rootcast_connections") == 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slow connection still open 15 s after overflowing:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The healthy subscriber goes on receiving.
    hub.publish(CHANNEL, json!({ "n": published + 1 })).await;
    assert_eq!(healthy.recv_pub(CHANNEL).await["data"]["n"], published + 1);

    // Reading after the fact, the slow client finds a gapless prefix of the stream, then
    // the end of the connection (a 3008 close frame if the hub could still write it).
    let mut numbers = Vec::new();
    let end = loop {
        match slow.next_event(Duration::from_secs(10)).await {
            Event::Messages(values) => numbers.extend(
                values
                    .iter()
                    .filter_map(|v| v["push"]["pub"]["data"]["n"].as_u64()),
            ),
            Event::Timeout => panic!("slow connection neither closed nor ended"),
            end => break end,
        }
    };
    if let Event::Close(code, _) = end {
        assert_eq!(code, 3008, "close code of a slow client");
    }
    let prefix: Vec<u64> = (1..=numbers.len() as u64).collect();
    assert_eq!(numbers, prefix, "the slow client's publications have a gap");
    assert!((numbers.len() as u64) < published);

    hub.assert_still_serving().await;
}
