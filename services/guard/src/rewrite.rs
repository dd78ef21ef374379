//! Follows persons through a row-level plan.
//!
//! [`rewrite`] rebuilds a logical plan bottom-up so that every node outputs
//! the hidden person column: scans of guarded tables become real scans
//! restricted to the project's period and without opted-out persons; every
//! other node passes the person column up, or is refused when it would lose
//! track of persons (fail closed: unknown node types are refused).
//!
//! The person is followed by the hidden column itself, never by a visible
//! column that looks like it: joins of person-level inputs also match the
//! hidden columns, windows are also partitioned by it, inner aggregates also
//! group by it. Tags follow every column (see `crate::tags`), including
//! through predicates: a column compared with a diagnosis becomes one.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema};
use datafusion::datasource::{TableProvider, provider_as_source, source_as_provider};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::expr::{Exists, InSubquery};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Distinct, Expr, Filter, JoinType, LogicalPlan, LogicalPlanBuilder,
    Operator, Projection, Subquery, SubqueryAlias, TableScan, Union, Window, lit,
};

use crate::aggregates::{check_inner_aggregate, output_tags};
use crate::error::{QueryError, Rule};
use crate::expressions::check_node;
use crate::keys::{check_key_join, check_key_ordering, check_key_uses, key_value_refusal};
use crate::pseudonym::ProjectIds;
use crate::table::{GuardedTable, PERSON, RowSource};
use crate::tags::{ColumnTags, Tags};

/// What the guard applies to every scan of a session.
#[derive(Debug, Clone)]
pub struct Scope {
    /// First and last `service_month` (`YYYY-MM`), both included.
    pub period: (String, String),
    /// Persons removed from every result (release ids).
    pub opted_out: Arc<Vec<i64>>,
    /// The project's person ids (see [`crate::pseudonym`]), which its
    /// workspace keeps; `None` where there is no workspace (the public
    /// statistics).
    pub project_ids: Option<ProjectIds>,
    /// Whether the statement reads care data (see [`Scope::reading`]);
    /// true until the statement is known.
    pub care_output: bool,
}

impl Scope {
    /// This scope for guarding `plan`: whether it reads care data.
    pub fn reading(&self, plan: &LogicalPlan) -> Result<Scope, QueryError> {
        Ok(Scope {
            care_output: reads_care(plan)?,
            ..self.clone()
        })
    }
}

/// A rewritten plan, the column carrying its person (if its rows belong to
/// persons) and the tags of its output columns.
#[derive(Debug)]
pub struct Guarded {
    pub plan: LogicalPlan,
    pub person: Option<Column>,
    pub tags: ColumnTags,
}

pub fn rewrite(plan: &LogicalPlan, scope: &Scope) -> Result<Guarded, QueryError> {
    check_node(plan)?;
    check_subquery_places(plan)?;
    match plan {
        LogicalPlan::TableScan(scan) => guarded_scan(scan, scope),
        LogicalPlan::Projection(projection) => rewrite_projection(projection, scope),
        LogicalPlan::Filter(filter) => {
            let input = rewrite(&filter.input, scope)?;
            check_reads(&input, [&filter.predicate], "a filter", scope)?;
            let predicate = with_guarded_subqueries(filter.predicate.clone(), &input, scope)?;
            let tags = constrained(&input.tags, input.plan.schema(), &predicate);
            let plan = LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(input.plan))?);
            Ok(Guarded {
                plan,
                person: input.person,
                tags,
            })
        }
        LogicalPlan::Sort(_) | LogicalPlan::Limit(_) => {
            let input = rewrite(plan.inputs()[0], scope)?;
            check_reads(&input, &plan.expressions(), "an ordering", scope)?;
            check_key_ordering(&input, &plan.expressions())?;
            let plan = plan.with_new_exprs(plan.expressions(), vec![input.plan])?;
            Ok(Guarded { plan, ..input })
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let input = rewrite(&alias.input, scope)?;
            let person = input
                .person
                .as_ref()
                .map(|_| Column::new(Some(alias.alias.clone()), PERSON));
            let plan = LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
                Arc::new(input.plan),
                alias.alias.clone(),
            )?);
            Ok(Guarded {
                plan,
                person,
                tags: input.tags,
            })
        }
        LogicalPlan::Join(join) => rewrite_join(join, scope),
        LogicalPlan::Aggregate(aggregate) => rewrite_inner_aggregate(aggregate, scope),
        LogicalPlan::Distinct(Distinct::All(input)) => {
            let input = rewrite(input, scope)?;
            if input.person.is_some() && !keeps_person_key(&input) {
                return Err(QueryError::refused(
                    Rule::NestedAggregate,
                    "SELECT DISTINCT inside a query must keep person_id, so that released groups can be counted in persons",
                ));
            }
            let plan = LogicalPlan::Distinct(Distinct::All(Arc::new(input.plan)));
            Ok(Guarded { plan, ..input })
        }
        LogicalPlan::Window(window) => rewrite_window(window, scope),
        LogicalPlan::Union(union) => rewrite_union(union, scope),
        LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => Ok(Guarded {
            plan: plan.clone(),
            person: None,
            tags: ColumnTags::unknown(plan.schema().fields().len()),
        }),
        other => Err(QueryError::refused(
            Rule::Unsupported,
            format!("the guard does not support {} in a query", node_name(other)),
        )),
    }
}

