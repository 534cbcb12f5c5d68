//! burn's 2D convolution, grouped and not, forward and backward, against naive loops.
//!
//! burn has had grouped-convolution bugs (wrong group wiring of the weight, wrong
//! gradients for `groups > 1`), and SE-ResNeXt leans on exactly that operation: every
//! bottleneck's 3×3 convolution is grouped 32 ways. `device::check` only compares
//! backends with each other, which cannot catch a bug they share; this test compares
//! burn with a reference that is nothing but nested loops in plain Rust, accumulating
//! in f64.
//!
//! Each case runs `y = conv2d(x, w, b)` and the loss `sum(y * r)` for a fixed random
//! `r`, so the output gradient is `r` and the reference gradients follow directly:
//! `dX[n, g·Cin/G + c, ih, iw] = Σ r[n, o, i, j] · w[o, c, kh, kw]` over the output
//! positions whose window covers `(ih, iw)`, `dW[o, c, kh, kw] = Σ r[n, o, i, j] ·
//! x[n, g·Cin/G + c, i·s − p + kh, j·s − p + kw]`, and `db[o] = Σ r[n, o, i, j]`.
//! Output, dX, dW and db must each match to ‖got − ref‖ / ‖ref‖ ≤ 1e-5.
//!
//! Every case runs on flex; with `--features tch` the same cases also run on LibTorch
//! CPU. Each runs twice: through burn's own `conv2d` and through the project's
//! `album_training::ops::conv2d` (its own backward: ATen's kernels on LibTorch). [`naive_reference_tells_a_wrongly_wired_grouped_weight_apart`] makes sure the
//! comparison cannot pass vacuously: a weight read in a wrong group layout must miss
//! both the reference and burn's result by far more than the tolerance.

use album_training::ops;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Largest accepted ‖got − ref‖ / ‖ref‖: float32 rounding of sums of at most a few
/// hundred products stays around 1e-7.
const TOLERANCE: f64 = 1e-5;

/// One convolution: NCHW input of `batch × in_channels × side × side`, weight of
/// `out_channels × in_channels/groups × kernel × kernel`, square stride, padding and
/// dilation.
#[derive(Debug, Clone, Copy)]
struct Case {
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    groups: usize,
    side: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
}

impl Case {
    fn in_per_group(&self) -> usize {
        self.in_channels / self.groups
    }

    fn out_per_group(&self) -> usize {
        self.out_channels / self.groups
    }

    fn out_side(&self) -> usize {
        let reach = self.dilation * (self.kernel - 1) + 1;
        (self.side + 2 * self.padding - reach) / self.stride + 1
    }

    fn input_shape(&self) -> [usize; 4] {
        [self.batch, self.in_channels, self.side, self.side]
    }

    fn weight_shape(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_per_group(),
            self.kernel,
            self.kernel,
        ]
    }

    fn output_shape(&self) -> [usize; 4] {
        let out = self.out_side();
        [self.batch, self.out_channels, out, out]
    }
}

