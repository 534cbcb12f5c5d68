//! Face search whose cost grows with the logarithm of the library: a hierarchical
//! navigable small world graph (HNSW; Malkov & Yashunin, "Efficient and robust
//! approximate nearest neighbor search using Hierarchical Navigable Small World graphs",
//! IEEE TPAMI 2020, arXiv:1603.09320), the index pgvector and most vector databases use.
//!
//! Every face is a node on layer 0 and, with probability falling geometrically, on the
//! layers above; each layer links a node to its nearest few (picked by the paper's
//! heuristic, which keeps links in different directions). A search walks greedily down
//! from the top layer's entry point and widens to a best-first search of `ef` candidates
//! on layer 0: about log(n) hops of a few dozen distances each.
//!
//! [`Hnsw::within`] answers the density rule's question (every face within the link
//! distance) with nearest-neighbour searches of growing width: it asks for k nearest,
//! and while all k are inside the radius it asks again for 4k. Like every HNSW answer it
//! is approximate; `cluster::tests` and experiments/faces-scale measure how often it
//! differs from a scan (on real faces, the placements are the scan's).
//!
//! Faces are removed by marking them (a purged photo's faces): searches still walk
//! through them but never return them, as in hnswlib.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::embedder::{Descriptor, distance};

/// How the graph is built and searched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HnswParams {
    /// Links per node on the upper layers (twice this on layer 0).
    pub m: usize,
    /// Candidates kept while a node's links are chosen.
    pub ef_construction: usize,
    /// Candidates kept by a search (at least the number of answers asked for).
    pub ef_search: usize,
    /// Seeds the layer draw, so an index built twice from the same faces is the same.
    pub seed: u64,
}

impl Default for HnswParams {
    /// `m` and the search width are pgvector's defaults (16, 40); the construction width
    /// is hnswlib's (100: pgvector's 64 built a graph that, at 100,000 faces, placed 1
    /// face in 500 differently from a scan; experiments/face-index-scale). A search
    /// width of 20 was twice as fast and placed 8 in 500 differently.
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 100,
            ef_search: 40,
            seed: 0x5eed_f00d,
        }
    }
}

/// Faces searchable by distance, each under the caller's id.
#[derive(Debug, Clone)]
pub struct Hnsw {
    params: HnswParams,
    /// 1 / ln(m): the expected share of nodes on each higher layer is 1/m.
    level_scale: f64,
    nodes: Vec<Node>,
    by_id: HashMap<usize, u32>,
    entry: Option<u32>,
    top_level: usize,
    removed: usize,
    rng: u64,
}

#[derive(Debug, Clone)]
struct Node {
    id: usize,
    face: Descriptor,
    removed: bool,
    /// The node's links on each layer it is on, layer 0 first.
    links: Vec<Vec<u32>>,
}

/// A node and its distance from the query, ordered by distance then node.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Near {
    d: f32,
    node: u32,
}

impl Eq for Near {}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.d.total_cmp(&other.d).then(self.node.cmp(&other.node))
    }
}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Default for Hnsw {
    fn default() -> Self {
        Self::new(HnswParams::default())
    }
}

impl Hnsw {
    pub fn new(params: HnswParams) -> Self {
        let m = params.m.max(2);
        Hnsw {
            params: HnswParams { m, ..params },
            level_scale: 1.0 / (m as f64).ln(),
            nodes: Vec::new(),
            by_id: HashMap::new(),
            entry: None,
            top_level: 0,
            removed: 0,
            rng: params.seed,
        }
    }

    /// An index of `faces` under their positions.
    pub fn of(faces: &[Descriptor]) -> Self {
        let mut index = Self::default();
        for (id, face) in faces.iter().enumerate() {
            index.insert(id, *face);
        }
        index
    }

    /// Faces searchable (removed ones not counted).
    pub fn len(&self) -> usize {
        self.nodes.len() - self.removed
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: usize) -> bool {
        self.by_id
            .get(&id)
            .is_some_and(|&n| !self.nodes[n as usize].removed)
    }

