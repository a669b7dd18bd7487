//! `bench_hub`: the first measurement of issue #2 (W1 memory, W2 fan-out cost, W3 fan-out
//! latency), until the full load generator of issue #5 exists.
//!
//! ```text
//! cargo run --release -p rootcast-hub --example bench_hub -- --connections 10000 \
//!     [--publications 40 --interval-ms 500 --payload 100 --out bench-results/]
//! ```
//!
//! The program re-executes itself as a separate server process (`--server --port 0`) that
//! runs the hub exactly as `rootcast serve` does (default configuration plus an HMAC
//! secret, an API key and a `bench` namespace), pinned to core 0 with `taskset` when it
//! exists; the parent pins itself to core 1 and is the load: N WebSocket clients on one
//! thread that connect with a JWT and subscribe to `bench:fanout`, and one publisher
//! thread that publishes through `POST /api/publish` on a fixed schedule.
//!
//! Measured:
//! - W1: the server's `VmRSS` growth per connection once all are subscribed and idle,
//!   at each checkpoint (1,000 and N by default); kernel TCP memory (`/proc/net/sockstat`)
//!   and slab growth (`/proc/meminfo`) for both ends of the loopback connections.
//! - W2: the server's CPU time (`utime + stime` from `/proc/<pid>/stat`, cross-checked
//!   with the per-thread `schedstat`) over the publishing window, divided by deliveries.
//! - W3: latency from each publication's *scheduled* send time (embedded in the payload,
//!   so a late publisher or a queue is not hidden) to its receipt by each client, and the
//!   time to the last subscriber per publication. Every client checks it got every
//!   publication once and in order.
//! - The client process's own CPU over the same window, so a reader can see whether the
//!   load generator was the bottleneck.
//!
//! It prints a summary and writes JSON under `--out`. It never asserts on time; every phase
//! has a timeout and the program stops by itself (the server exits when its standard input
//! closes, i.e. when the parent goes, or after `--server-max-secs`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rootcast_config::{Config, Namespace, NamespaceOptions};
use rootcast_hub::{Node, RpcRegistry};
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const NAMESPACE: &str = "bench";
const CHANNEL: &str = "bench:fanout";
/// Marks the start of a publication's data in a push line; the data begins with the
/// sequence number: `{"push":{"channel":"bench:fanout","pub":{"data":{"s":7,"t":…`.
const DATA_KEY: &[u8] = b"\"data\":{\"s\":";
/// The server prints this, then its address, on its first line of output.
const LISTENING: &str = "LISTENING ";
/// Latency histograms hold microseconds, from 1 µs to one hour.
const HIST_MAX_US: u64 = 3_600_000_000;

#[derive(Debug, Clone)]
struct Args {
    server: bool,
    port: u16,
    secret: String,
    api_key: String,
    server_max_secs: u64,
    connections: usize,
    publications: u32,
    interval_ms: u64,
    payload: usize,
    out: PathBuf,
    concurrency: usize,
    sources: u8,
    idle_secs: u64,
    checkpoints: Vec<usize>,
    connect_timeout_secs: u64,
    drain_timeout_secs: u64,
    pin: bool,
    /// Words put before the server command (after `taskset`), e.g. a profiler.
    server_wrapper: Vec<String>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            server: false,
            port: 0,
            secret: String::new(),
            api_key: String::new(),
            server_max_secs: 1800,
            connections: 1000,
            publications: 40,
            interval_ms: 500,
            payload: 100,
            out: PathBuf::from("bench-results"),
            concurrency: 100,
            sources: 4,
            idle_secs: 3,
            checkpoints: Vec::new(),
            connect_timeout_secs: 30,
            drain_timeout_secs: 10,
            pin: true,
            server_wrapper: Vec::new(),
        }
    }
}

