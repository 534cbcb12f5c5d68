//! Exact radius search over face descriptors that stays fast as a library grows: the
//! faces within a distance of a new face, without measuring it against every face.
//!
//! Placing a face ([`crate::cluster::DensityRule::place`]) needs every earlier face within
//! the link distance (0.56–0.6 on dlib descriptors). A scan of all faces costs O(n) per
//! face and O(n²) per library.
//!
//! Face descriptors come in tight groups (one person's faces ≈ 0.3–0.5 apart) far from
//! each other (≈ 0.9 and more), and in 128 dimensions most distances between groups are
//! alike — too alike for a metric tree (a vantage-point tree, tried first, measured two
//! thirds of all faces per query on such data). What works is to put each face in a cell:
//! the leader algorithm (Hartigan, *Clustering Algorithms*, 1975) joins a face to the
//! nearest cell whose first face (its centre) is within `cell_radius`, else opens a cell
//! with it. A cell remembers how far its farthest face is from the centre (its reach);
//! by the triangle inequality, no face of a cell is within `r` of a query when the query
//! is `r + reach` or more from the centre, so a query measures the centres and the faces
//! of the few cells near it: about one cell per person, not one face per face. The
//! answer is exact, the same set a scan finds.

use crate::embedder::{Descriptor, distance};

/// What the density rule asks of an index of earlier faces (ids are the caller's).
pub trait Neighbours {
    /// Faces indexed.
    fn len(&self) -> usize;
    /// Every face closer than `radius` to `query` as (id, distance), nearest first,
    /// ties by id.
    fn within(&self, query: &Descriptor, radius: f32) -> Vec<(usize, f32)>;
}

impl Neighbours for FaceIndex {
    fn len(&self) -> usize {
        FaceIndex::len(self)
    }

    fn within(&self, query: &Descriptor, radius: f32) -> Vec<(usize, f32)> {
        FaceIndex::within(self, query, radius)
    }
}

impl Neighbours for crate::hnsw::Hnsw {
    fn len(&self) -> usize {
        crate::hnsw::Hnsw::len(self)
    }

    fn within(&self, query: &Descriptor, radius: f32) -> Vec<(usize, f32)> {
        crate::hnsw::Hnsw::within(self, query, radius)
    }
}

/// dlib's same-person distance: a cell about one person wide.
pub const DEFAULT_CELL_RADIUS: f32 = 0.6;

/// Faces searchable by distance, each under the caller's id (an index into its own list).
#[derive(Debug, Clone)]
pub struct FaceIndex {
    cell_radius: f32,
    cells: Vec<Cell>,
    len: usize,
}

#[derive(Debug, Clone)]
struct Cell {
    centre: Descriptor,
    /// The distance from the centre to the cell's farthest face.
    reach: f32,
    faces: Vec<(usize, Descriptor)>,
}

impl Default for FaceIndex {
    fn default() -> Self {
        Self::new(DEFAULT_CELL_RADIUS)
    }
}

impl FaceIndex {
    /// An empty index whose cells hold faces within `cell_radius` of their first.
    pub fn new(cell_radius: f32) -> Self {
        FaceIndex {
            cell_radius,
            cells: Vec::new(),
            len: 0,
        }
    }

    /// An index of `faces`, each under its position.
    pub fn of(faces: &[Descriptor]) -> Self {
        let mut index = Self::default();
        for (id, face) in faces.iter().enumerate() {
            index.insert(id, *face);
        }
        index
    }

    /// How many faces it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no face.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many cells the faces fell into.
    pub fn cells(&self) -> usize {
        self.cells.len()
    }

    /// Adds `face` under `id`: to the nearest cell within reach, else to a new cell.
    pub fn insert(&mut self, id: usize, face: Descriptor) {
        let nearest = self
            .cells
            .iter()
            .enumerate()
            .map(|(i, cell)| (i, distance(&face, &cell.centre)))
            .filter(|&(_, d)| d <= self.cell_radius)
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        match nearest {
            Some((i, d)) => {
                let cell = &mut self.cells[i];
                cell.reach = cell.reach.max(d);
                cell.faces.push((id, face));
            }
            None => self.cells.push(Cell {
                centre: face,
                reach: 0.0,
                faces: vec![(id, face)],
            }),
        }
        self.len += 1;
    }

    /// Every face closer than `radius` to `query` (strictly, as the density rule links),
    /// as (id, distance), nearest first, ties by id.
    pub fn within(&self, query: &Descriptor, radius: f32) -> Vec<(usize, f32)> {
        self.within_counting(query, radius).0
    }

    /// [`FaceIndex::within`], and how many distances the search measured.
    pub fn within_counting(&self, query: &Descriptor, radius: f32) -> (Vec<(usize, f32)>, usize) {
        let mut found = Vec::new();
        let mut measured = 0;
        for cell in &self.cells {
            measured += 1;
            // every face x of the cell has d(q, x) ≥ d(q, centre) − reach
            if distance(query, &cell.centre) - cell.reach >= radius {
                continue;
            }
            for (id, face) in &cell.faces {
                measured += 1;
                let d = distance(query, face);
                if d < radius {
                    found.push((*id, d));
                }
            }
        }
        found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        (found, measured)
    }
}

/// Every face of `faces` closer than `radius` to `query` as (position, distance),
/// nearest first, ties by position: the exact answer, by measuring every face, that
/// the indexes are checked against.
pub fn scan_within(faces: &[Descriptor], query: &Descriptor, radius: f32) -> Vec<(usize, f32)> {
    let mut found: Vec<(usize, f32)> = faces
        .iter()
        .enumerate()
        .map(|(i, f)| (i, distance(query, f)))
        .filter(|&(_, d)| d < radius)
        .collect();
    found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    found
}

#[cfg(test)]
mod tests {
    use super::scan_within as scan;
    use super::*;
    use crate::embedder::DESCRIPTOR_LEN;

    /// Tighter groups than dlib's (faces ≈ 0.16 apart), as these tests were written for.
    fn clustered(count: usize, people: usize, seed: u64) -> Vec<Descriptor> {
        crate::synthetic::clustered_spread(count, people, 0.16, seed)
    }

    #[test]
    fn the_index_finds_exactly_what_a_scan_finds_at_every_size_and_radius() {
        let faces = clustered(700, 40, 7);
        let queries = clustered(60, 40, 8);
        let mut index = FaceIndex::default();
        for (i, face) in faces.iter().enumerate() {
            index.insert(i, *face);
            if [1, 2, 3, 7, 64, 65, 300, 699].contains(&(i + 1)) {
                for radius in [0.3, 0.6, 1.0, 2.1] {
                    for query in &queries {
                        assert_eq!(
                            index.within(query, radius),
                            scan(&faces[..=i], query, radius)
                        );
                    }
                }
            }
        }
        assert_eq!(index.len(), 700);
    }

    #[test]
    fn a_clustered_library_is_searched_without_measuring_every_face() {
        // The point of the index: count the distances a query measures.
        let faces = clustered(4096, 256, 3);
        let index = FaceIndex::of(&faces);
        let query = clustered(1, 256, 3)[0];
        let (found, measured) = index.within_counting(&query, 0.6);
        assert!(
            measured < faces.len() / 4,
            "measured {measured} of {}",
            faces.len()
        );
        assert_eq!(found, scan(&faces, &query, 0.6));
        assert!(!found.is_empty(), "the query's own cluster is within reach");
    }

    #[test]
    fn an_empty_index_finds_nothing() {
        let index = FaceIndex::default();
        assert!(index.is_empty());
        assert!(index.within(&[0.0; DESCRIPTOR_LEN], 10.0).is_empty());
    }
}
