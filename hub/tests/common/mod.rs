//! Shared helpers for the hub's protocol integration tests.
//!
//! Each test starts its own hub in-process ([`TestHub`]) on `127.0.0.1:0`, so tests run in
//! parallel, and talks to it as a real client would: WebSocket connections speaking the
//! JSON client protocol ([`Client`]) and plain HTTP/1.1 requests for the server API and
//! `/metrics` ([`TestHub::api`], [`TestHub::http`]). Every wait has a timeout.
#![allow(dead_code)] // Each test file uses a different subset.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use rootcast_config::{Config, Namespace, NamespaceOptions};
use rootcast_hub::{Node, RpcRegistry};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "hub-test-secret";
pub const API_KEY: &str = "hub-test-api-key";
/// How long any single wait may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long to listen to prove that something does not arrive.
pub const QUIET: Duration = Duration::from_millis(300);

pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

pub fn namespace(name: &str, options: NamespaceOptions) -> Namespace {
    Namespace {
        name: name.to_owned(),
        options,
    }
}

const HISTORY_TTL: Duration = Duration::from_secs(300);

/// The configuration every test starts from: token secret and API key set, anonymous
/// connections refused, everything else at its default. Namespaces, by what they are for:
/// - (none): authenticated clients subscribe; subscribers publish.
/// - `chat`: presence, join/leave pushed to everyone, history 100; subscribers publish
///   and read presence and history.
/// - `rec`: forced recovery, history of 10; any client reads history.
/// - `open`: everyone (anonymous too) may subscribe, publish, ask for presence and
///   history, but the namespace keeps neither (108).
/// - `closed`: keeps presence and history but allows nothing (103).
/// - `secret`: protected: subscription token needed.
/// - `dm`: user-limited channels (`dm:x#alice`).
/// - `news`: history 10; no client permissions (server-side subscriptions only).
pub fn base_config() -> Config {
    let mut config = Config::default();
    config.client.token.hmac_secret_key = SECRET.to_owned();
    config.http_api.key = API_KEY.to_owned();
    // Set explicitly, whatever the default: tests that want anonymous clients opt in.
    config.client.allow_anonymous_connect_without_token = false;
    config.channel.without_namespace = NamespaceOptions {
        allow_subscribe_for_client: true,
        allow_publish_for_subscriber: true,
        ..Default::default()
    };
    config.channel.namespaces = vec![
        namespace(
            "chat",
            NamespaceOptions {
                presence: true,
                join_leave: true,
                force_push_join_leave: true,
                history_size: 100,
                history_ttl: HISTORY_TTL,
                allow_subscribe_for_client: true,
                allow_publish_for_subscriber: true,
                allow_presence_for_subscriber: true,
                allow_history_for_subscriber: true,
                ..Default::default()
            },
        ),
        namespace(
            "rec",
            NamespaceOptions {
                history_size: 10,
                history_ttl: HISTORY_TTL,
                force_recovery: true,
                allow_subscribe_for_client: true,
                allow_publish_for_subscriber: true,
                allow_history_for_client: true,
                ..Default::default()
            },
        ),
        namespace(
            "open",
            NamespaceOptions {
                allow_subscribe_for_client: true,
                allow_subscribe_for_anonymous: true,
                allow_publish_for_client: true,
                allow_publish_for_anonymous: true,
                allow_presence_for_client: true,
                allow_presence_for_anonymous: true,
                allow_history_for_client: true,
                allow_history_for_anonymous: true,
                ..Default::default()
            },
        ),
        namespace(
            "closed",
            NamespaceOptions {
                presence: true,
                history_size: 10,
                history_ttl: HISTORY_TTL,
                ..Default::default()
            },
        ),
        namespace(
            "secret",
            NamespaceOptions {
                protected: true,
                allow_subscribe_for_client: true,
                allow_publish_for_subscriber: true,
                ..Default::default()
            },
        ),
        namespace(
            "dm",
            NamespaceOptions {
                allow_user_limited_channels: true,
                ..Default::default()
            },
        ),
        namespace(
            "news",
            NamespaceOptions {
                history_size: 10,
                history_ttl: HISTORY_TTL,
                ..Default::default()
            },
        ),
    ];
    config
}

/// RPC methods every test hub has: `echo` returns its data, `whoami` the caller.
pub fn test_rpc() -> RpcRegistry {
    let mut rpc = RpcRegistry::default();
    rpc.register("echo", |_caller, data| async move { Ok(Some(data)) });
    rpc.register("whoami", |caller, _data| async move {
        let value = json!({ "user": caller.user, "client": caller.client });
        Ok(Some(
            serde_json::value::to_raw_value(&value).expect("a JSON value is raw JSON"),
        ))
    });
    rpc
}

/// A hub served in-process on a free port.
pub struct TestHub {
    pub addr: SocketAddr,
    pub node: Arc<Node>,
    shutdown: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<std::io::Result<()>>>,
}

/// A response of the HTTP surface.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

impl HttpResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.body))
    }
}

impl TestHub {
    /// A hub with [`base_config`].
    pub async fn start() -> TestHub {
        Self::start_with(|_| {}).await
    }

