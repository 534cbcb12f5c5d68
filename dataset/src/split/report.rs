//! Running a split end to end: read a manifest, assign splits, write the split
//! manifests, the statistics tables and the chart.
//!
//! Outputs in the output folder:
//! - `train|val|test.parquet` and `.csv`: manifests with the input's schema. Their
//!   `path` column is rewritten relative to the output folder, so the files still
//!   resolve when the output folder is not the input manifest's folder;
//! - `split-stats.parquet|csv`: class, split, count, fraction (of the class; class
//!   `all` for the totals);
//! - `size-histogram.parquet|csv`: split, short-side bin, its bounds, count;
//! - `split-stats.png`: both, drawn.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use polars::prelude::*;

use super::{Split, SplitRatios, assign_groups, canonical_groups, chart, validate_group_distance};
use crate::gallery::audit::markdown_table;
use crate::manifest::{
    Manifest, ManifestRecord, class_names, write_manifest, write_table_csv, write_table_parquet,
};
use crate::{Error, Result};

/// Width of a short-side histogram bin, in pixels.
pub const SIZE_BIN_PX: u32 = 16;

/// What to split and where to write it.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// The input manifest (Parquet).
    pub manifest: PathBuf,
    /// Output folder; the manifest's folder when `None`.
    pub out: Option<PathBuf>,
    pub ratios: SplitRatios,
    pub seed: u64,
    /// pHash distance at or under which photos are grouped.
    pub group_distance: u32,
}

/// One row of `split-stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatRow {
    /// A class name, or `all`.
    pub class: String,
    pub split: Split,
    pub count: usize,
    /// Share of the class's photos in this split.
    pub fraction: f64,
}

/// One row of `size-histogram`: photos of a split whose short side is in
/// `bin_start..=bin_end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramRow {
    pub split: Split,
    pub bin_start: u32,
    pub bin_end: u32,
    pub count: usize,
}

/// What a split run did.
#[derive(Debug, Clone)]
pub struct SplitReport {
    pub out_dir: PathBuf,
    pub ratios: SplitRatios,
    pub classes: Vec<String>,
    /// Per class (in `classes` order), photos in train, val, test.
    pub counts: Vec<[usize; 3]>,
    pub stats: Vec<StatRow>,
    pub histogram: Vec<HistogramRow>,
    /// Groups with more than one photo, and how many photos they hold.
    pub duplicate_groups: usize,
    pub photos_in_duplicate_groups: usize,
    pub largest_group: usize,
    pub files_written: Vec<PathBuf>,
}

/// Splits a manifest and writes every output; see the module docs.
pub fn run_split(options: &SplitOptions) -> Result<SplitReport> {
    validate_group_distance(options.group_distance)?;
    let manifest = Manifest::load(&options.manifest)?;
    if manifest.records.is_empty() {
        return Err(Error::Data(format!(
            "{} has no rows to split",
            options.manifest.display()
        )));
    }
    let out_dir = options
        .out
        .clone()
        .unwrap_or_else(|| folder_or_current(&manifest.root));
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io("create folder", &out_dir, e))?;

    let groups = canonical_groups(&manifest.records, options.group_distance);
    let splits = assign_groups(&manifest.records, &groups, options.ratios, options.seed);
    ensure_no_group_straddles(&groups, &splits)?;

    let mut files_written = write_split_manifests(&manifest, &splits, &out_dir)?;
    let classes = class_names(&manifest.records);
    let counts = count_per_class(&manifest.records, &splits, &classes);
    let stats = stat_rows(&classes, &counts);
    let histogram = size_histogram(&manifest.records, &splits);
    files_written.extend(write_pair(
        &out_dir.join("split-stats.parquet"),
        stats_frame(&stats),
    )?);
    files_written.extend(write_pair(
        &out_dir.join("size-histogram.parquet"),
        histogram_frame(&histogram),
    )?);
    let chart_path = out_dir.join("split-stats.png");
    chart::draw_split_chart(&chart_path, &classes, &counts, &histogram, options.ratios)?;
    files_written.push(chart_path);

    let multi: Vec<&Vec<usize>> = groups.iter().filter(|g| g.len() > 1).collect();
    Ok(SplitReport {
        out_dir,
        ratios: options.ratios,
        classes,
        counts,
        stats,
        histogram,
        duplicate_groups: multi.len(),
        photos_in_duplicate_groups: multi.iter().map(|g| g.len()).sum(),
        largest_group: groups.iter().map(Vec::len).max().unwrap_or(0),
        files_written,
    })
}

