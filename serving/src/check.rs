//! A consistency check of an album's data folder, for after a crash: every blob is whole
//! (its bytes hash to its name), no temp file is left, and every photo's original,
//! thumbnail and preview are there. It only reads: run it while the service is stopped,
//! or accept that a concurrent upload may show up as an orphan blob.
//!
//! Orphan blobs (written, but the row that would have used them never committed because
//! the process died in between) are counted but are not damage: no acknowledged photo
//! refers to them.

use std::collections::HashSet;
use std::path::Path;

use crate::db::DatabaseLocation;
use crate::sql::Connection;
use serde::Serialize;

use crate::blobs::{BlobLocation, BlobStore};
use crate::error::{Error, Result};

/// What [`check_store`] found.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StoreCheck {
    /// Photo rows (all users, trash included).
    pub photos: usize,
    /// Blobs stored under their hash name.
    pub blobs: usize,
    /// Where the blobs are whose bytes do not hash to their name (half-written or
    /// damaged).
    pub corrupt_blobs: Vec<String>,
    /// Half-written leftovers (local `blobs/tmp` files; `album serve` removes them on
    /// start).
    pub temp_files: usize,
    /// Rows naming a blob (original, thumbnail or preview) that is not stored.
    pub missing_blobs: Vec<String>,
    /// Blobs no row refers to.
    pub orphan_blobs: usize,
}

impl StoreCheck {
    /// No damage: no corrupt and no missing blob (temp files and orphans are harmless).
    pub fn is_sound(&self) -> bool {
        self.corrupt_blobs.is_empty() && self.missing_blobs.is_empty()
    }
}

/// Checks `data_dir` (`album.db` and `blobs/`), reading only.
pub fn check_store(data_dir: &Path) -> Result<StoreCheck> {
    check_album(
        &DatabaseLocation::Sqlite(data_dir.join("album.db")),
        &BlobLocation::Local(data_dir.join("blobs")),
    )
}

/// Checks the album whose rows are in `database` and whose blobs are at `blobs` (a
/// folder or a bucket), reading only.
pub fn check_album(database: &DatabaseLocation, blobs: &BlobLocation) -> Result<StoreCheck> {
    let referenced = referenced_blobs(database)?;
    let (store, _) = open_for_reading(blobs)?;
    let mut check = StoreCheck {
        photos: referenced.photos,
        temp_files: store.leftovers()?,
        ..StoreCheck::default()
    };
    let mut stored = HashSet::new();
    for name in store.names()? {
        if store.hash_of(&name)? != name {
            check.corrupt_blobs.push(store.location(&name));
        }
        stored.insert(name);
    }
    check.corrupt_blobs.sort();
    check.blobs = stored.len();
    check.missing_blobs = referenced
        .hashes
        .iter()
        .filter(|h| !stored.contains(*h))
        .cloned()
        .collect();
    check.missing_blobs.sort();
    check.orphan_blobs = stored
        .iter()
        .filter(|h| !referenced.hashes.contains(*h))
        .count();
    Ok(check)
}

/// Signs of work done twice after instances died under their jobs.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RepeatedWork {
    /// Faces stored twice for one photo (a faces job that ran to the end twice).
    pub repeated_faces: i64,
    /// Jobs done after more than one claim (taken over from a dead instance, or retried).
    pub jobs_claimed_again: i64,
}

/// Reads [`RepeatedWork`] from the album's database.
pub fn repeated_work(database: &DatabaseLocation) -> Result<RepeatedWork> {
    let c = open_as_is(database)?;
    Ok(RepeatedWork {
        repeated_faces: crate::repo::faces::repeated(&c)?,
        jobs_claimed_again: crate::repo::jobs::done_after_more_than_one_claim(&c)?,
    })
}

/// Opens the store without changing it: a local folder's leftovers are counted, not
/// removed (opening it for serving would clear them).
fn open_for_reading(blobs: &BlobLocation) -> Result<(BlobStore, usize)> {
    match blobs {
        BlobLocation::Local(root) if !root.is_dir() => {
            Err(Error::Setup(format!("{} does not exist", root.display())))
        }
        BlobLocation::Local(root) => Ok((
            BlobStore::with_backend(std::sync::Arc::new(crate::blobs::local::LocalBlobs::at(
                root,
            ))),
            0,
        )),
        s3 => BlobStore::open(s3),
    }
}

struct Referenced {
    photos: usize,
    hashes: HashSet<String>,
}

