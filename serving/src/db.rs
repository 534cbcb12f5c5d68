//! The album's database: SQLite in the data directory (the embedded default) or a
//! Postgres server shared by several service instances (`album serve --database
//! postgres://…`). Both speak through [`crate::sql`]; on open the schema is brought up
//! to date by [`crate::repo::schema`]. SQLite runs in write-ahead-log mode (readers
//! never wait for the writer) with foreign keys on.
//!
//! Both drivers block, so async handlers reach the database through [`Db::run`], which
//! takes a pooled connection on tokio's blocking threads.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;

use crate::error::{Error, Result};
use crate::repo::schema;
use crate::sql::{Connection, Dialect, PgManager, SqliteConn};

/// Where an album's rows live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// A SQLite file (the embedded default: `<data dir>/album.db`).
    Sqlite(PathBuf),
    /// A Postgres database, by its `postgres://user@host:port/name` URL.
    Postgres(String),
}

impl DatabaseLocation {
    /// A `postgres://` (or `postgresql://`) URL, or a SQLite file's path.
    pub fn parse(text: &str) -> Result<Self> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            text.parse::<tokio_postgres::Config>()
                .map_err(|e| Error::Setup(format!("{}: not a Postgres URL ({e})", redact(text))))?;
            Ok(DatabaseLocation::Postgres(text.to_owned()))
        } else if text.contains("://") {
            Err(Error::Setup(format!(
                "{}: the database is a postgres:// URL or a SQLite file's path",
                redact(text)
            )))
        } else {
            Ok(DatabaseLocation::Sqlite(PathBuf::from(text)))
        }
    }
}

impl std::str::FromStr for DatabaseLocation {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        DatabaseLocation::parse(text)
    }
}

impl fmt::Display for DatabaseLocation {
    /// The location without its password, fit for logs and errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseLocation::Sqlite(path) => write!(f, "{}", path.display()),
            DatabaseLocation::Postgres(url) => write!(f, "{}", redact(url)),
        }
    }
}

/// `url` with the password between `:` and `@` replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// A connection taken from the pool; back in the pool when dropped.
pub struct Pooled(Connection);

impl std::ops::Deref for Pooled {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.0
    }
}

#[derive(Clone)]
enum Pool {
    Sqlite(r2d2::Pool<SqliteConnectionManager>),
    Postgres(r2d2::Pool<PgManager>),
}

/// A pool of connections to the album's database.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

/// The pool's SQLite settings (see [`sql`]'s SQLite engine).
fn configure(connection: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    crate::sql::configure_sqlite(connection)
}

impl Db {
    /// Opens (creating if needed) the SQLite database at `path` and migrates it.
    pub fn open(path: &Path, connections: u32) -> Result<Self> {
        Db::open_at(&DatabaseLocation::Sqlite(path.to_owned()), connections)
    }

    /// Opens the database at `location` (creating a SQLite file if needed) and migrates
    /// it.
    pub fn open_at(location: &DatabaseLocation, connections: u32) -> Result<Self> {
        fn builder<M: r2d2::ManageConnection>(connections: u32) -> r2d2::Builder<M> {
            r2d2::Pool::builder()
                .max_size(connections.max(1))
                .connection_timeout(Duration::from_secs(30))
        }
        let cannot = |e: &dyn fmt::Display| Error::Setup(format!("cannot open {location}: {e}"));
        let pool = match location {
            DatabaseLocation::Sqlite(path) => {
                let manager = SqliteConnectionManager::file(path).with_init(configure);
                Pool::Sqlite(
                    builder(connections)
                        .build(manager)
                        .map_err(|e| cannot(&e))?,
                )
            }
            DatabaseLocation::Postgres(url) => {
                // Connect once first: r2d2 would otherwise retry for its whole timeout
                // and then say only "timed out".
                Connection::open_postgres(url).map_err(|e| cannot(&e))?;
                Pool::Postgres(
                    builder(connections)
                        .build(PgManager::new(url))
                        .map_err(|e| cannot(&e))?,
                )
            }
        };
        let db = Db { pool };
        let connection = db.connection()?;
        schema::migrate(&connection)
            .map_err(|e| Error::Setup(format!("cannot migrate {location}: {e}")))?;
        Ok(db)
    }

    /// Which engine the album runs on.
    pub fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A connection for blocking code (workers, tests).
    pub fn connection(&self) -> Result<Pooled> {
        Ok(Pooled(match &self.pool {
            Pool::Sqlite(pool) => Connection::from_sqlite(SqliteConn::Pooled(pool.get()?)),
            Pool::Postgres(pool) => Connection::from_pooled_postgres(pool.get()?),
        }))
    }

    /// Runs `work` with a connection on a blocking thread.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = db.connection()?;
            work(&mut connection)
        })
        .await?
    }
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::schema::{MIGRATIONS, migrate};

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
        let c = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..2] {
            c.execute_batch(sql).unwrap();
        }
        c.execute_batch("PRAGMA user_version = 2").unwrap();
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
        migrate(&c).unwrap();
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
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection.pragma_update(None, "user_version", 99).unwrap();
        drop(connection);
        let error = Db::open(&path, 1).err().unwrap().to_string();
        assert!(error.contains("schema version 99"), "{error}");
    }

    /// Two connections to one database in WAL mode, configured as the pool's are, the
    /// second one never waiting for a lock (so a refusal shows at once), and a table.
    fn two_connections(dir: &Path) -> (Connection, Connection) {
        let path = dir.join("album.db");
        let first = Connection::open_sqlite(&path).unwrap();
        first.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let second = Connection::open_sqlite(&path).unwrap();
        second
            .as_sqlite()
            .unwrap()
            .busy_timeout(Duration::ZERO)
            .unwrap();
        (first, second)
    }

    fn is_busy(error: &crate::sql::Error) -> bool {
        matches!(error, crate::sql::Error::Sqlite(e)
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy))
    }

    /// Why write transactions are IMMEDIATE: a deferred one that reads, sees another
    /// connection commit, then writes, is refused at once ("database is locked").
    #[test]
    fn a_deferred_transaction_that_reads_then_writes_is_refused_after_a_commit_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = two_connections(dir.path());
        first.execute_batch("BEGIN DEFERRED").unwrap();
        let _: i64 = first
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        second.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let error = first.execute("DELETE FROM t", []).unwrap_err();
        assert!(is_busy(&error), "{error}");
    }

    /// Regression: a purge running beside uploads answered 500 "database is locked" (its
    /// deferred transaction read the photo rows, an upload committed, its DELETE was
    /// refused). A write transaction holds the write lock from its start: the other
    /// writer waits instead, and the transaction's own writes go through.
    #[test]
    fn a_write_transaction_keeps_other_writers_out_until_it_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = two_connections(dir.path());
        let transaction = first.write_transaction().unwrap();
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
