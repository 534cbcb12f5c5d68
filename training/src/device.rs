//! Compute devices.
//!
//! burn 0.22 has no backend type parameter: a [`Device`] value picks the backend when
//! the program runs. smart-album knows three:
//!
//! | name       | backend                         | build                          |
//! |------------|---------------------------------|--------------------------------|
//! | `flex`     | burn-flex, pure Rust, SIMD+rayon | always                         |
//! | `tch-cpu`  | LibTorch on the CPU (burn-tch)   | `--features tch`               |
//! | `tch-cuda` | LibTorch on CUDA GPU 0 (or `tch-cuda:N`) | `--features tch`, built against a CUDA PyTorch |
//!
//! [`check`] runs the layer operations SE-ResNeXt is made of (a grouped convolution, one
//! burn has had bugs in, then batch norm and ReLU, all through [`crate::ops`]) forward
//! and backward on a device and on flex, and compares.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ops;
use crate::{Error, Result};

/// A device named the way configs and the command line name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Flex,
    TchCpu,
    TchCuda(usize),
}

impl DeviceKind {
    /// Names accepted by [`FromStr`], for help texts.
    pub const NAMES: &'static str = "flex, tch-cpu, tch-cuda, tch-cuda:N";

    /// Whether this build can create the device at all.
    pub fn is_compiled_in(self) -> bool {
        match self {
            DeviceKind::Flex => true,
            DeviceKind::TchCpu | DeviceKind::TchCuda(_) => cfg!(feature = "tch"),
        }
    }

    /// Relative difference from flex that [`check`] accepts by default: float32 rounding
    /// on CPUs (measured ~1e-6 for LibTorch CPU), but 1e-3 on CUDA, where LibTorch lets
    /// cuDNN run float32 convolutions in TF32 (10-bit mantissa) by default, as PyTorch
    /// does: measured 2.6e-4 on an H100.
    pub fn default_tolerance(self) -> f32 {
        match self {
            DeviceKind::Flex | DeviceKind::TchCpu => 1e-4,
            DeviceKind::TchCuda(_) => 1e-3,
        }
    }

    /// The burn device, without autodiff.
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            // burn-tch is marked deprecated upstream; it is our GPU route
            DeviceKind::TchCpu => Ok(Device::libtorch()),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            DeviceKind::TchCuda(index) => {
                // burn-tch panics on a missing GPU; ask LibTorch first and say why instead.
                let visible = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
                if index >= visible {
                    return Err(Error::Device {
                        name: self.to_string(),
                        message: format!(
                            "LibTorch sees {visible} CUDA device(s): is this a GPU machine with its \
                             driver, and was the binary built against a CUDA PyTorch (README, \
                             \"GPU and LibTorch\")?"
                        ),
                    });
                }
                Ok(Device::libtorch_cuda(index))
            }
            #[cfg(not(feature = "tch"))]
            DeviceKind::TchCpu | DeviceKind::TchCuda(_) => Err(Error::Device {
                name: self.to_string(),
                message: "this album binary was built without LibTorch; rebuild with \
                          `--features tch` (see README, \"GPU and LibTorch\")"
                    .into(),
            }),
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKind::Flex => f.write_str("flex"),
            DeviceKind::TchCpu => f.write_str("tch-cpu"),
            DeviceKind::TchCuda(0) => f.write_str("tch-cuda"),
            DeviceKind::TchCuda(i) => write!(f, "tch-cuda:{i}"),
        }
    }
}

impl FromStr for DeviceKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let unknown = || Error::Device {
            name: text.to_owned(),
            message: format!("unknown device; expected one of {}", DeviceKind::NAMES),
        };
        match text {
            "flex" => Ok(DeviceKind::Flex),
            "tch-cpu" => Ok(DeviceKind::TchCpu),
            "tch-cuda" => Ok(DeviceKind::TchCuda(0)),
            _ => match text.strip_prefix("tch-cuda:") {
                Some(index) => index
                    .parse()
                    .map(DeviceKind::TchCuda)
                    .map_err(|_| unknown()),
                None => Err(unknown()),
            },
        }
    }
}

/// Shape of the grouped convolution that [`check`] runs: one ResNeXt-50 stage-2
/// 3×3 convolution (128 channels in 32 groups of 4) on a batch of 28×28 maps.
#[derive(Debug, Clone, Copy)]
pub struct ConvCase {
    pub batch: usize,
    pub channels: usize,
    pub groups: usize,
    pub side: usize,
}

impl Default for ConvCase {
    fn default() -> Self {
        ConvCase {
            batch: 8,
            channels: 128,
            groups: 32,
            side: 28,
        }
    }
}

/// What [`check`] measured.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub device: DeviceKind,
    /// Largest relative difference from flex, ‖device − flex‖ / ‖flex‖, over the output
    /// and the gradients of the input, the convolution weight, γ and β.
    pub max_rel_diff: f32,
    /// Median wall time of one forward + backward on the device.
    pub step_time: Duration,
}

/// Runs a grouped convolution, batch norm (training mode) and ReLU forward and backward
/// on `kind` and on flex with the same seeded inputs, through the project's layer
/// operations, and fails if any of the five results differs relatively by more than
/// `tolerance` (relative, because the weight gradient sums thousands of products and
/// its entries run into the hundreds: float32 rounding then shows up in absolute terms).
pub fn check(kind: DeviceKind, case: ConvCase, tolerance: f32) -> Result<CheckReport> {
    let device = kind.device()?;
    let inputs = ConvInputs::seeded(case, 7);
    let reference = inputs.run(&Device::flex())?;
    let result = inputs.run(&device)?;
    let max_rel_diff = reference
        .iter()
        .zip(&result)
        .map(|(expected, got)| relative_difference(got, expected))
        .fold(0f32, f32::max);
    if max_rel_diff.is_nan() || max_rel_diff > tolerance {
        return Err(Error::Check(format!(
            "grouped conv on {kind} differs from flex by {max_rel_diff:e} relative \
             (tolerance {tolerance:e})"
        )));
    }
    let step_time = median_time(5, || inputs.run(&device).map(drop))?;
    Ok(CheckReport {
        device: kind,
        max_rel_diff,
        step_time,
    })
}

