//! Published tables as Parquet: sorted, partitioned, zstd-compressed.

use std::sync::Arc;

use std::collections::{BTreeSet, HashMap};

use arrow::array::{Array, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, Schema};
use arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// Rows per Parquet row group: large enough for good compression, small
/// enough that a month filter on a large table skips most of a file.
const ROW_GROUP_ROWS: usize = 512 * 1024;

/// One partition of a table (all rows sharing the partition column's value).
#[derive(Debug)]
pub(crate) struct Partition {
    /// The partition column's value, `None` when the table is not partitioned.
    pub(crate) value: Option<String>,
    pub(crate) batch: RecordBatch,
}

/// Sorts a table by its partition column then its sort columns, and splits it
/// into one batch per partition value.
pub(crate) fn partition_sorted(
    batch: &RecordBatch,
    partition_by: Option<&str>,
    sort_by: &[String],
) -> Result<Vec<Partition>, ArrowError> {
    let order = match (partition_by, sort_by) {
        (Some(partition), [person]) => partition_then_int64_order(batch, partition, person)?,
        _ => None,
    };
    let sorted = match order {
        Some(indices) => take_record_batch(batch, &indices)?,
        None => lexsorted(batch, partition_by, sort_by)?,
    };
    let Some(partition_by) = partition_by else {
        return Ok(vec![Partition {
            value: None,
            batch: sorted,
        }]);
    };
    split_runs(&sorted, partition_by)
}

/// The general sort: Arrow's lexicographic sort over every key column.
fn lexsorted(
    batch: &RecordBatch,
    partition_by: Option<&str>,
    sort_by: &[String],
) -> Result<RecordBatch, ArrowError> {
    let names = partition_by
        .into_iter()
        .chain(sort_by.iter().map(String::as_str));
    let sort_columns = names
        .map(|name| {
            let index = batch.schema().index_of(name)?;
            Ok(SortColumn {
                values: Arc::clone(batch.column(index)),
                options: None,
            })
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    if sort_columns.is_empty() {
        return Ok(batch.clone());
    }
    take_record_batch(batch, &lexsort_to_indices(&sort_columns, None)?)
}

/// The common case, a utf8 partition column (few distinct values) then an
/// int64 column, sorted as integers: much faster than a lexicographic sort.
/// `None` when the columns have other types or nulls.
fn partition_then_int64_order(
    batch: &RecordBatch,
    partition: &str,
    sort: &str,
) -> Result<Option<UInt32Array>, ArrowError> {
    let schema = batch.schema();
    let (Some(values), Some(keys)) = (
        batch
            .column(schema.index_of(partition)?)
            .as_any()
            .downcast_ref::<StringArray>(),
        batch
            .column(schema.index_of(sort)?)
            .as_any()
            .downcast_ref::<Int64Array>(),
    ) else {
        return Ok(None);
    };
    if values.null_count() > 0 || keys.null_count() > 0 {
        return Ok(None);
    }
    let distinct: BTreeSet<&str> = values.iter().flatten().collect();
    let rank: HashMap<&str, u32> = distinct
        .iter()
        .enumerate()
        .map(|(i, v)| (*v, i as u32))
        .collect();
    let partition_rank: Vec<u32> = values.iter().flatten().map(|v| rank[v]).collect();
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order
        .sort_unstable_by_key(|&row| (partition_rank[row as usize], keys.value(row as usize), row));
    Ok(Some(UInt32Array::from(order)))
}

/// Splits a batch sorted on `column` into its runs of equal values.
fn split_runs(sorted: &RecordBatch, column: &str) -> Result<Vec<Partition>, ArrowError> {
    let values = sorted
        .column(sorted.schema().index_of(column)?)
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| ArrowError::SchemaError(format!("partition column {column} is not utf8")))?;
    let mut partitions = Vec::new();
    let mut start = 0;
    for row in 1..=values.len() {
        let run_ends = row == values.len() || values.value(row) != values.value(start);
        if run_ends {
            let value = (!values.is_null(start)).then(|| values.value(start).to_owned());
            partitions.push(Partition {
                value,
                batch: sorted.slice(start, row - start),
            });
            start = row;
        }
    }
    Ok(partitions)
}

/// How every Parquet file of a release is written: zstd, page statistics,
/// and a dictionary only for text columns. Text columns hold codes and
/// labels (few distinct values); the other columns hold ids, keyed hashes,
/// amounts and dates, whose dictionary would be as large as the column and
/// cost a hash-table insertion per value. Measured on the throughput bench
/// (services/ingest/benches/ingest_throughput.rs): dictionaries only for text
/// made the NDB tables a third smaller and pass 2 faster; zstd level 1 gave
/// the same sizes as level 3 in less time.
pub(crate) fn writer_properties(schema: &Schema) -> Result<WriterProperties, ParquetError> {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_dictionary_enabled(false)
        .set_created_by("enclave".to_owned());
    for field in schema.fields() {
        if matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8) {
            builder = builder
                .set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), true);
        }
    }
    Ok(builder.build())
}

/// Encodes a batch as one Parquet file in memory.
pub(crate) fn encode(batch: &RecordBatch) -> Result<Vec<u8>, ParquetError> {
    let mut bytes = Vec::with_capacity(batch.get_array_memory_size() / 4);
    let properties = writer_properties(&batch.schema())?;
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("person_id", DataType::Int64, false),
            Field::new("service_month", DataType::Utf8, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![3, 1, 2, 5, 4])),
                Arc::new(StringArray::from(vec![
                    "2023-05", "2023-04", "2023-05", "2023-04", "2023-05",
                ])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn partitions_are_split_by_month_and_sorted_by_person() {
        let parts =
            partition_sorted(&batch(), Some("service_month"), &["person_id".into()]).unwrap();
        let months: Vec<_> = parts.iter().map(|p| p.value.clone().unwrap()).collect();
        assert_eq!(months, ["2023-04", "2023-05"]);
        let ids = |p: &Partition| {
            let column = p
                .batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone();
            column.values().to_vec()
        };
        assert_eq!(ids(&parts[0]), [1, 5]);
        assert_eq!(ids(&parts[1]), [2, 3, 4]);
    }

    #[test]
    fn encoded_files_read_back() {
        let bytes = encode(&batch()).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 5);
    }
}
