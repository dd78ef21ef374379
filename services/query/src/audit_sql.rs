//! SQL over the audit log for operators: the `audit` schema.
//!
//! An audit session sees three read-only tables built from the log at each
//! statement: `audit.events` (every event, with the fields operators filter
//! on lifted into columns and the rest as JSON), `audit.alerts` (the
//! patterns of [`enclave_audit::alerts`]) and `audit.checkpoints` (the signed
//! tree heads). Person-level disclosure control does not apply: events hold
//! SQL text, counts and refusals, never a query's result values, so no
//! project's results can be read here. Statements run within the same
//! memory, time and concurrency limits as project statements, and a result
//! is capped at [`MAX_AUDIT_ROWS`] rows.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, StringBuilder, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider};
use datafusion::common::ParamValues;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use enclave_audit::{Checkpoint, Event, alerts::Alert};

use crate::engine::{Outcome, Prepared, QueryEngine, TableInfo, parameter_schema, read_only_plan};
use crate::execution::Execution;
use crate::scan::collect_measured;
use enclave_guard::disclosure::Released;
use enclave_guard::error::{QueryError, Rule};
use enclave_guard::statement::{Request, classify};

/// The schema operators query.
pub const AUDIT_SCHEMA: &str = "audit";
/// Most rows one audit statement returns; aggregate or add a filter/LIMIT.
pub const MAX_AUDIT_ROWS: usize = 100_000;
/// Rows per batch of the in-memory tables (lets scans run in parallel).
const BATCH_ROWS: usize = 8_192;

/// One operator querying the audit log.
#[derive(Debug, Clone)]
pub struct AuditSession {
    engine: QueryEngine,
    user: String,
    dir: PathBuf,
}

impl QueryEngine {
    /// An audit session of `user` over the log in `dir`. The caller has
    /// checked that `user` may query the audit log.
    pub fn audit_session(&self, user: &str, dir: PathBuf) -> AuditSession {
        AuditSession {
            engine: self.clone(),
            user: user.to_string(),
            dir,
        }
    }
}

impl AuditSession {
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The audit tables, as metadata calls list them.
    pub fn tables(&self) -> Vec<TableInfo> {
        [
            ("events", events_schema()),
            ("alerts", alerts_schema()),
            ("checkpoints", checkpoints_schema()),
        ]
        .into_iter()
        .map(|(table, columns)| TableInfo {
            schema: AUDIT_SCHEMA.to_string(),
            table: table.to_string(),
            columns,
        })
        .collect()
    }

    /// The schema a statement's result will have, without running it.
    pub async fn prepare(&self, sql: &str) -> Result<Prepared, QueryError> {
        let context = self.empty_context()?;
        let plan = read_only_plan(&context, query_statement(sql)?).await?;
        Ok(Prepared {
            schema: Arc::new(plan.schema().as_arrow().clone()),
            parameters: parameter_schema(&plan)?,
        })
    }

    /// Runs one query with optional parameter values.
    pub async fn execute(
        &self,
        sql: &str,
        params: Option<ParamValues>,
    ) -> Result<Outcome, QueryError> {
        let params = params.unwrap_or(ParamValues::List(Vec::new()));
        self.engine.limited(&self.user, self.run(sql, params)).await
    }

    async fn run(&self, sql: &str, params: ParamValues) -> Result<Outcome, QueryError> {
        let statement = query_statement(sql)?;
        let named = self
            .empty_context()?
            .state()
            .resolve_table_references(&statement)?;
        let wanted = |table: &str| named.iter().any(|name| name.table() == table);
        let context = self
            .loaded_context(wanted("events"), wanted("alerts"), wanted("checkpoints"))
            .await?;
        let plan = read_only_plan(&context, statement)
            .await?
            .with_param_values(params)?;
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let (batches, scan) = collect_measured(&context, &Execution::InProcess, plan).await?;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows > MAX_AUDIT_ROWS {
            return Err(QueryError::Invalid(format!(
                "an audit result holds at most {MAX_AUDIT_ROWS} rows; aggregate, filter or add a LIMIT"
            )));
        }
        tracing::info!(user = self.user, rows, "audit query answered");
        Ok(Outcome::Rows(Released {
            schema,
            batches,
            released_groups: rows,
            suppressed_groups: 0,
            suppressed_values: 0,
            scan,
            ledger: None,
            query_id: None,
        }))
    }

