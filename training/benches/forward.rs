//! Inference speed of every model family: one forward pass (no autodiff, batch norms on
//! their running statistics, dropout off) of each CPU config's model on the flex backend,
//! at batch 1 and batch 8, from a tensor already on the device to the logits back on the
//! host.
//!
//! `cargo bench -p album-training --bench forward` (about a minute on 2 cores);
//! `cargo bench -p album-training --bench forward -- --test` runs each case once, as a
//! smoke test; `-- se-resnext` (any substring) picks cases.
//!
//! - **What follows the configs.** Every `configs/cpu/*.toml` is loaded with
//!   [`TrainConfig::load`] and benchmarked with its `[model]` table (name, width, SE,
//!   head, auxiliary heads, dropout) at its `data.crop` side, so a config's change shows
//!   here without touching this file. The model is `ModelConfig::init` on
//!   `Device::flex()` (f32, as every CPU config trains), weights drawn after seeding the
//!   device with the config's `train.seed`; GoogLeNet's auxiliary heads are built but
//!   `Model::forward` skips them, as inference does.
//! - **What is timed.** `Model::forward` on one fixed `N(0, 1)` batch (seeded, drawn
//!   once, so no image preparation is timed) and the read-back of the logits to the host
//!   ([`host_f32`]): burn queues work on some backends, and the read-back is what forces
//!   it, exactly as `TrainedModel::predict` does. Parameters are created lazily, so one
//!   untimed forward pass materialises them before criterion starts.
//! - **Reading the figures.** criterion reports images/s (`Throughput::Elements` is the
//!   batch). Images/s at batch 8 over batch 1 shows the per-call overhead: a fixed cost
//!   per forward pass (op dispatch, allocation, thread start-up per kernel, and layers
//!   too small at batch 1 to fill both cores) is paid once per 8 images instead of once
//!   per image.
//! - **Speed targets live here, not in the tests.** Tests check that models compute the
//!   right thing; how fast they do it depends on the machine and its load, so it is
//!   measured and compared (criterion keeps the previous run under `target/criterion`
//!   and reports the change), never asserted.
//!
//! Sized for a 2-core machine: 10 samples, 1 s warm-up, 4 s measuring per case, flat
//! sampling (each sample runs the same number of passes, which suits passes of tens of
//! milliseconds). Command-line flags (`--sample-size`, `--measurement-time`, …) override
//! these.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use album_training::config::TrainConfig;
use album_training::models::Head;
use album_training::training::host_f32;
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// The configs whose models are measured: every `*.toml` here, in name order.
const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/cpu");

/// The batch sizes measured for every model.
const BATCHES: [usize; 2] = [1, 8];

fn cpu_configs() -> Vec<(PathBuf, TrainConfig)> {
    let dir = Path::new(CONFIG_DIR);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no *.toml under {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let config = TrainConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            (path, config)
        })
        .collect()
}

/// `forward/se-resnext50-w0.25-56px`, with `-no-se` or the head where they are not
/// the defaults.
fn group_name(config: &TrainConfig) -> String {
    let model = &config.model;
    let mut name = format!(
        "forward/{}-w{}-{}px",
        model.name, model.width, config.data.crop
    );
    if model.name.starts_with("se-resnext") {
        if !model.se {
            name.push_str("-no-se");
        }
        if model.head == Head::ConvPool {
            name.push_str("-conv-pool");
        }
    }
    name
}

fn forward(c: &mut Criterion) {
    for (path, config) in cpu_configs() {
        let device = Device::flex();
        device.seed(config.train.seed);
        let model = config
            .model
            .init(&device)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let side = config.data.crop as usize;
        let classes = config.model.num_classes;

        let mut group = c.benchmark_group(group_name(&config));
        group.sampling_mode(SamplingMode::Flat);
        for batch in BATCHES {
            let images = Tensor::<4>::random(
                [batch, 3, side, side],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            // Untimed: materialises the lazily created parameters, and checks the shape.
            let logits = host_f32(model.forward(images.clone())).expect("reading logits back");
            assert_eq!(
                logits.len(),
                batch * classes,
                "{}: expected {batch}×{classes} logits",
                path.display()
            );

            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("batch-{batch}"), |b| {
                b.iter(|| {
                    let logits = model.forward(black_box(images.clone()));
                    black_box(host_f32(logits).expect("reading logits back"))
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = forward
}
criterion_main!(benches);
