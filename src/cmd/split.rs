//! `album dataset split`: a manifest into train/val/test, stratified by class.

use std::path::PathBuf;

use album_dataset::split::{self, DEFAULT_GROUP_DISTANCE, SplitOptions, SplitRatios};
use anyhow::Context as _;

/// Split a manifest into train/val/test, stratified by class and duplicate-aware.
#[derive(Debug, clap::Args)]
#[command(after_long_help = SPLIT_HELP)]
pub struct SplitArgs {
    /// The manifest to split (a crawl's manifest.parquet).
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// Output folder [default: the manifest's folder].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Relative sizes train:val:test.
    #[arg(long, default_value = "6:2:2", value_parser = parse_ratios)]
    pub ratios: SplitRatios,
    /// Seed of the ChaCha8 generator that orders the groups.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Photos whose perceptual hashes differ in at most N bits (0–64) are kept together.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_GROUP_DISTANCE)]
    pub group_distance: u32,
}

const SPLIT_HELP: &str = "\
Each class is split to the ratios to within one photo (largest-remainder rounding).
Exact copies (same SHA-256) and near copies (perceptual hashes within --group-distance
bits, chained) form groups that always land in one split. Seeded: the same manifest and
seed give the same split, whatever the order of its rows.

Writes to the output folder: train/val/test.parquet and .csv (the manifest schema, with
paths rewritten to stay valid from there), split-stats.parquet/.csv, size-histogram
.parquet/.csv and split-stats.png, and prints the per-class table.

Example:
  album dataset split --manifest data/crawl/gallery/manifest.parquet --out data/split";

fn parse_ratios(text: &str) -> Result<SplitRatios, String> {
    text.parse()
        .map_err(|e: album_dataset::Error| e.to_string())
}

pub fn run(args: SplitArgs) -> anyhow::Result<()> {
    let options = SplitOptions {
        manifest: args.manifest,
        out: args.out,
        ratios: args.ratios,
        seed: args.seed,
        group_distance: args.group_distance,
    };
    let report = split::run_split(&options)
        .with_context(|| format!("splitting {}", options.manifest.display()))?;
    println!(
        "split {} photos {} (seed {}, group distance {})\n",
        report.counts.iter().flatten().sum::<usize>(),
        report.ratios,
        options.seed,
        options.group_distance
    );
    print!("{}", report.stats_table());
    println!(
        "\nduplicate groups kept whole: {} ({} photos, largest {})\n",
        report.duplicate_groups, report.photos_in_duplicate_groups, report.largest_group
    );
    print!("{}", report.histogram_table());
    println!("\nwrote to {}:", report.out_dir.display());
    for path in &report.files_written {
        println!(
            "  {}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
    }
    Ok(())
}
