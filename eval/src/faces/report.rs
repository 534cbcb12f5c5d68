//! The face evaluation written out: tables as Parquet and CSV, the threshold sweep as a
//! chart, and `summary.md` setting the figures beside dlib's and the paper's.
//!
//! - `photos.parquet`: person, file, faces found, the labelled face's score and box, error;
//! - `verification.{parquet,csv}`: metric, value;
//! - `clustering.{parquet,csv}`: one row per method at its fixed setting;
//! - `sweep.{parquet,csv}` and `sweep.png`: BCubed F1 of each method and the balanced
//!   verification accuracy at each similarity threshold;
//! - `timing.{parquet,csv}`: seconds and milliseconds per face for each stage.

use std::path::{Path, PathBuf};

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use polars::prelude::*;

use super::{FacesEval, SweepPoint};
use crate::charts::{Area, DrawResult, FONT, GREY, colour, draw_png};
use crate::format::share;
use crate::tables::{write_csv, write_parquet, write_text};
use crate::{Error, Result};
use album_faces::cluster::{DLIB_SAME_PERSON_DISTANCE, PAPER_THRESHOLD, similarity_of_distance};

/// dlib's published verification accuracy on LFW's 6,000-pair protocol.
const DLIB_LFW_ACCURACY: f64 = 0.9938;
/// The paper's face recognition accuracy.
const PAPER_FACE_ACCURACY: f64 = 0.936;

/// Reads one curve's value from a sweep point.
type Reading = fn(&SweepPoint) -> f64;

const SWEEP_SIZE: (u32, u32) = (1000, 650);

/// Writes every table, the chart and the summary into `dir`; returns the paths written.
pub fn write_faces_report(eval: &FacesEval, dir: &Path, notes: &[String]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
    let mut written = Vec::new();
    let photos = dir.join("photos.parquet");
    let mut frame = photos_frame(eval).map_err(|e| Error::table(&photos, e))?;
    written.push(write_parquet(&mut frame, &photos)?);
    for (stem, frame) in [
        ("verification", verification_frame(eval)),
        ("clustering", clustering_frame(eval)),
        ("sweep", sweep_frame(&eval.quality.sweep)),
        ("timing", timing_frame(eval)),
    ] {
        let parquet = dir.join(format!("{stem}.parquet"));
        let mut frame = frame.map_err(|e| Error::table(&parquet, e))?;
        written.push(write_parquet(&mut frame, &parquet)?);
        written.push(write_csv(&mut frame, &parquet.with_extension("csv"))?);
    }
    let chart = dir.join("sweep.png");
    draw_png(&chart, SWEEP_SIZE, |root| {
        draw_sweep(root, &eval.quality.sweep)
    })?;
    written.push(chart);
    written.push(write_text(&dir.join("summary.md"), &summary(eval, notes))?);
    Ok(written)
}

fn photos_frame(eval: &FacesEval) -> PolarsResult<DataFrame> {
    let p = &eval.photos;
    let main = |f: fn(&album_faces::detect::Detection) -> f32| {
        p.iter().map(|o| o.main.as_ref().map(f)).collect::<Vec<_>>()
    };
    df!(
        "person" => p.iter().map(|o| o.person.clone()).collect::<Vec<_>>(),
        "file" => p.iter().map(|o| o.file.clone()).collect::<Vec<_>>(),
        "faces" => p.iter().map(|o| o.faces as u32).collect::<Vec<_>>(),
        "score" => main(|d| d.score),
        "x1" => main(|d| d.bbox[0]),
        "y1" => main(|d| d.bbox[1]),
        "x2" => main(|d| d.bbox[2]),
        "y2" => main(|d| d.bbox[3]),
        "error" => p.iter().map(|o| o.error.clone()).collect::<Vec<_>>(),
    )
}

fn verification_rows(eval: &FacesEval) -> Vec<(&'static str, f64)> {
    let v = &eval.quality.verification;
    vec![
        ("photos", eval.photos.len() as f64),
        ("detection_rate", eval.detection_rate()),
        ("same_pairs", v.same_pairs as f64),
        ("different_pairs", v.different_pairs as f64),
        ("roc_auc", v.roc_auc),
        ("best_threshold_distance", f64::from(v.best_threshold)),
        ("best_balanced_accuracy", v.best_balanced_accuracy),
        ("fixed_threshold_distance", f64::from(v.fixed_threshold)),
        ("fixed_balanced_accuracy", v.fixed_balanced_accuracy),
        ("faces_per_second", eval.faces_per_second()),
    ]
}

fn verification_frame(eval: &FacesEval) -> PolarsResult<DataFrame> {
    let rows = verification_rows(eval);
    df!(
        "metric" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "value" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
    )
}