/// Values the publication rules let a result group by but nothing else
/// read: a municipality code (were rows selected by one, a group could hold
/// one municipality without the code among its keys, and its population
/// tier would go unseen), and, in a result reading care data, an age banded
/// finer than the care bands (a selection by it would be a finer age
/// cell). `place` names what reads `exprs` (over `input`'s columns).
pub fn check_reads<'a>(
    input: &Guarded,
    exprs: impl IntoIterator<Item = &'a Expr>,
    place: &str,
    scope: &Scope,
) -> Result<(), QueryError> {
    let schema = input.plan.schema();
    for expr in exprs {
        check_key_uses(input, expr, place)?;
        for column in expr.column_refs() {
            let tags = input.tags.of_column(schema, column);
            if tags.municipality {
                return Err(QueryError::refused(
                    Rule::Publication,
                    format!(
                        "a municipality code may only be grouped by (GROUP BY municipality_code), so that each group of one municipality meets its population tier; {place} may not read it"
                    ),
                ));
            }
            if tags.fine_age && scope.care_output {
                return Err(care_age_refusal(place));
            }
        }
    }
    Ok(())
}

/// A result reading care data is grouped by no age finer than the care
/// bands.
pub fn check_care_age_groups(
    input: &Guarded,
    groups: &[Expr],
    scope: &Scope,
) -> Result<(), QueryError> {
    let schema = input.plan.schema();
    let fine = groups
        .iter()
        .any(|group| input.tags.of_expr(schema, group).fine_age);
    if fine && scope.care_output {
        return Err(care_age_refusal("a group"));
    }
    Ok(())
}

fn care_age_refusal(place: &str) -> QueryError {
    QueryError::refused(
        Rule::Publication,
        format!(
            "a result that reads care data shows ages only in the care bands ('00-64', 5-year bands, '95+'): use the care table's age_band; {place} may not read a finer age band"
        ),
    )
}

/// Whether `plan` (with its subqueries) reads care data: a table of the
/// care schema, or a workspace table made from one.
fn reads_care(plan: &LogicalPlan) -> Result<bool, QueryError> {
    let mut care = false;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(table) = provider.downcast_ref::<GuardedTable>()
        {
            care |= table.tags().iter().any(|tags| tags.care);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(care)
}

/// Subqueries are guarded where rows are selected or computed (SELECT
/// lists, WHERE, aggregate arguments and FILTERs); anywhere else (ORDER BY,
/// GROUP BY, windows, join conditions) they are refused.
fn check_subquery_places(plan: &LogicalPlan) -> Result<(), QueryError> {
    let placed = match plan {
        LogicalPlan::Projection(_) | LogicalPlan::Filter(_) => return Ok(()),
        LogicalPlan::Aggregate(aggregate) => aggregate.group_expr.iter().any(has_subquery),
        other => other.expressions().iter().any(has_subquery),
    };
    if placed {
        return Err(QueryError::refused(
            Rule::PersonSubquery,
            "subqueries may only select rows (WHERE) or compute values (SELECT list); not in ORDER BY, GROUP BY, windows or join conditions",
        ));
    }
    Ok(())
}

fn node_name(plan: &LogicalPlan) -> &'static str {
    match plan {
        LogicalPlan::Unnest(_) => "UNNEST",
        LogicalPlan::RecursiveQuery(_) => "recursive queries",
        LogicalPlan::Distinct(Distinct::On(_)) => "DISTINCT ON",
        LogicalPlan::Extension(_) => "extension nodes",
        LogicalPlan::Repartition(_) => "repartitioning",
        _ => "this statement",
    }
}

