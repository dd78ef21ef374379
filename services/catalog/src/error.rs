//! What can be wrong with catalog definitions.

use std::io;
use std::path::PathBuf;

use crate::model::ColumnType;

/// A catalog that cannot be read or breaks a rule. Tables are named
/// `schema.table`, columns by their name within that table.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read catalog definitions at {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("no catalog definitions (*.toml) in {path}")]
    NoDefinitions { path: PathBuf },
    #[error("{origin}: {source}")]
    Parse {
        origin: String,
        source: toml::de::Error,
    },
    #[error(
        "{location}: invalid {kind} name {name:?} (use lowercase ASCII letters, digits and '_', starting with a letter)"
    )]
    InvalidName {
        location: String,
        kind: &'static str,
        name: String,
    },
    #[error("schema {schema} is defined more than once")]
    DuplicateSchema { schema: String },
    #[error("table {schema}.{table} is defined more than once")]
    DuplicateTable { schema: String, table: String },
    #[error("{table}: column {column} is defined more than once")]
    DuplicateColumn { table: String, column: String },
    #[error("{table}: no person_id column (every table carries the person key)")]
    MissingPersonId { table: String },
    #[error("{table}: person_id must be a non-nullable int64 of class person_key")]
    InvalidPersonId { table: String },
    #[error("{table}: partition column {column} is not a column of the table")]
    UnknownPartitionColumn { table: String, column: String },
    #[error("{table}: sort column {column} is not a column of the table")]
    UnknownSortColumn { table: String, column: String },
    #[error("{table}.{column}: generalization applies to utf8 columns only, not {data_type}")]
    GeneralizationType {
        table: String,
        column: String,
        data_type: ColumnType,
    },
    #[error("{table}.{column}: {source}")]
    InvalidGeneralization {
        table: String,
        column: String,
        source: RuleError,
    },
    #[error("unknown language {0:?} (use \"ja\" or \"en\")")]
    UnknownLanguage(String),
}

/// A generalization rule that cannot be applied consistently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("age_band width must be greater than 0")]
    AgeBandWidth,
    #[error("age_band pool_below ({pool_below}) must be less than pool_from ({pool_from})")]
    AgeBandPools { pool_below: u32, pool_from: u32 },
    #[error("age_band bound {bound} is not a multiple of the width {width}")]
    AgeBandAlignment { bound: u32, width: u32 },
    #[error("postcode_prefix digits must be between 1 and 7, not {digits}")]
    PostcodeDigits { digits: u32 },
}
