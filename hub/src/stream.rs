//! One channel's publication stream: offsets, epoch and the history window.
//!
//! A plain struct with no IO and no clock: every method that depends on time takes `now`.
//! The in-memory broker keeps one per channel; the Redis broker keeps the same state in
//! Redis and follows the same rules, which the broker conformance tests check.
//!
//! Invariants:
//! - offsets are assigned 1, 2, 3, … with no gap for the life of an epoch;
//! - history holds the newest publications, at most `size` of them, none older than `ttl`;
//! - when the stream's meta expires (no publication for `meta_ttl`), the next publication
//!   starts a new epoch at offset 1, so a client holding the old position is told it
//!   cannot be recovered rather than being handed the wrong publications.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::{Publication, StreamPosition};

/// Limits applied when appending.
#[derive(Debug, Clone, Copy)]
pub struct HistoryLimits {
    pub size: usize,
    pub ttl: Duration,
    pub meta_ttl: Duration,
}

/// What a history read asks for.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// Only publications after this position; the position must still be covered by
    /// history, else the read fails with [`Unrecoverable`].
    pub since: Option<StreamPosition>,
    /// At most this many publications; `None` for all of them, `Some(0)` for the stream
    /// position only.
    pub limit: Option<usize>,
    /// Newest first.
    pub reverse: bool,
}

/// The position given in a history read is not covered by history: the epoch changed,
/// the offset is in the future, or the publications after it are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unrecoverable position")]
pub struct Unrecoverable;

#[derive(Debug)]
pub struct ChannelStream {
    epoch: String,
    top: u64,
    entries: VecDeque<Entry>,
    meta_expires: Instant,
}

#[derive(Debug)]
struct Entry {
    expires: Instant,
    publication: Arc<Publication>,
}

impl ChannelStream {
    pub fn new(epoch: String, now: Instant, meta_ttl: Duration) -> Self {
        ChannelStream {
            epoch,
            top: 0,
            entries: VecDeque::new(),
            meta_expires: now + meta_ttl,
        }
    }

    pub fn position(&self) -> StreamPosition {
        StreamPosition {
            offset: self.top,
            epoch: self.epoch.clone(),
        }
    }

    /// Whether the stream's meta has expired: the owner drops it and starts a new epoch.
    pub fn is_expired(&self, now: Instant) -> bool {
        now >= self.meta_expires
    }

    /// Keeps the publication in history within `limits`, with the next offset. With no
    /// history (size or TTL zero) the publication is not part of the stream: it gets no
    /// offset (0) and the position stays where it was, as in Centrifugo, so clients never
    /// see an offset that history cannot give back.
    pub fn append(
        &mut self,
        mut publication: Publication,
        now: Instant,
        limits: HistoryLimits,
    ) -> (Arc<Publication>, Option<StreamPosition>) {
        if limits.size == 0 || limits.ttl.is_zero() {
            return (Arc::new(publication), None);
        }
        self.top += 1;
        publication.offset = self.top;
        let publication = Arc::new(publication);
        self.meta_expires = now + limits.meta_ttl;
        self.entries.push_back(Entry {
            expires: now + limits.ttl,
            publication: publication.clone(),
        });
        while self.entries.len() > limits.size {
            self.entries.pop_front();
        }
        self.prune(now);
        (publication, Some(self.position()))
    }

    /// Drops publications whose TTL has passed.
    pub fn prune(&mut self, now: Instant) {
        while self.entries.front().is_some_and(|e| e.expires <= now) {
            self.entries.pop_front();
        }
    }

    pub fn clear_history(&mut self) {
        self.entries.clear();
    }

