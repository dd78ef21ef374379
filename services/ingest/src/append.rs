//! `enclave ingest --append`: a release holding the newest release's months
//! and the months of new extracts, reading only the new extracts.
//!
//! The newest release (its base) keeps every record's key occurrences
//! (`crate::key_occurrences`) and each record's table id
//! (`linkage/records.parquet`). This module checks that the base can be
//! appended to, downloads that state for the linkage (which links the
//! base's records and the new months' again, as a full ingest would), and
//! copies the base's table files into the new release: by reference (a hard
//! link on local disk, a server-side copy on S3), or rewritten where a
//! record's person changed ([`ChangedRecords`]). Record ids, record numbers
//! and person ids continue after the base's (docs/linkage.md, *Appending a
//! month*).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use ::parquet::arrow::ProjectionMask;
use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use ::parquet::file::statistics::Statistics;
use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::Int64Type;
use bytes::Bytes;
use enclave_catalog::{Catalog, TableDef};
use enclave_core::date::YearMonth;
use enclave_linkage::LinkageKeys;
use enclave_store::{DataStore, FileEntry, Manifest, ReleaseWriter, TableEntry};

use tracing::info;

use crate::error::IngestError;
use crate::extract::ExtractPlan;
use crate::key_occurrences::KEY_OCCURRENCES_DIR;
use crate::linkage_artifact::{LINKAGE_RECORDS_PATH, SOURCES};
use crate::linking::BaseOccurrences;
use crate::person_keys::PERSON_KEYS_PATH;
use crate::spill::SpillDir;
use crate::tables::parquet as table_files;

/// The release an append adds months to.
#[derive(Debug)]
pub(crate) struct AppendBase {
    pub(crate) manifest: Manifest,
    /// Identity-bearing records of each source (`SOURCES` order) in it.
    pub(crate) records: [u64; 4],
}

impl AppendBase {
    /// The newest release, when it was made under `keys`, carries its
    /// persons' keys, and ends before every month directory of `plan`.
    pub(crate) async fn load(
        store: &DataStore,
        keys: &LinkageKeys,
        plan: &ExtractPlan,
    ) -> Result<AppendBase, IngestError> {
        let refuse = |problem: &str| IngestError::Append(problem.to_owned());
        let manifest = store
            .latest()
            .await?
            .ok_or_else(|| refuse("the data store has no release to append to"))?;
        if manifest.content.key_fingerprint != keys.fingerprint() {
            return Err(refuse(
                "the newest release was made under another secret key",
            ));
        }
        let has_state = manifest.file(PERSON_KEYS_PATH).is_some()
            && manifest.file(LINKAGE_RECORDS_PATH).is_some()
            && manifest
                .files
                .iter()
                .any(|file| file.path.starts_with(KEY_OCCURRENCES_DIR));
        if !has_state {
            return Err(refuse(
                "the newest release has no linkage state (made by an older version): run a full ingest",
            ));
        }
        let last = last_month(&manifest);
        if let Some(directory) = plan
            .units
            .iter()
            .map(|(unit, _)| unit.directory())
            .find(|directory| month_of_directory(directory).is_some_and(|month| month <= last))
        {
            return Err(IngestError::Append(format!(
                "{directory} is not after the newest release's last month: append only new months"
            )));
        }
        let summary = &manifest.content.summary;
        let records = SOURCES.map(|source| summary["records"][source].as_u64().unwrap_or(0));
        Ok(AppendBase { manifest, records })
    }

    /// Downloads the base's key occurrences and linkage records into `spill`.
    pub(crate) async fn download_linkage(
        &self,
        store: &DataStore,
        spill: &SpillDir,
    ) -> Result<(BaseOccurrences, PathBuf), IngestError> {
        let mut files = Vec::new();
        let mut occurrences = 0;
        let parts = self
            .manifest
            .files
            .iter()
            .filter(|file| file.path.starts_with(KEY_OCCURRENCES_DIR));
        for (index, entry) in parts.enumerate() {
            let local = spill
                .path()
                .join(format!("base-occurrences-{index:05}.parquet"));
            store
                .download_verified(self.release(), entry, &local)
                .await?;
            files.push(local);
            occurrences += entry.rows.unwrap_or(0);
        }
        let entry = self.manifest.file(LINKAGE_RECORDS_PATH).ok_or_else(|| {
            IngestError::Append("the newest release has no linkage records".into())
        })?;
        let records = spill.path().join("base-records.parquet");
        store
            .download_verified(self.release(), entry, &records)
            .await?;
        let occurrences = BaseOccurrences {
            files,
            records: self.records.iter().sum::<u64>() as usize,
            occurrences,
        };
        Ok((occurrences, records))
    }