fn case(
    in_channels: usize,
    out_channels: usize,
    groups: usize,
    side: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Case {
    assert_eq!(
        in_channels % groups,
        0,
        "in channels must split into groups"
    );
    assert_eq!(
        out_channels % groups,
        0,
        "out channels must split into groups"
    );
    Case {
        batch: 2,
        in_channels,
        out_channels,
        groups,
        side,
        kernel,
        stride,
        padding,
        dilation: 1,
    }
}

impl Case {
    fn dilated(self, dilation: usize) -> Case {
        Case { dilation, ..self }
    }

    fn batched(self, batch: usize) -> Case {
        Case { batch, ..self }
    }
}

/// Ungrouped 3×3 (ResNeXt stem-like, 4 → 6 channels), stride 1 and 2.
fn one_group_cases() -> Vec<Case> {
    vec![case(4, 6, 1, 9, 3, 1, 1), case(4, 6, 1, 9, 3, 2, 1)]
}

/// Odd shapes: a 7×7 stride-2 stem on an odd side with 3 input channels, a 5×5 on a
/// side the stride does not divide, a dilated 3×3 (2 groups), a 1-pixel image, and a
/// 64×64 map in a batch of 3 (the flex kernel then works image by image: its units of
/// work hold about 128 K receptive-field values), a 3×3 with fewer outputs than inputs
/// (DenseNet's growth conv; flex computes its input gradient as a transposed
/// convolution) and a padded 1×1 at stride 1 (whose padding no transposed convolution
/// can undo, so flex scatters), and 5×5 "same" convolutions, plain and dilated, whose
/// taps reach two rows and columns into the padding (flex copies each tap's receptive
/// field as the whole input plane shifted, then zeroes what wrapped around).
fn odd_cases() -> Vec<Case> {
    vec![
        case(16, 4, 1, 7, 3, 1, 1),
        case(6, 4, 2, 5, 1, 1, 1),
        case(3, 8, 1, 11, 7, 2, 3),
        case(6, 4, 2, 10, 5, 3, 2),
        case(8, 8, 2, 9, 3, 1, 2).dilated(2),
        case(4, 4, 1, 1, 3, 1, 1),
        case(4, 6, 2, 64, 3, 1, 1).batched(3),
        case(6, 4, 1, 8, 5, 1, 2),
        case(4, 4, 2, 11, 5, 1, 4).dilated(2),
    ]
}

/// 2 groups, more channels out than in (8 → 16), stride 1 and 2.
fn two_group_cases() -> Vec<Case> {
    vec![case(8, 16, 2, 9, 3, 1, 1), case(8, 16, 2, 9, 3, 2, 1)]
}

/// The SE-ResNeXt shape: 64 → 64 channels in 32 groups of 2, stride 1 and 2 (the
/// first block of a stage downsamples in its grouped 3×3), and stride 2 on an even
/// side too, where the last padded row and column fall outside every window.
fn thirty_two_group_cases() -> Vec<Case> {
    vec![
        case(64, 64, 32, 9, 3, 1, 1),
        case(64, 64, 32, 9, 3, 2, 1),
        case(64, 64, 32, 8, 3, 2, 1),
    ]
}

/// 1×1 kernels: the ungrouped stride-2 projection shortcut of a downsampling block
/// (every other input row and column gets no gradient), a 32-group 1×1 that widens
/// 64 → 128, and a 2-group 1×1 with padding 1 (an output border that is bias only).
fn one_by_one_cases() -> Vec<Case> {
    vec![
        case(8, 16, 1, 9, 1, 2, 0),
        case(64, 128, 32, 9, 1, 1, 0),
        case(8, 16, 2, 9, 1, 2, 1),
    ]
}

/// Seeded inputs of one case, all uniform in [-1, 1).
struct Inputs {
    case: Case,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    /// Output gradient: the loss is `sum(y * r)`.
    r: Vec<f32>,
}

impl Inputs {
    fn seeded(case: Case, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut values =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
        let x = values(case.input_shape().iter().product());
        let w = values(case.weight_shape().iter().product());
        let b = values(case.out_channels);
        let r = values(case.output_shape().iter().product());
        Inputs { case, x, w, b, r }
    }
}

/// Output, input gradient, weight gradient and bias gradient, flattened row-major.
#[derive(Debug, Clone)]
struct Results {
    y: Vec<f64>,
    dx: Vec<f64>,
    dw: Vec<f64>,
    db: Vec<f64>,
}

/// How the reference reads the weight of output channel `o`, input channel `c` of its
/// group. Only [`Wiring::Correct`] is burn's (and PyTorch's) layout; the others are
/// bugs the self-check must be able to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wiring {
    /// `w[o, c, kh, kw]`, output channel `o` in group `o / (Cout/G)`.
    Correct,
    /// Each group's block of the weight read as `[Cin/G, Cout/G, k, k]` instead of
    /// `[Cout/G, Cin/G, k, k]`: a transposed group.
    TransposedGroups,
    /// Output channel `o` fed by input group `o % G` instead of `o / (Cout/G)`.
    InterleavedGroups,
}

