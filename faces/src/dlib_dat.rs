//! Reader for dlib's serialization of `dlib_face_recognition_resnet_model_v1.dat`.
//!
//! The file is `dlib::serialize` of the `anet_type` network in dlib's
//! `examples/dnn_face_recognition_ex.cpp`: a 29-conv ResNet (He et al. 2016, "Deep Residual
//! Learning for Image Recognition") ending in a 128-D `fc_no_bias` under `loss_metric`.
//! The rules below come from dlib's `serialize.h`, `float_details.h`, `cuda/tensor.h`,
//! `dnn/core.h`, `layers.h`, `input.h` and `loss.h`, and were checked byte by byte on the
//! real file (`faces/NOTES.md` §2.1, `scripts/inspect_dlib_dat.py`, whose logic this ports):
//!
//! - integer: a control byte (bit 7 = negative, low 4 bits = number of magnitude bytes,
//!   bits 4..6 zero), then the magnitude little endian: `00` = 0, `01 02` = 2, `81 1c` = −28;
//! - bool: ASCII `'1'` / `'0'`; string: length (integer) then the bytes;
//! - float scalar: **mantissa then exponent** (two integers), value = m·2^e
//!   (`serialize.h`'s comment says exponent first; the code writes the mantissa first);
//! - tensor: version (2), num_samples, k, nr, nc, then the floats as raw little-endian f32
//!   (version 1 stores each float as a scalar); alias tensor: version (1) and the 4 sizes.
//!
//! Every wrapper (`add_loss_layer`, `add_layer`, `add_tag_layer`, `add_skip_layer`) writes
//! its version, then its subnet, then its own details. So the file is: the loss layer, the
//! 130 wrapper versions outermost first (2 = layer, 1 = tag/skip, 3 = the layer over the
//! input), the input layer, then the layer bodies **input-first**. Tags and skips have no
//! body, so which is which comes from the architecture ([`architecture`]), which this reader
//! also checks every layer against: kinds, filter counts, kernel sizes, strides, paddings
//! and channel counts. Anything else, or a byte left over, is a
//! [`Error::ModelFormat`](crate::error::Error::ModelFormat).
//!
//! Shape trace of the network (C×H×W, padding 0 where the stride is 2, `k/2` where it is 1):
//!
//! ```text
//! input 3×150×150 → con 7×7/2 32×72×72 → affine, relu → max_pool 3×3/2 32×35×35
//! → 3 ares<32> 32×35×35 → ares_down<64> + 3 ares<64> 64×17×17
//! → ares_down<128> + 2 ares<128> 128×8×8 → ares_down<256> + 2 ares<256> 256×4×4
//!   (conv path 3×3, pooled skip 4×4, zero-padded add) → ares_down<256> 256×2×2
//!   (conv path 1×1, skip 2×2) → avg_pool_everything 256 → fc_no_bias 128
//! ```

use std::path::Path;

use crate::error::{Error, Result};

const FORMAT: &str = "dlib .dat";

/// The parsed network: the input layer and the layers input-first.
#[derive(Debug, Clone, PartialEq)]
pub struct DlibNet {
    pub input: InputLayer,
    /// Every layer below the loss, in the order data flows through them.
    pub layers: Vec<Layer>,
}

/// `input_rgb_image_sized`: the chip size and the per-channel means it subtracts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputLayer {
    /// Means of R, G, B (122.782, 117.001, 104.298 in the face model).
    pub mean_rgb: [f32; 3],
    pub rows: usize,
    pub cols: usize,
}

/// One layer of the net. Tags, skips and adds carry the tag number of dlib's template
/// (`tag1`, `tag2`, `skip1`, `add_prev1`, `add_prev2`), taken from the architecture.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    Conv(Conv),
    Affine(Affine),
    Relu,
    MaxPool(Pool),
    AvgPool(Pool),
    /// Remember the current output under this tag.
    Tag(u8),
    /// Continue from the output remembered under this tag.
    Skip(u8),
    /// Add (zero-padded) the output remembered under this tag.
    AddPrev(u8),
    Fc(Fc),
}

/// `con_`: a 2-D convolution (cross-correlation) with bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    /// Row-major `[filters][channels][kh][kw]`, as burn's conv weight.
    pub filters: Vec<f32>,
    /// One per filter.
    pub biases: Vec<f32>,
    /// `[filters, channels, kh, kw]`.
    pub shape: [usize; 4],
    /// `[y, x]`.
    pub stride: [usize; 2],
    /// `[y, x]`, the same on both sides.
    pub padding: [usize; 2],
}

