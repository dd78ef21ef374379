//! NDB tables: `ndb.receipts`, `ndb.diagnoses`, `ndb.procedures`, `ndb.drugs`.

use arrow::array::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
};
use enclave_core::card::InsurerKind;
use enclave_core::masters::Masters;

use super::columns::{CommonColumns, RowContext, assemble, finish};
use super::{FacilityKind, PublishContext, SourceRecords, facility_key};
use crate::error::IngestError;
use crate::extract::{DiagnosisOutcome, Receipt, ServiceLine, UkeFile, UkeKind};

/// The four NDB tables, in catalog order.
pub(crate) fn build(
    files: &[UkeFile],
    records: SourceRecords<'_>,
    context: &PublishContext<'_>,
) -> Result<Vec<(String, RecordBatch)>, IngestError> {
    // One facility per file: pseudonymize it once, not per receipt.
    let receipts: Vec<(&UkeFile, i64, &Receipt)> = files
        .iter()
        .flat_map(|file| {
            let facility =
                context.facility_id(&facility_key(FacilityKind::Medical, &file.facility_code));
            file.receipts
                .iter()
                .map(move |receipt| (file, facility, receipt))
        })
        .collect();
    let (person_ids, receipt_ids) = (records.person_ids, records.record_ids);
    let mut tables = NdbBuilders::new(context)?;
    for (index, (file, facility_id, receipt)) in receipts.iter().enumerate() {
        let row = RowContext {
            person_id: person_ids[index],
            sex: receipt.sex,
            age: receipt.birth.age_on(receipt.service_month.first_day()),
            prefecture_code: file.prefecture_code,
            service_month: receipt.service_month,
            facility_id: Some(*facility_id),
        };
        tables.push(receipt_ids[index], &row, file.kind, receipt);
    }
    tables.finish(context)
}

/// The `setting` of a receipt: pharmacy, DPC, or inpatient/outpatient by
/// the last digit of its レセプト種別 (odd = inpatient).
fn setting(kind: UkeKind, receipt_type: &str) -> &'static str {
    match kind {
        UkeKind::Pharmacy => "pharmacy",
        UkeKind::Dpc => "dpc",
        UkeKind::Medical
            if receipt_type
                .bytes()
                .last()
                .is_some_and(|d| (d - b'0') % 2 == 1) =>
        {
            "inpatient"
        }
        UkeKind::Medical => "outpatient",
    }
}

fn outcome_code(outcome: Option<DiagnosisOutcome>) -> Option<&'static str> {
    outcome.map(|o| match o {
        DiagnosisOutcome::Cured => "cured",
        DiagnosisOutcome::Died => "died",
        DiagnosisOutcome::Stopped => "stopped",
    })
}

#[derive(Debug)]
struct NdbBuilders {
    receipts: ReceiptColumns,
    diagnoses: DiagnosisColumns,
    procedures: ServiceColumns,
    drugs: ServiceColumns,
}

impl NdbBuilders {
    fn new(context: &PublishContext<'_>) -> Result<NdbBuilders, IngestError> {
        Ok(NdbBuilders {
            receipts: ReceiptColumns::new(context.table("ndb.receipts")?)?,
            diagnoses: DiagnosisColumns::new(context.table("ndb.diagnoses")?)?,
            procedures: ServiceColumns::new(
                context.table("ndb.procedures")?,
                ServiceTable::Procedures,
            )?,
            drugs: ServiceColumns::new(context.table("ndb.drugs")?, ServiceTable::Drugs)?,
        })
    }

    fn push(&mut self, receipt_id: i64, row: &RowContext, kind: UkeKind, receipt: &Receipt) {
        let setting = setting(kind, &receipt.receipt_type);
        self.receipts.push(receipt_id, row, setting, receipt);
        for diagnosis in &receipt.diagnoses {
            self.diagnoses.push(receipt_id, row, diagnosis);
        }
        for line in &receipt.procedures {
            self.procedures.push(receipt_id, row, setting, line);
        }
        for line in &receipt.drugs {
            self.drugs.push(receipt_id, row, setting, line);
        }
    }

    fn finish(
        self,
        context: &PublishContext<'_>,
    ) -> Result<Vec<(String, RecordBatch)>, IngestError> {
        Ok(vec![
            (
                "ndb.receipts".into(),
                self.receipts.finish(context.table("ndb.receipts")?)?,
            ),
            (
                "ndb.diagnoses".into(),
                self.diagnoses.finish(context.table("ndb.diagnoses")?)?,
            ),
            (
                "ndb.procedures".into(),
                self.procedures.finish(context.table("ndb.procedures")?)?,
            ),
            (
                "ndb.drugs".into(),
                self.drugs.finish(context.table("ndb.drugs")?)?,
            ),
        ])
    }
}

#[derive(Debug)]
struct ReceiptColumns {
    common: CommonColumns,
    receipt_id: Int64Builder,
    setting: StringBuilder,
    receipt_type: StringBuilder,
    insurer_type: StringBuilder,
    admission_month: StringBuilder,
    days: Int32Builder,
    total_points: Int64Builder,
    public_expense: BooleanBuilder,
}

impl ReceiptColumns {
    fn new(table: &enclave_catalog::TableDef) -> Result<ReceiptColumns, IngestError> {
        Ok(ReceiptColumns {
            common: CommonColumns::new(table)?,
            receipt_id: Int64Builder::new(),
            setting: StringBuilder::new(),
            receipt_type: StringBuilder::new(),
            insurer_type: StringBuilder::new(),
            admission_month: StringBuilder::new(),
            days: Int32Builder::new(),
            total_points: Int64Builder::new(),
            public_expense: BooleanBuilder::new(),
        })
    }

