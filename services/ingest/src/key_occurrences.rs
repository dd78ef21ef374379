//! `linkage/key_occurrences/part-NNNNN.parquet`: every record's linkage
//! keys, the state an append links the new months with.
//!
//! One file per linkage group of key partitions, written as linkage sorts
//! the group (by kind, key, record), so a key's occurrences lie together
//! and zstd stores the repeats of its 16-byte hash in a few bytes (the
//! column is plain-encoded: `writer_properties` keeps dictionaries for
//! text). Keyed hashes, record numbers, months and the partner keys' first
//! 64 bits: no identifier, read only by the next append.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeBinaryArray, Int8Array, Int32Array, RecordBatch,
    UInt32Array, UInt64Array,
};
use arrow::datatypes::{
    DataType, Field, Int8Type, Int32Type, Schema, SchemaRef, UInt32Type, UInt64Type,
};
use enclave_linkage::{KeyHash, KeyKind, KeyOccurrence};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::IngestError;
use crate::tables::parquet::writer_properties;

/// Where a release keeps the files.
pub(crate) const KEY_OCCURRENCES_DIR: &str = "linkage/key_occurrences";

/// Occurrences per written batch.
const BATCH: usize = 1 << 16;

/// Columns: kind, key, record, month, then kind and 64-bit prefix of each
/// of the two partner keys (no partner: null).
fn schema() -> SchemaRef {
    let partner = |n: u8| {
        [
            Field::new(format!("partner{n}_kind"), DataType::Int8, true),
            Field::new(format!("partner{n}"), DataType::UInt64, true),
        ]
    };
    let mut fields = vec![
        Field::new("kind", DataType::Int8, false),
        Field::new("key", DataType::FixedSizeBinary(16), false),
        Field::new("record", DataType::UInt32, false),
        Field::new("month", DataType::Int32, false),
    ];
    fields.extend(partner(1));
    fields.extend(partner(2));
    Arc::new(Schema::new(fields))
}

/// Writes `occurrences` (one linkage group, sorted) to the local file `path`.
pub(crate) fn write(occurrences: &[KeyOccurrence], path: &Path) -> Result<(), IngestError> {
    let file = std::fs::File::create(path)
        .map_err(|e| IngestError::Spill(format!("{}: {e}", path.display())))?;
    let mut writer = ArrowWriter::try_new(
        std::io::BufWriter::new(file),
        schema(),
        Some(writer_properties(&schema())?),
    )?;
    for part in occurrences.chunks(BATCH) {
        writer.write(&batch(part)?)?;
    }
    writer.close()?;
    Ok(())
}

fn batch(part: &[KeyOccurrence]) -> Result<RecordBatch, IngestError> {
    let partner = |n: usize| -> [ArrayRef; 2] {
        let kinds: Int8Array = part
            .iter()
            .map(|o| o.partners[n].map(|(kind, _)| kind as i8))
            .collect();
        let prefixes: UInt64Array = part.iter().map(|o| o.partners[n].map(|(_, p)| p)).collect();
        [Arc::new(kinds), Arc::new(prefixes)]
    };
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int8Array::from_iter_values(
            part.iter().map(|o| o.kind as i8),
        )),
        Arc::new(FixedSizeBinaryArray::try_from_iter(
            part.iter().map(|o| o.hash.0),
        )?),
        Arc::new(UInt32Array::from_iter_values(part.iter().map(|o| o.record))),
        Arc::new(Int32Array::from_iter_values(part.iter().map(|o| o.month))),
    ];
    columns.extend(partner(0));
    columns.extend(partner(1));
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// Calls `visit` with every occurrence of a file [`write`] wrote, stopping
/// at its first error.
pub(crate) fn read(
    path: &Path,
    mut visit: impl FnMut(KeyOccurrence) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    let unreadable = || IngestError::Append(format!("{}: not key occurrences", path.display()));
    let file = std::fs::File::open(path).map_err(|_| unreadable())?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.build())
        .map_err(|_| unreadable())?;
    for batch in reader {
        let batch = batch.map_err(|_| unreadable())?;
        if batch.schema() != schema() {
            return Err(unreadable());
        }
        let kinds = batch.column(0).as_primitive::<Int8Type>();
        let keys = batch.column(1).as_fixed_size_binary();
        let records = batch.column(2).as_primitive::<UInt32Type>();
        let months = batch.column(3).as_primitive::<Int32Type>();
        let partner_kinds = [4, 6].map(|i| batch.column(i).as_primitive::<Int8Type>());
        let partners = [5, 7].map(|i| batch.column(i).as_primitive::<UInt64Type>());
        let kind_of = |code: i8| u8::try_from(code).ok().and_then(KeyKind::from_code);
        for row in 0..batch.num_rows() {
            let partner = |n: usize| -> Result<Option<(KeyKind, u64)>, IngestError> {
                if partner_kinds[n].is_null(row) {
                    return Ok(None);
                }
                let kind = kind_of(partner_kinds[n].value(row)).ok_or_else(unreadable)?;
                Ok(Some((kind, partners[n].value(row))))
            };
            visit(KeyOccurrence {
                kind: kind_of(kinds.value(row)).ok_or_else(unreadable)?,
                hash: KeyHash(keys.value(row).try_into().map_err(|_| unreadable())?),
                record: records.value(row),
                month: months.value(row),
                partners: [partner(0)?, partner(1)?],
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrences_come_back_as_written() {
        let occurrence = |record: u32, partners| KeyOccurrence {
            kind: KeyKind::HealthCard,
            hash: KeyHash([7; 16]),
            record,
            month: 24_290 + record as i32,
            partners,
        };
        let written = vec![
            occurrence(1, [Some((KeyKind::Name, 42)), None]),
            occurrence(
                5,
                [
                    Some((KeyKind::Name, 43)),
                    Some((KeyKind::CareCard, u64::MAX)),
                ],
            ),
            occurrence(9, [None, None]),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part.parquet");
        write(&written, &path).unwrap();
        let mut read_back = Vec::new();
        read(&path, |occurrence| {
            read_back.push(occurrence);
            Ok(())
        })
        .unwrap();
        assert_eq!(read_back, written);
        std::fs::write(&path, b"not parquet").unwrap();
        assert!(read(&path, |_| Ok(())).is_err());
    }
}
