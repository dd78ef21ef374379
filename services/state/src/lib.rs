//! The embedded state store: users (argon2 password hashes), projects (members,
//! granted tables and columns, period, disclosure parameters, workspace quota)
//! and the opt-out register.
//!
//! State lives in one [redb] file under the state directory. Every change is
//! one ACID transaction; a change that fails validation writes nothing.
//! Until the review workflow issues grants, projects are made by the steward
//! through this crate (`enclave project add`).

mod error;
mod model;
mod store;

pub use error::StateError;
pub use model::{
    DEFAULT_K, Grant, OptOutEntry, Period, Project, ProjectStatus, Role, Rounding, User,
};
pub use store::{StateStore, today};
