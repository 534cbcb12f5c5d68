//! Training-time augmentation beyond the random crop and flip: torchvision's
//! `RandomResizedCrop`, `ColorJitter` and `TrivialAugmentWide`, on RGB8 images.
//!
//! Each step is a function of the image and a generator, so a training run draws the
//! same augmentation for image `i` of epoch `e` whatever thread builds its batch (the
//! generator is seeded by [`super::transform::item_seed`]). Semantics follow
//! torchvision 0.2x:
//!
//! - **random-resized crop**: up to ten tries at an area drawn uniformly from
//!   `scale × image area` and an aspect ratio drawn log-uniformly from `ratio`; the first
//!   that fits is placed uniformly; else the centre crop at the nearest allowed ratio.
//!   The box is then resized to the training crop (see [`resized_crop`]).
//! - **colour jitter**: brightness, contrast and saturation factors drawn uniformly from
//!   `[1 − s, 1 + s]`, applied in a random order; brightness scales, contrast blends
//!   with the image's mean grey, saturation blends each pixel with its own grey (grey =
//!   ITU-R 601: 0.299 R + 0.587 G + 0.114 B), results clamped to 0–255.
//! - **TrivialAugment-wide** (Müller and Hutter, "TrivialAugment: Tuning-free Yet
//!   State-of-the-Art Data Augmentation", ICCV 2021): one operation drawn uniformly from
//!   [`TrivialOp::ALL`] at a magnitude drawn uniformly from its 31 bins, with a random
//!   sign for the signed ones. Geometric operations sample nearest-neighbour and fill
//!   with black, as torchvision does by default.

use fast_image_resize::{self as fir, FilterType, PixelType, ResizeAlg, ResizeOptions};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::transform::{ImageView, RgbImage};
use crate::{Error, Result};

/// Which augmentations a training run uses, beyond the random crop and flip. Everything
/// is off by default, so a config without this section (or with only some of its
/// fields) trains as before in what it leaves out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Random-resized crop: the share of the image's area a crop covers, drawn from this
    /// range (torchvision's default is `[0.08, 1.0]`); `None` keeps the plain random
    /// crop of the resized image.
    pub resized_crop_scale: Option<[f64; 2]>,
    /// The crop's aspect ratio (width / height) range, drawn log-uniformly.
    pub resized_crop_ratio: [f64; 2],
    /// Colour jitter: brightness factor in `[1 − b, 1 + b]`; 0 leaves it alone.
    pub brightness: f32,
    /// Colour jitter: contrast factor in `[1 − c, 1 + c]`.
    pub contrast: f32,
    /// Colour jitter: saturation factor in `[1 − s, 1 + s]`.
    pub saturation: f32,
    /// TrivialAugment-wide: one random operation at a random strength per image.
    pub trivial_augment: bool,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            resized_crop_scale: None,
            resized_crop_ratio: [0.75, 4.0 / 3.0],
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            trivial_augment: false,
        }
    }
}

impl AugmentConfig {
    /// Nothing beyond the crop and flip.
    pub fn new() -> Self {
        AugmentConfig::default()
    }

    pub fn with_resized_crop_scale(self, scale: Option<[f64; 2]>) -> Self {
        AugmentConfig {
            resized_crop_scale: scale,
            ..self
        }
    }

    pub fn with_brightness(self, brightness: f32) -> Self {
        AugmentConfig { brightness, ..self }
    }

    pub fn with_contrast(self, contrast: f32) -> Self {
        AugmentConfig { contrast, ..self }
    }

    pub fn with_saturation(self, saturation: f32) -> Self {
        AugmentConfig { saturation, ..self }
    }

    pub fn with_trivial_augment(self, trivial_augment: bool) -> Self {
        AugmentConfig {
            trivial_augment,
            ..self
        }
    }

