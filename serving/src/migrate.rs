//! Moving an album's blobs to another store (`album migrate`): from the embedded
//! default's `blobs/` folder to an S3-compatible bucket, or between any two
//! [`BlobLocation`]s.
//!
//! Every blob is read from the source, checked against its name (a damaged source blob
//! stops the move rather than being copied), written to the target and read back from
//! it, its bytes hashed again: a blob counts as moved only when the target holds it
//! byte-identical. Blobs the target already holds are checked the same way and not
//! written again, so an interrupted move is simply run again. The source is never
//! changed. Run it while the album is stopped (or it misses the uploads made
//! meanwhile; running it again after stopping picks them up).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::blobs::{BlobLocation, BlobStore, sha256_hex};
use crate::error::{Error, Result};

/// What [`copy_blobs`] did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BlobMove {
    /// Blobs written to the target and read back whole.
    pub copied: usize,
    /// Blobs the target held already, read back whole.
    pub already_there: usize,
    /// Bytes written.
    pub bytes_copied: u64,
}

/// Copies every blob of `from` to `to`, verifying each as it goes (see the module
/// docs), with `threads` requests at a time; `progress` is told each blob done.
pub fn copy_blobs(
    from: &BlobLocation,
    to: &BlobLocation,
    threads: usize,
    progress: &(dyn Fn() + Sync),
) -> Result<BlobMove> {
    if from == to {
        return Err(Error::Setup(format!(
            "the source and the target are the same store ({from})"
        )));
    }
    let (source, _) = BlobStore::open(from)?;
    let (target, _) = BlobStore::open(to)?;
    let names = source.names()?;
    let next = AtomicUsize::new(0);
    let copied = AtomicUsize::new(0);
    let already = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    if first_error.lock().map_or(true, |e| e.is_some()) {
                        return;
                    }
                    let Some(name) = names.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    match copy_one(&source, &target, name) {
                        Ok(Some(written)) => {
                            copied.fetch_add(1, Ordering::Relaxed);
                            bytes.fetch_add(written, Ordering::Relaxed);
                        }
                        Ok(None) => {
                            already.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => {
                            if let Ok(mut first) = first_error.lock() {
                                first.get_or_insert(error);
                            }
                            return;
                        }
                    }
                    progress();
                }
            });
        }
    });
    if let Some(error) = first_error.into_inner().ok().flatten() {
        return Err(error);
    }
    Ok(BlobMove {
        copied: copied.into_inner(),
        already_there: already.into_inner(),
        bytes_copied: bytes.into_inner(),
    })
}

/// Copies one blob; `Some(bytes)` when it was written, `None` when the target had it.
fn copy_one(source: &BlobStore, target: &BlobStore, name: &str) -> Result<Option<u64>> {
    if target.contains(name)? {
        verify(target, name)?;
        return Ok(None);
    }
    let bytes = source.read(name)?;
    if sha256_hex(&bytes) != name {
        return Err(Error::Setup(format!(
            "{} is damaged (its bytes do not hash to its name): nothing of it was copied; \
             restore it from a backup, or remove the photo, and run the move again",
            source.location(name)
        )));
    }
    target.put(&bytes)?;
    verify(target, name)?;
    Ok(Some(bytes.len() as u64))
}

fn verify(target: &BlobStore, name: &str) -> Result<()> {
    let hash = target.hash_of(name)?;
    if hash != name {
        return Err(Error::Setup(format!(
            "{} reads back with SHA-256 {hash}, not its name",
            target.location(name)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_blob_arrives_whole_and_a_second_run_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let from = BlobLocation::Local(dir.path().join("a"));
        let to = BlobLocation::Local(dir.path().join("b"));
        let (source, _) = BlobStore::open(&from).unwrap();
        let names: Vec<String> = (0..20)
            .map(|i| source.put(format!("photo {i}").as_bytes()).unwrap())
            .collect();
        let counted = AtomicUsize::new(0);
        let tick = || {
            counted.fetch_add(1, Ordering::Relaxed);
        };
        let moved = copy_blobs(&from, &to, 4, &tick).unwrap();
        assert_eq!((moved.copied, moved.already_there), (20, 0));
        assert_eq!(counted.load(Ordering::Relaxed), 20);
        let (target, _) = BlobStore::open(&to).unwrap();
        for name in &names {
            assert_eq!(target.read(name).unwrap(), source.read(name).unwrap());
        }
        let again = copy_blobs(&from, &to, 4, &|| {}).unwrap();
        assert_eq!(
            (again.copied, again.already_there, again.bytes_copied),
            (0, 20, 0)
        );
    }

    #[test]
    fn a_damaged_source_blob_stops_the_move_and_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let from = BlobLocation::Local(dir.path().join("a"));
        let (source, _) = BlobStore::open(&from).unwrap();
        let name = source.put(b"a whole photo").unwrap();
        let path = dir
            .path()
            .join(format!("a/{}/{}/{name}", &name[0..2], &name[2..4]));
        std::fs::write(&path, b"a half").unwrap();
        let to = BlobLocation::Local(dir.path().join("b"));
        let error = copy_blobs(&from, &to, 2, &|| {}).unwrap_err().to_string();
        assert!(
            error.contains(&name) && error.contains("damaged"),
            "{error}"
        );
        let (target, _) = BlobStore::open(&to).unwrap();
        assert!(!target.contains(&name).unwrap(), "nothing of it was copied");
    }

    #[test]
    fn moving_a_store_onto_itself_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let at = BlobLocation::Local(dir.path().to_owned());
        assert!(copy_blobs(&at, &at, 1, &|| {}).is_err());
    }
}