    /// A hub with [`base_config`] changed by `configure`. The result must validate.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestHub {
        let mut config = base_config();
        configure(&mut config);
        if let Err(error) = config.validate() {
            panic!("test configuration does not validate: {error}");
        }
        let node = Node::new(config, test_rpc()).expect("node starts");
        let router = rootcast_hub::server::router(node.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let served = tokio::spawn(rootcast_hub::server::serve(
            listener,
            router,
            node.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        TestHub {
            addr,
            node,
            shutdown: Some(tx),
            served: Some(served),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/connection/websocket", self.addr)
    }

    /// A WebSocket connection that has not sent anything yet.
    pub async fn open(&self) -> Client {
        let (ws, _) = within(tokio_tungstenite::connect_async(self.ws_url()))
            .await
            .expect("websocket handshake");
        Client::new(ws)
    }

    /// A connection token for `user` without expiry.
    pub fn token(&self, user: &str) -> String {
        token(&json!({ "sub": user }))
    }

    /// A connected client of `user`.
    pub async fn connect(&self, user: &str) -> Client {
        self.connect_with_token(&self.token(user)).await.0
    }

    /// A connected client and the connect result.
    pub async fn connect_with_token(&self, token: &str) -> (Client, Value) {
        let mut client = self.open().await;
        let result = client.call("connect", json!({ "token": token })).await;
        client.id = result["client"]
            .as_str()
            .expect("connect result has a client ID")
            .to_owned();
        (client, result)
    }

    /// `POST /api/<method>` with the right key.
    pub async fn api(&self, method: &str, body: Value) -> HttpResponse {
        self.http(
            "POST",
            &format!("/api/{method}"),
            &[("X-API-Key", API_KEY)],
            &body.to_string(),
        )
        .await
    }

    /// `POST /api/<method>` and the `result` of a successful answer.
    pub async fn api_ok(&self, method: &str, body: Value) -> Value {
        let response = self.api(method, body).await;
        assert_eq!(response.status, 200, "{method}: {}", response.body);
        let json = response.json();
        assert!(json.get("error").is_none(), "{method} failed: {json}");
        json["result"].clone()
    }

    /// Publishes through the server API and returns the result: `{"offset","epoch"}` in
    /// a channel with history, `{}` in one without.
    pub async fn publish(&self, channel: &str, data: Value) -> Value {
        self.api_ok("publish", json!({ "channel": channel, "data": data }))
            .await
    }

    /// One HTTP/1.1 request on a fresh connection (`Connection: close`).
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> HttpResponse {
        within(http_request(self.addr, method, path, headers, body)).await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.http("GET", "/metrics", &[], "").await;
        assert_eq!(response.status, 200);
        response.body
    }

    /// The value of one sample of `/metrics` (a name with its labels, e.g.
    /// `rootcast_disconnects_total{code="3008"}`), 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        metric_value(&self.metrics().await, sample)
    }

    /// Proves the hub still serves: a fresh client connects, subscribes and gets a
    /// publication.
    pub async fn assert_still_serving(&self) {
        let mut client = self.connect("health-check").await;
        let channel = format!("alive-{}", unique_suffix());
        client.subscribe(&channel).await;
        self.publish(&channel, json!({ "alive": true })).await;
        let push = client.recv_push().await;
        assert_eq!(push["push"]["pub"]["data"], json!({ "alive": true }));
    }

    /// Triggers the shutdown future and waits for `serve` to return.
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = self.served.take().expect("shutdown called once");
        tokio::time::timeout(Duration::from_secs(10), served)
            .await
            .expect("serve returns within 10 s of shutdown")
            .expect("serve task did not panic")
    }
}

/// A unique-enough suffix for channel names within one hub.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// An HS256 token with `claims`, signed with [`SECRET`].
pub fn token(claims: &Value) -> String {
    rootcast_hub::token::issue_hs256(SECRET, claims).expect("token signs")
}

/// A subscription token for `user` and `channel`, with `extra` claims merged in.
pub fn sub_token(user: &str, channel: &str, extra: Value) -> String {
    let mut claims = json!({ "sub": user, "channel": channel });
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        claims.extend(extra.clone());
    }
    token(&claims)
}

/// Awaits `future` for at most [`TIMEOUT`].
pub async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("timed out after 5 s")
}