    pub fn validate(&self) -> Result<()> {
        if let Some([low, high]) = self.resized_crop_scale
            && !(0.0 < low && low <= high && high <= 1.0)
        {
            return Err(Error::InvalidArgument(format!(
                "resized_crop_scale [{low}, {high}] must satisfy 0 < low ≤ high ≤ 1"
            )));
        }
        let [low, high] = self.resized_crop_ratio;
        if !(0.0 < low && low <= high && high.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "resized_crop_ratio [{low}, {high}] must satisfy 0 < low ≤ high"
            )));
        }
        for (name, strength) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
        ] {
            if !(0.0..=1.0).contains(&strength) {
                return Err(Error::InvalidArgument(format!(
                    "{name} jitter {strength} must be within 0–1"
                )));
            }
        }
        Ok(())
    }

    /// Whether any colour step (jitter or TrivialAugment) runs.
    pub fn changes_colours(&self) -> bool {
        self.brightness > 0.0
            || self.contrast > 0.0
            || self.saturation > 0.0
            || self.trivial_augment
    }

    /// The colour steps for one image: jitter, then TrivialAugment.
    pub fn apply_colour_steps(&self, image: &mut RgbImage, rng: &mut impl Rng) {
        if self.brightness > 0.0 || self.contrast > 0.0 || self.saturation > 0.0 {
            colour_jitter(
                image,
                [self.brightness, self.contrast, self.saturation],
                rng,
            );
        }
        if self.trivial_augment {
            trivial_augment(image, rng);
        }
    }
}

/// A crop box in a `width × height` image: `(left, top, width, height)`.
pub type CropBox = (u32, u32, u32, u32);

/// torchvision's `RandomResizedCrop.get_params`.
pub fn random_resized_box(
    (width, height): (u32, u32),
    [scale_low, scale_high]: [f64; 2],
    [ratio_low, ratio_high]: [f64; 2],
    rng: &mut impl Rng,
) -> CropBox {
    let area = f64::from(width) * f64::from(height);
    let (log_low, log_high) = (ratio_low.ln(), ratio_high.ln());
    for _ in 0..10 {
        let target = area * rng.random_range(scale_low..=scale_high);
        let ratio = rng.random_range(log_low..=log_high).exp();
        let w = (target * ratio).sqrt().round() as u32;
        let h = (target / ratio).sqrt().round() as u32;
        if 0 < w && w <= width && 0 < h && h <= height {
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return (left, top, w, h);
        }
    }
    // the fallback: the centre crop, its ratio clamped into the range
    let in_ratio = f64::from(width) / f64::from(height);
    let (w, h) = if in_ratio < ratio_low {
        (
            width,
            ((f64::from(width) / ratio_low).round() as u32).max(1),
        )
    } else if in_ratio > ratio_high {
        (
            ((f64::from(height) * ratio_high).round() as u32).max(1),
            height,
        )
    } else {
        (width, height)
    };
    let (w, h) = (w.min(width), h.min(height));
    ((width - w) / 2, (height - h) / 2, w, h)
}

/// The box of `image`, resized to `side × side` with the same antialiased bilinear
/// filter as the rest of the pipeline.
pub fn resized_crop(
    image: ImageView<'_>,
    (left, top, w, h): CropBox,
    side: u32,
) -> Result<RgbImage> {
    let failed = |reason: String| Error::InvalidArgument(format!("resized crop: {reason}"));
    let source =
        fir::images::ImageRef::new(image.width, image.height, image.pixels, PixelType::U8x3)
            .map_err(|e| failed(e.to_string()))?;
    if w == 0 || h == 0 || left + w > image.width || top + h > image.height {
        return Err(failed(format!(
            "the box {w}×{h} at ({left}, {top}) is not inside a {}×{} image",
            image.width, image.height
        )));
    }
    let mut target = fir::images::Image::new(side, side, PixelType::U8x3);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(f64::from(left), f64::from(top), f64::from(w), f64::from(h));
    super::transform::with_resizer(|resizer| resizer.resize(&source, &mut target, &options))
        .map_err(|e| failed(e.to_string()))?;
    Ok(RgbImage {
        width: side,
        height: side,
        pixels: target.into_vec(),
    })
}

fn grey(pixel: &[u8]) -> f32 {
    0.299 * f32::from(pixel[0]) + 0.587 * f32::from(pixel[1]) + 0.114 * f32::from(pixel[2])
}

fn to_byte(value: f32) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}

/// Multiplies every channel by `factor`.
pub fn adjust_brightness(image: &mut RgbImage, factor: f32) {
    for value in &mut image.pixels {
        *value = to_byte(f32::from(*value) * factor);
    }
}

/// Blends with the image's mean grey: `mean + factor × (v − mean)`.
pub fn adjust_contrast(image: &mut RgbImage, factor: f32) {
    let pixels = image.pixels.chunks_exact(3);
    let count = pixels.len().max(1) as f32;
    let mean = pixels.map(grey).sum::<f32>() / count;
    for value in &mut image.pixels {
        *value = to_byte(mean + factor * (f32::from(*value) - mean));
    }
}

