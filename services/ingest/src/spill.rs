//! Spill files: what an ingest keeps on local disk between its passes.
//!
//! Pass 1 writes every record's linkage keys as [`KeyOccurrence`]s into one
//! file per key partition; linkage reads them back a few partitions at a
//! time, and the baselines' cluster labels wait in files of their own until
//! the linkage artifact is written. The second sweep writes each person's
//! distinct keys ([`ClusterKeyFile`]) until the person ids are known. Spill files hold keyed hashes, record
//! numbers and months, never an identifier, in a directory only the owner
//! can read, removed when the ingest ends (unless kept for inspection).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use enclave_linkage::{KeyHash, KeyKind, KeyOccurrence, partition_of};

use crate::error::IngestError;

/// Buffer of each partition writer.
const WRITER_BUFFER: usize = 64 * 1024;

/// Prefix of every spill directory's name.
const SPILL_DIR_PREFIX: &str = "enclave-ingest-";
/// The file a running ingest holds locked inside its spill directory.
const LOCK_FILE: &str = "lock";

/// The spill directory of one ingest.
///
/// The ingest holds an exclusive lock on a file inside it while it runs, so
/// a directory whose lock can be taken was left by an ingest that died
/// (a kill, a power cut); the next ingest under the same root removes it.
#[derive(Debug)]
pub(crate) struct SpillDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    lock: Option<File>,
}

impl SpillDir {
    /// A fresh directory under `root` only the owner can enter, after
    /// removing those that dead ingests left there; kept after the ingest
    /// when `keep` is set.
    pub(crate) fn create(root: &Path, keep: bool) -> Result<SpillDir, IngestError> {
        std::fs::create_dir_all(root).map_err(|e| spill_error(root, &e))?;
        remove_abandoned(root);
        let mut builder = tempfile::Builder::new();
        builder.prefix(SPILL_DIR_PREFIX);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o700));
        }
        let dir = builder
            .tempdir_in(root)
            .map_err(|e| spill_error(root, &e))?;
        // Absolute, so that workers started elsewhere find it.
        let path = std::path::absolute(dir.path()).map_err(|e| spill_error(root, &e))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = File::create(&lock_path).map_err(|e| spill_error(&lock_path, &e))?;
        lock.lock().map_err(|e| spill_error(&lock_path, &e))?;
        Ok(SpillDir {
            dir: if keep {
                let _ = dir.keep();
                None
            } else {
                Some(dir)
            },
            path,
            lock: Some(lock),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of every file in the directory, the workers' directories
    /// inside it included.
    pub(crate) fn bytes(&self) -> u64 {
        bytes_under(&self.path)
    }
}

fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            Some(match meta.is_dir() {
                true => bytes_under(&entry.path()),
                false => meta.len(),
            })
        })
        .sum()
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        // A kept directory loses its lock file, so no later ingest sweeps it.
        drop(self.lock.take());
        let _ = std::fs::remove_file(self.path.join(LOCK_FILE));
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// Removes the spill directories under `root` whose ingest has died: those
/// whose lock file exists and can be locked. A directory without a lock
/// file is being created, or was kept on purpose, and stays.
fn remove_abandoned(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let named_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(SPILL_DIR_PREFIX));
        if !named_ours || !path.is_dir() {
            continue;
        }
        let Ok(lock) = File::open(path.join(LOCK_FILE)) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {
                    tracing::info!(dir = %path.display(), "removed the spill directory of an ingest that died")
                }
                Err(error) => {
                    tracing::warn!(dir = %path.display(), %error, "could not remove the spill directory of an ingest that died")
                }
            }
        }
    }
}

pub(crate) fn spill_error(path: &Path, error: &std::io::Error) -> IngestError {
    IngestError::Spill(format!("{}: {error}", path.display()))
}

