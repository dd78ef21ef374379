//! Column building shared by every published table.
//!
//! Each table module fills typed Arrow builders for its own columns and a
//! [`CommonColumns`] for the columns every table shares (`person_id`, `sex`,
//! `age_band`, `prefecture_code`, `service_month`, `facility_id`).
//! [`assemble`] then orders them exactly as the catalog defines the table,
//! refusing a missing, extra or mistyped column.

use hashbrown::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayBuilder, ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use enclave_catalog::{AgeBandRule, Generalization, TableDef, age_band};
use enclave_core::date::YearMonth;
use enclave_core::person::Sex;

use crate::error::IngestError;

/// Oldest age with its own precomputed band label.
const MAX_AGE: i32 = 130;

/// The shared attributes of one published row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowContext {
    pub(crate) person_id: i64,
    pub(crate) sex: Sex,
    /// Age in whole years at the row's reference date.
    pub(crate) age: i32,
    pub(crate) prefecture_code: u8,
    pub(crate) service_month: YearMonth,
    /// `None` for tables without a facility (certifications).
    pub(crate) facility_id: Option<i64>,
}

/// Labels computed once per table instead of once per row.
#[derive(Debug)]
struct Labels {
    age_bands: Vec<String>,
    prefectures: Vec<String>,
    months: HashMap<YearMonth, String>,
}

impl Labels {
    fn age_band(&self, age: i32) -> &str {
        &self.age_bands[age.clamp(0, MAX_AGE) as usize]
    }

    fn prefecture(&self, code: u8) -> &str {
        &self.prefectures[usize::from(code)]
    }

    fn month(&mut self, month: YearMonth) -> &str {
        self.months
            .entry(month)
            .or_insert_with(|| month.to_string())
    }
}

/// Builders of the shared columns.
#[derive(Debug)]
pub(crate) struct CommonColumns {
    labels: Labels,
    has_facility: bool,
    person_id: Int64Builder,
    sex: StringBuilder,
    age_band: StringBuilder,
    prefecture_code: StringBuilder,
    service_month: StringBuilder,
    facility_id: Int64Builder,
}

impl CommonColumns {
    /// Builders for `table`, taking its age band rule from the catalog.
    pub(crate) fn new(table: &TableDef) -> Result<CommonColumns, IngestError> {
        let rule = match table.generalization("age_band") {
            Some(Generalization::AgeBand(rule)) => *rule,
            _ => {
                return Err(IngestError::Catalog(format!(
                    "table {} has no age_band rule",
                    table.name
                )));
            }
        };
        Ok(CommonColumns {
            labels: Labels {
                age_bands: age_band_labels(&rule),
                prefectures: (0..=u8::MAX).map(|code| format!("{code:02}")).collect(),
                months: HashMap::new(),
            },
            has_facility: table.column("facility_id").is_some(),
            person_id: Int64Builder::new(),
            sex: StringBuilder::new(),
            age_band: StringBuilder::new(),
            prefecture_code: StringBuilder::new(),
            service_month: StringBuilder::new(),
            facility_id: Int64Builder::new(),
        })
    }

    pub(crate) fn push(&mut self, row: &RowContext) {
        self.person_id.append_value(row.person_id);
        self.sex.append_value(row.sex.code());
        self.age_band.append_value(self.labels.age_band(row.age));
        self.prefecture_code
            .append_value(self.labels.prefecture(row.prefecture_code));
        self.service_month
            .append_value(self.labels.month(row.service_month));
        if self.has_facility {
            self.facility_id.append_option(row.facility_id);
        }
    }

    /// A month label from the shared cache (for other month columns).
    pub(crate) fn month_label(&mut self, month: YearMonth) -> &str {
        self.labels.month(month)
    }

    pub(crate) fn finish(mut self) -> Vec<(&'static str, ArrayRef)> {
        let mut columns = vec![
            ("person_id", finish(&mut self.person_id)),
            ("sex", finish(&mut self.sex)),
            ("age_band", finish(&mut self.age_band)),
            ("prefecture_code", finish(&mut self.prefecture_code)),
            ("service_month", finish(&mut self.service_month)),
        ];
        if self.has_facility {
            columns.push(("facility_id", finish(&mut self.facility_id)));
        }
        columns
    }
}

fn age_band_labels(rule: &AgeBandRule) -> Vec<String> {
    (0..=MAX_AGE).map(|age| age_band(rule, age)).collect()
}

/// Finishes any Arrow builder into an array.
pub(crate) fn finish(builder: &mut dyn ArrayBuilder) -> ArrayRef {
    builder.finish()
}

/// Orders `columns` as the catalog defines `table` and checks their types.
pub(crate) fn assemble(
    table: &TableDef,
    columns: Vec<(&'static str, ArrayRef)>,
) -> Result<RecordBatch, IngestError> {
    let mut by_name: HashMap<&str, ArrayRef> = columns.into_iter().collect();
    let schema = table.arrow_schema();
    let ordered = schema
        .fields()
        .iter()
        .map(|field| {
            by_name.remove(field.name().as_str()).ok_or_else(|| {
                IngestError::Catalog(format!("{}.{} is not produced", table.name, field.name()))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(extra) = by_name.keys().next() {
        return Err(IngestError::Catalog(format!(
            "{}.{extra} is produced but not in the catalog",
            table.name
        )));
    }
    RecordBatch::try_new(Arc::clone(&schema), ordered).map_err(|e| {
        IngestError::Catalog(format!(
            "table {} does not match its catalog schema: {e}",
            table.name
        ))
    })
}
