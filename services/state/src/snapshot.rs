//! What every statement reads from the store (accounts, projects, the
//! opt-out register), read once per change of the store instead of once
//! per statement.
//!
//! A [`Snapshot`] is taken in one read transaction. [`StateStore::snapshot`]
//! keeps the last one and answers it again while the store's change mark is
//! unchanged and it is younger than [`MAX_SNAPSHOT_AGE`]. The mark is the
//! change counter: for PostgreSQL read with one query, for the embedded
//! store from a small file each committed change rewrites (reading it takes
//! neither the store's lock nor its file). The age bound covers a writer
//! that died between its commit and the file's update.
//!
//! [`StateStore::snapshot`]: crate::StateStore::snapshot

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{OptOutEntry, Project, ReferenceTable, User};

/// The oldest snapshot answered again without reading the store.
pub const MAX_SNAPSHOT_AGE: Duration = Duration::from_secs(1);

/// Accounts, projects and opt-outs as of one committed change.
#[derive(Debug)]
pub struct Snapshot {
    version: u64,
    users: BTreeMap<String, User>,
    projects: Vec<Project>,
    opt_outs: Arc<[OptOutEntry]>,
    references: Vec<ReferenceTable>,
}

impl Snapshot {
    pub(crate) fn new(
        version: u64,
        users: Vec<User>,
        projects: Vec<Project>,
        opt_outs: Vec<OptOutEntry>,
        references: Vec<ReferenceTable>,
    ) -> Snapshot {
        Snapshot {
            version,
            users: users
                .into_iter()
                .map(|user| (user.name.clone(), user))
                .collect(),
            projects,
            opt_outs: opt_outs.into(),
            references,
        }
    }

    /// The change counter the snapshot was read at.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn projects(&self) -> &[Project] {
        &self.projects
    }

    /// The projects `user` is a member of, whatever their status.
    pub fn projects_of(&self, user: &str) -> Vec<Project> {
        self.projects
            .iter()
            .filter(|project| project.members.iter().any(|member| member == user))
            .cloned()
            .collect()
    }

    /// The reference tables `project` may read, by name.
    pub fn references_of(&self, project: &str) -> Vec<&ReferenceTable> {
        self.references
            .iter()
            .filter(|table| table.project == project && table.available)
            .collect()
    }

    /// The opt-out register.
    pub fn opt_outs(&self) -> &Arc<[OptOutEntry]> {
        &self.opt_outs
    }
}

/// The last snapshot and the change mark seen before it was read.
#[derive(Debug)]
pub(crate) struct Cached {
    mark: Option<u64>,
    read_at: Instant,
    snapshot: Arc<Snapshot>,
}

impl Cached {
    pub(crate) fn new(mark: Option<u64>, snapshot: Arc<Snapshot>) -> Cached {
        Cached {
            mark,
            read_at: Instant::now(),
            snapshot,
        }
    }

    /// The snapshot, if it is still current for `mark`.
    pub(crate) fn current(&self, mark: Option<u64>) -> Option<Arc<Snapshot>> {
        (mark.is_some() && mark == self.mark && self.read_at.elapsed() < MAX_SNAPSHOT_AGE)
            .then(|| Arc::clone(&self.snapshot))
    }
}
