//! The raw floor (`rootcast-loadtest floor`): the least a WebSocket fan-out server can do
//! on this machine. It performs the WebSocket handshake by hand, keeps plain blocking
//! sockets, and writes each frame received on `/publish` — encoded once — to every other
//! connection from two threads. No protocol, channels, queues, pings or reads after the
//! handshake. Every fan-out figure of the other servers is given as a ratio to it.
//!
//! It prints `LISTENING <address>` on its first line and exits when its standard input
//! closes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Message, WebSocket};

pub const LISTENING: &str = "LISTENING ";

/// The subscribers' sockets. A `std::sync::Mutex`: held by the accept loop for a push and
/// by the publisher thread for one fan-out, never across an await.
type Subscribers = Arc<Mutex<Vec<TcpStream>>>;

pub fn run(listen: SocketAddr) -> anyhow::Result<()> {
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    // Accept with tokio only to get a listen backlog of 4096 (std's is 128); everything
    // after the accept is blocking.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(listen)?;
        let listener = socket.listen(4096)?;
        println!("{LISTENING}{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let subscribers: Subscribers = Arc::default();
        loop {
            let (stream, _) = listener.accept().await?;
            let stream = stream.into_std()?;
            stream.set_nonblocking(false)?;
            if let Err(error) = accept(stream, &subscribers) {
                eprintln!("floor: handshake failed: {error:#}");
            }
        }
    })
}

/// Reads the upgrade request, answers it, and files the socket as a subscriber or starts
/// a publisher thread for `/publish`.
fn accept(stream: TcpStream, subscribers: &Subscribers) -> anyhow::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let mut key = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            anyhow::bail!("eof in request headers");
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("sec-websocket-key")
        {
            key = Some(derive_accept_key(value.trim().as_bytes()));
        }
    }
    let key = key.context("no Sec-WebSocket-Key")?;
    // The client sends nothing before our answer, so the reader holds no buffered bytes.
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {key}\r\n\r\n"
    )?;
    if path == "/publish" {
        stream.set_read_timeout(None)?;
        let subscribers = subscribers.clone();
        std::thread::spawn(move || {
            publisher(
                WebSocket::from_raw_socket(stream, Role::Server, None),
                &subscribers,
            )
        });
    } else {
        subscribers
            .lock()
            .expect("no thread panics while holding the subscribers")
            .push(stream);
    }
    Ok(())
}

/// Each text or binary message from the publisher goes to every subscriber, then the
/// publisher gets `ok`.
fn publisher(mut ws: WebSocket<TcpStream>, subscribers: &Subscribers) {
    loop {
        let payload = match ws.read() {
            Ok(Message::Text(text)) => text.as_bytes().to_vec(),
            Ok(Message::Binary(bytes)) => bytes.to_vec(),
            Ok(Message::Close(_)) | Err(_) => return,
            Ok(_) => continue,
        };
        let frame = encode_text_frame(&payload);
        let mut sockets = subscribers
            .lock()
            .expect("no thread panics while holding the subscribers");
        let half = sockets.len().div_ceil(2);
        let (a, b) = sockets.split_at_mut(half);
        let dead: Vec<bool> = std::thread::scope(|scope| {
            let first = scope.spawn(|| write_all(a, &frame));
            let mut dead = write_all(b, &frame);
            let mut all = first.join().unwrap_or_else(|_| vec![true; half]);
            all.append(&mut dead);
            all
        });
        let mut flags = dead.into_iter();
        sockets.retain(|_| !flags.next().unwrap_or(false));
        drop(sockets);
        if ws.send(Message::text("ok")).is_err() {
            return;
        }
    }
}

/// Writes `frame` to every socket; says which ones failed.
fn write_all(sockets: &mut [TcpStream], frame: &[u8]) -> Vec<bool> {
    sockets
        .iter_mut()
        .map(|s| s.write_all(frame).is_err())
        .collect()
}

/// An unmasked server-to-client text frame holding `payload`.
fn encode_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 10);
    frame.push(0x81);
    match payload.len() {
        n @ 0..=125 => frame.push(n as u8),
        n @ 126..=65535 => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::encode_text_frame;

    #[test]
    fn frames_carry_their_length() {
        assert_eq!(encode_text_frame(b"hi"), b"\x81\x02hi");
        let long = encode_text_frame(&[b'x'; 300]);
        assert_eq!(&long[..4], &[0x81, 126, 1, 44]);
        assert_eq!(long.len(), 304);
    }
}
