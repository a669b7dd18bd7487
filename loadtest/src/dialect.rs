//! What a client says to each kind of server and how it reads what comes back, without any
//! IO: the worker feeds received WebSocket frames to a [`Session`] and sends what it
//! returns. Every publication's payload starts with `{"s":<sequence>,"t":<scheduled send
//! time, ns since the Unix epoch>`, whatever wraps it.

use serde::{Deserialize, Serialize};

/// The kind of server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `rootcast serve`: Centrifugo's client protocol v2 (JSON) at `/connection/websocket`,
    /// publications through `POST /api/publish`.
    Rootcast,
    /// The raw floor (`rootcast-loadtest floor`): no protocol; every frame sent to
    /// `/publish` is written to every other connection.
    Floor,
    /// nats-server's WebSocket listener, NATS text protocol (CONNECT, SUB, PUB, MSG).
    Nats,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rootcast => "rootcast",
            Kind::Floor => "floor",
            Kind::Nats => "nats",
        }
    }

    /// The WebSocket path subscribers connect to.
    pub fn path(self) -> &'static str {
        match self {
            Kind::Rootcast => "/connection/websocket",
            Kind::Floor | Kind::Nats => "/",
        }
    }

    /// NATS over WebSocket is a byte stream: send it in binary frames. The Centrifugo JSON
    /// protocol requires text frames.
    pub fn binary_frames(self) -> bool {
        self == Kind::Nats
    }
}

/// The channel (rootcast), subject (nats) every subscriber listens on.
pub const ROOTCAST_CHANNEL: &str = "bench:fanout";
pub const NATS_SUBJECT: &str = "bench.fanout";

/// One publication found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publication {
    pub seq: u32,
    pub scheduled_ns: u64,
}

/// What one received frame asks of the client.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Feed {
    pub publications: Vec<Publication>,
    /// A reply to send (a pong).
    pub reply: Option<&'static str>,
    /// The server refused something; the connection is useless.
    pub error: Option<String>,
}

/// The client side of one connection.
#[derive(Debug)]
pub struct Session {
    kind: Kind,
    /// rootcast: replies to connect (id 1) and subscribe (id 2) seen; nats: the PONG after
    /// SUB seen (so the subscription is in place); floor: always.
    connected: bool,
    subscribed: bool,
    /// nats: bytes of an incomplete protocol line or message.
    pending: Vec<u8>,
    /// rootcast (`ws-reconnect-storm`): the stream position reached, the subscribe reply's
    /// `epoch` and the highest `offset` seen in a reply or a publication; a session made
    /// with [`Session::resume`] subscribes with `recover` from it.
    epoch: String,
    offset: u64,
    recover: bool,
    /// The last subscribe reply said `recovered: true`.
    recovered: bool,
}

impl Session {
    pub fn new(kind: Kind) -> Self {
        Session {
            kind,
            connected: kind == Kind::Floor,
            subscribed: kind == Kind::Floor,
            pending: Vec::new(),
            epoch: String::new(),
            offset: 0,
            recover: false,
            recovered: false,
        }
    }

