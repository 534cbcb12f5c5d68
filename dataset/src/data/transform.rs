//! The per-image pipeline: decode → resize the short side → crop → flip → normalise.
//!
//! Semantics follow torchvision's `Resize(R)`, `RandomCrop(C)` / `CenterCrop(C)`,
//! `RandomHorizontalFlip()`, `ToTensor()`, `Normalize(mean, std)` on PIL images:
//!
//! - the short side becomes `R` and the long side `floor(R × long / short)`;
//! - resampling is Pillow's antialiased bilinear convolution (fast_image_resize's
//!   `Convolution(Bilinear)`: same filter and support, SIMD, fixed-point rounding that
//!   may put a byte one level (1/255) away from Pillow's), skipped when the size is
//!   unchanged;
//! - a random crop's top-left corner is uniform over every position that fits; a centre
//!   crop's is `round((size - C) / 2)` with Python's round-half-to-even;
//! - output is planar `[3, C, C]` (channel, row, column), `(v / 255 - mean) / std`.
//!
//! Images are RGB8, row-major, 3 bytes a pixel ([`ImageView`], [`RgbImage`]).

use std::cell::RefCell;

use fast_image_resize::{self as fir, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::augment::{random_resized_box, resized_crop};
use super::config::{NormalizeTable, PreprocessConfig};
use crate::{Error, Result};

/// A borrowed RGB8 image, row-major, `width × height × 3` bytes.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    pub width: u32,
    pub height: u32,
    pub pixels: &'a [u8],
}

/// An owned RGB8 image, row-major, `width × height × 3` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl RgbImage {
    pub fn view(&self) -> ImageView<'_> {
        ImageView {
            width: self.width,
            height: self.height,
            pixels: &self.pixels,
        }
    }
}

/// Where the crop goes and whether it is mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropPlan {
    pub top: u32,
    pub left: u32,
    pub flip: bool,
}

/// Training (random crop, random flip) or evaluation (centre crop, no flip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Augmentation {
    /// Centre crop, never flipped: the same output every time.
    Eval,
    /// Random crop and a flip with probability ½, drawn from a generator seeded by
    /// [`item_seed`]`(seed, epoch, index)`.
    Train { seed: u64 },
}

impl Augmentation {
    /// The crop of image `index` in `epoch`, for an image of `width × height`.
    ///
    /// Training draws depend only on `(seed, epoch, index)`, never on the order items are
    /// visited in, the batch they land in or the thread that handles them, so runs repeat
    /// exactly while each epoch sees new crops.
    pub fn plan(self, width: u32, height: u32, crop: u32, epoch: u64, index: usize) -> CropPlan {
        let (spare_rows, spare_cols) = (height.saturating_sub(crop), width.saturating_sub(crop));
        match self {
            Augmentation::Eval => CropPlan {
                top: half_rounded_to_even(spare_rows),
                left: half_rounded_to_even(spare_cols),
                flip: false,
            },
            Augmentation::Train { seed } => {
                let mut rng = ChaCha8Rng::seed_from_u64(item_seed(seed, epoch, index));
                let top = rng.random_range(0..=spare_rows);
                let left = rng.random_range(0..=spare_cols);
                CropPlan {
                    top,
                    left,
                    flip: rng.random_bool(0.5),
                }
            }
        }
    }
}

/// Mixed into the run's seed for the augmentation draws beyond crop and flip.
const AUGMENT_STREAM: u64 = 0xA5A5_0F0F_C3C3_9669;

/// The seed of one image's augmentation generator: a mix of the run's seed, the epoch
/// and the image's index in its dataset (SplitMix64 finaliser at each step, so nearby
/// inputs give unrelated seeds).
pub fn item_seed(seed: u64, epoch: u64, index: usize) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ index as u64)
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `round(n / 2)` the way Python 3 rounds (halves go to the even neighbour), as
/// torchvision's centre crop computes its offset.
fn half_rounded_to_even(n: u32) -> u32 {
    let (half, odd) = (n / 2, n % 2 == 1);
    if odd && half % 2 == 1 { half + 1 } else { half }
}

