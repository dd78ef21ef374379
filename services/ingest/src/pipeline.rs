//! The ingest pipeline: extracts → keys → linkage → tables → one release,
//! in memory bounded by `--memory-mb` whatever the population.
//!
//! Pass 1 ([`crate::linking`]) parses every extract a chunk at a time and
//! spills each record's linkage keys to local disk by key partition, so
//! anything malformed stops the ingest before the first object is written;
//! linkage then runs partition by partition. Pass 2 parses the extracts a
//! chunk at a time again, builds the chunk's rows of every table with the
//! linked `person_id`s, and writes them as they are encoded (one Parquet
//! file per table, month and chunk). An append (`--append`, [`crate::append`])
//! feeds the newest release's key occurrences to the linkage beside the new
//! months' and shares its table files. The release becomes visible only with
//! its manifest, the last write; an error at any point abandons the staged
//! objects, so nothing of a failed ingest is ever published.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::optout::{self, OPT_OUT_INDEX_PATH};
use arrow::array::RecordBatch;
use bytes::Bytes;
use enclave_catalog::{Catalog, TableStats};
use enclave_linkage::LinkageKeys;
use enclave_store::{DataStore, ReleaseContent, ReleaseWriter, TableEntry};
use rayon::prelude::*;

use crate::append::AppendBase;
use crate::budget::{DEFAULT_MEMORY_MB, MemoryBudget};
use crate::error::IngestError;
use crate::extract::{Depth, ExtractPlan, ExtractUnit, Extracts, parse_units, plan_extracts};
use crate::key_occurrences::KEY_OCCURRENCES_DIR;
use crate::linkage_artifact::{
    ArtifactSummary, LINKAGE_RECORDS_PATH, PersonSources, write_linkage_records,
};
use crate::linking::{Linked, link_extracts};
use crate::person_keys::{ID_CHANGES_PATH, PERSON_KEYS_PATH, PreviousPersons, id_changes_parquet};
use crate::progress::Progress;
use crate::record_ids::RecordGroups;
use crate::shards::Workers;
use crate::spill::SpillDir;
use crate::summary::{IngestSummary, PhaseTimes, unmapped_disease_codes};
use crate::tables::{PersonsBySource, PublishContext, build_all, facility_keys, parquet};

/// Where the catalog a release was built with is stored inside it.
pub const CATALOG_PATH: &str = "catalog.json";
/// Where the linkage report is stored inside a release.
pub const LINKAGE_REPORT_PATH: &str = "linkage/report.json";

/// How an ingest may use the machine.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The most memory the ingest plans to hold, in MiB (`--memory-mb`).
    pub memory_mb: u64,
    /// Local directory for spill files (default: the system's temporary
    /// directory). Spill files never hold an identifier.
    pub spill_dir: Option<PathBuf>,
    /// Keep the spill files after the ingest, for inspection.
    pub keep_spill: bool,
    /// Add the extracts' months to the newest release instead of building
    /// one from them alone (`--append`: docs/linkage.md, *Appending a month*).
    pub append: bool,
    /// Worker processes sharing the passes over the extracts (`--workers`);
    /// none: this process does them.
    pub workers: Option<Workers>,
}

impl Default for IngestOptions {
    fn default() -> IngestOptions {
        IngestOptions {
            memory_mb: DEFAULT_MEMORY_MB,
            spill_dir: None,
            keep_spill: false,
            append: false,
            workers: None,
        }
    }
}

/// One object to write into the release.
#[derive(Debug)]
pub(crate) struct StagedObject {
    pub(crate) path: String,
    pub(crate) bytes: Bytes,
    pub(crate) rows: Option<u64>,
}

