//! `album report` (`album_eval::report::compare_runs`): the runs side by side, the winner
//! rule on whole run directories, the bundle round trip, and the errors that name a run.
//!
//! Most runs here are made by hand (config, provenance, summary, epoch metrics and an
//! `eval-val/` from synthetic predictions, as `album train` and `album eval` write them),
//! which takes milliseconds. One test trains a real tiny model on a few real photos from
//! `../shared/datasets/five-class` (about a second) to export its bundle and load it back.

mod common;

use std::path::{Path, PathBuf};

use album_eval::bundle::BundleScores;
use album_eval::report::{CompareOptions, RUN_COLUMNS, ValSource, compare_runs};
use album_eval::run::Split;
use album_eval::{Error, EvalOptions, ReportContext, evaluate, read_parquet, write_report};
use album_training::config::TrainConfig;
use album_training::device::DeviceKind;
use album_training::inference::{CheckpointChoice, TrainedModel};
use album_training::metrics::{EpochRow, write_tables};
use album_training::provenance::Provenance;
use album_training::training::{RunOptions, train};
use common::synthetic;
use polars::prelude::*;

const CLASSES: [&str; 5] = ["animals", "buildings", "landscape", "people", "vehicles"];

/// What a hand-made run looks like.
struct FakeRun {
    name: &'static str,
    model: &'static str,
    width: f32,
    crop: u32,
    seconds: f64,
    /// Share of validation photos right, and the seed of the synthetic predictions:
    /// the same (accuracy, seed) gives exactly the same top-1.
    accuracy: f64,
    seed: u64,
    classes: [&'static str; 5],
}

impl FakeRun {
    fn new(name: &'static str, accuracy: f64, seconds: f64) -> Self {
        FakeRun {
            name,
            model: "se-resnext50",
            width: 0.125,
            crop: 32,
            seconds,
            accuracy,
            seed: 1,
            classes: CLASSES,
        }
    }
}

fn options() -> CompareOptions {
    CompareOptions {
        eval: EvalOptions {
            bootstrap_resamples: 200,
            ..EvalOptions::default()
        },
        ..CompareOptions::default()
    }
}

fn config_text(model: &str, width: f32, crop: u32, split_dir: &Path, cache_dir: &Path) -> String {
    format!(
        r#"
        [model]
        name = "{model}"
        width = {width}
        num_classes = 5
        [data]
        split_dir = {split:?}
        cache_dir = {cache:?}
        resize = {resize}
        crop = {crop}
        [train]
        epochs = 2
        batch_size = 8
        base_lr = 0.4
        warmup_epochs = 0.5
        "#,
        resize = crop + crop / 8,
        split = split_dir.to_string_lossy(),
        cache = cache_dir.to_string_lossy(),
    )
}

fn provenance(classes: &[&str]) -> Provenance {
    Provenance {
        git_revision: "0123456789abcdef0123456789abcdef01234567".into(),
        git_dirty: false,
        train_manifest_sha256: "train".into(),
        val_manifest_sha256: "val".into(),
        train_images: 40,
        val_images: 400,
        class_names: classes.iter().map(|c| c.to_string()).collect(),
        seed: 42,
        device: "flex".into(),
        precision: "f32".into(),
        burn_version: "0.22.1".into(),
        command_line: vec!["album".into(), "train".into()],
        started_at: "2026-01-01T00:00:00Z".into(),
        cpu_threads: 2,
    }
}

fn epoch(epoch: usize, val_top1: f32, seconds: f64) -> EpochRow {
    EpochRow {
        epoch,
        train_loss: 1.5 - 0.2 * epoch as f32,
        train_top1: 0.5,
        val_loss: 1.2 - 0.2 * epoch as f32,
        val_top1,
        val_top2: 0.9,
        val_top5: 1.0,
        lr: 0.1,
        epoch_seconds: seconds,
        train_images_per_s: 100.0 + 10.0 * epoch as f64,
        val_images_per_s: 400.0,
        nonfinite_steps: 0,
        ema_val_loss: None,
        ema_val_top1: None,
    }
}

/// A finished run directory without checkpoints, evaluated on val (`eval-val/`).
fn fake_run(root: &Path, run: &FakeRun) -> PathBuf {
    let dir = root.join(run.name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = TrainConfig::parse(&config_text(
        run.model,
        run.width,
        run.crop,
        &root.join("split"),
        &root.join("cache"),
    ))
    .unwrap();
    std::fs::write(dir.join("config.toml"), config.to_toml().unwrap()).unwrap();
    provenance(&run.classes)
        .write(&dir.join("provenance.json"))
        .unwrap();

    let mut predictions = synthetic(400, 5, run.accuracy, run.seed);
    predictions.class_names = run.classes.iter().map(|c| c.to_string()).collect();
    let report = evaluate(
        &predictions,
        &EvalOptions {
            bootstrap_resamples: 200,
            ..EvalOptions::default()
        },
    )
    .unwrap();
    let top1 = report.top1.value as f32;
    let context = ReportContext {
        title: run.name.into(),
        notes: vec![],
    };
    write_report(&report, &predictions, &dir.join("eval-val"), &context).unwrap();

    // three epochs, the best (= the evaluated checkpoint) the second
    let third = run.seconds / 3.0;
    let epochs = [
        epoch(0, top1 - 0.1, third),
        epoch(1, top1, third),
        epoch(2, top1 - 0.01, third),
    ];
    write_tables(&dir, &[], &epochs).unwrap();
    let summary = format!(
        r#"{{"run_dir": {dir:?}, "model": "{model}", "device": "flex", "precision": "f32",
            "params": 1, "epochs_done": 3, "steps": 30, "best_val_top1": {top1},
            "best_epoch": 1, "last_epoch": null, "last_loss": null, "nonfinite_steps": 0,
            "loss_stayed_finite": true, "stopped_early": false, "interrupted": false,
            "seconds": {seconds}, "resumes": 0}}"#,
        dir = dir.to_string_lossy(),
        model = run.model,
        seconds = run.seconds,
    );
    std::fs::write(dir.join("summary.json"), summary).unwrap();
    dir
}

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap_or_default().to_owned())
        .collect()
}

