//! The train/val/test split: stratified by class, seeded, duplicate-aware.
//!
//! # Algorithm
//! 1. **Groups.** Photos that are exact (SHA-256) or near (pHash within
//!    `group_distance` bits) copies of each other form a group, see [`groups`]; a group
//!    always goes to one split, so no photo is tested against its own copy.
//! 2. **Targets.** For each class of `n` photos, the exact shares `n·r_s/Σr` are
//!    rounded down and the photos left over go, one each, to the splits with the
//!    largest fractional parts (largest-remainder rounding; ties in train, val, test
//!    order). The targets sum to `n`.
//! 3. **Filling.** Classes are taken in name order. A class's unassigned groups are
//!    shuffled with ChaCha8 seeded by `seed`, then stably sorted largest first, and
//!    each group goes to the split whose count for that class is furthest below its
//!    target. Large groups are placed while there is room; the singletons, which are
//!    most of any real photo set, then fill every split exactly to its target. So each
//!    class lands on its targets (within one photo of the exact ratio) unless its
//!    groups are too lumpy to fit, which only near-duplicate-heavy classes are.
//!    A group that spans classes is placed with the first class it appears in and
//!    counts toward each member's own class, and later classes fill around it.
//! 4. Records are visited in (class, sha256, url) order rather than file order, so
//!    the same photos and seed give the same split however the manifest rows are
//!    ordered.

pub mod chart;
pub mod groups;
pub mod report;

use std::cmp::Reverse;
use std::str::FromStr;

use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;
use rand_chacha::ChaCha8Rng;

use crate::manifest::{ManifestRecord, class_names};
use crate::phash::NEAR_DUPLICATE_MAX_DISTANCE;
use crate::{Error, Result};

pub use groups::duplicate_groups;
pub use report::{SplitOptions, SplitReport, run_split};

/// Default group distance: the near-duplicate threshold of [`crate::phash`].
pub const DEFAULT_GROUP_DISTANCE: u32 = NEAR_DUPLICATE_MAX_DISTANCE;

/// One of the three splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// "train", "val" or "test": file stems and table values.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Relative sizes of train, val and test, e.g. `6:2:2` or `0.8:0.1:0.1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitRatios {
    parts: [f64; 3],
}

impl SplitRatios {
    /// Three finite, non-negative parts that do not all vanish.
    pub fn new(train: f64, val: f64, test: f64) -> Result<Self> {
        let parts = [train, val, test];
        if parts.iter().any(|p| !p.is_finite() || *p < 0.0) {
            return Err(Error::InvalidArgument(format!(
                "split ratios must be non-negative numbers, got {train}:{val}:{test}"
            )));
        }
        if parts.iter().sum::<f64>() <= 0.0 {
            return Err(Error::InvalidArgument(
                "split ratios must not all be zero".into(),
            ));
        }
        Ok(SplitRatios { parts })
    }

    /// The part of each split, in train, val, test order.
    pub fn parts(&self) -> [f64; 3] {
        self.parts
    }

    /// The exact share of `split`, between 0 and 1.
    pub fn fraction(&self, split: Split) -> f64 {
        self.parts[split.index()] / self.parts.iter().sum::<f64>()
    }

    /// Largest-remainder counts for `n` items: they sum to `n`, and each is within one
    /// of its exact share.
    pub fn targets(&self, n: usize) -> [usize; 3] {
        let total: f64 = self.parts.iter().sum();
        let exact = self.parts.map(|p| n as f64 * p / total);
        let mut counts = exact.map(|e| e.floor() as usize);
        let mut by_remainder = [0usize, 1, 2];
        // Stable sort: equal remainders keep train, val, test order.
        by_remainder.sort_by(|&a, &b| {
            (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor()))
        });
        let left_over = n.saturating_sub(counts.iter().sum());
        for &split in by_remainder.iter().cycle().take(left_over) {
            counts[split] += 1;
        }
        counts
    }
}

impl FromStr for SplitRatios {
    type Err = Error;