/// Size after resizing the short side to `resize`, keeping the aspect ratio; the long
/// side is truncated like torchvision's `int(resize * long / short)`.
pub fn resized_size(width: u32, height: u32, resize: u32) -> (u32, u32) {
    let scaled = |long: u32, short: u32| {
        ((f64::from(resize) * f64::from(long) / f64::from(short)) as u32).max(1)
    };
    if width <= height {
        (resize, scaled(height, width))
    } else {
        (scaled(width, height), resize)
    }
}

/// Decodes an encoded image (JPEG, PNG, …; format sniffed from the bytes) to RGB8.
/// `origin` names the file in the error.
pub fn decode_rgb(bytes: &[u8], origin: &str) -> Result<RgbImage> {
    let decoded = image::load_from_memory(bytes).map_err(|e| Error::Image {
        origin: origin.to_owned(),
        reason: format!("cannot decode: {e}"),
    })?;
    let rgb = decoded.into_rgb8();
    let (width, height) = rgb.dimensions();
    if width == 0 || height == 0 {
        return Err(Error::Image {
            origin: origin.to_owned(),
            reason: "image has no pixels".into(),
        });
    }
    Ok(RgbImage {
        width,
        height,
        pixels: rgb.into_raw(),
    })
}

/// Width and height from an image file's header, without decoding the pixels.
pub fn read_dimensions(path: &std::path::Path) -> Result<(u32, u32)> {
    image::image_dimensions(path).map_err(|e| Error::Image {
        origin: path.display().to_string(),
        reason: format!("cannot read size: {e}"),
    })
}