fn f64s(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    df.column(name)
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect()
}

fn bools(df: &DataFrame, name: &str) -> Vec<bool> {
    df.column(name)
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .map(Option::unwrap)
        .collect()
}

fn names(df: &DataFrame) -> Vec<&str> {
    df.get_column_names()
        .into_iter()
        .map(|n| n.as_str())
        .collect()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect()
}

#[test]
fn each_run_is_a_row_and_the_winner_is_the_most_accurate_within_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let runs = [
        // the most accurate, but trained far longer than the budget
        fake_run(root, &FakeRun::new("slow-best", 0.97, 5000.0)),
        fake_run(root, &FakeRun::new("quick", 0.80, 300.0)),
        // the same top-1 as `wide-tied` (same predictions), fewer MACs: wins the tie
        fake_run(root, &FakeRun::new("narrow-tied", 0.90, 600.0)),
        fake_run(
            root,
            &FakeRun {
                width: 0.25,
                ..FakeRun::new("wide-tied", 0.90, 900.0)
            },
        ),
    ];
    let out = root.join("report");
    let options = CompareOptions {
        budget_seconds: Some(1000.0),
        title: Some("Four runs".into()),
        ..options()
    };
    let outcome = compare_runs(&runs, &out, &options).unwrap();

    let decision = &outcome.decision;
    assert_eq!(outcome.winner().name, "narrow-tied");
    assert_eq!(decision.over_budget, vec![0]);
    assert_eq!(decision.ranking, vec![2, 3, 1]);
    assert_eq!(
        decision.tie_break,
        Some(album_eval::report::TieBreak::FewerMacs)
    );
    assert!(outcome.runs[2].macs < outcome.runs[3].macs);
    // no checkpoint here: no bundle, and the report says why
    assert!(outcome.bundle.is_none() && !out.join("bundle").exists());
    assert!(outcome.warnings.iter().any(|w| w.contains("no bundle")));

    let df = read_parquet(&out.join("runs.parquet")).unwrap();
    assert_eq!(names(&df), RUN_COLUMNS.to_vec());
    assert_eq!(
        strings(&df, "run"),
        ["slow-best", "quick", "narrow-tied", "wide-tied"]
    );
    assert_eq!(bools(&df, "winner"), [false, false, true, false]);
    assert_eq!(bools(&df, "within_budget"), [false, true, true, true]);
    assert_eq!(f64s(&df, "rank"), [None, Some(3.0), Some(1.0), Some(2.0)]);
    assert_eq!(
        f64s(&df, "train_seconds"),
        [Some(5000.0), Some(300.0), Some(600.0), Some(900.0)]
    );
    assert_eq!(f64s(&df, "epochs"), [Some(3.0); 4]);
    assert_eq!(f64s(&df, "best_epoch"), [Some(1.0); 4]);
    // median over epochs of 100, 110, 120 images/s
    assert_eq!(f64s(&df, "train_images_per_s"), [Some(110.0); 4]);
    assert_eq!(
        f64s(&df, "min_train_loss")[0].map(|v| (v * 1e6).round() / 1e6),
        Some(1.1)
    );
    assert_eq!(f64s(&df, "test_top1"), [None; 4]);
    assert_eq!(strings(&df, "val_source"), ["eval-val"; 4]);
    assert_eq!(strings(&df, "model"), ["se-resnext50"; 4]);
    let val = f64s(&df, "val_top1");
    let low = f64s(&df, "val_top1_ci_low");
    let high = f64s(&df, "val_top1_ci_high");
    for (run, figures) in outcome.runs.iter().enumerate() {
        assert_eq!(val[run], Some(figures.val_top1.value));
        assert!(low[run] <= val[run] && val[run] <= high[run]);
        assert_eq!(figures.val_photos, Some(400));
        assert!(figures.params > 0 && !figures.has_checkpoint);
    }
    assert_eq!(val[2], val[3], "the tie");

    let curves = read_parquet(&out.join("learning-curves.parquet")).unwrap();
    assert_eq!(curves.height(), 12);
    assert_eq!(
        names(&curves),
        ["run", "epoch", "train_loss", "val_loss", "val_top1"]
    );

    let text = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(text.starts_with("# Four runs\n"), "{text}");
    assert!(text.contains("## Winner: `narrow-tied`"), "{text}");
    assert!(text.contains("fewer multiply–accumulates"), "{text}");
    assert!(
        text.contains("the time budget was 16 min 40 s (1000 s)"),
        "{text}"
    );
    assert!(text.contains("`slow-best` (over budget)"), "{text}");
    for chart in [
        "accuracy-vs-macs.png",
        "accuracy-vs-time.png",
        "learning-curves.png",
    ] {
        assert!(text.contains(&format!("]({chart})")), "{chart} not linked");
        let size = image::image_dimensions(out.join(chart)).unwrap();
        assert!(size.0 >= 1000, "{chart}: {size:?}");
    }
    assert!(out.join("runs.csv").is_file() && out.join("learning-curves.csv").is_file());
    assert_eq!(leftovers(&out), Vec::<String>::new());
}

