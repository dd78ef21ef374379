//! Disclosure control on a released result: the rows the engine computed
//! carry hidden columns (persons and facilities per group, contributors and
//! largest contributions per value, grouping levels); this module withholds
//! every group that fails a rule and every value that fails one (NULL),
//! adds complementary suppression for totals, and strips the hidden
//! columns. A value with no contributor is withheld like one with a few,
//! so a NULL never tells which.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Float64Array};
use arrow::compute::kernels::nullif::nullif;
use arrow::compute::{cast, concat_batches, filter};
use arrow::datatypes::{DataType, Float64Type, Int64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;
use serde::{Deserialize, Serialize};

use crate::aggregates::Partial;
use crate::error::QueryError;
use crate::ledger::{Answer, Cell, CellKind, Decision, shown_values};
use crate::policy::{GroupLimit, MunicipalityLimits};
use crate::release::{
    CONTRIBUTORS, FACILITIES, GROUP_SET, GROUPING, KEY, MUNICIPALITY, N_PERSONS, PERSON_SET,
    ReleasedValue, TOP2, TOTAL,
};
use crate::sketch::SetSketch;
use crate::table::RESERVED_PREFIX;

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
    /// Totals of volume columns below this are withheld (0: no minimum).
    pub volume_minimum: f64,
    /// What a group of one municipality needs (`None`: every such group is
    /// withheld).
    pub municipalities: Option<&'static MunicipalityLimits>,
}

impl DisclosureRules {
    pub fn new(k: u32) -> DisclosureRules {
        DisclosureRules {
            k,
            min_facilities: 3,
            dominance_share: 0.9,
            max_groups: 1_000_000,
            volume_minimum: 0.0,
            municipalities: None,
        }
    }
}

/// What one statement read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanStats {
    pub fingerprint: String,
    /// `schema.table`, sorted.
    pub tables: Vec<String>,
    /// `schema.table.column`, sorted.
    pub columns: Vec<String>,
    /// Rows produced by the plan's sources (after file and row-group pruning).
    pub rows_scanned: u64,
}

/// What leaves the enclave.
#[derive(Debug)]
pub struct Released {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub released_groups: usize,
    /// Groups withheld whole (for the audit record only: a count of
    /// suppressed groups would tell a researcher that a group of fewer than
    /// k persons exists).
    pub suppressed_groups: usize,
    /// Values withheld in released groups (audit record only).
    pub suppressed_values: usize,
    /// What the statement read (for the audit record).
    pub scan: ScanStats,
    /// How the release ledger answered (ledger-protected projects).
    pub ledger: Option<Box<LedgerNote>>,
    /// The query's id (a project's queries), in its audit record, its
    /// Flight metadata and the ledger release its result made.
    pub query_id: Option<String>,
}

/// How the release ledger answered a result's values, counting released
/// groups only (withheld groups are not told).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LedgerNote {
    /// The ledger release that remembers this result's new cells.
    pub release: Option<u64>,
    #[serde(flatten)]
    pub values: ValueCounts,
    /// The earlier ledger releases those answers come from.
    pub repeats: Vec<Repeated>,
    /// Values the project may still have answered fresh (its budget less
    /// those answered so far, this result's included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fresh_values_left: Option<u64>,
}

/// Values of released groups answered fresh and repeated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueCounts {
    /// Values answered fresh.
    pub fresh_values: usize,
    /// Values that repeat an earlier answer (their persons are within k-1
    /// of an earlier released cell's, or the same).
    pub repeated_values: usize,
}

/// An earlier ledger release an answer repeats, as a researcher may see it:
/// a release of their project by the query whose result made it, another
/// project's release by nothing at all (not its number, query or project).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "origin", rename_all = "kebab-case")]
pub enum Repeated {
    ThisProject {
        release: u64,
        /// `None` for a release stored before releases named their query.
        #[serde(skip_serializing_if = "Option::is_none")]
        query_id: Option<String>,
    },
    AnotherProject,
}

impl ValueCounts {
    /// The counts of the ledger's `decisions` on `cells` (see
    /// [`shown_values`]).
    pub fn of(cells: &[Cell], decisions: &[Decision]) -> ValueCounts {
        let mut counts = ValueCounts::default();
        for decision in shown_values(cells, decisions) {
            match decision.repeats {
                Some(_) => counts.repeated_values += 1,
                None => counts.fresh_values += 1,
            }
        }
        counts
    }
}

