//! Point estimates against figures worked out by hand, and the input checks.

mod common;

use album_eval::{Error, EvalOptions, Predictions, evaluate};
use common::{assert_close, hand_fixture};

fn five_bins() -> EvalOptions {
    EvalOptions {
        bootstrap_resamples: 200,
        calibration_bins: 5,
        ..EvalOptions::default()
    }
}

/// The fixture (see `common::hand_fixture`), by hand:
///
/// confusion [true][predicted]      ranks of the target: 0 0 1 0 0 2 0 1
///   a: 2 1 0                        top-1 = 5/8 = 0.625 (photos 1 2 4 5 7)
///   b: 1 2 0                        top-2 = 7/8 = 0.875 (all but photo 6)
///   c: 1 0 1                        top-5 = 1 (5 ≥ 3 classes)
///
/// class  TP  predicted  support  precision  recall  F1 = 2TP/(pred+support)
///   a     2      4         3        1/2       2/3       4/7
///   b     2      3         3        2/3       2/3       4/6 = 2/3
///   c     1      1         2        1         1/2       2/3
/// macro-F1 = (4/7 + 2/3 + 2/3) / 3 = 40/63
///
/// ECE with 5 bins (lower, upper]:
///   (0.4, 0.6]: photos 2 5 6 7 8, confidences 0.5 0.45 0.55 0.45 0.45 (sum 2.4), 3 right
///   (0.6, 0.8]: photos 1 3, confidences 0.7 0.65 (sum 1.35), 1 right
///   (0.8, 1.0]: photo 4, confidence 0.9, right
///   ECE = (|3 − 2.4| + |1 − 1.35| + |1 − 0.9|) / 8 = 1.05 / 8 = 0.13125
#[test]
fn hand_computed_fixture_gives_the_hand_computed_figures() {
    let report = evaluate(&hand_fixture(), &five_bins()).unwrap();
    assert_eq!(report.n, 8);
    assert_eq!(
        report.confusion,
        vec![vec![2, 1, 0], vec![1, 2, 0], vec![1, 0, 1]]
    );
    assert_close(report.top1.value, 0.625, "top-1");
    assert_close(report.top2.value, 0.875, "top-2");
    assert_eq!(report.top5.value, 1.0);
    let expected = [
        ("a", 3, 0.5, 2.0 / 3.0, 4.0 / 7.0),
        ("b", 3, 2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0),
        ("c", 2, 1.0, 0.5, 2.0 / 3.0),
    ];
    for (class, (name, support, precision, recall, f1)) in report.per_class.iter().zip(expected) {
        assert_eq!((class.class.as_str(), class.support), (name, support));
        assert_close(
            class.precision.value,
            precision,
            &format!("precision {name}"),
        );
        assert_close(class.recall.value, recall, &format!("recall {name}"));
        assert_close(class.f1.value, f1, &format!("F1 {name}"));
    }
    assert_close(report.macro_f1.value, 40.0 / 63.0, "macro-F1");
    assert_close(report.ece.value, 0.13125, "ECE");
}

#[test]
fn calibration_bins_of_the_fixture() {
    let report = evaluate(&hand_fixture(), &five_bins()).unwrap();
    let counts: Vec<usize> = report.calibration.iter().map(|b| b.count).collect();
    assert_eq!(counts, [0, 0, 5, 2, 1]);
    let bin = &report.calibration[2];
    assert_close(bin.lower, 0.4, "lower");
    assert_close(bin.upper, 0.6, "upper");
    assert_close(bin.mean_confidence, 0.48, "mean confidence (0.4, 0.6]");
    assert_close(bin.accuracy, 0.6, "accuracy (0.4, 0.6]");
    assert_close(
        report.calibration[3].mean_confidence,
        0.675,
        "mean confidence (0.6, 0.8]",
    );
    assert_close(report.calibration[3].accuracy, 0.5, "accuracy (0.6, 0.8]");
    assert_close(report.calibration[4].accuracy, 1.0, "accuracy (0.8, 1]");
    assert_eq!(
        (
            report.calibration[0].mean_confidence,
            report.calibration[0].accuracy
        ),
        (0.0, 0.0)
    );
    // The default 15 bins: 0.45 in (0.4, 0.467], 0.5 and 0.55 in (0.533, 0.6] and
    // (0.467, 0.533], ...; ECE changes but the counts still add up.
    let fifteen = evaluate(&hand_fixture(), &EvalOptions::default()).unwrap();
    assert_eq!(fifteen.calibration.len(), 15);
    assert_eq!(
        fifteen.calibration.iter().map(|b| b.count).sum::<usize>(),
        8
    );
}

