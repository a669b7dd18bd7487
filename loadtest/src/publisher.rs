//! The publisher: sends publications on a fixed schedule, each carrying its sequence
//! number and its *scheduled* send time, so a late publisher or a server's queue shows up
//! as latency (no coordinated omission). It speaks to each server the way a real back end
//! would: rootcast's `POST /api/publish`, NATS `PUB`, the floor's `/publish` WebSocket.
//! [`Publishers`] runs one per server process (`--server-processes`), on the same schedule.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

use crate::dialect::{self, Kind};
use crate::targets::Target;
use crate::worker::unix_ns;

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Unix time of publication 0, ns.
    pub first_ns: u64,
    pub interval_ns: u64,
    pub count: u32,
    pub payload: usize,
    /// Publications sent together at each scheduled time (all carry that time).
    pub burst: u32,
}

impl Schedule {
    /// The scheduled send time of publication `seq`.
    pub fn at(&self, seq: u32) -> u64 {
        self.first_ns + u64::from(seq / self.burst.max(1)) * self.interval_ns
    }
}

#[derive(Debug, Default, Clone)]
pub struct PublisherReport {
    pub sent: u32,
    /// The first failure; the publisher stops there.
    pub error: Option<String>,
    /// Scheduled send → the server's answer (to the whole burst), µs.
    pub answered_us: Vec<u64>,
    /// How late each send started, µs.
    pub start_lag_us: Vec<u64>,
}

/// How the publisher reaches one server.
enum Link {
    Http {
        writer: TcpStream,
        reader: BufReader<TcpStream>,
        address: SocketAddr,
        api_key: String,
    },
    Ws {
        ws: WebSocket<TcpStream>,
        kind: Kind,
    },
}

impl Link {
    fn open(target: &Target) -> anyhow::Result<Link> {
        let stream = TcpStream::connect(target.address).context("connect")?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        if target.kind == Kind::Rootcast {
            return Ok(Link::Http {
                writer: stream.try_clone()?,
                reader: BufReader::new(stream),
                address: target.address,
                api_key: target
                    .api_key
                    .clone()
                    .context("rootcast needs the API key")?,
            });
        }
        let path = if target.kind == Kind::Floor {
            "/publish"
        } else {
            "/"
        };
        let (mut ws, _) = tungstenite::client(format!("ws://{}{path}", target.address), stream)
            .map_err(|e| anyhow::anyhow!("WebSocket handshake: {e}"))?;
        if target.kind == Kind::Nats {
            ws.send(Message::binary(
                b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n".to_vec(),
            ))?;
            nats_wait_pong(&mut ws)?;
        }
        Ok(Link::Ws {
            ws,
            kind: target.kind,
        })
    }