impl LedgerNote {
    /// The note on the ledger's `decisions` on `cells`, remembered as
    /// ledger release `release` (if any cell was new); `origin` says how
    /// an earlier release is shown. Each earlier release is named once.
    pub fn new(
        cells: &[Cell],
        decisions: &[Decision],
        release: Option<u64>,
        origin: impl Fn(u64) -> Repeated,
    ) -> LedgerNote {
        let earlier: BTreeSet<u64> = shown_values(cells, decisions)
            .filter_map(|decision| decision.repeats)
            .collect();
        let repeats: BTreeSet<Repeated> = earlier.into_iter().map(origin).collect();
        LedgerNote {
            release,
            values: ValueCounts::of(cells, decisions),
            repeats: repeats.into_iter().collect(),
            fresh_values_left: None,
        }
    }
}

/// The schema a client sees: the computed schema without hidden columns,
/// every column nullable (a withheld value is NULL).
pub fn visible_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .filter(|field| !field.name().starts_with(RESERVED_PREFIX))
        .map(|field| Arc::new(field.as_ref().clone().with_nullable(true)))
        .collect();
    Arc::new(Schema::new(fields))
}

/// A computed result with the single-query rules' findings, before its
/// hidden columns are stripped: the release ledger may still change them
/// (see [`Assessment::cells`] and [`Assessment::answer`]).
#[derive(Debug)]
pub struct Assessment {
    schema: SchemaRef,
    all: RecordBatch,
    suppressed_rows: Vec<bool>,
    /// The persons each group needs (k, or its municipality's tier).
    least_persons: Vec<f64>,
    values: Vec<ValueColumn>,
    /// Replacement columns by position (answers from the ledger).
    answered: HashMap<usize, ArrayRef>,
    ledger: Option<Box<LedgerNote>>,
}

/// Withholds groups and values by the single-query rules (`values`: the
/// released aggregate's values, for the rules that depend on what a value
/// computes).
pub fn assess(
    rules: &DisclosureRules,
    schema: SchemaRef,
    batches: &[RecordBatch],
    values: &[ReleasedValue],
) -> Result<Assessment, QueryError> {
    let all = concat_batches(&schema, batches).map_err(QueryError::internal)?;
    if all.num_rows() > rules.max_groups {
        return Err(QueryError::ResourcesExhausted(format!(
            "a result may hold at most {} groups",
            rules.max_groups
        )));
    }
    let least_persons = least_persons(rules, &all)?;
    let suppressed_rows = row_suppression(rules, &all, &least_persons)?;
    let mut value_columns = value_suppression(rules, &all, &suppressed_rows, &least_persons)?;
    volume_minimum(rules, &all, values, &mut value_columns)?;
    complementary_suppression(rules, &all, &mut value_columns)?;
    Ok(Assessment {
        schema,
        all,
        suppressed_rows,
        least_persons,
        values: value_columns,
        answered: HashMap::new(),
        ledger: None,
    })
}

impl Assessment {
    /// The result as it leaves: withheld groups dropped, withheld values
    /// NULL, hidden columns stripped.
    pub fn release(self) -> Result<Released, QueryError> {
        let keep: BooleanArray = self.suppressed_rows.iter().map(|s| Some(!s)).collect();
        let visible = visible_schema(&self.schema);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(visible.fields().len());
        let mut suppressed_values = 0;
        for (position, field) in self.schema.fields().iter().enumerate() {
            if field.name().starts_with(RESERVED_PREFIX) {
                continue;
            }
            let mut column = self
                .answered
                .get(&position)
                .map_or_else(|| Arc::clone(self.all.column(position)), Arc::clone);
            if let Some(value) = self.values.iter().find(|value| value.position == position) {
                let hidden: BooleanArray = value.hidden.iter().map(|h| Some(*h)).collect();
                suppressed_values += value
                    .hidden
                    .iter()
                    .zip(&self.suppressed_rows)
                    .filter(|(value, row)| **value && !**row)
                    .count();
                column = nullif(&column, &hidden).map_err(QueryError::internal)?;
            }
            columns.push(filter(&column, &keep).map_err(QueryError::internal)?);
        }
        let batch =
            RecordBatch::try_new(Arc::clone(&visible), columns).map_err(QueryError::internal)?;
        Ok(Released {
            schema: visible,
            released_groups: batch.num_rows(),
            batches: vec![batch],
            suppressed_groups: self.suppressed_rows.iter().filter(|s| **s).count(),
            suppressed_values,
            scan: ScanStats::default(),
            ledger: self.ledger,
            query_id: None,
        })
    }
}

