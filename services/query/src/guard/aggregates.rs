//! Which aggregate functions reveal single values, and how the released
//! aggregate's functions split into per-person partials.

use datafusion::common::DFSchema;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::expr::AggregateFunction;

use crate::tags::{ColumnTags, Tags};

/// Functions whose result can be one person's value.
const VALUE_REVEALING: &[&str] = &[
    "min",
    "max",
    "first_value",
    "last_value",
    "nth_value",
    "array_agg",
    "string_agg",
    "median",
    "percentile_cont",
    "approx_percentile_cont",
    "approx_percentile_cont_with_weight",
    "approx_median",
    "any_value",
    "bit_and",
    "bit_or",
    "bit_xor",
    "bool_and",
    "bool_or",
];

/// Functions whose result keeps the sensitivity of their input.
const SUMMARIZING: &[&str] = &[
    "sum",
    "avg",
    "mean",
    "stddev",
    "stddev_pop",
    "var",
    "var_pop",
    "var_samp",
    "stddev_samp",
    "corr",
    "covar",
    "covar_pop",
    "covar_samp",
    "regr_slope",
    "regr_intercept",
];

pub fn is_value_revealing(name: &str) -> bool {
    VALUE_REVEALING.contains(&name)
}

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

/// Tags of the arguments of an aggregate function.
pub fn argument_tags(tags: &ColumnTags, schema: &DFSchema, function: &AggregateFunction) -> Tags {
    function
        .params
        .args
        .iter()
        .map(|arg| tags.of_expr(schema, arg))
        .fold(Tags::default(), |all, one| all | one)
}

/// Tags of an aggregate's output column: value-revealing functions keep
/// everything their input had; summaries keep sensitivity; counts nothing.
pub fn output_tags(tags: &ColumnTags, schema: &DFSchema, expr: &Expr) -> Tags {
    let Some(function) = aggregate_function(expr) else {
        return tags.of_expr(schema, expr).derived();
    };
    let name = function_name(function);
    let input = argument_tags(tags, schema, function);
    if is_value_revealing(&name) {
        input.derived()
    } else {
        input.summarized(SUMMARIZING.contains(&name.as_str()))
    }
}

/// How one released aggregate is computed from per-person partials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partial {
    /// `count(x)` / `count(*)`: sum of per-person counts.
    Count,
    /// `count(DISTINCT person_id)`: the number of persons.
    Persons,
    /// `sum(x)`: sum of per-person sums (dominance applies).
    Sum,
    /// `avg(x)`: sum of sums over sum of counts (dominance applies).
    Avg,
    Min,
    Max,
    /// Anything else: computed directly, with a distinct person count.
    Direct,
}

impl Partial {
    pub fn of(function: &AggregateFunction, argument_tags: Tags) -> Partial {
        let distinct = function.params.distinct;
        match (function_name(function).as_str(), distinct) {
            ("count", false) => Partial::Count,
            ("count", true) if argument_tags.person_equal && function.params.args.len() == 1 => {
                Partial::Persons
            }
            ("sum", false) => Partial::Sum,
            ("avg" | "mean", false) => Partial::Avg,
            ("min", _) => Partial::Min,
            ("max", _) => Partial::Max,
            _ => Partial::Direct,
        }
    }

    pub fn has_dominance(self) -> bool {
        matches!(self, Partial::Sum | Partial::Avg)
    }
}
