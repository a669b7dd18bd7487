//! The coordinator: starts each target, spreads the clients over worker processes, paces
//! the ramp, publishes, reads the server's memory and CPU, merges the workers' figures and
//! writes the report. Every phase has a deadline, and `--duration` bounds the whole run.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use crate::children;
use crate::dialect::Kind;
use crate::histogram::{self, Quantiles};
use crate::procfs;
use crate::publisher::{Publishers, Schedule};
use crate::pump::{self, Events, Fleet as _};
use crate::report;
use crate::servers::{self, ProcessRss, Servers, rss_sum};
use crate::targets::Launch;
use crate::wire::{Command as WorkerCommand, ConnectPlan, Counters, Event, WorkerReport};
use crate::worker::unix_ns;
use crate::workers::{self, WorkerProcess};

/// Options every scenario shares.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct RunArgs {
    /// Servers to measure, each under the same load in turn.
    #[arg(long, value_delimiter = ',', default_value = "rootcast,floor,nats")]
    pub targets: Vec<Kind>,
    /// Measure a server that is already running at this address (`127.0.0.1:8000`)
    /// instead of starting one; needs exactly one --targets (its kind).
    #[arg(long)]
    pub address: Option<SocketAddr>,
    /// With --address: the server's process, for its memory and CPU.
    #[arg(long, requires = "address")]
    pub pid: Option<u32>,
    /// With --address and a rootcast target: `client.token.hmac_secret_key`.
    #[arg(long, requires = "address")]
    pub secret: Option<String>,
    /// With --address and a rootcast target: `http_api.key`.
    #[arg(long, requires = "address")]
    pub api_key: Option<String>,
    /// Connections (subscribers); a list is a sweep: `1000,5000,10000`.
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    pub connections: Vec<usize>,
    /// Worker processes (0: one per 8,000 connections, at least 2, rounded up to a multiple
    /// of --server-processes). Worker i connects from 127.0.0.(2 + i).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Copies of each target started per measurement (K; not with --address), each its own
    /// process pinned to the server core: worker i connects to copy i % K, so a run can
    /// pass the 20,000 open files of one process (at most 19,500 connections per copy).
    /// Server memory and CPU are then sums over the copies.
    #[arg(long, default_value_t = 1)]
    pub server_processes: usize,
    /// Connections started per second, all workers together.
    #[arg(long, default_value_t = 4000.0)]
    pub rate: f64,
    /// Most connections being set up at once, per worker.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// Idle time once all are connected, before memory is read.
    #[arg(long, default_value_t = 3)]
    pub idle_secs: u64,
    #[arg(long, default_value_t = 20)]
    pub connect_timeout_secs: u64,
    /// Measure every (connections, target) this many times; the summary gives medians.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Hard bound on the whole run, seconds: then every child is killed and the program
    /// exits with status 3.
    #[arg(long, default_value_t = 600)]
    pub duration: u64,
    /// Where results.json, summary.md and the plots go.
    #[arg(long, default_value = "loadtest-results")]
    pub out: PathBuf,
    /// Do not pin the server and the load generator to cores with taskset.
    #[arg(long)]
    pub no_pin: bool,
    #[arg(long, default_value_t = 0)]
    pub server_core: u32,
    /// The core of the coordinator, the publisher and every worker.
    #[arg(long, default_value_t = 1)]
    pub client_core: u32,
    /// The `rootcast` binary (default: next to this one, i.e. the same target folder).
    #[arg(long)]
    pub rootcast_bin: Option<PathBuf>,
    #[arg(long, default_value = "nats-server")]
    pub nats_bin: PathBuf,
    /// Pass the servers' output on to standard error.
    #[arg(long)]
    pub verbose: bool,
}

/// Options of `ws-fanout`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct FanoutArgs {
    #[arg(long, default_value_t = 40)]
    pub publications: u32,
    /// One publication every this many ms, on a fixed schedule.
    #[arg(long, default_value_t = 500)]
    pub interval_ms: u64,
    /// Bytes of each publication's payload.
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// How long after the last scheduled publication deliveries are waited for.
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
    /// Publications sent together at each scheduled time (`ws-burst`; 1 for `ws-fanout`).
    #[arg(skip = 1u32)]
    pub burst: u32,
    /// Percentage of the clients that stop reading once subscribed (`ws-slow`).
    #[arg(skip)]
    pub slow_percent: f64,
    /// `ws-reconnect-storm`: every client drops and reconnects this long after the first
    /// scheduled publication.
    #[arg(skip)]
    pub storm_after_ms: Option<u64>,
}

