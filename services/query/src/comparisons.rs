//! Text compared with a number is the user's mistake, said at planning.
//!
//! DataFusion would coerce `service_month > 202404` by casting the text
//! column to a number, and the guard makes every cast total (a value that
//! does not convert becomes NULL), so the query would answer an empty or
//! partial result without a word. This check runs on the plan before type
//! coercion and refuses such a comparison as an invalid statement saying
//! what to write instead. It looks at types only, never at data.

use crate::QueryError;
use arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ExprSchema};
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};

/// Refuses a comparison (or `IN` list) of text with a number anywhere in
/// `plan`, its subqueries included.
pub(crate) fn check_text_compared_with_numbers(plan: &LogicalPlan) -> Result<(), QueryError> {
    let mut mismatch = None;
    plan.apply_with_subqueries(|node| {
        let schema = input_schema(node);
        node.apply_expressions(|expr| {
            expr.apply(|expr| {
                mismatch = mismatched(expr, &schema);
                Ok(stop_if(mismatch.is_some()))
            })
        })?;
        Ok(stop_if(mismatch.is_some()))
    })?;
    match mismatch {
        Some(text) => Err(QueryError::Invalid(format!(
            "{text} compares text with a number: compare text columns with text \
             (service_month >= '2024-04', prefecture_code = '13') or cast one side \
             explicitly (CAST(x AS BIGINT))"
        ))),
        None => Ok(()),
    }
}

fn stop_if(found: bool) -> TreeNodeRecursion {
    if found {
        TreeNodeRecursion::Stop
    } else {
        TreeNodeRecursion::Continue
    }
}

/// The schema a node's expressions are written against: its inputs'
/// columns together (a node without inputs has its own).
fn input_schema(node: &LogicalPlan) -> DFSchema {
    let mut schema = DFSchema::empty();
    for input in node.inputs() {
        schema.merge(input.schema());
    }
    schema.merge(node.schema());
    schema
}

/// The comparison `expr`, as written, when it sets text against a number.
fn mismatched(expr: &Expr, schema: &dyn ExprSchema) -> Option<String> {
    let type_of = |expr: &Expr| expr.get_type(schema).ok();
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_comparison(*op) => {
            let (left_type, right_type) = (type_of(left)?, type_of(right)?);
            mixes_text_and_number(&left_type, &right_type).then(|| expr.human_display().to_string())
        }
        Expr::InList(in_list) => {
            let value_type = type_of(&in_list.expr)?;
            in_list
                .list
                .iter()
                .filter_map(type_of)
                .any(|item| mixes_text_and_number(&value_type, &item))
                .then(|| in_list_display(in_list))
        }
        _ => None,
    }
}

fn in_list_display(in_list: &InList) -> String {
    let items: Vec<String> = in_list
        .list
        .iter()
        .map(|item| item.human_display().to_string())
        .collect();
    let not = if in_list.negated { "NOT " } else { "" };
    format!(
        "{} {not}IN ({})",
        in_list.expr.human_display(),
        items.join(", ")
    )
}

fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

fn mixes_text_and_number(a: &DataType, b: &DataType) -> bool {
    (is_text(a) && b.is_numeric()) || (a.is_numeric() && is_text(b))
}

fn is_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_text(value),
        _ => false,
    }
}
