//! The rules every catalog obeys.

use std::collections::BTreeSet;

use crate::error::CatalogError;
use crate::model::{
    Catalog, ColumnClass, ColumnDef, ColumnType, SchemaDef, TableDef, qualified_name,
};

/// The person key every table carries.
const PERSON_ID: &str = "person_id";

pub(crate) fn catalog(catalog: &Catalog) -> Result<(), CatalogError> {
    for schema in &catalog.schemas {
        check_name("catalog", "schema", &schema.name)?;
    }
    if let Some(name) = first_duplicate(catalog.schemas.iter().map(|s| s.name.as_str())) {
        return Err(CatalogError::DuplicateSchema {
            schema: name.to_owned(),
        });
    }
    catalog.schemas.iter().try_for_each(schema)
}

fn schema(schema: &SchemaDef) -> Result<(), CatalogError> {
    for table in &schema.tables {
        check_name(&schema.name, "table", &table.name)?;
    }
    if let Some(name) = first_duplicate(schema.tables.iter().map(|t| t.name.as_str())) {
        return Err(CatalogError::DuplicateTable {
            schema: schema.name.clone(),
            table: name.to_owned(),
        });
    }
    for def in &schema.tables {
        table(&qualified_name(&schema.name, &def.name), def)?;
    }
    Ok(())
}

fn table(qualified: &str, table: &TableDef) -> Result<(), CatalogError> {
    for column in &table.columns {
        check_name(qualified, "column", &column.name)?;
    }
    if let Some(name) = first_duplicate(table.columns.iter().map(|c| c.name.as_str())) {
        return Err(CatalogError::DuplicateColumn {
            table: qualified.to_owned(),
            column: name.to_owned(),
        });
    }
    person_id(qualified, table)?;
    layout_columns(qualified, table)?;
    for column in &table.columns {
        generalization(qualified, column)?;
    }
    Ok(())
}

fn person_id(qualified: &str, table: &TableDef) -> Result<(), CatalogError> {
    let Some(column) = table.column(PERSON_ID) else {
        return Err(CatalogError::MissingPersonId {
            table: qualified.to_owned(),
        });
    };
    let is_key = column.class == ColumnClass::PersonKey
        && column.data_type == ColumnType::Int64
        && !column.nullable;
    if is_key {
        Ok(())
    } else {
        Err(CatalogError::InvalidPersonId {
            table: qualified.to_owned(),
        })
    }
}

/// The partition and sort columns are columns of the table.
fn layout_columns(qualified: &str, table: &TableDef) -> Result<(), CatalogError> {
    let missing = |name: &&String| table.column(name).is_none();
    if let Some(column) = table.partition_by.iter().find(missing) {
        return Err(CatalogError::UnknownPartitionColumn {
            table: qualified.to_owned(),
            column: column.clone(),
        });
    }
    if let Some(column) = table.sort_by.iter().find(missing) {
        return Err(CatalogError::UnknownSortColumn {
            table: qualified.to_owned(),
            column: column.clone(),
        });
    }
    Ok(())
}

fn generalization(qualified: &str, column: &ColumnDef) -> Result<(), CatalogError> {
    let Some(rule) = &column.generalization else {
        return Ok(());
    };
    if column.data_type != ColumnType::Utf8 {
        return Err(CatalogError::GeneralizationType {
            table: qualified.to_owned(),
            column: column.name.clone(),
            data_type: column.data_type,
        });
    }
    rule.check()
        .map_err(|source| CatalogError::InvalidGeneralization {
            table: qualified.to_owned(),
            column: column.name.clone(),
            source,
        })
}

/// Names are lowercase identifiers, so `schema.table` splits unambiguously
/// and every name is a plain SQL identifier.
fn check_name(location: &str, kind: &'static str, name: &str) -> Result<(), CatalogError> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(CatalogError::InvalidName {
            location: location.to_owned(),
            kind,
            name: name.to_owned(),
        })
    }
}

fn first_duplicate<'a>(mut names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = BTreeSet::new();
    names.find(|name| !seen.insert(*name))
}
