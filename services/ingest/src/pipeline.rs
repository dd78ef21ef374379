//! The ingest pipeline: extracts → keys → linkage → tables → one release.
//!
//! Everything that can fail on bad input (parsing, validation, catalog
//! conformance) happens before the first object is written; the release
//! becomes visible only with its manifest, the last write. An error at any
//! point abandons the staged objects, so nothing of a failed ingest is ever
//! published.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use crate::optout::{self, OPT_OUT_INDEX_PATH};
use arrow::array::RecordBatch;
use bytes::Bytes;
use enclave_catalog::{Catalog, TableStats};
use enclave_linkage::{LinkageKeys, Strategy, assign_person_ids, link};
use enclave_store::{DataStore, ReleaseContent, ReleaseWriter, TableEntry};
use rayon::prelude::*;
use tracing::info;

use crate::error::IngestError;
use crate::extract::{Extracts, read_extracts};
use crate::identity::{IdentityRecords, identity_records};
use crate::linkage_artifact::{LINKAGE_RECORDS_PATH, LinkageRecords};
use crate::progress::Progress;
use crate::summary::{IngestSummary, PhaseTimes};
use crate::tables::{PersonsBySource, PublishContext, build_all, facility_keys, parquet};

/// Where the catalog a release was built with is stored inside it.
pub const CATALOG_PATH: &str = "catalog.json";
/// Where the linkage report is stored inside a release.
pub const LINKAGE_REPORT_PATH: &str = "linkage/report.json";

/// One object to write into the release.
#[derive(Debug)]
struct StagedObject {
    path: String,
    bytes: Bytes,
    rows: Option<u64>,
}

/// Everything a release holds, computed before anything is written.
#[derive(Debug)]
struct PreparedRelease {
    objects: Vec<StagedObject>,
    tables: BTreeMap<String, TableEntry>,
    summary: IngestSummary,
    linkage_report: serde_json::Value,
}

/// Ingests the extracts under `extracts` into a new release of `store`,
/// pseudonymized under `keys`, shaped by `catalog`.
pub async fn ingest(
    store: &DataStore,
    extracts: &Path,
    keys: &LinkageKeys,
    catalog: &Catalog,
) -> Result<IngestSummary, IngestError> {
    let started = Instant::now();
    let prepared = tokio::task::block_in_place(|| prepare(extracts, keys, catalog))?;
    let mut writer = store.begin_release().await?;
    match write(&mut writer, &prepared).await {
        Ok(()) => {}
        Err(error) => {
            writer.abandon().await?;
            return Err(error);
        }
    }
    let mut summary = prepared.summary;
    summary.release_id = writer.id().to_owned();
    summary.phases.total_seconds = started.elapsed().as_secs_f64();
    let content = ReleaseContent {
        key_fingerprint: keys.fingerprint(),
        tables: prepared.tables,
        summary: serde_json::to_value(&summary).map_err(|e| IngestError::Worker(e.to_string()))?,
        linkage: prepared.linkage_report,
    };
    writer.publish(content).await?;
    Ok(summary)
}

async fn write(writer: &mut ReleaseWriter, prepared: &PreparedRelease) -> Result<(), IngestError> {
    let progress = Progress::bytes(
        "writing",
        prepared.objects.iter().map(|o| o.bytes.len() as u64).sum(),
    );
    for object in &prepared.objects {
        writer
            .put(&object.path, object.bytes.clone(), object.rows)
            .await?;
        progress.advance(object.bytes.len() as u64);
    }
    progress.finish();
    Ok(())
}