    /// A context whose audit tables are empty: enough to plan.
    fn empty_context(&self) -> Result<SessionContext, QueryError> {
        self.context_with(&[], &[], &[])
    }

    /// A context holding the log as it is now, reading only what the
    /// statement names (the other tables stay empty).
    async fn loaded_context(
        &self,
        events: bool,
        alerts: bool,
        checkpoints: bool,
    ) -> Result<SessionContext, QueryError> {
        let dir = self.dir.clone();
        let (events, checkpoints) = tokio::task::spawn_blocking(move || {
            let events = if events || alerts {
                enclave_audit::read_events(&dir)?
            } else {
                Vec::new()
            };
            let checkpoints = if checkpoints {
                enclave_audit::read_checkpoint_list(&dir)?
            } else {
                Vec::new()
            };
            Ok::<_, enclave_audit::AuditError>((events, checkpoints))
        })
        .await
        .map_err(QueryError::internal)?
        .map_err(QueryError::internal)?;
        let found = if alerts {
            enclave_audit::alerts::alerts(&events)
        } else {
            Vec::new()
        };
        self.context_with(&events, &found, &checkpoints)
    }

    fn context_with(
        &self,
        events: &[Event],
        alerts: &[Alert],
        checkpoints: &[Checkpoint],
    ) -> Result<SessionContext, QueryError> {
        let schema = MemorySchemaProvider::new();
        let tables = [
            ("events", events_batches(events)?),
            ("alerts", alerts_batches(alerts)?),
            ("checkpoints", checkpoints_batches(checkpoints)?),
        ];
        for (name, (columns, batches)) in tables {
            let mut partitions: Vec<Vec<RecordBatch>> =
                batches.into_iter().map(|batch| vec![batch]).collect();
            if partitions.is_empty() {
                partitions.push(Vec::new());
            }
            let table = MemTable::try_new(columns, partitions)?;
            schema.register_table(name.to_string(), Arc::new(table))?;
        }
        let catalog = MemoryCatalogProvider::new();
        datafusion::catalog::CatalogProvider::register_schema(
            &catalog,
            AUDIT_SCHEMA,
            Arc::new(schema),
        )?;
        self.engine.context(catalog, AUDIT_SCHEMA)
    }
}

/// The statement of `sql` if it is a query; the audit schema is read-only.
fn query_statement(sql: &str) -> Result<datafusion::sql::parser::Statement, QueryError> {
    match classify(sql)? {
        Request::Query(statement) => Ok(statement),
        Request::CreateWorkspaceTable { .. } | Request::DropWorkspaceTable { .. } => {
            Err(QueryError::refused(
                Rule::Ddl,
                "the audit schema is read-only; only queries run here",
            ))
        }
        Request::ShowTables | Request::ShowColumns { .. } => Err(QueryError::refused(
            Rule::Statement,
            "the audit schema's tables are listed by the client's metadata calls (audit.events, audit.alerts, audit.checkpoints)",
        )),
    }
}

fn utc_millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::Int64, false),
        Field::new("at", utc_millis(), false),
        Field::new("actor", DataType::Utf8, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("outcome", DataType::Utf8, false),
        Field::new("project", DataType::Utf8, true),
        Field::new("sql", DataType::Utf8, true),
        Field::new("rule", DataType::Utf8, true),
        Field::new("duration_ms", DataType::Int64, true),
        Field::new("released_groups", DataType::Int64, true),
        Field::new("suppressed_groups", DataType::Int64, true),
        Field::new("rows_scanned", DataType::Int64, true),
        Field::new("fingerprint", DataType::Utf8, true),
        Field::new("query_id", DataType::Utf8, true),
        Field::new("detail", DataType::Utf8, false),
    ]))
}