/// Blends each pixel with its own grey: `grey + factor × (v − grey)`.
pub fn adjust_saturation(image: &mut RgbImage, factor: f32) {
    for pixel in image.pixels.chunks_exact_mut(3) {
        let g = grey(pixel);
        for value in pixel {
            *value = to_byte(g + factor * (f32::from(*value) - g));
        }
    }
}

/// torchvision's `ColorJitter(brightness, contrast, saturation)`: the three factors
/// drawn from `[1 − s, 1 + s]`, applied in a random order.
pub fn colour_jitter(image: &mut RgbImage, strengths: [f32; 3], rng: &mut impl Rng) {
    let mut order = [0usize, 1, 2];
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    for step in order {
        let strength = strengths[step];
        if strength <= 0.0 {
            continue;
        }
        let factor = rng.random_range((1.0 - strength).max(0.0)..=1.0 + strength);
        match step {
            0 => adjust_brightness(image, factor),
            1 => adjust_contrast(image, factor),
            _ => adjust_saturation(image, factor),
        }
    }
}

/// The operations of TrivialAugment-wide, with their magnitude ranges (torchvision's
/// `TrivialAugmentWide._augmentation_space`, 31 bins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrivialOp {
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Colour,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
}

/// Magnitude bins of TrivialAugment-wide.
pub const TRIVIAL_BINS: usize = 31;

impl TrivialOp {
    pub const ALL: [TrivialOp; 14] = [
        TrivialOp::Identity,
        TrivialOp::ShearX,
        TrivialOp::ShearY,
        TrivialOp::TranslateX,
        TrivialOp::TranslateY,
        TrivialOp::Rotate,
        TrivialOp::Brightness,
        TrivialOp::Colour,
        TrivialOp::Contrast,
        TrivialOp::Sharpness,
        TrivialOp::Posterize,
        TrivialOp::Solarize,
        TrivialOp::AutoContrast,
        TrivialOp::Equalize,
    ];

    /// The magnitude of bin `bin` (0–30): linear from 0 to the op's largest value
    /// (posterize goes from 8 bits down to 2).
    pub fn magnitude(self, bin: usize) -> f32 {
        let t = bin.min(TRIVIAL_BINS - 1) as f32 / (TRIVIAL_BINS - 1) as f32;
        match self {
            TrivialOp::ShearX | TrivialOp::ShearY => 0.99 * t,
            TrivialOp::TranslateX | TrivialOp::TranslateY => 32.0 * t,
            TrivialOp::Rotate => 135.0 * t,
            TrivialOp::Brightness
            | TrivialOp::Colour
            | TrivialOp::Contrast
            | TrivialOp::Sharpness => 0.99 * t,
            TrivialOp::Posterize => (8.0 - 6.0 * t).round(),
            TrivialOp::Solarize => 255.0 * (1.0 - t),
            TrivialOp::Identity | TrivialOp::AutoContrast | TrivialOp::Equalize => 0.0,
        }
    }

    /// Whether a drawn magnitude gets a random sign.
    pub fn signed(self) -> bool {
        matches!(
            self,
            TrivialOp::ShearX
                | TrivialOp::ShearY
                | TrivialOp::TranslateX
                | TrivialOp::TranslateY
                | TrivialOp::Rotate
                | TrivialOp::Brightness
                | TrivialOp::Colour
                | TrivialOp::Contrast
                | TrivialOp::Sharpness
        )
    }

    /// Applies the op at `magnitude` (already signed).
    pub fn apply(self, image: &mut RgbImage, magnitude: f32) {
        match self {
            TrivialOp::Identity => {}
            TrivialOp::ShearX => warp(image, [1.0, magnitude, 0.0, 0.0, 1.0, 0.0]),
            TrivialOp::ShearY => warp(image, [1.0, 0.0, 0.0, magnitude, 1.0, 0.0]),
            TrivialOp::TranslateX => warp(image, [1.0, 0.0, magnitude, 0.0, 1.0, 0.0]),
            TrivialOp::TranslateY => warp(image, [1.0, 0.0, 0.0, 0.0, 1.0, magnitude]),
            TrivialOp::Rotate => rotate(image, magnitude),
            TrivialOp::Brightness => adjust_brightness(image, 1.0 + magnitude),
            TrivialOp::Colour => adjust_saturation(image, 1.0 + magnitude),
            TrivialOp::Contrast => adjust_contrast(image, 1.0 + magnitude),
            TrivialOp::Sharpness => adjust_sharpness(image, 1.0 + magnitude),
            TrivialOp::Posterize => posterize(image, magnitude as u32),
            TrivialOp::Solarize => solarize(image, magnitude),
            TrivialOp::AutoContrast => auto_contrast(image),
            TrivialOp::Equalize => equalize(image),
        }
    }
}

