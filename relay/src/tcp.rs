//! ICE-TCP transport (RFC 6544 passive candidates) with RFC 4571 framing: every STUN,
//! DTLS, RTP or RTCP packet travels on the TCP stream behind a 2-byte big-endian length.
//!
//! [`FrameDecoder`] is the framing, sans-IO. The rest is the IO around it: one accept task,
//! and one task per connection (a reader sub-task that turns frames into
//! `TcpEvent::Data`, and a writer loop that frames what the driver queues). The driver
//! owns the mapping connection → peer; dropping a connection's writer (`mpsc::Sender`)
//! closes it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The largest frame RFC 4571 can carry.
pub const MAX_FRAME: usize = u16::MAX as usize;
/// Frames queued for one connection's writer; past this the driver drops (as UDP would).
pub const WRITE_QUEUE: usize = 256;

/// Prefixes `payload` with its 2-byte length. `None` when it is longer than [`MAX_FRAME`].
pub fn frame(payload: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(payload.len()).ok()?;
    let mut out = Vec::with_capacity(2 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Some(out)
}

/// Splits a TCP byte stream into RFC 4571 frames. Holds at most one partial frame
/// (≤ 65,537 bytes) plus what was pushed since.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame's payload, if one is buffered. Empty frames are skipped.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        loop {
            let rest = &self.buf[self.start..];
            if rest.len() < 2 {
                self.compact();
                return None;
            }
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            if rest.len() < 2 + len {
                self.compact();
                return None;
            }
            let payload = rest[2..2 + len].to_vec();
            self.start += 2 + len;
            if len > 0 {
                return Some(payload);
            }
        }
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// What the TCP side tells the driver.
#[derive(Debug)]
pub(crate) enum TcpEvent {
    /// A connection was accepted; frames for it go to `writer`.
    Open {
        conn: u64,
        source: SocketAddr,
        local: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    /// One frame arrived.
    Data { conn: u64, data: Vec<u8> },
    /// The connection is gone.
    Closed { conn: u64 },
}

/// Accepts connections until the driver goes away. At most `max` at a time (the next is
/// closed at once).
pub(crate) async fn accept_loop(listener: TcpListener, events: mpsc::Sender<TcpEvent>, max: usize) {
    let live = Arc::new(AtomicUsize::new(0));
    let mut next: u64 = 1;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = events.closed() => break,
        };
        let (stream, source) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off a little instead of spinning.
                tracing::debug!(error = %e, "relay: TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if live.load(Ordering::Relaxed) >= max {
            tracing::debug!(%source, "relay: too many ICE-TCP connections; closing");
            continue;
        }
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        live.fetch_add(1, Ordering::Relaxed);
        let conn = next;
        next += 1;
        tokio::spawn(connection(
            conn,
            stream,
            source,
            local,
            events.clone(),
            live.clone(),
        ));
    }
}

async fn connection(
    conn: u64,
    stream: TcpStream,
    source: SocketAddr,
    local: SocketAddr,
    events: mpsc::Sender<TcpEvent>,
    live: Arc<AtomicUsize>,
) {
    let (writer, mut queue) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let open = TcpEvent::Open {
        conn,
        source,
        local,
        writer,
    };
    if events.send(open).await.is_ok() {
        let (mut rd, mut wr) = stream.into_split();
        let reader_events = events.clone();
        let reader = tokio::spawn(async move {
            let mut decoder = FrameDecoder::default();
            let mut buf = vec![0u8; 16 * 1024];
            'read: loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => decoder.push(&buf[..n]),
                }
                while let Some(data) = decoder.next_frame() {
                    if reader_events
                        .send(TcpEvent::Data { conn, data })
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
            }
            let _ = reader_events.send(TcpEvent::Closed { conn }).await;
        });
        // Until the driver drops the writer (the peer ended, or the connection was never
        // claimed) or the stream fails.
        while let Some(framed) = queue.recv().await {
            if wr.write_all(&framed).await.is_err() {
                break;
            }
        }
        reader.abort();
        let _ = events.try_send(TcpEvent::Closed { conn });
    }
    live.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_any_chunking() {
        let payloads: Vec<Vec<u8>> = vec![
            b"stun".to_vec(),
            vec![7u8; 1200],
            Vec::new(),
            vec![1u8; MAX_FRAME],
            b"x".to_vec(),
        ];
        let mut stream = Vec::new();
        for p in &payloads {
            stream.extend(frame(p).unwrap());
        }
        let expected: Vec<&Vec<u8>> = payloads.iter().filter(|p| !p.is_empty()).collect();
        for chunk in [1usize, 2, 3, 7, 1000, 70_000] {
            let mut d = FrameDecoder::default();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                d.push(c);
                while let Some(f) = d.next_frame() {
                    got.push(f);
                }
            }
            assert_eq!(got.len(), expected.len(), "chunk {chunk}");
            assert!(got.iter().zip(&expected).all(|(a, b)| a == *b));
            assert_eq!(d.buffered(), 0);
        }
        assert!(frame(&vec![0u8; MAX_FRAME + 1]).is_none());
    }

    #[test]
    fn a_partial_frame_waits_for_the_rest() {
        let mut d = FrameDecoder::default();
        d.push(&[0x00]);
        assert!(d.next_frame().is_none());
        d.push(&[0x03, b'a', b'b']);
        assert!(d.next_frame().is_none());
        assert_eq!(d.buffered(), 4);
        d.push(b"c\x00");
        assert_eq!(d.next_frame().unwrap(), b"abc");
        assert!(d.next_frame().is_none());
        assert_eq!(d.buffered(), 1);
    }
}
