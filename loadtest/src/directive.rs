//! The `directive` scenario (D1): a directive to N units that are online, and the
//! acknowledgement map.
//!
//! One process is enough (N ≤ a few thousand connections): it starts `rootcast serve`
//! with its store in a file, opens that store itself to create an administrator, M unit
//! officers and N meeting-room credentials (SHA-256, cheap; officers pay argon2 once
//! each), logs each in over REST, connects every unit's screen over the WebSocket with its
//! login token (subscribed server-side to `unit:<id>`), then:
//! - **delivery**: the administrator sends R directives to the N units; each screen notes
//!   when the entry arrives. Latency is measured from just before the `POST` (one clock:
//!   everything runs in this process) to each arrival; "time to all" is the latest arrival
//!   of each directive.
//! - **map**: the administrator watches `ack:<directive>@<root>`; each of the M officers
//!   acknowledges over its own connection; latency is from sending the `rpc` to the map's
//!   publication for that unit.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use rootcast_hub::auth::{NewAccount, Role};
use rootcast_hub::store::{Store, StoreOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::dialect::Kind;
use crate::histogram::{self, Quantiles};
use crate::targets::{Launch, Target};

const STORE_FILE: &str = "rootcast.db";
const WAIT: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug, Clone)]
pub struct DirectiveArgs {
    /// Units online (meeting-room screens connected).
    #[arg(long, default_value_t = 1000)]
    pub units: usize,
    /// Directives sent, one after the other.
    #[arg(long, default_value_t = 20)]
    pub directives: usize,
    /// Officers who acknowledge (each a separate account and connection).
    #[arg(long, default_value_t = 20)]
    pub acks: usize,
    /// The rootcast binary.
    #[arg(long, default_value = "target/release/rootcast")]
    pub rootcast_bin: std::path::PathBuf,
    /// Pin the server to this core (`taskset`).
    #[arg(long)]
    pub server_core: Option<u32>,
}

pub fn run(args: DirectiveArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(600), scenario(args))
            .await
            .context("the directive scenario did not finish within 600 s")?
    })
}

