//! Statement-level rules: which kinds of SQL statement a session may run.

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, ObjectName, ObjectType, ShowStatementIn, ShowStatementOptions, Statement, Value,
    visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::bounds;
use crate::error::{QueryError, Rule};

/// The schema of project workspaces.
pub const WORKSPACE_SCHEMA: &str = "work";

/// What a statement asks for.
#[derive(Debug)]
pub enum Request {
    /// A query, to be planned, guarded and disclosure-checked.
    Query(DfStatement),
    /// `CREATE TABLE work.<name> AS <query>`: rows saved in the workspace.
    CreateWorkspaceTable { name: String, query: DfStatement },
    /// `DROP TABLE [IF EXISTS] work.<name>`.
    DropWorkspaceTable { name: String, if_exists: bool },
    /// `SHOW TABLES`: the session's tables, from its grant.
    ShowTables,
    /// `SHOW COLUMNS FROM <schema.table>`: one table's columns.
    ShowColumns { table: String },
}

/// Parses one statement within the input bounds (see [`bounds`]) and says
/// what it asks for.
pub fn classify(sql: &str) -> Result<Request, QueryError> {
    bounds::check_length(sql)?;
    let sql = sql.to_string();
    bounds::on_parse_stack(move || classify_bounded(&sql))
}

fn classify_bounded(sql: &str) -> Result<Request, QueryError> {
    let mut statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})
        .map_err(|error| QueryError::Invalid(error.to_string()))?;
    if statements.len() != 1 {
        return Err(QueryError::refused(
            Rule::Statement,
            "send exactly one statement per request",
        ));
    }
    let statement = statements.pop_front().expect("one statement");
    match statement {
        DfStatement::Statement(mut inner) => {
            bounds::check_nesting(&inner)?;
            number_positional_placeholders(&mut inner);
            classify_sql(*inner)
        }
        DfStatement::CreateExternalTable(_) => Err(QueryError::refused(
            Rule::Ddl,
            "CREATE EXTERNAL TABLE is not allowed: sessions read only the project's catalog",
        )),
        DfStatement::CopyTo(_) => Err(copy_refusal()),
        DfStatement::Explain(_) => Err(explain_refusal()),
        DfStatement::Reset(_) => Err(QueryError::refused(
            Rule::Statement,
            "engine settings cannot be changed",
        )),
    }
}

/// Turns JDBC/ODBC-style `?` placeholders into DataFusion's `$1`, `$2`, …
/// in the order they appear, so clients that bind by position just work.
fn number_positional_placeholders(statement: &mut Statement) {
    let mut next = 0;
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(name) = &mut value.value
            && name == "?"
        {
            next += 1;
            *name = format!("${next}");
        }
        ControlFlow::<()>::Continue(())
    });
}

fn without_options(options: &ShowStatementOptions) -> bool {
    let ShowStatementOptions {
        show_in,
        starts_with,
        limit,
        limit_from,
        filter_position,
    } = options;
    show_in.is_none()
        && starts_with.is_none()
        && limit.is_none()
        && limit_from.is_none()
        && filter_position.is_none()
}

/// `SHOW COLUMNS FROM <table>` (or `IN`) and nothing more.
fn show_columns(options: ShowStatementOptions) -> Result<Request, QueryError> {
    let ShowStatementOptions {
        show_in:
            Some(ShowStatementIn {
                parent_type: None,
                parent_name: Some(table),
                ..
            }),
        starts_with: None,
        limit: None,
        limit_from: None,
        filter_position: None,
    } = options
    else {
        return Err(show_refusal());
    };
    let table = table
        .0
        .iter()
        .map(|part| part.to_string())
        .collect::<Vec<_>>()
        .join(".");
    Ok(Request::ShowColumns { table })
}

fn show_refusal() -> QueryError {
    QueryError::refused(
        Rule::Statement,
        "SHOW TABLES and SHOW COLUMNS FROM <schema.table> are answered as written, without options; \
         filter the list in your client",
    )
}

fn copy_refusal() -> QueryError {
    QueryError::refused(
        Rule::Copy,
        "COPY is not allowed: nothing is written outside the enclave; save rows with CREATE TABLE work.<name> AS SELECT …",
    )
}

fn explain_refusal() -> QueryError {
    QueryError::refused(
        Rule::Explain,
        "EXPLAIN is not available: plans show row counts of unchecked intermediate results",
    )
}

