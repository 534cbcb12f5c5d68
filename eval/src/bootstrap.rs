//! The percentile bootstrap (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*,
//! ch. 13): resample the photos with replacement, recompute every statistic on each
//! resample, and take the `(1 − confidence) / 2` and `(1 + confidence) / 2` quantiles of
//! the recomputed values as the interval.
//!
//! The interval says how much a figure would move on another sample of photos like these;
//! it says nothing about another training run. It is not bias-corrected: for a statistic
//! that resampling inflates (ECE with sparse bins is one) the interval may lie wholly above
//! the point estimate, and that is reported as it is rather than hidden.
//!
//! Each resample draws from its own ChaCha8 stream (stream = resample number, key = seed),
//! so resamples can run on any number of rayon threads and the intervals still depend on
//! the seed alone.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// One bootstrap resample: `items.len()` draws with replacement, as an iterator so that a
/// statistic can count as it goes without the resample ever being stored.
pub struct Resample<'a, T> {
    items: &'a [T],
    rng: ChaCha8Rng,
    left: usize,
}

impl<'a, T> Resample<'a, T> {
    /// Resample number `index` of `items` under `seed`.
    pub fn new(items: &'a [T], seed: u64, index: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index);
        Resample {
            items,
            rng,
            left: items.len(),
        }
    }
}

impl<'a, T> Iterator for Resample<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // `left` starts at the length, so this only runs when there is something to draw.
        let index = self.rng.random_range(0..self.items.len());
        self.items.get(index)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// Runs `statistic` on `resamples` resamples of `items`; row `r` is resample `r`'s values.
/// The same `seed` gives the same rows on any number of threads.
pub fn resample_statistics<T, F>(
    items: &[T],
    resamples: usize,
    seed: u64,
    statistic: F,
) -> Vec<Vec<f64>>
where
    T: Sync,
    F: Fn(Resample<'_, T>) -> Vec<f64> + Sync,
{
    (0..resamples as u64)
        .into_par_iter()
        .map(|index| statistic(Resample::new(items, seed, index)))
        .collect()
}

/// The percentile interval of each statistic (column) of `samples` at `confidence`
/// (e.g. 0.95), as `(low, high)`. Quantiles interpolate linearly between order statistics
/// (Hyndman & Fan's type 7, NumPy's default). Empty `samples` give no intervals.
pub fn percentile_intervals(samples: &[Vec<f64>], confidence: f64) -> Vec<(f64, f64)> {
    let columns = samples.iter().map(Vec::len).min().unwrap_or(0);
    let tail = (1.0 - confidence) / 2.0;
    (0..columns)
        .map(|column| {
            let mut values: Vec<f64> = samples.iter().map(|row| row[column]).collect();
            values.sort_by(f64::total_cmp);
            (quantile(&values, tail), quantile(&values, 1.0 - tail))
        })
        .collect()
}

/// The `q` quantile of `sorted` (ascending, non-empty), type 7.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return f64::NAN;
    };
    let position = q.clamp(0.0, 1.0) * last as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(last);
    let fraction = position - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&sorted, 0.0), 1.0);
        assert_eq!(quantile(&sorted, 1.0), 5.0);
        assert_eq!(quantile(&sorted, 0.5), 3.0);
        assert_eq!(quantile(&sorted, 0.125), 1.5);
        assert_eq!(quantile(&[7.0], 0.3), 7.0);
    }

    #[test]
    fn a_resample_draws_as_many_items_as_there_are_and_only_those() {
        let items: Vec<u32> = (0..50).collect();
        let drawn: Vec<u32> = Resample::new(&items, 3, 0).copied().collect();
        assert_eq!(drawn.len(), 50);
        assert!(drawn.iter().all(|v| *v < 50));
        // With replacement: 50 draws from 50 almost surely repeat something.
        let mut distinct = drawn.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() < 50);
        // Other streams and other seeds draw differently; the same ones identically.
        let again: Vec<u32> = Resample::new(&items, 3, 0).copied().collect();
        let other_stream: Vec<u32> = Resample::new(&items, 3, 1).copied().collect();
        let other_seed: Vec<u32> = Resample::new(&items, 4, 0).copied().collect();
        assert_eq!(drawn, again);
        assert_ne!(drawn, other_stream);
        assert_ne!(drawn, other_seed);
    }

    #[test]
    fn intervals_are_per_column_and_ordered() {
        let samples: Vec<Vec<f64>> = (0..101).map(|i| vec![i as f64, 1.0]).collect();
        let intervals = percentile_intervals(&samples, 0.9);
        assert_eq!(intervals.len(), 2);
        assert!((intervals[0].0 - 5.0).abs() < 1e-9, "{intervals:?}");
        assert!((intervals[0].1 - 95.0).abs() < 1e-9, "{intervals:?}");
        assert_eq!(intervals[1], (1.0, 1.0));
        assert!(percentile_intervals(&[], 0.95).is_empty());
    }
}
