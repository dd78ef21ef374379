//! Care tables: `care.claims` and `care.services` (介護給付費明細書) and
//! `care.certifications` (要介護認定).

use arrow::array::{Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder};
use enclave_catalog::{TableDef, postcode_prefix};

use super::columns::{CommonColumns, RowContext, assemble, finish};
use super::{FacilityKind, PersonsBySource, PublishContext, SourceRecords, facility_key};
use crate::error::IngestError;
use crate::extract::{CareClaim, CareServiceLine, Certification, Extracts};

/// Digits of the postcode that are published (`postcode3`).
const POSTCODE_DIGITS: u32 = 3;

/// The three care tables, in catalog order.
pub(crate) fn build(
    extracts: &Extracts,
    persons: &PersonsBySource<'_>,
    context: &PublishContext<'_>,
) -> Result<Vec<(String, RecordBatch)>, IngestError> {
    let claims: Vec<&CareClaim> = extracts
        .care_claims
        .iter()
        .flat_map(|file| file.claims.iter())
        .collect();
    let certifications: Vec<&Certification> = extracts
        .care_certifications
        .iter()
        .flat_map(|file| file.rows.iter())
        .collect();
    let (claims, services) = build_claims(&claims, persons.care_claims, context)?;
    let certifications =
        build_certifications(&certifications, persons.care_certifications, context)?;
    Ok(vec![
        ("care.claims".into(), claims),
        ("care.services".into(), services),
        ("care.certifications".into(), certifications),
    ])
}

fn build_claims(
    claims: &[&CareClaim],
    records: SourceRecords<'_>,
    context: &PublishContext<'_>,
) -> Result<(RecordBatch, RecordBatch), IngestError> {
    let (person_ids, claim_ids) = (records.person_ids, records.record_ids);
    let (claims_table, services_table) = (
        context.table("care.claims")?,
        context.table("care.services")?,
    );
    let mut claim_columns = ClaimColumns::new(claims_table)?;
    let mut service_columns = ServiceColumns::new(services_table)?;
    for (index, claim) in claims.iter().enumerate() {
        let row = RowContext {
            person_id: person_ids[index],
            sex: claim.identity.sex,
            age: claim.identity.birth.age_on(claim.service_month.first_day()),
            prefecture_code: claim.identity.insurer.prefecture_code(),
            service_month: claim.service_month,
            facility_id: Some(
                context.facility_id(&facility_key(FacilityKind::Care, &claim.provider)),
            ),
        };
        claim_columns.push(claim_ids[index], &row, claim);
        for line in &claim.services {
            service_columns.push(claim_ids[index], &row, &claim.care_level, line);
        }
    }
    Ok((
        claim_columns.finish(claims_table)?,
        service_columns.finish(services_table)?,
    ))
}

#[derive(Debug)]
struct ClaimColumns {
    common: CommonColumns,
    claim_id: Int64Builder,
    municipality_code: StringBuilder,
    care_level: StringBuilder,
    total_units: Int64Builder,
    unit_price: Float64Builder,
    insurance_yen: Int64Builder,
    copay_yen: Int64Builder,
}

impl ClaimColumns {
    fn new(table: &TableDef) -> Result<ClaimColumns, IngestError> {
        Ok(ClaimColumns {
            common: CommonColumns::new(table)?,
            claim_id: Int64Builder::new(),
            municipality_code: StringBuilder::new(),
            care_level: StringBuilder::new(),
            total_units: Int64Builder::new(),
            unit_price: Float64Builder::new(),
            insurance_yen: Int64Builder::new(),
            copay_yen: Int64Builder::new(),
        })
    }

    fn push(&mut self, claim_id: i64, row: &RowContext, claim: &CareClaim) {
        self.common.push(row);
        self.claim_id.append_value(claim_id);
        // Care insurers are municipalities (checked when the extract is read).
        self.municipality_code
            .append_value(claim.identity.insurer.as_str());
        self.care_level.append_value(&claim.care_level);
        self.total_units.append_value(claim.total_units);
        self.unit_price.append_value(claim.unit_price);
        self.insurance_yen.append_value(claim.insurance_yen);
        self.copay_yen.append_value(claim.copay_yen);
    }

