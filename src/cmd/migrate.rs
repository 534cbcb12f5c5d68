//! `album migrate`: moves an album's photos (its blobs) to another store, such as from
//! the embedded default's `DIR/blobs` to an S3-compatible bucket, and checks that every
//! photo, thumbnail, preview and face thumbnail the database names arrived whole.

use std::path::PathBuf;

use album_serving::blobs::BlobLocation;
use album_serving::check::check_album;
use album_serving::db::DatabaseLocation;
use album_serving::migrate::copy_blobs;
use anyhow::{Context, bail};

/// Move an album's photos to another store (a bucket), each verified byte for byte,
/// then check the album against it. Stop `album serve` first.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  album migrate --data-dir data/album --blobs-to s3://photos/album")]
pub struct MigrateArgs {
    /// The album's folder (album.db, and blobs/ unless --blobs-from says otherwise).
    #[arg(long, value_name = "DIR", default_value = "data/album")]
    data_dir: PathBuf,
    /// Where the photos are now [default: DIR/blobs].
    #[arg(long, value_name = "WHERE")]
    blobs_from: Option<BlobLocation>,
    /// Where they go: a folder or s3://BUCKET[/PREFIX]?endpoint=URL (credentials from
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[arg(long, value_name = "WHERE")]
    blobs_to: BlobLocation,
    /// Blobs copied at a time.
    #[arg(long, default_value_t = 8)]
    threads: usize,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let database = args.data_dir.join("album.db");
    if !database.is_file() {
        bail!(
            "{} not found: --data-dir names the album's folder (album serve's --data-dir)",
            database.display()
        );
    }
    let from = args
        .blobs_from
        .clone()
        .unwrap_or_else(|| BlobLocation::Local(args.data_dir.join("blobs")));
    let before = check_album(&DatabaseLocation::Sqlite(database.clone()), &from)
        .with_context(|| format!("checking the album against {from}"))?;
    if !before.is_sound() {
        bail!(
            "the album is damaged where it is ({from}): {} missing and {} damaged blob(s); \
             nothing was moved",
            before.missing_blobs.len(),
            before.corrupt_blobs.len()
        );
    }
    println!(
        "album migrate: {} photo(s), {} blob(s) from {from} to {}",
        before.photos, before.blobs, args.blobs_to
    );
    let bar = album_dataset::progress::bar(before.blobs as u64, "blobs");
    bar.set_message("copy and verify");
    let moved = copy_blobs(&from, &args.blobs_to, args.threads, &|| bar.inc(1))
        .context("moving the blobs")?;
    bar.finish_and_clear();
    let after = check_album(&DatabaseLocation::Sqlite(database.clone()), &args.blobs_to)
        .with_context(|| format!("checking the album against {}", args.blobs_to))?;
    println!(
        "album migrate: {} blob(s) copied ({:.1} MB), {} there already, every one read back \
         whole; the album's {} photo(s) find all {} of their blobs there",
        moved.copied,
        moved.bytes_copied as f64 / 1e6,
        moved.already_there,
        after.photos,
        after.blobs - after.orphan_blobs
    );
    if !after.is_sound() {
        bail!(
            "after the move {} blob(s) are missing and {} damaged at {}",
            after.missing_blobs.len(),
            after.corrupt_blobs.len(),
            args.blobs_to
        );
    }
    println!(
        "album migrate: done. Start the album on the new store with\n  album serve --data-dir {} --blobs '{}'\n(the old store is left as it was)",
        args.data_dir.display(),
        args.blobs_to
    );
    Ok(())
}