/// `affine_` in CONV_MODE: `x·gamma[c] + beta[c]` (batch norm folded at save time).
#[derive(Debug, Clone, PartialEq)]
pub struct Affine {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// `max_pool_` / `avg_pool_`. A size of `[0, 0]` pools the whole map (`avg_pool_everything`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// `[y, x]`; `[0, 0]` = everything.
    pub size: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

/// `fc_` without bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Fc {
    /// Row-major `[inputs][outputs]`, as burn's `Linear` weight.
    pub weights: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

/// What the architecture expects at one position (input-first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    Conv {
        filters: usize,
        size: usize,
        stride: usize,
    },
    Affine,
    Relu,
    MaxPool {
        size: usize,
        stride: usize,
    },
    /// `size` 0 = `avg_pool_everything`.
    AvgPool {
        size: usize,
        stride: usize,
    },
    Tag(u8),
    Skip(u8),
    AddPrev(u8),
    Fc {
        outputs: usize,
    },
}

/// `ares<N>` input-first: `relu(x + affine(con3x3(relu(affine(con3x3(x))))))`.
fn ares(filters: usize, out: &mut Vec<Spec>) {
    let conv = Spec::Conv {
        filters,
        size: 3,
        stride: 1,
    };
    out.extend([
        Spec::Tag(1),
        conv,
        Spec::Affine,
        Spec::Relu,
        conv,
        Spec::Affine,
        Spec::AddPrev(1),
        Spec::Relu,
    ]);
}

/// `ares_down<N>` input-first: the conv path starts with a 3×3/2 conv; the skip path
/// (`skip1` back to the block input) is a 2×2/2 average pool; `add_prev2` adds the conv
/// path remembered under `tag2`.
fn ares_down(filters: usize, out: &mut Vec<Spec>) {
    out.extend([
        Spec::Tag(1),
        Spec::Conv {
            filters,
            size: 3,
            stride: 2,
        },
        Spec::Affine,
        Spec::Relu,
        Spec::Conv {
            filters,
            size: 3,
            stride: 1,
        },
        Spec::Affine,
        Spec::Tag(2),
        Spec::Skip(1),
        Spec::AvgPool { size: 2, stride: 2 },
        Spec::AddPrev(2),
        Spec::Relu,
    ]);
}

/// `anet_type` of `dnn_face_recognition_ex.cpp`, input-first (130 layers).
fn architecture() -> Vec<Spec> {
    let mut specs = vec![
        Spec::Conv {
            filters: 32,
            size: 7,
            stride: 2,
        },
        Spec::Affine,
        Spec::Relu,
        Spec::MaxPool { size: 3, stride: 2 },
    ];
    // level4 .. level0
    let blocks: [(usize, bool, usize); 5] = [
        (32, false, 3),
        (64, true, 3),
        (128, true, 2),
        (256, true, 2),
        (256, true, 0),
    ];
    for (filters, down, plain) in blocks {
        if down {
            ares_down(filters, &mut specs);
        }
        for _ in 0..plain {
            ares(filters, &mut specs);
        }
    }
    specs.push(Spec::AvgPool { size: 0, stride: 1 });
    specs.push(Spec::Fc { outputs: 128 });
    specs
}

/// The wrapper version each layer writes in the header: tags and skips 1, layers 2.
fn wrapper_version(spec: Spec) -> i64 {
    match spec {
        Spec::Tag(_) | Spec::Skip(_) => 1,
        _ => 2,
    }
}

/// dlib's default padding, which the face model uses everywhere: `stride != 1 ? 0 : k/2`.
fn default_padding(size: usize, stride: usize) -> usize {
    if stride == 1 { size / 2 } else { 0 }
}

/// Parses the whole file: `path` only names it in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<DlibNet> {
    parse_net(bytes).map_err(|reason| Error::model_format(path, FORMAT, reason))
}

/// Internal result: the reason, with a byte offset where one helps.
type Parse<T> = std::result::Result<T, String>;

fn parse_net(bytes: &[u8]) -> Parse<DlibNet> {
    let mut reader = Reader::new(bytes);
    read_loss(&mut reader)?;
    let specs = architecture();
    let input_version = read_header(&mut reader, &specs)?;
    let input = read_input_layer(&mut reader)?;
    let layers = read_bodies(&mut reader, &specs, input_version)?;
    if !reader.at_end() {
        return Err(format!(
            "{} bytes left after the last layer (at byte {})",
            reader.remaining(),
            reader.pos
        ));
    }
    Ok(DlibNet { input, layers })
}

/// `add_loss_layer`: version 1 and `loss_metric_2` (margin, distance threshold) or the
/// older `loss_metric_` (nothing more).
fn read_loss(reader: &mut Reader) -> Parse<()> {
    let version = reader.int()?;
    if version != 1 {
        return Err(format!("add_loss_layer version {version}, expected 1"));
    }
    match reader.string()?.as_str() {
        "loss_metric_2" => {
            reader.scalar()?;
            reader.scalar()?;
            Ok(())
        }
        "loss_metric_" => Ok(()),
        other => Err(format!("loss layer {other:?}, expected loss_metric_2")),
    }
}