fn clustering_frame(eval: &FacesEval) -> PolarsResult<DataFrame> {
    let m = &eval.quality.methods;
    let column =
        |f: fn(&super::ClusterScores) -> f64| m.iter().map(|r| f(&r.scores)).collect::<Vec<_>>();
    let count = |f: fn(&super::ClusterScores) -> usize| {
        m.iter().map(|r| f(&r.scores) as u32).collect::<Vec<_>>()
    };
    df!(
        "method" => m.iter().map(|r| r.method).collect::<Vec<_>>(),
        "setting" => m.iter().map(|r| r.setting.clone()).collect::<Vec<_>>(),
        "population" => m.iter().map(|r| r.population.clone()).collect::<Vec<_>>(),
        "bcubed_precision" => column(|s| s.bcubed_precision),
        "bcubed_recall" => column(|s| s.bcubed_recall),
        "bcubed_f1" => column(|s| s.bcubed_f1),
        "pairwise_precision" => column(|s| s.pairwise_precision),
        "pairwise_recall" => column(|s| s.pairwise_recall),
        "pairwise_f1" => column(|s| s.pairwise_f1),
        "people_found" => count(|s| s.people_found),
        "unassigned_faces" => count(|s| s.unassigned),
        "people_true" => count(|s| s.people_true),
    )
}

fn sweep_frame(sweep: &[SweepPoint]) -> PolarsResult<DataFrame> {
    df!(
        "similarity" => sweep.iter().map(|s| s.similarity).collect::<Vec<_>>(),
        "distance" => sweep.iter().map(|s| s.distance).collect::<Vec<_>>(),
        "balanced_accuracy" => sweep.iter().map(|s| s.balanced_accuracy).collect::<Vec<_>>(),
        "paper_rule_bcubed_f1" => sweep.iter().map(|s| s.paper_rule_bcubed_f1).collect::<Vec<_>>(),
        "density_incremental_bcubed_f1" => sweep.iter().map(|s| s.density_incremental_bcubed_f1).collect::<Vec<_>>(),
        "density_batch_bcubed_f1" => sweep.iter().map(|s| s.density_batch_bcubed_f1).collect::<Vec<_>>(),
    )
}

fn timing_rows(eval: &FacesEval) -> Vec<(&'static str, f64)> {
    let t = &eval.times;
    vec![
        ("decode", t.decode.as_secs_f64()),
        ("detect", t.detect.as_secs_f64()),
        ("align", t.align.as_secs_f64()),
        ("embed", t.embed.as_secs_f64()),
    ]
}

fn timing_frame(eval: &FacesEval) -> PolarsResult<DataFrame> {
    let rows = timing_rows(eval);
    let faces = eval.faces_embedded.max(1) as f64;
    df!(
        "stage" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "seconds" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "ms_per_face" => rows.iter().map(|r| r.1 * 1000.0 / faces).collect::<Vec<_>>(),
    )
}

/// The sweep: each method's BCubed F1 and the balanced verification accuracy against the
/// similarity threshold, with the paper's 72 % and dlib's 70 % (d = 0.6) marked.
/// Score units above the highest score kept for the threshold markers' names.
const MARKER_BAND: f64 = 0.1;

/// A score tick: one decimal, blank in the band above the scores.
fn score_tick(value: f64, top_score: f64) -> String {
    if value > top_score {
        String::new()
    } else {
        format!("{value:.1}")
    }
}

fn draw_sweep(root: &Area<'_>, sweep: &[SweepPoint]) -> DrawResult<()> {
    let (low, high) = sweep.iter().fold((1.0f64, 0.0f64), |(lo, hi), s| {
        let values = [
            s.balanced_accuracy,
            s.paper_rule_bcubed_f1,
            s.density_incremental_bcubed_f1,
            s.density_batch_bcubed_f1,
        ];
        values
            .iter()
            .fold((lo, hi), |(lo, hi), &v| (lo.min(v), hi.max(v)))
    });
    let x_range = sweep
        .first()
        .map_or(50.0, |s| f64::from(s.similarity) * 100.0)
        ..sweep
            .last()
            .map_or(90.0, |s| f64::from(s.similarity) * 100.0);
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Threshold sweep: clustering BCubed F1 and verification accuracy",
            (FONT, 24),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        // A band above the highest score holds the threshold markers' names, so that no
        // curve runs through them; its ticks stay unlabelled (no score lives there).
        .build_cartesian_2d(x_range, (low - 0.02).max(0.0)..high + MARKER_BAND)?;
    let top_score = high + 0.02;
    chart
        .configure_mesh()
        .x_desc("similarity threshold, % (= 1 − distance/2)")
        .y_desc("score")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| score_tick(*v, top_score))
        .label_style((FONT, 16))
        .draw()?;
    let series: [(&str, Reading); 4] = [
        ("paper rule, incremental (BCubed F1)", |s| {
            s.paper_rule_bcubed_f1
        }),
        ("density, incremental (BCubed F1)", |s| {
            s.density_incremental_bcubed_f1
        }),
        ("density + Chinese whispers, batch (BCubed F1)", |s| {
            s.density_batch_bcubed_f1
        }),
        ("verification, balanced accuracy", |s| s.balanced_accuracy),
    ];
    for (i, (name, value)) in series.into_iter().enumerate() {
        let line_colour = colour(i);
        let points = sweep
            .iter()
            .map(|s| (f64::from(s.similarity) * 100.0, value(s)));
        chart
            .draw_series(LineSeries::new(points, line_colour.stroke_width(3)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 24, y)], line_colour.stroke_width(3))
            });
    }
    let (y_low, y_high) = ((low - 0.02).max(0.0), high + MARKER_BAND);
    for (x, name) in [
        (f64::from(PAPER_THRESHOLD) * 100.0, " paper's 72 % "),
        (
            f64::from(similarity_of_distance(DLIB_SAME_PERSON_DISTANCE)) * 100.0,
            " dlib's d = 0.6 (70 %) ",
        ),
    ] {
        chart.draw_series(std::iter::once(DashedPathElement::new(
            [(x, y_low), (x, y_high)],
            6,
            4,
            GREY.stroke_width(2),
        )))?;
        // Each marker names itself beside its top, so two grey lines cannot be confused.
        let label = Text::new(
            name.to_string(),
            (x, y_high),
            (FONT, 15).into_font().color(&GREY).pos(Pos::new(
                if x > 71.0 { HPos::Left } else { HPos::Right },
                VPos::Top,
            )),
        );
        chart.draw_series(std::iter::once(label))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .label_font((FONT, 16))
        .draw()
}