/// TrivialAugment-wide on one image: an op and a bin drawn uniformly, a sign with
/// probability ½ for the signed ops.
pub fn trivial_augment(image: &mut RgbImage, rng: &mut impl Rng) -> (TrivialOp, f32) {
    let op = TrivialOp::ALL[rng.random_range(0..TrivialOp::ALL.len())];
    let mut magnitude = op.magnitude(rng.random_range(0..TRIVIAL_BINS));
    if op.signed() && rng.random_bool(0.5) {
        magnitude = -magnitude;
    }
    op.apply(image, magnitude);
    (op, magnitude)
}

/// Resamples through the affine map `[a, b, c, d, e, f]` from output to input pixel
/// centres, `x_in = a x + b y + c`, `y_in = d x + e y + f` (PIL's `Image.transform`
/// convention, which torchvision's tensor ops share), nearest neighbour, black outside.
fn warp(image: &mut RgbImage, [a, b, c, d, e, f]: [f32; 6]) {
    let (width, height) = (image.width as usize, image.height as usize);
    let source = std::mem::take(&mut image.pixels);
    let mut out = vec![0u8; source.len()];
    for y in 0..height {
        for x in 0..width {
            let (xf, yf) = (x as f32 + 0.5, y as f32 + 0.5);
            let sx = (a * xf + b * yf + c).floor();
            let sy = (d * xf + e * yf + f).floor();
            if sx >= 0.0 && sy >= 0.0 && (sx as usize) < width && (sy as usize) < height {
                let from = (sy as usize * width + sx as usize) * 3;
                let to = (y * width + x) * 3;
                out[to..to + 3].copy_from_slice(&source[from..from + 3]);
            }
        }
    }
    image.pixels = out;
}

/// Turns the picture `degrees` anticlockwise about its centre (black corners).
fn rotate(image: &mut RgbImage, degrees: f32) {
    let (cx, cy) = (image.width as f32 / 2.0, image.height as f32 / 2.0);
    let (sin, cos) = degrees.to_radians().sin_cos();
    // output → input: the inverse rotation about the centre (y grows downwards)
    let (a, b, d, e) = (cos, -sin, sin, cos);
    let c = cx - a * cx - b * cy;
    let f = cy - d * cx - e * cy;
    warp(image, [a, b, c, d, e, f]);
}

/// Blends with a smoothed copy (PIL's 3×3 smooth kernel, border pixels kept):
/// `factor` 0 is the blur, 1 the image, above 1 sharper.
fn adjust_sharpness(image: &mut RgbImage, factor: f32) {
    let (width, height) = (image.width as usize, image.height as usize);
    if width < 3 || height < 3 {
        return;
    }
    let source = image.pixels.clone();
    let at = |x: usize, y: usize, c: usize| f32::from(source[(y * width + x) * 3 + c]);
    for y in 1..height - 1 {
        for x in 1..width - 1 {
            for c in 0..3 {
                let mut sum = 0.0;
                for (dy, dx) in [
                    (0, 0),
                    (0, 1),
                    (0, 2),
                    (1, 0),
                    (1, 2),
                    (2, 0),
                    (2, 1),
                    (2, 2),
                ] {
                    sum += at(x + dx - 1, y + dy - 1, c);
                }
                let blurred = (sum + 5.0 * at(x, y, c)) / 13.0;
                let value = at(x, y, c);
                image.pixels[(y * width + x) * 3 + c] =
                    to_byte(blurred + factor * (value - blurred));
            }
        }
    }
}

/// Keeps the top `bits` bits of every channel.
fn posterize(image: &mut RgbImage, bits: u32) {
    let mask = !(0xffu32 >> bits.clamp(1, 8)) as u8;
    for value in &mut image.pixels {
        *value &= mask;
    }
}

/// Inverts every channel value at or above `threshold`.
fn solarize(image: &mut RgbImage, threshold: f32) {
    for value in &mut image.pixels {
        if f32::from(*value) >= threshold {
            *value = 255 - *value;
        }
    }
}

