//! Grouping faces into people, as photos arrive one by one or all at once.
//!
//! Two methods sit behind one interface, [`Clustering`]:
//!
//! - [`RepresentativeRule`], the paper's: every person keeps a representative face (the
//!   face that started the person); a new face joins the most similar person when the
//!   similarity reaches the threshold (72 % in the paper), else it starts a new person.
//!   It depends on arrival order, and never revisits a decision.
//! - [`DensityClustering`], stronger: a face is linked to every earlier face closer than
//!   `max_distance`; it joins the person of its nearest linked face, and a new person is
//!   only started by a face with at least `min_faces − 1` links (a core face, as in
//!   DBSCAN: Ester et al., KDD 1996; Immich's `minFaces`). Faces with too few links wait
//!   unassigned until a core face arrives near them. [`Clustering::recluster`] regroups
//!   everything with Chinese whispers on the same link graph (Biemann, "Chinese
//!   Whispers", TextGraphs 2006; dlib's face-clustering example), keeping groups of at
//!   least `min_faces`.
//!
//! **Similarity.** The paper gives a percentage without defining it. Here
//! `similarity = 1 − d/2`, clamped to [0, 1], where `d` is the Euclidean distance between
//! two dlib descriptors. dlib's own same-person rule, `d < 0.6`, is then a similarity above
//! 70 %, and the paper's 72 % is `d ≤ 0.56`, a little stricter.

use crate::embedder::{Descriptor, distance};

/// A person's number, unique within one clustering.
pub type PersonId = u32;

/// The paper's threshold: join a person at 72 % similarity or more.
pub const PAPER_THRESHOLD: f32 = 0.72;
/// dlib's documented same-person distance.
pub const DLIB_SAME_PERSON_DISTANCE: f32 = 0.6;

/// How alike two faces are: `1 − d/2` on the descriptor distance, in [0, 1].
pub fn similarity(a: &Descriptor, b: &Descriptor) -> f32 {
    similarity_of_distance(distance(a, b))
}

/// The similarity for a descriptor distance.
pub fn similarity_of_distance(d: f32) -> f32 {
    (1.0 - d / 2.0).clamp(0.0, 1.0)
}

/// The descriptor distance at which two faces are `similarity` alike.
pub fn distance_of_similarity(similarity: f32) -> f32 {
    2.0 * (1.0 - similarity)
}

/// A way of grouping faces into people.
pub trait Clustering {
    /// Adds one face, as its photo arrives, and returns the person it belongs to now
    /// (`None`: not part of any person yet).
    fn add(&mut self, descriptor: Descriptor) -> Option<PersonId>;

    /// Regroups every face added so far from scratch.
    fn recluster(&mut self);

    /// Every face's person, in the order the faces were added.
    fn labels(&self) -> &[Option<PersonId>];

    /// Adds faces in order; the incremental result for a whole collection.
    fn add_all(&mut self, descriptors: &[Descriptor]) {
        for descriptor in descriptors {
            self.add(*descriptor);
        }
    }
}

/// The paper's rule: join the most similar person's representative at ≥ `threshold`.
#[derive(Debug, Clone)]
pub struct RepresentativeRule {
    threshold: f32,
    faces: Vec<Descriptor>,
    labels: Vec<Option<PersonId>>,
    /// Each person's representative face, indexed by `PersonId`.
    representatives: Vec<usize>,
}

impl RepresentativeRule {
    /// A rule that joins at `threshold` similarity (the paper: [`PAPER_THRESHOLD`]).
    pub fn new(threshold: f32) -> Self {
        RepresentativeRule {
            threshold,
            faces: Vec::new(),
            labels: Vec::new(),
            representatives: Vec::new(),
        }
    }

