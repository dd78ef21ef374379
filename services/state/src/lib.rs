//! The embedded state store: users (argon2 password hashes, roles), projects
//! (members, granted tables and columns, period, disclosure parameters,
//! workspace quota), the opt-out register, and the documents of the review
//! workflow (applications, output releases), plus the clock all services share.
//!
//! State lives in one [redb] file under the state directory. Every change is
//! one ACID transaction that advances a change counter ([`StateStore::version`]);
//! a change that fails validation writes nothing. Projects are written by the
//! review workflow when an application is approved, or by the steward
//! (`enclave project add`) for projects decided outside it.

mod clock;
mod error;
mod model;
mod store;

pub use clock::{Clock, today};

pub use error::StateError;
pub use model::{
    AUDIT_SCOPE, DEFAULT_K, Grant, OptOutEntry, PUBLIC_STATISTICS_SCOPE, Period, Project,
    ProjectStatus, Role, Rounding, User,
};
pub use store::{Collection, StateStore, Write};
