//! The `faces` and `people` tables: faces found in photos (box, score, descriptor, the
//! stored thumbnail), the person each belongs to, and the people themselves.

use crate::sql::{Connection, OptionalExtension, Row, params};
use crate::sql::{FromSql, Value};
use album_faces::embedder::Descriptor;
use serde::{Deserialize, Serialize};

/// A descriptor as stored: 128 little-endian `f32`s.
struct StoredDescriptor(Descriptor);

impl FromSql for StoredDescriptor {
    fn from_value(value: &Value) -> Result<Self, String> {
        let Value::Blob(blob) = value else {
            return Err(format!("a face descriptor stored as {value:?}, not bytes"));
        };
        if blob.len() != 128 * 4 {
            return Err(format!(
                "a face descriptor of {} bytes, not 512",
                blob.len()
            ));
        }
        let mut descriptor = [0f32; 128];
        for (value, bytes) in descriptor.iter_mut().zip(blob.chunks_exact(4)) {
            *value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        Ok(StoredDescriptor(descriptor))
    }
}

fn descriptor_to_blob(descriptor: &Descriptor) -> Vec<u8> {
    descriptor.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A face found by the faces job, to be stored.
#[derive(Debug, Clone)]
pub(crate) struct NewFace<'a> {
    pub user_id: i64,
    pub photo_id: i64,
    pub score: f64,
    /// Box `[x, y, w, h]` in the upright photo's pixels.
    pub frame: [f64; 4],
    pub descriptor: &'a Descriptor,
    pub thumbnail_sha256: &'a str,
}

pub(crate) fn insert(c: &Connection, face: &NewFace<'_>) -> crate::sql::Result<i64> {
    let [x, y, w, h] = face.frame;
    c.query_row(
        "INSERT INTO faces (user_id, photo_id, score, x, y, w, h, descriptor, thumbnail_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        params![
            face.user_id,
            face.photo_id,
            face.score,
            x,
            y,
            w,
            h,
            descriptor_to_blob(face.descriptor),
            face.thumbnail_sha256
        ],
        |r| r.get(0),
    )
}

/// The thumbnails of the photo's faces the faces job placed (not those placed by hand).
pub(crate) fn automatic_thumbnails(
    c: &Connection,
    photo_id: i64,
) -> crate::sql::Result<Vec<String>> {
    let mut statement = c.prepare(
        "SELECT thumbnail_sha256 FROM faces
         WHERE photo_id = ?1 AND manual = 0 AND thumbnail_sha256 IS NOT NULL",
    )?;
    statement.query_map([photo_id], |r| r.get(0))?.collect()
}

/// The thumbnails of every face of the photo.
pub(crate) fn thumbnails_of_photo(
    c: &Connection,
    photo_id: i64,
) -> crate::sql::Result<Vec<String>> {
    let mut statement = c.prepare(
        "SELECT thumbnail_sha256 FROM faces WHERE photo_id = ?1 AND thumbnail_sha256 IS NOT NULL",
    )?;
    statement.query_map([photo_id], |r| r.get(0))?.collect()
}

/// Removes the photo's faces the faces job placed.
pub(crate) fn delete_automatic(c: &Connection, photo_id: i64) -> crate::sql::Result<usize> {
    c.execute(
        "DELETE FROM faces WHERE photo_id = ?1 AND manual = 0",
        [photo_id],
    )
}

/// A face as the grouping reads it.
#[derive(Debug, Clone)]
pub(crate) struct FaceRow {
    pub id: i64,
    pub person_id: Option<i64>,
    pub manual: bool,
    pub descriptor: Descriptor,
}

/// The user's faces in the order they were stored; `clustered` picks those the cluster
/// job has (or has not) placed, `None` all of them.
pub(crate) fn for_grouping(
    c: &Connection,
    user_id: i64,
    clustered: Option<bool>,
) -> crate::sql::Result<Vec<FaceRow>> {
    let mut statement = c.prepare(
        "SELECT f.id, f.person_id, f.manual, f.descriptor FROM faces f
         JOIN photos p ON p.id = f.photo_id
         WHERE f.user_id = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR f.clustered = ?2) ORDER BY f.id",
    )?;
    statement
        .query_map(params![user_id, clustered], |r| {
            Ok(FaceRow {
                id: r.get(0)?,
                person_id: r.get(1)?,
                manual: r.get(2)?,
                descriptor: r.get::<_, StoredDescriptor>(3)?.0,
            })
        })?
        .collect()
}

