//! The store's operations, the same over either database.

use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StateError;
use crate::backend::{Backend, Reader, Table, VERSION_COUNTER, Writer};
use crate::embedded::Embedded;
use crate::model::{OptOutEntry, Project, ProjectStatus, ReferenceTable, Role, User};
use crate::postgresql::{Postgres, StateDatabase};
use crate::snapshot::{Cached, Snapshot};

/// Records other services keep in the store as JSON documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// Data access applications and their review (enclave-review).
    Applications,
    /// Requests to release an output for publication (enclave-review).
    OutputReleases,
    /// Tables researchers bring in, and their review (enclave-review).
    BringIns,
}

impl Collection {
    fn table(self) -> Table {
        match self {
            Collection::Applications => Table::Applications,
            Collection::OutputReleases => Table::OutputReleases,
            Collection::BringIns => Table::BringIns,
        }
    }

    fn sequence_counter(self) -> &'static str {
        match self {
            Collection::Applications => "sequence:applications",
            Collection::OutputReleases => "sequence:output_releases",
            Collection::BringIns => "sequence:bring_ins",
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
    /// Insert or replace a project's reference table.
    Reference(ReferenceTable),
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

/// Users, projects and opt-outs. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct StateStore {
    backend: Backend,
    cached: Mutex<Option<Cached>>,
}

impl StateStore {
    /// Opens (creating if needed) the embedded store in `dir`.
    pub fn open(dir: &Path) -> Result<StateStore, StateError> {
        Ok(StateStore::over(Backend::Embedded(Embedded::open(dir)?)))
    }

    /// Connects to a PostgreSQL state database, creating its tables if needed.
    pub fn connect(database: &StateDatabase) -> Result<StateStore, StateError> {
        Ok(StateStore::over(Backend::Postgres(Box::new(
            Postgres::open(database)?,
        ))))
    }

    fn over(backend: Backend) -> StateStore {
        StateStore {
            backend,
            cached: Mutex::new(None),
        }
    }

    /// Accounts, projects and opt-outs as of the latest committed change;
    /// reads the store only when it changed (see [`Snapshot`]).
    /// Checking the change mark does not block the caller's thread; reading
    /// a changed store runs on the blocking pool.
    pub async fn snapshot(self: &Arc<Self>) -> Result<Arc<Snapshot>, StateError> {
        let mark = self.backend.change_mark().await?;
        if let Some(snapshot) = self.cached().as_ref().and_then(|c| c.current(mark)) {
            return Ok(snapshot);
        }
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || store.read_snapshot(mark))
            .await
            .map_err(|error| StateError::Storage(error.to_string()))?
    }

    fn cached(&self) -> MutexGuard<'_, Option<Cached>> {
        self.cached.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads a snapshot, unless another caller read one for `mark` while
    /// this one waited (the lock is held while reading, so concurrent
    /// callers read once).
    fn read_snapshot(&self, mark: Option<u64>) -> Result<Arc<Snapshot>, StateError> {
        let mut cached = self.cached();
        if let Some(snapshot) = cached.as_ref().and_then(|c| c.current(mark)) {
            return Ok(snapshot);
        }
        let snapshot = Arc::new(self.read(|txn| {
            Ok(Snapshot::new(
                txn.counter(VERSION_COUNTER)?,
                documents(txn, Table::Users)?,
                documents(txn, Table::Projects)?,
                documents(txn, Table::OptOuts)?,
                documents(txn, Table::References)?,
            ))
        })?);
        *cached = Some(Cached::new(mark, Arc::clone(&snapshot)));
        Ok(snapshot)
    }

    fn read<R>(
        &self,
        operation: impl FnOnce(&mut dyn Reader) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        self.backend.read(operation)
    }

    /// Runs `change` in one write transaction that also advances the change
    /// counter, so readers caching derived state (the access policy) notice.
    fn write_txn<R>(
        &self,
        change: impl FnOnce(&mut dyn Writer) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        self.backend.write(|txn| {
            let result = change(txn)?;
            let version = txn.counter(VERSION_COUNTER)?;
            txn.set_counter(VERSION_COUNTER, version + 1)?;
            Ok(result)
        })
    }

