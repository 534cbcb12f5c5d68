//! The one SQL interface the repositories speak, over two engines: SQLite (the embedded
//! default, through rusqlite) and Postgres (the scale-out store, through the `postgres`
//! crate). It is shaped like the subset of rusqlite the repositories always used
//! (`execute`, `query_row`, `prepare(..).query_map`, `params!`, `.optional()`), so a
//! repository function is written once and runs on either.
//!
//! Values cross it as [`Value`]s: integers, reals, text, bytes and NULL, which is all the
//! schema stores (booleans are 0/1 integers on both engines). Statements are written
//! with SQLite's `?`/`?N` placeholders; on Postgres they are renumbered to `$N` before
//! preparing. The few spots where the dialects differ ask [`Connection::dialect`].
//!
//! Write transactions ([`Connection::write_transaction`]) are serialised on both
//! engines: `BEGIN IMMEDIATE` takes SQLite's write lock, and on Postgres a
//! transaction-scoped advisory lock gives the same guarantee across every instance that
//! shares the database, so the services' read-then-write rules hold unchanged.

mod postgres;
mod sqlite;

use std::cell::RefCell;
use std::fmt;

pub(crate) use self::postgres::{PgConn, PgManager, PgSession};
pub(crate) use self::sqlite::{SqliteConn, configure as configure_sqlite};

/// A value as stored in a column or bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Which engine a connection talks to, for the few statements written twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The smaller of two numbers (SQLite's two-argument `MIN`, Postgres' `LEAST`).
    pub fn least(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Sqlite => format!("MIN({a}, {b})"),
            Dialect::Postgres => format!("LEAST({a}, {b})"),
        }
    }

    /// Unix seconds as `YYYY-MM-DDTHH:MM:SS` in UTC, the format EXIF dates are kept in.
    pub fn iso_from_unix(self, seconds: &str) -> String {
        match self {
            Dialect::Sqlite => format!("strftime('%Y-%m-%dT%H:%M:%S', {seconds}, 'unixepoch')"),
            Dialect::Postgres => format!(
                "to_char(to_timestamp({seconds}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
            ),
        }
    }

    /// The number under `key` (an SQL expression giving the key's name) in the JSON
    /// object kept as text in `column`.
    pub fn json_number(self, column: &str, key: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_extract({column}, '$.\"' || {key} || '\"')"),
            Dialect::Postgres => {
                format!("CAST(CAST({column} AS jsonb) ->> CAST({key} AS text) AS double precision)")
            }
        }
    }
}

/// What went wrong in the SQL layer; the engine's own error is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {}", postgres::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Engine(String),
    #[error("the query returned no rows")]
    QueryReturnedNoRows,
    #[error("column {column}: {message}")]
    Conversion { column: usize, message: String },
    #[error("{0}")]
    Schema(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Rust value that binds to a placeholder.
pub trait ToSql {
    fn to_value(&self) -> Value;
}

macro_rules! integer_to_sql {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> Value {
                Value::Integer(i64::from(*self))
            }
        }
    )*};
}
integer_to_sql!(i64, i32, i16, i8, u32, u16, u8);

impl ToSql for u64 {
    fn to_value(&self) -> Value {
        Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToSql for usize {
    fn to_value(&self) -> Value {
        Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToSql for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToSql for f32 {
    fn to_value(&self) -> Value {
        Value::Real(f64::from(*self))
    }
}

impl ToSql for bool {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

impl ToSql for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl ToSql for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToSql for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToSql for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl ToSql for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToSql::to_value)
    }
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToSql + ?Sized> ToSql for Box<T> {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

/// A Rust value a column converts into.
pub trait FromSql: Sized {
    /// The value, or why it does not fit.
    fn from_value(value: &Value) -> std::result::Result<Self, String>;
}

fn mismatch<T>(value: &Value, wanted: &str) -> std::result::Result<T, String> {
    Err(format!("{value:?} is not {wanted}"))
}

impl FromSql for i64 {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Integer(i) => Ok(*i),
            other => mismatch(other, "an integer"),
        }
    }
}

macro_rules! narrow_integer_from_sql {
    ($($t:ty),*) => {$(
        impl FromSql for $t {
            fn from_value(value: &Value) -> std::result::Result<Self, String> {
                let wide = i64::from_value(value)?;
                <$t>::try_from(wide).map_err(|_| format!("{wide} is out of range"))
            }
        }
    )*};
}
narrow_integer_from_sql!(i32, i16, u64, u32, u16, u8, usize);

impl FromSql for f64 {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Real(r) => Ok(*r),
            Value::Integer(i) => Ok(*i as f64),
            other => mismatch(other, "a number"),
        }
    }
}