/// The user's placed-faces version: it moves whenever a face of the user is placed,
/// unplaced or deleted (migration 0009's triggers).
pub(crate) fn placed_faces_version(c: &Connection, user_id: i64) -> crate::sql::Result<i64> {
    c.query_row(
        "SELECT placed_faces_version FROM users WHERE id = ?1",
        [user_id],
        |r| r.get(0),
    )
}

/// The ids of the user's placed faces.
pub(crate) fn placed_ids(c: &Connection, user_id: i64) -> crate::sql::Result<Vec<i64>> {
    let mut statement =
        c.prepare("SELECT id FROM faces WHERE user_id = ?1 AND clustered = 1 ORDER BY id")?;
    statement.query_map([user_id], |r| r.get(0))?.collect()
}

/// The descriptors of the faces `ids` (those that exist).
pub(crate) fn descriptors(
    c: &Connection,
    ids: &[i64],
) -> crate::sql::Result<Vec<(i64, Descriptor)>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, descriptor FROM faces WHERE id IN ({}) ORDER BY id",
            placeholders(chunk.len())
        );
        let mut statement = c.prepare(&sql)?;
        let rows = statement.query_map(crate::sql::params_from_iter(chunk), |r| {
            Ok((r.get(0)?, r.get::<_, StoredDescriptor>(1)?.0))
        })?;
        for row in rows {
            found.push(row?);
        }
    }
    Ok(found)
}

/// The person of each of the user's placed faces among `ids` (a face deleted since, or
/// another user's, is left out).
pub(crate) fn people_of_placed(
    c: &Connection,
    user_id: i64,
    ids: &[i64],
) -> crate::sql::Result<std::collections::HashMap<i64, Option<i64>>> {
    let mut people = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, person_id FROM faces
             WHERE user_id = ? AND clustered = 1 AND id IN ({})",
            placeholders(chunk.len())
        );
        let mut statement = c.prepare(&sql)?;
        let values = std::iter::once(user_id).chain(chunk.iter().copied());
        let rows = statement.query_map(crate::sql::params_from_iter(values), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
        })?;
        for row in rows {
            let (id, person) = row?;
            people.insert(id, person);
        }
    }
    Ok(people)
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// A face as the grouping left it, for measuring the grouping (`album bench people`).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedFace {
    pub photo_id: i64,
    pub person_id: Option<i64>,
    pub descriptor: Descriptor,
    /// Squared distance from the face box's centre to its photo's centre, in pixels²:
    /// the face nearest the centre is the photo's subject, as the LFW evaluation takes it.
    pub off_centre: f64,
}

/// Every face of the user, in the order they were stored.
pub fn grouped(c: &Connection, user_id: i64) -> crate::sql::Result<Vec<GroupedFace>> {
    let mut statement = c.prepare(
        "SELECT f.photo_id, f.person_id, f.descriptor,
                (f.x + f.w / 2.0 - p.width / 2.0) * (f.x + f.w / 2.0 - p.width / 2.0)
              + (f.y + f.h / 2.0 - p.height / 2.0) * (f.y + f.h / 2.0 - p.height / 2.0)
         FROM faces f JOIN photos p ON p.id = f.photo_id
         WHERE f.user_id = ?1 ORDER BY f.id",
    )?;
    statement
        .query_map([user_id], |r| {
            Ok(GroupedFace {
                photo_id: r.get(0)?,
                person_id: r.get(1)?,
                descriptor: r.get::<_, StoredDescriptor>(2)?.0,
                off_centre: r.get(3)?,
            })
        })?
        .collect()
}

/// Puts the face with a person (or none) as the grouping placed it.
pub(crate) fn set_person(c: &Connection, face_id: i64, person_id: i64) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE faces SET person_id = ?1 WHERE id = ?2",
        params![person_id, face_id],
    )?;
    Ok(())
}

/// Marks the face placed by the grouping, with the person it chose (or none yet).
pub(crate) fn set_clustered(
    c: &Connection,
    face_id: i64,
    person_id: Option<i64>,
) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE faces SET person_id = ?1, clustered = 1 WHERE id = ?2",
        params![person_id, face_id],
    )?;
    Ok(())
}

/// Puts the face with a person by hand: it keeps that person through a re-cluster.
pub(crate) fn set_manual(c: &Connection, face_id: i64, person_id: i64) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE faces SET person_id = ?1, manual = 1, clustered = 1 WHERE id = ?2",
        params![person_id, face_id],
    )?;
    Ok(())
}

