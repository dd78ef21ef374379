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
//!
//! Linkage works on [`KeyOccurrence`]s (one key of one record, with the
//! partner keys on that record), grouped by key. Every decision about a key
//! needs only that key's occurrences, so a population larger than memory is
//! linked partition by partition: occurrences are spilled to files by
//! [`partition_of`] their hash, and each file is handed to
//! [`Linker::add_partition`] in turn. What stays in memory across partitions
//! is the union-find over records (4 bytes per record) and the keys two
//! people share.

use std::collections::BTreeMap;

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

    /// The kind of a code written as `kind as u8` ([`KeyOccurrence::encode`]).
    pub fn from_code(code: u8) -> Option<KeyKind> {
        KeyKind::ALL.get(usize::from(code)).copied()
    }

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

/// Links `records` into clusters (persons) with `strategy`, in memory.
pub fn link(records: &[LinkRecord], strategy: Strategy) -> Linkage {
    let mut linker = Linker::new(records.len(), strategy)
        .expect("an in-memory slice of records fits the record limit");
    let mut occurrences: Vec<KeyOccurrence> = records
        .iter()
        .enumerate()
        .flat_map(|(index, record)| record.occurrences(index as u32))
        .collect();
    linker.add_partition(&mut occurrences);
    linker.finish()
}

/// Most records one linkage takes: record numbers are 31-bit.
pub const MAX_RECORDS: usize = (1 << 31) - 1;

/// Too many records for one linkage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{records} identity-bearing records are more than one linkage takes ({MAX_RECORDS}); ingest the extracts in parts"
)]
pub struct TooManyRecords {
    pub records: usize,
}

/// A linkage fed one key partition at a time.
#[derive(Debug)]
pub struct Linker {
    strategy: Strategy,
    sets: DisjointSets,
    /// One bit per record: a key of the record was used.
    usable: Vec<u64>,
    report: LinkageReport,
    ambiguous: hashbrown::HashSet<TypedKey>,
    /// Scratch: the partners of the key being judged.
    partners: Vec<((KeyKind, u64), i32)>,
}

impl Linker {
    /// A linkage of `records` records, none joined yet.
    pub fn new(records: usize, strategy: Strategy) -> Result<Linker, TooManyRecords> {
        if records > MAX_RECORDS {
            return Err(TooManyRecords { records });
        }
        Ok(Linker {
            strategy,
            sets: DisjointSets::new(records),
            usable: vec![0; records.div_ceil(64)],
            report: LinkageReport {
                records: records as u64,
                ..LinkageReport::default()
            },
            ambiguous: Default::default(),
            partners: Vec::new(),
        })
    }

    /// Links through the keys of one partition. Every occurrence of a key
    /// must come in the same call; the slice is reordered.
    pub fn add_partition(&mut self, occurrences: &mut [KeyOccurrence]) {
        occurrences.sort_unstable_by_key(|o| (o.kind, o.hash, o.record));
        self.add_sorted(occurrences);
    }

    /// [`Linker::add_partition`] for occurrences already sorted by kind,
    /// hash and record.
    pub fn add_sorted(&mut self, occurrences: &[KeyOccurrence]) {
        for run in occurrences.chunk_by(|a, b| a.kind == b.kind && a.hash == b.hash) {
            let kind = run[0].kind;
            if self.strategy.uses(kind) {
                self.add_key(run);
            }
        }
    }

    /// The occurrences of one key.
    fn add_key(&mut self, run: &[KeyOccurrence]) {
        let (kind, hash) = (run[0].kind, run[0].hash);
        if self.strategy == Strategy::Union && self.shared_by_two(run) {
            self.ambiguous.insert((kind, hash));
            *self
                .report
                .ambiguous_keys_by_kind
                .entry(kind.label().to_owned())
                .or_default() += 1;
            return;
        }
        *self
            .report
            .keys_by_kind
            .entry(kind.label().to_owned())
            .or_default() += 1;
        let first = run[0].record as usize;
        let mut unions = 0;
        for occurrence in run {
            let record = occurrence.record as usize;
            self.usable[record / 64] |= 1 << (record % 64);
            unions += u64::from(self.sets.union(first, record));
        }
        if unions > 0 {
            *self
                .report
                .unions_by_kind
                .entry(kind.label().to_owned())
                .or_default() += unions;
        }
    }

    /// Whether two identities are seen on this key over overlapping periods.
    fn shared_by_two(&mut self, run: &[KeyOccurrence]) -> bool {
        self.partners.clear();
        for occurrence in run {
            for partner in occurrence.partners.iter().flatten() {
                self.partners.push((*partner, occurrence.month));
            }
        }
        self.partners.sort_unstable();
        let seen: Vec<(KeyKind, CoOccurrence)> = self
            .partners
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|group| group.len() as u32 >= MIN_SUPPORT)
            .map(|group| {
                let ((kind, _), first) = group[0];
                let last = group[group.len() - 1].1;
                (kind, CoOccurrence { first, last })
            })
            .collect();
        two_overlap(&seen)
    }

    /// The clusters, numbered in order of each one's first record.
    pub fn finish(mut self) -> Linkage {
        let usable: u64 = self.usable.iter().map(|w| u64::from(w.count_ones())).sum();
        self.report.records_without_usable_key = self.report.records - usable;
        let cluster_of_record = self.sets.into_dense_labels();
        self.report.clusters = cluster_of_record
            .iter()
            .map(|&c| u64::from(c) + 1)
            .max()
            .unwrap_or(0);
        self.report.cluster_sizes =
            size_histogram(&cluster_of_record, self.report.clusters as usize);
        Linkage {
            cluster_of_record,
            report: self.report,
            ambiguous: self.ambiguous,
        }
    }
}

