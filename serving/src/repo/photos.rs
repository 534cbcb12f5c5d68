//! The `photos` table: the rows uploads and GIFs add, the listing's filters, the trash,
//! and which blobs rows still use.

use crate::sql::{Connection, Dialect, OptionalExtension, Row, ToSql, params, params_from_iter};
use serde::{Deserialize, Serialize};

use crate::ingest::{Inspected, mime_of};

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
pub(crate) const PHOTO_COLUMNS: &str = "p.id, p.name, p.kind, p.mime, p.bytes, p.sha256, p.width, \
    p.height, p.taken_at, p.camera_make, p.camera_model, p.latitude, p.longitude, \
    (SELECT pl.name || ', ' || pl.country FROM places pl WHERE pl.id = p.place_id), \
    p.uploaded, p.favourite, p.trashed, p.category, p.confidence, p.category_manual, \
    p.thumbnail_sha256 IS NOT NULL";

pub(crate) fn photo_from_row(r: &Row) -> crate::sql::Result<PhotoInfo> {
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
pub(crate) fn find(
    c: &Connection,
    user_id: i64,
    photo_id: i64,
) -> crate::sql::Result<Option<PhotoInfo>> {
    c.query_row(
        &format!("SELECT {PHOTO_COLUMNS} FROM photos p WHERE p.id = ?1 AND p.user_id = ?2"),
        params![photo_id, user_id],
        photo_from_row,
    )
    .optional()
}

/// Whether `user_id` has the photo `photo_id` (trashed or not).
pub(crate) fn is_owned(c: &Connection, user_id: i64, photo_id: i64) -> crate::sql::Result<bool> {
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
) -> crate::sql::Result<Option<(Option<String>, Option<String>)>> {
    c.query_row(
        "SELECT thumbnail_sha256, preview_sha256 FROM photos WHERE id = ?1",
        [photo_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

pub(crate) fn set_renditions(
    c: &Connection,
    photo_id: i64,
    thumbnail: &str,
    preview: &str,
) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE photos SET thumbnail_sha256 = ?1, preview_sha256 = ?2 WHERE id = ?3",
        params![thumbnail, preview, photo_id],
    )?;
    Ok(())
}

/// A photo's original blob and its EXIF orientation; `None` when the photo is gone.
pub fn original(c: &Connection, photo_id: i64) -> crate::sql::Result<Option<(String, u16)>> {
    c.query_row(
        "SELECT sha256, orientation FROM photos WHERE id = ?1",
        [photo_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Bytes of photos `user_id` keeps, the trash included.
pub(crate) fn bytes_used(c: &Connection, user_id: i64) -> crate::sql::Result<u64> {
    let used: i64 = c.query_row(
        "SELECT COALESCE(SUM(bytes), 0) FROM photos WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?;
    Ok(used.max(0) as u64)
}

/// The user's photo (in the trash or not) with these bytes.
pub(crate) fn with_bytes(
    c: &Connection,
    user_id: i64,
    sha256: &str,
) -> crate::sql::Result<Option<i64>> {
    c.query_row(
        "SELECT id FROM photos WHERE user_id = ?1 AND sha256 = ?2",
        params![user_id, sha256],
        |r| r.get(0),
    )
    .optional()
}

/// A new photo row for a checked file whose blob is `sha256`; returns its id.
pub(crate) fn insert(
    c: &Connection,
    user_id: i64,
    file: &Inspected,
    sha256: &str,
    kind: &str,
    place_id: Option<i64>,
    uploaded: i64,
) -> crate::sql::Result<i64> {
    c.query_row(
        "INSERT INTO photos (user_id, sha256, kind, name, mime, bytes, width, height,
             orientation, taken_at, camera_make, camera_model, latitude, longitude, place_id,
             uploaded)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         RETURNING id",
        params![
            user_id,
            sha256,
            kind,
            file.name,
            mime_of(file.kind),
            file.bytes.len() as i64,
            file.width,
            file.height,
            file.meta.orientation,
            file.meta.taken_at,
            file.meta.camera_make,
            file.meta.camera_model,
            file.meta.gps.map(|g| g.0),
            file.meta.gps.map(|g| g.1),
            place_id,
            uploaded,
        ],
        |r| r.get(0),
    )
}

/// What a listing picks; every field optional, combined with AND. Dates are
/// `YYYY-MM-DD`, checked by the caller.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct PhotoFilter {
    /// Page size, 1–500 (default 100).
    pub limit: Option<i64>,
    /// Photos with ids below this (the `next` of the previous page).
    pub before: Option<i64>,
    pub album: Option<i64>,
    pub category: Option<String>,
    pub person: Option<i64>,
    pub place: Option<i64>,
    pub favourite: Option<bool>,
    /// Taken (or, without EXIF date, uploaded) on or after this date, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// … and on or before this date.
    pub to: Option<String>,
    /// `uploaded` (the default: newest upload first) or `taken` (the timeline: newest
    /// date taken first, the upload time standing in for a photo without one); checked
    /// by the caller.
    pub order: Option<String>,
    /// List the trash instead of the album.
    #[serde(default)]
    pub trashed: bool,
}

/// When a photo was taken, as EXIF writes it (`YYYY-MM-DDTHH:MM:SS`), its upload time
/// (UTC) in the same form for a photo without an EXIF date: the timeline's sort key.
fn taken_key(dialect: Dialect) -> String {
    format!(
        "COALESCE(p.taken_at, {})",
        dialect.iso_from_unix("p.uploaded")
    )
}

/// The WHERE clause of the user's photos the filter picks (the `before` cursor included),
/// and its values in order.
fn conditions(
    dialect: Dialect,
    user_id: i64,
    filter: &PhotoFilter,
) -> (String, Vec<Box<dyn ToSql>>) {
    let taken_key = taken_key(dialect);
    let trash = if filter.trashed {
        "p.trashed IS NOT NULL"
    } else {
        "p.trashed IS NULL"
    };
    let mut conditions = vec!["p.user_id = ?".to_owned(), trash.to_owned()];
    let mut values: Vec<Box<dyn ToSql>> = vec![Box::new(user_id)];
    let mut add = |condition: &str, value: Box<dyn ToSql>| {
        conditions.push(condition.to_owned());
        values.push(value);
    };
    if let Some(before) = filter.before {
        if by_taken(filter) {
            // A row value compares key then id, as ORDER BY sorts them. A cursor photo
            // deleted for good since has no row: the comparison is NULL, the page empty.
            let cursor = taken_key.replace("p.", "q.");
            add(
                &format!(
                    "({taken_key}, p.id) < (SELECT {cursor}, q.id FROM photos q
                     WHERE q.id = ? AND q.user_id = p.user_id)"
                ),
                Box::new(before),
            );
        } else {
            add("p.id < ?", Box::new(before));
        }
    }
    if let Some(album) = filter.album {
        add(
            "p.id IN (SELECT ap.photo_id FROM album_photos ap JOIN albums a ON a.id = ap.album_id
             WHERE ap.album_id = ? AND a.user_id = p.user_id)",
            Box::new(album),
        );
    }
    if let Some(category) = &filter.category {
        add("p.category = ?", Box::new(category.clone()));
    }
    if let Some(person) = filter.person {
        add(
            "p.id IN (SELECT f.photo_id FROM faces f WHERE f.person_id = ? AND f.user_id = p.user_id)",
            Box::new(person),
        );
    }
    if let Some(place) = filter.place {
        add("p.place_id = ?", Box::new(place));
    }
    if let Some(favourite) = filter.favourite {
        add("p.favourite = ?", Box::new(favourite));
    }
    let day = format!("substr({taken_key}, 1, 10)");
    if let Some(from) = &filter.from {
        add(&format!("{day} >= ?"), Box::new(from.clone()));
    }
    if let Some(to) = &filter.to {
        add(&format!("{day} <= ?"), Box::new(to.clone()));
    }
    (conditions.join(" AND "), values)
}

fn by_taken(filter: &PhotoFilter) -> bool {
    filter.order.as_deref() == Some("taken")
}

/// Up to `rows` of the user's photos the filter picks: newest (highest id) first, or with
/// `order=taken` newest taken first (ties by id). Either way the page after one starts
/// below its last photo (`before`), so pages neither skip nor repeat a photo.
pub(crate) fn filtered(
    c: &Connection,
    user_id: i64,
    filter: &PhotoFilter,
    rows: i64,
) -> crate::sql::Result<Vec<PhotoInfo>> {
    let (conditions, values) = conditions(c.dialect(), user_id, filter);
    let order = if by_taken(filter) {
        format!("{} DESC, p.id DESC", taken_key(c.dialect()))
    } else {
        "p.id DESC".to_owned()
    };
    let sql = format!(
        "SELECT {PHOTO_COLUMNS} FROM photos p WHERE {conditions} ORDER BY {order} LIMIT {rows}"
    );
    let mut statement = c.prepare(&sql)?;
    statement
        .query_map(params_from_iter(values.iter()), photo_from_row)?
        .collect()
}

/// How many photos the filter picks in each month they were taken (`YYYY-MM`, by the
/// timeline's key), newest month first: the timeline's scrubber.
pub(crate) fn months(
    c: &Connection,
    user_id: i64,
    filter: &PhotoFilter,
) -> crate::sql::Result<Vec<(String, i64)>> {
    let (conditions, values) = conditions(c.dialect(), user_id, filter);
    let sql = format!(
        "SELECT substr({}, 1, 7) AS month, COUNT(*) FROM photos p WHERE {conditions}
         GROUP BY month ORDER BY month DESC",
        taken_key(c.dialect())
    );
    let mut statement = c.prepare(&sql)?;
    statement
        .query_map(params_from_iter(values.iter()), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect()
}

pub(crate) fn set_favourite(
    c: &Connection,
    photo_id: i64,
    favourite: bool,
) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE photos SET favourite = ?1 WHERE id = ?2",
        params![favourite, photo_id],
    )?;
    Ok(())
}

pub fn rename(c: &Connection, photo_id: i64, name: &str) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE photos SET name = ?1 WHERE id = ?2",
        params![name, photo_id],
    )?;
    Ok(())
}

