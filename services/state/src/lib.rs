//! The state store: users (argon2 password hashes, roles), projects
//! (members, granted tables and columns, period, disclosure parameters,
//! workspace quota), the opt-out register, and the documents of the review
//! workflow (applications, output releases), plus the clock all services share.
//!
//! State lives in one [redb] file under the state directory (embedded, the
//! default) or in a PostgreSQL database that several server replicas share
//! ([`StateDatabase`]). Either way every change is one ACID transaction that
//! advances a change counter ([`StateStore::version`]), writers take turns,
//! and a change that fails validation writes nothing. What every statement
//! reads (accounts, projects, opt-outs) is served from a [`Snapshot`] that
//! is read again only once the change counter moved. Projects are written by the
//! review workflow when an application is approved, or by the steward
//! (`enclave project add`) for projects decided outside it.

mod backend;
mod clock;
mod embedded;
mod error;
mod model;
mod postgresql;
mod snapshot;
mod store;

pub use clock::Clock;

pub use error::StateError;
pub use model::{
    AUDIT_SCOPE, DEFAULT_FRESH_VALUE_BUDGET, DEFAULT_K, Destroyed, Grant, OptOutEntry,
    PUBLIC_STATISTICS_SCOPE, Period, Project, ProjectStatus, Protection, ReferenceTable, Role,
    Rounding, User, default_fresh_value_budget,
};
pub use postgresql::StateDatabase;
pub use snapshot::{MAX_SNAPSHOT_AGE, Snapshot};
pub use store::{
    Collection, LedgerBatch, MAX_USER_NAME_BYTES, Secret, StateStore, Write, is_valid_user_name,
};
