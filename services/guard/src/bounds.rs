//! Size and nesting bounds on a statement, checked before it is planned, so
//! that no statement can exhaust a stack or the planner for other users.
//!
//! Parsing builds chains such as `a + a + …` or `SELECT … UNION ALL …`
//! without recursion, but everything after it (visiting, planning, even
//! dropping the tree) recurses once per level. So parsing and these checks
//! run on a thread of their own with a large stack ([`on_parse_stack`]), and
//! only a statement within the bounds leaves it.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Query, SetExpr, Statement, TableFactor, Visit, Visitor,
};

use crate::error::{QueryError, Rule};

/// Longest statement accepted, in bytes (code lists of tens of thousands
/// of codes fit).
pub const MAX_SQL_BYTES: usize = 512 * 1024;
/// Deepest expression nesting (`a + b + …` counts one level per operator).
pub const MAX_EXPRESSION_DEPTH: usize = 256;
/// Most operands of one chain of UNION / INTERSECT / EXCEPT.
pub const MAX_SET_OPERANDS: usize = 64;
/// Deepest nesting of subqueries.
pub const MAX_QUERY_DEPTH: usize = 32;
/// Most tables and subqueries named in FROM clauses.
pub const MAX_RELATIONS: usize = 64;
/// Stack of the thread that parses and checks a statement.
const PARSE_STACK_BYTES: usize = 256 << 20;

/// Refuses SQL text over [`MAX_SQL_BYTES`] before anything reads it.
pub fn check_length(sql: &str) -> Result<(), QueryError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(QueryError::refused(
            Rule::InputLimit,
            format!(
                "statements are limited to {} KiB of SQL; keep long code lists in a workspace table",
                MAX_SQL_BYTES / 1024
            ),
        ));
    }
    Ok(())
}

/// Refuses a parsed statement over the nesting bounds.
pub fn check_nesting(statement: &Statement) -> Result<(), QueryError> {
    let mut depth = Nesting::default();
    match statement.visit(&mut depth) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(refusal) => Err(refusal),
    }
}

/// Runs `work` (parsing and checking a statement) on a thread with a large
/// stack; the deep trees it may build are also dropped there.
pub fn on_parse_stack<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, QueryError> {
    std::thread::Builder::new()
        .name("enclave-parse".into())
        .stack_size(PARSE_STACK_BYTES)
        .spawn(work)
        .map_err(QueryError::internal)?
        .join()
        .map_err(|_| QueryError::internal("the statement parser stopped unexpectedly"))?
}

#[derive(Debug, Default)]
struct Nesting {
    expressions: usize,
    queries: usize,
    relations: usize,
}

fn over(what: &str, limit: usize) -> ControlFlow<QueryError> {
    ControlFlow::Break(QueryError::refused(
        Rule::InputLimit,
        format!(
            "statements are limited to {limit} {what}; split the query or use a workspace table"
        ),
    ))
}

impl Visitor for Nesting {
    type Break = QueryError;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<QueryError> {
        self.queries += 1;
        if self.queries > MAX_QUERY_DEPTH {
            return over("levels of nested subqueries", MAX_QUERY_DEPTH);
        }
        if set_operands(&query.body) > MAX_SET_OPERANDS {
            return over("operands of UNION, INTERSECT and EXCEPT", MAX_SET_OPERANDS);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<QueryError> {
        self.queries -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, _factor: &TableFactor) -> ControlFlow<QueryError> {
        self.relations += 1;
        if self.relations > MAX_RELATIONS {
            return over("tables and subqueries in FROM clauses", MAX_RELATIONS);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<QueryError> {
        self.expressions += 1;
        if self.expressions > MAX_EXPRESSION_DEPTH {
            return over("levels of nested expressions", MAX_EXPRESSION_DEPTH);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<QueryError> {
        self.expressions -= 1;
        ControlFlow::Continue(())
    }
}

/// Operands of the set operations at the top of a query body, counted
/// without recursion (a chain of a thousand UNIONs is a thousand deep).
fn set_operands(body: &SetExpr) -> usize {
    let mut operands = 0;
    let mut pending = vec![body];
    while let Some(expr) = pending.pop() {
        match expr {
            SetExpr::SetOperation { left, right, .. } => {
                pending.push(left);
                pending.push(right);
            }
            _ => operands += 1,
        }
        if operands > MAX_SET_OPERANDS {
            break;
        }
    }
    operands
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rule_of(sql: String) -> Option<Rule> {
        on_parse_stack(move || {
            check_length(&sql)?;
            let statements = Parser::parse_sql(&GenericDialect {}, &sql)
                .map_err(|error| QueryError::Invalid(error.to_string()))?;
            for statement in &statements {
                check_nesting(statement)?;
            }
            Ok(())
        })
        .err()
        .and_then(|error| match error {
            QueryError::Refused { rule, .. } => Some(rule),
            _ => None,
        })
    }

    #[test]
    fn long_chains_are_refused_without_overflowing() {
        let terms = vec!["x"; 10_000].join(" + ");
        assert_eq!(
            rule_of(format!("SELECT {terms} FROM t")),
            Some(Rule::InputLimit)
        );
        let arms = vec!["SELECT 1"; 1_000].join(" UNION ALL ");
        assert_eq!(rule_of(arms), Some(Rule::InputLimit));
        let joins = (0..100)
            .map(|i| format!("JOIN t{i} USING (a)"))
            .collect::<Vec<_>>();
        assert_eq!(
            rule_of(format!("SELECT 1 FROM t {}", joins.join(" "))),
            Some(Rule::InputLimit)
        );
    }

    #[test]
    fn long_text_is_refused_before_parsing() {
        let sql = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
        assert_eq!(rule_of(sql), Some(Rule::InputLimit));
    }

    #[test]
    fn ordinary_and_wide_statements_pass() {
        let terms = vec!["x"; MAX_EXPRESSION_DEPTH / 2].join(" + ");
        assert_eq!(rule_of(format!("SELECT {terms} FROM t")), None);
        let codes = (0..20_000).map(|i| format!("'C{i}'")).collect::<Vec<_>>();
        assert_eq!(
            rule_of(format!("SELECT 1 FROM t WHERE c IN ({})", codes.join(", "))),
            None
        );
        let arms = vec!["SELECT 1"; MAX_SET_OPERANDS].join(" UNION ALL ");
        assert_eq!(rule_of(arms), None);
    }
}
