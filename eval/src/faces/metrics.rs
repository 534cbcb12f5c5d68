//! Face quality figures over descriptors with known identities: verification on every
//! pair, and how well a clustering recovers the people.
//!
//! - **Verification** treats every pair of faces as a same/different question answered
//!   by thresholding the descriptor distance. ROC AUC is the chance that a random
//!   same-person pair is closer than a random different-person pair (Mann–Whitney, ties
//!   counted half). Accuracy is *balanced*: the mean of the accuracy on same-person pairs
//!   and on different-person pairs. All pairs are ~99 % different-person pairs, so plain
//!   accuracy would reward answering "different" always; the balanced figure is what
//!   LFW's protocol (equal numbers of both kinds) measures.
//! - **Clustering**: pairwise precision/recall/F1 (pairs put together that belong
//!   together) and BCubed (Bagga & Baldwin, 1998; Amigó et al., "A comparison of
//!   extrinsic clustering evaluation metrics", Information Retrieval 12, 2009): per face,
//!   the share of its cluster that is its person (precision) and the share of its person
//!   in its cluster (recall), averaged over faces. A face left out of every person counts
//!   as a cluster of its own.

use std::collections::BTreeMap;

use album_faces::embedder::{Descriptor, distance};

/// One pair of faces: their descriptor distance and whether they are the same person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredPair {
    pub distance: f32,
    pub same: bool,
}

/// Every pair `i < j` of `descriptors` with its distance and whether `people[i] == people[j]`.
pub fn all_pairs(descriptors: &[Descriptor], people: &[usize]) -> Vec<ScoredPair> {
    let n = descriptors.len().min(people.len());
    let mut pairs = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            pairs.push(ScoredPair {
                distance: distance(&descriptors[i], &descriptors[j]),
                same: people[i] == people[j],
            });
        }
    }
    pairs
}

/// Verification figures over a set of pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verification {
    pub same_pairs: usize,
    pub different_pairs: usize,
    pub roc_auc: f64,
    /// The distance threshold (same when `distance < threshold`) with the best balanced accuracy.
    pub best_threshold: f32,
    pub best_balanced_accuracy: f64,
    /// Balanced accuracy at a threshold fixed in advance (dlib's 0.6), untuned on this data.
    pub fixed_threshold: f32,
    pub fixed_balanced_accuracy: f64,
}

/// Balanced accuracy of "same when `distance < threshold`".
pub fn balanced_accuracy(pairs: &[ScoredPair], threshold: f32) -> f64 {
    let (mut same, mut same_right, mut diff, mut diff_right) = (0usize, 0usize, 0usize, 0usize);
    for pair in pairs {
        let says_same = pair.distance < threshold;
        if pair.same {
            same += 1;
            same_right += usize::from(says_same);
        } else {
            diff += 1;
            diff_right += usize::from(!says_same);
        }
    }
    mean_of_rates(same_right, same, diff_right, diff)
}

fn mean_of_rates(a: usize, a_total: usize, b: usize, b_total: usize) -> f64 {
    let rate = |k: usize, n: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    (rate(a, a_total) + rate(b, b_total)) / 2.0
}