impl FromSql for f32 {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        f64::from_value(value).map(|v| v as f32)
    }
}

impl FromSql for bool {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        i64::from_value(value).map(|i| i != 0)
    }
}

impl FromSql for String {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            other => mismatch(other, "text"),
        }
    }
}

impl FromSql for Vec<u8> {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Blob(b) => Ok(b.clone()),
            other => mismatch(other, "bytes"),
        }
    }
}

impl FromSql for Value {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        Ok(value.clone())
    }
}

impl<T: FromSql> FromSql for Option<T> {
    fn from_value(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// How a column is named in [`Row::get`]: by position.
pub trait RowIndex {
    fn position(&self) -> usize;
}

impl RowIndex for usize {
    fn position(&self) -> usize {
        *self
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    pub(crate) fn new(values: Vec<Value>) -> Self {
        Row { values }
    }

    /// Column `index` (from 0) as a `T`.
    pub fn get<I: RowIndex, T: FromSql>(&self, index: I) -> Result<T> {
        let column = index.position();
        let value = self.values.get(column).ok_or_else(|| Error::Conversion {
            column,
            message: format!("the row has {} columns", self.values.len()),
        })?;
        T::from_value(value).map_err(|message| Error::Conversion { column, message })
    }

    /// The row's values, in column order.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }
}

/// The values a statement binds, in placeholder order.
pub trait Params {
    fn into_values(self) -> Vec<Value>;
}

impl Params for () {
    fn into_values(self) -> Vec<Value> {
        Vec::new()
    }
}

impl Params for &[&dyn ToSql] {
    fn into_values(self) -> Vec<Value> {
        self.iter().map(|p| p.to_value()).collect()
    }
}

impl Params for Vec<Value> {
    fn into_values(self) -> Vec<Value> {
        self
    }
}

impl<A: ToSql, B: ToSql> Params for (A, B) {
    fn into_values(self) -> Vec<Value> {
        vec![self.0.to_value(), self.1.to_value()]
    }
}

/// `[]`: no parameters.
impl Params for [&dyn ToSql; 0] {
    fn into_values(self) -> Vec<Value> {
        Vec::new()
    }
}

macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn into_values(self) -> Vec<Value> {
                self.iter().map(ToSql::to_value).collect()
            }
        }
        impl<T: ToSql> Params for &[T; $n] {
            fn into_values(self) -> Vec<Value> {
                self.iter().map(ToSql::to_value).collect()
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8);

/// Parameters from an iterator (see [`params_from_iter`]).
pub struct ParamsFromIter<I>(I);

/// Binds the items of `iter`, in order.
pub fn params_from_iter<I>(iter: I) -> ParamsFromIter<I>
where
    I: IntoIterator,
    I::Item: ToSql,
{
    ParamsFromIter(iter)
}

impl<I> Params for ParamsFromIter<I>
where
    I: IntoIterator,
    I::Item: ToSql,
{
    fn into_values(self) -> Vec<Value> {
        self.0.into_iter().map(|p| p.to_value()).collect()
    }
}

/// `params![a, b, c]`: a statement's parameters, of any [`ToSql`] types.
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::sql::ToSql]
    };
    ($($param:expr),+ $(,)?) => {
        &[$(&$param as &dyn $crate::sql::ToSql),+] as &[&dyn $crate::sql::ToSql]
    };
}
pub(crate) use params;

