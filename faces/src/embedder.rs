//! The dlib face recognition ResNet v1 in burn: a 150×150 RGB chip → a 128-D descriptor.
//!
//! The network is `anet_type` of dlib's `examples/dnn_face_recognition_ex.cpp` (a ResNet
//! after He et al. 2016, "Deep Residual Learning for Image Recognition", with 29 convs),
//! read from `dlib_face_recognition_resnet_model_v1.dat` by [`crate::dlib_dat`]. Two
//! descriptors of the same person lie closer than 0.6 in Euclidean distance (dlib's rule and
//! the loss's `dist_thresh`); descriptors are *not* normalised.
//!
//! Shape trace (N×C×H×W, N chips at a time):
//!
//! ```text
//! input N×3×150×150, (v − mean_c)/256, planes R, G, B
//! con 7×7/2, pad 0 (+affine, relu)     N×32×72×72
//! max_pool 3×3/2, pad 0                N×32×35×35
//! 3 × ares<32>                         N×32×35×35
//! ares_down<64>  + 3 × ares<64>        N×64×17×17
//! ares_down<128> + 2 × ares<128>       N×128×8×8
//! ares_down<256> + 2 × ares<256>       N×256×4×4    (conv path 3×3 ⊕ pooled skip 4×4)
//! ares_down<256>                       N×256×2×2    (conv path 1×1 ⊕ pooled skip 2×2)
//! avg_pool_everything                  N×256
//! fc_no_bias                           N×128
//! ```
//!
//! `ares<N>(x) = relu(x + affine(con3×3/1(relu(affine(con3×3/1(x))))))`;
//! `ares_down<N>(x) = relu(avg_pool2×2/2(x) ⊕ affine(con3×3/1(relu(affine(con3×3/2(x))))))`,
//! where ⊕ is dlib's zero-padded add (`tt::add(dest, src1, src2)`): the result takes the
//! larger size in every dimension and each input counts as 0 where it has no value,
//! aligned at channel 0 and the top-left corner. It pads channels in every downsampling
//! block and space in the last two (see `faces/NOTES.md` §2.2).
//!
//! Every `affine_` follows a conv, so it is folded into that conv's weights and bias when
//! loading (`(w∗x + b)·γ + β = (w·γ)∗x + (b·γ + β)`): one pass less over every feature map,
//! at the cost of f32 rounding in a different place (well inside the 1e-4 tolerance).
//!
//! Speed (release, flex, the 2-core dev machine, shared): about 15 ms per chip one at a
//! time and 8–9 ms per chip in batches of 8 (`embedding_speed` in `tests/embedder.rs`).
//! The 256-filter convs of the last two levels run as slices + one matmul
//! ([`runs_as_matmul`]); flex's `conv2d` runs everything else. Tried and dropped, as no
//! faster in the whole network: the 7×7/2 conv as 49 strided slices + matmul (slower)
//! or as a space-to-depth 4×4 conv, all convs as slices + matmul, and the 3×3/2 max pool
//! as strided slices or even/odd reshapes with `max_pair`.

use std::path::Path;

use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions, PadMode};
use burn::tensor::{Device, Slice, Tensor, TensorData};
use image::RgbImage;

use crate::dlib_dat::{self, Affine, Conv, DlibNet, Fc, Layer, Pool};
use crate::error::{Error, Result};
use crate::weights::DLIB_RESNET;

/// The chip side the network takes (dlib's `input_rgb_image_sized<150>`).
pub const CHIP_SIDE: u32 = 150;
/// Length of a descriptor.
pub const DESCRIPTOR_LEN: usize = 128;
/// A face descriptor: compare two with [`distance`]; below 0.6 means the same person.
pub type Descriptor = [f32; DESCRIPTOR_LEN];

/// Chips per forward pass. Measured on 2 cores: 8 and 16 run equally fast per chip
/// (about twice as fast as one at a time); 8 needs half the memory (flex's im2col
/// buffers for the 7×7 conv alone are 3 MB per chip).
const MAX_BATCH: usize = 8;

