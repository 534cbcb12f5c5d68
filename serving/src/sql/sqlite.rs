//! The SQLite engine: rusqlite, with the album's per-connection settings.

use rusqlite::types::{Value as SqliteValue, ValueRef};
use rusqlite::{Connection, params_from_iter};

use super::{Result, Row, Value};

/// A rusqlite connection, from the pool or opened alone.
pub(crate) enum SqliteConn {
    Pooled(r2d2::PooledConnection<r2d2_sqlite::SqliteConnectionManager>),
    Owned(Connection),
}

impl std::ops::Deref for SqliteConn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            SqliteConn::Pooled(c) => c,
            SqliteConn::Owned(c) => c,
        }
    }
}

/// Per-connection settings: write-ahead logging (readers never wait for the writer),
/// full sync, foreign keys on, and `busy_timeout`, which makes a writer wait for another
/// writer's transaction instead of failing at once with SQLITE_BUSY.
pub(crate) fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;",
    )
}

fn bind(values: &[Value]) -> impl Iterator<Item = SqliteValue> + '_ {
    values.iter().map(|value| match value {
        Value::Null => SqliteValue::Null,
        Value::Integer(i) => SqliteValue::Integer(*i),
        Value::Real(r) => SqliteValue::Real(*r),
        Value::Text(s) => SqliteValue::Text(s.clone()),
        Value::Blob(b) => SqliteValue::Blob(b.clone()),
    })
}

fn read(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

pub(crate) fn execute(c: &Connection, sql: &str, values: &[Value]) -> Result<usize> {
    Ok(c.prepare_cached(sql)?
        .execute(params_from_iter(bind(values)))?)
}

pub(crate) fn query(c: &Connection, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
    let mut statement = c.prepare_cached(sql)?;
    let columns = statement.column_count();
    let mut rows = statement.query(params_from_iter(bind(values)))?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..columns)
            .map(|i| row.get_ref(i).map(read))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        found.push(Row::new(values));
    }
    Ok(found)
}
