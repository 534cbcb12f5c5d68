//! The content-addressed blob store: every original, thumbnail and preview is stored
//! under the SHA-256 of its bytes, so the same bytes are stored once however often they
//! are uploaded, and a reader can check what it got.
//!
//! [`BlobStore`] is the one interface the services use; where the bytes live is a
//! [`BlobBackend`]:
//! - [`local`]: files under `<data-dir>/blobs/ab/cd/<hash>`, fsynced and renamed into
//!   place (the embedded default);
//! - [`s3`]: objects in an S3-compatible bucket (`--blobs s3://bucket/prefix?endpoint=…`),
//!   written with a conditional put, for albums that outgrow one disk or run several
//!   service instances.
//!
//! Either way a blob is whole under its name before [`BlobStore::put`] returns, and the
//! upload is acknowledged only after that and after its row is committed.

pub mod local;
pub mod s3;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Where blobs live and how they are stored: what a back end does for [`BlobStore`].
/// Names are SHA-256s in lower-case hex ([`BlobStore`] checks them first).
pub trait BlobBackend: Send + Sync + fmt::Debug {
    /// Stores `bytes` under `name` durably; a blob already there is left as it is.
    fn put(&self, name: &str, bytes: &[u8]) -> Result<Put>;
    fn read(&self, name: &str) -> Result<Vec<u8>>;
    fn contains(&self, name: &str) -> Result<bool>;
    /// Deletes the blob; a missing one is not an error (purges are retried).
    fn remove(&self, name: &str) -> Result<()>;
    /// Every stored blob's name.
    fn names(&self) -> Result<Vec<String>>;
    /// SHA-256 of the stored bytes (a local file is hashed without reading it whole).
    fn hash_of(&self, name: &str) -> Result<String> {
        Ok(sha256_hex(&self.read(name)?))
    }
    /// Half-written leftovers of a crash still stored (local temp files).
    fn leftovers(&self) -> Result<usize>;
    /// Where `name` is stored, for messages (`/data/blobs/ab/cd/…`, `s3://bucket/…`).
    fn location(&self, name: &str) -> String;
}

/// What a put found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The bytes were written.
    Written,
    /// A blob of that name was there already (content-addressed: the same bytes).
    AlreadyThere,
}

/// A blob stored ahead of the write transaction whose row will name it.
///
/// A purge deletes the blobs no row names any more, under the database's write lock
/// (`PhotoService::remove_unused_blobs`). A blob that was already there when this one
/// was put may have been such a blob, about to go: another instance's purge can delete
/// it between this put and this row's commit. [`Staged::confirm`], called inside the
/// write transaction (the lock held, so no purge runs meanwhile on any instance), puts
/// it again if so: the row commits only with its blob there. A blob this put wrote
/// itself cannot have been a purge's: that purge had deleted it before.
#[derive(Debug)]
pub struct Staged<'b> {
    name: String,
    bytes: &'b [u8],
    put: Put,
}

impl Staged<'_> {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The blob's name, once it is sure to be stored (see the type's docs); `_held`
    /// proves the caller holds the database's write lock.
    pub fn confirm(&self, store: &BlobStore, _held: &crate::sql::Transaction<'_>) -> Result<&str> {
        if self.put == Put::AlreadyThere && !store.contains(&self.name)? {
            store.backend.put(&self.name, self.bytes)?;
        }
        Ok(&self.name)
    }
}

/// Where `album serve` keeps its blobs (`--blobs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// A folder on this machine.
    Local(PathBuf),
    /// A bucket on an S3-compatible server.
    S3(s3::S3Location),
}

impl FromStr for BlobLocation {
    type Err = Error;

    /// `s3://bucket[/prefix][?endpoint=URL&region=NAME]`, `file:///path` or a plain path.
    fn from_str(text: &str) -> Result<Self> {
        if text.starts_with("s3://") {
            return Ok(BlobLocation::S3(text.parse()?));
        }
        if let Some(path) = text.strip_prefix("file://") {
            return Ok(BlobLocation::Local(PathBuf::from(path)));
        }
        if text.contains("://") {
            return Err(Error::Setup(format!(
                "--blobs {text:?}: not a folder, a file:// URL or an s3:// URL"
            )));
        }
        Ok(BlobLocation::Local(PathBuf::from(text)))
    }
}

impl fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobLocation::Local(path) => write!(f, "{}", path.display()),
            BlobLocation::S3(location) => write!(f, "{location}"),
        }
    }
}

