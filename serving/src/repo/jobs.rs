//! The `jobs` table: the background queue's rows.

use std::collections::BTreeMap;

use crate::sql::{Connection, OptionalExtension, params};
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
    /// The instance holding the job's lease (the one that claimed it).
    pub lease_owner: String,
}

/// A new queued job's id, due at `time`.
pub fn insert(
    c: &Connection,
    user_id: i64,
    photo_id: Option<i64>,
    kind: &str,
    max_attempts: i64,
    time: i64,
) -> crate::sql::Result<i64> {
    c.query_row(
        "INSERT INTO jobs (user_id, photo_id, kind, max_attempts, run_after, created, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5) RETURNING id",
        params![user_id, photo_id, kind, max_attempts, time],
        |r| r.get(0),
    )
}

/// Puts jobs left `running` without a lease, or with one that ran out, back in the
/// queue; how many. (A job whose instance is alive keeps its lease renewed.)
pub fn recover(c: &Connection, time: i64) -> crate::sql::Result<usize> {
    c.execute(
        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, updated = ?1
         WHERE state = 'running' AND (lease_until IS NULL OR lease_until < ?1)",
        [time],
    )
}

/// Claims the oldest job that is due, or running under a lease that ran out (its
/// instance died), for `owner` until `lease_until`, in one UPDATE, so two workers never
/// take the same row, and returns it. The outer WHERE repeats the claimable states: on
/// Postgres a second claimer that picked the same row waits for the first one's update
/// and then re-checks only that WHERE against the row as it now is; without the states
/// there, it would take the row again. (It finds nothing this time and asks again.)
pub fn claim(
    c: &Connection,
    time: i64,
    owner: &str,
    lease_until: i64,
) -> crate::sql::Result<Option<Job>> {
    c.query_row(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated = ?1,
                lease_owner = ?2, lease_until = ?3
         WHERE id = (SELECT MIN(id) FROM (
                       SELECT MIN(id) AS id FROM jobs WHERE state = 'queued' AND run_after <= ?1
                       UNION ALL
                       SELECT MIN(id) FROM jobs WHERE state = 'running' AND lease_until < ?1
                     ) AS due)
           AND (state = 'queued' AND run_after <= ?1 OR state = 'running' AND lease_until < ?1)
         RETURNING id, user_id, photo_id, kind, attempts, max_attempts, lease_owner",
        params![time, owner, lease_until],
        |r| {
            Ok(Job {
                id: r.get(0)?,
                user_id: r.get(1)?,
                photo_id: r.get(2)?,
                kind: r.get(3)?,
                attempts: r.get(4)?,
                max_attempts: r.get(5)?,
                lease_owner: r.get(6)?,
            })
        },
    )
    .optional()
}

/// Extends every lease `owner` holds to `lease_until`; how many.
pub(crate) fn renew_leases(
    c: &Connection,
    owner: &str,
    lease_until: i64,
) -> crate::sql::Result<usize> {
    c.execute(
        "UPDATE jobs SET lease_until = ?2 WHERE state = 'running' AND lease_owner = ?1",
        params![owner, lease_until],
    )
}

/// The row of `job` while its claimer still holds it.
const HELD: &str = "id = ?1 AND state = 'running' AND lease_owner = ?2";

/// Each of these returns whether the job was still held: `false` means its lease ran
/// out and another instance took it over, and nothing was written.
pub(crate) fn mark_done(c: &Connection, job: &Job, time: i64) -> crate::sql::Result<bool> {
    let sql = format!(
        "UPDATE jobs SET state = 'done', last_error = NULL, lease_until = NULL, updated = ?3
         WHERE {HELD}"
    );
    Ok(c.execute(&sql, params![job.id, job.lease_owner, time])? == 1)
}

pub(crate) fn mark_failed(
    c: &Connection,
    job: &Job,
    error: &str,
    time: i64,
) -> crate::sql::Result<bool> {
    let sql = format!(
        "UPDATE jobs SET state = 'failed', last_error = ?3, lease_until = NULL, updated = ?4
         WHERE {HELD}"
    );
    Ok(c.execute(&sql, params![job.id, job.lease_owner, error, time])? == 1)
}

