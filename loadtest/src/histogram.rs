//! Latency histograms: HDR histograms of microseconds, how workers send them to the
//! coordinator (the recorded buckets as `[value, count]` pairs) and how they are merged.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The largest value a histogram holds: one hour, in µs. Larger values are clamped.
const MAX_US: u64 = 3_600_000_000;

/// A histogram of µs from 1 µs to one hour with 3 significant digits.
pub fn new() -> Histogram<u64> {
    // The bounds are constants that satisfy `new_with_bounds`' rules (low ≥ 1, high ≥ 2 × low,
    // sigfig ≤ 5), so this cannot fail.
    Histogram::new_with_bounds(1, MAX_US, 3).expect("constant histogram bounds are valid")
}

/// A histogram on the wire: every non-empty bucket as (highest equivalent value, count).
/// Merging re-records each pair, which lands in the same bucket, so nothing is lost
/// beyond the histogram's own precision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Encoded(pub Vec<(u64, u64)>);

pub fn encode(histogram: &Histogram<u64>) -> Encoded {
    Encoded(
        histogram
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect(),
    )
}

/// Adds the counts of `encoded` to `into`.
pub fn merge(into: &mut Histogram<u64>, encoded: &Encoded) {
    for &(value, count) in &encoded.0 {
        into.saturating_record_n(value, count);
    }
}

/// The figures a report quotes from a distribution, in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Quantiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        Quantiles {
            count: histogram.len(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }

    /// Nearest-rank quantiles of a small sample (e.g. one value per publication).
    pub fn of_sample(values: &[u64]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let at = |q: f64| -> u64 {
            if sorted.is_empty() {
                return 0;
            }
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1]
        };
        Quantiles {
            count: sorted.len() as u64,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: sorted.last().copied().unwrap_or(0),
        }
    }
}

/// The percentile curve of a histogram: (quantile, value µs) at quantiles 1 − 10^(−k/10)
/// for k = 0..=40 (0 to 99.99 %), then the maximum.
pub fn percentile_curve(histogram: &Histogram<u64>) -> Vec<(f64, u64)> {
    let mut curve: Vec<(f64, u64)> = (0..=40)
        .map(|k| {
            let q = 1.0 - 10f64.powf(-f64::from(k) / 10.0);
            (q, histogram.value_at_quantile(q))
        })
        .collect();
    curve.push((1.0, histogram.max()));
    curve
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_encoded_histograms_equals_recording_everything_in_one() {
        let mut all = new();
        let mut parts = vec![new(), new(), new()];
        // Values spread over six orders of magnitude, each worker a different share.
        for i in 0..30_000u64 {
            let value = 1 + (i * i * 7919) % 5_000_000;
            all.record(value).unwrap();
            parts[(i % 3) as usize].record(value).unwrap();
        }
        let mut merged = new();
        for part in &parts {
            let wire = serde_json::to_string(&encode(part)).unwrap();
            let decoded: Encoded = serde_json::from_str(&wire).unwrap();
            merge(&mut merged, &decoded);
        }
        assert_eq!(merged.len(), all.len());
        assert_eq!(merged.max(), all.max());
        assert_eq!(merged.min(), all.min());
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.value_at_quantile(q),
                all.value_at_quantile(q),
                "q {q}"
            );
        }
        assert_eq!(encode(&merged), encode(&all));
    }

    #[test]
    fn sample_quantiles_use_the_nearest_rank() {
        let q = Quantiles::of_sample(&[5, 1, 4, 2, 3]);
        assert_eq!((q.count, q.p50, q.p90, q.max), (5, 3, 5, 5));
        assert_eq!(Quantiles::of_sample(&[]), Quantiles::default());
    }
}
