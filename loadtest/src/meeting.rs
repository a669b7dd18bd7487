//! The `meeting` scenario (issue 6): one live meeting with N participants on one node,
//! questions, votes and (optionally) chat messages on a fixed schedule, delivered to every
//! participant.
//!
//! Per participant count and round:
//! 1. Start `rootcast serve` (pinned to the server core) with its store in a file; open
//!    that store to create an administrator and N member accounts without passwords, spread
//!    over the demo organisation's grassroots units. (No password: argon2 would cost
//!    minutes for 5,000 accounts and logging in is not what is measured. Each participant's
//!    connection token is signed with the server's key and carries the claims a login's
//!    token has: `sub`, `exp`, the unit's inbox in `channels`, `info`.)
//! 2. The administrator logs in over REST, schedules a meeting for the whole organisation
//!    (`POST /api/v1/meetings`, target the root's subtree) and takes it live (`POST
//!    /api/v1/meetings/{id}/live`).
//! 3. K workers (`meeting_worker.rs`, pinned to the client core, worker i from source
//!    address 127.0.0.(2 + i)) connect the participants at `--join-rate`: `connect`, `rpc
//!    meeting.join`, then `subscribe` to the four channels the join returns (`meeting:`,
//!    `qa:`, the personal `qa:…#<account>`, `meeting-chat:`) with their tokens.
//! 4. Once all are ready: `--questions-per-sec` questions (`rpc qa.ask`), `--votes-per-sec`
//!    votes (`rpc qa.vote`) and `--chats-per-sec` chat messages (`rpc chat.post`) for
//!    `--run-secs`, each sent at its scheduled time by the participant whose turn it is,
//!    over that participant's own connection. Askers and posters go round the
//!    participants, so each member sends one question every N ÷ (questions per second)
//!    seconds: with the defaults (5,000, 200/s) one every 25 s, far inside the per
//!    connection command limit (100/s) and, for chat, the per-member bucket (5, one more
//!    every 2 s) as long as chats per second ≤ N ÷ 2. Refusals are counted by method, code
//!    and message all the same.
//! 5. Every participant records each first copy of every question, vote and chat message
//!    (latency from its scheduled send), duplicates, and copies of anything unexpected; the
//!    window ends when every participant has every accepted event or `--drain-secs` after
//!    the last scheduled one. Server CPU (`/proc/<pid>/stat`) over the window ÷ deliveries.
//!
//! Invariants: every phase has a deadline and `--duration` bounds the run (then every child
//! is killed and the program exits with 3); expected deliveries are (events the server
//! accepted) × (participants ready at the start), so a refusal is never counted as a loss.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

use rootcast_hub::auth::{NewAccount, Role};
use rootcast_hub::store::{Store, StoreOptions};

use crate::children;
use crate::coordinator::start_run;
use crate::dialect::Kind;
use crate::histogram::{self, Quantiles};
use crate::meeting_worker::{
    Action, Counters, JoinPlan, MeetingCommand, MeetingEvent, MeetingWorkerReport, Participant,
    Schedule,
};
use crate::procfs;
use crate::pump::{self, Events, Fleet as _};
use crate::report;
use crate::targets::{Launch, Target, parse_server_setting};
use crate::worker::unix_ns;
use crate::workers::{self, WorkerProcess};

const STORE_FILE: &str = "rootcast.db";

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct MeetingArgs {
    /// Participants; a list is a sweep: `1000,2500,5000`.
    #[arg(long, value_delimiter = ',', default_value = "5000")]
    pub participants: Vec<usize>,
    /// Questions asked per second, all participants together.
    #[arg(long, default_value_t = 200.0)]
    pub questions_per_sec: f64,
    /// Votes per second (each on its own earlier question; at most one per question, so no
    /// more than questions per second).
    #[arg(long, default_value_t = 50.0)]
    pub votes_per_sec: f64,
    /// Chat messages per second (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub chats_per_sec: f64,
    /// How long questions, votes and messages are sent, seconds.
    #[arg(long, default_value_t = 60)]
    pub run_secs: u64,
    /// Length of a question or chat message, bytes.
    #[arg(long, default_value_t = 120)]
    pub body_bytes: usize,
    /// How long after the last scheduled event deliveries are waited for.
    #[arg(long, default_value_t = 15)]
    pub drain_secs: u64,
    /// Worker processes (0: one per 2,500 participants, at least 2).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Participants joined per second, all workers together.
    #[arg(long, default_value_t = 1000.0)]
    pub join_rate: f64,
    /// Most joins in progress at once, per worker.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 30)]
    pub connect_timeout_secs: u64,
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Hard bound on the whole run, seconds.
    #[arg(long, default_value_t = 900)]
    pub duration: u64,
    #[arg(long, default_value = "loadtest-results-meeting")]
    pub out: PathBuf,
    #[arg(long)]
    pub no_pin: bool,
    #[arg(long, default_value_t = 0)]
    pub server_core: u32,
    /// The core of the coordinator and every worker.
    #[arg(long, default_value_t = 1)]
    pub client_core: u32,
    /// The `rootcast` binary (default: next to this one).
    #[arg(long)]
    pub rootcast_bin: Option<PathBuf>,
    /// A server setting, `KEY=VALUE` (repeatable), e.g. `client.write_delay=25ms`.
    #[arg(long = "server-set", value_name = "KEY=VALUE", value_parser = parse_server_setting)]
    pub server_set: Vec<(String, String)>,
    #[arg(long)]
    pub verbose: bool,
}

