//! The typed catalog: schemas, tables, columns, and their Arrow schemas.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::generalize::Generalization;

/// Every schema of the enclave. Built through [`Catalog::embedded`],
/// [`Catalog::load_dir`] or [`Catalog::new`], which validate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub schemas: Vec<SchemaDef>,
}

/// One source database (`ndb`, `dpc`, `care`): one `catalog/<name>.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaDef {
    pub name: String,
    pub title_ja: String,
    pub title_en: String,
    pub description_ja: String,
    pub description_en: String,
    pub tables: Vec<TableDef>,
}

/// One table; its columns are listed in the order they are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDef {
    pub name: String,
    pub description_ja: String,
    pub description_en: String,
    /// The column whose values name the Parquet partitions (`service_month`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_by: Option<String>,
    /// Columns the rows are sorted by within a partition.
    #[serde(default)]
    pub sort_by: Vec<String>,
    pub columns: Vec<ColumnDef>,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDef {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: ColumnType,
    pub class: ColumnClass,
    /// The code list the values come from, e.g. `ICD-10 (2013)`, `JIS X 0401`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_system: Option<String>,
    #[serde(default)]
    pub nullable: bool,
    pub description_ja: String,
    pub description_en: String,
    /// How the published value is derived from the identified one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generalization: Option<Generalization>,
    /// The column names a facility (hospital, pharmacy, care provider):
    /// released groups keyed by it must cover at least 3 facilities.
    #[serde(default, skip_serializing_if = "is_false")]
    pub identifies_facility: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// The physical type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Int64,
    Int32,
    Float64,
    Utf8,
    Bool,
}

/// What a column reveals, and so how it may be used in output
/// (see the crate documentation for the full meaning of each class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnClass {
    /// The pseudonymous person; never groupable in output.
    PersonKey,
    /// A release-local id grouping rows; identifying, never groupable.
    RecordKey,
    /// Could help re-identify in combination (sex, age band, area, months, facility).
    QuasiIdentifier,
    /// Health status: diagnoses, care level, outcomes, death.
    Sensitive,
    /// Classification codes that are not health status.
    Code,
    /// Numeric amounts: points, days, quantities, units, yen.
    Measure,
}

impl ColumnType {
    /// The name the catalog files use (`int64`, `utf8`, …).
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Int64 => "int64",
            ColumnType::Int32 => "int32",
            ColumnType::Float64 => "float64",
            ColumnType::Utf8 => "utf8",
            ColumnType::Bool => "bool",
        }
    }
}

impl ColumnClass {
    /// The name the catalog files use (`person_key`, `quasi_identifier`, …).
    pub fn name(self) -> &'static str {
        match self {
            ColumnClass::PersonKey => "person_key",
            ColumnClass::RecordKey => "record_key",
            ColumnClass::QuasiIdentifier => "quasi_identifier",
            ColumnClass::Sensitive => "sensitive",
            ColumnClass::Code => "code",
            ColumnClass::Measure => "measure",
        }
    }
}

impl Catalog {
    /// A table by qualified name, `schema.table` (e.g. `ndb.receipts`).
    pub fn table(&self, qualified: &str) -> Option<(&SchemaDef, &TableDef)> {
        let (schema, table) = qualified.split_once('.')?;
        let schema = self.schema(schema)?;
        Some((schema, schema.table(table)?))
    }

    pub fn schema(&self, name: &str) -> Option<&SchemaDef> {
        self.schemas.iter().find(|schema| schema.name == name)
    }

    /// Every table with its schema, in definition order.
    pub fn tables(&self) -> impl Iterator<Item = (&SchemaDef, &TableDef)> {
        self.schemas
            .iter()
            .flat_map(|schema| schema.tables.iter().map(move |table| (schema, table)))
    }

    /// Every qualified table name (`ndb.receipts`, …), in definition order.
    pub fn table_names(&self) -> impl Iterator<Item = String> + '_ {
        self.tables()
            .map(|(schema, table)| qualified_name(&schema.name, &table.name))
    }
}

impl SchemaDef {
    pub fn table(&self, name: &str) -> Option<&TableDef> {
        self.tables.iter().find(|table| table.name == name)
    }
}

impl TableDef {
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|column| column.name == name)
    }

    /// The generalization rule of a column, if the column exists and has one.
    pub fn generalization(&self, column: &str) -> Option<&Generalization> {
        self.column(column)?.generalization.as_ref()
    }

    /// The Arrow schema the table's Parquet files have: the columns in order,
    /// with their types and nullability.
    pub fn arrow_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self.columns.iter().map(ColumnDef::arrow_field).collect();
        Arc::new(Schema::new(fields))
    }
}

impl ColumnDef {
    pub fn arrow_field(&self) -> Field {
        Field::new(&self.name, self.data_type.arrow_type(), self.nullable)
    }
}

impl ColumnType {
    pub fn arrow_type(self) -> DataType {
        match self {
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Bool => DataType::Boolean,
        }
    }

    /// The name used in the TOML definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Int64 => "int64",
            ColumnType::Int32 => "int32",
            ColumnType::Float64 => "float64",
            ColumnType::Utf8 => "utf8",
            ColumnType::Bool => "bool",
        }
    }
}

impl ColumnClass {
    /// The name used in the TOML definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnClass::PersonKey => "person_key",
            ColumnClass::RecordKey => "record_key",
            ColumnClass::QuasiIdentifier => "quasi_identifier",
            ColumnClass::Sensitive => "sensitive",
            ColumnClass::Code => "code",
            ColumnClass::Measure => "measure",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ColumnClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `schema.table`.
pub(crate) fn qualified_name(schema: &str, table: &str) -> String {
    format!("{schema}.{table}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_catalog_files_spelling() {
        for class in [
            ColumnClass::PersonKey,
            ColumnClass::RecordKey,
            ColumnClass::QuasiIdentifier,
            ColumnClass::Sensitive,
            ColumnClass::Code,
            ColumnClass::Measure,
        ] {
            assert_eq!(serde_json::to_value(class).unwrap(), class.name());
        }
        for kind in [
            ColumnType::Int64,
            ColumnType::Int32,
            ColumnType::Float64,
            ColumnType::Utf8,
            ColumnType::Bool,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
    }
}
