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
//!
//! The rules of a correction: people and faces belong to their user (anyone else's is
//! "not found"); a name is at most 100 characters with no control or text-direction
//! characters; a cover is one of the person's faces; a person is not merged into itself;
//! a split names only the person's own faces.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::sql::Connection;
use album_faces::cluster::{DensityRule, Joins, SUGGESTION_SIMILARITY, similar_groups};
use album_faces::embedder::Descriptor;
use album_faces::pipeline::FacePipeline;

use crate::db::now;
use crate::error::{Error, Result};
use crate::ingest::{Patience, is_unsafe_in_name};
use crate::media;
use crate::repo::faces::{self as repo, FaceInfo, FaceRow, GroupedFace, NewFace, Person};
use crate::service::face_index::{FaceIndexes, UserFaces};
use crate::service::jobs::{self, JobKind};
use crate::service::photos::Photos;

/// The album's face grouping: the density rule at the link distance the LFW evaluation
/// chose on its tuning half of the people, with people of at least three faces (the
/// evaluation's setting, and Immich's default `minFaces`).
pub const FACE_RULE: DensityRule = DensityRule {
    max_distance: 0.54,
    min_faces: 3,
};

/// Side of a face thumbnail, in pixels.
const FACE_THUMBNAIL_SIDE: u32 = 160;

/// What may change in a person; `None` leaves a field alone.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct PersonChange {
    /// A name; empty clears it.
    pub name: Option<String>,
    pub hidden: Option<bool>,
    pub cover_face_id: Option<i64>,
}

/// Someone who may be the same person as another ("Same person?"), and how alike their
/// closest faces are (0–1, `album_faces::cluster::similarity`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Suggestion {
    pub person: Person,
    pub similarity: f32,
}

/// The most suggestions offered for one person.
const SUGGESTIONS: usize = 5;

/// The people service. It reads photos through [`Photos`] (a face thumbnail made late
/// is cut from the upright original) and stores blobs with its lock.
#[derive(Clone)]
pub struct People {
    pub(crate) photos: Photos,
    /// Each user's placed faces, searchable (see [`crate::service::face_index`]).
    face_index: Arc<FaceIndexes>,
}

impl People {
    pub fn new(photos: Photos) -> Self {
        People {
            photos,
            face_index: Arc::default(),
        }
    }

    fn connection(&self) -> Result<crate::db::Pooled> {
        self.photos.db.connection()
    }

    /// The faces job: finds the photo's faces and stores them with their thumbnails
    /// (replacing any from an earlier attempt), then queues the user's cluster job, all
    /// in one transaction.
    pub fn store_faces(
        &self,
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
        let blobs = &self.photos.blobs;
        let c = self.connection()?;
        let replaced = {
            let _guard = blobs.writer();
            let transaction = c.write_transaction()?;
            let replaced = repo::automatic_thumbnails(&transaction, photo_id)?;
            repo::delete_automatic(&transaction, photo_id)?;
            for (face, thumbnail) in faces.iter().zip(&thumbnails) {
                let [x1, y1, x2, y2] = face.detection.bbox.map(f64::from);
                let thumbnail = blobs.put(thumbnail)?;
                repo::insert(
                    &transaction,
                    &NewFace {
                        user_id,
                        photo_id,
                        score: f64::from(face.detection.score),
                        frame: [x1, y1, x2 - x1, y2 - y1],
                        descriptor: &face.descriptor,
                        thumbnail_sha256: &thumbnail,
                    },
                )?;
            }
            crate::repo::smart::settle_category(
                &transaction,
                photo_id,
                self.photos.people_by_faces.as_deref(),
            )?;
            if !faces.is_empty() {
                jobs::enqueue(
                    &transaction,
                    user_id,
                    Some(photo_id),
                    JobKind::Cluster,
                    self.photos.config.job_attempts,
                )?;
            }
            transaction.commit()?;
            replaced
        };
        if !replaced.is_empty() {
            // a retried job: the faces it replaced leave thumbnails nothing uses
            let _guard = blobs.purger();
            self.photos.remove_unused_blobs(&c, replaced)?;
        }
        Ok(())
    }

