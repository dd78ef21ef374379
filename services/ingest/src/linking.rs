//! Pass 1 and linkage: every record's linkage keys spilled to disk by key
//! partition, then linked a group of partitions at a time.
//!
//! Pass 1 parses the extracts a chunk at a time (so a malformed extract
//! stops the ingest before anything is written), keys each record and
//! spills its key occurrences (`enclave_linkage::KeyOccurrence`). Linkage reads the partitions back in
//! groups that fit the memory budget; the release's linkage and the two
//! single-key baselines are fed the same sorted partition side by side. A
//! second sweep picks each person's first month and representative key
//! (its `person_id` order), finds the previous release's persons by their
//! keys, and writes each person's keys for the next release and the opt-out
//! index.

use std::path::PathBuf;

use enclave_linkage::{
    IdChanges, KeyHash, KeyKind, Linkage, LinkageKeys, Linker, MAX_RECORDS, PreviousMatch,
    Representatives, Strategy, TooManyRecords,
};
use rayon::prelude::*;
use tracing::info;

use crate::budget::MemoryBudget;
use crate::error::IngestError;
use crate::extract::{Depth, ExtractPlan, ExtractUnit, chunk_units, parse_units};
use crate::identity::identity_records;
use crate::key_occurrences;
use crate::person_keys::{PreviousPersons, write_person_keys};
use crate::progress::Progress;
use crate::shards::Workers;
use crate::spill::{
    ClusterKey, ClusterKeyWriter, LabelFile, OccurrenceFiles, OccurrenceWriter, SpillDir,
};

/// Distinct (name key, `person_id`) pairs: the opt-out index.
pub(crate) type NameKeys = Vec<(KeyHash, i64)>;

/// The key occurrences of the release an append adds months to, on local
/// disk: its records are numbered first, the new months' after them.
#[derive(Debug)]
pub(crate) struct BaseOccurrences {
    pub(crate) files: Vec<PathBuf>,
    /// Its records.
    pub(crate) records: usize,
    /// Its occurrences.
    pub(crate) occurrences: u64,
}

/// One linkage group's key occurrences, sorted, on local disk
/// (`crate::key_occurrences`), and how many.
pub(crate) type OccurrenceFile = (PathBuf, u64);

/// What pass 1 and linkage leave for building the tables.
#[derive(Debug)]
pub(crate) struct Linked {
    /// The release's linkage (every key, guarded).
    pub(crate) linkage: Linkage,
    /// `person_id` of each cluster of [`Linked::linkage`].
    pub(crate) person_of_cluster: Vec<i64>,
    /// Cluster labels of the ID1-only and ID2-only baselines, on disk.
    pub(crate) baselines: [LabelFile; 2],
    /// Distinct (name key, `person_id`) pairs, sorted.
    pub(crate) name_keys: NameKeys,
    /// `linkage/person_keys.parquet`, written in the spill directory.
    pub(crate) person_keys: PathBuf,
    /// How the ids relate to the previous release's, when there was one.
    pub(crate) id_changes: Option<(String, IdChanges)>,
    /// Identity-bearing records of the release an append adds months to:
    /// records `0..base_records` are its, the extracts' follow.
    pub(crate) base_records: usize,
    /// The extracts' identity-bearing records per source (`linkage_artifact::SOURCES`).
    pub(crate) records: [u64; 4],
    /// Every record's key occurrences (the release's and the base's): the
    /// next append's linkage state.
    pub(crate) occurrence_files: Vec<OccurrenceFile>,
    /// Identity-bearing records of each unit of the plan.
    pub(crate) unit_records: Vec<u64>,
    /// Bytes spilled to local disk.
    pub(crate) spill_bytes: u64,
    pub(crate) parse_seconds: f64,
    /// The most memory one pass-1 worker process held, when there were some.
    pub(crate) worker_peak_memory_bytes: Option<u64>,
}

impl Linked {
    /// The `person_id` of record number `record` (canonical order).
    pub(crate) fn person_of_record(&self, record: usize) -> i64 {
        self.person_of_cluster[self.linkage.cluster_of_record[record] as usize]
    }

