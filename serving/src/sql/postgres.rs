//! The Postgres engine: `tokio-postgres` (rust-postgres, the well-kept driver), on a
//! small runtime of its own. The repositories are blocking code and are called from
//! blocking threads and, in places, from async tasks; the driver's own blocking wrapper
//! (the `postgres` crate) panics in the latter ("cannot start a runtime from within a
//! runtime"). So each call is sent to the engine's runtime and the caller waits on a
//! channel, which is safe from any thread, as rusqlite's blocking calls are. Each
//! connection keeps its prepared statements.
//!
//! Statements arrive with SQLite's `?`/`?N` placeholders and are renumbered to `$N`.
//! Values are bound by the type Postgres inferred for each placeholder (an integer
//! bound where Postgres expects a float or a boolean is converted), and columns are read
//! back by their type, so the repositories need not know which engine they talk to.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Statement};

use super::{Error, Result, Row, Value};

/// The runtime every Postgres connection of the process runs on.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("album-postgres")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| Error::Engine(format!("cannot start the Postgres runtime: {e}")))
}

/// Runs `work` on the engine's runtime and waits for its answer.
fn wait<T: Send + 'static>(work: impl Future<Output = Result<T>> + Send + 'static) -> Result<T> {
    let (answer, answered) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = answer.send(work.await);
    });
    answered
        .recv()
        .map_err(|_| Error::Engine("a Postgres call stopped without an answer".into()))?
}

/// A client and the statements prepared on it.
pub(crate) struct PgSession {
    client: Arc<Client>,
    statements: HashMap<String, Statement>,
}

/// The most statements a connection keeps prepared; the listing builds its SQL from the
/// filters in use, so the set is bounded but not tiny.
const STATEMENT_CACHE: usize = 256;

impl PgSession {
    pub(crate) fn connect(url: &str) -> Result<Self> {
        let url = url.to_owned();
        let client = wait(async move {
            let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(error = %describe(&error), "a Postgres connection ended");
                }
            });
            Ok(client)
        })?;
        Ok(PgSession {
            client: Arc::new(client),
            statements: HashMap::new(),
        })
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let client = self.client.clone();
        let numbered = numbered_placeholders(sql);
        let statement = wait(async move { Ok(client.prepare(&numbered).await?) })?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(crate) fn execute(&mut self, sql: &str, values: &[Value]) -> Result<usize> {
        let statement = self.statement(sql)?;
        let client = self.client.clone();
        let values = values.to_vec();
        wait(async move {
            let params: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            Ok(client.execute(&statement, &params).await? as usize)
        })
    }

    pub(crate) fn execute_batch(&mut self, sql: &str) -> Result<()> {
        let client = self.client.clone();
        let sql = sql.to_owned();
        wait(async move { Ok(client.batch_execute(&sql).await?) })
    }

    pub(crate) fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        let client = self.client.clone();
        let values = values.to_vec();
        let rows = wait(async move {
            let params: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            Ok(client.query(&statement, &params).await?)
        })?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| column_value(row, i))
                    .collect::<Result<Vec<_>>>()
                    .map(Row::new)
            })
            .collect()
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// A session, from the pool or opened alone.
pub(crate) enum PgConn {
    Pooled(r2d2::PooledConnection<PgManager>),
    Owned(PgSession),
}

impl std::ops::Deref for PgConn {
    type Target = PgSession;
    fn deref(&self) -> &PgSession {
        match self {
            PgConn::Pooled(s) => s,
            PgConn::Owned(s) => s,
        }
    }
}

impl std::ops::DerefMut for PgConn {
    fn deref_mut(&mut self) -> &mut PgSession {
        match self {
            PgConn::Pooled(s) => s,
            PgConn::Owned(s) => s,
        }
    }
}

/// Pools Postgres sessions with r2d2, as `r2d2_sqlite` pools SQLite connections.
#[derive(Debug, Clone)]
pub(crate) struct PgManager {
    url: String,
}

impl PgManager {
    pub(crate) fn new(url: &str) -> Self {
        PgManager {
            url: url.to_owned(),
        }
    }
}

impl r2d2::ManageConnection for PgManager {
    type Connection = PgSession;
    type Error = Error;

    fn connect(&self) -> Result<PgSession> {
        PgSession::connect(&self.url)
    }

    fn is_valid(&self, session: &mut PgSession) -> Result<()> {
        session.execute_batch("")
    }

    fn has_broken(&self, session: &mut PgSession) -> bool {
        session.is_closed()
    }
}

