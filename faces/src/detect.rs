//! Face detection: photo → scored boxes with 5 landmarks.
//!
//! Runs [`crate::retinaface`] (Deng et al., "RetinaFace: Single-stage Dense Face
//! Localisation in the Wild", CVPR 2020) and turns its dense per-anchor outputs into faces:
//!
//! 1. Photos whose longer side exceeds [`DetectorSettings::max_side`] are downscaled first
//!    (the network is fully convolutional, any H×W works; the cap bounds the cost), and the
//!    results are mapped back to the original pixels.
//! 2. Priors: for strides 8, 16, 32 a ⌈H/s⌉×⌈W/s⌉ grid, 2 square anchors per cell (sizes
//!    16/32, 64/128, 256/512 px), in the network's output order: stride 8 first, rows
//!    outer, columns inner, the two sizes innermost. A = 2·Σ ⌈H/s⌉·⌈W/s⌉.
//! 3. Decode with the SSD variances (0.1, 0.2): centre `c + l·0.1·size`, side
//!    `size·exp(l·0.2)`; landmark k at `c + m_k·0.1·size`. Computed in pixels, which is the
//!    reference's normalised form (`cx = (col+0.5)·s/W`, `w = size/W`, …) times W and H.
//! 4. Keep `conf[face] > score_threshold`, drop boxes whose shorter side is under
//!    `min_face_px` (in original pixels), then greedy NMS at `nms_iou` on continuous boxes
//!    (no "+1" pixel convention), scores descending, ties in anchor order.
//!
//! Boxes are not clamped to the image (a face at the border can have y1 < 0): clamp when
//! cropping. Landmarks are in the network's order, which for frontal faces is: eye with
//! the smaller x, the other eye, nose, mouth corner with the smaller x, the other corner.

use std::borrow::Cow;
use std::path::Path;

use burn::tensor::Device;
use image::RgbImage;
use image::imageops::FilterType;

use crate::error::{Error, Result};
use crate::retinaface::{ANCHORS_PER_CELL, RetinaFace};

/// One detected face, in pixels of the image passed to [`FaceDetector::detect`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Face probability from the network's softmax, 0..1.
    pub score: f32,
    /// x1, y1, x2, y2 (continuous coordinates, not clamped to the image).
    pub bbox: [f32; 4],
    /// Left eye (smaller x), right eye, nose, mouth left, mouth right: (x, y) each.
    pub landmarks: [[f32; 2]; 5],
}

impl Detection {
    /// Box width in pixels.
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }

    /// Box height in pixels.
    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }

    /// The same face with x multiplied by `sx` and y by `sy` (maps a downscaled image's
    /// coordinates back to the original's).
    pub fn scaled(&self, sx: f32, sy: f32) -> Detection {
        let [x1, y1, x2, y2] = self.bbox;
        Detection {
            score: self.score,
            bbox: [x1 * sx, y1 * sy, x2 * sx, y2 * sy],
            landmarks: self.landmarks.map(|[x, y]| [x * sx, y * sy]),
        }
    }
}

/// Detection thresholds and the size cap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorSettings {
    /// Keep anchors whose face probability is above this (default 0.8).
    pub score_threshold: f32,
    /// NMS suppresses a box overlapping a better one by more than this IoU (default 0.4).
    pub nms_iou: f32,
    /// Drop faces whose shorter box side is below this, in original pixels (default 20):
    /// smaller faces make poor 150×150 chips for the embedder.
    pub min_face_px: f32,
    /// Photos with a longer side above this are downscaled for detection (default 640).
    pub max_side: u32,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        DetectorSettings {
            score_threshold: 0.8,
            nms_iou: 0.4,
            min_face_px: 20.0,
            max_side: 640,
        }
    }
}

impl DetectorSettings {
    /// Refuses settings that cannot mean anything (NaN, negative, a zero size cap).
    pub fn validate(&self) -> Result<()> {
        let unit = |v: f32| (0.0..=1.0).contains(&v);
        if !unit(self.score_threshold) {
            return Err(Error::Invalid(format!(
                "score_threshold must be in 0..=1, got {}",
                self.score_threshold
            )));
        }
        if !unit(self.nms_iou) {
            return Err(Error::Invalid(format!(
                "nms_iou must be in 0..=1, got {}",
                self.nms_iou
            )));
        }
        if !(self.min_face_px.is_finite() && self.min_face_px >= 0.0) {
            return Err(Error::Invalid(format!(
                "min_face_px must be finite and >= 0, got {}",
                self.min_face_px
            )));
        }
        if self.max_side == 0 {
            return Err(Error::Invalid("max_side must be at least 1".to_string()));
        }
        Ok(())
    }
}

