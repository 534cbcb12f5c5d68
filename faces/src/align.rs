//! Alignment: five detector landmarks → a 150×150 chip for the embedder.
//!
//! The embedder was trained on chips where the eyes, nose and mouth sit at fixed places.
//! We fit the similarity transform (rotation, uniform scale, shift; no shear, no
//! reflection) that carries the detector's five landmarks closest, in least squares, onto
//! [`CHIP_TEMPLATE`], and sample the photo through its inverse with bilinear interpolation.
//!
//! The fit is Umeyama's ("Least-squares estimation of transformation parameters between two
//! point patterns", IEEE TPAMI 13(4), 1991). In two dimensions it has a short closed form:
//! write the centred points as complex numbers `s_i`, `d_i`; the best `d ≈ a·s` has
//! `a = Σ d_i·conj(s_i) / Σ |s_i|²`, whose modulus is the scale and argument the rotation.
//! That is Umeyama's solution with the reflection excluded.
//!
//! Chip pixel `(x, y)` is the point `(x, y)`: pixel centres sit on integer coordinates, as
//! in dlib's `extract_image_chip`. Samples that fall outside the photo read as black.

use image::{Rgb, RgbImage};

use crate::detect::Detection;
use crate::embedder::CHIP_SIDE;

/// Where the five landmarks go in the 150×150 chip: left eye, right eye, nose tip, left
/// and right mouth corner, in chip pixels.
///
/// These are the values the project was specified with. dlib's own chip geometry (its
/// 68-point mean face, padding 0.25) puts the same points within 2.6 px of them; see
/// `faces/NOTES.md` §3.4.
pub const CHIP_TEMPLATE: [[f32; 2]; 5] = [
    [48.6, 45.0],
    [101.3, 44.1],
    [72.8, 78.7],
    [51.8, 102.4],
    [99.2, 100.9],
];

/// A similarity transform `p ↦ a·p + t` with `a = (a_re, a_im)` as a complex number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a_re: f32,
    pub a_im: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    /// The least-squares similarity carrying `from` onto `to` (Umeyama, 2-D closed form).
    ///
    /// `None` when the `from` points all coincide (no scale or rotation can be read).
    pub fn fit(from: &[[f32; 2]], to: &[[f32; 2]]) -> Option<Self> {
        if from.len() != to.len() || from.is_empty() {
            return None;
        }
        let (from_mean, to_mean) = (mean(from), mean(to));
        let (mut num_re, mut num_im, mut den) = (0.0f64, 0.0f64, 0.0f64);
        for (s, d) in from.iter().zip(to) {
            let (sx, sy) = (
                f64::from(s[0] - from_mean[0]),
                f64::from(s[1] - from_mean[1]),
            );
            let (dx, dy) = (f64::from(d[0] - to_mean[0]), f64::from(d[1] - to_mean[1]));
            // d · conj(s)
            num_re += dx * sx + dy * sy;
            num_im += dy * sx - dx * sy;
            den += sx * sx + sy * sy;
        }
        if den <= f64::EPSILON {
            return None;
        }
        let (a_re, a_im) = ((num_re / den) as f32, (num_im / den) as f32);
        let tx = to_mean[0] - (a_re * from_mean[0] - a_im * from_mean[1]);
        let ty = to_mean[1] - (a_im * from_mean[0] + a_re * from_mean[1]);
        Some(Similarity { a_re, a_im, tx, ty })
    }

    /// Where `p` goes.
    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        [
            self.a_re * p[0] - self.a_im * p[1] + self.tx,
            self.a_im * p[0] + self.a_re * p[1] + self.ty,
        ]
    }

    /// The transform that undoes this one (`None` for a zero scale).
    pub fn inverse(&self) -> Option<Self> {
        let norm = self.a_re * self.a_re + self.a_im * self.a_im;
        if norm <= f32::EPSILON {
            return None;
        }
        let (a_re, a_im) = (self.a_re / norm, -self.a_im / norm);
        let tx = -(a_re * self.tx - a_im * self.ty);
        let ty = -(a_im * self.tx + a_re * self.ty);
        Some(Similarity { a_re, a_im, tx, ty })
    }

    /// The uniform scale factor.
    pub fn scale(&self) -> f32 {
        self.a_re.hypot(self.a_im)
    }
}

fn mean(points: &[[f32; 2]]) -> [f32; 2] {
    let n = points.len() as f32;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
    [sx / n, sy / n]
}

/// The 150×150 chip for a detected face, or `None` when its landmarks are degenerate.
pub fn align_face(photo: &RgbImage, face: &Detection) -> Option<RgbImage> {
    let to_chip = Similarity::fit(&face.landmarks, &CHIP_TEMPLATE)?;
    let to_photo = to_chip.inverse()?;
    Some(warp(photo, &to_photo, CHIP_SIDE))
}

