//! `enclave ingest --append`: a release holding the newest release's months
//! and the months of new extracts, reading only the new extracts.
//!
//! The newest release (its base) stays as it was published: its table
//! files are copied into the new release by reference (a hard link on
//! local disk, a server-side copy on S3), its persons keep their ids, and
//! its linkage state (`linkage/person_keys.parquet`: keyed hashes only)
//! links the new records to them. The new months' records are linked among
//! themselves and to those keys; a new record holding keys of two earlier
//! persons is evidence that they are one, which the release reports as a
//! merge for the next full ingest to apply (docs/linkage.md, *Appending a
//! month*). Record ids, record numbers and person ids continue after the
//! base's.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use ::parquet::file::statistics::Statistics;
use arrow::array::{AsArray, Int64Array, RecordBatch, RecordBatchReader as _};
use arrow::datatypes::Int64Type;
use bytes::Bytes;
use enclave_catalog::{Catalog, TableDef};
use enclave_core::date::YearMonth;
use enclave_linkage::LinkageKeys;
use enclave_store::{DataStore, FileEntry, Manifest, ReleaseWriter, TableEntry};

use crate::error::IngestError;
use crate::extract::ExtractPlan;
use crate::linkage_artifact::SOURCES;
use crate::person_keys::PERSON_KEYS_PATH;
use crate::tables::parquet as table_files;

/// The release an append adds months to.
#[derive(Debug)]
pub(crate) struct AppendBase {
    pub(crate) manifest: Manifest,
    /// Identity-bearing records of each source (`SOURCES` order) in it.
    pub(crate) records: [u64; 4],
    /// Its persons.
    pub(crate) persons: u64,
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
        if manifest.file(PERSON_KEYS_PATH).is_none() {
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
        let persons = summary["persons"].as_u64().unwrap_or(0);
        Ok(AppendBase {
            manifest,
            records,
            persons,
        })
    }

    /// The release id.
    pub(crate) fn release(&self) -> &str {
        &self.manifest.release_id
    }

    /// Copies every table file of the base into `writer`: by reference,
    /// or remapped where it may hold an id `merges` retires. Returns the
    /// base's table entries, to which the new months' files are added.
    pub(crate) async fn copy_tables(
        &self,
        store: &DataStore,
        writer: &mut ReleaseWriter,
        merges: &Merges,
        catalog: &Catalog,
    ) -> Result<BTreeMap<String, TableEntry>, IngestError> {
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
                if self.may_hold_merged(store, entry, merges).await? {
                    let bytes = self.remapped_file(store, entry, merges, definition).await?;
                    writer.put(path, bytes, entry.rows).await?;
                } else {
                    writer.copy_from(self.release(), entry).await?;
                }
            }
        }
        Ok(self.manifest.content.tables.clone())
    }
}

/// Previous persons an append merges: merged id → id kept. The months
/// already published are remapped: their linkage records, person keys,
/// opt-out index and every table file that may hold a merged id.
#[derive(Debug, Default)]
pub(crate) struct Merges {
    kept_of: HashMap<i64, i64>,
}

impl Merges {
    /// From (merged id, id kept) pairs.
    pub(crate) fn new(pairs: &[(i64, i64)]) -> Merges {
        Merges {
            kept_of: pairs.iter().copied().collect(),
        }
    }

    /// The id `id` now has.
    pub(crate) fn id(&self, id: i64) -> i64 {
        self.kept_of.get(&id).copied().unwrap_or(id)
    }

    /// `batch` with the ids of its int64 column `column` remapped.
    pub(crate) fn remap(
        &self,
        batch: RecordBatch,
        column: usize,
    ) -> Result<RecordBatch, IngestError> {
        if self.kept_of.is_empty() {
            return Ok(batch);
        }
        let ids = batch
            .column(column)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| IngestError::Append("a person id column is not int64".into()))?;
        let remapped: Int64Array = ids.iter().map(|id| id.map(|id| self.id(id))).collect();
        let mut columns = batch.columns().to_vec();
        columns[column] = Arc::new(remapped);
        Ok(RecordBatch::try_new(batch.schema(), columns)?)
    }

    /// Whether a table file whose footer is `metadata` may hold a merged
    /// id: some row group's `person_id` range holds one.
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
                    (Some(min), Some(max)) => self.kept_of.keys().any(|id| min <= id && id <= max),
                    _ => true,
                },
                _ => true,
            })
    }
}

/// The column every person-level table carries.
const PERSON_ID: &str = "person_id";

/// Bytes at the end of a Parquet file: footer length (4) and magic (4).
const FOOTER_TAIL: u64 = 8;

impl AppendBase {
    /// Whether the table file `entry` of the base may hold a merged id,
    /// from its footer's statistics.
    async fn may_hold_merged(
        &self,
        store: &DataStore,
        entry: &FileEntry,
        merges: &Merges,
    ) -> Result<bool, IngestError> {
        if merges.kept_of.is_empty() {
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
        Ok(merges.may_be_in(&metadata))
    }

    /// The table file `entry` of the base with merged ids remapped, sorted
    /// again as the table is.
    async fn remapped_file(
        &self,
        store: &DataStore,
        entry: &FileEntry,
        merges: &Merges,
        table: &TableDef,
    ) -> Result<Bytes, IngestError> {
        let bytes = store.read_verified(self.release(), entry).await?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
        let schema = reader.schema();
        let batches = reader.collect::<Result<Vec<_>, _>>()?;
        let batch = arrow::compute::concat_batches(&schema, &batches)?;
        let column = schema.index_of(PERSON_ID)?;
        let batch = merges.remap(batch, column)?;
        let sorted = table_files::partition_sorted(&batch, None, &table.sort_by)?;
        let batch = sorted.into_iter().next().map_or(batch, |part| part.batch);
        Ok(Bytes::from(table_files::encode(&batch)?))
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
    use arrow::array::Int32Array;
    use enclave_store::ReleaseContent;

    /// A table file's rows: `person_id`, and a value per row.
    fn rows(persons: &[i64]) -> Bytes {
        let values = Int32Array::from_iter_values(0..persons.len() as i32);
        let batch = RecordBatch::try_from_iter([
            (PERSON_ID, Arc::new(Int64Array::from(persons.to_vec())) as _),
            ("value", Arc::new(values) as _),
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
                let ids = batch.column(0).as_primitive::<Int64Type>().clone();
                ids.values().to_vec()
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn only_files_that_may_hold_a_merged_person_are_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = DataStore::open_local(dir.path()).unwrap();
        let mut first = store.begin_release().await.unwrap();
        let table = "ndb.receipts";
        let holding = "tables/ndb.receipts/service_month=2023-04/part-0.parquet";
        let apart = "tables/ndb.receipts/service_month=2023-05/part-0.parquet";
        first
            .put(holding, rows(&[2, 5, 9, 9]), Some(4))
            .await
            .unwrap();
        first.put(apart, rows(&[1, 2, 3]), Some(3)).await.unwrap();
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
            persons: 5,
        };
        // 9 and 5 are found to be one person with 4, who keeps 4.
        let merges = Merges::new(&[(5, 4), (9, 4)]);
        let mut next = store.begin_release().await.unwrap();
        let tables = base
            .copy_tables(&store, &mut next, &merges, Catalog::embedded())
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
            vec![2, 4, 4, 4],
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
