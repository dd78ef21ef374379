//! The raw tables behind a session's guarded tables: Parquet files of the
//! data store, read through DataFusion's listing table (see
//! `enclave_guard::table::GuardedTable` for what a session sees).

use std::sync::Arc;

use arrow::datatypes::{Field, Schema};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result as DfResult;
use enclave_guard::table::{GuardedTable, RowSource};
use enclave_guard::tags::Tags;

/// The URL the data store is registered under in every session.
pub const STORE_URL: &str = "enclave://data/";

/// A guarded table over Parquet `files` whose full schema is `file_schema`.
pub fn guarded_table(
    visible: Vec<(Field, Tags)>,
    file_schema: &Schema,
    files: &[String],
    source: RowSource,
) -> DfResult<GuardedTable> {
    let raw = listing_table(file_schema, files)?;
    Ok(GuardedTable::new(visible, Arc::new(raw), source))
}

pub(crate) fn listing_table(file_schema: &Schema, files: &[String]) -> DfResult<ListingTable> {
    let urls = files
        .iter()
        .map(|file| ListingTableUrl::parse(format!("{STORE_URL}{file}")))
        .collect::<DfResult<Vec<_>>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(Arc::new(file_schema.clone()));
    ListingTable::try_new(config)
}
