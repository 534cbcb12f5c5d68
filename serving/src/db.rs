//! SQLite as the album's embedded store: one file in the data directory, write-ahead
//! logging (readers never wait for the writer), foreign keys on, and schema migrations
//! applied in order on open, tracked by `PRAGMA user_version`.
//!
//! rusqlite is blocking, so async handlers reach the database through [`Db::run`], which
//! takes a pooled connection on tokio's blocking threads.

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::{Error, Result};

/// The migrations, in order; `user_version` is how many have been applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_listing_index.sql"),
    include_str!("../migrations/0003_places_per_user.sql"),
    include_str!("../migrations/0004_face_thumbnails.sql"),
    include_str!("../migrations/0005_session_last_seen.sql"),
    include_str!("../migrations/0006_admin.sql"),
    include_str!("../migrations/0007_montages.sql"),
    include_str!("../migrations/0008_model_probabilities.sql"),
    include_str!("../migrations/0009_placed_faces_version.sql"),
    include_str!("../migrations/0010_job_leases.sql"),
];

/// A connection taken from the pool; back in the pool when dropped.
pub(crate) type Pooled = r2d2::PooledConnection<SqliteConnectionManager>;

/// A pool of connections to the album's database.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<SqliteConnectionManager>,
}

/// Per-connection settings. `busy_timeout` makes a writer wait for another writer's
/// transaction instead of failing at once with SQLITE_BUSY.
fn configure(connection: &mut Connection) -> rusqlite::Result<()> {
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;",
    )
}

impl Db {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path, connections: u32) -> Result<Self> {
        let manager = SqliteConnectionManager::file(path).with_init(configure);
        let pool = r2d2::Pool::builder()
            .max_size(connections.max(1))
            .connection_timeout(Duration::from_secs(30))
            .build(manager)
            .map_err(|e| Error::Setup(format!("cannot open {}: {e}", path.display())))?;
        let db = Db { pool };
        let mut connection = db.connection()?;
        migrate(&mut connection)
            .map_err(|e| Error::Setup(format!("cannot migrate {}: {e}", path.display())))?;
        Ok(db)
    }

    /// A connection for blocking code (workers, tests).
    pub fn connection(&self) -> Result<Pooled> {
        Ok(self.pool.get()?)
    }

    /// Runs `work` with a connection on a blocking thread.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = pool.get()?;
            work(&mut connection)
        })
        .await?
    }
}