    /// The cluster job: every face of the user not clustered yet is placed by
    /// [`FACE_RULE`] after the faces before it (see the module docs). The earlier faces
    /// a face links to are found through the user's face index
    /// ([`crate::service::face_index`]), about log(n) work per face, and their people
    /// read in the job's transaction. Runs as
    /// one IMMEDIATE transaction, so two workers cannot interleave their assignments;
    /// the index is built (the first time) before it.
    pub fn cluster_new_faces(&self, user_id: i64) -> Result<()> {
        let index = self.face_index.lock(user_id);
        let mut faces = index.faces();
        if !faces.is_built() {
            faces.build(&*self.connection()?, user_id)?;
        }
        let placed = self.place_new_faces(user_id, &mut faces);
        if placed.is_err() {
            // the graph may hold faces of the transaction that did not commit
            faces.forget();
        }
        placed
    }

    fn place_new_faces(&self, user_id: i64, index: &mut UserFaces) -> Result<()> {
        let c = self.connection()?;
        let t = c.write_transaction()?;
        let new_faces = repo::for_grouping(&t, user_id, Some(false))?;
        if new_faces.is_empty() {
            // An earlier cluster job took these faces already.
            return Ok(());
        }
        index.catch_up(&t, user_id)?;
        for face in new_faces {
            let found = index.graph.within(&face.descriptor, FACE_RULE.max_distance);
            let ids: Vec<i64> = found.iter().map(|&(id, _)| id as i64).collect();
            let people = repo::people_of_placed(&t, user_id, &ids)?;
            let near: Vec<(usize, f32)> = found
                .into_iter()
                .filter(|&(id, _)| people.contains_key(&(id as i64)))
                .collect();
            let placement = FACE_RULE.place_near(&near, |id| people[&(id as i64)]);
            let person = match placement.person {
                Some(Joins::Existing(person)) => Some(person),
                Some(Joins::New) => Some(repo::insert_person(&t, user_id, face.id, now())?),
                None => None,
            };
            if let Some(person) = person {
                for &id in &placement.carried {
                    repo::set_person(&t, id as i64, person)?;
                }
            }
            repo::set_clustered(&t, face.id, person)?;
            index.insert(face.id, face.descriptor);
        }
        index.settle(&t, user_id)?;
        t.commit()?;
        Ok(())
    }

    /// Regroups all the user's faces from scratch with [`FACE_RULE`]'s Chinese whispers.
    /// The links (found through an HNSW graph of the faces, O(n log n)) and the
    /// regrouping run on a snapshot
    /// with no transaction open; the write lock is held only to apply the result, and
    /// only to faces still as the snapshot saw them. Each group of at least three faces
    /// keeps the person most of its faces had, so names survive; faces placed by hand
    /// keep their person, and faces in smaller groups keep what they had. Returns the
    /// number of people afterwards.
    pub fn recluster(&self, user_id: i64) -> Result<usize> {
        let snapshot = repo::for_grouping(&*self.connection()?, user_id, None)?;
        let descriptors: Vec<Descriptor> = snapshot.iter().map(|f| f.descriptor).collect();
        let groups = FACE_RULE.regroup_indexed(&descriptors);
        let c = self.connection()?;
        let t = c.write_transaction()?;
        let now_seen: HashMap<i64, (Option<i64>, bool)> = repo::for_grouping(&t, user_id, None)?
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
        let mut taken = HashSet::new();
        for faces in members.values() {
            let automatic: Vec<&FaceRow> = faces
                .iter()
                .copied()
                .filter(|f| !f.manual && unchanged(f))
                .collect();
            if automatic.is_empty() {
                continue;
            }
            let person = match most_voted(faces, &taken) {
                Some(person) => person,
                None => repo::insert_person(&t, user_id, automatic[0].id, now())?,
            };
            taken.insert(person);
            for face in automatic {
                repo::set_clustered(&t, face.id, Some(person))?;
            }
        }
        repo::remove_empty_people(&t, user_id)?;
        let people = repo::count_people(&t, user_id)?;
        t.commit()?;
        Ok(people)
    }

    /// [`People::recluster`] off the async threads.
    pub(crate) async fn recluster_now(&self, user_id: i64) -> Result<usize> {
        let service = self.clone();
        tokio::task::spawn_blocking(move || service.recluster(user_id)).await?
    }

    /// Every face of the user, in the order they were stored.
    pub fn grouped_faces(&self, user_id: i64) -> Result<Vec<GroupedFace>> {
        Ok(repo::grouped(&*self.connection()?, user_id)?)
    }

    /// The user's people with a face in a photo not in the trash, most photos first.
    pub(crate) async fn list(&self, user_id: i64, with_hidden: bool) -> Result<Vec<Person>> {
        self.photos
            .db
            .run(move |c| {
                let people = repo::list_people(c, user_id, with_hidden)?;
                Ok(people.into_iter().filter(|p| p.faces > 0).collect())
            })
            .await
    }

