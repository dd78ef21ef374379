//! DPC tables: `dpc.admissions` (様式1 + K) and `dpc.details` (EF).

use arrow::array::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
};
use enclave_catalog::{TableDef, postcode_prefix};

use super::columns::{CommonColumns, RowContext, assemble, finish};
use super::{FacilityKind, PublishContext, SourceRecords, facility_key};
use crate::error::IngestError;
use crate::extract::{DpcAdmission, DpcFacilityMonth, EfLine};

/// Digits of the patient postcode that are published (`postcode3`).
const POSTCODE_DIGITS: u32 = 3;

/// The two DPC tables, in catalog order.
pub(crate) fn build(
    months: &[DpcFacilityMonth],
    records: SourceRecords<'_>,
    context: &PublishContext<'_>,
) -> Result<Vec<(String, RecordBatch)>, IngestError> {
    let admissions: Vec<&DpcAdmission> = months
        .iter()
        .flat_map(|month| month.admissions.iter())
        .collect();
    let (person_ids, admission_ids) = (records.person_ids, records.record_ids);
    let admissions_table = context.table("dpc.admissions")?;
    let details_table = context.table("dpc.details")?;
    let mut admission_columns = AdmissionColumns::new(admissions_table)?;
    let mut detail_columns = DetailColumns::new(details_table)?;
    for (index, admission) in admissions.iter().enumerate() {
        let row = RowContext {
            person_id: person_ids[index],
            sex: admission.identity.sex,
            age: admission.identity.birth.age_on(admission.admitted),
            prefecture_code: admission.facility_code[..2].parse().unwrap_or_default(),
            service_month: admission.discharged.year_month(),
            facility_id: Some(context.facility_id(&facility_key(
                FacilityKind::Medical,
                &admission.facility_code,
            ))),
        };
        admission_columns.push(admission_ids[index], &row, admission);
        for line in &admission.details {
            let detail_row = RowContext {
                service_month: line.performed.year_month(),
                ..row
            };
            detail_columns.push(admission_ids[index], &detail_row, line);
        }
    }
    Ok(vec![
        (
            "dpc.admissions".into(),
            admission_columns.finish(admissions_table)?,
        ),
        ("dpc.details".into(), detail_columns.finish(details_table)?),
    ])
}

#[derive(Debug)]
struct AdmissionColumns {
    common: CommonColumns,
    admission_id: Int64Builder,
    postcode3: StringBuilder,
    admission_month: StringBuilder,
    length_of_stay: Int32Builder,
    admission_route: StringBuilder,
    emergency: BooleanBuilder,
    ambulance: BooleanBuilder,
    discharge_destination: StringBuilder,
    outcome: StringBuilder,
    death_within_24h: BooleanBuilder,
    icd10: StringBuilder,
    icd10_trigger: StringBuilder,
    icd10_resource: StringBuilder,
    comorbidity_count: Int32Builder,
    total_points: Float64Builder,
}

impl AdmissionColumns {
    fn new(table: &TableDef) -> Result<AdmissionColumns, IngestError> {
        Ok(AdmissionColumns {
            common: CommonColumns::new(table)?,
            admission_id: Int64Builder::new(),
            postcode3: StringBuilder::new(),
            admission_month: StringBuilder::new(),
            length_of_stay: Int32Builder::new(),
            admission_route: StringBuilder::new(),
            emergency: BooleanBuilder::new(),
            ambulance: BooleanBuilder::new(),
            discharge_destination: StringBuilder::new(),
            outcome: StringBuilder::new(),
            death_within_24h: BooleanBuilder::new(),
            icd10: StringBuilder::new(),
            icd10_trigger: StringBuilder::new(),
            icd10_resource: StringBuilder::new(),
            comorbidity_count: Int32Builder::new(),
            total_points: Float64Builder::new(),
        })
    }

