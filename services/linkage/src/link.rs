//! Linking records into persons: a union of keys, guarded against keys that
//! two people share.
//!
//! NDB practice links claims by ID1 (card) or ID2 (name). Each breaks on
//! predictable life events: a new card on a job change, retirement or the
//! 75th birthday; a new name on marriage. Joining every key that occurs on
//! one record (a union-find closure, as vPID does) survives one change at a
//! time. The danger of a closure is a key that two people share, which then
//! merges them: twins who are dependents on one card share its ID1; two
//! strangers may share name and birthday. The guard here finds such keys
//! from the data itself and leaves them out of the closure:
//!
//! - a card (or facility patient number) is *ambiguous* when two different
//!   names are each seen on it at least [`MIN_SUPPORT`] times over periods
//!   that overlap by at least [`MIN_OVERLAP_MONTHS`]: one person has one name
//!   at a time, while a marriage changes it once (old and new overlap at most
//!   for a short lag at some providers);
//! - a name is *ambiguous* when two different cards of the same kind (health
//!   cards with health cards, care cards with care cards: everyone over 65
//!   holds one of each) are each seen under it the same way.
//!
//! Records still link through their other keys, so twins stay apart (their
//! names differ) and name-sharing strangers stay apart (their cards differ).

use std::collections::BTreeMap;

use hashbrown::HashMap;
use serde::Serialize;

use crate::keys::KeyHash;

/// A pair of keys must be seen together on at least this many records to
/// count as evidence of a person: one record (a typo, a stray receipt) is not.
pub const MIN_SUPPORT: u32 = 2;

/// Two identities on one key must overlap by at least this many months to
/// count as two people. Shorter overlaps are a provider's lag in updating a
/// name or card after a change, not a second person.
pub const MIN_OVERLAP_MONTHS: i32 = 3;

/// The kinds of linkage key a record may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    HealthCard,
    CareCard,
    Name,
    FacilityPatient,
}

impl KeyKind {
    const ALL: [KeyKind; 4] = [
        KeyKind::HealthCard,
        KeyKind::CareCard,
        KeyKind::Name,
        KeyKind::FacilityPatient,
    ];

    fn label(self) -> &'static str {
        match self {
            KeyKind::HealthCard => "health_card",
            KeyKind::CareCard => "care_card",
            KeyKind::Name => "name",
            KeyKind::FacilityPatient => "facility_patient",
        }
    }
}

/// The keys of one identity-bearing record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkRecord {
    /// Service month as `YearMonth::index`.
    pub month: i32,
    pub card_health: Option<KeyHash>,
    pub card_care: Option<KeyHash>,
    pub name: Option<KeyHash>,
    pub facility_patient: Option<KeyHash>,
}

impl LinkRecord {
    pub fn new(month: i32) -> LinkRecord {
        LinkRecord {
            month,
            card_health: None,
            card_care: None,
            name: None,
            facility_patient: None,
        }
    }

    fn key(&self, kind: KeyKind) -> Option<KeyHash> {
        match kind {
            KeyKind::HealthCard => self.card_health,
            KeyKind::CareCard => self.card_care,
            KeyKind::Name => self.name,
            KeyKind::FacilityPatient => self.facility_patient,
        }
    }

    /// The record's keys with their kinds.
    pub fn keys(&self) -> impl Iterator<Item = (KeyKind, KeyHash)> + '_ {
        KeyKind::ALL
            .into_iter()
            .filter_map(|kind| self.key(kind).map(|hash| (kind, hash)))
    }
}

/// Which keys a linkage may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Every key, guarded: the release's `person_id`.
    Union,
    /// Card keys only, unguarded: the ID1-only baseline.
    CardOnly,
    /// Name keys only, unguarded: the ID2-only baseline.
    NameOnly,
}

impl Strategy {
    fn uses(self, kind: KeyKind) -> bool {
        match self {
            Strategy::Union => true,
            Strategy::CardOnly => matches!(kind, KeyKind::HealthCard | KeyKind::CareCard),
            Strategy::NameOnly => kind == KeyKind::Name,
        }
    }
}

/// What a linkage did, for the manifest and the ingest summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinkageReport {
    pub records: u64,
    pub clusters: u64,
    pub keys_by_kind: BTreeMap<String, u64>,
    pub ambiguous_keys_by_kind: BTreeMap<String, u64>,
    /// Unions that joined two different clusters, by the key that joined them.
    pub unions_by_kind: BTreeMap<String, u64>,
    pub records_without_usable_key: u64,
    /// Clusters by number of records (`1`, `2-5`, `6-20`, `21-100`, `>100`).
    pub cluster_sizes: BTreeMap<String, u64>,
}

/// The result of linking.
#[derive(Debug, Clone)]
pub struct Linkage {
    /// Dense cluster number (0..clusters) of each record.
    pub cluster_of_record: Vec<u32>,
    pub report: LinkageReport,
    /// Keys left out of the closure.
    ambiguous: hashbrown::HashSet<TypedKey>,
}

impl Linkage {
    /// Whether a key was left out because two people share it.
    pub fn is_ambiguous(&self, kind: KeyKind, hash: KeyHash) -> bool {
        self.ambiguous.contains(&(kind, hash))
    }
}