fn alerts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("actor", DataType::Utf8, false),
        Field::new("first_seq", DataType::Int64, false),
        Field::new("last_seq", DataType::Int64, false),
        Field::new("count", DataType::Int64, false),
        Field::new("summary", DataType::Utf8, false),
    ]))
}

fn checkpoints_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("size", DataType::Int64, false),
        Field::new("root", DataType::Utf8, false),
        Field::new("at", utc_millis(), false),
        Field::new("signature", DataType::Utf8, false),
    ]))
}

type Batches = (SchemaRef, Vec<RecordBatch>);

fn events_batches(events: &[Event]) -> Result<Batches, QueryError> {
    let schema = events_schema();
    let batches = events
        .chunks(BATCH_ROWS)
        .map(|chunk| events_batch(&schema, chunk))
        .collect::<Result<_, _>>()?;
    Ok((schema, batches))
}

fn events_batch(schema: &SchemaRef, events: &[Event]) -> Result<RecordBatch, QueryError> {
    let text = |field: &str| -> ArrayRef {
        let mut column = StringBuilder::new();
        events
            .iter()
            .for_each(|e| column.append_option(e.detail.get(field).and_then(|v| v.as_str())));
        Arc::new(column.finish())
    };
    let number = |field: &str| -> ArrayRef {
        let mut column = Int64Builder::new();
        events
            .iter()
            .for_each(|e| column.append_option(e.detail.get(field).and_then(|v| v.as_i64())));
        Arc::new(column.finish())
    };
    let columns: Vec<ArrayRef> = vec![
        int64s(events.iter().map(|e| e.seq as i64)),
        timestamps(events.iter().map(|e| e.at_ms)),
        strings(events.iter().map(|e| e.actor.as_str())),
        strings(events.iter().map(|e| e.action.as_str())),
        strings(events.iter().map(|e| e.outcome.as_str())),
        text("project"),
        text("sql"),
        text("rule"),
        number("duration_ms"),
        number("released_groups"),
        number("suppressed_groups"),
        number("rows_scanned"),
        text("fingerprint"),
        text("query_id"),
        strings(events.iter().map(|e| e.detail.to_string())),
    ];
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(QueryError::internal)
}

fn alerts_batches(alerts: &[Alert]) -> Result<Batches, QueryError> {
    let schema = alerts_schema();
    let columns: Vec<ArrayRef> = vec![
        strings(alerts.iter().map(|a| a.kind)),
        strings(alerts.iter().map(|a| a.actor.as_str())),
        int64s(alerts.iter().map(|a| a.first_seq as i64)),
        int64s(alerts.iter().map(|a| a.last_seq as i64)),
        int64s(alerts.iter().map(|a| a.count as i64)),
        strings(alerts.iter().map(|a| a.summary.as_str())),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(QueryError::internal)?;
    Ok((schema, vec![batch]))
}

fn checkpoints_batches(checkpoints: &[Checkpoint]) -> Result<Batches, QueryError> {
    let schema = checkpoints_schema();
    let columns: Vec<ArrayRef> = vec![
        int64s(checkpoints.iter().map(|c| c.size as i64)),
        strings(checkpoints.iter().map(|c| c.root.as_str())),
        timestamps(checkpoints.iter().map(|c| c.at_ms)),
        strings(checkpoints.iter().map(|c| c.signature.as_str())),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(QueryError::internal)?;
    Ok((schema, vec![batch]))
}

fn strings<S: AsRef<str>>(values: impl Iterator<Item = S>) -> ArrayRef {
    let mut column = StringBuilder::new();
    values.for_each(|value| column.append_value(value));
    Arc::new(column.finish())
}

fn int64s(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(arrow::array::Int64Array::from_iter_values(values))
}

fn timestamps(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter_values(values).with_timezone("UTC"))
}
