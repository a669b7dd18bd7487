//! `rootcast-loadtest`: the load generator of issue 5. It measures rootcast's WebSocket
//! hub side by side with a raw floor (the least any server can do on this machine) and
//! nats-server, under the same clients, in the same run, so each figure can be read as a
//! ratio and the noise of a shared machine mostly cancels out.
//!
//! # Process model
//! - The **coordinator** (`rootcast-loadtest ws-idle|ws-fanout|ws-burst|ws-slow …`) pins
//!   itself to the client core, starts each target as a child pinned to the server core
//!   (`rootcast serve` with a temporary configuration, `rootcast-loadtest floor`, or
//!   `nats-server` with a WebSocket listener on a port the kernel picks), or measures one
//!   already running (`--address`). With `--server-processes K` (`servers.rs`) it starts K
//!   copies of the target for each measurement, each its own process, folder and secrets,
//!   all on the server core: one process may open 20,000 files here, so K copies hold
//!   more connections than one (at most 19,500 each; there is no broker between them).
//! - It starts the **workers** (`rootcast-loadtest worker`, the same binary; one per 8,000
//!   connections, at least 2, a multiple of K) and talks to them over their standard input
//!   and output, one JSON object per line (`wire.rs`). Worker i opens its share of the
//!   connections from source address 127.0.0.(2 + i) to server copy i % K, so neither the
//!   20,000 open files per process nor the ≈ 28,000 ephemeral ports per source address
//!   limit the load generator; the ramp is paced (`--rate`, `--concurrency` set-ups in
//!   flight).
//! - Workers report counters every 100 ms (the coordinator prints live totals once a
//!   second on standard error) and, when asked, their HDR histograms and per-publication
//!   figures, which the coordinator merges.
//! - The coordinator publishes on a fixed schedule (a publisher thread per server copy, all
//!   on the same schedule, so every subscriber gets every publication from its own copy);
//!   each payload carries its **scheduled** send time (Unix ns; every process reads the
//!   same clock), so a late publisher or a server's queue counts as latency.
//! - Every phase has a deadline and `--duration` bounds the run: then every child is
//!   killed and the program exits with status 3. Workers also exit when their standard
//!   input closes. A server (any of its copies) that dies or drops every connection ends
//!   its measurement with an error; the run goes on with the next one and exits non-zero at
//!   the end; every copy is killed when its measurement ends.
//!
//! # What is measured
//! - `ws-idle`: N authenticated, subscribed, idle connections: the server's `VmRSS` growth
//!   per connection, kernel socket memory (`/proc/net/sockstat` `TCP … mem`, slab; both
//!   ends of each loopback connection), ramp rate and set-up time.
//! - `ws-fanout`: the same, then publications to every subscriber: per-delivery latency and
//!   time to the last subscriber (p50/p90/p99/p99.9/max), deliveries per second, the
//!   server's CPU per delivery (`utime + stime` from `/proc/<pid>/stat` over the window)
//!   and the load generator's own CPU (so it is never silently the bottleneck).
//! - `ws-slow`: `ws-fanout` with large publications where every (100 / `--slow-percent`)-th
//!   client stops reading once subscribed; the figures are the other clients', plus the
//!   server's RSS and peak RSS at the end, and (rootcast) the close codes it used.
//! - With `--server-processes K`, the server's RSS, peak RSS, CPU and close codes are sums
//!   over its K processes (so per connection and per delivery, the machine's cost), and
//!   `by_server_process` gives each process's connections, open files and own RSS growth
//!   per connection; the summary labels the target "rootcast ×K".
//! - `ws-burst`: `ws-fanout` with bursts of publications sent back to back (pipelined),
//!   all carrying the burst's scheduled time.
//! - `ws-reconnect-storm` (rootcast only): `ws-fanout` on a channel with history and forced
//!   recovery; partway through, every client drops its socket at once and reconnects,
//!   subscribing with `recover` from the last offset it saw: reconnects per second, the
//!   share the server recovered, publications lost (clients × sent − distinct received) and
//!   duplicated.
//! - `whep-viewers` (`whep.rs`): R1, the relay's forwarding cost, with webrtc-rs peers
//!   that gather only loopback candidates: one WHIP publisher, N WHEP viewers in worker
//!   processes (`whep-worker`); forwarded RTP packets per server CPU-second, per-viewer
//!   loss by sequence number, time from the WHEP `POST` to the first keyframe. With
//!   `--targets rootcast,janus`, Janus's VideoRoom under the same publisher and viewers in
//!   the same run (`janus.rs`), inside a network namespace of the run's own (`netns.rs`).
//! - `meeting` (`meeting.rs`, `meeting_worker.rs`; issue 6): one live meeting with N
//!   participants (member accounts, each joined with `meeting.join` and subscribed to the
//!   meeting's state, Q&A, personal Q&A and chat channels), questions, votes and chat
//!   messages sent as RPCs by the participants on a fixed schedule: per-delivery latency to
//!   every participant, time to all, deliveries per second, server CPU per delivery, and
//!   refusals by method and code. Its own worker processes (`meeting-worker`).
//!
//! # Tests
//! `tests/loadgen.rs` runs the binary against a stand-in server with a known injected
//! delay (the reported latency must include it), against one that dies mid-run (the run
//! must end, non-zero, with a clear error and no worker left), and the reconnect storm
//! against a stand-in hub that recovers exactly (100 % recovered, nothing lost) or never
//! (the loss reported must equal what the stand-in withheld); unit tests cover the
//! spreading of workers over server copies (and the runs it refuses), the histogram merge, the protocol parsers (recovery positions included), RTP loss
//! accounting across sequence wraps, VP8 keyframe detection, the WHEP window sums, the
//! schedule and the SVG writer. `tests/meeting.rs` runs `meeting` small against the real
//! `rootcast` binary: every accepted question, vote and chat message reaches every
//! participant exactly once, and chat past the per-member limit is counted as refusals,
//! not losses. `tests/server_processes.rs` runs `ws-fanout` against two copies each of the
//! real `rootcast` and of the floor: every publication reaches every subscriber once, and
//! each copy served half the clients. No test asserts on how fast anything is.
//!
//! # How to measure
//! Build both binaries in release mode into one target folder (`cargo build --release -p
//! rootcast-loadtest --bin rootcast-loadtest` and `cargo build --release --bin rootcast`;
//! the coordinator looks for `rootcast` next to itself), keep other work off the machine,
//! use `--repeat 3` and quote medians. Results go to `--out` as `results.json`,
//! `summary.md` and SVG plots. `docs/benchmarks.md` has the commands and the figures.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

