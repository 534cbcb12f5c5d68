//! People: faces found by album-faces (RetinaFace + dlib descriptors), grouped into
//! people as photos arrive, and the user's corrections.
//!
//! The grouping is the one the LFW evaluation measured, `album_faces::cluster`'s
//! density rule ([`FACE_RULE`]: links at descriptor distance d < 0.54, people of at
//! least three faces; experiments/faces-lfw100, BCubed F1 0.972 on 50 held-out people
//! as faces arrive one by one, 0.988 after a re-cluster). A new face joins the person
//! of its nearest linked face; with none, a face with two or more links starts a person
//! and takes its waiting neighbours along; else it waits, unassigned, until enough
//! faces like it arrive. The on-demand re-cluster regroups everything with the rule's
//! Chinese whispers. Faces a user placed by hand (`manual`) keep their person through a
//! re-cluster.

use std::collections::{BTreeMap, HashMap};

use album_faces::cluster::{DensityRule, Joins};
use album_faces::embedder::Descriptor;
use album_faces::pipeline::FacePipeline;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::db::{self, now};
use crate::error::{Error, Result};
use crate::ingest::{Patience, is_unsafe_in_name};
use crate::jobs::{self, JobKind};
use crate::{media, photos};

/// The album's face grouping: the density rule at the link distance the LFW evaluation
/// chose on its tuning half of the people, with people of at least three faces (the
/// evaluation's setting, and Immich's default `minFaces`).
pub const FACE_RULE: DensityRule = DensityRule {
    max_distance: 0.54,
    min_faces: 3,
};

