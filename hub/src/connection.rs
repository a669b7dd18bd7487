//! The task that drives one WebSocket connection.
//!
//! One task per connection (no separate reader and writer) keeps the per-connection cost
//! small: it waits for whichever comes first — a client message, queued output, or the
//! session's next deadline (ping, pong, expiry). Output is drained from the connection's
//! queue into one WebSocket message per wake-up (frames joined with `\n`), so a burst of
//! sixteen publications costs one system call, not sixteen. With `client.write_delay` the
//! task also waits that long after each write, so a steady stream of publications (a
//! large meeting's Q&A) is written in batches too, not only bursts.
//!
//! The driver is generic over the socket (`Stream` + `Sink` of axum messages) so it can
//! be exercised with in-memory channels.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use crate::client::ClientSession;
use crate::codes::{CustomDisconnect, Disconnect};
use crate::hub::ConnHandle;
use crate::metrics::CodeLabel;
use crate::node::Node;

/// Most bytes written in one WebSocket message.
const MAX_WRITE_BYTES: usize = 64 * 1024;
/// A write that takes longer than this means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one connection until it closes.
pub async fn serve<S>(node: Arc<Node>, mut socket: S)
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    let handle = Arc::new(ConnHandle::new(
        uuid::Uuid::new_v4().to_string(),
        node.config().client.queue_max_size,
    ));
    node.metrics.connections.inc();
    if let Err(disconnect) = node.attach(&handle) {
        let _ = send_close(&mut socket, &disconnect.into()).await;
        node.metrics.connections.dec();
        return;
    }
    let mut session = ClientSession::new(node.clone(), handle.clone(), Instant::now());
    let mut deadline = session.next_deadline();
    let timer = tokio::time::sleep_until(deadline);
    tokio::pin!(timer);
    // `client.write_delay`: after a write, output waits until this timer fires. Boxed and
    // only made when configured, so a connection without a delay carries no timer.
    let write_delay = node.config().client.write_delay;
    let mut write_hold =
        (!write_delay.is_zero()).then(|| Box::pin(tokio::time::sleep(Duration::ZERO)));

    let close = loop {
        // Whether this wake-up may have moved the session's next deadline: anything but a
        // plain write of queued output (most wake-ups are deliveries) may.
        let mut deadline_may_move = true;
        tokio::select! {
            biased;
            () = output_ready(&handle, write_hold.as_mut()) => {
                // Boxed: its state (the send, a timeout, a wake-up) exists only while
                // writing, not for the whole life of an idle connection.
                let (written, ran_control) =
                    Box::pin(write_queued(&mut socket, &handle, &mut session)).await;
                deadline_may_move = ran_control;
                if let Some(hold) = write_hold.as_mut() {
                    hold.as_mut().reset(Instant::now() + write_delay);
                }
                match written {
                    Written::Open => {}
                    Written::Close(disconnect) => break Some(disconnect),
                    Written::Broken(disconnect) => {
                        if let Some(disconnect) = disconnect {
                            count_disconnect(&node, &disconnect);
                        }
                        break None;
                    }
                }
            }
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    // Boxed, like the other rare paths below, so the large state of command
                    // handling is allocated only while a command runs, not for the whole
                    // life of an idle connection's task.
                    let handling = Box::pin(session.handle_frame(text.as_bytes(), Instant::now()));
                    if let Err(disconnect) = handling.await {
                        handle.outbound.close(disconnect);
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    // This endpoint speaks the JSON protocol only.
                    handle.outbound.close(Disconnect::BAD_REQUEST.into());
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Err(error)) => {
                    tracing::debug!(client = %handle.client_id, %error, "websocket read failed");
                    // An oversized or malformed frame: tell the client why if we still can.
                    break Some(Disconnect::BAD_REQUEST.into());
                }
            },
            () = &mut timer => {
                if let Err(disconnect) = Box::pin(session.on_timer(Instant::now())).await {
                    handle.outbound.close(disconnect);
                }
            }
        }
        // Most wake-ups are deliveries, which leave the deadline alone: look at it only
        // after the others, and reset the timer only when it moved.
        if deadline_may_move {
            let next = session.next_deadline();
            if next != deadline {
                deadline = next;
                timer.as_mut().reset(deadline);
            }
        }
    };

    if let Some(disconnect) = &close {
        count_disconnect(&node, disconnect);
        let _ = tokio::time::timeout(WRITE_TIMEOUT, send_close(&mut socket, disconnect)).await;
    }
    Box::pin(session.close()).await;
    node.metrics.connections.dec();
}

