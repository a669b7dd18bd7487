//! A `meeting` worker process (`rootcast-loadtest meeting-worker`, started by the
//! coordinator in `meeting.rs`): it connects its share of the meeting's participants from
//! its own source address, each as a real participant would (connection token, `rpc
//! meeting.join`, then `subscribe` to the meeting, Q&A, personal Q&A and chat channels with
//! the tokens the join returned), and, once told to start, sends its participants' share
//! of the run's questions, votes and chat messages as RPCs over their own connections at
//! their scheduled times. Every participant records each delivery it receives.
//!
//! # What a delivery is
//! Every question body and chat text starts with `lt q <k> <scheduled ns>` (`lt c …` for
//! chat). A push on `qa:<meeting>` whose question has 0 votes is the delivery of question
//! k; one with 1 vote is the delivery of vote k (vote k is the only vote question k ever
//! gets, so the pair is unambiguous); its scheduled time comes from the [`Schedule`]. A
//! participant's first copy of an event counts (latency = receipt − scheduled send),
//! further copies are duplicates. Pushes on the personal channel (`qa:<meeting>#<account>`,
//! the asker's own copy) are counted apart.
//!
//! Invariants: the schedule is the same in every process (a pure function of
//! [`Schedule`]), so each event is sent by exactly one participant of exactly one worker;
//! the worker exits when told to stop or when its standard input closes.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use memchr::memmem;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::histogram::{self, Encoded};
use crate::worker::unix_ns;

/// Coordinator → worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum MeetingCommand {
    /// Connect and join these participants.
    Join(JoinPlan),
    /// Send this worker's share of the schedule.
    Start(Schedule),
    Report,
    Stop,
}

/// One participant: a member account of a unit in the meeting's audience.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Participant {
    /// Its place in the run (0..N): decides which events it sends.
    pub index: u32,
    pub account: String,
    pub username: String,
    pub unit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinPlan {
    pub server: SocketAddr,
    pub source: IpAddr,
    pub meeting: String,
    /// Signs the participants' connection tokens, with the claims a login's token has.
    pub hmac_secret: String,
    pub participants: Vec<Participant>,
    /// Participants joined per second by this worker.
    pub rate: f64,
    pub concurrency: usize,
    pub connect_timeout_ms: u64,
}

/// What is sent when, and by whom: the same in every process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Unix ns of question 0 and chat message 0.
    pub start_ns: u64,
    pub participants: u32,
    pub questions: u32,
    pub question_interval_ns: u64,
    /// Vote k goes to question k, `vote_offset_ns` + k × `vote_interval_ns` after the
    /// start (so at least `vote_offset_ns` after its question when votes are no more
    /// frequent than questions).
    pub votes: u32,
    pub vote_offset_ns: u64,
    pub vote_interval_ns: u64,
    pub chats: u32,
    pub chat_interval_ns: u64,
    /// Length of a question body or chat text.
    pub body_bytes: usize,
    /// A vote whose question this worker has not seen by then is not sent.
    pub deadline_ns: u64,
}

/// What a participant does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Ask,
    Vote,
    Chat,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Ask, Action::Vote, Action::Chat];

    pub fn idx(self) -> usize {
        self as usize
    }

    /// The RPC method.
    pub fn method(self) -> &'static str {
        match self {
            Action::Ask => "qa.ask",
            Action::Vote => "qa.vote",
            Action::Chat => "chat.post",
        }
    }
}

impl Schedule {
    pub fn count(&self, action: Action) -> u32 {
        match action {
            Action::Ask => self.questions,
            Action::Vote => self.votes,
            Action::Chat => self.chats,
        }
    }

    /// The scheduled send time of event `i`, Unix ns.
    pub fn at(&self, action: Action, i: u32) -> u64 {
        let i = u64::from(i);
        match action {
            Action::Ask => self.start_ns + i * self.question_interval_ns,
            Action::Vote => self.start_ns + self.vote_offset_ns + i * self.vote_interval_ns,
            Action::Chat => self.start_ns + i * self.chat_interval_ns,
        }
    }

    /// The participant who sends event `i`. Askers and posters go round the participants
    /// in turn, so each sends one every N events: a member asks once every N ÷ (questions
    /// per second) seconds. A vote's voter is half the circle away from its question's
    /// asker (never the asker when N ≥ 2).
    pub fn actor(&self, action: Action, i: u32) -> u32 {
        let n = self.participants.max(1);
        match action {
            Action::Ask => i % n,
            Action::Vote => (i % n + (n / 2).max(1)) % n,
            Action::Chat => (i % n + (n / 4).max(1)) % n,
        }
    }

