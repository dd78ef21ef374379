//! The aggregate functions the guard has rules for, inside a query (one
//! person's rows, grouped by person_id) and in the released aggregate (over
//! persons), and how each released one splits into per-person partials.

use datafusion::common::DFSchema;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::expr::AggregateFunction;

use crate::error::{QueryError, Rule};
use crate::tags::{ColumnTags, Tags};

/// Aggregates allowed over one person's rows (an aggregate grouped by
/// person_id): their result is that person's own value.
const PER_PERSON: &[&str] = &[
    "count", "sum", "avg", "mean", "min", "max", "bool_and", "bool_or",
];

/// Aggregates whose result is one of their input values.
const VALUE_REVEALING: &[&str] = &["min", "max", "bool_and", "bool_or"];

/// The aggregate function under aliases, if `expr` is one.
pub fn aggregate_function(expr: &Expr) -> Option<&AggregateFunction> {
    match expr {
        Expr::Alias(alias) => aggregate_function(&alias.expr),
        Expr::AggregateFunction(function) => Some(function),
        _ => None,
    }
}

pub fn function_name(function: &AggregateFunction) -> String {
    function.func.name().to_ascii_lowercase()
}

/// Refuses an aggregate over one person's rows that is not allowlisted.
pub fn check_inner_aggregate(expr: &Expr) -> Result<(), QueryError> {
    let function = aggregate_function(expr)
        .ok_or_else(|| QueryError::internal("aggregate expression is not a function"))?;
    let name = function_name(function);
    if PER_PERSON.contains(&name.as_str()) {
        Ok(())
    } else {
        Err(not_available(&name, "per person"))
    }
}

fn not_available(name: &str, place: &str) -> QueryError {
    QueryError::refused(
        Rule::Unsupported,
        format!(
            "{} is not available {place}; the guard releases COUNT, COUNT(DISTINCT person_id), SUM, AVG, MIN and MAX (see docs/query-rules.md)",
            name.to_uppercase()
        ),
    )
}

/// Tags of the arguments of an aggregate function (its FILTER only selects
/// rows: the released value's contributors are counted after it).
pub fn argument_tags(tags: &ColumnTags, schema: &DFSchema, function: &AggregateFunction) -> Tags {
    match function.params.args.as_slice() {
        [only] => tags.of_expr(schema, only),
        args => args
            .iter()
            .map(|arg| tags.of_expr(schema, arg))
            .fold(Tags::NONE, Tags::merge),
    }
}

/// Tags of a per-person aggregate's output column: value-revealing
/// functions keep everything their input had; counts, sums and averages
/// are values about the person (sensitive), padded if their input was.
pub fn output_tags(tags: &ColumnTags, schema: &DFSchema, expr: &Expr) -> Tags {
    let Some(function) = aggregate_function(expr) else {
        return tags.of_expr(schema, expr).derived();
    };
    let name = function_name(function);
    let input = argument_tags(tags, schema, function);
    if VALUE_REVEALING.contains(&name.as_str()) {
        input.derived()
    } else {
        input.summarized(name != "count")
    }
}

/// How one released aggregate is computed from per-person partials. Each
/// value counts its own contributors: the persons with at least one row it
/// aggregates (after FILTER, and with a non-NULL argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partial {
    /// `count(x)` / `count(*)`: sum of per-person counts.
    Count,
    /// `count(DISTINCT person_id)`: the number of contributing persons.
    Persons,
    /// `sum(x)`: sum of per-person sums.
    Sum,
    /// `avg(x)`: sum of sums over sum of counts.
    Avg,
    Min,
    Max,
}

impl Partial {
    /// The rule for a released aggregate, or its refusal.
    pub fn of(function: &AggregateFunction, argument: Tags) -> Result<Partial, QueryError> {
        let name = function_name(function);
        let params = &function.params;
        if !params.order_by.is_empty() {
            return Err(not_available(&format!("{name} … ORDER BY"), "here"));
        }
        match (name.as_str(), params.distinct) {
            ("count", false) => Ok(Partial::Count),
            ("count", true) if argument.person_equal && params.args.len() == 1 => {
                Ok(Partial::Persons)
            }
            ("count", true) => Err(QueryError::refused(
                Rule::Unsupported,
                "COUNT(DISTINCT …) is released only for person_id; count another column's distinct values per person in a subquery",
            )),
            ("sum" | "avg" | "mean", false) if argument.padded => Err(QueryError::refused(
                Rule::PaddedSum,
                "SUM and AVG take a column or arithmetic of columns (scaled by constants), not CASE, COALESCE, functions or constants: other persons' contributions would be known; select rows with FILTER (WHERE …)",
            )),
            ("sum", false) if argument.volume_computed => Err(QueryError::refused(
                Rule::Publication,
                "a drug volume is totalled only as sum(quantity), not of a value computed from it: the publication rule (totals under its minimum withheld, policies/disclosure.toml) checks the column's own total",
            )),
            ("sum", false) => Ok(Partial::Sum),
            ("avg" | "mean", false) => Ok(Partial::Avg),
            ("min" | "max", _) if argument.sensitive || argument.identifying => {
                Err(QueryError::refused(
                    Rule::ValueRevealingAggregate,
                    format!(
                        "{} of a sensitive or identifying column can reveal one person's value; use counts, sums or averages",
                        name.to_uppercase()
                    ),
                ))
            }
            ("min", _) => Ok(Partial::Min),
            ("max", _) => Ok(Partial::Max),
            (_, true) => Err(not_available(
                &format!("{name}(DISTINCT …)"),
                "in a released result",
            )),
            _ => Err(not_available(&name, "in a released result")),
        }
    }

    /// Whether a few persons can dominate the value (sums of amounts and
    /// of rows): the dominance rule applies to their absolute partials.
    pub fn has_dominance(self) -> bool {
        matches!(self, Partial::Count | Partial::Sum | Partial::Avg)
    }

    /// Whether the released value follows the project's rounding.
    pub fn is_rounded(self) -> bool {
        matches!(self, Partial::Count | Partial::Persons | Partial::Sum)
    }
}
