//! What a statement read, for its audit record: a fingerprint of its plan
//! with every literal folded away (near-identical queries that differ only
//! by filter values share one), the tables and columns its scans read (the
//! guard's own person columns included), and the rows its sources produced.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionContext;
use ring::digest::{SHA256, digest};

use crate::execution::Execution;
pub use enclave_guard::disclosure::ScanStats;
use enclave_guard::error::QueryError;

/// Hex digits of the plan fingerprint kept (64 bits).
const FINGERPRINT_HEX: usize = 16;

/// Optimizes and runs `plan` on `execution`, measuring what it read.
pub(crate) async fn collect_measured(
    context: &SessionContext,
    execution: &Execution,
    plan: LogicalPlan,
) -> Result<(Vec<RecordBatch>, ScanStats), QueryError> {
    let state = context.state();
    let optimized = state.optimize(&plan)?;
    let (tables, columns) = scanned(&optimized)?;
    let fingerprint = fingerprint(&optimized)?;
    let physical = state
        .query_planner()
        .create_physical_plan(&optimized, &state)
        .await?;
    let job = execution.guard(&physical);
    let batches = collect(Arc::clone(&physical), context.task_ctx()).await?;
    job.finished();
    let rows_scanned = match execution.cluster_source_rows(physical.as_ref()).await {
        Some(rows) => rows,
        None => source_rows(physical.as_ref()),
    };
    let stats = ScanStats {
        fingerprint,
        tables,
        columns,
        rows_scanned,
    };
    Ok((batches, stats))
}

/// The tables and columns the scans of `plan` read.
fn scanned(plan: &LogicalPlan) -> Result<(Vec<String>, Vec<String>), QueryError> {
    let mut tables = BTreeSet::new();
    let mut columns = BTreeSet::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let table = scan.table_name.to_string();
            for field in scan.projected_schema.fields() {
                columns.insert(format!("{table}.{}", field.name()));
            }
            tables.insert(table);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok((tables.into_iter().collect(), columns.into_iter().collect()))
}

/// A digest of `plan` with every literal replaced by a typed NULL.
fn fingerprint(plan: &LogicalPlan) -> Result<String, QueryError> {
    let folded = plan
        .clone()
        .transform_up_with_subqueries(|node| {
            node.map_expressions(|expr| expr.transform_up(fold_literal))
        })?
        .data;
    let text = folded.display_indent().to_string();
    let hash = digest(&SHA256, text.as_bytes());
    let hex: String = hash
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok(hex[..FINGERPRINT_HEX].to_string())
}

fn fold_literal(expr: Expr) -> datafusion::error::Result<Transformed<Expr>> {
    Ok(match expr {
        Expr::Literal(value, metadata) => {
            let null = ScalarValue::try_new_null(&value.data_type()).unwrap_or(ScalarValue::Null);
            Transformed::yes(Expr::Literal(null, metadata))
        }
        other => Transformed::no(other),
    })
}

/// Rows produced by the leaves of `plan` (its scans).
fn source_rows(plan: &dyn ExecutionPlan) -> u64 {
    let children = plan.children();
    if children.is_empty() {
        return plan
            .metrics()
            .and_then(|metrics| metrics.output_rows())
            .unwrap_or(0) as u64;
    }
    children
        .iter()
        .map(|child| source_rows(child.as_ref()))
        .sum()
}