    /// A number that changes with every committed change.
    pub fn version(&self) -> Result<u64, StateError> {
        self.read(|txn| txn.counter(VERSION_COUNTER))
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
        self.insert_new(Table::Users, name, &user, || {
            StateError::UserExists(name.to_string())
        })?;
        tracing::info!(user = name, %role, "user added");
        Ok(user)
    }

    pub fn user(&self, name: &str) -> Result<Option<User>, StateError> {
        self.get(Table::Users, name)
    }

    pub fn users(&self) -> Result<Vec<User>, StateError> {
        self.all(Table::Users)
    }

    /// Suspends or restores an account; a suspended account cannot log in
    /// and its tokens stop working.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<User, StateError> {
        let user = self.update(Table::Users, name, |user: &mut User| {
            user.disabled = disabled;
        })?;
        let user = user.ok_or_else(|| StateError::NoUser(name.into()))?;
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
        self.insert_new(Table::Projects, &project.id, project, || {
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
        self.get(Table::Projects, id)
    }

    pub fn projects(&self) -> Result<Vec<Project>, StateError> {
        self.all(Table::Projects)
    }

    /// Marks a project closed; its workspace is deleted by the query service.
    pub fn close_project(&self, id: &str) -> Result<Project, StateError> {
        let project = self.update(Table::Projects, id, |project: &mut Project| {
            project.status = ProjectStatus::Closed;
        })?;
        let project = project.ok_or_else(|| StateError::NoProject(id.into()))?;
        tracing::info!(project = id, "project closed");
        Ok(project)
    }

    /// Records opt-outs; returns how many were new.
    pub fn add_opt_outs(&self, entries: &[OptOutEntry]) -> Result<usize, StateError> {
        self.write_txn(|txn| {
            let mut added = 0;
            for entry in entries {
                if txn.get(Table::OptOuts, &entry.lookup)?.is_none() {
                    txn.put(Table::OptOuts, &entry.lookup, &serde_json::to_vec(entry)?)?;
                    added += 1;
                }
            }
            Ok(added)
        })
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
            let next = txn.counter(collection.sequence_counter())? + 1;
            txn.set_counter(collection.sequence_counter(), next)?;
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
                    } => txn.put(collection.table(), key, json)?,
                    Write::Project(project) => {
                        txn.put(Table::Projects, &project.id, &serde_json::to_vec(project)?)?;
                    }
                    Write::Reference(table) => {
                        txn.put(Table::References, &table.key(), &serde_json::to_vec(table)?)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// The service's secret `which`: `fresh` (hex), stored on first use, so
    /// every replica and every restart use the same one.
    pub fn secret(&self, which: Secret, fresh: &str) -> Result<String, StateError> {
        let name = which.key();
        if let Some(key) = self.get::<String>(Table::Ledger, name)? {
            return Ok(key);
        }
        self.backend.write(|txn| {
            if let Some(key) = txn.get(Table::Ledger, name)? {
                return Ok(serde_json::from_slice(&key)?);
            }
            txn.put(Table::Ledger, name, &serde_json::to_vec(fresh)?)?;
            Ok(fresh.to_string())
        })
    }

    /// Release-ledger batches numbered above `after`, in order.
    pub fn ledger_batches(&self, after: u64) -> Result<Vec<LedgerBatch>, StateError> {
        self.read(|txn| read_ledger(txn, after))
    }

    /// Runs `decide` on the batches above `after` and the number the next
    /// batch gets, and stores the batch it returns (if any) as that one, in one transaction that other
    /// writers wait for: decisions are taken one at a time over the whole
    /// ledger. It does not move [`StateStore::version`] (nothing cached
    /// from users and projects changes). Returns the new batch's number
    /// (or the last one's) and what `decide` returned.
    pub fn append_ledger<R>(
        &self,
        after: u64,
        decide: impl FnOnce(Vec<LedgerBatch>, u64) -> Result<(Option<Vec<u8>>, R), StateError>,
    ) -> Result<(u64, R), StateError> {
        self.backend.write(|txn| {
            let batches = read_ledger(txn, after)?;
            let last = txn.counter(LEDGER_COUNTER)?;
            let (batch, result) = decide(batches, last + 1)?;
            let Some(batch) = batch else {
                return Ok((last, result));
            };
            let number = last + 1;
            txn.put(Table::Ledger, &ledger_batch_key(number), &batch)?;
            txn.set_counter(LEDGER_COUNTER, number)?;
            Ok((number, result))
        })
    }

    fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>, StateError> {
        let document = self.read(|txn| txn.get(table, key))?;
        Ok(document
            .map(|document| serde_json::from_slice(&document))
            .transpose()?)
    }

    fn all<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<T>, StateError> {
        parse_all(&self.read(|txn| txn.all(table))?)
    }

    /// Changes the document under `key` in one transaction; `None` when
    /// there is none.
    fn update<T: Serialize + DeserializeOwned>(
        &self,
        table: Table,
        key: &str,
        change: impl FnOnce(&mut T),
    ) -> Result<Option<T>, StateError> {
        self.write_txn(|txn| {
            let Some(document) = txn.get(table, key)? else {
                return Ok(None);
            };
            let mut record: T = serde_json::from_slice(&document)?;
            change(&mut record);
            txn.put(table, key, &serde_json::to_vec(&record)?)?;
            Ok(Some(record))
        })
    }

    fn insert_new<T: Serialize>(
        &self,
        table: Table,
        key: &str,
        record: &T,
        exists: impl FnOnce() -> StateError,
    ) -> Result<(), StateError> {
        let document = serde_json::to_vec(record)?;
        self.write_txn(|txn| {
            if txn.get(table, key)?.is_some() {
                return Err(exists());
            }
            txn.put(table, key, &document)
        })
    }
}

/// Every document of `table`, parsed.
fn documents<T: DeserializeOwned>(
    txn: &mut dyn Reader,
    table: Table,
) -> Result<Vec<T>, StateError> {
    parse_all(&txn.all(table)?)
}

fn parse_all<T: DeserializeOwned>(documents: &[Vec<u8>]) -> Result<Vec<T>, StateError> {
    documents
        .iter()
        .map(|document| Ok(serde_json::from_slice(document)?))
        .collect()
}

/// One stored batch of the release ledger: a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerBatch {
    pub number: u64,
    pub json: Vec<u8>,
}

const LEDGER_COUNTER: &str = "ledger";
/// The secrets the service keeps in the state store (beside the release
/// ledger, in its table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// The release ledger's noise and reach draws.
    LedgerNoise,
    /// The keys of the projects' person ids.
    ProjectIds,
}

