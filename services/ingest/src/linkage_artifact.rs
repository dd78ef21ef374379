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

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;

use crate::error::IngestError;
use crate::linking::Linked;
use crate::spill::LabelReader;
use crate::tables::parquet::writer_properties;

/// Path of the artifact inside a release.
pub(crate) const LINKAGE_RECORDS_PATH: &str = "linkage/records.parquet";

/// Identity-bearing record kinds, in canonical order, named as the truth
/// files are.
pub(crate) const SOURCES: [&str; 4] = ["ndb", "dpc", "care_claims", "care_certifications"];

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

/// Writes the artifact of `linked` as zstd Parquet to the local file `path`
/// (a spill file: it is uploaded a part at a time).
pub(crate) fn write_linkage_records(linked: &Linked, path: &Path) -> Result<(), IngestError> {
    let file = std::fs::File::create(path)
        .map_err(|e| IngestError::Spill(format!("{}: {e}", path.display())))?;
    let file = std::io::BufWriter::new(file);
    let mut writer = ArrowWriter::try_new(file, schema(), Some(writer_properties()?))?;
    let [id1, id2] = &linked.baselines;
    let (mut id1, mut id2) = (id1.reader()?, id2.reader()?);
    let sources = SourceOfRecord::new(&linked.records);
    let total = linked.total_records();
    for start in (0..total).step_by(BATCH_RECORDS) {
        let records = start..(start + BATCH_RECORDS).min(total);
        writer.write(&batch(linked, &sources, records, &mut id1, &mut id2)?)?;
    }
    writer.close()?;
    Ok(())
}

fn batch(
    linked: &Linked,
    sources: &SourceOfRecord,
    records: std::ops::Range<usize>,
    id1: &mut LabelReader,
    id2: &mut LabelReader,
) -> Result<RecordBatch, IngestError> {
    let baseline = |reader: &mut LabelReader| {
        records
            .clone()
            .map(|_| reader.next_label().map(i64::from))
            .collect::<Result<Vec<i64>, IngestError>>()
            .map(Int64Array::from)
    };
    let (id1, id2) = (baseline(id1)?, baseline(id2)?);
    let columns = vec![
        Arc::new(StringArray::from_iter_values(
            records.clone().map(|r| SOURCES[sources.source(r)]),
        )) as ArrayRef,
        Arc::new(Int64Array::from_iter_values(
            records.clone().map(|r| sources.seq(r)),
        )),
        Arc::new(Int64Array::from_iter_values(
            records.clone().map(|r| linked.person_of_record(r)),
        )),
        Arc::new(id1),
        Arc::new(id2),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
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
