//! The query service: what a project session may see and run, and what may
//! leave the enclave.
//!
//! - [`engine`]: serves the newest release; resolves a user's project;
//!   builds a DataFusion session holding only the project's granted tables
//!   and columns plus its workspace; runs statements within [`limits`].
//! - [`execution`]: where guarded plans run — in process, or on a Ballista
//!   cluster.
//! - [`guard`]: statement rules and the logical-plan rewrite (period,
//!   opt-out, person lineage, the released aggregate), failing closed.
//! - [`disclosure`]: k persons per group and k contributors per value,
//!   facility and dominance rules, complementary suppression; hidden
//!   columns stripped.
//! - [`stage`]: HAVING, ORDER BY and LIMIT over the released values only.
//! - [`workspace`]: `CREATE TABLE work.<name> AS …` inside the enclave.
//! - [`scan`]: what a statement read (plan fingerprint, tables, columns,
//!   rows) for its audit record.
//! - [`audit_sql`]: the operators' read-only `audit` schema over the audit log.
//! - [`public_stats`]: the portal's open statistics, run in a built-in
//!   project under the same guard and disclosure control.
//!
//! Refusals carry a [`Rule`] whose id appears in the error text.

pub mod audit_sql;
pub mod disclosure;
pub mod engine;
pub mod error;
pub mod execution;
pub mod guard;
pub mod limits;
pub mod optout;
pub mod public_stats;
pub mod scan;
pub mod stage;
pub mod tables;
pub mod tags;
pub mod top2;
pub mod workspace;

pub use audit_sql::AuditSession;
pub use engine::{Outcome, ProjectSession, QueryEngine, TableInfo};
pub use error::{QueryError, Rule};
pub use execution::Execution;
pub use limits::Limits;
pub use scan::ScanStats;
