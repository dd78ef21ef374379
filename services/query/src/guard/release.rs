//! The released result: the outermost aggregate of a query, rewritten so the
//! engine computes, beside the user's aggregates, what disclosure control
//! needs (persons per group, facilities per group, the two largest persons'
//! share of each sum, grouping levels); the result wrappers above it (HAVING,
//! projection, ORDER BY, LIMIT) are rebuilt to carry those hidden columns.
//!
//! When every aggregate splits per person (count, sum, avg, min, max,
//! count of distinct persons), the aggregate runs in two levels: first one row
//! per (group, person), then per group. The person count is then the row
//! count, and sums know each person's contribution. Otherwise the aggregate
//! runs as written with an added count of distinct persons.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::{Column, DFSchema};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::expr_fn::{count, count_distinct, max, min, sum};
use datafusion::functions_aggregate::min_max::max_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, GroupingSet, LogicalPlan, Projection, SubqueryAlias, cast, col, lit,
};

use crate::error::{QueryError, Rule};
use crate::guard::aggregates::{
    Partial, aggregate_function, argument_tags, function_name, is_value_revealing,
};
use crate::guard::rewrite::{Guarded, Scope, rewrite, with_guarded_subqueries};
use crate::tables::{PERSON, RESERVED_PREFIX};
use crate::top2::top2_sum;

pub const N_PERSONS: &str = "__enclave_n_persons";
pub const FACILITIES: &str = "__enclave_facilities_";
pub const TOP2: &str = "__enclave_top2_";
pub const TOTAL: &str = "__enclave_total_";
pub const GROUPING: &str = "__enclave_grouping";
pub const KEY: &str = "__enclave_key_";

/// A query plan ready to run.
#[derive(Debug)]
pub struct ReleasePlan {
    pub plan: LogicalPlan,
    /// False only for plans that read no table (e.g. the `SELECT 1` clients
    /// send to test a connection): they hold no data and skip disclosure
    /// control. Every other result must pass it.
    pub checked: bool,
}

/// Rewrites a query plan for release.
pub fn release(
    plan: &LogicalPlan,
    scope: &Scope,
    rounding: i64,
) -> Result<ReleasePlan, QueryError> {
    if !reads_tables(plan)? {
        return Ok(ReleasePlan {
            plan: plan.clone(),
            checked: false,
        });
    }
    Ok(ReleasePlan {
        plan: release_node(plan, scope, rounding)?,
        checked: true,
    })
}

fn reads_tables(plan: &LogicalPlan) -> Result<bool, QueryError> {
    let mut reads = false;
    plan.apply_with_subqueries(|node| {
        reads |= matches!(node, LogicalPlan::TableScan(_));
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })?;
    Ok(reads)
}

fn release_node(
    plan: &LogicalPlan,
    scope: &Scope,
    rounding: i64,
) -> Result<LogicalPlan, QueryError> {
    match plan {
        LogicalPlan::Aggregate(aggregate) => release_aggregate(aggregate, scope, rounding),
        LogicalPlan::Projection(projection) => {
            let input = release_node(&projection.input, scope, rounding)?;
            let mut exprs = projection
                .expr
                .iter()
                .map(|expr| with_guarded_subqueries(expr.clone(), scope))
                .collect::<Result<Vec<_>, _>>()?;
            exprs.extend(hidden_columns(input.schema()));
            Ok(LogicalPlan::Projection(Projection::try_new(
                exprs,
                Arc::new(input),
            )?))
        }
        LogicalPlan::Filter(filter) => {
            let input = release_node(&filter.input, scope, rounding)?;
            let predicate = with_guarded_subqueries(filter.predicate.clone(), scope)?;
            Ok(LogicalPlan::Filter(Filter::try_new(
                predicate,
                Arc::new(input),
            )?))
        }
        LogicalPlan::Sort(_) | LogicalPlan::Limit(_) => {
            let input = release_node(plan.inputs()[0], scope, rounding)?;
            Ok(plan.with_new_exprs(plan.expressions(), vec![input])?)
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let input = release_node(&alias.input, scope, rounding)?;
            Ok(LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
                Arc::new(input),
                alias.alias.clone(),
            )?))
        }
        _ => Err(QueryError::refused(
            Rule::RowLevel,
            "only aggregates over persons may leave the enclave: aggregate with GROUP BY and count/sum/avg, or save rows inside the enclave with CREATE TABLE work.<name> AS SELECT …",
        )),
    }
}

