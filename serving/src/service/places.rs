//! Places: a photo's EXIF GPS position named offline by the nearest GeoNames town of
//! ≥ 1,000 people (the reverse_geocoder crate's data, CC BY 4.0), and the places list.
//!
//! Places are per user: a shared row would tell a user, by its older id, that someone
//! else had photos near that town.

use std::sync::OnceLock;

use crate::sql::Connection;

use crate::db::Db;
use crate::error::Result;
use crate::media::Geocoder;
use crate::repo::places::{self as repo, PlaceInfo};

/// The geocoder, built once per process on first use (it indexes the whole table).
pub(crate) fn geocoder() -> &'static Geocoder {
    static GEOCODER: OnceLock<Geocoder> = OnceLock::new();
    GEOCODER.get_or_init(Geocoder::new)
}

/// The user's place for the town nearest to (lat, lon), made on first use; within the
/// caller's transaction (a photo being stored).
pub(crate) fn place_id(c: &Connection, user_id: i64, lat: f64, lon: f64) -> Result<Option<i64>> {
    match geocoder().nearest(lat, lon) {
        Some(place) => Ok(repo::find_or_insert(c, user_id, &place)?),
        None => Ok(None),
    }
}

/// The places service.
#[derive(Clone)]
pub struct Places {
    db: Db,
}

impl Places {
    pub fn new(db: Db) -> Self {
        Places { db }
    }

    /// The user's places, most photos first.
    pub async fn list(&self, user_id: i64) -> Result<Vec<PlaceInfo>> {
        self.db.run(move |c| Ok(repo::list(c, user_id)?)).await
    }
}
