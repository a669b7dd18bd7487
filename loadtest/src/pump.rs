//! Waiting on a fleet's workers, the same for every scenario: the pump takes the workers'
//! events one at a time until the scenario has what it waits for or a deadline passes, and
//! ends the measurement when a worker or the server dies. What an event changes, when every
//! connection counts as lost and what the progress line shows stay with the scenario
//! ([`Fleet`]).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::children;
use crate::workers::{self, WorkerProcess};

/// What a worker's output thread delivers: its place in the fleet and an event, or `None`
/// when its output ended.
pub type Delivery<E> = (usize, Option<E>);

/// A `std` channel of deliveries, for [`Fleet::pump`].
pub type Channel<E> = mpsc::Receiver<Delivery<E>>;

/// A tokio channel of deliveries, for [`Fleet::pump_async`].
pub type AsyncChannel<E> = tokio::sync::mpsc::UnboundedReceiver<Delivery<E>>;

/// A fleet's event channel ([`Channel`] or [`AsyncChannel`]) and what its pump keeps
/// between turns.
pub struct Events<C> {
    channel: C,
    /// What a worker is, for messages: "worker", "meeting worker", "whep worker".
    name: &'static str,
    /// The workers' process ids, by place in the fleet.
    pids: Vec<u32>,
    /// The server's processes, any of whose exit ends the measurement; empty when they are
    /// not ours to watch.
    server_pids: Vec<u32>,
    started: Instant,
    last_print: Instant,
}

impl<C> Events<C> {
    /// Events of `workers` (called `name` in messages) on `channel`; the progress clock
    /// starts now.
    pub fn new(
        channel: C,
        name: &'static str,
        workers: &[WorkerProcess],
        server_pids: Vec<u32>,
    ) -> Events<C> {
        Events {
            channel,
            name,
            pids: workers::pids(workers),
            server_pids,
            started: Instant::now(),
            last_print: Instant::now(),
        }
    }
}

/// What one wait for an event brought.
enum Received<E> {
    Event(usize, E),
    /// Worker `index`'s output ended.
    Ended(usize),
    /// Nothing before the wait's end.
    Nothing,
    /// Every worker's output thread is gone.
    AllGone,
}

/// A scenario's fleet of workers: what its events change and what its progress line shows.
/// The waiting is [`Fleet::pump`]'s (events on a `std` channel) or [`Fleet::pump_async`]'s
/// (events on a tokio channel).
///
/// The pump's contract: it calls `done` before every wait and returns `Ok(true)` as soon
/// as `done` says so, or `Ok(false)` once `until` has passed. Each wait lasts at most
/// 100 ms (`pump_async`: 200 ms) and never past `until`. After each wait, in this order:
/// an event is [applied](Fleet::apply); the end of a worker's output fails with
/// "`<name> <index>` (pid …) exited unexpectedly" and the end of every worker's with
/// "every `<name>` is gone"; the exit of any of the server's processes fails with "the
/// server (pid …) exited mid-run: …"; [`Fleet::check_connections`] may fail; and once at
/// least a second has gone by since the last one (or since the fleet started),
/// [`Fleet::progress_line`] is printed on standard error.
pub trait Fleet: Sized {
    /// What a worker reports.
    type Event;
    /// Where the events come from: a [`Channel`] or an [`AsyncChannel`] of them.
    type Channel;

    /// The fleet's events and the pump's bookkeeping.
    fn events(&mut self) -> &mut Events<Self::Channel>;

    /// Takes worker `index`'s `event` into the fleet's state.
    fn apply(&mut self, index: usize, event: Self::Event);

    /// Fails when the server has closed every connection (checked after every wait);
    /// by default never.
    fn check_connections(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// The progress line, `elapsed_secs` after the fleet started and `since_last_secs`
    /// after the previous line (for rates).
    fn progress_line(&mut self, elapsed_secs: f64, since_last_secs: f64) -> String;

    /// Takes events until `done` says so (`Ok(true)`) or `until` passes (`Ok(false)`); see
    /// the trait for the rest.
    fn pump(
        &mut self,
        until: Instant,
        mut done: impl FnMut(&Self) -> anyhow::Result<bool>,
    ) -> anyhow::Result<bool>
    where
        Self: Fleet<Channel = Channel<<Self as Fleet>::Event>>,
    {
        loop {
            if done(self)? {
                return Ok(true);
            }
            let Some(wait) = next_wait(until, Duration::from_millis(100)) else {
                return Ok(false);
            };
            let received = match self.events().channel.recv_timeout(wait) {
                Ok((index, Some(event))) => Received::Event(index, event),
                Ok((index, None)) => Received::Ended(index),
                Err(RecvTimeoutError::Timeout) => Received::Nothing,
                Err(RecvTimeoutError::Disconnected) => Received::AllGone,
            };
            after_wait(self, received)?;
        }
    }

    /// [`Fleet::pump`] for events on a tokio channel: the same, but waits without blocking
    /// the thread, up to 200 ms at a time.
    async fn pump_async(
        &mut self,
        until: Instant,
        mut done: impl FnMut(&Self) -> anyhow::Result<bool>,
    ) -> anyhow::Result<bool>
    where
        Self: Fleet<Channel = AsyncChannel<<Self as Fleet>::Event>>,
    {
        loop {
            if done(self)? {
                return Ok(true);
            }
            let Some(wait) = next_wait(until, Duration::from_millis(200)) else {
                return Ok(false);
            };
            let received = match tokio::time::timeout(wait, self.events().channel.recv()).await {
                Ok(Some((index, Some(event)))) => Received::Event(index, event),
                Ok(Some((index, None))) => Received::Ended(index),
                Ok(None) => Received::AllGone,
                Err(_) => Received::Nothing,
            };
            after_wait(self, received)?;
        }
    }
}

/// How long the next wait may last: what is left until `until`, at most `longest`; `None`
/// once `until` has passed.
fn next_wait(until: Instant, longest: Duration) -> Option<Duration> {
    let left = until.saturating_duration_since(Instant::now());
    (!left.is_zero()).then(|| left.min(longest))
}

/// What follows every wait, whatever the channel: see [`Fleet`].
fn after_wait<F: Fleet>(fleet: &mut F, received: Received<F::Event>) -> anyhow::Result<()> {
    match received {
        Received::Event(index, event) => fleet.apply(index, event),
        Received::Ended(index) => {
            let events = fleet.events();
            bail!(
                "{} {index} (pid {}) exited unexpectedly",
                events.name,
                events.pids[index]
            );
        }
        Received::Nothing => {}
        Received::AllGone => bail!("every {} is gone", fleet.events().name),
    }
    for &pid in &fleet.events().server_pids {
        if let Some(status) = children::exited(pid) {
            bail!("the server (pid {pid}) exited mid-run: {status}");
        }
    }
    fleet.check_connections()?;
    let events = fleet.events();
    if events.last_print.elapsed() >= Duration::from_secs(1) {
        let since_last_secs = events.last_print.elapsed().as_secs_f64();
        events.last_print = Instant::now();
        let elapsed_secs = events.started.elapsed().as_secs_f64();
        let line = fleet.progress_line(elapsed_secs, since_last_secs);
        eprintln!("{line}");
    }
    Ok(())
}