/// Convs with at least this many filters run as [`conv_by_matmul`]; see [`runs_as_matmul`].
const MATMUL_CONV_MIN_FILTERS: usize = 256;

/// Number of tag slots (dlib's `tag1`, `tag2`; index 0 unused).
const TAG_SLOTS: usize = 3;

/// One step of the forward pass, with its weights already on the device.
#[derive(Clone)]
enum Op {
    /// A conv, with the following affine folded in.
    Conv {
        weight: Tensor<4>,
        bias: Tensor<1>,
        options: ConvOptions<2>,
    },
    /// A conv (affine folded in) run as im2col and one matmul; see [`runs_as_matmul`].
    MatmulConv(MatmulConv),
    /// An affine that does not follow a conv (none in the face model; kept for generality).
    Affine {
        gamma: Tensor<4>,
        beta: Tensor<4>,
    },
    Relu,
    MaxPool(MaxPoolOptions<2>),
    AvgPool(AvgPoolOptions<2>),
    /// `avg_pool_everything`: the mean over each channel's whole map.
    GlobalAvg,
    Tag(usize),
    Skip(usize),
    AddPrev(usize),
    /// `[inputs, outputs]`.
    Fc(Tensor<2>),
}

/// A conv whose filters are laid out once as `[1, F, kh·kw·C]` (kernel position major,
/// the order of [`conv_by_matmul`]'s columns), bias `[1, F, 1]`.
#[derive(Clone)]
struct MatmulConv {
    weight: Tensor<3>,
    bias: Tensor<3>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

/// The dlib ResNet, loaded once, on a burn device. Cloning shares the weights.
#[derive(Clone)]
pub struct FaceEmbedder {
    device: Device,
    mean_rgb: [f32; 3],
    ops: Vec<Op>,
}

/// Not derived: the ops hold 5.6 M weights that `{:?}` should not print.
impl std::fmt::Debug for FaceEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceEmbedder")
            .field("device", &self.device)
            .field("mean_rgb", &self.mean_rgb)
            .field("ops", &self.ops.len())
            .finish()
    }
}

impl FaceEmbedder {
    /// Reads `dlib_face_recognition_resnet_model_v1.dat` from `weights_dir` (SHA-256
    /// checked), parses it and puts the weights on `device`.
    pub fn load(weights_dir: &Path, device: &Device) -> Result<Self> {
        let (path, bytes) = DLIB_RESNET.read_verified(weights_dir)?;
        let net = dlib_dat::parse(&path, &bytes)?;
        Self::from_net(&path, net, device)
    }

    /// Builds the forward pass from a parsed net; `path` only names the file in errors.
    fn from_net(path: &Path, net: DlibNet, device: &Device) -> Result<Self> {
        let side = CHIP_SIDE as usize;
        if (net.input.rows, net.input.cols) != (side, side) {
            return Err(Error::model_format(
                path,
                "dlib .dat",
                format!(
                    "input is {}×{}, expected {side}×{side}",
                    net.input.rows, net.input.cols
                ),
            ));
        }
        let ops = build_ops(net.layers, device);
        check_tags(&ops).map_err(|reason| Error::model_format(path, "dlib .dat", reason))?;
        Ok(FaceEmbedder {
            device: device.clone(),
            mean_rgb: net.input.mean_rgb,
            ops,
        })
    }

    /// Descriptors of `chips`, in order. Each chip must be 150×150 (an aligned face, see
    /// [`crate::align`]); an empty slice gives an empty result.
    pub fn embed(&self, chips: &[RgbImage]) -> Result<Vec<Descriptor>> {
        check_chips(chips)?;
        let mut descriptors = Vec::with_capacity(chips.len());
        for batch in chips.chunks(MAX_BATCH) {
            descriptors.extend(self.embed_batch(batch)?);
        }
        Ok(descriptors)
    }

