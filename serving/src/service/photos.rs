//! Photos: storing checked uploads, listing with filters, the renditions (thumbnail and
//! preview, made by the thumbnail job or on first request), favourites, names, and the
//! trash (delete → trash → restore or purge, and the automatic purge after
//! `trash_days`).
//!
//! The rules: a photo belongs to its user (anyone else's is "not found"); a photo is
//! acknowledged only after its blob is on disk and its row, with its queued jobs, is
//! committed; the same bytes are stored once per user (a second upload is reported as a
//! duplicate of the first); a batch of independent files stores each good one and
//! reports each refused one, and only a batch whose every file is refused fails; a
//! user at the storage quota gets nothing more stored; a purge deletes a blob only when
//! no row uses it any more.

use std::collections::HashSet;
use std::sync::Arc;

use crate::sql::Connection;
use serde::{Deserialize, Serialize};

use crate::blobs::BlobStore;
use crate::config::ServeConfig;
use crate::db::{Db, now};
use crate::error::{Error, ErrorBody, Result};
use crate::ingest::{self, Decoded, Decoding, Inspected, Patience};
use crate::media;
use crate::repo::faces;
use crate::repo::photos::{self as repo, PhotoFilter, PhotoInfo};
use crate::repo::smart::PeopleByFaces;
use crate::service::jobs::{self, JobKind, JobSignal};
use crate::service::places;
use crate::zipstream::{self, ZipOut};

/// What became of one uploaded file.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UploadStatus {
    /// Stored as a new photo.
    Stored,
    /// This user already has these bytes: `photo` is that one.
    Duplicate,
    /// Not stored: `error` says why.
    Refused,
}

