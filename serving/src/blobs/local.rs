//! Blobs as files on this machine: `<root>/ab/cd/<hash>`.
//!
//! A blob is written to `<root>/tmp/`, flushed to disk (fsync), renamed into place and
//! its directory flushed: after a crash a blob is either whole under its name or a stray
//! temp file, which [`LocalBlobs::open`] removes.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{BlobBackend, Put};
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// Opens the store under `root` (created if missing) and deletes temp files a crash
    /// left behind; returns the store and how many were removed.
    pub fn open(root: &Path) -> Result<(Self, usize)> {
        let store = LocalBlobs {
            root: root.to_owned(),
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

    /// The store under `root` as it is, for reading (nothing created or removed).
    pub fn at(root: &Path) -> Self {
        LocalBlobs {
            root: root.to_owned(),
        }
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the blob `name` lives (whether or not it exists); `name` is a checked hash.
    fn path(&self, name: &str) -> PathBuf {
        self.root.join(&name[0..2]).join(&name[2..4]).join(name)
    }
}

impl BlobBackend for LocalBlobs {
    fn put(&self, name: &str, bytes: &[u8]) -> Result<Put> {
        let path = self.path(name);
        if path.is_file() {
            return Ok(Put::AlreadyThere);
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
        Ok(Put::Written)
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.path(name);
        fs::read(&path).map_err(|e| io("read", &path, e))
    }

    fn contains(&self, name: &str) -> Result<bool> {
        Ok(self.path(name).is_file())
    }

    fn remove(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &path, e)),
        }
    }

    /// Files two folder levels down (`ab/cd/<hash>`), skipping `tmp/`.
    fn names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for first in subfolders(&self.root)? {
            if first.file_name().is_some_and(|n| n == "tmp") {
                continue;
            }
            for second in subfolders(&first)? {
                for entry in fs::read_dir(&second).map_err(|e| io("list", &second, e))? {
                    let path = entry.map_err(|e| io("list", &second, e))?.path();
                    if path.is_file() {
                        names.extend(path.file_name().map(|n| n.to_string_lossy().into_owned()));
                    }
                }
            }
        }
        Ok(names)
    }

    fn hash_of(&self, name: &str) -> Result<String> {
        let path = self.path(name);
        let mut file = File::open(&path).map_err(|e| io("open", &path, e))?;
        let mut hasher = Sha256::new();
        let mut buffer = [0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buffer).map_err(|e| io("read", &path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        Ok(hex::encode(hasher.finalize()))
    }

    fn leftovers(&self) -> Result<usize> {
        let tmp = self.tmp_dir();
        if !tmp.is_dir() {
            return Ok(0);
        }
        Ok(fs::read_dir(&tmp).map_err(|e| io("list", &tmp, e))?.count())
    }

    fn location(&self, name: &str) -> String {
        if super::is_hash(name) {
            self.path(name).display().to_string()
        } else {
            format!("{} ({name:?})", self.root.display())
        }
    }
}

fn subfolders(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut folders = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io("list", dir, e))? {
        let path = entry.map_err(|e| io("list", dir, e))?.path();
        if path.is_dir() {
            folders.push(path);
        }
    }
    Ok(folders)
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
    use crate::blobs::BlobStore;

    #[test]
    fn put_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = BlobStore::open_local(dir.path()).unwrap();
        let a = store.put(b"hello").unwrap();
        assert_eq!(
            a,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(store.put(b"hello").unwrap(), a);
        assert_eq!(store.read(&a).unwrap(), b"hello");
        assert!(dir.path().join(format!("2c/f2/{a}")).is_file());
        assert_eq!(store.names().unwrap(), vec![a.clone()]);
        assert_eq!(store.hash_of(&a).unwrap(), a);
        store.remove(&a).unwrap();
        assert!(!store.contains(&a).unwrap());
        store.remove(&a).unwrap();
    }

    #[test]
    fn open_removes_temp_files_left_by_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        fs::write(dir.path().join("tmp/.tmpHALF"), b"half a photo").unwrap();
        let (store, removed) = LocalBlobs::open(dir.path()).unwrap();
        assert_eq!(removed, 1);
        assert_eq!(store.leftovers().unwrap(), 0);
        assert!(store.names().unwrap().is_empty(), "tmp/ holds no blobs");
    }
}
