//! Whole tables, row for row, for moving an album from one database to another
//! (`album migrate --database-to`): which tables there are, in an order that satisfies
//! their foreign keys, their columns, their rows in key order, and inserting them.

use crate::sql::{Connection, Dialect, Result, Row, Value, params_from_iter};

/// Every table of the album's schema, parents before children, with the columns its
/// rows are ordered by (the primary key).
pub const TABLES: &[(&str, &str)] = &[
    ("users", "id"),
    ("sessions", "token_sha256"),
    ("places", "id"),
    ("photos", "id"),
    ("albums", "id"),
    ("album_photos", "album_id, photo_id"),
    ("people", "id"),
    ("faces", "id"),
    ("jobs", "id"),
    ("montages", "id"),
    ("music", "id"),
];

/// The tables of the album's schema in the database (its bookkeeping left out).
pub fn table_names(c: &Connection) -> Result<Vec<String>> {
    let sql = match c.dialect() {
        Dialect::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             ORDER BY name"
        }
        Dialect::Postgres => {
            "SELECT CAST(table_name AS text) FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
               AND table_name <> 'schema_version'
             ORDER BY table_name"
        }
    };
    c.prepare(sql)?.query_map([], |r| r.get(0))?.collect()
}

/// A table's columns, in the order they were made.
pub fn columns(c: &Connection, table: &str) -> Result<Vec<String>> {
    let sql = match c.dialect() {
        Dialect::Sqlite => "SELECT name FROM pragma_table_info(?1) ORDER BY cid",
        Dialect::Postgres => {
            "SELECT CAST(column_name AS text) FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = ?1
             ORDER BY ordinal_position"
        }
    };
    c.prepare(sql)?.query_map([table], |r| r.get(0))?.collect()
}

/// How many rows `table` has.
pub fn count(c: &Connection, table: &str) -> Result<i64> {
    c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
}

/// `table`'s rows (the named `columns`, in that order), sorted by `order_by`.
pub fn rows(c: &Connection, table: &str, columns: &[String], order_by: &str) -> Result<Vec<Row>> {
    c.query_all(
        &format!(
            "SELECT {} FROM {table} ORDER BY {order_by}",
            columns.join(", ")
        ),
        (),
    )
}

/// Inserts `rows` (values for `columns`, in that order) into `table`, many rows a
/// statement.
pub fn insert(c: &Connection, table: &str, columns: &[String], rows: Vec<Row>) -> Result<()> {
    // Postgres binds at most 65,535 parameters a statement.
    let per_statement = (30_000 / columns.len().max(1)).max(1);
    let one_row = format!("({})", vec!["?"; columns.len()].join(", "));
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<Vec<Value>> = rows
            .by_ref()
            .take(per_statement)
            .map(Row::into_values)
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(", "),
            vec![one_row.as_str(); batch.len()].join(", ")
        );
        c.execute(&sql, params_from_iter(batch.into_iter().flatten()))?;
    }
    Ok(())
}

/// Moves `table`'s id sequence past its largest id, after rows were inserted with their
/// ids (Postgres' identity columns do not follow explicit ids; SQLite needs nothing).
pub fn follow_ids(c: &Connection, table: &str) -> Result<()> {
    if c.dialect() == Dialect::Postgres {
        c.execute_batch(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                           COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migration that adds a table must add it here too, or `album migrate` would leave
    /// its rows behind.
    #[test]
    fn the_list_names_every_table_of_the_schema() {
        let c = Connection::open_in_memory().unwrap();
        crate::repo::schema::migrate(&c).unwrap();
        let mut listed: Vec<String> = TABLES.iter().map(|(t, _)| t.to_string()).collect();
        listed.sort();
        assert_eq!(table_names(&c).unwrap(), listed);
    }

    #[test]
    fn rows_inserted_in_batches_come_back_in_order() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b REAL)")
            .unwrap();
        let columns: Vec<String> = columns(&c, "t").unwrap();
        assert_eq!(columns, ["id", "a", "b"]);
        let made: Vec<Row> = (0..25_000)
            .map(|i| {
                Row::new(vec![
                    Value::Integer(i),
                    Value::Text(format!("row {i}")),
                    if i % 2 == 0 {
                        Value::Null
                    } else {
                        Value::Real(i as f64 / 3.0)
                    },
                ])
            })
            .collect();
        insert(&c, "t", &columns, made.clone()).unwrap();
        assert_eq!(count(&c, "t").unwrap(), 25_000);
        assert_eq!(rows(&c, "t", &columns, "id").unwrap(), made);
    }
}
