//! A worker process (`rootcast-loadtest worker`, started by the coordinator): opens its
//! share of the connections from its own source address, reads publications, records
//! latencies, and reports over standard output. It exits when told to stop or when its
//! standard input closes (the coordinator went away), so it never outlives a run.
//!
//! On [`Command::Drop`] (`ws-reconnect-storm`) every ready connection drops its socket and
//! reconnects at once (at most `concurrency` set-ups in flight), subscribing with recovery
//! from the last position it saw. A client's record of which publications it has is kept
//! across its connections, so a publication missed in the gap and not recovered counts as
//! missing, and one both recovered and delivered live counts as a duplicate.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::dialect::{Kind, Publication, Session};
use crate::histogram;
use crate::wire::{Command, ConnectPlan, Counters, Event, WorkerReport};

/// Unix time in ns: every process of a run reads the same clock.
pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What all connection tasks of this worker share; they run on one thread.
struct State {
    counters: Cell<Counters>,
    errors: RefCell<BTreeMap<String, u64>>,
    latency_us: RefCell<Histogram<u64>>,
    setup_us: RefCell<Histogram<u64>>,
    last_ns: RefCell<Vec<u64>>,
    receipts: RefCell<Vec<u64>>,
    duplicates: Cell<u64>,
    out_of_order: Cell<u64>,
    unexpected: Cell<u64>,
    pongs: Cell<u64>,
    first_receipt_ns: Cell<u64>,
    last_receipt_ns: Cell<u64>,
    reconnect_us: RefCell<Histogram<u64>>,
    last_reconnect_ns: Cell<u64>,
    /// Connection tasks still running.
    live: Cell<usize>,
}

impl State {
    fn count(&self, change: impl FnOnce(&mut Counters)) {
        let mut counters = self.counters.get();
        change(&mut counters);
        self.counters.set(counters);
    }

    fn error(&self, reason: String) {
        *self.errors.borrow_mut().entry(reason).or_default() += 1;
    }

    fn report(&self) -> WorkerReport {
        WorkerReport {
            counters: self.counters.get(),
            errors: self.errors.borrow().clone(),
            latency_us: histogram::encode(&self.latency_us.borrow()),
            setup_us: histogram::encode(&self.setup_us.borrow()),
            last_ns: self.last_ns.borrow().clone(),
            receipts: self.receipts.borrow().clone(),
            duplicates: self.duplicates.get(),
            out_of_order: self.out_of_order.get(),
            unexpected: self.unexpected.get(),
            pongs: self.pongs.get(),
            first_receipt_ns: self.first_receipt_ns.get(),
            last_receipt_ns: self.last_receipt_ns.get(),
            reconnect_us: histogram::encode(&self.reconnect_us.borrow()),
            last_reconnect_ns: self.last_reconnect_ns.get(),
        }
    }
}