/// The wrappers' versions, outermost first; returns the input add_layer's version (2 or 3).
fn read_header(reader: &mut Reader, specs: &[Spec]) -> Parse<i64> {
    let mut input_version = 0;
    for (depth, spec) in specs.iter().rev().enumerate() {
        let at = reader.pos;
        let version = reader.int()?;
        let innermost = depth + 1 == specs.len();
        let fits = if innermost {
            version == 2 || version == 3
        } else {
            version == wrapper_version(*spec)
        };
        if !fits {
            return Err(format!(
                "wrapper {depth} (outermost first) has version {version} at byte {at}: \
                 not the face ResNet's layer sequence ({spec:?} expected)"
            ));
        }
        input_version = version;
    }
    Ok(input_version)
}

/// `input_rgb_image_sized`: the R, G, B means and the chip size.
fn read_input_layer(reader: &mut Reader) -> Parse<InputLayer> {
    let at = reader.pos;
    let kind = reader.string()?;
    if kind != "input_rgb_image_sized" {
        return Err(format!(
            "input layer {kind:?} at byte {at}, expected input_rgb_image_sized"
        ));
    }
    let mut mean_rgb = [0.0; 3];
    for mean in &mut mean_rgb {
        *mean = reader.scalar()? as f32;
    }
    let rows = reader.size()?;
    let cols = reader.size()?;
    Ok(InputLayer {
        mean_rgb,
        rows,
        cols,
    })
}

/// Channel counts remembered per tag while checking the layers, so that skips and adds
/// know what they bring back.
#[derive(Default)]
struct Channels {
    current: usize,
    tags: [usize; 3],
}

impl Channels {
    fn tag(&self, tag: u8) -> usize {
        self.tags.get(usize::from(tag)).copied().unwrap_or(0)
    }
}

/// The layer bodies, input-first, each followed by its add_layer's state (bools, tensors).
fn read_bodies(reader: &mut Reader, specs: &[Spec], input_version: i64) -> Parse<Vec<Layer>> {
    let mut layers = Vec::with_capacity(specs.len());
    let mut channels = Channels {
        current: 3,
        ..Channels::default()
    };
    for (index, spec) in specs.iter().enumerate() {
        let layer = match *spec {
            Spec::Tag(tag) => {
                if let Some(slot) = channels.tags.get_mut(usize::from(tag)) {
                    *slot = channels.current;
                }
                Layer::Tag(tag)
            }
            Spec::Skip(tag) => {
                channels.current = channels.tag(tag);
                Layer::Skip(tag)
            }
            _ => {
                let at = reader.pos;
                let layer = read_details(reader, *spec, &mut channels)
                    .map_err(|reason| format!("layer {index} (body at byte {at}): {reason}"))?;
                read_layer_state(reader, index == 0, input_version)?;
                layer
            }
        };
        layers.push(layer);
    }
    Ok(layers)
}

/// What `add_layer` writes after the details: 3 bools and 3 tensors (empty in a saved
/// model: gradients and cached outputs), plus the sample expansion factor for the
/// version-3 add_layer over the input. None of it matters for inference.
fn read_layer_state(reader: &mut Reader, innermost: bool, input_version: i64) -> Parse<()> {
    for _ in 0..3 {
        reader.bool()?;
    }
    for _ in 0..3 {
        reader.tensor()?;
    }
    if innermost && input_version == 3 {
        reader.int()?;
    }
    Ok(())
}

/// One layer's details: the kind string, then what that kind stores; checked against `spec`.
fn read_details(reader: &mut Reader, spec: Spec, channels: &mut Channels) -> Parse<Layer> {
    let kind = reader.string()?;
    let layer = match (spec, kind.as_str()) {
        (Spec::Conv { .. }, "con_4") => Layer::Conv(read_conv(reader, spec, channels.current)?),
        (Spec::Affine, "affine_") => Layer::Affine(read_affine(reader, channels.current)?),
        (Spec::Relu, "relu_") => Layer::Relu,
        (Spec::AddPrev(tag), "add_prev_") => Layer::AddPrev(tag),
        (Spec::MaxPool { .. }, "max_pool_2") => Layer::MaxPool(read_pool(reader, spec)?),
        (Spec::AvgPool { .. }, "avg_pool_2") => Layer::AvgPool(read_pool(reader, spec)?),
        (Spec::Fc { .. }, "fc_2") => Layer::Fc(read_fc(reader, spec, channels.current)?),
        _ => return Err(format!("layer kind {kind:?}, expected {spec:?}")),
    };
    match &layer {
        Layer::Conv(conv) => channels.current = conv.shape[0],
        Layer::AddPrev(tag) => channels.current = channels.current.max(channels.tag(*tag)),
        _ => {}
    }
    Ok(layer)
}

