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
use crate::index::Neighbours;

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

/// The density rule's two settings: faces closer than `max_distance` are linked, and a
/// person needs `min_faces` faces (a face with `min_faces − 1` links is a core face).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DensityRule {
    pub max_distance: f32,
    pub min_faces: usize,
}

/// Where one arriving face goes, given the faces that came before it: the decision
/// [`DensityClustering::add`] makes, and the album service makes for each new face.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement<P> {
    /// `None`: too few faces near it yet, it waits unassigned.
    pub person: Option<Joins<P>>,
    /// Waiting earlier faces (indices into `earlier`) that join the face's person with
    /// it: a core face carries its waiting neighbours along, as DBSCAN's expansion does.
    pub carried: Vec<usize>,
    /// Every earlier face within the link distance, nearest first.
    pub links: Vec<usize>,
}

/// The person a placed face joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joins<P> {
    /// The person of its nearest linked face.
    Existing(P),
    /// A new person (it is a core face and no linked face has a person yet).
    New,
}

impl DensityRule {
    /// A rule linking faces closer than `max_distance`, with people of at least
    /// `min_faces` faces (1 makes every face a person at once).
    pub fn new(max_distance: f32, min_faces: usize) -> Self {
        DensityRule {
            max_distance,
            min_faces: min_faces.max(1),
        }
    }

    /// Places `face` after `earlier` (whose people are `people`, `None` for a face
    /// still waiting): it joins the person of its nearest linked face; with no such
    /// person it starts one if it is a core face, else it waits.
    pub fn place<P: Copy>(
        &self,
        face: &Descriptor,
        earlier: &[Descriptor],
        people: &[Option<P>],
    ) -> Placement<P> {
        debug_assert_eq!(earlier.len(), people.len());
        let mut near: Vec<(usize, f32)> = earlier
            .iter()
            .enumerate()
            .map(|(j, other)| (j, distance(face, other)))
            .filter(|&(_, d)| d < self.max_distance)
            .collect();
        // nearest first; ties by arrival, so the result never depends on float order
        near.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        self.place_among(&near, people)
    }

    /// [`DensityRule::place`] with the earlier faces in an index (ids are their
    /// positions in `people`): the same placement (exactly with a
    /// [`crate::index::FaceIndex`], as far as its search finds them with an
    /// [`crate::hnsw::Hnsw`]), without measuring every earlier face.
    pub fn place_indexed<P: Copy>(
        &self,
        face: &Descriptor,
        earlier: &impl Neighbours,
        people: &[Option<P>],
    ) -> Placement<P> {
        debug_assert_eq!(earlier.len(), people.len());
        self.place_among(&earlier.within(face, self.max_distance), people)
    }

    /// The placement given the face's links, nearest first.
    fn place_among<P: Copy>(&self, near: &[(usize, f32)], people: &[Option<P>]) -> Placement<P> {
        self.place_near(near, |j| people[j])
    }

    /// The placement of a face whose links (the earlier faces closer than the link
    /// distance, as (id, distance), nearest first) are `near`, each link's person given
    /// by `person_of`: what [`DensityRule::place`] decides, for callers that keep the
    /// earlier faces elsewhere (the album's index, its database).
    pub fn place_near<P: Copy>(
        &self,
        near: &[(usize, f32)],
        person_of: impl Fn(usize) -> Option<P>,
    ) -> Placement<P> {
        let nearest_person = near.iter().find_map(|&(j, _)| person_of(j));
        let is_core = near.len() + 1 >= self.min_faces;
        let person = match nearest_person {
            Some(person) => Some(Joins::Existing(person)),
            None if is_core => Some(Joins::New),
            None => None,
        };
        let carried = if person.is_some() && is_core {
            near.iter()
                .map(|&(j, _)| j)
                .filter(|&j| person_of(j).is_none())
                .collect()
        } else {
            Vec::new()
        };
        Placement {
            person,
            carried,
            links: near.iter().map(|&(j, _)| j).collect(),
        }
    }

    /// Each face's links: the other faces closer than the link distance.
    pub fn links(&self, faces: &[Descriptor]) -> Vec<Vec<usize>> {
        let mut links = vec![Vec::new(); faces.len()];
        for i in 0..faces.len() {
            for j in i + 1..faces.len() {
                if distance(&faces[i], &faces[j]) < self.max_distance {
                    links[i].push(j);
                    links[j].push(i);
                }
            }
        }
        links
    }

    /// Regroups faces from their links, all at once: Chinese whispers, keeping groups of
    /// at least `min_faces`. Returns each face's group, numbered 0, 1, … in the order
    /// of each group's first face; `None` for a face in too small a group.
    pub fn regroup_links(&self, links: &[Vec<usize>]) -> Vec<Option<usize>> {
        let groups = chinese_whispers(links, WHISPER_ROUNDS);
        let mut sizes = std::collections::HashMap::<usize, usize>::new();
        for &group in &groups {
            *sizes.entry(group).or_default() += 1;
        }
        let mut numbers = std::collections::HashMap::<usize, usize>::new();
        groups
            .iter()
            .map(|group| {
                (sizes[group] >= self.min_faces).then(|| {
                    let next = numbers.len();
                    *numbers.entry(*group).or_insert(next)
                })
            })
            .collect()
    }