/// Resolves when the connection has output to write (or control requests to run), but
/// not before `hold` (the write delay after the previous write) has fired.
async fn output_ready(handle: &ConnHandle, hold: Option<&mut Pin<Box<Sleep>>>) {
    if let Some(hold) = hold {
        hold.as_mut().await;
    }
    handle.outbound.ready().await;
}

fn count_disconnect(node: &Node, disconnect: &CustomDisconnect) {
    tracing::debug!(code = disconnect.code, reason = %disconnect.reason, "closing connection");
    node.metrics
        .disconnects
        .get_or_create(&CodeLabel {
            code: disconnect.code,
        })
        .inc();
}

/// What became of the connection after writing its queue.
enum Written {
    /// Still open.
    Open,
    /// Everything before the close was written: send this close frame.
    Close(CustomDisconnect),
    /// The socket can no longer be written (failed, timed out, or abandoned mid-frame
    /// because the client is too slow): drop it without a close frame.
    Broken(Option<CustomDisconnect>),
}

/// Writes what is queued as one WebSocket message and runs control requests; says
/// whether it ran any (they change the session, and so maybe its next deadline).
async fn write_queued<S>(
    socket: &mut S,
    handle: &ConnHandle,
    session: &mut ClientSession,
) -> (Written, bool)
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    let drained = handle.outbound.drain(MAX_WRITE_BYTES);
    let ran_control = !drained.control.is_empty();
    for control in drained.control {
        if let Err(disconnect) = Box::pin(session.on_control(control)).await {
            handle.outbound.close(disconnect);
        }
    }
    let written = write_frames(socket, handle, drained.frames, drained.payload).await;
    let written = match (written, drained.close) {
        (Written::Open, Some(disconnect)) => Written::Close(disconnect),
        (written, _) => written,
    };
    (written, ran_control)
}

/// Writes `frames` queued frames (`payload`, joined) as one WebSocket message, giving up
/// on a client that does not read.
async fn write_frames<S>(
    socket: &mut S,
    handle: &ConnHandle,
    frames: usize,
    payload: bytes::Bytes,
) -> Written
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    if frames > 0 {
        // Every frame is JSON we encoded, so the payload is UTF-8.
        let text = match axum::extract::ws::Utf8Bytes::try_from(payload) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(%error, "queued frame is not UTF-8");
                return Written::Close(Disconnect::SERVER_ERROR.into());
            }
        };
        let send = socket.send(Message::Text(text));
        tokio::pin!(send);
        let deadline = tokio::time::sleep(WRITE_TIMEOUT);
        tokio::pin!(deadline);
        let mut took_wakeup = false;
        loop {
            tokio::select! {
                // The send usually completes at once: try it first, so the timeout and the
                // wake-up are only registered when the socket is full.
                biased;
                result = &mut send => match result {
                    Ok(()) => break,
                    Err(_) => return Written::Broken(None),
                },
                // A client that does not read blocks this write while the fan-out keeps
                // queueing: once the queue passes its cap, give up on the socket at once.
                () = handle.outbound.ready() => {
                    took_wakeup = true;
                    if handle.outbound.is_slow() {
                        return Written::Broken(Some(Disconnect::SLOW.into()));
                    }
                }
                () = &mut deadline => return Written::Broken(Some(Disconnect::WRITE_ERROR.into())),
            }
        }
        if took_wakeup {
            handle.outbound.wake();
        }
    }
    Written::Open
}

async fn send_close<S>(socket: &mut S, disconnect: &CustomDisconnect) -> Result<(), axum::Error>
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    socket
        .send(Message::Close(Some(CloseFrame {
            code: disconnect.code,
            reason: disconnect.reason.clone().into(),
        })))
        .await
}