#[test]
fn runs_that_cannot_be_compared_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let good = fake_run(root, &FakeRun::new("good", 0.9, 100.0));
    let out = root.join("report");
    let refused = |runs: &[PathBuf], options: &CompareOptions| -> String {
        let error = compare_runs(runs, &out, options).unwrap_err();
        assert!(
            matches!(error, Error::Run(_) | Error::Options(_)),
            "{error:?}"
        );
        error.to_string()
    };

    let other = fake_run(
        root,
        &FakeRun {
            classes: ["animals", "buildings", "cats", "people", "vehicles"],
            ..FakeRun::new("other-classes", 0.9, 100.0)
        },
    );
    let error = refused(&[good.clone(), other], &options());
    assert!(
        error.contains("good") && error.contains("other-classes") && error.contains("cats"),
        "{error}"
    );

    let unfinished = fake_run(root, &FakeRun::new("unfinished", 0.9, 100.0));
    std::fs::remove_file(unfinished.join("summary.json")).unwrap();
    let error = refused(&[good.clone(), unfinished], &options());
    assert!(
        error.contains("unfinished") && error.contains("summary.json"),
        "{error}"
    );

    let unevaluated = fake_run(root, &FakeRun::new("no-eval", 0.9, 100.0));
    std::fs::remove_dir_all(unevaluated.join("eval-val")).unwrap();
    let error = refused(&[good.clone(), unevaluated], &options());
    assert!(
        error.contains("no-eval") && error.contains("neither eval-val"),
        "{error}"
    );

    let test_split = CompareOptions {
        split: Split::Test,
        ..options()
    };
    assert!(refused(std::slice::from_ref(&good), &test_split).contains("validation split only"));
    let error = compare_runs(std::slice::from_ref(&good), &good, &options())
        .unwrap_err()
        .to_string();
    assert!(error.contains("one of the runs"), "{error}");
    assert!(refused(&[good.clone(), good.clone()], &options()).contains("listed once"));
    // nothing was written for any of these
    assert!(!out.exists());
}

const PHOTOS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/datasets/five-class"
);