/// The reference: direct nested loops, f64 accumulation, gradients by the formulas in
/// the module doc.
fn naive(inputs: &Inputs, wiring: Wiring) -> Results {
    let c = inputs.case;
    let (cin_g, cout_g, k, s, p, d) = (
        c.in_per_group(),
        c.out_per_group(),
        c.kernel,
        c.stride,
        c.padding,
        c.dilation,
    );
    let (side, out) = (c.side, c.out_side());
    let x_at =
        |n: usize, ch: usize, h: usize, w: usize| ((n * c.in_channels + ch) * side + h) * side + w;
    let y_at =
        |n: usize, o: usize, i: usize, j: usize| ((n * c.out_channels + o) * out + i) * out + j;
    // Index into the flat weight of (output channel, input channel within its group, kh, kw).
    let w_at = |o: usize, ci: usize, kh: usize, kw: usize| match wiring {
        Wiring::Correct | Wiring::InterleavedGroups => ((o * cin_g + ci) * k + kh) * k + kw,
        Wiring::TransposedGroups => {
            let (g, oi) = (o / cout_g, o % cout_g);
            g * cout_g * cin_g * k * k + ((ci * cout_g + oi) * k + kh) * k + kw
        }
    };
    let group_of = |o: usize| match wiring {
        Wiring::Correct | Wiring::TransposedGroups => o / cout_g,
        Wiring::InterleavedGroups => o % c.groups,
    };

    let mut results = Results {
        y: vec![0.0; inputs.r.len()],
        dx: vec![0.0; inputs.x.len()],
        dw: vec![0.0; inputs.w.len()],
        db: vec![0.0; c.out_channels],
    };
    for n in 0..c.batch {
        for o in 0..c.out_channels {
            let first_in = group_of(o) * cin_g;
            for i in 0..out {
                for j in 0..out {
                    let r = f64::from(inputs.r[y_at(n, o, i, j)]);
                    let mut acc = f64::from(inputs.b[o]);
                    results.db[o] += r;
                    for ci in 0..cin_g {
                        for kh in 0..k {
                            for kw in 0..k {
                                // Input row and column, skipping the zero padding.
                                let (h, w) = (i * s + kh * d, j * s + kw * d);
                                if h < p || w < p || h - p >= side || w - p >= side {
                                    continue;
                                }
                                let xi = x_at(n, first_in + ci, h - p, w - p);
                                let wi = w_at(o, ci, kh, kw);
                                let (xv, wv) = (f64::from(inputs.x[xi]), f64::from(inputs.w[wi]));
                                acc += xv * wv;
                                results.dx[xi] += r * wv;
                                results.dw[wi] += r * xv;
                            }
                        }
                    }
                    results.y[y_at(n, o, i, j)] = acc;
                }
            }
        }
    }
    results
}

/// Whose convolution runs: burn's own, or the project's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Implementation {
    Burn,
    Project,
}

impl Implementation {
    fn name(self) -> &'static str {
        match self {
            Implementation::Burn => "burn",
            Implementation::Project => "project",
        }
    }
}

/// burn's conv2d forward and backward of `sum(y * r)` on `device` (made autodiff here).
fn burn_conv(inputs: &Inputs, device: &Device) -> Results {
    run_conv(inputs, device, Implementation::Burn)
}

