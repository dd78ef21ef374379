//! `linkage/records.parquet`: which person each identity-bearing source
//! record became, for measuring linkage quality (`enclave linkage-eval`)
//! and for appending months to the release.
//!
//! Rows are `(source, record_seq)` in canonical extract order (an append's
//! records after its base's) with the record's id in its tables
//! (`record_id`: its `receipt_id`, `admission_id`, `claim_id` or
//! `certification_id`), the release's `person_id` and the clusters of the
//! two single-key baselines. No identifier or key hash is stored, and the
//! file is not a catalog table. It is written a batch of records at a time,
//! the baselines' clusters read back from their spill files.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::append::ChangedRecords;
use crate::error::IngestError;
use crate::linking::Linked;
use crate::record_ids::RecordGroups;
use crate::spill::LabelReader;
use crate::tables::parquet::writer_properties;

/// Path of the artifact inside a release.
pub(crate) const LINKAGE_RECORDS_PATH: &str = "linkage/records.parquet";

/// Identity-bearing record kinds, in canonical order, named as the truth
/// files are.
pub(crate) const SOURCES: [&str; 4] = ["ndb", "dpc", "care_claims", "care_certifications"];

/// Records per written batch.
const BATCH_RECORDS: usize = 1 << 20;

/// Columns: source, record_seq, record_id, person_id, id1_cluster, id2_cluster.
fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("record_seq", DataType::Int64, false),
        Field::new("record_id", DataType::Int64, false),
        Field::new("person_id", DataType::Int64, false),
        Field::new("id1_cluster", DataType::Int64, false),
        Field::new("id2_cluster", DataType::Int64, false),
    ]))
}

/// What writing the artifact found.
#[derive(Debug, Default)]
pub(crate) struct ArtifactSummary {
    /// The sources of every person's records.
    pub(crate) sources: PersonSources,
    /// The base's records whose person changed (an append).
    pub(crate) changed: ChangedRecords,
}

/// Writes the artifact of `linked` as zstd Parquet to the local file `path`
/// (a spill file: it is uploaded a part at a time). When the release
/// appends to another, `base` is that release's artifact: its rows come
/// first, with the person each record is now in.
pub(crate) fn write_linkage_records(
    linked: &Linked,
    groups: &RecordGroups,
    base: Option<&Path>,
    path: &Path,
) -> Result<ArtifactSummary, IngestError> {
    let file = std::fs::File::create(path)
        .map_err(|e| IngestError::Spill(format!("{}: {e}", path.display())))?;
    let file = std::io::BufWriter::new(file);
    let mut writer = ArrowWriter::try_new(file, schema(), Some(writer_properties(&schema())?))?;
    let [id1, id2] = &linked.baselines;
    let mut baselines = [id1.reader()?, id2.reader()?];
    let mut found = ArtifactSummary::default();
    let mut seq_before = [0i64; 4];
    if let Some(base) = base {
        seq_before = copy_base(base, linked, &mut baselines, &mut writer, &mut found)?;
    }
    let sources = SourceOfRecord::new(&linked.records);
    let (first, total) = (linked.base_records, linked.total_records());
    for start in (first..total).step_by(BATCH_RECORDS) {
        let records = start..(start + BATCH_RECORDS).min(total);
        let source_of = |record: usize| sources.source(record - first);
        let seq = records
            .clone()
            .map(|r| seq_before[source_of(r)] + sources.seq(r - first));
        let columns = RecordColumns {
            sources: records.clone().map(source_of).collect(),
            seq: seq.collect(),
            ids: groups.ids(records.clone(), |r| linked.person_of_record(r)),
        };
        for (record, &source) in records.clone().zip(&columns.sources) {
            found.sources.add(linked.person_of_record(record), source);
        }
        writer.write(&columns.batch(linked, records, &mut baselines)?)?;
    }
    writer.close()?;
    Ok(found)
}

/// A batch of records' own columns.
struct RecordColumns {
    sources: Vec<usize>,
    seq: Vec<i64>,
    ids: Vec<i64>,
}

impl RecordColumns {
    /// The batch of `records`, with the persons and baseline clusters of
    /// `linked`.
    fn batch(
        self,
        linked: &Linked,
        records: std::ops::Range<usize>,
        baselines: &mut [LabelReader; 2],
    ) -> Result<RecordBatch, IngestError> {
        let mut clusters = Vec::with_capacity(2);
        for reader in baselines.iter_mut() {
            let labels = records
                .clone()
                .map(|_| reader.next_label().map(i64::from))
                .collect::<Result<Vec<i64>, IngestError>>()?;
            clusters.push(Arc::new(Int64Array::from(labels)) as ArrayRef);
        }
        let mut columns = vec![
            Arc::new(StringArray::from_iter_values(
                self.sources.iter().map(|&s| SOURCES[s]),
            )) as ArrayRef,
            Arc::new(Int64Array::from(self.seq)),
            Arc::new(Int64Array::from(self.ids)),
            Arc::new(Int64Array::from_iter_values(
                records.map(|r| linked.person_of_record(r)),
            )),
        ];
        columns.extend(clusters);
        Ok(RecordBatch::try_new(schema(), columns)?)
    }
}