    fn embed_batch(&self, chips: &[RgbImage]) -> Result<Vec<Descriptor>> {
        let input = self.input_tensor(chips);
        let output = self.forward(input)?;
        let values = output
            .try_into_data()
            .map_err(|e| Error::Invalid(format!("reading the descriptors back: {e:?}")))?
            .try_to_vec::<f32>()
            .map_err(|e| Error::Invalid(format!("reading the descriptors back: {e:?}")))?;
        let descriptors: Vec<Descriptor> = values
            .chunks_exact(DESCRIPTOR_LEN)
            .filter_map(|row| Descriptor::try_from(row).ok())
            .collect();
        if descriptors.len() != chips.len() {
            return Err(Error::Invalid(format!(
                "the network gave {} values for {} chips",
                values.len(),
                chips.len()
            )));
        }
        Ok(descriptors)
    }

    /// `input_rgb_image_sized`: planes R, G, B of `(v − mean_c) / 256`, NCHW.
    fn input_tensor(&self, chips: &[RgbImage]) -> Tensor<4> {
        let side = CHIP_SIDE as usize;
        let plane = side * side;
        let mut values = vec![0f32; chips.len() * 3 * plane];
        for (chip, out) in chips.iter().zip(values.chunks_exact_mut(3 * plane)) {
            for (channel, (mean, out)) in self
                .mean_rgb
                .iter()
                .zip(out.chunks_exact_mut(plane))
                .enumerate()
            {
                let pixels = chip.as_raw().iter().skip(channel).step_by(3);
                for (dst, &v) in out.iter_mut().zip(pixels) {
                    *dst = (f32::from(v) - mean) / 256.0;
                }
            }
        }
        let data = TensorData::new(values, [chips.len(), 3, side, side]);
        Tensor::from_data(data, &self.device)
    }

    /// Runs the ops; returns `[N, 128]`.
    fn forward(&self, input: Tensor<4>) -> Result<Tensor<2>> {
        let mut x = input;
        let mut tags: [Option<Tensor<4>>; TAG_SLOTS] = Default::default();
        for op in &self.ops {
            x = match op {
                Op::Conv {
                    weight,
                    bias,
                    options,
                } => conv2d(x, weight.clone(), Some(bias.clone()), options.clone()),
                Op::MatmulConv(conv) => conv_by_matmul(x, conv),
                Op::Affine { gamma, beta } => x * gamma.clone() + beta.clone(),
                Op::Relu => relu(x),
                Op::MaxPool(options) => max_pool2d(x, options.clone()),
                Op::AvgPool(options) => avg_pool2d(x, options.clone()),
                Op::GlobalAvg => global_average(x),
                Op::Tag(slot) => {
                    store(&mut tags, *slot, x.clone());
                    x
                }
                Op::Skip(slot) => recall(&tags, *slot)?,
                Op::AddPrev(slot) => add_zero_padded(x, recall(&tags, *slot)?),
                Op::Fc(weights) => return Ok(fc(x, weights.clone())),
            };
        }
        Err(Error::Invalid("dlib net: no fc layer at the end".into()))
    }
}

/// Euclidean distance between two descriptors; dlib calls two faces the same person
/// below 0.6.
pub fn distance(a: &Descriptor, b: &Descriptor) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

fn check_chips(chips: &[RgbImage]) -> Result<()> {
    for (index, chip) in chips.iter().enumerate() {
        if chip.dimensions() != (CHIP_SIDE, CHIP_SIDE) {
            return Err(Error::Invalid(format!(
                "face chip {index} is {}×{}, the embedder takes {CHIP_SIDE}×{CHIP_SIDE}",
                chip.width(),
                chip.height()
            )));
        }
    }
    Ok(())
}