fn emit(event: &Event) {
    let mut line = serde_json::to_string(event).expect("events serialize to JSON");
    line.push('\n');
    let mut out = std::io::stdout().lock();
    if out
        .write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        // The coordinator is gone: nobody wants our figures.
        std::process::exit(1);
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
    let state = Rc::new(State {
        counters: Cell::default(),
        errors: RefCell::default(),
        latency_us: RefCell::new(histogram::new()),
        setup_us: RefCell::new(histogram::new()),
        last_ns: RefCell::default(),
        receipts: RefCell::default(),
        duplicates: Cell::new(0),
        out_of_order: Cell::new(0),
        unexpected: Cell::new(0),
        pongs: Cell::new(0),
        first_receipt_ns: Cell::new(0),
        last_receipt_ns: Cell::new(0),
        reconnect_us: RefCell::new(histogram::new()),
        last_reconnect_ns: Cell::new(0),
        live: Cell::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (drop_tx, drop_rx) = watch::channel(0u64);
    let mut progress = tokio::time::interval(Duration::from_millis(100));
    let mut planned: Option<usize> = None;
    let mut ready_sent = false;
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.context("reading standard input")? else {
                    return Ok(()); // the coordinator went away
                };
                match serde_json::from_str::<Command>(&line).with_context(|| format!("bad command {line:?}"))? {
                    Command::Connect(plan) => {
                        *state.last_ns.borrow_mut() = vec![0; plan.publications as usize];
                        *state.receipts.borrow_mut() = vec![0; plan.publications as usize];
                        planned = Some(plan.count);
                        tokio::task::spawn_local(ramp(
                            plan,
                            state.clone(),
                            stop_rx.clone(),
                            drop_rx.clone(),
                        ));
                    }
                    Command::Report => emit(&Event::Report(Box::new(state.report()))),
                    Command::Drop => drop_tx.send_modify(|generation| *generation += 1),
                    Command::Stop => break,
                }
            }
            _ = progress.tick() => {
                let counters = state.counters.get();
                emit(&Event::Progress(counters));
                if !ready_sent && planned.is_some_and(|n| (counters.subscribed + counters.failed) as usize >= n) {
                    ready_sent = true;
                    emit(&Event::Ready(counters));
                }
            }
        }
    }
    // Close the connections politely, for at most two seconds.
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + Duration::from_secs(2);
    while state.live.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Starts the plan's connections at its pace, at most `concurrency` setting up at once.
async fn ramp(
    plan: ConnectPlan,
    state: Rc<State>,
    stop: watch::Receiver<bool>,
    drops: watch::Receiver<u64>,
) {
    let plan = Rc::new(plan);
    let permits = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let interval = Duration::from_secs_f64(1.0 / plan.rate.max(1.0));
    let started = tokio::time::Instant::now();
    for i in 0..plan.count {
        if *stop.borrow() {
            return;
        }
        // A fixed schedule: a slow moment is caught up, not added to every later start.
        tokio::time::sleep_until(started + interval.mul_f64(i as f64)).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        state.live.set(state.live.get() + 1);
        tokio::task::spawn_local(connection(
            plan.clone(),
            plan.first_user + i,
            state.clone(),
            (permits.clone(), permit),
            stop.clone(),
            drops.clone(),
        ));
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

fn outgoing(kind: Kind, text: &str) -> Message {
    if kind.binary_frames() {
        Message::binary(text.as_bytes().to_vec())
    } else {
        Message::text(text)
    }
}

fn token(plan: &ConnectPlan, user: usize) -> Result<Option<String>, String> {
    let Some(secret) = &plan.hmac_secret else {
        return Ok(None);
    };
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())
        .map_err(|e| format!("token key: {e}"))?;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({ "sub": format!("u{user}") }),
        &key,
    )
    .map(Some)
    .map_err(|e| format!("token: {e}"))
}

/// Connects from the plan's source address, opens the WebSocket, and says hello until
/// the session is ready.
/// Publications that arrive with the replies (a recovering subscribe's) are returned too.
async fn set_up(
    plan: &ConnectPlan,
    user: usize,
    state: &State,
    mut session: Session,
) -> Result<(Ws, Session, Vec<Publication>), String> {
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
    // Small buffers keep the clients' memory low (tungstenite's default read buffer is 128 KiB).
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let url = format!("ws://{}{}", plan.server, plan.kind.path());
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    state.count(|c| c.connected += 1);
    let mut early = Vec::new();
    if let Some(hello) = session.hello(token(plan, user)?.as_deref()) {
        ws.send(outgoing(plan.kind, &hello))
            .await
            .map_err(|e| format!("send: {e}"))?;
    }
    while !session.ready() {
        let frame = match ws.next().await {
            Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
            Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("closed {}", frame.map_or(0, |f| u16::from(f.code))));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("eof before ready".to_owned()),
        };
        let feed = session.feed(&frame);
        if let Some(error) = feed.error {
            return Err(format!("refused: {error}"));
        }
        early.extend(feed.publications);
        if let Some(reply) = feed.reply {
            ws.send(outgoing(plan.kind, reply))
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
    }
    Ok((ws, session, early))
}

