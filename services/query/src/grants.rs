//! Errors that say a table or column lies outside the project's grant. The
//! catalog is public, so telling that a name exists but is not granted
//! reveals nothing about the data; "not found" would read like a typo.

use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use enclave_catalog::Catalog;
use enclave_guard::error::{QueryError, Rule};
use enclave_state::Project;

/// The refusal a planning `error` stands for when it names a catalog table
/// or column that `project`'s grant leaves out; `None` for any other error.
pub(crate) fn outside_grant(
    error: &DataFusionError,
    catalog: &Catalog,
    project: &Project,
) -> Option<QueryError> {
    match error.find_root() {
        DataFusionError::SchemaError(schema_error, _) => match schema_error.as_ref() {
            SchemaError::FieldNotFound { field, .. } => {
                column_outside_grant(&field.name, catalog, project)
            }
            _ => None,
        },
        DataFusionError::Plan(message) => {
            let table = missing_table(message)?;
            table_outside_grant(table, catalog, project)
        }
        _ => None,
    }
}

/// `schema.table` of DataFusion's "table 'catalog.schema.table' not found".
fn missing_table(message: &str) -> Option<&str> {
    let name = message
        .strip_prefix("table '")?
        .strip_suffix("' not found")?;
    let mut parts = name.rsplitn(3, '.');
    let table_len = parts.next()?.len();
    let schema_len = parts.next()?.len();
    Some(&name[name.len() - table_len - schema_len - 1..])
}

fn table_outside_grant(table: &str, catalog: &Catalog, project: &Project) -> Option<QueryError> {
    catalog.table(table)?;
    if project.grant(table).is_some() {
        return None;
    }
    Some(not_granted(format!(
        "table {table} is not in project `{}`'s grant",
        project.id
    )))
}

fn column_outside_grant(column: &str, catalog: &Catalog, project: &Project) -> Option<QueryError> {
    let tables: Vec<&str> = project
        .grants
        .iter()
        .filter(|grant| !grant.allows_column(column))
        .filter(|grant| {
            catalog
                .table(&grant.table)
                .is_some_and(|(_, table)| table.columns.iter().any(|c| c.name == column))
        })
        .map(|grant| grant.table.as_str())
        .collect();
    if tables.is_empty() {
        return None;
    }
    Some(not_granted(format!(
        "column `{column}` of {} is not in project `{}`'s grant",
        tables.join(", "),
        project.id
    )))
}

fn not_granted(what: String) -> QueryError {
    QueryError::refused(
        Rule::NotGranted,
        format!(
            "{what}; ask for it by amending the project's application (its page in the portal, \
             or `enclave apply amend`)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_table_is_read_from_datafusions_message() {
        assert_eq!(
            missing_table("table 'enclave.care.claims' not found"),
            Some("care.claims")
        );
        assert_eq!(
            missing_table("table 'care.claims' not found"),
            Some("care.claims")
        );
        assert_eq!(missing_table("table 'claims' not found"), None);
        assert_eq!(missing_table("No field named x"), None);
    }
}