/// Begins a transaction that will write: `BEGIN IMMEDIATE`, which takes the write lock
/// at once (waiting up to `busy_timeout` for another writer). Why not the default
/// deferred one: a deferred transaction that reads first and writes later holds a
/// snapshot, and if another connection commits in between, its first write fails at
/// once with SQLITE_BUSY ("database is locked") — no timeout can help, the snapshot is
/// stale. A purge running beside uploads answered 500 that way.
pub(crate) fn write_transaction(connection: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    connection.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// Applies the migrations the database has not seen yet, each in its own transaction.
/// A database from a newer build (more migrations than this one knows) is refused.
pub(crate) fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let applied: usize =
        connection.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))? as usize;
    if applied > MIGRATIONS.len() {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the database is at schema version {applied}, this build knows {}",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = write_transaction(connection)?;
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", (index + 1) as i64)?;
        transaction.commit()?;
    }
    Ok(())
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_set_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("album.db");
        let db = Db::open(&path, 2).unwrap();
        let connection = db.connection().unwrap();
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = connection
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(connection);
        drop(db);
        // Opening again applies nothing twice (a second CREATE TABLE would fail).
        Db::open(&path, 1).unwrap();
    }

    /// Regression: the places table was shared, so a user's photo near a town another
    /// user had photos near got that user's older place id. Version 3 gives each user
    /// their own rows and moves existing photos to their owner's copy.
    #[test]
    fn migrating_a_shared_place_gives_each_owner_their_own_row() {
        let mut c = Connection::open_in_memory().unwrap();
        configure(&mut c).unwrap();
        for sql in &MIGRATIONS[..2] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 2).unwrap();
        c.execute_batch(
            "INSERT INTO users (id, username, password_hash, created) VALUES
                 (1, 'ann', 'x', 0), (2, 'bob', 'x', 0);
             INSERT INTO places (id, name, admin1, country) VALUES
                 (7, 'Paris', 'Ile-de-France', 'FR'), (8, 'Berlin', 'Berlin', 'DE');
             INSERT INTO photos (id, user_id, sha256, kind, name, mime, bytes, width, height,
                                 place_id, uploaded) VALUES
                 (1, 1, 'a', 'photo', 'a.jpg', 'image/jpeg', 1, 1, 1, 7, 0),
                 (2, 2, 'b', 'photo', 'b.jpg', 'image/jpeg', 1, 1, 1, 8, 0),
                 (3, 2, 'c', 'photo', 'c.jpg', 'image/jpeg', 1, 1, 1, 7, 0),
                 (4, 2, 'd', 'photo', 'd.jpg', 'image/jpeg', 1, 1, 1, NULL, 0);",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let place_of = |photo: i64| -> (Option<i64>, Option<String>) {
            c.query_row(
                "SELECT p.place_id, (SELECT pl.name || '/' || pl.user_id FROM places pl
                                     WHERE pl.id = p.place_id)
                 FROM photos p WHERE p.id = ?1",
                [photo],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
        };
        let (ann_paris, ann_name) = place_of(1);
        let (bob_paris, bob_name) = place_of(3);
        assert_eq!(ann_name.as_deref(), Some("Paris/1"));
        assert_eq!(bob_name.as_deref(), Some("Paris/2"));
        assert_ne!(ann_paris, bob_paris);
        assert_eq!(place_of(2).1.as_deref(), Some("Berlin/2"));
        assert_eq!(place_of(4), (None, None));
        let problems: i64 = c
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(problems, 0);
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("album.db");
        let connection = Connection::open(&path).unwrap();
        connection.pragma_update(None, "user_version", 99).unwrap();
        drop(connection);
        let error = Db::open(&path, 1).err().unwrap().to_string();
        assert!(error.contains("schema version 99"), "{error}");
    }

    /// Two connections to one database in WAL mode, configured as the pool's are, the
    /// second one never waiting for a lock (so a refusal shows at once), and a table.
    fn two_connections(dir: &Path) -> (Connection, Connection) {
        let path = dir.join("album.db");
        let mut first = Connection::open(&path).unwrap();
        configure(&mut first).unwrap();
        first.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let mut second = Connection::open(&path).unwrap();
        configure(&mut second).unwrap();
        second.busy_timeout(Duration::ZERO).unwrap();
        (first, second)
    }

    fn is_busy(error: &rusqlite::Error) -> bool {
        error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
    }

    /// Why write transactions are IMMEDIATE: a deferred one that reads, sees another
    /// connection commit, then writes, is refused at once ("database is locked").
    #[test]
    fn a_deferred_transaction_that_reads_then_writes_is_refused_after_a_commit_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let (mut first, second) = two_connections(dir.path());
        let deferred = first.transaction().unwrap();
        let _: i64 = deferred
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        second.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let error = deferred.execute("DELETE FROM t", []).unwrap_err();
        assert!(is_busy(&error), "{error}");
    }

    /// Regression: a purge running beside uploads answered 500 "database is locked" (its
    /// deferred transaction read the photo rows, an upload committed, its DELETE was
    /// refused). A write transaction holds the write lock from its start: the other
    /// writer waits instead, and the transaction's own writes go through.
    #[test]
    fn a_write_transaction_keeps_other_writers_out_until_it_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (mut first, second) = two_connections(dir.path());
        let transaction = write_transaction(&mut first).unwrap();
        let _: i64 = transaction
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        let refused = second.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
        assert!(is_busy(&refused), "{refused}");
        transaction.execute("INSERT INTO t VALUES (2)", []).unwrap();
        transaction.commit().unwrap();
        second.execute("INSERT INTO t VALUES (3)", []).unwrap();
        let rows: i64 = second
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2);
    }
}