/// A guarded table's scan becomes: the real Parquet scan, filtered to the
/// project's period and without opted-out persons, projected to the visible
/// columns plus the hidden person column.
fn guarded_scan(scan: &TableScan, scope: &Scope) -> Result<Guarded, QueryError> {
    let provider = source_as_provider(&scan.source)?;
    let Some(table) = provider.downcast_ref::<GuardedTable>() else {
        return Err(QueryError::refused(
            Rule::Unsupported,
            "only catalog and workspace tables can be read",
        ));
    };
    if !scan.filters.is_empty() || scan.fetch.is_some() {
        return Err(QueryError::internal(
            "scan with pushed filters reached the guard",
        ));
    }
    let name = scan.table_name.clone();
    let qualified = |column: &str| Expr::Column(Column::new(Some(name.clone()), column));
    let person_column = match table.source() {
        RowSource::Release => "person_id",
        RowSource::Workspace => PERSON,
        RowSource::Reference => return Ok(reference_scan(scan, table)?),
        RowSource::Unreadable { reason } => {
            return Err(QueryError::refused(Rule::Workspace, reason.clone()));
        }
    };
    let mut conditions = Vec::new();
    if matches!(table.source(), RowSource::Release) {
        let (first, last) = &scope.period;
        conditions.push(qualified("service_month").gt_eq(lit(first.as_str())));
        conditions.push(qualified("service_month").lt_eq(lit(last.as_str())));
    }
    if let Some(excluded) = opted_out(table.source(), scope)? {
        conditions.push(qualified(person_column).in_list(excluded, true));
    }
    // A statement works on the release's ids (which no statement can read
    // as values: `key-value`); a workspace keeps the project's, mapped back
    // as its rows enter.
    let project_ids = match table.source() {
        RowSource::Workspace => scope.project_ids.as_ref(),
        _ => None,
    };
    let key = |column: &str| match project_ids {
        Some(ids) => ids.release_expr(qualified(column)),
        None => qualified(column),
    };
    let visible = table.schema();
    let indices: Vec<usize> = match &scan.projection {
        Some(indices) => indices.clone(),
        None => (0..visible.fields().len()).collect(),
    };
    let mut exprs = Vec::with_capacity(indices.len() + 1);
    for &index in &indices {
        let field = visible.field(index);
        if project_ids.is_none() || !table.tags()[index].identifying {
            exprs.push(qualified(field.name()));
        } else if field.data_type() == &DataType::Int64 {
            exprs.push(key(field.name()).alias_qualified(Some(name.clone()), field.name()));
        } else {
            return Err(QueryError::internal("a key column is not BIGINT"));
        }
    }
    exprs.push(key(person_column).alias_qualified(Some(name.clone()), PERSON));
    let mut builder =
        LogicalPlanBuilder::scan(name.clone(), provider_as_source(table.raw()), None)?;
    if let Some(condition) = conditions.into_iter().reduce(Expr::and) {
        builder = builder.filter(condition)?;
    }
    let plan = builder.project(exprs)?.build()?;
    let mut tags = ColumnTags::default();
    for (position, &index) in indices.iter().enumerate() {
        tags.set(position, table.tags()[index]);
    }
    tags.set(indices.len(), person_tags());
    Ok(Guarded {
        plan,
        person: Some(Column::new(Some(name), PERSON)),
        tags,
    })
}

/// A reference table's scan: its visible columns, no person, every value
/// one the researcher chose (summing it is refused like summing a literal).
fn reference_scan(scan: &TableScan, table: &GuardedTable) -> Result<Guarded, DataFusionError> {
    let visible = table.schema();
    let indices: Vec<usize> = match &scan.projection {
        Some(indices) => indices.clone(),
        None => (0..visible.fields().len()).collect(),
    };
    let exprs: Vec<Expr> = indices
        .iter()
        .map(|&index| {
            Expr::Column(Column::new(
                Some(scan.table_name.clone()),
                visible.field(index).name(),
            ))
        })
        .collect();
    let plan = LogicalPlanBuilder::scan(
        scan.table_name.clone(),
        provider_as_source(table.raw()),
        None,
    )?
    .project(exprs)?
    .build()?;
    Ok(Guarded {
        plan,
        person: None,
        tags: ColumnTags::unknown(indices.len()),
    })
}

