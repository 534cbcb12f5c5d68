//! `album check`: an album's consistency, wherever its rows and photos are: every photo,
//! thumbnail, preview and face thumbnail its rows name is stored whole, and no work was
//! done twice. Reads only.

use std::path::PathBuf;

use album_serving::blobs::BlobLocation;
use album_serving::check::{check_album, repeated_work};
use album_serving::db::DatabaseLocation;
use anyhow::{Context, bail};

/// Check an album: every blob its rows name is stored and whole (each one read and
/// hashed), and how many are orphans or crash leftovers. Reads only; stop `album serve`
/// first, or accept that uploads in flight show up as orphans.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  album check
  album check --data-dir data/album --database postgres://album@localhost:5432/album")]
pub struct CheckArgs {
    /// The album's folder (album.db and blobs/ unless --database and --blobs say
    /// otherwise).
    #[arg(long, value_name = "DIR", default_value = "data/album")]
    data_dir: PathBuf,
    /// The album's rows in Postgres [default: DIR/album.db].
    #[arg(long, value_name = "URL")]
    database: Option<DatabaseLocation>,
    /// The album's photos: a folder or s3://BUCKET[/PREFIX]?endpoint=URL [default:
    /// DIR/blobs].
    #[arg(long, value_name = "WHERE")]
    blobs: Option<BlobLocation>,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let database = match &args.database {
        Some(database) => database.clone(),
        None => {
            let file = args.data_dir.join("album.db");
            if !file.is_file() {
                bail!(
                    "{} not found: --data-dir names the album's folder (album serve's --data-dir)",
                    file.display()
                );
            }
            DatabaseLocation::Sqlite(file)
        }
    };
    let blobs = args
        .blobs
        .clone()
        .unwrap_or_else(|| BlobLocation::Local(args.data_dir.join("blobs")));
    let check = check_album(&database, &blobs)
        .with_context(|| format!("checking the album in {database} and {blobs}"))?;
    let repeated = repeated_work(&database).context("reading the jobs and faces")?;
    println!("album check: rows in {database}, photos in {blobs}");
    println!(
        "  {} photo(s), {} blob(s): {} damaged, {} missing, {} orphan(s), {} temp file(s)",
        check.photos,
        check.blobs,
        check.corrupt_blobs.len(),
        check.missing_blobs.len(),
        check.orphan_blobs,
        check.temp_files
    );
    println!(
        "  {} job(s) done after more than one claim; {} face(s) stored twice",
        repeated.jobs_claimed_again, repeated.repeated_faces
    );
    for blob in check.corrupt_blobs.iter().take(20) {
        println!("  damaged: {blob}");
    }
    for blob in check.missing_blobs.iter().take(20) {
        println!("  missing: {blob}");
    }
    if !check.is_sound() || repeated.repeated_faces > 0 {
        bail!("the album is damaged (above)");
    }
    println!("  sound: orphans and temp files are harmless (a crash's leftovers)");
    Ok(())
}
