//! The publisher: sends publications on a fixed schedule, each carrying its sequence
//! number and its *scheduled* send time, so a late publisher or a server's queue shows up
//! as latency (no coordinated omission). It speaks to each server the way a real back end
//! would: rootcast's `POST /api/publish`, NATS `PUB`, the floor's `/publish` WebSocket.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

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
pub fn run(target: &Target, schedule: Schedule, report: &Mutex<PublisherReport>) {
    let lock = || report.lock().unwrap_or_else(|e| e.into_inner());
    let mut link = match Link::open(target) {
        Ok(link) => link,
        Err(error) => {
            lock().error = Some(format!("opening: {error:#}"));
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
        lock().start_lag_us.push(lag_us);
        let last = (first + burst).min(schedule.count);
        let payloads: Vec<String> = (first..last)
            .map(|seq| dialect::payload(seq, scheduled, schedule.payload))
            .collect();
        if let Err(error) = link.publish(&payloads) {
            lock().error = Some(format!("publications {first}..{last}: {error:#}"));
            return;
        }
        let answered_us = unix_ns().saturating_sub(scheduled) / 1000;
        let mut report = lock();
        report.sent += last - first;
        report.answered_us.push(answered_us);
    }
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