/// Moves every face of `from` to `into`, by hand.
pub(crate) fn move_all(c: &Connection, from: i64, into: i64) -> crate::sql::Result<usize> {
    c.execute(
        "UPDATE faces SET person_id = ?1, manual = 1 WHERE person_id = ?2",
        params![into, from],
    )
}

/// Whether the face is one of the person's.
pub(crate) fn belongs_to(c: &Connection, face_id: i64, person_id: i64) -> crate::sql::Result<bool> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM faces WHERE id = ?1 AND person_id = ?2)",
        params![face_id, person_id],
        |r| r.get(0),
    )
}

/// A face as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaceInfo {
    pub id: i64,
    pub photo_id: i64,
    pub person_id: Option<i64>,
    pub score: f64,
    /// Box in the upright photo's pixels.
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub manual: bool,
}

const FACE_COLUMNS: &str = "id, photo_id, person_id, score, x, y, w, h, manual";

fn face_from_row(r: &Row) -> crate::sql::Result<FaceInfo> {
    Ok(FaceInfo {
        id: r.get(0)?,
        photo_id: r.get(1)?,
        person_id: r.get(2)?,
        score: r.get(3)?,
        x: r.get(4)?,
        y: r.get(5)?,
        w: r.get(6)?,
        h: r.get(7)?,
        manual: r.get(8)?,
    })
}

/// The user's face `id`, if it is theirs.
pub(crate) fn find(c: &Connection, user_id: i64, id: i64) -> crate::sql::Result<Option<FaceInfo>> {
    c.query_row(
        &format!("SELECT {FACE_COLUMNS} FROM faces WHERE id = ?1 AND user_id = ?2"),
        params![id, user_id],
        face_from_row,
    )
    .optional()
}

/// The person's faces, best detection first.
pub(crate) fn of_person(c: &Connection, person_id: i64) -> crate::sql::Result<Vec<FaceInfo>> {
    let mut statement = c.prepare(&format!(
        "SELECT {FACE_COLUMNS} FROM faces WHERE person_id = ?1 ORDER BY score DESC, id"
    ))?;
    statement.query_map([person_id], face_from_row)?.collect()
}

/// The face's stored thumbnail blob, if it has one.
pub fn thumbnail(c: &Connection, face_id: i64) -> crate::sql::Result<Option<String>> {
    Ok(c.query_row(
        "SELECT thumbnail_sha256 FROM faces WHERE id = ?1",
        [face_id],
        |r| r.get(0),
    )
    .optional()?
    .flatten())
}

pub(crate) fn set_thumbnail(c: &Connection, face_id: i64, sha256: &str) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE faces SET thumbnail_sha256 = ?1 WHERE id = ?2",
        params![sha256, face_id],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// People
// ---------------------------------------------------------------------------------------

/// A person as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Person {
    pub id: i64,
    pub name: Option<String>,
    pub hidden: bool,
    pub cover_face_id: Option<i64>,
    /// Faces of this person in photos that are not in the trash.
    pub faces: i64,
    pub photos: i64,
}

const PERSON_COLUMNS: &str = "pe.id, pe.name, pe.hidden, pe.cover_face_id,
    (SELECT COUNT(*) FROM faces f JOIN photos p ON p.id = f.photo_id
       WHERE f.person_id = pe.id AND p.trashed IS NULL),
    (SELECT COUNT(DISTINCT f.photo_id) FROM faces f JOIN photos p ON p.id = f.photo_id
       WHERE f.person_id = pe.id AND p.trashed IS NULL)";

fn person_from_row(r: &Row) -> crate::sql::Result<Person> {
    Ok(Person {
        id: r.get(0)?,
        name: r.get(1)?,
        hidden: r.get(2)?,
        cover_face_id: r.get(3)?,
        faces: r.get(4)?,
        photos: r.get(5)?,
    })
}

/// Someone whose face is in a photo: the person's id and name, and which of the photo's
/// faces are theirs (the viewer moves one to another person).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PersonInPhoto {
    pub id: i64,
    pub name: Option<String>,
    pub face_ids: Vec<i64>,
}

