//! Mixup and CutMix: each training batch blended with a shuffled copy of itself.
//!
//! - Mixup (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018):
//!   `x = λ·x + (1 − λ)·x[perm]` with `λ ~ Beta(α, α)`.
//! - CutMix (Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers
//!   with Localizable Features", ICCV 2019): a box of `x[perm]` pasted into `x`, its
//!   area `(1 − λ)` of the image (`λ ~ Beta(α, α)`), the box clipped at the borders and
//!   `λ` corrected to the area actually pasted.
//!
//! The loss is `λ·L(y) + (1 − λ)·L(y[perm])`, as timm's `Mixup` with `SoftTargetCrossEntropy`
//! computes it for a cross-entropy that is linear in its target (label smoothing
//! included). With both on, each batch uses one of the two (CutMix with probability
//! `cutmix_switch_prob`); `mix_prob` of the batches are mixed at all. Every draw comes
//! from a generator seeded by `(seed, epoch, step)`, so a resumed epoch mixes as the
//! unbroken run did.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use album_dataset::data::transform::item_seed;

use crate::config::OptimConfig;

/// Mixed into the run's seed for the batch-mixing draws.
const MIX_STREAM: u64 = 0x6D69_7875_702B_636D;

/// How one batch was mixed: each image `i` was blended with image `partner[i]`, keeping
/// the share `lambda` of itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixed {
    pub partner: Vec<usize>,
    pub lambda: f32,
}

impl Mixed {
    /// The partner of each target.
    pub fn partner_targets(&self, targets: &[i64]) -> Vec<i64> {
        self.partner.iter().map(|&j| targets[j]).collect()
    }
}

/// Whether the config mixes batches at all.
pub fn enabled(config: &OptimConfig) -> bool {
    config.mix_prob > 0.0 && (config.mixup_alpha > 0.0 || config.cutmix_alpha > 0.0)
}

/// Mixes the batch `pixels` (`[B, 3, side, side]`, row-major) in place, drawing from
/// `(seed, epoch, step)`; `None` when this batch stays as it is.
pub fn mix_batch(
    pixels: &mut [f32],
    batch: usize,
    side: usize,
    config: &OptimConfig,
    (epoch, step): (usize, usize),
) -> Option<Mixed> {
    if !enabled(config) || batch < 2 {
        return None;
    }
    let mut rng =
        ChaCha8Rng::seed_from_u64(item_seed(config.seed ^ MIX_STREAM, epoch as u64, step));
    if !rng.random_bool(f64::from(config.mix_prob.clamp(0.0, 1.0))) {
        return None;
    }
    let use_cutmix = match (config.mixup_alpha > 0.0, config.cutmix_alpha > 0.0) {
        (true, true) => rng.random_bool(f64::from(config.cutmix_switch_prob.clamp(0.0, 1.0))),
        (false, true) => true,
        _ => false,
    };
    let mut partner: Vec<usize> = (0..batch).collect();
    for i in (1..batch).rev() {
        partner.swap(i, rng.random_range(0..=i));
    }
    let source = pixels.to_vec();
    let image_len = 3 * side * side;
    let lambda = if use_cutmix {
        let lambda = beta(config.cutmix_alpha, &mut rng);
        let (top, left, height, width) = cut_box(side, lambda, &mut rng);
        for (i, &j) in partner.iter().enumerate() {
            for channel in 0..3 {
                for row in top..top + height {
                    let at = |image: usize| image * image_len + channel * side * side + row * side;
                    let (to, from) = (at(i) + left, at(j) + left);
                    pixels[to..to + width].copy_from_slice(&source[from..from + width]);
                }
            }
        }
        1.0 - (height * width) as f32 / (side * side) as f32
    } else {
        let lambda = beta(config.mixup_alpha, &mut rng);
        for (i, &j) in partner.iter().enumerate() {
            let (mine, theirs) = (i * image_len, j * image_len);
            for k in 0..image_len {
                pixels[mine + k] = lambda * source[mine + k] + (1.0 - lambda) * source[theirs + k];
            }
        }
        lambda
    };
    Some(Mixed { partner, lambda })
}

/// CutMix's box for a `side × side` image: centre uniform over the image, sides
/// `side·√(1 − λ)`, clipped at the borders: `(top, left, height, width)`.
fn cut_box(side: usize, lambda: f32, rng: &mut impl Rng) -> (usize, usize, usize, usize) {
    let cut = (side as f32 * (1.0 - lambda).max(0.0).sqrt()) as i64;
    let (cy, cx) = (
        rng.random_range(0..side) as i64,
        rng.random_range(0..side) as i64,
    );
    let clip = |v: i64| v.clamp(0, side as i64) as usize;
    let (top, bottom) = (clip(cy - cut / 2), clip(cy + cut / 2));
    let (left, right) = (clip(cx - cut / 2), clip(cx + cut / 2));
    (top, left, bottom - top, right - left)
}