/// Turns the parsed layers into ops, folding each affine into the conv before it.
fn build_ops(layers: Vec<Layer>, device: &Device) -> Vec<Op> {
    let mut ops = Vec::with_capacity(layers.len());
    let mut layers = layers.into_iter().peekable();
    while let Some(layer) = layers.next() {
        let op = match layer {
            Layer::Conv(conv) => {
                let affine = match layers.peek() {
                    Some(Layer::Affine(_)) => match layers.next() {
                        Some(Layer::Affine(affine)) => Some(affine),
                        _ => None,
                    },
                    _ => None,
                };
                conv_op(conv, affine.as_ref(), device)
            }
            Layer::Affine(affine) => affine_op(&affine, device),
            Layer::Relu => Op::Relu,
            Layer::MaxPool(pool) => Op::MaxPool(max_pool_options(pool)),
            Layer::AvgPool(pool) if pool.size == [0, 0] => Op::GlobalAvg,
            Layer::AvgPool(pool) => Op::AvgPool(avg_pool_options(pool)),
            Layer::Tag(tag) => Op::Tag(usize::from(tag)),
            Layer::Skip(tag) => Op::Skip(usize::from(tag)),
            Layer::AddPrev(tag) => Op::AddPrev(usize::from(tag)),
            Layer::Fc(fc) => fc_op(fc, device),
        };
        ops.push(op);
    }
    ops
}

/// A conv with `affine` (if any) folded in: `w·γ[f]` per filter, `b·γ[f] + β[f]`.
fn conv_op(conv: Conv, affine: Option<&Affine>, device: &Device) -> Op {
    let Conv {
        mut filters,
        mut biases,
        shape,
        stride,
        padding,
    } = conv;
    if let Some(affine) = affine {
        let per_filter = shape[1] * shape[2] * shape[3];
        let scales = affine.gamma.iter().zip(&affine.beta);
        for ((weights, bias), (gamma, beta)) in filters
            .chunks_exact_mut(per_filter.max(1))
            .zip(biases.iter_mut())
            .zip(scales)
        {
            weights.iter_mut().for_each(|w| *w *= gamma);
            *bias = *bias * gamma + beta;
        }
    }
    if runs_as_matmul(shape[0]) {
        return matmul_conv_op(&filters, biases, shape, stride, padding, device);
    }
    let bias_len = biases.len();
    Op::Conv {
        weight: Tensor::from_data(TensorData::new(filters, shape), device),
        bias: Tensor::from_data(TensorData::new(biases, [bias_len]), device),
        options: ConvOptions::new(stride, padding, [1, 1], 1),
    }
}

/// Whether a conv runs as slices + matmul ([`conv_by_matmul`]) rather than flex's
/// `conv2d`: measured per layer on 2 cores, flex's conv re-lays out its weights and
/// tiles the output per chip on every call, which dominates for the 256-filter convs
/// of the last two levels (maps 4×4 and below: 5.5 → 2.7 ms per chip at batch 1 for
/// those five layers together); on the larger maps of the first levels flex's conv is as fast
/// or faster (the matmul form's column buffer grows with the map).
fn runs_as_matmul(filters: usize) -> bool {
    filters >= MATMUL_CONV_MIN_FILTERS
}

/// A conv as `[1, F, kh·kw·C] × [N, kh·kw·C, oh·ow]`: the filters re-laid out once,
/// kernel position major, to match the columns [`conv_by_matmul`] builds.
fn matmul_conv_op(
    filters: &[f32],
    biases: Vec<f32>,
    shape: [usize; 4],
    stride: [usize; 2],
    padding: [usize; 2],
    device: &Device,
) -> Op {
    let [count, channels, kh, kw] = shape;
    let positions = kh * kw;
    let len = positions * channels;
    let mut weight = vec![0f32; count * len];
    for (dst, src) in weight
        .chunks_exact_mut(len.max(1))
        .zip(filters.chunks_exact(len.max(1)))
    {
        // src is [C][kh·kw], dst is [kh·kw][C].
        for (channel, taps) in src.chunks_exact(positions.max(1)).enumerate() {
            for (position, &tap) in taps.iter().enumerate() {
                if let Some(slot) = dst.get_mut(position * channels + channel) {
                    *slot = tap;
                }
            }
        }
    }
    Op::MatmulConv(MatmulConv {
        weight: Tensor::from_data(TensorData::new(weight, [1, count, len]), device),
        bias: Tensor::from_data(TensorData::new(biases, [1, count, 1]), device),
        kernel: [kh, kw],
        stride,
        padding,
    })
}