    /// Reads history. See [`HistoryFilter`] for the rules.
    ///
    /// With `since` and `reverse`, reads backwards from just before `since` (paging to
    /// older publications, as the SDKs do); without `reverse`, reads forwards from just
    /// after it and fails unless history still holds every publication after `since`.
    /// An empty epoch in `since` matches any epoch.
    pub fn read(
        &mut self,
        filter: &HistoryFilter,
        now: Instant,
    ) -> Result<(Vec<Arc<Publication>>, StreamPosition), Unrecoverable> {
        self.prune(now);
        let limit = filter.limit.unwrap_or(usize::MAX);
        let position = self.position();
        let Some(since) = &filter.since else {
            let all = self.entries.iter().map(|e| e.publication.clone());
            let publications = if filter.reverse {
                all.rev().take(limit).collect()
            } else {
                all.take(limit).collect()
            };
            return Ok((publications, position));
        };
        if (!since.epoch.is_empty() && since.epoch != self.epoch) || since.offset > self.top {
            return Err(Unrecoverable);
        }
        let publications = if filter.reverse {
            self.entries
                .iter()
                .rev()
                .filter(|e| e.publication.offset < since.offset)
                .take(limit)
                .map(|e| e.publication.clone())
                .collect()
        } else {
            let oldest_kept = self
                .entries
                .front()
                .map_or(self.top + 1, |e| e.publication.offset);
            // Every publication after `since` must still be here.
            if since.offset + 1 < oldest_kept {
                return Err(Unrecoverable);
            }
            self.entries
                .iter()
                .filter(|e| e.publication.offset > since.offset)
                .take(limit)
                .map(|e| e.publication.clone())
                .collect()
        };
        Ok((publications, position))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;

    const LIMITS: HistoryLimits = HistoryLimits {
        size: 3,
        ttl: Duration::from_secs(60),
        meta_ttl: Duration::from_secs(3600),
    };

    fn publication(n: u32) -> Publication {
        Publication {
            data: RawValue::from_string(n.to_string()).unwrap(),
            info: None,
            offset: 0,
            tags: None,
        }
    }

    fn offsets(pubs: &[Arc<Publication>]) -> Vec<u64> {
        pubs.iter().map(|p| p.offset).collect()
    }

    fn since(offset: u64, epoch: &str) -> HistoryFilter {
        HistoryFilter {
            since: Some(StreamPosition {
                offset,
                epoch: epoch.into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn offsets_are_consecutive_and_history_is_bounded() {
        let now = Instant::now();
        let mut stream = ChannelStream::new("e1".into(), now, LIMITS.meta_ttl);
        for n in 1..=5 {
            let (p, pos) = stream.append(publication(n), now, LIMITS);
            assert_eq!(p.offset, n as u64);
            assert_eq!(pos.unwrap().offset, n as u64);
        }
        let (pubs, pos) = stream.read(&HistoryFilter::default(), now).unwrap();
        assert_eq!(offsets(&pubs), vec![3, 4, 5]);
        assert_eq!(
            pos,
            StreamPosition {
                offset: 5,
                epoch: "e1".into()
            }
        );
    }

    #[test]
    fn recovery_window() {
        let now = Instant::now();
        let mut stream = ChannelStream::new("e1".into(), now, LIMITS.meta_ttl);
        for n in 1..=5 {
            stream.append(publication(n), now, LIMITS);
        }
        // Offsets 3..5 are kept: a client at 2 gets exactly 3, 4, 5.
        let (pubs, _) = stream.read(&since(2, "e1"), now).unwrap();
        assert_eq!(offsets(&pubs), vec![3, 4, 5]);
        // A client at the top gets nothing and is recovered.
        let (pubs, _) = stream.read(&since(5, "e1"), now).unwrap();
        assert!(pubs.is_empty());
        // A client at 1 missed offset 2, which is gone.
        assert_eq!(
            stream.read(&since(1, "e1"), now).unwrap_err(),
            Unrecoverable
        );
        // Wrong epoch or a future offset.
        assert_eq!(
            stream.read(&since(4, "e0"), now).unwrap_err(),
            Unrecoverable
        );
        assert_eq!(
            stream.read(&since(6, "e1"), now).unwrap_err(),
            Unrecoverable
        );
    }

    #[test]
    fn ttl_expires_history_and_then_recovery_fails() {
        let start = Instant::now();
        let mut stream = ChannelStream::new("e1".into(), start, LIMITS.meta_ttl);
        stream.append(publication(1), start, LIMITS);
        stream.append(publication(2), start, LIMITS);
        let later = start + LIMITS.ttl + Duration::from_secs(1);
        let (pubs, pos) = stream.read(&HistoryFilter::default(), later).unwrap();
        assert!(pubs.is_empty());
        assert_eq!(pos.offset, 2);
        assert_eq!(
            stream.read(&since(1, "e1"), later).unwrap_err(),
            Unrecoverable
        );
        // Already at the top: nothing was missed, so recovery succeeds.
        assert!(stream.read(&since(2, "e1"), later).is_ok());
    }

    #[test]
    fn limit_and_reverse() {
        let now = Instant::now();
        let mut stream = ChannelStream::new("e".into(), now, LIMITS.meta_ttl);
        for n in 1..=3 {
            stream.append(publication(n), now, LIMITS);
        }
        let filter = HistoryFilter {
            limit: Some(2),
            reverse: true,
            ..Default::default()
        };
        assert_eq!(offsets(&stream.read(&filter, now).unwrap().0), vec![3, 2]);
        let filter = HistoryFilter {
            limit: Some(0),
            ..Default::default()
        };
        let (pubs, pos) = stream.read(&filter, now).unwrap();
        assert!(pubs.is_empty());
        assert_eq!(pos.offset, 3);
    }

    #[test]
    fn reverse_since_pages_backwards() {
        let now = Instant::now();
        let mut stream = ChannelStream::new("e".into(), now, LIMITS.meta_ttl);
        let limits = HistoryLimits { size: 10, ..LIMITS };
        for n in 1..=5 {
            stream.append(publication(n), now, limits);
        }
        let filter = HistoryFilter {
            limit: Some(2),
            reverse: true,
            ..since(4, "e")
        };
        assert_eq!(offsets(&stream.read(&filter, now).unwrap().0), vec![3, 2]);
        // An empty epoch matches the stream's.
        let filter = HistoryFilter {
            limit: Some(2),
            ..since(3, "")
        };
        assert_eq!(offsets(&stream.read(&filter, now).unwrap().0), vec![4, 5]);
    }

    #[test]
    fn no_history_when_size_or_ttl_is_zero() {
        let now = Instant::now();
        let mut stream = ChannelStream::new("e".into(), now, LIMITS.meta_ttl);
        stream.append(publication(1), now, LIMITS);
        let limits = HistoryLimits { size: 0, ..LIMITS };
        let (publication, position) = stream.append(publication(2), now, limits);
        assert_eq!((publication.offset, position), (0, None));
        let (kept, top) = stream.read(&HistoryFilter::default(), now).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(top.offset, 1);
    }

    #[test]
    fn meta_expiry() {
        let now = Instant::now();
        let mut stream = ChannelStream::new("e".into(), now, LIMITS.meta_ttl);
        stream.append(publication(1), now, LIMITS);
        assert!(!stream.is_expired(now + LIMITS.meta_ttl - Duration::from_secs(1)));
        assert!(stream.is_expired(now + LIMITS.meta_ttl));
    }
}
