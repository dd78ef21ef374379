//! Tables a project brings in (持込): kept in the data store under
//! `bring-ins/<project>/<random>.parquet` while they wait in quarantine,
//! read as `ref.<name>` by that project's sessions once the committee
//! approves them (`enclave_state::ReferenceTable`), deleted when screening
//! refuses them, a reviewer rejects them or the project closes.

use arrow::datatypes::{Field, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::prelude::SessionContext;
use enclave_guard::table::{GuardedTable, RowSource};
use enclave_guard::tags::Tags;
use enclave_state::ReferenceTable;
use enclave_store::DataStore;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use parquet::arrow::ArrowWriter;

use crate::ids::random_hex;
use crate::tables::guarded_table;
use enclave_guard::error::QueryError;

const ROOT: &str = "bring-ins";

/// A brought-in table as kept: where, how large, its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTable {
    pub object: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Writes `batches` as one Parquet object of `project`'s quarantine.
pub async fn store(
    store: &DataStore,
    project: &str,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<StoredTable, QueryError> {
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema, None).map_err(QueryError::internal)?;
    for batch in batches {
        writer.write(batch).map_err(QueryError::internal)?;
    }
    let bytes = writer.into_inner().map_err(QueryError::internal)?;
    let object = ObjectPath::from(ROOT)
        .join(project)
        .join(format!("{}.parquet", random_hex(16)?));
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let stored = StoredTable {
        object: object.to_string(),
        bytes: bytes.len() as u64,
        sha256: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
    };
    enclave_store::put_object(store.object_store().as_ref(), &object, bytes.into())
        .await
        .map_err(QueryError::internal)?;
    tracing::info!(
        project,
        object = stored.object,
        "brought-in table quarantined"
    );
    Ok(stored)
}

/// Deletes a kept table (absent already is fine).
pub async fn delete(store: &DataStore, object: &str) -> Result<(), QueryError> {
    match store.object_store().delete(&ObjectPath::from(object)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(QueryError::internal(error)),
    }
}

/// `ref.<name>` as a session reads it: the columns of the approved file,
/// rows of no person.
pub(crate) async fn table(
    store: &DataStore,
    reference: &ReferenceTable,
) -> Result<GuardedTable, QueryError> {
    let objects = store.object_store();
    let meta = objects
        .head(&ObjectPath::from(reference.object.as_str()))
        .await
        .map_err(QueryError::internal)?;
    let format = ParquetFormat::default().with_force_view_types(false);
    let state = SessionContext::new().state();
    let schema = format.infer_schema(&state, &objects, &[meta]).await?;
    let visible: Vec<(Field, Tags)> = schema
        .fields()
        .iter()
        .map(|field| (field.as_ref().clone(), Tags::UNKNOWN))
        .collect();
    guarded_table(
        visible,
        &schema,
        std::slice::from_ref(&reference.object),
        RowSource::Reference,
    )
    .map_err(QueryError::internal)
}

/// The schema every session's `ref` tables live in.
pub const REFERENCE_SCHEMA: &str = "ref";

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Schema};
    use datafusion::catalog::TableProvider;

    #[tokio::test]
    async fn a_stored_table_is_read_back_and_deleted() {
        let dir = std::env::temp_dir().join(format!("enclave-ref-{}", random_hex(4).unwrap()));
        let data = DataStore::open_local(&dir).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("icd10", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(StringArray::from(vec!["E11", "I10"]))],
        )
        .unwrap();
        let stored = store(&data, "p1", schema, &[batch]).await.unwrap();
        assert!(stored.object.starts_with("bring-ins/p1/"));
        assert_eq!(stored.sha256.len(), 64);
        let reference = ReferenceTable {
            project: "p1".into(),
            name: "codes".into(),
            object: stored.object.clone(),
            available: true,
        };
        let guarded = table(&data, &reference).await.unwrap();
        assert_eq!(guarded.schema().field(0).name(), "icd10");
        delete(&data, &stored.object).await.unwrap();
        delete(&data, &stored.object).await.unwrap();
        assert!(table(&data, &reference).await.is_err());
        std::fs::remove_dir_all(dir).ok();
    }
}