/// `count` indices from `start`, `step` apart.
fn strided(start: usize, count: usize, step: usize) -> Slice {
    let end = start + step * count.saturating_sub(1) + 1;
    Slice::new(start as isize, Some(end as isize), step as isize)
}

/// Convolution as im2col + matmul: one (strided) slice of the padded input per kernel
/// position, concatenated along the channels into `[N, kh·kw·C, oh·ow]` columns.
fn conv_by_matmul(x: Tensor<4>, conv: &MatmulConv) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let [kh, kw] = conv.kernel;
    let [sy, sx] = conv.stride;
    let [py, px] = conv.padding;
    let x = if py + px > 0 {
        x.pad([(py, py), (px, px)], PadMode::Constant(0.0))
    } else {
        x
    };
    let oh = (h + 2 * py).saturating_sub(kh) / sy + 1;
    let ow = (w + 2 * px).saturating_sub(kw) / sx + 1;
    let mut cols = Vec::with_capacity(kh * kw);
    for ky in 0..kh {
        for kx in 0..kw {
            cols.push(x.clone().slice([
                Slice::from(0..n),
                Slice::from(0..c),
                strided(ky, oh, sy),
                strided(kx, ow, sx),
            ]));
        }
    }
    let cols = Tensor::cat(cols, 1).reshape([n, kh * kw * c, oh * ow]);
    let [_, filters, _] = conv.weight.dims();
    (conv.weight.clone().matmul(cols) + conv.bias.clone()).reshape([n, filters, oh, ow])
}

fn affine_op(affine: &Affine, device: &Device) -> Op {
    let channels = affine.gamma.len();
    let per_channel = |values: &[f32]| {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [1, channels, 1, 1]),
            device,
        )
    };
    Op::Affine {
        gamma: per_channel(&affine.gamma),
        beta: per_channel(&affine.beta),
    }
}

fn fc_op(fc: Fc, device: &Device) -> Op {
    let shape = [fc.inputs, fc.outputs];
    Op::Fc(Tensor::from_data(
        TensorData::new(fc.weights, shape),
        device,
    ))
}

fn max_pool_options(pool: Pool) -> MaxPoolOptions<2> {
    MaxPoolOptions::new(pool.size)
        .with_stride(pool.stride)
        .with_padding(pool.padding)
}

fn avg_pool_options(pool: Pool) -> AvgPoolOptions<2> {
    AvgPoolOptions::new(pool.size)
        .with_stride(pool.stride)
        .with_padding(pool.padding)
}

/// Checks every skip and add reads a tag set before it and the net ends in its fc, so
/// that [`FaceEmbedder::forward`] cannot miss one at run time.
fn check_tags(ops: &[Op]) -> std::result::Result<(), String> {
    let mut set = [false; TAG_SLOTS];
    for (index, op) in ops.iter().enumerate() {
        match op {
            Op::Tag(slot) => match set.get_mut(*slot) {
                Some(flag) => *flag = true,
                None => return Err(format!("layer {index}: tag{slot} is out of range")),
            },
            Op::Skip(slot) | Op::AddPrev(slot) if !set.get(*slot).copied().unwrap_or(false) => {
                return Err(format!("layer {index} reads tag{slot} before it is set"));
            }
            _ => {}
        }
    }
    match ops.last() {
        Some(Op::Fc(_)) => Ok(()),
        _ => Err("the net does not end in its fc layer".into()),
    }
}

fn store(tags: &mut [Option<Tensor<4>>; TAG_SLOTS], slot: usize, x: Tensor<4>) {
    if let Some(entry) = tags.get_mut(slot) {
        *entry = Some(x);
    }
}