async fn scenario(args: DirectiveArgs) -> anyhow::Result<()> {
    let launch = Launch {
        core: args.server_core,
        rootcast_bin: args.rootcast_bin.clone(),
        nats_bin: "nats-server".into(),
        verbose: false,
        bench_history: false,
        server_settings: Vec::new(),
    };
    let target = Target::start_with_store(Kind::Rootcast, &launch, Some(STORE_FILE))?;
    let address = target.address.to_string();
    eprintln!(
        "rootcast at {address}; preparing {} units and {} officers",
        args.units, args.acks
    );
    let store_path = target.store_path(STORE_FILE).context("a store file")?;
    let store = Store::open(&StoreOptions::new(format!(
        "sqlite://{}",
        store_path.display()
    )))
    .await?;
    // Every unit of the demo organisation (1,098), grassroots units first.
    let mut all = store.all_units().await?;
    all.sort_by_key(|u| u.level.as_str() != "unit");
    let stations: Vec<String> = all.into_iter().map(|u| u.id).collect();
    if stations.len() < args.units.max(args.acks) {
        bail!(
            "the demo organisation has {} units; asked for {}",
            stations.len(),
            args.units.max(args.acks)
        );
    }
    let now = 0;
    let admin_password = "loadtest-admin-password";
    store
        .create_account(
            &NewAccount {
                username: "loadtest-admin".into(),
                display_name: "loadtest".into(),
                role: Role::Admin,
                unit: None,
            },
            Some(admin_password),
            now,
        )
        .await?;
    let admin = login(
        &address,
        "/api/v1/login",
        json!({"username": "loadtest-admin", "password": admin_password}),
    )
    .await?;
    let mut screens = Vec::with_capacity(args.units);
    for unit in stations.iter().take(args.units) {
        let credential = store
            .issue_unit_credential(unit, "loadtest", "loadtest", now)
            .await?;
        let token = login(
            &address,
            "/api/v1/login/credential",
            json!({"credential": credential.secret}),
        )
        .await?;
        screens.push((unit.clone(), token));
    }
    let mut officers = Vec::with_capacity(args.acks);
    for (i, unit) in stations.iter().take(args.acks).enumerate() {
        let username = format!("loadtest-officer-{i}");
        let password = format!("{username}-password");
        store
            .create_account(
                &NewAccount {
                    username: username.clone(),
                    display_name: username.clone(),
                    role: Role::Officer,
                    unit: Some(unit.clone()),
                },
                Some(&password),
                now,
            )
            .await?;
        officers.push((
            unit.clone(),
            login(
                &address,
                "/api/v1/login",
                json!({"username": username, "password": password}),
            )
            .await?,
        ));
    }
    store.close().await;

    // Every screen on its own connection; arrivals go to one channel with their time.
    let (arrivals_tx, mut arrivals_rx) = mpsc::unbounded_channel::<(String, Instant)>();
    let ws_url = format!("ws://{address}/connection/websocket");
    let mut tasks = Vec::new();
    for (unit, token) in &screens {
        let mut ws = Ws::connect(&ws_url, token).await?;
        let tx = arrivals_tx.clone();
        let channel = format!("unit:{unit}");
        tasks.push(tokio::spawn(async move {
            while let Some(pushes) = ws.next_pushes().await {
                let at = Instant::now();
                for push in pushes {
                    if push["channel"] == channel.as_str() && push["pub"]["data"]["type"] == "entry"
                    {
                        let id = push["pub"]["data"]["entry"]["directive"]["id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        let _ = tx.send((id, at));
                    }
                }
            }
        }));
    }
    eprintln!("{} screens connected", screens.len());

    // Delivery.
    let mut delivery = histogram::new();
    let mut time_to_all = Vec::new();
    let units: Vec<&String> = screens.iter().map(|(u, _)| u).collect();
    let mut last_directive = String::new();
    for round in 0..args.directives {
        let started = Instant::now();
        let (status, sent) = rest(
            &address,
            "POST",
            "/api/v1/directives",
            Some(&admin),
            Some(json!({
                "title": format!("D1 round {round}"),
                "body": "load test",
                "target": {"units": units},
                "ack_required": true,
            })),
        )
        .await?;
        if status != 201 {
            bail!("send failed: {status} {sent}");
        }
        let answered = started.elapsed();
        let id = sent["directive"]["id"]
            .as_str()
            .context("a directive id")?
            .to_owned();
        let mut seen = 0;
        let mut latest = Duration::ZERO;
        let mut first = Duration::MAX;
        while seen < screens.len() {
            let (arrived_id, at) = tokio::time::timeout(WAIT, arrivals_rx.recv())
                .await
                .with_context(|| {
                    format!(
                        "round {round}: {seen} of {} units got the directive within {WAIT:?}",
                        screens.len()
                    )
                })?
                .context("the screens stopped")?;
            if arrived_id != id {
                continue;
            }
            let latency = at.duration_since(started);
            delivery.record(latency.as_micros() as u64)?;
            latest = latest.max(latency);
            first = first.min(latency);
            seen += 1;
        }
        time_to_all.push(latest.as_micros() as u64);
        eprintln!(
            "round {round}: {} units in {:.1} ms (first after {:.1} ms; the send answered after {:.1} ms)",
            seen,
            latest.as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e3,
            answered.as_secs_f64() * 1e3
        );
        last_directive = id;
    }

    // The acknowledgement map of the last directive, watched by the administrator.
    let (status, map) = rest(
        &address,
        "GET",
        &format!("/api/v1/directives/{last_directive}/dashboard"),
        Some(&admin),
        None,
    )
    .await?;
    if status != 200 {
        bail!("dashboard: {status} {map}");
    }
    let mut watcher = Ws::connect(&ws_url, &admin).await?;
    watcher
        .command(json!({"subscribe": {"channel": map["channel"], "token": map["channel_token"]}}))
        .await?;
    let mut map_latency = histogram::new();
    for (unit, token) in &officers {
        let mut officer = Ws::connect(&ws_url, token).await?;
        let started = Instant::now();
        officer
            .command(
                json!({"rpc": {"method": "directive.ack", "data": {"directive": last_directive}}}),
            )
            .await?;
        // Wait for this unit's acknowledgement on the map.
        tokio::time::timeout(WAIT, async {
            loop {
                let Some(pushes) = watcher.next_pushes().await else {
                    bail!("the map's connection closed");
                };
                let at = Instant::now();
                for push in pushes {
                    let state = &push["pub"]["data"]["state"];
                    if state["unit_id"] == unit.as_str() && state["stage"] == "acknowledged" {
                        map_latency.record(at.duration_since(started).as_micros() as u64)?;
                        return Ok(());
                    }
                }
            }
        })
        .await
        .with_context(|| {
            format!("the map did not show {unit}'s acknowledgement within {WAIT:?}")
        })??;
    }
    for task in tasks {
        task.abort();
    }

    let delivery_q = Quantiles::of(&delivery);
    let all_q = Quantiles::of_sample(&time_to_all);
    let map_q = Quantiles::of(&map_latency);
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "D1 directive: {} units online, {} directives, {} acknowledgements",
        screens.len(),
        args.directives,
        officers.len()
    );
    println!(
        "  per-unit delivery (ms): p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}  ({} deliveries)",
        ms(delivery_q.p50),
        ms(delivery_q.p90),
        ms(delivery_q.p99),
        ms(delivery_q.max),
        delivery_q.count
    );
    println!(
        "  time to all units (ms): p50 {:.1}  p90 {:.1}  max {:.1}  (per directive)",
        ms(all_q.p50),
        ms(all_q.p90),
        ms(all_q.max)
    );
    println!(
        "  ack → map (ms): p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        ms(map_q.p50),
        ms(map_q.p90),
        ms(map_q.p99),
        ms(map_q.max)
    );
    drop(target);
    Ok(())
}

