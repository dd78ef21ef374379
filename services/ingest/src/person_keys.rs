//! `linkage/person_keys.parquet`: every person's linkage keys (keyed
//! hashes), with its `person_id` and which key is its representative, so
//! that the next release over the same secret keeps every person's id and
//! sees merges and splits (docs/linkage.md, *Person ids from one release to
//! the next*). No identifier is stored; the file is not a catalog table and
//! no query reads it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BooleanArray, FixedSizeBinaryArray, Int8Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow::datatypes::{DataType, Field, Int8Type, Int64Type, Schema};
use enclave_linkage::{IdChanges, KeyHash, KeyKind, LinkageKeys, Representatives, partition_of};
use enclave_store::DataStore;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::append::last_month;
use crate::error::IngestError;
use crate::spill::{ClusterKey, ClusterKeyFile, SpillDir};
use crate::tables::parquet::{encode, writer_properties};

/// Path of the file inside a release.
pub(crate) const PERSON_KEYS_PATH: &str = "linkage/person_keys.parquet";

/// Path of the list of ids changed since the previous release.
pub(crate) const ID_CHANGES_PATH: &str = "linkage/id_changes.parquet";

/// Bytes of a key hash.
const KEY_BYTES: i32 = 16;

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("kind", DataType::Int8, false),
        Field::new("key", DataType::FixedSizeBinary(KEY_BYTES), false),
        Field::new("person_id", DataType::Int64, false),
        Field::new("representative", DataType::Boolean, false),
    ])
}

/// A previous person holding a key: its id, and whether the key was its
/// representative.
pub(crate) type Holder = (i64, bool);

/// Rows per batch written.
const BATCH_ROWS: usize = 1 << 20;

/// Writes the file of a release to the local file `out` from its distinct
/// (key, kind, cluster) triples, the clusters' representatives and ids, a
/// batch at a time.
pub(crate) fn write_person_keys(
    cluster_keys: &ClusterKeyFile,
    representatives: &Representatives,
    person_of_cluster: &[i64],
    out: &Path,
) -> Result<(), IngestError> {
    let file = std::fs::File::create(out)
        .map_err(|e| IngestError::Spill(format!("{}: {e}", out.display())))?;
    let mut writer = ArrowWriter::try_new(
        std::io::BufWriter::new(file),
        Arc::new(schema()),
        Some(writer_properties(&schema())?),
    )?;
    cluster_keys.for_each_batch(BATCH_ROWS, |rows| {
        let batch = person_keys_batch(rows, representatives, person_of_cluster)?;
        writer.write(&batch)?;
        Ok(())
    })?;
    writer.close()?;
    Ok(())
}

fn person_keys_batch(
    rows: &[ClusterKey],
    representatives: &Representatives,
    person_of_cluster: &[i64],
) -> Result<RecordBatch, IngestError> {
    let is_representative = |&(hash, kind, cluster): &ClusterKey| {
        representatives.key_of(cluster as usize) == Some((kind, hash))
    };
    let kinds = Int8Array::from_iter_values(rows.iter().map(|(_, kind, _)| *kind as i8));
    let keys = FixedSizeBinaryArray::try_from_iter(rows.iter().map(|(hash, _, _)| hash.0))?;
    let ids = Int64Array::from_iter_values(
        rows.iter()
            .map(|(_, _, cluster)| person_of_cluster[*cluster as usize]),
    );
    let representative =
        BooleanArray::from_iter(rows.iter().map(|row| Some(is_representative(row))));
    Ok(RecordBatch::try_new(
        Arc::new(schema()),
        vec![
            Arc::new(kinds) as ArrayRef,
            Arc::new(keys),
            Arc::new(ids),
            Arc::new(representative),
        ],
    )?)
}