pub fn metric_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8(raw).expect("response is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("response has a head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    HttpResponse { status, body }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// What a client saw next on its connection.
#[derive(Debug)]
pub enum Event {
    /// A text message, split into its newline-separated JSON values.
    Messages(Vec<Value>),
    /// A close frame: code and reason.
    Close(u16, String),
    /// The connection ended without a close frame (EOF, reset).
    Ended(String),
    /// Nothing within the wait.
    Timeout,
}

/// A WebSocket client speaking the JSON protocol. Messages that arrive while waiting for
/// something else are kept, in order, for the next read.
pub struct Client {
    pub ws: WsStream,
    /// The client ID from the connect reply (empty before connect).
    pub id: String,
    pending: VecDeque<Value>,
    next_id: u32,
}

impl Client {
    pub fn new(ws: WsStream) -> Client {
        Client {
            ws,
            id: String::new(),
            pending: VecDeque::new(),
            next_id: 0,
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        within(self.ws.send(Message::text(text.to_owned())))
            .await
            .expect("send text");
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) {
        within(self.ws.send(Message::binary(bytes.to_vec())))
            .await
            .expect("send binary");
    }

    /// Sends one command `{"id":N,"<method>":params}` and returns its id.
    pub async fn send_command(&mut self, method: &str, params: Value) -> u32 {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({ "id": id, method: params });
        self.send_text(&command.to_string()).await;
        id
    }

    /// The next event from the socket (ignoring transport pings), waiting at most `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> Event {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Event::Timeout,
                Ok(None) => return Event::Ended("stream ended".into()),
                Ok(Some(Err(error))) => return Event::Ended(error.to_string()),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    let values = text
                        .as_str()
                        .split('\n')
                        .map(|line| {
                            serde_json::from_str(line).unwrap_or_else(|e| {
                                panic!("server sent a line that is not JSON ({e}): {line:?}")
                            })
                        })
                        .collect();
                    return Event::Messages(values);
                }
                Message::Close(Some(frame)) => {
                    return Event::Close(frame.code.into(), frame.reason.as_str().to_owned());
                }
                Message::Close(None) => return Event::Close(1005, String::new()),
                Message::Binary(bytes) => panic!("server sent a binary message: {bytes:?}"),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// The next reply or push, failing after [`TIMEOUT`] or if the connection closes.
    pub async fn recv(&mut self) -> Value {
        match self.try_recv(TIMEOUT).await {
            Some(value) => value,
            None => panic!("nothing received within {TIMEOUT:?}"),
        }
    }

    /// The next reply or push within `wait`, or `None`. Panics if the connection closes.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        if let Some(value) = self.pending.pop_front() {
            return Some(value);
        }
        match self.next_event(wait).await {
            Event::Messages(values) => {
                self.pending.extend(values);
                self.pending.pop_front()
            }
            Event::Timeout => None,
            other => panic!("connection closed while waiting for a message: {other:?}"),
        }
    }

    /// Waits for the reply with `id`, keeping anything that arrives before or after it.
    pub async fn reply(&mut self, id: u32) -> Value {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(index) = self.pending.iter().position(|v| v["id"] == id) {
                return self.pending.remove(index).expect("index in range");
            }
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(wait).await {
                Event::Messages(values) => self.pending.extend(values),
                Event::Timeout => panic!("no reply to command {id} within {TIMEOUT:?}"),
                other => panic!("connection closed while waiting for reply {id}: {other:?}"),
            }
        }
    }

    /// Sends a command and returns its whole reply (result or error).
    pub async fn command(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_command(method, params).await;
        self.reply(id).await
    }

    /// Sends a command and returns its result, failing on an error reply.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let reply = self.command(method, params).await;
        assert!(reply.get("error").is_none(), "{method} failed: {reply}");
        reply
            .get(method)
            .cloned()
            .unwrap_or_else(|| panic!("reply to {method} has no {method:?} field: {reply}"))
    }

    /// Sends a command and returns its error code, failing on success.
    pub async fn call_error(&mut self, method: &str, params: Value) -> u64 {
        let reply = self.command(method, params).await;
        reply["error"]["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("{method} was expected to fail: {reply}"))
    }

    /// Subscribes to `channel` and returns the subscribe result.
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.call("subscribe", json!({ "channel": channel })).await
    }

    /// The next push (skipping nothing: a reply here fails the test).
    pub async fn recv_push(&mut self) -> Value {
        let value = self.recv().await;
        assert!(value.get("push").is_some(), "expected a push, got {value}");
        value
    }

    /// The next publication push on `channel`; other pushes on other channels fail the test.
    pub async fn recv_pub(&mut self, channel: &str) -> Value {
        let push = self.recv_push().await;
        assert_eq!(push["push"]["channel"], channel, "unexpected push: {push}");
        push["push"]["pub"].clone()
    }

    /// Asserts that nothing arrives for [`QUIET`].
    pub async fn expect_silence(&mut self) {
        if let Some(value) = self.try_recv(QUIET).await {
            panic!("expected nothing, got {value}");
        }
    }

    /// Reads until the server closes the connection and returns the close code and
    /// reason. Messages before the close are kept; the connection must not end without
    /// a close frame.
    pub async fn expect_close(&mut self) -> (u16, String) {
        self.expect_close_within(TIMEOUT).await
    }

    pub async fn expect_close_within(&mut self, wait: Duration) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                Event::Messages(values) => self.pending.extend(values),
                Event::Close(code, reason) => return (code, reason),
                Event::Ended(why) => panic!("connection ended without a close frame: {why}"),
                Event::Timeout => panic!("no close frame within {wait:?}"),
            }
        }
    }

    /// Messages kept while waiting for something else.
    pub fn take_pending(&mut self) -> Vec<Value> {
        self.pending.drain(..).collect()
    }
}