/// Strides of the three pyramid levels and their two anchor sizes in pixels.
pub const LEVELS: [(usize, [f32; 2]); 3] =
    [(8, [16.0, 32.0]), (16, [64.0, 128.0]), (32, [256.0, 512.0])];

/// SSD box-coding variances (centre, size).
pub const VARIANCES: [f32; 2] = [0.1, 0.2];

/// One anchor in pixels: centre and side (anchors are square in pixels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    pub cx: f32,
    pub cy: f32,
    pub size: f32,
}

/// Number of anchors for an H×W input: 2·Σ ⌈H/s⌉·⌈W/s⌉.
pub fn prior_count(height: usize, width: usize) -> usize {
    LEVELS
        .iter()
        .map(|&(s, _)| height.div_ceil(s) * width.div_ceil(s) * ANCHORS_PER_CELL)
        .sum()
}

/// All anchors for an H×W input, in the network's output order.
pub fn priors(height: usize, width: usize) -> Vec<Prior> {
    let mut priors = Vec::with_capacity(prior_count(height, width));
    for &(stride, sizes) in &LEVELS {
        for row in 0..height.div_ceil(stride) {
            for col in 0..width.div_ceil(stride) {
                for size in sizes {
                    priors.push(Prior {
                        cx: (col as f32 + 0.5) * stride as f32,
                        cy: (row as f32 + 0.5) * stride as f32,
                        size,
                    });
                }
            }
        }
    }
    priors
}

/// The network's raw outputs for one H×W input, row-major on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutputs {
    /// The input's height and width.
    pub height: usize,
    pub width: usize,
    /// `[A, 4]` box offsets.
    pub loc: Vec<f32>,
    /// `[A, 2]` (background, face) probabilities.
    pub conf: Vec<f32>,
    /// `[A, 10]` landmark offsets.
    pub landmarks: Vec<f32>,
}

impl RawOutputs {
    /// A, the number of anchors.
    pub fn anchors(&self) -> usize {
        self.conf.len() / 2
    }

    fn check(&self) -> Result<usize> {
        let anchors = prior_count(self.height, self.width);
        let lens = [self.loc.len(), self.conf.len(), self.landmarks.len()];
        if lens != [anchors * 4, anchors * 2, anchors * 10] {
            return Err(Error::Invalid(format!(
                "raw outputs for {}x{} need {anchors} anchors, got loc/conf/landmark lengths {lens:?}",
                self.width, self.height
            )));
        }
        Ok(anchors)
    }
}

/// Decodes every anchor whose face score is above `score_threshold`, in anchor order,
/// in pixels of the network input.
pub fn decode(raw: &RawOutputs, score_threshold: f32) -> Result<Vec<Detection>> {
    raw.check()?;
    let priors = priors(raw.height, raw.width);
    let rows = priors
        .iter()
        .zip(raw.loc.chunks_exact(4))
        .zip(raw.conf.chunks_exact(2))
        .zip(raw.landmarks.chunks_exact(10));
    Ok(rows
        .filter_map(|(((prior, loc), conf), landmarks)| {
            let score = *conf.get(1)?;
            (score > score_threshold).then(|| decode_one(prior, loc, landmarks, score))
        })
        .collect())
}

fn decode_one(prior: &Prior, loc: &[f32], landmarks: &[f32], score: f32) -> Detection {
    let at = |values: &[f32], i: usize| values.get(i).copied().unwrap_or(0.0);
    let [center, size_var] = VARIANCES;
    let cx = prior.cx + at(loc, 0) * center * prior.size;
    let cy = prior.cy + at(loc, 1) * center * prior.size;
    let w = prior.size * (at(loc, 2) * size_var).exp();
    let h = prior.size * (at(loc, 3) * size_var).exp();
    let mut points = [[0f32; 2]; 5];
    for (k, point) in points.iter_mut().enumerate() {
        *point = [
            prior.cx + at(landmarks, 2 * k) * center * prior.size,
            prior.cy + at(landmarks, 2 * k + 1) * center * prior.size,
        ];
    }
    Detection {
        score,
        bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
        landmarks: points,
    }
}

