//! The redb-backed store.

use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StateError;
use crate::model::{OptOutEntry, Project, ProjectStatus, Role, User};

const USERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("users");
const PROJECTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("projects");
const OPT_OUTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("opt_outs");
const APPLICATIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("applications");
const OUTPUT_RELEASES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("output_releases");
/// Counters: the change counter and the id sequences.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const VERSION_KEY: &str = "version";

/// Records other services keep in the store as JSON documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// Data access applications and their review (enclave-review).
    Applications,
    /// Requests to release an output for publication (enclave-review).
    OutputReleases,
}

impl Collection {
    fn table(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Collection::Applications => APPLICATIONS,
            Collection::OutputReleases => OUTPUT_RELEASES,
        }
    }

    fn sequence_key(self) -> &'static str {
        match self {
            Collection::Applications => "sequence:applications",
            Collection::OutputReleases => "sequence:output_releases",
        }
    }
}

/// One change of an atomic [`StateStore::write`].
#[derive(Debug, Clone)]
pub enum Write {
    /// Insert or replace a document.
    Record {
        collection: Collection,
        key: String,
        json: Vec<u8>,
    },
    /// Insert or replace a project (validated, members must exist).
    Project(Project),
}

impl Write {
    pub fn record<T: Serialize>(
        collection: Collection,
        key: impl Into<String>,
        record: &T,
    ) -> Result<Write, StateError> {
        Ok(Write::Record {
            collection,
            key: key.into(),
            json: serde_json::to_vec(record)?,
        })
    }
}

/// The file inside the state directory.
const STATE_FILE: &str = "state.redb";

/// How long an operation waits for another process (an admin command while
/// the server runs) to release the store file.
const LOCK_WAIT: Duration = Duration::from_secs(10);
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// Users, projects and opt-outs. Cheap to share behind an `Arc`.
///
/// redb locks its file for as long as it is open, so the store opens it for
/// each operation only: the server and admin commands (`enclave optout add`,
/// `enclave project close`) take turns instead of locking each other out,
/// and every read sees the latest committed change.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    in_process: Mutex<()>,
}

impl StateStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<StateStore, StateError> {
        std::fs::create_dir_all(dir).map_err(|error| StateError::Storage(error.to_string()))?;
        let store = StateStore {
            path: dir.join(STATE_FILE),
            in_process: Mutex::new(()),
        };
        store.with_db(|db| {
            let txn = db.begin_write()?;
            for table in [USERS, PROJECTS, OPT_OUTS, APPLICATIONS, OUTPUT_RELEASES] {
                txn.open_table(table)?;
            }
            txn.open_table(META)?;
            txn.commit()?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Runs `operation` on the open database, waiting for other holders.
    fn with_db<R>(
        &self,
        operation: impl FnOnce(&Database) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        let _turn = self
            .in_process
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let started = Instant::now();
        let db = loop {
            match Database::create(&self.path) {
                Ok(db) => break db,
                Err(DatabaseError::DatabaseAlreadyOpen) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(LOCK_RETRY);
                }
                Err(DatabaseError::DatabaseAlreadyOpen) => return Err(StateError::Busy),
                Err(error) => return Err(error.into()),
            }
        };
        operation(&db)
    }

    /// Runs `change` in one write transaction that also advances the change
    /// counter, so readers caching derived state (the access policy) notice.
    fn write_txn<R>(
        &self,
        change: impl FnOnce(&WriteTransaction) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        self.with_db(|db| {
            let txn = db.begin_write()?;
            let result = change(&txn)?;
            {
                let mut meta = txn.open_table(META)?;
                let version = meta.get(VERSION_KEY)?.map_or(0, |v| v.value());
                meta.insert(VERSION_KEY, version + 1)?;
            }
            txn.commit()?;
            Ok(result)
        })
    }

    /// A number that changes with every committed change.
    pub fn version(&self) -> Result<u64, StateError> {
        self.with_db(|db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            Ok(meta.get(VERSION_KEY)?.map_or(0, |v| v.value()))
        })
    }