    /// The events whose actor `mine` accepts, in time order.
    pub fn events_of(&self, mine: impl Fn(u32) -> bool) -> Vec<(u64, Action, u32)> {
        let mut events: Vec<(u64, Action, u32)> = Action::ALL
            .iter()
            .flat_map(|&action| {
                (0..self.count(action))
                    .filter(|&i| mine(self.actor(action, i)))
                    .map(move |i| (self.at(action, i), action, i))
                    .collect::<Vec<_>>()
            })
            .collect();
        events.sort_unstable_by_key(|(at, action, i)| (*at, action.idx(), *i));
        events
    }

    /// The text of question or chat message `i`: the marker, then padding.
    pub fn body(&self, action: Action, i: u32) -> String {
        let kind = if action == Action::Chat { 'c' } else { 'q' };
        let mut body = format!("lt {kind} {i} {} ", self.at(action, i));
        while body.len() < self.body_bytes {
            body.push('x');
        }
        body
    }
}

/// Worker → coordinator.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum MeetingEvent {
    /// Every 200 ms.
    Progress(Counters),
    /// Every participant is joined or failed.
    Ready(Counters),
    Report(Box<MeetingWorkerReport>),
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Counters {
    pub connected: u64,
    /// Joined and subscribed to the four channels.
    pub ready: u64,
    pub failed: u64,
    /// Ready participants whose connection ended.
    pub closed: u64,
    /// Per [`Action`]: RPCs sent, accepted, refused (an error reply).
    pub sent: [u64; 3],
    pub accepted: [u64; 3],
    pub refused: [u64; 3],
    /// First copies of events on the public channels.
    pub deliveries: u64,
    /// Copies on the personal Q&A channel.
    pub personal: u64,
    pub duplicates: u64,
}

impl std::ops::AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.connected += o.connected;
        self.ready += o.ready;
        self.failed += o.failed;
        self.closed += o.closed;
        for i in 0..3 {
            self.sent[i] += o.sent[i];
            self.accepted[i] += o.accepted[i];
            self.refused[i] += o.refused[i];
        }
        self.deliveries += o.deliveries;
        self.personal += o.personal;
        self.duplicates += o.duplicates;
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MeetingWorkerReport {
    pub counters: Counters,
    /// Set-up failures and ended connections, by reason.
    pub errors: BTreeMap<String, u64>,
    /// Refused RPCs by `<method> <code> <message>`.
    pub refusals: BTreeMap<String, u64>,
    /// `connect()` to subscribed, µs.
    pub setup_us: Encoded,
    /// Per [`Action`]: receipt − scheduled send of every first copy, µs.
    pub latency_us: Vec<Encoded>,
    /// Per [`Action`]: scheduled send → the RPC's reply, µs.
    pub answered_us: Vec<Encoded>,
    /// Per [`Action`]: the events this worker sent that the server accepted.
    pub accepted: Vec<Vec<u32>>,
    /// Per [`Action`] and event: first copies received by this worker's participants.
    pub receipts: Vec<Vec<u32>>,
    /// Per [`Action`] and event: the latest first copy, ns after its scheduled time.
    pub last_ns: Vec<Vec<u64>>,
    /// Pushes with an event number outside the schedule, or none where one was expected.
    pub unexpected: u64,
    /// Pushes on other channels (the meeting's state, the unit's inbox).
    pub other_pushes: u64,
    /// Votes sent late because their question had not reached the voter yet.
    pub votes_waited: u64,
    /// Votes never sent: their question never reached the voter by the deadline.
    pub votes_unsent: u64,
    /// Events whose participant was not connected at their time.
    pub unsent_offline: u64,
    /// Unix ns of the first and the last first copy (0: none).
    pub first_receipt_ns: u64,
    pub last_receipt_ns: u64,
}

// ---------------------------------------------------------------------------------------
// Reading the server's lines without building a JSON tree for each push.

/// One `\n`-separated line of a server message.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `{}`: a ping, answered with `{}`.
    Ping,
    /// A reply to command `id`; `error` is `(code, message)`.
    Reply {
        id: u64,
        error: Option<(u64, String)>,
    },
    Push {
        channel: &'a str,
        marker: Option<Marker>,
    },
    Other,
}

/// The event a question or chat push carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// `Ask` for a question (with `votes`), `Chat` for a chat message.
    pub action: Action,
    pub index: u32,
    pub scheduled_ns: u64,
    pub votes: u64,
}

