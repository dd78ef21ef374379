//! `linkage/records.parquet`: which person each identity-bearing source
//! record became, for measuring linkage quality (`enclave linkage-eval`).
//!
//! Rows are `(source, record_seq)` in canonical extract order with the
//! release's `person_id` and the clusters of the two single-key baselines. No
//! identifier or key hash is stored, and the file is not a catalog table.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::errors::ParquetError;

use crate::tables::parquet::encode;

/// Path of the artifact inside a release.
pub(crate) const LINKAGE_RECORDS_PATH: &str = "linkage/records.parquet";

/// Identity-bearing record kinds, named as the truth files are.
pub(crate) const SOURCES: [&str; 4] = ["ndb", "dpc", "care_claims", "care_certifications"];

/// One row per identity-bearing record, all vectors of equal length.
#[derive(Debug, Default)]
pub(crate) struct LinkageRecords {
    /// Index into [`SOURCES`].
    pub(crate) source: Vec<usize>,
    pub(crate) record_seq: Vec<i64>,
    pub(crate) person_id: Vec<i64>,
    pub(crate) id1_cluster: Vec<i64>,
    pub(crate) id2_cluster: Vec<i64>,
}

impl LinkageRecords {
    /// The artifact as zstd Parquet bytes.
    pub(crate) fn to_parquet(&self) -> Result<Vec<u8>, ParquetError> {
        let schema = Schema::new(vec![
            Field::new("source", DataType::Utf8, false),
            Field::new("record_seq", DataType::Int64, false),
            Field::new("person_id", DataType::Int64, false),
            Field::new("id1_cluster", DataType::Int64, false),
            Field::new("id2_cluster", DataType::Int64, false),
        ]);
        let int64 = |values: &Vec<i64>| Arc::new(Int64Array::from(values.clone())) as ArrayRef;
        let columns = vec![
            Arc::new(StringArray::from_iter_values(
                self.source.iter().map(|&s| SOURCES[s]),
            )) as ArrayRef,
            int64(&self.record_seq),
            int64(&self.person_id),
            int64(&self.id1_cluster),
            int64(&self.id2_cluster),
        ];
        encode(&RecordBatch::try_new(Arc::new(schema), columns)?)
    }
}