/// Puts the photo in the trash at `when`; one already there keeps its time.
pub(crate) fn move_to_trash(c: &Connection, photo_id: i64, when: i64) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE photos SET trashed = ?1 WHERE id = ?2 AND trashed IS NULL",
        params![when, photo_id],
    )?;
    Ok(())
}

pub fn restore(c: &Connection, photo_id: i64) -> crate::sql::Result<()> {
    c.execute("UPDATE photos SET trashed = NULL WHERE id = ?1", [photo_id])?;
    Ok(())
}

/// The photo's blobs (original, then the renditions made), if the photo is there.
pub(crate) fn blobs_of(c: &Connection, photo_id: i64) -> crate::sql::Result<Option<Vec<String>>> {
    c.query_row(
        "SELECT sha256, thumbnail_sha256, preview_sha256 FROM photos WHERE id = ?1",
        [photo_id],
        |r| {
            let mut blobs = vec![r.get::<_, String>(0)?];
            blobs.extend(r.get::<_, Option<String>>(1)?);
            blobs.extend(r.get::<_, Option<String>>(2)?);
            Ok(blobs)
        },
    )
    .optional()
}

/// Deletes the photo's row if it is in the trash (its faces, album entries and jobs go
/// with it by cascade); 0 when it is not there (any more).
pub(crate) fn delete_trashed(c: &Connection, photo_id: i64) -> crate::sql::Result<usize> {
    // Only from the trash: a photo restored after the purge listed it stays.
    c.execute(
        "DELETE FROM photos WHERE id = ?1 AND trashed IS NOT NULL",
        [photo_id],
    )
}

