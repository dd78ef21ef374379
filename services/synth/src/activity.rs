//! What the persons of one prefecture do month by month: outpatient visits,
//! prescriptions, admissions, care services and certifications, grouped by
//! the file each lands in.

use std::collections::BTreeMap;

use enclave_core::date::{CivilDate, YearMonth};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::population::{Facilities, Person};

/// Which UKE file a receipt goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ReceiptKind {
    /// 医科 outpatient or inpatient (`MED_`).
    Medical,
    /// DPC (`DPC_`).
    Dpc,
    /// 調剤 (`PHA_`).
    Pharmacy,
}

/// One receipt to write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReceiptEvent {
    pub(crate) person: usize,
    /// Admission and discharge dates for inpatient and DPC receipts.
    pub(crate) stay: Option<(CivilDate, CivilDate)>,
    /// An outpatient receipt whose prescription went to a pharmacy.
    pub(crate) prescription: bool,
}

/// One care certification to write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CertificationEvent {
    pub(crate) person: usize,
    pub(crate) certified: CivilDate,
    /// `1` 新規, `2` 更新.
    pub(crate) application_type: &'static str,
}

/// Everything one prefecture produces, keyed by file.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// (kind, facility index, window month) → receipts.
    pub(crate) receipts: BTreeMap<(ReceiptKind, usize, i32), Vec<ReceiptEvent>>,
    /// (hospital index, discharge window month) → DPC admissions.
    pub(crate) dpc: BTreeMap<(usize, i32), Vec<ReceiptEvent>>,
    /// (care insurer, window month) → persons with a claim.
    pub(crate) care_claims: BTreeMap<(String, i32), Vec<usize>>,
    /// care insurer → certifications.
    pub(crate) certifications: BTreeMap<String, Vec<CertificationEvent>>,
}

/// Monthly chance of an outpatient receipt by age.
fn outpatient_rate(age: i32) -> f64 {
    match age {
        ..15 => 0.18,
        15..40 => 0.08,
        40..65 => 0.14,
        65..75 => 0.3,
        _ => 0.42,
    }
}

/// Monthly chance of an admission by age.
fn admission_rate(age: i32) -> f64 {
    match age {
        ..15 => 0.001,
        15..65 => 0.0015,
        65..75 => 0.004,
        _ => 0.008,
    }
}

/// Simulates `months` months from `start`.
pub(crate) fn simulate(
    rng: &mut ChaCha8Rng,
    persons: &[Person],
    facilities: &Facilities,
    start: YearMonth,
    months: i32,
) -> Activity {
    let mut activity = Activity::default();
    // The previous person's outpatient receipts, which a twin may share.
    let mut previous_visits: Vec<(ReceiptKind, usize, i32, bool)> = Vec::new();
    for (index, person) in persons.iter().enumerate() {
        let mut visits = Vec::new();
        for month in 0..months {
            let service_month = YearMonth::from_index(start.index() + month);
            let age = person.age_at(service_month);
            let shared: Vec<_> = previous_visits
                .iter()
                .filter(|v| v.2 == month)
                .copied()
                .collect();
            if person.twin_of.is_some() && !shared.is_empty() && rng.random_bool(0.8) {
                // Twins go to the doctor together most of the time.
                visits.extend(shared);
            } else if rng.random_bool(outpatient_rate(age)) {
                visits.extend(outpatient(rng, person, facilities, month));
            }
            if rng.random_bool(admission_rate(age)) {
                admission(rng, &mut activity, index, facilities, service_month, month);
            }
        }
        for &(kind, facility, month, prescription) in &visits {
            let event = ReceiptEvent {
                person: index,
                stay: None,
                prescription,
            };
            activity
                .receipts
                .entry((kind, facility, month))
                .or_default()
                .push(event);
        }
        care(rng, &mut activity, person, index, start, months);
        previous_visits = visits;
    }
    activity
}

/// One month's outpatient receipt and, usually, its pharmacy receipt.
fn outpatient(
    rng: &mut ChaCha8Rng,
    person: &Person,
    facilities: &Facilities,
    month: i32,
) -> Vec<(ReceiptKind, usize, i32, bool)> {
    let clinic = if rng.random_bool(0.8) {
        person.clinic
    } else {
        rng.random_range(0..facilities.clinics.len())
    };
    let prescription = rng.random_bool(0.6);
    let mut visits = vec![(ReceiptKind::Medical, clinic, month, prescription)];
    if prescription {
        let pharmacy = if rng.random_bool(0.85) {
            person.pharmacy
        } else {
            rng.random_range(0..facilities.pharmacies.len())
        };
        visits.push((ReceiptKind::Pharmacy, pharmacy, month, false));
    }
    visits
}

fn admission(
    rng: &mut ChaCha8Rng,
    activity: &mut Activity,
    index: usize,
    facilities: &Facilities,
    service_month: YearMonth,
    month: i32,
) {
    let hospital = rng.random_range(0..facilities.hospitals.len());
    let days = service_month.days();
    let admitted_day = rng.random_range(1..=days);
    let stay_days = rng.random_range(2..21).min(days - admitted_day + 1);
    let admitted = CivilDate::new(service_month.year, service_month.month, admitted_day)
        .unwrap_or(service_month.first_day());
    let discharged =
        CivilDate::from_days_since_epoch(admitted.days_since_epoch() + stay_days as i32 - 1);
    let event = ReceiptEvent {
        person: index,
        stay: Some((admitted, discharged)),
        prescription: false,
    };
    if facilities.hospitals[hospital].dpc {
        activity
            .receipts
            .entry((ReceiptKind::Dpc, hospital, month))
            .or_default()
            .push(event);
        activity
            .dpc
            .entry((hospital, month))
            .or_default()
            .push(event);
    } else {
        activity
            .receipts
            .entry((
                ReceiptKind::Medical,
                hospital + facilities.clinics.len(),
                month,
            ))
            .or_default()
            .push(event);
    }
}

fn care(
    rng: &mut ChaCha8Rng,
    activity: &mut Activity,
    person: &Person,
    index: usize,
    start: YearMonth,
    months: i32,
) {
    let Some(care) = &person.care else { return };
    let insurer = care.insurer.as_str().to_owned();
    for month in care.certified.max(0)..months {
        if rng.random_bool(0.9) {
            activity
                .care_claims
                .entry((insurer.clone(), month))
                .or_default()
                .push(index);
        }
    }
    let mut certified = care.certified;
    let mut application_type = "1";
    while certified < months {
        if certified >= 0 {
            let ym = YearMonth::from_index(start.index() + certified);
            let day = rng.random_range(1..=ym.days().min(28));
            let certified_date = CivilDate::new(ym.year, ym.month, day).unwrap_or(ym.first_day());
            let event = CertificationEvent {
                person: index,
                certified: certified_date,
                application_type,
            };
            activity
                .certifications
                .entry(insurer.clone())
                .or_default()
                .push(event);
        }
        certified += 12;
        application_type = "2";
    }
}
