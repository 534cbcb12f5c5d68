//! Classification metrics over a split's softmax probabilities: top-k accuracy, per-class
//! precision, recall and F1, macro-F1, the confusion matrix and calibration (ECE and the
//! reliability bins), each with a percentile bootstrap interval over photos.
//!
//! Conventions, chosen to match what readers of the paper's tables expect:
//!
//! - **Ranking.** Classes are ranked by probability, ties broken by the lower class index.
//!   The predicted class is the first one of highest probability, and a photo counts for
//!   top-k when fewer than k classes rank above its target, so top-1 and "predicted equals
//!   target" always agree. With k ≥ the number of classes every photo counts: top-5 over
//!   five classes is exactly 1.0, and it is reported anyway because the paper reports it.
//! - **Undefined ratios are 0**, as scikit-learn's `zero_division=0`: precision of a class
//!   never predicted, recall of a class with no photos, and F1 when both are 0.
//! - **Macro-F1** averages F1 over the classes present among the targets or the predictions
//!   (scikit-learn's default label set), so a class absent from a (re)sample does not count
//!   as a failure of the model.
//! - **ECE** (expected calibration error; Guo, Pleiss, Sun & Weinberger 2017, "On
//!   Calibration of Modern Neural Networks"): the top-1 confidence is put into
//!   `calibration_bins` equal-width bins `(lower, upper]` (the first also takes 0), and ECE
//!   is the count-weighted mean of |accuracy − mean confidence| over the bins.
//!
//! Everything is computed once per photo (predicted class, target's rank, confidence, bin)
//! so that each bootstrap resample is just counting.

use serde::{Deserialize, Serialize};

use crate::bootstrap;
use crate::{Error, Result};

/// How far a row of probabilities may sum from 1 (f32 softmax over a thousand classes stays
/// well inside this; logits passed by mistake do not).
const ROW_SUM_TOLERANCE: f64 = 1e-3;

/// The k of the reported top-k accuracies.
pub const TOP_KS: [usize; 3] = [1, 2, 5];

/// What a classifier said about each photo of a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predictions {
    pub class_names: Vec<String>,
    /// Label index of each photo (into `class_names`).
    pub targets: Vec<usize>,
    /// Row-major N × C softmax probabilities (each row sums to ~1).
    pub probabilities: Vec<f32>,
    /// Optional: the photo paths (same order), for a per-photo table; may be empty.
    pub paths: Vec<String>,
}

impl Predictions {
    /// Number of photos.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are no photos (which [`Predictions::validate`] rejects).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// Each photo's row of probabilities (assumes [`Predictions::validate`] passed).
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.probabilities.chunks_exact(self.classes().max(1))
    }

    /// Checks that the predictions can be evaluated: at least one photo and one class,
    /// distinct class names, N × C probabilities, each in [0, 1] and each row summing to 1
    /// within 1e-3, every target a class index, and paths either absent or one per photo.
    pub fn validate(&self) -> Result<()> {
        self.validate_shapes()?;
        self.validate_targets()?;
        self.validate_rows()
    }

    fn validate_shapes(&self) -> Result<()> {
        let (n, c) = (self.len(), self.classes());
        if n == 0 {
            return Err(invalid("there are no photos".into()));
        }
        if c == 0 {
            return Err(invalid("there are no classes".into()));
        }
        if let Some(name) = first_duplicate(&self.class_names) {
            return Err(invalid(format!("class name {name:?} appears twice")));
        }
        if n.checked_mul(c) != Some(self.probabilities.len()) {
            return Err(invalid(format!(
                "{} probabilities for {n} photos × {c} classes",
                self.probabilities.len()
            )));
        }
        if !self.paths.is_empty() && self.paths.len() != n {
            return Err(invalid(format!(
                "{} paths for {n} photos",
                self.paths.len()
            )));
        }
        Ok(())
    }

    fn validate_targets(&self) -> Result<()> {
        let c = self.classes();
        match self.targets.iter().position(|&t| t >= c) {
            Some(i) => Err(invalid(format!(
                "{}: target {} is not a class index (there are {c} classes)",
                self.photo_name(i),
                self.targets[i]
            ))),
            None => Ok(()),
        }
    }

    fn validate_rows(&self) -> Result<()> {
        for (i, row) in self.rows().enumerate() {
            if let Some(p) = row.iter().find(|p| !(0.0..=1.0).contains(*p)) {
                return Err(invalid(format!(
                    "{}: probability {p} is not a number in [0, 1]",
                    self.photo_name(i)
                )));
            }
            let sum: f64 = row.iter().map(|&p| f64::from(p)).sum();
            if (sum - 1.0).abs() > ROW_SUM_TOLERANCE {
                return Err(invalid(format!(
                    "{}: probabilities sum to {sum}, not 1 (softmax outputs expected)",
                    self.photo_name(i)
                )));
            }
        }
        Ok(())
    }

    /// A photo as an error message names it: its path when known, else its index.
    fn photo_name(&self, index: usize) -> String {
        match self.paths.get(index) {
            Some(path) => format!("photo {index} ({path})"),
            None => format!("photo {index}"),
        }
    }
}