fn hidden_columns(schema: &DFSchema) -> Vec<Expr> {
    schema
        .iter()
        .filter(|(_, field)| field.name().starts_with(RESERVED_PREFIX) && field.name() != PERSON)
        .map(|(qualifier, field)| Expr::Column(Column::new(qualifier.cloned(), field.name())))
        .collect()
}

/// One aggregate of the user's released aggregate, checked and classified.
struct UserAggregate {
    function: AggregateFunction,
    partial: Partial,
}

fn release_aggregate(
    aggregate: &Aggregate,
    scope: &Scope,
    rounding: i64,
) -> Result<LogicalPlan, QueryError> {
    let input = rewrite(&aggregate.input, scope)?;
    let Some(person) = input.person.clone() else {
        return Err(QueryError::refused(
            Rule::Unsupported,
            "the released aggregate must read person-level rows directly",
        ));
    };
    let schema = Arc::clone(input.plan.schema());
    let groups = distinct_groups(aggregate);
    check_groups(&input, &groups)?;
    let facility_columns = facility_columns(&input, &groups);
    let users = aggregate
        .aggr_expr
        .iter()
        .map(|expr| classify_aggregate(&input, &schema, expr, scope))
        .collect::<Result<Vec<_>, _>>()?;
    let direct = users.iter().any(|user| user.partial == Partial::Direct);
    if direct && users.iter().any(|user| user.partial.has_dominance()) {
        return Err(QueryError::refused(
            Rule::MixedAggregates,
            "SUM and AVG cannot be combined with this aggregate in one query; run them in separate queries",
        ));
    }
    let plan = if direct {
        direct_aggregate(
            aggregate,
            input.plan,
            &person,
            &users,
            &facility_columns,
            rounding,
        )?
    } else {
        two_level_aggregate(
            aggregate,
            input.plan,
            &person,
            &groups,
            &users,
            &facility_columns,
            rounding,
        )?
    };
    Ok(plan)
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

fn facility_columns(input: &Guarded, groups: &[Expr]) -> Vec<Column> {
    let schema = input.plan.schema();
    let mut columns: Vec<Column> = Vec::new();
    for group in groups {
        for column in group.column_refs() {
            if input.tags.of_column(schema, column).facility && !columns.contains(column) {
                columns.push(column.clone());
            }
        }
    }
    columns
}

fn classify_aggregate(
    input: &Guarded,
    schema: &DFSchema,
    expr: &Expr,
    scope: &Scope,
) -> Result<UserAggregate, QueryError> {
    let expr = with_guarded_subqueries(expr.clone(), scope)?;
    let function = aggregate_function(&expr)
        .ok_or_else(|| QueryError::internal("aggregate expression is not a function"))?
        .clone();
    let tags = argument_tags(&input.tags, schema, &function);
    let name = function_name(&function);
    if is_value_revealing(&name) && (tags.sensitive || tags.identifying) {
        return Err(QueryError::refused(
            Rule::ValueRevealingAggregate,
            format!(
                "{} of a sensitive or identifying column can reveal one person's value; use counts, sums or averages",
                name.to_uppercase()
            ),
        ));
    }
    let partial = Partial::of(&function, tags);
    Ok(UserAggregate { function, partial })
}

/// Names a restored output column like the user's aggregate named it.
fn restore_name(expr: Expr, schema: &DFSchema, index: usize) -> Expr {
    let (qualifier, field) = schema.qualified_field(index);
    expr.alias_qualified(qualifier.cloned(), field.name())
}

fn rounded(expr: Expr, base: i64) -> Expr {
    if base <= 1 {
        return expr;
    }
    ((expr + lit(base / 2)) / lit(base)) * lit(base)
}

fn group_field_count(aggregate: &Aggregate) -> usize {
    aggregate.schema.fields().len() - aggregate.aggr_expr.len()
}

fn output_column(plan: &LogicalPlan, index: usize) -> Expr {
    let (qualifier, field) = plan.schema().qualified_field(index);
    Expr::Column(Column::new(qualifier.cloned(), field.name()))
}

/// The aggregate as written plus a distinct count of persons (and of
/// facilities where groups name facilities).
fn direct_aggregate(
    aggregate: &Aggregate,
    input: LogicalPlan,
    person: &Column,
    users: &[UserAggregate],
    facility_columns: &[Column],
    rounding: i64,
) -> Result<LogicalPlan, QueryError> {
    let mut aggregates: Vec<Expr> = users
        .iter()
        .map(|user| Expr::AggregateFunction(user.function.clone()))
        .collect();
    aggregates.push(count_distinct(Expr::Column(person.clone())).alias(N_PERSONS));
    for (index, column) in facility_columns.iter().enumerate() {
        aggregates.push(
            count_distinct(Expr::Column(column.clone())).alias(format!("{FACILITIES}{index}_all")),
        );
    }
    let computed = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(input),
        aggregate.group_expr.clone(),
        aggregates,
    )?);
    let group_fields = group_field_count(aggregate);
    let mut exprs: Vec<Expr> = (0..group_fields)
        .map(|index| restore_name(output_column(&computed, index), &aggregate.schema, index))
        .collect();
    for (index, user) in users.iter().enumerate() {
        let value = output_column(&computed, group_fields + index);
        let value = if function_name(&user.function) == "count" {
            rounded(value, rounding)
        } else {
            value
        };
        exprs.push(restore_name(value, &aggregate.schema, group_fields + index));
    }
    let hidden_from = group_fields + users.len();
    for index in hidden_from..computed.schema().fields().len() {
        exprs.push(output_column(&computed, index));
    }
    exprs.extend(grouping_columns(aggregate, &computed));
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(computed),
    )?))
}

