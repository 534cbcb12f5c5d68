//! `album dataset crawl`: fetch class-labelled photos as a crawl config says.

use std::path::{Path, PathBuf};

use album_dataset::crawl::{CrawlConfig, CrawlOptions, crawl_until_ctrl_c};
use anyhow::Context as _;

/// Crawl a website for photos as a crawl config says (robots.txt obeyed).
#[derive(Debug, clap::Args)]
#[command(after_long_help = CRAWL_HELP)]
pub struct CrawlArgs {
    /// The crawl config (TOML): classes with seed URLs and selectors, politeness
    /// settings, image limits. See configs/crawl/gallery.toml.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Output folder; a folder holding an earlier crawl is resumed
    /// [default: data/crawl/<config file stem>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write the tables and checkpoint every N images (and at the end).
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: u64,
    /// Hide the progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// The long description `--help` shows after the options.
const CRAWL_HELP: &str = "\
For each class of the config, walks its pages from the seed URLs, following the
next-page links, and fetches every image link. Requests are polite: robots.txt is read
once per host and obeyed (for pages, images and redirect targets alike), concurrency
and request rate are limited per host, 5xx answers and time-outs are retried with
exponential back-off, bodies are capped in bytes while streaming, and redirects are
followed with a loop guard.

Every download is sniffed by its magic bytes (JPEG, PNG, GIF, WebP, BMP, TIFF; never
by Content-Type or extension), size-checked from its header and fully decoded. Exact
copies (same SHA-256) and near copies (perceptual hash within the configured distance)
of an accepted photo, in any class, are dropped and listed.

Writes to the output folder:
  images/<aa>/<sha256>.<ext>   accepted files, named by content
  manifest.parquet, .csv       one row per accepted photo
  duplicates.parquet, .csv     each dropped copy and the photo it copies
  rejects.parquet, .csv        each refused image link and why (reason code, detail)
  crawl-state.toml             the checkpoint: pages whose images are all recorded
  summary.txt                  the summary table printed at the end

Resumable: a run into a folder that holds an earlier crawl skips every image URL
recorded there and every page whose images are all recorded. Ctrl-C stops after a
checkpoint; even a killed crawl leaves consistent files (every write is atomic).

Exit status: 0 done; 1 when pages were tried and none could be fetched (for example
the host refuses connections: the message names it) or the output cannot be written;
2 for a bad config (bad TOML, unknown key, bad URL or selector, no class, zero cap).";

pub fn run(args: CrawlArgs) -> anyhow::Result<()> {
    let config = CrawlConfig::load(&args.config)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.config));
    let options = CrawlOptions {
        progress: !args.quiet,
        checkpoint_every: usize::try_from(args.checkpoint_every).unwrap_or(usize::MAX),
    };
    eprintln!(
        "crawling {} class(es) from {} into {} as {:?}",
        config.classes.len(),
        config.hosts().join(", "),
        out.display(),
        config.http.user_agent
    );
    let summary = crawl_until_ctrl_c(&config, &out, &options)
        .with_context(|| format!("crawling {} into {}", args.config.display(), out.display()))?;
    print!("{}", summary.to_table());
    println!("\nwrote to {}", out.display());
    summary.ensure_something_fetched()?;
    Ok(())
}

/// `data/crawl/<stem>` for `configs/crawl/<stem>.toml`.
fn default_out(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "crawl".into());
    Path::new("data").join("crawl").join(stem)
}