/// The figures of one kind of event.
#[derive(Debug, Default, Serialize)]
pub struct ActionFigures {
    pub method: &'static str,
    pub scheduled: u32,
    pub sent: u64,
    pub accepted: u64,
    pub refused: u64,
    /// How often one member sends one, seconds (participants ÷ rate).
    pub per_member_every_secs: f64,
    /// accepted × participants ready.
    pub expected: u64,
    /// First copies received.
    pub deliveries: u64,
    pub missing: u64,
    /// Copies of events the server did not accept (must be 0).
    pub unaccepted_copies: u64,
    /// Receipt − scheduled send, µs, every first copy.
    pub latency_us: Quantiles,
    /// Per accepted event: the last participant's receipt − scheduled send, µs (events every
    /// participant got).
    pub time_to_all_us: Quantiles,
    /// Accepted events that did not reach every participant.
    pub incomplete: u64,
    /// Scheduled send → the RPC's reply to the sender, µs.
    pub answered_us: Quantiles,
}

#[derive(Debug, Default, Serialize)]
pub struct MeetingMeasurement {
    pub participants: usize,
    pub round: usize,
    pub workers: usize,
    pub error: Option<String>,
    pub meeting: String,
    /// Accounts created, meeting scheduled and live, seconds.
    pub prepare_secs: f64,
    pub ready: u64,
    pub failed: u64,
    pub join_secs: f64,
    pub joins_per_sec: f64,
    /// `connect()` → subscribed to the four channels, µs.
    pub join_us: Quantiles,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_ready_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
    pub server_rss_peak_kib: Option<u64>,
    pub actions: Vec<ActionFigures>,
    /// Refused RPCs by method, code and message.
    pub refusals: BTreeMap<String, u64>,
    /// Set-up failures and ended connections, by reason.
    pub errors: BTreeMap<String, u64>,
    /// rootcast's own count of connections it closed, by code.
    pub server_disconnects: Option<BTreeMap<String, u64>>,
    pub closed: u64,
    /// All kinds together.
    pub expected: u64,
    pub deliveries: u64,
    pub missing: u64,
    pub duplicates: u64,
    /// Pushes that carried no event of the run, or one outside it.
    pub unexpected: u64,
    /// The askers' copies on their personal channel.
    pub personal_deliveries: u64,
    pub other_pushes: u64,
    pub votes_waited: u64,
    pub votes_unsent: u64,
    pub unsent_offline: u64,
    /// Every delivery of every kind, µs.
    pub latency_us: Quantiles,
    pub latency_curve: Vec<(f64, u64)>,
    pub window_secs: f64,
    /// Deliveries ÷ (last receipt − first scheduled send).
    pub deliveries_per_sec: f64,
    pub server_cpu_secs: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    pub server_cpu_us_per_delivery: Option<f64>,
    pub loadgen_cpu_secs: f64,
    pub loadgen_cpu_percent: f64,
    pub loadgen_cpu_us_per_delivery: f64,
    pub other_cpu_percent: f64,
    pub load_average: String,
}

