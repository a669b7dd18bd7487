//! A token bucket for per-connection command rate limits. Time is passed in.

use std::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `rate_per_sec` tokens are added each second, up to `burst`. A bucket starts full.
    pub fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        TokenBucket {
            rate_per_sec: f64::from(rate_per_sec),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    /// Takes a token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn allows_burst_then_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 5, start);
        assert_eq!((0..8).filter(|_| bucket.try_take(start)).count(), 5);
        // 10 per second: after 300 ms three more.
        let later = start + Duration::from_millis(300);
        assert_eq!((0..8).filter(|_| bucket.try_take(later)).count(), 3);
        // Never more than the burst, however long the pause.
        let much_later = later + Duration::from_secs(60);
        assert_eq!((0..8).filter(|_| bucket.try_take(much_later)).count(), 5);
    }
}