/// Ingests the extracts under `extracts` into a new release of `store`,
/// pseudonymized under `keys`, shaped by `catalog`.
pub async fn ingest(
    store: &DataStore,
    extracts: &Path,
    keys: &LinkageKeys,
    catalog: &Catalog,
    options: &IngestOptions,
) -> Result<IngestSummary, IngestError> {
    let started = Instant::now();
    let budget = MemoryBudget::new(options.memory_mb);
    let spill_root = options.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
    let spill = SpillDir::create(&spill_root, options.keep_spill)?;
    let plan = plan_extracts(extracts)?;
    let base = match options.append {
        true => Some(AppendBase::load(store, keys, &plan).await?),
        false => None,
    };
    let (base_occurrences, base_records) = match &base {
        Some(base) => {
            let (occurrences, records) = base.download_linkage(store, &spill).await?;
            (Some(occurrences), Some(records))
        }
        None => (None, None),
    };
    let previous = PreviousPersons::load(store, keys, &spill).await?;
    let mut linked = tokio::task::block_in_place(|| {
        link_extracts(
            &plan,
            keys,
            &budget,
            &spill,
            previous.as_ref(),
            base_occurrences.as_ref(),
            options.workers.as_ref(),
        )
    })?;
    drop(previous);
    let mut phases = PhaseTimes {
        parse_seconds: linked.parse_seconds,
        link_seconds: started.elapsed().as_secs_f64() - linked.parse_seconds,
        ..PhaseTimes::default()
    };
    let timer = Instant::now();
    let mut writer = store.begin_release().await?;
    let release = ReleaseInput {
        plan: &plan,
        spill: &spill,
        keys,
        catalog,
        budget: &budget,
        base: base.as_ref(),
        base_records: base_records.as_deref(),
        workers: options.workers.as_ref(),
    };
    let written = write_release(store, &mut writer, &release, &mut linked).await;
    let written = match written {
        Ok(written) => written,
        Err(error) => {
            writer.abandon().await?;
            return Err(error);
        }
    };
    phases.tables_seconds = timer.elapsed().as_secs_f64();
    let mut summary = IngestSummary::new(&plan, &linked, base.as_ref(), &written, phases);
    summary.release_id = writer.id().to_owned();
    summary.phases.total_seconds = started.elapsed().as_secs_f64();
    let content = ReleaseContent {
        key_fingerprint: keys.fingerprint(),
        tables: written.entries,
        summary: serde_json::to_value(&summary).map_err(|e| IngestError::Worker(e.to_string()))?,
        linkage: serde_json::to_value(&linked.linkage.report)
            .map_err(|e| IngestError::Worker(e.to_string()))?,
    };
    writer.publish(content).await?;
    Ok(summary)
}

/// What a release is built from, beside the linkage.
pub(crate) struct ReleaseInput<'a> {
    pub(crate) plan: &'a ExtractPlan,
    pub(crate) spill: &'a SpillDir,
    pub(crate) keys: &'a LinkageKeys,
    pub(crate) catalog: &'a Catalog,
    budget: &'a MemoryBudget,
    /// The release an append adds months to, and its linkage records
    /// (downloaded).
    base: Option<&'a AppendBase>,
    base_records: Option<&'a Path>,
    workers: Option<&'a Workers>,
}

/// Everything but the manifest: the linkage files, then the tables chunk by
/// chunk (after the base's, copied by reference, when appending). Returns
/// the tables' entries.
async fn write_release(
    store: &DataStore,
    writer: &mut ReleaseWriter,
    input: &ReleaseInput<'_>,
    linked: &mut Linked,
) -> Result<WrittenTables, IngestError> {
    let ids_before = input.base.map_or([0; 4], |base| base.records);
    let groups = RecordGroups::new(
        input.plan,
        &linked.unit_records,
        ids_before,
        linked.base_records,
    );
    let artifact = write_linkage_files(writer, input, linked, &groups).await?;
    let mut tables = TableFiles::default();
    if let Some(base) = input.base {
        tables.entries = base
            .copy_tables(store, writer, &artifact.changed, input.catalog)
            .await?;
    }
    let file_prefix = match input.base {
        Some(_) => format!("{}-", writer.id()),
        None => String::new(),
    };
    let chunk_bytes = input
        .budget
        .table_chunk_bytes(linked.total_records() as u64)?;
    let ids = |records: Range<usize>| chunk_ids(linked, &groups, records);
    match input.workers {
        Some(workers) => {
            let (shards, peak) = tokio::task::block_in_place(|| {
                workers.build_tables(input, &file_prefix, chunk_bytes, linked, ids)
            })?;
            tables.worker_peak_memory_bytes = Some(peak);
            for shard in shards {
                for (chunk, files) in shard.chunks {
                    for (path, rows) in tables.add(chunk, files) {
                        writer
                            .put_file(&path, &shard.dir.join(&path), Some(rows))
                            .await?;
                    }
                }
            }
        }
        None => {
            let progress = Progress::bytes("building tables", input.plan.bytes);
            let mut first_record = linked.base_records;
            for (index, units) in input.plan.chunks(chunk_bytes).into_iter().enumerate() {
                let chunk = Chunk {
                    units,
                    name: format!("{file_prefix}{index}"),
                    first_record,
                };
                let built = tokio::task::block_in_place(|| {
                    build_chunk(&chunk, ids, input.catalog, input.keys, &progress)
                })?;
                first_record += built.tables.records;
                put_all(writer, tables.add(built.tables, built.objects)).await?;
            }
            progress.finish();
        }
    }
    Ok(tables.finish(input.catalog, artifact.sources))
}