thread_local! {
    // One resizer per thread keeps its scratch buffers between images.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

/// Runs `resize` with this thread's resizer (its scratch buffers reused between images;
/// a resizer per call allocated them afresh for every random-resized crop).
pub(crate) fn with_resizer<T>(resize: impl FnOnce(&mut Resizer) -> T) -> T {
    RESIZER.with(|resizer| resize(&mut resizer.borrow_mut()))
}

/// Resizes so that the short side is `resize` (see [`resized_size`]); an image already
/// at that size is returned as it is, like Pillow does.
pub fn resize_short_side(image: RgbImage, resize: u32, origin: &str) -> Result<RgbImage> {
    let (width, height) = resized_size(image.width, image.height, resize);
    if (width, height) == (image.width, image.height) {
        return Ok(image);
    }
    let failed = |reason: String| Error::Image {
        origin: origin.to_owned(),
        reason,
    };
    let source =
        fir::images::ImageRef::new(image.width, image.height, &image.pixels, PixelType::U8x3)
            .map_err(|e| failed(format!("resize source: {e}")))?;
    let mut target = fir::images::Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    with_resizer(|resizer| resizer.resize(&source, &mut target, &options))
        .map_err(|e| failed(format!("resize to {width}×{height}: {e}")))?;
    Ok(RgbImage {
        width,
        height,
        pixels: target.into_vec(),
    })
}

/// Decodes and resizes: the part of the pipeline that the decoded-image cache stores.
pub fn decode_and_resize(bytes: &[u8], resize: u32, origin: &str) -> Result<RgbImage> {
    resize_short_side(decode_rgb(bytes, origin)?, resize, origin)
}

/// Crop, flip and normalise already-resized images into `[3, crop, crop]` slices.
#[derive(Debug, Clone)]
pub struct Preprocessor {
    config: PreprocessConfig,
    table: NormalizeTable,
}

impl Preprocessor {
    /// Validates the config and builds the normalisation table.
    pub fn new(config: &PreprocessConfig) -> Result<Self> {
        config.validate()?;
        Ok(Preprocessor {
            config: config.clone(),
            table: NormalizeTable::new(config.mean, config.std),
        })
    }

    pub fn config(&self) -> &PreprocessConfig {
        &self.config
    }

    /// f32 values per image: `3 × crop × crop`.
    pub fn item_len(&self) -> usize {
        self.config.item_len()
    }

    /// Writes the crop of a resized image into `out` (`[3, crop, crop]`, planar).
    ///
    /// Errors when the image is smaller than the crop, the plan does not fit, or `out`
    /// has the wrong length.
    pub fn crop_into(&self, image: ImageView<'_>, plan: CropPlan, out: &mut [f32]) -> Result<()> {
        let crop = self.config.crop as usize;
        self.check_fits(image, plan, out.len())?;
        let (width, top, left) = (image.width as usize, plan.top as usize, plan.left as usize);
        let (red, rest) = out.split_at_mut(crop * crop);
        let (green, blue) = rest.split_at_mut(crop * crop);
        let rows = red
            .chunks_exact_mut(crop)
            .zip(green.chunks_exact_mut(crop))
            .zip(blue.chunks_exact_mut(crop));
        for (row, ((red_row, green_row), blue_row)) in rows.enumerate() {
            let start = ((top + row) * width + left) * 3;
            let (source, _) = image.pixels[start..start + crop * 3].as_chunks::<3>();
            self.normalize_row(source, plan.flip, red_row, green_row, blue_row);
        }
        Ok(())
    }

    /// One output row from one source row: table look-ups per channel, reading the
    /// source right to left when flipped. Fixed-size pixels and zipped iterators leave
    /// no bounds checks in the loop.
    fn normalize_row(
        &self,
        source: &[[u8; 3]],
        flip: bool,
        red: &mut [f32],
        green: &mut [f32],
        blue: &mut [f32],
    ) {
        let tables = [
            self.table.channel(0),
            self.table.channel(1),
            self.table.channel(2),
        ];
        let write = |(((r, g), b), pixel): (((&mut f32, &mut f32), &mut f32), &[u8; 3])| {
            *r = tables[0][usize::from(pixel[0])];
            *g = tables[1][usize::from(pixel[1])];
            *b = tables[2][usize::from(pixel[2])];
        };
        let outputs = red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut());
        if flip {
            outputs.zip(source.iter().rev()).for_each(write);
        } else {
            outputs.zip(source.iter()).for_each(write);
        }
    }

    /// The whole pipeline for one encoded image: decode, resize, crop, flip, normalise
    /// into `out` (`[3, crop, crop]`). `index` and `epoch` seed the training draws (see
    /// [`Augmentation::plan`]); `origin` names the file in errors.
    pub fn process_encoded_into(
        &self,
        bytes: &[u8],
        origin: &str,
        augmentation: Augmentation,
        epoch: u64,
        index: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let resized = decode_and_resize(bytes, self.config.resize, origin)?;
        self.process_resized_into(resized.view(), augmentation, epoch, index, out)
    }

    /// Crop, flip and normalise an image that is already resized (from the cache).
    pub fn process_resized_into(
        &self,
        image: ImageView<'_>,
        augmentation: Augmentation,
        epoch: u64,
        index: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let plan = augmentation.plan(image.width, image.height, self.config.crop, epoch, index);
        match augmentation {
            Augmentation::Train { seed } if self.augments() => {
                // a stream of its own, so turning augmentation on keeps the crops drawn
                let mut rng =
                    ChaCha8Rng::seed_from_u64(item_seed(seed ^ AUGMENT_STREAM, epoch, index));
                let augmented = self.augmented_crop(image, plan, &mut rng)?;
                let plan = CropPlan {
                    top: 0,
                    left: 0,
                    flip: plan.flip,
                };
                self.crop_into(augmented.view(), plan, out)
            }
            _ => self.crop_into(image, plan, out),
        }
    }

    /// Whether training draws more than a crop and a flip.
    fn augments(&self) -> bool {
        let augment = &self.config.augment;
        augment.resized_crop_scale.is_some() || augment.changes_colours()
    }

    /// The training crop as RGB8 (random-resized, else the plain random crop), its
    /// colour steps applied; the flip is left to the normalisation.
    fn augmented_crop(
        &self,
        image: ImageView<'_>,
        plan: CropPlan,
        rng: &mut ChaCha8Rng,
    ) -> Result<RgbImage> {
        let augment = &self.config.augment;
        let side = self.config.crop;
        let mut crop = match augment.resized_crop_scale {
            Some(scale) => {
                let area = random_resized_box(
                    (image.width, image.height),
                    scale,
                    augment.resized_crop_ratio,
                    rng,
                );
                resized_crop(image, area, side)?
            }
            None => {
                self.check_fits(image, plan, self.item_len())?;
                let (width, side_bytes) = (image.width as usize, side as usize * 3);
                let mut pixels = Vec::with_capacity(side_bytes * side as usize);
                for row in 0..side as usize {
                    let start = ((plan.top as usize + row) * width + plan.left as usize) * 3;
                    pixels.extend_from_slice(&image.pixels[start..start + side_bytes]);
                }
                RgbImage {
                    width: side,
                    height: side,
                    pixels,
                }
            }
        };
        augment.apply_colour_steps(&mut crop, rng);
        Ok(crop)
    }

    fn check_fits(&self, image: ImageView<'_>, plan: CropPlan, out_len: usize) -> Result<()> {
        let crop = self.config.crop;
        if out_len != self.item_len() {
            return Err(Error::InvalidArgument(format!(
                "output slice holds {out_len} values, a [3, {crop}, {crop}] image needs {}",
                self.item_len()
            )));
        }
        let fits = u64::from(plan.top) + u64::from(crop) <= u64::from(image.height)
            && u64::from(plan.left) + u64::from(crop) <= u64::from(image.width);
        let expected_bytes = image.width as usize * image.height as usize * 3;
        if !fits || image.pixels.len() != expected_bytes {
            return Err(Error::InvalidArgument(format!(
                "a {crop}×{crop} crop at ({}, {}) does not fit a {}×{} image of {} bytes",
                plan.left,
                plan.top,
                image.width,
                image.height,
                image.pixels.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 12×9 test card with sharp, irregular steps so that rounding differences show.
    fn test_card() -> RgbImage {
        let (width, height) = (12u32, 9u32);
        let pixels = (0..height)
            .flat_map(|y| (0..width).flat_map(move |x| (0..3).map(move |c| (x, y, c))))
            .map(|(x, y, c)| ((x * 37 + y * 91 + c * 53 + (x * y) % 17 * 5) % 256) as u8)
            .collect();
        RgbImage {
            width,
            height,
            pixels,
        }
    }

    fn from_hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Largest per-byte difference, and the share of bytes that are identical.
    fn compare(ours: &[u8], pillow: &[u8]) -> (u8, f64) {
        assert_eq!(ours.len(), pillow.len());
        let largest = ours
            .iter()
            .zip(pillow)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        let same = ours.iter().zip(pillow).filter(|(a, b)| a == b).count();
        (largest, same as f64 / ours.len() as f64)
    }

    /// Pillow 13's `Image.resize(size, Image.BILINEAR)` of the same card (what
    /// torchvision's `Resize` calls), down to 8×6 and up to 18×14.
    const PILLOW_DOWN_8X6: &str = "31669b6892917f7fa97c9f7b7f5b7e517b7b8868928394659797737874776e6a866d856baa51767d797e6b547670749e56808383808885816767597e9562777c7887a2b187b36f6f78ad696a6f75688aac769278a45b638055648a9996778cb761969a6ea35d767b515a5d825c5b8d86959b819a9664797996677852879c5d92918fb259ce54788f6e6e5d729c8394c9";
    const PILLOW_UP_18X14: &str = "00356a13487d2b60954479ae5d92c775aadf8ec3f8a7dc91bfc929d8384271265b093e7322578c3b70a55388bd6ca1d685ba6f97cc012a5f943e73a8588dae72a77a8d868093659a5e7fb4659a8a7e9c5f995c7a6f5f9444799a5e936579726c935186ad6ba08c8676649945659ab37aa1c992b0bf9ccc43b47639aa20552e3d7224598041718f5d7bab7993c891afbe9bcb42ae7134c6174ce233688d4f8430659a9fd449b78c61b54a7453686852677c66659a5984b96ea3788ca136aa3f54c93e73c75c87667b7a44596e43386d61568b6075aa578cc175aa448e755d94487d4d689d54898c75997a95779b84876e7d873bcb2b46c52c61994c81526da23f74a9467b9f669b7c878a8d9f70a514497e2e63945185b274a1d492c37cb1bc24d33a467933683a467bcb33688e47783669965885b879aada9bced2bdea50dc914af12f644f84b96ba07e90a84cb4587083616d51786975658d5460953d64998676ab8b9775879f43ab5067b49270bcd46be08558af647074568b89bea17eb3687c9338a2475e7351863f74a95388bd598e9a638b7b8a7aa2a48765b083279f364e9c7a58a6be63cd7189906ea3497eb3c4f937679c511548763f6c9f6393c87aafe46da2d786bb75aeba21d83e4bd81647af144233386b326293598dba83b0e47fafe470a5da6398685186894a7f9a76ab5e87bc5693ae61a85c7780686a557a5b5e3f647141767a5b906287bc6398cd75aac4a0d5896ea38a2f6499396ea35b90a57eb39281b64079ae237c9126aa3f546d4277255a8f285d924b609574749e94bebe7eb3c8739db2bdbc5272875c13487d73a8dd97cc8fa0d547386d65174c661c4c6b4c6a9a486fa44277ac6ca1d69a5d92bd3442bac83f669b5e394778cd4462975a813a6fa4ae5a8f8f7f79689d6f4b80a13e73a8457a9877ac6f7fb45f86a467b77a98d24378d030518c96684e837d3b5c91a174a98f88bd6297ccd80d427f346932679c659acf6ea3d877acb6aadf3fb3e81dbcc626ef4f59f82d62d6366b5f699e3d72a7467bb079aee382b7ec7eb3e8";

    /// Same filter and support as Pillow; the fixed-point rounding of the two passes
    /// differs, so a byte may be off by one level (1/255 before normalising).
    #[test]
    fn resizing_matches_pillows_bilinear_to_one_level() {
        let down = resize_short_side(test_card(), 6, "card").unwrap();
        assert_eq!((down.width, down.height), (8, 6));
        let (largest, same) = compare(&down.pixels, &from_hex(PILLOW_DOWN_8X6));
        assert!(
            largest <= 1 && same > 0.5,
            "down: largest difference {largest}, {same:.2} identical"
        );
        let up = resize_short_side(test_card(), 14, "card").unwrap();
        assert_eq!((up.width, up.height), (18, 14));
        let (largest, same) = compare(&up.pixels, &from_hex(PILLOW_UP_18X14));
        assert!(
            largest <= 1 && same > 0.5,
            "up: largest difference {largest}, {same:.2} identical"
        );
    }

    #[test]
    fn an_image_already_at_size_is_left_alone() {
        let card = test_card();
        assert_eq!(resize_short_side(card.clone(), 9, "card").unwrap(), card);
    }

    #[test]
    fn resized_size_keeps_aspect_and_truncates_like_torchvision() {
        assert_eq!(resized_size(112, 169, 64), (64, 96)); // 64 × 169 / 112 = 96.57
        assert_eq!(resized_size(169, 112, 256), (386, 256)); // 256 × 169 / 112 = 386.29
        assert_eq!(resized_size(150, 150, 72), (72, 72));
        assert_eq!(resized_size(1000, 1, 2), (2000, 2));
    }

    #[test]
    fn centre_offsets_round_halves_to_even_like_python() {
        let rounded: Vec<u32> = (0..8).map(half_rounded_to_even).collect();
        // round(0/2)=0, round(0.5)=0, 1, round(1.5)=2, 2, round(2.5)=2, 3, round(3.5)=4
        assert_eq!(rounded, [0, 0, 1, 2, 2, 2, 3, 4]);
    }

    #[test]
    fn item_seeds_differ_for_neighbouring_inputs() {
        let seeds = [
            item_seed(1, 0, 0),
            item_seed(1, 0, 1),
            item_seed(1, 1, 0),
            item_seed(2, 0, 0),
        ];
        for (i, a) in seeds.iter().enumerate() {
            for b in &seeds[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn garbage_bytes_are_an_image_error_naming_the_origin() {
        let error = decode_rgb(b"not an image at all", "photos/x.jpg").unwrap_err();
        assert!(matches!(error, Error::Image { .. }));
        assert!(error.to_string().contains("photos/x.jpg"), "{error}");
    }

    /// Augmentation turned off trains exactly as before; turned on it changes training
    /// crops only, repeatably for the same (seed, epoch, index), and never evaluation.
    #[test]
    fn augmentation_changes_training_crops_only_and_repeatably() {
        use super::super::augment::AugmentConfig;
        let card = test_card();
        let crop_with = |augment: AugmentConfig, augmentation: Augmentation, index: usize| {
            let config = PreprocessConfig::sized(9, 8).with_augment(augment);
            let preprocessor = Preprocessor::new(&config).unwrap();
            let mut out = vec![0.0; preprocessor.item_len()];
            preprocessor
                .process_resized_into(card.view(), augmentation, 2, index, &mut out)
                .unwrap();
            out
        };
        let train = Augmentation::Train { seed: 5 };
        let jitter = AugmentConfig::new().with_brightness(0.5).with_contrast(0.5);
        let resized = AugmentConfig::new()
            .with_resized_crop_scale(Some([0.3, 0.6]))
            .with_trivial_augment(true);
        let plain = crop_with(AugmentConfig::new(), train, 3);
        let before = Preprocessor::new(&PreprocessConfig::sized(9, 8)).unwrap();
        let mut unaugmented = vec![0.0; before.item_len()];
        before
            .process_resized_into(card.view(), train, 2, 3, &mut unaugmented)
            .unwrap();
        assert_eq!(plain, unaugmented);
        assert_ne!(crop_with(jitter.clone(), train, 3), plain);
        assert_eq!(
            crop_with(jitter.clone(), train, 3),
            crop_with(jitter.clone(), train, 3)
        );
        assert_ne!(
            crop_with(jitter.clone(), train, 3),
            crop_with(jitter.clone(), train, 4)
        );
        assert_ne!(crop_with(resized.clone(), train, 3), plain);
        assert_eq!(
            crop_with(resized.clone(), Augmentation::Eval, 3),
            crop_with(AugmentConfig::new(), Augmentation::Eval, 3)
        );
    }

    #[test]
    fn a_crop_that_does_not_fit_or_a_wrong_slice_is_an_error() {
        let preprocessor = Preprocessor::new(&PreprocessConfig::sized(9, 8)).unwrap();
        let card = test_card();
        let mut out = vec![0.0; preprocessor.item_len()];
        let plan = CropPlan {
            top: 2,
            left: 0,
            flip: false,
        };
        assert!(preprocessor.crop_into(card.view(), plan, &mut out).is_err());
        let mut short = vec![0.0; 10];
        assert!(
            preprocessor
                .crop_into(
                    card.view(),
                    CropPlan {
                        top: 0,
                        left: 0,
                        flip: false
                    },
                    &mut short
                )
                .is_err()
        );
        assert!(
            preprocessor
                .crop_into(
                    card.view(),
                    CropPlan {
                        top: 1,
                        left: 4,
                        flip: true
                    },
                    &mut out
                )
                .is_ok()
        );
    }
}
