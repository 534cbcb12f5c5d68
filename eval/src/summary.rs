//! `summary.md`: the report for a person. The headline figures with their intervals, per
//! class figures, the confusion matrix and the calibration bins as Markdown tables, and
//! plain sentences on what the figures can and cannot say (top-k that is trivially 100 %,
//! what the interval covers, which way the model is miscalibrated).
//!
//! Figures are percentages with one decimal, "90.5 % (89.7–91.2)": point estimate, then
//! the bootstrap interval.

use std::fmt::Write as _;

use crate::ReportContext;
use crate::classification::{CalibrationBin, EvalReport, TOP_KS};
use crate::format::{percent, share};

/// The whole Markdown text. `files` are the other files of the report, by name.
pub(crate) fn render(report: &EvalReport, context: &ReportContext, files: &[String]) -> String {
    let sections = [
        header(report, context),
        headline(report),
        per_class(report),
        confusion(report),
        calibration(report),
        file_list(files),
    ];
    let trimmed: Vec<&str> = sections.iter().map(|s| s.trim_end()).collect();
    trimmed.join("\n\n") + "\n"
}

fn header(report: &EvalReport, context: &ReportContext) -> String {
    let mut text = format!("# {}\n\n", context.title);
    for note in &context.notes {
        let _ = writeln!(text, "- {note}");
    }
    if !context.notes.is_empty() {
        text.push('\n');
    }
    let _ = writeln!(
        text,
        "{} photos in {} classes ({}). Figures are percentages; brackets hold the {} interval.",
        report.n,
        report.class_names.len(),
        report.class_names.join(", "),
        level(report.options.confidence),
    );
    text
}

fn headline(report: &EvalReport) -> String {
    let options = &report.options;
    let mut text = format!(
        "## Headline\n\n| metric | value ({} interval) |\n|---|---|\n",
        level(options.confidence)
    );
    let rows = [
        ("top-1 accuracy".to_string(), report.top1),
        ("top-2 accuracy".to_string(), report.top2),
        ("top-5 accuracy".to_string(), report.top5),
        ("macro-F1".to_string(), report.macro_f1),
        (
            format!("ECE ({} bins)", options.calibration_bins),
            report.ece,
        ),
    ];
    for (name, estimate) in rows {
        let _ = writeln!(text, "| {name} | {} |", percent(&estimate));
    }
    text.push('\n');
    for sentence in trivial_top_k(report.class_names.len())
        .into_iter()
        .chain([interval_sentence(report), calibration_sentence(report)])
    {
        let _ = writeln!(text, "{sentence}\n");
    }
    text
}

/// Why a top-k with k ≥ the number of classes is shown at all.
fn trivial_top_k(classes: usize) -> Option<String> {
    let trivial: Vec<String> = TOP_KS
        .iter()
        .filter(|&&k| k > 1 && k >= classes)
        .map(|k| format!("top-{k}"))
        .collect();
    let verb = if trivial.len() > 1 { "are" } else { "is" };
    (!trivial.is_empty()).then(|| {
        format!(
            "With {classes} classes, {} accuracy {verb} always 100 %: the true class is always \
             among the {classes} most likely, so the figure says nothing about the model. It \
             is reported only because the paper's Table 1 does.",
            trivial.join(" and "),
        )
    })
}

fn interval_sentence(report: &EvalReport) -> String {
    let options = &report.options;
    let tail = (1.0 - options.confidence) / 2.0 * 100.0;
    format!(
        "The intervals are percentile bootstrap intervals over photos (Efron & Tibshirani \
         1993): the {n} photos were resampled with replacement {r} times (ChaCha8, seed \
         {seed}), every metric was recomputed on each resample, and the {low}th and {high}th \
         percentiles kept. They say how much a figure would move on another {n} photos like \
         these; they do not include the spread between training runs (seed, initialisation), \
         which only several runs can show.",
        n = report.n,
        r = options.bootstrap_resamples,
        seed = options.seed,
        low = number(tail),
        high = number(100.0 - tail),
    )
}

