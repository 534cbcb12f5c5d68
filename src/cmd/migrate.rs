//! `album migrate`: moves an embedded album to the scale-out stores: its rows from
//! `DIR/album.db` to a Postgres database, its photos (blobs) from `DIR/blobs` to an
//! S3-compatible bucket, or both, and checks that every row and every photo, thumbnail,
//! preview and face thumbnail arrived whole.

use std::path::PathBuf;

use album_serving::blobs::BlobLocation;
use album_serving::check::check_album;
use album_serving::db::DatabaseLocation;
use album_serving::migrate::{compare_databases, copy_blobs, copy_database};
use anyhow::{Context, bail};

/// Move an album's rows to Postgres and its photos to a bucket, each verified (rows
/// value for value, photos byte for byte), then check the album on its new stores.
/// Stop `album serve` first.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  album migrate --data-dir data/album --blobs-to s3://photos/album
  album migrate --data-dir data/album --database-to postgres://album@localhost:5432/album")]
pub struct MigrateArgs {
    /// The album's folder (album.db, and blobs/ unless --blobs-from says otherwise).
    #[arg(long, value_name = "DIR", default_value = "data/album")]
    data_dir: PathBuf,
    /// Where the rows go: an empty Postgres database,
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (its tables are made).
    #[arg(long, value_name = "URL", required_unless_present = "blobs_to")]
    database_to: Option<DatabaseLocation>,
    /// Where the photos are now [default: DIR/blobs].
    #[arg(long, value_name = "WHERE")]
    blobs_from: Option<BlobLocation>,
    /// Where they go: a folder or s3://BUCKET[/PREFIX]?endpoint=URL (credentials from
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[arg(long, value_name = "WHERE")]
    blobs_to: Option<BlobLocation>,
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
    let database = DatabaseLocation::Sqlite(database);
    let blobs = args
        .blobs_from
        .clone()
        .unwrap_or_else(|| BlobLocation::Local(args.data_dir.join("blobs")));
    let before = check_album(&database, &blobs)
        .with_context(|| format!("checking the album against {blobs}"))?;
    if !before.is_sound() {
        bail!(
            "the album is damaged where it is ({blobs}): {} missing and {} damaged blob(s); \
             nothing was moved",
            before.missing_blobs.len(),
            before.corrupt_blobs.len()
        );
    }
    println!(
        "album migrate: {} photo(s) and {} blob(s) in {database} and {blobs}",
        before.photos, before.blobs
    );
    let rows_at = match &args.database_to {
        Some(to) => {
            move_rows(&database, to)?;
            to.clone()
        }
        None => database.clone(),
    };
    let blobs_at = match &args.blobs_to {
        Some(to) => {
            move_blobs(&blobs, to, args.threads, before.blobs)?;
            to.clone()
        }
        None => blobs.clone(),
    };
    let after = check_album(&rows_at, &blobs_at)
        .with_context(|| format!("checking the album on {rows_at} and {blobs_at}"))?;
    if !after.is_sound() {
        bail!(
            "after the move {} blob(s) are missing and {} damaged at {blobs_at}",
            after.missing_blobs.len(),
            after.corrupt_blobs.len(),
        );
    }
    println!(
        "album migrate: the album's {} photo(s) find all {} of their blobs at {blobs_at}",
        after.photos,
        after.blobs - after.orphan_blobs
    );
    let mut start = format!("album serve --data-dir {}", args.data_dir.display());
    if let Some(to) = &args.database_to {
        start.push_str(&format!(" --database '{to}'"));
    }
    if args.blobs_to.is_some() || args.blobs_from.is_some() {
        start.push_str(&format!(" --blobs '{blobs_at}'"));
    }
    println!(
        "album migrate: done. Start the album on its new stores with\n  {start}\n\
         (the old ones are left as they were)"
    );
    Ok(())
}

/// Copies the rows in one transaction, then compares every table on both sides.
fn move_rows(from: &DatabaseLocation, to: &DatabaseLocation) -> anyhow::Result<()> {
    let tables = album_serving::repo::transfer::TABLES.len() as u64;
    let bar = album_dataset::progress::bar(tables, "tables");
    bar.set_message("copy rows");
    let moved = copy_database(from, to, &|table, _| {
        bar.set_message(table.to_owned());
        bar.inc(1);
    })
    .with_context(|| format!("moving the rows to {to}"))?;
    bar.finish_and_clear();
    let checks = compare_databases(from, to).context("comparing the rows")?;
    for check in &checks {
        println!(
            "  {:<13} {:>8} row(s) {}",
            check.table,
            check.target_rows,
            if check.is_identical() {
                "identical".to_owned()
            } else {
                format!(
                    "DIFFER: {} source row(s), {} differing",
                    check.source_rows, check.differing
                )
            }
        );
    }
    if checks.iter().any(|c| !c.is_identical()) {
        bail!("the rows at {to} differ from the album's (above)");
    }
    println!(
        "album migrate: {} row(s) in {} tables copied to {to}, every one read back identical",
        moved.rows(),
        moved.tables.len()
    );
    Ok(())
}

fn move_blobs(
    from: &BlobLocation,
    to: &BlobLocation,
    threads: usize,
    blobs: usize,
) -> anyhow::Result<()> {
    let bar = album_dataset::progress::bar(blobs as u64, "blobs");
    bar.set_message("copy and verify");
    let moved = copy_blobs(from, to, threads, &|| bar.inc(1)).context("moving the blobs")?;
    bar.finish_and_clear();
    println!(
        "album migrate: {} blob(s) copied ({:.1} MB), {} there already, every one read back \
         whole",
        moved.copied,
        moved.bytes_copied as f64 / 1e6,
        moved.already_there,
    );
    Ok(())
}
