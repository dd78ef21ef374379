//! The embedded database: one redb file in the state directory.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redb::{
    Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};

use crate::StateError;
use crate::backend::{Reader, Table, VERSION_COUNTER, Writer};

/// The file inside the state directory.
const STATE_FILE: &str = "state.redb";
/// Beside it: the change counter as text, rewritten after each commit that
/// moved it, so readers can tell the store changed without opening it.
const CHANGES_FILE: &str = "state.changes";
/// Counters: the change counter and the id sequences.
const COUNTERS: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// How long an operation waits for another process (an admin command while
/// the server runs) to release the store file.
const LOCK_WAIT: Duration = Duration::from_secs(10);
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// redb locks its file for as long as it is open, so the store opens it for
/// each operation only: the server and admin commands (`enclave optout add`,
/// `enclave project close`) take turns instead of locking each other out,
/// and every read sees the latest committed change.
#[derive(Debug)]
pub(crate) struct Embedded {
    path: PathBuf,
    changes: PathBuf,
    in_process: Mutex<()>,
}

fn documents(table: Table) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(table.name())
}

impl Embedded {
    /// Opens (creating if needed) the store file in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Embedded, StateError> {
        std::fs::create_dir_all(dir).map_err(|error| StateError::Storage(error.to_string()))?;
        let store = Embedded {
            path: dir.join(STATE_FILE),
            changes: dir.join(CHANGES_FILE),
            in_process: Mutex::new(()),
        };
        store.with_db(|db| {
            let txn = db.begin_write()?;
            for table in Table::ALL {
                txn.open_table(documents(table))?;
            }
            txn.open_table(COUNTERS)?;
            txn.commit()?;
            db_announce(db, &store.changes)
        })?;
        Ok(store)
    }

    /// The change counter as the last commit left it, without opening the
    /// store; `None` when it cannot be told (no commit has said, or the file
    /// cannot be read), which readers treat as changed.
    pub(crate) async fn change_mark(&self) -> Option<u64> {
        tokio::fs::read_to_string(&self.changes)
            .await
            .ok()
            .and_then(|text| text.trim().parse().ok())
    }

    /// Runs `operation` on the open database, waiting for other holders.
    #[expect(
        clippy::disallowed_methods,
        reason = "the store is synchronous; async callers run it on the blocking pool"
    )]
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

    pub(crate) fn read<R>(
        &self,
        operation: impl FnOnce(&mut dyn Reader) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        self.with_db(|db| operation(&mut ReadTxn(db.begin_read()?)))
    }

    pub(crate) fn write<R>(
        &self,
        change: impl FnOnce(&mut dyn Writer) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        self.with_db(|db| {
            let txn = db.begin_write()?;
            let result = change(&mut WriteTxn(&txn))?;
            txn.commit()?;
            // The change is made: a change mark that cannot be written only
            // delays readers by up to the snapshot's age bound.
            if let Err(error) = db_announce(db, &self.changes) {
                tracing::warn!(%error, "state change mark not written; snapshots catch up within a second");
            }
            Ok(result)
        })
    }
}

/// Rewrites the changes file when the committed change counter differs from
/// it (a new name renamed over it, so readers see one whole value). Called
/// with the store open, so writers of several processes take turns here too.
fn db_announce(db: &Database, changes: &Path) -> Result<(), StateError> {
    let version = counter(&db.begin_read()?.open_table(COUNTERS)?, VERSION_COUNTER)?;
    let text = version.to_string();
    if std::fs::read_to_string(changes).is_ok_and(|current| current == text) {
        return Ok(());
    }
    let partial = changes.with_extension("changes.partial");
    std::fs::write(&partial, &text)
        .and_then(|()| std::fs::rename(&partial, changes))
        .map_err(|error| StateError::Storage(error.to_string()))
}

struct ReadTxn(ReadTransaction);

struct WriteTxn<'a>(&'a WriteTransaction);

/// The same reads over a read or a write transaction: redb gives their
/// tables different types with one `ReadableTable` interface.
macro_rules! impl_reader {
    ($($txn:ty),*) => {$(
        impl Reader for $txn {
            fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StateError> {
                document(&self.0.open_table(documents(table))?, key)
            }

            fn all(&mut self, table: Table) -> Result<Vec<Vec<u8>>, StateError> {
                all_documents(&self.0.open_table(documents(table))?)
            }

            fn counter(&mut self, name: &str) -> Result<u64, StateError> {
                counter(&self.0.open_table(COUNTERS)?, name)
            }
        }
    )*};
}

impl_reader!(ReadTxn, WriteTxn<'_>);

impl Writer for WriteTxn<'_> {
    fn put(&mut self, table: Table, key: &str, document: &[u8]) -> Result<(), StateError> {
        self.0.open_table(documents(table))?.insert(key, document)?;
        Ok(())
    }

    fn set_counter(&mut self, name: &str, value: u64) -> Result<(), StateError> {
        self.0.open_table(COUNTERS)?.insert(name, value)?;
        Ok(())
    }
}

fn document(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<Vec<u8>>, StateError> {
    Ok(table.get(key)?.map(|value| value.value().to_vec()))
}

fn all_documents(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<Vec<u8>>, StateError> {
    let mut documents = Vec::new();
    for entry in table.iter()? {
        let (_, value) = entry?;
        documents.push(value.value().to_vec());
    }
    Ok(documents)
}

fn counter(table: &impl ReadableTable<&'static str, u64>, name: &str) -> Result<u64, StateError> {
    Ok(table.get(name)?.map_or(0, |value| value.value()))
}