/// Options of `ws-slow`: a share of the subscribers stop reading; large publications fill
/// their socket buffers and then the server's queue for them.
#[derive(Debug, Clone, clap::Args)]
pub struct SlowArgs {
    /// Percentage of the clients that stop reading once subscribed.
    #[arg(long, default_value_t = 1.0)]
    pub slow_percent: f64,
    #[arg(long, default_value_t = 300)]
    pub publications: u32,
    #[arg(long, default_value_t = 50)]
    pub interval_ms: u64,
    /// Large, so that a slow client's buffers and queue fill within the run.
    #[arg(long, default_value_t = 16384)]
    pub payload: usize,
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
}

impl From<SlowArgs> for FanoutArgs {
    fn from(s: SlowArgs) -> FanoutArgs {
        FanoutArgs {
            publications: s.publications,
            interval_ms: s.interval_ms,
            payload: s.payload,
            drain_secs: s.drain_secs,
            burst: 1,
            slow_percent: s.slow_percent.clamp(0.0, 100.0),
            storm_after_ms: None,
        }
    }
}

/// Options of `ws-burst`: bursts of publications sent back to back.
#[derive(Debug, Clone, clap::Args)]
pub struct BurstArgs {
    #[arg(long, default_value_t = 10)]
    pub bursts: u32,
    /// Publications per burst.
    #[arg(long, default_value_t = 100)]
    pub burst_size: u32,
    /// One burst every this many ms.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
}

impl From<BurstArgs> for FanoutArgs {
    fn from(b: BurstArgs) -> FanoutArgs {
        FanoutArgs {
            publications: b.bursts * b.burst_size.max(1),
            interval_ms: b.interval_ms,
            payload: b.payload,
            drain_secs: b.drain_secs,
            burst: b.burst_size.max(1),
            slow_percent: 0.0,
            storm_after_ms: None,
        }
    }
}

/// Options of `ws-reconnect-storm`: publications on a fixed schedule to a channel with
/// history; partway through, every client drops its connection at once and reconnects,
/// subscribing with recovery.
#[derive(Debug, Clone, clap::Args)]
pub struct StormArgs {
    #[arg(long, default_value_t = 100)]
    pub publications: u32,
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// When the clients drop, after the first scheduled publication.
    #[arg(long, default_value_t = 3000)]
    pub storm_after_ms: u64,
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
}

impl From<StormArgs> for FanoutArgs {
    fn from(s: StormArgs) -> FanoutArgs {
        FanoutArgs {
            publications: s.publications,
            interval_ms: s.interval_ms,
            payload: s.payload,
            drain_secs: s.drain_secs,
            burst: 1,
            slow_percent: 0.0,
            storm_after_ms: Some(s.storm_after_ms),
        }
    }
}

/// One target at one connection count.
#[derive(Debug, Serialize)]
pub struct Measurement {
    pub target: Kind,
    pub scenario: &'static str,
    pub connections: usize,
    pub round: usize,
    pub workers: usize,
    /// Copies of the target, each its own process (`--server-processes`).
    pub server_processes: usize,
    /// Why the measurement stopped early, if it did.
    pub error: Option<String>,
    pub idle: Option<Idle>,
    pub fanout: Option<Fanout>,
    pub storm: Option<Storm>,
}

/// `ws-reconnect-storm`: the reconnection of every client at once.
#[derive(Debug, Serialize)]
pub struct Storm {
    pub dropped: u64,
    pub reconnected: u64,
    /// Subscriptions the server answered with `recovered: true`.
    pub recovered: u64,
    pub recovered_percent: f64,
    /// From the drop (sent to the workers) until the last client was subscribed again,
    /// from the workers' clocks.
    pub storm_secs: f64,
    /// Reconnected ÷ `storm_secs`.
    pub connects_per_sec: f64,
    /// Per client: drop → subscribed again, µs.
    pub reconnect_us: Quantiles,
    /// Failed reconnect attempts (each retried after 100 ms), by reason.
    pub reconnect_errors: BTreeMap<String, u64>,
    /// The server's CPU from the drop until every client was back, per reconnection (the
    /// fan-out going on meanwhile included).
    pub server_cpu_us_per_reconnect: Option<f64>,
    /// The server's and the load generator's CPU over the same time, % of one core.
    pub server_cpu_percent: Option<f64>,
    pub loadgen_cpu_percent: f64,
    /// Publications sent × clients − distinct publications received by the drain deadline.
    pub lost: u64,
    pub duplicates: u64,
}