/// The opted-out persons as `source` names them: release ids in release
/// tables, the project's ids in a workspace; `None` when there are none.
fn opted_out(source: &RowSource, scope: &Scope) -> Result<Option<Vec<Expr>>, QueryError> {
    if scope.opted_out.is_empty() {
        return Ok(None);
    }
    let ids = scope
        .opted_out
        .iter()
        .map(|&id| match (source, &scope.project_ids) {
            (RowSource::Workspace, Some(ids)) => ids
                .project_id(id)
                .ok_or_else(|| QueryError::internal("an opted-out person id is out of range")),
            _ => Ok(id),
        });
    Ok(Some(ids.map(|id| id.map(lit)).collect::<Result<_, _>>()?))
}

pub fn person_tags() -> Tags {
    Tags {
        person_equal: true,
        identifying: true,
        ..Tags::NONE
    }
}

fn rewrite_projection(projection: &Projection, scope: &Scope) -> Result<Guarded, QueryError> {
    let input = rewrite(&projection.input, scope)?;
    let schema = Arc::clone(input.plan.schema());
    let mut exprs = Vec::with_capacity(projection.expr.len() + 1);
    let mut tags = ColumnTags::default();
    for (index, expr) in projection.expr.iter().enumerate() {
        let expr = with_guarded_subqueries(expr.clone(), &input, scope)?;
        tags.set(index, input.tags.of_expr(&schema, &expr));
        exprs.push(expr);
    }
    if let Some(person) = &input.person {
        tags.set(exprs.len(), person_tags());
        exprs.push(Expr::Column(person.clone()));
    }
    let plan = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input.plan))?);
    Ok(Guarded {
        plan,
        person: input.person,
        tags,
    })
}

/// Joins of two person-level inputs must match persons on the person key:
/// anything else would put two persons' values into one row. The join
/// also matches the hidden person columns, so a visible column that only
/// looks like the person key (NULL after an outer join) cannot mix persons.
/// A semi or anti join may not let person-level rows filter rows that carry
/// no person: which constants survive would tell about single persons.
fn rewrite_join(
    join: &datafusion::logical_expr::Join,
    scope: &Scope,
) -> Result<Guarded, QueryError> {
    let left = rewrite(&join.left, scope)?;
    let right = rewrite(&join.right, scope)?;
    check_reads(
        &left,
        join.on.iter().map(|(l, _)| l),
        "a join condition",
        scope,
    )?;
    check_reads(
        &right,
        join.on.iter().map(|(_, r)| r),
        "a join condition",
        scope,
    )?;
    check_key_join(&left, &right, &join.on)?;
    let mut on = join.on.clone();
    if let (Some(left_person), Some(right_person)) = (&left.person, &right.person) {
        check_person_join(join, &left, &right)?;
        on.push((
            Expr::Column(left_person.clone()),
            Expr::Column(right_person.clone()),
        ));
    }
    check_filtering_join(join.join_type, &left, &right)?;
    let left_width = left.plan.schema().fields().len();
    let (person, tags) = join_output(join.join_type, &left, &right, left_width);
    let plan = LogicalPlan::Join(datafusion::logical_expr::Join::try_new(
        Arc::new(left.plan),
        Arc::new(right.plan),
        on,
        join.filter.clone(),
        join.join_type,
        join.join_constraint,
        join.null_equality,
        join.null_aware,
    )?);
    // The condition is read with the inputs' own tags: a key compared with
    // a constant row's value is a key read as a value, whatever the
    // comparison then makes of the value.
    let joined = Guarded { plan, person, tags };
    check_reads(&joined, &join.filter, "a join condition", scope)?;
    let tags = join_constrained(joined.tags, join, &joined.plan);
    Ok(Guarded { tags, ..joined })
}

fn check_person_join(
    join: &datafusion::logical_expr::Join,
    left: &Guarded,
    right: &Guarded,
) -> Result<(), QueryError> {
    if !joins_on_person(join, left, right) {
        return Err(QueryError::refused(
            Rule::PersonJoin,
            "person-level tables may only be joined on person_id (e.g. JOIN … ON a.person_id = b.person_id)",
        ));
    }
    if join.join_type == JoinType::Full {
        return Err(QueryError::refused(
            Rule::PersonJoin,
            "FULL JOIN of person-level tables is not supported; use LEFT or INNER joins",
        ));
    }
    Ok(())
}