    /// [`DensityRule::regroup_links`] on the faces' links.
    pub fn regroup(&self, faces: &[Descriptor]) -> Vec<Option<usize>> {
        self.regroup_links(&self.links(faces))
    }

    /// [`DensityRule::links`] found through an index of `faces` (ids are positions):
    /// O(n log n) with an [`crate::hnsw::Hnsw`] instead of a distance per pair. A link
    /// either face's search found counts both ways.
    pub fn links_indexed(&self, faces: &[Descriptor], index: &impl Neighbours) -> Vec<Vec<usize>> {
        let mut links = vec![Vec::new(); faces.len()];
        for (i, face) in faces.iter().enumerate() {
            for (j, _) in index.within(face, self.max_distance) {
                if j != i && j < faces.len() {
                    links[i].push(j);
                    links[j].push(i);
                }
            }
        }
        for face_links in &mut links {
            face_links.sort_unstable();
            face_links.dedup();
        }
        links
    }

    /// [`DensityRule::regroup`] with the links found through an HNSW index: what the
    /// album's re-cluster runs, so a library of 100,000 faces is not 5·10⁹ distances.
    pub fn regroup_indexed(&self, faces: &[Descriptor]) -> Vec<Option<usize>> {
        let index = crate::hnsw::Hnsw::of(faces);
        self.regroup_links(&self.links_indexed(faces, &index))
    }
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

/// The density rule as a [`Clustering`]: faces placed one by one with
/// [`DensityRule::place`], regrouped on demand with [`DensityRule::regroup_links`].
#[derive(Debug, Clone)]
pub struct DensityClustering {
    rule: DensityRule,
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
        Self::with_rule(DensityRule::new(max_distance, min_faces))
    }