    fn push(&mut self, receipt_id: i64, row: &RowContext, setting: &str, receipt: &Receipt) {
        self.common.push(row);
        self.receipt_id.append_value(receipt_id);
        self.setting.append_value(setting);
        self.receipt_type.append_value(receipt.receipt_type);
        self.insurer_type
            .append_value(InsurerKind::of(&receipt.insurance.insurer).code());
        let admission = receipt.admission_date.map(|date| date.year_month());
        self.admission_month
            .append_option(admission.map(|month| self.common.month_label(month).to_owned()));
        self.days.append_value(receipt.insurance.days as i32);
        self.total_points
            .append_value(receipt.insurance.total_points);
        self.public_expense
            .append_value(receipt.public_expense.is_some());
    }

    fn finish(mut self, table: &enclave_catalog::TableDef) -> Result<RecordBatch, IngestError> {
        let mut columns = self.common.finish();
        columns.extend([
            ("receipt_id", finish(&mut self.receipt_id)),
            ("setting", finish(&mut self.setting)),
            ("receipt_type", finish(&mut self.receipt_type)),
            ("insurer_type", finish(&mut self.insurer_type)),
            ("admission_month", finish(&mut self.admission_month)),
            ("days", finish(&mut self.days)),
            ("total_points", finish(&mut self.total_points)),
            ("public_expense", finish(&mut self.public_expense)),
        ]);
        assemble(table, columns)
    }
}

#[derive(Debug)]
struct DiagnosisColumns {
    common: CommonColumns,
    receipt_id: Int64Builder,
    disease_code: StringBuilder,
    icd10: StringBuilder,
    is_primary: BooleanBuilder,
    start_month: StringBuilder,
    outcome: StringBuilder,
}

impl DiagnosisColumns {
    fn new(table: &enclave_catalog::TableDef) -> Result<DiagnosisColumns, IngestError> {
        Ok(DiagnosisColumns {
            common: CommonColumns::new(table)?,
            receipt_id: Int64Builder::new(),
            disease_code: StringBuilder::new(),
            icd10: StringBuilder::new(),
            is_primary: BooleanBuilder::new(),
            start_month: StringBuilder::new(),
            outcome: StringBuilder::new(),
        })
    }

    fn push(
        &mut self,
        receipt_id: i64,
        row: &RowContext,
        diagnosis: &crate::extract::DiagnosisLine,
    ) {
        self.common.push(row);
        self.receipt_id.append_value(receipt_id);
        self.disease_code.append_value(diagnosis.disease_code);
        self.icd10.append_option(
            Masters::get()
                .disease(&diagnosis.disease_code)
                .map(|d| d.icd10.as_str()),
        );
        self.is_primary.append_value(diagnosis.primary);
        let start = self
            .common
            .month_label(diagnosis.start.year_month())
            .to_owned();
        self.start_month.append_value(start);
        self.outcome.append_option(outcome_code(diagnosis.outcome));
    }

    fn finish(mut self, table: &enclave_catalog::TableDef) -> Result<RecordBatch, IngestError> {
        let mut columns = self.common.finish();
        columns.extend([
            ("receipt_id", finish(&mut self.receipt_id)),
            ("disease_code", finish(&mut self.disease_code)),
            ("icd10", finish(&mut self.icd10)),
            ("is_primary", finish(&mut self.is_primary)),
            ("start_month", finish(&mut self.start_month)),
            ("outcome", finish(&mut self.outcome)),
        ]);
        assemble(table, columns)
    }
}

/// `ndb.procedures` (SI lines) and `ndb.drugs` (IY lines) share their shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServiceTable {
    Procedures,
    Drugs,
}

#[derive(Debug)]
struct ServiceColumns {
    table: ServiceTable,
    common: CommonColumns,
    receipt_id: Int64Builder,
    setting: StringBuilder,
    category: StringBuilder,
    code: StringBuilder,
    quantity: Float64Builder,
    points: Int64Builder,
    times: Int32Builder,
}

impl ServiceColumns {
    fn new(
        definition: &enclave_catalog::TableDef,
        table: ServiceTable,
    ) -> Result<ServiceColumns, IngestError> {
        Ok(ServiceColumns {
            table,
            common: CommonColumns::new(definition)?,
            receipt_id: Int64Builder::new(),
            setting: StringBuilder::new(),
            category: StringBuilder::new(),
            code: StringBuilder::new(),
            quantity: Float64Builder::new(),
            points: Int64Builder::new(),
            times: Int32Builder::new(),
        })
    }

    fn push(&mut self, receipt_id: i64, row: &RowContext, setting: &str, line: &ServiceLine) {
        self.common.push(row);
        self.receipt_id.append_value(receipt_id);
        self.setting.append_value(setting);
        self.category.append_value(line.category);
        self.code.append_value(line.code);
        self.quantity.append_option(line.quantity);
        self.points.append_value(line.points);
        self.times.append_value(line.times as i32);
    }

    fn finish(
        mut self,
        definition: &enclave_catalog::TableDef,
    ) -> Result<RecordBatch, IngestError> {
        let mut columns = self.common.finish();
        columns.extend([
            ("receipt_id", finish(&mut self.receipt_id)),
            ("category", finish(&mut self.category)),
            ("quantity", finish(&mut self.quantity)),
            ("points", finish(&mut self.points)),
            ("times", finish(&mut self.times)),
        ]);
        match self.table {
            ServiceTable::Procedures => columns.push(("procedure_code", finish(&mut self.code))),
            ServiceTable::Drugs => {
                columns.push(("drug_code", finish(&mut self.code)));
                columns.push(("setting", finish(&mut self.setting)));
            }
        }
        assemble(definition, columns)
    }
}