fn check_filtering_join(
    join_type: JoinType,
    left: &Guarded,
    right: &Guarded,
) -> Result<(), QueryError> {
    let (kept, filtering) = match join_type {
        JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => (left, right),
        JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => (right, left),
        _ => return Ok(()),
    };
    if kept.person.is_none() && filtering.person.is_some() {
        return Err(QueryError::refused(
            Rule::PersonSubquery,
            "person-level rows may not decide which constant rows are kept; select persons with person_id IN (SELECT person_id FROM …)",
        ));
    }
    Ok(())
}

/// The join's conditions constrain the columns they name: each takes on
/// the classes of the columns it is compared with.
fn join_constrained(
    mut tags: ColumnTags,
    join: &datafusion::logical_expr::Join,
    plan: &LogicalPlan,
) -> ColumnTags {
    let schema = plan.schema();
    for (left, right) in &join.on {
        tags = constrained(&tags, schema, &left.clone().eq(right.clone()));
    }
    if let Some(filter) = &join.filter {
        tags = constrained(&tags, schema, filter);
    }
    tags
}

/// Tags after a predicate: in each conjunct, every column named takes on
/// the classes of all the columns of that conjunct. Columns the output does
/// not have (semi joins) are skipped. Rows selected by a fine age band are
/// such a selection in every column (a cohort saved in the workspace stays
/// one of that age).
pub fn constrained(tags: &ColumnTags, schema: &DFSchema, predicate: &Expr) -> ColumnTags {
    let mut result = tags.clone();
    let by_fine_age = predicate
        .column_refs()
        .into_iter()
        .any(|column| tags.of_column(schema, column).fine_age);
    if by_fine_age {
        for index in 0..schema.fields().len() {
            let selected = Tags {
                fine_age: true,
                ..result.get(index)
            };
            result.set(index, selected);
        }
    }
    for conjunct in split_conjunction(predicate) {
        let columns: Vec<usize> = conjunct
            .column_refs()
            .into_iter()
            .filter_map(|column| schema.maybe_index_of_column(column))
            .collect();
        let all = columns
            .iter()
            .map(|&index| tags.get(index))
            .fold(Tags::NONE, Tags::merge);
        for index in columns {
            result.set(index, result.get(index).constrained_by(all));
        }
    }
    result
}

pub fn has_subquery(expr: &Expr) -> bool {
    expr.exists(|node| {
        Ok(matches!(
            node,
            Expr::InSubquery(_) | Expr::Exists(_) | Expr::ScalarSubquery(_)
        ))
    })
    .unwrap_or(true)
}

fn joins_on_person(join: &datafusion::logical_expr::Join, left: &Guarded, right: &Guarded) -> bool {
    let (left_schema, right_schema) = (left.plan.schema(), right.plan.schema());
    let is_person_pair = |a: &Expr, b: &Expr| {
        let a_left = left.tags.of_expr(left_schema, a).person_equal
            && left_schema
                .maybe_index_of_column(&single_column(a))
                .is_some();
        let b_right = right.tags.of_expr(right_schema, b).person_equal
            && right_schema
                .maybe_index_of_column(&single_column(b))
                .is_some();
        a_left && b_right
    };
    let on_pairs = join
        .on
        .iter()
        .any(|(a, b)| is_person_pair(a, b) || is_person_pair(b, a));
    let filter_pairs = join.filter.as_ref().is_some_and(|filter| {
        split_conjunction(filter)
            .into_iter()
            .any(|conjunct| match conjunct {
                Expr::BinaryExpr(BinaryExpr {
                    left: a,
                    op: Operator::Eq,
                    right: b,
                }) => is_person_pair(a, b) || is_person_pair(b, a),
                _ => false,
            })
    });
    on_pairs || filter_pairs
}

fn single_column(expr: &Expr) -> Column {
    match expr {
        Expr::Column(column) => column.clone(),
        _ => Column::from_name("\u{0}"),
    }
}