/// Figures once every client is connected, subscribed and idle.
#[derive(Debug, Serialize)]
pub struct Idle {
    pub ready: u64,
    pub failed: u64,
    pub errors: BTreeMap<String, u64>,
    pub ramp_secs: f64,
    pub connects_per_sec: f64,
    /// `connect()` to ready, µs.
    pub setup_us: Quantiles,
    /// The server's RSS (summed over its processes) before the first connection and now,
    /// and the growth per connection, KiB.
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_kib: Option<u64>,
    pub server_rss_kib_per_conn: Option<f64>,
    /// Each server process on its own (one per `--server-processes` copy).
    pub by_server_process: Vec<ServerProcess>,
    /// Machine-wide, both ends of each loopback connection.
    pub sockstat_tcp_mem_kib_per_conn_both_ends: f64,
    pub slab_kib_per_conn_both_ends: f64,
    pub listen_overflows: u64,
    pub server_idle_cpu_percent: Option<f64>,
    pub other_cpu_percent: f64,
    pub load_average: String,
}

/// One server process with every client idle.
#[derive(Debug, Serialize)]
pub struct ServerProcess {
    pub pid: u32,
    pub address: SocketAddr,
    /// Its clients that were set up (its workers' counts).
    pub connections: u64,
    /// Its open files (`/proc/<pid>/fd`): one per connection, and its own.
    pub open_files: u64,
    pub rss_kib: u64,
    /// Its own RSS growth ÷ its own connections, KiB.
    pub rss_kib_per_conn: f64,
}

#[derive(Debug, Serialize)]
pub struct Fanout {
    pub subscribers: u64,
    pub publications: u32,
    pub payload: usize,
    pub interval_ms: u64,
    pub expected: u64,
    pub deliveries: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub unexpected: u64,
    /// Connections that ended during the measurement.
    pub closed: u64,
    pub errors: BTreeMap<String, u64>,
    pub published: u32,
    pub publisher_error: Option<String>,
    /// From just before the first publication until the last delivery (or the drain
    /// deadline).
    pub window_secs: f64,
    pub deliveries_per_sec: f64,
    /// Summed over the server's processes; the percentage is of one core.
    pub server_cpu_secs: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    pub server_cpu_us_per_delivery: Option<f64>,
    /// The coordinator, the publisher and every worker.
    pub loadgen_cpu_secs: f64,
    pub loadgen_cpu_percent: f64,
    pub loadgen_cpu_us_per_delivery: f64,
    /// Everything else on the machine during the window, % of one core.
    pub other_cpu_percent: f64,
    /// Receipt − scheduled send, every delivery, µs.
    pub latency_us: Quantiles,
    /// Per publication: the last subscriber's receipt − scheduled send, µs.
    pub time_to_last_us: Quantiles,
    /// Scheduled send → the server took the publication (API answer, PONG, `ok`), µs.
    pub publish_answered_us: Quantiles,
    pub publisher_start_lag_us: Quantiles,
    /// (quantile, µs) of the per-delivery latency, for the plot.
    pub latency_curve: Vec<(f64, u64)>,
    pub pongs: u64,
    /// Clients that stopped reading on purpose (`ws-slow`); the figures above are the others'.
    pub slow: u64,
    /// The server's RSS at the end of the window and its peak (`VmHWM`) so far, KiB (each
    /// summed over its processes).
    pub server_rss_after_kib: Option<u64>,
    pub server_rss_peak_kib: Option<u64>,
    /// rootcast: connections the server closed, by close code (its `/metrics`).
    pub server_disconnects: Option<BTreeMap<String, u64>>,
    pub load_average: String,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The workers of one measurement and what they last said.
struct Fleet {
    label: String,
    workers: Vec<WorkerProcess>,
    events: Events<pump::Channel<Event>>,
    counters: Vec<Counters>,
    ready: Vec<bool>,
    reports: Vec<Option<WorkerReport>>,
    last_deliveries: u64,
}

impl Fleet {
    /// Starts `count` workers for `servers`, whose exit ends the measurement.
    fn spawn(
        count: usize,
        core: Option<u32>,
        label: String,
        servers: &Servers,
    ) -> anyhow::Result<Fleet> {
        let (tx, events) = mpsc::channel();
        let workers = workers::spawn(count, core, "worker", "worker", move |index, event| {
            tx.send((index, event)).is_ok()
        })?;
        for worker in &workers {
            let index = worker.index();
            let server = match servers.copies.len() {
                1 => String::new(),
                k => format!(
                    ", server {} ({})",
                    servers::server_of(index, k),
                    servers.of_worker(index).address
                ),
            };
            eprintln!(
                "worker {index}: pid {}, source 127.0.0.{}{server}",
                worker.pid,
                2 + index
            );
        }
        Ok(Fleet {
            label,
            counters: vec![Counters::default(); count],
            ready: vec![false; count],
            reports: (0..count).map(|_| None).collect(),
            events: Events::new(events, "worker", &workers, servers.pids()),
            workers,
            last_deliveries: 0,
        })
    }