/// The services' handle on the blob store: cheap to clone, shared by every service.
#[derive(Debug, Clone)]
pub struct BlobStore {
    backend: Arc<dyn BlobBackend>,
    /// Shared while a blob is written and its row committed, exclusive while purged
    /// rows' blobs are deleted, so a purge never removes a blob a new row is about to
    /// use while writers do not wait for each other. It orders one process's writers
    /// and purges; several instances on one bucket also need the database to order
    /// them (see `service::photos`).
    lock: Arc<RwLock<()>>,
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn is_hash(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn checked(name: &str) -> Result<&str> {
    if is_hash(name) {
        Ok(name)
    } else {
        Err(Error::internal(
            "blob store",
            format!("{name:?} is not a SHA-256"),
        ))
    }
}

impl BlobStore {
    /// Opens the store at `location` (a local folder is created if missing and cleared
    /// of a crash's temp files; a bucket must exist and answer); returns the store and
    /// how many leftovers were removed.
    pub fn open(location: &BlobLocation) -> Result<(Self, usize)> {
        let (backend, removed): (Arc<dyn BlobBackend>, usize) = match location {
            BlobLocation::Local(root) => {
                let (local, removed) = local::LocalBlobs::open(root)?;
                (Arc::new(local), removed)
            }
            BlobLocation::S3(location) => (Arc::new(s3::S3Blobs::connect(location)?), 0),
        };
        Ok((Self::with_backend(backend), removed))
    }

    /// Opens the local store under `root` (what `album serve` uses without `--blobs`).
    pub fn open_local(root: &Path) -> Result<(Self, usize)> {
        Self::open(&BlobLocation::Local(root.to_owned()))
    }

    pub fn with_backend(backend: Arc<dyn BlobBackend>) -> Self {
        BlobStore {
            backend,
            lock: Arc::new(RwLock::new(())),
        }
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

    pub fn contains(&self, sha256: &str) -> Result<bool> {
        self.backend.contains(checked(sha256)?)
    }

    /// Stores `bytes` durably and returns their SHA-256. Storing bytes that are already
    /// there changes nothing.
    pub fn put(&self, bytes: &[u8]) -> Result<String> {
        let sha256 = sha256_hex(bytes);
        self.backend.put(&sha256, bytes)?;
        Ok(sha256)
    }

    /// Stores `bytes` durably for a row a write transaction will commit; see [`Staged`].
    pub fn stage<'b>(&self, bytes: &'b [u8]) -> Result<Staged<'b>> {
        let name = sha256_hex(bytes);
        let put = self.backend.put(&name, bytes)?;
        Ok(Staged { name, bytes, put })
    }

    /// The blob's bytes.
    pub fn read(&self, sha256: &str) -> Result<Vec<u8>> {
        self.backend.read(checked(sha256)?)
    }

    /// Deletes the blob; a missing one is not an error (purges are retried).
    pub fn remove(&self, sha256: &str) -> Result<()> {
        self.backend.remove(checked(sha256)?)
    }

    /// Every stored blob's name (for the consistency check and tests).
    pub fn names(&self) -> Result<Vec<String>> {
        self.backend.names()
    }

    /// SHA-256 of what is stored under `name`: equal to `name` unless the blob is damaged.
    pub fn hash_of(&self, name: &str) -> Result<String> {
        self.backend.hash_of(checked(name)?)
    }

    /// A crash's half-written leftovers still stored.
    pub fn leftovers(&self) -> Result<usize> {
        self.backend.leftovers()
    }

    /// Where the blob `sha256` is stored, for messages.
    pub fn location(&self, sha256: &str) -> String {
        self.backend.location(sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_locations_parse_from_the_flag() {
        assert_eq!(
            "/srv/album/blobs".parse::<BlobLocation>().unwrap(),
            BlobLocation::Local(PathBuf::from("/srv/album/blobs"))
        );
        assert_eq!(
            "file:///srv/blobs".parse::<BlobLocation>().unwrap(),
            BlobLocation::Local(PathBuf::from("/srv/blobs"))
        );
        let s3: BlobLocation = "s3://photos/album-1?endpoint=http://127.0.0.1:8333"
            .parse()
            .unwrap();
        assert_eq!(
            s3.to_string(),
            "s3://photos/album-1?endpoint=http://127.0.0.1:8333"
        );
        let error = "ftp://host/blobs".parse::<BlobLocation>().unwrap_err();
        assert!(error.to_string().contains("s3://"), "{error}");
    }

    #[test]
    fn names_that_are_not_hashes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = BlobStore::open_local(dir.path()).unwrap();
        assert!(store.read("../../etc/passwd").is_err());
        assert!(store.remove(&"A".repeat(64)).is_err());
        assert!(store.contains("").is_err());
    }
}
