//! A stand-in server for the load generator's tests: it speaks the floor's dialect (every
//! frame sent to `/publish` goes to every other connection) but holds each publication
//! for a known delay first, and can die on cue. `hub.rs`: a rootcast-dialect stand-in with
//! a chosen recovery behaviour, for the reconnect storm. [`rootcast_bin`] finds the real
//! server for the tests that run scenarios against it.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

pub mod hub;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(90);

pub struct DelayedFloor {
    pub address: SocketAddr,
    die: watch::Sender<bool>,
}

type Subscribers = Arc<Mutex<Vec<mpsc::Sender<Message>>>>;

impl DelayedFloor {
    /// Binds port 0 on 127.0.0.1 and serves until [`DelayedFloor::die`].
    pub async fn start(delay: Duration) -> DelayedFloor {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (die, dead) = watch::channel(false);
        let subscribers: Subscribers = Arc::default();
        let mut stop = dead.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = stop.changed() => return,
                    accepted = listener.accept() => accepted.unwrap(),
                };
                tokio::spawn(serve(stream, subscribers.clone(), delay, dead.clone()));
            }
        });
        DelayedFloor { address, die }
    }

    /// Closes every connection and the listener at once.
    pub fn die(&self) {
        let _ = self.die.send(true);
    }
}

// The handshake callback's `Result` type is tungstenite's (its error is an HTTP response).
#[allow(clippy::result_large_err)]
async fn serve(
    stream: tokio::net::TcpStream,
    subscribers: Subscribers,
    delay: Duration,
    mut dead: watch::Receiver<bool>,
) {
    let path = Arc::new(Mutex::new(String::new()));
    let seen = path.clone();
    let callback = move |request: &Request, response: Response| {
        *seen.lock().unwrap() = request.uri().path().to_owned();
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let path = path.lock().unwrap().clone();
    if path == "/publish" {
        loop {
            let message = tokio::select! {
                _ = dead.changed() => return,
                message = ws.next() => message,
            };
            let Some(Ok(Message::Text(text))) = message else {
                return;
            };
            let subscribers = subscribers.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let all: Vec<_> = subscribers.lock().unwrap().clone();
                for subscriber in all {
                    let _ = subscriber.send(Message::Text(text.clone())).await;
                }
            });
            if ws.send(Message::text("ok")).await.is_err() {
                return;
            }
        }
    }
    let (tx, mut rx) = mpsc::channel(1024);
    subscribers.lock().unwrap().push(tx);
    loop {
        tokio::select! {
            _ = dead.changed() => return, // dropping the socket: the client sees EOF
            message = rx.recv() => {
                let Some(message) = message else { return };
                if ws.send(message).await.is_err() {
                    return;
                }
            }
            incoming = ws.next() => {
                if !matches!(incoming, Some(Ok(_))) {
                    return;
                }
            }
        }
    }
}

/// The `rootcast` binary next to `rootcast-loadtest` in the same target folder (built by
/// `cargo build -p rootcast --bin rootcast` with the same profile), or the one
/// `ROOTCAST_BIN` names: for the tests that run a scenario against the real server.
pub fn rootcast_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("ROOTCAST_BIN") {
        return path.into();
    }
    let path = PathBuf::from(env!("CARGO_BIN_EXE_rootcast-loadtest")).with_file_name("rootcast");
    assert!(
        path.exists(),
        "no rootcast binary at {}: build it with `cargo build -p rootcast --bin rootcast` (same \
         profile and target folder) or set ROOTCAST_BIN",
        path.display()
    );
    path
}

/// A fresh folder for a run's results.
pub fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rootcast-loadtest-test-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `rootcast-loadtest ws-fanout` against `address` (a floor-dialect server),
/// unpinned, with the given extra arguments; kills it if it outlives [`TIMEOUT`].
pub async fn run_fanout(address: SocketAddr, out: &std::path::Path, extra: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rootcast-loadtest"));
    command
        .args([
            "ws-fanout",
            "--targets",
            "floor",
            "--no-pin",
            "--workers",
            "2",
        ])
        .args(["--address", &address.to_string()])
        .arg("--out")
        .arg(out)
        .args(extra)
        .kill_on_drop(true);
    tokio::time::timeout(TIMEOUT, command.output())
        .await
        .expect("the load generator exits by itself")
        .expect("the load generator runs")
}

/// Runs `rootcast-loadtest ws-reconnect-storm` against `address` (a rootcast-dialect
/// server such as [`hub::StandInHub`]), unpinned, two workers, with the given extra
/// arguments; kills it if it outlives [`TIMEOUT`].
pub async fn run_storm(address: SocketAddr, out: &std::path::Path, extra: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rootcast-loadtest"));
    command
        .args([
            "ws-reconnect-storm",
            "--targets",
            "rootcast",
            "--no-pin",
            "--workers",
            "2",
            "--secret",
            "standin-secret",
            "--api-key",
            "standin-key",
        ])
        .args(["--address", &address.to_string()])
        .arg("--out")
        .arg(out)
        .args(extra)
        .kill_on_drop(true);
    tokio::time::timeout(TIMEOUT, command.output())
        .await
        .expect("the load generator exits by itself")
        .expect("the load generator runs")
}
