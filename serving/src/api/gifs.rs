//! `/api/gifs`: the handler over [`crate::service::gifs`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::auth::CurrentUser;
use crate::error::Result;
use crate::repo::photos::PhotoInfo;
use crate::service::gifs::{GifRequest, Gifs};

/// `POST /api/gifs`: a new GIF item from the chosen photos (201), or why not.
pub(crate) async fn create(
    State(gifs): State<Gifs>,
    user: CurrentUser,
    Json(request): Json<GifRequest>,
) -> Result<(StatusCode, Json<PhotoInfo>)> {
    Ok((
        StatusCode::CREATED,
        Json(gifs.create(user.id, request).await?),
    ))
}