struct ConvInputs {
    case: ConvCase,
    input: Vec<f32>,
    weight: Vec<f32>,
}

impl ConvInputs {
    fn seeded(case: ConvCase, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut values = |n: usize| (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let per_group = case.channels / case.groups;
        ConvInputs {
            case,
            input: values(case.batch * case.channels * case.side * case.side),
            weight: values(case.channels * per_group * 9),
        }
    }

    /// Output, and the gradients of the input, the weight, γ and β, of
    /// `sum(relu(bn(conv(x, w)))²)`, on the host (γ = 1, β = 0.1).
    fn run(&self, device: &Device) -> Result<[Vec<f32>; 5]> {
        let c = self.case;
        let device = device.clone().autodiff();
        let x = Tensor::<4>::from_data(
            TensorData::new(self.input.clone(), [c.batch, c.channels, c.side, c.side]),
            &device,
        )
        .require_grad();
        let w = Tensor::<4>::from_data(
            TensorData::new(
                self.weight.clone(),
                [c.channels, c.channels / c.groups, 3, 3],
            ),
            &device,
        )
        .require_grad();
        let gamma = Tensor::<1>::ones([c.channels], &device).require_grad();
        let beta = Tensor::<1>::full([c.channels], 0.1, &device).require_grad();
        let y = ops::conv2d(
            x.clone(),
            w.clone(),
            None,
            ConvOptions::new([1, 1], [1, 1], [1, 1], c.groups),
        );
        let running = [
            Tensor::<1>::zeros([c.channels], &device),
            Tensor::ones([c.channels], &device),
        ];
        let z = ops::batch_norm_train(y, [gamma.clone(), beta.clone()], running, 0.1, 1e-5, true)
            .output;
        let grads = (z.clone() * z.clone()).sum().backward();
        fn host<const D: usize>(t: Option<Tensor<D>>, what: &str) -> Result<Vec<f32>> {
            let t = t.ok_or_else(|| Error::Check(format!("no {what} after backward")))?;
            t.into_data()
                .try_to_vec::<f32>()
                .map_err(|e| Error::Check(format!("reading {what} back: {e:?}")))
        }
        Ok([
            host(Some(z), "output")?,
            host(x.grad(&grads), "input gradient")?,
            host(w.grad(&grads), "weight gradient")?,
            host(gamma.grad(&grads), "γ gradient")?,
            host(beta.grad(&grads), "β gradient")?,
        ])
    }
}

/// ‖got − expected‖ / ‖expected‖; infinite when the lengths differ, NaN stays NaN.
fn relative_difference(got: &[f32], expected: &[f32]) -> f32 {
    if got.len() != expected.len() {
        return f32::INFINITY;
    }
    let norm = |values: &mut dyn Iterator<Item = f32>| values.map(|v| v * v).sum::<f32>().sqrt();
    let diff = norm(&mut got.iter().zip(expected).map(|(g, e)| g - e));
    diff / norm(&mut expected.iter().copied()).max(f32::MIN_POSITIVE)
}

fn median_time(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    f()?; // warm-up: kernel selection and allocator growth stay out of the figure
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_round_trip() {
        for name in ["flex", "tch-cpu", "tch-cuda", "tch-cuda:3"] {
            assert_eq!(name.parse::<DeviceKind>().unwrap().to_string(), name);
        }
        assert!("cuda".parse::<DeviceKind>().is_err());
        assert!("tch-cuda:x".parse::<DeviceKind>().is_err());
    }

    #[test]
    fn flex_grouped_conv_check_passes_against_itself_and_gradients_are_not_empty() {
        let case = ConvCase {
            batch: 2,
            channels: 8,
            groups: 2,
            side: 6,
        };
        let outputs = ConvInputs::seeded(case, 1).run(&Device::flex()).unwrap();
        assert_eq!(outputs[0].len(), 2 * 8 * 6 * 6);
        assert_eq!(outputs[1].len(), 2 * 8 * 6 * 6);
        assert_eq!(outputs[2].len(), 8 * 4 * 9);
        assert_eq!(outputs[3].len(), 8);
        assert!(outputs.iter().flatten().all(|v| v.is_finite()));
        check(DeviceKind::Flex, case, 0.0).unwrap();
    }

    #[test]
    fn relative_difference_scales_with_the_reference_and_catches_nan_and_length() {
        assert_eq!(relative_difference(&[3.0, 4.0], &[3.0, 4.0]), 0.0);
        assert!((relative_difference(&[300.0, 401.0], &[300.0, 400.0]) - 0.002).abs() < 1e-6);
        assert!(relative_difference(&[f32::NAN], &[1.0]).is_nan());
        assert_eq!(relative_difference(&[1.0], &[1.0, 2.0]), f32::INFINITY);
    }

    #[cfg(not(feature = "tch"))]
    #[test]
    fn asking_for_libtorch_without_the_feature_says_how_to_get_it() {
        let err = DeviceKind::TchCpu.device().unwrap_err().to_string();
        assert!(err.contains("--features tch"), "{err}");
    }
}