/// train.parquet and val.parquet of `train` and `val` real photos per class, in the
/// manifest format of `album dataset split` (absolute paths).
fn small_split(dir: &Path, train: usize, val: usize) -> PathBuf {
    let split_dir = dir.join("split");
    std::fs::create_dir_all(&split_dir).unwrap();
    let mut rows: [Vec<(String, String, u32, u32)>; 2] = [Vec::new(), Vec::new()];
    for class in CLASSES {
        let folder = Path::new(PHOTOS).join(class);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("the five-class photos beside the checkout: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
            .collect();
        files.sort();
        for (i, path) in files.iter().take(train + val).enumerate() {
            let (width, height) = image::image_dimensions(path).unwrap();
            rows[usize::from(i >= train)].push((
                path.to_string_lossy().into_owned(),
                class.to_owned(),
                width,
                height,
            ));
        }
    }
    for (rows, name) in rows.iter().zip(["train", "val"]) {
        let text =
            |f: fn(&(String, String, u32, u32)) -> String| rows.iter().map(f).collect::<Vec<_>>();
        let mut df = df!(
            "path" => text(|r| r.0.clone()),
            "class" => text(|r| r.1.clone()),
            "image_url" => text(|_| String::new()),
            "page_url" => text(|_| String::new()),
            "sha256" => text(|r| r.0.clone()),
            "phash" => text(|_| "0000000000000000".into()),
            "width" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "height" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "bytes" => rows.iter().map(|_| 0u64).collect::<Vec<_>>(),
            "fetched_at" => text(|_| String::new()),
        )
        .unwrap();
        let file = std::fs::File::create(split_dir.join(format!("{name}.parquet"))).unwrap();
        ParquetWriter::new(file).finish(&mut df).unwrap();
    }
    split_dir
}

#[test]
fn the_winner_is_exported_as_a_bundle_that_loads_back_and_predicts_like_its_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let split = small_split(root, 8, 4);
    let config = TrainConfig::parse(&config_text(
        "se-resnext50",
        0.125,
        32,
        &split,
        &root.join("cache"),
    ))
    .unwrap();
    let run_options = RunOptions {
        out_root: root.to_path_buf(),
        run_id: Some("tiny".into()),
        ..RunOptions::default()
    };
    train(config, &run_options).unwrap();
    let run = root.join("tiny");
    assert!(!run.join("eval-val").exists());

    // the run has no eval-val: the report evaluates it on val, as `album eval` would
    let out = root.join("report");
    let outcome = compare_runs(std::slice::from_ref(&run), &out, &options()).unwrap();
    let figures = outcome.winner();
    assert_eq!(figures.val_source, ValSource::EvaluatedNow);
    assert!(run.join("eval-val").join("metrics.parquet").is_file());
    assert_eq!(figures.val_photos, Some(20));
    assert!(
        (figures.val_top1.value - figures.training_best_val_top1).abs() < 1e-6,
        "the evaluation of the best checkpoint repeats training's own figure"
    );
    let export = outcome.bundle.as_ref().expect("a bundle");
    assert_eq!(export.dir, out.join("bundle"));
    let info = &export.info;
    assert_eq!(info.class_names, CLASSES.map(String::from).to_vec());
    assert_eq!((info.model.as_str(), info.width), ("se-resnext50", 0.125));
    assert_eq!(
        (info.preprocessing.resize, info.preprocessing.crop),
        (36, 32)
    );
    assert_eq!(info.preprocessing.mean, [0.485, 0.456, 0.406]);
    assert_eq!(info.val_top1, figures.val_top1.value);
    assert_eq!(info.test_top1, None);
    assert_eq!(
        std::fs::read(out.join("bundle/model.bpk")).unwrap(),
        std::fs::read(run.join("checkpoints/best/model.bpk")).unwrap()
    );

    let device = || DeviceKind::Flex.device().unwrap();
    let original = TrainedModel::load(&run, CheckpointChoice::Best, device()).unwrap();
    let bundled = TrainedModel::load_bundle(&export.dir, device()).unwrap();
    assert_eq!(bundled.class_names(), original.class_names());
    assert_eq!(bundled.epoch, original.epoch);
    let (split_data, images) = original.load_split("val").unwrap();
    let expected = original.predict(&split_data, &images, 8, false).unwrap();
    let got = bundled.predict(&split_data, &images, 8, false).unwrap();
    assert_eq!(got.probabilities, expected.probabilities);
    assert_eq!(got.targets, expected.targets);

    // a second export replaces the bundle whole
    let again = album_eval::bundle::export_bundle(
        &run,
        BundleScores {
            val_top1: 0.5,
            test_top1: Some(0.4),
        },
        &export.dir,
    )
    .unwrap();
    assert_eq!(again.info.test_top1, Some(0.4));
    assert_eq!(leftovers(&out), Vec::<String>::new());

    // damaged or missing weights are refused with the reason
    let weights = export.dir.join("model.bpk");
    let mut bytes = std::fs::read(&weights).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&weights, &bytes).unwrap();
    let error = TrainedModel::load_bundle(&export.dir, device())
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("SHA-256") && error.contains("damaged"),
        "{error}"
    );
    std::fs::remove_file(&weights).unwrap();
    let error = TrainedModel::load_bundle(&export.dir, device())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("model.bpk is missing"), "{error}");
    let error = TrainedModel::load_bundle(&run, device())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("not a model bundle"), "{error}");
}