    pub(crate) async fn get(&self, user_id: i64, id: i64) -> Result<Person> {
        self.photos.db.run(move |c| person(c, user_id, id)).await
    }

    /// Rename, hide / unhide, choose the cover face.
    pub(crate) async fn change(
        &self,
        user_id: i64,
        id: i64,
        change: PersonChange,
    ) -> Result<Person> {
        if let Some(name) = &change.name
            && (name.chars().count() > 100 || name.chars().any(is_unsafe_in_name))
        {
            return Err(Error::BadRequest(
                "a name is at most 100 characters, no control or text-direction characters".into(),
            ));
        }
        self.photos
            .db
            .run(move |c| {
                person(c, user_id, id)?;
                if let Some(face) = change.cover_face_id
                    && !repo::belongs_to(c, face, id)?
                {
                    return Err(Error::BadRequest(
                        "the cover must be one of the person's faces".into(),
                    ));
                }
                let t = c.write_transaction()?;
                if let Some(name) = &change.name {
                    repo::rename_person(&t, id, Some(name.trim()).filter(|n| !n.is_empty()))?;
                }
                if let Some(hidden) = change.hidden {
                    repo::set_hidden(&t, id, hidden)?;
                }
                if let Some(face) = change.cover_face_id {
                    repo::set_cover(&t, id, face)?;
                }
                t.commit()?;
                person(c, user_id, id)
            })
            .await
    }

    /// People who may be the same as person `id`: the visible people whose closest face
    /// to one of `id`'s is at least [`SUGGESTION_SIMILARITY`] alike, most alike first. The
    /// faces are read first and compared without holding a connection.
    pub(crate) async fn similar(&self, user_id: i64, id: i64) -> Result<Vec<Suggestion>> {
        let (mine, groups, mut people) = self
            .photos
            .db
            .run(move |c| {
                person(c, user_id, id)?;
                let mut faces_of: BTreeMap<i64, Vec<Descriptor>> = BTreeMap::new();
                for face in repo::for_grouping(c, user_id, None)? {
                    if let Some(person) = face.person_id {
                        faces_of.entry(person).or_default().push(face.descriptor);
                    }
                }
                let mine = faces_of.remove(&id).unwrap_or_default();
                let people: HashMap<i64, Person> = repo::list_people(c, user_id, false)?
                    .into_iter()
                    .filter(|p| p.id != id && p.faces > 0)
                    .map(|p| (p.id, p))
                    .collect();
                // only the visible people's faces are compared
                let groups: Vec<(i64, Vec<Descriptor>)> = faces_of
                    .into_iter()
                    .filter(|(person, _)| people.contains_key(person))
                    .collect();
                Ok((mine, groups, people))
            })
            .await?;
        Ok(tokio::task::spawn_blocking(move || {
            similar_groups(&mine, &groups, SUGGESTION_SIMILARITY, SUGGESTIONS)
                .into_iter()
                .filter_map(|(id, similarity)| {
                    Some(Suggestion {
                        person: people.remove(&id)?,
                        similarity,
                    })
                })
                .collect()
        })
        .await?)
    }

    /// Every face of person `id` goes to `into`; `id` is removed.
    pub(crate) async fn merge(&self, user_id: i64, id: i64, into: i64) -> Result<Person> {
        self.photos
            .db
            .run(move |c| {
                person(c, user_id, id)?;
                person(c, user_id, into)?;
                if id == into {
                    return Err(Error::BadRequest(
                        "a person cannot be merged into itself".into(),
                    ));
                }
                let t = c.write_transaction()?;
                repo::move_all(&t, id, into)?;
                repo::remove_empty_people(&t, user_id)?;
                t.commit()?;
                person(c, user_id, into)
            })
            .await
    }

    /// The given faces of person `id` leave it for a new person.
    pub(crate) async fn split(&self, user_id: i64, id: i64, face_ids: Vec<i64>) -> Result<Person> {
        let Some(&first) = face_ids.first() else {
            return Err(Error::BadRequest(
                "face_ids: name the faces to split off".into(),
            ));
        };
        self.photos
            .db
            .run(move |c| {
                person(c, user_id, id)?;
                let t = c.write_transaction()?;
                for &face in &face_ids {
                    if !repo::belongs_to(&t, face, id)? {
                        return Err(Error::BadRequest(format!(
                            "face {face} is not this person's"
                        )));
                    }
                }
                let new = repo::insert_person(&t, user_id, first, now())?;
                for &face in &face_ids {
                    repo::set_manual(&t, face, new)?;
                }
                repo::remove_empty_people(&t, user_id)?;
                t.commit()?;
                person(c, user_id, new)
            })
            .await
    }