    /// The extracts' records of all sources.
    pub(crate) fn new_records(&self) -> usize {
        self.records.iter().sum::<u64>() as usize
    }

    /// Every record linked: the base's and the extracts'.
    pub(crate) fn total_records(&self) -> usize {
        self.base_records + self.new_records()
    }
}

/// Pass 1 and linkage over every extract of `plan`.
pub(crate) fn link_extracts(
    plan: &ExtractPlan,
    keys: &LinkageKeys,
    budget: &MemoryBudget,
    spill: &SpillDir,
    previous: Option<&PreviousPersons>,
    base: Option<&BaseOccurrences>,
    workers: Option<&Workers>,
) -> Result<Linked, IngestError> {
    let timer = std::time::Instant::now();
    let spilled = spill_keys(plan, keys, budget, spill, base, workers)?;
    let parse_seconds = timer.elapsed().as_secs_f64();
    let base_records = base.map_or(0, |base| base.records);
    let total = base_records + spilled.records.iter().sum::<u64>() as usize;
    let groups = spilled
        .files
        .groups(budget.partition_bytes(total as u64)?)?;
    let (linkages, occurrence_files) = link_partitions(&spilled.files, &groups, total, spill)?;
    let [linkage, card_only, name_only] = linkages;
    info!(
        records = total,
        persons = linkage.report.clusters,
        partitions = groups.len(),
        "linked"
    );
    let baselines = [
        LabelFile::write(spill, "id1", &card_only.cluster_of_record)?,
        LabelFile::write(spill, "id2", &name_only.cluster_of_record)?,
    ];
    drop((card_only, name_only));
    let persons = person_ids(&spilled.files, &groups, &linkage, keys, previous, spill)?;
    Ok(Linked {
        linkage,
        person_of_cluster: persons.person_of_cluster,
        baselines,
        name_keys: persons.name_keys,
        person_keys: persons.person_keys,
        id_changes: persons.id_changes,
        base_records,
        records: spilled.records,
        occurrence_files,
        unit_records: spilled.unit_records,
        spill_bytes: spill.bytes(),
        parse_seconds,
        worker_peak_memory_bytes: spilled.worker_peak_memory_bytes,
    })
}

/// What pass 1 wrote and counted.
struct Spilled {
    files: OccurrenceFiles,
    records: [u64; 4],
    unit_records: Vec<u64>,
    worker_peak_memory_bytes: Option<u64>,
}

/// Pass 1: parses every chunk and spills its records' key occurrences,
/// after those of the base of an append (whose records come first), in
/// this process or shard by shard in `workers`.
fn spill_keys(
    plan: &ExtractPlan,
    keys: &LinkageKeys,
    budget: &MemoryBudget,
    spill: &SpillDir,
    base: Option<&BaseOccurrences>,
    workers: Option<&Workers>,
) -> Result<Spilled, IngestError> {
    let base_occurrences = base.map_or(0, |base| base.occurrences);
    let partitions = budget.partitions(plan.bytes, base_occurrences);
    let mut writer = OccurrenceWriter::create(spill.path(), partitions)?;
    if let Some(base) = base {
        for file in &base.files {
            key_occurrences::read(file, |occurrence| {
                if occurrence.record as usize >= base.records {
                    return Err(IngestError::Append(
                        "the newest release's key occurrences name a record it does not hold"
                            .into(),
                    ));
                }
                writer.write(&occurrence)
            })?;
        }
    }
    let first_record = base.map_or(0, |base| base.records);
    let Some(workers) = workers else {
        let progress = Progress::bytes("keying extracts", plan.bytes);
        let keyed = key_units(
            &plan.units,
            budget.chunk_bytes(),
            keys,
            &mut writer,
            first_record,
            &progress,
        )?;
        progress.finish();
        return Ok(Spilled {
            files: writer.finish()?,
            records: keyed.records,
            unit_records: keyed.unit_records,
            worker_peak_memory_bytes: None,
        });
    };
    let mut files = writer.finish()?;
    let (shards, peak) = workers.spill_keys(plan, keys, budget.chunk_bytes(), partitions, spill)?;
    let (mut records, mut unit_records) = ([0u64; 4], Vec::with_capacity(plan.units.len()));
    let mut next_record = first_record;
    for (dir, keyed) in shards {
        files.append(OccurrenceFiles::written_in(&dir, partitions, next_record)?);
        next_record = keyed.numbered_after(next_record)?;
        for (total, count) in records.iter_mut().zip(keyed.records) {
            *total += count;
        }
        unit_records.extend(keyed.unit_records);
    }
    Ok(Spilled {
        files,
        records,
        unit_records,
        worker_peak_memory_bytes: Some(peak),
    })
}

