//! `album dataset serve-gallery` and `album dataset audit`: serve a photo folder as a
//! website to crawl, and check afterwards that the crawl accounted for every photo.

use std::net::SocketAddr;
use std::path::PathBuf;

use album_dataset::gallery::{self, GalleryOptions, audit};
use anyhow::Context as _;

/// Serve a folder of class sub-folders as a small gallery website.
#[derive(Debug, clap::Args)]
#[command(after_long_help = SERVE_GALLERY_HELP)]
pub struct ServeGalleryArgs {
    /// Folder whose sub-folders are the classes (e.g. ../shared/datasets/five-class).
    pub dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8765", value_parser = super::parse_listen_addr)]
    pub addr: SocketAddr,
    /// Photos per class page.
    #[arg(long, default_value_t = gallery::DEFAULT_PER_PAGE)]
    pub per_page: usize,
    /// Also append every request to this file: `<RFC 3339 time> <METHOD> <path> <status> <bytes>`.
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
    /// Serve the photos only, without the planted faults.
    #[arg(long)]
    pub no_faults: bool,
    /// Serve only the first N photos (by file name) of each class.
    #[arg(long, value_name = "N")]
    pub max_per_class: Option<usize>,
}

/// Check that a crawl of the gallery accounted for every photo of its folder.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AUDIT_HELP)]
pub struct AuditArgs {
    /// The folder the gallery served.
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// The crawl's output folder (manifest.parquet, duplicates.parquet, rejects.parquet).
    #[arg(long, value_name = "OUT")]
    pub crawl: PathBuf,
    /// The gallery's access log file (serve-gallery --access-log), to count /private/ requests.
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
    /// The --max-per-class the gallery was served with, if any.
    #[arg(long, value_name = "N")]
    pub max_per_class: Option<usize>,
    /// The gallery ran with --no-faults: do not expect planted faults.
    #[arg(long)]
    pub no_faults: bool,
}

const SERVE_GALLERY_HELP: &str = "\
Layout: / links each class's /class/<class>/page/1; a page holds
<figure class=\"photo\"> links to /photos/<class>/<file> (files sorted by name) and, but
on the last page, an <a class=\"next\" rel=\"next\"> link. /robots.txt disallows
/private/, which every class's page 1 links to anyway: a polite crawler never asks.

Unless --no-faults, page 1 of the first class (alphabetically) also links a 404, an
exact duplicate of a real photo, HTML served as image/jpeg, a truncated JPEG, a
redirect loop, a 500 and a 1 GiB file streamed on the fly, plus a page without photos.

Example:
  album dataset serve-gallery ../shared/datasets/five-class --access-log access.log

Runs until Ctrl-C.";

const AUDIT_HELP: &str = "\
Every source photo DIR/<class>/<file> (gallery URL /photos/<class>/<file>) must be in
exactly one of the crawl's manifest, duplicates (with its pair in the manifest) or
rejects; every planted fault must be rejected with its expected reason; every manifest
file must decode fully; and the access log, when given, must show no request under
/private/.

Prints the tables, writes them with the near-duplicate pairs to OUT/audit.md, and exits
with status 2 when any check fails.

Example:
  album dataset audit --source ../shared/datasets/five-class --crawl data/crawl/gallery \\
      --access-log access.log";

pub fn run_serve(args: ServeGalleryArgs) -> anyhow::Result<()> {
    let options = GalleryOptions {
        per_page: args.per_page,
        plant_faults: !args.no_faults,
        max_per_class: args.max_per_class,
        access_log: args.access_log,
        ..GalleryOptions::new(args.dir)
    };
    gallery::serve_until_ctrl_c(options, args.addr, |running| {
        let folder = running.gallery().folder();
        println!(
            "serving {} photos in {} classes from {} at {}/ (Ctrl-C to stop)",
            folder.photo_count(),
            folder.classes.len(),
            folder.root.display(),
            running.base_url()
        );
        let faults = running.gallery().planted_faults();
        if !faults.is_empty() {
            println!(
                "{} planted faults on page 1 of {}",
                faults.len(),
                folder.classes[0].name
            );
        }
    })
    .context("serving the gallery")
}

pub fn run_audit(args: AuditArgs) -> anyhow::Result<()> {
    let options = audit::AuditOptions {
        source: args.source,
        crawl: args.crawl,
        access_log: args.access_log,
        max_per_class: args.max_per_class,
        plant_faults: !args.no_faults,
    };
    let report = audit::audit(&options)?;
    print!("{}", report.to_text());
    let written = report.write_markdown(&options.crawl.join("audit.md"))?;
    println!("\nwrote {}", written.display());
    report.verdict()?;
    println!("audit passed");
    Ok(())
}