/// Hidden copies of the grouping level and keys, for complementary
/// suppression of ROLLUP / CUBE / GROUPING SETS totals.
fn grouping_columns(aggregate: &Aggregate, computed: &LogicalPlan) -> Vec<Expr> {
    let [Expr::GroupingSet(_)] = aggregate.group_expr.as_slice() else {
        return Vec::new();
    };
    let keys = group_field_count(aggregate) - 1;
    let mut exprs: Vec<Expr> = (0..keys)
        .map(|index| output_column(computed, index).alias(format!("{KEY}{index}")))
        .collect();
    exprs.push(output_column(computed, keys).alias(GROUPING));
    exprs
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

fn partial_name(index: usize) -> String {
    format!("__enclave_p{index}")
}

fn partial_count_name(index: usize) -> String {
    format!("__enclave_c{index}")
}

/// One row per (group, person), then per group.
#[allow(clippy::too_many_arguments)]
fn two_level_aggregate(
    aggregate: &Aggregate,
    input: LogicalPlan,
    person: &Column,
    groups: &[Expr],
    users: &[UserAggregate],
    facility_columns: &[Column],
    rounding: i64,
) -> Result<LogicalPlan, QueryError> {
    let group_name = |index: usize| format!("__enclave_g{index}");
    let mut inner_groups: Vec<Expr> = groups
        .iter()
        .enumerate()
        .map(|(index, group)| group.clone().alias(group_name(index)))
        .collect();
    inner_groups.push(Expr::Column(person.clone()));
    let mut inner_aggregates = Vec::new();
    for (index, user) in users.iter().enumerate() {
        let function = &user.function;
        let partial = match user.partial {
            Partial::Persons => with_args(function, max_udaf()),
            Partial::Avg => {
                inner_aggregates
                    .push(with_args(function, count_udaf()).alias(partial_count_name(index)));
                with_args(function, sum_udaf())
            }
            _ => Expr::AggregateFunction(function.clone()),
        };
        inner_aggregates.push(partial.alias(partial_name(index)));
    }
    for (index, column) in facility_columns.iter().enumerate() {
        let column = Expr::Column(column.clone());
        inner_aggregates.push(min(column.clone()).alias(format!("__enclave_fmin{index}")));
        inner_aggregates.push(max(column).alias(format!("__enclave_fmax{index}")));
    }
    let inner = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(input),
        inner_groups,
        inner_aggregates,
    )?);

    let outer_groups = match aggregate.group_expr.as_slice() {
        [Expr::GroupingSet(set)] => vec![Expr::GroupingSet(map_grouping_set(
            set,
            groups,
            &group_name,
        ))],
        _ => (0..groups.len())
            .map(|index| col(group_name(index)))
            .collect(),
    };
    let partial = |index: usize| Expr::Column(Column::from_name(partial_name(index)));
    let mut outer_aggregates = Vec::new();
    let mut hidden_aggregates = Vec::new();
    for (index, user) in users.iter().enumerate() {
        let value = match user.partial {
            Partial::Count | Partial::Sum | Partial::Avg => sum(partial(index)),
            Partial::Persons => count(partial(index)),
            Partial::Min => min(partial(index)),
            Partial::Max | Partial::Direct => max(partial(index)),
        };
        outer_aggregates.push(value.alias(format!("__enclave_o{index}")));
        if user.partial == Partial::Avg {
            hidden_aggregates.push(
                sum(Expr::Column(Column::from_name(partial_count_name(index))))
                    .alias(format!("__enclave_oc{index}")),
            );
        }
        if user.partial.has_dominance() {
            hidden_aggregates.push(top2_sum(partial(index)).alias(format!("{TOP2}{index}")));
        }
    }
    hidden_aggregates.push(count(Expr::Column(person.clone())).alias(N_PERSONS));
    for index in 0..facility_columns.len() {
        for end in ["min", "max"] {
            hidden_aggregates.push(
                count_distinct(col(format!("__enclave_f{end}{index}")))
                    .alias(format!("{FACILITIES}{index}_{end}")),
            );
        }
    }
    let user_count = outer_aggregates.len();
    outer_aggregates.extend(hidden_aggregates);
    let outer = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(inner),
        outer_groups,
        outer_aggregates,
    )?);

    let group_fields = group_field_count(aggregate);
    let mut exprs: Vec<Expr> = (0..group_fields)
        .map(|index| restore_name(output_column(&outer, index), &aggregate.schema, index))
        .collect();
    for (index, user) in users.iter().enumerate() {
        let value = col(format!("__enclave_o{index}"));
        let value = match user.partial {
            Partial::Count | Partial::Persons => rounded(value, rounding),
            Partial::Avg => {
                cast(value, DataType::Float64)
                    / cast(col(format!("__enclave_oc{index}")), DataType::Float64)
            }
            _ => value,
        };
        exprs.push(restore_name(value, &aggregate.schema, group_fields + index));
        if user.partial.has_dominance() {
            exprs.push(col(format!("__enclave_o{index}")).alias(format!("{TOTAL}{index}")));
            exprs.push(col(format!("{TOP2}{index}")));
        }
    }
    let first_hidden = group_fields + user_count;
    for index in first_hidden..outer.schema().fields().len() {
        let name = outer.schema().field(index).name().clone();
        if name == N_PERSONS || name.starts_with(FACILITIES) {
            exprs.push(col(name));
        }
    }
    exprs.extend(grouping_columns(aggregate, &outer));
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(outer),
    )?))
}

fn map_grouping_set(
    set: &GroupingSet,
    groups: &[Expr],
    name: &dyn Fn(usize) -> String,
) -> GroupingSet {
    let map = |expr: &Expr| {
        let index = groups
            .iter()
            .position(|group| group == expr)
            .unwrap_or_default();
        col(name(index))
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
