//! The released result. A query's plan splits in two:
//!
//! - the **released aggregate** (its outermost aggregate over persons) is
//!   rewritten to run in two levels, first one row per (group, person), then
//!   per group, computing beside each of the user's values what disclosure
//!   control needs: that value's own contributors (persons with a row it
//!   aggregates, after FILTER and NULLs), the largest absolute per-person
//!   partials for the dominance rule, persons and facilities per group, and
//!   grouping levels;
//! - the **result stage** above it (HAVING, the SELECT list, ORDER BY,
//!   LIMIT, windows over groups) runs only after disclosure control, over
//!   the released values alone, so nothing suppressed can steer it. It may
//!   not read any table.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, DFSchema};
use datafusion::functions::core::expr_fn::nullif;
use datafusion::functions::math::expr_fn::{abs, signum};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::expr_fn::{count, count_distinct, max, min, sum};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Distinct, Expr, GroupingSet, LogicalPlan, Projection, cast, col, lit, try_cast,
};

use crate::aggregates::{Partial, aggregate_function, argument_tags};
use crate::error::{QueryError, Rule};
use crate::expressions::check_node;
use crate::rewrite::{
    Guarded, Scope, check_care_age_groups, check_reads, has_subquery, rewrite,
    with_guarded_subqueries,
};
use crate::sketch::person_set;
use crate::tags::Tags;
use crate::top2::top2_sum;

pub const N_PERSONS: &str = "__enclave_n_persons";
pub const FACILITIES: &str = "__enclave_facilities_";
/// `__enclave_municipality_<i>_min` and `_max`: the least and greatest
/// municipality code of grouped-by municipality column i in the group
/// (equal when the group is of one municipality).
pub const MUNICIPALITY: &str = "__enclave_municipality_";
/// `__enclave_contributors_<i>`: persons contributing to visible column i.
pub const CONTRIBUTORS: &str = "__enclave_contributors_";
/// `__enclave_top2_<i>`: the two largest absolute per-person partials.
pub const TOP2: &str = "__enclave_top2_";
/// `__enclave_total_<i>`: the sum of absolute per-person partials.
pub const TOTAL: &str = "__enclave_total_";
pub const GROUPING: &str = "__enclave_grouping";
/// `__enclave_set_<i>`: the person-set sketch of visible column i's
/// contributors with their partials (release ledger only).
pub const PERSON_SET: &str = "__enclave_set_";
/// The person-set sketch of the group's persons (release ledger only).
pub const GROUP_SET: &str = "__enclave_set_group";
pub const KEY: &str = "__enclave_key_";

/// A query plan ready to run.
#[derive(Debug)]
pub struct ReleasePlan {
    /// The released aggregate with its hidden columns (or, for a plan that
    /// reads no table, the whole plan).
    pub plan: LogicalPlan,
    /// False only for plans that read no table (e.g. the `SELECT 1` clients
    /// send to test a connection): they hold no data and skip disclosure
    /// control. Every other result must pass it.
    pub checked: bool,
    /// The result stage, outermost node first, to rebuild over the released
    /// values (see [`result_stage`]).
    pub result_stage: Vec<LogicalPlan>,
    /// The released aggregate's values and how each is computed.
    pub values: Vec<ReleasedValue>,
}

/// One value column of the released aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleasedValue {
    /// Its position in the released aggregate's schema.
    pub position: usize,
    pub partial: Partial,
    /// Computed from a volume column (its totals have a minimum).
    pub volume: bool,
}

/// How the released aggregate is computed for a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseOptions {
    /// Counts and sums are rounded half up to a multiple of this in the
    /// plan (1: not rounded).
    pub rounding: i64,
    /// Whether the plan computes the person-set sketches the release
    /// ledger reads (then rounding is left to the ledger's answers).
    pub person_sets: bool,
}

/// Rewrites a query plan for release.
pub fn release(
    plan: &LogicalPlan,
    scope: &Scope,
    options: ReleaseOptions,
) -> Result<ReleasePlan, QueryError> {
    if !reads_tables(plan)? {
        return Ok(ReleasePlan {
            plan: plan.clone(),
            checked: false,
            result_stage: Vec::new(),
            values: Vec::new(),
        });
    }
    let (stage, aggregate) = split_result_stage(plan)?;
    let scope = scope.reading(plan)?;
    let (plan, values) = release_aggregate(aggregate, &scope, options)?;
    Ok(ReleasePlan {
        plan,
        checked: true,
        result_stage: stage,
        values,
    })
}