fn after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.find(key).map(|at| &line[at + key.len()..])
}

/// A key looked for in every delivery, with its searcher built once: at 1.25 million
/// deliveries a second, `str::find` (which builds its searcher on each call) was a fifth
/// of a worker's time.
struct Key {
    text: &'static str,
    finder: LazyLock<memmem::Finder<'static>>,
}

macro_rules! key {
    ($text:literal) => {
        Key {
            text: $text,
            finder: LazyLock::new(|| memmem::Finder::new($text)),
        }
    };
}

static QUESTION_BODY: Key = key!("\"body\":\"lt q ");
static CHAT_TEXT: Key = key!("\"text\":\"lt c ");
static VOTES: Key = key!("\"votes\":");

impl Key {
    /// What follows the key's first occurrence in `line`.
    fn after<'a>(&self, line: &'a str) -> Option<&'a str> {
        self.finder
            .find(line.as_bytes())
            .and_then(|at| line.get(at + self.text.len()..))
    }
}

fn leading_number(text: &str) -> Option<u64> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

pub fn parse_line(line: &str) -> Line<'_> {
    if line == "{}" {
        return Line::Ping;
    }
    if let Some(rest) = line.strip_prefix("{\"id\":") {
        let Some(id) = leading_number(rest) else {
            return Line::Other;
        };
        let error = after(rest, "\"error\":{").map(|error| {
            let code = after(error, "\"code\":")
                .and_then(leading_number)
                .unwrap_or(0);
            let message = after(error, "\"message\":\"")
                .map(|m| m.split('"').next().unwrap_or_default())
                .unwrap_or_default();
            // Digits (a wait in ms, an id) vary from one refusal to the next: fold them.
            let mut folded = String::new();
            for c in message.chars().take(60) {
                if !(c.is_ascii_digit() && folded.ends_with('#')) {
                    folded.push(if c.is_ascii_digit() { '#' } else { c });
                }
            }
            (code, folded)
        });
        return Line::Reply { id, error };
    }
    let Some(rest) = line.strip_prefix("{\"push\":{\"channel\":\"") else {
        return Line::Other;
    };
    let Some((channel, rest)) = rest.split_once('"') else {
        return Line::Other;
    };
    let (action, text) = if let Some(text) = QUESTION_BODY.after(rest) {
        (Action::Ask, text)
    } else if let Some(text) = CHAT_TEXT.after(rest) {
        (Action::Chat, text)
    } else {
        return Line::Push {
            channel,
            marker: None,
        };
    };
    let mut numbers = text.split(' ');
    let index = numbers.next().and_then(|n| n.parse::<u32>().ok());
    let scheduled = numbers.next().and_then(|n| n.parse::<u64>().ok());
    let marker = index.zip(scheduled).map(|(index, scheduled_ns)| Marker {
        action,
        index,
        scheduled_ns,
        votes: VOTES.after(rest).and_then(leading_number).unwrap_or(0),
    });
    Line::Push { channel, marker }
}

/// The question id in a question push: the one `"id"` whose value starts with `q` (the
/// asker's account id is hex, the meeting's starts with `m`; keys come in any order).
fn question_id(line: &str) -> Option<String> {
    after(line, "\"id\":\"q").map(|rest| format!("q{}", rest.split('"').next().unwrap_or_default()))
}

// ---------------------------------------------------------------------------------------
// The worker.

fn emit(event: &MeetingEvent) {
    let mut line = serde_json::to_string(event).expect("events serialize to JSON");
    line.push('\n');
    let mut out = std::io::stdout().lock();
    if out
        .write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(1);
    }
}

/// Which events one participant has received.
struct Seen {
    bits: [Vec<u64>; 3],
}

impl Seen {
    fn new(schedule: &Schedule) -> Seen {
        let bits = |a: Action| vec![0u64; (schedule.count(a) as usize).div_ceil(64)];
        Seen {
            bits: [bits(Action::Ask), bits(Action::Vote), bits(Action::Chat)],
        }
    }

    /// Marks the event; whether it is the first copy.
    fn first(&mut self, action: Action, i: u32) -> bool {
        let (word, bit) = (i as usize / 64, 1u64 << (i % 64));
        let words = &mut self.bits[action.idx()];
        let fresh = words[word] & bit == 0;
        words[word] |= bit;
        fresh
    }
}