impl Assessment {
    /// The result's cells for the release ledger, each group followed by
    /// its ledgered values, row by row (the order [`Assessment::answer`]
    /// takes decisions in).
    pub fn cells(&self, values: &[ReleasedValue]) -> Result<Vec<Cell>, QueryError> {
        let group_sets = sketches(&self.all, GROUP_SET)?;
        let persons = column_f64(&self.all, N_PERSONS)?;
        let ledgered = self.ledgered(values)?;
        let mut cells = Vec::new();
        for (row, suppressed) in self.suppressed_rows.iter().enumerate() {
            cells.push(Cell {
                kind: CellKind::Group,
                persons: persons[row].unwrap_or(0.0) as u64,
                sketch: group_sets[row],
                exact: if *suppressed {
                    Answer::Withheld
                } else {
                    Answer::Shown
                },
                noise_scale: 1.0,
            });
            for value in &ledgered {
                cells.push(value.cell(row));
            }
        }
        Ok(cells)
    }

    /// Takes the ledger's decisions on [`Assessment::cells`] (and what
    /// the researcher is told of them, `note`), rounding released counts
    /// and sums to a multiple of `rounding`. A shown group holds at least
    /// the persons its rules need, which is public, so no released count
    /// falls below that whatever its noise.
    pub fn answer(
        &mut self,
        values: &[ReleasedValue],
        decisions: &[Decision],
        note: LedgerNote,
        rounding: i64,
    ) -> Result<(), QueryError> {
        let ledgered = self.ledgered(values)?;
        let stride = 1 + ledgered.len();
        if decisions.len() != stride * self.all.num_rows() {
            return Err(QueryError::internal("ledger decisions do not match cells"));
        }
        for (row, decisions) in decisions.chunks(stride).enumerate() {
            self.suppressed_rows[row] = decisions[0].answer != Answer::Shown;
        }
        self.ledger = Some(Box::new(note));
        let answered: Vec<(usize, Vec<Option<f64>>)> = ledgered
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let presentation = value.presentation(rounding);
                let answers = decisions
                    .chunks(stride)
                    .zip(&self.least_persons)
                    .map(|(row, least)| match row[1 + index].answer {
                        Answer::Value(v) => Some(presentation.apply(v, *least)),
                        Answer::Withheld | Answer::Shown => None,
                    })
                    .collect();
                (value.position, answers)
            })
            .collect();
        for (position, answers) in answered {
            let data_type = self.schema.field(position).data_type().clone();
            let column = cast(&Float64Array::from(answers.clone()), &data_type)
                .map_err(QueryError::internal)?;
            if let Some(value) = self.values.iter_mut().find(|v| v.position == position) {
                value.hidden = answers.iter().map(Option::is_none).collect();
            }
            self.answered.insert(position, column);
        }
        Ok(())
    }

    fn ledgered(&self, values: &[ReleasedValue]) -> Result<Vec<LedgeredValue>, QueryError> {
        values
            .iter()
            .filter_map(|value| {
                let kind = match value.partial {
                    Partial::Count | Partial::Persons | Partial::Sum => CellKind::Sum,
                    Partial::Avg => CellKind::Average,
                    Partial::Min | Partial::Max => return None,
                };
                Some(LedgeredValue::read(self, value, kind))
            })
            .collect()
    }
}

/// One ledgered value column with what its cells need.
struct LedgeredValue {
    position: usize,
    kind: CellKind,
    integer: bool,
    rounded: bool,
    count: bool,
    exact: Vec<Option<f64>>,
    hidden: Vec<bool>,
    contributors: Vec<f64>,
    sketches: Vec<SetSketch>,
    /// The mean absolute per-person partial (at least 1).
    mean_partial: Vec<f64>,
}

