//! The query service: what a project session may see and run, and what may
//! leave the enclave.
//!
//! - [`engine`]: serves the newest release; resolves a user's project;
//!   builds a DataFusion session holding only the project's granted tables
//!   and columns plus its workspace; runs statements within [`limits`].
//! - [`execution`]: where guarded plans run — in process, or on a Ballista
//!   cluster.
//! - [`tables`]: the Parquet files behind each guarded table.
//! - [`stage`]: HAVING, ORDER BY and LIMIT over the released values only.
//! - `ledger`: the release ledger (disclosure control across queries and
//!   projects) kept durable in the state store, each release naming the
//!   query whose result made it; [`QueryEngine::project_ledger`] is what a
//!   project's members see of it.
//! - [`workspace`]: `CREATE TABLE work.<name> AS …` inside the enclave.
//! - [`scan`]: what a statement read (plan fingerprint, tables, columns,
//!   rows) for its audit record.
//! - [`audit_sql`]: the operators' read-only `audit` schema over the audit log.
//! - [`public_stats`]: the portal's open statistics, run in a built-in
//!   project under the same guard and disclosure control.
//!
//! What may run and what may leave is decided by `enclave-guard` (the plan
//! guard, tags and disclosure control, without I/O); this crate runs it.
//! Refusals carry a [`Rule`] whose id appears in the error text.

pub mod audit_sql;
mod comparisons;
pub mod engine;
pub mod execution;
mod grants;
mod ids;
mod ledger;
pub mod limits;
pub mod optout;
pub mod public_stats;
pub mod references;
pub mod scan;
mod show;
pub mod stage;
pub mod tables;
pub mod workspace;

pub use audit_sql::AuditSession;
pub use enclave_guard::disclosure::{LedgerNote, Released, ScanStats};
pub use enclave_guard::pseudonym::person_map_udfs;
pub use enclave_guard::sketch::person_set_udaf;
pub use enclave_guard::statement::WORKSPACE_SCHEMA;
pub use enclave_guard::top2::top2_sum_udaf;
pub use enclave_guard::{QueryError, Rule};
pub use engine::{Outcome, Prepared, ProjectSession, QueryEngine, Statement, TableInfo};
pub use execution::Execution;
pub use ledger::{LedgerRelease, ProjectLedger};
pub use limits::Limits;