    /// The release id.
    pub(crate) fn release(&self) -> &str {
        &self.manifest.release_id
    }

    /// Copies every table file of the base into `writer`: by reference,
    /// or rewritten where it may hold a record whose person changed.
    /// Returns the base's table entries, to which the new months' files
    /// are added.
    pub(crate) async fn copy_tables(
        &self,
        store: &DataStore,
        writer: &mut ReleaseWriter,
        changed: &ChangedRecords,
        catalog: &Catalog,
    ) -> Result<BTreeMap<String, TableEntry>, IngestError> {
        let (mut shared, mut rewritten) = (0, 0);
        for (name, table) in &self.manifest.content.tables {
            let (_, definition) = catalog
                .table(name)
                .ok_or_else(|| IngestError::Catalog(format!("unknown table {name}")))?;
            for path in &table.files {
                let entry = self.manifest.file(path).ok_or_else(|| {
                    IngestError::Append(format!(
                        "the newest release lists {path} without its manifest entry"
                    ))
                })?;
                let remapped = match self.may_hold_changed(store, entry, changed).await? {
                    true => {
                        self.remapped_file(store, entry, changed, definition)
                            .await?
                    }
                    false => None,
                };
                match remapped {
                    Some(bytes) => {
                        writer.put(path, bytes, entry.rows).await?;
                        rewritten += 1;
                    }
                    None => {
                        writer.copy_from(self.release(), entry).await?;
                        shared += 1;
                    }
                };
            }
        }
        info!(shared, rewritten, "earlier months' table files");
        Ok(self.manifest.content.tables.clone())
    }
}

/// Records of the base whose person an append changed (new evidence
/// merged or split earlier persons): the person each is now in, by source
/// and record id, and the persons they were in.
#[derive(Debug, Default)]
pub(crate) struct ChangedRecords {
    person_of: HashMap<(usize, i64), i64>,
    previous_persons: BTreeSet<i64>,
}

impl ChangedRecords {
    /// Record `record_id` of source `source` (`SOURCES` order) moved from
    /// person `was` to `now`.
    pub(crate) fn add(&mut self, source: usize, record_id: i64, was: i64, now: i64) {
        self.person_of.insert((source, record_id), now);
        self.previous_persons.insert(was);
    }

    /// `batch` of a table of `source` with the persons of its changed
    /// records (found by `id_column`) in `person_column` replaced; none when
    /// it holds no changed record.
    fn remap(
        &self,
        batch: RecordBatch,
        source: usize,
        id_column: usize,
        person_column: usize,
    ) -> Result<Option<RecordBatch>, IngestError> {
        let not_int64 = || IngestError::Append("an id column is not int64".into());
        let ids = batch
            .column(id_column)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(not_int64)?;
        let persons = batch
            .column(person_column)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(not_int64)?;
        let mut changes = 0;
        let remapped: Int64Array = ids
            .iter()
            .zip(persons.iter())
            .map(|(id, person)| {
                let now = id.and_then(|id| self.person_of.get(&(source, id)).copied());
                changes += usize::from(now.is_some());
                now.or(person)
            })
            .collect();
        if changes == 0 {
            return Ok(None);
        }
        let mut columns = batch.columns().to_vec();
        columns[person_column] = Arc::new(remapped);
        Ok(Some(RecordBatch::try_new(batch.schema(), columns)?))
    }

    /// Whether a table file whose footer is `metadata` may hold a changed
    /// record: some row group's `person_id` range holds a person they were in.
    fn may_be_in(&self, metadata: &ParquetMetaData) -> bool {
        let Some(column) = metadata
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|column| column.name() == PERSON_ID)
        else {
            return false;
        };
        metadata
            .row_groups()
            .iter()
            .any(|group| match group.column(column).statistics() {
                Some(Statistics::Int64(stats)) => match (stats.min_opt(), stats.max_opt()) {
                    (Some(min), Some(max)) => {
                        self.previous_persons.range(min..=max).next().is_some()
                    }
                    _ => true,
                },
                _ => true,
            })
    }
}