/// `linkage/id_changes.parquet`: one row per previous id that a merge
/// retired or a split gave a new person (`change`, `previous_person_id`,
/// `person_id`), for remapping what was built on the previous ids.
pub(crate) fn id_changes_parquet(changes: &IdChanges) -> Result<Vec<u8>, IngestError> {
    let rows: Vec<(&str, i64, i64)> = changes
        .merged
        .iter()
        .map(|&(previous, id)| ("merged", previous, id))
        .chain(
            changes
                .split
                .iter()
                .map(|&(previous, id)| ("split", previous, id)),
        )
        .collect();
    let schema = Schema::new(vec![
        Field::new("change", DataType::Utf8, false),
        Field::new("previous_person_id", DataType::Int64, false),
        Field::new("person_id", DataType::Int64, false),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )?;
    Ok(encode(&batch)?)
}

/// The persons of the newest release over the same secret.
#[derive(Debug)]
pub(crate) struct PreviousPersons {
    pub(crate) release: String,
    /// The file, downloaded into the spill directory.
    local: PathBuf,
    /// The largest `person_id` that release or one before it gave.
    pub(crate) max_id: i64,
    /// The last month of that release's tables (`YearMonth::index`).
    pub(crate) last_month: i32,
}

impl PreviousPersons {
    /// The newest published release's persons, when it was made with
    /// `keys` and carries the file (none otherwise: ids start from 1); the
    /// file is downloaded into `spill`.
    pub(crate) async fn load(
        store: &DataStore,
        keys: &LinkageKeys,
        spill: &SpillDir,
    ) -> Result<Option<PreviousPersons>, IngestError> {
        let Some(manifest) = store.latest().await? else {
            return Ok(None);
        };
        if manifest.content.key_fingerprint != keys.fingerprint() {
            return Ok(None);
        }
        let Some(entry) = manifest.file(PERSON_KEYS_PATH) else {
            return Ok(None);
        };
        let local = spill.path().join("previous-person-keys.parquet");
        store
            .download_verified(&manifest.release_id, entry, &local)
            .await?;
        let mut previous = PreviousPersons {
            last_month: last_month(&manifest),
            release: manifest.release_id,
            local,
            max_id: 0,
        };
        previous.max_id = match manifest.content.summary["max_person_id"].as_i64() {
            Some(highest) => highest,
            None => {
                let mut max_id = 0;
                previous.for_each(|_, _, (id, _)| max_id = max_id.max(id))?;
                max_id
            }
        };
        Ok(Some(previous))
    }

    /// The previous persons holding each key that falls in one of
    /// `group`'s partitions (of `partitions`), by kind and key.
    pub(crate) fn in_partitions(
        &self,
        group: &[usize],
        partitions: usize,
    ) -> Result<HashMap<(KeyKind, KeyHash), Vec<Holder>>, IngestError> {
        let mut wanted = vec![false; partitions];
        for &partition in group {
            wanted[partition] = true;
        }
        let mut found: HashMap<(KeyKind, KeyHash), Vec<Holder>> = HashMap::new();
        self.for_each(|kind, hash, holder| {
            if wanted[partition_of(&hash, partitions)] {
                found.entry((kind, hash)).or_default().push(holder);
            }
        })?;
        Ok(found)
    }

    /// Calls `visit` with every row of the file.
    fn for_each(&self, mut visit: impl FnMut(KeyKind, KeyHash, Holder)) -> Result<(), IngestError> {
        let corrupt = || IngestError::PreviousPersons {
            release: self.release.clone(),
        };
        let file = std::fs::File::open(&self.local).map_err(|_| corrupt())?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|builder| builder.build())
            .map_err(|_| corrupt())?;
        for batch in reader {
            let batch = batch.map_err(|_| corrupt())?;
            let kinds = batch
                .column(0)
                .as_primitive_opt::<Int8Type>()
                .ok_or_else(corrupt)?;
            let keys = batch
                .column(1)
                .as_fixed_size_binary_opt()
                .ok_or_else(corrupt)?;
            let ids = batch
                .column(2)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(corrupt)?;
            let representative = batch.column(3).as_boolean_opt().ok_or_else(corrupt)?;
            for row in 0..batch.num_rows() {
                let kind = KeyKind::from_code(kinds.value(row) as u8).ok_or_else(corrupt)?;
                let hash = KeyHash(keys.value(row).try_into().map_err(|_| corrupt())?);
                visit(kind, hash, (ids.value(row), representative.value(row)));
            }
        }
        Ok(())
    }
}