fn recall(tags: &[Option<Tensor<4>>; TAG_SLOTS], slot: usize) -> Result<Tensor<4>> {
    tags.get(slot)
        .and_then(Clone::clone)
        .ok_or_else(|| Error::Invalid(format!("dlib net: tag{slot} read before it was set")))
}

/// dlib's `tt::add(dest, src1, src2)`: the result takes the larger of the two sizes in
/// channels, rows and columns; each input counts as 0 outside its own extent (aligned at
/// channel 0, top-left). Equal shapes are a plain add.
pub(crate) fn add_zero_padded(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    let [_, ca, ha, wa] = a.dims();
    let [_, cb, hb, wb] = b.dims();
    let target = [ca.max(cb), ha.max(hb), wa.max(wb)];
    pad_to(a, target) + pad_to(b, target)
}

/// Zeros appended after the existing channels, rows and columns up to `[c, h, w]`.
fn pad_to(x: Tensor<4>, [c, h, w]: [usize; 3]) -> Tensor<4> {
    let [_, xc, xh, xw] = x.dims();
    if [xc, xh, xw] == [c, h, w] {
        return x;
    }
    let padding = [(0, c - xc), (0, h - xh), (0, w - xw)];
    x.pad(padding, PadMode::Constant(0.0))
}

/// `avg_pool_everything`: `[N, C, H, W]` → `[N, C]`, the mean over H·W (zero-padded cells
/// of the last add included, as dlib computes it).
fn global_average(x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c, 1, 1])
}