/// What happened to one uploaded file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UploadResult {
    /// The file name as sent.
    pub name: String,
    pub status: UploadStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<PhotoInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl UploadResult {
    fn with_photo(name: String, status: UploadStatus, photo: PhotoInfo) -> Self {
        UploadResult {
            name,
            status,
            photo: Some(photo),
            error: None,
        }
    }

    fn refused(name: String, error: &Error) -> Self {
        UploadResult {
            name,
            status: UploadStatus::Refused,
            photo: None,
            error: Some(ErrorBody {
                error: error.code().into(),
                message: error.public_message(),
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadReport {
    pub results: Vec<UploadResult>,
}

/// One file of an upload as it arrived: its name, and its bytes or why it was refused
/// while it was read.
pub struct Arrived {
    pub name: String,
    pub bytes: Result<Vec<u8>>,
}

/// One photo as its viewer shows it: what a listing says of it, and who is in it.
#[derive(Debug, Serialize, Deserialize)]
pub struct PhotoDetail {
    #[serde(flatten)]
    pub photo: PhotoInfo,
    /// The people whose faces were found in it (hidden people left out).
    pub people: Vec<faces::PersonInPhoto>,
}

/// How many photos were taken in one month (`YYYY-MM`): a step of the timeline's scrubber.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct MonthCount {
    pub month: String,
    pub photos: i64,
}

/// One page of a listing.
#[derive(Debug, Serialize, Deserialize)]
pub struct PhotoPage {
    pub photos: Vec<PhotoInfo>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next: Option<i64>,
}

/// What may change in a photo; `None` leaves a field alone.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct PhotoChange {
    pub favourite: Option<bool>,
    pub name: Option<String>,
}

/// Which rendition of a photo to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rendition {
    Original,
    Thumbnail,
    Preview,
}

/// A rendition's bytes and what the answer says of them.
pub(crate) struct RenditionBytes {
    pub bytes: Vec<u8>,
    pub mime: String,
    pub sha256: String,
    /// The photo's file name (for the original's `Content-Disposition`).
    pub name: String,
}

/// Most photos in one zip download.
pub(crate) const MAX_ZIP_PHOTOS: usize = 1000;

/// The photos service.
#[derive(Clone)]
pub struct Photos {
    pub(crate) db: Db,
    pub(crate) blobs: BlobStore,
    pub(crate) decoding: Decoding,
    pub(crate) config: Arc<ServeConfig>,
    /// Woken when a stored photo has queued work.
    pub(crate) jobs: Arc<JobSignal>,
    /// When faces decide the "people" smart album (a bundle with that class, the face
    /// models and a positive `people_face_share`).
    pub(crate) people_by_faces: Option<Arc<PeopleByFaces>>,
}

impl Photos {
    /// A stored photo's original, decoded and turned upright; `None` when the photo is
    /// gone (purged). Callers check ownership first: this looks the photo up by id alone.
    pub fn upright_image(&self, photo_id: i64, patience: Patience) -> Result<Option<Decoded>> {
        let original = repo::original(&*self.db.connection()?, photo_id)?;
        match original {
            Some((sha256, orientation)) => Ok(Some(ingest::decode_upright(
                &self.blobs.read(&sha256)?,
                orientation,
                &self.decoding,
                patience,
            )?)),
            None => Ok(None),
        }
    }

    /// The photo's thumbnail and preview blobs, made now if missing: (thumbnail,
    /// preview). A request asking for them waits for memory as requests do; the job as
    /// jobs do.
    pub fn renditions(&self, photo_id: i64, patience: Patience) -> Result<(String, String)> {
        let c = self.db.connection()?;
        let (thumbnail, preview) =
            repo::renditions(&c, photo_id)?.ok_or(Error::NotFound("photo"))?;
        drop(c);
        if let (Some(t), Some(p)) = (&thumbnail, &preview)
            && self.blobs.contains(t)?
            && self.blobs.contains(p)?
        {
            return Ok((t.clone(), p.clone()));
        }
        let image = self
            .upright_image(photo_id, patience)?
            .ok_or(Error::NotFound("photo"))?;
        let thumbnail_bytes = media::resized_jpeg(&image, self.config.thumbnail_side, 85)
            .map_err(|e| Error::internal("thumbnail", e))?;
        let preview_bytes = media::resized_jpeg(&image, self.config.preview_side, 90)
            .map_err(|e| Error::internal("preview", e))?;
        let c = self.db.connection()?;
        let _guard = self.blobs.writer();
        let thumbnail = self.blobs.stage(&thumbnail_bytes)?;
        let preview = self.blobs.stage(&preview_bytes)?;
        let transaction = c.write_transaction()?;
        let thumbnail = thumbnail.confirm(&self.blobs, &transaction)?.to_owned();
        let preview = preview.confirm(&self.blobs, &transaction)?.to_owned();
        repo::set_renditions(&transaction, photo_id, &thumbnail, &preview)?;
        transaction.commit()?;
        Ok((thumbnail, preview))
    }

    /// Checks and stores an upload's files: each good one stored (or found to be a
    /// duplicate), each refused one reported with its reason. Fails whole only when every
    /// file is refused (with the first one's reason) or the user is already at the quota.
    pub(crate) async fn upload(
        &self,
        user_id: i64,
        files: Vec<Arrived>,
    ) -> Result<Vec<UploadResult>> {
        if files.is_empty() {
            return Err(Error::BadRequest(
                "no files in the request: send multipart/form-data with one or more file parts"
                    .into(),
            ));
        }
        let decoding = self.decoding.clone();
        let mut inspected = tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(|file| {
                    let name = file.name.clone();
                    let inspected = file
                        .bytes
                        .and_then(|bytes| ingest::inspect(file.name, bytes, &decoding));
                    inspected.map_err(|error| (name, error))
                })
                .collect::<Vec<_>>()
        })
        .await?;
        if inspected.iter().all(std::result::Result::is_err)
            && let Err((_, error)) = inspected.swap_remove(0)
        {
            return Err(error);
        }
        // A user already at the quota: refused whole, as one over-limit request is.
        if self.config.quota_bytes.is_some() {
            let smallest = inspected
                .iter()
                .filter_map(|file| file.as_ref().ok().map(|f| f.bytes.len() as u64))
                .min()
                .unwrap_or(0);
            let service = self.clone();
            self.db
                .run(move |c| service.check_quota(c, user_id, smallest))
                .await?;
        }
        let service = self.clone();
        let results = tokio::task::spawn_blocking(move || {
            let mut results = Vec::with_capacity(inspected.len());
            for outcome in inspected {
                match outcome {
                    Ok(file) => results.extend(service.store(user_id, vec![file])?),
                    Err((name, error)) => results.push(UploadResult::refused(name, &error)),
                }
            }
            Ok::<_, Error>(results)
        })
        .await??;
        self.jobs.wake();
        Ok(results)
    }

    /// `Ok` when `adding` more bytes keep `user_id` within the album's quota. (Two
    /// uploads at once may each pass and overshoot it by one of them: the quota bounds a
    /// user's storage, it does not account it to the byte.)
    fn check_quota(&self, c: &Connection, user_id: i64, adding: u64) -> Result<()> {
        let Some(quota) = self.config.quota_bytes else {
            return Ok(());
        };
        let used = repo::bytes_used(c, user_id)?;
        if used.saturating_add(adding) <= quota {
            return Ok(());
        }
        let mib = |bytes: u64| bytes as f64 / f64::from(1u32 << 20);
        Err(Error::TooLarge(format!(
            "over your storage quota: {:.1} MiB used of {:.1} MiB, this photo is {:.1} MiB \
             (empty the trash or ask the album's admin for more)",
            mib(used),
            mib(quota),
            mib(adding)
        )))
    }

    /// Stores inspected files for `user_id`: duplicates (same bytes as a photo this user
    /// has, in the trash or not) are reported, not stored again.
    pub fn store(&self, user_id: i64, files: Vec<Inspected>) -> Result<Vec<UploadResult>> {
        let mut c = self.db.connection()?;
        let mut results = Vec::with_capacity(files.len());
        let mut seen_in_request = HashSet::new();
        let duplicate = |c: &Connection, name: String, id: i64| -> Result<UploadResult> {
            Ok(UploadResult::with_photo(
                name,
                UploadStatus::Duplicate,
                owned(c, user_id, id)?,
            ))
        };
        for file in files {
            if let Some(id) = repo::with_bytes(&c, user_id, &file.sha256)? {
                results.push(duplicate(&c, file.name, id)?);
                continue;
            }
            if !seen_in_request.insert(file.sha256.clone()) {
                continue; // the same bytes twice in one request: stored once below
            }
            if let Err(over) = self.check_quota(&c, user_id, file.bytes.len() as u64) {
                results.push(UploadResult::refused(file.name, &over));
                continue;
            }
            let id = match self.insert(&mut c, user_id, &file, "photo") {
                Ok(id) => id,
                // A concurrent request stored the same bytes between the check and the
                // insert (the UNIQUE (user_id, sha256) constraint refused this row).
                Err(error) => match repo::with_bytes(&c, user_id, &file.sha256)? {
                    Some(id) => {
                        results.push(duplicate(&c, file.name, id)?);
                        continue;
                    }
                    None => return Err(error),
                },
            };
            results.push(UploadResult::with_photo(
                file.name,
                UploadStatus::Stored,
                owned(&c, user_id, id)?,
            ));
        }
        Ok(results)
    }

    /// Stores a file the service made itself (a GIF) like an upload; the same bytes
    /// again (even at the same moment) give the photo already stored.
    pub(crate) fn store_made(
        &self,
        user_id: i64,
        file: &Inspected,
        kind: &str,
    ) -> Result<PhotoInfo> {
        let mut c = self.db.connection()?;
        if let Some(existing) = repo::with_bytes(&c, user_id, &file.sha256)? {
            return owned(&c, user_id, existing);
        }
        let id = match self.insert(&mut c, user_id, file, kind) {
            Ok(id) => id,
            // a concurrent identical request stored it between the check and the insert
            Err(error) => repo::with_bytes(&c, user_id, &file.sha256)?.ok_or(error)?,
        };
        owned(&c, user_id, id)
    }

    /// Writes the blob (durably), then the row and its jobs in one transaction. The
    /// blob lock keeps this process's purges from deleting the blob between the write and
    /// the commit; [`crate::blobs::Staged::confirm`] keeps other instances' from it.
    fn insert(
        &self,
        c: &mut Connection,
        user_id: i64,
        file: &Inspected,
        kind: &str,
    ) -> Result<i64> {
        let place_id = match file.meta.gps {
            Some((lat, lon)) => places::place_id(c, user_id, lat, lon)?,
            None => None,
        };
        let _guard = self.blobs.writer();
        let staged = self.blobs.stage(&file.bytes)?;
        let transaction = c.write_transaction()?;
        let sha256 = staged.confirm(&self.blobs, &transaction)?;
        let id = repo::insert(&transaction, user_id, file, sha256, kind, place_id, now())?;
        for job in JobKind::for_new_photo(&self.config) {
            jobs::enqueue(
                &transaction,
                user_id,
                Some(id),
                job,
                self.config.job_attempts,
            )?;
        }
        transaction.commit()?;
        Ok(id)
    }

    /// The newest first (by upload, or by date taken with `order=taken`), `limit` at a
    /// time, keyset-paginated: `next` is the last photo's id, passed back as `before`.
    pub(crate) async fn list(&self, user_id: i64, mut filter: PhotoFilter) -> Result<PhotoPage> {
        let limit = filter.limit.unwrap_or(100);
        if !(1..=500).contains(&limit) {
            return Err(Error::BadRequest("limit must be 1 to 500".into()));
        }
        if let Some(order) = filter.order.as_deref()
            && !matches!(order, "uploaded" | "taken")
        {
            return Err(Error::BadRequest(format!(
                "order must be \"uploaded\" or \"taken\", not {order:?}"
            )));
        }
        filter.from = filter.from.as_deref().map(check_date).transpose()?;
        filter.to = filter.to.as_deref().map(check_date).transpose()?;
        self.db
            .run(move |c| {
                let mut photos = repo::filtered(c, user_id, &filter, limit + 1)?;
                let next = if photos.len() as i64 > limit {
                    photos.truncate(limit as usize);
                    photos.last().map(|p| p.id)
                } else {
                    None
                };
                Ok(PhotoPage { photos, next })
            })
            .await
    }

    /// The months the filter's photos were taken in, newest first, with their counts (a
    /// `before` cursor is ignored: the scrubber spans the whole timeline).
    pub(crate) async fn months(
        &self,
        user_id: i64,
        mut filter: PhotoFilter,
    ) -> Result<Vec<MonthCount>> {
        filter.from = filter.from.as_deref().map(check_date).transpose()?;
        filter.to = filter.to.as_deref().map(check_date).transpose()?;
        filter.before = None;
        self.db
            .run(move |c| {
                Ok(repo::months(c, user_id, &filter)?
                    .into_iter()
                    .map(|(month, photos)| MonthCount { month, photos })
                    .collect())
            })
            .await
    }

    /// The photo with the people in it, for its viewer.
    pub(crate) async fn detail(&self, user_id: i64, id: i64) -> Result<PhotoDetail> {
        self.db
            .run(move |c| {
                let photo = owned(c, user_id, id)?;
                let people = faces::people_in_photo(c, user_id, id)?;
                Ok(PhotoDetail { photo, people })
            })
            .await
    }

    /// The rendition's bytes; a thumbnail or preview not made yet by its job is made now.
    pub(crate) async fn rendition(
        &self,
        user_id: i64,
        id: i64,
        rendition: Rendition,
    ) -> Result<RenditionBytes> {
        let service = self.clone();
        tokio::task::spawn_blocking(move || service.rendition_now(user_id, id, rendition)).await?
    }

    fn rendition_now(&self, user_id: i64, id: i64, rendition: Rendition) -> Result<RenditionBytes> {
        let photo = owned(&*self.db.connection()?, user_id, id)?;
        let sha256 = match rendition {
            Rendition::Original => photo.sha256.clone(),
            Rendition::Thumbnail => self.renditions(id, Patience::Request)?.0,
            Rendition::Preview => self.renditions(id, Patience::Request)?.1,
        };
        let mime = if rendition == Rendition::Original {
            photo.mime
        } else {
            "image/jpeg".to_owned()
        };
        Ok(RenditionBytes {
            bytes: self.blobs.read(&sha256)?,
            mime,
            sha256,
            name: photo.name,
        })
    }

    /// The photos of a zip download, every id checked first (someone else's is "not
    /// found"); at most [`MAX_ZIP_PHOTOS`].
    pub(crate) async fn for_zip(&self, user_id: i64, ids: Vec<i64>) -> Result<Vec<PhotoInfo>> {
        if ids.is_empty() {
            return Err(Error::BadRequest(
                "ids: give one or more photo ids, comma-separated".into(),
            ));
        }
        if ids.len() > MAX_ZIP_PHOTOS {
            return Err(Error::TooLarge(format!(
                "{} photos: a zip holds at most {MAX_ZIP_PHOTOS}",
                ids.len()
            )));
        }
        self.db
            .run(move |c| ids.iter().map(|&id| owned(c, user_id, id)).collect())
            .await
    }

    /// Writes the photos' originals into `zip`, each as `<id>-<name>`, one photo in
    /// memory at a time; a photo named twice goes in once.
    pub(crate) fn write_originals(&self, zip: &mut ZipOut, photos: Vec<PhotoInfo>) -> Result<()> {
        let mut names = HashSet::new();
        for photo in photos {
            let name = format!("{}-{}", photo.id, photo.name);
            if !names.insert(name.clone()) {
                continue; // the same id twice
            }
            let bytes = self.blobs.read(&photo.sha256)?;
            zipstream::add_entry(zip, &name, &mut bytes.as_slice())?;
        }
        Ok(())
    }

    /// Favourite / unfavourite, rename.
    pub(crate) async fn change(
        &self,
        user_id: i64,
        id: i64,
        change: PhotoChange,
    ) -> Result<PhotoInfo> {
        if let Some(name) = &change.name {
            ingest::check_file_name(name)?;
        }
        self.db
            .run(move |c| {
                owned(c, user_id, id)?;
                if let Some(favourite) = change.favourite {
                    repo::set_favourite(c, id, favourite)?;
                }
                if let Some(name) = &change.name {
                    repo::rename(c, id, name)?;
                }
                owned(c, user_id, id)
            })
            .await
    }

    /// To the trash (again is fine).
    pub async fn trash(&self, user_id: i64, id: i64) -> Result<()> {
        self.db
            .run(move |c| {
                owned(c, user_id, id)?;
                Ok(repo::move_to_trash(c, id, now())?)
            })
            .await
    }

    /// Back from the trash.
    pub(crate) async fn restore(&self, user_id: i64, id: i64) -> Result<PhotoInfo> {
        self.db
            .run(move |c| {
                owned(c, user_id, id)?;
                repo::restore(c, id)?;
                owned(c, user_id, id)
            })
            .await
    }

    /// Deletes one trashed photo for good; a photo not in the trash must go there first.
    pub(crate) async fn purge_one(&self, user_id: i64, id: i64) -> Result<usize> {
        let service = self.clone();
        tokio::task::spawn_blocking(move || {
            let c = service.db.connection()?;
            if owned(&c, user_id, id)?.trashed.is_none() {
                return Err(Error::Conflict(
                    "move the photo to the trash before purging it".into(),
                ));
            }
            drop(c);
            service.purge(&[id])
        })
        .await?
    }

    /// Empties the user's trash; returns how many photos went.
    pub(crate) async fn empty_trash(&self, user_id: i64) -> Result<usize> {
        let service = self.clone();
        tokio::task::spawn_blocking(move || {
            let ids = repo::trashed_ids(&*service.db.connection()?, user_id, None)?;
            service.purge(&ids)
        })
        .await?
    }

    /// Purges every photo that has been in the trash longer than `trash_days`.
    pub fn purge_expired(&self) -> Result<usize> {
        let cutoff = now() - self.config.trash_days * 86_400;
        let ids = repo::trashed_before(&*self.db.connection()?, cutoff)?;
        self.purge(&ids)
    }

    /// Deletes photos for good: rows (faces, album entries and jobs go with them), then
    /// every blob no remaining row refers to. Returns how many photos went.
    fn purge(&self, photo_ids: &[i64]) -> Result<usize> {
        let c = self.db.connection()?;
        let _guard = self.blobs.purger();
        let transaction = c.write_transaction()?;
        let mut blobs = Vec::new();
        let mut purged = 0;
        for &id in photo_ids {
            let Some(photo_blobs) = repo::blobs_of(&transaction, id)? else {
                continue;
            };
            let face_blobs = faces::thumbnails_of_photo(&transaction, id)?;
            if repo::delete_trashed(&transaction, id)? == 0 {
                continue; // restored since the trash was listed: it stays
            }
            purged += 1;
            blobs.extend(face_blobs);
            blobs.extend(photo_blobs);
        }
        transaction.commit()?;
        self.remove_unused_blobs(&c, blobs)?;
        Ok(purged)
    }

    /// Deletes those of `blobs` no row uses any more (an original, a rendition or a face
    /// thumbnail). The caller holds [`BlobStore::purger`], so no writer of this process is
    /// between storing a blob and committing the row that uses it; the check and the
    /// deletes run under the database's write lock, so no row naming one of them commits
    /// meanwhile on any instance (the writers confirm their blobs under the same lock:
    /// [`crate::blobs::Staged`]).
    pub(crate) fn remove_unused_blobs(
        &self,
        c: &Connection,
        blobs: impl IntoIterator<Item = String>,
    ) -> Result<()> {
        let transaction = c.write_transaction()?;
        for sha256 in blobs {
            if !repo::blob_in_use(&transaction, &sha256)? {
                self.blobs.remove(&sha256)?;
            }
        }
        transaction.commit()?;
        Ok(())
    }
}

/// One of the user's photos, trashed or not; someone else's is "not found".
pub(crate) fn owned(c: &Connection, user_id: i64, photo_id: i64) -> Result<PhotoInfo> {
    repo::find(c, user_id, photo_id)?.ok_or(Error::NotFound("photo"))
}

fn check_date(value: &str) -> Result<String> {
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| Error::BadRequest(format!("date {value:?}: expected YYYY-MM-DD")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_must_be_calendar_days() {
        assert_eq!(check_date("2024-02-29").unwrap(), "2024-02-29");
        assert!(check_date("2023-02-29").is_err());
        assert!(check_date("yesterday").is_err());
    }
}