/// What keying a run of units counted.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct KeyedUnits {
    /// Identity-bearing records per source.
    pub(crate) records: [u64; 4],
    /// Identity-bearing records of each unit.
    pub(crate) unit_records: Vec<u64>,
}

impl KeyedUnits {
    /// The number of the record after these, numbered from `first_record`,
    /// refused past what linkage can number.
    pub(crate) fn numbered_after(&self, first_record: usize) -> Result<usize, IngestError> {
        let next = first_record + self.records.iter().sum::<u64>() as usize;
        if next > MAX_RECORDS {
            return Err(IngestError::TooManyRecords(TooManyRecords {
                records: next,
            }));
        }
        Ok(next)
    }
}

/// Parses `units` a chunk of at most `chunk_bytes` at a time and writes
/// each record's key occurrences, numbering records from `first_record`.
pub(crate) fn key_units(
    units: &[(ExtractUnit, u64)],
    chunk_bytes: u64,
    keys: &LinkageKeys,
    writer: &mut OccurrenceWriter,
    first_record: usize,
    progress: &Progress,
) -> Result<KeyedUnits, IngestError> {
    let mut keyed = KeyedUnits {
        unit_records: Vec::with_capacity(units.len()),
        ..KeyedUnits::default()
    };
    let mut next_record = first_record;
    for chunk in chunk_units(units, chunk_bytes) {
        let extracts = parse_units(chunk, Depth::Identities, progress)?;
        let identities = identity_records(&extracts, keys);
        let counted = KeyedUnits {
            records: identities.source_counts.map(|count| count as u64),
            unit_records: extracts
                .unit_record_counts()
                .into_iter()
                .map(|n| n as u64)
                .collect(),
        };
        counted.numbered_after(next_record)?;
        for (index, record) in identities.records.iter().enumerate() {
            for occurrence in record.occurrences((next_record + index) as u32) {
                writer.write(&occurrence)?;
            }
        }
        next_record += identities.records.len();
        for (total, count) in keyed.records.iter_mut().zip(counted.records) {
            *total += count;
        }
        keyed.unit_records.extend(counted.unit_records);
    }
    Ok(keyed)
}

/// The release's linkage and the two baselines, fed each group of
/// partitions sorted once.
fn link_partitions(
    files: &OccurrenceFiles,
    groups: &[Vec<usize>],
    records: usize,
    spill: &SpillDir,
) -> Result<([Linkage; 3], Vec<OccurrenceFile>), IngestError> {
    let progress = Progress::steps("linking", groups.len() as u64);
    let mut linkers = [Strategy::Union, Strategy::CardOnly, Strategy::NameOnly]
        .into_iter()
        .map(|strategy| Linker::new(records, strategy))
        .collect::<Result<Vec<_>, _>>()?;
    let mut kept = Vec::with_capacity(groups.len());
    // One buffer for every group: fresh memory costs a page fault a page.
    let mut occurrences = Vec::new();
    for (index, group) in groups.iter().enumerate() {
        empty_with_room(&mut occurrences, files.group_count(group)?);
        files.for_each(group, |occurrence| occurrences.push(occurrence))?;
        occurrences.par_sort_unstable_by_key(|o| (o.kind, o.hash, o.record));
        let path = spill
            .path()
            .join(format!("key-occurrences-{index:05}.parquet"));
        let (written, ()) = rayon::join(
            || key_occurrences::write(&occurrences, &path),
            || {
                linkers
                    .par_iter_mut()
                    .for_each(|linker| linker.add_sorted(&occurrences))
            },
        );
        written?;
        kept.push((path, occurrences.len() as u64));
        progress.advance(1);
    }
    progress.finish();
    let [union, card_only, name_only]: [Linker; 3] = linkers.try_into().expect("three strategies");
    Ok((
        [union.finish(), card_only.finish(), name_only.finish()],
        kept,
    ))
}