/// The `person_id` and record id of each of `records`.
fn chunk_ids(
    linked: &Linked,
    groups: &RecordGroups,
    records: Range<usize>,
) -> Result<ChunkIds, IngestError> {
    let person_ids = records
        .clone()
        .map(|record| linked.person_of_record(record))
        .collect();
    let record_ids = groups.ids(records, |record| linked.person_of_record(record));
    Ok((person_ids, record_ids))
}

/// The linkage state (every record's key occurrences, the persons' keys),
/// the linkage records (which also tell each person's sources and, in an
/// append, the earlier records whose person changed), the opt-out index,
/// the id changes, the linkage report and the catalog.
async fn write_linkage_files(
    writer: &mut ReleaseWriter,
    input: &ReleaseInput<'_>,
    linked: &mut Linked,
    groups: &RecordGroups,
) -> Result<ArtifactSummary, IngestError> {
    for (index, (path, occurrences)) in linked.occurrence_files.iter().enumerate() {
        let relative = format!("{KEY_OCCURRENCES_DIR}/part-{index:05}.parquet");
        writer.put_file(&relative, path, Some(*occurrences)).await?;
    }
    let records = input.spill.path().join("records.parquet");
    let artifact = tokio::task::block_in_place(|| {
        write_linkage_records(linked, groups, input.base_records, &records)
    })?;
    let rows = Some(artifact.sources.records());
    writer
        .put_file(LINKAGE_RECORDS_PATH, &records, rows)
        .await?;
    writer
        .put_file(PERSON_KEYS_PATH, &linked.person_keys, None)
        .await?;
    let linkage_files = tokio::task::block_in_place(|| linkage_files(linked, input.catalog))?;
    put_all(writer, linkage_files).await?;
    Ok(artifact)
}

async fn put_all(
    writer: &mut ReleaseWriter,
    objects: Vec<StagedObject>,
) -> Result<(), IngestError> {
    for object in objects {
        writer.put(&object.path, object.bytes, object.rows).await?;
    }
    Ok(())
}

/// The opt-out index (its name keys are let go), the ids changed since
/// the previous release, the linkage report and the catalog.
fn linkage_files(linked: &mut Linked, catalog: &Catalog) -> Result<Vec<StagedObject>, IngestError> {
    let mut files = vec![
        staged(
            OPT_OUT_INDEX_PATH,
            optout::index_parquet(&std::mem::take(&mut linked.name_keys))?,
            None,
        ),
        staged(LINKAGE_REPORT_PATH, to_json(&linked.linkage.report)?, None),
        staged(CATALOG_PATH, to_json(catalog)?, None),
    ];
    if let Some((_, changes)) = &linked.id_changes {
        files.push(staged(ID_CHANGES_PATH, id_changes_parquet(changes)?, None));
    }
    Ok(files)
}

