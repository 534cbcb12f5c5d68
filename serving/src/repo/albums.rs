//! The `albums` and `album_photos` tables.

use crate::sql::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// An album as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Album {
    pub id: i64,
    pub name: String,
    /// The chosen cover, else the newest photo, if any.
    pub cover_photo_id: Option<i64>,
    /// Photos in it that are not in the trash.
    pub photos: i64,
    pub created: i64,
}

const ALBUM_COLUMNS: &str = "a.id, a.name,
    COALESCE(a.cover_photo_id, (SELECT MAX(ap.photo_id) FROM album_photos ap
        JOIN photos p ON p.id = ap.photo_id WHERE ap.album_id = a.id AND p.trashed IS NULL)),
    (SELECT COUNT(*) FROM album_photos ap JOIN photos p ON p.id = ap.photo_id
        WHERE ap.album_id = a.id AND p.trashed IS NULL),
    a.created";

fn album_from_row(r: &crate::sql::Row) -> crate::sql::Result<Album> {
    Ok(Album {
        id: r.get(0)?,
        name: r.get(1)?,
        cover_photo_id: r.get(2)?,
        photos: r.get(3)?,
        created: r.get(4)?,
    })
}

/// The user's album `id`, if it is theirs.
pub(crate) fn find(c: &Connection, user_id: i64, id: i64) -> crate::sql::Result<Option<Album>> {
    c.query_row(
        &format!("SELECT {ALBUM_COLUMNS} FROM albums a WHERE a.id = ?1 AND a.user_id = ?2"),
        params![id, user_id],
        album_from_row,
    )
    .optional()
}

/// The user's albums by name.
pub(crate) fn list(c: &Connection, user_id: i64) -> crate::sql::Result<Vec<Album>> {
    let mut statement = c.prepare_cached(&format!(
        "SELECT {ALBUM_COLUMNS} FROM albums a WHERE a.user_id = ?1 ORDER BY a.name, a.id"
    ))?;
    statement.query_map([user_id], album_from_row)?.collect()
}

/// A new album's id.
pub fn insert(c: &Connection, user_id: i64, name: &str, created: i64) -> crate::sql::Result<i64> {
    c.query_row(
        "INSERT INTO albums (user_id, name, created) VALUES (?1, ?2, ?3) RETURNING id",
        params![user_id, name, created],
        |r| r.get(0),
    )
}

pub fn rename(c: &Connection, id: i64, name: &str) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE albums SET name = ?1 WHERE id = ?2",
        params![name, id],
    )?;
    Ok(())
}

/// Sets the cover (`None`: back to the newest photo).
pub(crate) fn set_cover(c: &Connection, id: i64, photo_id: Option<i64>) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE albums SET cover_photo_id = ?1 WHERE id = ?2",
        params![photo_id, id],
    )?;
    Ok(())
}

pub fn delete(c: &Connection, id: i64) -> crate::sql::Result<()> {
    c.execute("DELETE FROM albums WHERE id = ?1", [id])?;
    Ok(())
}

pub fn contains(c: &Connection, id: i64, photo_id: i64) -> crate::sql::Result<bool> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM album_photos WHERE album_id = ?1 AND photo_id = ?2)",
        params![id, photo_id],
        |r| r.get(0),
    )
}

/// Puts a photo in (already there is fine).
pub(crate) fn add_photo(
    c: &Connection,
    id: i64,
    photo_id: i64,
    added: i64,
) -> crate::sql::Result<()> {
    c.execute(
        "INSERT INTO album_photos (album_id, photo_id, added) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        params![id, photo_id, added],
    )?;
    Ok(())
}

/// Takes a photo out, and off the cover if it was there.
pub(crate) fn remove_photo(c: &Connection, id: i64, photo_id: i64) -> crate::sql::Result<()> {
    c.execute(
        "DELETE FROM album_photos WHERE album_id = ?1 AND photo_id = ?2",
        params![id, photo_id],
    )?;
    c.execute(
        "UPDATE albums SET cover_photo_id = NULL WHERE id = ?1 AND cover_photo_id = ?2",
        params![id, photo_id],
    )?;
    Ok(())
}