/// Stretches each channel so its darkest value becomes 0 and its brightest 255.
fn auto_contrast(image: &mut RgbImage) {
    for c in 0..3 {
        let channel = image.pixels.iter().skip(c).step_by(3);
        let (low, high) = channel.fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if high <= low {
            continue;
        }
        let scale = 255.0 / f32::from(high - low);
        for value in image.pixels.iter_mut().skip(c).step_by(3) {
            *value = to_byte(f32::from(*value - low) * scale);
        }
    }
}

/// Histogram equalisation per channel (PIL's `ImageOps.equalize`).
fn equalize(image: &mut RgbImage) {
    for c in 0..3 {
        let mut histogram = [0usize; 256];
        for &value in image.pixels.iter().skip(c).step_by(3) {
            histogram[usize::from(value)] += 1;
        }
        let last = histogram.iter().rposition(|&n| n > 0).unwrap_or(0);
        let total: usize = histogram.iter().sum();
        let step = (total - histogram[last]) / 255;
        if step == 0 {
            continue;
        }
        let mut lut = [0u8; 256];
        let mut running = step / 2;
        for (value, &count) in histogram.iter().enumerate() {
            lut[value] = (running / step).min(255) as u8;
            running += count;
        }
        for value in image.pixels.iter_mut().skip(c).step_by(3) {
            *value = lut[usize::from(*value)];
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn gradient(width: u32, height: u32) -> RgbImage {
        let pixels = (0..height)
            .flat_map(|y| {
                (0..width).flat_map(move |x| {
                    [
                        (x * 255 / width.max(2).saturating_sub(1)) as u8,
                        (y * 255 / height.max(2).saturating_sub(1)) as u8,
                        ((x + y) % 256) as u8,
                    ]
                })
            })
            .collect();
        RgbImage {
            width,
            height,
            pixels,
        }
    }

    #[test]
    fn resized_crop_boxes_cover_the_drawn_area_and_ratio() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..500 {
            let (left, top, w, h) =
                random_resized_box((120, 80), [0.08, 1.0], [0.75, 4.0 / 3.0], &mut rng);
            assert!(left + w <= 120 && top + h <= 80, "{left} {top} {w} {h}");
            let share = f64::from(w * h) / f64::from(120 * 80);
            assert!((0.07..=1.0).contains(&share), "share {share}");
        }
        // the whole image at ratio 1 on a square: exactly the image
        assert_eq!(
            random_resized_box((64, 64), [1.0, 1.0], [1.0, 1.0], &mut rng),
            (0, 0, 64, 64)
        );
        // no draw can fit a 100:1 ratio in a square: the centre crop at the nearest ratio
        assert_eq!(
            random_resized_box((60, 60), [0.9, 1.0], [2.0, 3.0], &mut rng),
            (0, 15, 60, 30)
        );
    }

    #[test]
    fn a_resized_crop_of_the_whole_image_at_its_size_is_the_image() {
        let image = gradient(16, 16);
        let same = resized_crop(image.view(), (0, 0, 16, 16), 16).unwrap();
        assert_eq!(same, image);
        let corner = resized_crop(image.view(), (8, 8, 8, 8), 4).unwrap();
        assert_eq!((corner.width, corner.height), (4, 4));
        // the crop's first pixel comes from the box's corner, not the image's
        assert!(
            corner.pixels[0] > 100 && corner.pixels[1] > 100,
            "{:?}",
            &corner.pixels[..3]
        );
    }

    #[test]
    fn colour_adjustments_follow_their_formulas() {
        let mut image = RgbImage {
            width: 2,
            height: 1,
            pixels: vec![100, 50, 200, 10, 20, 30],
        };
        let original = image.clone();
        adjust_brightness(&mut image, 1.0);
        assert_eq!(image, original);
        adjust_brightness(&mut image, 2.0);
        assert_eq!(image.pixels, [200, 100, 255, 20, 40, 60]);
        let mut grey_only = original.clone();
        adjust_saturation(&mut grey_only, 0.0);
        let g = grey(&original.pixels[..3]).round() as u8;
        assert_eq!(&grey_only.pixels[..3], &[g, g, g]);
        let mut flat = original.clone();
        adjust_contrast(&mut flat, 0.0);
        assert!(flat.pixels.iter().all(|&v| v == flat.pixels[0]));
    }

    #[test]
    fn jitter_of_zero_strength_changes_nothing_and_is_repeatable() {
        let image = gradient(9, 7);
        let mut unchanged = image.clone();
        colour_jitter(&mut unchanged, [0.0; 3], &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(unchanged, image);
        let jitter = |seed| {
            let mut copy = image.clone();
            colour_jitter(&mut copy, [0.4; 3], &mut ChaCha8Rng::seed_from_u64(seed));
            copy
        };
        assert_eq!(jitter(3), jitter(3));
        assert_ne!(jitter(3), image);
    }

    #[test]
    fn geometric_ops_move_pixels_where_they_should() {
        let image = gradient(8, 8);
        let mut moved = image.clone();
        TrivialOp::TranslateX.apply(&mut moved, 2.0);
        // output x reads input x + 2: the last two columns are black
        let px = |img: &RgbImage, x: usize, y: usize| {
            img.pixels[(y * 8 + x) * 3..(y * 8 + x) * 3 + 3].to_vec()
        };
        assert_eq!(px(&moved, 0, 3), px(&image, 2, 3));
        assert_eq!(px(&moved, 7, 3), vec![0, 0, 0]);
        let mut turned = image.clone();
        TrivialOp::Rotate.apply(&mut turned, 360.0);
        assert_eq!(turned, image);
        let mut quarter = image.clone();
        TrivialOp::Rotate.apply(&mut quarter, 90.0);
        assert_ne!(quarter, image);
        let mut unsheared = image.clone();
        TrivialOp::ShearX.apply(&mut unsheared, 0.0);
        assert_eq!(unsheared, image);
    }

    #[test]
    fn tonal_ops_pin_their_values() {
        let mut image = RgbImage {
            width: 2,
            height: 1,
            pixels: vec![0b1011_0111, 100, 250, 20, 130, 5],
        };
        let original = image.clone();
        TrivialOp::Posterize.apply(&mut image, 2.0);
        assert_eq!(image.pixels[0], 0b1000_0000);
        let mut solar = original.clone();
        TrivialOp::Solarize.apply(&mut solar, 128.0);
        assert_eq!(solar.pixels, [255 - 0b1011_0111, 100, 5, 20, 255 - 130, 5]);
        let mut stretched = original.clone();
        TrivialOp::AutoContrast.apply(&mut stretched, 0.0);
        assert_eq!(
            (stretched.pixels[1], stretched.pixels[4]),
            (0, 255),
            "{:?}",
            stretched.pixels
        );
        // a dull 32×32 image, reds 100–115: equalising spreads them over the full range
        let mut dull = gradient(32, 32);
        for (i, value) in dull.pixels.iter_mut().step_by(3).enumerate() {
            *value = 100 + (i % 32 / 2) as u8;
        }
        TrivialOp::Equalize.apply(&mut dull, 0.0);
        let reds: Vec<u8> = dull.pixels.iter().step_by(3).copied().collect();
        assert_eq!(*reds.iter().min().unwrap(), 0);
        assert_eq!(*reds.iter().max().unwrap(), 255);
        // too few pixels for a step (PIL's rule): left alone
        let mut tiny = original.clone();
        TrivialOp::Equalize.apply(&mut tiny, 0.0);
        assert_eq!(tiny, original);
    }

    #[test]
    fn trivial_augment_draws_every_op_and_keeps_the_size() {
        let image = gradient(12, 10);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..400 {
            let mut copy = image.clone();
            let (op, magnitude) = trivial_augment(&mut copy, &mut rng);
            assert_eq!(copy.pixels.len(), image.pixels.len());
            assert!(op.signed() || magnitude >= 0.0);
            seen.insert(format!("{op:?}"));
        }
        assert_eq!(seen.len(), TrivialOp::ALL.len());
        assert_eq!(TrivialOp::Posterize.magnitude(0), 8.0);
        assert_eq!(TrivialOp::Posterize.magnitude(30), 2.0);
        assert_eq!(TrivialOp::Solarize.magnitude(30), 0.0);
    }

    #[test]
    fn configs_out_of_range_are_refused() {
        assert!(AugmentConfig::new().validate().is_ok());
        assert!(!AugmentConfig::new().changes_colours());
        assert!(
            AugmentConfig::new()
                .with_resized_crop_scale(Some([0.5, 0.2]))
                .validate()
                .is_err()
        );
        assert!(
            AugmentConfig::new()
                .with_brightness(1.5)
                .validate()
                .is_err()
        );
    }
}