/// ROC AUC, the best balanced accuracy over every threshold, and the one at `fixed_threshold`.
pub fn verification(pairs: &[ScoredPair], fixed_threshold: f32) -> Verification {
    let mut sorted: Vec<ScoredPair> = pairs.to_vec();
    sorted.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    let same_total = sorted.iter().filter(|p| p.same).count();
    let diff_total = sorted.len() - same_total;

    // Walk thresholds upwards through tie groups: below the group everything is "same".
    let (mut same_below, mut diff_below) = (0usize, 0usize);
    let mut auc_sum = 0.0f64;
    let mut best = (
        f32::NEG_INFINITY,
        mean_of_rates(0, same_total, diff_total, diff_total),
    );
    let mut i = 0;
    while i < sorted.len() {
        let distance = sorted[i].distance;
        let mut j = i;
        let (mut same_here, mut diff_here) = (0usize, 0usize);
        while j < sorted.len() && sorted[j].distance == distance {
            if sorted[j].same {
                same_here += 1;
            } else {
                diff_here += 1;
            }
            j += 1;
        }
        // Each different pair here beats every same pair strictly closer, ties half.
        auc_sum += diff_here as f64 * (same_below as f64 + same_here as f64 / 2.0);
        same_below += same_here;
        diff_below += diff_here;
        // Threshold just above this group.
        let accuracy = mean_of_rates(same_below, same_total, diff_total - diff_below, diff_total);
        if accuracy > best.1 {
            let next = sorted.get(j).map_or(distance + 1e-3, |p| p.distance);
            best = ((distance + next) / 2.0, accuracy);
        }
        i = j;
    }
    let roc_auc = if same_total == 0 || diff_total == 0 {
        f64::NAN
    } else {
        auc_sum / (same_total as f64 * diff_total as f64)
    };
    Verification {
        same_pairs: same_total,
        different_pairs: diff_total,
        roc_auc,
        best_threshold: best.0,
        best_balanced_accuracy: best.1,
        fixed_threshold,
        fixed_balanced_accuracy: balanced_accuracy(pairs, fixed_threshold),
    }
}

/// How a clustering compares with the true people.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterScores {
    pub pairwise_precision: f64,
    pub pairwise_recall: f64,
    pub pairwise_f1: f64,
    pub bcubed_precision: f64,
    pub bcubed_recall: f64,
    pub bcubed_f1: f64,
    /// Distinct people the clustering made.
    pub people_found: usize,
    /// Faces it left out of every person.
    pub unassigned: usize,
    /// Distinct true people.
    pub people_true: usize,
}

/// Scores `predicted` (`None`: left out) against `truth`, face by face.
pub fn cluster_scores(predicted: &[Option<u32>], truth: &[usize]) -> ClusterScores {
    let clusters = cluster_ids(predicted);
    let n = clusters.len().min(truth.len());
    let (clusters, truth) = (&clusters[..n], &truth[..n]);

    let mut cluster_size = BTreeMap::<usize, usize>::new();
    let mut person_size = BTreeMap::<usize, usize>::new();
    let mut overlap = BTreeMap::<(usize, usize), usize>::new();
    for (&c, &p) in clusters.iter().zip(truth) {
        *cluster_size.entry(c).or_default() += 1;
        *person_size.entry(p).or_default() += 1;
        *overlap.entry((c, p)).or_default() += 1;
    }

    let pairs = |k: usize| (k * k.saturating_sub(1) / 2) as f64;
    let together_right: f64 = overlap.values().map(|&k| pairs(k)).sum();
    let together_said: f64 = cluster_size.values().map(|&k| pairs(k)).sum();
    let together_true: f64 = person_size.values().map(|&k| pairs(k)).sum();
    let pairwise_precision = ratio_or_one(together_right, together_said);
    let pairwise_recall = ratio_or_one(together_right, together_true);

    // BCubed per face, summed per (cluster, person) cell: each of the k faces in a cell
    // has precision k/|cluster| and recall k/|person|.
    let (mut precision_sum, mut recall_sum) = (0.0f64, 0.0f64);
    for (&(c, p), &k) in &overlap {
        precision_sum += k as f64 * k as f64 / cluster_size[&c] as f64;
        recall_sum += k as f64 * k as f64 / person_size[&p] as f64;
    }
    let faces = n.max(1) as f64;
    let (bcubed_precision, bcubed_recall) = (precision_sum / faces, recall_sum / faces);

    let people_found = predicted
        .iter()
        .flatten()
        .collect::<std::collections::HashSet<_>>()
        .len();
    ClusterScores {
        pairwise_precision,
        pairwise_recall,
        pairwise_f1: f1(pairwise_precision, pairwise_recall),
        bcubed_precision,
        bcubed_recall,
        bcubed_f1: f1(bcubed_precision, bcubed_recall),
        people_found,
        unassigned: predicted.iter().filter(|p| p.is_none()).count(),
        people_true: person_size.len(),
    }
}