mod children;
mod coordinator;
mod dialect;
mod directive;
mod floor;
mod histogram;
mod janus;
mod meeting;
mod meeting_worker;
mod netns;
mod procfs;
mod publisher;
mod pump;
mod report;
mod rtp_stats;
mod servers;
mod svg;
mod targets;
mod webrtc_peer;
mod whep;
mod whep_worker;
mod wire;
mod worker;
mod workers;

#[derive(Parser)]
#[command(
    name = "rootcast-loadtest",
    version,
    about = "Load generator for rootcast, with a raw floor, nats-server and Janus side by side"
)]
struct Cli {
    #[command(subcommand)]
    command: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N idle, authenticated, subscribed connections: server memory per connection.
    WsIdle {
        #[command(flatten)]
        run: coordinator::RunArgs,
    },
    /// N subscribers on one channel, publications on a fixed schedule: latency, time to
    /// the last subscriber, server CPU per delivery (and the idle figures on the way).
    WsFanout {
        #[command(flatten)]
        run: coordinator::RunArgs,
        #[command(flatten)]
        fanout: coordinator::FanoutArgs,
    },
    /// Bursts of publications sent back to back to N subscribers: server CPU per delivery
    /// when many messages are queued at once (W4). The floor writes one frame per
    /// publication; it does not coalesce.
    WsBurst {
        #[command(flatten)]
        run: coordinator::RunArgs,
        #[command(flatten)]
        burst: coordinator::BurstArgs,
    },
    /// ws-fanout where a share of the subscribers stop reading once subscribed (W6): the
    /// others' latency, the server's memory, and whether every healthy client still gets
    /// every publication.
    WsSlow {
        #[command(flatten)]
        run: coordinator::RunArgs,
        #[command(flatten)]
        slow: coordinator::SlowArgs,
    },
    /// W5: N subscribers of a channel with history while publications go out; partway
    /// through, every client drops and reconnects at once, subscribing with recovery:
    /// connects per second, share recovered, publications lost. rootcast only.
    WsReconnectStorm {
        #[command(flatten)]
        run: coordinator::RunArgs,
        #[command(flatten)]
        storm: coordinator::StormArgs,
    },
    /// D1: a directive to N units that are online (time for every unit to have it) and
    /// the acknowledgement map (time from an officer's acknowledgement to the map).
    Directive {
        #[command(flatten)]
        args: directive::DirectiveArgs,
    },
    /// Issue 6: one live meeting with N participants on one node; questions, votes and
    /// chat messages as RPCs on a fixed schedule: latency to every participant,
    /// deliveries per second, server CPU per delivery, refusals.
    Meeting {
        #[command(flatten)]
        args: meeting::MeetingArgs,
    },
    /// The raw floor server: WebSocket handshake, then each frame sent to `/publish` is
    /// written to every other connection. Prints `LISTENING <address>`; exits when its
    /// standard input closes.
    Floor {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// R1: one WHIP publisher (synthetic VP8 + Opus) and N WHEP viewers (webrtc-rs, on
    /// loopback only) through `rootcast serve` (and Janus, `--targets rootcast,janus`, as
    /// root): forwarded RTP packets per server CPU-second, per-viewer loss, time to the
    /// first keyframe.
    WhepViewers {
        #[command(flatten)]
        args: whep::WhepArgs,
    },
    /// A worker process (started by the coordinator).
    #[command(hide = true)]
    Worker,
    /// A whep-viewers worker process (started by its coordinator).
    #[command(hide = true)]
    WhepWorker,
    /// A meeting worker process (started by its coordinator).
    #[command(hide = true)]
    MeetingWorker,
}

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Scenario::WsIdle { run } => coordinator::run("ws-idle", run, None),
        Scenario::WsFanout { run, fanout } => coordinator::run("ws-fanout", run, Some(fanout)),
        Scenario::WsBurst { run, burst } => coordinator::run("ws-burst", run, Some(burst.into())),
        Scenario::WsSlow { run, slow } => coordinator::run("ws-slow", run, Some(slow.into())),
        Scenario::WsReconnectStorm { run, storm } => {
            coordinator::run("ws-reconnect-storm", run, Some(storm.into()))
        }
        Scenario::Directive { args } => directive::run(args),
        Scenario::Meeting { args } => meeting::run(args),
        Scenario::Floor { listen } => floor::run(listen),
        Scenario::WhepViewers { args } => whep::run(args),
        Scenario::Worker => worker::run(),
        Scenario::WhepWorker => whep_worker::run(),
        Scenario::MeetingWorker => meeting_worker::run(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            children::kill_all();
            eprintln!("rootcast-loadtest: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