fn reads_tables(plan: &LogicalPlan) -> Result<bool, QueryError> {
    let mut reads = false;
    plan.apply_with_subqueries(|node| {
        reads |= matches!(node, LogicalPlan::TableScan(_));
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(reads)
}

/// The nodes above the outermost aggregate, and that aggregate. They may
/// only compute over its output: no subquery, no other input.
fn split_result_stage(plan: &LogicalPlan) -> Result<(Vec<LogicalPlan>, &Aggregate), QueryError> {
    let mut stage = Vec::new();
    let mut node = plan;
    loop {
        match node {
            LogicalPlan::Aggregate(aggregate) => return Ok((stage, aggregate)),
            LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Window(_)
            | LogicalPlan::Distinct(Distinct::All(_)) => {
                if node.expressions().iter().any(has_subquery) {
                    return Err(QueryError::refused(
                        Rule::PersonSubquery,
                        "conditions on a released result may only use its released values, not subqueries",
                    ));
                }
                stage.push(node.clone());
                node = node.inputs()[0];
            }
            _ => return Err(row_level_refusal()),
        }
    }
}

fn row_level_refusal() -> QueryError {
    QueryError::refused(
        Rule::RowLevel,
        "only aggregates over persons may leave the enclave: aggregate with GROUP BY and count/sum/avg, or save rows inside the enclave with CREATE TABLE work.<name> AS SELECT …",
    )
}

/// The result stage rebuilt over `released` (a plan whose output has the
/// released aggregate's schema, e.g. a scan of the released values).
pub fn result_stage(
    stage: &[LogicalPlan],
    released: LogicalPlan,
) -> Result<LogicalPlan, QueryError> {
    let mut plan = released;
    for node in stage.iter().rev() {
        plan = node.with_new_exprs(node.expressions(), vec![plan])?;
    }
    Ok(plan)
}

/// One aggregate of the user's released aggregate, checked and classified.
struct UserAggregate {
    function: AggregateFunction,
    partial: Partial,
    volume: bool,
}

fn release_aggregate(
    aggregate: &Aggregate,
    scope: &Scope,
    options: ReleaseOptions,
) -> Result<(LogicalPlan, Vec<ReleasedValue>), QueryError> {
    check_node(&LogicalPlan::Aggregate(aggregate.clone()))?;
    let input = rewrite(&aggregate.input, scope)?;
    let Some(person) = input.person.clone() else {
        return Err(QueryError::refused(
            Rule::Unsupported,
            "the released aggregate must read person-level rows directly",
        ));
    };
    check_grouping_sets(aggregate)?;
    let groups = distinct_groups(aggregate);
    check_groups(&input, &groups)?;
    check_reads(&input, &aggregate.aggr_expr, "an aggregate", scope)?;
    check_care_age_groups(&input, &groups, scope)?;
    let released = ReleasedAggregate {
        aggregate,
        facility_columns: group_columns(&input, &groups, |tags| tags.facility),
        municipality_columns: group_columns(&input, &groups, |tags| tags.municipality),
        users: aggregate
            .aggr_expr
            .iter()
            .map(|expr| classify_aggregate(&input, expr, scope))
            .collect::<Result<Vec<_>, _>>()?,
        groups,
        person,
        options,
    };
    let values = released.values();
    Ok((released.plan(input.plan)?, values))
}

/// ROLLUP and CUBE only: their totals nest, so complementary suppression
/// covers every total and its children. Arbitrary GROUPING SETS can hold two
/// groupings whose groups differ by one person (`GROUPING SETS ((sex),
/// (flag))` with a flag that singles a person out), which no rule within
/// one result covers.
fn check_grouping_sets(aggregate: &Aggregate) -> Result<(), QueryError> {
    match aggregate.group_expr.as_slice() {
        [Expr::GroupingSet(GroupingSet::GroupingSets(_))] => Err(QueryError::refused(
            Rule::Unsupported,
            "GROUPING SETS is not available; use ROLLUP or CUBE, whose totals nest",
        )),
        _ => Ok(()),
    }
}

fn distinct_groups(aggregate: &Aggregate) -> Vec<Expr> {
    match aggregate.group_expr.as_slice() {
        [Expr::GroupingSet(set)] => set.distinct_expr().into_iter().cloned().collect(),
        groups => groups.to_vec(),
    }
}

fn check_groups(input: &Guarded, groups: &[Expr]) -> Result<(), QueryError> {
    let schema = input.plan.schema();
    for group in groups {
        if input.tags.of_expr(schema, group).identifying {
            return Err(QueryError::refused(
                Rule::IdentifyingGroup,
                "grouping by person_id, a record key or a value computed from one would release single persons; group by coarser columns",
            ));
        }
    }
    Ok(())
}

/// The columns the group keys read whose tags are `marked`.
fn group_columns(input: &Guarded, groups: &[Expr], marked: fn(Tags) -> bool) -> Vec<Column> {
    let schema = input.plan.schema();
    let mut columns: Vec<Column> = Vec::new();
    for group in groups {
        for column in group.column_refs() {
            if marked(input.tags.of_column(schema, column)) && !columns.contains(column) {
                columns.push(column.clone());
            }
        }
    }
    columns
}

fn classify_aggregate(
    input: &Guarded,
    expr: &Expr,
    scope: &Scope,
) -> Result<UserAggregate, QueryError> {
    let expr = with_guarded_subqueries(expr.clone(), input, scope)?;
    let function = aggregate_function(&expr)
        .ok_or_else(|| QueryError::internal("aggregate expression is not a function"))?
        .clone();
    let tags = argument_tags(&input.tags, input.plan.schema(), &function);
    let partial = Partial::of(&function, tags)?;
    Ok(UserAggregate {
        function,
        partial,
        volume: tags.volume,
    })
}

/// Names a restored output column like the user's aggregate named it.
fn restore_name(expr: Expr, schema: &DFSchema, index: usize) -> Expr {
    let (qualifier, field) = schema.qualified_field(index);
    expr.alias_qualified(qualifier.cloned(), field.name())
}

/// Half up to a multiple of `base`, in the value's own type.
fn rounded(expr: Expr, base: i64, data_type: &DataType) -> Expr {
    if base <= 1 {
        return expr;
    }
    if data_type.is_integer() {
        return ((expr + lit(base / 2)) / lit(base)) * lit(base);
    }
    let base = base as f64;
    let scaled = cast(expr, DataType::Float64) / lit(base);
    datafusion::functions::math::expr_fn::round(vec![scaled]) * lit(base)
}

fn output_column(plan: &LogicalPlan, index: usize) -> Expr {
    let (qualifier, field) = plan.schema().qualified_field(index);
    Expr::Column(Column::new(qualifier.cloned(), field.name()))
}

fn with_args(
    function: &AggregateFunction,
    udaf: Arc<datafusion::logical_expr::AggregateUDF>,
) -> Expr {
    Expr::AggregateFunction(AggregateFunction::new_udf(
        udaf,
        function.params.args.clone(),
        false,
        function.params.filter.clone(),
        Vec::new(),
        None,
    ))
}

fn group_name(index: usize) -> String {
    format!("__enclave_g{index}")
}

fn partial_name(index: usize) -> String {
    format!("__enclave_p{index}")
}

fn partial_count_name(index: usize) -> String {
    format!("__enclave_c{index}")
}

fn value_name(index: usize) -> String {
    format!("__enclave_o{index}")
}

fn partial(index: usize) -> Expr {
    Expr::Column(Column::from_name(partial_name(index)))
}

/// The user's released aggregate, checked, with what its plan needs.
struct ReleasedAggregate<'a> {
    aggregate: &'a Aggregate,
    groups: Vec<Expr>,
    person: Column,
    users: Vec<UserAggregate>,
    facility_columns: Vec<Column>,
    municipality_columns: Vec<Column>,
    options: ReleaseOptions,
}

impl ReleasedAggregate<'_> {
    /// Group fields of the user's aggregate (with the grouping id, if any).
    fn group_fields(&self) -> usize {
        self.aggregate.schema.fields().len() - self.aggregate.aggr_expr.len()
    }

    fn values(&self) -> Vec<ReleasedValue> {
        let first_value = self.group_fields();
        self.users
            .iter()
            .enumerate()
            .map(|(index, user)| ReleasedValue {
                position: first_value + index,
                partial: user.partial,
                volume: user.volume,
            })
            .collect()
    }

    fn plan(&self, input: LogicalPlan) -> Result<LogicalPlan, QueryError> {
        let inner = self.per_person(input)?;
        let outer = self.per_group(inner)?;
        let exprs = self.released_columns(&outer);
        Ok(LogicalPlan::Projection(Projection::try_new(
            exprs,
            Arc::new(outer),
        )?))
    }

    /// One row per (group, person): each aggregate's per-person partial
    /// (NULL or 0 when the person does not contribute to it).
    fn per_person(&self, input: LogicalPlan) -> Result<LogicalPlan, QueryError> {
        let mut groups: Vec<Expr> = self
            .groups
            .iter()
            .enumerate()
            .map(|(index, group)| group.clone().alias(group_name(index)))
            .collect();
        groups.push(Expr::Column(self.person.clone()));
        let mut aggregates = Vec::new();
        for (index, user) in self.users.iter().enumerate() {
            let function = &user.function;
            let partial = match user.partial {
                Partial::Persons => with_args(function, count_udaf()),
                Partial::Avg => {
                    aggregates
                        .push(with_args(function, count_udaf()).alias(partial_count_name(index)));
                    with_args(function, sum_udaf())
                }
                Partial::Min | Partial::Max => with_args(function, Arc::clone(&function.func)),
                Partial::Count | Partial::Sum => Expr::AggregateFunction(function.clone()),
            };
            aggregates.push(partial.alias(partial_name(index)));
        }
        for (index, column) in self.facility_columns.iter().enumerate() {
            let column = Expr::Column(column.clone());
            aggregates.push(min(column.clone()).alias(format!("__enclave_fmin{index}")));
            aggregates.push(max(column).alias(format!("__enclave_fmax{index}")));
        }
        for (index, column) in self.municipality_columns.iter().enumerate() {
            let column = Expr::Column(column.clone());
            aggregates.push(min(column.clone()).alias(format!("__enclave_mmin{index}")));
            aggregates.push(max(column).alias(format!("__enclave_mmax{index}")));
        }
        Ok(LogicalPlan::Aggregate(Aggregate::try_new(
            Arc::new(input),
            groups,
            aggregates,
        )?))
    }

    /// One row per group: each value, its contributors and dominance
    /// figures, the group's persons and facilities.
    fn per_group(&self, inner: LogicalPlan) -> Result<LogicalPlan, QueryError> {
        let groups = match self.aggregate.group_expr.as_slice() {
            [Expr::GroupingSet(set)] => {
                vec![Expr::GroupingSet(map_grouping_set(set, &self.groups))]
            }
            _ => (0..self.groups.len())
                .map(|index| col(group_name(index)))
                .collect(),
        };
        let first_value = self.group_fields();
        let mut aggregates = Vec::new();
        for (index, user) in self.users.iter().enumerate() {
            aggregates.push(outer_value(user.partial, index).alias(value_name(index)));
        }
        for (index, user) in self.users.iter().enumerate() {
            let position = first_value + index;
            aggregates
                .push(contributors(user.partial, index).alias(format!("{CONTRIBUTORS}{position}")));
            if user.partial == Partial::Avg {
                aggregates.push(
                    sum(Expr::Column(Column::from_name(partial_count_name(index))))
                        .alias(format!("__enclave_oc{index}")),
                );
            }
            if user.partial.has_dominance() {
                let size = abs(cast(partial(index), DataType::Float64));
                aggregates.push(top2_sum(size.clone()).alias(format!("{TOP2}{position}")));
                aggregates.push(sum(size).alias(format!("{TOTAL}{position}")));
            }
        }
        aggregates.push(count(Expr::Column(self.person.clone())).alias(N_PERSONS));
        if self.options.person_sets {
            aggregates.extend(self.person_sets());
        }
        for index in 0..self.facility_columns.len() {
            for end in ["min", "max"] {
                aggregates.push(
                    count_distinct(col(format!("__enclave_f{end}{index}")))
                        .alias(format!("{FACILITIES}{index}_{end}")),
                );
            }
        }
        for index in 0..self.municipality_columns.len() {
            let least = min(col(format!("__enclave_mmin{index}")));
            let greatest = max(col(format!("__enclave_mmax{index}")));
            aggregates.push(least.alias(format!("{MUNICIPALITY}{index}_min")));
            aggregates.push(greatest.alias(format!("{MUNICIPALITY}{index}_max")));
        }
        Ok(LogicalPlan::Aggregate(Aggregate::try_new(
            Arc::new(inner),
            groups,
            aggregates,
        )?))
    }

    /// The sketches of the group's persons and of each ledgered value's
    /// contributors with their partials (see [`crate::ledger`]).
    fn person_sets(&self) -> Vec<Expr> {
        let person = || Expr::Column(self.person.clone());
        let first_value = self.group_fields();
        let mut sets = vec![person_set(person(), Vec::new()).alias(GROUP_SET)];
        for (index, user) in self.users.iter().enumerate() {
            let partials = match user.partial {
                // A person counted: present (1) or not (NULL).
                Partial::Persons => vec![signum(nullif(partial(index), lit(0_i64)))],
                Partial::Count => vec![nullif(partial(index), lit(0_i64))],
                Partial::Sum => vec![partial(index)],
                Partial::Avg => vec![
                    partial(index),
                    Expr::Column(Column::from_name(partial_count_name(index))),
                ],
                Partial::Min | Partial::Max => continue,
            };
            let position = first_value + index;
            sets.push(person_set(person(), partials).alias(format!("{PERSON_SET}{position}")));
        }
        sets
    }

    /// The user's columns under their own names and types (values rounded
    /// by the project's rule), then the hidden columns disclosure control
    /// reads.
    fn released_columns(&self, outer: &LogicalPlan) -> Vec<Expr> {
        let schema = &self.aggregate.schema;
        let group_fields = self.group_fields();
        let mut exprs: Vec<Expr> = (0..group_fields)
            .map(|index| restore_name(output_column(outer, index), schema, index))
            .collect();
        for (index, user) in self.users.iter().enumerate() {
            let position = group_fields + index;
            let data_type = schema.field(position).data_type();
            let mut value = col(value_name(index));
            if user.partial == Partial::Avg {
                value = cast(value, DataType::Float64)
                    / cast(col(format!("__enclave_oc{index}")), DataType::Float64);
            }
            if user.partial.is_rounded() && !self.options.person_sets {
                value = rounded(value, self.options.rounding, data_type);
            }
            let value = try_cast(value, data_type.clone());
            exprs.push(restore_name(value, schema, position));
        }
        let hidden_from = group_fields + self.users.len();
        for index in hidden_from..outer.schema().fields().len() {
            let name = outer.schema().field(index).name();
            if !name.starts_with("__enclave_oc") {
                exprs.push(col(name.as_str()));
            }
        }
        exprs.extend(self.grouping_columns(outer));
        exprs
    }

    /// Hidden copies of the grouping level and keys, for complementary
    /// suppression of ROLLUP / CUBE / GROUPING SETS totals.
    fn grouping_columns(&self, outer: &LogicalPlan) -> Vec<Expr> {
        let [Expr::GroupingSet(_)] = self.aggregate.group_expr.as_slice() else {
            return Vec::new();
        };
        let keys = self.group_fields() - 1;
        let mut exprs: Vec<Expr> = (0..keys)
            .map(|index| output_column(outer, index).alias(format!("{KEY}{index}")))
            .collect();
        exprs.push(output_column(outer, keys).alias(GROUPING));
        exprs
    }
}