fn classify_sql(statement: Statement) -> Result<Request, QueryError> {
    match statement {
        Statement::Query(_) => Ok(Request::Query(DfStatement::Statement(Box::new(statement)))),
        Statement::CreateTable(create) => {
            let name = workspace_table(&create.name)?;
            let plain = !create.external
                && !create.or_replace
                && create.location.is_none()
                && create.columns.is_empty();
            match create.query {
                Some(query) if plain => Ok(Request::CreateWorkspaceTable {
                    name,
                    query: DfStatement::Statement(Box::new(Statement::Query(query))),
                }),
                _ => Err(QueryError::refused(
                    Rule::Ddl,
                    "only CREATE TABLE work.<name> AS SELECT … is allowed",
                )),
            }
        }
        Statement::Drop {
            object_type: ObjectType::Table,
            if_exists,
            names,
            ..
        } if names.len() == 1 => Ok(Request::DropWorkspaceTable {
            name: workspace_table(&names[0])?,
            if_exists,
        }),
        Statement::ShowTables {
            terse: false,
            history: false,
            extended: false,
            full: false,
            external: false,
            show_options,
        } if without_options(&show_options) => Ok(Request::ShowTables),
        Statement::ShowColumns {
            extended: false,
            full: false,
            show_options,
        } => show_columns(show_options),
        Statement::ShowTables { .. } => Err(show_refusal()),
        Statement::Copy { .. } => Err(copy_refusal()),
        Statement::Explain { .. } | Statement::ExplainTable { .. } => Err(explain_refusal()),
        Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Merge(_)
        | Statement::Truncate(_) => Err(QueryError::refused(
            Rule::Dml,
            "catalog data cannot be changed; save results with CREATE TABLE work.<name> AS SELECT …",
        )),
        Statement::Set(_)
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Prepare { .. }
        | Statement::Execute { .. }
        | Statement::Deallocate { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. } => Err(QueryError::refused(
            Rule::Statement,
            "only queries can be run; engine settings, transactions and SQL-level PREPARE are not available (use your client's prepared statements)",
        )),
        _ => Err(QueryError::refused(
            Rule::Ddl,
            "only queries and CREATE/DROP TABLE in the work schema are allowed",
        )),
    }
}

/// `work.<name>`: lower-case letters, digits and `_`, up to 63 characters.
fn workspace_table(name: &ObjectName) -> Result<String, QueryError> {
    let parts: Vec<String> = name.0.iter().map(|part| part.to_string()).collect();
    let refuse = || {
        QueryError::refused(
            Rule::Workspace,
            "workspace tables are named work.<name> (a-z, 0-9, _; up to 63 characters)",
        )
    };
    match parts.as_slice() {
        [schema, table] if schema.eq_ignore_ascii_case(WORKSPACE_SCHEMA) => {
            let table = table.to_ascii_lowercase();
            let valid = !table.is_empty()
                && table.len() <= 63
                && table
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !table.starts_with("__");
            if valid { Ok(table) } else { Err(refuse()) }
        }
        _ => Err(QueryError::refused(
            Rule::Ddl,
            "tables can only be created or dropped in the work schema (work.<name>)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(sql: &str) -> Option<Rule> {
        match classify(sql) {
            Err(QueryError::Refused { rule, .. }) => Some(rule),
            _ => None,
        }
    }

    #[test]
    fn statements_are_classified() {
        assert!(matches!(classify("SELECT 1"), Ok(Request::Query(_))));
        assert!(matches!(
            classify("CREATE TABLE work.cohort AS SELECT 1"),
            Ok(Request::CreateWorkspaceTable { name, .. }) if name == "cohort"
        ));
        assert!(matches!(
            classify("DROP TABLE IF EXISTS work.cohort"),
            Ok(Request::DropWorkspaceTable {
                if_exists: true,
                ..
            })
        ));
        assert_eq!(rule("CREATE TABLE ndb.x AS SELECT 1"), Some(Rule::Ddl));
        assert_eq!(rule("CREATE TABLE work.x (a INT)"), Some(Rule::Ddl));
        assert_eq!(
            rule("CREATE TABLE work.\"X-1\" AS SELECT 1"),
            Some(Rule::Workspace)
        );
        assert_eq!(rule("DROP TABLE ndb.receipts"), Some(Rule::Ddl));
        assert_eq!(rule("CREATE VIEW v AS SELECT 1"), Some(Rule::Ddl));
        assert_eq!(
            rule("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'"),
            Some(Rule::Ddl)
        );
        assert_eq!(rule("COPY (SELECT 1) TO '/tmp/x.csv'"), Some(Rule::Copy));
        assert_eq!(
            rule("SET datafusion.execution.batch_size = 1"),
            Some(Rule::Statement)
        );
        assert_eq!(rule("EXPLAIN SELECT 1"), Some(Rule::Explain));
        assert_eq!(rule("INSERT INTO work.x VALUES (1)"), Some(Rule::Dml));
        assert_eq!(rule("SELECT 1; SELECT 2"), Some(Rule::Statement));
    }

    #[test]
    fn positional_placeholders_are_numbered_in_order() {
        let Ok(Request::Query(statement)) =
            classify("SELECT a FROM t WHERE b = ? AND c IN (?, '?')")
        else {
            panic!("a query");
        };
        assert_eq!(
            statement.to_string(),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, '?')"
        );
    }
}
