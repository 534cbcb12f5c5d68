//! The schema and its version: the migrations, written once per dialect (`migrations/`
//! for SQLite, `migrations/postgres/` for Postgres, one for one), applied in order, each
//! in its own transaction. SQLite keeps the version in `PRAGMA user_version`; Postgres in
//! the table `schema_version`, with an advisory lock held meanwhile so two instances
//! starting at once do not migrate together.

use crate::sql::{self, Connection, Dialect};

/// The SQLite migrations, in order; `user_version` is how many have been applied.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_listing_index.sql"),
    include_str!("../../migrations/0003_places_per_user.sql"),
    include_str!("../../migrations/0004_face_thumbnails.sql"),
    include_str!("../../migrations/0005_session_last_seen.sql"),
    include_str!("../../migrations/0006_admin.sql"),
    include_str!("../../migrations/0007_montages.sql"),
    include_str!("../../migrations/0008_model_probabilities.sql"),
    include_str!("../../migrations/0009_placed_faces_version.sql"),
    include_str!("../../migrations/0010_job_leases.sql"),
];

/// The same migrations for Postgres, one for one.
const POSTGRES_MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_listing_index.sql"),
    include_str!("../../migrations/postgres/0003_places_per_user.sql"),
    include_str!("../../migrations/postgres/0004_face_thumbnails.sql"),
    include_str!("../../migrations/postgres/0005_session_last_seen.sql"),
    include_str!("../../migrations/postgres/0006_admin.sql"),
    include_str!("../../migrations/postgres/0007_montages.sql"),
    include_str!("../../migrations/postgres/0008_model_probabilities.sql"),
    include_str!("../../migrations/postgres/0009_placed_faces_version.sql"),
    include_str!("../../migrations/postgres/0010_job_leases.sql"),
];

/// The advisory lock key migrations hold on Postgres ("migrate" in ASCII).
const MIGRATION_LOCK: i64 = 0x6d69_6772_6174_65;

/// Applies the migrations the database has not seen yet, each in its own transaction.
/// A database from a newer build (more migrations than this one knows) is refused.
pub fn migrate(connection: &Connection) -> sql::Result<()> {
    match connection.dialect() {
        Dialect::Sqlite => migrate_sqlite(connection),
        Dialect::Postgres => {
            connection.execute_batch(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
            let migrated = migrate_postgres(connection);
            let unlocked =
                connection.execute_batch(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
            migrated.and(unlocked)
        }
    }
}

fn newer_schema(applied: usize, known: usize) -> sql::Error {
    sql::Error::Schema(format!(
        "the database is at schema version {applied}, this build knows {known}"
    ))
}

fn migrate_sqlite(connection: &Connection) -> sql::Result<()> {
    let applied = connection.query_row("PRAGMA user_version", [], |row| row.get::<_, usize>(0))?;
    if applied > MIGRATIONS.len() {
        return Err(newer_schema(applied, MIGRATIONS.len()));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = connection.write_transaction()?;
        transaction.execute_batch(sql)?;
        transaction.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
        transaction.commit()?;
    }
    Ok(())
}

fn migrate_postgres(connection: &Connection) -> sql::Result<()> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
         INSERT INTO schema_version (version)
             SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
    )?;
    let applied = connection.query_row("SELECT version FROM schema_version", [], |row| {
        row.get::<_, usize>(0)
    })?;
    if applied > POSTGRES_MIGRATIONS.len() {
        return Err(newer_schema(applied, POSTGRES_MIGRATIONS.len()));
    }
    for (index, sql) in POSTGRES_MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = connection.write_transaction()?;
        transaction.execute_batch(sql)?;
        transaction.execute("UPDATE schema_version SET version = ?1", [index + 1])?;
        transaction.commit()?;
    }
    Ok(())
}

/// The schema version of a database (0 for one never migrated).
pub fn version(connection: &Connection) -> sql::Result<usize> {
    match connection.dialect() {
        Dialect::Sqlite => {
            connection.query_row("PRAGMA user_version", [], |row| row.get::<_, usize>(0))
        }
        Dialect::Postgres => {
            let made: bool = connection.query_row(
                "SELECT EXISTS (SELECT 1 FROM information_schema.tables
                     WHERE table_schema = current_schema() AND table_name = 'schema_version')",
                [],
                |row| row.get(0),
            )?;
            if !made {
                return Ok(0);
            }
            connection.query_row("SELECT version FROM schema_version", [], |row| {
                row.get::<_, usize>(0)
            })
        }
    }
}