fn invalid(message: String) -> Error {
    Error::Invalid(message)
}

fn first_duplicate(names: &[String]) -> Option<&String> {
    let mut seen = std::collections::HashSet::new();
    names.iter().find(|name| !seen.insert(name.as_str()))
}

/// How to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Bootstrap resamples per interval (default 1000).
    pub bootstrap_resamples: usize,
    /// Seed of the resampling; the same seed gives the same intervals (default 0).
    pub seed: u64,
    /// Equal-width confidence bins for ECE and the reliability diagram (default 15, as Guo et al.).
    pub calibration_bins: usize,
    /// Coverage of the intervals (default 0.95).
    pub confidence: f64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            bootstrap_resamples: 1000,
            seed: 0,
            calibration_bins: 15,
            confidence: 0.95,
        }
    }
}

impl EvalOptions {
    /// Checks that the options can be used: at least one resample and one bin, and a
    /// confidence strictly between 0 and 1.
    pub fn validate(&self) -> Result<()> {
        if self.bootstrap_resamples == 0 {
            return Err(Error::Options(
                "bootstrap_resamples must be at least 1".into(),
            ));
        }
        if self.calibration_bins == 0 {
            return Err(Error::Options("calibration_bins must be at least 1".into()));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(Error::Options(format!(
                "confidence {} is not strictly between 0 and 1",
                self.confidence
            )));
        }
        Ok(())
    }
}

/// A point estimate with its percentile bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// One class's figures; `support` is its number of photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: String,
    pub support: usize,
    /// 0 when the class is never predicted.
    pub precision: Estimate,
    /// 0 when the class has no photos.
    pub recall: Estimate,
    pub f1: Estimate,
}

/// One equal-width bin of top-1 confidence, `(lower, upper]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    /// Mean top-1 confidence of the bin's photos (0 when empty).
    pub mean_confidence: f64,
    /// Share of the bin's photos whose top-1 prediction is right (0 when empty).
    pub accuracy: f64,
}

/// Everything [`evaluate`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub n: usize,
    pub class_names: Vec<String>,
    pub top1: Estimate,
    pub top2: Estimate,
    /// With five classes or fewer this is 1.0 exactly; kept because the paper reports it.
    pub top5: Estimate,
    pub macro_f1: Estimate,
    /// Expected calibration error of the top-1 confidence.
    pub ece: Estimate,
    pub per_class: Vec<ClassMetrics>,
    /// Counts indexed `[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    pub calibration: Vec<CalibrationBin>,
    pub options: EvalOptions,
}

/// Evaluates `predictions`: point estimates on all photos, intervals by the percentile
/// bootstrap over photos (see [`crate::bootstrap`]).
pub fn evaluate(predictions: &Predictions, options: &EvalOptions) -> Result<EvalReport> {
    predictions.validate()?;
    options.validate()?;
    let classes = predictions.classes();
    let bins = options.calibration_bins;
    let photos = photo_outcomes(predictions, bins);
    let point = Counts::tally(classes, bins, photos.iter());
    let samples = bootstrap::resample_statistics(
        &photos,
        options.bootstrap_resamples,
        options.seed,
        |resample| Counts::tally(classes, bins, resample).statistics(),
    );
    let intervals = bootstrap::percentile_intervals(&samples, options.confidence);
    let estimates: Vec<Estimate> = point
        .statistics()
        .into_iter()
        .zip(intervals)
        .map(|(value, (low, high))| Estimate { value, low, high })
        .collect();
    Ok(assemble(predictions, options, &point, &estimates))
}

