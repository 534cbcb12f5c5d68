//! The background queue as its owners see it (the workers themselves are
//! [`crate::jobs`]).

use crate::db::Db;
use crate::error::Result;
use crate::repo::jobs::{self as repo, Progress};

/// The queue's progress service.
#[derive(Clone)]
pub struct Queue {
    pub(crate) db: Db,
}

impl Queue {
    /// The user's background work: counts per kind and state, the newest failures.
    pub async fn progress(&self, user_id: i64) -> Result<Progress> {
        self.db.run(move |c| Ok(repo::progress(c, user_id)?)).await
    }
}