    /// The person whose representative is most similar to `descriptor`, with that similarity.
    fn most_similar_person(&self, descriptor: &Descriptor) -> Option<(PersonId, f32)> {
        self.representatives
            .iter()
            .enumerate()
            .map(|(person, &face)| {
                (
                    person as PersonId,
                    similarity(descriptor, &self.faces[face]),
                )
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

impl Clustering for RepresentativeRule {
    fn add(&mut self, descriptor: Descriptor) -> Option<PersonId> {
        let person = match self.most_similar_person(&descriptor) {
            Some((person, best)) if best >= self.threshold => person,
            _ => {
                self.representatives.push(self.faces.len());
                (self.representatives.len() - 1) as PersonId
            }
        };
        self.faces.push(descriptor);
        self.labels.push(Some(person));
        Some(person)
    }

    /// The rule is defined by arrival order: starting again replays it in that order.
    fn recluster(&mut self) {
        let faces = std::mem::take(&mut self.faces);
        *self = RepresentativeRule::new(self.threshold);
        self.add_all(&faces);
    }

    fn labels(&self) -> &[Option<PersonId>] {
        &self.labels
    }
}

/// Links closer than `max_distance`; people need `min_faces` faces; Chinese whispers on demand.
#[derive(Debug, Clone)]
pub struct DensityClustering {
    max_distance: f32,
    min_faces: usize,
    faces: Vec<Descriptor>,
    /// Each face's links to earlier and later faces (indices), kept so that a re-cluster
    /// needs no new distances.
    links: Vec<Vec<usize>>,
    labels: Vec<Option<PersonId>>,
    next_person: PersonId,
}

/// Rounds of Chinese whispers; it settles in a handful on face graphs.
const WHISPER_ROUNDS: usize = 100;

impl DensityClustering {
    /// Links faces closer than `max_distance`; a person needs at least `min_faces` faces
    /// (1 makes every face a person at once).
    pub fn new(max_distance: f32, min_faces: usize) -> Self {
        DensityClustering {
            max_distance,
            min_faces: min_faces.max(1),
            faces: Vec::new(),
            links: Vec::new(),
            labels: Vec::new(),
            next_person: 0,
        }
    }

    fn new_person(&mut self) -> PersonId {
        let person = self.next_person;
        self.next_person += 1;
        person
    }

    /// Links `descriptor` to every face already added that is close enough; returns
    /// those faces with their distances.
    fn link(&mut self, descriptor: &Descriptor) -> Vec<(usize, f32)> {
        let index = self.faces.len();
        let near: Vec<(usize, f32)> = self
            .faces
            .iter()
            .enumerate()
            .map(|(j, other)| (j, distance(descriptor, other)))
            .filter(|&(_, d)| d < self.max_distance)
            .collect();
        for &(j, _) in &near {
            self.links[j].push(index);
        }
        near
    }
}

impl Clustering for DensityClustering {
    fn add(&mut self, descriptor: Descriptor) -> Option<PersonId> {
        let near = self.link(&descriptor);
        let index = self.faces.len();
        let nearest_person = near
            .iter()
            .filter_map(|&(j, d)| self.labels[j].map(|p| (p, d)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(person, _)| person);
        let is_core = near.len() + 1 >= self.min_faces;
        let person = match nearest_person {
            Some(person) => Some(person),
            None if is_core => Some(self.new_person()),
            None => None,
        };
        // A core face carries its waiting neighbours into its person, as DBSCAN's
        // expansion would.
        if let (Some(person), true) = (person, is_core) {
            for &(j, _) in &near {
                self.labels[j].get_or_insert(person);
            }
        }
        self.faces.push(descriptor);
        self.links.push(near.into_iter().map(|(j, _)| j).collect());
        self.labels.push(person);
        debug_assert_eq!(self.labels.len(), index + 1);
        person
    }

    fn recluster(&mut self) {
        let groups = chinese_whispers(&self.links, WHISPER_ROUNDS);
        let mut sizes = std::collections::HashMap::<usize, usize>::new();
        for &group in &groups {
            *sizes.entry(group).or_default() += 1;
        }
        let mut people = std::collections::HashMap::<usize, PersonId>::new();
        self.next_person = 0;
        let mut labels = Vec::with_capacity(groups.len());
        for &group in &groups {
            let label = if sizes[&group] >= self.min_faces {
                let next = &mut self.next_person;
                Some(*people.entry(group).or_insert_with(|| {
                    *next += 1;
                    *next - 1
                }))
            } else {
                None
            };
            labels.push(label);
        }
        self.labels = labels;
    }

    fn labels(&self) -> &[Option<PersonId>] {
        &self.labels
    }
}

/// Chinese whispers on an unweighted graph: every node starts in its own group and, in
/// each round, takes the group most of its neighbours are in (ties to the smaller group
/// number, so the result is reproducible). Nodes are visited in a fixed shuffled order
/// that changes each round.
pub fn chinese_whispers(links: &[Vec<usize>], rounds: usize) -> Vec<usize> {
    let n = links.len();
    let mut groups: Vec<usize> = (0..n).collect();
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut counts = std::collections::HashMap::<usize, usize>::new();
    for _ in 0..rounds {
        shuffle(&mut order, &mut state);
        let mut changed = false;
        for &node in &order {
            counts.clear();
            for &other in &links[node] {
                *counts.entry(groups[other]).or_default() += 1;
            }
            let best = counts
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(&group, _)| group);
            if let Some(best) = best
                && best != groups[node]
            {
                groups[node] = best;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    groups
}

/// Fisher–Yates with a small xorshift generator: the order only needs to be fixed and
/// unbiased enough, not secret.
fn shuffle(order: &mut [usize], state: &mut u64) {
    for i in (1..order.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let j = (*state % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedder::DESCRIPTOR_LEN;

    /// A descriptor at `offset` along axis `axis`.
    fn at(axis: usize, offset: f32) -> Descriptor {
        let mut d = [0.0; DESCRIPTOR_LEN];
        d[axis] = offset;
        d
    }

    #[test]
    fn similarity_puts_dlibs_rule_at_seventy_percent() {
        assert!((similarity_of_distance(DLIB_SAME_PERSON_DISTANCE) - 0.70).abs() < 1e-6);
        assert!((distance_of_similarity(PAPER_THRESHOLD) - 0.56).abs() < 1e-6);
        assert_eq!(similarity_of_distance(3.0), 0.0);
        assert_eq!(similarity(&at(0, 1.0), &at(0, 1.0)), 1.0);
    }

    #[test]
    fn the_paper_rule_joins_at_the_threshold_and_starts_a_person_below_it() {
        let mut rule = RepresentativeRule::new(PAPER_THRESHOLD);
        assert_eq!(rule.add(at(0, 1.0)), Some(0));
        // d = 0.5 → 75 %: joins.
        assert_eq!(rule.add(at(0, 1.5)), Some(0));
        // d = 0.6 from the representative → 70 %: a new person, even though it is
        // only 0.1 from the face that just joined (the rule compares representatives).
        assert_eq!(rule.add(at(0, 1.6)), Some(1));
        assert_eq!(rule.labels(), &[Some(0), Some(0), Some(1)]);
    }

    #[test]
    fn the_paper_rule_picks_the_most_similar_person() {
        let mut rule = RepresentativeRule::new(0.5);
        rule.add(at(0, 0.0));
        rule.add(at(0, 1.5));
        assert_eq!(rule.add(at(0, 1.0)), Some(1));
        rule.recluster();
        assert_eq!(rule.labels(), &[Some(0), Some(1), Some(1)]);
    }

    #[test]
    fn density_waits_for_enough_faces_then_takes_the_waiting_ones_along() {
        let mut density = DensityClustering::new(0.6, 3);
        assert_eq!(density.add(at(0, 1.0)), None);
        assert_eq!(density.add(at(0, 1.2)), None);
        // The third close face is a core face: all three become one person.
        assert_eq!(density.add(at(0, 1.4)), Some(0));
        assert_eq!(density.labels(), &[Some(0), Some(0), Some(0)]);
        // A far face waits alone.
        assert_eq!(density.add(at(1, 5.0)), None);
        // A face near the person joins it without being a core face itself.
        assert_eq!(density.add(at(0, 1.9)), Some(0));
    }

    #[test]
    fn chinese_whispers_separates_two_cliques_joined_by_one_edge() {
        // 0-1-2 fully linked, 3-4-5 fully linked, one bridge 2-3.
        let links = vec![
            vec![1, 2],
            vec![0, 2],
            vec![0, 1, 3],
            vec![2, 4, 5],
            vec![3, 5],
            vec![3, 4],
        ];
        let groups = chinese_whispers(&links, WHISPER_ROUNDS);
        assert_eq!(groups[0], groups[1]);
        assert_eq!(groups[1], groups[2]);
        assert_eq!(groups[3], groups[4]);
        assert_eq!(groups[4], groups[5]);
        assert_ne!(groups[0], groups[3]);
    }

    #[test]
    fn recluster_drops_groups_smaller_than_min_faces() {
        let mut density = DensityClustering::new(0.6, 2);
        density.add_all(&[at(0, 1.0), at(0, 1.3), at(1, 4.0), at(2, 4.0)]);
        density.recluster();
        let labels = density.labels();
        assert_eq!(labels[0], labels[1]);
        assert!(labels[0].is_some());
        assert_eq!(&labels[2..], &[None, None]);
    }
}