pub fn run(args: MeetingArgs) -> anyhow::Result<()> {
    if args.participants.is_empty() || args.participants.contains(&0) {
        bail!("--participants: at least one count, all > 0");
    }
    if args.votes_per_sec > args.questions_per_sec {
        bail!(
            "--votes-per-sec must not exceed --questions-per-sec (each vote takes its own question)"
        );
    }
    if args.questions_per_sec < 0.0 || args.chats_per_sec < 0.0 || args.votes_per_sec < 0.0 {
        bail!("rates must not be negative");
    }
    if !(24..=500).contains(&args.body_bytes) {
        bail!("--body-bytes: 24 to 500 (the marker needs 24; chat allows 500)");
    }
    if args.workers > 250 {
        bail!("--workers: at most 250 (source addresses 127.0.0.2 to 127.0.0.251)");
    }
    let (pinned, pinning) = start_run(
        "rootcast-loadtest meeting",
        "coordinator, workers",
        (!args.no_pin).then_some((args.server_core, args.client_core)),
        args.duration,
    );
    let mut launch = Launch::rootcast(
        pinned.then_some(args.server_core),
        args.rootcast_bin.as_deref(),
        args.verbose,
    )?;
    launch.server_settings = args.server_set.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for round in 0..args.repeat {
        for &participants in &args.participants {
            let workers = match args.workers {
                0 => participants.div_ceil(2500).max(2),
                n => n,
            }
            .min(participants);
            let mut m = MeetingMeasurement {
                participants,
                round,
                workers,
                ..Default::default()
            };
            eprintln!(
                "== meeting {participants} (round {}): {workers} workers",
                round + 1
            );
            if let Err(error) = measure(&mut m, &args, &launch, pinned, &runtime) {
                m.error = Some(format!("{error:#}"));
            }
            eprintln!("{}", one_line(&m));
            results.push(m);
        }
    }
    let summary = write(&args, &pinning, &results)?;
    println!("{summary}");
    eprintln!(
        "wrote {}/results.json and {}/summary.md",
        args.out.display(),
        args.out.display()
    );
    let failed: Vec<String> = results
        .iter()
        .filter_map(|m| {
            Some(format!(
                "{} participants: {}",
                m.participants,
                m.error.as_ref()?
            ))
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} measurements failed:\n  {}",
            failed.len(),
            results.len(),
            failed.join("\n  ")
        );
    }
    Ok(())
}

fn measure(
    m: &mut MeetingMeasurement,
    args: &MeetingArgs,
    launch: &Launch,
    pinned: bool,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let target = Target::start_with_store(Kind::Rootcast, launch, Some(STORE_FILE))?;
    let pid = target.pid.context("the server's pid")?;
    let secret = target.hmac_secret.clone().context("the server's key")?;
    let started = Instant::now();
    let (admin, participants) = runtime.block_on(prepare(&target, m.participants))?;
    m.meeting = open_meeting(target.address, &admin)?;
    m.prepare_secs = round2(started.elapsed().as_secs_f64());
    eprintln!(
        "meeting {} is live; {} member accounts made in {} s",
        m.meeting, m.participants, m.prepare_secs
    );
    m.server_rss_before_kib = Some(procfs::rss_kib(pid).0);
    let mut fleet = MeetingFleet::spawn(m.workers, pinned.then_some(args.client_core), pid)?;
    let outcome = drive(m, args, &target, &secret, participants, &mut fleet);
    fleet.stop();
    drop(target);
    outcome
}

/// Creates the administrator and `n` members (no password) in the server's store, spread
/// over the grassroots units; returns the administrator's token and the participants.
async fn prepare(target: &Target, n: usize) -> anyhow::Result<(String, Vec<Participant>)> {
    let path = target.store_path(STORE_FILE).context("a store file")?;
    let store = Store::open(&StoreOptions::new(format!("sqlite://{}", path.display()))).await?;
    let units = store.all_units().await?;
    let stations: Vec<String> = units
        .iter()
        .filter(|u| u.level.as_str() == "unit")
        .map(|u| u.id.clone())
        .collect();
    if stations.is_empty() {
        bail!("the organisation has no grassroots units");
    }
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
            0,
        )
        .await?;
    let mut participants = Vec::with_capacity(n);
    for i in 0..n {
        let unit = stations[i % stations.len()].clone();
        let username = format!("lt-member-{i}");
        let account = store
            .create_account(
                &NewAccount {
                    username: username.clone(),
                    display_name: format!("participant {i}"),
                    role: Role::Member,
                    unit: Some(unit.clone()),
                },
                None,
                0,
            )
            .await?;
        participants.push(Participant {
            index: i as u32,
            account: account.id,
            username: account.username,
            unit,
        });
    }
    store.close().await;
    let (status, reply) = rest(
        target.address,
        "POST",
        "/api/v1/login",
        None,
        Some(json!({"username": "loadtest-admin", "password": admin_password})),
    )?;
    if status != 200 {
        bail!("administrator login: {status} {reply}");
    }
    let token = reply["token"].as_str().context("a token")?.to_owned();
    Ok((token, participants))
}