/// Back in the queue, due at `run_after`.
pub(crate) fn requeue(
    c: &Connection,
    job: &Job,
    error: &str,
    run_after: i64,
    time: i64,
) -> crate::sql::Result<bool> {
    let sql = format!(
        "UPDATE jobs SET state = 'queued', last_error = ?3, run_after = ?4, lease_owner = NULL,
                lease_until = NULL, updated = ?5
         WHERE {HELD}"
    );
    Ok(c.execute(
        &sql,
        params![job.id, job.lease_owner, error, run_after, time],
    )? == 1)
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

pub fn progress(c: &Connection, user_id: i64) -> crate::sql::Result<Progress> {
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
        .collect::<crate::sql::Result<Vec<_>>>()?;
    Ok(Progress {
        total,
        by_kind,
        failed,
    })
}

/// Jobs that were claimed more than once (their instance died or their lease ran out
/// and another took them over, or they failed and were tried again) and are done now.
pub fn done_after_more_than_one_claim(c: &Connection) -> crate::sql::Result<i64> {
    c.query_row(
        "SELECT COUNT(*) FROM jobs WHERE state = 'done' AND attempts > 1",
        [],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_with_one_job() -> (Connection, i64) {
        let c = Connection::open_in_memory().unwrap();
        crate::repo::schema::migrate(&c).unwrap();
        c.execute(
            "INSERT INTO users (username, password_hash, created) VALUES ('ann', 'x', 0)",
            [],
        )
        .unwrap();
        let id = insert(&c, 1, None, "cluster", 3, 100).unwrap();
        (c, id)
    }

    fn state(c: &Connection, id: i64) -> String {
        c.query_row("SELECT state FROM jobs WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
    }

    /// Instance a claims the job and dies; b takes it over once a's lease has run out;
    /// a's late outcome writes nothing, b's is recorded, once.
    #[test]
    fn a_dead_instances_job_is_taken_over_after_its_lease_and_recorded_done_once() {
        let (c, id) = queue_with_one_job();
        let a = claim(&c, 100, "a", 160).unwrap().expect("due");
        assert_eq!((a.id, a.attempts, a.lease_owner.as_str()), (id, 1, "a"));
        assert!(claim(&c, 150, "b", 210).unwrap().is_none(), "leased to a");
        assert_eq!(renew_leases(&c, "a", 220).unwrap(), 1);
        assert!(claim(&c, 200, "b", 260).unwrap().is_none(), "a renewed it");
        // a stops renewing (killed); past its lease b claims the job
        let b = claim(&c, 221, "b", 281).unwrap().expect("lease ran out");
        assert_eq!((b.id, b.attempts, b.lease_owner.as_str()), (id, 2, "b"));
        assert!(!mark_done(&c, &a, 230).unwrap(), "a no longer holds it");
        assert!(!requeue(&c, &a, "late", 240, 230).unwrap());
        assert_eq!(state(&c, id), "running");
        assert!(mark_done(&c, &b, 231).unwrap());
        assert!(!mark_done(&c, &b, 232).unwrap(), "done once");
        assert_eq!(state(&c, id), "done");
        assert!(claim(&c, 1000, "c", 1060).unwrap().is_none());
    }

    #[test]
    fn start_up_recovery_leaves_a_living_instances_jobs_alone() {
        let (c, id) = queue_with_one_job();
        claim(&c, 100, "a", 160).unwrap().expect("due");
        assert_eq!(recover(&c, 150).unwrap(), 0, "a's lease holds");
        assert_eq!(state(&c, id), "running");
        assert_eq!(recover(&c, 161).unwrap(), 1, "a's lease ran out");
        assert_eq!(state(&c, id), "queued");
        // a job left running by a build before leases has none: recovered at once
        let b = claim(&c, 170, "b", 230).unwrap().expect("queued again");
        c.execute("UPDATE jobs SET lease_until = NULL WHERE id = ?1", [b.id])
            .unwrap();
        assert_eq!(recover(&c, 171).unwrap(), 1);
    }
}
