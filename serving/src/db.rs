//! SQLite as the album's embedded store: one file in the data directory, write-ahead
//! logging (readers never wait for the writer), foreign keys on, and schema migrations
//! applied in order on open, tracked by `PRAGMA user_version`.
//!
//! rusqlite is blocking, so async handlers reach the database through [`Db::run`], which
//! takes a pooled connection on tokio's blocking threads.

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use crate::error::{Error, Result};

/// The migrations, in order; `user_version` is how many have been applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_listing_index.sql"),
];

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
    pub fn connection(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>> {
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

/// Applies the migrations the database has not seen yet, each in its own transaction.
/// A database from a newer build (more migrations than this one knows) is refused.
pub fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let applied: usize =
        connection.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))? as usize;
    if applied > MIGRATIONS.len() {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the database is at schema version {applied}, this build knows {}",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = connection.transaction()?;
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
}