fn summary(eval: &FacesEval, notes: &[String]) -> String {
    let v = &eval.quality.verification;
    let mut text = String::from("# Faces: detection, verification and clustering\n\n");
    for note in notes {
        text.push_str(&format!("- {note}\n"));
    }
    let found = eval.photos.iter().filter(|p| p.faces > 0).count();
    let failed = eval.photos.iter().filter(|p| p.error.is_some()).count();
    text.push_str(&format!(
        "\n{} photos of {} people; a face found in {} ({}); {} could not be read.\n\n",
        eval.photos.len(),
        eval.people.len(),
        found,
        share(eval.detection_rate()),
        failed
    ));
    text.push_str("## Verification (every pair of labelled faces)\n\n");
    text.push_str("Balanced accuracy: the mean of the accuracy on same-person pairs and on different-person pairs (LFW's protocol uses equal numbers of both).\n\n");
    text.push_str("| figure | value |\n|---|---|\n");
    text.push_str(&format!(
        "| pairs (same / different) | {} / {} |\n",
        v.same_pairs, v.different_pairs
    ));
    text.push_str(&format!("| ROC AUC | {:.4} |\n", v.roc_auc));
    text.push_str(&format!(
        "| balanced accuracy at dlib's fixed d < {:.2} (not tuned here) | {} |\n",
        v.fixed_threshold,
        share(v.fixed_balanced_accuracy)
    ));
    text.push_str(&format!(
        "| best balanced accuracy (threshold d < {:.3}, chosen on these pairs) | {} |\n",
        v.best_threshold,
        share(v.best_balanced_accuracy)
    ));
    text.push_str(&format!(
        "| dlib's published LFW accuracy (6,000 pairs) | {} |\n",
        share(DLIB_LFW_ACCURACY)
    ));
    text.push_str(&format!(
        "| the paper's face accuracy | {} |\n\n",
        share(PAPER_FACE_ACCURACY)
    ));
    text.push_str(&format!(
        "## Clustering into people\n\nIncremental methods see the faces one by one in a shuffled order (seed {}); the batch method regroups them all at once. A face left out of every person counts as a cluster of its own. Similarity = 1 − d/2 on the descriptor distance d.\n\nThe paper's rule runs at its own 72 %, untuned. The density method's link distance (d < {:.2}) was chosen on the *tuning half* of the people (every other person in name order) by batch BCubed F1; the *held-out half* never took part in that choice, so its rows are the honest ones. The rows for all people include the tuning half.\n\n",
        eval.options.order_seed, eval.quality.density_distance
    ));
    text.push_str("| people | method | setting | BCubed P | BCubed R | BCubed F1 | pairwise F1 | people found / true | left out |\n|---|---|---|---|---|---|---|---|---|\n");
    for m in &eval.quality.methods {
        let s = &m.scores;
        text.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.3} | **{:.3}** | {:.3} | {} / {} | {} |\n",
            m.population,
            m.method,
            m.setting,
            s.bcubed_precision,
            s.bcubed_recall,
            s.bcubed_f1,
            s.pairwise_f1,
            s.people_found,
            s.people_true,
            s.unassigned
        ));
    }
    text.push_str("\n![threshold sweep](sweep.png)\n\n## Speed\n\n");
    text.push_str(&format!(
        "{} faces through detect + align + embed at **{:.1} faces/s** (flex CPU, one photo at a time).\n\n| stage | seconds | ms per face |\n|---|---|---|\n",
        eval.faces_embedded,
        eval.faces_per_second()
    ));
    let faces = eval.faces_embedded.max(1) as f64;
    for (stage, seconds) in timing_rows(eval) {
        text.push_str(&format!(
            "| {stage} | {seconds:.2} | {:.1} |\n",
            seconds * 1000.0 / faces
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_face_sweeps_marker_band_has_no_score_ticks() {
        assert_eq!(score_tick(1.05, 1.01), "");
        assert_eq!(score_tick(0.9, 1.01), "0.9");
        assert_eq!(score_tick(1.0, 1.01), "1.0");
    }
}