/// Forward and backward of `sum(y * r)` on `device` (made autodiff here) through
/// `implementation`'s conv2d.
fn run_conv(inputs: &Inputs, device: &Device, implementation: Implementation) -> Results {
    let c = inputs.case;
    let device = device.clone().autodiff();
    let x = Tensor::<4>::from_data(TensorData::new(inputs.x.clone(), c.input_shape()), &device)
        .require_grad();
    let w = Tensor::<4>::from_data(TensorData::new(inputs.w.clone(), c.weight_shape()), &device)
        .require_grad();
    let b = Tensor::<1>::from_data(TensorData::new(inputs.b.clone(), [c.out_channels]), &device)
        .require_grad();
    let r = Tensor::<4>::from_data(TensorData::new(inputs.r.clone(), c.output_shape()), &device);
    let options = ConvOptions::new(
        [c.stride, c.stride],
        [c.padding, c.padding],
        [c.dilation, c.dilation],
        c.groups,
    );
    let kernels = match implementation {
        Implementation::Burn => ops::Kernels::Burn,
        Implementation::Project => ops::Kernels::Project,
    };
    let y = ops::with_kernels(kernels, || {
        ops::conv2d(x.clone(), w.clone(), Some(b.clone()), options)
    });
    assert_eq!(y.dims(), c.output_shape(), "output shape of {c:?}");
    let grads = (y.clone() * r).sum().backward();
    let dx = x.grad(&grads).expect("no input gradient after backward");
    let dw = w.grad(&grads).expect("no weight gradient after backward");
    let db = b.grad(&grads).expect("no bias gradient after backward");
    assert_eq!(dx.dims(), c.input_shape(), "input gradient shape of {c:?}");
    assert_eq!(
        dw.dims(),
        c.weight_shape(),
        "weight gradient shape of {c:?}"
    );
    assert_eq!(db.dims(), [c.out_channels], "bias gradient shape of {c:?}");
    fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data()
            .try_into_vec::<f32>()
            .expect("float32 tensor data")
            .into_iter()
            .map(f64::from)
            .collect()
    }
    Results {
        y: host(y),
        dx: host(dx),
        dw: host(dw),
        db: host(db),
    }
}

/// ‖got − expected‖ / ‖expected‖; infinite on a length mismatch, NaN stays NaN.
fn relative_difference(got: &[f64], expected: &[f64]) -> f64 {
    if got.len() != expected.len() {
        return f64::INFINITY;
    }
    let diff = got
        .iter()
        .zip(expected)
        .map(|(g, e)| (g - e) * (g - e))
        .sum::<f64>()
        .sqrt();
    let norm = expected.iter().map(|e| e * e).sum::<f64>().sqrt();
    assert!(
        norm > 0.0,
        "reference is all zeros: the comparison would be vacuous"
    );
    diff / norm
}