/// Schedules a meeting for the whole organisation and takes it live; returns its id.
fn open_meeting(address: SocketAddr, admin: &str) -> anyhow::Result<String> {
    let (status, units) = rest(address, "GET", "/api/v1/org/units", Some(admin), None)?;
    if status != 200 {
        bail!("units: {status} {units}");
    }
    let root = units
        .as_array()
        .and_then(|all| all.iter().find(|u| u["parent"].is_null()))
        .and_then(|u| u["id"].as_str())
        .context("the organisation's root")?
        .to_owned();
    let now_ms = unix_ns() / 1_000_000;
    let (status, scheduled) = rest(
        address,
        "POST",
        "/api/v1/meetings",
        Some(admin),
        Some(json!({
            "title": "rootcast-loadtest meeting",
            "agenda": "questions, votes and chat under load",
            "starts_at": now_ms,
            "target": {"subtrees": [root]},
        })),
    )?;
    if status != 201 {
        bail!("scheduling the meeting: {status} {scheduled}");
    }
    let id = scheduled["meeting"]["id"]
        .as_str()
        .context("a meeting id")?
        .to_owned();
    let (status, live) = rest(
        address,
        "POST",
        &format!("/api/v1/meetings/{id}/live"),
        Some(admin),
        None,
    )?;
    if status != 200 {
        bail!("going live: {status} {live}");
    }
    Ok(id)
}