    /// Parses `train:val:test`, e.g. `6:2:2`.
    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "split ratios {text:?} are not three numbers like 6:2:2"
            ))
        };
        let parts: Vec<f64> = text
            .split(':')
            .map(|p| p.trim().parse::<f64>().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        match parts[..] {
            [train, val, test] => SplitRatios::new(train, val, test),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for SplitRatios {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c] = self.parts;
        write!(f, "{a}:{b}:{c}")
    }
}

/// Checks a group distance: pHashes have 64 bits.
pub fn validate_group_distance(group_distance: u32) -> Result<()> {
    if group_distance > 64 {
        return Err(Error::InvalidArgument(format!(
            "group distance {group_distance} is over 64, the bits in a perceptual hash"
        )));
    }
    Ok(())
}

/// The split of each record (same order as `records`); see the module docs.
pub fn assign_splits(
    records: &[ManifestRecord],
    ratios: SplitRatios,
    seed: u64,
    group_distance: u32,
) -> Vec<Split> {
    let groups = canonical_groups(records, group_distance);
    assign_groups(records, &groups, ratios, seed)
}

/// [`assign_splits`] for groups already found by [`canonical_groups`].
pub(crate) fn assign_groups(
    records: &[ManifestRecord],
    groups: &[Vec<usize>],
    ratios: SplitRatios,
    seed: u64,
) -> Vec<Split> {
    let classes = class_names(records);
    let class_of: Vec<usize> = records
        .iter()
        .map(|r| classes.binary_search(&r.class).unwrap_or_default())
        .collect();
    let targets: Vec<[usize; 3]> = (0..classes.len())
        .map(|c| ratios.targets(class_of.iter().filter(|&&k| k == c).count()))
        .collect();

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut counts = vec![[0usize; 3]; classes.len()];
    let mut split_of: Vec<Option<Split>> = vec![None; records.len()];
    for class in 0..classes.len() {
        let mut pending: Vec<(&Vec<usize>, usize)> = groups
            .iter()
            .filter(|g| split_of[g[0]].is_none())
            .map(|g| (g, g.iter().filter(|&&i| class_of[i] == class).count()))
            .filter(|&(_, in_class)| in_class > 0)
            .collect();
        pending.shuffle(&mut rng);
        pending.sort_by_key(|&(_, in_class)| Reverse(in_class));
        for (group, _) in pending {
            let split = furthest_below_target(&targets[class], &counts[class]);
            for &i in group {
                split_of[i] = Some(split);
                counts[class_of[i]][split.index()] += 1;
            }
        }
    }
    // Every record is in a group and every group has a class, so all are assigned.
    split_of
        .into_iter()
        .map(|s| s.unwrap_or(Split::Train))
        .collect()
}

/// The split with the largest (target − count); ties go to the earlier split.
fn furthest_below_target(targets: &[usize; 3], counts: &[usize; 3]) -> Split {
    let room = |s: Split| targets[s.index()] as i64 - counts[s.index()] as i64;
    let mut best = Split::Train;
    for split in [Split::Val, Split::Test] {
        if room(split) > room(best) {
            best = split;
        }
    }
    best
}

/// Record indices sorted by (class, sha256, image_url, path): independent of file order.
fn canonical_order(records: &[ManifestRecord]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&records[a], &records[b]);
        (&x.class, &x.sha256, &x.image_url, &x.path).cmp(&(
            &y.class,
            &y.sha256,
            &y.image_url,
            &y.path,
        ))
    });
    order
}

/// Duplicate groups as original record indices, listed in canonical order.
pub(crate) fn canonical_groups(records: &[ManifestRecord], group_distance: u32) -> Vec<Vec<usize>> {
    let order = canonical_order(records);
    let sorted: Vec<ManifestRecord> = order.iter().map(|&i| records[i].clone()).collect();
    duplicate_groups(&sorted, group_distance)
        .into_iter()
        .map(|group| group.into_iter().map(|k| order[k]).collect())
        .collect()
}

#[cfg(test)]
mod tests;