/// Samples `photo` at `to_photo(x, y)` for every pixel of a `side`×`side` chip.
pub fn warp(photo: &RgbImage, to_photo: &Similarity, side: u32) -> RgbImage {
    RgbImage::from_fn(side, side, |x, y| {
        let [px, py] = to_photo.apply([x as f32, y as f32]);
        bilinear(photo, px, py)
    })
}

/// Bilinear sample at a real-valued point; pixels outside the photo count as black.
fn bilinear(photo: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let mut out = [0.0f32; 3];
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let weight = wx * wy;
            if weight == 0.0 {
                continue;
            }
            if let Some(pixel) = pixel_at(photo, x0 + dx, y0 + dy) {
                for (acc, value) in out.iter_mut().zip(pixel.0) {
                    *acc += weight * f32::from(value);
                }
            }
        }
    }
    Rgb(out.map(|v| v.round().clamp(0.0, 255.0) as u8))
}

fn pixel_at(photo: &RgbImage, x: i64, y: i64) -> Option<&Rgb<u8>> {
    let (x, y) = (u32::try_from(x).ok()?, u32::try_from(y).ok()?);
    (x < photo.width() && y < photo.height()).then(|| photo.get_pixel(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f32; 2], b: [f32; 2], tolerance: f32) -> bool {
        (a[0] - b[0]).abs() <= tolerance && (a[1] - b[1]).abs() <= tolerance
    }

    #[test]
    fn fit_recovers_a_known_rotation_scale_and_shift() {
        let truth = Similarity {
            a_re: 1.3 * 0.4f32.cos(),
            a_im: 1.3 * 0.4f32.sin(),
            tx: -20.0,
            ty: 35.0,
        };
        let from = [
            [10.0, 12.0],
            [60.0, 8.0],
            [33.0, 40.0],
            [15.0, 70.0],
            [58.0, 66.0],
        ];
        let to: Vec<[f32; 2]> = from.iter().map(|&p| truth.apply(p)).collect();
        let fitted = Similarity::fit(&from, &to).unwrap();
        for (p, q) in from.iter().zip(&to) {
            assert!(close(fitted.apply(*p), *q, 1e-3), "{fitted:?}");
        }
        assert!((fitted.scale() - 1.3).abs() < 1e-5);
    }

    #[test]
    fn inverse_undoes_the_transform() {
        let t = Similarity {
            a_re: 0.8,
            a_im: -0.3,
            tx: 5.0,
            ty: -7.0,
        };
        let back = t.inverse().unwrap();
        let p = [42.0, -13.0];
        assert!(close(back.apply(t.apply(p)), p, 1e-4));
    }

    #[test]
    fn a_mirrored_face_is_not_fitted_with_a_reflection() {
        // Swapping left and right would need a reflection; the fit must stay a rotation,
        // so the template's eyes can only be reached approximately.
        let mirrored: Vec<[f32; 2]> = CHIP_TEMPLATE.iter().map(|p| [150.0 - p[0], p[1]]).collect();
        let fitted = Similarity::fit(&mirrored, &CHIP_TEMPLATE).unwrap();
        let error = (fitted.apply(mirrored[0])[0] - CHIP_TEMPLATE[0][0]).abs();
        assert!(error > 10.0, "a reflection slipped in: {fitted:?}");
    }

    #[test]
    fn coincident_landmarks_are_refused_not_divided_by_zero() {
        let same = [[30.0, 30.0]; 5];
        assert!(Similarity::fit(&same, &CHIP_TEMPLATE).is_none());
        let face = Detection {
            score: 0.99,
            bbox: [0.0, 0.0, 1.0, 1.0],
            landmarks: same,
        };
        assert!(align_face(&RgbImage::new(64, 64), &face).is_none());
    }

    #[test]
    fn landmarks_on_the_template_give_the_photo_back_unchanged() {
        let photo = RgbImage::from_fn(150, 150, |x, y| Rgb([x as u8, y as u8, (x ^ y) as u8]));
        let face = Detection {
            score: 0.99,
            bbox: [0.0, 0.0, 150.0, 150.0],
            landmarks: CHIP_TEMPLATE,
        };
        let chip = align_face(&photo, &face).unwrap();
        assert_eq!(chip.dimensions(), (150, 150));
        let differing = chip
            .pixels()
            .zip(photo.pixels())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 0);
    }

    #[test]
    fn samples_outside_the_photo_are_black() {
        let photo = RgbImage::from_pixel(4, 4, Rgb([200, 200, 200]));
        assert_eq!(bilinear(&photo, -5.0, 2.0), Rgb([0, 0, 0]));
        assert_eq!(bilinear(&photo, 1.5, 1.5), Rgb([200, 200, 200]));
        // Half over the edge: half the weight is black.
        assert_eq!(bilinear(&photo, 3.5, 1.0), Rgb([100, 100, 100]));
    }
}
