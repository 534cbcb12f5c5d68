//! Albums the user makes: create, rename, delete, add and remove photos, cover photo.
//! An album's photos are listed with `GET /api/photos?album=ID`.
//!
//! The rules: an album and the photos put in it belong to the user (anyone else's is
//! "not found", the same answer as a missing one); a name is 1–200 characters with no
//! control or text-direction characters; a cover is a photo in the album.

use crate::db::{Db, now};
use crate::error::{Error, Result};
use crate::ingest::is_unsafe_in_name;
use crate::repo::albums::{self as repo, Album};
use crate::repo::photos;

/// What may change in an album; `None` leaves a field alone.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AlbumChange {
    pub name: Option<String>,
    /// `Some(None)` goes back to the newest photo.
    pub cover_photo_id: Option<Option<i64>>,
}

/// The albums service.
#[derive(Clone)]
pub struct Albums {
    db: Db,
}

impl Albums {
    pub fn new(db: Db) -> Self {
        Albums { db }
    }

    pub async fn list(&self, user_id: i64) -> Result<Vec<Album>> {
        self.db.run(move |c| Ok(repo::list(c, user_id)?)).await
    }

    pub async fn get(&self, user_id: i64, id: i64) -> Result<Album> {
        self.db.run(move |c| owned(c, user_id, id)).await
    }

    pub async fn create(&self, user_id: i64, name: &str) -> Result<Album> {
        let name = checked_name(name)?;
        self.db
            .run(move |c| {
                let id = repo::insert(c, user_id, &name, now())?;
                owned(c, user_id, id)
            })
            .await
    }

    pub(crate) async fn change(&self, user_id: i64, id: i64, change: AlbumChange) -> Result<Album> {
        let name = change.name.as_deref().map(checked_name).transpose()?;
        self.db
            .run(move |c| {
                owned(c, user_id, id)?;
                if let Some(photo) = change.cover_photo_id.flatten()
                    && !repo::contains(c, id, photo)?
                {
                    return Err(Error::BadRequest(
                        "the cover must be a photo in the album".into(),
                    ));
                }
                let t = c.write_transaction()?;
                if let Some(name) = &name {
                    repo::rename(&t, id, name)?;
                }
                if let Some(cover) = change.cover_photo_id {
                    repo::set_cover(&t, id, cover)?;
                }
                t.commit()?;
                owned(c, user_id, id)
            })
            .await
    }

    /// The album goes; its photos stay.
    pub async fn delete(&self, user_id: i64, id: i64) -> Result<()> {
        self.db
            .run(move |c| {
                owned(c, user_id, id)?;
                Ok(repo::delete(c, id)?)
            })
            .await
    }

    /// Adds the user's photos (already there is fine); one photo not theirs adds none.
    pub(crate) async fn add_photos(
        &self,
        user_id: i64,
        id: i64,
        photo_ids: Vec<i64>,
    ) -> Result<Album> {
        self.db
            .run(move |c| {
                owned(c, user_id, id)?;
                let t = c.write_transaction()?;
                for &photo in &photo_ids {
                    photo_owned(&t, user_id, photo)?;
                    repo::add_photo(&t, id, photo, now())?;
                }
                t.commit()?;
                owned(c, user_id, id)
            })
            .await
    }

    /// Takes a photo out (the photo stays).
    pub(crate) async fn remove_photo(&self, user_id: i64, id: i64, photo_id: i64) -> Result<Album> {
        self.db
            .run(move |c| {
                owned(c, user_id, id)?;
                photo_owned(c, user_id, photo_id)?;
                let t = c.write_transaction()?;
                repo::remove_photo(&t, id, photo_id)?;
                t.commit()?;
                owned(c, user_id, id)
            })
            .await
    }
}

/// The album, if it is the user's; "not found" otherwise.
fn owned(c: &crate::sql::Connection, user_id: i64, id: i64) -> Result<Album> {
    repo::find(c, user_id, id)?.ok_or(Error::NotFound("album"))
}

fn photo_owned(c: &crate::sql::Connection, user_id: i64, photo_id: i64) -> Result<()> {
    if photos::is_owned(c, user_id, photo_id)? {
        Ok(())
    } else {
        Err(Error::NotFound("photo"))
    }
}

fn checked_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(is_unsafe_in_name) {
        return Err(Error::BadRequest(
            "an album name is 1–200 characters, no control or text-direction characters".into(),
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(checked_name("  Summer ").unwrap(), "Summer");
        assert!(checked_name("   ").is_err());
        assert!(checked_name(&"x".repeat(201)).is_err());
        assert!(checked_name("a\u{202E}b").is_err());
        assert_eq!(checked_name(&"é".repeat(200)).unwrap().chars().count(), 200);
    }
}
