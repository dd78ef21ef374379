//! Maps the opt-out register (keyed lookup values recorded by the steward)
//! to the persons of the served release, through the release's opt-out index.

use std::collections::HashMap;

use arrow::array::{AsArray, RecordBatchReader};
use arrow::datatypes::Int64Type;
use enclave_state::OptOutEntry;
use enclave_store::{DataStore, Manifest};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use enclave_guard::error::QueryError;

use enclave_ingest::optout::OPT_OUT_INDEX_PATH;

/// Lookup value (hex) → person of this release.
#[derive(Debug, Default)]
pub struct OptOutIndex {
    persons: Option<HashMap<String, i64>>,
}

impl OptOutIndex {
    pub async fn load(store: &DataStore, manifest: &Manifest) -> Result<OptOutIndex, QueryError> {
        let Some(entry) = manifest.file(OPT_OUT_INDEX_PATH) else {
            tracing::warn!(
                release = manifest.release_id,
                "release has no opt-out index"
            );
            return Ok(OptOutIndex::default());
        };
        let bytes = store
            .read_verified(&manifest.release_id, entry)
            .await
            .map_err(QueryError::internal)?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|builder| builder.build())
            .map_err(QueryError::internal)?;
        let schema = reader.schema();
        let lookup_index = schema.index_of("lookup").map_err(QueryError::internal)?;
        let person_index = schema.index_of("person_id").map_err(QueryError::internal)?;
        let mut persons = HashMap::new();
        for batch in reader {
            let batch = batch.map_err(QueryError::internal)?;
            let lookups = batch.column(lookup_index).as_string::<i32>();
            let ids = batch.column(person_index).as_primitive::<Int64Type>();
            for (lookup, id) in lookups.iter().zip(ids.iter()) {
                if let (Some(lookup), Some(id)) = (lookup, id) {
                    persons.insert(lookup.to_string(), id);
                }
            }
        }
        Ok(OptOutIndex {
            persons: Some(persons),
        })
    }

    /// The persons of this release who opted out, sorted. Fails closed when
    /// there are opt-outs but the release cannot resolve them.
    pub fn persons(&self, entries: &[OptOutEntry]) -> Result<Vec<i64>, QueryError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let Some(index) = &self.persons else {
            return Err(QueryError::internal(
                "opt-outs are recorded but the served release has no opt-out index",
            ));
        };
        let mut persons: Vec<i64> = entries
            .iter()
            .filter_map(|entry| index.get(&entry.lookup).copied())
            .collect();
        persons.sort_unstable();
        persons.dedup();
        Ok(persons)
    }
}