#[test]
fn top_k_at_or_above_the_number_of_classes_is_exactly_one() {
    let mut predictions = hand_fixture();
    // Make the model as wrong as possible: the target always ranked last.
    for (row, &target) in predictions
        .probabilities
        .chunks_mut(3)
        .zip(&predictions.targets)
    {
        row.copy_from_slice(&[0.45, 0.45, 0.1]);
        row.swap(target, 2);
    }
    let report = evaluate(&predictions, &five_bins()).unwrap();
    assert_eq!(report.top1.value, 0.0);
    assert_eq!(report.top2.value, 0.0);
    assert_eq!(
        (report.top5.value, report.top5.low, report.top5.high),
        (1.0, 1.0, 1.0)
    );
}

#[test]
fn a_class_never_predicted_has_precision_zero() {
    // Three photos; nothing is ever called "c", and c's photo is called "a".
    let predictions = Predictions {
        class_names: vec!["a".into(), "b".into(), "c".into()],
        targets: vec![0, 1, 2],
        probabilities: vec![0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.6, 0.3, 0.1],
        paths: vec![],
    };
    let report = evaluate(&predictions, &five_bins()).unwrap();
    let c = &report.per_class[2];
    assert_eq!(
        (c.precision.value, c.recall.value, c.f1.value),
        (0.0, 0.0, 0.0)
    );
    assert_eq!((c.precision.low, c.precision.high), (0.0, 0.0));
    // a: TP 1, predicted 2, support 1 → F1 2/3; b: F1 1; c: 0 and present among targets.
    assert_close(
        report.macro_f1.value,
        (2.0 / 3.0 + 1.0 + 0.0) / 3.0,
        "macro-F1",
    );
}

#[test]
fn a_class_absent_from_targets_and_predictions_is_left_out_of_macro_f1() {
    let predictions = Predictions {
        class_names: vec!["a".into(), "b".into(), "unused".into()],
        targets: vec![0, 1],
        probabilities: vec![0.8, 0.1, 0.1, 0.2, 0.7, 0.1],
        paths: vec![],
    };
    let report = evaluate(&predictions, &five_bins()).unwrap();
    assert_eq!(report.macro_f1.value, 1.0);
    assert_eq!(report.per_class[2].support, 0);
    assert_eq!(report.per_class[2].recall.value, 0.0);
}

fn rejected(predictions: Predictions, needle: &str) {
    let error = predictions.validate().unwrap_err();
    assert!(matches!(error, Error::Invalid(_)), "{error:?}");
    assert!(
        error.to_string().contains(needle),
        "{error} lacks {needle:?}"
    );
    let error = evaluate(&predictions, &EvalOptions::default()).unwrap_err();
    assert!(matches!(error, Error::Invalid(_)), "{error:?}");
}

#[test]
fn validate_accepts_the_fixture() {
    hand_fixture().validate().unwrap();
}

#[test]
fn validate_rejects_a_wrong_probability_length() {
    let mut predictions = hand_fixture();
    predictions.probabilities.pop();
    rejected(predictions, "23 probabilities for 8 photos × 3 classes");
}

#[test]
fn validate_rejects_nan_and_values_outside_zero_one() {
    let mut predictions = hand_fixture();
    predictions.probabilities[4] = f32::NAN;
    rejected(predictions, "photo 1 (images/2.jpg): probability NaN");
    let mut predictions = hand_fixture();
    predictions.probabilities[0] = -0.1;
    predictions.probabilities[1] = 0.9;
    rejected(predictions, "photo 0");
    let mut predictions = hand_fixture();
    predictions.probabilities[0] = f32::INFINITY;
    rejected(predictions, "inf");
}

#[test]
fn validate_rejects_rows_that_are_not_softmax_outputs() {
    let mut predictions = hand_fixture();
    predictions.probabilities[0..3].copy_from_slice(&[0.7, 0.7, 0.1]);
    rejected(predictions, "sum to");
}

#[test]
fn validate_rejects_a_target_out_of_range() {
    let mut predictions = hand_fixture();
    predictions.targets[7] = 3;
    rejected(
        predictions,
        "photo 7 (images/8.jpg): target 3 is not a class index",
    );
}

#[test]
fn validate_rejects_no_photos_no_classes_and_bad_names_or_paths() {
    let empty = Predictions {
        class_names: vec!["a".into()],
        targets: vec![],
        probabilities: vec![],
        paths: vec![],
    };
    rejected(empty, "no photos");
    let mut no_classes = hand_fixture();
    no_classes.class_names.clear();
    rejected(no_classes, "no classes");
    let mut twice = hand_fixture();
    twice.class_names[2] = "a".into();
    rejected(twice, "\"a\" appears twice");
    let mut paths = hand_fixture();
    paths.paths.pop();
    rejected(paths, "7 paths for 8 photos");
}

#[test]
fn bad_options_are_refused_before_any_work() {
    let options = EvalOptions {
        calibration_bins: 0,
        ..EvalOptions::default()
    };
    let error = evaluate(&hand_fixture(), &options).unwrap_err();
    assert!(matches!(error, Error::Options(_)), "{error:?}");
}