fn descriptor_to_blob(descriptor: &Descriptor) -> Vec<u8> {
    descriptor.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn descriptor_from_blob(blob: &[u8]) -> Result<Descriptor> {
    let mut descriptor = [0f32; 128];
    if blob.len() != 128 * 4 {
        return Err(Error::internal(
            "faces",
            format!("a descriptor of {} bytes", blob.len()),
        ));
    }
    for (value, bytes) in descriptor.iter_mut().zip(blob.chunks_exact(4)) {
        *value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    Ok(descriptor)
}

/// The faces job: finds the photo's faces and stores them (replacing any from an earlier
/// attempt), then queues the user's cluster job, all in one transaction.
pub fn store_faces(
    state: &AppState,
    pipeline: &mut FacePipeline,
    user_id: i64,
    photo_id: i64,
    image: &image::RgbImage,
) -> Result<()> {
    let faces = pipeline
        .faces_in(image)
        .map_err(|e| Error::internal("face pipeline", e))?;
    // Each face's thumbnail, cut now from the photo already decoded: the thumbnail
    // route then only reads a blob.
    let thumbnails = faces
        .iter()
        .map(|face| {
            let [x1, y1, x2, y2] = face.detection.bbox.map(f64::from);
            let (x, y, w, h) = thumbnail_frame([x1, y1, x2 - x1, y2 - y1], image.dimensions());
            let crop = image::imageops::crop_imm(image, x, y, w, h).to_image();
            thumbnail_jpeg(&image::DynamicImage::ImageRgb8(crop))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut c = state.db.connection()?;
    let replaced = {
        let _guard = state.blob_writer();
        let transaction = db::write_transaction(&mut c)?;
        let replaced = face_thumbnails_of(&transaction, photo_id)?;
        transaction.execute(
            "DELETE FROM faces WHERE photo_id = ?1 AND manual = 0",
            [photo_id],
        )?;
        for (face, thumbnail) in faces.iter().zip(&thumbnails) {
            let [x1, y1, x2, y2] = face.detection.bbox;
            let thumbnail = state.blobs.put(thumbnail)?;
            transaction.execute(
                "INSERT INTO faces (user_id, photo_id, score, x, y, w, h, descriptor,
                                    thumbnail_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    user_id,
                    photo_id,
                    f64::from(face.detection.score),
                    f64::from(x1),
                    f64::from(y1),
                    f64::from(x2 - x1),
                    f64::from(y2 - y1),
                    descriptor_to_blob(&face.descriptor),
                    thumbnail
                ],
            )?;
        }
        if !faces.is_empty() {
            jobs::enqueue(
                &transaction,
                user_id,
                Some(photo_id),
                JobKind::Cluster,
                state.config.job_attempts,
            )?;
        }
        transaction.commit()?;
        replaced
    };
    if !replaced.is_empty() {
        // a retried job: the faces it replaced leave thumbnails nothing uses
        let _guard = state.blob_purger();
        photos::remove_unused_blobs(state, &c, replaced)?;
    }
    Ok(())
}

/// The thumbnails of the faces a faces job would replace (those not placed by hand).
fn face_thumbnails_of(c: &Connection, photo_id: i64) -> Result<Vec<String>> {
    let mut statement = c.prepare(
        "SELECT thumbnail_sha256 FROM faces
         WHERE photo_id = ?1 AND manual = 0 AND thumbnail_sha256 IS NOT NULL",
    )?;
    let thumbnails = statement
        .query_map([photo_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(thumbnails)
}

/// Side of a face thumbnail, in pixels.
const FACE_THUMBNAIL_SIDE: u32 = 160;

/// The part of a `(width, height)` photo a face thumbnail shows: the face's box
/// `[x, y, w, h]` with a margin of a quarter of its longer side, clamped to the photo;
/// at least one pixel.
fn thumbnail_frame([x, y, w, h]: [f64; 4], (width, height): (u32, u32)) -> (u32, u32, u32, u32) {
    let margin = w.max(h) * 0.25;
    let left = ((x - margin).max(0.0) as u32).min(width.saturating_sub(1));
    let top = ((y - margin).max(0.0) as u32).min(height.saturating_sub(1));
    let frame_w = ((w + 2.0 * margin) as u32)
        .min(width.saturating_sub(left))
        .max(1);
    let frame_h = ((h + 2.0 * margin) as u32)
        .min(height.saturating_sub(top))
        .max(1);
    (left, top, frame_w, frame_h)
}

fn thumbnail_jpeg(crop: &image::DynamicImage) -> Result<Vec<u8>> {
    media::resized_jpeg(crop, FACE_THUMBNAIL_SIDE, 85)
        .map_err(|e| Error::internal("face thumbnail", e))
}

struct FaceRow {
    id: i64,
    person_id: Option<i64>,
    manual: bool,
    descriptor: Descriptor,
}

fn faces_of(c: &Connection, user_id: i64, clustered: Option<bool>) -> Result<Vec<FaceRow>> {
    let mut statement = c.prepare(
        "SELECT f.id, f.person_id, f.manual, f.descriptor FROM faces f
         JOIN photos p ON p.id = f.photo_id
         WHERE f.user_id = ?1 AND (?2 IS NULL OR f.clustered = ?2) ORDER BY f.id",
    )?;
    let rows = statement
        .query_map(params![user_id, clustered], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, Vec<u8>>(3)?))
        })?
        .collect::<rusqlite::Result<Vec<(i64, Option<i64>, bool, Vec<u8>)>>>()?;
    rows.into_iter()
        .map(|(id, person_id, manual, blob)| {
            Ok(FaceRow {
                id,
                person_id,
                manual,
                descriptor: descriptor_from_blob(&blob)?,
            })
        })
        .collect()
}

fn new_person(t: &Transaction<'_>, user_id: i64, cover_face_id: i64) -> Result<i64> {
    t.execute(
        "INSERT INTO people (user_id, cover_face_id, created) VALUES (?1, ?2, ?3)",
        params![user_id, cover_face_id, now()],
    )?;
    Ok(t.last_insert_rowid())
}

/// The cluster job: every face of the user not clustered yet is placed by
/// [`FACE_RULE`] after the faces before it (see the module docs). Runs as one
/// IMMEDIATE transaction, so two workers cannot interleave their assignments; the work
/// in it is one distance per new face and earlier face.
pub fn cluster_new_faces(state: &AppState, user_id: i64) -> Result<()> {
    let mut c = state.db.connection()?;
    let t = db::write_transaction(&mut c)?;
    let new_faces = faces_of(&t, user_id, Some(false))?;
    if new_faces.is_empty() {
        // An earlier cluster job took these faces already: skip reading every face.
        return Ok(());
    }
    let known = faces_of(&t, user_id, Some(true))?;
    let mut ids: Vec<i64> = known.iter().map(|f| f.id).collect();
    let mut descriptors: Vec<Descriptor> = known.iter().map(|f| f.descriptor).collect();
    let mut people: Vec<Option<i64>> = known.iter().map(|f| f.person_id).collect();
    for face in new_faces {
        let placement = FACE_RULE.place(&face.descriptor, &descriptors, &people);
        let person = match placement.person {
            Some(Joins::Existing(person)) => Some(person),
            Some(Joins::New) => Some(new_person(&t, user_id, face.id)?),
            None => None,
        };
        if let Some(person) = person {
            for &j in &placement.carried {
                people[j] = Some(person);
                t.execute(
                    "UPDATE faces SET person_id = ?1 WHERE id = ?2",
                    params![person, ids[j]],
                )?;
            }
        }
        t.execute(
            "UPDATE faces SET person_id = ?1, clustered = 1 WHERE id = ?2",
            params![person, face.id],
        )?;
        ids.push(face.id);
        descriptors.push(face.descriptor);
        people.push(person);
    }
    t.commit()?;
    Ok(())
}

/// Regroups all the user's faces from scratch with [`FACE_RULE`]'s Chinese whispers.
/// The links (a distance per pair of faces) and the regrouping run on a snapshot with
/// no transaction open; the write lock is held only to apply the result, and only to
/// faces still as the snapshot saw them. Each group of at least three faces keeps the
/// person most of its faces had, so names survive; faces placed by hand keep their
/// person, and faces in smaller groups keep what they had. Returns the number of
/// people afterwards.
pub fn recluster(state: &AppState, user_id: i64) -> Result<usize> {
    let snapshot = faces_of(&*state.db.connection()?, user_id, None)?;
    let descriptors: Vec<Descriptor> = snapshot.iter().map(|f| f.descriptor).collect();
    let groups = FACE_RULE.regroup(&descriptors);
    let mut c = state.db.connection()?;
    let t = db::write_transaction(&mut c)?;
    let now_seen: HashMap<i64, (Option<i64>, bool)> = faces_of(&t, user_id, None)?
        .into_iter()
        .map(|f| (f.id, (f.person_id, f.manual)))
        .collect();
    let unchanged = |f: &FaceRow| now_seen.get(&f.id) == Some(&(f.person_id, f.manual));
    let mut members: BTreeMap<usize, Vec<&FaceRow>> = BTreeMap::new();
    for (face, group) in snapshot.iter().zip(&groups) {
        if let Some(group) = group {
            members.entry(*group).or_default().push(face);
        }
    }
    let mut taken = std::collections::HashSet::new();
    for faces in members.values() {
        let automatic: Vec<&FaceRow> = faces
            .iter()
            .copied()
            .filter(|f| !f.manual && unchanged(f))
            .collect();
        if automatic.is_empty() {
            continue;
        }
        let mut votes: HashMap<i64, usize> = HashMap::new();
        for face in faces {
            if let Some(person) = face.person_id {
                *votes.entry(person).or_default() += if face.manual { 1000 } else { 1 };
            }
        }
        let mut ranked: Vec<(i64, usize)> = votes.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let person = match ranked
            .into_iter()
            .map(|(p, _)| p)
            .find(|p| !taken.contains(p))
        {
            Some(person) => person,
            None => new_person(&t, user_id, automatic[0].id)?,
        };
        taken.insert(person);
        for face in automatic {
            t.execute(
                "UPDATE faces SET person_id = ?1, clustered = 1 WHERE id = ?2",
                params![person, face.id],
            )?;
        }
    }
    remove_empty_people(&t, user_id)?;
    let people: i64 = t.query_row(
        "SELECT COUNT(*) FROM people WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?;
    t.commit()?;
    Ok(people as usize)
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
pub fn grouped_faces(state: &AppState, user_id: i64) -> Result<Vec<GroupedFace>> {
    let c = state.db.connection()?;
    let mut statement = c.prepare(
        "SELECT f.photo_id, f.person_id, f.descriptor,
                (f.x + f.w / 2.0 - p.width / 2.0) * (f.x + f.w / 2.0 - p.width / 2.0)
              + (f.y + f.h / 2.0 - p.height / 2.0) * (f.y + f.h / 2.0 - p.height / 2.0)
         FROM faces f JOIN photos p ON p.id = f.photo_id
         WHERE f.user_id = ?1 ORDER BY f.id",
    )?;
    let rows = statement
        .query_map([user_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, Vec<u8>>(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<Vec<(i64, Option<i64>, Vec<u8>, f64)>>>()?;
    rows.into_iter()
        .map(|(photo_id, person_id, blob, off_centre)| {
            Ok(GroupedFace {
                photo_id,
                person_id,
                descriptor: descriptor_from_blob(&blob)?,
                off_centre,
            })
        })
        .collect()
}

/// Drops people left without faces, and points covers at a face the person still has.
fn remove_empty_people(c: &Connection, user_id: i64) -> Result<()> {
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

// ---------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------

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

fn person_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    Ok(Person {
        id: r.get(0)?,
        name: r.get(1)?,
        hidden: r.get(2)?,
        cover_face_id: r.get(3)?,
        faces: r.get(4)?,
        photos: r.get(5)?,
    })
}

pub fn person_of(c: &Connection, user_id: i64, id: i64) -> Result<Person> {
    c.query_row(
        &format!("SELECT {PERSON_COLUMNS} FROM people pe WHERE pe.id = ?1 AND pe.user_id = ?2"),
        params![id, user_id],
        person_from_row,
    )
    .optional()?
    .ok_or(Error::NotFound("person"))
}

#[derive(Debug, Deserialize, Default)]
pub struct PeopleQuery {
    /// Include hidden people.
    #[serde(default)]
    pub hidden: bool,
}

/// `GET /api/people`: most photos first.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    axum::extract::Query(query): axum::extract::Query<PeopleQuery>,
) -> Result<Json<Vec<Person>>> {
    let people = state
        .db
        .run(move |c| {
            let mut statement = c.prepare(&format!(
                "SELECT {PERSON_COLUMNS} FROM people pe WHERE pe.user_id = ?1
                 AND (?2 OR pe.hidden = 0) ORDER BY 6 DESC, pe.id"
            ))?;
            let people = statement
                .query_map(params![user.id, query.hidden], person_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(people.into_iter().filter(|p| p.faces > 0).collect())
        })
        .await?;
    Ok(Json(people))
}

/// `GET /api/people/{id}`.
pub async fn get(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Person>> {
    Ok(Json(
        state.db.run(move |c| person_of(c, user.id, id)).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct PersonPatch {
    /// A name; empty clears it.
    pub name: Option<String>,
    pub hidden: Option<bool>,
    pub cover_face_id: Option<i64>,
}

/// `PATCH /api/people/{id}`: rename, hide / unhide, choose the cover face.
pub async fn patch(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<PersonPatch>,
) -> Result<Json<Person>> {
    if let Some(name) = &body.name
        && (name.chars().count() > 100 || name.chars().any(is_unsafe_in_name))
    {
        return Err(Error::BadRequest(
            "a name is at most 100 characters, no control or text-direction characters".into(),
        ));
    }
    let person = state
        .db
        .run(move |c| {
            person_of(c, user.id, id)?;
            if let Some(name) = body.name {
                let name = Some(name.trim().to_owned()).filter(|n| !n.is_empty());
                c.execute(
                    "UPDATE people SET name = ?1 WHERE id = ?2",
                    params![name, id],
                )?;
            }
            if let Some(hidden) = body.hidden {
                c.execute(
                    "UPDATE people SET hidden = ?1 WHERE id = ?2",
                    params![hidden, id],
                )?;
            }
            if let Some(face) = body.cover_face_id {
                let owned: bool = c.query_row(
                    "SELECT EXISTS (SELECT 1 FROM faces WHERE id = ?1 AND person_id = ?2)",
                    params![face, id],
                    |r| r.get(0),
                )?;
                if !owned {
                    return Err(Error::BadRequest(
                        "the cover must be one of the person's faces".into(),
                    ));
                }
                c.execute(
                    "UPDATE people SET cover_face_id = ?1 WHERE id = ?2",
                    params![face, id],
                )?;
            }
            person_of(c, user.id, id)
        })
        .await?;
    Ok(Json(person))
}

#[derive(Debug, Deserialize)]
pub struct MergeBody {
    /// The person the faces go to; this one is removed.
    pub into: i64,
}

/// `POST /api/people/{id}/merge`: every face of this person goes to `into`.
pub async fn merge(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<MergeBody>,
) -> Result<Json<Person>> {
    let person = state
        .db
        .run(move |c| {
            person_of(c, user.id, id)?;
            person_of(c, user.id, body.into)?;
            if id == body.into {
                return Err(Error::BadRequest(
                    "a person cannot be merged into itself".into(),
                ));
            }
            let t = db::write_transaction(c)?;
            t.execute(
                "UPDATE faces SET person_id = ?1, manual = 1 WHERE person_id = ?2",
                params![body.into, id],
            )?;
            remove_empty_people(&t, user.id)?;
            t.commit()?;
            person_of(c, user.id, body.into)
        })
        .await?;
    Ok(Json(person))
}

#[derive(Debug, Deserialize)]
pub struct SplitBody {
    /// Faces of this person that become a new person together.
    pub face_ids: Vec<i64>,
}

/// `POST /api/people/{id}/split`: the given faces leave this person for a new one.
pub async fn split(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<SplitBody>,
) -> Result<(StatusCode, Json<Person>)> {
    if body.face_ids.is_empty() {
        return Err(Error::BadRequest(
            "face_ids: name the faces to split off".into(),
        ));
    }
    let person = state
        .db
        .run(move |c| {
            person_of(c, user.id, id)?;
            let t = db::write_transaction(c)?;
            for &face in &body.face_ids {
                let owned: bool = t.query_row(
                    "SELECT EXISTS (SELECT 1 FROM faces WHERE id = ?1 AND person_id = ?2)",
                    params![face, id],
                    |r| r.get(0),
                )?;
                if !owned {
                    return Err(Error::BadRequest(format!(
                        "face {face} is not this person's"
                    )));
                }
            }
            let new = new_person(&t, user.id, body.face_ids[0])?;
            for &face in &body.face_ids {
                t.execute(
                    "UPDATE faces SET person_id = ?1, manual = 1, clustered = 1 WHERE id = ?2",
                    params![new, face],
                )?;
            }
            remove_empty_people(&t, user.id)?;
            t.commit()?;
            person_of(c, user.id, new)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(person)))
}

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

fn face_of(c: &Connection, user_id: i64, id: i64) -> Result<FaceInfo> {
    c.query_row(
        "SELECT id, photo_id, person_id, score, x, y, w, h, manual FROM faces
         WHERE id = ?1 AND user_id = ?2",
        params![id, user_id],
        |r| {
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
        },
    )
    .optional()?
    .ok_or(Error::NotFound("face"))
}

/// `GET /api/people/{id}/faces`.
pub async fn faces(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Vec<FaceInfo>>> {
    let faces = state
        .db
        .run(move |c| {
            person_of(c, user.id, id)?;
            let mut statement =
                c.prepare("SELECT id FROM faces WHERE person_id = ?1 ORDER BY score DESC")?;
            let ids = statement
                .query_map([id], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ids.into_iter()
                .map(|face| face_of(c, user.id, face))
                .collect()
        })
        .await?;
    Ok(Json(faces))
}

#[derive(Debug, Deserialize)]
pub struct MoveFace {
    /// The person to move the face to; absent or null: a new person.
    pub person_id: Option<i64>,
}

/// `PUT /api/faces/{id}/person`: moves a face to another person (or a new one); the
/// placement is manual and survives re-clustering.
pub async fn move_face(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<MoveFace>,
) -> Result<Json<FaceInfo>> {
    let face = state
        .db
        .run(move |c| {
            face_of(c, user.id, id)?;
            let t = db::write_transaction(c)?;
            let person = match body.person_id {
                Some(person) => {
                    person_of(&t, user.id, person)?;
                    person
                }
                None => new_person(&t, user.id, id)?,
            };
            t.execute(
                "UPDATE faces SET person_id = ?1, manual = 1, clustered = 1 WHERE id = ?2",
                params![person, id],
            )?;
            remove_empty_people(&t, user.id)?;
            t.commit()?;
            face_of(c, user.id, id)
        })
        .await?;
    Ok(Json(face))
}

/// `GET /api/faces/{id}/thumbnail`: the face cut from its photo, 160 px, JPEG. The
/// faces job stores it; a face from before that (or whose blob is gone) is cut from the
/// original once, here, and stored.
pub async fn face_thumbnail(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response> {
    let bytes =
        tokio::task::spawn_blocking(move || stored_or_new_thumbnail(&state, user.id, id)).await??;
    let mut response = Response::new(Body::from(bytes));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    Ok(response)
}

fn stored_or_new_thumbnail(state: &AppState, user_id: i64, id: i64) -> Result<Vec<u8>> {
    let c = state.db.connection()?;
    let face = face_of(&c, user_id, id)?;
    let stored: Option<String> = c.query_row(
        "SELECT thumbnail_sha256 FROM faces WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    if let Some(sha256) = stored
        && state.blobs.contains(&sha256)?
    {
        return state.blobs.read(&sha256);
    }
    drop(c);
    let image = photos::upright_image(state, face.photo_id, Patience::Request)?
        .ok_or(Error::NotFound("face"))?;
    let (x, y, w, h) = thumbnail_frame(
        [face.x, face.y, face.w, face.h],
        (image.width(), image.height()),
    );
    let bytes = thumbnail_jpeg(&image.crop_imm(x, y, w, h))?;
    let c = state.db.connection()?;
    let _guard = state.blob_writer();
    let sha256 = state.blobs.put(&bytes)?;
    c.execute(
        "UPDATE faces SET thumbnail_sha256 = ?1 WHERE id = ?2",
        params![sha256, id],
    )?;
    Ok(bytes)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reclustered {
    pub people: usize,
}

/// `POST /api/people/recluster`.
pub async fn recluster_all(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Reclustered>> {
    let people = tokio::task::spawn_blocking(move || recluster(&state, user.id)).await??;
    Ok(Json(Reclustered { people }))
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
        assert_eq!(descriptor_from_blob(&descriptor_to_blob(&d)).unwrap(), d);
        assert!(descriptor_from_blob(&[0u8; 12]).is_err());
    }

    /// The service groups faces with the setting the committed LFW evaluation measured
    /// (its held-out rows), not a constant of its own.
    #[test]
    fn the_face_rule_is_the_one_the_evaluation_measured() {
        let measured = include_str!("../../experiments/faces-lfw100/clustering.csv");
        let density = measured
            .lines()
            .find(|l| l.starts_with("density (incremental)") && l.contains("held-out"))
            .expect("the evaluation's density row");
        let setting = format!(
            "link at distance < {:.2} (chosen on the tuning half), people of ≥ {} faces",
            FACE_RULE.max_distance, FACE_RULE.min_faces
        );
        assert!(density.contains(&setting), "{density}\n{setting}");
    }
}