/// A run of units built together.
pub(crate) struct Chunk<'a> {
    pub(crate) units: &'a [(ExtractUnit, u64)],
    /// Names its files (`part-{name}.parquet`).
    pub(crate) name: String,
    /// The number of its first identity-bearing record, as `ids` of
    /// [`build_chunk`] knows them.
    pub(crate) first_record: usize,
}

/// Each record's `person_id` and record id, for a run of records.
pub(crate) type ChunkIds = (Vec<i64>, Vec<i64>);

/// One chunk's tables, encoded.
pub(crate) struct BuiltChunk {
    pub(crate) tables: ChunkTables,
    pub(crate) objects: Vec<StagedObject>,
}

/// What one chunk's tables hold, beside their bytes.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct ChunkTables {
    /// Identity-bearing records of the chunk.
    pub(crate) records: usize,
    /// Its diagnoses whose code is not in the master.
    unmapped_disease_codes: u64,
    tables: Vec<TableChunk>,
}

/// One table's rows of a chunk.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct TableChunk {
    table: String,
    rows: u64,
    /// Each file's path and partition value (its month).
    files: Vec<(String, Option<String>)>,
}

/// Parses one chunk again, gives its records their `person_id`s and
/// record ids (from `ids`), and builds and encodes its rows of every table.
pub(crate) fn build_chunk(
    chunk: &Chunk<'_>,
    ids: impl FnOnce(Range<usize>) -> Result<ChunkIds, IngestError>,
    catalog: &Catalog,
    keys: &LinkageKeys,
    progress: &Progress,
) -> Result<BuiltChunk, IngestError> {
    let extracts = parse_units(chunk.units, Depth::Tables, progress)?;
    let mut counts = [0usize; 4];
    for ((unit, _), records) in chunk.units.iter().zip(extracts.unit_record_counts()) {
        counts[unit.source()] += records;
    }
    let records = chunk.first_record..chunk.first_record + counts.iter().sum::<usize>();
    let (person_ids, record_ids) = ids(records.clone())?;
    let persons = PersonsBySource::split(&person_ids, &record_ids, counts);
    let context = PublishContext {
        catalog,
        facility_ids: facility_ids(&extracts, keys),
    };
    let tables = build_all(&extracts, &persons, &context)?;
    let mut built = encode_tables(tables, catalog, &chunk.name, records.len())?;
    built.tables.unmapped_disease_codes = unmapped_disease_codes(&extracts);
    Ok(built)
}

/// `facility_id` per facility key: a keyed hash, so ids are stable for a key
/// and unrelated under another.
fn facility_ids(extracts: &Extracts, keys: &LinkageKeys) -> HashMap<String, i64> {
    facility_keys(extracts)
        .into_iter()
        .map(|key| {
            let id = keys.facility_pseudonym(&key);
            (key, id)
        })
        .collect()
}