    /// Sends a burst of publications back to back (pipelined: every request is written
    /// before the first answer is read) and waits until the server has taken them all.
    fn publish(&mut self, payloads: &[String]) -> anyhow::Result<()> {
        match self {
            Link::Http {
                writer,
                reader,
                address,
                api_key,
            } => {
                let mut requests = String::new();
                for payload in payloads {
                    let body = format!(
                        "{{\"channel\":\"{}\",\"data\":{payload}}}",
                        dialect::ROOTCAST_CHANNEL
                    );
                    let _ = write!(
                        requests,
                        "POST /api/publish HTTP/1.1\r\nHost: {address}\r\nX-API-Key: {api_key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                }
                writer.write_all(requests.as_bytes())?;
                for _ in payloads {
                    let (status, body) = read_response(reader)?;
                    if status != 200 || !body.contains("\"result\"") {
                        bail!("HTTP {status}: {body}");
                    }
                }
            }
            Link::Ws { ws, kind } => {
                if *kind == Kind::Nats {
                    let subject = dialect::NATS_SUBJECT;
                    let mut commands = String::new();
                    for payload in payloads {
                        let _ =
                            write!(commands, "PUB {subject} {}\r\n{payload}\r\n", payload.len());
                    }
                    commands.push_str("PING\r\n");
                    ws.send(Message::binary(commands.into_bytes()))?;
                    nats_wait_pong(ws)?;
                } else {
                    for payload in payloads {
                        ws.send(Message::text(payload.as_str()))?;
                    }
                    let mut answers = 0;
                    while answers < payloads.len() {
                        match ws.read()? {
                            Message::Text(_) => answers += 1,
                            Message::Close(_) => bail!("floor closed the publisher"),
                            _ => {}
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Reads until NATS's `PONG` (our `PING` went through, so everything before it was taken),
/// answering the server's pings.
fn nats_wait_pong(ws: &mut WebSocket<TcpStream>) -> anyhow::Result<()> {
    loop {
        let bytes = match ws.read()? {
            Message::Binary(b) => b.to_vec(),
            Message::Text(t) => t.as_bytes().to_vec(),
            Message::Close(_) => bail!("nats closed the publisher"),
            _ => continue,
        };
        let text = String::from_utf8_lossy(&bytes);
        if let Some(error) = text.lines().find(|l| l.starts_with("-ERR")) {
            bail!("nats: {error}");
        }
        if text.contains("PING\r\n") {
            ws.send(Message::binary(b"PONG\r\n".to_vec()))?;
        }
        if text.contains("PONG\r\n") {
            return Ok(());
        }
    }
}

fn read_response(reader: &mut BufReader<TcpStream>) -> anyhow::Result<(u16, String)> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        bail!("connection closed");
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("connection closed in headers");
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

/// Publishes `schedule` to `target`, keeping `report` up to date; stops at the first
/// failure.
fn run(target: &Target, schedule: Schedule, report: &Mutex<PublisherReport>) {
    let mut link = match Link::open(target) {
        Ok(link) => link,
        Err(error) => {
            lock(report).error = Some(format!("opening: {error:#}"));
            return;
        }
    };
    let burst = schedule.burst.max(1);
    for first in (0..schedule.count).step_by(burst as usize) {
        let scheduled = schedule.at(first);
        let now = unix_ns();
        if scheduled > now {
            std::thread::sleep(Duration::from_nanos(scheduled - now));
        }
        let lag_us = unix_ns().saturating_sub(scheduled) / 1000;
        lock(report).start_lag_us.push(lag_us);
        let last = (first + burst).min(schedule.count);
        let payloads: Vec<String> = (first..last)
            .map(|seq| dialect::payload(seq, scheduled, schedule.payload))
            .collect();
        if let Err(error) = link.publish(&payloads) {
            lock(report).error = Some(format!("publications {first}..{last}: {error:#}"));
            return;
        }
        let answered_us = unix_ns().saturating_sub(scheduled) / 1000;
        let mut report = lock(report);
        report.sent += last - first;
        report.answered_us.push(answered_us);
    }
}

/// One publisher thread per server process, all on the same [`Schedule`] (the same
/// sequence numbers and scheduled times), so every subscriber gets every publication from
/// its own server.
pub struct Publishers {
    /// Each fills its report as it goes, so that a publisher the server holds back (NATS
    /// slows a fast producer down) still leaves its figures.
    reports: Vec<Arc<Mutex<PublisherReport>>>,
    /// What an error is prefixed with: "" for one server, "server i (address): " for more.
    names: Vec<String>,
    /// The place of each publisher that finished.
    done: mpsc::Receiver<usize>,
    finished: Vec<bool>,
    publications: u32,
}

impl Publishers {
    /// Starts publishing `schedule` to each of `servers`.
    pub fn start(servers: &[Target], schedule: Schedule) -> Publishers {
        let (done_tx, done) = mpsc::channel();
        let mut reports = Vec::new();
        for (index, server) in servers.iter().enumerate() {
            let report = Arc::new(Mutex::new(PublisherReport::default()));
            let into = report.clone();
            let target = Target::external(
                server.kind,
                server.address,
                None,
                None,
                server.api_key.clone(),
            );
            let done_tx = done_tx.clone();
            std::thread::spawn(move || {
                run(&target, schedule, &into);
                let _ = done_tx.send(index);
            });
            reports.push(report);
        }
        let names = match servers {
            [_] => vec![String::new()],
            _ => servers
                .iter()
                .enumerate()
                .map(|(i, s)| format!("server {i} ({}): ", s.address))
                .collect(),
        };
        Publishers {
            finished: vec![false; reports.len()],
            reports,
            names,
            done,
            publications: schedule.count,
        }
    }

    /// Takes the publishers that finished since the last look; fails with the error of one
    /// that failed.
    pub fn check(&mut self) -> anyhow::Result<()> {
        while let Ok(index) = self.done.try_recv() {
            self.finished[index] = true;
            if let Some(error) = &lock(&self.reports[index]).error {
                bail!("publisher: {}{error}", self.names[index]);
            }
        }
        Ok(())
    }

    /// Waits up to `grace` for the publishers still running; those still running then
    /// report an error. Returns the figures of all as one: `sent` is the least any of them
    /// sent, the samples are pooled, and the first error (by server) is kept, prefixed
    /// with its server when there are several.
    pub fn finish(mut self, grace: Duration) -> PublisherReport {
        let deadline = Instant::now() + grace;
        while self.finished.contains(&false) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left) {
                Ok(index) => self.finished[index] = true,
                Err(_) => break,
            }
        }
        let mut merged = PublisherReport {
            sent: u32::MAX,
            ..PublisherReport::default()
        };
        for ((report, name), finished) in self.reports.iter().zip(&self.names).zip(&self.finished) {
            let mut report = lock(report);
            if !finished {
                report.error = Some(format!(
                    "still publishing at the drain deadline: {} of {} sent (the server held the publisher back)",
                    report.sent, self.publications
                ));
            }
            merged.sent = merged.sent.min(report.sent);
            merged.answered_us.extend(&report.answered_us);
            merged.start_lag_us.extend(&report.start_lag_us);
            if merged.error.is_none()
                && let Some(error) = &report.error
            {
                merged.error = Some(format!("{name}{error}"));
            }
        }
        merged
    }
}

fn lock(report: &Mutex<PublisherReport>) -> MutexGuard<'_, PublisherReport> {
    report.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::Schedule;

    #[test]
    fn a_burst_shares_its_scheduled_time() {
        let schedule = Schedule {
            first_ns: 1_000,
            interval_ns: 500,
            count: 6,
            payload: 100,
            burst: 3,
        };
        let times: Vec<u64> = (0..6).map(|seq| schedule.at(seq)).collect();
        assert_eq!(times, [1_000, 1_000, 1_000, 1_500, 1_500, 1_500]);
        let single = Schedule {
            burst: 1,
            ..schedule
        };
        assert_eq!(single.at(2), 2_000);
    }
}