fn join_output(
    join_type: JoinType,
    left: &Guarded,
    right: &Guarded,
    left_width: usize,
) -> (Option<Column>, ColumnTags) {
    let mut tags = ColumnTags::default();
    let right_width = right.plan.schema().fields().len();
    let copy_left = |tags: &mut ColumnTags| {
        for index in 0..left_width {
            tags.set(index, left.tags.get(index));
        }
    };
    match join_type {
        JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => {
            copy_left(&mut tags);
            (left.person.clone(), tags)
        }
        JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => {
            for index in 0..right_width {
                tags.set(index, right.tags.get(index));
            }
            (right.person.clone(), tags)
        }
        _ => {
            copy_left(&mut tags);
            for index in 0..right_width {
                tags.set(left_width + index, right.tags.get(index));
            }
            let person = match join_type {
                JoinType::Right => right.person.clone().or_else(|| left.person.clone()),
                _ => left.person.clone().or_else(|| right.person.clone()),
            };
            (person, tags)
        }
    }
}

/// An aggregate below the released one must keep one row per person
/// (GROUP BY person_id …); the person column then passes through.
fn rewrite_inner_aggregate(aggregate: &Aggregate, scope: &Scope) -> Result<Guarded, QueryError> {
    let input = rewrite(&aggregate.input, scope)?;
    let schema = Arc::clone(input.plan.schema());
    let Some(person) = input.person.clone() else {
        let plan = LogicalPlan::Aggregate(Aggregate::try_new(
            Arc::new(input.plan),
            aggregate.group_expr.clone(),
            aggregate.aggr_expr.clone(),
        )?);
        return Ok(Guarded {
            plan,
            person: None,
            tags: ColumnTags::default(),
        });
    };
    let by_person = aggregate.group_expr.iter().any(|expr| {
        !matches!(expr, Expr::GroupingSet(_)) && input.tags.of_expr(&schema, expr).person_equal
    });
    if !by_person {
        return Err(QueryError::refused(
            Rule::NestedAggregate,
            "an aggregate inside a query must group by person_id (one row per person); only the outermost aggregate may combine persons",
        ));
    }
    let mut groups = aggregate.group_expr.clone();
    let mut tags = ColumnTags::default();
    for (index, expr) in groups.iter().enumerate() {
        tags.set(index, input.tags.of_expr(&schema, expr));
    }
    tags.set(groups.len(), person_tags());
    groups.push(Expr::Column(person.clone()));
    let mut aggregates = Vec::with_capacity(aggregate.aggr_expr.len());
    check_reads(&input, &aggregate.aggr_expr, "an aggregate", scope)?;
    for (index, expr) in aggregate.aggr_expr.iter().enumerate() {
        check_inner_aggregate(expr)?;
        let expr = with_guarded_subqueries(expr.clone(), &input, scope)?;
        tags.set(
            groups.len() + index,
            output_tags(&input.tags, &schema, &expr),
        );
        aggregates.push(expr);
    }
    let plan = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(input.plan),
        groups,
        aggregates,
    )?);
    Ok(Guarded {
        plan,
        person: Some(person),
        tags,
    })
}

/// True when some visible column (not the hidden one) equals the person.
fn keeps_person_key(input: &Guarded) -> bool {
    let schema = input.plan.schema();
    (0..schema.fields().len())
        .any(|index| input.tags.get(index).person_equal && schema.field(index).name() != PERSON)
}

/// Window functions only within one person's rows (PARTITION BY person_id):
/// a window across persons would move one person's value into another's
/// row. Each is also partitioned by the hidden person column.
fn rewrite_window(window: &Window, scope: &Scope) -> Result<Guarded, QueryError> {
    let input = rewrite(&window.input, scope)?;
    check_reads(&input, &window.window_expr, "a window", scope)?;
    let schema = Arc::clone(input.plan.schema());
    let width = schema.fields().len();
    let mut tags = input.tags.clone();
    let mut exprs = Vec::with_capacity(window.window_expr.len());
    for (index, expr) in window.window_expr.iter().enumerate() {
        let expr = match &input.person {
            Some(person) => per_person_window(expr, &input, person)?,
            None => expr.clone(),
        };
        tags.set(width + index, window_tags(&input.tags, &schema, &expr));
        exprs.push(expr);
    }
    let plan = LogicalPlan::Window(Window::try_new(exprs, Arc::new(input.plan))?);
    Ok(Guarded {
        plan,
        person: input.person,
        tags,
    })
}

