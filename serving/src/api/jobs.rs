//! `/api/jobs`: the background work's progress, over [`crate::service::jobs`].

use axum::Json;
use axum::extract::State;

use crate::auth::CurrentUser;
use crate::error::Result;
use crate::repo::jobs::Progress;
use crate::service::jobs::Queue;

/// `GET /api/jobs`: the signed-in user's background work.
pub(crate) async fn progress(
    State(queue): State<Queue>,
    user: CurrentUser,
) -> Result<Json<Progress>> {
    Ok(Json(queue.progress(user.id).await?))
}
