//! The SQL layer on whichever engine the suite runs on: SQLite by default, Postgres when
//! `$ALBUM_TEST_DATABASE` names a server (scripts/test-scale-out.sh). The repositories
//! count on these: values come back as they went in, aggregates read as numbers, write
//! transactions take turns, and a job is never claimed twice.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use album_serving::db::{DatabaseLocation, Db};
use album_serving::repo::jobs;
use album_serving::sql::{Connection, Dialect, OptionalExtension, Value, params_from_iter};

/// A migrated album database of the suite's engine, and the folder a SQLite one lives in.
fn database() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let location = common::test_database()
        .unwrap_or_else(|| DatabaseLocation::Sqlite(dir.path().join("album.db")));
    let db = Db::open_at(&location, 8).unwrap();
    (dir, db)
}

fn user(c: &Connection, name: &str) -> i64 {
    c.query_row(
        "INSERT INTO users (username, password_hash, created) VALUES (?1, 'x', 0) RETURNING id",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn values_come_back_as_they_went_in() {
    let (_dir, db) = database();
    let c = db.connection().unwrap();
    let id = user(&c, "ann");
    let descriptor: Vec<u8> = (0..=255).collect();
    c.execute(
        "INSERT INTO photos (user_id, sha256, kind, name, mime, bytes, width, height,
             latitude, taken_at, uploaded)
         VALUES (?1, ?2, 'photo', ?3, 'image/jpeg', ?4, 1, 1, ?5, NULL, ?6)",
        params_from_iter([
            Value::Integer(id),
            Value::Text("ab".repeat(32)),
            Value::Text("Zoë's ?1 photo.jpg".into()),
            Value::Integer(i64::from(u32::MAX) * 4),
            Value::Real(-33.868_820_123_456_7),
            Value::Integer(1_700_000_000),
        ]),
    )
    .unwrap();
    c.execute(
        "INSERT INTO faces (user_id, photo_id, score, x, y, w, h, descriptor)
         VALUES (?1, 1, 0.5, 1, 2, 3, 4, ?2)",
        (id, descriptor.clone()),
    )
    .unwrap();
    let (name, bytes, latitude, taken): (String, i64, f64, Option<String>) = c
        .query_row(
            "SELECT name, bytes, latitude, taken_at FROM photos WHERE user_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(name, "Zoë's ?1 photo.jpg");
    assert_eq!(bytes, i64::from(u32::MAX) * 4);
    assert_eq!(latitude, -33.868_820_123_456_7);
    assert_eq!(taken, None);
    let stored: Vec<u8> = c
        .query_row("SELECT descriptor FROM faces", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, descriptor);
}

#[test]
fn aggregates_and_comparisons_read_as_numbers() {
    let (_dir, db) = database();
    let c = db.connection().unwrap();
    let id = user(&c, "ann");
    for (n, bytes) in [(1, 10), (2, 20), (3, 31)] {
        c.execute(
            "INSERT INTO photos (user_id, sha256, kind, name, mime, bytes, width, height,
                 uploaded)
             VALUES (?1, ?2, 'photo', 'p.jpg', 'image/jpeg', ?3, 1, 1, 0)",
            params_from_iter([
                Value::Integer(id),
                Value::Text(format!("{n:064}")),
                Value::Integer(bytes),
            ]),
        )
        .unwrap();
    }
    // Postgres' SUM and AVG of integers are `numeric`, its comparisons `boolean`.
    let (sum, average, exists, count): (i64, f64, bool, i64) = c
        .query_row(
            "SELECT SUM(bytes), AVG(bytes), EXISTS (SELECT 1 FROM photos WHERE bytes > 30),
                    COUNT(*)
             FROM photos WHERE user_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((sum, count), (61, 3));
    assert!((average - 61.0 / 3.0).abs() < 1e-9, "{average}");
    assert!(exists);
    let none: Option<i64> = c
        .query_row("SELECT id FROM photos WHERE id = ?1", [999], |r| r.get(0))
        .optional()
        .unwrap();
    assert_eq!(none, None);
}

/// Each write transaction holds the engine's write lock from its start: a second one
/// begins only once the first has committed, across connections (on Postgres, across
/// every instance sharing the database).
#[test]
fn write_transactions_take_turns() {
    let (_dir, db) = database();
    let barrier = Arc::new(Barrier::new(2));
    let first = {
        let (db, barrier) = (db.clone(), barrier.clone());
        std::thread::spawn(move || {
            let c = db.connection().unwrap();
            let t = c.write_transaction().unwrap();
            barrier.wait();
            std::thread::sleep(Duration::from_millis(400));
            t.execute(
                "INSERT INTO users (username, password_hash, created) VALUES ('a', 'x', 0)",
                [],
            )
            .unwrap();
            t.commit().unwrap();
        })
    };
    barrier.wait();
    let c = db.connection().unwrap();
    let started = Instant::now();
    let t = c.write_transaction().unwrap();
    let waited = started.elapsed();
    let users: i64 = t
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    t.commit().unwrap();
    first.join().unwrap();
    assert!(
        waited >= Duration::from_millis(200),
        "began after {waited:?}"
    );
    assert_eq!(users, 1, "the second transaction saw the first one's row");
}

/// Eight workers claiming from one queue at once: every job is claimed exactly once.
#[test]
fn concurrent_claims_never_take_a_job_twice() {
    let (_dir, db) = database();
    let jobs_made = 60;
    {
        let c = db.connection().unwrap();
        let id = user(&c, "ann");
        for _ in 0..jobs_made {
            jobs::insert(&c, id, None, "cluster", 3, 0).unwrap();
        }
    }
    let claimed: Vec<i64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                let db = db.clone();
                scope.spawn(move || {
                    let c = db.connection().unwrap();
                    let owner = format!("worker-{worker}");
                    let mut mine = Vec::new();
                    let mut empty = 0;
                    // A claim that lost a race finds nothing and asks again.
                    while empty < 5 {
                        match jobs::claim(&c, 10, &owner, 100).unwrap() {
                            Some(job) => mine.push(job.id),
                            None => empty += 1,
                        }
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let mut sorted = claimed.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), claimed.len(), "a job was claimed twice");
    assert_eq!(sorted.len(), jobs_made);
}

#[test]
fn the_dialect_is_the_engines() {
    let (_dir, db) = database();
    let expected = match common::test_database() {
        Some(_) => Dialect::Postgres,
        None => Dialect::Sqlite,
    };
    assert_eq!(db.dialect(), expected);
    assert_eq!(db.connection().unwrap().dialect(), expected);
}