    fn send(&mut self, index: usize, command: &WorkerCommand) -> anyhow::Result<()> {
        self.workers[index].send(command)
    }

    fn totals(&self) -> Counters {
        let mut totals = Counters::default();
        for c in &self.counters {
            totals += *c;
        }
        totals
    }

    /// Connections set up by the workers of server copy `server` of `servers`.
    fn subscribed_on(&self, server: usize, servers: usize) -> u64 {
        self.counters
            .iter()
            .enumerate()
            .filter(|(index, _)| servers::server_of(*index, servers) == server)
            .map(|(_, c)| c.subscribed)
            .sum()
    }

    fn pids(&self) -> Vec<u32> {
        workers::pids(&self.workers)
    }

    /// Asks every worker to stop, waits up to 3 s, kills what is left.
    fn stop(mut self) {
        for index in 0..self.workers.len() {
            let _ = self.send(index, &WorkerCommand::Stop);
        }
        for pid in self.pids() {
            children::stop(pid, Duration::from_secs(3));
        }
    }
}

impl pump::Fleet for Fleet {
    type Event = Event;
    type Channel = pump::Channel<Event>;

    fn events(&mut self) -> &mut Events<Self::Channel> {
        &mut self.events
    }

    fn apply(&mut self, index: usize, event: Event) {
        match event {
            Event::Progress(c) => self.counters[index] = c,
            Event::Ready(c) => {
                self.counters[index] = c;
                self.ready[index] = true;
            }
            Event::Report(report) => {
                self.counters[index] = report.counters;
                self.reports[index] = Some(*report);
            }
        }
    }

    fn check_connections(&self) -> anyhow::Result<()> {
        let totals = self.totals();
        if totals.subscribed > 0 && totals.closed >= totals.subscribed {
            bail!(
                "the server closed all {} connections: it went away or refused them",
                totals.subscribed
            );
        }
        Ok(())
    }

    fn progress_line(&mut self, elapsed_secs: f64, since_last_secs: f64) -> String {
        let totals = self.totals();
        let rate = (totals.deliveries - self.last_deliveries) as f64 / since_last_secs;
        self.last_deliveries = totals.deliveries;
        format!(
            "[{}] {:>5.1} s  connected {}  ready {}  failed {}  closed {}  msgs/s {:.0}  deliveries {}",
            self.label,
            elapsed_secs,
            totals.connected,
            totals.subscribed,
            totals.failed,
            totals.closed,
            rate,
            totals.deliveries
        )
    }
}

/// The server's CPU seconds (all its processes) since it read `before`.
fn cpu_since(servers: &Servers, before: Option<f64>) -> Option<f64> {
    servers.cpu_seconds().zip(before).map(|(now, c0)| now - c0)
}

/// CPU seconds of the load generator: this process and its workers.
fn loadgen_cpu(workers: &[u32]) -> f64 {
    procfs::cpu_seconds(std::process::id())
        + workers.iter().map(|&p| procfs::cpu_seconds(p)).sum::<f64>()
}

/// Runs `scenario` (`ws-idle` without fan-out options, `ws-fanout`, `ws-burst`).
pub fn run(
    scenario: &'static str,
    args: RunArgs,
    fanout: Option<FanoutArgs>,
) -> anyhow::Result<()> {
    if args.targets.is_empty() || args.connections.is_empty() || args.connections.contains(&0) {
        bail!("--targets and --connections (all > 0) must not be empty");
    }
    if args.address.is_some() && args.targets.len() != 1 {
        bail!("--address measures one server: give its kind as the only --targets");
    }
    if scenario == "ws-reconnect-storm" && args.targets.iter().any(|k| *k != Kind::Rootcast) {
        bail!(
            "ws-reconnect-storm measures recovery, which only rootcast has (the floor keeps nothing, and core NATS over WebSocket has no history): use --targets rootcast"
        );
    }
    let worker_counts = servers::worker_counts(&args)?;
    let (pinned, pinning) = start_run(
        "rootcast-loadtest",
        "coordinator, publisher, workers",
        (!args.no_pin).then_some((args.server_core, args.client_core)),
        args.duration,
    );
    let mut launch = Launch::rootcast(
        pinned.then_some(args.server_core),
        args.rootcast_bin.as_deref(),
        args.verbose,
    )?;
    launch.nats_bin = args.nats_bin.clone();
    launch.bench_history = scenario == "ws-reconnect-storm";
    let mut results = Vec::new();
    for round in 0..args.repeat {
        for (&connections, &workers) in args.connections.iter().zip(&worker_counts) {
            for &kind in &args.targets {
                let m = measure(
                    scenario,
                    &args,
                    fanout.as_ref(),
                    &launch,
                    kind,
                    connections,
                    workers,
                    round,
                    pinned,
                );
                eprintln!("{}", report::one_line(&m));
                results.push(m);
            }
        }
    }
    let report = report::Report {
        scenario,
        machine: report::machine(),
        pinning,
        args: args.clone(),
        fanout_args: fanout,
        measurements: results,
    };
    let summary = report::write(&args.out, &report)?;
    println!("{summary}");
    eprintln!(
        "wrote {}/results.json and {}/summary.md",
        args.out.display(),
        args.out.display()
    );
    let failed: Vec<String> = report
        .measurements
        .iter()
        .filter_map(|m| {
            m.error.as_ref().map(|e| {
                format!(
                    "{} at {}: {e}",
                    report::label(m.target, m.server_processes),
                    m.connections
                )
            })
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} measurements failed:\n  {}",
            failed.len(),
            report.measurements.len(),
            failed.join("\n  ")
        );
    }
    Ok(())
}