/// Each source's record id column, in `SOURCES` order.
const RECORD_ID_COLUMNS: [&str; 4] = ["receipt_id", "admission_id", "claim_id", "certification_id"];

/// The column every person-level table carries.
const PERSON_ID: &str = "person_id";

/// Bytes at the end of a Parquet file: footer length (4) and magic (4).
const FOOTER_TAIL: u64 = 8;

impl AppendBase {
    /// Whether the table file `entry` of the base may hold a changed
    /// record, from its footer's statistics.
    async fn may_hold_changed(
        &self,
        store: &DataStore,
        entry: &FileEntry,
        changed: &ChangedRecords,
    ) -> Result<bool, IngestError> {
        if changed.person_of.is_empty() {
            return Ok(false);
        }
        let unreadable = || IngestError::Append(format!("{} has no readable footer", entry.path));
        let size = entry.bytes;
        let tail_start = size.checked_sub(FOOTER_TAIL).ok_or_else(unreadable)?;
        let tail = store
            .read_range(self.release(), entry, tail_start..size)
            .await?;
        let length = tail
            .get(..4)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(unreadable)?;
        let start = tail_start
            .checked_sub(u64::from(length))
            .ok_or_else(unreadable)?;
        let footer = store
            .read_range(self.release(), entry, start..tail_start)
            .await?;
        let metadata = ParquetMetaDataReader::decode_metadata(&footer).map_err(|_| unreadable())?;
        Ok(changed.may_be_in(&metadata))
    }

    /// The table file `entry` of the base with its changed records' persons
    /// replaced, sorted again as the table is; none when it holds no
    /// changed record (its statistics only said it might).
    async fn remapped_file(
        &self,
        store: &DataStore,
        entry: &FileEntry,
        changed: &ChangedRecords,
        table: &TableDef,
    ) -> Result<Option<Bytes>, IngestError> {
        let bytes = store.read_verified(self.release(), entry).await?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())?;
        let schema = Arc::clone(builder.schema());
        let (source, id_column) = RECORD_ID_COLUMNS
            .iter()
            .enumerate()
            .find_map(|(source, name)| Some((source, schema.index_of(name).ok()?)))
            .ok_or_else(|| IngestError::Append(format!("{} has no record id", entry.path)))?;
        // The record ids alone first: most files the statistics let through
        // hold no changed record.
        let ids_only = ProjectionMask::roots(builder.parquet_schema(), [id_column]);
        let mut holds_changed = false;
        for batch in builder.with_projection(ids_only).build()? {
            let ids = batch?;
            let ids = ids
                .column(0)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| {
                    IngestError::Append(format!("{} has a record id that is not int64", entry.path))
                })?;
            holds_changed |= ids
                .values()
                .iter()
                .any(|&id| changed.person_of.contains_key(&(source, id)));
        }
        if !holds_changed {
            return Ok(None);
        }
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
        let batches = reader.collect::<Result<Vec<_>, _>>()?;
        let batch = arrow::compute::concat_batches(&schema, &batches)?;
        let Some(batch) = changed.remap(batch, source, id_column, schema.index_of(PERSON_ID)?)?
        else {
            return Ok(None);
        };
        let sorted = table_files::partition_sorted(&batch, None, &table.sort_by)?;
        let batch = sorted.into_iter().next().map_or(batch, |part| part.batch);
        Ok(Some(Bytes::from(table_files::encode(&batch)?)))
    }
}

/// The last month of a release's tables (`YearMonth::index`), `i32::MAX`
/// when no table has a month.
pub(crate) fn last_month(manifest: &Manifest) -> i32 {
    manifest
        .content
        .tables
        .values()
        .filter_map(|table| table.last_month.as_deref())
        .filter_map(|month| YearMonth::parse_yyyymm(&month.replace('-', "")).ok())
        .map(|month| month.index())
        .max()
        .unwrap_or(i32::MAX)
}