impl LedgeredValue {
    fn read(
        assessment: &Assessment,
        value: &ReleasedValue,
        kind: CellKind,
    ) -> Result<LedgeredValue, QueryError> {
        let position = value.position;
        let batch = &assessment.all;
        let column = value_column(assessment, position)?;
        let exact =
            cast(batch.column(position), &DataType::Float64).map_err(QueryError::internal)?;
        let mean_partial = match batch.column_by_name(&format!("{TOTAL}{position}")) {
            Some(_) => column_f64(batch, &format!("{TOTAL}{position}"))?
                .into_iter()
                .zip(&column.contributors)
                .map(|(total, n)| total.map_or(1.0, |total| (total / n.max(1.0)).max(1.0)))
                .collect(),
            None => vec![1.0; batch.num_rows()],
        };
        Ok(LedgeredValue {
            position,
            kind,
            integer: assessment.schema.field(position).data_type().is_integer(),
            rounded: value.partial.is_rounded(),
            count: matches!(value.partial, Partial::Count | Partial::Persons),
            exact: exact.as_primitive::<Float64Type>().iter().collect(),
            hidden: column.hidden.clone(),
            contributors: column.contributors.clone(),
            sketches: sketches(batch, &format!("{PERSON_SET}{position}"))?,
            mean_partial,
        })
    }

    fn cell(&self, row: usize) -> Cell {
        let contributors = self.contributors[row];
        let exact = match self.exact[row] {
            Some(value) if !self.hidden[row] => Answer::Value(value),
            _ => Answer::Withheld,
        };
        let noise_scale = match self.kind {
            CellKind::Average => self.mean_partial[row] / contributors.max(1.0),
            CellKind::Sum | CellKind::Group => self.mean_partial[row],
        };
        Cell {
            kind: self.kind,
            persons: contributors as u64,
            sketch: self.sketches[row],
            exact,
            noise_scale,
        }
    }

    /// How this column's ledger answers are released.
    fn presentation(&self, rounding: i64) -> Presentation {
        Presentation {
            base: if self.rounded {
                rounding.max(1) as f64
            } else {
                1.0
            },
            whole: self.rounded || self.integer,
            count: self.count,
        }
    }
}

/// How a ledger answer is released: a count no lower than the persons its
/// group needs, half away from zero to a multiple of `base` (a count up to
/// the first multiple at or above that least) when `whole`.
#[derive(Debug, Clone, Copy)]
struct Presentation {
    base: f64,
    whole: bool,
    count: bool,
}

impl Presentation {
    fn apply(self, value: f64, least_persons: f64) -> f64 {
        let least = if self.count { least_persons } else { f64::MIN };
        let value = value.max(least);
        if !self.whole {
            return value;
        }
        let rounded = (value / self.base).round() * self.base;
        if rounded < least {
            (least / self.base).ceil() * self.base
        } else {
            rounded
        }
    }
}

fn value_column(assessment: &Assessment, position: usize) -> Result<&ValueColumn, QueryError> {
    assessment
        .values
        .iter()
        .find(|value| value.position == position)
        .ok_or_else(|| QueryError::internal(format!("no contributors for value {position}")))
}

fn sketches(batch: &RecordBatch, name: &str) -> Result<Vec<SetSketch>, QueryError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| QueryError::internal(format!("hidden column {name} missing")))?;
    column
        .as_binary::<i32>()
        .iter()
        .map(|bytes| {
            bytes
                .and_then(SetSketch::from_bytes)
                .ok_or_else(|| QueryError::internal("malformed person-set sketch"))
        })
        .collect()
}

fn column_f64(batch: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>, QueryError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| QueryError::internal(format!("hidden column {name} missing")))?;
    let values = cast(column, &DataType::Float64).map_err(QueryError::internal)?;
    Ok(values.as_primitive::<Float64Type>().iter().collect())
}