/// A minimal blocking HTTP/1.1 request (`Connection: close`): (status, JSON body or null).
fn rest(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
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
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("an HTTP status")?;
    let (_, body) = text.split_once("\r\n\r\n").context("an HTTP response")?;
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

fn drive(
    m: &mut MeetingMeasurement,
    args: &MeetingArgs,
    target: &Target,
    secret: &str,
    participants: Vec<Participant>,
    fleet: &mut MeetingFleet,
) -> anyhow::Result<()> {
    let pid = target.pid.context("the server's pid")?;
    let n = participants.len();
    let k = m.workers;
    // Join.
    let join_started = Instant::now();
    let mut rest_of = participants.into_iter();
    for index in 0..k {
        let count = n / k + usize::from(index < n % k);
        let plan = JoinPlan {
            server: target.address,
            source: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + index as u8)),
            meeting: m.meeting.clone(),
            hmac_secret: secret.to_owned(),
            participants: rest_of.by_ref().take(count).collect(),
            rate: args.join_rate / k as f64,
            concurrency: args.concurrency,
            connect_timeout_ms: args.connect_timeout_secs * 1000,
        };
        fleet.send(index, &MeetingCommand::Join(plan))?;
    }
    let join_limit = Duration::from_secs_f64(n as f64 / args.join_rate.max(1.0))
        + Duration::from_secs(args.connect_timeout_secs + 30);
    if !fleet.pump(Instant::now() + join_limit, |f| {
        Ok(f.ready.iter().all(|r| *r))
    })? {
        bail!(
            "the participants did not join within {} s",
            join_limit.as_secs()
        );
    }
    m.join_secs = round2(join_started.elapsed().as_secs_f64());
    let joined = fleet.totals();
    m.ready = joined.ready;
    m.failed = joined.failed;
    m.joins_per_sec = (joined.ready as f64 / m.join_secs.max(1e-3)).round();
    if joined.ready == 0 {
        // Say why: the workers' reasons, by count.
        let reports = fleet.reports(Instant::now() + Duration::from_secs(15))?;
        for report in &reports {
            for (reason, n) in &report.errors {
                *m.errors.entry(reason.clone()).or_default() += n;
            }
        }
        bail!(
            "no participant could join ({} failed): {:?}",
            joined.failed,
            m.errors
        );
    }
    fleet.pump(Instant::now() + Duration::from_secs(1), |_| Ok(false))?;
    m.server_rss_ready_kib = Some(procfs::rss_kib(pid).0);

    // The schedule.
    let secs = args.run_secs as f64;
    let interval = |rate: f64| {
        if rate > 0.0 { (1e9 / rate) as u64 } else { 0 }
    };
    let questions = (args.questions_per_sec * secs).round() as u32;
    let mut schedule = Schedule {
        start_ns: unix_ns() + 500_000_000,
        participants: n as u32,
        questions,
        question_interval_ns: interval(args.questions_per_sec),
        votes: ((args.votes_per_sec * secs).round() as u32).min(questions),
        vote_offset_ns: 1_000_000_000,
        vote_interval_ns: interval(args.votes_per_sec),
        chats: (args.chats_per_sec * secs).round() as u32,
        chat_interval_ns: interval(args.chats_per_sec),
        body_bytes: args.body_bytes,
        deadline_ns: 0,
    };
    let last_scheduled = Action::ALL
        .iter()
        .filter(|&&a| schedule.count(a) > 0)
        .map(|&a| schedule.at(a, schedule.count(a) - 1))
        .max()
        .unwrap_or(schedule.start_ns);
    schedule.deadline_ns = last_scheduled + args.drain_secs * 1_000_000_000;
    let scheduled: [u64; 3] = Action::ALL.map(|a| u64::from(schedule.count(a)));
    eprintln!(
        "sending {} questions, {} votes, {} chat messages over {} s to {} participants",
        scheduled[0], scheduled[1], scheduled[2], args.run_secs, joined.ready
    );

    let workers = fleet.pids();
    let server_cpu0 = procfs::cpu_seconds(pid);
    let loadgen0 = loadgen_cpu(&workers);
    let busy0 = procfs::machine_busy_seconds();
    let load_before = procfs::load_average();
    let window_started = Instant::now();
    for index in 0..k {
        fleet.send(index, &MeetingCommand::Start(schedule))?;
    }
    let until =
        Instant::now() + Duration::from_nanos(schedule.deadline_ns.saturating_sub(unix_ns()));
    let ready = joined.ready;
    fleet.pump(until, |f| {
        let t = f.totals();
        let answered = (0..3).all(|a| t.accepted[a] + t.refused[a] >= scheduled[a]);
        let expected: u64 = t.accepted.iter().sum::<u64>() * ready;
        Ok(unix_ns() > last_scheduled && answered && t.deliveries >= expected)
    })?;
    let window_secs = window_started.elapsed().as_secs_f64();
    let server_cpu = procfs::cpu_seconds(pid) - server_cpu0;
    let loadgen = loadgen_cpu(&workers) - loadgen0;
    let other = procfs::machine_busy_seconds() - busy0 - server_cpu - loadgen;
    let (rss_after, rss_peak) = procfs::rss_kib(pid);
    m.server_rss_after_kib = Some(rss_after);
    m.server_rss_peak_kib = Some(rss_peak);
    m.server_disconnects = target.rootcast_disconnects();
    m.load_average = format!("{load_before} → {}", procfs::load_average());

    // Merge the workers' figures.
    let reports = fleet.reports(Instant::now() + Duration::from_secs(15))?;
    merge(m, &schedule, &reports, args);
    m.window_secs = round2(window_secs);
    let spread_secs = reports
        .iter()
        .map(|r| r.last_receipt_ns)
        .max()
        .unwrap_or(0)
        .saturating_sub(schedule.start_ns) as f64
        / 1e9;
    m.deliveries_per_sec = if spread_secs > 0.0 {
        (m.deliveries as f64 / spread_secs).round()
    } else {
        0.0
    };
    let per_delivery = |cpu: f64| {
        if m.deliveries == 0 {
            0.0
        } else {
            round2(cpu * 1e6 / m.deliveries as f64)
        }
    };
    m.server_cpu_secs = Some(round2(server_cpu));
    m.server_cpu_percent = Some(round2(100.0 * server_cpu / window_secs));
    m.server_cpu_us_per_delivery = Some(per_delivery(server_cpu));
    m.loadgen_cpu_secs = round2(loadgen);
    m.loadgen_cpu_percent = round2(100.0 * loadgen / window_secs);
    m.loadgen_cpu_us_per_delivery = per_delivery(loadgen);
    m.other_cpu_percent = round2(100.0 * other.max(0.0) / window_secs);
    Ok(())
}