/// What every participant task of this worker shares (one thread).
struct State {
    counters: Cell<Counters>,
    errors: RefCell<BTreeMap<String, u64>>,
    refusals: RefCell<BTreeMap<String, u64>>,
    setup_us: RefCell<Histogram<u64>>,
    latency_us: [RefCell<Histogram<u64>>; 3],
    answered_us: [RefCell<Histogram<u64>>; 3],
    accepted: [RefCell<Vec<u32>>; 3],
    receipts: [RefCell<Vec<u32>>; 3],
    last_ns: [RefCell<Vec<u64>>; 3],
    unexpected: Cell<u64>,
    other_pushes: Cell<u64>,
    votes_waited: Cell<u64>,
    votes_unsent: Cell<u64>,
    unsent_offline: Cell<u64>,
    first_receipt_ns: Cell<u64>,
    last_receipt_ns: Cell<u64>,
    schedule: Cell<Option<Schedule>>,
    /// Question k's id, once any participant here has seen it.
    question_ids: RefCell<Vec<Option<Rc<str>>>>,
    /// The participant indices this worker was given.
    members: RefCell<std::collections::HashSet<u32>>,
    /// The ready participants' outboxes, by participant index.
    outboxes: RefCell<HashMap<u32, mpsc::UnboundedSender<(Action, u32)>>>,
    live: Cell<usize>,
}

impl State {
    fn new() -> State {
        let hist = || RefCell::new(histogram::new());
        State {
            counters: Cell::default(),
            errors: RefCell::default(),
            refusals: RefCell::default(),
            setup_us: hist(),
            latency_us: [hist(), hist(), hist()],
            answered_us: [hist(), hist(), hist()],
            accepted: Default::default(),
            receipts: Default::default(),
            last_ns: Default::default(),
            unexpected: Cell::new(0),
            other_pushes: Cell::new(0),
            votes_waited: Cell::new(0),
            votes_unsent: Cell::new(0),
            unsent_offline: Cell::new(0),
            first_receipt_ns: Cell::new(0),
            last_receipt_ns: Cell::new(0),
            schedule: Cell::new(None),
            question_ids: RefCell::default(),
            members: RefCell::default(),
            outboxes: RefCell::default(),
            live: Cell::new(0),
        }
    }

    fn count(&self, change: impl FnOnce(&mut Counters)) {
        let mut counters = self.counters.get();
        change(&mut counters);
        self.counters.set(counters);
    }

    fn error(&self, reason: String) {
        *self.errors.borrow_mut().entry(reason).or_default() += 1;
    }

    fn report(&self) -> MeetingWorkerReport {
        let enc = |h: &[RefCell<Histogram<u64>>; 3]| {
            h.iter()
                .map(|h| histogram::encode(&h.borrow()))
                .collect::<Vec<_>>()
        };
        MeetingWorkerReport {
            counters: self.counters.get(),
            errors: self.errors.borrow().clone(),
            refusals: self.refusals.borrow().clone(),
            setup_us: histogram::encode(&self.setup_us.borrow()),
            latency_us: enc(&self.latency_us),
            answered_us: enc(&self.answered_us),
            accepted: self.accepted.iter().map(|a| a.borrow().clone()).collect(),
            receipts: self.receipts.iter().map(|a| a.borrow().clone()).collect(),
            last_ns: self.last_ns.iter().map(|a| a.borrow().clone()).collect(),
            unexpected: self.unexpected.get(),
            other_pushes: self.other_pushes.get(),
            votes_waited: self.votes_waited.get(),
            votes_unsent: self.votes_unsent.get(),
            unsent_offline: self.unsent_offline.get(),
            first_receipt_ns: self.first_receipt_ns.get(),
            last_receipt_ns: self.last_receipt_ns.get(),
        }
    }

    fn start(&self, schedule: Schedule) {
        for action in Action::ALL {
            let n = schedule.count(action) as usize;
            *self.receipts[action.idx()].borrow_mut() = vec![0; n];
            *self.last_ns[action.idx()].borrow_mut() = vec![0; n];
        }
        *self.question_ids.borrow_mut() = vec![None; schedule.questions as usize];
        self.schedule.set(Some(schedule));
    }

    /// A first copy of (action, i) scheduled at `scheduled_ns`, received at `received_ns`.
    fn delivered(&self, action: Action, i: u32, scheduled_ns: u64, received_ns: u64) {
        let late = received_ns.saturating_sub(scheduled_ns);
        self.latency_us[action.idx()]
            .borrow_mut()
            .saturating_record((late / 1000).max(1));
        let mut receipts = self.receipts[action.idx()].borrow_mut();
        receipts[i as usize] += 1;
        let mut last = self.last_ns[action.idx()].borrow_mut();
        last[i as usize] = last[i as usize].max(late);
        self.count(|c| c.deliveries += 1);
        if self.first_receipt_ns.get() == 0 {
            self.first_receipt_ns.set(received_ns);
        }
        self.last_receipt_ns.set(received_ns);
    }
}