/// The persons each group needs: k, or for a group of one municipality
/// (the least and greatest code of a grouped-by municipality column are
/// equal) what its population tier needs, infinite when it shows no counts.
fn least_persons(rules: &DisclosureRules, batch: &RecordBatch) -> Result<Vec<f64>, QueryError> {
    let k = f64::from(rules.k);
    let mut least = vec![k; batch.num_rows()];
    let schema = batch.schema();
    let columns = schema.fields().iter().filter_map(|field| {
        let name = field.name().strip_prefix(MUNICIPALITY)?;
        name.strip_suffix("_min").map(str::to_owned)
    });
    for index in columns {
        let codes = |end: &str| -> Result<Vec<Option<String>>, QueryError> {
            let column = column_utf8(batch, &format!("{MUNICIPALITY}{index}_{end}"))?;
            Ok(column.iter().map(|code| code.map(str::to_owned)).collect())
        };
        let (lowest, highest) = (codes("min")?, codes("max")?);
        for (row, least) in least.iter_mut().enumerate() {
            let (Some(low), Some(high)) = (&lowest[row], &highest[row]) else {
                continue;
            };
            if low != high {
                continue;
            }
            let limit = rules
                .municipalities
                .map_or(GroupLimit::Withheld, |limits| limits.of(low));
            *least = match limit {
                GroupLimit::Withheld => f64::INFINITY,
                GroupLimit::AtLeast(n) => least.max(f64::from(n)),
            };
        }
    }
    Ok(least)
}

fn column_utf8(batch: &RecordBatch, name: &str) -> Result<arrow::array::StringArray, QueryError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| QueryError::internal(format!("hidden column {name} missing")))?;
    let text = cast(column, &DataType::Utf8).map_err(QueryError::internal)?;
    Ok(text.as_string::<i32>().clone())
}

/// Groups failing their least persons or the facility rule: withheld whole.
fn row_suppression(
    rules: &DisclosureRules,
    batch: &RecordBatch,
    least_persons: &[f64],
) -> Result<Vec<bool>, QueryError> {
    let rows = batch.num_rows();
    let persons = column_f64(batch, N_PERSONS)?;
    let mut suppressed: Vec<bool> = persons
        .iter()
        .zip(least_persons)
        .map(|(n, least)| n.is_none_or(|n| n < *least))
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
    Ok(suppressed)
}

/// One released value column: which rows withhold it, and how many persons
/// contribute to it in each row.
#[derive(Debug)]
struct ValueColumn {
    position: usize,
    hidden: Vec<bool>,
    contributors: Vec<f64>,
}

/// Each value is withheld where its group is, where fewer persons than
/// its group needs contribute to it, or where the two largest absolute per-person
/// contributions exceed the dominance share of their sum.
fn value_suppression(
    rules: &DisclosureRules,
    batch: &RecordBatch,
    suppressed_rows: &[bool],
    least_persons: &[f64],
) -> Result<Vec<ValueColumn>, QueryError> {
    let schema = batch.schema();
    let mut values = Vec::new();
    for field in schema.fields() {
        let Some(position) = field.name().strip_prefix(CONTRIBUTORS) else {
            continue;
        };
        let contributors: Vec<f64> = column_f64(batch, field.name())?
            .into_iter()
            .map(|n| n.unwrap_or(0.0))
            .collect();
        let mut hidden: Vec<bool> = contributors
            .iter()
            .zip(suppressed_rows)
            .zip(least_persons)
            .map(|((n, row), least)| *row || n < least)
            .collect();
        if let (Some(_), Some(_)) = (
            batch.column_by_name(&format!("{TOP2}{position}")),
            batch.column_by_name(&format!("{TOTAL}{position}")),
        ) {
            let top = column_f64(batch, &format!("{TOP2}{position}"))?;
            let total = column_f64(batch, &format!("{TOTAL}{position}"))?;
            for (row, hide) in hidden.iter_mut().enumerate() {
                if let (Some(top), Some(total)) = (top[row], total[row])
                    && total > 0.0
                    && top > rules.dominance_share * total
                {
                    *hide = true;
                }
            }
        }
        values.push(ValueColumn {
            position: position.parse().map_err(QueryError::internal)?,
            hidden,
            contributors,
        });
    }
    Ok(values)
}

/// Totals of a volume column (publication rules: NDB drug volumes) under
/// the minimum are withheld.
fn volume_minimum(
    rules: &DisclosureRules,
    batch: &RecordBatch,
    values: &[ReleasedValue],
    columns: &mut [ValueColumn],
) -> Result<(), QueryError> {
    let totals = values
        .iter()
        .filter(|value| value.volume && value.partial == Partial::Sum);
    for value in totals {
        let exact =
            cast(batch.column(value.position), &DataType::Float64).map_err(QueryError::internal)?;
        let Some(column) = columns.iter_mut().find(|c| c.position == value.position) else {
            continue;
        };
        for (hide, total) in column
            .hidden
            .iter_mut()
            .zip(exact.as_primitive::<Float64Type>())
        {
            *hide |= total.is_none_or(|total| total < rules.volume_minimum);
        }
    }
    Ok(())
}