    /// The person's faces, best detection first.
    pub(crate) async fn faces(&self, user_id: i64, id: i64) -> Result<Vec<FaceInfo>> {
        self.photos
            .db
            .run(move |c| {
                person(c, user_id, id)?;
                Ok(repo::of_person(c, id)?)
            })
            .await
    }

    /// Moves a face to another person (`None`: a new one); the placement is manual and
    /// survives re-clustering.
    pub(crate) async fn move_face(
        &self,
        user_id: i64,
        id: i64,
        to: Option<i64>,
    ) -> Result<FaceInfo> {
        self.photos
            .db
            .run(move |c| {
                face(c, user_id, id)?;
                let t = c.write_transaction()?;
                let person = match to {
                    Some(to) => person(&t, user_id, to)?.id,
                    None => repo::insert_person(&t, user_id, id, now())?,
                };
                repo::set_manual(&t, id, person)?;
                repo::remove_empty_people(&t, user_id)?;
                t.commit()?;
                face(c, user_id, id)
            })
            .await
    }

    /// The face cut from its photo, 160 px, JPEG. The faces job stores it; a face from
    /// before that (or whose blob is gone) is cut from the original once, here, and
    /// stored.
    pub(crate) async fn face_thumbnail(&self, user_id: i64, id: i64) -> Result<Vec<u8>> {
        let service = self.clone();
        tokio::task::spawn_blocking(move || service.stored_or_new_thumbnail(user_id, id)).await?
    }

    fn stored_or_new_thumbnail(&self, user_id: i64, id: i64) -> Result<Vec<u8>> {
        let blobs = &self.photos.blobs;
        let c = self.connection()?;
        let face = face(&c, user_id, id)?;
        if let Some(sha256) = repo::thumbnail(&c, id)?
            && blobs.contains(&sha256)?
        {
            return blobs.read(&sha256);
        }
        drop(c);
        let image = self
            .photos
            .upright_image(face.photo_id, Patience::Request)?
            .ok_or(Error::NotFound("face"))?;
        let (x, y, w, h) = thumbnail_frame(
            [face.x, face.y, face.w, face.h],
            (image.width(), image.height()),
        );
        let bytes = thumbnail_jpeg(&image.crop_imm(x, y, w, h))?;
        let c = self.connection()?;
        let _guard = blobs.writer();
        let staged = blobs.stage(&bytes)?;
        let transaction = c.write_transaction()?;
        repo::set_thumbnail(&transaction, id, staged.confirm(blobs, &transaction)?)?;
        transaction.commit()?;
        Ok(bytes)
    }
}

/// The person most of a group's faces had (a face placed by hand outweighs any number
/// placed by the grouping), among those no other group has taken; ties go to the older
/// person.
fn most_voted(faces: &[&FaceRow], taken: &HashSet<i64>) -> Option<i64> {
    let mut votes: HashMap<i64, usize> = HashMap::new();
    for face in faces {
        if let Some(person) = face.person_id {
            *votes.entry(person).or_default() += if face.manual { 1000 } else { 1 };
        }
    }
    let mut ranked: Vec<(i64, usize)> = votes.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .map(|(person, _)| person)
        .find(|person| !taken.contains(person))
}

/// The user's person `id`; someone else's is "not found".
fn person(c: &Connection, user_id: i64, id: i64) -> Result<Person> {
    repo::find_person(c, user_id, id)?.ok_or(Error::NotFound("person"))
}

/// The user's face `id`; someone else's is "not found".
fn face(c: &Connection, user_id: i64, id: i64) -> Result<FaceInfo> {
    repo::find(c, user_id, id)?.ok_or(Error::NotFound("face"))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The service groups faces with the setting the committed LFW evaluation measured
    /// (its held-out rows), not a constant of its own.
    #[test]
    fn the_face_rule_is_the_one_the_evaluation_measured() {
        let measured = include_str!("../../../experiments/faces-lfw100/clustering.csv");
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

    #[test]
    fn a_thumbnail_frame_stays_inside_the_photo() {
        assert_eq!(
            thumbnail_frame([10.0, 10.0, 40.0, 40.0], (100, 100)),
            (0, 0, 60, 60)
        );
        assert_eq!(
            thumbnail_frame([90.0, 90.0, 40.0, 40.0], (100, 100)),
            (80, 80, 20, 20)
        );
    }
}