    /// The ids of the faces searchable.
    pub fn ids(&self) -> impl Iterator<Item = usize> + '_ {
        self.nodes.iter().filter(|n| !n.removed).map(|n| n.id)
    }

    /// Adds `face` under `id`; an id already there is replaced.
    pub fn insert(&mut self, id: usize, face: Descriptor) {
        self.remove(id);
        let level = self.random_level();
        let node = u32::try_from(self.nodes.len()).expect("fewer than 4 billion faces");
        self.nodes.push(Node {
            id,
            face,
            removed: false,
            links: vec![Vec::new(); level + 1],
        });
        self.by_id.insert(id, node);
        let Some(mut entry) = self.entry else {
            self.entry = Some(node);
            self.top_level = level;
            return;
        };
        let mut d_entry = distance(&face, &self.face(entry));
        for layer in (level + 1..=self.top_level).rev() {
            (entry, d_entry) = self.greedy(&face, entry, d_entry, layer);
        }
        let mut entries = vec![Near {
            d: d_entry,
            node: entry,
        }];
        for layer in (0..=level.min(self.top_level)).rev() {
            let found = self.search_layer(&face, &entries, self.params.ef_construction, layer);
            let chosen = self.select(&found, self.params.m);
            self.nodes[node as usize].links[layer] = chosen.iter().map(|n| n.node).collect();
            for near in &chosen {
                self.link(near.node, node, layer);
            }
            entries = found;
        }
        if level > self.top_level {
            self.top_level = level;
            self.entry = Some(node);
        }
    }

    /// Marks the face `id` removed; returns whether it was there.
    pub fn remove(&mut self, id: usize) -> bool {
        let Some(&node) = self.by_id.get(&id) else {
            return false;
        };
        let node = &mut self.nodes[node as usize];
        if node.removed {
            return false;
        }
        node.removed = true;
        self.removed += 1;
        true
    }

    /// The `k` nearest faces to `query`, nearest first: (id, distance).
    pub fn nearest(&self, query: &Descriptor, k: usize) -> Vec<(usize, f32)> {
        let Some(mut entry) = self.entry else {
            return Vec::new();
        };
        let mut d = distance(query, &self.face(entry));
        for layer in (1..=self.top_level).rev() {
            (entry, d) = self.greedy(query, entry, d, layer);
        }
        // removed nodes take places among the candidates: widen by as many
        let ef = self.params.ef_search.max(k) + self.removed.min(k);
        let found = self.search_layer(query, &[Near { d, node: entry }], ef, 0);
        let mut answers: Vec<(usize, f32)> = found
            .into_iter()
            .filter_map(|n| {
                let node = &self.nodes[n.node as usize];
                (!node.removed).then_some((node.id, n.d))
            })
            .collect();
        answers.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        answers.truncate(k);
        answers
    }

    /// Every face closer than `radius` to `query`, nearest first (ties by id): nearest
    /// searches of growing width until one ends outside the radius.
    pub fn within(&self, query: &Descriptor, radius: f32) -> Vec<(usize, f32)> {
        let mut k = 16;
        loop {
            let found = self.nearest(query, k);
            let complete = found.len() < k || found.last().is_some_and(|&(_, d)| d >= radius);
            if complete || k >= self.len() {
                return found.into_iter().filter(|&(_, d)| d < radius).collect();
            }
            k *= 4;
        }
    }

    fn face(&self, node: u32) -> Descriptor {
        self.nodes[node as usize].face
    }

    /// A layer drawn with P(layer ≥ l) = m^-l.
    fn random_level(&mut self) -> usize {
        // splitmix64: deterministic for a seed, good enough for a geometric draw
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // uniform in (0, 1]
        let uniform = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        ((-uniform.ln() * self.level_scale) as usize).min(16)
    }

    fn max_links(&self, layer: usize) -> usize {
        if layer == 0 {
            2 * self.params.m
        } else {
            self.params.m
        }
    }

    /// Links `from` to `to` on `layer`, pruning `from`'s links by the heuristic when
    /// there are too many.
    fn link(&mut self, from: u32, to: u32, layer: usize) {
        let max = self.max_links(layer);
        let links = &mut self.nodes[from as usize].links[layer];
        links.push(to);
        if links.len() <= max {
            return;
        }
        let base = self.face(from);
        let mut candidates: Vec<Near> = self.nodes[from as usize].links[layer]
            .iter()
            .map(|&node| Near {
                d: distance(&base, &self.face(node)),
                node,
            })
            .collect();
        candidates.sort();
        let kept = self.select(&candidates, max);
        self.nodes[from as usize].links[layer] = kept.into_iter().map(|n| n.node).collect();
    }

    /// The paper's neighbour heuristic (its Algorithm 4, keeping pruned links): from
    /// candidates nearest first, keep one only if it is nearer the base than to every
    /// one kept, so links spread out instead of all pointing into one cluster; then fill
    /// up to `m` with the nearest of the rest.
    fn select(&self, sorted: &[Near], m: usize) -> Vec<Near> {
        let mut kept: Vec<Near> = Vec::with_capacity(m);
        let mut pruned = Vec::new();
        for &candidate in sorted {
            if kept.len() == m {
                break;
            }
            let face = self.face(candidate.node);
            if kept
                .iter()
                .all(|k| distance(&face, &self.face(k.node)) > candidate.d)
            {
                kept.push(candidate);
            } else {
                pruned.push(candidate);
            }
        }
        kept.extend(pruned.into_iter().take(m - kept.len()));
        kept
    }

    /// Moves to the nearest neighbour on `layer` until none is nearer.
    fn greedy(&self, query: &Descriptor, mut node: u32, mut d: f32, layer: usize) -> (u32, f32) {
        loop {
            let mut moved = false;
            for &next in &self.nodes[node as usize].links[layer] {
                let d_next = distance(query, &self.face(next));
                if d_next < d {
                    (node, d, moved) = (next, d_next, true);
                }
            }
            if !moved {
                return (node, d);
            }
        }
    }

    /// Best-first search of `layer` from `entries`, keeping the `ef` nearest found;
    /// returned nearest first.
    fn search_layer(
        &self,
        query: &Descriptor,
        entries: &[Near],
        ef: usize,
        layer: usize,
    ) -> Vec<Near> {
        let mut visited: HashSet<u32> = entries.iter().map(|e| e.node).collect();
        let mut candidates: BinaryHeap<Reverse<Near>> =
            entries.iter().copied().map(Reverse).collect();
        let mut found: BinaryHeap<Near> = entries.iter().copied().collect();
        while let Some(Reverse(candidate)) = candidates.pop() {
            let farthest = found.peek().map_or(f32::INFINITY, |n| n.d);
            if candidate.d > farthest && found.len() >= ef {
                break;
            }
            let Some(links) = self.nodes[candidate.node as usize].links.get(layer) else {
                continue;
            };
            for &next in links {
                if !visited.insert(next) {
                    continue;
                }
                let d = distance(query, &self.face(next));
                let farthest = found.peek().map_or(f32::INFINITY, |n| n.d);
                if found.len() < ef || d < farthest {
                    let near = Near { d, node: next };
                    candidates.push(Reverse(near));
                    found.push(near);
                    if found.len() > ef {
                        found.pop();
                    }
                }
            }
        }
        found.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedder::DESCRIPTOR_LEN;
    use crate::index::scan_within as scan;
    use crate::synthetic::clustered;

    #[test]
    fn nearest_faces_agree_with_a_scan() {
        let faces = clustered(2000, 150, 11);
        // the graph's quality at hnswlib's search width; the album's narrower default is
        // checked where it matters, on link sets (below)
        let mut index = Hnsw::new(HnswParams {
            ef_search: 100,
            ..HnswParams::default()
        });
        for (id, face) in faces.iter().enumerate() {
            index.insert(id, *face);
        }
        let queries = clustered(100, 150, 12);
        let mut hits = 0;
        for query in &queries {
            let mut exact = scan(&faces, query, f32::INFINITY);
            exact.truncate(10);
            let found = index.nearest(query, 10);
            assert_eq!(found.len(), 10);
            assert!(found.windows(2).all(|w| w[0].1 <= w[1].1), "nearest first");
            hits += found.iter().filter(|f| exact.contains(f)).count();
        }
        // recall@10 over 1,000 answers (one person's faces are nearly equidistant from
        // a query: the 10th and 11th nearest swap places now and then)
        assert!(hits >= 970, "recall@10 {hits}/1000");
    }

    #[test]
    fn within_finds_the_link_sets_a_scan_finds() {
        // a radius that takes whole people (≈ 13 faces each), so the search must widen
        let faces = clustered(2000, 150, 21);
        let index = Hnsw::of(&faces);
        let queries = clustered(200, 150, 22);
        let same = queries
            .iter()
            .filter(|q| index.within(q, 0.6) == scan(&faces, q, 0.6))
            .count();
        assert!(same >= 198, "{same}/200 link sets as a scan's");
        // and a radius past every face returns them all
        assert_eq!(index.within(&queries[0], 10.0).len(), faces.len());
    }

    #[test]
    fn removed_faces_are_never_returned_and_an_id_can_come_back() {
        let faces = clustered(300, 20, 5);
        let mut index = Hnsw::of(&faces);
        // every other block of 20 ids: half of each person's faces
        let removed = |id: usize| (id / 20) % 2 == 0;
        for id in (0..300).filter(|&id| removed(id)) {
            assert!(index.remove(id));
        }
        assert!(!index.remove(0), "removed once");
        assert_eq!(index.len(), 140);
        for query in faces.iter().take(20) {
            let found = index.within(query, 0.6);
            assert!(found.iter().all(|&(id, _)| !removed(id)), "{found:?}");
            assert!(!found.is_empty());
        }
        index.insert(0, faces[0]);
        assert!(index.contains(0));
        assert_eq!(index.nearest(&faces[0], 1), vec![(0, 0.0)]);
    }

    #[test]
    fn the_same_faces_build_the_same_index() {
        let faces = clustered(500, 30, 9);
        let query = clustered(1, 30, 10)[0];
        assert_eq!(
            Hnsw::of(&faces).nearest(&query, 20),
            Hnsw::of(&faces).nearest(&query, 20)
        );
    }

    #[test]
    fn an_empty_index_finds_nothing() {
        let index = Hnsw::default();
        assert!(index.is_empty());
        assert!(index.within(&[0.0; DESCRIPTOR_LEN], 10.0).is_empty());
        assert!(index.nearest(&[0.0; DESCRIPTOR_LEN], 3).is_empty());
    }
}