/// `.optional()` on a single-row query: no row is `Ok(None)`, not an error.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A connection to either engine.
pub struct Connection {
    engine: Engine,
}

enum Engine {
    Sqlite(SqliteConn),
    // The postgres client needs `&mut` for every call; the repositories share `&Connection`
    // (a transaction derefs to one), so the client sits in a RefCell. A connection is used
    // by one thread at a time, as rusqlite's is.
    Postgres(RefCell<PgConn>),
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connection({:?})", self.dialect())
    }
}

impl Connection {
    pub(crate) fn from_sqlite(connection: SqliteConn) -> Self {
        Connection {
            engine: Engine::Sqlite(connection),
        }
    }

    pub(crate) fn from_postgres(session: PgSession) -> Self {
        Connection {
            engine: Engine::Postgres(RefCell::new(PgConn::Owned(session))),
        }
    }

    pub(crate) fn from_pooled_postgres(session: r2d2::PooledConnection<PgManager>) -> Self {
        Connection {
            engine: Engine::Postgres(RefCell::new(PgConn::Pooled(session))),
        }
    }

    /// A private in-memory SQLite database, configured as the album's are (for tests).
    pub fn open_in_memory() -> Result<Self> {
        let connection = rusqlite::Connection::open_in_memory()?;
        sqlite::configure(&connection)?;
        Ok(Connection::from_sqlite(SqliteConn::Owned(connection)))
    }

    /// The SQLite file at `path`, configured as the album's are.
    pub fn open_sqlite(path: &std::path::Path) -> Result<Self> {
        let connection = rusqlite::Connection::open(path)?;
        sqlite::configure(&connection)?;
        Ok(Connection::from_sqlite(SqliteConn::Owned(connection)))
    }

    /// The SQLite file at `path`, opened for reading only (checks of a stopped album).
    pub fn open_sqlite_read_only(path: &std::path::Path) -> Result<Self> {
        let connection = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Ok(Connection::from_sqlite(SqliteConn::Owned(connection)))
    }

    /// A Postgres connection from a `postgres://` URL, outside any pool.
    pub fn open_postgres(url: &str) -> Result<Self> {
        Ok(Connection::from_postgres(PgSession::connect(url)?))
    }

    pub fn dialect(&self) -> Dialect {
        match self.engine {
            Engine::Sqlite(_) => Dialect::Sqlite,
            Engine::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The rusqlite connection underneath, for SQLite-only work (pragmas, engine tests).
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.engine {
            Engine::Sqlite(c) => Some(c),
            Engine::Postgres(_) => None,
        }
    }

    /// Runs one statement; how many rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        let values = params.into_values();
        match &self.engine {
            Engine::Sqlite(c) => sqlite::execute(c, sql, &values),
            Engine::Postgres(c) => c.borrow_mut().execute(sql, &values),
        }
    }

    /// Runs several `;`-separated statements without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.engine {
            Engine::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Engine::Postgres(c) => c.borrow_mut().execute_batch(sql),
        }
    }

    /// Every row of a query.
    pub fn query_all<P: Params>(&self, sql: &str, params: P) -> Result<Vec<Row>> {
        let values = params.into_values();
        match &self.engine {
            Engine::Sqlite(c) => sqlite::query(c, sql, &values),
            Engine::Postgres(c) => c.borrow_mut().query(sql, &values),
        }
    }

    /// The first row of a query, through `read`; [`Error::QueryReturnedNoRows`] when
    /// there is none.
    pub fn query_row<T, P, F>(&self, sql: &str, params: P, read: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row) -> Result<T>,
    {
        let rows = self.query_all(sql, params)?;
        rows.first().map_or(Err(Error::QueryReturnedNoRows), read)
    }

    /// A statement to run (possibly several times).
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(Statement {
            connection: self,
            sql: sql.to_owned(),
        })
    }

    /// As [`prepare`](Self::prepare); both engines cache prepared statements per
    /// connection.
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        self.prepare(sql)
    }

    /// Begins a transaction that will write, holding the engine's write lock from its
    /// start (see the module docs). Rolled back when dropped without
    /// [`Transaction::commit`]. Why SQLite's is `BEGIN IMMEDIATE`, not the default
    /// deferred one: a deferred transaction that reads first and writes later holds a
    /// snapshot, and if another connection commits in between, its first write fails at
    /// once with SQLITE_BUSY ("database is locked"); no timeout can help, the snapshot is
    /// stale. A purge running beside uploads answered 500 that way.
    pub fn write_transaction(&self) -> Result<Transaction<'_>> {
        match self.dialect() {
            Dialect::Sqlite => self.execute_batch("BEGIN IMMEDIATE")?,
            Dialect::Postgres => self.execute_batch(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
            ))?,
        }
        Ok(Transaction {
            connection: self,
            open: true,
        })
    }
}

