//! The result stage of a released query (HAVING, the SELECT list, ORDER BY,
//! LIMIT above its released aggregate), run in this process over the values
//! disclosure control released and nothing else: what was withheld cannot
//! steer which rows come back or in what order.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::common::{Column, DFSchema};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;

use enclave_guard::disclosure::Released;
use enclave_guard::error::QueryError;
use enclave_guard::release::result_stage;
use enclave_guard::table::RESERVED_PREFIX;

const RELEASED: &str = "__enclave_released";

/// The session result stages run in: built once (a session registers every
/// built-in function), it holds no table; each stage's plan carries its own
/// released values.
static STAGE_SESSION: LazyLock<SessionContext> = LazyLock::new(SessionContext::new);

/// The result stage's plan over `batches` (the released values of a result
/// whose computed schema, hidden columns included, is `computed`).
pub fn stage_plan(
    stage: &[LogicalPlan],
    computed: &DFSchema,
    batches: Vec<RecordBatch>,
) -> Result<LogicalPlan, QueryError> {
    let visible: Vec<(Option<&datafusion::common::TableReference>, &Arc<Field>)> = computed
        .iter()
        .filter(|(_, field)| !field.name().starts_with(RESERVED_PREFIX))
        .collect();
    let positional = Arc::new(Schema::new(
        visible
            .iter()
            .enumerate()
            .map(|(index, (_, field))| {
                Field::new(format!("c{index}"), field.data_type().clone(), true)
            })
            .collect::<Vec<_>>(),
    ));
    let batches = batches
        .into_iter()
        .map(|batch| RecordBatch::try_new(Arc::clone(&positional), batch.columns().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(QueryError::internal)?;
    let table = MemTable::try_new(Arc::clone(&positional), vec![batches])?;
    let restored: Vec<Expr> = visible
        .iter()
        .enumerate()
        .map(|(index, (qualifier, field))| {
            Expr::Column(Column::new(Some(RELEASED), format!("c{index}")))
                .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    let released = LogicalPlanBuilder::scan(RELEASED, provider_as_source(Arc::new(table)), None)?
        .project(restored)?
        .build()?;
    result_stage(stage, released)
}

/// The schema a client gets for a result with this stage.
pub fn stage_schema(stage: &[LogicalPlan], computed: &DFSchema) -> Result<SchemaRef, QueryError> {
    let plan = stage_plan(stage, computed, Vec::new())?;
    Ok(enclave_guard::disclosure::visible_schema(
        plan.schema().as_arrow(),
    ))
}

/// Runs the stage over a released result.
pub async fn run_stage(
    stage: &[LogicalPlan],
    computed: &DFSchema,
    released: Released,
) -> Result<Released, QueryError> {
    if stage.is_empty() {
        return Ok(released);
    }
    let plan = stage_plan(stage, computed, released.batches)?;
    let schema = enclave_guard::disclosure::visible_schema(plan.schema().as_arrow());
    let batches = STAGE_SESSION
        .execute_logical_plan(plan)
        .await?
        .collect()
        .await?;
    let batches = batches
        .into_iter()
        .map(|batch| RecordBatch::try_new(Arc::clone(&schema), batch.columns().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(QueryError::internal)?;
    Ok(Released {
        released_groups: batches.iter().map(RecordBatch::num_rows).sum(),
        schema,
        batches,
        ..released
    })
}
