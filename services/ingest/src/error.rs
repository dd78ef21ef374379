//! Errors of the ingest pipeline.

/// Why an ingest stopped. Nothing of the release is published after any of these.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Extract(#[from] crate::extract::ExtractError),
    #[error(transparent)]
    Store(#[from] enclave_store::StoreError),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("writing Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("building tables: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("the ingest worker failed: {0}")]
    Worker(String),
}
