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
    #[error(transparent)]
    TooManyRecords(#[from] enclave_linkage::TooManyRecords),
    #[error("spill file {0}")]
    Spill(String),
    #[error(
        "--memory-mb {limit_mb} is too small: linking {records} records needs at least {needed_mb} MB"
    )]
    NotEnoughMemory {
        limit_mb: u64,
        records: u64,
        needed_mb: u64,
    },
    #[error("release {release}: {PATH} is not readable", PATH = crate::person_keys::PERSON_KEYS_PATH)]
    PreviousPersons { release: String },
    #[error("--append: {0}")]
    Append(String),
    #[error("the ingest worker failed: {0}")]
    Worker(String),
}