    pub fn add_user(&self, name: &str, role: Role, password: &str) -> Result<User, StateError> {
        validate_user_name(name)?;
        if password.chars().count() < 8 {
            return Err(StateError::invalid("password", "use at least 8 characters"));
        }
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let password_hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|_| StateError::PasswordHash)?
            .to_string();
        let user = User {
            name: name.to_string(),
            role,
            password_hash,
            disabled: false,
        };
        self.insert_new(USERS, name, &user, || {
            StateError::UserExists(name.to_string())
        })?;
        tracing::info!(user = name, %role, "user added");
        Ok(user)
    }

    pub fn user(&self, name: &str) -> Result<Option<User>, StateError> {
        self.get(USERS, name)
    }

    pub fn users(&self) -> Result<Vec<User>, StateError> {
        self.all(USERS)
    }

    /// Suspends or restores an account; a suspended account cannot log in
    /// and its tokens stop working.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<User, StateError> {
        let mut user = self
            .user(name)?
            .ok_or_else(|| StateError::NoUser(name.into()))?;
        user.disabled = disabled;
        self.put(USERS, name, &user)?;
        tracing::info!(user = name, disabled, "account status changed");
        Ok(user)
    }

    /// The user if the name exists, is enabled and the password matches.
    /// Unknown names still pay for one hash, so timing does not tell which.
    pub fn authenticate(&self, name: &str, password: &str) -> Result<Option<User>, StateError> {
        let user = self.user(name)?;
        let stored = user
            .as_ref()
            .map_or(DUMMY_HASH.as_str(), |user| user.password_hash.as_str());
        let parsed = PasswordHash::new(stored).map_err(|_| StateError::PasswordHash)?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(user.filter(|user| matches && !user.disabled))
    }

    pub fn add_project(&self, project: &Project) -> Result<(), StateError> {
        self.check_project(project)?;
        self.insert_new(PROJECTS, &project.id, project, || {
            StateError::ProjectExists(project.id.clone())
        })?;
        tracing::info!(project = project.id, "project added");
        Ok(())
    }

    fn check_project(&self, project: &Project) -> Result<(), StateError> {
        project.validate()?;
        for member in &project.members {
            if self.user(member)?.is_none() {
                return Err(StateError::NoUser(member.clone()));
            }
        }
        Ok(())
    }

    pub fn project(&self, id: &str) -> Result<Option<Project>, StateError> {
        self.get(PROJECTS, id)
    }

    pub fn projects(&self) -> Result<Vec<Project>, StateError> {
        self.all(PROJECTS)
    }

    /// The active projects `user` is a member of.
    pub fn projects_of(&self, user: &str) -> Result<Vec<Project>, StateError> {
        Ok(self
            .projects()?
            .into_iter()
            .filter(|project| project.members.iter().any(|member| member == user))
            .collect())
    }

    /// Marks a project closed; its workspace is deleted by the query service.
    pub fn close_project(&self, id: &str) -> Result<Project, StateError> {
        let mut project = self
            .project(id)?
            .ok_or_else(|| StateError::NoProject(id.into()))?;
        project.status = ProjectStatus::Closed;
        self.put(PROJECTS, id, &project)?;
        tracing::info!(project = id, "project closed");
        Ok(project)
    }

    /// Records opt-outs; returns how many were new.
    pub fn add_opt_outs(&self, entries: &[OptOutEntry]) -> Result<usize, StateError> {
        self.write_txn(|txn| {
            let mut table = txn.open_table(OPT_OUTS)?;
            let mut added = 0;
            for entry in entries {
                if table.get(entry.lookup.as_str())?.is_none() {
                    table.insert(entry.lookup.as_str(), serde_json::to_vec(entry)?.as_slice())?;
                    added += 1;
                }
            }
            Ok(added)
        })
    }

    pub fn opt_outs(&self) -> Result<Vec<OptOutEntry>, StateError> {
        self.all(OPT_OUTS)
    }

    /// One document of `collection`.
    pub fn record<T: DeserializeOwned>(
        &self,
        collection: Collection,
        key: &str,
    ) -> Result<Option<T>, StateError> {
        self.get(collection.table(), key)
    }

    /// Every document of `collection`, in key order.
    pub fn records<T: DeserializeOwned>(
        &self,
        collection: Collection,
    ) -> Result<Vec<T>, StateError> {
        self.all(collection.table())
    }

    /// The next number of `collection`'s id sequence (1, 2, …).
    pub fn next_id(&self, collection: Collection) -> Result<u64, StateError> {
        self.write_txn(|txn| {
            let mut meta = txn.open_table(META)?;
            let next = meta
                .get(collection.sequence_key())?
                .map_or(0, |v| v.value())
                + 1;
            meta.insert(collection.sequence_key(), next)?;
            Ok(next)
        })
    }

    /// Applies `writes` in one transaction: all or nothing.
    pub fn write(&self, writes: &[Write]) -> Result<(), StateError> {
        for write in writes {
            if let Write::Project(project) = write {
                self.check_project(project)?;
            }
        }
        self.write_txn(|txn| {
            for write in writes {
                match write {
                    Write::Record {
                        collection,
                        key,
                        json,
                    } => {
                        txn.open_table(collection.table())?
                            .insert(key.as_str(), json.as_slice())?;
                    }
                    Write::Project(project) => {
                        txn.open_table(PROJECTS)?
                            .insert(project.id.as_str(), serde_json::to_vec(project)?.as_slice())?;
                    }
                }
            }
            Ok(())
        })
    }

    fn get<T: DeserializeOwned>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
        key: &str,
    ) -> Result<Option<T>, StateError> {
        self.with_db(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(table)?;
            let value = table.get(key)?;
            Ok(value
                .map(|v| serde_json::from_slice(v.value()))
                .transpose()?)
        })
    }

    fn all<T: DeserializeOwned>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
    ) -> Result<Vec<T>, StateError> {
        self.with_db(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(table)?;
            let mut records = Vec::new();
            for entry in table.iter()? {
                let (_, value) = entry?;
                records.push(serde_json::from_slice(value.value())?);
            }
            Ok(records)
        })
    }

    fn put<T: Serialize>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
        key: &str,
        record: &T,
    ) -> Result<(), StateError> {
        self.write_txn(|txn| {
            txn.open_table(table)?
                .insert(key, serde_json::to_vec(record)?.as_slice())?;
            Ok(())
        })
    }

    fn insert_new<T: Serialize>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
        key: &str,
        record: &T,
        exists: impl FnOnce() -> StateError,
    ) -> Result<(), StateError> {
        self.write_txn(|txn| {
            let mut table = txn.open_table(table)?;
            if table.get(key)?.is_some() {
                return Err(exists());
            }
            table.insert(key, serde_json::to_vec(record)?.as_slice())?;
            Ok(())
        })
    }
}