/// Logs in over REST; returns the token.
async fn login(address: &str, path: &str, body: Value) -> anyhow::Result<String> {
    let (status, reply) = rest(address, "POST", path, None, Some(body)).await?;
    if status != 200 {
        bail!("login at {path}: {status} {reply}");
    }
    reply["token"]
        .as_str()
        .map(str::to_owned)
        .context("a token")
}

/// A minimal HTTP/1.1 request (`Connection: close`): (status, JSON body or null).
async fn rest(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await??;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("an HTTP status")?;
    // The hub answers with a Content-Length, never chunked.
    let (_, body) = text.split_once("\r\n\r\n").context("an HTTP response")?;
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// A protocol client: connect with a token, send commands, read pushes.
struct Ws {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u32,
}

impl Ws {
    async fn connect(url: &str, token: &str) -> anyhow::Result<Ws> {
        let (socket, _) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await??;
        let mut ws = Ws { socket, next_id: 0 };
        ws.command(json!({"connect": {"token": token}})).await?;
        Ok(ws)
    }

    /// Sends a command and waits for its reply (pushes before it are dropped: the
    /// scenario starts listening after its set-up).
    async fn command(&mut self, mut command: Value) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        command["id"] = json!(id);
        self.socket.send(Message::text(command.to_string())).await?;
        tokio::time::timeout(WAIT, async {
            loop {
                let Some(message) = self.socket.next().await else {
                    bail!("the connection closed");
                };
                if let Message::Text(text) = message? {
                    for line in text.as_str().lines() {
                        let value: Value = serde_json::from_str(line)?;
                        if value["id"] == id {
                            if let Some(error) = value.get("error") {
                                bail!("command failed: {error}");
                            }
                            return Ok(value);
                        }
                    }
                }
            }
        })
        .await?
    }

    /// The pushes of the next frame; `None` when the connection ends.
    async fn next_pushes(&mut self) -> Option<Vec<Value>> {
        loop {
            let message = self.socket.next().await?.ok()?;
            let Message::Text(text) = message else {
                continue;
            };
            let pushes: Vec<Value> = text
                .as_str()
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .filter_map(|value| value.get("push").cloned())
                .collect();
            if !pushes.is_empty() {
                return Some(pushes);
            }
        }
    }
}
