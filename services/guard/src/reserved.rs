//! Names reserved for the guard's own columns.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;

use crate::error::{QueryError, Rule};
use crate::table::RESERVED_PREFIX;

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