/// Tags of a window function's column over one person's rows: what its
/// arguments carry (counts and ranks carry nothing; sums keep sensitivity);
/// the partition only says whose rows they are.
fn window_tags(tags: &ColumnTags, schema: &DFSchema, expr: &Expr) -> Tags {
    let Expr::WindowFunction(function) = expr.clone().unalias() else {
        return Tags::UNKNOWN;
    };
    let arguments = function
        .params
        .args
        .iter()
        .map(|arg| tags.of_expr(schema, arg))
        .fold(Tags::NONE, Tags::merge);
    match function.fun.name().to_ascii_lowercase().as_str() {
        "count" | "row_number" | "rank" | "dense_rank" => arguments.summarized(false),
        "sum" | "avg" => arguments.summarized(true),
        _ => arguments.derived(),
    }
}

/// Window functions over one person's rows: none can fail on a value.
const PER_PERSON_WINDOWS: &[&str] = &[
    "row_number",
    "rank",
    "dense_rank",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "count",
    "sum",
    "avg",
    "min",
    "max",
];

fn per_person_window(expr: &Expr, input: &Guarded, person: &Column) -> Result<Expr, QueryError> {
    let refuse = || {
        QueryError::refused(
            Rule::Unsupported,
            "window functions must be PARTITION BY person_id",
        )
    };
    let (mut function, alias) = match expr.clone() {
        Expr::WindowFunction(function) => (function, None),
        Expr::Alias(alias) => match *alias.expr {
            Expr::WindowFunction(function) => (function, Some((alias.relation, alias.name))),
            _ => return Err(refuse()),
        },
        _ => return Err(refuse()),
    };
    let name = function.fun.name().to_ascii_lowercase();
    if !PER_PERSON_WINDOWS.contains(&name.as_str()) {
        return Err(QueryError::refused(
            Rule::Unsupported,
            format!("the window function {name} is not available (see docs/query-rules.md)"),
        ));
    }
    let schema = input.plan.schema();
    let per_person = function
        .params
        .partition_by
        .iter()
        .any(|partition| input.tags.of_expr(schema, partition).person_equal);
    if !per_person {
        return Err(refuse());
    }
    // Keeps the name the query refers to the column by.
    let (relation, name) = match alias {
        Some(alias) => alias,
        None => (None, expr.schema_name().to_string()),
    };
    function
        .params
        .partition_by
        .push(Expr::Column(person.clone()));
    Ok(Expr::WindowFunction(function).alias_qualified(relation, name))
}

/// UNION [ALL] of person-level inputs: the person column is moved last in
/// every input so the union lines them up.
fn rewrite_union(union: &Union, scope: &Scope) -> Result<Guarded, QueryError> {
    let inputs = union
        .inputs
        .iter()
        .map(|input| rewrite(input, scope))
        .collect::<Result<Vec<_>, _>>()?;
    let with_person = inputs.iter().filter(|input| input.person.is_some()).count();
    if with_person != 0 && with_person != inputs.len() {
        return Err(QueryError::refused(
            Rule::Unsupported,
            "UNION arms must all be person-level or all be constants",
        ));
    }
    let mut tags = ColumnTags::default();
    let mut plans = Vec::with_capacity(inputs.len());
    for (arm, input) in inputs.into_iter().enumerate() {
        let (plan, order) = person_last(input.plan, input.person.as_ref())?;
        for (index, &from) in order.iter().enumerate() {
            let arm_tags = input.tags.get(from);
            let merged = if arm == 0 {
                arm_tags
            } else {
                tags.get(index).either(arm_tags)
            };
            tags.set(index, merged);
        }
        plans.push(Arc::new(plan));
    }
    let plan = LogicalPlan::Union(Union::try_new_with_loose_types(plans)?);
    let person = (with_person != 0).then(|| {
        let schema = plan.schema();
        let last = schema.fields().len() - 1;
        let (qualifier, field) = schema.qualified_field(last);
        Column::new(qualifier.cloned(), field.name())
    });
    Ok(Guarded { plan, person, tags })
}

/// The plan with its person column moved last, and for each output column
/// the input column it came from.
fn person_last(
    plan: LogicalPlan,
    person: Option<&Column>,
) -> Result<(LogicalPlan, Vec<usize>), QueryError> {
    let width = plan.schema().fields().len();
    let identity = (0..width).collect();
    let Some(person) = person else {
        return Ok((plan, identity));
    };
    let schema = Arc::clone(plan.schema());
    let person_index = schema.index_of_column(person)?;
    if person_index == width - 1 {
        return Ok((plan, identity));
    }
    let mut order: Vec<usize> = (0..width).filter(|&index| index != person_index).collect();
    order.push(person_index);
    let columns = schema.columns();
    let exprs: Vec<Expr> = order
        .iter()
        .map(|&index| Expr::Column(columns[index].clone()))
        .collect();
    let plan = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(plan))?);
    Ok((plan, order))
}