    fn finish(mut self, table: &TableDef) -> Result<RecordBatch, IngestError> {
        let mut columns = self.common.finish();
        columns.extend([
            ("claim_id", finish(&mut self.claim_id)),
            ("municipality_code", finish(&mut self.municipality_code)),
            ("care_level", finish(&mut self.care_level)),
            ("total_units", finish(&mut self.total_units)),
            ("unit_price", finish(&mut self.unit_price)),
            ("insurance_yen", finish(&mut self.insurance_yen)),
            ("copay_yen", finish(&mut self.copay_yen)),
        ]);
        assemble(table, columns)
    }
}

#[derive(Debug)]
struct ServiceColumns {
    common: CommonColumns,
    claim_id: Int64Builder,
    care_level: StringBuilder,
    service_type: StringBuilder,
    service_code: StringBuilder,
    units: Int32Builder,
    count: Int32Builder,
    service_units: Int64Builder,
}

impl ServiceColumns {
    fn new(table: &TableDef) -> Result<ServiceColumns, IngestError> {
        Ok(ServiceColumns {
            common: CommonColumns::new(table)?,
            claim_id: Int64Builder::new(),
            care_level: StringBuilder::new(),
            service_type: StringBuilder::new(),
            service_code: StringBuilder::new(),
            units: Int32Builder::new(),
            count: Int32Builder::new(),
            service_units: Int64Builder::new(),
        })
    }

    fn push(&mut self, claim_id: i64, row: &RowContext, care_level: &str, line: &CareServiceLine) {
        self.common.push(row);
        self.claim_id.append_value(claim_id);
        self.care_level.append_value(care_level);
        self.service_type.append_value(&line.code[..2]);
        self.service_code.append_value(&line.code);
        self.units.append_value(line.units as i32);
        self.count.append_value(line.count as i32);
        self.service_units.append_value(line.service_units);
    }

    fn finish(mut self, table: &TableDef) -> Result<RecordBatch, IngestError> {
        let mut columns = self.common.finish();
        columns.extend([
            ("claim_id", finish(&mut self.claim_id)),
            ("care_level", finish(&mut self.care_level)),
            ("service_type", finish(&mut self.service_type)),
            ("service_code", finish(&mut self.service_code)),
            ("units", finish(&mut self.units)),
            ("count", finish(&mut self.count)),
            ("service_units", finish(&mut self.service_units)),
        ]);
        assemble(table, columns)
    }
}

fn build_certifications(
    rows: &[&Certification],
    records: SourceRecords<'_>,
    context: &PublishContext<'_>,
) -> Result<RecordBatch, IngestError> {
    let table = context.table("care.certifications")?;
    let (person_ids, certification_ids) = (records.person_ids, records.record_ids);
    let mut common = CommonColumns::new(table)?;
    let mut certification_id = Int64Builder::new();
    let mut postcode3 = StringBuilder::new();
    let mut application_month = StringBuilder::new();
    let mut care_level = StringBuilder::new();
    let mut valid_from_month = StringBuilder::new();
    let mut valid_to_month = StringBuilder::new();
    let mut application_type = StringBuilder::new();
    for (index, certification) in rows.iter().enumerate() {
        common.push(&RowContext {
            person_id: person_ids[index],
            sex: certification.identity.sex,
            age: certification.identity.birth.age_on(certification.certified),
            prefecture_code: certification.identity.insurer.prefecture_code(),
            service_month: certification.certified.year_month(),
            facility_id: None,
        });
        certification_id.append_value(certification_ids[index]);
        postcode3.append_option(postcode_prefix(POSTCODE_DIGITS, &certification.postcode));
        application_month.append_value(common.month_label(certification.applied.year_month()));
        care_level.append_value(&certification.care_level);
        valid_from_month.append_value(common.month_label(certification.valid_from.year_month()));
        let valid_to = certification
            .valid_to
            .map(|date| common.month_label(date.year_month()).to_owned());
        valid_to_month.append_option(valid_to);
        application_type.append_value(&certification.application_type);
    }
    let mut columns = common.finish();
    columns.extend([
        ("certification_id", finish(&mut certification_id)),
        ("postcode3", finish(&mut postcode3)),
        ("application_month", finish(&mut application_month)),
        ("care_level", finish(&mut care_level)),
        ("valid_from_month", finish(&mut valid_from_month)),
        ("valid_to_month", finish(&mut valid_to_month)),
        ("application_type", finish(&mut application_type)),
    ]);
    assemble(table, columns)
}
