//! Photo rows, as other features need them.

use rusqlite::{Connection, params};

/// Whether `user_id` has the photo `photo_id` (trashed or not).
pub fn is_owned(c: &Connection, user_id: i64, photo_id: i64) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM photos WHERE id = ?1 AND user_id = ?2)",
        params![photo_id, user_id],
        |r| r.get(0),
    )
}