pub fn run() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    tokio::task::LocalSet::new().block_on(&runtime, serve_coordinator())
}

async fn serve_coordinator() -> anyhow::Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let state = Rc::new(State::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut progress = tokio::time::interval(Duration::from_millis(200));
    let mut planned: Option<usize> = None;
    let mut ready_sent = false;
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.context("reading standard input")? else {
                    return Ok(());
                };
                match serde_json::from_str::<MeetingCommand>(&line).with_context(|| format!("bad command {line:?}"))? {
                    MeetingCommand::Join(plan) => {
                        planned = Some(plan.participants.len());
                        state.members.borrow_mut().extend(plan.participants.iter().map(|p| p.index));
                        tokio::task::spawn_local(ramp(plan, state.clone(), stop_rx.clone()));
                    }
                    MeetingCommand::Start(schedule) => {
                        state.start(schedule);
                        tokio::task::spawn_local(send_schedule(schedule, state.clone(), stop_rx.clone()));
                    }
                    MeetingCommand::Report => emit(&MeetingEvent::Report(Box::new(state.report()))),
                    MeetingCommand::Stop => break,
                }
            }
            _ = progress.tick() => {
                let counters = state.counters.get();
                emit(&MeetingEvent::Progress(counters));
                if !ready_sent && planned.is_some_and(|n| (counters.ready + counters.failed) as usize >= n) {
                    ready_sent = true;
                    emit(&MeetingEvent::Ready(counters));
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + Duration::from_secs(2);
    while state.live.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Starts the participants at the plan's pace, at most `concurrency` joining at once.
async fn ramp(plan: JoinPlan, state: Rc<State>, stop: watch::Receiver<bool>) {
    let plan = Rc::new(plan);
    let permits = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let interval = Duration::from_secs_f64(1.0 / plan.rate.max(1.0));
    let started = tokio::time::Instant::now();
    for i in 0..plan.participants.len() {
        if *stop.borrow() {
            return;
        }
        tokio::time::sleep_until(started + interval.mul_f64(i as f64)).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        state.live.set(state.live.get() + 1);
        tokio::task::spawn_local(participant(
            plan.clone(),
            i,
            state.clone(),
            permit,
            stop.clone(),
        ));
    }
}

/// Hands each event of this worker's participants to its participant at its time.
async fn send_schedule(schedule: Schedule, state: Rc<State>, stop: watch::Receiver<bool>) {
    // Events of a participant that failed to join or lost its connection are counted as
    // unsent (`hand_over`).
    let mine = state.members.borrow().clone();
    let events = schedule.events_of(|actor| mine.contains(&actor));
    for (at, action, i) in events {
        if *stop.borrow() {
            return;
        }
        let wait = Duration::from_nanos(at.saturating_sub(unix_ns()));
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let actor = schedule.actor(action, i);
        if action == Action::Vote && state.question_ids.borrow()[i as usize].is_none() {
            // The voter has not seen the question yet (the server is behind): vote as soon
            // as it arrives, still measured from the vote's scheduled time.
            state.votes_waited.set(state.votes_waited.get() + 1);
            let state = state.clone();
            tokio::task::spawn_local(async move {
                while state.question_ids.borrow()[i as usize].is_none() {
                    if unix_ns() > schedule.deadline_ns {
                        state.votes_unsent.set(state.votes_unsent.get() + 1);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                hand_over(&state, actor, action, i);
            });
            continue;
        }
        hand_over(&state, actor, action, i);
    }
}

fn hand_over(state: &State, actor: u32, action: Action, i: u32) {
    let sent = state
        .outboxes
        .borrow()
        .get(&actor)
        .is_some_and(|outbox| outbox.send((action, i)).is_ok());
    if !sent {
        state.unsent_offline.set(state.unsent_offline.get() + 1);
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// The connection token a login would return for this member (the claims of the hub's
/// `Services::session`).
fn connection_token(secret: &str, p: &Participant) -> Result<String, String> {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())
        .map_err(|e| format!("token key: {e}"))?;
    let exp = unix_ns() / 1_000_000_000 + 12 * 3600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({
            "sub": p.account,
            "exp": exp,
            "channels": [format!("unit:{}", p.unit)],
            "info": {"name": p.username, "role": "member"},
        }),
        &key,
    )
    .map_err(|e| format!("token: {e}"))
}

/// The channels a participant listens on, from its join.
struct Channels {
    qa: String,
    personal: String,
    chat: String,
}

/// Reads until the replies to every command in `ids` have arrived (a server message may
/// carry several replies: every line counts); pushes before them are not expected
/// (nothing is sent before every participant is ready). Returns the reply lines in the
/// order of `ids`.
async fn replies_to(ws: &mut Ws, ids: &[u64]) -> Result<Vec<String>, String> {
    let mut got: Vec<Option<String>> = vec![None; ids.len()];
    while got.iter().any(Option::is_none) {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("closed {}", frame.map_or(0, |f| u16::from(f.code))));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("eof".to_owned()),
        };
        let mut pong = false;
        for line in text.as_str().split('\n') {
            match parse_line(line) {
                Line::Ping => pong = true,
                Line::Reply { id, error } => {
                    let Some(slot) = ids.iter().position(|wanted| *wanted == id) else {
                        continue;
                    };
                    if let Some((code, message)) = error {
                        return Err(format!("command {id} refused {code} {message}"));
                    }
                    got[slot] = Some(line.to_owned());
                }
                _ => {}
            }
        }
        if pong {
            ws.send(Message::text("{}"))
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
    }
    Ok(got.into_iter().flatten().collect())
}

/// Connects, logs in with the connection token, joins the meeting and subscribes to its
/// channels with the tokens the join returned.
async fn set_up(plan: &JoinPlan, p: &Participant, state: &State) -> Result<(Ws, Channels), String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {}", e.kind()))?;
    socket
        .bind(SocketAddr::new(plan.source, 0))
        .map_err(|e| format!("bind: {}", e.kind()))?;
    let stream = socket
        .connect(plan.server)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {}", e.kind()))?;
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0);
    let url = format!("ws://{}/connection/websocket", plan.server);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    state.count(|c| c.connected += 1);
    let token = connection_token(&plan.hmac_secret, p)?;
    let join = serde_json::json!({"meeting": plan.meeting});
    let hello = format!(
        "{{\"id\":1,\"connect\":{{\"token\":\"{token}\",\"name\":\"rootcast-loadtest\"}}}}\n{{\"id\":2,\"rpc\":{{\"method\":\"meeting.join\",\"data\":{join}}}}}"
    );
    ws.send(Message::text(hello))
        .await
        .map_err(|e| format!("send: {e}"))?;
    let replies = replies_to(&mut ws, &[1, 2])
        .await
        .map_err(|e| format!("connect or meeting.join: {e}"))?;
    let joined: Value =
        serde_json::from_str(&replies[1]).map_err(|e| format!("join reply: {e}"))?;
    let channels = &joined["rpc"]["data"]["channels"];
    let mut subscribe = String::new();
    let mut names = Vec::new();
    for (n, key) in ["meeting", "qa", "qa_personal", "chat"].iter().enumerate() {
        let channel = channels[key]["channel"]
            .as_str()
            .ok_or_else(|| format!("the join returned no {key} channel"))?;
        let token = channels[key]["token"].as_str().unwrap_or_default();
        if n > 0 {
            subscribe.push('\n');
        }
        subscribe.push_str(
            &serde_json::json!({"id": 3 + n, "subscribe": {"channel": channel, "token": token}})
                .to_string(),
        );
        names.push(channel.to_owned());
    }
    ws.send(Message::text(subscribe))
        .await
        .map_err(|e| format!("send: {e}"))?;
    replies_to(&mut ws, &[3, 4, 5, 6])
        .await
        .map_err(|e| format!("subscribe {names:?}: {e}"))?;
    Ok((
        ws,
        Channels {
            qa: names[1].clone(),
            personal: names[2].clone(),
            chat: names[3].clone(),
        },
    ))
}

async fn participant(
    plan: Rc<JoinPlan>,
    slot: usize,
    state: Rc<State>,
    permit: tokio::sync::OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    let p = &plan.participants[slot];
    let started = Instant::now();
    let setup = tokio::time::timeout(
        Duration::from_millis(plan.connect_timeout_ms),
        set_up(&plan, p, &state),
    )
    .await;
    state
        .setup_us
        .borrow_mut()
        .saturating_record((started.elapsed().as_micros() as u64).max(1));
    drop(permit);
    let (ws, channels) = match setup {
        Ok(Ok(ready)) => ready,
        Ok(Err(error)) => {
            state.count(|c| c.failed += 1);
            state.error(format!(
                "set-up: {}",
                error.chars().take(80).collect::<String>()
            ));
            state.live.set(state.live.get() - 1);
            return;
        }
        Err(_) => {
            state.count(|c| c.failed += 1);
            state.error("set-up: timeout".to_owned());
            state.live.set(state.live.get() - 1);
            return;
        }
    };
    let (outbox, inbox) = mpsc::unbounded_channel();
    state.outboxes.borrow_mut().insert(p.index, outbox);
    state.count(|c| c.ready += 1);
    if let Err(reason) = serve(ws, &channels, &plan.meeting, &state, inbox, &mut stop).await {
        state.count(|c| c.closed += 1);
        state.error(format!("closed: {reason}"));
    }
    state.outboxes.borrow_mut().remove(&p.index);
    state.live.set(state.live.get() - 1);
}

/// A participant's life once joined: sends its events, reads and records deliveries.
async fn serve(
    mut ws: Ws,
    channels: &Channels,
    meeting: &str,
    state: &State,
    mut inbox: mpsc::UnboundedReceiver<(Action, u32)>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let mut seen: Option<Seen> = None;
    let mut next_id = 10u64;
    // Command id → (action, event, scheduled ns).
    let mut pending: HashMap<u64, (Action, u32, u64)> = HashMap::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return Ok(());
            }
            event = inbox.recv() => {
                let Some((action, i)) = event else { return Ok(()) };
                let Some(schedule) = state.schedule.get() else { continue };
                next_id += 1;
                let data = match action {
                    Action::Ask => serde_json::json!({"meeting": meeting, "body": schedule.body(action, i)}),
                    Action::Chat => serde_json::json!({"meeting": meeting, "text": schedule.body(action, i)}),
                    Action::Vote => {
                        let id = state.question_ids.borrow()[i as usize].clone().unwrap_or_else(|| Rc::from(""));
                        serde_json::json!({"question": &*id})
                    }
                };
                let command = format!(
                    "{{\"id\":{next_id},\"rpc\":{{\"method\":\"{}\",\"data\":{data}}}}}",
                    action.method()
                );
                pending.insert(next_id, (action, i, schedule.at(action, i)));
                state.count(|c| c.sent[action.idx()] += 1);
                ws.send(Message::text(command)).await.map_err(|e| format!("send: {e}"))?;
            }
            message = ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        return Err(format!("server closed {}", frame.map_or(0, |f| u16::from(f.code))));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("read error: {e}")),
                    None => return Err("eof".to_owned()),
                };
                let received_ns = unix_ns();
                let mut pong = false;
                for line in text.as_str().split('\n') {
                    match parse_line(line) {
                        Line::Ping => pong = true,
                        Line::Reply { id, error } => {
                            let Some((action, i, scheduled)) = pending.remove(&id) else { continue };
                            state.answered_us[action.idx()]
                                .borrow_mut()
                                .saturating_record((received_ns.saturating_sub(scheduled) / 1000).max(1));
                            match error {
                                None => {
                                    state.count(|c| c.accepted[action.idx()] += 1);
                                    state.accepted[action.idx()].borrow_mut().push(i);
                                }
                                Some((code, message)) => {
                                    state.count(|c| c.refused[action.idx()] += 1);
                                    *state
                                        .refusals
                                        .borrow_mut()
                                        .entry(format!("{} {code} {message}", action.method()))
                                        .or_default() += 1;
                                }
                            }
                        }
                        Line::Push { channel, marker } => {
                            let Some(schedule) = state.schedule.get() else {
                                state.other_pushes.set(state.other_pushes.get() + 1);
                                continue;
                            };
                            let public = channel == channels.qa || channel == channels.chat;
                            if channel == channels.personal {
                                state.count(|c| c.personal += 1);
                                continue;
                            }
                            if !public {
                                state.other_pushes.set(state.other_pushes.get() + 1);
                                continue;
                            }
                            let Some(marker) = marker else {
                                state.unexpected.set(state.unexpected.get() + 1);
                                continue;
                            };
                            let (action, scheduled) = match (marker.action, marker.votes) {
                                (Action::Chat, _) => (Action::Chat, marker.scheduled_ns),
                                (_, 0) => (Action::Ask, marker.scheduled_ns),
                                (_, 1) => (Action::Vote, 0),
                                _ => {
                                    state.unexpected.set(state.unexpected.get() + 1);
                                    continue;
                                }
                            };
                            let i = marker.index;
                            if i >= schedule.count(action) {
                                state.unexpected.set(state.unexpected.get() + 1);
                                continue;
                            }
                            let scheduled = if action == Action::Vote { schedule.at(action, i) } else { scheduled };
                            let unknown = action == Action::Ask
                                && state.question_ids.borrow()[i as usize].is_none();
                            if unknown && let Some(id) = question_id(line) {
                                state.question_ids.borrow_mut()[i as usize] = Some(Rc::from(id.as_str()));
                            }
                            let seen = seen.get_or_insert_with(|| Seen::new(&schedule));
                            if seen.first(action, i) {
                                state.delivered(action, i, scheduled, received_ns);
                            } else {
                                state.count(|c| c.duplicates += 1);
                            }
                        }
                        Line::Other => {}
                    }
                }
                if pong {
                    ws.send(Message::text("{}")).await.map_err(|e| format!("pong: {e}"))?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(n: u32) -> Schedule {
        Schedule {
            start_ns: 1_000_000_000,
            participants: n,
            questions: 400,
            question_interval_ns: 5_000_000,
            votes: 100,
            vote_offset_ns: 1_000_000_000,
            vote_interval_ns: 20_000_000,
            chats: 50,
            chat_interval_ns: 40_000_000,
            body_bytes: 60,
            deadline_ns: u64::MAX,
        }
    }

    #[test]
    fn every_event_has_exactly_one_sender_and_votes_follow_their_question() {
        let s = schedule(50);
        // Split the participants over three "workers" as the coordinator does.
        let parts: Vec<Vec<(u64, Action, u32)>> = (0..3)
            .map(|w| s.events_of(|actor| actor % 3 == w))
            .collect();
        let total: usize = parts.iter().map(Vec::len).sum();
        assert_eq!(total, 400 + 100 + 50);
        for part in &parts {
            assert!(part.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
        }
        for k in 0..100 {
            assert!(s.at(Action::Vote, k) >= s.at(Action::Ask, k) + 1_000_000_000);
            assert_ne!(s.actor(Action::Vote, k), s.actor(Action::Ask, k));
        }
        // Askers go round: each member asks once every 50 questions.
        let asks_of_7: Vec<u32> = (0..400).filter(|&k| s.actor(Action::Ask, k) == 7).collect();
        assert!(asks_of_7.windows(2).all(|w| w[1] - w[0] == 50));
        assert_eq!(schedule(1).actor(Action::Vote, 3), 0);
    }

    #[test]
    fn pushes_replies_and_pings_are_read_without_a_json_tree() {
        let s = schedule(10);
        let body = s.body(Action::Ask, 17);
        assert_eq!(body.len(), 60);
        let push = format!(
            "{{\"push\":{{\"channel\":\"qa:m1\",\"pub\":{{\"data\":{{\"type\":\"question\",\"question\":{{\"id\":\"q18c-ab\",\"meeting\":\"m1\",\"body\":\"{body}\",\"status\":\"open\",\"votes\":1}}}},\"offset\":3}}}}}}"
        );
        assert_eq!(
            parse_line(&push),
            Line::Push {
                channel: "qa:m1",
                marker: Some(Marker {
                    action: Action::Ask,
                    index: 17,
                    scheduled_ns: s.at(Action::Ask, 17),
                    votes: 1
                })
            }
        );
        assert_eq!(question_id(&push).as_deref(), Some("q18c-ab"));
        let chat = format!(
            "{{\"push\":{{\"channel\":\"meeting-chat:m1\",\"pub\":{{\"data\":{{\"type\":\"message\",\"message\":{{\"id\":4,\"text\":\"{}\"}}}}}}}}}}",
            s.body(Action::Chat, 3)
        );
        let Line::Push { marker, .. } = parse_line(&chat) else {
            panic!("a push")
        };
        assert_eq!(marker.map(|m| (m.action, m.index)), Some((Action::Chat, 3)));
        assert_eq!(parse_line("{}"), Line::Ping);
        assert_eq!(
            parse_line("{\"id\":12,\"rpc\":{\"data\":{}}}"),
            Line::Reply {
                id: 12,
                error: None
            }
        );
        assert_eq!(
            parse_line("{\"id\":13,\"error\":{\"code\":1429,\"message\":\"wait 1500 ms\"}}"),
            Line::Reply {
                id: 13,
                error: Some((1429, "wait # ms".to_owned()))
            }
        );
        assert_eq!(
            parse_line("{\"push\":{\"channel\":\"meeting:m1\",\"pub\":{\"data\":{}}}}"),
            Line::Push {
                channel: "meeting:m1",
                marker: None
            }
        );
    }
}
