//! A connection's outgoing queue: bounded, shared between the fan-out (which appends
//! pre-encoded frames) and the connection's task (which drains them into one write).
//!
//! Invariants:
//! - the queue never holds more than `cap` bytes: the append that would pass it closes
//!   the connection with [`Disconnect::SLOW`] and drops what was queued, so a client that
//!   stops reading costs at most `cap` bytes of server memory;
//! - after `close`, nothing more is queued; the connection task writes what is left
//!   (unless the close was for slowness) and then the close frame;
//! - while a subscription is being set up ("syncing"), publications for its channel are
//!   held aside and released after the subscribe reply, dropping those the reply already
//!   carried, so a subscriber sees every publication once, in order.
//!
//! The lock is a plain `std` mutex: it is held for a few pointer moves and never across
//! an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::codes::{CustomDisconnect, Disconnect};
use crate::protocol::RawJson;

/// Something the server API asks a connection's task to do.
#[derive(Debug)]
pub enum Control {
    /// Subscribe to `channel`; `data` goes to the client in the `subscribe` push.
    Subscribe {
        channel: String,
        data: Option<RawJson>,
    },
    Unsubscribe(String),
}

/// Publications held aside per syncing channel, with their offsets.
type HeldPublications = HashMap<String, Vec<(u64, Bytes)>>;

pub struct Outbound {
    state: Mutex<State>,
    notify: Notify,
    cap: usize,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    queued_bytes: usize,
    closing: Option<CustomDisconnect>,
    /// Channels whose subscription is being set up, with the publications held aside.
    syncing: Option<Box<HeldPublications>>,
    control: Vec<Control>,
}

/// What [`Outbound::push`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The connection is closing; the frame was dropped.
    Closed,
    /// This frame would have passed the cap: the connection is now closing as slow, and
    /// `dropped` queued frames (this one included) were thrown away.
    Overflow {
        dropped: usize,
    },
}

/// What the connection task takes from the queue in one go.
pub struct Drained {
    /// Frames joined with `\n`, ready for one WebSocket text message (empty if none).
    pub payload: Bytes,
    /// How many frames the payload holds.
    pub frames: usize,
    pub control: Vec<Control>,
    /// Set once everything before the close has been taken.
    pub close: Option<CustomDisconnect>,
}

