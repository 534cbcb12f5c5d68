//! The content-addressed blob store: every original, thumbnail and preview is a file
//! named by the SHA-256 of its bytes, under `blobs/ab/cd/<hash>`.
//!
//! A blob is written to `blobs/tmp/`, flushed to disk (fsync), renamed into place and its
//! directory flushed, all before the upload is acknowledged: after a crash a blob is
//! either whole under its name or a stray temp file, which [`BlobStore::open`] removes.
//! Because the name is the hash, the same bytes are stored once however often they are
//! uploaded, and a reader can check what it got.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    /// Shared while a blob is written and its row committed, exclusive while purged
    /// rows' blobs are deleted, so a purge never removes a blob a new row is about to
    /// use while writers do not wait for each other.
    lock: Arc<RwLock<()>>,
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn is_hash(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl BlobStore {
    /// Opens the store under `root` (created if missing) and deletes temp files a crash
    /// left behind; returns the store and how many were removed.
    pub fn open(root: &Path) -> Result<(Self, usize)> {
        let store = BlobStore {
            root: root.to_owned(),
            lock: Arc::new(RwLock::new(())),
        };
        let tmp = store.tmp_dir();
        fs::create_dir_all(&tmp).map_err(|e| setup("create", &tmp, e))?;
        let mut removed = 0;
        for entry in fs::read_dir(&tmp).map_err(|e| setup("list", &tmp, e))? {
            let path = entry.map_err(|e| setup("list", &tmp, e))?.path();
            fs::remove_file(&path).map_err(|e| setup("remove", &path, e))?;
            removed += 1;
        }
        Ok((store, removed))
    }

    /// Held from writing a blob until the row that uses it is committed. Take the
    /// database connection first: waiting for one while holding this guard can deadlock
    /// against a purge.
    pub fn writer(&self) -> RwLockReadGuard<'_, ()> {
        // A panic while holding the lock leaves nothing half-done that the lock protects
        // (blobs are atomic, rows transactional), so a poisoned lock is still usable.
        self.lock
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Held while purged rows' blobs are deleted (excludes every writer). Take the
    /// database connection first, as for [`BlobStore::writer`].
    pub(crate) fn purger(&self) -> RwLockWriteGuard<'_, ()> {
        self.lock
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the blob `sha256` lives (whether or not it exists).
    pub fn path(&self, sha256: &str) -> Result<PathBuf> {
        if !is_hash(sha256) {
            return Err(Error::internal(
                "blob store",
                format!("{sha256:?} is not a SHA-256"),
            ));
        }
        Ok(self
            .root
            .join(&sha256[0..2])
            .join(&sha256[2..4])
            .join(sha256))
    }

    pub fn contains(&self, sha256: &str) -> Result<bool> {
        Ok(self.path(sha256)?.is_file())
    }

    /// Stores `bytes` durably and returns their SHA-256. Storing bytes that are already
    /// there changes nothing.
    pub fn put(&self, bytes: &[u8]) -> Result<String> {
        let sha256 = sha256_hex(bytes);
        let path = self.path(&sha256)?;
        if path.is_file() {
            return Ok(sha256);
        }
        let dir = path
            .parent()
            .ok_or_else(|| Error::internal("blob store", "a blob path has no parent"))?;
        fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
        let mut temp = tempfile::NamedTempFile::new_in(self.tmp_dir())
            .map_err(|e| io("create a temp file in", &self.tmp_dir(), e))?;
        temp.write_all(bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| io("write", temp.path(), e))?;
        temp.persist(&path)
            .map_err(|e| io("rename into", &path, e.error))?;
        sync_dir(dir)?;
        Ok(sha256)
    }

    /// The blob's bytes.
    pub fn read(&self, sha256: &str) -> Result<Vec<u8>> {
        let path = self.path(sha256)?;
        fs::read(&path).map_err(|e| io("read", &path, e))
    }

    /// Deletes the blob; a missing one is not an error (purges are retried).
    pub fn remove(&self, sha256: &str) -> Result<()> {
        let path = self.path(sha256)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &path, e)),
        }
    }
}

/// Flushes a directory so a rename inside it survives a power cut.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("sync", dir, e))
}

fn io(action: &str, path: &Path, e: std::io::Error) -> Error {
    Error::internal(
        "blob store",
        format!("cannot {action} {}: {e}", path.display()),
    )
}

fn setup(action: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Setup(format!(
        "blob store: cannot {action} {}: {e}",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = BlobStore::open(dir.path()).unwrap();
        let a = store.put(b"hello").unwrap();
        assert_eq!(
            a,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(store.put(b"hello").unwrap(), a);
        assert_eq!(store.read(&a).unwrap(), b"hello");
        assert!(store.path(&a).unwrap().ends_with(format!("2c/f2/{a}")));
        store.remove(&a).unwrap();
        assert!(!store.contains(&a).unwrap());
        store.remove(&a).unwrap();
    }

    #[test]
    fn open_removes_temp_files_left_by_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        fs::write(dir.path().join("tmp/.tmpHALF"), b"half a photo").unwrap();
        let (_, removed) = BlobStore::open(dir.path()).unwrap();
        assert_eq!(removed, 1);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn names_that_are_not_hashes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = BlobStore::open(dir.path()).unwrap();
        assert!(store.path("../../etc/passwd").is_err());
        assert!(store.path(&"A".repeat(64)).is_err());
    }
}