/// Key occurrences spilled by partition of their hash: each partition is
/// one file per writer (the coordinator's, and each pass-1 worker's when
/// the ingest is sharded, `crate::shards`), each with the number its
/// records are offset by.
#[derive(Debug)]
pub(crate) struct OccurrenceFiles {
    partitions: Vec<Vec<PartitionFile>>,
}

/// One writer's file of a key partition.
#[derive(Debug, Clone)]
struct PartitionFile {
    path: PathBuf,
    /// Added to the record number of every occurrence read from it.
    record_offset: u32,
}

/// Writes occurrences into their partitions' files.
#[derive(Debug)]
pub(crate) struct OccurrenceWriter {
    paths: Vec<PathBuf>,
    writers: Vec<BufWriter<File>>,
    scratch: Vec<u8>,
}

impl OccurrenceWriter {
    /// One file per partition in `dir`.
    pub(crate) fn create(dir: &Path, partitions: usize) -> Result<OccurrenceWriter, IngestError> {
        let paths: Vec<PathBuf> = (0..partitions)
            .map(|p| dir.join(format!("keys-{p:05}.bin")))
            .collect();
        let writers = paths
            .iter()
            .map(|path| {
                File::create(path)
                    .map(|file| BufWriter::with_capacity(WRITER_BUFFER, file))
                    .map_err(|e| spill_error(path, &e))
            })
            .collect::<Result<_, _>>()?;
        Ok(OccurrenceWriter {
            paths,
            writers,
            scratch: Vec::with_capacity(KeyOccurrence::ENCODED_BYTES),
        })
    }

    pub(crate) fn write(&mut self, occurrence: &KeyOccurrence) -> Result<(), IngestError> {
        let partition = partition_of(&occurrence.hash, self.writers.len());
        self.scratch.clear();
        occurrence.encode(&mut self.scratch);
        self.writers[partition]
            .write_all(&self.scratch)
            .map_err(|e| spill_error(&self.paths[partition], &e))
    }

    pub(crate) fn finish(self) -> Result<OccurrenceFiles, IngestError> {
        for (writer, path) in self.writers.into_iter().zip(&self.paths) {
            writer
                .into_inner()
                .map_err(|e| spill_error(path, e.error()))?;
        }
        Ok(OccurrenceFiles::in_dir_paths(self.paths, 0))
    }
}

impl OccurrenceFiles {
    fn in_dir_paths(paths: Vec<PathBuf>, record_offset: u32) -> OccurrenceFiles {
        OccurrenceFiles {
            partitions: paths
                .into_iter()
                .map(|path| {
                    vec![PartitionFile {
                        path,
                        record_offset,
                    }]
                })
                .collect(),
        }
    }

    /// The `partitions` files an [`OccurrenceWriter`] left in `dir`, whose
    /// records are numbered from `first_record`.
    pub(crate) fn written_in(
        dir: &Path,
        partitions: usize,
        first_record: usize,
    ) -> Result<OccurrenceFiles, IngestError> {
        let record_offset = u32::try_from(first_record).map_err(|_| {
            IngestError::Spill(format!("{}: record numbers overflow", dir.display()))
        })?;
        let paths = (0..partitions)
            .map(|p| dir.join(format!("keys-{p:05}.bin")))
            .collect();
        Ok(OccurrenceFiles::in_dir_paths(paths, record_offset))
    }

    /// The partitions of `self` followed, partition by partition, by those
    /// of `more` (written with the same number of partitions).
    pub(crate) fn append(&mut self, more: OccurrenceFiles) {
        for (files, more) in self.partitions.iter_mut().zip(more.partitions) {
            files.extend(more);
        }
    }

    /// The number of key partitions.
    pub(crate) fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// Occurrences of one partition, from its files' sizes.
    fn count(&self, partition: usize) -> Result<u64, IngestError> {
        self.partitions[partition]
            .iter()
            .map(|file| {
                let len = std::fs::metadata(&file.path)
                    .map_err(|e| spill_error(&file.path, &e))?
                    .len();
                Ok(len / KeyOccurrence::ENCODED_BYTES as u64)
            })
            .sum()
    }