impl Outbound {
    pub fn new(cap: usize) -> Self {
        Outbound {
            state: Mutex::default(),
            notify: Notify::new(),
            cap,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until there is something to drain. A wake-up that arrived before the call is
    /// not lost.
    pub async fn ready(&self) {
        self.notify.notified().await;
    }

    /// Queues a frame (a reply or a push not tied to a channel stream).
    pub fn push(&self, frame: Bytes) -> Pushed {
        let mut state = self.lock();
        let pushed = self.push_locked(&mut state, frame);
        drop(state);
        self.notify.notify_one();
        pushed
    }

    /// Queues a publication of `channel`, unless that channel's subscription is syncing,
    /// in which case it is held aside until [`Outbound::finish_sync`].
    pub fn push_publication(&self, channel: &str, offset: u64, frame: &Bytes) -> Pushed {
        let mut state = self.lock();
        if let Some(held) = state.syncing.as_mut().and_then(|s| s.get_mut(channel)) {
            held.push((offset, frame.clone()));
            return Pushed::Queued;
        }
        let pushed = self.push_locked(&mut state, frame.clone());
        drop(state);
        self.notify.notify_one();
        pushed
    }

    /// Queues a batch of `channel`'s publications as the one frame `joined`, unless that
    /// channel's subscription is syncing, in which case its `parts` (offset, frame) are
    /// held aside one by one, as [`Outbound::push_publication`] would.
    pub fn push_batch<'a>(
        &self,
        channel: &str,
        joined: &Bytes,
        parts: impl Iterator<Item = (u64, &'a Bytes)>,
    ) -> Pushed {
        let mut state = self.lock();
        if let Some(held) = state.syncing.as_mut().and_then(|s| s.get_mut(channel)) {
            held.extend(parts.map(|(offset, frame)| (offset, frame.clone())));
            return Pushed::Queued;
        }
        let pushed = self.push_locked(&mut state, joined.clone());
        drop(state);
        self.notify.notify_one();
        pushed
    }

    fn push_locked(&self, state: &mut State, frame: Bytes) -> Pushed {
        if state.closing.is_some() {
            return Pushed::Closed;
        }
        if state.queued_bytes + frame.len() > self.cap {
            let dropped = state.frames.len() + 1;
            state.frames.clear();
            state.queued_bytes = 0;
            state.syncing = None;
            state.closing = Some(Disconnect::SLOW.into());
            return Pushed::Overflow { dropped };
        }
        state.queued_bytes += frame.len();
        state.frames.push_back(frame);
        Pushed::Queued
    }

    /// Starts holding publications of `channel` aside.
    pub fn begin_sync(&self, channel: &str) {
        self.lock()
            .syncing
            .get_or_insert_with(Default::default)
            .insert(channel.to_owned(), Vec::new());
    }

    /// Ends the sync of `channels`: queues `reply`, then the publications held aside for
    /// each channel whose offset is above the offset the reply already covers (`0` when
    /// the subscription is not positioned: everything held is new). Publications without
    /// an offset (not kept in history) are always new.
    pub fn finish_sync(&self, channels: &[(&str, u64)], reply: Bytes) -> Pushed {
        let mut state = self.lock();
        let mut held_frames = Vec::new();
        if let Some(syncing) = state.syncing.as_mut() {
            for (channel, covered) in channels {
                if let Some(held) = syncing.remove(*channel) {
                    held_frames.extend(
                        held.into_iter()
                            .filter(|(offset, _)| *offset == 0 || *offset > *covered)
                            .map(|(_, frame)| frame),
                    );
                }
            }
            if syncing.is_empty() {
                state.syncing = None;
            }
        }
        let mut pushed = self.push_locked(&mut state, reply);
        for frame in held_frames {
            if pushed == Pushed::Queued {
                pushed = self.push_locked(&mut state, frame);
            }
        }
        drop(state);
        self.notify.notify_one();
        pushed
    }

    /// Abandons a sync (the subscribe failed): drops what was held aside.
    pub fn cancel_sync(&self, channel: &str) {
        let mut state = self.lock();
        if let Some(syncing) = state.syncing.as_mut() {
            syncing.remove(channel);
            if syncing.is_empty() {
                state.syncing = None;
            }
        }
    }

    /// Asks the connection task to do something (server-side subscribe, unsubscribe).
    pub fn control(&self, control: Control) {
        self.lock().control.push(control);
        self.notify.notify_one();
    }

    /// Closes the connection once what is queued has been written (or at once, dropping
    /// the queue, for [`Disconnect::SLOW`]). The first close wins.
    pub fn close(&self, disconnect: CustomDisconnect) {
        let mut state = self.lock();
        if state.closing.is_none() {
            state.closing = Some(disconnect);
        }
        drop(state);
        self.notify.notify_one();
    }

    pub fn is_closing(&self) -> bool {
        self.lock().closing.is_some()
    }

    /// Whether the connection was closed for passing its queue cap.
    pub fn is_slow(&self) -> bool {
        self.lock()
            .closing
            .as_ref()
            .is_some_and(|d| d.code == Disconnect::SLOW.code)
    }

    /// Makes the next [`Outbound::ready`] return at once (a caller that consumed a
    /// wake-up without draining gives it back).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Takes queued frames up to about `max_bytes`, joined into one payload.
    pub fn drain(&self, max_bytes: usize) -> Drained {
        let mut state = self.lock();
        let control = std::mem::take(&mut state.control);
        let mut frames: usize = 0;
        let payload = match state.frames.len() {
            0 => Bytes::new(),
            1 => {
                frames = 1;
                state.frames.pop_front().unwrap_or_default()
            }
            _ => {
                let mut joined =
                    BytesMut::with_capacity(max_bytes.min(state.queued_bytes + state.frames.len()));
                while let Some(frame) = state.frames.front() {
                    if frames > 0 && joined.len() + 1 + frame.len() > max_bytes {
                        break;
                    }
                    if frames > 0 {
                        joined.extend_from_slice(b"\n");
                    }
                    joined.extend_from_slice(frame);
                    frames += 1;
                    state.frames.pop_front();
                }
                joined.freeze()
            }
        };
        state.queued_bytes -= payload.len().saturating_sub(frames.saturating_sub(1));
        let close = if state.frames.is_empty() {
            state.closing.clone()
        } else {
            // More to write first: make sure the task comes back.
            self.notify.notify_one();
            None
        };
        Drained {
            payload,
            frames,
            control,
            close,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn drains_frames_joined_by_newlines() {
        let out = Outbound::new(1024);
        out.push(frame("a"));
        out.push(frame("bb"));
        let drained = out.drain(1024);
        assert_eq!(&drained.payload[..], b"a\nbb");
        assert_eq!(drained.frames, 2);
        assert!(out.drain(1024).payload.is_empty());
    }

    #[test]
    fn drain_respects_max_bytes_and_accounting() {
        let out = Outbound::new(1024);
        for _ in 0..4 {
            out.push(frame("xxxx"));
        }
        let first = out.drain(9);
        assert_eq!(&first.payload[..], b"xxxx\nxxxx");
        let second = out.drain(100);
        assert_eq!(second.frames, 2);
        // Everything written: the byte count is back to zero, so the full cap is usable.
        for _ in 0..256 {
            assert_eq!(out.push(frame("xxxx")), Pushed::Queued);
        }
    }

    #[test]
    fn overflow_closes_as_slow_and_drops_queue() {
        let out = Outbound::new(10);
        assert_eq!(out.push(frame("123456")), Pushed::Queued);
        assert_eq!(out.push(frame("123456")), Pushed::Overflow { dropped: 2 });
        assert_eq!(out.push(frame("1")), Pushed::Closed);
        let drained = out.drain(100);
        assert!(drained.payload.is_empty());
        assert_eq!(drained.close, Some(Disconnect::SLOW.into()));
    }

    #[test]
    fn close_after_queued_frames() {
        let out = Outbound::new(100);
        out.push(frame("last"));
        out.close(Disconnect::SHUTDOWN.into());
        out.close(Disconnect::SLOW.into());
        let drained = out.drain(100);
        assert_eq!(&drained.payload[..], b"last");
        assert_eq!(drained.close, Some(Disconnect::SHUTDOWN.into()));
    }

    #[test]
    fn sync_holds_publications_and_drops_covered_ones() {
        let out = Outbound::new(1024);
        out.begin_sync("c");
        out.push_publication("c", 4, &frame("p4"));
        out.push_publication("c", 5, &frame("p5"));
        out.push_publication("other", 9, &frame("o9"));
        // The reply carried publications up to offset 4.
        out.finish_sync(&[("c", 4)], frame("reply"));
        out.push_publication("c", 6, &frame("p6"));
        assert_eq!(&out.drain(1024).payload[..], b"o9\nreply\np5\np6");
    }

    #[test]
    fn a_batch_is_one_frame_or_held_part_by_part() {
        let out = Outbound::new(1024);
        let (p1, p2) = (frame("p1"), frame("p2"));
        let parts = [(1, &p1), (2, &p2)];
        out.push_batch("c", &frame("p1\np2"), parts.into_iter());
        let drained = out.drain(1024);
        assert_eq!((&drained.payload[..], drained.frames), (&b"p1\np2"[..], 1));

        // Syncing: the reply covered offset 1, so only p2 follows it.
        out.begin_sync("c");
        out.push_batch("c", &frame("p1\np2"), parts.into_iter());
        out.finish_sync(&[("c", 1)], frame("reply"));
        assert_eq!(&out.drain(1024).payload[..], b"reply\np2");
    }

    #[test]
    fn cancelled_sync_drops_held() {
        let out = Outbound::new(1024);
        out.begin_sync("c");
        out.push_publication("c", 1, &frame("p1"));
        out.cancel_sync("c");
        out.push_publication("c", 2, &frame("p2"));
        assert_eq!(&out.drain(1024).payload[..], b"p2");
    }

    #[tokio::test]
    async fn ready_is_not_lost_when_notified_first() {
        let out = Outbound::new(64);
        out.push(frame("x"));
        tokio::time::timeout(std::time::Duration::from_secs(1), out.ready())
            .await
            .expect("the earlier push left a wake-up");
    }
}