/// Adds the workers' reports into the measurement.
fn merge(
    m: &mut MeetingMeasurement,
    schedule: &Schedule,
    reports: &[MeetingWorkerReport],
    args: &MeetingArgs,
) {
    let ready = m.ready;
    let mut totals = Counters::default();
    let mut setup = histogram::new();
    let mut all = histogram::new();
    for report in reports {
        totals += report.counters;
        histogram::merge(&mut setup, &report.setup_us);
        for (reason, n) in &report.errors {
            *m.errors.entry(reason.clone()).or_default() += n;
        }
        for (reason, n) in &report.refusals {
            *m.refusals.entry(reason.clone()).or_default() += n;
        }
        m.unexpected += report.unexpected;
        m.other_pushes += report.other_pushes;
        m.votes_waited += report.votes_waited;
        m.votes_unsent += report.votes_unsent;
        m.unsent_offline += report.unsent_offline;
    }
    m.join_us = Quantiles::of(&setup);
    m.closed = totals.closed;
    m.duplicates = totals.duplicates;
    m.personal_deliveries = totals.personal;
    let rates = [
        args.questions_per_sec,
        args.votes_per_sec,
        args.chats_per_sec,
    ];
    for action in Action::ALL {
        let a = action.idx();
        let count = schedule.count(action) as usize;
        let mut accepted = vec![false; count];
        let mut receipts = vec![0u64; count];
        let mut last = vec![0u64; count];
        let mut latency = histogram::new();
        let mut answered = histogram::new();
        for report in reports {
            for &i in report.accepted.get(a).into_iter().flatten() {
                if let Some(slot) = accepted.get_mut(i as usize) {
                    *slot = true;
                }
            }
            for (i, n) in report.receipts.get(a).into_iter().flatten().enumerate() {
                if i < count {
                    receipts[i] += u64::from(*n);
                }
            }
            for (i, ns) in report.last_ns.get(a).into_iter().flatten().enumerate() {
                if i < count {
                    last[i] = last[i].max(*ns);
                }
            }
            if let Some(h) = report.latency_us.get(a) {
                histogram::merge(&mut latency, h);
                histogram::merge(&mut all, h);
            }
            if let Some(h) = report.answered_us.get(a) {
                histogram::merge(&mut answered, h);
            }
        }
        let accepted_count = accepted.iter().filter(|x| **x).count() as u64;
        let mut missing = 0;
        let mut unaccepted = 0;
        let mut incomplete = 0;
        let mut to_all = Vec::new();
        for i in 0..count {
            if accepted[i] {
                missing += ready.saturating_sub(receipts[i]);
                if receipts[i] >= ready {
                    to_all.push(last[i] / 1000);
                } else {
                    incomplete += 1;
                }
            } else {
                unaccepted += receipts[i];
            }
        }
        let figures = ActionFigures {
            method: action.method(),
            scheduled: count as u32,
            sent: totals.sent[a],
            accepted: accepted_count,
            refused: totals.refused[a],
            per_member_every_secs: if rates[a] > 0.0 {
                round2(m.participants as f64 / rates[a])
            } else {
                0.0
            },
            expected: accepted_count * ready,
            deliveries: receipts.iter().sum(),
            missing,
            unaccepted_copies: unaccepted,
            latency_us: Quantiles::of(&latency),
            time_to_all_us: Quantiles::of_sample(&to_all),
            incomplete,
            answered_us: Quantiles::of(&answered),
        };
        m.expected += figures.expected;
        m.deliveries += figures.deliveries;
        m.missing += figures.missing;
        m.actions.push(figures);
    }
    m.latency_us = Quantiles::of(&all);
    m.latency_curve = histogram::percentile_curve(&all);
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// CPU seconds of the load generator: this process and its workers.
fn loadgen_cpu(workers: &[u32]) -> f64 {
    procfs::cpu_seconds(std::process::id())
        + workers.iter().map(|&p| procfs::cpu_seconds(p)).sum::<f64>()
}

/// The participants' worker processes and what they last said.
struct MeetingFleet {
    workers: Vec<WorkerProcess>,
    events: Events<pump::Channel<MeetingEvent>>,
    counters: Vec<Counters>,
    ready: Vec<bool>,
    reports: Vec<Option<MeetingWorkerReport>>,
    last_deliveries: u64,
}

impl MeetingFleet {
    fn spawn(count: usize, core: Option<u32>, server_pid: u32) -> anyhow::Result<MeetingFleet> {
        let (tx, events) = mpsc::channel();
        let workers = workers::spawn(
            count,
            core,
            "meeting-worker",
            "meeting worker",
            move |index, event| tx.send((index, event)).is_ok(),
        )?;
        for worker in &workers {
            eprintln!(
                "meeting worker {}: pid {}, source 127.0.0.{}",
                worker.index(),
                worker.pid,
                2 + worker.index()
            );
        }
        Ok(MeetingFleet {
            counters: vec![Counters::default(); count],
            ready: vec![false; count],
            reports: (0..count).map(|_| None).collect(),
            events: Events::new(events, "meeting worker", &workers, vec![server_pid]),
            workers,
            last_deliveries: 0,
        })
    }

    fn send(&mut self, index: usize, command: &MeetingCommand) -> anyhow::Result<()> {
        self.workers[index].send(command)
    }

    fn pids(&self) -> Vec<u32> {
        workers::pids(&self.workers)
    }

    fn totals(&self) -> Counters {
        let mut t = Counters::default();
        for c in &self.counters {
            t += *c;
        }
        t
    }

    /// Asks every worker for its report and waits for all of them.
    fn reports(&mut self, until: Instant) -> anyhow::Result<Vec<MeetingWorkerReport>> {
        self.reports.iter_mut().for_each(|r| *r = None);
        for index in 0..self.workers.len() {
            self.send(index, &MeetingCommand::Report)?;
        }
        if !self.pump(until, |f| Ok(f.reports.iter().all(Option::is_some)))? {
            bail!("the meeting workers did not report within 15 s");
        }
        Ok(self.reports.iter_mut().filter_map(Option::take).collect())
    }

    /// Asks every worker to stop, waits up to 3 s each, kills what is left.
    fn stop(mut self) {
        for index in 0..self.workers.len() {
            let _ = self.send(index, &MeetingCommand::Stop);
        }
        for pid in self.pids() {
            children::stop(pid, Duration::from_secs(3));
        }
    }
}

impl pump::Fleet for MeetingFleet {
    type Event = MeetingEvent;
    type Channel = pump::Channel<MeetingEvent>;

    fn events(&mut self) -> &mut Events<Self::Channel> {
        &mut self.events
    }

    fn apply(&mut self, index: usize, event: MeetingEvent) {
        match event {
            MeetingEvent::Progress(c) => self.counters[index] = c,
            MeetingEvent::Ready(c) => {
                self.counters[index] = c;
                self.ready[index] = true;
            }
            MeetingEvent::Report(report) => {
                self.counters[index] = report.counters;
                self.reports[index] = Some(*report);
            }
        }
    }

    fn check_connections(&self) -> anyhow::Result<()> {
        let t = self.totals();
        if t.ready > 0 && t.closed >= t.ready {
            bail!(
                "the server closed all {} participants' connections",
                t.ready
            );
        }
        Ok(())
    }

    fn progress_line(&mut self, elapsed_secs: f64, since_last_secs: f64) -> String {
        let t = self.totals();
        let rate = (t.deliveries - self.last_deliveries) as f64 / since_last_secs;
        self.last_deliveries = t.deliveries;
        format!(
            "[meeting] {:>5.1} s  ready {}  failed {}  closed {}  asked {}/{}  voted {}/{}  chat {}/{}  refused {}  deliveries/s {:.0}  deliveries {}",
            elapsed_secs,
            t.ready,
            t.failed,
            t.closed,
            t.accepted[0],
            t.sent[0],
            t.accepted[1],
            t.sent[1],
            t.accepted[2],
            t.sent[2],
            t.refused.iter().sum::<u64>(),
            rate,
            t.deliveries
        )
    }
}

fn ms(us: u64) -> f64 {
    round2(us as f64 / 1000.0)
}

fn one_line(m: &MeetingMeasurement) -> String {
    let mut line = format!(
        "-> meeting {} (round {}): ready {} failed {}",
        m.participants,
        m.round + 1,
        m.ready,
        m.failed
    );
    for a in &m.actions {
        line.push_str(&format!(
            "; {} {}/{} accepted ({} refused), latency p50 {} p99 {} max {} ms",
            a.method,
            a.accepted,
            a.scheduled,
            a.refused,
            ms(a.latency_us.p50),
            ms(a.latency_us.p99),
            ms(a.latency_us.max)
        ));
    }
    if !m.actions.is_empty() {
        line.push_str(&format!(
            "; {}/{} deliveries ({} missing, {} duplicates), {:.0}/s, server CPU {} µs/delivery ({} % of its core), load generator {} % of a core",
            m.deliveries,
            m.expected,
            m.missing,
            m.duplicates,
            m.deliveries_per_sec,
            m.server_cpu_us_per_delivery
                .map_or("?".to_owned(), |v| v.to_string()),
            m.server_cpu_percent.map_or("?".to_owned(), |v| v.to_string()),
            m.loadgen_cpu_percent
        ));
    }
    if m.closed > 0 {
        line.push_str(&format!("; {} connections closed", m.closed));
    }
    if let Some(codes) = &m.server_disconnects
        && !codes.is_empty()
    {
        line.push_str(&format!("; the server closed {codes:?} (by code)"));
    }
    if let Some(error) = &m.error {
        line.push_str(&format!(" FAILED: {error}"));
    }
    line
}

/// Writes `results.json` and `summary.md` under `--out`; returns the summary.
fn write(
    args: &MeetingArgs,
    pinning: &str,
    results: &[MeetingMeasurement],
) -> anyhow::Result<String> {
    std::fs::create_dir_all(&args.out)?;
    let json = json!({
        "scenario": "meeting",
        "machine": report::machine(),
        "pinning": pinning,
        "args": args,
        "measurements": results,
    });
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    let mut s = String::new();
    s.push_str("# meeting (issue 6)\n\n");
    s.push_str(&format!(
        "{pinning}. {} questions/s, {} votes/s, {} chat messages/s for {} s; bodies of {} bytes. Latency from each event's scheduled send to each participant's receipt. Every round; every figure in results.json.\n\n",
        args.questions_per_sec, args.votes_per_sec, args.chats_per_sec, args.run_secs, args.body_bytes
    ));
    s.push_str("| participants | round | ready | deliveries (of expected) | missing / dup. | deliveries/s | latency p50 / p90 / p99 / p99.9 / max (ms) | server CPU µs/delivery (% core) | load gen. % core | other % | refused | closed | load average |\n");
    s.push_str("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for m in results {
        if let Some(error) = &m.error {
            s.push_str(&format!(
                "| {} | {} | {} | FAILED: {} |||||||||\n",
                m.participants,
                m.round + 1,
                m.ready,
                error.replace('|', "/").replace('\n', " ")
            ));
            continue;
        }
        let l = &m.latency_us;
        s.push_str(&format!(
            "| {} | {} | {} | {} ({}) | {} / {} | {:.0} | {} / {} / {} / {} / {} | {} ({}) | {} | {} | {} | {} | {} |\n",
            m.participants,
            m.round + 1,
            m.ready,
            m.deliveries,
            m.expected,
            m.missing,
            m.duplicates,
            m.deliveries_per_sec,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            m.server_cpu_us_per_delivery.unwrap_or(0.0),
            m.server_cpu_percent.unwrap_or(0.0),
            m.loadgen_cpu_percent,
            m.other_cpu_percent,
            m.refusals.values().sum::<u64>(),
            m.closed,
            m.load_average
        ));
    }
    s.push_str("\nPer kind of event:\n\n| participants | round | method | accepted / scheduled | refused | every member every (s) | latency p50 / p99 / max (ms) | time to all p50 / p99 / max (ms) | incomplete | reply to sender p50 / p99 (ms) |\n| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for m in results.iter().filter(|m| m.error.is_none()) {
        for a in m.actions.iter().filter(|a| a.scheduled > 0) {
            s.push_str(&format!(
                "| {} | {} | {} | {} / {} | {} | {} | {} / {} / {} | {} / {} / {} | {} | {} / {} |\n",
                m.participants,
                m.round + 1,
                a.method,
                a.accepted,
                a.scheduled,
                a.refused,
                a.per_member_every_secs,
                ms(a.latency_us.p50),
                ms(a.latency_us.p99),
                ms(a.latency_us.max),
                ms(a.time_to_all_us.p50),
                ms(a.time_to_all_us.p99),
                ms(a.time_to_all_us.max),
                a.incomplete,
                ms(a.answered_us.p50),
                ms(a.answered_us.p99),
            ));
        }
    }
    for m in results {
        if !m.refusals.is_empty() {
            s.push_str(&format!(
                "\n{} participants, round {}: refused {:?}\n",
                m.participants,
                m.round + 1,
                m.refusals
            ));
        }
        if !m.errors.is_empty() {
            s.push_str(&format!(
                "\n{} participants, round {}: errors {:?}; server closed {:?}\n",
                m.participants,
                m.round + 1,
                m.errors,
                m.server_disconnects
            ));
        }
    }
    std::fs::write(args.out.join("summary.md"), &s)?;
    Ok(s)
}
