//! `album dataset pack`: splits re-encoded small enough to travel with the binary.

use std::path::PathBuf;

use album_dataset::pack::{PackOptions, pack_splits};
use anyhow::Context as _;

/// Re-encode splits as small square JPEGs under a byte budget, for a machine that has
/// neither the photos nor the network (the GPU machine; scripts/gpu-study.sh).
#[derive(Debug, clap::Args)]
#[command(after_long_help = PACK_HELP)]
pub struct PackArgs {
    /// The split folder to pack (album dataset split's output).
    #[arg(long, value_name = "DIR", default_value = "data/split")]
    split: PathBuf,
    /// The new pack folder (refused if it exists).
    #[arg(long, value_name = "DIR", default_value = "data/gpu-pack")]
    out: PathBuf,
    /// The packed photos' side in pixels: short side scaled to it, centre-cropped square.
    #[arg(long, value_name = "PX", default_value_t = 112)]
    side: u32,
    /// The splits to pack, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "train,val")]
    splits: Vec<String>,
    /// At most N photos per class, spread evenly over each class (0 = all): N for every
    /// split, SPLIT=N for one (`val=200`); comma-separated.
    #[arg(long, value_name = "[SPLIT=]N", value_delimiter = ',', value_parser = parse_per_class)]
    per_class: Vec<(Option<String>, usize)>,
    /// The most the pack may take, photos and manifests together, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 44.0)]
    max_mib: f64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

const PACK_HELP: &str = "\
The JPEG quality is the highest (90 down to 40) whose projected size, judged on an even
sample of 300 photos, fits --max-mib; if the whole pack still comes out larger, it is
redone a step lower. The pack is a split folder like `album dataset split`'s
(train/val.parquet pointing at photos/<class>/…; no CSV copies), so a training config
names it as data.split_dir (configs/gpu-112/). Each record keeps its photo's class, URLs
and source; its sha256 and size are the packed file's, so runs on the pack record their
own data hash. pack.json says what the pack holds.

The default budget, 44 MiB, is what a GPU call's 64 MiB leaves beside the stripped,
xz-compressed `album` binary (about 16 MiB) and the charts' libraries. The checkout
travels with every call too, so scripts/gpu-study.sh cuts the bundle into parts, one per
call.

Examples:
  album dataset pack --per-class val=200     # all of train, 200 val photos a class, 112 px
  album dataset pack --per-class 40 --side 72 --max-mib 3 --out data/gpu-pack-small";

/// Reads one `--per-class` value: `N` or `SPLIT=N`.
fn parse_per_class(text: &str) -> Result<(Option<String>, usize), String> {
    let (split, number) = match text.split_once('=') {
        Some((split, number)) => (Some(split.trim().to_owned()), number),
        None => (None, text),
    };
    let count = number
        .trim()
        .parse()
        .map_err(|_| format!("expected N or SPLIT=N such as 200 or val=200, not {text:?}"))?;
    Ok((split, count))
}

pub fn run(args: PackArgs) -> anyhow::Result<()> {
    if !(args.max_mib.is_finite() && args.max_mib > 0.0) {
        anyhow::bail!(
            "--max-mib must be a positive number of MiB, not {}",
            args.max_mib
        );
    }
    let per_class_default = args
        .per_class
        .iter()
        .filter(|(split, _)| split.is_none())
        .map(|(_, n)| *n)
        .next_back()
        .unwrap_or(0);
    let per_class = args
        .per_class
        .into_iter()
        .filter_map(|(split, n)| Some((split?, n)))
        .collect();
    let options = PackOptions {
        side: args.side,
        splits: args.splits,
        per_class,
        per_class_default,
        max_bytes: (args.max_mib * 1024.0 * 1024.0) as u64,
        progress: !args.quiet,
    };
    let summary = pack_splits(&args.split, &args.out, &options)
        .with_context(|| format!("packing {}", args.split.display()))?;
    println!(
        "packed into {}: {} x {} px, JPEG quality {}, {:.1} MiB of {:.1}",
        args.out.display(),
        summary.side,
        summary.side,
        summary.jpeg_quality,
        summary.total_bytes as f64 / 1048576.0,
        summary.max_bytes as f64 / 1048576.0,
    );
    for (name, split) in &summary.splits {
        let classes: Vec<String> = split
            .per_class
            .iter()
            .map(|(class, n)| format!("{class} {n}"))
            .collect();
        println!(
            "  {name}: {} photos, {:.1} MiB ({})",
            split.photos,
            split.bytes as f64 / 1048576.0,
            classes.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_per_class;

    #[test]
    fn per_class_limits_read_a_count_or_a_split_and_a_count() {
        assert_eq!(parse_per_class("40"), Ok((None, 40)));
        assert_eq!(parse_per_class("val=200"), Ok((Some("val".into()), 200)));
        assert!(parse_per_class("val=lots").unwrap_err().contains("val=200"));
    }
}
