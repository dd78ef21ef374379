//! What the store needs from a database: named tables of JSON documents
//! keyed by string, and named counters, read and written in transactions.
//! Two databases provide it: [`embedded`](crate::embedded) (redb, one file)
//! and [`postgresql`](crate::postgresql) (shared by replicas).

use crate::StateError;
use crate::embedded::Embedded;
use crate::postgresql::Postgres;

/// The tables of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Users,
    Projects,
    OptOuts,
    Applications,
    OutputReleases,
    BringIns,
    References,
    /// The release ledger's batches and the service's secrets.
    Ledger,
}

impl Table {
    pub(crate) const ALL: [Table; 8] = [
        Table::Users,
        Table::Projects,
        Table::OptOuts,
        Table::Applications,
        Table::OutputReleases,
        Table::BringIns,
        Table::References,
        Table::Ledger,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Projects => "projects",
            Table::OptOuts => "opt_outs",
            Table::Applications => "applications",
            Table::OutputReleases => "output_releases",
            Table::BringIns => "bring_ins",
            Table::References => "reference_tables",
            Table::Ledger => "release_ledger",
        }
    }
}

/// The counter every write transaction advances.
pub(crate) const VERSION_COUNTER: &str = "version";

/// Reads inside one transaction.
pub(crate) trait Reader {
    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// Every document of `table`, in byte order of the keys.
    fn all(&mut self, table: Table) -> Result<Vec<Vec<u8>>, StateError>;
    /// A counter's value; 0 when it was never set.
    fn counter(&mut self, name: &str) -> Result<u64, StateError>;
}

/// Reads and writes inside one transaction; nothing is visible to others
/// until the whole transaction commits.
pub(crate) trait Writer: Reader {
    fn put(&mut self, table: Table, key: &str, document: &[u8]) -> Result<(), StateError>;
    fn set_counter(&mut self, name: &str, value: u64) -> Result<(), StateError>;
}

/// The database behind a store.
#[derive(Debug)]
pub(crate) enum Backend {
    Embedded(Embedded),
    Postgres(Box<Postgres>),
}

impl Backend {
    pub(crate) fn read<R>(
        &self,
        operation: impl FnOnce(&mut dyn Reader) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        match self {
            Backend::Embedded(db) => db.read(operation),
            Backend::Postgres(db) => db.read(operation),
        }
    }

    /// The change counter, read as cheaply as the database allows (see
    /// [`crate::snapshot`]); `None` when it cannot be told.
    pub(crate) async fn change_mark(&self) -> Result<Option<u64>, StateError> {
        match self {
            Backend::Embedded(db) => Ok(db.change_mark().await),
            Backend::Postgres(db) => db.change_counter().await.map(Some),
        }
    }

    /// Runs `change` in one write transaction; writers take turns, so what
    /// `change` reads stays true until it commits.
    pub(crate) fn write<R>(
        &self,
        change: impl FnOnce(&mut dyn Writer) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        match self {
            Backend::Embedded(db) => db.write(change),
            Backend::Postgres(db) => db.write(change),
        }
    }
}