/// Intersection over union of two x1,y1,x2,y2 boxes (continuous, no "+1"); 0 for empty boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// Greedy non-maximum suppression: sorts by score descending (stable: equal scores keep
/// their order) and drops every box whose IoU with an already kept one exceeds `iou_threshold`.
pub fn nms(mut detections: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for candidate in detections {
        if kept
            .iter()
            .all(|k| iou(&k.bbox, &candidate.bbox) <= iou_threshold)
        {
            kept.push(candidate);
        }
    }
    kept
}

/// Whether a face is large enough to keep: shorter box side at least `min_face_px`.
pub fn large_enough(detection: &Detection, min_face_px: f32) -> bool {
    detection.width().min(detection.height()) >= min_face_px
}

/// Raw outputs → final faces: decode, scale by (`sx`, `sy`) to original pixels, size floor, NMS.
pub fn postprocess(
    raw: &RawOutputs,
    settings: &DetectorSettings,
    sx: f32,
    sy: f32,
) -> Result<Vec<Detection>> {
    let candidates = decode(raw, settings.score_threshold)?
        .into_iter()
        .map(|d| d.scaled(sx, sy))
        .filter(|d| large_enough(d, settings.min_face_px))
        .collect();
    Ok(nms(candidates, settings.nms_iou))
}

/// The size an image is run at: unchanged when its longer side is at most `max_side`, else
/// scaled so the longer side is `max_side` (aspect kept, rounded, at least 1 px).
pub fn detection_size(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let longer = width.max(height);
    if longer <= max_side || longer == 0 {
        return (width, height);
    }
    let scale = f64::from(max_side) / f64::from(longer);
    let side = |v: u32| ((f64::from(v) * scale).round() as u32).clamp(1, max_side.max(1));
    (side(width), side(height))
}

/// Downscales for detection. A shrink by 2× or more uses `thumbnail` (area averaging, fast
/// on large photos); a smaller shrink uses a triangle filter, where `thumbnail`'s
/// one-source-pixel-per-target rule would alias.
fn downscale(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    if image.width() >= 2 * width && image.height() >= 2 * height {
        image::imageops::thumbnail(image, width, height)
    } else {
        image::imageops::resize(image, width, height, FilterType::Triangle)
    }
}

/// RetinaFace-MobileNet0.25 with its post-processing.
#[derive(Clone)]
pub struct FaceDetector {
    net: RetinaFace,
    settings: DetectorSettings,
}

