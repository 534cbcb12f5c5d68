//! Synthetic face descriptors for measuring search at library sizes no photo set here
//! reaches (100,000 faces): unit vectors in tight groups, one per person, far apart, as
//! dlib's descriptors are (one person's faces about 0.3–0.5 apart, two people's about
//! 0.9 and more). Quality is measured on real LFW faces; these are for timing.

use crate::embedder::{DESCRIPTOR_LEN, Descriptor};

/// `count` descriptors of `people` people (face `i` is person `i % people`) whose faces
/// of one person are about 0.4 apart, as dlib's are, from a small deterministic
/// generator seeded by `seed`.
pub fn clustered(count: usize, people: usize, seed: u64) -> Vec<Descriptor> {
    clustered_spread(count, people, 0.4, seed)
}

/// [`clustered`] with one person's faces about `spread` apart (before normalising).
pub fn clustered_spread(count: usize, people: usize, spread: f32, seed: u64) -> Vec<Descriptor> {
    let people = people.max(1);
    // a uniform draw in ±amplitude/2 has deviation amplitude/√12 per dimension; two faces
    // differ by √2 of it in each of 128 dimensions
    let amplitude = spread * 12f32.sqrt() / (2.0 * DESCRIPTOR_LEN as f32).sqrt();
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let unit = |v: &mut Descriptor| {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        v.iter_mut().for_each(|x| *x /= norm);
    };
    let centres: Vec<Descriptor> = (0..people)
        .map(|_| {
            let mut c = [0.0; DESCRIPTOR_LEN];
            c.iter_mut().for_each(|x| *x = next());
            unit(&mut c);
            c
        })
        .collect();
    (0..count)
        .map(|i| {
            let mut d = centres[i % people];
            d.iter_mut().for_each(|x| *x += amplitude * next());
            unit(&mut d);
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedder::distance;

    #[test]
    fn one_persons_faces_are_close_and_two_peoples_far() {
        let faces = clustered(40, 4, 1);
        let same = distance(&faces[0], &faces[4]);
        let other = distance(&faces[0], &faces[1]);
        assert!((0.25..0.55).contains(&same), "same person {same}");
        assert!(other > 0.9, "two people {other}");
        assert_eq!(clustered(40, 4, 1), faces, "deterministic");
    }
}
