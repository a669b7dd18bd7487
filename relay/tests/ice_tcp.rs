//! ICE-TCP on loopback: a str0m client whose only candidate is an **active TCP** one
//! publishes Opus over the relay's passive TCP candidate (RFC 6544, RFC 4571 framing), and
//! a webrtc-rs viewer receives it over UDP. webrtc-rs 0.17 cannot be the TCP client (it
//! gathers no active TCP candidates), hence str0m with the test doing the framing.
//! Also: a TCP connection that no session claims is closed after the connect timeout.

#[path = "common/whip.rs"]
mod whip_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rootcast_relay::tcp::{FrameDecoder, frame};
use rootcast_relay::{RelayConfig, RelayHooks};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use whip_common::{Heard, RecordingEvents, TestAuth, TestRelay, Viewer, apply_answer};

const SECS_10: Duration = Duration::from_secs(10);

fn tcp_config() -> RelayConfig {
    RelayConfig {
        tcp_bind: "127.0.0.1:0".into(),
        ..RelayConfig::loopback()
    }
}

/// A str0m publisher on one TCP connection: sends a 20 ms Opus packet every 20 ms once
/// connected. Runs until `stop`; returns whether the relay closed the connection.
struct TcpPublisher {
    connected: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<bool>,
}

async fn tcp_publisher(relay: &TestRelay, path: &str) -> (TcpPublisher, String) {
    let relay_tcp = relay.relay.tcp_addr().expect("ICE-TCP is on");
    let stream = TcpStream::connect(relay_tcp).await.unwrap();
    let local = stream.local_addr().unwrap();
    assert!(local.ip().is_loopback());

    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .build(Instant::now());
    let candidate = Candidate::builder()
        .tcp()
        .host(local)
        .tcptype(TcpType::Active)
        .build()
        .unwrap();
    rtc.add_local_candidate(candidate);
    let mut api = rtc.sdp_api();
    let mid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, pending) = api.apply().expect("an offer");
    let offer = offer.to_sdp_string();
    let candidates: Vec<&str> = offer
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    assert!(
        !candidates.is_empty() && candidates.iter().all(|c| c.contains(" tcp ")),
        "the offer has only TCP candidates: {candidates:?}"
    );

    let r = relay.post_offer(path, &offer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.text();
    let tcp_line = answer
        .lines()
        .find(|l| l.starts_with("a=candidate:") && l.contains(" tcp "))
        .unwrap_or_else(|| panic!("a TCP candidate in the answer: {answer}"));
    assert!(
        tcp_line.contains(&relay_tcp.port().to_string()) && tcp_line.contains("tcptype passive"),
        "{tcp_line}"
    );
    let answer_sdp = SdpAnswer::from_sdp_string(&answer).unwrap();
    rtc.sdp_api().accept_answer(pending, answer_sdp).unwrap();

    let connected = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (rd, mut wr) = stream.into_split();
    let (frames_tx, mut frames) = mpsc::channel::<Option<Vec<u8>>>(256);
    tokio::spawn(read_frames(rd, frames_tx));
    let task = {
        let (connected, sent, stop) = (connected.clone(), sent.clone(), stop.clone());
        tokio::spawn(async move {
            let mut next_audio = Instant::now();
            let mut rtp_time: u64 = 0;
            let mut closed = false;
            while !stop.load(Ordering::Relaxed) {
                // Drain str0m.
                let timeout = loop {
                    match rtc.poll_output().expect("poll_output") {
                        Output::Timeout(t) => break t,
                        Output::Transmit(t) => {
                            assert_eq!(t.proto, Protocol::Tcp, "only TCP transmits");
                            if wr.write_all(&frame(&t.contents).unwrap()).await.is_err() {
                                closed = true;
                            }
                        }
                        Output::Event(Event::Connected) => connected.store(true, Ordering::Relaxed),
                        Output::Event(_) => {}
                    }
                };
                if closed {
                    break;
                }
                let wake = if connected.load(Ordering::Relaxed) {
                    timeout.min(next_audio)
                } else {
                    timeout
                };
                let wake = wake.max(Instant::now());
                let wake = wake.min(Instant::now() + Duration::from_millis(100));
                tokio::select! {
                    f = frames.recv() => match f {
                        Some(Some(data)) => {
                            let Ok(contents) = data.as_slice().try_into() else { continue };
                            let input = Input::Receive(Instant::now(), Receive {
                                proto: Protocol::Tcp,
                                source: relay_tcp,
                                destination: local,
                                contents,
                            });
                            rtc.handle_input(input).expect("handle_input");
                        }
                        _ => { closed = true; break; }
                    },
                    _ = tokio::time::sleep_until(wake.into()) => {
                        rtc.handle_input(Input::Timeout(Instant::now())).expect("timeout");
                    }
                }
                if connected.load(Ordering::Relaxed) && Instant::now() >= next_audio {
                    let writer = rtc.writer(mid).expect("a writer for the audio mid");
                    let pt = writer.payload_params().next().expect("Opus").pt();
                    let time = MediaTime::new(rtp_time, Frequency::FORTY_EIGHT_KHZ);
                    writer
                        .write(pt, Instant::now(), time, vec![0xf8u8, 0xff, 0xfe, 1, 2, 3])
                        .expect("write");
                    rtp_time += 960;
                    next_audio += Duration::from_millis(20);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            closed
        })
    };
    (
        TcpPublisher {
            connected,
            sent,
            stop,
            task,
        },
        r.header("location").unwrap().to_string(),
    )
}

/// RFC 4571 frames from the stream; `None` at the end.
async fn read_frames(mut rd: tokio::net::tcp::OwnedReadHalf, tx: mpsc::Sender<Option<Vec<u8>>>) {
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => decoder.push(&buf[..n]),
        }
        while let Some(f) = decoder.next_frame() {
            if tx.send(Some(f)).await.is_err() {
                return;
            }
        }
    }
    let _ = tx.send(None).await;
}

async fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_only_publisher_reaches_a_udp_viewer() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let events = Arc::new(RecordingEvents::default());
        let hooks = RelayHooks {
            auth: Arc::new(TestAuth),
            events: events.clone(),
        };
        let relay = TestRelay::start_with(tcp_config(), hooks).await;
        let tcp: SocketAddr = relay.relay.tcp_addr().unwrap();
        assert!(tcp.ip().is_loopback());
        assert_eq!(relay.relay.tcp_candidates(), &[tcp]);

        let (publisher, location) = tcp_publisher(&relay, "/whip/over-tcp").await;
        let connected = publisher.connected.clone();
        wait_until("the TCP publisher connects", SECS_10, || {
            connected.load(Ordering::Relaxed)
        })
        .await;
        events
            .wait_for(&Heard::Live("over-tcp".into()), SECS_10)
            .await;
        let stats = relay.relay.stats().await.unwrap();
        assert_eq!(stats.tcp_connections, 1, "{stats:?}");

        // A UDP viewer gets the audio that came in over TCP.
        let (viewer, view_offer) = Viewer::new().await;
        let r = relay.post_offer("/whep/over-tcp", &view_offer).await;
        assert_eq!(r.status, 201, "{}", r.text());
        apply_answer(&viewer.pc, &r.text()).await;
        viewer.wait_for(0, 40, Duration::from_secs(15)).await;
        assert!(publisher.sent.load(Ordering::Relaxed) >= 40);

        // Ending the session closes its TCP connection.
        let r = relay.request("DELETE", &location, &[], b"").await;
        assert_eq!(r.status, 204);
        let stats = relay.relay.stats().await.unwrap();
        assert_eq!(stats.tcp_connections, 0, "{stats:?}");
        let closed = tokio::time::timeout(SECS_10, publisher.task)
            .await
            .expect("the client sees the connection close")
            .unwrap();
        assert!(closed);
        publisher.stop.store(true, Ordering::Relaxed);
        viewer.close().await;
        relay.stop().await;
    })
    .await
    .expect("finishes within 90 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclaimed_tcp_connection_is_closed() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let config = RelayConfig {
            connect_timeout_ms: 500,
            ..tcp_config()
        };
        let relay = TestRelay::start(config).await;
        let mut stream = TcpStream::connect(relay.relay.tcp_addr().unwrap())
            .await
            .unwrap();
        // Garbage frames, a truncated one, then silence.
        stream
            .write_all(&frame(b"not stun").unwrap())
            .await
            .unwrap();
        stream
            .write_all(&frame(&[0u8; 1500]).unwrap())
            .await
            .unwrap();
        stream.write_all(&[0x10, 0x00, 1, 2, 3]).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(SECS_10, stream.read(&mut buf))
            .await
            .expect("closed within 10 s")
            .unwrap_or(0);
        assert_eq!(
            n, 0,
            "nothing is sent back; the relay closes the connection"
        );
        let stats = relay.relay.stats().await.unwrap();
        assert_eq!(stats.tcp_connections, 0, "{stats:?}");
        relay.stop().await;
    })
    .await
    .expect("finishes within 30 s");
}