async fn connection(
    plan: Rc<ConnectPlan>,
    user: usize,
    state: Rc<State>,
    (permits, permit): (Arc<Semaphore>, tokio::sync::OwnedSemaphorePermit),
    mut stop: watch::Receiver<bool>,
    mut drops: watch::Receiver<u64>,
) {
    let started = Instant::now();
    let setup = tokio::time::timeout(
        Duration::from_millis(plan.connect_timeout_ms),
        set_up(&plan, user, &state, Session::new(plan.kind)),
    )
    .await;
    state
        .setup_us
        .borrow_mut()
        .saturating_record((started.elapsed().as_micros() as u64).max(1));
    drop(permit);
    // Drops before this connection was ready are not for it.
    let _ = drops.borrow_and_update();
    let outcome = match setup {
        Ok(Ok((ws, session, early))) => {
            state.count(|c| c.subscribed += 1);
            if plan.slow_every > 0 && user % plan.slow_every == 0 {
                // A slow consumer: keep the connection, never read again.
                state.count(|c| c.slow += 1);
                let _ = stop.changed().await;
                drop(ws);
                Ok(())
            } else {
                let mut seen = Seen::new(plan.publications as usize);
                seen.receive(&early, unix_ns(), &state);
                let mut link = Some((ws, session));
                loop {
                    let Some((ws, session)) = link.take() else {
                        break Ok(());
                    };
                    match read_publications(ws, session, &state, &mut stop, &mut drops, &mut seen)
                        .await
                    {
                        Ended::Stopped => break Ok(()),
                        Ended::Failed(reason) => break Err(reason),
                        Ended::Dropped(session) => {
                            state.count(|c| c.dropped += 1);
                            link = reconnect(&plan, user, &state, &permits, &mut stop, &session)
                                .await
                                .map(|(ws, next, early)| {
                                    seen.receive(&early, unix_ns(), &state);
                                    (ws, next)
                                });
                        }
                    }
                }
            }
        }
        Ok(Err(error)) => {
            state.count(|c| c.failed += 1);
            // "connect: ConnectionRefused" → "set-up: connect: ConnectionRefused".
            state.error(format!(
                "set-up: {}",
                error.chars().take(80).collect::<String>()
            ));
            Ok(())
        }
        Err(_) => {
            state.count(|c| c.failed += 1);
            state.error("set-up: timeout".to_owned());
            Ok(())
        }
    };
    if let Err(reason) = outcome {
        state.count(|c| c.closed += 1);
        state.error(format!("closed: {reason}"));
    }
    state.live.set(state.live.get() - 1);
}

