//! A consistency check of an album's data folder, for after a crash: every blob is whole
//! (its bytes hash to its name), no temp file is left, and every photo's original,
//! thumbnail and preview are there. It only reads: run it while the service is stopped,
//! or accept that a concurrent upload may show up as an orphan blob.
//!
//! Orphan blobs (written, but the row that would have used them never committed because
//! the process died in between) are counted but are not damage: no acknowledged photo
//! refers to them.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What [`check_store`] found.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StoreCheck {
    /// Photo rows (all users, trash included).
    pub photos: usize,
    /// Blob files under their hash name.
    pub blobs: usize,
    /// Blobs whose bytes do not hash to their name (half-written or damaged).
    pub corrupt_blobs: Vec<PathBuf>,
    /// Files in `blobs/tmp` (a crash's leftovers; `album serve` removes them on start).
    pub temp_files: usize,
    /// Rows naming a blob (original, thumbnail or preview) that is not on disk.
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
    let referenced = referenced_blobs(&data_dir.join("album.db"))?;
    let blobs_dir = data_dir.join("blobs");
    let mut check = StoreCheck {
        photos: referenced.photos,
        temp_files: count_files(&blobs_dir.join("tmp"))?,
        ..StoreCheck::default()
    };
    let mut on_disk = HashSet::new();
    for path in blob_files(&blobs_dir)? {
        let name = file_name(&path);
        if hash_of_file(&path)? != name {
            check.corrupt_blobs.push(path.clone());
        }
        on_disk.insert(name);
    }
    check.blobs = on_disk.len();
    check.missing_blobs = referenced
        .hashes
        .iter()
        .filter(|h| !on_disk.contains(*h))
        .cloned()
        .collect();
    check.missing_blobs.sort();
    check.orphan_blobs = on_disk
        .iter()
        .filter(|h| !referenced.hashes.contains(*h))
        .count();
    Ok(check)
}

struct Referenced {
    photos: usize,
    hashes: HashSet<String>,
}

fn referenced_blobs(db_path: &Path) -> Result<Referenced> {
    if !db_path.is_file() {
        return Err(Error::Setup(format!(
            "{} does not exist",
            db_path.display()
        )));
    }
    let c = Connection::open_with_flags(db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (photos, hashes) = crate::repo::photos::every_blob_reference(&c)?;
    Ok(Referenced { photos, hashes })
}

/// Files two folder levels down (`ab/cd/<hash>`), skipping `tmp/`.
fn blob_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for first in subfolders(root)? {
        if first.file_name().is_some_and(|n| n == "tmp") {
            continue;
        }
        for second in subfolders(&first)? {
            for entry in fs::read_dir(&second).map_err(|e| io_error(&second, e))? {
                let path = entry.map_err(|e| io_error(&second, e))?.path();
                if path.is_file() {
                    files.push(path);
                }
            }
        }
    }
    Ok(files)
}

fn subfolders(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut folders = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let path = entry.map_err(|e| io_error(dir, e))?.path();
        if path.is_dir() {
            folders.push(path);
        }
    }
    Ok(folders)
}

fn count_files(dir: &Path) -> Result<usize> {
    if !dir.is_dir() {
        return Ok(0);
    }
    Ok(fs::read_dir(dir).map_err(|e| io_error(dir, e))?.count())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn hash_of_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).map_err(|e| io_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::internal("store check", format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
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
        assert_eq!(check.corrupt_blobs, vec![path]);
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
        let c = Connection::open(data.join("album.db")).unwrap();
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
        let c = Connection::open(data.join("album.db")).unwrap();
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
            rusqlite::params![hash, gone],
        )
        .unwrap();
        let check = check_store(&data).unwrap();
        assert_eq!(check.photos, 1);
        assert_eq!(check.missing_blobs, vec![gone]);
        assert_eq!(check.orphan_blobs, 0);
        assert!(!check.is_sound());
    }
}
