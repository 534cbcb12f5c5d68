//! The bootstrap intervals: reproducible, sensible, and narrowing with more photos.

mod common;

use album_eval::{Estimate, EvalOptions, EvalReport, evaluate};
use common::{perfect, synthetic};

fn options(seed: u64) -> EvalOptions {
    EvalOptions {
        bootstrap_resamples: 500,
        seed,
        ..EvalOptions::default()
    }
}

fn headline(report: &EvalReport) -> [(&'static str, Estimate); 4] {
    [
        ("top1", report.top1),
        ("top2", report.top2),
        ("macro_f1", report.macro_f1),
        ("ece", report.ece),
    ]
}

#[test]
fn the_same_seed_gives_identical_intervals_and_another_seed_others() {
    let predictions = synthetic(400, 5, 0.8, 1);
    let first = evaluate(&predictions, &options(7)).unwrap();
    let again = evaluate(&predictions, &options(7)).unwrap();
    assert_eq!(first, again);
    let other = evaluate(&predictions, &options(8)).unwrap();
    assert_eq!(first.top1.value, other.top1.value);
    assert_ne!(
        (first.top1.low, first.top1.high, first.ece.low),
        (other.top1.low, other.top1.high, other.ece.low)
    );
}

#[test]
fn the_same_seed_gives_the_same_intervals_on_any_number_of_threads() {
    let predictions = synthetic(300, 5, 0.7, 2);
    let many = evaluate(&predictions, &options(3)).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| evaluate(&predictions, &options(3)).unwrap());
    assert_eq!(many, one);
}

#[test]
fn intervals_contain_the_point_estimate_and_are_ordered() {
    let predictions = synthetic(1000, 5, 0.85, 4);
    let report = evaluate(&predictions, &options(0)).unwrap();
    let per_class = report.per_class.iter().flat_map(|c| {
        [
            ("precision", c.precision),
            ("recall", c.recall),
            ("f1", c.f1),
        ]
    });
    for (name, estimate) in headline(&report).into_iter().chain(per_class) {
        assert!(estimate.low <= estimate.high, "{name}: {estimate:?}");
        assert!((0.0..=1.0).contains(&estimate.low), "{name}: {estimate:?}");
        assert!((0.0..=1.0).contains(&estimate.high), "{name}: {estimate:?}");
        // ECE is inflated by resampling; see the bootstrap module's docs.
        if name != "ece" {
            assert!(
                estimate.low <= estimate.value && estimate.value <= estimate.high,
                "{name}: {estimate:?}"
            );
        }
    }
    assert!(report.top1.low < report.top1.high, "{:?}", report.top1);
}

#[test]
fn a_perfect_classifier_has_intervals_of_exactly_one() {
    let report = evaluate(&perfect(250), &options(5)).unwrap();
    let one = Estimate {
        value: 1.0,
        low: 1.0,
        high: 1.0,
    };
    assert_eq!((report.top1, report.top2, report.top5), (one, one, one));
    assert_eq!(report.macro_f1, one);
    for class in &report.per_class {
        assert_eq!((class.precision, class.recall, class.f1), (one, one, one));
    }
    // Confidence 1 on every right answer: perfectly calibrated.
    assert_eq!(
        (report.ece.value, report.ece.low, report.ece.high),
        (0.0, 0.0, 0.0)
    );
}

#[test]
fn intervals_narrow_with_more_photos() {
    let width = |e: Estimate| e.high - e.low;
    let small = evaluate(&synthetic(200, 5, 0.8, 6), &options(0)).unwrap();
    let large = evaluate(&synthetic(5000, 5, 0.8, 6), &options(0)).unwrap();
    // Width shrinks like 1/√N: 5× for 25× the photos; ask for at least 2.5×.
    for ((name, s), (_, l)) in headline(&small).into_iter().zip(headline(&large)) {
        assert!(
            width(l) * 2.5 < width(s),
            "{name}: {s:?} with 200 photos, {l:?} with 5000"
        );
    }
    assert!(width(small.top1) > 0.05, "{:?}", small.top1);
}

#[test]
fn a_full_size_test_split_evaluates() {
    // The paper's test split: 6,000 photos, five classes, the default 1000 resamples.
    let predictions = synthetic(6000, 5, 0.9, 9);
    let report = evaluate(&predictions, &EvalOptions::default()).unwrap();
    assert_eq!(report.n, 6000);
    assert!(
        report.top1.high - report.top1.low < 0.03,
        "{:?}",
        report.top1
    );
}
