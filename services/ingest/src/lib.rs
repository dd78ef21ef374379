//! Ingest: identified extracts in, one pseudonymized, linked release out.
//!
//! This crate owns the path from the source systems' files to a published
//! release:
//! - [`extract`]: parsers of the UKE receipt, DPC and care files
//!   (`docs/extract-formats.md`), with errors naming file, line and field;
//! - `identity`: normalization of identifiers and their keyed linkage hashes
//!   (the only consumer of direct identifiers);
//! - `tables`: the catalog's tables built from parsed records, with direct
//!   identifiers dropped and quasi-identifiers generalized by catalog rule;
//! - [`ingest`]: the pipeline that links, builds, encodes zstd Parquet and
//!   publishes one atomic release through `enclave-store`, in two passes
//!   over the extracts with memory bounded by [`IngestOptions::memory_mb`]
//!   (`linking` spills keys to local disk and links them by partition),
//!   or adds new months to the newest release (`append`: the earlier
//!   months' key occurrences linked again, their files shared); parsing,
//!   keying and building the tables can go to worker processes shard by
//!   shard (`shards`, [`Workers`]), linkage staying in one;
//! - [`evaluate`]: linkage quality of a release against synthetic truth;
//! - [`optout`]: the release's opt-out index and the parsing of requests.

pub mod evaluate;
pub mod extract;
pub mod optout;

mod append;
mod budget;
mod error;
mod identity;
mod key_occurrences;
mod linkage_artifact;
mod linking;
mod person_keys;
mod pipeline;
mod progress;
mod record_ids;
mod shards;
mod spill;
mod summary;
mod tables;

pub use budget::DEFAULT_MEMORY_MB;
pub use error::IngestError;
pub use pipeline::{CATALOG_PATH, IngestOptions, LINKAGE_REPORT_PATH, ingest, table_stats};
pub use shards::{Workers, serve_shard_task};
pub use summary::{IngestSummary, PersonIdChanges, PhaseTimes};
