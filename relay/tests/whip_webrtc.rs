//! End to end on loopback: a webrtc-rs publisher does WHIP (VP8 + Opus), two webrtc-rs
//! viewers do WHEP and receive RTP through str0m and the forwarding core.

#[path = "common/whip.rs"]
mod whip_common;

use std::time::Duration;

use rootcast_relay::RelayConfig;
use whip_common::{
    Publisher, TestRelay, Viewer, apply_answer, vp8_payload_is_keyframe_start, wait_connected,
};

const SECS_10: Duration = Duration::from_secs(10);

async fn stream_stats(relay: &TestRelay, name: &str) -> Option<rootcast_relay::StreamStats> {
    let stats = relay.relay.stats().await.unwrap();
    stats.streams.into_iter().find(|s| s.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_publisher_reaches_two_whep_viewers() {
    tokio::time::timeout(Duration::from_secs(90), scenario())
        .await
        .expect("the scenario finishes within 90 s");
}

async fn scenario() {
    let relay = TestRelay::start(RelayConfig::loopback()).await;

    // Publisher: WHIP.
    let (publisher, offer) = Publisher::new().await;
    let r = relay.post_offer("/whip/town-hall", &offer).await;
    assert_eq!(r.status, 201, "WHIP answer: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/sdp"));
    let publisher_location = r.header("location").unwrap().to_string();
    assert!(
        publisher_location.starts_with("/whip/town-hall/"),
        "{publisher_location}"
    );
    assert!(r.header("etag").is_some());
    apply_answer(&publisher.pc, &r.text()).await;
    wait_connected(&publisher.pc, SECS_10).await;

    // A second publisher on the live stream: 409.
    let (second, offer2) = Publisher::new().await;
    let r = relay.post_offer("/whip/town-hall", &offer2).await;
    assert_eq!(r.status, 409, "{}", r.text());
    second.close().await;

    // Two viewers: WHEP.
    let mut viewers = Vec::new();
    let mut locations = Vec::new();
    for _ in 0..2 {
        let (viewer, offer) = Viewer::new().await;
        let r = relay.post_offer("/whep/town-hall", &offer).await;
        assert_eq!(r.status, 201, "WHEP answer: {}", r.text());
        let location = r.header("location").unwrap().to_string();
        assert!(location.starts_with("/whep/town-hall/"), "{location}");
        apply_answer(&viewer.pc, &r.text()).await;
        viewers.push(viewer);
        locations.push(location);
    }
    for v in &viewers {
        wait_connected(&v.pc, SECS_10).await;
    }
    for v in &viewers {
        v.wait_for(40, 40, Duration::from_secs(15)).await;
    }

    // Counts keep growing.
    let before: Vec<(u64, u64)> = viewers.iter().map(|v| v.counts()).collect();
    tokio::time::sleep(Duration::from_millis(600)).await;
    for (v, (video, audio)) in viewers.iter().zip(before) {
        let (video2, audio2) = v.counts();
        assert!(
            video2 > video && audio2 > audio,
            "packets keep arriving: {video}->{video2}, {audio}->{audio2}"
        );
    }

    // Per viewer: the first video packet starts a keyframe, one SSRC per kind, sequence
    // numbers continuous.
    for v in &viewers {
        let log = v.log.lock().unwrap();
        let first = log.video.first_payload.as_deref().unwrap();
        assert!(
            vp8_payload_is_keyframe_start(first),
            "first video packet is a keyframe start: {:02x?}",
            &first[..first.len().min(12)]
        );
        assert_eq!(log.video.ssrcs.len(), 1);
        assert_eq!(log.audio.ssrcs.len(), 1);
        assert!(
            log.video.seq_breaks.is_empty(),
            "video seq continuous: {:?}",
            log.video.seq_breaks
        );
        assert!(
            log.audio.seq_breaks.is_empty(),
            "audio seq continuous: {:?}",
            log.audio.seq_breaks
        );
    }
    assert!(
        publisher
            .keyframe_requests
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1,
        "the relay asked the publisher for a keyframe"
    );

    let s = stream_stats(&relay, "town-hall").await.unwrap();
    assert!(s.has_publisher);
    assert_eq!((s.viewer_sessions, s.forwarder_viewers), (2, 2));
    assert!(s.counters.packets_out > 100, "{:?}", s.counters);
    assert!(s.counters.keyframe_requests_out >= 1, "{:?}", s.counters);

    // The relay's own counters (GET /relay/metrics) agree with the core's and with what
    // the viewers got, and nothing was dropped on the way.
    let received: u64 = viewers.iter().map(|v| v.counts().0 + v.counts().1).sum();
    let r = relay.request("GET", "/relay/metrics", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    let metric = |name: &str| -> u64 {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in\n{text}"))
    };
    let forwarded = metric("rootcast_relay_rtp_forwarded_total");
    assert!(
        forwarded >= s.counters.packets_out,
        "every forward the core made (by the earlier snapshot) was written: {forwarded} vs {:?}",
        s.counters
    );
    assert!(metric("rootcast_relay_rtp_received_total") >= s.counters.packets_in);
    assert!(metric("rootcast_relay_rtp_forwarded_payload_bytes_total") > forwarded * 10);
    let sent = metric("rootcast_relay_datagrams_sent_total");
    assert!(
        sent >= received,
        "the viewers got {received} RTP packets, the relay sent {sent} datagrams"
    );
    assert!(metric("rootcast_relay_sent_bytes_total") > sent * 10);
    let calls = metric("rootcast_relay_send_calls_total");
    assert!(
        calls >= 1 && calls <= sent,
        "{calls} sendmmsg calls for {sent}"
    );
    assert!(metric("rootcast_relay_datagrams_received_total") >= s.counters.packets_in);
    assert!(metric("rootcast_relay_receive_batches_total") >= 1);
    assert!(metric("rootcast_relay_largest_receive_batch") >= 1);
    assert!(metric("rootcast_relay_str0m_timeouts_total") > 0);
    assert!(metric("rootcast_relay_str0m_events_total") >= s.counters.packets_in);
    assert!(metric("rootcast_relay_str0m_polls_total") > 0);
    assert!(metric("rootcast_relay_loop_turns_total") > 0);
    assert_eq!(metric("rootcast_relay_send_errors_total"), 0);
    assert_eq!(metric("rootcast_relay_send_would_block_total"), 0);
    assert_eq!(metric("rootcast_relay_receive_queue_drops_total"), 0);
    assert!(metric("rootcast_relay_socket_receive_buffer_bytes") > 0);
    assert_eq!(metric("rootcast_relay_peers"), 3);
    assert_eq!(
        metric("rootcast_relay_stream_viewers{stream=\"town-hall\"}"),
        2
    );
    assert!(
        metric("rootcast_relay_stream_packets_out_total{stream=\"town-hall\"}")
            >= s.counters.packets_out
    );
    assert!(relay.relay.counters().rtp_forwarded >= forwarded);

    // DELETE one viewer: its state is gone, the other keeps receiving.
    let r = relay
        .request(
            "DELETE",
            &locations[0],
            &[("Authorization", whip_common::TOKEN)],
            b"",
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let s = stream_stats(&relay, "town-hall").await.unwrap();
    assert_eq!((s.viewer_sessions, s.forwarder_viewers), (1, 1));
    assert_eq!(relay.relay.stats().await.unwrap().peers, 2);
    let r = relay.request("DELETE", &locations[0], &[], b"").await;
    assert_eq!(r.status, 404, "a second DELETE: {}", r.text());
    let (video, _) = viewers[1].counts();
    viewers[1].wait_for(video + 10, 0, SECS_10).await;

    // PATCH (trickle ICE) on a live session: 204; a stale If-Match: 412.
    let r = relay
        .request(
            "PATCH",
            &locations[1],
            &[("Content-Type", "application/trickle-ice-sdpfrag")],
            b"a=end-of-candidates\r\n",
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = relay
        .request(
            "PATCH",
            &locations[1],
            &[
                ("Content-Type", "application/trickle-ice-sdpfrag"),
                ("If-Match", "\"not-the-etag\""),
            ],
            b"a=end-of-candidates\r\n",
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.text());

    // The publisher and the last viewer leave: nothing is left.
    let r = relay.request("DELETE", &publisher_location, &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = relay.request("DELETE", &locations[1], &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let stats = relay.relay.stats().await.unwrap();
    assert_eq!(stats.peers, 0, "{stats:?}");
    assert_eq!(stats.addresses, 0, "{stats:?}");
    assert!(stats.streams.is_empty(), "{stats:?}");

    publisher.close().await;
    for v in viewers {
        v.close().await;
    }
    relay.stop().await;
}
