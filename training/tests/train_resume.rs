//! The training loop end to end on real photos (a few per class from
//! `../shared/datasets/five-class`, beside the checkout): a run directory holds every
//! listed output, and a run interrupted mid-epoch then resumed takes the same steps as
//! an unbroken run.

use std::path::{Path, PathBuf};

use album_dataset::data::augment::AugmentConfig;
use album_dataset::data::read_dimensions;
use album_dataset::gallery::PhotoFolder;
use album_dataset::manifest::{ManifestRecord, write_manifest};
use album_training::config::TrainConfig;
use album_training::training::{RunOptions, RunSummary, train};

/// burn draws initial weights and dropout masks from the device's process-wide
/// generator, so two runs training at once in one process would interleave their draws:
/// tests that train hold this lock, as `album train` (one run per process) always does.
static ONE_RUN_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_run_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const PHOTOS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/datasets/five-class"
);

/// Writes train.parquet (`train` photos per class) and val.parquet (the next `val`).
fn small_split(dir: &Path, train: usize, val: usize) -> PathBuf {
    let folder = PhotoFolder::scan(Path::new(PHOTOS), Some(train + val))
        .expect("the five-class photos beside the checkout (../shared/datasets/five-class)");
    let split_dir = dir.join("split");
    std::fs::create_dir_all(&split_dir).unwrap();
    let (mut train_rows, mut val_rows) = (Vec::new(), Vec::new());
    for class in &folder.classes {
        for (i, file) in class.files.iter().enumerate() {
            let path = folder.root.join(&class.name).join(file);
            let (width, height) = read_dimensions(&path).unwrap();
            let record = ManifestRecord {
                // absolute: Manifest::load joins it onto the split folder unchanged
                path: path.to_string_lossy().into_owned(),
                class: class.name.clone(),
                image_url: String::new(),
                page_url: String::new(),
                sha256: format!("{}/{file}", class.name),
                phash: 0,
                width,
                height,
                bytes: 0,
                fetched_at: String::new(),
            };
            if i < train {
                &mut train_rows
            } else {
                &mut val_rows
            }
            .push(record);
        }
    }
    write_manifest(&split_dir.join("train.parquet"), &train_rows).unwrap();
    write_manifest(&split_dir.join("val.parquet"), &val_rows).unwrap();
    split_dir
}

fn tiny_config(split_dir: &Path, cache_dir: &Path) -> TrainConfig {
    let text = format!(
        r#"
        [model]
        name = "se-resnext50"
        width = 0.125
        [data]
        split_dir = {split:?}
        cache_dir = {cache:?}
        resize = 36
        crop = 32
        [train]
        epochs = 2
        batch_size = 8
        base_lr = 0.4
        warmup_epochs = 0.5
        "#,
        split = split_dir.to_string_lossy(),
        cache = cache_dir.to_string_lossy(),
    );
    TrainConfig::parse(&text).unwrap()
}

fn options(out: &Path, run_id: &str) -> RunOptions {
    RunOptions {
        out_root: out.to_path_buf(),
        run_id: Some(run_id.into()),
        ..RunOptions::default()
    }
}

