//! The tables a project session sees, as the guard knows them.
//!
//! Each granted table (and each workspace table) is registered as a
//! [`GuardedTable`]: a placeholder whose schema holds only what the project
//! may name, with each column's tags. It cannot be scanned itself; the guard
//! replaces every scan of it with a scan of its raw source (the Parquet
//! files, given by the query service), restricted to the project's period,
//! without opted-out persons, and carrying the hidden person column.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::tags::Tags;

/// The hidden column that carries the person through a guarded plan.
pub const PERSON: &str = "__enclave_person";
/// Prefix of every column the guard adds; user SQL may not use it.
pub const RESERVED_PREFIX: &str = "__enclave";

/// Where a guarded table's rows come from.
#[derive(Debug, Clone)]
pub enum RowSource {
    /// A release table: person in `person_id`, month in `service_month`.
    Release,
    /// A workspace table: person in the hidden column, rows already in period.
    Workspace,
    /// A reference table the project brought in (`ref.<name>`, approved by
    /// the committee): rows of no person, values the researcher chose.
    Reference,
    /// A table listed to the project (with its columns, so it can be found
    /// and dropped) that no statement may read, e.g. a workspace table
    /// built from another release; reading it is refused with `reason`.
    Unreadable { reason: String },
}

/// A table as one project may see it.
#[derive(Debug)]
pub struct GuardedTable {
    visible: SchemaRef,
    tags: Vec<Tags>,
    raw: Arc<dyn TableProvider>,
    source: RowSource,
}

impl GuardedTable {
    /// `visible` columns (with their tags) of `raw`, the table that holds
    /// every column of the rows.
    pub fn new(
        visible: Vec<(Field, Tags)>,
        raw: Arc<dyn TableProvider>,
        source: RowSource,
    ) -> GuardedTable {
        let (fields, tags): (Vec<Field>, Vec<Tags>) = visible.into_iter().unzip();
        GuardedTable {
            visible: Arc::new(Schema::new(fields)),
            tags,
            raw,
            source,
        }
    }

    pub fn tags(&self) -> &[Tags] {
        &self.tags
    }

    pub fn raw(&self) -> Arc<dyn TableProvider> {
        Arc::clone(&self.raw)
    }

    pub fn source(&self) -> &RowSource {
        &self.source
    }
}

#[async_trait]
impl TableProvider for GuardedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.visible)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Never reached when the guard ran; failing here keeps a plan that
    /// skipped the guard from reading anything.
    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::Internal(
            "a guarded table was scanned without the guard".into(),
        ))
    }
}