/// The month of a month directory (`ndb/202304`), none for another one.
fn month_of_directory(directory: &str) -> Option<i32> {
    let (_, name) = directory.rsplit_once('/')?;
    (name.len() == 6)
        .then(|| YearMonth::parse_yyyymm(name).ok())
        .flatten()
        .map(|month| month.index())
}

#[cfg(test)]
mod tests {
    use super::*;
    use enclave_store::ReleaseContent;

    /// A receipts file's rows: `receipt_id`s from `first_id`, their persons.
    fn rows(first_id: i64, persons: &[i64]) -> Bytes {
        let ids = Int64Array::from_iter_values((0..persons.len() as i64).map(|i| first_id + i));
        let batch = RecordBatch::try_from_iter([
            ("receipt_id", Arc::new(ids) as _),
            (PERSON_ID, Arc::new(Int64Array::from(persons.to_vec())) as _),
        ])
        .unwrap();
        Bytes::from(table_files::encode(&batch).unwrap())
    }

    fn persons_of(bytes: Bytes) -> Vec<i64> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        reader
            .flat_map(|batch| {
                let batch = batch.unwrap();
                let ids = batch.column(1).as_primitive::<Int64Type>().clone();
                ids.values().to_vec()
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn only_files_that_may_hold_a_changed_record_are_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataStore::open_local(dir.path()).unwrap();
        let mut first = store.begin_release().await.unwrap();
        let table = "ndb.receipts";
        let holding = "tables/ndb.receipts/service_month=2023-04/part-0.parquet";
        let apart = "tables/ndb.receipts/service_month=2023-05/part-0.parquet";
        first
            .put(holding, rows(10, &[2, 5, 9, 9]), Some(4))
            .await
            .unwrap();
        first
            .put(apart, rows(20, &[1, 2, 3]), Some(3))
            .await
            .unwrap();
        let entry = TableEntry {
            rows: 7,
            files: vec![holding.to_owned(), apart.to_owned()],
            ..TableEntry::default()
        };
        let content = ReleaseContent {
            tables: BTreeMap::from([(table.to_owned(), entry)]),
            ..ReleaseContent::default()
        };
        let manifest = first.publish(content).await.unwrap();
        let base = AppendBase {
            manifest,
            records: [0; 4],
        };
        // Receipt 11 of person 5 is found to be person 4's (a merge), and
        // receipt 13 of person 9 a new person's, 20 (a split).
        let mut changed = ChangedRecords::default();
        changed.add(0, 11, 5, 4);
        changed.add(0, 13, 9, 20);
        let mut next = store.begin_release().await.unwrap();
        let tables = base
            .copy_tables(&store, &mut next, &changed, Catalog::embedded())
            .await
            .unwrap();
        assert_eq!(tables[table].files, vec![holding, apart]);
        let manifest = next.publish(ReleaseContent::default()).await.unwrap();
        let read = |path: &str| {
            let entry = manifest.file(path).unwrap().clone();
            let store = store.clone();
            let release = manifest.release_id.clone();
            async move { store.read_verified(&release, &entry).await.unwrap() }
        };
        assert_eq!(
            persons_of(read(holding).await),
            vec![2, 4, 9, 20],
            "remapped, sorted"
        );
        assert_eq!(persons_of(read(apart).await), vec![1, 2, 3]);
        use std::os::unix::fs::MetadataExt as _;
        let inode = |release: &str, path: &str| {
            let file = dir.path().join("releases").join(release).join(path);
            std::fs::metadata(file).unwrap().ino()
        };
        let (before, after) = (base.release(), manifest.release_id.as_str());
        assert_eq!(inode(before, apart), inode(after, apart), "shared");
        assert_ne!(
            inode(before, holding),
            inode(after, holding),
            "written again"
        );
    }

    #[test]
    fn only_month_directories_have_a_month() {
        let april = YearMonth::new(2023, 4).unwrap().index();
        assert_eq!(month_of_directory("ndb/202304"), Some(april));
        assert_eq!(month_of_directory("care"), None);
        assert_eq!(month_of_directory("care/nintei"), None);
        assert_eq!(month_of_directory("dpc/202313"), None);
    }
}