/// Empties `buffer`, keeping room for `len` items: exactly `len` when it had
/// less (a group's memory is what the budget allowed it, so no growth
/// margin, and the old items are not copied).
fn empty_with_room<T>(buffer: &mut Vec<T>, len: usize) {
    buffer.clear();
    if buffer.capacity() < len {
        *buffer = Vec::new(); // the old allocation goes before the new one comes
        buffer.reserve_exact(len);
    }
}

/// What the second sweep finds.
struct Persons {
    person_of_cluster: Vec<i64>,
    name_keys: NameKeys,
    person_keys: PathBuf,
    id_changes: Option<(String, IdChanges)>,
}

/// Each person's `person_id` (kept from `previous` where it was there), the
/// opt-out index's (name key, person) pairs and the persons' keys (written
/// to a spill file), from a second sweep over the partitions.
fn person_ids(
    files: &OccurrenceFiles,
    groups: &[Vec<usize>],
    linkage: &Linkage,
    keys: &LinkageKeys,
    previous: Option<&PreviousPersons>,
    spill: &SpillDir,
) -> Result<Persons, IngestError> {
    let mut representatives = Representatives::new(linkage);
    let mut cluster_keys = ClusterKeyWriter::create(spill)?;
    let mut name_clusters: Vec<(KeyHash, u32)> = Vec::new();
    let mut matches: Vec<PreviousMatch> = Vec::new();
    let mut in_group: Vec<ClusterKey> = Vec::new();
    for group in groups {
        empty_with_room(&mut in_group, files.group_count(group)?);
        files.for_each(group, |occurrence| {
            representatives.add(linkage, &occurrence);
            let cluster = linkage.cluster_of_record[occurrence.record as usize];
            in_group.push((occurrence.hash, occurrence.kind, cluster));
        })?;
        // Partitions hold disjoint keys: duplicates are within a group.
        in_group.sort_unstable();
        in_group.dedup();
        if let Some(previous) = previous {
            matches.extend(previous_matches(previous, &in_group, group, files)?);
        }
        for key in &in_group {
            cluster_keys.write(key)?;
            if key.1 == KeyKind::Name {
                name_clusters.push((key.0, key.2));
            }
        }
    }
    let cluster_keys = cluster_keys.finish()?;
    let (person_of_cluster, id_changes) = match previous {
        Some(previous) => {
            let (ids, changes) = representatives.person_ids_after(
                keys,
                matches,
                previous.max_id + 1,
                previous.last_month,
            );
            (ids, Some((previous.release.clone(), changes)))
        }
        None => (representatives.person_ids(keys), None),
    };
    let person_keys = spill.path().join("person-keys.parquet");
    write_person_keys(
        &cluster_keys,
        &representatives,
        &person_of_cluster,
        &person_keys,
    )?;
    let mut name_keys: NameKeys = name_clusters
        .into_iter()
        .map(|(hash, cluster)| (hash, person_of_cluster[cluster as usize]))
        .collect();
    name_keys.sort_unstable();
    name_keys.dedup();
    Ok(Persons {
        person_of_cluster,
        name_keys,
        person_keys,
        id_changes,
    })
}

/// The previous persons holding the keys of one group's clusters.
fn previous_matches(
    previous: &PreviousPersons,
    cluster_keys: &[ClusterKey],
    group: &[usize],
    files: &OccurrenceFiles,
) -> Result<Vec<PreviousMatch>, IngestError> {
    let holders = previous.in_partitions(group, files.partitions())?;
    let mut matches = Vec::new();
    for &(hash, kind, cluster) in cluster_keys {
        let holders = holders.get(&(kind, hash)).map_or(&[][..], Vec::as_slice);
        // A key two previous persons shared says nothing of either but
        // where their representative went.
        let shared = holders.len() > 1;
        for &(id, representative) in holders {
            if representative || !shared {
                matches.push(PreviousMatch {
                    cluster,
                    id,
                    representative,
                });
            }
        }
    }
    Ok(matches)
}