impl Secret {
    fn key(self) -> &'static str {
        match self {
            Secret::LedgerNoise => "key",
            Secret::ProjectIds => "project-ids-key",
        }
    }
}

fn ledger_batch_key(number: u64) -> String {
    format!("batch/{number:020}")
}

fn read_ledger(txn: &mut dyn Reader, after: u64) -> Result<Vec<LedgerBatch>, StateError> {
    let last = txn.counter(LEDGER_COUNTER)?;
    let mut batches = Vec::new();
    for number in after + 1..=last {
        let json = txn
            .get(Table::Ledger, &ledger_batch_key(number))?
            .ok_or_else(|| StateError::Storage(format!("release ledger batch {number} missing")))?;
        batches.push(LedgerBatch { number, json });
    }
    Ok(batches)
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

/// Longest user name, in bytes.
pub const MAX_USER_NAME_BYTES: usize = 64;

/// Whether `name` can name an account: 1-64 letters, digits, `.`, `-`, `_`.
pub fn is_valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_USER_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn validate_user_name(name: &str) -> Result<(), StateError> {
    if is_valid_user_name(name) {
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::model::{Grant, Period, Rounding};
    use enclave_core::date::CivilDate;

    /// A server for the PostgreSQL runs (`scripts/postgres-server.sh`
    /// prints one; `scripts/test.sh` sets it).
    const POSTGRES_SERVER: &str = "ENCLAVE_TEST_POSTGRES";

    /// Runs `test` against a new embedded store and, when a PostgreSQL
    /// server is given, against a new database on it. `test` gets a way to
    /// open more handles on the same store (another process, another replica).
    fn each_store(test: impl Fn(&(dyn Fn() -> StateStore + Sync))) {
        let dir = tempfile::tempdir().unwrap();
        test(&|| StateStore::open(dir.path()).unwrap());
        match std::env::var(POSTGRES_SERVER) {
            Ok(server) => {
                let database = new_database(&server);
                test(&|| StateStore::connect(&database).unwrap());
            }
            Err(_) => eprintln!("{POSTGRES_SERVER} is not set: PostgreSQL not tested"),
        }
    }

    fn new_database(server: &str) -> StateDatabase {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "state_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        runtime().block_on(async {
            let (admin, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
        });
        format!("{server}/{name}").parse().unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// `store`'s snapshot, taken as async callers take it.
    fn snapshot(store: &Arc<StateStore>) -> Arc<Snapshot> {
        runtime().block_on(store.snapshot()).unwrap()
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
            protection: Default::default(),
            fresh_value_budget: crate::DEFAULT_FRESH_VALUE_BUDGET,
            workspace_quota_bytes: 1 << 20,
            status: ProjectStatus::Active,
        }
    }

    #[test]
    fn passwords_are_hashed_and_checked() {
        each_store(|open| {
            let store = open();
            let user = store
                .add_user("alice", Role::Researcher, "correct horse")
                .unwrap();
            assert!(user.password_hash.starts_with("$argon2id$"));
            assert!(!user.password_hash.contains("correct horse"));
            let login = |name, password| store.authenticate(name, password).unwrap();
            assert!(login("alice", "correct horse").is_some());
            assert!(login("alice", "wrong horse!").is_none());
            assert!(login("nobody", "correct horse").is_none());
            assert!(matches!(
                store.add_user("alice", Role::Researcher, "another one"),
                Err(StateError::UserExists(_))
            ));
            store.set_disabled("alice", true).unwrap();
            assert!(login("alice", "correct horse").is_none());
            assert!(matches!(
                store.set_disabled("bob", true),
                Err(StateError::NoUser(_))
            ));
        });
    }

    #[test]
    fn projects_cannot_lower_k_and_need_known_members() {
        each_store(|open| {
            let store = Arc::new(open());
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
            assert!(matches!(
                store.add_project(&project("p1", "alice")),
                Err(StateError::ProjectExists(_))
            ));
            assert_eq!(snapshot(&store).projects_of("alice").len(), 1);
            assert_eq!(
                store.close_project("p1").unwrap().status,
                ProjectStatus::Closed
            );
            assert_eq!(
                store.project("p1").unwrap().unwrap().status,
                ProjectStatus::Closed
            );
            assert!(matches!(
                store.close_project("p2"),
                Err(StateError::NoProject(_))
            ));
        });
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
    fn a_second_handle_on_the_same_store_sees_its_changes() {
        each_store(|open| {
            let (store, other) = (open(), open());
            other
                .add_user("alice", Role::Researcher, "correct horse")
                .unwrap();
            assert!(store.user("alice").unwrap().is_some());
            assert_eq!(store.version().unwrap(), other.version().unwrap());
        });
    }

    #[test]
    fn a_snapshot_is_read_again_only_after_a_change_anywhere() {
        each_store(|open| {
            let (store, other) = (Arc::new(open()), open());
            store
                .add_user("alice", Role::Researcher, "correct horse")
                .unwrap();
            let first = snapshot(&store);
            assert!(first.user("alice").is_some());
            assert!(Arc::ptr_eq(&first, &snapshot(&store)));
            // A change by another handle (another process, for the
            // embedded store) is seen by the next snapshot.
            other
                .add_opt_outs(&[OptOutEntry {
                    lookup: "k".into(),
                    recorded_on: "2026-01-01".into(),
                }])
                .unwrap();
            let second = snapshot(&store);
            assert_eq!(second.opt_outs().len(), 1);
            assert!(second.version() > first.version());
            // A ledger append changes no snapshot.
            other
                .append_ledger(0, |_, _| Ok((Some(b"{}".to_vec()), ())))
                .unwrap();
            assert!(Arc::ptr_eq(&second, &snapshot(&store)));
        });
    }

    #[test]
    fn a_change_mark_that_cannot_be_written_neither_fails_the_change_nor_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(StateStore::open(dir.path()).unwrap());
        let first = snapshot(&store);
        let mark = dir.path().join("state.changes");
        std::fs::remove_file(&mark).unwrap();
        std::fs::create_dir(&mark).unwrap();
        store
            .add_user("alice", Role::Researcher, "correct horse")
            .unwrap();
        let second = snapshot(&store);
        assert!(second.user("alice").is_some());
        assert!(second.version() > first.version());
    }

    #[test]
    fn without_a_change_mark_every_snapshot_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(StateStore::open(dir.path()).unwrap());
        let first = snapshot(&store);
        std::fs::remove_file(dir.path().join("state.changes")).unwrap();
        assert!(!Arc::ptr_eq(&first, &snapshot(&store)));
    }

    #[test]
    fn handles_writing_at_once_take_turns() {
        each_store(|open| {
            let ids: Vec<u64> = std::thread::scope(|scope| {
                let writers: Vec<_> = (0..4)
                    .map(|_| {
                        scope.spawn(|| {
                            let store = open();
                            (0..10)
                                .map(|_| store.next_id(Collection::Applications).unwrap())
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                writers
                    .into_iter()
                    .flat_map(|writer| writer.join().unwrap())
                    .collect()
            });
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (1..=40).collect::<Vec<u64>>(), "every id once");
        });
    }

    /// One handle shared by a server's tasks: writes from the blocking pool
    /// take turns while snapshots are taken on the workers, and every task
    /// finishes (PostgreSQL: more callers than pooled connections).
    #[test]
    fn one_handle_serves_many_tasks_at_once() {
        each_store(|open| {
            let store = Arc::new(open());
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let ids = runtime.block_on(async {
                let tasks: Vec<_> = (0..24)
                    .map(|_| {
                        let store = Arc::clone(&store);
                        tokio::spawn(async move {
                            let writer = Arc::clone(&store);
                            let id = tokio::task::spawn_blocking(move || {
                                writer.next_id(Collection::OutputReleases)
                            })
                            .await
                            .unwrap()
                            .unwrap();
                            store.snapshot().await.unwrap();
                            id
                        })
                    })
                    .collect();
                let mut ids = Vec::new();
                for task in tasks {
                    ids.push(task.await.unwrap());
                }
                ids
            });
            let mut sorted = ids;
            sorted.sort_unstable();
            assert_eq!(sorted, (1..=24).collect::<Vec<u64>>(), "every id once");
        });
    }

    #[test]
    fn a_batch_is_all_or_nothing_and_moves_the_version() {
        each_store(|open| {
            let store = open();
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
        });
    }

    #[test]
    fn documents_come_back_in_key_byte_order_and_unchanged() {
        each_store(|open| {
            let store = open();
            let keys = ["b", "B", "a", "10", "9", "é", "~"];
            let document = |key: &str| format!("{key} \u{0} \"quoted\" 𠮷\n");
            let writes: Vec<Write> = keys
                .iter()
                .map(|key| Write::record(Collection::OutputReleases, *key, &document(key)).unwrap())
                .collect();
            store.write(&writes).unwrap();
            let mut sorted = keys;
            sorted.sort_unstable();
            let expected: Vec<String> = sorted.iter().map(|key| document(key)).collect();
            assert_eq!(
                store.records::<String>(Collection::OutputReleases).unwrap(),
                expected
            );
        });
    }

    #[test]
    fn opt_outs_are_deduplicated() {
        each_store(|open| {
            let store = Arc::new(open());
            let entry = OptOutEntry {
                lookup: "ab".repeat(32),
                recorded_on: "2026-11-24".into(),
            };
            assert_eq!(
                store.add_opt_outs(&[entry.clone(), entry.clone()]).unwrap(),
                1
            );
            assert_eq!(store.add_opt_outs(&[entry]).unwrap(), 0);
            assert_eq!(snapshot(&store).opt_outs().len(), 1);
        });
    }

    #[test]
    fn a_state_database_url_is_checked_and_never_printed_with_its_password() {
        let database: StateDatabase = "postgres://enclave:s3cret@db.internal:5432/state"
            .parse()
            .unwrap();
        assert_eq!(database.to_string(), "postgres://enclave@db.internal/state");
        assert!(!format!("{database:?}").contains("s3cret"));
        for bad in [
            "mysql://x@y/z",
            "postgres:///state",
            "postgres://a@b/c?sslmode=require",
        ] {
            assert!(bad.parse::<StateDatabase>().is_err(), "{bad}");
        }
    }
}