    /// Partitions grouped so each group's occurrences take at most
    /// `budget_bytes` in memory (a partition larger than that on its own).
    pub(crate) fn groups(&self, budget_bytes: u64) -> Result<Vec<Vec<usize>>, IngestError> {
        let in_memory = size_of::<KeyOccurrence>() as u64;
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_bytes = 0;
        for partition in 0..self.partitions() {
            let bytes = self.count(partition)? * in_memory;
            if groups.is_empty() || group_bytes + bytes > budget_bytes {
                groups.push(Vec::new());
                group_bytes = 0;
            }
            group_bytes += bytes;
            groups.last_mut().expect("pushed").push(partition);
        }
        Ok(groups)
    }

    /// How many occurrences the partitions of `group` hold.
    pub(crate) fn group_count(&self, group: &[usize]) -> Result<usize, IngestError> {
        let total = group
            .iter()
            .map(|&p| self.count(p))
            .sum::<Result<u64, _>>()?;
        Ok(total as usize)
    }

    /// Calls `visit` with every occurrence of the partitions of `group`,
    /// its record numbered as in the whole ingest, holding none.
    pub(crate) fn for_each(
        &self,
        group: &[usize],
        mut visit: impl FnMut(KeyOccurrence),
    ) -> Result<(), IngestError> {
        for file in group.iter().flat_map(|&p| &self.partitions[p]) {
            read_occurrences(&file.path, |mut occurrence| {
                occurrence.record += file.record_offset;
                visit(occurrence)
            })?;
        }
        Ok(())
    }
}

/// Calls `visit` with every occurrence of a partition's file.
fn read_occurrences(path: &Path, mut visit: impl FnMut(KeyOccurrence)) -> Result<(), IngestError> {
    let file = File::open(path).map_err(|e| spill_error(path, &e))?;
    let len = file.metadata().map_err(|e| spill_error(path, &e))?.len();
    let not_occurrences = || IngestError::Spill(format!("{}: not key occurrences", path.display()));
    if len % KeyOccurrence::ENCODED_BYTES as u64 != 0 {
        return Err(not_occurrences());
    }
    // Reads of whole occurrences, 64 KiB at a time, decoded in place.
    let block = KeyOccurrence::ENCODED_BYTES * (WRITER_BUFFER / KeyOccurrence::ENCODED_BYTES);
    let mut buffer = vec![0u8; block];
    let mut reader = file;
    let mut left = len as usize;
    while left > 0 {
        let bytes = &mut buffer[..left.min(block)];
        reader
            .read_exact(bytes)
            .map_err(|e| spill_error(path, &e))?;
        for encoded in bytes.chunks_exact(KeyOccurrence::ENCODED_BYTES) {
            visit(KeyOccurrence::decode(encoded).ok_or_else(not_occurrences)?);
        }
        left -= bytes.len();
    }
    Ok(())
}

/// Cluster labels (one u32 per record) kept on disk.
#[derive(Debug)]
pub(crate) struct LabelFile {
    path: PathBuf,
}

impl LabelFile {
    pub(crate) fn write(
        dir: &SpillDir,
        name: &str,
        labels: &[u32],
    ) -> Result<LabelFile, IngestError> {
        let path = dir.path().join(format!("{name}.labels"));
        let file = File::create(&path).map_err(|e| spill_error(&path, &e))?;
        let mut writer = BufWriter::with_capacity(WRITER_BUFFER, file);
        for label in labels {
            writer
                .write_all(&label.to_le_bytes())
                .map_err(|e| spill_error(&path, &e))?;
        }
        writer
            .into_inner()
            .map_err(|e| spill_error(&path, e.error()))?;
        Ok(LabelFile { path })
    }

