//! Wall time spent in each layer kernel during training steps, for `album bench train`'s
//! per-op table (beside PyTorch's profiler figures for the same ATen operations), so a
//! slowdown points at its operation.
//!
//! Off by default: a disabled timer costs one relaxed atomic load. The figures are wall
//! time on the thread that calls the kernel, which is exact for the CPU backends (their
//! kernels return when done); on CUDA they would only time the launches.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The timed kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ConvForward,
    ConvBackward,
    BatchNormForward,
    BatchNormBackward,
    ReluForward,
    ReluBackward,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::ConvForward,
        Op::ConvBackward,
        Op::BatchNormForward,
        Op::BatchNormBackward,
        Op::ReluForward,
        Op::ReluBackward,
    ];

    /// How the table names it.
    pub fn label(self) -> &'static str {
        match self {
            Op::ConvForward => "conv forward",
            Op::ConvBackward => "conv backward",
            Op::BatchNormForward => "batch norm forward",
            Op::BatchNormBackward => "batch norm backward",
            Op::ReluForward => "ReLU forward",
            Op::ReluBackward => "ReLU backward",
        }
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
static CALLS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

/// Starts (or stops) timing kernels; starting clears what was recorded.
pub fn enable(on: bool) {
    if on {
        for (nanos, calls) in NANOS.iter().zip(&CALLS) {
            nanos.store(0, Ordering::Relaxed);
            calls.store(0, Ordering::Relaxed);
        }
    }
    ENABLED.store(on, Ordering::Relaxed);
}

/// Seconds and calls recorded per op since [`enable`], in [`Op::ALL`] order.
pub fn totals() -> [(Op, f64, u64); 6] {
    Op::ALL.map(|op| {
        let i = op as usize;
        (
            op,
            NANOS[i].load(Ordering::Relaxed) as f64 * 1e-9,
            CALLS[i].load(Ordering::Relaxed),
        )
    })
}

/// Runs `kernel`, adding its wall time to `op` when timing is on.
pub(super) fn time<T>(op: Op, kernel: impl FnOnce() -> T) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return kernel();
    }
    let started = Instant::now();
    let result = kernel();
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    NANOS[op as usize].fetch_add(nanos, Ordering::Relaxed);
    CALLS[op as usize].fetch_add(1, Ordering::Relaxed);
    result
}
