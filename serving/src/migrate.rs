//! Moving an album to the scale-out stores (`album migrate`): its rows from the embedded
//! SQLite database to Postgres ([`copy_database`], checked by [`compare_databases`]),
//! and its blobs from the `blobs/` folder to an S3-compatible bucket ([`copy_blobs`]),
//! or between any two [`DatabaseLocation`]s and [`BlobLocation`]s.
//!
//! The rows move in one transaction on the target, table by table, parents first, each
//! row with its own id, so every reference (a face's person, a photo's place, an album's
//! cover) holds as it did; the target must be empty. Afterwards every table is read back
//! from both sides in key order and compared value for value.
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
use crate::check::open_as_is;
use crate::db::{DatabaseLocation, Db};
use crate::error::{Error, Result};
use crate::repo::{schema, transfer};

/// Rows copied, per table (in the order they were copied).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RowMove {
    pub tables: Vec<(String, usize)>,
}

impl RowMove {
    pub fn rows(&self) -> usize {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// One table compared between two databases.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TableCheck {
    pub table: String,
    pub source_rows: usize,
    pub target_rows: usize,
    /// Rows at the same place in key order whose values differ, plus rows only one side
    /// has.
    pub differing: usize,
}

impl TableCheck {
    pub fn is_identical(&self) -> bool {
        self.differing == 0 && self.source_rows == self.target_rows
    }
}

/// Copies every row of the album at `from` into the empty database at `to` (made and
/// migrated to this build's schema if needed), in one transaction; `progress` is told
/// each table as it is done, with its rows.
pub fn copy_database(
    from: &DatabaseLocation,
    to: &DatabaseLocation,
    progress: &dyn Fn(&str, usize),
) -> Result<RowMove> {
    if from == to {
        return Err(Error::Setup(format!(
            "the source and the target are the same database ({from})"
        )));
    }
    let source = open_as_is(from)?;
    let target_db = Db::open_at(to, 1)?;
    let target = target_db.connection()?;
    let (version, target_version) = (schema::version(&source)?, schema::version(&target)?);
    if version != target_version {
        return Err(Error::Setup(format!(
            "{from} is at schema version {version}, this build's is {target_version}: start \
             the album once with this build's `album serve` (it migrates the database), stop \
             it, and run the move again"
        )));
    }
    let mut known: Vec<&str> = transfer::TABLES.iter().map(|(t, _)| *t).collect();
    known.sort_unstable();
    if transfer::table_names(&source)? != known {
        return Err(Error::Setup(format!(
            "{from} has tables this build does not know: {:?}",
            transfer::table_names(&source)?
        )));
    }
    for (table, _) in transfer::TABLES {
        let rows = transfer::count(&target, table)?;
        if rows > 0 {
            return Err(Error::Setup(format!(
                "{to} already holds rows ({rows} in {table}): move the album into an empty \
                 database"
            )));
        }
    }
    let transaction = target.write_transaction()?;
    let mut moved = RowMove::default();
    for (table, order_by) in transfer::TABLES {
        let columns = transfer::columns(&source, table)?;
        let rows = transfer::rows(&source, table, &columns, order_by)?;
        let count = rows.len();
        transfer::insert(&transaction, table, &columns, rows)?;
        if columns.iter().any(|c| c == "id") {
            transfer::follow_ids(&transaction, table)?;
        }
        moved.tables.push((table.to_string(), count));
        progress(table, count);
    }
    transaction.commit()?;
    Ok(moved)
}

/// Reads every table of the album from both databases in key order and compares them
/// value for value (bytes, text, integers, and reals bit for bit).
pub fn compare_databases(
    from: &DatabaseLocation,
    to: &DatabaseLocation,
) -> Result<Vec<TableCheck>> {
    let source = open_as_is(from)?;
    let target = open_as_is(to)?;
    let mut checks = Vec::with_capacity(transfer::TABLES.len());
    for (table, order_by) in transfer::TABLES {
        let columns = transfer::columns(&source, table)?;
        let theirs = transfer::rows(&source, table, &columns, order_by)?;
        let ours = transfer::rows(&target, table, &columns, order_by)?;
        let same = theirs.iter().zip(&ours).filter(|(a, b)| a == b).count();
        checks.push(TableCheck {
            table: table.to_string(),
            source_rows: theirs.len(),
            target_rows: ours.len(),
            differing: theirs.len().max(ours.len()) - same,
        });
    }
    Ok(checks)
}

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