fn folder_or_current(folder: &Path) -> PathBuf {
    if folder.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        folder.to_path_buf()
    }
}

/// A last check of the promise the split makes; failing it is a bug, said plainly.
fn ensure_no_group_straddles(groups: &[Vec<usize>], splits: &[Split]) -> Result<()> {
    match groups
        .iter()
        .find(|g| g.iter().map(|&i| splits[i]).collect::<HashSet<_>>().len() > 1)
    {
        Some(group) => Err(Error::Data(format!(
            "a duplicate group of {} photos straddles splits",
            group.len()
        ))),
        None => Ok(()),
    }
}

fn write_split_manifests(
    manifest: &Manifest,
    splits: &[Split],
    out_dir: &Path,
) -> Result<Vec<PathBuf>> {
    let from = absolute(&folder_or_current(&manifest.root))?;
    let to = absolute(out_dir)?;
    let mut written = Vec::new();
    for split in Split::ALL {
        let records: Vec<ManifestRecord> = manifest
            .records
            .iter()
            .zip(splits)
            .filter(|(_, s)| **s == split)
            .map(|(record, _)| ManifestRecord {
                path: rebase(&record.path, &from, &to),
                ..record.clone()
            })
            .collect();
        let path = out_dir.join(format!("{}.parquet", split.name()));
        write_manifest(&path, &records)?;
        written.push(path.clone());
        written.push(path.with_extension("csv"));
    }
    Ok(written)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| Error::io("resolve", path, e))
}

/// A manifest path (relative to `from`) made relative to `to`; absolute paths stay.
pub fn rebase(path: &str, from: &Path, to: &Path) -> String {
    if Path::new(path).is_absolute() || from == to {
        return path.to_owned();
    }
    relative_path(to, &from.join(path))
        .to_string_lossy()
        .into_owned()
}

/// `target` as seen from the folder `base` (both absolute, without `.` or `..`).
fn relative_path(base: &Path, target: &Path) -> PathBuf {
    let base: Vec<Component> = base.components().collect();
    let target: Vec<Component> = target.components().collect();
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for part in &target[common..] {
        out.push(part);
    }
    out
}

fn count_per_class(
    records: &[ManifestRecord],
    splits: &[Split],
    classes: &[String],
) -> Vec<[usize; 3]> {
    let mut counts = vec![[0usize; 3]; classes.len()];
    for (record, split) in records.iter().zip(splits) {
        if let Ok(c) = classes.binary_search(&record.class) {
            counts[c][split.index()] += 1;
        }
    }
    counts
}

fn stat_rows(classes: &[String], counts: &[[usize; 3]]) -> Vec<StatRow> {
    let mut totals = [0usize; 3];
    let mut rows = Vec::new();
    let push = |class: &str, row: &[usize; 3], rows: &mut Vec<StatRow>| {
        let sum: usize = row.iter().sum();
        for split in Split::ALL {
            let count = row[split.index()];
            let fraction = if sum == 0 {
                0.0
            } else {
                count as f64 / sum as f64
            };
            rows.push(StatRow {
                class: class.to_owned(),
                split,
                count,
                fraction,
            });
        }
    };
    for (class, row) in classes.iter().zip(counts) {
        push(class, row, &mut rows);
        for s in 0..3 {
            totals[s] += row[s];
        }
    }
    push("all", &totals, &mut rows);
    rows
}

/// Counts per split of the short side (min of width and height) in
/// [`SIZE_BIN_PX`]-wide bins, from 0 up to the largest short side; empty bins kept so
/// every split has the same rows.
fn size_histogram(records: &[ManifestRecord], splits: &[Split]) -> Vec<HistogramRow> {
    let short = |r: &ManifestRecord| r.width.min(r.height);
    let bins = records.iter().map(short).max().unwrap_or(0) / SIZE_BIN_PX + 1;
    let mut counts = vec![[0usize; 3]; bins as usize];
    for (record, split) in records.iter().zip(splits) {
        counts[(short(record) / SIZE_BIN_PX) as usize][split.index()] += 1;
    }
    Split::ALL
        .iter()
        .flat_map(|&split| {
            counts
                .iter()
                .enumerate()
                .map(move |(bin, row)| HistogramRow {
                    split,
                    bin_start: bin as u32 * SIZE_BIN_PX,
                    bin_end: (bin as u32 + 1) * SIZE_BIN_PX - 1,
                    count: row[split.index()],
                })
        })
        .collect()
}