/// The people whose faces are in the photo, hidden ones left out, in the order they were
/// made (each once, with all of their faces in it).
pub(crate) fn people_in_photo(
    c: &Connection,
    user_id: i64,
    photo_id: i64,
) -> crate::sql::Result<Vec<PersonInPhoto>> {
    let mut statement = c.prepare_cached(
        "SELECT pe.id, pe.name, f.id FROM faces f JOIN people pe ON pe.id = f.person_id
         WHERE f.photo_id = ?1 AND f.user_id = ?2 AND pe.hidden = 0 ORDER BY pe.id, f.id",
    )?;
    let rows = statement.query_map(params![photo_id, user_id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut people: Vec<PersonInPhoto> = Vec::new();
    for row in rows {
        let (id, name, face) = row?;
        match people.last_mut() {
            Some(last) if last.id == id => last.face_ids.push(face),
            _ => people.push(PersonInPhoto {
                id,
                name,
                face_ids: vec![face],
            }),
        }
    }
    Ok(people)
}

/// The user's person `id`, if it is theirs.
pub(crate) fn find_person(
    c: &Connection,
    user_id: i64,
    id: i64,
) -> crate::sql::Result<Option<Person>> {
    c.query_row(
        &format!("SELECT {PERSON_COLUMNS} FROM people pe WHERE pe.id = ?1 AND pe.user_id = ?2"),
        params![id, user_id],
        person_from_row,
    )
    .optional()
}

/// The user's people, most photos first; hidden ones only when asked for.
pub(crate) fn list_people(
    c: &Connection,
    user_id: i64,
    with_hidden: bool,
) -> crate::sql::Result<Vec<Person>> {
    let mut statement = c.prepare(&format!(
        "SELECT {PERSON_COLUMNS} FROM people pe WHERE pe.user_id = ?1
         AND (?2 OR pe.hidden = 0) ORDER BY 6 DESC, pe.id"
    ))?;
    statement
        .query_map(params![user_id, with_hidden], person_from_row)?
        .collect()
}

/// A new person's id.
pub(crate) fn insert_person(
    c: &Connection,
    user_id: i64,
    cover_face_id: i64,
    created: i64,
) -> crate::sql::Result<i64> {
    c.query_row(
        "INSERT INTO people (user_id, cover_face_id, created) VALUES (?1, ?2, ?3) RETURNING id",
        params![user_id, cover_face_id, created],
        |r| r.get(0),
    )
}

pub(crate) fn rename_person(c: &Connection, id: i64, name: Option<&str>) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE people SET name = ?1 WHERE id = ?2",
        params![name, id],
    )?;
    Ok(())
}

pub(crate) fn set_hidden(c: &Connection, id: i64, hidden: bool) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE people SET hidden = ?1 WHERE id = ?2",
        params![hidden, id],
    )?;
    Ok(())
}

pub(crate) fn set_cover(c: &Connection, id: i64, face_id: i64) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE people SET cover_face_id = ?1 WHERE id = ?2",
        params![face_id, id],
    )?;
    Ok(())
}

pub(crate) fn count_people(c: &Connection, user_id: i64) -> crate::sql::Result<usize> {
    let people: i64 = c.query_row(
        "SELECT COUNT(*) FROM people WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?;
    Ok(people.max(0) as usize)
}

/// Drops the user's people left without faces, and points covers at a face the person
/// still has.
pub(crate) fn remove_empty_people(c: &Connection, user_id: i64) -> crate::sql::Result<()> {
    c.execute(
        "DELETE FROM people WHERE user_id = ?1
         AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_id = people.id)",
        [user_id],
    )?;
    c.execute(
        "UPDATE people SET cover_face_id =
             (SELECT f.id FROM faces f WHERE f.person_id = people.id ORDER BY f.score DESC LIMIT 1)
         WHERE user_id = ?1 AND (cover_face_id IS NULL OR NOT EXISTS
             (SELECT 1 FROM faces f WHERE f.id = people.cover_face_id AND f.person_id = people.id))",
        [user_id],
    )?;
    Ok(())
}

/// Faces stored twice: two rows of one photo with the same box. The faces job stores
/// a photo's faces once even when it runs again (after its instance died under it), so
/// any is a job's work done twice.
pub fn repeated(c: &Connection) -> crate::sql::Result<i64> {
    c.query_row(
        "SELECT COALESCE(SUM(n - 1), 0) FROM (
             SELECT COUNT(*) AS n FROM faces GROUP BY photo_id, x, y, w, h HAVING COUNT(*) > 1
         ) AS twice",
        [],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_round_trip_through_blobs() {
        let mut d = [0f32; 128];
        for (i, v) in d.iter_mut().enumerate() {
            *v = i as f32 * -0.01;
        }
        let blob = descriptor_to_blob(&d);
        let read = StoredDescriptor::from_value(&Value::Blob(blob.clone())).unwrap();
        assert_eq!(read.0, d);
        assert!(StoredDescriptor::from_value(&Value::Blob(vec![0u8; 12])).is_err());
    }
}