const USAGE: &str = "\
usage: bench_hub [--connections N] [--publications N] [--interval-ms MS] [--payload BYTES]
                 [--out DIR] [--checkpoints N,N,..] [--concurrency N] [--sources N]
                 [--idle-secs S] [--connect-timeout-secs S] [--drain-timeout-secs S] [--no-pin]
       bench_hub --server --port P --secret S --api-key K [--server-max-secs S]

  --connections N       WebSocket clients, each subscribed to bench:fanout (default 1000)
  --publications N      publications sent through POST /api/publish (default 40)
  --interval-ms MS      one publication every MS milliseconds, on a schedule (default 500)
  --payload BYTES       size of each publication's data (JSON, default 100)
  --out DIR             where the JSON result goes (default bench-results/)
  --checkpoints LIST    connection counts at which idle memory is also measured
                        (default 1000 when N > 1000)
  --concurrency N       most connections being set up at once (default 100; the hub
                        listens with a backlog of 4096, the overflow counter is reported)
  --sources N           loopback source addresses 127.0.0.2.. to spread clients over (default 4)
  --idle-secs S         idle time before each memory reading (default 3)
  --no-pin              do not pin server and clients to cores 0 and 1 with taskset
  --server-wrapper CMD  run the server under CMD (e.g. \"valgrind --tool=callgrind\"); its
                        memory and CPU figures are then those of the wrapper";

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, text: String) -> Result<T, String> {
            text.parse()
                .map_err(|_| format!("{flag}: not a number: {text}"))
        }
        match flag.as_str() {
            "--server" => args.server = true,
            "--no-pin" => args.pin = false,
            "--server-wrapper" => {
                args.server_wrapper = value()?.split_whitespace().map(str::to_owned).collect();
            }
            "--port" => args.port = num(&flag, value()?)?,
            "--secret" => args.secret = value()?,
            "--api-key" => args.api_key = value()?,
            "--server-max-secs" => args.server_max_secs = num(&flag, value()?)?,
            "--connections" => args.connections = num(&flag, value()?)?,
            "--publications" => args.publications = num(&flag, value()?)?,
            "--interval-ms" => args.interval_ms = num(&flag, value()?)?,
            "--payload" => args.payload = num(&flag, value()?)?,
            "--out" => args.out = PathBuf::from(value()?),
            "--concurrency" => args.concurrency = num(&flag, value()?)?,
            "--sources" => args.sources = num(&flag, value()?)?,
            "--idle-secs" => args.idle_secs = num(&flag, value()?)?,
            "--connect-timeout-secs" => args.connect_timeout_secs = num(&flag, value()?)?,
            "--drain-timeout-secs" => args.drain_timeout_secs = num(&flag, value()?)?,
            "--checkpoints" => {
                args.checkpoints = value()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| num(&flag, s.to_owned()))
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if !args.server {
        if args.connections == 0 || args.concurrency == 0 || args.sources == 0 || args.sources > 250
        {
            return Err(format!(
                "--connections, --concurrency and --sources (≤ 250) must be positive\n{USAGE}"
            ));
        }
        if args.checkpoints.is_empty() && args.connections > 1000 {
            args.checkpoints.push(1000);
        }
        args.checkpoints.retain(|&c| c > 0 && c < args.connections);
        args.checkpoints.push(args.connections);
        args.checkpoints.sort_unstable();
        args.checkpoints.dedup();
    }
    Ok(args)
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = if args.server {
        run_server(&args)
    } else {
        run_bench(&args)
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench_hub: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

// ---------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------

/// Runs the hub as `rootcast serve` does (same configuration defaults, same runtime, same
/// router and run loop; the web pages are not part of the hub crate and not mounted).
fn run_server(args: &Args) -> AnyResult<()> {
    let mut config = Config::default();
    config.http.address = format!("127.0.0.1:{}", args.port);
    config.client.token.hmac_secret_key = args.secret.clone();
    config.http_api.key = args.api_key.clone();
    config.channel.namespaces.push(Namespace {
        name: NAMESPACE.to_owned(),
        options: NamespaceOptions {
            allow_subscribe_for_client: true,
            ..NamespaceOptions::default()
        },
    });
    config.validate().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let max_life = Duration::from_secs(args.server_max_secs);
    runtime.block_on(async move {
        let listener = rootcast_hub::server::bind(config.http.address.parse()?)?;
        let address = listener.local_addr()?;
        let node = Node::new(config, RpcRegistry::default())?;
        let app = rootcast_hub::server::router(node.clone());
        println!("{LISTENING}{address}");
        std::io::stdout().flush()?;
        // Stop when the parent closes our standard input (or goes away), or at the latest
        // after `max_life`, so a server is never left running.
        let (stdin_closed, closed) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            let _ = stdin_closed.send(());
        });
        let shutdown = async move {
            tokio::select! {
                _ = closed => {}
                () = tokio::time::sleep(max_life) => eprintln!("[server] --server-max-secs passed, stopping"),
            }
        };
        rootcast_hub::server::serve(listener, app, node, shutdown).await?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// /proc readings
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    vm_rss_kib: u64,
    vm_hwm_kib: u64,
    rss_anon_kib: u64,
    threads: u64,
}

fn read_memory(pid: u32) -> Memory {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        vm_rss_kib: field("VmRSS:"),
        vm_hwm_kib: field("VmHWM:"),
        rss_anon_kib: field("RssAnon:"),
        threads: field("Threads:"),
    }
}

/// User + system CPU of a process (all its threads, live and exited), in seconds, from
/// `/proc/<pid>/stat`. Resolution: one clock tick (10 ms).
fn cpu_seconds(pid: &str, clk_tck: f64) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let Some((_, rest)) = text.rsplit_once(") ") else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / clk_tck
}

/// Time on CPU of a process's live threads, in seconds, from each thread's `schedstat`
/// (nanosecond resolution). A cross-check of [`cpu_seconds`].
fn schedstat_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .sum::<u64>() as f64
        / 1e9
}

/// Busy CPU of the whole machine (all cores, everything but idle and iowait), seconds,
/// from the first line of `/proc/stat`.
fn machine_busy_seconds(clk_tck: f64) -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest fields are inside user).
    let busy: f64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    busy / clk_tck
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

#[derive(Debug, Clone, Copy, Default)]
struct Kernel {
    /// `TCP: … mem N` of `/proc/net/sockstat`, in pages.
    tcp_mem_pages: u64,
    tcp_inuse: u64,
    tcp_tw: u64,
    /// `Slab:` of `/proc/meminfo`, KiB (socket, file, epoll objects; machine-wide).
    slab_kib: u64,
    /// `TcpExt: ListenOverflows` and `ListenDrops` of `/proc/net/netstat`.
    listen_overflows: u64,
    listen_drops: u64,
}