/// A value over the per-person partials of one group.
fn outer_value(partial_kind: Partial, index: usize) -> Expr {
    match partial_kind {
        Partial::Count | Partial::Sum | Partial::Avg => sum(partial(index)),
        Partial::Persons => count(nullif(partial(index), lit(0_i64))),
        Partial::Min => min(partial(index)),
        Partial::Max => max(partial(index)),
    }
}

/// Persons with a row the value aggregates: a non-zero count, or a
/// non-NULL partial.
fn contributors(partial_kind: Partial, index: usize) -> Expr {
    match partial_kind {
        Partial::Count | Partial::Persons => count(nullif(partial(index), lit(0_i64))),
        Partial::Sum | Partial::Avg | Partial::Min | Partial::Max => count(partial(index)),
    }
}

fn map_grouping_set(set: &GroupingSet, groups: &[Expr]) -> GroupingSet {
    let map = |expr: &Expr| {
        let index = groups
            .iter()
            .position(|group| group == expr)
            .unwrap_or_default();
        col(group_name(index))
    };
    match set {
        GroupingSet::Rollup(exprs) => GroupingSet::Rollup(exprs.iter().map(map).collect()),
        GroupingSet::Cube(exprs) => GroupingSet::Cube(exprs.iter().map(map).collect()),
        GroupingSet::GroupingSets(sets) => GroupingSet::GroupingSets(
            sets.iter()
                .map(|exprs| exprs.iter().map(map).collect())
                .collect(),
        ),
    }
}