    /// Clusters with `rule`.
    pub fn with_rule(rule: DensityRule) -> Self {
        DensityClustering {
            rule,
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
}

impl Clustering for DensityClustering {
    fn add(&mut self, descriptor: Descriptor) -> Option<PersonId> {
        let index = self.faces.len();
        let placement = self.rule.place(&descriptor, &self.faces, &self.labels);
        let person = match placement.person {
            Some(Joins::Existing(person)) => Some(person),
            Some(Joins::New) => Some(self.new_person()),
            None => None,
        };
        if let Some(person) = person {
            for &j in &placement.carried {
                self.labels[j] = Some(person);
            }
        }
        for &j in &placement.links {
            self.links[j].push(index);
        }
        self.faces.push(descriptor);
        self.links.push(placement.links);
        self.labels.push(person);
        person
    }

    fn recluster(&mut self) {
        let groups = self.rule.regroup_links(&self.links);
        self.labels = groups
            .iter()
            .map(|group| group.map(|g| g as PersonId))
            .collect();
        self.next_person = groups
            .iter()
            .flatten()
            .map(|&g| g as PersonId + 1)
            .max()
            .unwrap_or(0);
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

/// The similarity from which two people are offered as perhaps the same ("Same person?"):
/// a descriptor distance of 0.7, a little looser than dlib's same-person 0.6, so that a
/// person the grouping split in two (a new haircut, a profile) is found, while strangers,
/// mostly 0.8 and more apart, are not.
pub const SUGGESTION_SIMILARITY: f32 = 0.65;

/// Groups that may be the same person as `mine`: each group's best similarity to any of
/// `mine`'s faces (single linkage: one close pair is enough to ask), those at `floor` or
/// more, most similar first, at most `limit`. A group with no faces is never offered.
pub fn similar_groups<P: Copy>(
    mine: &[Descriptor],
    groups: &[(P, Vec<Descriptor>)],
    floor: f32,
    limit: usize,
) -> Vec<(P, f32)> {
    let mut found: Vec<(P, f32)> = groups
        .iter()
        .filter_map(|(group, faces)| {
            let best = faces
                .iter()
                .flat_map(|face| mine.iter().map(move |m| similarity(m, face)))
                .fold(None, |best: Option<f32>, s| {
                    Some(best.map_or(s, |b| b.max(s)))
                })?;
            (best >= floor).then_some((*group, best))
        })
        .collect();
    found.sort_by(|a, b| b.1.total_cmp(&a.1));
    found.truncate(limit);
    found
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
    fn placing_through_the_index_decides_exactly_as_placing_by_scan() {
        // faces of 12 people arriving interleaved, each a little off its person's axis
        let faces: Vec<Descriptor> = (0..240)
            .map(|i| {
                let mut face = at(i % 12, 1.0);
                face[(i * 7 + 3) % DESCRIPTOR_LEN] += 0.05 * ((i % 5) as f32 - 2.0);
                face[(i * 13 + 1) % DESCRIPTOR_LEN] += 0.04 * ((i % 3) as f32);
                face
            })
            .collect();
        let rule = DensityRule::new(0.6, 3);
        let mut people: Vec<Option<u32>> = Vec::new();
        let mut index = crate::index::FaceIndex::default();
        let mut graph = crate::hnsw::Hnsw::default();
        let mut next_person = 0;
        for (i, face) in faces.iter().enumerate() {
            let by_scan = rule.place(face, &faces[..i], &people);
            let by_index = rule.place_indexed(face, &index, &people);
            assert_eq!(by_scan, by_index, "face {i}");
            assert_eq!(
                by_scan,
                rule.place_indexed(face, &graph, &people),
                "face {i}, HNSW"
            );
            let person = match by_scan.person {
                Some(Joins::Existing(p)) => Some(p),
                Some(Joins::New) => {
                    next_person += 1;
                    Some(next_person)
                }
                None => None,
            };
            for &j in &by_scan.carried {
                people[j] = person;
            }
            people.push(person);
            index.insert(i, *face);
            graph.insert(i, *face);
        }
        assert_eq!(next_person, 12, "one person each");
    }

    #[test]
    fn links_found_through_the_graph_are_the_pairwise_links() {
        let faces = crate::synthetic::clustered(600, 40, 31);
        let rule = DensityRule::new(0.6, 3);
        let index = crate::hnsw::Hnsw::of(&faces);
        assert_eq!(rule.links_indexed(&faces, &index), rule.links(&faces));
        assert_eq!(rule.regroup_indexed(&faces), rule.regroup(&faces));
    }

    #[test]
    fn similar_groups_are_ranked_by_their_closest_face_and_cut_at_the_floor() {
        let mine = [at(0, 0.0), at(1, 1.0)];
        let groups = vec![
            ("far", vec![at(2, 2.0)]),              // d ≥ 2 from both: 0 %
            ("near", vec![at(3, 3.0), at(0, 0.4)]), // one face 0.4 away: 80 %
            ("nearer", vec![at(1, 1.2)]),           // 0.2 away: 90 %
            ("edge", vec![at(0, 0.68)]),            // 0.68 away: 66 %, over the floor
            ("under", vec![at(0, 0.72)]),           // 0.72 away: 64 %, under it
            ("nobody", vec![]),
        ];
        let found = similar_groups(&mine, &groups, SUGGESTION_SIMILARITY, 10);
        let names: Vec<_> = found.iter().map(|(g, _)| *g).collect();
        assert_eq!(names, ["nearer", "near", "edge"]);
        assert!((found[0].1 - 0.9).abs() < 1e-6);
        assert_eq!(
            similar_groups(&mine, &groups, SUGGESTION_SIMILARITY, 1).len(),
            1
        );
        assert!(similar_groups(&[], &groups, 0.0, 10).is_empty());
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
    fn a_placed_face_joins_its_nearest_linked_faces_person_not_the_first_close_one() {
        let rule = DensityRule::new(0.6, 1);
        let earlier = [at(0, 1.0), at(0, 1.45), at(1, 3.0)];
        let people = [Some('a'), Some('b'), Some('c')];
        // 0.5 from 'a', 0.05 from 'b', far from 'c'
        let placement = rule.place(&at(0, 1.5), &earlier, &people);
        assert_eq!(placement.person, Some(Joins::Existing('b')));
        assert_eq!(placement.links, vec![1, 0]);
        assert!(placement.carried.is_empty());
    }

    #[test]
    fn a_core_face_with_no_person_near_starts_one_and_carries_the_waiting_faces() {
        let rule = DensityRule::new(0.6, 3);
        let earlier = [at(0, 1.0), at(0, 1.2), at(1, 4.0)];
        let waiting: [Option<u32>; 3] = [None, None, None];
        let placement = rule.place(&at(0, 1.4), &earlier, &waiting);
        assert_eq!(placement.person, Some(Joins::New));
        assert_eq!(placement.carried, vec![1, 0]);
        // with only one face near, it is not a core face: it waits
        let placement = rule.place(&at(0, 1.4), &earlier[1..], &waiting[1..]);
        assert_eq!(placement.person, None);
        assert!(placement.carried.is_empty());
        assert_eq!(placement.links, vec![0]);
    }

    #[test]
    fn a_core_face_joining_a_person_takes_its_waiting_neighbours_along() {
        let rule = DensityRule::new(0.6, 3);
        let earlier = [at(0, 1.0), at(0, 1.3)];
        let placement = rule.place(&at(0, 1.1), &earlier, &[Some(7), None]);
        assert_eq!(placement.person, Some(Joins::Existing(7)));
        assert_eq!(placement.carried, vec![1]);
    }

    #[test]
    fn regrouping_numbers_groups_by_their_first_face_and_drops_small_ones() {
        let rule = DensityRule::new(0.6, 2);
        let faces = [at(3, 9.0), at(0, 1.0), at(3, 9.2), at(0, 1.3), at(2, 5.0)];
        assert_eq!(
            rule.regroup(&faces),
            vec![Some(0), Some(1), Some(0), Some(1), None]
        );
        assert_eq!(rule.links(&faces)[0], vec![2]);
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