fn read_kernel() -> Kernel {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let tcp: Vec<&str> = sockstat
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let after = |key: &str| -> u64 {
        tcp.iter()
            .position(|w| *w == key)
            .and_then(|i| tcp.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let slab_kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    // /proc/net/netstat: a header line of names, then a line of values, per group.
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let lines: Vec<&str> = netstat.lines().collect();
    let mut tcp_ext = BTreeMap::new();
    for pair in lines.chunks(2) {
        if let [names, values] = pair
            && names.starts_with("TcpExt:")
        {
            for (name, value) in names
                .split_whitespace()
                .zip(values.split_whitespace())
                .skip(1)
            {
                tcp_ext.insert(name.to_owned(), value.parse::<u64>().unwrap_or(0));
            }
        }
    }
    Kernel {
        tcp_mem_pages: after("mem"),
        tcp_inuse: after("inuse"),
        tcp_tw: after("tw"),
        slab_kib,
        listen_overflows: tcp_ext.get("ListenOverflows").copied().unwrap_or(0),
        listen_drops: tcp_ext.get("ListenDrops").copied().unwrap_or(0),
    }
}

// ---------------------------------------------------------------------------------------
// The load side
// ---------------------------------------------------------------------------------------

/// What all client tasks share (they run on one thread).
struct Shared {
    base: Instant,
    connected: Cell<usize>,
    subscribed: Cell<usize>,
    failed: Cell<usize>,
    errors: RefCell<BTreeMap<String, usize>>,
    /// Connections the server closed (or that failed) after subscribing, by reason.
    closed_early: RefCell<BTreeMap<String, usize>>,
    deliveries: Cell<u64>,
    pings: Cell<u64>,
    latency_us: RefCell<Histogram<u64>>,
    /// Time from `connect()` to the subscribe reply, per client, µs.
    setup_us: RefCell<Histogram<u64>>,
    /// Per publication: latest receipt (ns after its scheduled time) and receipt count.
    last_ns: RefCell<Vec<u64>>,
    receipts: RefCell<Vec<u32>>,
    first_receipt_ns: Cell<u64>,
    last_receipt_ns: Cell<u64>,
}

/// What one client saw, reported when it stops.
#[derive(Default)]
struct ClientRecord {
    subscribed: bool,
    seen: Vec<u64>,
    received: u32,
    duplicates: u32,
    out_of_order: u32,
    unexpected: u32,
}

fn now_ns(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

fn bump(map: &RefCell<BTreeMap<String, usize>>, key: String) {
    *map.borrow_mut().entry(key).or_default() += 1;
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Connects, upgrades, sends connect + subscribe in one frame and waits for both replies.
async fn set_up(
    server: SocketAddr,
    source: IpAddr,
    token: &str,
    shared: &Shared,
) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind: {}", e.kind()))?;
    let stream = socket
        .connect(server)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    // Small buffers: the client's own memory and cache footprint per connection stays low.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let url = format!("ws://{server}/connection/websocket");
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    shared.connected.set(shared.connected.get() + 1);
    let commands = format!(
        "{{\"id\":1,\"connect\":{{\"token\":\"{token}\",\"name\":\"bench_hub\"}}}}\n{{\"id\":2,\"subscribe\":{{\"channel\":\"{CHANNEL}\"}}}}"
    );
    ws.send(Message::text(commands))
        .await
        .map_err(|e| format!("send: {e}"))?;
    let (mut connected, mut subscribed) = (false, false);
    while !(connected && subscribed) {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return Err(format!(
                    "closed: {}",
                    frame.map_or(0, |f| u16::from(f.code))
                ));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("eof before replies".to_owned()),
        };
        for line in text.as_str().split('\n') {
            if line.contains("\"error\"") {
                return Err(format!("error reply: {line}"));
            }
            if line.starts_with("{\"id\":1,") {
                connected = true;
            } else if line.starts_with("{\"id\":2,") {
                subscribed = true;
            }
        }
    }
    Ok(ws)
}

/// Parses `"s":<seq>,"t":<scheduled ns>` at the start of a publication's data.
fn parse_publication(line: &[u8]) -> Option<(u32, u64)> {
    let start = line.windows(DATA_KEY.len()).position(|w| w == DATA_KEY)? + DATA_KEY.len();
    let rest = &line[start..];
    let (seq, rest) = leading_number(rest)?;
    let rest = rest.strip_prefix(b",\"t\":")?;
    let (scheduled, _) = leading_number(rest)?;
    Some((u32::try_from(seq).ok()?, scheduled))
}

fn leading_number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut n: u64 = 0;
    for b in &bytes[..digits] {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((n, &bytes[digits..]))
}

/// Where and how one client connects.
struct ClientPlan {
    server: SocketAddr,
    source: IpAddr,
    token: String,
    publications: u32,
    connect_timeout: Duration,
}

/// One client: set up, then read pushes until told to stop. Answers the server's pings.
async fn client(
    plan: ClientPlan,
    shared: Rc<Shared>,
    permit: tokio::sync::OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) -> ClientRecord {
    let publications = plan.publications;
    let mut record = ClientRecord {
        seen: vec![0; (publications as usize).div_ceil(64)],
        ..ClientRecord::default()
    };
    let started = Instant::now();
    let setup = tokio::time::timeout(
        plan.connect_timeout,
        set_up(plan.server, plan.source, &plan.token, &shared),
    )
    .await;
    shared
        .setup_us
        .borrow_mut()
        .saturating_record((started.elapsed().as_micros() as u64).max(1));
    drop(permit);
    let mut ws = match setup {
        Ok(Ok(ws)) => ws,
        Ok(Err(error)) => {
            shared.failed.set(shared.failed.get() + 1);
            bump(
                &shared.errors,
                error.split(':').next().unwrap_or("").to_owned(),
            );
            return record;
        }
        Err(_) => {
            shared.failed.set(shared.failed.get() + 1);
            bump(&shared.errors, "setup timeout".to_owned());
            return record;
        }
    };
    record.subscribed = true;
    shared.subscribed.set(shared.subscribed.get() + 1);
    let mut highest: Option<u32> = None;
    loop {
        let message = tokio::select! {
            biased;
            _ = stop.changed() => break,
            message = ws.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map_or(0, |f| u16::from(f.code));
                bump(&shared.closed_early, format!("close {code}"));
                return record;
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => {
                bump(&shared.closed_early, format!("read error: {error}"));
                return record;
            }
            None => {
                bump(&shared.closed_early, "eof".to_owned());
                return record;
            }
        };
        let received = now_ns(shared.base);
        let mut pong = false;
        for line in text.as_bytes().split(|b| *b == b'\n') {
            if line == b"{}" {
                pong = true;
                continue;
            }
            let Some((seq, scheduled)) = parse_publication(line) else {
                continue;
            };
            if seq >= publications {
                record.unexpected += 1;
                continue;
            }
            let (word, bit) = (seq as usize / 64, 1u64 << (seq % 64));
            if record.seen[word] & bit != 0 {
                record.duplicates += 1;
                continue;
            }
            record.seen[word] |= bit;
            record.received += 1;
            if highest.is_some_and(|h| seq < h) {
                record.out_of_order += 1;
            }
            highest = highest.max(Some(seq));
            let late = received.saturating_sub(scheduled);
            shared
                .latency_us
                .borrow_mut()
                .saturating_record((late / 1000).max(1));
            let mut last = shared.last_ns.borrow_mut();
            last[seq as usize] = last[seq as usize].max(late);
            shared.receipts.borrow_mut()[seq as usize] += 1;
            shared.deliveries.set(shared.deliveries.get() + 1);
            if shared.first_receipt_ns.get() == 0 {
                shared.first_receipt_ns.set(received);
            }
            shared.last_receipt_ns.set(received);
        }
        if pong {
            shared.pings.set(shared.pings.get() + 1);
            if ws.send(Message::text("{}")).await.is_err() {
                bump(&shared.closed_early, "pong failed".to_owned());
                return record;
            }
        }
    }
    let _ = ws.close(None).await;
    record
}

/// What the publisher thread saw.
#[derive(Default)]
struct PublisherReport {
    sent: u32,
    errors: Vec<String>,
    /// Time from the scheduled send to the API's answer, µs (the hub fans out before it
    /// answers, so this is the time to queue the publication for every subscriber).
    api_us: Vec<u64>,
    /// How late the publisher started each request, µs.
    start_lag_us: Vec<u64>,
}

/// Publishes on a fixed schedule through `POST /api/publish` over one keep-alive
/// connection. Each publication's data carries its sequence number and its *scheduled*
/// send time (ns after `base`), padded to `payload` bytes.
fn publisher(
    server: SocketAddr,
    api_key: String,
    base: Instant,
    first_ns: u64,
    args: Args,
) -> PublisherReport {
    let mut report = PublisherReport::default();
    let stream = match TcpStream::connect(server) {
        Ok(stream) => stream,
        Err(e) => {
            report.errors.push(format!("connect: {e}"));
            return report;
        }
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut writer = match stream.try_clone() {
        Ok(writer) => writer,
        Err(e) => {
            report.errors.push(format!("clone: {e}"));
            return report;
        }
    };
    let mut reader = BufReader::new(stream);
    let interval_ns = args.interval_ms * 1_000_000;
    for seq in 0..args.publications {
        let scheduled = first_ns + u64::from(seq) * interval_ns;
        let now = now_ns(base);
        if scheduled > now {
            std::thread::sleep(Duration::from_nanos(scheduled - now));
        }
        report
            .start_lag_us
            .push(now_ns(base).saturating_sub(scheduled) / 1000);
        let head = format!("{{\"s\":{seq},\"t\":{scheduled},\"p\":\"");
        let pad = args.payload.saturating_sub(head.len() + 2);
        let data = format!("{head}{}\"}}", "x".repeat(pad));
        let body = format!("{{\"channel\":\"{CHANNEL}\",\"data\":{data}}}");
        let request = format!(
            "POST /api/publish HTTP/1.1\r\nHost: {server}\r\nX-API-Key: {api_key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if let Err(e) = writer.write_all(request.as_bytes()) {
            report.errors.push(format!("write: {e}"));
            break;
        }
        match read_response(&mut reader) {
            Ok((200, body)) if body.contains("\"result\"") => report.sent += 1,
            Ok((status, body)) => report.errors.push(format!("HTTP {status}: {body}")),
            Err(e) => {
                report.errors.push(format!("read: {e}"));
                break;
            }
        }
        report
            .api_us
            .push(now_ns(base).saturating_sub(scheduled) / 1000);
    }
    report
}

fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<(u16, String)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
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
    reader.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The accept backlog of the listener on `port` (`ss`'s Send-Q for a listening socket).
fn listen_backlog(port: u16) -> Option<u64> {
    let out = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace().nth(2)?.parse().ok()
}

fn taskset_available() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Pins every thread of this process (and the threads it starts later) to `core`.
fn pin_self(core: u32) -> bool {
    Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &core.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Starts the server process and waits for its address.
fn start_server(
    args: &Args,
    secret: &str,
    api_key: &str,
    pinned: bool,
) -> AnyResult<(Child, SocketAddr)> {
    let exe = std::env::current_exe()?;
    let mut words: Vec<std::ffi::OsString> = Vec::new();
    if pinned {
        words.extend(["taskset", "-c", "0"].map(Into::into));
    }
    words.extend(args.server_wrapper.iter().map(Into::into));
    words.push(exe.into());
    let mut command = Command::new(&words[0]);
    command.args(&words[1..]);
    command
        .args([
            "--server",
            "--port",
            "0",
            "--secret",
            secret,
            "--api-key",
            api_key,
        ])
        .args(["--server-max-secs", &args.server_max_secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command.spawn()?;
    let stdout = child.stdout.take().ok_or("no server stdout")?;
    // The first line is the address; later lines are passed on. Wait at most 30 s.
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = first_tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
        for line in lines.map_while(Result::ok) {
            eprintln!("[server] {line}");
        }
    });
    let first = first_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_default();
    let address = first
        .strip_prefix(LISTENING)
        .and_then(|a| a.trim().parse::<SocketAddr>().ok());
    let Some(address) = address else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("server did not start: {first:?}").into());
    };
    Ok((child, address))
}

fn stop_server(mut child: Child) {
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("server did not stop in 15 s; killing it");
    let _ = child.kill();
    let _ = child.wait();
}

/// Nearest-rank quantiles of a small sample.
fn quantiles(values: &[u64]) -> Value {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| -> u64 {
        if sorted.is_empty() {
            return 0;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    };
    json!({
        "count": sorted.len(),
        "p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "p999": at(0.999),
        "max": sorted.last().copied().unwrap_or(0),
    })
}

fn hist_quantiles(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(),
        "p50": h.value_at_quantile(0.50), "p90": h.value_at_quantile(0.90),
        "p99": h.value_at_quantile(0.99), "p999": h.value_at_quantile(0.999),
        "max": h.max(), "mean": (h.mean() * 10.0).round() / 10.0,
    })
}

fn machine() -> Value {
    let text = |path: &str| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let mem_total_kib: u64 = text("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let git = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    json!({
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "kernel": text("/proc/sys/kernel/osrelease"),
        "mem_total_kib": mem_total_kib,
        "somaxconn": text("/proc/sys/net/core/somaxconn"),
        "git": git,
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn run_bench(args: &Args) -> AnyResult<()> {
    let clk_tck = clock_ticks_per_second();
    // Before any thread starts, so every thread of the load side inherits core 1.
    let machine_info = machine();
    let pinned = args.pin && taskset_available() && pin_self(1);
    let pinning = if pinned {
        "server pinned to core 0, clients and publisher to core 1 (taskset)"
    } else if args.pin {
        "not pinned: taskset is not available"
    } else {
        "not pinned (--no-pin)"
    };
    let secret = random_hex();
    let api_key = random_hex();
    let (child, server) = start_server(args, &secret, &api_key, pinned)?;
    let pid = child.id();
    let backlog = listen_backlog(server.port());
    eprintln!("server pid {pid} on {server} (accept backlog {backlog:?}); {pinning}");
    if let Some(backlog) = backlog
        && args.concurrency as u64 > backlog
    {
        eprintln!(
            "warning: --concurrency {} is above the accept backlog {backlog}: connects may be dropped",
            args.concurrency
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let outcome = local.block_on(
        &runtime,
        measure(args, server, pid, &secret, &api_key, clk_tck),
    );
    drop(local);
    drop(runtime);
    stop_server(child);
    let mut report = outcome?;
    report["machine"] = machine_info;
    report["pinning"] = pinning.into();
    report["clk_tck"] = clk_tck.into();
    report["server_listen_backlog"] = backlog.into();
    print_summary(&report);
    std::fs::create_dir_all(&args.out)?;
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let path = args
        .out
        .join(format!("bench_hub-{}c-{stamp}.json", args.connections));
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("\nwrote {}", path.display());
    Ok(())
}

async fn measure(
    args: &Args,
    server: SocketAddr,
    pid: u32,
    secret: &str,
    api_key: &str,
    clk_tck: f64,
) -> AnyResult<Value> {
    let server_pid = pid.to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base_memory = read_memory(pid);
    let base_kernel = read_kernel();
    let base = Instant::now();
    let shared = Rc::new(Shared {
        base,
        connected: Cell::new(0),
        subscribed: Cell::new(0),
        failed: Cell::new(0),
        errors: RefCell::default(),
        closed_early: RefCell::default(),
        deliveries: Cell::new(0),
        pings: Cell::new(0),
        latency_us: RefCell::new(Histogram::new_with_bounds(1, HIST_MAX_US, 3)?),
        setup_us: RefCell::new(Histogram::new_with_bounds(1, HIST_MAX_US, 3)?),
        last_ns: RefCell::new(vec![0; args.publications as usize]),
        receipts: RefCell::new(vec![0; args.publications as usize]),
        first_receipt_ns: Cell::new(0),
        last_receipt_ns: Cell::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = Vec::with_capacity(args.connections);
    let connect_timeout = Duration::from_secs(args.connect_timeout_secs);
    let sources: Vec<IpAddr> = (0..args.sources)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i)))
        .collect();

    // Ramp, with a memory reading at each checkpoint.
    let mut checkpoints = Vec::new();
    let ramp_started = Instant::now();
    let mut last_progress = Instant::now();
    let mut spawned = 0usize;
    let mut idle_cpu = (0.0, 0.0);
    // Time spent ramping, without the idle pauses at checkpoints.
    let mut ramp_active = Duration::ZERO;
    for &target in &args.checkpoints {
        let segment_started = Instant::now();
        while spawned < target {
            let permit = tokio::time::timeout(connect_timeout * 2, permits.clone().acquire_owned())
                .await
                .map_err(|_| "ramp stalled: no connection finished its set-up")??;
            let token =
                rootcast_hub::token::issue_hs256(secret, &json!({ "sub": format!("u{spawned}") }))?;
            let plan = ClientPlan {
                server,
                source: sources[spawned % sources.len()],
                token,
                publications: args.publications,
                connect_timeout,
            };
            tasks.push(tokio::task::spawn_local(client(
                plan,
                shared.clone(),
                permit,
                stop_rx.clone(),
            )));
            spawned += 1;
            if last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                progress(&shared, args.connections, ramp_started);
            }
        }
        let deadline = Instant::now() + connect_timeout + Duration::from_secs(5);
        while shared.subscribed.get() + shared.failed.get() < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        progress(&shared, args.connections, ramp_started);
        ramp_active += segment_started.elapsed();
        let ramp_secs = ramp_active.as_secs_f64();
        let cpu_before = (
            cpu_seconds(&server_pid, clk_tck),
            Instant::now(),
            machine_busy_seconds(clk_tck),
            cpu_seconds("self", clk_tck),
        );
        tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
        idle_cpu = (
            cpu_seconds(&server_pid, clk_tck) - cpu_before.0,
            cpu_before.1.elapsed().as_secs_f64(),
        );
        let idle_other = machine_busy_seconds(clk_tck)
            - cpu_before.2
            - idle_cpu.0
            - (cpu_seconds("self", clk_tck) - cpu_before.3);
        let setup = hist_quantiles(&shared.setup_us.borrow());
        let memory = read_memory(pid);
        let kernel = read_kernel();
        let conns = shared.subscribed.get().max(1) as f64;
        let rss_delta = memory.vm_rss_kib.saturating_sub(base_memory.vm_rss_kib) as f64;
        let tcp_pages = kernel.tcp_mem_pages as i64 - base_kernel.tcp_mem_pages as i64;
        let slab = kernel.slab_kib as i64 - base_kernel.slab_kib as i64;
        let point = json!({
            "connections": shared.subscribed.get(),
            "failed": shared.failed.get(),
            "ramp_secs": round2(ramp_secs),
            "connects_per_sec": (shared.subscribed.get() as f64 / ramp_secs.max(1e-3)).round(),
            "setup_us": setup,
            "server_vm_rss_kib": memory.vm_rss_kib,
            "server_rss_anon_kib": memory.rss_anon_kib,
            "server_rss_growth_kib": rss_delta,
            "server_rss_kib_per_conn": round2(rss_delta / conns),
            "server_threads": memory.threads,
            "sockstat_tcp_inuse": kernel.tcp_inuse,
            "sockstat_tcp_time_wait": kernel.tcp_tw,
            "sockstat_tcp_mem_pages_growth": tcp_pages,
            "sockstat_tcp_mem_kib_per_conn_both_ends": round2(tcp_pages as f64 * 4.0 / conns),
            "slab_growth_kib": slab,
            "slab_kib_per_conn_both_ends": round2(slab as f64 / conns),
            "listen_overflows": kernel.listen_overflows - base_kernel.listen_overflows,
            "listen_drops": kernel.listen_drops - base_kernel.listen_drops,
            "server_idle_cpu_percent": round2(100.0 * idle_cpu.0 / idle_cpu.1),
            "other_cpu_percent_while_idle": round2(100.0 * idle_other.max(0.0) / idle_cpu.1),
            "load_average": load_average(),
        });
        eprintln!(
            "idle at {} connections: server RSS {} KiB (+{:.0} KiB, {:.2} KiB/conn), tcp mem +{} pages, slab +{} KiB",
            shared.subscribed.get(),
            memory.vm_rss_kib,
            rss_delta,
            rss_delta / conns,
            tcp_pages,
            slab
        );
        checkpoints.push(point);
    }
    let subscribed = shared.subscribed.get();

    // Publishing.
    let lead = Duration::from_millis(200);
    let first_ns = now_ns(base) + lead.as_nanos() as u64;
    let last_scheduled_ns =
        first_ns + u64::from(args.publications.saturating_sub(1)) * args.interval_ms * 1_000_000;
    let expected = subscribed as u64 * u64::from(args.publications);
    eprintln!(
        "publishing {} × {} B to {subscribed} subscribers, one every {} ms",
        args.publications, args.payload, args.interval_ms
    );
    let server_cpu0 = cpu_seconds(&server_pid, clk_tck);
    let server_sched0 = schedstat_seconds(pid);
    let client_cpu0 = cpu_seconds("self", clk_tck);
    let machine_busy0 = machine_busy_seconds(clk_tck);
    let load_before = load_average();
    let pings0 = shared.pings.get();
    let window0 = Instant::now();
    let publisher_args = args.clone();
    let publisher_key = api_key.to_owned();
    let publisher = std::thread::spawn(move || {
        publisher(server, publisher_key, base, first_ns, publisher_args)
    });
    let drain_deadline_ns = last_scheduled_ns + args.drain_timeout_secs * 1_000_000_000;
    let mut last_report = Instant::now();
    while shared.deliveries.get() < expected && now_ns(base) < drain_deadline_ns {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            eprintln!("  {} / {expected} deliveries", shared.deliveries.get());
        }
    }
    let window_secs = window0.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(&server_pid, clk_tck) - server_cpu0;
    let server_sched = schedstat_seconds(pid) - server_sched0;
    let client_cpu = cpu_seconds("self", clk_tck) - client_cpu0;
    let other_cpu = machine_busy_seconds(clk_tck) - machine_busy0 - server_cpu - client_cpu;
    let pings = shared.pings.get() - pings0;
    let memory_after = read_memory(pid);
    let publisher = publisher.join().map_err(|_| "publisher thread panicked")?;

    // Stop the clients and collect what each saw.
    stop_tx.send(true)?;
    let mut records = Vec::with_capacity(tasks.len());
    let collect_deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for task in tasks {
        match tokio::time::timeout_at(collect_deadline, task).await {
            Ok(Ok(record)) => records.push(record),
            Ok(Err(_)) | Err(_) => records.push(ClientRecord::default()),
        }
    }

    // Figures.
    let deliveries = shared.deliveries.get();
    let mut missing = 0u64;
    let (mut duplicates, mut out_of_order, mut unexpected, mut incomplete) =
        (0u64, 0u64, 0u64, 0u64);
    for record in records.iter().filter(|r| r.subscribed) {
        let got = u64::from(record.received);
        missing += u64::from(args.publications) - got;
        incomplete += u64::from(got < u64::from(args.publications));
        duplicates += u64::from(record.duplicates);
        out_of_order += u64::from(record.out_of_order);
        unexpected += u64::from(record.unexpected);
    }
    let latency = shared.latency_us.borrow();
    let last_us: Vec<u64> = shared
        .last_ns
        .borrow()
        .iter()
        .zip(shared.receipts.borrow().iter())
        .filter(|(_, n)| **n > 0)
        .map(|(ns, _)| ns / 1000)
        .collect();
    let fanout_secs = shared.last_receipt_ns.get().saturating_sub(first_ns) as f64 / 1e9;
    let per_delivery = |cpu: f64| {
        if deliveries == 0 {
            0.0
        } else {
            round2(cpu * 1e6 / deliveries as f64)
        }
    };
    let idle_rate = if idle_cpu.1 > 0.0 {
        idle_cpu.0 / idle_cpu.1
    } else {
        0.0
    };
    Ok(json!({
        "bench": "bench_hub",
        "args": {
            "connections": args.connections,
            "publications": args.publications,
            "interval_ms": args.interval_ms,
            "payload": args.payload,
            "concurrency": args.concurrency,
            "sources": args.sources,
            "idle_secs": args.idle_secs,
        },
        "w1_memory": checkpoints,
        "publish": {
            "subscribers": subscribed,
            "expected_deliveries": expected,
            "deliveries": deliveries,
            "missing": missing,
            "clients_missing_some": incomplete,
            "duplicates": duplicates,
            "out_of_order": out_of_order,
            "unexpected": unexpected,
            "closed_early": *shared.closed_early.borrow(),
            "setup_errors": *shared.errors.borrow(),
            "published": publisher.sent,
            "publisher_errors": publisher.errors,
            "window_secs": round2(window_secs),
            "fanout_secs": round2(fanout_secs),
            "deliveries_per_sec": if fanout_secs > 0.0 { (deliveries as f64 / fanout_secs).round() } else { 0.0 },
            "server_cpu_secs": round2(server_cpu),
            "server_cpu_percent": round2(100.0 * server_cpu / window_secs),
            "server_cpu_us_per_delivery": per_delivery(server_cpu),
            "server_cpu_us_per_delivery_schedstat": per_delivery(server_sched),
            "server_cpu_us_per_delivery_minus_idle": per_delivery((server_cpu - idle_rate * window_secs).max(0.0)),
            "server_idle_cpu_percent": round2(100.0 * idle_rate),
            "server_vm_hwm_kib": memory_after.vm_hwm_kib,
            "server_vm_rss_kib_after": memory_after.vm_rss_kib,
            "client_cpu_secs": round2(client_cpu),
            "client_cpu_percent": round2(100.0 * client_cpu / window_secs),
            "client_cpu_us_per_delivery": per_delivery(client_cpu),
            "pings_answered_in_window": pings,
            "other_cpu_percent": round2(100.0 * other_cpu.max(0.0) / window_secs),
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "latency_us": hist_quantiles(&latency),
            "time_to_last_subscriber_us": quantiles(&last_us),
            "api_publish_us": quantiles(&publisher.api_us),
            "publisher_start_lag_us": quantiles(&publisher.start_lag_us),
        },
    }))
}

fn progress(shared: &Shared, total: usize, started: Instant) {
    let done = shared.subscribed.get();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "ramp: {done}/{total} subscribed, {} connected, {} failed, {:.1} s ({:.0}/s)",
        shared.connected.get(),
        shared.failed.get(),
        secs,
        done as f64 / secs.max(1e-3)
    );
}

/// A JSON value as plain text (strings without quotes), so it can be padded.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_summary(report: &Value) {
    let p = &report["publish"];
    println!(
        "\n== bench_hub: {} connections ({}) ==",
        report["args"]["connections"],
        report["pinning"].as_str().unwrap_or("")
    );
    println!("W1 memory (idle, connected and subscribed)");
    println!(
        "  {:>11} {:>12} {:>14} {:>16} {:>16} {:>9}",
        "connections",
        "server RSS",
        "RSS KiB/conn",
        "tcp mem KiB/conn",
        "slab KiB/conn",
        "overflows"
    );
    println!(
        "  {:>11} {:>12} {:>14} {:>16} {:>16} {:>9}",
        "", "KiB", "(server)", "(both ends)", "(both ends)", ""
    );
    for point in report["w1_memory"].as_array().into_iter().flatten() {
        println!(
            "  {:>11} {:>12} {:>14} {:>16} {:>16} {:>9}",
            text(&point["connections"]),
            text(&point["server_vm_rss_kib"]),
            text(&point["server_rss_kib_per_conn"]),
            text(&point["sockstat_tcp_mem_kib_per_conn_both_ends"]),
            text(&point["slab_kib_per_conn_both_ends"]),
            text(&point["listen_overflows"])
        );
    }
    for point in report["w1_memory"].as_array().into_iter().flatten() {
        let setup = &point["setup_us"];
        println!(
            "  ramp to {}: {} connects/s; set-up (connect to subscribe reply) p50 {} µs, p99 {} µs, max {} µs",
            text(&point["connections"]),
            text(&point["connects_per_sec"]),
            text(&setup["p50"]),
            text(&setup["p99"]),
            text(&setup["max"])
        );
    }
    println!(
        "  (overflows: the machine-wide ListenOverflows counter; other load on the machine while idle: {} % of a core)",
        text(
            &report["w1_memory"][report["w1_memory"]
                .as_array()
                .map_or(0, |a| a.len().saturating_sub(1))]["other_cpu_percent_while_idle"]
        )
    );
    println!(
        "W2/W3 fan-out: {} publications × {} B every {} ms to {} subscribers",
        report["args"]["publications"],
        report["args"]["payload"],
        report["args"]["interval_ms"],
        p["subscribers"]
    );
    println!(
        "  deliveries {} of {} (missing {}, duplicates {}, out of order {}, closed early {}); {}/s",
        p["deliveries"],
        p["expected_deliveries"],
        p["missing"],
        p["duplicates"],
        p["out_of_order"],
        text(&p["closed_early"]),
        p["deliveries_per_sec"]
    );
    println!(
        "  server CPU {} s = {} % of the {} s window: {} µs per delivery (schedstat {}, minus idle {})",
        p["server_cpu_secs"],
        p["server_cpu_percent"],
        p["window_secs"],
        p["server_cpu_us_per_delivery"],
        p["server_cpu_us_per_delivery_schedstat"],
        p["server_cpu_us_per_delivery_minus_idle"]
    );
    println!(
        "  client CPU {} s = {} % of one core: {} µs per delivery; {} pings answered in the window",
        p["client_cpu_secs"],
        p["client_cpu_percent"],
        p["client_cpu_us_per_delivery"],
        p["pings_answered_in_window"]
    );
    println!(
        "  other processes on the machine used {} % of a core in the window (load average before {}, after {})",
        text(&p["other_cpu_percent"]),
        text(&p["load_average_before"]),
        text(&p["load_average_after"])
    );
    println!(
        "  {:<32} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "(ms from scheduled send)", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, key) in [
        ("latency per delivery", "latency_us"),
        ("time to last subscriber", "time_to_last_subscriber_us"),
        ("publish API answered", "api_publish_us"),
    ] {
        let q = &p[key];
        let ms = |k: &str| format!("{:.2}", q[k].as_u64().unwrap_or(0) as f64 / 1000.0);
        println!(
            "  {:<32} {:>9} {:>9} {:>9} {:>9} {:>9}",
            name,
            ms("p50"),
            ms("p90"),
            ms("p99"),
            ms("p999"),
            ms("max")
        );
    }
}