    /// A reader handing out the labels in order.
    pub(crate) fn reader(&self) -> Result<LabelReader, IngestError> {
        let file = File::open(&self.path).map_err(|e| spill_error(&self.path, &e))?;
        Ok(LabelReader {
            path: self.path.clone(),
            reader: BufReader::with_capacity(WRITER_BUFFER, file),
        })
    }
}

/// Reads a [`LabelFile`] in order.
#[derive(Debug)]
pub(crate) struct LabelReader {
    path: PathBuf,
    reader: BufReader<File>,
}

impl LabelReader {
    pub(crate) fn next_label(&mut self) -> Result<u32, IngestError> {
        let mut bytes = [0u8; 4];
        self.reader
            .read_exact(&mut bytes)
            .map_err(|e| spill_error(&self.path, &e))?;
        Ok(u32::from_le_bytes(bytes))
    }
}

/// A key held by a cluster: the key, its kind, the cluster.
pub(crate) type ClusterKey = (KeyHash, KeyKind, u32);

/// Bytes of one [`ClusterKey`] on disk.
const CLUSTER_KEY_BYTES: usize = 1 + 16 + 4;

/// Distinct (key, cluster) pairs, on disk.
#[derive(Debug)]
pub(crate) struct ClusterKeyFile {
    path: PathBuf,
}

/// Writes a [`ClusterKeyFile`].
#[derive(Debug)]
pub(crate) struct ClusterKeyWriter {
    path: PathBuf,
    writer: BufWriter<File>,
}

impl ClusterKeyWriter {
    pub(crate) fn create(dir: &SpillDir) -> Result<ClusterKeyWriter, IngestError> {
        let path = dir.path().join("cluster-keys.bin");
        let file = File::create(&path).map_err(|e| spill_error(&path, &e))?;
        Ok(ClusterKeyWriter {
            writer: BufWriter::with_capacity(WRITER_BUFFER, file),
            path,
        })
    }

    pub(crate) fn write(&mut self, (hash, kind, cluster): &ClusterKey) -> Result<(), IngestError> {
        let mut bytes = [0u8; CLUSTER_KEY_BYTES];
        bytes[0] = *kind as u8;
        bytes[1..17].copy_from_slice(&hash.0);
        bytes[17..].copy_from_slice(&cluster.to_le_bytes());
        self.writer
            .write_all(&bytes)
            .map_err(|e| spill_error(&self.path, &e))
    }

    pub(crate) fn finish(self) -> Result<ClusterKeyFile, IngestError> {
        self.writer
            .into_inner()
            .map_err(|e| spill_error(&self.path, e.error()))?;
        Ok(ClusterKeyFile { path: self.path })
    }
}

impl ClusterKeyFile {
    /// Hands the pairs to `visit` in order, `batch` at a time.
    pub(crate) fn for_each_batch(
        &self,
        batch: usize,
        mut visit: impl FnMut(&[ClusterKey]) -> Result<(), IngestError>,
    ) -> Result<(), IngestError> {
        let file = File::open(&self.path).map_err(|e| spill_error(&self.path, &e))?;
        let mut reader = BufReader::with_capacity(WRITER_BUFFER, file);
        let mut pending = Vec::with_capacity(batch);
        let mut bytes = [0u8; CLUSTER_KEY_BYTES];
        loop {
            match reader.read_exact(&mut bytes) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(spill_error(&self.path, &e)),
            }
            let kind = KeyKind::from_code(bytes[0]).ok_or_else(|| {
                IngestError::Spill(format!("{}: not a cluster key", self.path.display()))
            })?;
            let hash = KeyHash(bytes[1..17].try_into().expect("16 bytes"));
            let cluster = u32::from_le_bytes(bytes[17..].try_into().expect("4 bytes"));
            pending.push((hash, kind, cluster));
            if pending.len() == batch {
                visit(&pending)?;
                pending.clear();
            }
        }
        if !pending.is_empty() {
            visit(&pending)?;
        }
        Ok(())
    }
}