/// Opens a database to read it as it is: a SQLite file read-only (never created or
/// migrated), a Postgres database as it is.
pub(crate) fn open_as_is(database: &DatabaseLocation) -> Result<Connection> {
    Ok(match database {
        DatabaseLocation::Sqlite(path) if !path.is_file() => {
            return Err(Error::Setup(format!("{} does not exist", path.display())));
        }
        DatabaseLocation::Sqlite(path) => Connection::open_sqlite_read_only(path)?,
        DatabaseLocation::Postgres(url) => Connection::open_postgres(url)
            .map_err(|e| Error::Setup(format!("cannot open {database}: {e}")))?,
    })
}

fn referenced_blobs(database: &DatabaseLocation) -> Result<Referenced> {
    let c = open_as_is(database)?;
    let (photos, hashes) = crate::repo::photos::every_blob_reference(&c)?;
    Ok(Referenced { photos, hashes })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;
    use crate::{AppState, ServeConfig};

    fn album_with_one_blob() -> (tempfile::TempDir, PathBuf, String) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("album");
        let state = AppState::open(ServeConfig::new(&data)).unwrap();
        let hash = state.blobs.put(b"not referenced by any row").unwrap();
        (dir, data, hash)
    }

    #[test]
    fn a_whole_blob_no_row_refers_to_is_an_orphan_not_damage() {
        let (_dir, data, _) = album_with_one_blob();
        let check = check_store(&data).unwrap();
        assert_eq!((check.blobs, check.orphan_blobs, check.photos), (1, 1, 0));
        assert!(check.is_sound(), "{check:?}");
    }

    #[test]
    fn a_blob_whose_bytes_do_not_match_its_name_is_corrupt() {
        let (_dir, data, hash) = album_with_one_blob();
        let path = data
            .join("blobs")
            .join(&hash[0..2])
            .join(&hash[2..4])
            .join(&hash);
        fs::write(&path, b"not referenced by any").unwrap(); // cut short
        fs::write(data.join("blobs/tmp/leftover"), b"half").unwrap();
        let check = check_store(&data).unwrap();
        assert_eq!(check.corrupt_blobs, vec![path.display().to_string()]);
        assert_eq!(check.temp_files, 1);
        assert!(!check.is_sound());
    }

    /// The load run after face thumbnails became blobs counted 2,116 "orphans": one per
    /// face, each referenced by its face row, not by a photo's.
    #[test]
    fn a_face_thumbnail_is_referenced_not_an_orphan() {
        let (_dir, data, photo) = album_with_one_blob();
        let state = AppState::open(ServeConfig::new(&data)).unwrap();
        let face = state.blobs.put(b"a face's thumbnail").unwrap();
        let c = Connection::open_sqlite(&data.join("album.db")).unwrap();
        c.execute_batch(&format!(
            "INSERT INTO users (username, password_hash, created) VALUES ('ann', 'x', 0);
             INSERT INTO photos (user_id, sha256, kind, name, mime, bytes, width, height,
                 orientation, uploaded)
             VALUES (1, '{photo}', 'photo', 'a.jpg', 'image/jpeg', 1, 1, 1, 1, 0);
             INSERT INTO faces (user_id, photo_id, score, x, y, w, h, descriptor,
                 thumbnail_sha256)
             VALUES (1, 1, 0.9, 0, 0, 1, 1, x'00', '{face}');"
        ))
        .unwrap();
        let check = check_store(&data).unwrap();
        assert_eq!((check.blobs, check.orphan_blobs), (2, 0), "{check:?}");
        assert!(check.is_sound());
    }

    #[test]
    fn a_row_whose_blob_is_gone_is_reported_missing() {
        let (_dir, data, hash) = album_with_one_blob();
        let c = Connection::open_sqlite(&data.join("album.db")).unwrap();
        c.execute(
            "INSERT INTO users (username, password_hash, created) VALUES ('ann', 'x', 0)",
            [],
        )
        .unwrap();
        let gone = "f".repeat(64);
        c.execute(
            "INSERT INTO photos (user_id, sha256, kind, name, mime, bytes, width, height,
                 orientation, uploaded, thumbnail_sha256)
             VALUES (1, ?1, 'photo', 'a.jpg', 'image/jpeg', 1, 1, 1, 1, 0, ?2)",
            crate::sql::params![hash, gone],
        )
        .unwrap();
        let check = check_store(&data).unwrap();
        assert_eq!(check.photos, 1);
        assert_eq!(check.missing_blobs, vec![gone]);
        assert_eq!(check.orphan_blobs, 0);
        assert!(!check.is_sound());
    }
}