/// A draw from Beta(α, α): `X / (X + Y)` with `X, Y ~ Gamma(α)`.
fn beta(alpha: f32, rng: &mut impl Rng) -> f32 {
    let x = gamma(f64::from(alpha), rng);
    let y = gamma(f64::from(alpha), rng);
    if x + y <= 0.0 {
        return 0.5;
    }
    (x / (x + y)) as f32
}

/// A draw from Gamma(shape, 1): Marsaglia and Tsang's method ("A Simple Method for
/// Generating Gamma Variables", 2000), with `Gamma(a) = Gamma(a + 1)·U^(1/a)` below 1.
fn gamma(shape: f64, rng: &mut impl Rng) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        return gamma(shape + 1.0, rng) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// Box–Muller.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mixup: f32, cutmix: f32) -> OptimConfig {
        OptimConfig {
            mixup_alpha: mixup,
            cutmix_alpha: cutmix,
            ..OptimConfig::default()
        }
    }

    /// Four 4×4 images, image `b` filled with the value `b` in every channel.
    fn constant_batch() -> Vec<f32> {
        (0..4).flat_map(|b| vec![b as f32; 3 * 16]).collect()
    }

    #[test]
    fn beta_draws_have_the_right_mean_and_spread() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for alpha in [0.2f32, 1.0, 4.0] {
            let draws: Vec<f64> = (0..20_000)
                .map(|_| f64::from(beta(alpha, &mut rng)))
                .collect();
            let mean = draws.iter().sum::<f64>() / draws.len() as f64;
            let variance =
                draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;
            // Beta(α, α): mean ½, variance 1 / (4 (2α + 1))
            let expected = 1.0 / (4.0 * (2.0 * f64::from(alpha) + 1.0));
            assert!((mean - 0.5).abs() < 0.01, "α {alpha}: mean {mean}");
            assert!(
                (variance - expected).abs() < 0.01,
                "α {alpha}: variance {variance} vs {expected}"
            );
            assert!(draws.iter().all(|d| (0.0..=1.0).contains(d)));
        }
    }

    #[test]
    fn mixup_blends_each_image_with_its_partner_by_lambda() {
        let mut pixels = constant_batch();
        let mixed = mix_batch(&mut pixels, 4, 4, &config(0.4, 0.0), (0, 7)).unwrap();
        let mut partners = mixed.partner.clone();
        partners.sort_unstable();
        assert_eq!(partners, [0, 1, 2, 3], "a permutation");
        for (i, &j) in mixed.partner.iter().enumerate() {
            let expected = mixed.lambda * i as f32 + (1.0 - mixed.lambda) * j as f32;
            assert!(
                pixels[i * 48..(i + 1) * 48]
                    .iter()
                    .all(|&v| (v - expected).abs() < 1e-5)
            );
        }
        assert_eq!(
            mixed.partner_targets(&[10, 11, 12, 13])[0],
            10 + mixed.partner[0] as i64
        );
    }

    #[test]
    fn cutmix_pastes_a_box_whose_area_is_one_minus_lambda() {
        let mut pixels = constant_batch();
        let mixed = mix_batch(&mut pixels, 4, 4, &config(0.0, 1.0), (1, 2)).unwrap();
        for (i, &j) in mixed.partner.iter().enumerate() {
            let image = &pixels[i * 48..(i + 1) * 48];
            if i == j {
                assert!(image.iter().all(|&v| v == i as f32));
                continue;
            }
            let pasted = image.iter().filter(|&&v| v == j as f32).count() as f32 / 48.0;
            assert!(
                (pasted - (1.0 - mixed.lambda)).abs() < 1e-6,
                "{pasted} vs λ {}",
                mixed.lambda
            );
            assert!(image.iter().all(|&v| v == i as f32 || v == j as f32));
        }
    }

    #[test]
    fn mixing_is_off_by_default_and_repeats_for_the_same_step() {
        let mut pixels = constant_batch();
        assert!(mix_batch(&mut pixels, 4, 4, &OptimConfig::default(), (0, 0)).is_none());
        assert_eq!(pixels, constant_batch());
        let both = config(0.8, 1.0);
        let draw = |step| {
            let mut pixels = constant_batch();
            let mixed = mix_batch(&mut pixels, 4, 4, &both, (2, step));
            (pixels, mixed)
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }

    #[test]
    fn the_cut_box_stays_inside_the_image() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..1000 {
            let lambda = rng.random_range(0.0..1.0);
            let (top, left, height, width) = cut_box(16, lambda, &mut rng);
            assert!(top + height <= 16 && left + width <= 16);
        }
    }
}
