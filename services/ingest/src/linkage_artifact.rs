//! `linkage/records.parquet`: which person each identity-bearing source
//! record became, for measuring linkage quality (`enclave linkage-eval`).
//!
//! Rows are `(source, record_seq)` in canonical extract order with the
//! release's `person_id` and the clusters of the two single-key baselines. No
//! identifier or key hash is stored, and the file is not a catalog table.
//! It is written a batch of records at a time, the baselines' clusters read
//! back from their spill files.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::append::Merges;
use crate::error::IngestError;
use crate::linking::Linked;
use crate::spill::LabelReader;
use crate::tables::parquet::writer_properties;

/// Path of the artifact inside a release.
pub(crate) const LINKAGE_RECORDS_PATH: &str = "linkage/records.parquet";

/// Identity-bearing record kinds, in canonical order, named as the truth
/// files are.
pub(crate) const SOURCES: [&str; 4] = ["ndb", "dpc", "care_claims", "care_certifications"];

/// The column of `person_id`.
const PERSON_ID_COLUMN: usize = 2;

/// Records per written batch.
const BATCH_RECORDS: usize = 1 << 20;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("record_seq", DataType::Int64, false),
        Field::new("person_id", DataType::Int64, false),
        Field::new("id1_cluster", DataType::Int64, false),
        Field::new("id2_cluster", DataType::Int64, false),
    ]))
}

/// The artifact of the release an append adds months to, downloaded.
pub(crate) struct BaseRecords<'a> {
    pub(crate) local: &'a Path,
    /// Its records of each source.
    pub(crate) records: [u64; 4],
    /// Its persons the append merges.
    pub(crate) merges: &'a Merges,
}

/// Writes the artifact of `linked` as zstd Parquet to the local file `path`
/// (a spill file: it is uploaded a part at a time), after the rows of
/// `base` when the release appends to one. Returns which sources each
/// person's records come from, over all rows written.
pub(crate) fn write_linkage_records(
    linked: &Linked,
    base: Option<&BaseRecords<'_>>,
    path: &Path,
) -> Result<PersonSources, IngestError> {
    let file = std::fs::File::create(path)
        .map_err(|e| IngestError::Spill(format!("{}: {e}", path.display())))?;
    let file = std::io::BufWriter::new(file);
    let mut writer = ArrowWriter::try_new(file, schema(), Some(writer_properties()?))?;
    let mut sources_of = PersonSources::default();
    let mut offsets = Offsets::default();
    if let Some(base) = base {
        offsets = copy_base(base, &mut writer, &mut sources_of)?;
    }
    let [id1, id2] = &linked.baselines;
    let (mut id1, mut id2) = (id1.reader()?, id2.reader()?);
    let sources = SourceOfRecord::new(&linked.records);
    let total = linked.total_records();
    for start in (0..total).step_by(BATCH_RECORDS) {
        let records = start..(start + BATCH_RECORDS).min(total);
        for record in records.clone() {
            sources_of.add(linked.person_of_record(record), sources.source(record));
        }
        let baselines = [&mut id1, &mut id2];
        writer.write(&batch(linked, &sources, records, baselines, &offsets)?)?;
    }
    writer.close()?;
    Ok(sources_of)
}

/// What the new rows of an appended artifact continue from.
#[derive(Default)]
struct Offsets {
    /// `record_seq` of each source's first new record.
    seq: [i64; 4],
    /// The first baseline cluster label of the new records (the new months'
    /// baseline clusters are new ones).
    label: [i64; 2],
}

/// Copies the base's rows, noting their persons' sources and where the new
/// rows continue.
fn copy_base(
    base: &BaseRecords<'_>,
    writer: &mut ArrowWriter<std::io::BufWriter<std::fs::File>>,
    sources_of: &mut PersonSources,
) -> Result<Offsets, IngestError> {
    let unreadable =
        || IngestError::Append("the newest release's linkage records are unreadable".into());
    let file = std::fs::File::open(base.local).map_err(|_| unreadable())?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.build())
        .map_err(|_| unreadable())?;
    let mut label = [0i64; 2];
    for batch in reader {
        let batch = batch.map_err(|_| unreadable())?;
        let (Some(source), Some(person), Some(id1), Some(id2)) = (
            batch.column(0).as_string_opt::<i32>(),
            batch.column(2).as_primitive_opt::<Int64Type>(),
            batch.column(3).as_primitive_opt::<Int64Type>(),
            batch.column(4).as_primitive_opt::<Int64Type>(),
        ) else {
            return Err(unreadable());
        };
        for row in 0..batch.num_rows() {
            let source = SOURCES
                .iter()
                .position(|name| *name == source.value(row))
                .ok_or_else(unreadable)?;
            sources_of.add(base.merges.id(person.value(row)), source);
            label[0] = label[0].max(id1.value(row) + 1);
            label[1] = label[1].max(id2.value(row) + 1);
        }
        writer.write(&base.merges.remap(batch, PERSON_ID_COLUMN)?)?;
    }
    Ok(Offsets {
        seq: base.records.map(|records| records as i64),
        label,
    })
}

fn batch(
    linked: &Linked,
    sources: &SourceOfRecord,
    records: std::ops::Range<usize>,
    baselines: [&mut LabelReader; 2],
    offsets: &Offsets,
) -> Result<RecordBatch, IngestError> {
    let baseline = |reader: &mut LabelReader, first: i64| {
        records
            .clone()
            .map(|_| reader.next_label().map(|label| first + i64::from(label)))
            .collect::<Result<Vec<i64>, IngestError>>()
            .map(Int64Array::from)
    };
    let [id1, id2] = baselines;
    let (id1, id2) = (
        baseline(id1, offsets.label[0])?,
        baseline(id2, offsets.label[1])?,
    );
    let columns = vec![
        Arc::new(StringArray::from_iter_values(
            records.clone().map(|r| SOURCES[sources.source(r)]),
        )) as ArrayRef,
        Arc::new(Int64Array::from_iter_values(
            records
                .clone()
                .map(|r| offsets.seq[sources.source(r)] + sources.seq(r)),
        )),
        Arc::new(Int64Array::from_iter_values(
            records.clone().map(|r| linked.person_of_record(r)),
        )),
        Arc::new(id1),
        Arc::new(id2),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
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