/// Cluster numbers where every unassigned face gets one of its own.
fn cluster_ids(predicted: &[Option<u32>]) -> Vec<usize> {
    let offset = predicted
        .iter()
        .flatten()
        .max()
        .map_or(0, |&m| m as usize + 1);
    predicted
        .iter()
        .enumerate()
        .map(|(i, p)| p.map_or(offset + i, |p| p as usize))
        .collect()
}

fn ratio_or_one(num: f64, den: f64) -> f64 {
    if den == 0.0 { 1.0 } else { num / den }
}

fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(distance: f32, same: bool) -> ScoredPair {
        ScoredPair { distance, same }
    }

    #[test]
    fn perfectly_separated_pairs_score_one() {
        let pairs = [
            pair(0.2, true),
            pair(0.3, true),
            pair(0.8, false),
            pair(0.9, false),
        ];
        let v = verification(&pairs, 0.6);
        assert_eq!(v.roc_auc, 1.0);
        assert_eq!(v.best_balanced_accuracy, 1.0);
        assert!(v.best_threshold > 0.3 && v.best_threshold < 0.8, "{v:?}");
        assert_eq!(v.fixed_balanced_accuracy, 1.0);
    }

    #[test]
    fn auc_counts_ties_half_and_inversions_zero() {
        // same at 0.5 and 0.9, different at 0.5 and 0.7:
        // (0.5s vs 0.5d) tie ½, (0.5s vs 0.7d) 1, (0.9s vs 0.5d) 0, (0.9s vs 0.7d) 0.
        let pairs = [
            pair(0.5, true),
            pair(0.9, true),
            pair(0.5, false),
            pair(0.7, false),
        ];
        assert!((verification(&pairs, 0.6).roc_auc - 1.5 / 4.0).abs() < 1e-12);
    }

    #[test]
    fn balanced_accuracy_is_not_fooled_by_many_different_pairs() {
        let mut pairs = vec![pair(0.9, true)];
        pairs.extend((0..99).map(|_| pair(0.9, false)));
        // "Different" for everything: 99 % plain accuracy, 50 % balanced.
        assert_eq!(balanced_accuracy(&pairs, 0.1), 0.5);
    }

    #[test]
    fn all_pairs_lists_each_pair_once() {
        let d = [[0.0; 128], [0.0; 128], [0.0; 128]];
        let pairs = all_pairs(&d, &[0, 0, 1]);
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs.iter().filter(|p| p.same).count(), 1);
    }

    #[test]
    fn a_perfect_clustering_scores_one_everywhere() {
        let s = cluster_scores(&[Some(7), Some(7), Some(2)], &[0, 0, 1]);
        assert_eq!((s.bcubed_f1, s.pairwise_f1), (1.0, 1.0));
        assert_eq!((s.people_found, s.people_true, s.unassigned), (2, 2, 0));
    }

    #[test]
    fn bcubed_matches_a_hand_computed_case() {
        // Cluster A = {p0, p0, p1}, cluster B = {p1}.
        // Precision: p0 faces 2/3 each, p1 in A 1/3, p1 in B 1 → (2/3+2/3+1/3+1)/4 = 2/3.
        // Recall: p0 faces 1 each, p1 faces ½ each → 3/4.
        let s = cluster_scores(&[Some(0), Some(0), Some(0), Some(1)], &[0, 0, 1, 1]);
        assert!((s.bcubed_precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.bcubed_recall - 0.75).abs() < 1e-12);
        // Pairwise: said together 3 pairs, right 1; truly together 2 → P 1/3, R 1/2.
        assert!((s.pairwise_precision - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.pairwise_recall - 0.5).abs() < 1e-12);
    }

    #[test]
    fn unassigned_faces_count_as_singletons_not_as_one_cluster() {
        let s = cluster_scores(&[None, None], &[0, 1]);
        assert_eq!(s.bcubed_precision, 1.0);
        assert_eq!(s.unassigned, 2);
        assert_eq!(s.people_found, 0);
        let together = cluster_scores(&[None, None], &[0, 0]);
        assert_eq!(together.bcubed_recall, 0.5);
    }
}
