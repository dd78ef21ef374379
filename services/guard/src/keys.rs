//! Where a statement may read a person or record key.
//!
//! Keys (`person_id`, `receipt_id`, …) are pseudonyms: they link rows and
//! count persons, and mean nothing as values. Read as values they become a
//! dial on persons: the persons with ids 1 to 9 are nine persons the
//! researcher knows without asking (ids are dense), so a group of them and
//! one target is shown exactly when the target belongs to it; an ordering by
//! id picks persons one by one. So a key may be read only where it links or
//! counts:
//!
//! - alone, as a join key, an aggregate's argument (`count(DISTINCT
//!   person_id)`) or a window partition;
//! - compared with another key (`a.person_id = b.person_id`);
//! - as the value an `IN (subquery)` of keys looks up, or tested for NULL.
//!
//! A key joined to a value (`ON d.person_id = v.x`) or looked up among
//! values (`person_id IN (SELECT x FROM ref.codes)`) is compared with
//! constants and refused too.
//!
//! Anything else (a comparison with a constant, arithmetic, a function, a
//! cast compared with text, an ordering) is refused with rule `key-value`.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use crate::error::{QueryError, Rule};
use crate::rewrite::Guarded;

/// Checks every key `expr` reads (`place` names the clause, for the error).
pub fn check_key_uses(input: &Guarded, expr: &Expr, place: &str) -> Result<(), QueryError> {
    Reader { input, place }.visit(expr, true)
}

/// Refuses an ordering that reads a key at all.
pub fn check_key_ordering<'a>(
    input: &Guarded,
    exprs: impl IntoIterator<Item = &'a Expr>,
) -> Result<(), QueryError> {
    let reader = Reader {
        input,
        place: "an ordering",
    };
    exprs
        .into_iter()
        .try_for_each(|expr| reader.visit(expr, false))
}

struct Reader<'a> {
    input: &'a Guarded,
    place: &'a str,
}

impl Reader<'_> {
    /// `alone`: whether a key may stand here by itself.
    fn visit(&self, expr: &Expr, alone: bool) -> Result<(), QueryError> {
        match expr {
            Expr::Column(_) if self.is_key(expr) && !alone => Err(self.refusal()),
            Expr::Alias(alias) => self.visit(&alias.expr, alone),
            Expr::Cast(cast) => self.visit(&cast.expr, alone),
            Expr::TryCast(cast) => self.visit(&cast.expr, alone),
            Expr::BinaryExpr(BinaryExpr { left, op, right })
                if links(*op) && self.is_key(left) && self.is_key(right) =>
            {
                Ok(())
            }
            Expr::InSubquery(in_subquery) => self.visit(&in_subquery.expr, true),
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => self.visit(inner, true),
            Expr::AggregateFunction(AggregateFunction { params, .. }) => {
                self.visit_all(&params.args, true)?;
                self.visit_all(params.filter.as_deref(), false)?;
                self.visit_all(params.order_by.iter().map(|sort| &sort.expr), false)
            }
            Expr::WindowFunction(window) => self.visit_window(window),
            _ => {
                let mut outcome = Ok(());
                expr.apply_children(|child| {
                    outcome = self.visit(child, false);
                    Ok(if outcome.is_ok() {
                        TreeNodeRecursion::Continue
                    } else {
                        TreeNodeRecursion::Stop
                    })
                })
                .map_err(QueryError::from)?;
                outcome
            }
        }
    }

    fn visit_all<'e>(
        &self,
        exprs: impl IntoIterator<Item = &'e Expr>,
        alone: bool,
    ) -> Result<(), QueryError> {
        exprs
            .into_iter()
            .try_for_each(|expr| self.visit(expr, alone))
    }

    fn visit_window(&self, window: &WindowFunction) -> Result<(), QueryError> {
        let params = &window.params;
        self.visit_all(&params.args, true)?;
        self.visit_all(&params.partition_by, true)?;
        self.visit_all(params.filter.as_deref(), false)?;
        self.visit_all(params.order_by.iter().map(|sort| &sort.expr), false)
    }

    /// A key column, possibly cast.
    fn is_key(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Column(column) => {
                self.input
                    .tags
                    .of_column(self.input.plan.schema(), column)
                    .identifying
            }
            Expr::Cast(cast) => self.is_key(&cast.expr),
            Expr::TryCast(cast) => self.is_key(&cast.expr),
            _ => false,
        }
    }

    fn refusal(&self) -> QueryError {
        key_value_refusal(self.place)
    }
}

/// A key read as a value in `place`.
pub fn key_value_refusal(place: &str) -> QueryError {
    QueryError::refused(
        Rule::KeyValue,
        format!(
            "person and record keys (person_id, receipt_id, …) are pseudonyms: they may link rows (a.person_id = b.person_id, person_id IN (SELECT person_id …)) and count persons (count(DISTINCT person_id)), not be compared with constants, computed on or ordered by; {place} reads one as a value"
        ),
    )
}

/// Refuses a join whose equality pairs a key on one side with a value on
/// the other (`ON d.person_id = v.number`, a VALUES row or a reference
/// table's column): that is a comparison with constants.
pub fn check_key_join(
    left: &Guarded,
    right: &Guarded,
    on: &[(Expr, Expr)],
) -> Result<(), QueryError> {
    let is_key = |input: &Guarded, expr: &Expr| {
        Reader {
            input,
            place: "a join condition",
        }
        .is_key(expr)
    };
    for (l, r) in on {
        if is_key(left, l) != is_key(right, r) {
            return Err(key_value_refusal("a join condition"));
        }
    }
    Ok(())
}

/// Comparisons that link two keys.
fn links(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq | Operator::NotEq | Operator::IsDistinctFrom | Operator::IsNotDistinctFrom
    )
}
