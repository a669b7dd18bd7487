//! A protocol client over one WebSocket for the integration tests: commands with ids,
//! replies matched by id, pushes queued in arrival order, every wait bounded.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::TestServer;

/// How long a reply or an expected publication may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// How the server answered a subscribe.
#[derive(Debug, PartialEq, Eq)]
pub enum SubscribeOutcome {
    Subscribed,
    /// An error reply with this code.
    Error(u64),
    /// The server closed the connection (with this close code, when it sent one).
    Closed(Option<u16>),
}

/// One connected client.
pub struct Ws {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u32,
    replies: VecDeque<Value>,
    pushes: VecDeque<Value>,
    /// The result of the `connect` command (client id, server-side subscriptions, …).
    pub connected: Value,
}

impl Ws {
    /// Connects to `server` with the connection `token`; panics when refused.
    pub async fn connect(server: &TestServer, token: &str) -> Ws {
        let (socket, _) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&server.ws_url))
                .await
                .expect("websocket handshake in time")
                .expect("websocket handshake");
        let mut ws = Ws {
            socket,
            next_id: 0,
            replies: VecDeque::new(),
            pushes: VecDeque::new(),
            connected: Value::Null,
        };
        let reply = ws.command("connect", json!({"token": token})).await;
        assert!(reply.get("error").is_none(), "connect failed: {reply}");
        ws.connected = reply["connect"].clone();
        ws
    }

    /// Connects with `token` and expects the server to refuse it: returns the close code
    /// (`None` when it closed without one). Panics when the connect is accepted.
    pub async fn refused_connect(server: &TestServer, token: &str) -> Option<u16> {
        let (mut socket, _) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&server.ws_url))
                .await
                .expect("websocket handshake in time")
                .expect("websocket handshake");
        let frame = json!({"id": 1, "connect": {"token": token}});
        socket
            .send(Message::text(frame.to_string()))
            .await
            .expect("sending connect");
        tokio::time::timeout(WAIT, async {
            loop {
                match socket.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                    None | Some(Err(_)) => return None,
                    Some(Ok(Message::Text(text))) => {
                        assert!(
                            !text.contains("\"connect\""),
                            "the connect was accepted: {text}"
                        );
                    }
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
        .expect("the server refuses the connect in time")
    }

    /// Waits up to `wait` for the server to close this connection (pushes are skipped):
    /// the close code, `None` when it closed without one. Panics when it stays open.
    pub async fn closed(&mut self, wait: Duration) -> Option<u16> {
        tokio::time::timeout(wait, async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                    None | Some(Err(_)) => return None,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the server did not close the connection within {wait:?}"))
    }

    /// Sends one command and waits for its reply (pushes met meanwhile are queued).
    pub async fn command(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut frame = json!({"id": id});
        frame[method] = params;
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .expect("sending a command");
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(pos) = self.replies.iter().position(|r| r["id"] == id) {
                    return self.replies.remove(pos).unwrap();
                }
                self.read_frame().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no reply to {method} within {WAIT:?}"))
    }

    /// Calls an RPC method: `Ok(data)` or `Err(error code)`.
    pub async fn rpc(&mut self, method: &str, data: Value) -> Result<Value, u64> {
        self.rpc_with_message(method, data)
            .await
            .map_err(|(code, _)| code)
    }

    /// Calls an RPC method: `Ok(data)` or `Err((code, message))`.
    pub async fn rpc_with_message(
        &mut self,
        method: &str,
        data: Value,
    ) -> Result<Value, (u64, String)> {
        let reply = self
            .command("rpc", json!({"method": method, "data": data}))
            .await;
        match reply.get("error") {
            Some(error) => Err((
                error["code"].as_u64().expect("an error code"),
                error["message"].as_str().unwrap_or_default().to_owned(),
            )),
            None => Ok(reply["rpc"]["data"].clone()),
        }
    }

    /// Subscribes to `channel` with a subscription token; panics when refused.
    pub async fn subscribe(&mut self, channel: &str, token: &str) {
        let reply = self
            .command("subscribe", json!({"channel": channel, "token": token}))
            .await;
        assert!(reply.get("error").is_none(), "subscribe {channel}: {reply}");
    }

    /// Subscribes to a channel handed out as `{channel, token}` (e.g. by `meeting.join`).
    pub async fn subscribe_entry(&mut self, entry: &Value) {
        let channel = entry["channel"].as_str().expect("a channel name");
        let token = entry["token"].as_str().expect("a channel token");
        self.subscribe(channel, token).await;
    }

    /// Sends a subscribe and tells whether the server refused it: an error reply, or the
    /// connection closed (a token for another channel disconnects).
    pub async fn refused(&mut self, params: Value) -> bool {
        self.try_subscribe(params).await != SubscribeOutcome::Subscribed
    }

    /// Sends a subscribe with `params` and says how the server answered.
    pub async fn try_subscribe(&mut self, params: Value) -> SubscribeOutcome {
        self.next_id += 1;
        let id = self.next_id;
        let frame = json!({"id": id, "subscribe": params});
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .expect("sending a subscribe");
        tokio::time::timeout(WAIT, async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Close(frame))) => {
                        return SubscribeOutcome::Closed(frame.map(|f| u16::from(f.code)));
                    }
                    None | Some(Err(_)) => return SubscribeOutcome::Closed(None),
                    Some(Ok(Message::Text(text))) => {
                        for line in text.as_str().lines().filter(|l| !l.trim().is_empty()) {
                            let value: Value = serde_json::from_str(line).expect("JSON frames");
                            if value["id"] != id {
                                continue;
                            }
                            return match value.get("error") {
                                Some(error) => SubscribeOutcome::Error(
                                    error["code"].as_u64().expect("an error code"),
                                ),
                                None => SubscribeOutcome::Subscribed,
                            };
                        }
                    }
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
        .expect("an answer to the subscribe in time")
    }

    pub async fn unsubscribe(&mut self, channel: &str) {
        let reply = self
            .command("unsubscribe", json!({"channel": channel}))
            .await;
        assert!(reply.get("error").is_none(), "unsubscribe: {reply}");
    }

    /// The next publication on `channel` (its data), waiting up to `wait`.
    pub async fn next_on(&mut self, channel: &str, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, async {
            loop {
                if let Some(pos) = self
                    .pushes
                    .iter()
                    .position(|p| p["channel"] == channel && p.get("pub").is_some())
                {
                    return self.pushes.remove(pos).unwrap()["pub"]["data"].clone();
                }
                self.read_frame().await;
            }
        })
        .await
        .ok()
    }

    /// The next publication on `channel`, which must come within [`WAIT`].
    pub async fn next(&mut self, channel: &str) -> Value {
        self.next_on(channel, WAIT)
            .await
            .unwrap_or_else(|| panic!("no publication on {channel} within {WAIT:?}"))
    }

    /// The next publication on `channel` whose `type` is `kind`, skipping others.
    pub async fn next_of(&mut self, channel: &str, kind: &str) -> Value {
        loop {
            let data = self.next(channel).await;
            if data["type"] == kind {
                return data;
            }
        }
    }

    async fn read_frame(&mut self) {
        let message = self
            .socket
            .next()
            .await
            .expect("the connection stays open")
            .expect("a websocket message");
        let Message::Text(text) = message else {
            return;
        };
        for line in text.as_str().lines().filter(|l| !l.trim().is_empty()) {
            let value: Value = serde_json::from_str(line).expect("JSON frames");
            if let Some(push) = value.get("push") {
                self.pushes.push_back(push.clone());
            } else if value.get("id").is_some() {
                self.replies.push_back(value);
            }
        }
    }
}
