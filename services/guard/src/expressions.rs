//! The expressions a guarded plan may compute over persons' rows: an
//! allowlist of expression kinds, operators and scalar functions, each of
//! which cannot fail on any value once [`make_total`] has rewritten the plan.
//! Whether a query fails must never depend on one person's data (a CAST that
//! fails only on the target's row would answer a yes/no question), so:
//!
//! - `CAST` becomes `TRY_CAST` (NULL where a value does not convert);
//! - `a / b` and `a % b` divide by `NULLIF(b, 0)`;
//! - functions with a shape argument (a length, position or digit count)
//!   take it as a literal that is checked when the query is planned;
//! - `LIKE` takes a literal pattern; regular expressions are not available.
//!
//! Anything else is refused with rule `unsupported`, naming the construct.

use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::expr::{ScalarFunction, TryCast};
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator, lit};

use crate::error::{QueryError, Rule};

/// Scalar functions without a shape argument: total on every input.
const TOTAL_FUNCTIONS: &[&str] = &[
    "upper",
    "lower",
    "btrim",
    "ltrim",
    "rtrim",
    "trim",
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "concat",
    "concat_ws",
    "starts_with",
    "ends_with",
    "strpos",
    "instr",
    "contains",
    "replace",
    "reverse",
    "initcap",
    "coalesce",
    "nullif",
    "nvl",
    "nvl2",
    "greatest",
    "least",
    "abs",
    "floor",
    "ceil",
    "signum",
    "isnan",
    "iszero",
];

/// Scalar functions whose shape argument (a length, position or digit
/// count) must be a literal in range (see `check_function`).
const SHAPED_FUNCTIONS: &[&str] = &[
    "substr",
    "substring",
    "left",
    "right",
    "lpad",
    "rpad",
    "split_part",
    "round",
    "trunc",
];

/// Every scalar function a guarded plan may call (clients' metadata lists
/// them).
pub fn allowed_scalar_functions() -> impl Iterator<Item = &'static str> {
    TOTAL_FUNCTIONS.iter().chain(SHAPED_FUNCTIONS).copied()
}

/// Longest padding `lpad`/`rpad` may ask for.
const MAX_PAD: i64 = 1024;

/// Checks that every expression of `plan` (this node only, not its inputs)
/// is on the allowlist.
pub fn check_node(plan: &LogicalPlan) -> Result<(), QueryError> {
    for expr in plan.expressions() {
        check_expr(&expr)?;
    }
    Ok(())
}

/// Checks one expression tree (subqueries are checked where they are
/// planned, by the guard's subquery rules).
pub fn check_expr(expr: &Expr) -> Result<(), QueryError> {
    let mut refusal = None;
    expr.apply(|node| match check_kind(node) {
        Ok(()) => Ok(TreeNodeRecursion::Continue),
        Err(error) => {
            refusal = Some(error);
            Ok(TreeNodeRecursion::Stop)
        }
    })?;
    refusal.map_or(Ok(()), Err)
}