fn stats_frame(rows: &[StatRow]) -> PolarsResult<DataFrame> {
    df!(
        "class" => rows.iter().map(|r| r.class.as_str()).collect::<Vec<_>>(),
        "split" => rows.iter().map(|r| r.split.name()).collect::<Vec<_>>(),
        "count" => rows.iter().map(|r| r.count as u64).collect::<Vec<_>>(),
        "fraction" => rows.iter().map(|r| r.fraction).collect::<Vec<_>>(),
    )
}

fn histogram_frame(rows: &[HistogramRow]) -> PolarsResult<DataFrame> {
    df!(
        "split" => rows.iter().map(|r| r.split.name()).collect::<Vec<_>>(),
        "short_side_bin" => rows.iter().map(|r| format!("{}-{}", r.bin_start, r.bin_end)).collect::<Vec<_>>(),
        "bin_start" => rows.iter().map(|r| r.bin_start).collect::<Vec<_>>(),
        "bin_end" => rows.iter().map(|r| r.bin_end).collect::<Vec<_>>(),
        "count" => rows.iter().map(|r| r.count as u64).collect::<Vec<_>>(),
    )
}

/// Writes a table as Parquet and CSV beside it; returns both paths.
fn write_pair(parquet: &Path, frame: PolarsResult<DataFrame>) -> Result<[PathBuf; 2]> {
    let mut df = frame.map_err(|e| Error::table(parquet, e))?;
    write_table_parquet(parquet, &mut df)?;
    let csv = parquet.with_extension("csv");
    write_table_csv(&csv, &mut df)?;
    Ok([parquet.to_path_buf(), csv])
}

impl SplitReport {
    /// Per class: counts and shares of each split, with the totals last.
    pub fn stats_table(&self) -> String {
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut totals = [0usize; 3];
        for (class, counts) in self.classes.iter().zip(&self.counts) {
            rows.push(stats_line(class, counts));
            for s in 0..3 {
                totals[s] += counts[s];
            }
        }
        rows.push(stats_line("all", &totals));
        markdown_table(
            &[
                "class", "train", "val", "test", "total", "train %", "val %", "test %",
            ],
            &rows,
        )
    }

    /// Size histogram as a table: one row per bin, one column per split.
    pub fn histogram_table(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .histogram
            .iter()
            .filter(|r| r.split == Split::Train)
            .map(|bin| {
                let count = |split: Split| {
                    self.histogram
                        .iter()
                        .find(|r| r.split == split && r.bin_start == bin.bin_start)
                        .map_or(0, |r| r.count)
                };
                vec![
                    format!("{}-{}", bin.bin_start, bin.bin_end),
                    count(Split::Train).to_string(),
                    count(Split::Val).to_string(),
                    count(Split::Test).to_string(),
                ]
            })
            .filter(|row| row[1..].iter().any(|c| c != "0"))
            .collect();
        markdown_table(&["short side px", "train", "val", "test"], &rows)
    }
}

fn stats_line(class: &str, counts: &[usize; 3]) -> Vec<String> {
    let total: usize = counts.iter().sum();
    let share = |n: usize| {
        if total == 0 {
            "0.0".to_owned()
        } else {
            format!("{:.1}", 100.0 * n as f64 / total as f64)
        }
    };
    vec![
        class.to_owned(),
        counts[0].to_string(),
        counts[1].to_string(),
        counts[2].to_string(),
        total.to_string(),
        share(counts[0]),
        share(counts[1]),
        share(counts[2]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_rebased_from_the_manifest_folder_to_the_output_folder() {
        let from = Path::new("/data/crawl");
        assert_eq!(
            rebase("images/ab/x.jpg", from, Path::new("/data/crawl/splits")),
            "../images/ab/x.jpg"
        );
        assert_eq!(
            rebase("images/ab/x.jpg", from, Path::new("/other/out")),
            "../../data/crawl/images/ab/x.jpg"
        );
        assert_eq!(rebase("images/ab/x.jpg", from, from), "images/ab/x.jpg");
        assert_eq!(
            rebase("/abs/x.jpg", from, Path::new("/elsewhere")),
            "/abs/x.jpg"
        );
    }
}