    fn push(&mut self, admission_id: i64, row: &RowContext, admission: &DpcAdmission) {
        self.common.push(row);
        self.admission_id.append_value(admission_id);
        self.postcode3
            .append_option(postcode_prefix(POSTCODE_DIGITS, &admission.postcode));
        let admitted = self
            .common
            .month_label(admission.admitted.year_month())
            .to_owned();
        self.admission_month.append_value(admitted);
        let stay =
            admission.discharged.days_since_epoch() - admission.admitted.days_since_epoch() + 1;
        self.length_of_stay.append_value(stay);
        self.admission_route.append_value(&admission.route);
        self.emergency.append_value(admission.emergency);
        self.ambulance.append_value(admission.ambulance);
        self.discharge_destination
            .append_value(&admission.destination);
        self.outcome.append_value(&admission.outcome);
        self.death_within_24h
            .append_value(admission.death_within_24h);
        self.icd10.append_option(admission.icd10_main.as_deref());
        self.icd10_trigger
            .append_option(admission.icd10_trigger.as_deref());
        self.icd10_resource
            .append_option(admission.icd10_resource.as_deref());
        self.comorbidity_count
            .append_value(admission.comorbidities.len() as i32);
        self.total_points
            .append_value(admission.details.iter().map(|line| line.points).sum());
    }

    fn finish(mut self, table: &TableDef) -> Result<RecordBatch, IngestError> {
        let mut columns = self.common.finish();
        columns.extend([
            ("admission_id", finish(&mut self.admission_id)),
            ("postcode3", finish(&mut self.postcode3)),
            ("admission_month", finish(&mut self.admission_month)),
            ("length_of_stay", finish(&mut self.length_of_stay)),
            ("admission_route", finish(&mut self.admission_route)),
            ("emergency", finish(&mut self.emergency)),
            ("ambulance", finish(&mut self.ambulance)),
            (
                "discharge_destination",
                finish(&mut self.discharge_destination),
            ),
            ("outcome", finish(&mut self.outcome)),
            ("death_within_24h", finish(&mut self.death_within_24h)),
            ("icd10", finish(&mut self.icd10)),
            ("icd10_trigger", finish(&mut self.icd10_trigger)),
            ("icd10_resource", finish(&mut self.icd10_resource)),
            ("comorbidity_count", finish(&mut self.comorbidity_count)),
            ("total_points", finish(&mut self.total_points)),
        ]);
        assemble(table, columns)
    }
}

#[derive(Debug)]
struct DetailColumns {
    common: CommonColumns,
    admission_id: Int64Builder,
    data_category: StringBuilder,
    code_kind: StringBuilder,
    procedure_code: StringBuilder,
    drug_code: StringBuilder,
    quantity: Float64Builder,
    points: Float64Builder,
    times: Int32Builder,
}

impl DetailColumns {
    fn new(table: &TableDef) -> Result<DetailColumns, IngestError> {
        Ok(DetailColumns {
            common: CommonColumns::new(table)?,
            admission_id: Int64Builder::new(),
            data_category: StringBuilder::new(),
            code_kind: StringBuilder::new(),
            procedure_code: StringBuilder::new(),
            drug_code: StringBuilder::new(),
            quantity: Float64Builder::new(),
            points: Float64Builder::new(),
            times: Int32Builder::new(),
        })
    }

    fn push(&mut self, admission_id: i64, row: &RowContext, line: &EfLine) {
        self.common.push(row);
        self.admission_id.append_value(admission_id);
        self.data_category.append_value(line.data_category);
        let is_drug = line.code.starts_with('6');
        self.code_kind
            .append_value(if is_drug { "drug" } else { "procedure" });
        self.drug_code.append_option(is_drug.then_some(&line.code));
        self.procedure_code
            .append_option((!is_drug).then_some(&line.code));
        self.quantity.append_option(line.quantity);
        self.points.append_value(line.points);
        self.times.append_value(line.times as i32);
    }

    fn finish(mut self, table: &TableDef) -> Result<RecordBatch, IngestError> {
        let mut columns = self.common.finish();
        columns.extend([
            ("admission_id", finish(&mut self.admission_id)),
            ("data_category", finish(&mut self.data_category)),
            ("code_kind", finish(&mut self.code_kind)),
            ("procedure_code", finish(&mut self.procedure_code)),
            ("drug_code", finish(&mut self.drug_code)),
            ("quantity", finish(&mut self.quantity)),
            ("points", finish(&mut self.points)),
            ("times", finish(&mut self.times)),
        ]);
        assemble(table, columns)
    }
}
