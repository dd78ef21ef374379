//! The published tables: parsed extracts plus person ids in, Arrow batches
//! shaped exactly as `catalog/*.toml` defines them out.
//!
//! Direct identifiers never reach these builders' outputs: names, insurer
//! numbers, card symbols and numbers, dates of birth and full postcodes are
//! read only to compute linkage keys (see `identity`) and to derive the
//! generalized columns (age band at the service month, postcode prefix).

mod care;
mod columns;
mod dpc;
mod ndb;
pub(crate) mod parquet;

use std::collections::HashMap;

use arrow::array::RecordBatch;
use enclave_catalog::{Catalog, TableDef};

use crate::error::IngestError;
use crate::extract::Extracts;

/// What every table builder needs besides the records.
#[derive(Debug)]
pub(crate) struct PublishContext<'a> {
    pub(crate) catalog: &'a Catalog,
    /// Pseudonymous `facility_id` by facility key (see [`facility_key`]).
    pub(crate) facility_ids: HashMap<String, i64>,
}

impl PublishContext<'_> {
    pub(crate) fn table(&self, qualified: &str) -> Result<&TableDef, IngestError> {
        self.catalog
            .table(qualified)
            .map(|(_, table)| table)
            .ok_or_else(|| IngestError::Catalog(format!("the catalog has no table {qualified}")))
    }

    fn facility_id(&self, key: &str) -> i64 {
        self.facility_ids.get(key).copied().unwrap_or_default()
    }
}

/// Where a facility's records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FacilityKind {
    /// A hospital, clinic or pharmacy: 都道府県(2) + 医療機関コード(7), shared by
    /// UKE (which adds the 点数表 digit) and DPC files (施設コード).
    Medical,
    /// A care provider: 事業所番号 (10).
    Care,
}

/// The key a facility is pseudonymized under, the same for one hospital in
/// NDB receipts and DPC files.
pub(crate) fn facility_key(kind: FacilityKind, code: &str) -> String {
    match kind {
        FacilityKind::Medical if code.len() == 10 => format!("m{}{}", &code[..2], &code[3..]),
        FacilityKind::Medical => format!("m{code}"),
        FacilityKind::Care => format!("c{code}"),
    }
}

/// Every facility key of the extracts, for pseudonymizing once.
pub(crate) fn facility_keys(extracts: &Extracts) -> Vec<String> {
    let medical = extracts
        .ndb
        .iter()
        .map(|file| facility_key(FacilityKind::Medical, &file.facility_code));
    let dpc = extracts
        .dpc
        .iter()
        .map(|month| facility_key(FacilityKind::Medical, &month.facility_code));
    let care = extracts.care_claims.iter().flat_map(|file| {
        file.claims
            .iter()
            .map(|claim| facility_key(FacilityKind::Care, &claim.provider))
    });
    let mut keys: Vec<String> = medical.chain(dpc).chain(care).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The records of one source in a chunk, in canonical order: their
/// `person_id`s and record ids (`receipt_id`, …; see `record_ids`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceRecords<'a> {
    pub(crate) person_ids: &'a [i64],
    pub(crate) record_ids: &'a [i64],
}

/// A chunk's records by source.
#[derive(Debug)]
pub(crate) struct PersonsBySource<'a> {
    pub(crate) ndb: SourceRecords<'a>,
    pub(crate) dpc: SourceRecords<'a>,
    pub(crate) care_claims: SourceRecords<'a>,
    pub(crate) care_certifications: SourceRecords<'a>,
}

impl<'a> PersonsBySource<'a> {
    /// Splits a chunk's person and record ids (canonical order) by its
    /// `counts` of records per source.
    pub(crate) fn split(
        person_ids: &'a [i64],
        record_ids: &'a [i64],
        counts: [usize; 4],
    ) -> PersonsBySource<'a> {
        let (mut persons, mut records) = (person_ids, record_ids);
        let [ndb, dpc, care_claims, care_certifications] = std::array::from_fn(|source| {
            let (these_persons, rest_persons) = persons.split_at(counts[source]);
            let (these_records, rest_records) = records.split_at(counts[source]);
            (persons, records) = (rest_persons, rest_records);
            SourceRecords {
                person_ids: these_persons,
                record_ids: these_records,
            }
        });
        PersonsBySource {
            ndb,
            dpc,
            care_claims,
            care_certifications,
        }
    }
}

/// Every published table, by qualified name.
pub(crate) fn build_all(
    extracts: &Extracts,
    persons: &PersonsBySource<'_>,
    context: &PublishContext<'_>,
) -> Result<Vec<(String, RecordBatch)>, IngestError> {
    let (ndb, (dpc, care)) = rayon::join(
        || ndb::build(&extracts.ndb, persons.ndb, context),
        || {
            rayon::join(
                || dpc::build(&extracts.dpc, persons.dpc, context),
                || care::build(extracts, persons, context),
            )
        },
    );
    let mut tables = ndb?;
    tables.extend(dpc?);
    tables.extend(care?);
    Ok(tables)
}
