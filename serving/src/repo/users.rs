//! The `users` and `sessions` tables. Sessions are found by their token's SHA-256: the
//! token itself is never stored.

use crate::sql::{Connection, OptionalExtension, params};

/// A user as a session signs them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserRow {
    pub id: i64,
    pub username: String,
    pub admin: bool,
}

/// A [`UserRow`] from columns 0–2 (id, username, admin).
fn user_from_row(r: &crate::sql::Row) -> crate::sql::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        admin: r.get(2)?,
    })
}

pub fn count(c: &Connection) -> crate::sql::Result<i64> {
    c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
}

pub(crate) fn name_taken(c: &Connection, username: &str) -> crate::sql::Result<bool> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)",
        [username],
        |r| r.get(0),
    )
}

/// A new user's id.
pub fn insert(
    c: &Connection,
    username: &str,
    password_hash: &str,
    created: i64,
    admin: bool,
) -> crate::sql::Result<i64> {
    c.query_row(
        "INSERT INTO users (username, password_hash, created, admin) VALUES (?1, ?2, ?3, ?4)
         RETURNING id",
        params![username, password_hash, created, admin],
        |r| r.get(0),
    )
}

/// The user called `username` and their password hash.
pub(crate) fn with_hash(
    c: &Connection,
    username: &str,
) -> crate::sql::Result<Option<(UserRow, String)>> {
    c.query_row(
        "SELECT id, username, admin, password_hash FROM users WHERE username = ?1",
        [username],
        |r| Ok((user_from_row(r)?, r.get(3)?)),
    )
    .optional()
}

pub(crate) fn password_hash(c: &Connection, user_id: i64) -> crate::sql::Result<String> {
    c.query_row(
        "SELECT password_hash FROM users WHERE id = ?1",
        [user_id],
        |r| r.get(0),
    )
}

pub(crate) fn set_password_hash(
    c: &Connection,
    user_id: i64,
    hash: &str,
) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE users SET password_hash = ?1 WHERE id = ?2",
        params![hash, user_id],
    )?;
    Ok(())
}

pub(crate) fn insert_session(
    c: &Connection,
    token_sha256: &str,
    user_id: i64,
    created: i64,
    expires: i64,
) -> crate::sql::Result<()> {
    c.execute(
        "INSERT INTO sessions (token_sha256, user_id, created, expires, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?3)",
        params![token_sha256, user_id, created, expires],
    )?;
    Ok(())
}

/// The user a live session signs in (not expired, used after `idle_cutoff`), and when
/// the session was last seen.
pub(crate) fn session_user(
    c: &Connection,
    token_sha256: &str,
    now: i64,
    idle_cutoff: i64,
) -> crate::sql::Result<Option<(UserRow, i64)>> {
    c.query_row(
        "SELECT u.id, u.username, u.admin, s.last_seen FROM sessions s
         JOIN users u ON u.id = s.user_id
         WHERE s.token_sha256 = ?1 AND s.expires > ?2 AND s.last_seen > ?3",
        params![token_sha256, now, idle_cutoff],
        |r| Ok((user_from_row(r)?, r.get(3)?)),
    )
    .optional()
}

pub(crate) fn touch_session(
    c: &Connection,
    token_sha256: &str,
    now: i64,
) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE sessions SET last_seen = ?1 WHERE token_sha256 = ?2",
        params![now, token_sha256],
    )?;
    Ok(())
}

pub(crate) fn delete_session(
    c: &Connection,
    token_sha256: &str,
    user_id: i64,
) -> crate::sql::Result<()> {
    c.execute(
        "DELETE FROM sessions WHERE token_sha256 = ?1 AND user_id = ?2",
        params![token_sha256, user_id],
    )?;
    Ok(())
}

/// Every session of the user but `keep` (none kept when `None`).
pub(crate) fn delete_sessions(
    c: &Connection,
    user_id: i64,
    keep: Option<&str>,
) -> crate::sql::Result<()> {
    c.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND token_sha256 IS DISTINCT FROM ?2",
        params![user_id, keep],
    )?;
    Ok(())
}

/// Deletes sessions past their expiry or unused since `idle_cutoff`; how many.
pub(crate) fn purge_sessions(
    c: &Connection,
    now: i64,
    idle_cutoff: i64,
) -> crate::sql::Result<usize> {
    c.execute(
        "DELETE FROM sessions WHERE expires <= ?1 OR last_seen <= ?2",
        params![now, idle_cutoff],
    )
}