/// What every run does first: pins this process to the client core when `cores` =
/// `Some((server, client))` (the server is pinned when it is launched), says so, and arms
/// the hard stop after `duration_secs` that kills every child and exits with 3. Returns
/// whether the pinning took, and the sentence that says how (for the report).
pub fn start_run(
    label: &str,
    roles: &str,
    cores: Option<(u32, u32)>,
    duration_secs: u64,
) -> (bool, String) {
    let pinned = cores.is_some_and(|(_, client)| pin_self(client));
    let pinning = match cores {
        Some((server, client)) if pinned => {
            format!("server on core {server}, load generator ({roles}) on core {client} (taskset)")
        }
        _ => "not pinned".to_owned(),
    };
    eprintln!("{label}: {pinning}; stops by itself after {duration_secs} s at the latest");
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(duration_secs));
        eprintln!(
            "rootcast-loadtest: --duration {duration_secs} s reached: stopping every process"
        );
        children::kill_all();
        std::process::exit(3);
    });
    (pinned, pinning)
}

/// Pins this process (and the threads and children it starts later) to `core`.
pub fn pin_self(core: u32) -> bool {
    Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &core.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
fn measure(
    scenario: &'static str,
    args: &RunArgs,
    fanout: Option<&FanoutArgs>,
    launch: &Launch,
    kind: Kind,
    connections: usize,
    workers: usize,
    round: usize,
    pinned: bool,
) -> Measurement {
    let mut m = Measurement {
        target: kind,
        scenario,
        connections,
        round,
        workers,
        server_processes: args.server_processes,
        error: None,
        idle: None,
        fanout: None,
        storm: None,
    };
    let label = format!(
        "{} {} {connections}",
        m.scenario,
        report::label(kind, m.server_processes)
    );
    eprintln!("== {label} (round {}): {workers} workers", round + 1);
    if let Err(error) = measure_into(&mut m, args, fanout, launch, pinned, label) {
        m.error = Some(format!("{error:#}"));
    }
    m
}

fn measure_into(
    m: &mut Measurement,
    args: &RunArgs,
    fanout: Option<&FanoutArgs>,
    launch: &Launch,
    pinned: bool,
    label: String,
) -> anyhow::Result<()> {
    let servers = Servers::start(args, m.target, launch)?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = servers.rss_each();
    let kernel_before = procfs::kernel();
    let mut fleet = Fleet::spawn(
        m.workers,
        pinned.then_some(args.client_core),
        label,
        &servers,
    )?;
    let outcome = drive(
        m,
        args,
        fanout,
        &servers,
        &mut fleet,
        &rss_before,
        kernel_before,
    );
    fleet.stop();
    drop(servers);
    outcome
}

fn drive(
    m: &mut Measurement,
    args: &RunArgs,
    fanout: Option<&FanoutArgs>,
    servers: &Servers,
    fleet: &mut Fleet,
    rss_before: &[ProcessRss],
    kernel_before: procfs::Kernel,
) -> anyhow::Result<()> {
    let n = m.connections;
    let k = m.workers;
    let publications = fanout.map_or(0, |f| f.publications);

    // Ramp.
    let ramp_started = Instant::now();
    for index in 0..k {
        let (first_user, count) = servers::share(n, k, index);
        let server = servers.of_worker(index);
        let plan = ConnectPlan {
            kind: m.target,
            server: server.address,
            source: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + index as u8)),
            count,
            first_user,
            rate: args.rate / k as f64,
            concurrency: args.concurrency,
            connect_timeout_ms: args.connect_timeout_secs * 1000,
            hmac_secret: server.hmac_secret.clone(),
            publications,
            slow_every: match fanout.map_or(0.0, |f| f.slow_percent) {
                p if p > 0.0 => (100.0 / p).round().max(1.0) as usize,
                _ => 0,
            },
        };
        fleet.send(index, &WorkerCommand::Connect(plan))?;
    }
    let ramp_limit = Duration::from_secs_f64(n as f64 / args.rate)
        + Duration::from_secs(args.connect_timeout_secs + 10);
    if !fleet.pump(Instant::now() + ramp_limit, |f| {
        Ok(f.ready.iter().all(|r| *r))
    })? {
        bail!("the ramp did not finish within {} s", ramp_limit.as_secs());
    }
    let ramp_secs = ramp_started.elapsed().as_secs_f64();
    let ready = fleet.totals();
    if ready.subscribed == 0 {
        bail!("no connection could be set up ({} failed)", ready.failed);
    }

    // Idle.
    let workers = fleet.pids();
    let idle_started = Instant::now();
    let server_cpu0 = servers.cpu_seconds();
    let loadgen0 = loadgen_cpu(&workers);
    let busy0 = procfs::machine_busy_seconds();
    fleet.pump(Instant::now() + Duration::from_secs(args.idle_secs), |_| {
        Ok(false)
    })?;
    let idle_secs = idle_started.elapsed().as_secs_f64();
    let server_idle_cpu = cpu_since(servers, server_cpu0);
    let idle_other = procfs::machine_busy_seconds()
        - busy0
        - server_idle_cpu.unwrap_or(0.0)
        - (loadgen_cpu(&workers) - loadgen0);
    let kernel = procfs::kernel();
    let rss_each = servers.rss_each();
    let rss = rss_sum(&rss_each).map(|r| r.0);
    let rss_before_sum = rss_sum(rss_before).map(|r| r.0);
    let conns = ready.subscribed as f64;
    let by_server_process = rss_before
        .iter()
        .zip(&rss_each)
        .map(|(before, now)| {
            let connections = fleet.subscribed_on(now.index, servers.copies.len());
            ServerProcess {
                pid: now.pid,
                address: servers.copies[now.index].address,
                connections,
                open_files: procfs::open_files(now.pid),
                rss_kib: now.rss_kib,
                rss_kib_per_conn: round2(
                    now.rss_kib.saturating_sub(before.rss_kib) as f64 / connections.max(1) as f64,
                ),
            }
        })
        .collect();
    // Set-up figures come with the workers' reports; ask for them now.
    for index in 0..k {
        fleet.send(index, &WorkerCommand::Report)?;
    }
    fleet.reports.iter_mut().for_each(|r| *r = None);
    if !fleet.pump(Instant::now() + Duration::from_secs(15), |f| {
        Ok(f.reports.iter().all(Option::is_some))
    })? {
        bail!("workers did not report within 15 s");
    }
    let mut setup = histogram::new();
    let mut errors = BTreeMap::new();
    for report in fleet.reports.iter().flatten() {
        histogram::merge(&mut setup, &report.setup_us);
        for (reason, count) in &report.errors {
            *errors.entry(reason.clone()).or_default() += count;
        }
    }
    m.idle = Some(Idle {
        ready: ready.subscribed,
        failed: ready.failed,
        errors,
        ramp_secs: round2(ramp_secs),
        connects_per_sec: (conns / ramp_secs.max(1e-3)).round(),
        setup_us: Quantiles::of(&setup),
        server_rss_before_kib: rss_before_sum,
        server_rss_kib: rss,
        server_rss_kib_per_conn: rss
            .zip(rss_before_sum)
            .map(|(a, b)| round2(a.saturating_sub(b) as f64 / conns)),
        by_server_process,
        sockstat_tcp_mem_kib_per_conn_both_ends: round2(
            (kernel.tcp_mem_pages as f64 - kernel_before.tcp_mem_pages as f64) * 4.0 / conns,
        ),
        slab_kib_per_conn_both_ends: round2(
            (kernel.slab_kib as f64 - kernel_before.slab_kib as f64) / conns,
        ),
        listen_overflows: kernel
            .listen_overflows
            .saturating_sub(kernel_before.listen_overflows),
        server_idle_cpu_percent: server_idle_cpu.map(|c| round2(100.0 * c / idle_secs)),
        other_cpu_percent: round2(100.0 * idle_other.max(0.0) / idle_secs),
        load_average: procfs::load_average(),
    });
    let Some(fanout) = fanout else {
        return Ok(());
    };

    // Fan-out.
    let ready = fleet.totals();
    // Slow clients read nothing: only the others are expected to receive.
    let subscribers = ready.subscribed - ready.closed - ready.slow;
    let expected = subscribers * u64::from(fanout.publications);
    let schedule = Schedule {
        first_ns: unix_ns() + 300_000_000,
        interval_ns: fanout.interval_ms * 1_000_000,
        count: fanout.publications,
        payload: fanout.payload,
        burst: fanout.burst,
    };
    let last_scheduled = schedule.at(fanout.publications.saturating_sub(1));
    let deliveries0 = fleet.totals().deliveries;
    let server_cpu0 = servers.cpu_seconds();
    let loadgen0 = loadgen_cpu(&workers);
    let busy0 = procfs::machine_busy_seconds();
    let load_before = procfs::load_average();
    let window_started = Instant::now();
    let mut publishers = Publishers::start(&servers.copies, schedule);
    let drain_deadline_ns = last_scheduled + fanout.drain_secs * 1_000_000_000;
    let until = Instant::now() + Duration::from_nanos(drain_deadline_ns.saturating_sub(unix_ns()));
    let storm = match fanout.storm_after_ms {
        Some(after_ms) => Some(storm(
            fleet,
            servers,
            k,
            subscribers,
            Instant::now()
                + Duration::from_nanos(
                    (schedule.first_ns + after_ms * 1_000_000).saturating_sub(unix_ns()),
                ),
            until,
        )?),
        None => None,
    };
    fleet.pump(until, |f| {
        publishers.check()?;
        Ok(f.totals().deliveries - deliveries0 >= expected)
    })?;
    let window_secs = window_started.elapsed().as_secs_f64();
    let server_cpu = cpu_since(servers, server_cpu0);
    let loadgen = loadgen_cpu(&workers) - loadgen0;
    let rss_after = rss_sum(&servers.rss_each());
    let server_disconnects = servers.disconnects();
    let other = procfs::machine_busy_seconds() - busy0 - server_cpu.unwrap_or(0.0) - loadgen;
    let publisher_report = publishers.finish(Duration::from_secs(2));

    // Merge the workers' figures.
    for index in 0..k {
        fleet.send(index, &WorkerCommand::Report)?;
    }
    fleet.reports.iter_mut().for_each(|r| *r = None);
    if !fleet.pump(Instant::now() + Duration::from_secs(15), |f| {
        Ok(f.reports.iter().all(Option::is_some))
    })? {
        bail!("workers did not report within 15 s");
    }
    let mut latency = histogram::new();
    let mut last_ns = vec![0u64; publications as usize];
    let mut receipts = vec![0u64; publications as usize];
    let (mut duplicates, mut out_of_order, mut unexpected, mut pongs) = (0, 0, 0, 0);
    let mut errors = BTreeMap::new();
    let mut first_receipt = u64::MAX;
    let mut last_receipt = 0;
    let mut last_reconnect = 0;
    let mut reconnect = histogram::new();
    let mut totals = Counters::default();
    for report in fleet.reports.iter().flatten() {
        histogram::merge(&mut latency, &report.latency_us);
        for (i, ns) in report.last_ns.iter().enumerate().take(last_ns.len()) {
            last_ns[i] = last_ns[i].max(*ns);
            receipts[i] += report.receipts[i];
        }
        duplicates += report.duplicates;
        out_of_order += report.out_of_order;
        unexpected += report.unexpected;
        pongs += report.pongs;
        for (reason, count) in &report.errors {
            *errors.entry(reason.clone()).or_default() += count;
        }
        if report.first_receipt_ns > 0 {
            first_receipt = first_receipt.min(report.first_receipt_ns);
        }
        last_receipt = last_receipt.max(report.last_receipt_ns);
        last_reconnect = last_reconnect.max(report.last_reconnect_ns);
        histogram::merge(&mut reconnect, &report.reconnect_us);
        totals += report.counters;
    }
    let deliveries = totals.deliveries;
    let last_us: Vec<u64> = last_ns
        .iter()
        .zip(&receipts)
        .filter(|(_, n)| **n > 0)
        .map(|(ns, _)| ns / 1000)
        .collect();
    let spread_secs = last_receipt.saturating_sub(schedule.first_ns) as f64 / 1e9;
    let per_delivery = |cpu: f64| {
        if deliveries == 0 {
            0.0
        } else {
            round2(cpu * 1e6 / deliveries as f64)
        }
    };
    m.fanout = Some(Fanout {
        subscribers,
        publications: fanout.publications,
        payload: fanout.payload,
        interval_ms: fanout.interval_ms,
        expected,
        deliveries,
        missing: expected.saturating_sub(deliveries),
        duplicates,
        out_of_order,
        unexpected,
        closed: totals.closed,
        errors,
        published: publisher_report.sent,
        publisher_error: publisher_report.error.clone(),
        window_secs: round2(window_secs),
        deliveries_per_sec: if spread_secs > 0.0 {
            (deliveries as f64 / spread_secs).round()
        } else {
            0.0
        },
        server_cpu_secs: server_cpu.map(round2),
        server_cpu_percent: server_cpu.map(|c| round2(100.0 * c / window_secs)),
        server_cpu_us_per_delivery: server_cpu.map(per_delivery),
        loadgen_cpu_secs: round2(loadgen),
        loadgen_cpu_percent: round2(100.0 * loadgen / window_secs),
        loadgen_cpu_us_per_delivery: per_delivery(loadgen),
        other_cpu_percent: round2(100.0 * other.max(0.0) / window_secs),
        latency_us: Quantiles::of(&latency),
        time_to_last_us: Quantiles::of_sample(&last_us),
        publish_answered_us: Quantiles::of_sample(&publisher_report.answered_us),
        publisher_start_lag_us: Quantiles::of_sample(&publisher_report.start_lag_us),
        latency_curve: histogram::percentile_curve(&latency),
        pongs,
        slow: ready.slow,
        server_rss_after_kib: rss_after.map(|r| r.0),
        server_rss_peak_kib: rss_after.map(|r| r.1),
        server_disconnects,
        load_average: format!("{load_before} → {}", procfs::load_average()),
    });
    if let Some(started) = storm {
        let storm_secs = last_reconnect.saturating_sub(started.dropped_ns) as f64 / 1e9;
        let sent = u64::from(publisher_report.sent);
        m.storm = Some(Storm {
            dropped: totals.dropped,
            reconnected: totals.reconnected,
            recovered: totals.recovered,
            recovered_percent: if totals.reconnected == 0 {
                0.0
            } else {
                round2(100.0 * totals.recovered as f64 / totals.reconnected as f64)
            },
            storm_secs: round2(storm_secs),
            connects_per_sec: if storm_secs > 0.0 {
                (totals.reconnected as f64 / storm_secs).round()
            } else {
                0.0
            },
            reconnect_us: Quantiles::of(&reconnect),
            reconnect_errors: m
                .fanout
                .as_ref()
                .map(|f| {
                    f.errors
                        .iter()
                        .filter(|(reason, _)| reason.starts_with("reconnect"))
                        .map(|(r, n)| (r.clone(), *n))
                        .collect()
                })
                .unwrap_or_default(),
            server_cpu_percent: started
                .server_cpu
                .map(|c| round2(100.0 * c / started.secs.max(1e-3))),
            loadgen_cpu_percent: round2(100.0 * started.loadgen_cpu / started.secs.max(1e-3)),
            server_cpu_us_per_reconnect: started.server_cpu.map(|c| {
                if totals.reconnected == 0 {
                    0.0
                } else {
                    round2(c * 1e6 / totals.reconnected as f64)
                }
            }),
            lost: (subscribers * sent).saturating_sub(deliveries),
            duplicates,
        });
    }
    Ok(())
}