fn staged(path: &str, bytes: Vec<u8>, rows: Option<u64>) -> StagedObject {
    StagedObject {
        path: path.to_owned(),
        bytes: Bytes::from(bytes),
        rows,
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>, IngestError> {
    serde_json::to_vec_pretty(value).map_err(|e| IngestError::Worker(e.to_string()))
}

/// Sorts, partitions and encodes one chunk's rows of every table in
/// parallel; partitions without rows are left out.
fn encode_tables(
    tables: Vec<(String, RecordBatch)>,
    catalog: &Catalog,
    chunk: &str,
    records: usize,
) -> Result<BuiltChunk, IngestError> {
    let mut partitions = Vec::new();
    let mut files = Vec::new();
    for (name, batch) in &tables {
        let (_, table) = catalog
            .table(name)
            .ok_or_else(|| IngestError::Catalog(format!("unknown table {name}")))?;
        let partition_by = table.partition_by.as_deref();
        let parts: Vec<parquet::Partition> =
            parquet::partition_sorted(batch, partition_by, &table.sort_by)?
                .into_iter()
                .filter(|part| part.batch.num_rows() > 0)
                .collect();
        let paths = parts
            .iter()
            .map(|part| {
                let path = partition_path(name, partition_by, part.value.as_deref(), chunk);
                (path, part.value.clone())
            })
            .collect();
        files.push(TableChunk {
            table: name.clone(),
            rows: batch.num_rows() as u64,
            files: paths,
        });
        partitions.extend(
            parts
                .into_iter()
                .map(|part| (name.clone(), table.partition_by.clone(), part)),
        );
    }
    let objects = partitions
        .into_par_iter()
        .map(|(name, partition_by, part)| {
            let bytes = parquet::encode(&part.batch)?;
            let path = partition_path(&name, partition_by.as_deref(), part.value.as_deref(), chunk);
            Ok(staged(&path, bytes, Some(part.batch.num_rows() as u64)))
        })
        .collect::<Result<Vec<_>, IngestError>>()?;
    Ok(BuiltChunk {
        tables: ChunkTables {
            records,
            unmapped_disease_codes: 0,
            tables: files,
        },
        objects,
    })
}

fn partition_path(
    table: &str,
    partition_by: Option<&str>,
    value: Option<&str>,
    chunk: &str,
) -> String {
    match (partition_by, value) {
        (Some(column), Some(value)) => {
            format!("tables/{table}/{column}={value}/part-{chunk}.parquet")
        }
        (Some(column), None) => format!("tables/{table}/{column}=__null__/part-{chunk}.parquet"),
        (None, _) => format!("tables/{table}/part-{chunk}.parquet"),
    }
}

fn empty_entry() -> TableEntry {
    TableEntry {
        rows: 0,
        first_month: None,
        last_month: None,
        files: Vec::new(),
    }
}

/// The tables' entries, grown chunk by chunk.
#[derive(Debug, Default)]
struct TableFiles {
    entries: BTreeMap<String, TableEntry>,
    unmapped_disease_codes: u64,
    /// The most memory one worker process held, when there were some.
    worker_peak_memory_bytes: Option<u64>,
}

/// What pass 2 wrote.
#[derive(Debug)]
pub(crate) struct WrittenTables {
    pub(crate) entries: BTreeMap<String, TableEntry>,
    /// Diagnoses whose disease code is not in the master (icd10 NULL).
    pub(crate) unmapped_disease_codes: u64,
    /// The sources of every person's records.
    pub(crate) person_sources: PersonSources,
    /// The most memory one pass-2 worker process held, when there were some.
    pub(crate) worker_peak_memory_bytes: Option<u64>,
}

impl TableFiles {
    /// Records a chunk's files; hands back `objects`, its files to write.
    fn add<T>(&mut self, chunk: ChunkTables, objects: Vec<T>) -> Vec<T> {
        self.unmapped_disease_codes += chunk.unmapped_disease_codes;
        for table in chunk.tables {
            let entry = self.entries.entry(table.table).or_insert_with(empty_entry);
            entry.rows += table.rows;
            for (path, month) in table.files {
                if let Some(month) = month {
                    if entry
                        .first_month
                        .as_ref()
                        .is_none_or(|first| month < *first)
                    {
                        entry.first_month = Some(month.clone());
                    }
                    if entry.last_month.as_ref().is_none_or(|last| month > *last) {
                        entry.last_month = Some(month);
                    }
                }
                entry.files.push(path);
            }
        }
        objects
    }

    /// Every table of the catalog (one without rows too), files in path order.
    fn finish(mut self, catalog: &Catalog, person_sources: PersonSources) -> WrittenTables {
        for name in catalog.table_names() {
            self.entries.entry(name).or_insert_with(empty_entry);
        }
        for entry in self.entries.values_mut() {
            entry.files.sort();
        }
        WrittenTables {
            entries: self.entries,
            unmapped_disease_codes: self.unmapped_disease_codes,
            person_sources,
            worker_peak_memory_bytes: self.worker_peak_memory_bytes,
        }
    }
}

/// The catalog statistics of a release's tables.
pub fn table_stats(tables: &BTreeMap<String, TableEntry>) -> BTreeMap<String, TableStats> {
    tables
        .iter()
        .map(|(name, entry)| {
            let stats = TableStats {
                rows: entry.rows,
                first_month: entry.first_month.clone(),
                last_month: entry.last_month.clone(),
            };
            (name.clone(), stats)
        })
        .collect()
}
