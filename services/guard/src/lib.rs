//! The privacy core of the enclave: what a project session may run, and
//! what may leave. No I/O: it reads logical plans and released batches and
//! returns rewritten plans, refusals and disclosure-checked results, so a
//! reviewer can read every promise of docs/query-rules.md here.
//!
//! - [`bounds`]: SQL length and nesting, checked before planning.
//! - [`statement`]: only queries, plus `CREATE TABLE work.<name> AS SELECT …`
//!   and `DROP TABLE work.<name>`; everything else is refused by rule.
//! - [`table`] and [`tags`]: the tables a session sees and what each column
//!   carries (person key, identifying, sensitive, facility, padded).
//! - [`rewrite`]: every scan restricted to the project (period, opt-out) and
//!   the person followed through the plan, with tags through every
//!   expression, join, union and predicate.
//! - [`expressions`]: the allowlist of expressions and functions, made so
//!   they cannot fail on a value.
//! - [`keys`]: person and record keys only link rows and count persons,
//!   never read as values (no dial on persons).
//! - [`aggregates`]: the aggregates the guard has rules for.
//! - [`release`]: the released aggregate rewritten so disclosure control
//!   can check every value; the result stage above it split off to run over
//!   released values only.
//! - [`disclosure`]: k persons per group and k contributors per value,
//!   facility and dominance rules, complementary suppression.
//! - [`ledger`] and [`sketch`]: disclosure control across queries: every
//!   released cell remembered as a sketch of its persons, a cell near a
//!   remembered one answered the same way (surely within k − 1 persons, then
//!   with a chance falling smoothly with the distance), fresh answers with
//!   sticky noise.
//! - [`pseudonym`]: per-project person ids, a keyed permutation of the
//!   release's ids, mapped where rows are saved to and read from a
//!   workspace.
//! - [`policy`]: the publication rules as data (`policies/disclosure.toml`).
//! - [`top2`]: the aggregate the dominance rule uses.
//! - [`error`]: refusals and their rule ids.
//!
//! Refusals carry a [`Rule`] whose id appears in the error text.

pub mod aggregates;
pub mod bounds;
pub mod disclosure;
pub mod error;
pub mod expressions;
pub mod keys;
pub mod ledger;
pub mod policy;
pub mod pseudonym;
pub mod release;
pub mod reserved;
pub mod rewrite;
pub mod sketch;
pub mod statement;
pub mod table;
pub mod tags;
pub mod top2;

pub use error::{QueryError, Rule};
pub use reserved::check_reserved_names;
