//! The `jobs` table: the background queue's rows.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub user_id: i64,
    pub photo_id: Option<i64>,
    pub kind: String,
    pub attempts: i64,
    pub max_attempts: i64,
}

/// A new queued job's id, due at `time`.
pub fn insert(
    c: &Connection,
    user_id: i64,
    photo_id: Option<i64>,
    kind: &str,
    max_attempts: i64,
    time: i64,
) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO jobs (user_id, photo_id, kind, max_attempts, run_after, created, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5)",
        params![user_id, photo_id, kind, max_attempts, time],
    )?;
    Ok(c.last_insert_rowid())
}

/// Puts jobs left `running` back in the queue; how many.
pub fn recover(c: &Connection, time: i64) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE jobs SET state = 'queued', updated = ?1 WHERE state = 'running'",
        [time],
    )
}

/// Marks the oldest job due by `time` running (one UPDATE, so two workers never take
/// the same row) and returns it.
pub fn claim(c: &Connection, time: i64) -> rusqlite::Result<Option<Job>> {
    c.query_row(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated = ?1
         WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_after <= ?1
                     ORDER BY id LIMIT 1)
         RETURNING id, user_id, photo_id, kind, attempts, max_attempts",
        [time],
        |r| {
            Ok(Job {
                id: r.get(0)?,
                user_id: r.get(1)?,
                photo_id: r.get(2)?,
                kind: r.get(3)?,
                attempts: r.get(4)?,
                max_attempts: r.get(5)?,
            })
        },
    )
    .optional()
}

pub(crate) fn mark_done(c: &Connection, id: i64, time: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE jobs SET state = 'done', last_error = NULL, updated = ?1 WHERE id = ?2",
        params![time, id],
    )?;
    Ok(())
}

pub(crate) fn mark_failed(c: &Connection, id: i64, error: &str, time: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE jobs SET state = 'failed', last_error = ?1, updated = ?2 WHERE id = ?3",
        params![error, time, id],
    )?;
    Ok(())
}

/// Back in the queue, due at `run_after`.
pub(crate) fn requeue(
    c: &Connection,
    id: i64,
    error: &str,
    run_after: i64,
    time: i64,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE jobs SET state = 'queued', last_error = ?1, run_after = ?2,
         updated = ?3 WHERE id = ?4",
        params![error, run_after, time, id],
    )?;
    Ok(())
}

/// Job counts per state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailedJob {
    pub id: i64,
    pub kind: String,
    pub photo_id: Option<i64>,
    pub attempts: i64,
    pub error: Option<String>,
}

/// A user's background work.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    pub total: Counts,
    pub by_kind: BTreeMap<String, Counts>,
    /// The newest failures (up to 20), with their errors.
    pub failed: Vec<FailedJob>,
}

pub fn progress(c: &Connection, user_id: i64) -> rusqlite::Result<Progress> {
    let mut total = Counts::default();
    let mut by_kind = BTreeMap::new();
    let mut statement = c.prepare_cached(
        "SELECT kind, state, COUNT(*) FROM jobs WHERE user_id = ?1 GROUP BY kind, state",
    )?;
    let rows = statement.query_map([user_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (kind, state, count) = row?;
        let counts: &mut Counts = by_kind.entry(kind).or_default();
        for c in [&mut total, counts] {
            match state.as_str() {
                "queued" => c.queued += count,
                "running" => c.running += count,
                "done" => c.done += count,
                _ => c.failed += count,
            }
        }
    }
    let mut statement = c.prepare_cached(
        "SELECT id, kind, photo_id, attempts, last_error FROM jobs
         WHERE user_id = ?1 AND state = 'failed' ORDER BY id DESC LIMIT 20",
    )?;
    let failed = statement
        .query_map([user_id], |r| {
            Ok(FailedJob {
                id: r.get(0)?,
                kind: r.get(1)?,
                photo_id: r.get(2)?,
                attempts: r.get(3)?,
                error: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Progress {
        total,
        by_kind,
        failed,
    })
}