/// `fc_no_bias`: `[N, C, 1, 1]` × `[C, 128]` → `[N, 128]`.
fn fc(x: Tensor<4>, weights: Tensor<2>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c * h * w]).matmul(weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(values: &[f32], shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Device::flex())
    }

    fn values(x: Tensor<4>) -> (Vec<usize>, Vec<f32>) {
        let dims = x.dims().to_vec();
        (dims, x.into_data().try_to_vec::<f32>().unwrap())
    }

    #[test]
    fn zero_padded_add_pads_channels() {
        // a: 2 channels of 1×1; b: 1 channel: the result's channel 1 is a's alone.
        let a = tensor(&[1.0, 2.0], [1, 2, 1, 1]);
        let b = tensor(&[10.0], [1, 1, 1, 1]);
        assert_eq!(
            values(add_zero_padded(a, b)),
            (vec![1, 2, 1, 1], vec![11.0, 2.0])
        );
    }

    #[test]
    fn zero_padded_add_pads_space_and_channels_across_inputs() {
        // As in level1: the conv path has more channels but less space than the skip.
        // a: 2 channels × 1×1 (the "conv path"); b: 1 channel × 2×2 (the "skip").
        let a = tensor(&[1.0, 2.0], [1, 2, 1, 1]);
        let b = tensor(&[10.0, 20.0, 30.0, 40.0], [1, 1, 2, 2]);
        let (dims, out) = values(add_zero_padded(a.clone(), b.clone()));
        assert_eq!(dims, vec![1, 2, 2, 2]);
        assert_eq!(out, vec![11.0, 20.0, 30.0, 40.0, 2.0, 0.0, 0.0, 0.0]);
        // Symmetric in its inputs.
        assert_eq!(values(add_zero_padded(b, a)).1, out);
    }

    #[test]
    fn zero_padded_add_keeps_the_batch() {
        let a = tensor(&[1.0, 2.0], [2, 1, 1, 1]);
        let b = tensor(&[5.0, 6.0, 7.0, 8.0], [2, 1, 1, 2]);
        let (dims, out) = values(add_zero_padded(a, b));
        assert_eq!(dims, vec![2, 1, 1, 2]);
        assert_eq!(out, vec![6.0, 6.0, 9.0, 8.0]);
    }

    #[test]
    fn global_average_and_fc() {
        let x = tensor(&[1.0, 2.0, 3.0, 6.0, 0.0, 0.0, 0.0, 4.0], [1, 2, 2, 2]);
        let (dims, mean) = values(global_average(x.clone()));
        assert_eq!((dims, mean), (vec![1, 2, 1, 1], vec![3.0, 1.0]));
        let weights = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 0.5, 1.0, 2.0, -1.0], [2, 3]),
            &Device::flex(),
        );
        let out = fc(global_average(x), weights)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(out, vec![4.0, 2.0, 0.5]);
    }

    #[test]
    fn folding_the_affine_into_the_conv_matches_applying_it() {
        let device = Device::flex();
        let conv = Conv {
            filters: vec![1.0, -2.0, 0.5, 3.0],
            biases: vec![0.25, -1.0],
            shape: [2, 1, 1, 2],
            stride: [1, 1],
            padding: [0, 0],
        };
        let affine = Affine {
            gamma: vec![2.0, -0.5],
            beta: vec![1.0, 3.0],
        };
        let x = tensor(&[1.0, 2.0, 3.0], [1, 1, 1, 3]);
        let run = |op: &Op, x: Tensor<4>| match op {
            Op::Conv {
                weight,
                bias,
                options,
            } => conv2d(x, weight.clone(), Some(bias.clone()), options.clone()),
            Op::Affine { gamma, beta } => x * gamma.clone() + beta.clone(),
            _ => unreachable!(),
        };
        let folded = run(&conv_op(conv.clone(), Some(&affine), &device), x.clone());
        let plain = run(&conv_op(conv, None, &device), x);
        let separate = run(&affine_op(&affine, &device), plain);
        assert_eq!(values(folded), values(separate));
    }

    #[test]
    fn conv_by_matmul_matches_flex_conv2d() {
        let device = Device::flex();
        // (channels, side, filters, kernel, stride, padding): a 3×3/1 pad 1 and a 3×3/2 pad 0
        // conv as in the ResNet's blocks, on maps down to 1×1, and an odd 7×7/2.
        let cases = [
            (3, 4, 5, 3, 1, 1),
            (2, 1, 3, 3, 1, 1),
            (4, 8, 2, 3, 2, 0),
            (3, 4, 3, 3, 2, 0),
            (3, 15, 4, 7, 2, 0),
        ];
        for (channels, side, count, kernel, stride, padding) in cases {
            let shape = [count, channels, kernel, kernel];
            let filters: Vec<f32> = (0..shape.iter().product::<usize>())
                .map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0)
                .collect();
            let biases: Vec<f32> = (0..count).map(|i| i as f32 * 0.5 - 1.0).collect();
            let input: Vec<f32> = (0..2 * channels * side * side)
                .map(|i| ((i * 13 % 11) as f32 - 5.0) / 4.0)
                .collect();
            let x = tensor(&input, [2, channels, side, side]);
            let Op::MatmulConv(conv) = matmul_conv_op(
                &filters,
                biases.clone(),
                shape,
                [stride; 2],
                [padding; 2],
                &device,
            ) else {
                panic!("not a matmul conv");
            };
            let ours = values(conv_by_matmul(x.clone(), &conv));
            let weight = Tensor::from_data(TensorData::new(filters, shape), &device);
            let bias = Tensor::from_data(TensorData::new(biases, [count]), &device);
            let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1);
            let flex = values(conv2d(x, weight, Some(bias), options));
            assert_eq!(ours.0, flex.0, "shape, case {shape:?}/{stride}/{padding}");
            let diff = ours
                .1
                .iter()
                .zip(&flex.1)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(diff < 1e-5, "case {shape:?}/{stride}/{padding}: {diff}");
        }
    }

    #[test]
    fn distance_is_euclidean() {
        let mut a = [0f32; DESCRIPTOR_LEN];
        let mut b = [0f32; DESCRIPTOR_LEN];
        a[0] = 3.0;
        b[1] = 4.0;
        assert_eq!(distance(&a, &b), 5.0);
        assert_eq!(distance(&a, &a), 0.0);
    }
}
