//! A stand-in for rootcast in the reconnect-storm tests, with a recovery behaviour the test
//! chooses: it speaks just enough of the client protocol (`connect`, `subscribe` with
//! `recover`/`epoch`/`offset`, pushes with offsets, the `{}` ping is never sent) and of the
//! server API (`POST /api/publish`) on one port, keeps every publication in history, and
//! either recovers exactly what a client missed ([`Recovery::Exact`]) or never recovers
//! ([`Recovery::Never`]: `recovered: false`, no publications), counting the publications
//! each such client missed. Recovering subscribes are answered after a delay, so every
//! client misses some publications while it is away.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const EPOCH: &str = "standin";
const CHANNEL: &str = "bench:fanout";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// `recovered: true` with exactly the publications after the client's offset.
    Exact,
    /// `recovered: false` and nothing: the client loses what was published while away.
    Never,
}

#[derive(Default)]
struct Channel {
    /// Publication data, offset i + 1 at index i.
    history: Vec<String>,
    subscribers: Vec<mpsc::UnboundedSender<String>>,
}

pub struct StandInHub {
    pub address: SocketAddr,
    /// Publications that clients which asked to recover did not get back.
    pub unrecovered: Arc<AtomicU64>,
    /// Subscribes that asked to recover.
    pub recovering_subscribes: Arc<AtomicU64>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StandInHub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl StandInHub {
    pub async fn start(recovery: Recovery, reply_delay: Duration) -> StandInHub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let channel = Arc::new(Mutex::new(Channel::default()));
        let unrecovered = Arc::new(AtomicU64::new(0));
        let recovering_subscribes = Arc::new(AtomicU64::new(0));
        let counters = (unrecovered.clone(), recovering_subscribes.clone());
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let channel = channel.clone();
                let counters = counters.clone();
                tokio::spawn(async move {
                    let mut first = [0u8; 4];
                    if stream.peek(&mut first).await.is_err() {
                        return;
                    }
                    if &first == b"POST" {
                        serve_api(stream, channel).await;
                    } else {
                        serve_client(stream, channel, recovery, reply_delay, counters).await;
                    }
                });
            }
        });
        StandInHub {
            address,
            unrecovered,
            recovering_subscribes,
            server,
        }
    }
}

/// `POST /api/publish` on a keep-alive connection: appends to history, pushes to every
/// subscriber with the publication's offset.
async fn serve_api(stream: TcpStream, channel: Arc<Mutex<Channel>>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        // `{"channel":…,"data":<payload>}`: the payload is kept as it came (its field
        // order is what the load generator parses).
        let body = String::from_utf8(body).unwrap();
        let data = body
            .split_once("\"data\":")
            .and_then(|(_, rest)| rest.strip_suffix('}'))
            .unwrap()
            .to_owned();
        {
            let mut channel = channel.lock().unwrap();
            channel.history.push(data.clone());
            let offset = channel.history.len();
            let push = format!(
                "{{\"push\":{{\"channel\":\"{CHANNEL}\",\"pub\":{{\"data\":{data},\"offset\":{offset}}}}}}}"
            );
            channel.subscribers.retain(|s| s.send(push.clone()).is_ok());
        }
        let reply = "{\"result\":{}}";
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if write.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn serve_client(
    stream: TcpStream,
    channel: Arc<Mutex<Channel>>,
    recovery: Recovery,
    reply_delay: Duration,
    (unrecovered, recovering_subscribes): (Arc<AtomicU64>, Arc<AtomicU64>),
) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::text(text)).await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(message)) = source.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        for line in text.as_str().lines() {
            let command: Value = serde_json::from_str(line).unwrap();
            let id = command["id"].clone();
            if command.get("connect").is_some() {
                let _ = tx.send(format!(
                    "{{\"id\":{id},\"connect\":{{\"client\":\"standin\",\"version\":\"0\"}}}}"
                ));
            } else if let Some(subscribe) = command.get("subscribe") {
                let recover = subscribe["recover"] == true;
                if recover {
                    recovering_subscribes.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(reply_delay).await;
                }
                let from = subscribe["offset"].as_u64().unwrap_or(0) as usize;
                // Under the lock: the reply is queued before any later push.
                let mut channel = channel.lock().unwrap();
                let top = channel.history.len();
                let mut recovered = String::new();
                if recover {
                    let missed = &channel.history[from.min(top)..];
                    match recovery {
                        Recovery::Exact => {
                            let publications: Vec<String> = missed
                                .iter()
                                .enumerate()
                                .map(|(i, data)| {
                                    format!("{{\"data\":{data},\"offset\":{}}}", from + i + 1)
                                })
                                .collect();
                            recovered = format!(
                                ",\"publications\":[{}],\"recovered\":true",
                                publications.join(",")
                            );
                        }
                        Recovery::Never => {
                            unrecovered.fetch_add(missed.len() as u64, Ordering::Relaxed);
                        }
                    }
                }
                let _ = tx.send(format!(
                    "{{\"id\":{id},\"subscribe\":{{\"recoverable\":true,\"epoch\":\"{EPOCH}\"{recovered},\"offset\":{top},\"positioned\":true}}}}"
                ));
                channel.subscribers.push(tx.clone());
            }
        }
    }
    writer.abort();
}