/// One key of one record, with the keys beside it that identify one person
/// at a time under it (a card's names, a name's cards), as linkage needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyOccurrence {
    pub kind: KeyKind,
    pub hash: KeyHash,
    /// The record's number in canonical order.
    pub record: u32,
    /// The record's month (`YearMonth::index`).
    pub month: i32,
    /// Partner keys on the record: kind and the first 64 bits of the hash
    /// (enough to tell partners apart).
    pub partners: [Option<(KeyKind, u64)>; 2],
}

impl KeyOccurrence {
    /// Bytes of [`KeyOccurrence::encode`].
    pub const ENCODED_BYTES: usize = 1 + 16 + 4 + 4 + 2 * 9;

    /// Appends the fixed-size encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind as u8);
        out.extend_from_slice(&self.hash.0);
        out.extend_from_slice(&self.record.to_le_bytes());
        out.extend_from_slice(&self.month.to_le_bytes());
        for partner in self.partners {
            match partner {
                Some((kind, hash)) => {
                    out.push(kind as u8 + 1);
                    out.extend_from_slice(&hash.to_le_bytes());
                }
                None => out.extend_from_slice(&[0; 9]),
            }
        }
    }

    /// Reads one encoding; `None` when the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<KeyOccurrence> {
        if bytes.len() != Self::ENCODED_BYTES {
            return None;
        }
        let kind = KeyKind::from_code(bytes[0])?;
        let hash = KeyHash(bytes[1..17].try_into().ok()?);
        let record = u32::from_le_bytes(bytes[17..21].try_into().ok()?);
        let month = i32::from_le_bytes(bytes[21..25].try_into().ok()?);
        let partner = |at: usize| -> Option<Option<(KeyKind, u64)>> {
            match bytes[at] {
                0 => Some(None),
                code => Some(Some((
                    KeyKind::from_code(code - 1)?,
                    u64::from_le_bytes(bytes[at + 1..at + 9].try_into().ok()?),
                ))),
            }
        };
        Some(KeyOccurrence {
            kind,
            hash,
            record,
            month,
            partners: [partner(25)?, partner(34)?],
        })
    }
}

impl LinkRecord {
    /// The record's keys as occurrences, the record numbered `record`.
    pub fn occurrences(&self, record: u32) -> impl Iterator<Item = KeyOccurrence> + '_ {
        self.keys().map(move |(kind, hash)| {
            let mut partners = [None; 2];
            let present = partner_kinds(kind)
                .iter()
                .filter_map(|&partner| self.key(partner).map(|h| (partner, h.prefix())));
            for (slot, partner) in partners.iter_mut().zip(present) {
                *slot = Some(partner);
            }
            KeyOccurrence {
                kind,
                hash,
                record,
                month: self.month,
                partners,
            }
        })
    }
}

/// The partition (of `partitions`) that holds every occurrence of `hash`.
pub fn partition_of(hash: &KeyHash, partitions: usize) -> usize {
    (u64::from(u16::from_le_bytes([hash.0[0], hash.0[1]])) as usize) % partitions.max(1)
}

/// A key with its kind.
type TypedKey = (KeyKind, KeyHash);

/// The months over which a key and a partner key are seen together.
#[derive(Debug, Clone, Copy)]
struct CoOccurrence {
    first: i32,
    last: i32,
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

/// Union-find over record numbers, 4 bytes a record: every set's root is
/// its smallest member (so `parent[x] <= x`), found with path halving.
#[derive(Debug)]
struct DisjointSets {
    parent: Vec<u32>,
}

/// Marks a finished entry of [`DisjointSets::into_dense_labels`].
const LABEL_BIT: u32 = 1 << 31;

impl DisjointSets {
    fn new(n: usize) -> DisjointSets {
        DisjointSets {
            parent: (0..n as u32).collect(),
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
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return false;
        }
        let (root, child) = (a.min(b), a.max(b));
        self.parent[child] = root as u32;
        true
    }

    /// Dense labels 0.. in order of each set's first element, computed in
    /// place: a member's parent is smaller than it, so by the time a member
    /// is reached its parent already holds the final label.
    fn into_dense_labels(self) -> Vec<u32> {
        let mut labels = self.parent;
        let mut next = 0u32;
        for x in 0..labels.len() {
            let parent = labels[x] as usize;
            labels[x] = if parent == x {
                next += 1;
                LABEL_BIT | (next - 1)
            } else {
                labels[parent]
            };
        }
        for label in &mut labels {
            *label &= !LABEL_BIT;
        }
        labels
    }
}