fn assemble(
    predictions: &Predictions,
    options: &EvalOptions,
    point: &Counts,
    estimates: &[Estimate],
) -> EvalReport {
    let per_class = predictions
        .class_names
        .iter()
        .enumerate()
        .map(|(c, name)| ClassMetrics {
            class: name.clone(),
            support: point.support(c) as usize,
            precision: estimates[Stat::Precision(c).index()],
            recall: estimates[Stat::Recall(c).index()],
            f1: estimates[Stat::F1(c).index()],
        })
        .collect();
    EvalReport {
        n: predictions.len(),
        class_names: predictions.class_names.clone(),
        top1: estimates[Stat::Top(0).index()],
        top2: estimates[Stat::Top(1).index()],
        top5: estimates[Stat::Top(2).index()],
        macro_f1: estimates[Stat::MacroF1.index()],
        ece: estimates[Stat::Ece.index()],
        per_class,
        confusion: point.confusion_rows(),
        calibration: point.calibration_bins(),
        options: options.clone(),
    }
}

/// Where each statistic sits in the flat vector the bootstrap resamples.
#[derive(Debug, Clone, Copy)]
enum Stat {
    /// Top-k accuracy for `TOP_KS[i]`.
    Top(usize),
    MacroF1,
    Ece,
    Precision(usize),
    Recall(usize),
    F1(usize),
}

impl Stat {
    const HEADLINE: usize = TOP_KS.len() + 2;

    fn index(self) -> usize {
        match self {
            Stat::Top(i) => i,
            Stat::MacroF1 => TOP_KS.len(),
            Stat::Ece => TOP_KS.len() + 1,
            Stat::Precision(c) => Self::HEADLINE + 3 * c,
            Stat::Recall(c) => Self::HEADLINE + 3 * c + 1,
            Stat::F1(c) => Self::HEADLINE + 3 * c + 2,
        }
    }
}

/// What evaluation needs of one photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PhotoOutcome {
    pub target: usize,
    pub predicted: usize,
    /// How many classes rank above the target (0 = top-1 hit).
    pub rank: usize,
    /// Top-1 probability.
    pub confidence: f64,
    pub bin: usize,
}

impl PhotoOutcome {
    pub fn correct(&self) -> bool {
        self.rank == 0
    }
}

/// Each photo's outcome (assumes [`Predictions::validate`] passed).
pub(crate) fn photo_outcomes(predictions: &Predictions, bins: usize) -> Vec<PhotoOutcome> {
    predictions
        .rows()
        .zip(&predictions.targets)
        .map(|(row, &target)| outcome(row, target, bins))
        .collect()
}

fn outcome(row: &[f32], target: usize, bins: usize) -> PhotoOutcome {
    let predicted = argmax(row);
    let confidence = f64::from(row[predicted]);
    PhotoOutcome {
        target,
        predicted,
        rank: rank_of(row, target),
        confidence,
        bin: bin_of(confidence, bins),
    }
}

/// The first index of the highest value (the lower class wins a tie, as in top-k).
pub(crate) fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(0, |best, (i, &p)| if p > row[best] { i } else { best })
}

/// Classes ranked above `target`: higher probability, or equal and a lower index.
fn rank_of(row: &[f32], target: usize) -> usize {
    let score = row[target];
    row.iter()
        .enumerate()
        .filter(|&(i, &p)| p > score || (p == score && i < target))
        .count()
}

/// The `(lower, upper]` bin of `confidence` among `bins` equal-width bins on [0, 1].
fn bin_of(confidence: f64, bins: usize) -> usize {
    let upper_edge = (confidence * bins as f64).ceil() as usize;
    upper_edge.clamp(1, bins) - 1
}

/// Counts over a set (or a resample) of photos, from which every statistic follows.
#[derive(Debug, Clone)]
struct Counts {
    classes: usize,
    n: u64,
    /// Row-major `[true][predicted]`.
    confusion: Vec<u64>,
    top_hits: [u64; TOP_KS.len()],
    bin_count: Vec<u64>,
    bin_correct: Vec<u64>,
    bin_confidence: Vec<f64>,
}