/// `con_4`: params (filters then biases), num_filters, nr, nc, strides, paddings, the two
/// alias tensors and four learning-rate/weight-decay multipliers.
fn read_conv(reader: &mut Reader, spec: Spec, in_channels: usize) -> Parse<Conv> {
    let Spec::Conv {
        filters,
        size,
        stride,
    } = spec
    else {
        return Err(format!("internal: {spec:?} is not a conv"));
    };
    let (_, params) = reader.tensor()?;
    let mut header = [0usize; 7];
    for value in &mut header {
        *value = reader.size()?;
    }
    let pad = default_padding(size, stride);
    let expected = [filters, size, size, stride, stride, pad, pad];
    if header != expected {
        return Err(format!(
            "con_ (num_filters, nr, nc, stride_y, stride_x, padding_y, padding_x) = {header:?}, \
             expected {expected:?}"
        ));
    }
    let shape = [filters, in_channels, size, size];
    expect_alias(reader, "con_ filters", shape)?;
    expect_alias(reader, "con_ biases", [1, filters, 1, 1])?;
    skip_scalars(reader, 4)?;
    let (filters_part, biases) = split_params(params, shape.iter().product(), filters, "con_")?;
    Ok(Conv {
        filters: filters_part,
        biases,
        shape,
        stride: [stride; 2],
        padding: [pad; 2],
    })
}

/// `affine_`: params (gamma then beta), two alias tensors, mode 0 (CONV_MODE: per channel).
fn read_affine(reader: &mut Reader, channels: usize) -> Parse<Affine> {
    let (_, params) = reader.tensor()?;
    expect_alias(reader, "affine_ gamma", [1, channels, 1, 1])?;
    expect_alias(reader, "affine_ beta", [1, channels, 1, 1])?;
    let mode = reader.int()?;
    if mode != 0 {
        return Err(format!("affine_ mode {mode}, expected 0 (CONV_MODE)"));
    }
    let (gamma, beta) = split_params(params, channels, channels, "affine_")?;
    Ok(Affine { gamma, beta })
}

/// `max_pool_2` / `avg_pool_2`: nr, nc, stride_y, stride_x, padding_y, padding_x.
fn read_pool(reader: &mut Reader, spec: Spec) -> Parse<Pool> {
    let (Spec::MaxPool { size, stride } | Spec::AvgPool { size, stride }) = spec else {
        return Err(format!("internal: {spec:?} is not a pool"));
    };
    let mut header = [0usize; 6];
    for value in &mut header {
        *value = reader.size()?;
    }
    let pad = default_padding(size, stride);
    let expected = [size, size, stride, stride, pad, pad];
    // avg_pool_everything stores nr = nc = 0, stride 1, padding 0.
    let expected = if size == 0 {
        [0, 0, 1, 1, 0, 0]
    } else {
        expected
    };
    if header != expected {
        return Err(format!(
            "pool (nr, nc, stride_y, stride_x, padding_y, padding_x) = {header:?}, \
             expected {expected:?}"
        ));
    }
    Ok(Pool {
        size: [size; 2],
        stride: [stride; 2],
        padding: [pad; 2],
    })
}

/// `fc_2`: num_outputs, num_inputs, params, weights/biases aliases, bias mode 1
/// (FC_NO_BIAS), four multipliers.
fn read_fc(reader: &mut Reader, spec: Spec, inputs: usize) -> Parse<Fc> {
    let Spec::Fc { outputs } = spec else {
        return Err(format!("internal: {spec:?} is not an fc"));
    };
    let header = [reader.size()?, reader.size()?];
    if header != [outputs, inputs] {
        return Err(format!(
            "fc_ (num_outputs, num_inputs) = {header:?}, expected [{outputs}, {inputs}]"
        ));
    }
    let (_, weights) = reader.tensor()?;
    expect_alias(reader, "fc_ weights", [inputs, outputs, 1, 1])?;
    expect_alias(reader, "fc_ biases", [0, 0, 0, 0])?;
    let mode = reader.int()?;
    if mode != 1 {
        return Err(format!("fc_ bias mode {mode}, expected 1 (FC_NO_BIAS)"));
    }
    skip_scalars(reader, 4)?;
    if weights.len() != inputs * outputs {
        return Err(format!(
            "fc_ params hold {} floats, expected {}",
            weights.len(),
            inputs * outputs
        ));
    }
    check_finite(&weights, "fc_")?;
    Ok(Fc {
        weights,
        inputs,
        outputs,
    })
}

fn expect_alias(reader: &mut Reader, what: &str, expected: [usize; 4]) -> Parse<()> {
    let shape = reader.alias_tensor()?;
    if shape != expected {
        return Err(format!("{what} shape {shape:?}, expected {expected:?}"));
    }
    Ok(())
}

