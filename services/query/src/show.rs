//! `SHOW TABLES` and `SHOW COLUMNS FROM <schema.table>`, answered from the
//! session's tables (its grant and workspace, what the Flight SQL metadata
//! calls list), never from data.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use enclave_guard::disclosure::Released;
use enclave_guard::error::QueryError;

use crate::engine::TableInfo;
use crate::scan::ScanStats;

const CATALOG: &str = "enclave";

/// The columns `SHOW TABLES` answers with.
pub(crate) fn tables_schema() -> SchemaRef {
    text_schema(
        &["table_catalog", "table_schema", "table_name", "table_type"],
        &[],
    )
}

/// The columns `SHOW COLUMNS` answers with.
pub(crate) fn columns_schema() -> SchemaRef {
    text_schema(
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "data_type",
        ],
        &["is_nullable"],
    )
}

fn text_schema(text: &[&str], flags: &[&str]) -> SchemaRef {
    let fields = text
        .iter()
        .map(|name| Field::new(*name, DataType::Utf8, false))
        .chain(
            flags
                .iter()
                .map(|name| Field::new(*name, DataType::Boolean, false)),
        );
    Arc::new(Schema::new(fields.collect::<Vec<_>>()))
}

/// `SHOW TABLES` over `tables`.
pub(crate) fn tables(tables: &[TableInfo]) -> Result<Released, QueryError> {
    let text = |value: fn(&TableInfo) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(tables.iter().map(value)))
    };
    let columns = vec![
        text(|_| CATALOG),
        text(|table| &table.schema),
        text(|table| &table.table),
        text(|_| "BASE TABLE"),
    ];
    listing(tables_schema(), columns)
}

/// `SHOW COLUMNS FROM <name>` over `tables` (`name` as `schema.table`).
pub(crate) fn columns(tables: &[TableInfo], name: &str) -> Result<Released, QueryError> {
    let table = tables
        .iter()
        .find(|table| format!("{}.{}", table.schema, table.table) == name)
        .ok_or_else(|| {
            QueryError::Invalid(format!(
                "no table {name} in this session (SHOW TABLES lists them, as schema.table)"
            ))
        })?;
    let fields = table.columns.fields();
    let repeated = |value: &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(fields.iter().map(|_| value)))
    };
    let columns = vec![
        repeated(CATALOG),
        repeated(&table.schema),
        repeated(&table.table),
        Arc::new(StringArray::from_iter_values(
            fields.iter().map(|f| f.name().as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            fields.iter().map(|f| f.data_type().to_string()),
        )),
        Arc::new(BooleanArray::from_iter(
            fields.iter().map(|f| Some(f.is_nullable())),
        )),
    ];
    listing(columns_schema(), columns)
}

fn listing(schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<Released, QueryError> {
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(QueryError::internal)?;
    Ok(Released {
        released_groups: batch.num_rows(),
        schema,
        batches: vec![batch],
        suppressed_groups: 0,
        suppressed_values: 0,
        scan: ScanStats::default(),
        ledger: None,
        query_id: None,
    })
}