fn check_kind(expr: &Expr) -> Result<(), QueryError> {
    match expr {
        Expr::Column(_)
        | Expr::Literal(..)
        | Expr::Alias(_)
        | Expr::Not(_)
        | Expr::IsNotNull(_)
        | Expr::IsNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsUnknown(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::IsNotUnknown(_)
        | Expr::Negative(_)
        | Expr::Between(_)
        | Expr::Case(_)
        | Expr::Cast(_)
        | Expr::TryCast(_)
        | Expr::InList(_)
        | Expr::GroupingSet(_)
        // A parameter is a literal bound before the query runs.
        | Expr::Placeholder(_)
        // Checked by the rules of the node that holds them.
        | Expr::AggregateFunction(_)
        | Expr::WindowFunction(_)
        | Expr::InSubquery(_)
        | Expr::Exists(_)
        | Expr::ScalarSubquery(_) => Ok(()),
        Expr::BinaryExpr(BinaryExpr { op, .. }) => check_operator(*op),
        Expr::Like(like) => {
            if matches!(*like.pattern, Expr::Literal(..)) {
                Ok(())
            } else {
                Err(unsupported("LIKE with a pattern that is not a literal"))
            }
        }
        Expr::ScalarFunction(function) => check_function(function),
        Expr::SimilarTo(_) => Err(unsupported("SIMILAR TO")),
        Expr::OuterReferenceColumn(..) => Err(QueryError::refused(
            Rule::PersonSubquery,
            "correlated subqueries are not supported; select persons with person_id IN (SELECT person_id FROM …)",
        )),
        other => Err(unsupported(other.variant_name())),
    }
}

fn check_operator(op: Operator) -> Result<(), QueryError> {
    match op {
        Operator::Eq
        | Operator::NotEq
        | Operator::Lt
        | Operator::LtEq
        | Operator::Gt
        | Operator::GtEq
        | Operator::Plus
        | Operator::Minus
        | Operator::Multiply
        | Operator::Divide
        | Operator::Modulo
        | Operator::And
        | Operator::Or
        | Operator::IsDistinctFrom
        | Operator::IsNotDistinctFrom
        | Operator::StringConcat => Ok(()),
        other => Err(unsupported(&format!("the operator {other}"))),
    }
}

fn check_function(function: &ScalarFunction) -> Result<(), QueryError> {
    let name = function.name().to_ascii_lowercase();
    let args = &function.args;
    if TOTAL_FUNCTIONS.contains(&name.as_str()) {
        return Ok(());
    }
    match name.as_str() {
        // substr(s, start [, length]): a negative length fails.
        "substr" | "substring" => {
            shape_args(&name, &args[1..], |index, value| index == 0 || value >= 0)
        }
        "left" | "right" => shape_args(&name, &args[1..], |_, _| true),
        "lpad" | "rpad" => shape_args(&name, &args[1..2], |_, value| {
            (0..=MAX_PAD).contains(&value)
        }),
        // split_part(s, delimiter, n): n = 0 fails.
        "split_part" => shape_args(&name, &args[2..], |_, value| value != 0),
        "round" | "trunc" => shape_args(&name, &args[1..], |_, value| (-38..=38).contains(&value)),
        _ => Err(unsupported(&format!("the function {name}"))),
    }
}

/// `args` must be integer literals that `valid` accepts (by position).
fn shape_args(
    name: &str,
    args: &[Expr],
    valid: impl Fn(usize, i64) -> bool,
) -> Result<(), QueryError> {
    for (index, arg) in args.iter().enumerate() {
        let value = integer_literal(arg).ok_or_else(|| {
            QueryError::refused(
                Rule::Unsupported,
                format!("{name}: lengths, positions and digit counts must be integer literals"),
            )
        })?;
        if !valid(index, value) {
            return Err(QueryError::Invalid(format!(
                "{name}: argument {} is out of range",
                index + 2
            )));
        }
    }
    Ok(())
}

fn integer_literal(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(value, _) => match value {
            ScalarValue::Int8(Some(v)) => Some(i64::from(*v)),
            ScalarValue::Int16(Some(v)) => Some(i64::from(*v)),
            ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
            ScalarValue::Int64(Some(v)) => Some(*v),
            ScalarValue::UInt8(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt16(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt32(Some(v)) => Some(i64::from(*v)),
            _ => None,
        },
        Expr::Cast(cast) => integer_literal(&cast.expr),
        Expr::TryCast(cast) => integer_literal(&cast.expr),
        Expr::Negative(inner) => integer_literal(inner).map(|v| -v),
        _ => None,
    }
}

fn unsupported(what: &str) -> QueryError {
    QueryError::refused(
        Rule::Unsupported,
        format!(
            "{what} is not among the constructs the guard can follow (see docs/query-rules.md)"
        ),
    )
}

/// Rewrites every expression of a guarded plan (and of its subqueries) so
/// it cannot fail on a value: casts become TRY_CAST, divisors become
/// NULLIF(divisor, 0).
pub fn make_total(plan: LogicalPlan) -> Result<LogicalPlan, QueryError> {
    let total = plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|expr| expr.transform_up(|expr| Ok(total_expr(expr))))?
            .map_data(LogicalPlan::recompute_schema)
    })?;
    Ok(total.data)
}

fn total_expr(expr: Expr) -> Transformed<Expr> {
    match expr {
        Expr::Cast(cast) => Transformed::yes(Expr::TryCast(TryCast::new_from_field(
            cast.expr, cast.field,
        ))),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: op @ (Operator::Divide | Operator::Modulo),
            right,
        }) if !is_nonzero_literal(&right) => Transformed::yes(Expr::BinaryExpr(BinaryExpr {
            left,
            op,
            right: Box::new(datafusion::functions::core::expr_fn::nullif(
                *right,
                lit(0_i64),
            )),
        })),
        other => Transformed::no(other),
    }
}

fn is_nonzero_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Literal(value, _) => {
            !value.is_null()
                && ScalarValue::new_zero(&value.data_type()).is_ok_and(|zero| zero != *value)
        }
        _ => false,
    }
}
