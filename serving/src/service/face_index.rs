//! The people service's face index: for each user, an HNSW graph
//! (`album_faces::hnsw`) of the descriptors of the faces the cluster job has placed,
//! kept in memory so placing a face costs a search of about log(n) steps instead of
//! reading and measuring every face of the library.
//!
//! The database stays the truth. The graph holds only descriptors, which never change;
//! the person of each face a search finds is read from the database in the job's
//! transaction, and a face deleted since is skipped. Before each job the index compares
//! the user's placed-faces version (a counter the database's triggers move whenever a
//! face is placed, unplaced or deleted; migration 0009) with the one it last saw and,
//! when another worker or service instance changed the faces meanwhile, catches up from
//! their ids; after its own job it takes the version its own changes left. It is built on a user's first cluster job after start-up, outside the write
//! transaction; a job that fails drops it, to be built again from the database.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::sql::Connection;
use album_faces::hnsw::Hnsw;

use crate::repo::faces as repo;

/// Every user's index, each behind its own lock (one user's cluster jobs run one at a
/// time anyway: they take the database's write lock).
#[derive(Default)]
pub(crate) struct FaceIndexes {
    users: Mutex<HashMap<i64, Arc<Mutex<UserFaces>>>>,
}

/// One user's placed faces, searchable.
#[derive(Default)]
pub(crate) struct UserFaces {
    pub graph: Hnsw,
    built: bool,
    /// The placed-faces version the graph reflects.
    version: i64,
}

impl FaceIndexes {
    /// The user's index, locked (empty and not built the first time).
    pub fn lock(&self, user_id: i64) -> Locked {
        let user = self
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(user_id)
            .or_default()
            .clone();
        Locked { user }
    }
}

/// A user's index, held for one cluster job.
pub(crate) struct Locked {
    user: Arc<Mutex<UserFaces>>,
}

impl Locked {
    pub fn faces(&self) -> MutexGuard<'_, UserFaces> {
        // a panic mid-job leaves a graph that may hold uncommitted faces: rebuild it
        self.user.lock().unwrap_or_else(|poison| {
            let mut faces = poison.into_inner();
            faces.forget();
            faces
        })
    }
}

impl UserFaces {
    pub fn is_built(&self) -> bool {
        self.built
    }

    /// Drops the graph; the next job builds it again from the database.
    pub fn forget(&mut self) {
        *self = UserFaces::default();
    }

    /// Builds the graph from every placed face of the user (the heavy part: run it
    /// outside the write transaction).
    pub fn build(&mut self, c: &Connection, user_id: i64) -> crate::sql::Result<()> {
        self.forget();
        let version = repo::placed_faces_version(c, user_id)?;
        let ids = repo::placed_ids(c, user_id)?;
        for (id, descriptor) in repo::descriptors(c, &ids)? {
            self.graph.insert(id as usize, descriptor);
        }
        // A change between the two reads leaves `version` behind: the next job's
        // catch-up compares ids and finds it.
        self.version = version;
        self.built = true;
        Ok(())
    }

    /// Brings the graph level with the database: faces placed elsewhere are added,
    /// deleted ones removed. One read when nothing changed. Call it inside the job's
    /// write transaction.
    pub fn catch_up(&mut self, c: &Connection, user_id: i64) -> crate::sql::Result<()> {
        let version = repo::placed_faces_version(c, user_id)?;
        if version == self.version {
            return Ok(());
        }
        let placed = repo::placed_ids(c, user_id)?;
        let placed_set: HashSet<i64> = placed.iter().copied().collect();
        let missing: Vec<i64> = placed
            .iter()
            .copied()
            .filter(|&id| !self.graph.contains(id as usize))
            .collect();
        let gone: Vec<i64> = self.ids().filter(|id| !placed_set.contains(id)).collect();
        for id in gone {
            self.remove(id);
        }
        for (id, descriptor) in repo::descriptors(c, &missing)? {
            self.graph.insert(id as usize, descriptor);
        }
        self.version = version;
        Ok(())
    }

    /// Takes the version the job's own changes left (inside its write transaction,
    /// after its last change: every change since the catch-up is in the graph).
    pub fn settle(&mut self, c: &Connection, user_id: i64) -> crate::sql::Result<()> {
        self.version = repo::placed_faces_version(c, user_id)?;
        Ok(())
    }

    pub fn insert(&mut self, id: i64, descriptor: album_faces::embedder::Descriptor) {
        self.graph.insert(id as usize, descriptor);
    }

    pub fn remove(&mut self, id: i64) {
        self.graph.remove(id as usize);
    }

    fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.graph.ids().map(|id| id as i64)
    }
}
