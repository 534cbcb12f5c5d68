//! `write_report`: every file, read back to the same figures.

mod common;

use std::path::Path;

use album_eval::{
    Error, EvalOptions, EvalReport, Predictions, ReportContext, evaluate, read_parquet,
    write_report,
};
use common::{hand_fixture, synthetic};
use polars::prelude::*;

const TABLES: [&str; 4] = ["metrics", "per-class", "confusion", "calibration"];

fn context() -> ReportContext {
    ReportContext {
        title: "cpu-se-resnext50 · test split".into(),
        notes: vec![
            "run: experiments/se-resnext50-test".into(),
            "seed: 0".into(),
        ],
    }
}

fn report_of(predictions: &Predictions) -> EvalReport {
    let options = EvalOptions {
        bootstrap_resamples: 300,
        ..EvalOptions::default()
    };
    evaluate(predictions, &options).unwrap()
}

fn f64s(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    df.column(name).unwrap().f64().unwrap().iter().collect()
}

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect()
}

fn u64s(df: &DataFrame, name: &str) -> Vec<u64> {
    df.column(name)
        .unwrap()
        .u64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".partial"))
        .collect()
}

#[test]
fn every_file_is_written_and_reads_back_to_the_report() {
    let predictions = synthetic(600, 5, 0.85, 11);
    let report = report_of(&predictions);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("eval").join("test");
    let written = write_report(&report, &predictions, &dir, &context()).unwrap();

    let mut expected: Vec<String> = TABLES
        .iter()
        .flat_map(|t| [format!("{t}.parquet"), format!("{t}.csv")])
        .collect();
    expected.extend(
        [
            "predictions.parquet",
            "confusion.png",
            "reliability.png",
            "summary.md",
        ]
        .map(String::from),
    );
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, expected);
    for path in &written {
        assert!(path.is_file(), "{}", path.display());
        assert!(path.starts_with(&dir));
    }
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));

    let table = |name: &str| read_parquet(&dir.join(format!("{name}.parquet"))).unwrap();
    check_metrics(&table("metrics"), &report);
    check_per_class(&table("per-class"), &report);
    check_confusion(&table("confusion"), &report);
    check_calibration(&table("calibration"), &report);
    check_predictions(&table("predictions"), &predictions);
    check_csv_headers(&dir);
    check_png(&dir.join("confusion.png"), (1000, 860));
    check_png(&dir.join("reliability.png"), (1000, 700));
}

fn check_metrics(df: &DataFrame, report: &EvalReport) {
    assert_eq!(
        strings(df, "metric"),
        ["top1", "top2", "top5", "macro_f1", "ece"]
    );
    let estimates = [
        report.top1,
        report.top2,
        report.top5,
        report.macro_f1,
        report.ece,
    ];
    let column = |name, f: fn(&album_eval::Estimate) -> f64| {
        assert_eq!(
            f64s(df, name),
            estimates.iter().map(|e| Some(f(e))).collect::<Vec<_>>()
        );
    };
    column("value", |e| e.value);
    column("ci_low", |e| e.low);
    column("ci_high", |e| e.high);
}

fn check_per_class(df: &DataFrame, report: &EvalReport) {
    let classes = &report.per_class;
    assert_eq!(strings(df, "class"), report.class_names);
    assert_eq!(
        u64s(df, "support"),
        classes.iter().map(|c| c.support as u64).collect::<Vec<_>>()
    );
    let column = |name, f: &dyn Fn(&album_eval::ClassMetrics) -> f64| {
        assert_eq!(
            f64s(df, name),
            classes.iter().map(|c| Some(f(c))).collect::<Vec<_>>(),
            "{name}"
        );
    };
    column("precision", &|c| c.precision.value);
    column("precision_ci_low", &|c| c.precision.low);
    column("recall_ci_high", &|c| c.recall.high);
    column("f1", &|c| c.f1.value);
    column("f1_ci_low", &|c| c.f1.low);
}

fn check_confusion(df: &DataFrame, report: &EvalReport) {
    let classes = report.class_names.len();
    assert_eq!(df.height(), classes * classes);
    let truth = strings(df, "true_class");
    let predicted = strings(df, "predicted_class");
    for ((t, p), count) in truth.iter().zip(&predicted).zip(u64s(df, "count")) {
        let index = |name: &String| report.class_names.iter().position(|c| c == name).unwrap();
        assert_eq!(report.confusion[index(t)][index(p)], count, "{t} → {p}");
    }
    assert_eq!(u64s(df, "count").iter().sum::<u64>(), report.n as u64);
}

fn check_calibration(df: &DataFrame, report: &EvalReport) {
    let bins = &report.calibration;
    assert_eq!(df.height(), bins.len());
    assert_eq!(
        u64s(df, "count"),
        bins.iter().map(|b| b.count as u64).collect::<Vec<_>>()
    );
    let filled = |f: fn(&album_eval::CalibrationBin) -> f64| {
        bins.iter()
            .map(|b| (b.count > 0).then(|| f(b)))
            .collect::<Vec<_>>()
    };
    assert_eq!(f64s(df, "accuracy"), filled(|b| b.accuracy));
    assert_eq!(f64s(df, "mean_confidence"), filled(|b| b.mean_confidence));
    assert_eq!(
        f64s(df, "upper"),
        bins.iter().map(|b| Some(b.upper)).collect::<Vec<_>>()
    );
}