impl std::fmt::Debug for FaceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceDetector")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl FaceDetector {
    /// Loads the pinned ONNX file from `weights_dir` (SHA-256 checked) onto `device`.
    pub fn load(weights_dir: &Path, device: &Device) -> Result<Self> {
        let (path, bytes) = crate::weights::RETINAFACE.read_verified(weights_dir)?;
        Ok(FaceDetector {
            net: RetinaFace::from_onnx(&path, &bytes, device)?,
            settings: DetectorSettings::default(),
        })
    }

    /// The same detector with other thresholds.
    pub fn with_settings(self, settings: DetectorSettings) -> Self {
        FaceDetector { settings, ..self }
    }

    /// The current thresholds.
    pub fn settings(&self) -> DetectorSettings {
        self.settings
    }

    /// The faces in `image`, best score first; empty when there are none.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<Detection>> {
        self.settings.validate()?;
        let (width, height) = detection_size(image.width(), image.height(), self.settings.max_side);
        let input = if (width, height) == image.dimensions() {
            Cow::Borrowed(image)
        } else {
            Cow::Owned(downscale(image, width, height))
        };
        let raw = self.raw_outputs(&input)?;
        let sx = image.width() as f32 / width.max(1) as f32;
        let sy = image.height() as f32 / height.max(1) as f32;
        postprocess(&raw, &self.settings, sx, sy)
    }

    /// The network's raw outputs on `image` as given (no downscaling), for tests and tools.
    pub fn raw_outputs(&self, image: &RgbImage) -> Result<RawOutputs> {
        let outputs = self.net.run(image)?;
        let raw = RawOutputs {
            height: image.height() as usize,
            width: image.width() as usize,
            loc: outputs.loc,
            conf: outputs.conf,
            landmarks: outputs.landmarks,
        };
        raw.check()?;
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(score: f32, bbox: [f32; 4]) -> Detection {
        Detection {
            score,
            bbox,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn prior_counts_match_the_network() {
        assert_eq!(prior_count(250, 250), 2688);
        assert_eq!(prior_count(232, 200), 1952);
        assert_eq!(prior_count(480, 640), 12600);
        assert_eq!(prior_count(123, 100), 560);
        assert_eq!(prior_count(1, 1), 6);
        for (h, w) in [
            (250, 250),
            (232, 200),
            (480, 640),
            (123, 100),
            (1, 1),
            (3, 500),
        ] {
            assert_eq!(priors(h, w).len(), prior_count(h, w), "{h}x{w}");
        }
    }

    #[test]
    fn priors_run_levels_then_rows_then_columns_then_sizes() {
        let p = priors(250, 250);
        assert_eq!(
            p[0],
            Prior {
                cx: 4.0,
                cy: 4.0,
                size: 16.0
            }
        );
        assert_eq!(
            p[1],
            Prior {
                cx: 4.0,
                cy: 4.0,
                size: 32.0
            }
        );
        assert_eq!(
            p[2],
            Prior {
                cx: 12.0,
                cy: 4.0,
                size: 16.0
            }
        );
        assert_eq!(
            p[64],
            Prior {
                cx: 4.0,
                cy: 12.0,
                size: 16.0
            }
        ); // row 1 after 32 columns
        // the fixture's best face: anchor 2289 = stride 16, row 7, col 8, size 128
        assert_eq!(
            p[2289],
            Prior {
                cx: 136.0,
                cy: 120.0,
                size: 128.0
            }
        );
        assert_eq!(
            p[2048],
            Prior {
                cx: 8.0,
                cy: 8.0,
                size: 64.0
            }
        );
        assert_eq!(
            p[2687],
            Prior {
                cx: 240.0,
                cy: 240.0,
                size: 512.0
            }
        );
    }

    fn raw_with(
        height: usize,
        width: usize,
        index: usize,
        loc: [f32; 4],
        lm: [f32; 10],
        score: f32,
    ) -> RawOutputs {
        let a = prior_count(height, width);
        let mut raw = RawOutputs {
            height,
            width,
            loc: vec![0.0; 4 * a],
            conf: [1.0, 0.0].repeat(a),
            landmarks: vec![0.0; 10 * a],
        };
        raw.loc[4 * index..4 * index + 4].copy_from_slice(&loc);
        raw.conf[2 * index..2 * index + 2].copy_from_slice(&[1.0 - score, score]);
        raw.landmarks[10 * index..10 * index + 10].copy_from_slice(&lm);
        raw
    }

    #[test]
    fn decode_applies_the_variances() {
        let lm = [1.0, -1.0, 0.0, 0.0, 0.5, 0.5, -2.0, 0.0, 0.0, 2.0];
        let raw = raw_with(250, 250, 2289, [1.0, -0.5, 0.0, 5.0 * 2f32.ln()], lm, 0.9);
        let found = decode(&raw, 0.8).unwrap();
        assert_eq!(found.len(), 1);
        let d = found[0];
        assert_eq!(d.score, 0.9);
        // centre (136 + 0.1·128, 120 − 0.05·128) = (148.8, 113.6); w = 128, h = 128·2
        let expected = [148.8 - 64.0, 113.6 - 128.0, 148.8 + 64.0, 113.6 + 128.0];
        for (got, want) in d.bbox.iter().zip(expected) {
            assert!((got - want).abs() < 1e-3, "{:?} vs {expected:?}", d.bbox);
        }
        assert!((d.landmarks[0][0] - 148.8).abs() < 1e-4);
        assert!((d.landmarks[0][1] - 107.2).abs() < 1e-4);
        assert!((d.landmarks[3][0] - 110.4).abs() < 1e-4);
        assert!((d.landmarks[4][1] - 145.6).abs() < 1e-4);
        // the threshold is strict
        assert!(decode(&raw, 0.9).unwrap().is_empty());
    }

    #[test]
    fn decode_refuses_outputs_of_the_wrong_length() {
        let mut raw = raw_with(100, 100, 0, [0.0; 4], [0.0; 10], 0.9);
        raw.loc.pop();
        assert!(matches!(decode(&raw, 0.5), Err(Error::Invalid(_))));
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[0.0, 0.0, 10.0, 10.0]), 1.0);
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[10.0, 0.0, 20.0, 10.0]), 0.0);
        assert!((iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn nms_suppresses_overlaps_and_keeps_a_stable_order() {
        let boxes = vec![
            face(0.85, [100.0, 100.0, 150.0, 150.0]), // C: alone
            face(0.90, [0.0, 0.0, 10.0, 10.0]),       // A
            face(0.95, [1.0, 0.0, 11.0, 10.0]),       // B: overlaps A by 0.82, wins
            face(0.85, [200.0, 0.0, 210.0, 10.0]),    // D: same score as C, after it
            face(0.80, [5.0, 0.0, 15.0, 10.0]),       // IoU 1/3 with A, 0.43 with B: gone
        ];
        let kept = nms(boxes, 0.4);
        let bboxes: Vec<_> = kept.iter().map(|d| d.bbox).collect();
        assert_eq!(
            bboxes,
            vec![
                [1.0, 0.0, 11.0, 10.0],
                [100.0, 100.0, 150.0, 150.0],
                [200.0, 0.0, 210.0, 10.0],
            ]
        );
        // IoU exactly at the threshold is kept (suppress only above it)
        let kept = nms(
            vec![
                face(0.9, [0.0, 0.0, 10.0, 10.0]),
                face(0.8, [5.0, 0.0, 15.0, 10.0]),
            ],
            1.0 / 3.0 + 1e-6,
        );
        assert_eq!(kept.len(), 2);
        assert!(nms(Vec::new(), 0.4).is_empty());
    }

    #[test]
    fn the_size_floor_uses_the_shorter_side() {
        assert!(large_enough(&face(0.9, [0.0, 0.0, 20.0, 40.0]), 20.0));
        assert!(!large_enough(&face(0.9, [0.0, 0.0, 19.9, 40.0]), 20.0));
        assert!(!large_enough(&face(0.9, [0.0, 0.0, 40.0, 19.0]), 20.0));
        // in postprocess the floor applies in original pixels, after scaling
        let raw = raw_with(250, 250, 0, [0.0; 4], [0.0; 10], 0.9); // a 16 px anchor
        let settings = DetectorSettings::default();
        assert!(postprocess(&raw, &settings, 1.0, 1.0).unwrap().is_empty());
        let kept = postprocess(&raw, &settings, 2.0, 2.0).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].bbox, [-8.0, -8.0, 24.0, 24.0]);
    }

    #[test]
    fn downscaling_keeps_the_aspect_and_maps_coordinates_back() {
        assert_eq!(detection_size(250, 250, 640), (250, 250));
        assert_eq!(detection_size(640, 480, 640), (640, 480));
        assert_eq!(detection_size(4000, 3000, 640), (640, 480));
        assert_eq!(detection_size(3000, 4000, 640), (480, 640));
        assert_eq!(detection_size(100_000, 3, 640), (640, 1));
        assert_eq!(detection_size(0, 0, 640), (0, 0));
        let d = Detection {
            score: 0.9,
            bbox: [10.0, 20.0, 30.0, 60.0],
            landmarks: [[15.0, 30.0]; 5],
        };
        let (w, h) = detection_size(4000, 3000, 640);
        let back = d.scaled(4000.0 / w as f32, 3000.0 / h as f32);
        assert_eq!(back.bbox, [62.5, 125.0, 187.5, 375.0]);
        assert_eq!(back.landmarks[4], [93.75, 187.5]);
        assert_eq!(back.score, 0.9);
    }

    #[test]
    fn settings_are_validated() {
        assert!(DetectorSettings::default().validate().is_ok());
        let bad = [
            DetectorSettings {
                score_threshold: f32::NAN,
                ..Default::default()
            },
            DetectorSettings {
                nms_iou: 1.5,
                ..Default::default()
            },
            DetectorSettings {
                min_face_px: -1.0,
                ..Default::default()
            },
            DetectorSettings {
                max_side: 0,
                ..Default::default()
            },
        ];
        for settings in bad {
            assert!(
                matches!(settings.validate(), Err(Error::Invalid(_))),
                "{settings:?}"
            );
        }
    }
}