/// For ROLLUP / CUBE / GROUPING SETS, value by value: where a total's
/// children withhold that value, the withheld part of the total (the total
/// minus its released children) must not be one child's value nor come
/// from fewer than k persons; the smallest released child is withheld too
/// until it does not.
fn complementary_suppression(
    rules: &DisclosureRules,
    batch: &RecordBatch,
    values: &mut [ValueColumn],
) -> Result<(), QueryError> {
    let Some(families) = families(batch)? else {
        return Ok(());
    };
    for value in values.iter_mut() {
        while let Some(row) = next_complement(rules, &families, value) {
            value.hidden[row] = true;
        }
    }
    Ok(())
}

/// A released child to withhold so some family's withheld part is safe.
fn next_complement(
    rules: &DisclosureRules,
    families: &[Vec<usize>],
    value: &ValueColumn,
) -> Option<usize> {
    for children in families {
        let withheld: Vec<usize> = children
            .iter()
            .copied()
            .filter(|&row| value.hidden[row])
            .collect();
        let mass: f64 = withheld.iter().map(|&row| value.contributors[row]).sum();
        let safe = withheld.is_empty() || (withheld.len() > 1 && mass >= f64::from(rules.k));
        if safe {
            continue;
        }
        let smallest = children
            .iter()
            .copied()
            .filter(|&row| !value.hidden[row])
            .min_by(|&a, &b| {
                value.contributors[a]
                    .partial_cmp(&value.contributors[b])
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        if smallest.is_some() {
            return smallest;
        }
    }
    None
}

/// The children of each total: rows one grouping level below a total with
/// the same values of the total's keys. `None` without grouping sets.
fn families(batch: &RecordBatch) -> Result<Option<Vec<Vec<usize>>>, QueryError> {
    let Some(grouping) = batch.column_by_name(GROUPING) else {
        return Ok(None);
    };
    let grouping = cast(grouping, &DataType::Int64).map_err(QueryError::internal)?;
    let grouping = grouping.as_primitive::<Int64Type>();
    let keys: Vec<&ArrayRef> = (0..)
        .map_while(|index| batch.column_by_name(&format!("{KEY}{index}")))
        .collect();
    let key_count = keys.len();
    let grouped = |row: usize| -> u64 {
        // Bit (n-1-i) of the grouping id is set when key i is rolled up.
        let id = grouping.value(row) as u64;
        (0..key_count)
            .filter(|i| id & (1 << (key_count - 1 - i)) == 0)
            .fold(0, |set, i| set | (1 << i))
    };
    let cell = |row: usize, key: usize| array_value_to_string(keys[key], row).unwrap_or_default();
    let mut families: HashMap<(u64, u64, Vec<String>), Vec<usize>> = HashMap::new();
    let levels: Vec<u64> = (0..batch.num_rows()).map(grouped).collect();
    let mut distinct_levels = levels.clone();
    distinct_levels.sort_unstable();
    distinct_levels.dedup();
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
    let mut families: Vec<Vec<usize>> = families.into_values().collect();
    families.sort();
    Ok(Some(families))
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::Field;

    use crate::policy::PublicationPolicy;

    /// Groups as the released aggregate computes them: a visible key, the
    /// persons, and the least and greatest municipality code.
    fn municipality_groups(rows: &[(&str, &str, i64)]) -> RecordBatch {
        let least = format!("{MUNICIPALITY}0_min");
        let greatest = format!("{MUNICIPALITY}0_max");
        let schema = Arc::new(Schema::new(vec![
            Field::new("area", DataType::Utf8, true),
            Field::new(N_PERSONS, DataType::Int64, true),
            Field::new(least, DataType::Utf8, true),
            Field::new(greatest, DataType::Utf8, true),
        ]));
        let column = |pick: fn(&(&str, &str, i64)) -> String| {
            Arc::new(StringArray::from_iter_values(rows.iter().map(pick))) as ArrayRef
        };
        RecordBatch::try_new(
            schema,
            vec![
                column(|row| format!("{}..{}", row.0, row.1)),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|row| row.2))),
                column(|row| row.0.to_string()),
                column(|row| row.1.to_string()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_group_of_one_municipality_meets_its_population_tier() {
        let rules = PublicationPolicy::embedded().unwrap().rules(10);
        // Tokyo's village (1,200), town (6,500), city (520,000); 999999 is
        // in no master.
        let rows = [
            ("131003", "131003", 500),
            ("131011", "131011", 19),
            ("131011", "131011", 20),
            ("131052", "131052", 9),
            ("131052", "131052", 10),
            ("131003", "131052", 10),
            ("999999", "999999", 500),
        ];
        let batch = municipality_groups(&rows);
        let released = assess(&rules, batch.schema(), &[batch], &[])
            .unwrap()
            .release()
            .unwrap();
        let shown: Vec<String> = released.batches[0]
            .column(0)
            .as_string::<i32>()
            .iter()
            .map(|area| area.unwrap().to_owned())
            .collect();
        assert_eq!(
            shown,
            ["131011..131011", "131052..131052", "131003..131052"]
        );
    }

    fn count(base: f64) -> Presentation {
        Presentation {
            base,
            whole: true,
            count: true,
        }
    }

    #[test]
    fn a_noisy_count_is_released_no_lower_than_a_shown_group() {
        assert_eq!(count(10.0).apply(3.2, 10.0), 10.0);
        assert_eq!(count(10.0).apply(-4.0, 10.0), 10.0);
        assert_eq!(count(3.0).apply(9.0, 10.0), 12.0);
        assert_eq!(count(1.0).apply(9.6, 10.0), 10.0);
        assert_eq!(count(10.0).apply(14.9, 10.0), 10.0);
        assert_eq!(count(10.0).apply(15.0, 10.0), 20.0);
        assert_eq!(count(10.0).apply(13.0, 20.0), 20.0);
    }

    #[test]
    fn sums_and_averages_keep_their_sign_and_fraction() {
        let sum = Presentation {
            base: 10.0,
            whole: true,
            count: false,
        };
        assert_eq!(sum.apply(-26.0, 10.0), -30.0);
        let average = Presentation {
            base: 1.0,
            whole: false,
            count: false,
        };
        assert_eq!(average.apply(2.345, 10.0), 2.345);
    }

    fn cell(kind: CellKind) -> Cell {
        Cell {
            kind,
            persons: 10,
            sketch: SetSketch::default(),
            exact: Answer::Shown,
            noise_scale: 1.0,
        }
    }

    fn decided(answer: Answer, repeats: Option<u64>) -> Decision {
        Decision { answer, repeats }
    }

    /// A shown group with a fresh value and two values repeating releases
    /// 3 (this project's) and 5 (another's), and a withheld group whose
    /// values repeat release 4: only the shown group's values are told of.
    #[test]
    fn the_note_tells_of_shown_groups_and_names_only_this_projects_releases() {
        let cells = [
            cell(CellKind::Group),
            cell(CellKind::Sum),
            cell(CellKind::Sum),
            cell(CellKind::Average),
            cell(CellKind::Group),
            cell(CellKind::Sum),
            cell(CellKind::Sum),
            cell(CellKind::Average),
        ];
        let value = Answer::Value(12.0);
        let decisions = [
            decided(Answer::Shown, None),
            decided(value, None),
            decided(value, Some(3)),
            decided(value, Some(5)),
            decided(Answer::Withheld, None),
            decided(value, Some(4)),
            decided(value, Some(4)),
            decided(value, None),
        ];
        let origin = |release| match release {
            3 | 4 => Repeated::ThisProject {
                release,
                query_id: Some(format!("q-{release}")),
            },
            _ => Repeated::AnotherProject,
        };
        let note = LedgerNote::new(&cells, &decisions, Some(7), origin);
        let json = serde_json::to_value(&note).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "release": 7,
                "fresh_values": 1,
                "repeated_values": 2,
                "repeats": [
                    {"origin": "this-project", "release": 3, "query_id": "q-3"},
                    {"origin": "another-project"},
                ],
            })
        );
    }
}