/// The advisory lock key every Postgres write transaction holds ("album" in ASCII).
const WRITE_LOCK: i64 = 0x616c_6275_6d;

/// A statement bound to its connection.
pub struct Statement<'c> {
    connection: &'c Connection,
    sql: String,
}

impl Statement<'_> {
    /// Every row, each through `read`.
    pub fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut read: F,
    ) -> Result<std::vec::IntoIter<Result<T>>>
    where
        P: Params,
        F: FnMut(&Row) -> Result<T>,
    {
        let rows = self.connection.query_all(&self.sql, params)?;
        Ok(rows.iter().map(&mut read).collect::<Vec<_>>().into_iter())
    }

    /// The first row, through `read`.
    pub fn query_row<T, P, F>(&mut self, params: P, read: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row) -> Result<T>,
    {
        self.connection.query_row(&self.sql, params, read)
    }

    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        self.connection.execute(&self.sql, params)
    }
}

/// A write transaction; derefs to its connection.
pub struct Transaction<'c> {
    connection: &'c Connection,
    open: bool,
}

impl Transaction<'_> {
    pub fn commit(mut self) -> Result<()> {
        let committed = self.connection.execute_batch("COMMIT");
        // A COMMIT SQLite refused (busy) leaves the transaction open: dropping rolls it
        // back, so the pooled connection goes back clean.
        self.open = committed.is_err();
        committed
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.connection
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report to: the caller is already leaving with an error (or a
            // panic), and a connection whose rollback failed is broken and gets dropped
            // by the pool's check.
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_sqlite() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n INTEGER)")
            .unwrap();
        c.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
            params![7i64, 0.5, "x", vec![1u8, 2], None::<i64>],
        )
        .unwrap();
        let row: (i64, f64, String, Vec<u8>, Option<i64>) = c
            .query_row("SELECT i, r, s, b, n FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap();
        assert_eq!(row, (7, 0.5, "x".into(), vec![1, 2], None));
    }

    #[test]
    fn no_row_is_none_with_optional_and_an_error_without() {
        let c = Connection::open_in_memory().unwrap();
        let none: Option<i64> = c
            .query_row("SELECT 1 WHERE 0", [], |r| r.get(0))
            .optional()
            .unwrap();
        assert_eq!(none, None);
        let error = c.query_row("SELECT 1 WHERE 0", [], |r| r.get::<_, i64>(0));
        assert!(matches!(error, Err(Error::QueryReturnedNoRows)));
    }

    #[test]
    fn a_dropped_write_transaction_rolls_back() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        {
            let t = c.write_transaction().unwrap();
            t.execute("INSERT INTO t VALUES (1)", []).unwrap();
        }
        let t = c.write_transaction().unwrap();
        t.execute("INSERT INTO t VALUES (2)", []).unwrap();
        t.commit().unwrap();
        let rows: Vec<i64> = c
            .prepare("SELECT x FROM t")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(rows, vec![2]);
    }

    #[test]
    fn a_column_of_the_wrong_type_names_its_position() {
        let c = Connection::open_in_memory().unwrap();
        let error = c
            .query_row("SELECT 1, 'text'", [], |r| r.get::<_, i64>(1))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("column 1:"), "{error}");
    }
}
