//! Tests of the pure split: ratios, duplicate groups, seeds and argument checks.

use std::collections::HashSet;

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

use super::*;

fn record(class: &str, i: usize, phash: u64, sha256: String) -> ManifestRecord {
    ManifestRecord {
        path: format!("images/{class}-{i}.jpg"),
        class: class.into(),
        image_url: format!("http://127.0.0.1:1/photos/{class}/{i}.jpg"),
        page_url: format!("http://127.0.0.1:1/class/{class}/page/1"),
        sha256,
        phash,
        width: 100 + (i as u32 % 60),
        height: 112,
        bytes: 1000,
        fetched_at: "2026-01-01T00:00:00Z".into(),
    }
}

/// Classes of awkward sizes with random (hence far apart) hashes, plus in each class
/// a few near-duplicate groups (flipped low bits) and one exact copy.
fn photo_set() -> Vec<ManifestRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut records = Vec::new();
    for (class, n) in [
        ("animals", 103),
        ("buildings", 57),
        ("people", 11),
        ("vehicles", 250),
    ] {
        for i in 0..n {
            records.push(record(class, i, rng.random(), format!("{class}-{i}")));
        }
        let base = records.len() - n;
        for (k, size) in [(0usize, 3usize), (1, 2), (2, 4)] {
            let original = records[base + k].phash;
            for copy in 0..size {
                let near = original ^ (1u64 << copy) ^ (1u64 << (copy + 7));
                records.push(record(
                    class,
                    n + 10 * k + copy,
                    near,
                    format!("{class}-near-{k}-{copy}"),
                ));
            }
        }
        let exact = records[base + 5].clone();
        records.push(ManifestRecord {
            image_url: format!("{}?copy", exact.image_url),
            phash: !exact.phash,
            ..exact
        });
    }
    records
}

fn ratios(text: &str) -> SplitRatios {
    text.parse().unwrap()
}

fn counts_by_class(
    records: &[ManifestRecord],
    splits: &[Split],
) -> Vec<(String, usize, [usize; 3])> {
    class_names(records)
        .into_iter()
        .map(|class| {
            let mut counts = [0; 3];
            for (r, s) in records.iter().zip(splits) {
                if r.class == class {
                    counts[s.index()] += 1;
                }
            }
            let n = counts.iter().sum();
            (class, n, counts)
        })
        .collect()
}

#[test]
fn every_class_is_within_one_photo_of_the_exact_ratio() {
    let records = photo_set();
    for text in ["6:2:2", "8:1:1", "1:1:1", "0.7:0.15:0.15"] {
        let r = ratios(text);
        let splits = assign_splits(&records, r, 42, DEFAULT_GROUP_DISTANCE);
        for (class, n, counts) in counts_by_class(&records, &splits) {
            for split in Split::ALL {
                let exact = n as f64 * r.fraction(split);
                let got = counts[split.index()] as f64;
                assert!(
                    (got - exact).abs() < 1.0,
                    "{text} {class} {split}: {got} vs {exact:.2}"
                );
            }
        }
    }
}

#[test]
fn no_duplicate_group_straddles_two_splits() {
    let records = photo_set();
    let splits = assign_splits(&records, ratios("6:2:2"), 3, DEFAULT_GROUP_DISTANCE);
    let groups = duplicate_groups(&records, DEFAULT_GROUP_DISTANCE);
    let multi: Vec<_> = groups.iter().filter(|g| g.len() > 1).collect();
    // 3 near groups (of 4, 3, 5 photos) and 1 exact pair per class.
    assert_eq!(multi.len(), 16, "{multi:?}");
    for group in multi {
        let used: HashSet<Split> = group.iter().map(|&i| splits[i]).collect();
        assert_eq!(used.len(), 1, "group {group:?} spans {used:?}");
    }
}

#[test]
fn the_same_seed_gives_the_same_split_even_with_rows_reordered() {
    let records = photo_set();
    let first = assign_splits(&records, ratios("6:2:2"), 42, DEFAULT_GROUP_DISTANCE);
    assert_eq!(
        first,
        assign_splits(&records, ratios("6:2:2"), 42, DEFAULT_GROUP_DISTANCE)
    );
    let reversed: Vec<_> = records.iter().rev().cloned().collect();
    let mut again = assign_splits(&reversed, ratios("6:2:2"), 42, DEFAULT_GROUP_DISTANCE);
    again.reverse();
    assert_eq!(first, again);
}

#[test]
fn a_different_seed_gives_a_different_split_with_the_same_counts() {
    let records = photo_set();
    let a = assign_splits(&records, ratios("6:2:2"), 1, DEFAULT_GROUP_DISTANCE);
    let b = assign_splits(&records, ratios("6:2:2"), 2, DEFAULT_GROUP_DISTANCE);
    let moved = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert!(
        moved > records.len() / 4,
        "only {moved} of {} photos moved",
        records.len()
    );
    assert_eq!(counts_by_class(&records, &a), counts_by_class(&records, &b));
}

#[test]
fn largest_remainder_targets_sum_to_the_class_size() {
    assert_eq!(ratios("6:2:2").targets(10), [6, 2, 2]);
    assert_eq!(ratios("6:2:2").targets(7), [4, 2, 1]); // 4.2, 1.4, 1.4
    assert_eq!(ratios("6:2:2").targets(1), [1, 0, 0]);
    assert_eq!(ratios("1:1:1").targets(5), [2, 2, 1]);
    assert_eq!(ratios("1:0:0").targets(3), [3, 0, 0]);
    for n in 0..200 {
        assert_eq!(ratios("7:2:1").targets(n).iter().sum::<usize>(), n);
    }
}

#[test]
fn bad_ratios_are_invalid_arguments() {
    for text in [
        "6:2", "0:0:0", "a:b:c", "6:2:2:1", "-1:2:2", "inf:1:1", "", "6::2",
    ] {
        let err = text.parse::<SplitRatios>().unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{text:?}: {err}");
    }
    assert!(matches!(
        validate_group_distance(65),
        Err(Error::InvalidArgument(_))
    ));
    assert!(validate_group_distance(64).is_ok());
}

#[test]
fn a_group_distance_of_zero_still_groups_exact_copies_only() {
    let records = photo_set();
    let groups = duplicate_groups(&records, 0);
    let multi: Vec<_> = groups.iter().filter(|g| g.len() > 1).collect();
    assert_eq!(multi.len(), 4, "one exact pair per class: {multi:?}");
}