/// Links `records` into clusters (persons) with `strategy`.
pub fn link(records: &[LinkRecord], strategy: Strategy) -> Linkage {
    let ambiguous = if strategy == Strategy::Union {
        ambiguous_keys(records)
    } else {
        Default::default()
    };
    let mut report = LinkageReport {
        records: records.len() as u64,
        ..LinkageReport::default()
    };
    let mut sets = DisjointSets::new(records.len());
    let mut first_record: HashMap<TypedKey, u32> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        let mut usable = false;
        for (kind, hash) in record.keys().filter(|(kind, _)| strategy.uses(*kind)) {
            if ambiguous.contains(&(kind, hash)) {
                continue;
            }
            usable = true;
            let first = *first_record.entry((kind, hash)).or_insert(index as u32);
            if sets.union(first as usize, index) {
                *report
                    .unions_by_kind
                    .entry(kind.label().to_owned())
                    .or_default() += 1;
            }
        }
        report.records_without_usable_key += u64::from(!usable);
    }
    for (kind, _) in first_record.keys() {
        *report
            .keys_by_kind
            .entry(kind.label().to_owned())
            .or_default() += 1;
    }
    for (kind, _) in &ambiguous {
        *report
            .ambiguous_keys_by_kind
            .entry(kind.label().to_owned())
            .or_default() += 1;
    }
    let cluster_of_record = sets.dense_labels();
    report.clusters = cluster_of_record
        .iter()
        .map(|&c| u64::from(c) + 1)
        .max()
        .unwrap_or(0);
    report.cluster_sizes = size_histogram(&cluster_of_record, report.clusters as usize);
    Linkage {
        cluster_of_record,
        report,
        ambiguous,
    }
}

/// A key with its kind.
type TypedKey = (KeyKind, KeyHash);

/// How a key and a partner key co-occur: records and month range.
#[derive(Debug, Clone, Copy)]
struct CoOccurrence {
    records: u32,
    first: i32,
    last: i32,
}

/// Keys on which two identities are seen over overlapping periods.
fn ambiguous_keys(records: &[LinkRecord]) -> hashbrown::HashSet<TypedKey> {
    // (key, partner) → co-occurrence; a key is checked against the partner
    // kinds that identify one person at a time.
    let mut pairs: HashMap<(TypedKey, TypedKey), CoOccurrence> = HashMap::new();
    for record in records {
        for (kind, hash) in record.keys() {
            for partner_kind in partner_kinds(kind) {
                if let Some(partner) = record.key(*partner_kind) {
                    let entry = pairs
                        .entry(((kind, hash), (*partner_kind, partner)))
                        .or_insert(CoOccurrence {
                            records: 0,
                            first: record.month,
                            last: record.month,
                        });
                    entry.records += 1;
                    entry.first = entry.first.min(record.month);
                    entry.last = entry.last.max(record.month);
                }
            }
        }
    }
    let mut partners_of: HashMap<TypedKey, Vec<(KeyKind, CoOccurrence)>> = HashMap::new();
    for ((key, (partner_kind, _)), seen) in pairs {
        if seen.records >= MIN_SUPPORT {
            partners_of
                .entry(key)
                .or_default()
                .push((partner_kind, seen));
        }
    }
    partners_of
        .into_iter()
        .filter(|(_, partners)| two_overlap(partners))
        .map(|(key, _)| key)
        .collect()
}

/// The kinds whose values identify one person at a time under a key of `kind`.
fn partner_kinds(kind: KeyKind) -> &'static [KeyKind] {
    match kind {
        KeyKind::HealthCard | KeyKind::CareCard | KeyKind::FacilityPatient => &[KeyKind::Name],
        KeyKind::Name => &[KeyKind::HealthCard, KeyKind::CareCard],
    }
}

/// Whether two partners of the same kind overlap by `MIN_OVERLAP_MONTHS`.
fn two_overlap(partners: &[(KeyKind, CoOccurrence)]) -> bool {
    partners.iter().enumerate().any(|(i, (kind_a, a))| {
        partners[i + 1..].iter().any(|(kind_b, b)| {
            kind_a == kind_b && a.last.min(b.last) - a.first.max(b.first) + 1 >= MIN_OVERLAP_MONTHS
        })
    })
}

fn size_histogram(cluster_of_record: &[u32], clusters: usize) -> BTreeMap<String, u64> {
    let mut sizes = vec![0u64; clusters];
    for &cluster in cluster_of_record {
        sizes[cluster as usize] += 1;
    }
    let mut histogram = BTreeMap::new();
    for size in sizes {
        let bucket = match size {
            1 => "1",
            2..=5 => "2-5",
            6..=20 => "6-20",
            21..=100 => "21-100",
            _ => ">100",
        };
        *histogram.entry(bucket.to_owned()).or_default() += 1;
    }
    histogram
}

/// Union-find with path halving and union by size.
#[derive(Debug)]
struct DisjointSets {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl DisjointSets {
    fn new(n: usize) -> DisjointSets {
        DisjointSets {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] as usize != x {
            let grandparent = self.parent[self.parent[x] as usize];
            self.parent[x] = grandparent;
            x = grandparent as usize;
        }
        x
    }

    /// Joins the sets of `a` and `b`; false when they were one already.
    fn union(&mut self, a: usize, b: usize) -> bool {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return false;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a as u32;
        self.size[a] += self.size[b];
        true
    }

    /// Dense labels 0.. in order of each set's first element.
    fn dense_labels(&mut self) -> Vec<u32> {
        let mut label_of_root: HashMap<usize, u32> = HashMap::new();
        (0..self.parent.len())
            .map(|x| {
                let root = self.find(x);
                let next = label_of_root.len() as u32;
                *label_of_root.entry(root).or_insert(next)
            })
            .collect()
    }
}
