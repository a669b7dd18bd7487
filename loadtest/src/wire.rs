//! The coordinator and its workers talk over the workers' standard input and output, one
//! JSON object per line: [`Command`]s down, [`Event`]s up.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::dialect::Kind;
use crate::histogram::Encoded;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Open `count` connections at `rate` per second and keep them.
    Connect(ConnectPlan),
    /// Send a [`WorkerReport`].
    Report,
    /// Every ready connection drops its socket at once and reconnects, subscribing with
    /// recovery from its last position (`ws-reconnect-storm`).
    Drop,
    /// Close every connection and exit.
    Stop,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectPlan {
    pub kind: Kind,
    pub server: SocketAddr,
    /// The source address every connection binds to before connecting.
    pub source: IpAddr,
    pub count: usize,
    /// User IDs are `u<first_user + i>`.
    pub first_user: usize,
    /// Connections started per second.
    pub rate: f64,
    /// Most connections being set up at once.
    pub concurrency: usize,
    pub connect_timeout_ms: u64,
    /// rootcast: the HMAC key that signs connection tokens.
    pub hmac_secret: Option<String>,
    /// Publications the run will send (sequence numbers 0..publications).
    pub publications: u32,
    /// Every this many connections one stops reading once ready (`ws-slow`; 0: none).
    pub slow_every: usize,
}

/// Running totals of one worker.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Counters {
    /// WebSocket open.
    pub connected: u64,
    /// Ready: connected and subscribed.
    pub subscribed: u64,
    /// Set-ups that failed or timed out.
    pub failed: u64,
    /// Ready connections that the server closed, or that broke.
    pub closed: u64,
    /// Publications received (first copies only).
    pub deliveries: u64,
    /// Ready connections that stopped reading on purpose (`ws-slow`).
    pub slow: u64,
    /// Connections dropped on purpose by [`Command::Drop`].
    pub dropped: u64,
    /// Dropped connections ready again (connected and subscribed).
    pub reconnected: u64,
    /// Of those, subscriptions the server answered with `recovered: true`.
    pub recovered: u64,
}

impl std::ops::AddAssign for Counters {
    fn add_assign(&mut self, other: Counters) {
        self.connected += other.connected;
        self.subscribed += other.subscribed;
        self.failed += other.failed;
        self.closed += other.closed;
        self.deliveries += other.deliveries;
        self.slow += other.slow;
        self.dropped += other.dropped;
        self.reconnected += other.reconnected;
        self.recovered += other.recovered;
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// Every 100 ms.
    Progress(Counters),
    /// Every connection is either ready or failed.
    Ready(Counters),
    Report(Box<WorkerReport>),
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WorkerReport {
    pub counters: Counters,
    /// Set-up failures and closes, by reason.
    pub errors: BTreeMap<String, u64>,
    /// Receipt time − scheduled send time of every delivery, µs.
    pub latency_us: Encoded,
    /// Time from `connect()` to ready, per connection, µs.
    pub setup_us: Encoded,
    /// Per publication: the latest receipt, ns after its scheduled time.
    pub last_ns: Vec<u64>,
    /// Per publication: copies received.
    pub receipts: Vec<u64>,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Publications with a sequence number outside the plan.
    pub unexpected: u64,
    /// Pings answered.
    pub pongs: u64,
    /// Unix time of the first and last receipt, ns (0: none).
    pub first_receipt_ns: u64,
    pub last_receipt_ns: u64,
    /// Time from a connection's drop ([`Command::Drop`]) to ready again, µs.
    pub reconnect_us: Encoded,
    /// Unix time the last dropped connection was ready again, ns (0: none).
    pub last_reconnect_ns: u64,
}
