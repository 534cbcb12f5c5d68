//! The whole pipeline: photo bytes → faces with boxes, landmarks and descriptors.
//!
//! ```text
//! bytes ─ sniff + size check + full decode (album_dataset::image_check) ─ RGB
//!       ─ FaceDetector::detect ─ align_face (150×150 chips) ─ FaceEmbedder::embed (batched)
//! ```
//!
//! Grey-scale, CMYK and palette photos all become 8-bit RGB before detection. A photo
//! without a face gives an empty list, not an error; a face whose landmarks cannot be
//! aligned (they coincide) is dropped.

use std::path::Path;
use std::time::{Duration, Instant};

use album_dataset::image_check::{self, Limits};
use burn::tensor::Device;
use image::RgbImage;

use crate::align::align_face;
use crate::detect::{Detection, DetectorSettings, FaceDetector};
use crate::embedder::{Descriptor, FaceEmbedder};
use crate::error::{Error, Result};

/// The largest photo the pipeline decodes: 40 megapixels, as the crawler's default.
pub const MAX_PIXELS: u64 = 40_000_000;

/// One face found in a photo.
#[derive(Debug, Clone)]
pub struct Face {
    pub detection: Detection,
    pub descriptor: Descriptor,
}

/// Time spent in each stage, summed over the photos processed.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    pub decode: Duration,
    pub detect: Duration,
    pub align: Duration,
    pub embed: Duration,
}

impl StageTimes {
    /// Everything together.
    pub fn total(&self) -> Duration {
        self.decode + self.detect + self.align + self.embed
    }

    fn add(&mut self, other: &StageTimes) {
        self.decode += other.decode;
        self.detect += other.detect;
        self.align += other.align;
        self.embed += other.embed;
    }
}

/// The detector and the embedder, loaded once.
pub struct FacePipeline {
    detector: FaceDetector,
    embedder: FaceEmbedder,
    times: StageTimes,
}

impl FacePipeline {
    /// Loads both models from `weights_dir` (checked by SHA-256) onto `device`.
    pub fn load(weights_dir: &Path, device: &Device) -> Result<Self> {
        Ok(FacePipeline {
            detector: FaceDetector::load(weights_dir, device)?,
            embedder: FaceEmbedder::load(weights_dir, device)?,
            times: StageTimes::default(),
        })
    }

    /// The same pipeline with other detector settings.
    pub fn with_detector_settings(mut self, settings: DetectorSettings) -> Self {
        self.detector = self.detector.with_settings(settings);
        self
    }

    /// Time spent per stage since the pipeline was loaded.
    pub fn times(&self) -> StageTimes {
        self.times
    }

    /// Counts decoding a caller did itself (to look at the photo first) in [`Self::times`].
    pub fn add_decode_time(&mut self, elapsed: Duration) {
        self.times.decode += elapsed;
    }

    /// The faces in an encoded photo (JPEG, PNG, GIF, WebP, BMP, TIFF).
    pub fn faces_in_bytes(&mut self, bytes: &[u8]) -> Result<Vec<Face>> {
        let started = Instant::now();
        let photo = decode_photo(bytes)?;
        self.times.decode += started.elapsed();
        self.faces_in(&photo)
    }

    /// The faces in a decoded photo, most confident first.
    pub fn faces_in(&mut self, photo: &RgbImage) -> Result<Vec<Face>> {
        let mut times = StageTimes::default();
        let started = Instant::now();
        let detections = self.detector.detect(photo)?;
        times.detect = started.elapsed();

        let started = Instant::now();
        let (detections, chips): (Vec<Detection>, Vec<RgbImage>) = detections
            .into_iter()
            .filter_map(|face| align_face(photo, &face).map(|chip| (face, chip)))
            .unzip();
        times.align = started.elapsed();

        let started = Instant::now();
        let descriptors = self.embedder.embed(&chips)?;
        times.embed = started.elapsed();
        self.times.add(&times);

        Ok(detections
            .into_iter()
            .zip(descriptors)
            .map(|(detection, descriptor)| Face {
                detection,
                descriptor,
            })
            .collect())
    }
}

/// Decodes untrusted photo bytes to RGB: the format from magic bytes, the pixel count
/// checked from the header before decoding, the whole image decoded.
pub fn decode_photo(bytes: &[u8]) -> Result<RgbImage> {
    let limits = Limits {
        min_side: 1,
        max_pixels: MAX_PIXELS,
    };
    let valid = image_check::validate(bytes, &limits).map_err(|e| Error::Image(e.to_string()))?;
    Ok(valid.image.to_rgb8())
}