fn calibration_sentence(report: &EvalReport) -> String {
    let confidence = mean_confidence(&report.calibration, report.n);
    let accuracy = report.top1.value;
    let direction = if confidence > accuracy {
        "overconfident"
    } else {
        "underconfident"
    };
    let mut text = format!(
        "ECE (expected calibration error; Guo et al. 2017) puts each photo's top-1 confidence \
         into {} equal-width bins and averages |accuracy − mean confidence| over the bins, \
         weighted by their photos; 0 % means the confidence can be read as the chance of \
         being right. On average this model is {direction}: mean top-1 confidence {} against \
         top-1 accuracy {}.",
        report.options.calibration_bins,
        share(confidence),
        share(accuracy),
    );
    if report.ece.value < report.ece.low {
        text.push_str(
            " The ECE interval lies above the point value: resampling duplicates photos, which \
             inflates ECE, and the percentile interval is not bias-corrected.",
        );
    }
    text
}

fn mean_confidence(bins: &[CalibrationBin], n: usize) -> f64 {
    let total: f64 = bins
        .iter()
        .map(|b| b.mean_confidence * b.count as f64)
        .sum();
    total / n.max(1) as f64
}

fn per_class(report: &EvalReport) -> String {
    let mut text = String::from(
        "## Per class\n\n| class | photos | precision | recall | F1 |\n|---|---:|---|---|---|\n",
    );
    for class in &report.per_class {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} |",
            cell(&class.class),
            class.support,
            percent(&class.precision),
            percent(&class.recall),
            percent(&class.f1),
        );
    }
    text.push_str(
        "\nPrecision of a class the model never predicts counts as 0 %, and so does recall of \
         a class with no photos (scikit-learn's `zero_division=0`). Macro-F1 is the plain mean \
         of F1 over the classes present among the targets or the predictions.\n",
    );
    text
}

fn confusion(report: &EvalReport) -> String {
    let names = &report.class_names;
    let mut text = String::from(
        "## Confusion matrix\n\nRows are the true class, columns the predicted class; each \
         cell gives photos and, in brackets, their share of the row.\n\n| true \\ predicted |",
    );
    for name in names {
        let _ = write!(text, " {} |", cell(name));
    }
    text.push_str("\n|---|");
    text.push_str(&"---:|".repeat(names.len()));
    text.push('\n');
    for (name, row) in names.iter().zip(&report.confusion) {
        let total: u64 = row.iter().sum();
        let _ = write!(text, "| **{}** |", cell(name));
        for &count in row {
            let share = if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            };
            let _ = write!(text, " {count} ({}) |", crate::format::share(share));
        }
        text.push('\n');
    }
    text.push_str("\n![confusion matrix](confusion.png)\n");
    text
}

fn calibration(report: &EvalReport) -> String {
    let mut text = String::from(
        "## Calibration\n\nNon-empty confidence bins (top-1 probability).\n\n\
         | confidence | photos | mean confidence | accuracy |\n|---|---:|---:|---:|\n",
    );
    for bin in report.calibration.iter().filter(|b| b.count > 0) {
        let _ = writeln!(
            text,
            "| ({:.3}, {:.3}] | {} | {} | {} |",
            bin.lower,
            bin.upper,
            bin.count,
            share(bin.mean_confidence),
            share(bin.accuracy),
        );
    }
    text.push_str("\n![reliability diagram](reliability.png)\n");
    text
}

fn file_list(files: &[String]) -> String {
    let mut text = String::from("## Files\n\n");
    for file in files {
        let _ = writeln!(text, "- [{file}]({file})");
    }
    text
}

/// "90.5 % (89.7–91.2)".
/// "95 %" for 0.95.
fn level(confidence: f64) -> String {
    format!("{} %", number(confidence * 100.0))
}

/// A number with at most two decimals and no trailing zeros: 2.5, 95, 97.5.
fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Keeps a table cell from splitting on a `|` in a class name.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Estimate;

    #[test]
    fn figures_are_percentages_with_one_decimal() {
        let estimate = Estimate {
            value: 0.905,
            low: 0.8971,
            high: 0.9124,
        };
        assert_eq!(percent(&estimate), "90.5 % (89.7–91.2)");
        assert_eq!(level(0.95), "95 %");
        assert_eq!(
            (number(2.5), number(97.5), number(10.0)),
            ("2.5".into(), "97.5".into(), "10".into())
        );
    }

    #[test]
    fn trivial_top_k_is_explained_only_when_it_is_trivial() {
        let five = trivial_top_k(5).unwrap_or_default();
        assert!(five.contains("top-5 accuracy is always 100 %"), "{five}");
        assert!(five.contains("says nothing"), "{five}");
        assert!(!five.contains("top-2"), "{five}");
        let two = trivial_top_k(2).unwrap_or_default();
        assert!(two.contains("top-2 and top-5 accuracy are always"), "{two}");
        assert!(trivial_top_k(10).is_none());
    }
}