fn check_predictions(df: &DataFrame, predictions: &Predictions) {
    assert_eq!(df.height(), predictions.len());
    assert_eq!(strings(df, "path"), predictions.paths);
    let targets = strings(df, "target");
    let names = &predictions.class_names;
    for (target, &index) in targets.iter().zip(&predictions.targets) {
        assert_eq!(target, &names[index]);
    }
    let correct: Vec<bool> = df
        .column("correct")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    let same: Vec<bool> = targets
        .iter()
        .zip(strings(df, "predicted"))
        .map(|(t, p)| *t == p)
        .collect();
    assert_eq!(correct, same);
    for (c, name) in names.iter().enumerate() {
        let column: Vec<f32> = df
            .column(&format!("p_{name}"))
            .unwrap()
            .f32()
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .collect();
        let expected: Vec<f32> = predictions.rows().map(|row| row[c]).collect();
        assert_eq!(column, expected, "p_{name}");
    }
    let confidence = f64s(df, "confidence");
    for (row, conf) in predictions.rows().zip(confidence) {
        let top = row.iter().copied().fold(0.0f32, f32::max);
        assert_eq!(conf, Some(f64::from(top)));
    }
}

fn check_csv_headers(dir: &Path) {
    let header = |name: &str| {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        text.lines().next().unwrap_or_default().to_string()
    };
    assert_eq!(header("metrics.csv"), "metric,value,ci_low,ci_high");
    assert_eq!(
        header("per-class.csv"),
        "class,support,precision,precision_ci_low,precision_ci_high,recall,recall_ci_low,\
         recall_ci_high,f1,f1_ci_low,f1_ci_high"
    );
    assert_eq!(header("confusion.csv"), "true_class,predicted_class,count");
    assert_eq!(
        header("calibration.csv"),
        "bin,lower,upper,count,mean_confidence,accuracy"
    );
}

fn check_png(path: &Path, size: (u32, u32)) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() > 20_000,
        "{} is only {} bytes",
        path.display(),
        bytes.len()
    );
    let image = image::load_from_memory(&bytes).unwrap().to_rgb8();
    assert_eq!(image.dimensions(), size);
    // More than a blank canvas: many colours (text anti-aliasing, the ramp, the bars).
    let mut colours: Vec<[u8; 3]> = image.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 50,
        "{} has {} colours",
        path.display(),
        colours.len()
    );
}

#[test]
fn the_summary_explains_the_figures() {
    let predictions = hand_fixture();
    let report = report_of(&predictions);
    let tmp = tempfile::tempdir().unwrap();
    write_report(&report, &predictions, tmp.path(), &context()).unwrap();
    let summary = std::fs::read_to_string(tmp.path().join("summary.md")).unwrap();
    for needle in [
        "# cpu-se-resnext50 · test split",
        "- run: experiments/se-resnext50-test",
        "| top-1 accuracy | 62.5 % (",
        "| top-5 accuracy | 100.0 % (100.0–100.0) |",
        "With 3 classes, top-5 accuracy is always 100 %",
        "says nothing about the model",
        "the paper's Table 1",
        "percentile bootstrap intervals over photos",
        "resampled with replacement 300 times (ChaCha8, seed 0)",
        "2.5th and 97.5th percentiles",
        "ECE (expected calibration error; Guo et al. 2017)",
        "| **a** | 2 (66.7 %) | 1 (33.3 %) | 0 (0.0 %) |",
        "| c | 2 | 100.0 % (",
        "![reliability diagram](reliability.png)",
        "- [metrics.parquet](metrics.parquet)",
    ] {
        assert!(
            summary.contains(needle),
            "summary lacks {needle:?}:\n{summary}"
        );
    }
}

#[test]
fn without_paths_there_is_no_predictions_table() {
    let mut predictions = hand_fixture();
    predictions.paths.clear();
    let report = report_of(&predictions);
    let tmp = tempfile::tempdir().unwrap();
    let written = write_report(&report, &predictions, tmp.path(), &context()).unwrap();
    assert_eq!(written.len(), 11);
    assert!(!tmp.path().join("predictions.parquet").exists());
}

#[test]
fn a_report_of_other_predictions_is_refused() {
    let report = report_of(&hand_fixture());
    let other = synthetic(50, 3, 0.5, 1);
    let tmp = tempfile::tempdir().unwrap();
    let error = write_report(&report, &other, tmp.path(), &context()).unwrap_err();
    assert!(matches!(error, Error::Invalid(_)), "{error:?}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn a_failed_write_is_an_error_and_leaves_no_partial_file() {
    let predictions = hand_fixture();
    let report = report_of(&predictions);
    let tmp = tempfile::tempdir().unwrap();
    // A folder where the chart should go: the rename onto it fails.
    std::fs::create_dir(tmp.path().join("confusion.png")).unwrap();
    std::fs::write(tmp.path().join("confusion.png").join("keep"), "x").unwrap();
    let error = write_report(&report, &predictions, tmp.path(), &context()).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("confusion.png"), "{error}");
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
    assert!(!tmp.path().join("summary.md").exists());
}