fn prepare(
    root: &Path,
    keys: &LinkageKeys,
    catalog: &Catalog,
) -> Result<PreparedRelease, IngestError> {
    let mut phases = PhaseTimes::default();
    let timer = Instant::now();
    let extracts = read_with_progress(root)?;
    phases.parse_seconds = timer.elapsed().as_secs_f64();

    let timer = Instant::now();
    let identities = identity_records(&extracts, keys);
    let linkage = link(&identities.records, Strategy::Union);
    let person_ids = assign_person_ids(&linkage, &identities.records, keys);
    let id1 = link(&identities.records, Strategy::CardOnly);
    let id2 = link(&identities.records, Strategy::NameOnly);
    phases.link_seconds = timer.elapsed().as_secs_f64();
    info!(
        records = identities.records.len(),
        persons = linkage.report.clusters,
        "linked"
    );

    let timer = Instant::now();
    let context = PublishContext {
        catalog,
        facility_ids: facility_ids(&extracts, keys),
    };
    let persons = split_by_source(&identities, &person_ids);
    let tables = build_all(&extracts, &persons, &context)?;
    let (mut objects, table_entries) = encode_tables(tables, catalog)?;
    phases.tables_seconds = timer.elapsed().as_secs_f64();

    let artifact = LinkageRecords {
        source: identities.source.clone(),
        record_seq: identities.record_seq.clone(),
        person_id: person_ids.clone(),
        id1_cluster: id1
            .cluster_of_record
            .iter()
            .map(|&c| i64::from(c))
            .collect(),
        id2_cluster: id2
            .cluster_of_record
            .iter()
            .map(|&c| i64::from(c))
            .collect(),
    };
    let linkage_report =
        serde_json::to_value(&linkage.report).map_err(|e| IngestError::Worker(e.to_string()))?;
    objects.push(staged(
        LINKAGE_RECORDS_PATH,
        artifact.to_parquet()?,
        Some(person_ids.len() as u64),
    ));
    objects.push(staged(
        OPT_OUT_INDEX_PATH,
        optout::index_parquet(
            identities
                .records
                .iter()
                .map(|record| record.name)
                .zip(person_ids.iter().copied()),
        )?,
        None,
    ));
    objects.push(staged(LINKAGE_REPORT_PATH, to_json(&linkage_report)?, None));
    objects.push(staged(CATALOG_PATH, to_json(catalog)?, None));

    let summary = IngestSummary::new(
        &extracts,
        &identities,
        &person_ids,
        &table_entries,
        &linkage.report,
        phases,
    );
    Ok(PreparedRelease {
        objects,
        tables: table_entries,
        summary,
        linkage_report,
    })
}

fn read_with_progress(root: &Path) -> Result<Extracts, IngestError> {
    let progress = Progress::bytes("reading extracts", 0);
    let extracts = read_extracts(root, &progress)?;
    progress.finish();
    Ok(extracts)
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

fn split_by_source<'a>(identities: &IdentityRecords, person_ids: &'a [i64]) -> PersonsBySource<'a> {
    let [ndb, dpc, care_claims, _] = identities.source_counts;
    let (ndb_ids, rest) = person_ids.split_at(ndb);
    let (dpc_ids, rest) = rest.split_at(dpc);
    let (care_claim_ids, certification_ids) = rest.split_at(care_claims);
    PersonsBySource {
        ndb: ndb_ids,
        dpc: dpc_ids,
        care_claims: care_claim_ids,
        care_certifications: certification_ids,
    }
}

/// Sorts, partitions and encodes every table in parallel.
fn encode_tables(
    tables: Vec<(String, RecordBatch)>,
    catalog: &Catalog,
) -> Result<(Vec<StagedObject>, BTreeMap<String, TableEntry>), IngestError> {
    let mut partitions = Vec::new();
    let mut entries = BTreeMap::new();
    for (name, batch) in &tables {
        let (_, table) = catalog
            .table(name)
            .ok_or_else(|| IngestError::Catalog(format!("unknown table {name}")))?;
        let parts =
            parquet::partition_sorted(batch, table.partition_by.as_deref(), &table.sort_by)?;
        entries.insert(
            name.clone(),
            table_entry(
                batch.num_rows(),
                &parts,
                name,
                table.partition_by.as_deref(),
            ),
        );
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
            let path = partition_path(&name, partition_by.as_deref(), part.value.as_deref());
            Ok(staged(&path, bytes, Some(part.batch.num_rows() as u64)))
        })
        .collect::<Result<Vec<_>, IngestError>>()?;
    Ok((objects, entries))
}

fn partition_path(table: &str, partition_by: Option<&str>, value: Option<&str>) -> String {
    match (partition_by, value) {
        (Some(column), Some(value)) => format!("tables/{table}/{column}={value}/part-0.parquet"),
        (Some(column), None) => format!("tables/{table}/{column}=__null__/part-0.parquet"),
        (None, _) => format!("tables/{table}/part-0.parquet"),
    }
}

fn table_entry(
    rows: usize,
    parts: &[parquet::Partition],
    name: &str,
    partition_by: Option<&str>,
) -> TableEntry {
    let months: Vec<&str> = parts.iter().filter_map(|p| p.value.as_deref()).collect();
    TableEntry {
        rows: rows as u64,
        first_month: months.first().map(|m| m.to_string()),
        last_month: months.last().map(|m| m.to_string()),
        files: parts
            .iter()
            .map(|p| partition_path(name, partition_by, p.value.as_deref()))
            .collect(),
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