    /// A new session of a client that lost `previous`'s connection: it subscribes with
    /// `recover: true` from `previous`'s position (rootcast; other kinds start afresh).
    pub fn resume(previous: &Session) -> Self {
        let mut session = Session::new(previous.kind);
        if previous.kind == Kind::Rootcast && !previous.epoch.is_empty() {
            session.epoch = previous.epoch.clone();
            session.offset = previous.offset;
            session.recover = true;
        }
        session
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether this session's subscribe asked for recovery and the reply said it recovered.
    pub fn recovered(&self) -> bool {
        self.recover && self.recovered
    }

    /// What to send once the WebSocket is open. `token`: the rootcast connection JWT.
    pub fn hello(&self, token: Option<&str>) -> Option<String> {
        match self.kind {
            Kind::Rootcast => {
                let recovery = if self.recover {
                    format!(
                        ",\"recover\":true,\"epoch\":\"{}\",\"offset\":{}",
                        self.epoch, self.offset
                    )
                } else {
                    String::new()
                };
                Some(format!(
                    "{{\"id\":1,\"connect\":{{\"token\":\"{}\",\"name\":\"rootcast-loadtest\"}}}}\n{{\"id\":2,\"subscribe\":{{\"channel\":\"{ROOTCAST_CHANNEL}\"{recovery}}}}}",
                    token.unwrap_or_default()
                ))
            }
            Kind::Floor => None,
            Kind::Nats => Some(format!(
                "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"name\":\"rootcast-loadtest\"}}\r\nSUB {NATS_SUBJECT} 1\r\nPING\r\n"
            )),
        }
    }

    /// Connected and subscribed: publications from now on reach this client.
    pub fn ready(&self) -> bool {
        self.connected && self.subscribed
    }

    pub fn feed(&mut self, frame: &[u8]) -> Feed {
        let mut feed = Feed::default();
        match self.kind {
            Kind::Floor => find_publications(frame, &mut feed.publications),
            Kind::Rootcast => self.feed_rootcast(frame, &mut feed),
            Kind::Nats => self.feed_nats(frame, &mut feed),
        }
        feed
    }

    fn feed_rootcast(&mut self, frame: &[u8], feed: &mut Feed) {
        for line in frame.split(|b| *b == b'\n') {
            if line == b"{}" {
                feed.reply = Some("{}");
            } else if line.starts_with(b"{\"id\":") {
                if contains(line, b"\"error\"") {
                    feed.error = Some(String::from_utf8_lossy(line).into_owned());
                } else if line.starts_with(b"{\"id\":1,") {
                    self.connected = true;
                } else if line.starts_with(b"{\"id\":2,") {
                    self.subscribed = true;
                    // A recoverable subscription's reply: its epoch, the publications it
                    // recovered, the stream's offset.
                    if let Some(epoch) = string_after(line, b"\"epoch\":\"") {
                        self.epoch = epoch;
                    }
                    self.recovered = contains(line, b"\"recovered\":true");
                    self.offset = self.offset.max(highest_offset(line));
                    find_publications(line, &mut feed.publications);
                }
            } else {
                self.offset = self.offset.max(highest_offset(line));
                find_publications(line, &mut feed.publications);
            }
        }
    }

    fn feed_nats(&mut self, frame: &[u8], feed: &mut Feed) {
        self.pending.extend_from_slice(frame);
        let mut at = 0;
        while let Some(end) = find(&self.pending[at..], b"\r\n") {
            let line = &self.pending[at..at + end];
            if let Some(header) = line.strip_prefix(b"MSG ") {
                // MSG <subject> <sid> [reply-to] <#bytes>\r\n<payload>\r\n
                let size = header
                    .rsplit(|b| *b == b' ')
                    .next()
                    .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok());
                let Some(size) = size else {
                    feed.error = Some(format!("bad MSG line {:?}", String::from_utf8_lossy(line)));
                    return;
                };
                let start = at + end + 2;
                if self.pending.len() < start + size + 2 {
                    break; // the rest of the message is in a later frame
                }
                find_publications(&self.pending[start..start + size], &mut feed.publications);
                at = start + size + 2;
                continue;
            }
            if line == b"PING" {
                feed.reply = Some("PONG\r\n");
            } else if line == b"PONG" {
                self.connected = true;
                self.subscribed = true;
            } else if line.starts_with(b"-ERR") {
                feed.error = Some(String::from_utf8_lossy(line).into_owned());
            }
            at += end + 2;
        }
        self.pending.drain(..at);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// The JSON string value that follows `key` (e.g. `"epoch":"`), up to its closing quote
/// (epochs hold no escapes).
fn string_after(bytes: &[u8], key: &[u8]) -> Option<String> {
    let start = find(bytes, key)? + key.len();
    let len = find(&bytes[start..], b"\"")?;
    Some(String::from_utf8_lossy(&bytes[start..start + len]).into_owned())
}

/// The largest `"offset":<n>` in `bytes` (0 if none): a push's publication offset, or the
/// highest of a subscribe reply's (its publications' and the stream's own).
fn highest_offset(mut bytes: &[u8]) -> u64 {
    const KEY: &[u8] = b"\"offset\":";
    let mut highest = 0;
    while let Some(at) = find(bytes, KEY) {
        bytes = &bytes[at + KEY.len()..];
        if let Some((n, rest)) = leading_number(bytes) {
            highest = highest.max(n);
            bytes = rest;
        }
    }
    highest
}

/// Every `{"s":<seq>,"t":<ns>` in `bytes`.
fn find_publications(mut bytes: &[u8], into: &mut Vec<Publication>) {
    const START: &[u8] = b"{\"s\":";
    while let Some(at) = find(bytes, START) {
        bytes = &bytes[at + START.len()..];
        let Some((seq, rest)) = leading_number(bytes) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix(b",\"t\":") else {
            continue;
        };
        let Some((scheduled_ns, rest)) = leading_number(rest) else {
            continue;
        };
        if let Ok(seq) = u32::try_from(seq) {
            into.push(Publication { seq, scheduled_ns });
        }
        bytes = rest;
    }
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

/// The payload of publication `seq` scheduled at `scheduled_ns`, padded with `x` to `size`
/// bytes (JSON, so every server can carry it as is).
pub fn payload(seq: u32, scheduled_ns: u64, size: usize) -> String {
    let head = format!("{{\"s\":{seq},\"t\":{scheduled_ns},\"p\":\"");
    let pad = size.saturating_sub(head.len() + 2);
    format!("{head}{}\"}}", "x".repeat(pad))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Publication = Publication {
        seq: 7,
        scheduled_ns: 1_700_000_000_123_456_789,
    };

    #[test]
    fn payload_has_the_asked_size_and_parses_back() {
        let text = payload(P.seq, P.scheduled_ns, 100);
        assert_eq!(text.len(), 100);
        let mut found = Vec::new();
        find_publications(text.as_bytes(), &mut found);
        assert_eq!(found, vec![P]);
    }

    #[test]
    fn rootcast_replies_pings_and_pushes() {
        let mut session = Session::new(Kind::Rootcast);
        assert!(
            session
                .hello(Some("jwt"))
                .unwrap()
                .contains("\"token\":\"jwt\"")
        );
        let feed =
            session.feed(b"{\"id\":1,\"connect\":{\"client\":\"c\"}}\n{\"id\":2,\"subscribe\":{}}");
        assert!(session.ready() && feed.error.is_none());
        let push = format!(
            "{{\"push\":{{\"channel\":\"bench:fanout\",\"pub\":{{\"data\":{}}}}}}}\n{{}}",
            payload(P.seq, P.scheduled_ns, 60)
        );
        let feed = session.feed(push.as_bytes());
        assert_eq!(feed.publications, vec![P]);
        assert_eq!(feed.reply, Some("{}"));
        let feed = Session::new(Kind::Rootcast).feed(b"{\"id\":2,\"error\":{\"code\":103}}");
        assert!(feed.error.is_some());
    }

    #[test]
    fn rootcast_recovery_resumes_from_the_last_offset_seen() {
        let mut session = Session::new(Kind::Rootcast);
        assert!(!session.hello(None).unwrap().contains("recover"));
        session.feed(b"{\"id\":1,\"connect\":{}}\n{\"id\":2,\"subscribe\":{\"recoverable\":true,\"epoch\":\"ab12\",\"offset\":4,\"positioned\":true}}");
        assert!(session.ready() && !session.recovered());
        let push = format!(
            "{{\"push\":{{\"channel\":\"bench:fanout\",\"pub\":{{\"data\":{},\"offset\":9}}}}}}",
            payload(P.seq, P.scheduled_ns, 60)
        );
        assert_eq!(session.feed(push.as_bytes()).publications, vec![P]);
        // The connection drops; the next session asks to recover from offset 9.
        let mut next = Session::resume(&session);
        assert!(!next.ready());
        let hello = next.hello(Some("jwt")).unwrap();
        assert!(
            hello.contains("\"recover\":true,\"epoch\":\"ab12\",\"offset\":9"),
            "{hello}"
        );
        // The reply carries the missed publications 10 and 11, and says it recovered.
        let missed = |seq: u32, offset: u64| {
            format!(
                "{{\"data\":{},\"offset\":{offset}}}",
                payload(seq, P.scheduled_ns, 60)
            )
        };
        let reply = format!(
            "{{\"id\":1,\"connect\":{{}}}}\n{{\"id\":2,\"subscribe\":{{\"recoverable\":true,\"epoch\":\"ab12\",\"publications\":[{},{}],\"recovered\":true,\"offset\":11}}}}",
            missed(8, 10),
            missed(9, 11)
        );
        let feed = next.feed(reply.as_bytes());
        assert!(next.ready() && next.recovered());
        let seqs: Vec<u32> = feed.publications.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, [8, 9]);
        assert!(
            Session::resume(&next)
                .hello(None)
                .unwrap()
                .contains("\"offset\":11")
        );
        // A reply that could not recover.
        let mut lost = Session::resume(&next);
        lost.feed(
            b"{\"id\":2,\"subscribe\":{\"recoverable\":true,\"epoch\":\"cd34\",\"offset\":40}}",
        );
        assert!(!lost.recovered());
        assert!(
            Session::resume(&lost)
                .hello(None)
                .unwrap()
                .contains("\"epoch\":\"cd34\",\"offset\":40")
        );
    }

    #[test]
    fn nats_messages_may_span_frames() {
        let mut session = Session::new(Kind::Nats);
        assert!(!session.ready());
        let feed = session.feed(b"INFO {\"server_id\":\"x\"}\r\nPONG\r\n");
        assert!(session.ready() && feed.publications.is_empty());
        let body = payload(P.seq, P.scheduled_ns, 100);
        let wire = format!("MSG bench.fanout 1 {}\r\n{body}\r\nPING\r\n", body.len());
        let (a, b) = wire.as_bytes().split_at(40);
        assert_eq!(session.feed(a), Feed::default());
        let feed = session.feed(b);
        assert_eq!(feed.publications, vec![P]);
        assert_eq!(feed.reply, Some("PONG\r\n"));
        assert!(session.pending.is_empty());
        let feed = session.feed(b"-ERR 'Authorization Violation'\r\n");
        assert!(feed.error.is_some());
    }
}
