//! The plan guard: what a project session may run, checked on the parsed
//! statement and then on DataFusion's logical plan, failing closed.
//!
//! - [`bounds`]: SQL length and nesting, checked before planning.
//! - [`statement`]: only queries, plus `CREATE TABLE work.<name> AS SELECT …`
//!   and `DROP TABLE work.<name>`; everything else is refused by rule.
//! - [`rewrite`]: every scan restricted to the project (period, opt-out) and
//!   the person followed through the plan.
//! - [`expressions`]: the allowlist of expressions and functions, made so
//!   they cannot fail on a value.
//! - [`release`]: the outermost aggregate rewritten so disclosure control
//!   can check every value (see `crate::disclosure`); the result stage
//!   above it split off to run over released values only.

pub mod aggregates;
pub mod bounds;
pub mod expressions;
pub mod release;
pub mod rewrite;
pub mod statement;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;

use crate::error::{QueryError, Rule};
use crate::tables::RESERVED_PREFIX;

/// Refuses plans that name the guard's own columns (user SQL cannot see
/// them, so any such name was typed to spoof one).
pub fn check_reserved_names(plan: &LogicalPlan) -> Result<(), QueryError> {
    let mut reserved = false;
    plan.apply_with_subqueries(|node| {
        reserved |= node
            .schema()
            .fields()
            .iter()
            .any(|field| field.name().starts_with(RESERVED_PREFIX));
        Ok(if reserved {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    if reserved {
        return Err(QueryError::refused(
            Rule::ReservedName,
            format!("names starting with {RESERVED_PREFIX} are reserved"),
        ));
    }
    Ok(())
}