/// An argon2id hash of a fixed string, verified against when the user does
/// not exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").expect("static salt is valid");
    Argon2::default()
        .hash_password(b"no such user", &salt)
        .expect("static input hashes")
        .to_string()
});

fn validate_user_name(name: &str) -> Result<(), StateError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(StateError::invalid(
            "name",
            "use 1-64 characters of letters, digits, '.', '-' and '_'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Grant, Period, Rounding};
    use enclave_core::date::CivilDate;

    fn store() -> (tempfile::TempDir, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn project(id: &str, member: &str) -> Project {
        Project {
            id: id.into(),
            title: "t".into(),
            members: vec![member.into()],
            grants: vec!["ndb.receipts:sex,person_id".parse().unwrap()],
            period: "2023-04..2024-03".parse().unwrap(),
            valid_until: "2030-01-01".into(),
            k: 10,
            rounding: Rounding::To10,
            workspace_quota_bytes: 1 << 20,
            status: ProjectStatus::Active,
        }
    }

    #[test]
    fn passwords_are_hashed_and_checked() {
        let (_dir, store) = store();
        let user = store
            .add_user("alice", Role::Researcher, "correct horse")
            .unwrap();
        assert!(user.password_hash.starts_with("$argon2id$"));
        assert!(!user.password_hash.contains("correct horse"));
        assert!(
            store
                .authenticate("alice", "correct horse")
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .authenticate("alice", "wrong horse!")
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .authenticate("nobody", "correct horse")
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            store.add_user("alice", Role::Researcher, "another one"),
            Err(StateError::UserExists(_))
        ));
    }

    #[test]
    fn projects_cannot_lower_k_and_need_known_members() {
        let (_dir, store) = store();
        store
            .add_user("alice", Role::Researcher, "correct horse")
            .unwrap();
        let mut low_k = project("p1", "alice");
        low_k.k = 5;
        assert!(matches!(
            store.add_project(&low_k),
            Err(StateError::Invalid { field: "k", .. })
        ));
        assert!(matches!(
            store.add_project(&project("p1", "bob")),
            Err(StateError::NoUser(_))
        ));
        for reserved in [crate::AUDIT_SCOPE, crate::PUBLIC_STATISTICS_SCOPE] {
            assert!(matches!(
                store.add_project(&project(reserved, "alice")),
                Err(StateError::Invalid { field: "id", .. })
            ));
        }
        assert!(
            store.projects().unwrap().is_empty(),
            "a refused change writes nothing"
        );
        store.add_project(&project("p1", "alice")).unwrap();
        assert_eq!(store.projects_of("alice").unwrap().len(), 1);
        assert_eq!(
            store.close_project("p1").unwrap().status,
            ProjectStatus::Closed
        );
    }

    #[test]
    fn grants_periods_and_dates_parse() {
        let grant: Grant = "ndb.receipts:sex, age_band".parse().unwrap();
        assert!(grant.allows_column("age_band") && !grant.allows_column("person_id"));
        assert!("ndb".parse::<Grant>().is_err());
        assert!("2024-04..2023-04".parse::<Period>().is_err());
        assert!("2024-4..2024-05".parse::<Period>().is_err());
        let mut p = project("p", "a");
        assert!(p.is_current(CivilDate::new(2030, 1, 1).unwrap()));
        assert!(!p.is_current(CivilDate::new(2030, 1, 2).unwrap()));
        p.valid_until = "2030-02-30".into();
        assert!(p.validate().is_err());
    }

    #[test]
    fn a_second_store_on_the_same_directory_takes_turns() {
        let (dir, store) = store();
        let other = StateStore::open(dir.path()).unwrap();
        other
            .add_user("alice", Role::Researcher, "correct horse")
            .unwrap();
        assert!(store.user("alice").unwrap().is_some());
    }

    #[test]
    fn a_batch_is_all_or_nothing_and_moves_the_version() {
        let (_dir, store) = store();
        store
            .add_user("alice", Role::Researcher, "correct horse")
            .unwrap();
        let before = store.version().unwrap();
        let document = Write::record(Collection::Applications, "1", &"draft").unwrap();
        let refused = store.write(&[document.clone(), Write::Project(project("p1", "bob"))]);
        assert!(matches!(refused, Err(StateError::NoUser(_))));
        assert!(
            store
                .records::<String>(Collection::Applications)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.version().unwrap(), before, "nothing was written");
        store
            .write(&[document, Write::Project(project("p1", "alice"))])
            .unwrap();
        assert!(store.version().unwrap() > before);
        assert_eq!(
            store
                .record::<String>(Collection::Applications, "1")
                .unwrap(),
            Some("draft".to_string())
        );
        assert_eq!(store.next_id(Collection::Applications).unwrap(), 1);
        assert_eq!(store.next_id(Collection::Applications).unwrap(), 2);
        assert_eq!(store.next_id(Collection::OutputReleases).unwrap(), 1);
    }

    #[test]
    fn opt_outs_are_deduplicated() {
        let (_dir, store) = store();
        let entry = OptOutEntry {
            lookup: "ab".repeat(32),
            recorded_on: "2026-11-24".into(),
        };
        assert_eq!(
            store.add_opt_outs(&[entry.clone(), entry.clone()]).unwrap(),
            1
        );
        assert_eq!(store.add_opt_outs(&[entry]).unwrap(), 0);
        assert_eq!(store.opt_outs().unwrap().len(), 1);
    }
}