/// Whether any row uses the blob: an original, a rendition or a face thumbnail.
pub(crate) fn blob_in_use(c: &Connection, sha256: &str) -> crate::sql::Result<bool> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM photos WHERE sha256 = ?1 OR thumbnail_sha256 = ?1
             OR preview_sha256 = ?1)
         OR EXISTS (SELECT 1 FROM faces WHERE thumbnail_sha256 = ?1)
         OR EXISTS (SELECT 1 FROM music WHERE sha256 = ?1)",
        [sha256],
        |r| r.get(0),
    )
}

/// The user's photos in the trash (or only `only`, if it is there).
pub(crate) fn trashed_ids(
    c: &Connection,
    user_id: i64,
    only: Option<i64>,
) -> crate::sql::Result<Vec<i64>> {
    let mut statement = c.prepare(
        "SELECT id FROM photos WHERE user_id = ?1 AND trashed IS NOT NULL
         AND (CAST(?2 AS BIGINT) IS NULL OR id = ?2)",
    )?;
    statement
        .query_map(params![user_id, only], |r| r.get(0))?
        .collect()
}

/// Every photo put in the trash at or before `cutoff` (Unix seconds), any user's.
pub(crate) fn trashed_before(c: &Connection, cutoff: i64) -> crate::sql::Result<Vec<i64>> {
    let mut statement =
        c.prepare("SELECT id FROM photos WHERE trashed IS NOT NULL AND trashed <= ?1")?;
    statement.query_map([cutoff], |r| r.get(0))?.collect()
}

