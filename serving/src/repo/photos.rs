//! Photo rows, as other features need them.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

/// A photo as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhotoInfo {
    pub id: i64,
    pub name: String,
    /// `photo` (uploaded) or `gif` (made by the service).
    pub kind: String,
    pub mime: String,
    pub bytes: i64,
    pub sha256: String,
    pub width: i64,
    pub height: i64,
    pub taken_at: Option<String>,
    pub camera_make: Option<String>,
    pub camera_model: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub place: Option<String>,
    /// Unix seconds.
    pub uploaded: i64,
    pub favourite: bool,
    /// When it went to the trash (Unix seconds), if it is there.
    pub trashed: Option<i64>,
    pub category: Option<String>,
    pub confidence: Option<f64>,
    /// The category is a user's correction (it sticks).
    pub category_manual: bool,
    pub thumbnail_ready: bool,
}

/// The columns [`photo_from_row`] reads, in order, from `photos p`.
pub const PHOTO_COLUMNS: &str = "p.id, p.name, p.kind, p.mime, p.bytes, p.sha256, p.width, \
    p.height, p.taken_at, p.camera_make, p.camera_model, p.latitude, p.longitude, \
    (SELECT pl.name || ', ' || pl.country FROM places pl WHERE pl.id = p.place_id), \
    p.uploaded, p.favourite, p.trashed, p.category, p.confidence, p.category_manual, \
    p.thumbnail_sha256 IS NOT NULL";

pub fn photo_from_row(r: &Row<'_>) -> rusqlite::Result<PhotoInfo> {
    Ok(PhotoInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        mime: r.get(3)?,
        bytes: r.get(4)?,
        sha256: r.get(5)?,
        width: r.get(6)?,
        height: r.get(7)?,
        taken_at: r.get(8)?,
        camera_make: r.get(9)?,
        camera_model: r.get(10)?,
        latitude: r.get(11)?,
        longitude: r.get(12)?,
        place: r.get(13)?,
        uploaded: r.get(14)?,
        favourite: r.get(15)?,
        trashed: r.get(16)?,
        category: r.get(17)?,
        confidence: r.get(18)?,
        category_manual: r.get(19)?,
        thumbnail_ready: r.get(20)?,
    })
}

/// The user's photo `photo_id` (trashed or not), if it is theirs.
pub fn find(c: &Connection, user_id: i64, photo_id: i64) -> rusqlite::Result<Option<PhotoInfo>> {
    c.query_row(
        &format!("SELECT {PHOTO_COLUMNS} FROM photos p WHERE p.id = ?1 AND p.user_id = ?2"),
        params![photo_id, user_id],
        photo_from_row,
    )
    .optional()
}

/// Whether `user_id` has the photo `photo_id` (trashed or not).
pub fn is_owned(c: &Connection, user_id: i64, photo_id: i64) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM photos WHERE id = ?1 AND user_id = ?2)",
        params![photo_id, user_id],
        |r| r.get(0),
    )
}

/// A photo's thumbnail and preview blobs, when made; `None` when the photo is gone.
pub fn renditions(
    c: &Connection,
    photo_id: i64,
) -> rusqlite::Result<Option<(Option<String>, Option<String>)>> {
    c.query_row(
        "SELECT thumbnail_sha256, preview_sha256 FROM photos WHERE id = ?1",
        [photo_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

pub fn set_renditions(
    c: &Connection,
    photo_id: i64,
    thumbnail: &str,
    preview: &str,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE photos SET thumbnail_sha256 = ?1, preview_sha256 = ?2 WHERE id = ?3",
        params![thumbnail, preview, photo_id],
    )?;
    Ok(())
}