fn batch_losses(run_dir: &Path) -> Vec<f32> {
    let text = std::fs::read_to_string(run_dir.join("batch-metrics.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| line.split(',').nth(2).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_run_directory_holds_config_provenance_metrics_charts_and_checkpoints() {
    let _lock = one_run_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let split = small_split(dir.path(), 8, 4);
    let config = tiny_config(&split, &dir.path().join("cache"));
    let summary: RunSummary = train(config, &options(dir.path(), "full")).unwrap();
    assert_eq!((summary.epochs_done, summary.steps), (2, 10));
    assert!(summary.loss_stayed_finite && !summary.interrupted);
    let run = dir.path().join("full");
    for file in [
        "config.toml",
        "provenance.json",
        "summary.json",
        "batch-metrics.parquet",
        "batch-metrics.csv",
        "epoch-metrics.parquet",
        "epoch-metrics.csv",
        "loss.png",
        "accuracy.png",
        "checkpoints/last/model.bpk",
        "checkpoints/last/optimizer.bpk",
        "checkpoints/last/state.json",
        "checkpoints/best/model.bpk",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let provenance = std::fs::read_to_string(run.join("provenance.json")).unwrap();
    for key in ["git_revision", "train_manifest_sha256", "\"seed\": 42"] {
        assert!(provenance.contains(key), "{key} not in {provenance}");
    }
    // the saved config is the resolved one: defaults filled in, classes counted
    let saved = TrainConfig::load(&run.join("config.toml")).unwrap();
    assert_eq!(saved.model.num_classes, 5);
    assert_eq!(
        saved.train.optimizer,
        album_training::config::Optimizer::Sgd
    );
    let epochs = std::fs::read_to_string(run.join("epoch-metrics.csv")).unwrap();
    assert_eq!(epochs.lines().count(), 3, "{epochs}");
    // no EMA in this run: asking for its weights says why there are none
    let no_ema = album_training::inference::TrainedModel::load(
        &run,
        album_training::inference::CheckpointChoice::Ema,
        burn::tensor::Device::flex(),
    );
    let err = no_ema
        .err()
        .expect("a run without EMA has no EMA weights")
        .to_string();
    assert!(err.contains("ema_decay"), "{err}");
    the_run_loads_back_and_predicts_any_subset_like_the_whole_split(&run);
}

/// Regression: `predict_photos` once took its targets and paths from the first photos of
/// the split instead of the chosen ones, so a subset was scored against other labels.
fn the_run_loads_back_and_predicts_any_subset_like_the_whole_split(run: &Path) {
    use album_training::inference::{CheckpointChoice, TrainedModel};
    let model =
        TrainedModel::load(run, CheckpointChoice::Best, burn::tensor::Device::flex()).unwrap();
    assert_eq!(model.class_names().len(), 5);
    let (split, images) = model.load_split("val").unwrap();
    let whole = model.predict(&split, &images, 8, false).unwrap();
    assert_eq!(whole.targets.len(), 20);
    let chosen = [17, 3, 9];
    let part = model
        .predict_photos(&split, &images, &chosen, 2, false)
        .unwrap();
    for (row, &photo) in chosen.iter().enumerate() {
        assert_eq!(part.targets[row], whole.targets[photo]);
        assert_eq!(part.paths[row], whole.paths[photo]);
        for class in 0..5 {
            let (a, b) = (
                part.probabilities[row * 5 + class],
                whole.probabilities[photo * 5 + class],
            );
            assert!(
                (a - b).abs() < 1e-5,
                "photo {photo} class {class}: {a} vs {b}"
            );
        }
    }
    assert!(
        TrainedModel::load(
            &run.join("checkpoints"),
            CheckpointChoice::Best,
            burn::tensor::Device::flex()
        )
        .is_err()
    );
}

/// Every random draw (crops, flips, random-resized crops, colour jitter, TrivialAugment,
/// mixup and CutMix) repeats after a resume: each is seeded by the run, epoch and image or
/// step, never by how far the process got.
#[test]
fn a_run_interrupted_mid_epoch_and_resumed_takes_the_same_steps_as_an_unbroken_run() {
    let _lock = one_run_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let split = small_split(dir.path(), 8, 4);
    let mut config = tiny_config(&split, &dir.path().join("cache"));
    config.data.augment = AugmentConfig::new()
        .with_resized_crop_scale(Some([0.35, 1.0]))
        .with_brightness(0.4)
        .with_trivial_augment(true);
    config.train.mixup_alpha = 0.8;
    config.train.cutmix_alpha = 1.0;
    config.train.ema_decay = 0.9;
    train(config.clone(), &options(dir.path(), "unbroken")).unwrap();

    // 5 steps make an epoch: stop 2 steps into the second, as a kill would.
    let mut interrupted = options(dir.path(), "broken");
    interrupted.max_steps = Some(7);
    let first = train(config, &interrupted).unwrap();
    assert!(first.interrupted);
    assert_eq!(first.epochs_done, 1);

    let resume = RunOptions {
        resume: Some(dir.path().join("broken")),
        ..RunOptions::default()
    };
    let second = train(TrainConfig::default(), &resume).unwrap();
    assert_eq!(
        (second.epochs_done, second.steps, second.resumes),
        (2, 10, 1)
    );

    let unbroken = batch_losses(&dir.path().join("unbroken"));
    let resumed = batch_losses(&dir.path().join("broken"));
    assert_eq!(unbroken.len(), resumed.len());
    for (a, b) in unbroken.iter().zip(&resumed) {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(1.0),
            "{unbroken:?} vs {resumed:?}"
        );
    }
    the_ema_weights_resume_with_the_run_and_load_for_evaluation(
        &dir.path().join("unbroken"),
        &dir.path().join("broken"),
    );
}

/// The EMA is validated every epoch beside the live weights, saved with each checkpoint,
/// continued after a resume (so the resumed run's EMA scores are the unbroken run's),
/// and loadable for `album eval --checkpoint ema`.
fn the_ema_weights_resume_with_the_run_and_load_for_evaluation(unbroken: &Path, resumed: &Path) {
    use album_training::inference::{CheckpointChoice, TrainedModel};
    use album_training::metrics::read_epoch_rows;
    let (a, b) = (
        read_epoch_rows(unbroken).unwrap(),
        read_epoch_rows(resumed).unwrap(),
    );
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        let (ema_x, ema_y) = (x.ema_val_loss.unwrap(), y.ema_val_loss.unwrap());
        assert!(
            (ema_x - ema_y).abs() <= 1e-4 * ema_x.abs().max(1.0),
            "{a:?} vs {b:?}"
        );
        assert_eq!(x.ema_val_top1, y.ema_val_top1);
        // the average lags the live weights: its loss is its own
        assert_ne!(x.ema_val_loss, Some(x.val_loss));
    }
    for run in [unbroken, resumed] {
        assert!(run.join("checkpoints/last/ema.bpk").is_file());
        let model =
            TrainedModel::load(run, CheckpointChoice::Ema, burn::tensor::Device::flex()).unwrap();
        assert!(model.checkpoint.ends_with("last"));
    }
}

#[test]
fn a_time_limit_cuts_the_epochs_and_the_saved_config_to_what_fits() {
    let _lock = one_run_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let split = small_split(dir.path(), 8, 4);
    let mut config = tiny_config(&split, &dir.path().join("cache"));
    config.train.epochs = 3;
    let options = RunOptions {
        // no second epoch fits: the run ends after its first, schedule and all
        time_limit: Some(std::time::Duration::ZERO),
        ..options(dir.path(), "limited")
    };
    let summary = train(config, &options).unwrap();
    assert_eq!((summary.epochs_done, summary.steps), (1, 5));
    assert!(!summary.interrupted);
    let saved = TrainConfig::load(&dir.path().join("limited/config.toml")).unwrap();
    assert_eq!(saved.train.epochs, 1);
}

#[test]
fn a_new_run_never_overwrites_a_directory_and_resume_needs_a_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("taken")).unwrap();
    let config = TrainConfig::default();
    let err = train(config.clone(), &options(dir.path(), "taken"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already exists") && err.contains("--resume"),
        "{err}"
    );

    let resume = RunOptions {
        resume: Some(dir.path().join("taken")),
        ..RunOptions::default()
    };
    let err = train(config.clone(), &resume).unwrap_err().to_string();
    assert!(err.contains("not a run directory"), "{err}");
    // a run that was never trained says how to make one
    let resume = RunOptions {
        resume: Some(dir.path().join("never-trained")),
        ..RunOptions::default()
    };
    let err = train(config.clone(), &resume).unwrap_err().to_string();
    assert!(
        err.contains("no run directory at") && err.contains("album train"),
        "{err}"
    );

    let err = train(config, &options(dir.path(), "../escape"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("plain folder name"), "{err}");
}

#[test]
fn a_missing_split_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(&dir.path().join("nowhere"), &dir.path().join("cache"));
    let err = train(config, &options(dir.path(), "run"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("album dataset split"), "{err}");
}

/// CI builds the `tch` feature and runs this: one real optimiser step on LibTorch CPU,
/// through the same loop and on the same photos as flex.
#[cfg(feature = "tch")]
#[test]
fn one_training_step_runs_on_libtorch_cpu() {
    let _lock = one_run_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let split = small_split(dir.path(), 8, 4);
    let mut config = tiny_config(&split, &dir.path().join("cache"));
    config.train.device = "tch-cpu".into();
    let mut one_step = options(dir.path(), "tch");
    one_step.max_steps = Some(1);
    let summary = train(config, &one_step).unwrap();
    assert_eq!(summary.steps, 1);
    let loss = summary.last_loss.expect("a step's loss");
    // ln 5 ≈ 1.61 for a fresh 5-class model; finite and in a sane range
    assert!(loss.is_finite() && loss > 0.5 && loss < 5.0, "{loss}");
}
