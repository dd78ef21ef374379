//! From each record's identifying fields to its linkage keys.
//!
//! This is the only place direct identifiers are used after parsing: each is
//! normalized exactly as linkage needs it (kana width and voicing marks,
//! spaces, full-width card digits, padded 国保 insurer numbers, era dates
//! already turned Gregorian by the parsers) and consumed by a keyed hash.
//! Nothing here is written anywhere.

use std::rc::Rc;

use enclave_core::card::{InsurerNumber, normalize_card_text};
use enclave_core::date::{CivilDate, YearMonth};
use enclave_core::kana::normalize_name;
use enclave_core::person::Sex;
use enclave_linkage::{LinkRecord, LinkageKeys};
use rayon::prelude::*;

use crate::extract::Extracts;
use crate::tables::{FacilityKind, facility_key};

/// The identifying fields of one record, as read.
#[derive(Debug)]
struct Identity<'a> {
    kana_name: &'a str,
    birth: CivilDate,
    sex: Sex,
    month: YearMonth,
    card: Option<Card<'a>>,
    /// A facility's own patient number (receipt カルテ番号, DPC データ識別番号).
    facility_patient: Option<(Rc<str>, &'a str)>,
}

/// An insurance card: health (保険者番号 + 記号 + 番号) or care (保険者番号 + 被保険者番号).
#[derive(Debug)]
enum Card<'a> {
    Health {
        insurer: &'a InsurerNumber,
        symbol: &'a str,
        number: &'a str,
    },
    Care {
        insurer: &'a InsurerNumber,
        number: &'a str,
    },
}

/// Linkage records of every identity-bearing source record, in canonical
/// order: NDB receipts, DPC admissions, care claims, care certifications.
#[derive(Debug, Default)]
pub(crate) struct IdentityRecords {
    pub(crate) records: Vec<LinkRecord>,
    /// Records per source.
    pub(crate) source_counts: [usize; 4],
}

impl IdentityRecords {
    fn extend(&mut self, source: usize, records: Vec<LinkRecord>) {
        self.source_counts[source] = records.len();
        self.records.extend(records);
    }
}

/// Keys every identity-bearing record, files in parallel.
pub(crate) fn identity_records(extracts: &Extracts, keys: &LinkageKeys) -> IdentityRecords {
    let mut all = IdentityRecords::default();
    all.extend(0, key_all(&extracts.ndb, keys, ndb_identities));
    all.extend(1, key_all(&extracts.dpc, keys, dpc_identities));
    all.extend(
        2,
        key_all(&extracts.care_claims, keys, care_claim_identities),
    );
    all.extend(
        3,
        key_all(
            &extracts.care_certifications,
            keys,
            certification_identities,
        ),
    );
    all
}

fn key_all<'a, F: Sync + 'a>(
    files: &'a [F],
    keys: &LinkageKeys,
    identities: impl Fn(&'a F) -> Vec<Identity<'a>> + Sync,
) -> Vec<LinkRecord> {
    files
        .par_iter()
        .map(|file| {
            identities(file)
                .iter()
                .map(|identity| link_record(keys, identity))
                .collect::<Vec<_>>()
        })
        .flatten_iter()
        .collect()
}

fn link_record(keys: &LinkageKeys, identity: &Identity<'_>) -> LinkRecord {
    let birth = identity.birth.to_yyyymmdd();
    let sex = identity.sex.code();
    let name = normalize_name(identity.kana_name);
    let mut record = LinkRecord::new(identity.month.index());
    if !name.is_empty() {
        record.name = Some(keys.name_key(&name, &birth, sex));
    }
    match &identity.card {
        Some(Card::Health {
            insurer,
            symbol,
            number,
        }) => {
            let (symbol, number) = (normalize_card_text(symbol), normalize_card_text(number));
            record.card_health =
                Some(keys.health_card_key(insurer.as_str(), &symbol, &number, &birth, sex));
        }
        Some(Card::Care { insurer, number }) => {
            let number = normalize_card_text(number);
            record.card_care = Some(keys.care_card_key(insurer.as_str(), &number, &birth, sex));
        }
        None => {}
    }
    if let Some((facility, patient)) = &identity.facility_patient {
        let patient = normalize_card_text(patient);
        if !patient.is_empty() {
            record.facility_patient =
                Some(keys.facility_patient_key(facility, &patient, &birth, sex));
        }
    }
    record
}

fn ndb_identities(file: &crate::extract::UkeFile) -> Vec<Identity<'_>> {
    let facility: Rc<str> = facility_key(FacilityKind::Medical, &file.facility_code).into();
    file.receipts
        .iter()
        .map(|receipt| Identity {
            kana_name: &receipt.kana_name,
            birth: receipt.birth,
            sex: receipt.sex,
            month: receipt.service_month,
            card: Some(Card::Health {
                insurer: &receipt.insurance.insurer,
                symbol: &receipt.insurance.symbol,
                number: &receipt.insurance.number,
            }),
            facility_patient: Some((Rc::clone(&facility), receipt.chart_number.as_str())),
        })
        .collect()
}

fn dpc_identities(month: &crate::extract::DpcFacilityMonth) -> Vec<Identity<'_>> {
    month
        .admissions
        .iter()
        .map(|admission| {
            let identity = &admission.identity;
            Identity {
                kana_name: &identity.kana_name,
                birth: identity.birth,
                sex: identity.sex,
                month: admission.admitted.year_month(),
                card: Some(Card::Health {
                    insurer: &identity.insurer,
                    symbol: &identity.symbol,
                    number: &identity.number,
                }),
                facility_patient: Some((
                    facility_key(FacilityKind::Medical, &admission.facility_code).into(),
                    admission.data_id.as_str(),
                )),
            }
        })
        .collect()
}

fn care_identity(identity: &crate::extract::CareIdentity, month: YearMonth) -> Identity<'_> {
    Identity {
        kana_name: &identity.kana_name,
        birth: identity.birth,
        sex: identity.sex,
        month,
        card: Some(Card::Care {
            insurer: &identity.insurer,
            number: &identity.care_number,
        }),
        facility_patient: None,
    }
}

fn care_claim_identities(file: &crate::extract::CareClaimFile) -> Vec<Identity<'_>> {
    file.claims
        .iter()
        .map(|claim| care_identity(&claim.identity, claim.service_month))
        .collect()
}

fn certification_identities(file: &crate::extract::CertificationFile) -> Vec<Identity<'_>> {
    file.rows
        .iter()
        .map(|row| care_identity(&row.identity, row.certified.year_month()))
        .collect()
}