fn skip_scalars(reader: &mut Reader, count: usize) -> Parse<()> {
    for _ in 0..count {
        reader.scalar()?;
    }
    Ok(())
}

/// Splits a layer's `params` into its first `first` and its last `second` floats, which
/// must be all of them, and all finite (a NaN weight would silently poison every descriptor).
fn split_params(
    mut params: Vec<f32>,
    first: usize,
    second: usize,
    what: &str,
) -> Parse<(Vec<f32>, Vec<f32>)> {
    if params.len() != first + second {
        return Err(format!(
            "{what} params hold {} floats, expected {first} + {second}",
            params.len()
        ));
    }
    check_finite(&params, what)?;
    let tail = params.split_off(first);
    Ok((params, tail))
}

fn check_finite(values: &[f32], what: &str) -> Parse<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(format!("{what} param {index} is not finite")),
        None => Ok(()),
    }
}

/// A cursor over the file's bytes; every read checks the length first.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, count: usize) -> Parse<&'a [u8]> {
        let slice = self
            .pos
            .checked_add(count)
            .and_then(|end| self.bytes.get(self.pos..end))
            .ok_or_else(|| {
                format!(
                    "truncated: {count} bytes wanted at byte {}, {} left",
                    self.pos,
                    self.remaining()
                )
            })?;
        self.pos += count;
        Ok(slice)
    }

    fn byte(&mut self) -> Parse<u8> {
        let at = self.pos;
        let byte = self
            .bytes
            .get(at)
            .copied()
            .ok_or_else(|| format!("truncated: 1 byte wanted at byte {at}, 0 left"))?;
        self.pos += 1;
        Ok(byte)
    }

    /// dlib's packed integer: control byte (sign in bit 7, length in bits 0..3), magnitude LE.
    fn int(&mut self) -> Parse<i64> {
        let at = self.pos;
        let control = self.byte()?;
        let len = usize::from(control & 0x0f);
        if control & 0x70 != 0 || len > 8 {
            return Err(format!(
                "bad integer control byte {control:#04x} at byte {at}"
            ));
        }
        let mut magnitude = [0u8; 8];
        for (dst, src) in magnitude.iter_mut().zip(self.take(len)?) {
            *dst = *src;
        }
        let magnitude = i64::try_from(u64::from_le_bytes(magnitude))
            .map_err(|_| format!("integer at byte {at} does not fit in 63 bits"))?;
        Ok(if control & 0x80 != 0 {
            -magnitude
        } else {
            magnitude
        })
    }

    /// An integer that must be a size or count (not negative).
    fn size(&mut self) -> Parse<usize> {
        let at = self.pos;
        let value = self.int()?;
        usize::try_from(value).map_err(|_| format!("negative size {value} at byte {at}"))
    }

    fn bool(&mut self) -> Parse<bool> {
        let at = self.pos;
        match self.byte()? {
            b'1' => Ok(true),
            b'0' => Ok(false),
            other => Err(format!("bad bool byte {other:#04x} at byte {at}")),
        }
    }

    fn string(&mut self) -> Parse<String> {
        let at = self.pos;
        let len = self.size()?;
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| format!("string at byte {at} is not UTF-8"))
    }

    /// `float_details`: mantissa, then exponent; 32000/32001/32002 = +inf/−inf/NaN.
    fn scalar(&mut self) -> Parse<f64> {
        let at = self.pos;
        let mantissa = self.int()?;
        let exponent = self.int()?;
        Ok(match exponent {
            32000 => f64::INFINITY,
            32001 => f64::NEG_INFINITY,
            32002 => f64::NAN,
            _ => {
                let exponent = i32::try_from(exponent)
                    .map_err(|_| format!("float exponent {exponent} out of range at byte {at}"))?;
                mantissa as f64 * 2f64.powi(exponent)
            }
        })
    }

    fn shape(&mut self) -> Parse<[usize; 4]> {
        Ok([self.size()?, self.size()?, self.size()?, self.size()?])
    }

    /// `resizable_tensor`: version, 4 sizes, then the floats (raw LE f32 in version 2).
    fn tensor(&mut self) -> Parse<([usize; 4], Vec<f32>)> {
        let at = self.pos;
        let version = self.int()?;
        let shape = self.shape()?;
        let count = shape
            .iter()
            .try_fold(1usize, |acc, &dim| acc.checked_mul(dim))
            .ok_or_else(|| format!("tensor {shape:?} at byte {at} is too large"))?;
        let values = match version {
            2 => {
                let bytes = count
                    .checked_mul(4)
                    .ok_or_else(|| format!("tensor {shape:?} at byte {at} is too large"))?;
                self.take(bytes)?
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            }
            1 => self.scalar_floats(count)?,
            _ => return Err(format!("tensor version {version} at byte {at}")),
        };
        Ok((shape, values))
    }

    /// Version-1 tensor data: one scalar (at least 2 bytes) per float.
    fn scalar_floats(&mut self, count: usize) -> Parse<Vec<f32>> {
        if count > self.remaining() / 2 {
            return Err(format!(
                "truncated: {count} scalar floats wanted at byte {}, {} bytes left",
                self.pos,
                self.remaining()
            ));
        }
        (0..count)
            .map(|_| self.scalar().map(|v| v as f32))
            .collect()
    }

    /// `alias_tensor`: version 1 and the 4 sizes of a view into `params`.
    fn alias_tensor(&mut self) -> Parse<[usize; 4]> {
        let at = self.pos;
        let version = self.int()?;
        if version != 1 {
            return Err(format!("alias_tensor version {version} at byte {at}"));
        }
        self.shape()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> Reader<'_> {
        Reader::new(bytes)
    }

    #[test]
    fn integers_decode_as_in_the_notes() {
        assert_eq!(reader(&[0x00]).int(), Ok(0));
        assert_eq!(reader(&[0x01, 0x02]).int(), Ok(2));
        assert_eq!(reader(&[0x02, 0x80, 0x12]).int(), Ok(4736));
        assert_eq!(reader(&[0x81, 0x1c]).int(), Ok(-28));
        assert!(reader(&[0x10, 0x00]).int().is_err(), "bits 4..6 must be 0");
        assert!(reader(&[0x09]).int().is_err(), "at most 8 magnitude bytes");
        assert!(reader(&[0x02, 0x80]).int().is_err(), "truncated magnitude");
        assert!(reader(&[0x81, 0x1c]).size().is_err(), "negative size");
    }

    #[test]
    fn float_scalar_is_mantissa_then_exponent() {
        let value = reader(&[0x03, 0x0a, 0xd7, 0xa3, 0x81, 0x1c])
            .scalar()
            .unwrap();
        assert_eq!(value, 10_737_418.0 * 2f64.powi(-28));
        assert!((value - 0.04).abs() < 1e-8, "{value}");
        assert_eq!(value as f32, 0.04f32);
        let inf = reader(&[0x01, 0x01, 0x02, 0x00, 0x7d]).scalar().unwrap();
        assert_eq!(inf, f64::INFINITY);
    }

    #[test]
    fn bools_strings_and_tensors() {
        assert_eq!(reader(b"1").bool(), Ok(true));
        assert_eq!(reader(b"0").bool(), Ok(false));
        assert!(reader(b"x").bool().is_err());
        assert_eq!(reader(b"\x01\x05relu_").string().as_deref(), Ok("relu_"));
        assert!(reader(b"\x01\x05rel").string().is_err());

        let mut bytes = vec![0x01, 0x02, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01, 0x01, 0x01];
        bytes.extend(1.5f32.to_le_bytes());
        bytes.extend((-2.0f32).to_le_bytes());
        let (shape, values) = reader(&bytes).tensor().unwrap();
        assert_eq!(shape, [1, 2, 1, 1]);
        assert_eq!(values, vec![1.5, -2.0]);
        assert!(reader(&bytes[..bytes.len() - 1]).tensor().is_err());

        // Sizes whose product overflows must not allocate or panic.
        let huge = [
            0x01, 0x02, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        let mut bytes = huge[..2].to_vec();
        for _ in 0..4 {
            bytes.extend(&huge[2..]);
        }
        assert!(reader(&bytes).tensor().is_err());
    }

    #[test]
    fn architecture_has_the_files_130_layers_and_header() {
        let specs = architecture();
        assert_eq!(specs.len(), 130);
        let header: String = specs
            .iter()
            .rev()
            .map(|s| wrapper_version(*s).to_string())
            .collect();
        // From scripts/inspect_dlib_dat.py on the real file (its last digit, 3, is the
        // add_layer over the input, which this reader accepts as 2 or 3).
        let from_file = "2222211222221222222212222222122211222221222222212222222122211222221222222212222222122222221222112222212222222122222221222222212223";
        assert_eq!(header[..129], from_file[..129]);
        let convs = specs
            .iter()
            .filter(|s| matches!(s, Spec::Conv { .. }))
            .count();
        assert_eq!(convs, 29);
    }

    /// Writes a file in dlib's format with the face ResNet's architecture and small
    /// deterministic weights: the reader's mirror image, to test it without the real file.
    mod writer {
        use super::super::*;

        pub fn int(out: &mut Vec<u8>, value: i64) {
            let magnitude = value.unsigned_abs().to_le_bytes();
            let len = magnitude.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            let sign = if value < 0 { 0x80 } else { 0 };
            out.push(sign | len as u8);
            out.extend(&magnitude[..len]);
        }

        pub fn string(out: &mut Vec<u8>, text: &str) {
            int(out, text.len() as i64);
            out.extend(text.as_bytes());
        }

        /// Exact for values with few mantissa bits (all the test needs).
        pub fn scalar(out: &mut Vec<u8>, value: f64) {
            let mut mantissa = value;
            let mut exponent = 0i64;
            while mantissa.fract() != 0.0 {
                mantissa *= 2.0;
                exponent -= 1;
            }
            int(out, mantissa as i64);
            int(out, exponent);
        }

        pub fn tensor(out: &mut Vec<u8>, shape: [usize; 4], values: &[f32]) {
            int(out, 2);
            for dim in shape {
                int(out, dim as i64);
            }
            for value in values {
                out.extend(value.to_le_bytes());
            }
        }

        pub fn alias(out: &mut Vec<u8>, shape: [usize; 4]) {
            int(out, 1);
            for dim in shape {
                int(out, dim as i64);
            }
        }

        fn ramp(count: usize, scale: f32) -> Vec<f32> {
            (0..count).map(|i| (i % 7) as f32 * scale).collect()
        }

        fn body(out: &mut Vec<u8>, spec: Spec, channels: &mut usize, tags: &mut [usize; 3]) {
            match spec {
                Spec::Conv {
                    filters,
                    size,
                    stride,
                } => {
                    let n = filters * *channels * size * size;
                    string(out, "con_4");
                    tensor(out, [n + filters, 1, 1, 1], &ramp(n + filters, 0.25));
                    let pad = default_padding(size, stride);
                    for v in [filters, size, size, stride, stride, pad, pad] {
                        int(out, v as i64);
                    }
                    alias(out, [filters, *channels, size, size]);
                    alias(out, [1, filters, 1, 1]);
                    for _ in 0..4 {
                        scalar(out, 1.0);
                    }
                    *channels = filters;
                }
                Spec::Affine => {
                    string(out, "affine_");
                    tensor(out, [2 * *channels, 1, 1, 1], &ramp(2 * *channels, 0.5));
                    alias(out, [1, *channels, 1, 1]);
                    alias(out, [1, *channels, 1, 1]);
                    int(out, 0);
                }
                Spec::Relu => string(out, "relu_"),
                Spec::AddPrev(tag) => {
                    string(out, "add_prev_");
                    *channels = (*channels).max(tags[usize::from(tag)]);
                }
                Spec::MaxPool { size, stride } | Spec::AvgPool { size, stride } => {
                    let kind = if matches!(spec, Spec::MaxPool { .. }) {
                        "max_pool_2"
                    } else {
                        "avg_pool_2"
                    };
                    string(out, kind);
                    let pad = default_padding(size, stride);
                    let (size, stride) = if size == 0 { (0, 1) } else { (size, stride) };
                    let pad = if size == 0 { 0 } else { pad };
                    for v in [size, size, stride, stride, pad, pad] {
                        int(out, v as i64);
                    }
                }
                Spec::Fc { outputs } => {
                    string(out, "fc_2");
                    int(out, outputs as i64);
                    int(out, *channels as i64);
                    let n = *channels * outputs;
                    tensor(out, [n, 1, 1, 1], &ramp(n, 0.125));
                    alias(out, [*channels, outputs, 1, 1]);
                    alias(out, [0, 0, 0, 0]);
                    int(out, 1);
                    for _ in 0..4 {
                        scalar(out, 0.0);
                    }
                }
                Spec::Tag(_) | Spec::Skip(_) => unreachable!(),
            }
        }

        pub fn face_net() -> Vec<u8> {
            let specs = architecture();
            let mut out = Vec::new();
            int(&mut out, 1);
            string(&mut out, "loss_metric_2");
            scalar(&mut out, 0.04);
            scalar(&mut out, 0.6);
            for (i, spec) in specs.iter().enumerate().rev() {
                int(&mut out, if i == 0 { 3 } else { wrapper_version(*spec) });
            }
            string(&mut out, "input_rgb_image_sized");
            for mean in [122.75, 117.0, 104.25] {
                scalar(&mut out, mean);
            }
            int(&mut out, 150);
            int(&mut out, 150);
            let (mut channels, mut tags) = (3usize, [0usize; 3]);
            for (i, spec) in specs.iter().enumerate() {
                match *spec {
                    Spec::Tag(tag) => tags[usize::from(tag)] = channels,
                    Spec::Skip(tag) => channels = tags[usize::from(tag)],
                    _ => {
                        body(&mut out, *spec, &mut channels, &mut tags);
                        out.extend(b"110");
                        for _ in 0..3 {
                            tensor(&mut out, [0, 0, 0, 0], &[]);
                        }
                        if i == 0 {
                            int(&mut out, 1);
                        }
                    }
                }
            }
            out
        }
    }

    fn parse_bytes(bytes: &[u8]) -> Result<DlibNet> {
        parse(Path::new("test.dat"), bytes)
    }

    #[test]
    fn writer_encodes_the_notes_examples() {
        let mut out = Vec::new();
        writer::int(&mut out, 4736);
        writer::int(&mut out, -28);
        writer::scalar(&mut out, 0.5);
        assert_eq!(out, [0x02, 0x80, 0x12, 0x81, 0x1c, 0x01, 0x01, 0x81, 0x01]);
    }

    #[test]
    fn a_synthetic_face_net_parses_to_the_end() {
        let net = parse_bytes(&writer::face_net()).unwrap();
        assert_eq!(net.input.mean_rgb, [122.75, 117.0, 104.25]);
        assert_eq!((net.input.rows, net.input.cols), (150, 150));
        assert_eq!(net.layers.len(), 130);
        let Some(Layer::Conv(first)) = net.layers.first() else {
            panic!("first layer {:?}", net.layers.first());
        };
        assert_eq!(first.shape, [32, 3, 7, 7]);
        assert_eq!((first.stride, first.padding), ([2, 2], [0, 0]));
        assert_eq!(first.biases.len(), 32);
        assert_eq!(first.filters[..3], [0.0, 0.25, 0.5]);
        let Some(Layer::Fc(fc)) = net.layers.last() else {
            panic!("last layer {:?}", net.layers.last());
        };
        assert_eq!(
            (fc.inputs, fc.outputs, fc.weights.len()),
            (256, 128, 256 * 128)
        );
        assert_eq!(net.layers.get(34), Some(&Layer::Tag(2)));
        assert_eq!(net.layers.get(35), Some(&Layer::Skip(1)));
        assert_eq!(net.layers.get(37), Some(&Layer::AddPrev(2)));
    }

    #[test]
    fn a_truncated_file_is_a_format_error_at_every_cut() {
        let bytes = writer::face_net();
        let len = bytes.len();
        // The loss, the header, the input layer, inside the first conv's floats, a
        // layer's state bools, the fc's last float, the very last byte.
        for cut in [0, 1, 20, 150, 300, 400, 19_400, 19_760, len - 100, len - 1] {
            let error = parse_bytes(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(error, Error::ModelFormat { .. }),
                "cut at {cut}: {error}"
            );
            assert!(error.to_string().contains("dlib .dat"), "{error}");
        }
    }

    #[test]
    fn trailing_bytes_and_garbage_are_format_errors() {
        let mut bytes = writer::face_net();
        bytes.push(0);
        let error = parse_bytes(&bytes).unwrap_err();
        assert!(error.to_string().contains("1 bytes left"), "{error}");

        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(matches!(
            parse_bytes(&garbage),
            Err(Error::ModelFormat { .. })
        ));
        assert!(parse_bytes(&[0xff; 64]).is_err());
        assert!(parse_bytes(b"").is_err());
    }

    #[test]
    fn another_architecture_is_refused() {
        let bytes = writer::face_net();
        // Change the first conv's filter count (header byte after its params tensor).
        let mut changed = bytes.clone();
        let needle = b"con_4";
        let start = changed
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        // "con_4", tensor version, 4 dims (1 + n), then the floats: find num_filters = 32
        // right after the floats by re-reading.
        let mut reader = Reader::new(&changed[start + needle.len()..]);
        reader.tensor().unwrap();
        let at = start + needle.len() + reader.pos;
        assert_eq!(changed[at..at + 2], [0x01, 32]);
        changed[at + 1] = 64;
        let error = parse_bytes(&changed).unwrap_err().to_string();
        assert!(error.contains("num_filters"), "{error}");

        // A relu where an affine belongs.
        let mut changed = bytes;
        let needle = b"affine_";
        let start = changed
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        changed[start..start + needle.len()].copy_from_slice(b"relu_xx");
        let error = parse_bytes(&changed).unwrap_err().to_string();
        assert!(error.contains("expected Affine"), "{error}");
    }

    #[test]
    fn the_real_model_parses_when_present() {
        let path = crate::weights::DLIB_RESNET
            .path_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/weights"));
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("skipped: {} not found", path.display());
            return;
        };
        let net = parse(&path, &bytes).unwrap();
        let expected = [122.782f32, 117.001, 104.298];
        for (mean, want) in net.input.mean_rgb.iter().zip(expected) {
            assert!((mean - want).abs() < 1e-4, "{mean} vs {want}");
        }
        let floats: usize = net
            .layers
            .iter()
            .map(|layer| match layer {
                Layer::Conv(c) => c.filters.len() + c.biases.len(),
                Layer::Affine(a) => a.gamma.len() + a.beta.len(),
                Layer::Fc(f) => f.weights.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(floats, 5_614_592);
        // A cut in the middle of the last conv's weights.
        assert!(parse(&path, &bytes[..21_000_000]).is_err());
    }
}
