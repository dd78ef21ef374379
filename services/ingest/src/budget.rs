//! The memory budget of one ingest (`--memory-mb`) and how it is shared.
//!
//! What an ingest holds at once:
//! - a chunk of parsed extracts: in pass 1 with its records' keys, in
//!   pass 2 with its tables as Arrow and as Parquet (about
//!   [`HELD_PER_EXTRACT_BYTE`] bytes per byte of extract, measured);
//! - during linkage, three union-finds over records (the release's and the
//!   two baselines', 4 bytes a record each) and one group of key partitions
//!   decoded and sorted;
//! - while the tables are built, each record's cluster (4 bytes) and each
//!   person's id (8 bytes), beside the chunk.
//!
//! The chunk and partition sizes are cut to fit; when the per-record arrays
//! alone leave too little, the ingest stops before linking with
//! [`IngestError::NotEnoughMemory`] naming what it needs.

use enclave_linkage::KeyOccurrence;

use crate::error::IngestError;

/// The default of `--memory-mb`.
pub const DEFAULT_MEMORY_MB: u64 = 4096;

/// Bytes held per byte of extract while a chunk is parsed, built, sorted
/// and encoded (parsed records with their strings, Arrow columns, the
/// sorted copy and the Parquet bytes).
const HELD_PER_EXTRACT_BYTE: u64 = 12;

/// Share of the budget left for the allocator, the runtime and buffers.
const HEADROOM_PERCENT: u64 = 25;

/// Linkage arrays per record: three union-finds and a bit.
const LINKAGE_BYTES_PER_RECORD: u64 = 13;

/// Arrays kept per record while the tables are built: the cluster, and a
/// person id per cluster (at most one cluster per record).
const TABLE_BYTES_PER_RECORD: u64 = 12;

/// Extract bytes per key occurrence, a low estimate (a receipt of about
/// 700 bytes carries three or four keys), for the number of partitions.
const EXTRACT_BYTES_PER_OCCURRENCE: u64 = 150;

/// Extract bytes per chunk and worker thread at most, however large the
/// budget: bigger chunks only cost time (fresh memory to fault in and zero,
/// caches missed; measured in docs/linkage.md).
const CHUNK_BYTES_PER_THREAD: u64 = 16 << 20;

/// Decoded key occurrences per linkage group at most, however large the
/// budget: a larger group is only slower to sort.
const GROUP_BYTES_MAX: u64 = 512 << 20;

/// The smallest chunk or partition group worth working with.
const MIN_WORKING_BYTES: u64 = 4 << 20;

/// How one ingest divides its memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemoryBudget {
    limit_mb: u64,
    /// The budget less the headroom.
    usable: u64,
}

impl MemoryBudget {
    pub(crate) fn new(limit_mb: u64) -> MemoryBudget {
        let bytes = limit_mb.saturating_mul(1 << 20);
        MemoryBudget {
            limit_mb,
            usable: bytes / 100 * (100 - HEADROOM_PERCENT),
        }
    }

    /// Extract bytes per chunk in pass 1, when nothing else is held.
    pub(crate) fn chunk_bytes(&self) -> u64 {
        Self::chunk_fitting(self.usable)
    }

    /// Extract bytes per chunk in pass 2, beside the arrays of `records`.
    pub(crate) fn table_chunk_bytes(&self, records: u64) -> Result<u64, IngestError> {
        let left = self.left_after(records, TABLE_BYTES_PER_RECORD)?;
        Ok(Self::chunk_fitting(left))
    }

    /// The extract bytes of a chunk held in `bytes`, no more than the
    /// worker threads use well.
    fn chunk_fitting(bytes: u64) -> u64 {
        let threads = rayon::current_num_threads() as u64;
        (bytes / HELD_PER_EXTRACT_BYTE).clamp(1, CHUNK_BYTES_PER_THREAD * threads)
    }

    /// Decoded occurrences per partition group during linkage (half of what
    /// is left, the other half for the sort, and no more than
    /// [`GROUP_BYTES_MAX`]).
    pub(crate) fn partition_bytes(&self, records: u64) -> Result<u64, IngestError> {
        Ok((self.left_after(records, LINKAGE_BYTES_PER_RECORD)? / 2).min(GROUP_BYTES_MAX))
    }

    /// The number of key partitions for extracts of `extract_bytes` and
    /// `more` occurrences besides (the earlier months of an append): enough
    /// that one partition, decoded, takes a quarter of the budget or of
    /// [`GROUP_BYTES_MAX`] at most.
    pub(crate) fn partitions(&self, extract_bytes: u64, more: u64) -> usize {
        let occurrences = extract_bytes / EXTRACT_BYTES_PER_OCCURRENCE + more;
        let decoded = occurrences * size_of::<KeyOccurrence>() as u64;
        let per_partition = (self.usable / 4).clamp(1, GROUP_BYTES_MAX / 4);
        decoded
            .div_ceil(per_partition)
            .next_power_of_two()
            .clamp(16, 1 << 16) as usize
    }

    /// What the budget leaves beside `per_record` bytes for each record.
    fn left_after(&self, records: u64, per_record: u64) -> Result<u64, IngestError> {
        let arrays = records.saturating_mul(per_record);
        match self.usable.checked_sub(arrays) {
            Some(left) if left >= MIN_WORKING_BYTES => Ok(left),
            _ => Err(IngestError::NotEnoughMemory {
                limit_mb: self.limit_mb,
                records,
                needed_mb: (arrays + MIN_WORKING_BYTES) / (100 - HEADROOM_PERCENT) * 100
                    / (1 << 20)
                    + 1,
            }),
        }
    }
}