/// Subqueries inside expressions read tables too: their plans get the same
/// scan guard, and nothing computed from fewer than k persons may steer
/// which rows count. So a subquery over person-level rows may only select
/// persons (`person_id [NOT] IN (SELECT person_id FROM …)`, uncorrelated);
/// `x IN (SELECT …)` may otherwise only read constants; EXISTS may not read
/// person-level rows; a scalar subquery is refused (it could carry one
/// person's value into every released cell).
pub fn with_guarded_subqueries(
    expr: Expr,
    input: &Guarded,
    scope: &Scope,
) -> Result<Expr, QueryError> {
    let schema = Arc::clone(input.plan.schema());
    expr.transform_up(|expr| match expr {
        Expr::ScalarSubquery(_) => Err(to_df(QueryError::refused(
            Rule::ScalarSubquery,
            "scalar subqueries are not allowed; join the subquery or use person_id IN (SELECT person_id FROM …)",
        ))),
        Expr::InSubquery(InSubquery {
            expr,
            subquery,
            negated,
        }) => {
            let outer = input.tags.of_expr(&schema, &expr);
            let subquery =
                guarded_subquery(subquery, scope, (outer.person_equal, outer.identifying))
                    .map_err(to_df)?;
            Ok(Transformed::yes(Expr::InSubquery(InSubquery {
                expr,
                subquery,
                negated,
            })))
        }
        Expr::Exists(Exists { subquery, negated }) => Ok(Transformed::yes(Expr::Exists(Exists {
            subquery: guarded_subquery(subquery, scope, (false, false)).map_err(to_df)?,
            negated,
        }))),
        other => Ok(Transformed::no(other)),
    })
    .map(|transformed| transformed.data)
    .map_err(QueryError::from)
}

/// The guarded subquery, refused unless it reads only constants (and the
/// outer side is no key: `outer_key`), or it selects persons
/// (`selects_persons`: the outer side is the person key) and returns the
/// person key.
fn guarded_subquery(
    subquery: Subquery,
    scope: &Scope,
    (selects_persons, outer_key): (bool, bool),
) -> Result<Subquery, QueryError> {
    if !subquery.outer_ref_columns.is_empty() {
        return Err(person_subquery_refusal());
    }
    let guarded = rewrite(&subquery.subquery, scope)?;
    if outer_key && guarded.person.is_none() {
        return Err(key_value_refusal("an IN (subquery) of constant rows"));
    }
    let fine_age = (0..guarded.plan.schema().fields().len()).any(|i| guarded.tags.get(i).fine_age);
    if fine_age && scope.care_output {
        return Err(care_age_refusal("a subquery"));
    }
    if let Some(person) = &guarded.person {
        let schema = guarded.plan.schema();
        let first_visible = (0..schema.fields().len())
            .find(|&index| schema.qualified_field(index).1.name() != person.name());
        let returns_persons =
            first_visible.is_some_and(|index| guarded.tags.get(index).person_equal);
        if !(selects_persons && returns_persons) {
            return Err(person_subquery_refusal());
        }
    }
    // The person column was appended: drop it so the subquery keeps its
    // original width (IN compares one column).
    let plan = drop_person(guarded.plan, guarded.person.as_ref())?;
    Ok(Subquery {
        subquery: Arc::new(plan),
        ..subquery
    })
}

fn person_subquery_refusal() -> QueryError {
    QueryError::refused(
        Rule::PersonSubquery,
        "a subquery over person-level rows may only select persons: person_id IN (SELECT person_id FROM …), without references to the outer query",
    )
}

fn drop_person(plan: LogicalPlan, person: Option<&Column>) -> Result<LogicalPlan, QueryError> {
    let Some(person) = person else {
        return Ok(plan);
    };
    let exprs: Vec<Expr> = plan
        .schema()
        .columns()
        .into_iter()
        .filter(|column| column != person)
        .map(Expr::Column)
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(plan),
    )?))
}

/// Carries a refusal through DataFusion's tree-walking closures.
pub fn to_df(error: QueryError) -> DataFusionError {
    DataFusionError::External(Box::new(error))
}
