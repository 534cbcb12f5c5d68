//! Duplicate groups: photos that must land in the same split.
//!
//! Two photos are joined when their SHA-256 digests are equal or their perceptual
//! hashes differ in at most `group_distance` bits; groups are the connected components
//! (so a chain a~b~c is one group even when a and c are far apart). All pairs are
//! compared: 30,000 photos make 450 million XOR-and-popcounts, well under a second on a
//! few cores. Each rayon task unions the pairs it finds into a union-find of its own,
//! and the forests are merged at the end, so no list of pairs is ever held in memory
//! however loose the distance.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::manifest::ManifestRecord;

/// Disjoint sets over `0..n`, with path halving and union by size.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    pub fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    pub fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] as usize != x {
            let grandparent = self.parent[self.parent[x] as usize];
            self.parent[x] = grandparent;
            x = grandparent as usize;
        }
        x
    }

    pub fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a as u32;
        self.size[a] += self.size[b];
    }

    /// Adds every union of `other` to `self`.
    fn merge(mut self, mut other: UnionFind) -> UnionFind {
        for x in 0..other.parent.len() {
            let root = other.find(x);
            if root != x {
                self.union(x, root);
            }
        }
        self
    }
}

/// The duplicate groups of `records`, each a list of record indices in ascending order,
/// the groups ordered by their first member.
pub fn duplicate_groups(records: &[ManifestRecord], group_distance: u32) -> Vec<Vec<usize>> {
    let mut sets = near_duplicate_sets(records, group_distance);
    join_exact_copies(records, &mut sets);
    let mut group_index: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in 0..records.len() {
        let root = sets.find(i);
        let index = *group_index.entry(root).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[index].push(i);
    }
    groups
}

/// Union-find after joining every pair within `group_distance` bits.
fn near_duplicate_sets(records: &[ManifestRecord], group_distance: u32) -> UnionFind {
    let hashes: Vec<u64> = records.iter().map(|r| r.phash).collect();
    let n = hashes.len();
    (0..n)
        .into_par_iter()
        .fold(
            || UnionFind::new(n),
            |mut sets, i| {
                let hash = hashes[i];
                for (offset, &other) in hashes[i + 1..].iter().enumerate() {
                    if (hash ^ other).count_ones() <= group_distance {
                        sets.union(i, i + 1 + offset);
                    }
                }
                sets
            },
        )
        .reduce(|| UnionFind::new(n), UnionFind::merge)
}

fn join_exact_copies(records: &[ManifestRecord], sets: &mut UnionFind) {
    let mut first_with_digest: HashMap<&str, usize> = HashMap::new();
    for (i, record) in records.iter().enumerate() {
        let first = *first_with_digest.entry(record.sha256.as_str()).or_insert(i);
        sets.union(first, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize, phash: u64, sha: &str) -> ManifestRecord {
        ManifestRecord {
            path: format!("{i}.jpg"),
            class: "c".into(),
            image_url: format!("/photos/c/{i}.jpg"),
            page_url: String::new(),
            sha256: sha.into(),
            phash,
            width: 10,
            height: 10,
            bytes: 1,
            fetched_at: String::new(),
        }
    }

    #[test]
    fn chains_of_near_hashes_and_equal_digests_form_groups() {
        let far = 0xFFFF_FFFF_0000_0000u64;
        let records = vec![
            record(0, 0, "a"),
            record(1, 0b111, "b"),      // 3 bits from 0
            record(2, 0b111_1111, "c"), // 4 bits from record 1, 7 from record 0
            record(3, far, "d"),
            record(4, !far, "a"), // same digest as record 0
            record(5, 0x0F0F_0F0F_0F0F_0F0F, "e"),
        ];
        assert_eq!(
            duplicate_groups(&records, 4),
            vec![vec![0, 1, 2, 4], vec![3], vec![5]]
        );
        assert_eq!(
            duplicate_groups(&records, 0),
            vec![vec![0, 4], vec![1], vec![2], vec![3], vec![5]]
        );
    }

    #[test]
    fn merged_forests_keep_every_union() {
        let mut a = UnionFind::new(4);
        a.union(0, 1);
        let mut b = UnionFind::new(4);
        b.union(2, 3);
        b.union(1, 2);
        let mut merged = a.merge(b);
        let root = merged.find(0);
        assert!((0..4).all(|x| merged.find(x) == root));
    }
}
