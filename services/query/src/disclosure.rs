//! Disclosure control on a released result: the rows the engine computed
//! carry hidden columns (persons, facilities, largest contributions, grouping
//! levels); this module suppresses every group that fails a rule, adds
//! complementary suppression for totals, and strips the hidden columns.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray};
use arrow::compute::{cast, concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;

use crate::error::QueryError;
use crate::guard::release::{FACILITIES, GROUPING, KEY, N_PERSONS, TOP2, TOTAL};
use crate::scan::ScanStats;
use crate::tables::RESERVED_PREFIX;

/// The thresholds applied to every released group.
#[derive(Debug, Clone, Copy)]
pub struct DisclosureRules {
    /// Minimum distinct persons per group.
    pub k: u32,
    /// Minimum distinct facilities per group when groups name facilities.
    pub min_facilities: u32,
    /// The two largest persons may contribute at most this share of a sum.
    pub dominance_share: f64,
    /// Most groups one result may hold.
    pub max_groups: usize,
}

impl DisclosureRules {
    pub fn new(k: u32) -> DisclosureRules {
        DisclosureRules {
            k,
            min_facilities: 3,
            dominance_share: 0.9,
            max_groups: 1_000_000,
        }
    }
}

/// What leaves the enclave.
#[derive(Debug)]
pub struct Released {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub released_groups: usize,
    pub suppressed_groups: usize,
    /// What the statement read (for the audit record).
    pub scan: ScanStats,
}

/// The schema a client sees: the computed schema without hidden columns.
pub fn visible_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .filter(|field| !field.name().starts_with(RESERVED_PREFIX))
        .cloned()
        .collect();
    Arc::new(Schema::new(fields))
}

/// Applies the rules to a guarded result (`schema` includes hidden columns).
pub fn apply(
    rules: &DisclosureRules,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<Released, QueryError> {
    let all = concat_batches(&schema, batches).map_err(QueryError::internal)?;
    if all.num_rows() > rules.max_groups {
        return Err(QueryError::ResourcesExhausted(format!(
            "a result may hold at most {} groups",
            rules.max_groups
        )));
    }
    let mut suppressed = primary_suppression(rules, &all)?;
    complementary_suppression(&all, &mut suppressed)?;
    let keep: BooleanArray = suppressed.iter().map(|s| Some(!s)).collect();
    let kept = filter_record_batch(&all, &keep).map_err(QueryError::internal)?;
    let visible = visible_schema(&schema);
    let columns: Vec<ArrayRef> = visible
        .fields()
        .iter()
        .map(|field| Ok(Arc::clone(kept.column(schema.index_of(field.name())?))))
        .collect::<Result<_, arrow::error::ArrowError>>()
        .map_err(QueryError::internal)?;
    let batch =
        RecordBatch::try_new(Arc::clone(&visible), columns).map_err(QueryError::internal)?;
    let suppressed_groups = suppressed.iter().filter(|s| **s).count();
    Ok(Released {
        schema: visible,
        released_groups: batch.num_rows(),
        batches: vec![batch],
        suppressed_groups,
        scan: ScanStats::default(),
    })
}

fn column_f64(batch: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>, QueryError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| QueryError::internal(format!("hidden column {name} missing")))?;
    let values = cast(column, &DataType::Float64).map_err(QueryError::internal)?;
    Ok(values.as_primitive::<Float64Type>().iter().collect())
}

/// Groups failing k, the facility rule or the dominance rule.
fn primary_suppression(
    rules: &DisclosureRules,
    batch: &RecordBatch,
) -> Result<Vec<bool>, QueryError> {
    let rows = batch.num_rows();
    let persons = column_f64(batch, N_PERSONS)?;
    let mut suppressed: Vec<bool> = persons
        .iter()
        .map(|n| n.is_none_or(|n| n < f64::from(rules.k)))
        .collect();
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut facilities: HashMap<&str, Vec<f64>> = HashMap::new();
    for name in names.iter().filter(|name| name.starts_with(FACILITIES)) {
        let rule = name
            .rsplit_once('_')
            .map_or(name.as_str(), |(rule, _)| rule);
        let counts = column_f64(batch, name)?;
        let best = facilities.entry(rule).or_insert_with(|| vec![0.0; rows]);
        for (best, count) in best.iter_mut().zip(counts) {
            *best = best.max(count.unwrap_or(0.0));
        }
    }
    for counts in facilities.values() {
        for (row, count) in counts.iter().enumerate() {
            suppressed[row] |= *count < f64::from(rules.min_facilities);
        }
    }
    for name in names.iter().filter(|name| name.starts_with(TOP2)) {
        let index = &name[TOP2.len()..];
        let top = column_f64(batch, name)?;
        let total = column_f64(batch, &format!("{TOTAL}{index}"))?;
        for row in 0..rows {
            if let (Some(top), Some(total)) = (top[row], total[row])
                && (total <= 0.0 || top > rules.dominance_share * total)
                && top > 0.0
            {
                suppressed[row] = true;
            }
        }
    }
    Ok(suppressed)
}

/// For ROLLUP / CUBE / GROUPING SETS: when a released total has exactly one
/// suppressed child along a dimension, the child could be derived by
/// subtraction; the smallest other released child is suppressed too, until
/// no total has a single suppressed child.
fn complementary_suppression(
    batch: &RecordBatch,
    suppressed: &mut [bool],
) -> Result<(), QueryError> {
    let Some(grouping) = batch.column_by_name(GROUPING) else {
        return Ok(());
    };
    let grouping = cast(grouping, &DataType::Int64).map_err(QueryError::internal)?;
    let grouping = grouping.as_primitive::<Int64Type>();
    let keys: Vec<&ArrayRef> = (0..)
        .map_while(|index| batch.column_by_name(&format!("{KEY}{index}")))
        .collect();
    let persons = column_f64(batch, N_PERSONS)?;
    let key_count = keys.len();
    let grouped = |row: usize| -> u64 {
        // Bit (n-1-i) of the grouping id is set when key i is rolled up.
        let id = grouping.value(row) as u64;
        (0..key_count)
            .filter(|i| id & (1 << (key_count - 1 - i)) == 0)
            .fold(0, |set, i| set | (1 << i))
    };
    let cell = |row: usize, key: usize| array_value_to_string(keys[key], row).unwrap_or_default();
    // Families: (parent level, child level, parent key values) → child rows.
    let mut families: HashMap<(u64, u64, Vec<String>), Vec<usize>> = HashMap::new();
    let levels: Vec<u64> = (0..batch.num_rows()).map(grouped).collect();
    let distinct_levels: Vec<u64> = {
        let mut all = levels.clone();
        all.sort_unstable();
        all.dedup();
        all
    };
    for (row, &child) in levels.iter().enumerate() {
        for &parent in &distinct_levels {
            let extra = child & !parent;
            if parent & !child == 0 && extra.count_ones() == 1 {
                let values = (0..key_count)
                    .filter(|k| parent & (1 << k) != 0)
                    .map(|k| cell(row, k))
                    .collect();
                families
                    .entry((parent, child, values))
                    .or_default()
                    .push(row);
            }
        }
    }
    loop {
        let mut changed = false;
        for children in families.values() {
            let hidden = children.iter().filter(|&&row| suppressed[row]).count();
            if hidden != 1 {
                continue;
            }
            let smallest = children
                .iter()
                .filter(|&&row| !suppressed[row])
                .min_by(|&&a, &&b| {
                    persons[a]
                        .partial_cmp(&persons[b])
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
            if let Some(&row) = smallest {
                suppressed[row] = true;
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
    }
}