/// Relative differences of output, dX, dW and db, in that order.
fn differences(got: &Results, expected: &Results) -> [(&'static str, f64); 4] {
    [
        ("output", relative_difference(&got.y, &expected.y)),
        ("input gradient", relative_difference(&got.dx, &expected.dx)),
        (
            "weight gradient",
            relative_difference(&got.dw, &expected.dw),
        ),
        ("bias gradient", relative_difference(&got.db, &expected.db)),
    ]
}

/// Runs every case on `device` against the naive reference; prints what it measured
/// (see it with `--nocapture`) and fails on any difference above [`TOLERANCE`].
fn assert_cases_match_naive_loops(device: &Device, name: &str, cases: &[Case]) {
    let mut failures = Vec::new();
    for (index, &case) in cases.iter().enumerate() {
        let inputs = Inputs::seeded(case, 1000 + index as u64);
        let expected = naive(&inputs, Wiring::Correct);
        for implementation in [Implementation::Burn, Implementation::Project] {
            let got = run_conv(&inputs, device, implementation);
            let who = implementation.name();
            for (what, diff) in differences(&got, &expected) {
                println!("{name} {who} {case:?}: {what} relative difference {diff:.3e}");
                if diff.is_nan() || diff > TOLERANCE {
                    failures.push(format!(
                        "{who} {case:?}: {what} differs by {diff:e} relative"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "conv2d on {name} disagrees with the naive loops (tolerance {TOLERANCE:e}):\n{}",
        failures.join("\n")
    );
}

#[test]
fn ungrouped_conv_forward_and_backward_match_naive_loops_on_flex() {
    assert_cases_match_naive_loops(&Device::flex(), "flex", &one_group_cases());
}

#[test]
fn grouped_conv_2_groups_8_in_16_out_forward_and_backward_match_naive_loops_on_flex() {
    assert_cases_match_naive_loops(&Device::flex(), "flex", &two_group_cases());
}

#[test]
fn grouped_conv_32_groups_forward_and_backward_match_naive_loops_on_flex() {
    assert_cases_match_naive_loops(&Device::flex(), "flex", &thirty_two_group_cases());
}

#[test]
fn conv_1x1_grouped_and_strided_forward_and_backward_match_naive_loops_on_flex() {
    assert_cases_match_naive_loops(&Device::flex(), "flex", &one_by_one_cases());
}

#[test]
fn odd_sizes_dilation_and_a_one_pixel_image_match_naive_loops_on_flex() {
    assert_cases_match_naive_loops(&Device::flex(), "flex", &odd_cases());
}

#[cfg(feature = "tch")]
#[allow(deprecated)] // burn-tch is deprecated upstream; it is the project's LibTorch route
fn libtorch_cpu() -> Device {
    Device::libtorch()
}

#[cfg(feature = "tch")]
#[test]
fn ungrouped_conv_forward_and_backward_match_naive_loops_on_libtorch_cpu() {
    assert_cases_match_naive_loops(&libtorch_cpu(), "libtorch-cpu", &one_group_cases());
}

#[cfg(feature = "tch")]
#[test]
fn grouped_conv_2_groups_8_in_16_out_forward_and_backward_match_naive_loops_on_libtorch_cpu() {
    assert_cases_match_naive_loops(&libtorch_cpu(), "libtorch-cpu", &two_group_cases());
}

#[cfg(feature = "tch")]
#[test]
fn grouped_conv_32_groups_forward_and_backward_match_naive_loops_on_libtorch_cpu() {
    assert_cases_match_naive_loops(&libtorch_cpu(), "libtorch-cpu", &thirty_two_group_cases());
}

#[cfg(feature = "tch")]
#[test]
fn conv_1x1_grouped_and_strided_forward_and_backward_match_naive_loops_on_libtorch_cpu() {
    assert_cases_match_naive_loops(&libtorch_cpu(), "libtorch-cpu", &one_by_one_cases());
}

#[cfg(feature = "tch")]
#[test]
fn odd_sizes_dilation_and_a_one_pixel_image_match_naive_loops_on_libtorch_cpu() {
    assert_cases_match_naive_loops(&libtorch_cpu(), "libtorch-cpu", &odd_cases());
}

/// The tests above could pass vacuously if the reference were blind to group wiring.
/// Reading the 32-group weight with a transposed group block, or feeding output
/// channels from the wrong input group, must move output, dX and dW far outside the
/// tolerance, both against the correct reference and against burn's result. (db does
/// not depend on the weight, so it is the same under every wiring.)
#[test]
fn naive_reference_tells_a_wrongly_wired_grouped_weight_apart() {
    let case = case(64, 64, 32, 9, 3, 1, 1);
    let inputs = Inputs::seeded(case, 1000);
    let correct = naive(&inputs, Wiring::Correct);
    let burn = burn_conv(&inputs, &Device::flex());
    for wiring in [Wiring::TransposedGroups, Wiring::InterleavedGroups] {
        let wrong = naive(&inputs, wiring);
        for reference in [&correct, &burn] {
            for (what, diff) in &differences(&wrong, reference)[..3] {
                println!("{wiring:?}: {what} relative difference {diff:.3e}");
                assert!(
                    *diff > 0.1,
                    "{wiring:?} wiring moves the {what} by only {diff:e} relative: the \
                     naive reference cannot tell group layouts apart"
                );
            }
        }
        assert_eq!(wrong.db, correct.db);
    }
    // And the correct wiring is not merely "far from everything": it matches burn.
    for (what, diff) in differences(&burn, &correct) {
        assert!(diff <= TOLERANCE, "{what}: {diff:e}");
    }
}