/// Writes the base's rows with each record's person now, noting the
/// records whose person changed; returns each source's records in it.
fn copy_base(
    base: &Path,
    linked: &Linked,
    baselines: &mut [LabelReader; 2],
    writer: &mut ArrowWriter<std::io::BufWriter<std::fs::File>>,
    found: &mut ArtifactSummary,
) -> Result<[i64; 4], IngestError> {
    let unreadable =
        || IngestError::Append("the newest release's linkage records are unreadable".into());
    let file = std::fs::File::open(base).map_err(|_| unreadable())?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.build())
        .map_err(|_| unreadable())?;
    let mut counts = [0i64; 4];
    let mut record = 0;
    for batch in reader {
        let batch = batch.map_err(|_| unreadable())?;
        let column = |name: &str| batch.column_by_name(name).ok_or_else(unreadable);
        let int64 = |name: &str| {
            column(name)?
                .as_primitive_opt::<Int64Type>()
                .cloned()
                .ok_or_else(unreadable)
        };
        let source = column("source")?
            .as_string_opt::<i32>()
            .cloned()
            .ok_or_else(unreadable)?;
        let (seq, ids, persons) = (
            int64("record_seq")?,
            int64("record_id")?,
            int64("person_id")?,
        );
        if record + batch.num_rows() > linked.base_records {
            return Err(unreadable());
        }
        let mut sources = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let index = SOURCES
                .iter()
                .position(|name| *name == source.value(row))
                .ok_or_else(unreadable)?;
            let person = linked.person_of_record(record + row);
            if person != persons.value(row) {
                found
                    .changed
                    .add(index, ids.value(row), persons.value(row), person);
            }
            found.sources.add(person, index);
            counts[index] += 1;
            sources.push(index);
        }
        let records = record..record + batch.num_rows();
        let columns = RecordColumns {
            sources,
            seq: seq.values().to_vec(),
            ids: ids.values().to_vec(),
        };
        writer.write(&columns.batch(linked, records, baselines)?)?;
        record += batch.num_rows();
    }
    if record != linked.base_records {
        return Err(unreadable());
    }
    Ok(counts)
}

/// The sources (NDB 1, DPC 2, care 4) of each person's records, by `person_id`.
#[derive(Debug, Default)]
pub(crate) struct PersonSources {
    masks: Vec<u8>,
    records: u64,
}

impl PersonSources {
    const BITS: [u8; 4] = [1, 2, 4, 4];

    fn add(&mut self, person: i64, source: usize) {
        let person = person as usize;
        if self.masks.len() <= person {
            self.masks.resize(person + 1, 0);
        }
        self.masks[person] |= Self::BITS[source];
        self.records += 1;
    }

    /// Records seen.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// Persons with a record.
    pub(crate) fn persons(&self) -> u64 {
        self.masks.iter().filter(|mask| **mask != 0).count() as u64
    }

    /// Persons with a record of each of NDB, DPC and care.
    pub(crate) fn per_source(&self) -> [(&'static str, u64); 3] {
        [("ndb", 1u8), ("dpc", 2), ("care", 4)].map(|(name, bit)| {
            let count = self.masks.iter().filter(|mask| *mask & bit != 0).count();
            (name, count as u64)
        })
    }

    /// Persons with records of more than one of them.
    pub(crate) fn in_several(&self) -> u64 {
        self.masks
            .iter()
            .filter(|mask| mask.count_ones() > 1)
            .count() as u64
    }
}

/// Where each source's records start in canonical order.
struct SourceOfRecord {
    starts: [usize; 4],
}

impl SourceOfRecord {
    fn new(records: &[u64; 4]) -> SourceOfRecord {
        let mut starts = [0; 4];
        for source in 1..4 {
            starts[source] = starts[source - 1] + records[source - 1] as usize;
        }
        SourceOfRecord { starts }
    }

    fn source(&self, record: usize) -> usize {
        self.starts
            .iter()
            .rposition(|&start| start <= record)
            .unwrap_or(0)
    }

    fn seq(&self, record: usize) -> i64 {
        (record - self.starts[self.source(record)]) as i64
    }
}
