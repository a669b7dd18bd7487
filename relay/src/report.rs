//! Viewer-count reports, coalesced: at most one per stream per interval (500 ms), and the
//! last value always reported. Plain state with `now` from the caller, like the core.
//!
//! A change outside the interval since the stream's last report goes out at once; one
//! inside it waits until the interval ends, and only the newest value goes out then (not
//! at all when it equals what was last reported). [`ViewerCounts::flush`] sends a stream's
//! pending value at once (before `stream_ended`, or when the stream goes away).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The interval between two reports of one stream.
pub const REPORT_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the last report went out, and what it said.
    last: Option<(Instant, usize)>,
    /// The newest value not reported yet.
    pending: Option<usize>,
}

/// Per-stream coalescing of viewer counts.
#[derive(Debug)]
pub struct ViewerCounts {
    interval: Duration,
    streams: HashMap<Arc<str>, Entry>,
}

impl Default for ViewerCounts {
    fn default() -> ViewerCounts {
        ViewerCounts::new(REPORT_INTERVAL)
    }
}

impl ViewerCounts {
    /// Reports at most once per `interval` per stream.
    pub fn new(interval: Duration) -> ViewerCounts {
        ViewerCounts {
            interval,
            streams: HashMap::new(),
        }
    }

    /// The count of `stream` is now `count`. Returns it when it is to be reported right away.
    pub fn changed(&mut self, now: Instant, stream: &Arc<str>, count: usize) -> Option<usize> {
        let entry = self.streams.entry(stream.clone()).or_insert(Entry {
            last: None,
            pending: None,
        });
        match entry.last {
            Some((at, _)) if now.saturating_duration_since(at) < self.interval => {
                entry.pending = Some(count);
                None
            }
            Some((_, value)) if value == count => {
                entry.pending = None;
                None
            }
            _ => {
                entry.pending = None;
                entry.last = Some((now, count));
                Some(count)
            }
        }
    }

    /// When the next pending report is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.streams
            .values()
            .filter(|e| e.pending.is_some())
            .filter_map(|e| e.last.map(|(at, _)| at + self.interval))
            .min()
    }

    /// The reports due at `now`, appended to `out`.
    pub fn due(&mut self, now: Instant, out: &mut Vec<(Arc<str>, usize)>) {
        for (name, entry) in self.streams.iter_mut() {
            let Some(value) = entry.pending else {
                continue;
            };
            let Some((at, last)) = entry.last else {
                continue;
            };
            if now < at + self.interval {
                continue;
            }
            entry.pending = None;
            if value != last {
                entry.last = Some((now, value));
                out.push((name.clone(), value));
            }
        }
    }

    /// The pending value of `stream`, to report now (ignoring the interval), if it differs
    /// from the last report.
    pub fn flush(&mut self, now: Instant, stream: &Arc<str>) -> Option<usize> {
        let entry = self.streams.get_mut(stream)?;
        let value = entry.pending.take()?;
        match entry.last {
            Some((_, last)) if last == value => None,
            _ => {
                entry.last = Some((now, value));
                Some(value)
            }
        }
    }

    /// Forgets `stream` (after a final [`ViewerCounts::flush`]).
    pub fn remove(&mut self, stream: &Arc<str>) {
        self.streams.remove(stream);
    }

    /// Streams tracked (for tests: bounded by the live streams).
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether no stream is tracked.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(start: Instant, n: u64) -> Instant {
        start + Duration::from_millis(n)
    }

    #[test]
    fn first_change_goes_out_at_once_then_at_most_every_interval() {
        let t0 = Instant::now();
        let s: Arc<str> = Arc::from("a");
        let mut c = ViewerCounts::default();
        assert_eq!(c.changed(t0, &s, 1), Some(1));
        assert_eq!(c.changed(ms(t0, 10), &s, 2), None);
        assert_eq!(c.changed(ms(t0, 20), &s, 3), None);
        assert_eq!(c.poll_timeout(), Some(ms(t0, 500)));
        let mut out = Vec::new();
        c.due(ms(t0, 499), &mut out);
        assert!(out.is_empty());
        c.due(ms(t0, 500), &mut out);
        assert_eq!(out, vec![(s.clone(), 3)]);
        assert_eq!(c.poll_timeout(), None);
        // Long after: at once again.
        assert_eq!(c.changed(ms(t0, 2000), &s, 4), Some(4));
    }

    #[test]
    fn a_change_back_to_the_reported_value_is_not_reported_again() {
        let t0 = Instant::now();
        let s: Arc<str> = Arc::from("a");
        let mut c = ViewerCounts::default();
        assert_eq!(c.changed(t0, &s, 1), Some(1));
        assert_eq!(c.changed(ms(t0, 100), &s, 2), None);
        assert_eq!(c.changed(ms(t0, 200), &s, 1), None);
        let mut out = Vec::new();
        c.due(ms(t0, 600), &mut out);
        assert!(out.is_empty());
        assert_eq!(c.changed(ms(t0, 900), &s, 1), None);
    }

    #[test]
    fn flush_sends_the_pending_value_at_once_and_streams_are_independent() {
        let t0 = Instant::now();
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        let mut c = ViewerCounts::default();
        assert_eq!(c.changed(t0, &a, 1), Some(1));
        assert_eq!(c.changed(ms(t0, 5), &b, 7), Some(7));
        assert_eq!(c.changed(ms(t0, 10), &a, 0), None);
        assert_eq!(c.flush(ms(t0, 11), &a), Some(0));
        assert_eq!(c.flush(ms(t0, 12), &a), None);
        assert_eq!(c.flush(ms(t0, 12), &b), None);
        c.remove(&a);
        assert_eq!(c.len(), 1);
        let mut out = Vec::new();
        c.due(ms(t0, 10_000), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn many_changes_make_at_most_one_report_per_interval_and_end_on_the_last_value() {
        let t0 = Instant::now();
        let s: Arc<str> = Arc::from("s");
        let mut c = ViewerCounts::default();
        let mut reports: Vec<(u64, usize)> = Vec::new();
        let mut value = 0usize;
        for t in 0..3000u64 {
            let now = ms(t0, t);
            if t % 7 == 0 && t < 2500 {
                value = (value * 31 + 7) % 50;
                if let Some(v) = c.changed(now, &s, value) {
                    reports.push((t, v));
                }
            }
            let mut out = Vec::new();
            c.due(now, &mut out);
            reports.extend(out.into_iter().map(|(_, v)| (t, v)));
        }
        for pair in reports.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= 500, "{pair:?}");
        }
        assert_eq!(reports.last().unwrap().1, value);
    }
}
