//! The query service: what a project session may see and run, and what may
//! leave the enclave.
//!
//! - [`engine`]: serves the newest release; resolves a user's project;
//!   builds a DataFusion session holding only the project's granted tables
//!   and columns plus its workspace; runs statements within [`limits`].
//! - [`guard`]: statement rules and the logical-plan rewrite (period,
//!   opt-out, person lineage, the released aggregate), failing closed.
//! - [`disclosure`]: k persons per group, facility and dominance rules,
//!   complementary suppression; hidden columns stripped.
//! - [`workspace`]: `CREATE TABLE work.<name> AS …` inside the enclave.
//!
//! Refusals carry a [`Rule`] whose id appears in the error text.

pub mod disclosure;
pub mod engine;
pub mod error;
pub mod guard;
pub mod limits;
pub mod optout;
pub mod tables;
pub mod tags;
pub mod top2;
pub mod workspace;

pub use engine::{Outcome, ProjectSession, QueryEngine, TableInfo};
pub use error::{QueryError, Rule};
pub use limits::Limits;