/// What [`storm`] measured while every client came back.
struct StormStart {
    /// Unix time the drop was sent, ns.
    dropped_ns: u64,
    /// The server's and the load generator's CPU from the drop until every client was
    /// back (as the workers' counters showed it, every 100 ms), and that time, seconds.
    server_cpu: Option<f64>,
    loadgen_cpu: f64,
    secs: f64,
}

/// Waits until `at`, tells every worker to drop all its connections and reconnect, and
/// waits (until `until` at the latest) for `clients` reconnections.
fn storm(
    fleet: &mut Fleet,
    servers: &Servers,
    workers: usize,
    clients: u64,
    at: Instant,
    until: Instant,
) -> anyhow::Result<StormStart> {
    fleet.pump(at, |_| Ok(false))?;
    let cpu0 = servers.cpu_seconds();
    let loadgen0 = loadgen_cpu(&fleet.pids());
    let started = Instant::now();
    let dropped_ns = unix_ns();
    for index in 0..workers {
        fleet.send(index, &WorkerCommand::Drop)?;
    }
    eprintln!("[storm] every client drops and reconnects");
    let back = fleet.pump(until, |f| Ok(f.totals().reconnected >= clients))?;
    if !back {
        eprintln!(
            "[storm] only {} of {clients} clients were back by the drain deadline",
            fleet.totals().reconnected
        );
    }
    Ok(StormStart {
        dropped_ns,
        server_cpu: cpu_since(servers, cpu0),
        loadgen_cpu: loadgen_cpu(&fleet.pids()) - loadgen0,
        secs: started.elapsed().as_secs_f64(),
    })
}