/// What a GIF frame is made from: the original, its orientation and size, and the
/// preview blob when made.
#[derive(Debug, Clone)]
pub(crate) struct FrameRow {
    pub sha256: String,
    pub preview_sha256: Option<String>,
    pub orientation: u16,
    pub width: u32,
    pub height: u32,
}

/// The frame source of the user's photo `photo_id`, if it is theirs.
pub(crate) fn frame_row(
    c: &Connection,
    user_id: i64,
    photo_id: i64,
) -> crate::sql::Result<Option<FrameRow>> {
    let mut statement = c.prepare_cached(
        "SELECT sha256, preview_sha256, orientation, width, height FROM photos
         WHERE id = ?1 AND user_id = ?2",
    )?;
    statement
        .query_row(params![photo_id, user_id], |r| {
            Ok(FrameRow {
                sha256: r.get(0)?,
                preview_sha256: r.get(1)?,
                orientation: r.get(2)?,
                width: r.get(3)?,
                height: r.get(4)?,
            })
        })
        .optional()
}

/// How many photo rows there are, and every blob any row names: originals, renditions
/// and face thumbnails (the store check's view of what must exist).
pub(crate) fn every_blob_reference(
    c: &Connection,
) -> crate::sql::Result<(usize, std::collections::HashSet<String>)> {
    let mut statement = c.prepare("SELECT sha256, thumbnail_sha256, preview_sha256 FROM photos")?;
    let rows = statement.query_map([], |r| {
        Ok([
            r.get::<_, Option<String>>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
        ])
    })?;
    let mut photos = 0;
    let mut hashes = std::collections::HashSet::new();
    for row in rows {
        photos += 1;
        hashes.extend(row?.into_iter().flatten());
    }
    // Face thumbnails, stored by the faces job, are blobs too (not orphans).
    let mut statement =
        c.prepare("SELECT thumbnail_sha256 FROM faces WHERE thumbnail_sha256 IS NOT NULL")?;
    for sha256 in statement.query_map([], |r| r.get::<_, String>(0))? {
        hashes.insert(sha256?);
    }
    // So are montage music files.
    let mut statement = c.prepare("SELECT sha256 FROM music")?;
    for sha256 in statement.query_map([], |r| r.get::<_, String>(0))? {
        hashes.insert(sha256?);
    }
    Ok((photos, hashes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_with_two_photos() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        crate::repo::schema::migrate(&c).unwrap();
        c.execute(
            "INSERT INTO users (id, username, password_hash, created) VALUES (1, 'u', 'x', 0)",
            [],
        )
        .unwrap();
        for (id, trashed) in [(1, Some(5)), (2, None::<i64>)] {
            c.execute(
                "INSERT INTO photos (id, user_id, sha256, kind, name, mime, bytes, width, height,
                 uploaded, trashed) VALUES (?1, 1, ?1, 'photo', 'p.jpg', 'image/jpeg', 1, 1, 1,
                 0, ?2)",
                params![id, trashed],
            )
            .unwrap();
        }
        c
    }

    /// Regression: the purge listed the trash, then deleted those rows without looking
    /// again, so a photo restored in between was deleted for good.
    #[test]
    fn a_purge_deletes_only_photos_still_in_the_trash() {
        let c = database_with_two_photos();
        assert_eq!(delete_trashed(&c, 2).unwrap(), 0);
        assert_eq!(delete_trashed(&c, 1).unwrap(), 1);
        let left: i64 = c
            .query_row("SELECT COUNT(*) FROM photos", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 1);
    }
}
