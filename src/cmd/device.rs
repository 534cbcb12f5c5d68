//! `album device check`: is this device usable, and does it agree with flex?

use album_training::device::{self, ConvCase, DeviceKind};

/// Run the layer operations (grouped convolution, batch norm, ReLU) forward and backward
/// on a device and compare them with flex.
#[derive(Debug, clap::Args)]
pub struct DeviceCheckArgs {
    /// Device to check: flex, tch-cpu, tch-cuda or tch-cuda:N.
    #[arg(long, default_value = "flex")]
    device: String,
    /// Largest relative difference from flex (‖device − flex‖ / ‖flex‖) that still passes
    /// [default: 1e-4 on CPUs, 1e-3 on CUDA, where convolutions run in TF32].
    #[arg(long)]
    tolerance: Option<f32>,
}

pub fn run(args: DeviceCheckArgs) -> anyhow::Result<()> {
    let kind: DeviceKind = args.device.parse()?;
    let case = ConvCase::default();
    println!(
        "grouped conv {}x{}x{}x{} ({} groups, 3x3) → batch norm → ReLU, forward + backward, \
         on {kind} vs flex",
        case.batch, case.channels, case.side, case.side, case.groups
    );
    let tolerance = args.tolerance.unwrap_or(kind.default_tolerance());
    let report = device::check(kind, case, tolerance)?;
    println!(
        "max relative difference from flex: {:.3e} (tolerance {tolerance:.0e})",
        report.max_rel_diff
    );
    println!(
        "median step time on {}: {:.2} ms",
        report.device,
        report.step_time.as_secs_f64() * 1e3
    );
    println!("ok");
    Ok(())
}