impl Counts {
    fn tally<'a>(
        classes: usize,
        bins: usize,
        photos: impl Iterator<Item = &'a PhotoOutcome>,
    ) -> Self {
        let mut counts = Counts {
            classes,
            n: 0,
            confusion: vec![0; classes * classes],
            top_hits: [0; TOP_KS.len()],
            bin_count: vec![0; bins],
            bin_correct: vec![0; bins],
            bin_confidence: vec![0.0; bins],
        };
        for photo in photos {
            counts.add(photo);
        }
        counts
    }

    fn add(&mut self, photo: &PhotoOutcome) {
        self.n += 1;
        self.confusion[photo.target * self.classes + photo.predicted] += 1;
        for (hits, k) in self.top_hits.iter_mut().zip(TOP_KS) {
            *hits += u64::from(photo.rank < k);
        }
        self.bin_count[photo.bin] += 1;
        self.bin_correct[photo.bin] += u64::from(photo.correct());
        self.bin_confidence[photo.bin] += photo.confidence;
    }

    /// Every statistic, laid out as [`Stat::index`] says.
    fn statistics(&self) -> Vec<f64> {
        let mut values = Vec::with_capacity(Stat::HEADLINE + 3 * self.classes);
        values.extend(self.top_hits.iter().map(|&h| ratio(h, self.n)));
        values.push(self.macro_f1());
        values.push(self.ece());
        for c in 0..self.classes {
            values.extend([self.precision(c), self.recall(c), self.f1(c)]);
        }
        values
    }

    fn true_positives(&self, class: usize) -> u64 {
        self.confusion[class * self.classes + class]
    }

    fn support(&self, class: usize) -> u64 {
        self.confusion[class * self.classes..(class + 1) * self.classes]
            .iter()
            .sum()
    }

    fn predicted(&self, class: usize) -> u64 {
        (0..self.classes)
            .map(|t| self.confusion[t * self.classes + class])
            .sum()
    }

    fn precision(&self, class: usize) -> f64 {
        ratio(self.true_positives(class), self.predicted(class))
    }

    fn recall(&self, class: usize) -> f64 {
        ratio(self.true_positives(class), self.support(class))
    }

    /// 2TP / (2TP + FP + FN), i.e. the harmonic mean of precision and recall.
    fn f1(&self, class: usize) -> f64 {
        let tp = self.true_positives(class);
        ratio(2 * tp, self.predicted(class) + self.support(class))
    }

    fn macro_f1(&self) -> f64 {
        let present: Vec<usize> = (0..self.classes)
            .filter(|&c| self.predicted(c) + self.support(c) > 0)
            .collect();
        let total: f64 = present.iter().map(|&c| self.f1(c)).sum();
        if present.is_empty() {
            0.0
        } else {
            total / present.len() as f64
        }
    }

    /// Σ_bins (count / N) · |accuracy − mean confidence| = Σ_bins |correct − Σ confidence| / N.
    fn ece(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let gaps: f64 = self
            .bin_correct
            .iter()
            .zip(&self.bin_confidence)
            .map(|(&correct, &confidence)| (correct as f64 - confidence).abs())
            .sum();
        gaps / self.n as f64
    }

    fn confusion_rows(&self) -> Vec<Vec<u64>> {
        self.confusion
            .chunks_exact(self.classes.max(1))
            .map(<[u64]>::to_vec)
            .collect()
    }

    fn calibration_bins(&self) -> Vec<CalibrationBin> {
        let bins = self.bin_count.len();
        (0..bins)
            .map(|b| {
                let count = self.bin_count[b];
                CalibrationBin {
                    lower: b as f64 / bins as f64,
                    upper: (b + 1) as f64 / bins as f64,
                    count: count as usize,
                    mean_confidence: if count == 0 {
                        0.0
                    } else {
                        self.bin_confidence[b] / count as f64
                    },
                    accuracy: ratio(self.bin_correct[b], count),
                }
            })
            .collect()
    }
}

/// `numerator / denominator`, 0 when the denominator is 0.
fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_break_ties_by_the_lower_class_index() {
        let row = [0.25, 0.5, 0.25];
        assert_eq!(argmax(&row), 1);
        assert_eq!(rank_of(&row, 1), 0);
        assert_eq!(rank_of(&row, 0), 1);
        assert_eq!(rank_of(&row, 2), 2);
        let flat = [0.5, 0.5];
        assert_eq!(argmax(&flat), 0);
        assert_eq!((rank_of(&flat, 0), rank_of(&flat, 1)), (0, 1));
    }

    #[test]
    fn bins_are_open_below_and_closed_above() {
        assert_eq!(bin_of(0.0, 10), 0);
        assert_eq!(bin_of(0.05, 10), 0);
        assert_eq!(bin_of(0.5, 10), 4);
        assert_eq!(bin_of(0.500_001, 10), 5);
        assert_eq!(bin_of(1.0, 10), 9);
        assert_eq!(bin_of(0.99, 1), 0);
    }

    #[test]
    fn options_are_checked() {
        assert!(EvalOptions::default().validate().is_ok());
        for bad in [
            EvalOptions {
                bootstrap_resamples: 0,
                ..EvalOptions::default()
            },
            EvalOptions {
                calibration_bins: 0,
                ..EvalOptions::default()
            },
            EvalOptions {
                confidence: 1.0,
                ..EvalOptions::default()
            },
            EvalOptions {
                confidence: f64::NAN,
                ..EvalOptions::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::Options(_))), "{bad:?}");
        }
    }
}