/// Sets a dropped client up again, resuming `previous`'s subscription with recovery; tries
/// again (after 100 ms) until it succeeds or the worker stops (`None`). Each failure is
/// counted by reason.
async fn reconnect(
    plan: &ConnectPlan,
    user: usize,
    state: &State,
    permits: &Arc<Semaphore>,
    stop: &mut watch::Receiver<bool>,
    previous: &Session,
) -> Option<(Ws, Session, Vec<Publication>)> {
    let dropped = Instant::now();
    loop {
        if *stop.borrow() {
            return None;
        }
        let permit = permits.clone().acquire_owned().await.ok()?;
        let attempt = tokio::time::timeout(
            Duration::from_millis(plan.connect_timeout_ms),
            set_up(plan, user, state, Session::resume(previous)),
        )
        .await;
        drop(permit);
        match attempt {
            Ok(Ok((ws, session, early))) => {
                let recovered = session.recovered();
                state.count(|c| {
                    c.reconnected += 1;
                    c.recovered += u64::from(recovered);
                });
                state
                    .reconnect_us
                    .borrow_mut()
                    .saturating_record((dropped.elapsed().as_micros() as u64).max(1));
                state.last_reconnect_ns.set(unix_ns());
                return Some((ws, session, early));
            }
            Ok(Err(error)) => state.error(format!(
                "reconnect: {}",
                error.chars().take(80).collect::<String>()
            )),
            Err(_) => state.error("reconnect: timeout".to_owned()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How a connection's reading ended.
enum Ended {
    /// Told to stop.
    Stopped,
    /// Dropped on purpose ([`Command::Drop`]); the session holds the position to resume.
    Dropped(Session),
    /// The connection ended, with the reason.
    Failed(String),
}

/// Which publications one client has, across all its connections.
struct Seen {
    bits: Vec<u64>,
    publications: usize,
    highest: Option<u32>,
}

impl Seen {
    fn new(publications: usize) -> Seen {
        Seen {
            bits: vec![0; publications.div_ceil(64)],
            publications,
            highest: None,
        }
    }

    /// Records publications received at `received_ns`: first copies count as deliveries
    /// (latency, per-publication figures), others as duplicates.
    fn receive(&mut self, publications: &[Publication], received_ns: u64, state: &State) {
        for publication in publications {
            let seq = publication.seq as usize;
            if seq >= self.publications {
                state.unexpected.set(state.unexpected.get() + 1);
                continue;
            }
            let (word, bit) = (seq / 64, 1u64 << (seq % 64));
            if self.bits[word] & bit != 0 {
                state.duplicates.set(state.duplicates.get() + 1);
                continue;
            }
            self.bits[word] |= bit;
            if self.highest.is_some_and(|h| publication.seq < h) {
                state.out_of_order.set(state.out_of_order.get() + 1);
            }
            self.highest = self.highest.max(Some(publication.seq));
            let late_ns = received_ns.saturating_sub(publication.scheduled_ns);
            state
                .latency_us
                .borrow_mut()
                .saturating_record((late_ns / 1000).max(1));
            let mut last = state.last_ns.borrow_mut();
            last[seq] = last[seq].max(late_ns);
            state.receipts.borrow_mut()[seq] += 1;
            state.count(|c| c.deliveries += 1);
            if state.first_receipt_ns.get() == 0 {
                state.first_receipt_ns.set(received_ns);
            }
            state.last_receipt_ns.set(received_ns);
        }
    }
}

/// Reads until told to stop, told to drop the connection, or the connection ends.
async fn read_publications(
    mut ws: Ws,
    mut session: Session,
    state: &State,
    stop: &mut watch::Receiver<bool>,
    drops: &mut watch::Receiver<u64>,
    seen: &mut Seen,
) -> Ended {
    let kind = session.kind();
    loop {
        let message = tokio::select! {
            biased;
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return Ended::Stopped;
            }
            _ = drops.changed() => {
                // Dropping the socket closes it under the WebSocket: no close handshake.
                drop(ws);
                return Ended::Dropped(session);
            }
            message = ws.next() => message,
        };
        let frame = match message {
            Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
            Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
            Some(Ok(Message::Close(frame))) => {
                return Ended::Failed(format!(
                    "server closed {}",
                    frame.map_or(0, |f| u16::from(f.code))
                ));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Ended::Failed(format!("read error: {e}")),
            None => return Ended::Failed("eof".to_owned()),
        };
        let received_ns = unix_ns();
        let feed = session.feed(&frame);
        if let Some(error) = feed.error {
            return Ended::Failed(format!(
                "server error: {}",
                error.chars().take(60).collect::<String>()
            ));
        }
        seen.receive(&feed.publications, received_ns, state);
        if let Some(reply) = feed.reply {
            state.pongs.set(state.pongs.get() + 1);
            if let Err(e) = ws.send(outgoing(kind, reply)).await {
                return Ended::Failed(format!("pong failed: {e}"));
            }
        }
    }
}