/// The server's own words for a database error (code, message, detail), which the
/// driver's `Display` leaves out.
pub(super) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(tokio_postgres::error::ErrorPosition::Original(at)) = db.position() {
                text.push_str(&format!(" at character {at}"));
            }
            text
        }
        None => match error.source() {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

/// SQLite's placeholders as Postgres': `?N` becomes `$N`, and a bare `?` takes the
/// number after the largest one so far, as SQLite numbers it. Quoted text, quoted names
/// and `--` comments are copied untouched.
pub(crate) fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut largest = 0u32;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let number = match digits.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => largest + 1,
                };
                largest = largest.max(number);
                out.push('$');
                out.push_str(&number.to_string());
            }
            other => out.push(other),
        }
    }
    out
}

fn column_value(row: &tokio_postgres::Row, i: usize) -> Result<Value> {
    let ty = row.columns()[i].type_().clone();
    let conversion = |e: tokio_postgres::Error| Error::Conversion {
        column: i,
        message: describe(&e),
    };
    let value = match ty {
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map_err(conversion)?
            .map(|b| Value::Integer(i64::from(b))),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(conversion)?
            .map(|v| Value::Integer(v.into())),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(conversion)?
            .map(|v| Value::Integer(v.into())),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(conversion)?
            .map(Value::Integer),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map_err(conversion)?
            .map(|v| Value::Real(v.into())),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)
            .map_err(conversion)?
            .map(Value::Real),
        Type::NUMERIC => row
            .try_get::<_, Option<Numeric>>(i)
            .map_err(conversion)?
            .map(|n| n.0),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => row
            .try_get::<_, Option<String>>(i)
            .map_err(conversion)?
            .map(Value::Text),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)
            .map_err(conversion)?
            .map(Value::Blob),
        other => {
            return Err(Error::Conversion {
                column: i,
                message: format!("a column of type {other} (cast it in the query)"),
            });
        }
    };
    Ok(value.unwrap_or(Value::Null))
}

/// A `numeric` (what Postgres' `SUM` and `AVG` of integers give): an integer when it
/// has no fraction and fits, else the nearest `f64`.
struct Numeric(Value);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        let word = |k: usize| -> Result<i16, Box<dyn StdError + Sync + Send>> {
            raw.get(k..k + 2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "a numeric cut short".into())
        };
        let digits = word(0)?.max(0) as usize;
        let weight = i32::from(word(2)?);
        let sign = word(4)? as u16;
        let scale = word(6)?;
        if sign == 0xC000 {
            return Ok(Numeric(Value::Real(f64::NAN)));
        }
        let negative = sign == 0x4000;
        let base: Vec<i64> = (0..digits)
            .map(|k| word(8 + 2 * k).map(i64::from))
            .collect::<Result<_, _>>()?;
        if scale == 0 && weight < 4 {
            let mut whole: i64 = 0;
            for k in 0..=weight.max(-1) {
                whole = whole * 10_000 + base.get(k as usize).copied().unwrap_or(0);
            }
            return Ok(Numeric(Value::Integer(if negative {
                -whole
            } else {
                whole
            })));
        }
        let magnitude: f64 = base
            .iter()
            .enumerate()
            .map(|(k, d)| *d as f64 * 10_000f64.powi(weight - k as i32))
            .sum();
        Ok(Numeric(Value::Real(if negative {
            -magnitude
        } else {
            magnitude
        })))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => integer_to_sql(*i, ty, out),
            Value::Real(r) => match *ty {
                Type::FLOAT4 => (*r as f32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => r.to_string().to_sql(ty, out),
                // SQLite keeps an integer in a REAL column as a real; moved to Postgres
                // it may meet an integer column only if the schemas disagree, and then
                // only a whole number goes in.
                Type::INT2 | Type::INT4 | Type::INT8 if r.fract() == 0.0 => {
                    integer_to_sql(*r as i64, ty, out)
                }
                _ => r.to_sql(ty, out),
            },
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Every placeholder takes a Value; `to_sql` converts by the inferred type or
        // refuses with the types named.
        true
    }

    to_sql_checked!();
}

fn integer_to_sql(i: i64, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    match *ty {
        Type::BOOL => (i != 0).to_sql(ty, out),
        Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
        Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
        Type::FLOAT4 => (i as f32).to_sql(ty, out),
        Type::FLOAT8 => (i as f64).to_sql(ty, out),
        Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
        _ => i.to_sql(ty, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_as_sqlite_numbers_them() {
        assert_eq!(
            numbered_placeholders("SELECT ?1, ?2 WHERE a = ?1"),
            "SELECT $1, $2 WHERE a = $1"
        );
        assert_eq!(
            numbered_placeholders("x IN (?, ?, ?) AND y = ?"),
            "x IN ($1, $2, $3) AND y = $4"
        );
        assert_eq!(numbered_placeholders("?3 + ?"), "$3 + $4");
    }

    #[test]
    fn question_marks_in_text_names_and_comments_stay() {
        assert_eq!(
            numbered_placeholders("SELECT '?', \"a?\" -- why?\n, ?"),
            "SELECT '?', \"a?\" -- why?\n, $1"
        );
    }
}
