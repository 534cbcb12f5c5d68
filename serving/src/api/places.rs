//! `/api/places`: the handler over [`crate::service::places`].

use axum::Json;
use axum::extract::State;

use crate::auth::CurrentUser;
use crate::error::Result;
use crate::repo::places::PlaceInfo;
use crate::service::places::Places;

/// `GET /api/places`: the user's places, most photos first (list a place's photos with
/// `GET /api/photos?place=ID`).
pub(crate) async fn list(
    State(places): State<Places>,
    user: CurrentUser,
) -> Result<Json<Vec<PlaceInfo>>> {
    Ok(Json(places.list(user.id).await?))
}
