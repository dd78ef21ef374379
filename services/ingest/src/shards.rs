//! Worker processes sharing the passes over the extracts (`--workers N`).
//!
//! Linkage is the one serial step of an ingest; parsing, keying and
//! building the tables go shard by shard. A shard is a contiguous run of
//! the plan's units, so the shards' records one after another are the
//! ingest's records in canonical order, and a [`ShardTask`] names one
//! shard and one pass:
//! - keys (pass 1): parse and key the shard's units and spill their key
//!   occurrences into the task's directory, numbering its records from 0;
//!   the coordinator offsets them when linkage reads the partitions
//!   (`crate::spill::OccurrenceFiles`);
//! - tables (pass 2): parse the shard's chunks again, read each record's
//!   `person_id` and record id from the file the coordinator wrote after
//!   linkage, and encode the chunks' rows of every table as Parquet files
//!   in the task's directory; the coordinator writes them into the staged
//!   release, so only it ever touches the store.
//!
//! A task is JSON holding paths and counts, never an identifier or a key:
//! the worker reads the steward's key as the coordinator did (the command
//! it is started with says where) and refuses a key whose fingerprint is
//! not the task's, and it refuses extracts that are not the ones the
//! coordinator planned. A task could as well be run by a batch scheduler
//! on another machine that sees the same extract and spill directories
//! (docs/linkage.md, *Worker processes*).
//!
//! The coordinator writes a task as one line on the worker's standard input
//! and holds the pipe open until the worker exits. The end of that input
//! tells the worker its ingest is gone (killed, or stopped on another
//! worker's error), and it stops at once instead of running on for a
//! release nobody will publish.

use std::fs::File;
use std::io::{BufRead, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use enclave_catalog::Catalog;
use enclave_linkage::LinkageKeys;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::error::IngestError;
use crate::extract::{ExtractPlan, ExtractUnit, chunk_units, plan_extracts};
use crate::linking::{KeyedUnits, Linked, key_units};
use crate::pipeline::{BuiltChunk, Chunk, ChunkIds, ChunkTables, ReleaseInput, build_chunk};
use crate::progress::Progress;
use crate::spill::{OccurrenceWriter, SpillDir, spill_error};
use crate::summary::peak_resident_bytes;

/// Bytes of one record in the ids file: its `person_id` and record id.
const ID_PAIR_BYTES: usize = 16;

/// How often the coordinator looks at its workers.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Where a worker writes its result, inside its task's directory.
const RESULT_FILE: &str = "result.json";
/// Where a worker's standard error goes, inside its task's directory.
const STDERR_FILE: &str = "stderr.log";
/// The longest task line a worker reads (a task names units by index, so
/// even an NDB year's is far smaller).
const MAX_TASK_BYTES: u64 = 16 * 1024 * 1024;
/// A worker's exit code when its ingest went away before it finished.
const EXIT_INGEST_GONE: i32 = 3;

/// Worker processes of one ingest.
#[derive(Debug, Clone)]
pub struct Workers {
    /// Processes at once (at least 1).
    pub count: usize,
    /// Starts one worker: it reads a task on its standard input and
    /// runs it with [`serve_shard_task`].
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Starts each worker elsewhere (a batch scheduler's step, a remote
    /// shell): run with the worker's program and arguments as its own, and
    /// `ENCLAVE_WORKER_PASS` and `ENCLAVE_WORKER_INDEX` in its environment. It
    /// hands its standard input to the worker and exits when the worker
    /// does, with its status. None: workers are processes of this machine.
    pub launcher: Option<PathBuf>,
}

/// The environment variable naming a launched worker's pass (`keys` or
/// `tables`).
const WORKER_PASS_VAR: &str = "ENCLAVE_WORKER_PASS";
/// The environment variable holding a launched worker's shard number (from
/// 0), which a launcher may use to place it.
const WORKER_INDEX_VAR: &str = "ENCLAVE_WORKER_INDEX";

/// One pass over one shard, as a worker receives it.
#[derive(Debug, Serialize, Deserialize)]
struct ShardTask {
    extracts: PathBuf,
    key_fingerprint: String,
    /// The coordinator's plan of the extracts, which the worker's must match.
    plan_units: usize,
    plan_bytes: u64,
    /// The shard: these units of the plan.
    units: Range<usize>,
    /// Extract bytes per chunk at most.
    chunk_bytes: u64,
    /// Worker threads (0: as many as the worker's machine has).
    threads: usize,
    /// Where the worker writes its files and its result.
    dir: PathBuf,
    pass: ShardPass,
}

#[derive(Debug, Serialize, Deserialize)]
enum ShardPass {
    /// Spill key occurrences into this many partitions.
    Keys { partitions: usize },
    /// Build the tables' files of these chunks.
    Tables {
        /// The catalog, as JSON.
        catalog: PathBuf,
        /// Every record's `person_id` and record id (little-endian i64
        /// pairs, from the extracts' first record).
        ids: PathBuf,
        /// Each chunk of the shard: its name and its first record in `ids`.
        chunks: Vec<(String, usize)>,
    },
}

impl ShardPass {
    /// The pass's name, as in its shards' directories.
    fn name(&self) -> &'static str {
        match self {
            Self::Keys { .. } => "keys",
            Self::Tables { .. } => "tables",
        }
    }
}

/// What a worker hands back: its result and its peak resident set.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerReport {
    result: ShardResult,
    peak_memory_bytes: u64,
}

/// The results of one pass's workers, in shard order, and the largest
/// peak resident set among them.
struct PassResults {
    results: Vec<ShardResult>,
    peak_memory_bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
enum ShardResult {
    Keys(KeyedUnits),
    /// Each chunk's tables, and its files (path inside the task's
    /// directory and the release, rows).
    Tables(Vec<(ChunkTables, Vec<(String, u64)>)>),
}

/// What every pass-2 worker reads beside the extracts.
struct TableFiles<'a> {
    /// The catalog, as JSON.
    catalog: PathBuf,
    /// Every new record's ids.
    ids: PathBuf,
    /// Prefix of the chunks' file names.
    prefix: &'a str,
    /// Records of each chunk.
    chunk_records: &'a [usize],
}

/// One shard's table files, written by a worker.
#[derive(Debug)]
pub(crate) struct ShardTables {
    pub(crate) dir: PathBuf,
    pub(crate) chunks: Vec<(ChunkTables, Vec<(String, u64)>)>,
}

impl Workers {
    /// Pass 1 by shard, each worker with its share of `chunk_bytes`: each
    /// shard's spill directory and what it keyed, in shard order, and the
    /// workers' peak resident set.
    pub(crate) fn spill_keys(
        &self,
        plan: &ExtractPlan,
        keys: &LinkageKeys,
        chunk_bytes: u64,
        partitions: usize,
        spill: &SpillDir,
    ) -> Result<(Vec<(PathBuf, KeyedUnits)>, u64), IngestError> {
        let chunk_bytes = self.share_of(chunk_bytes);
        let sizes: Vec<u64> = plan.units.iter().map(|(_, size)| *size).collect();
        let tasks = split_evenly(&sizes, self.count)
            .into_iter()
            .enumerate()
            .map(|(index, units)| {
                let pass = ShardPass::Keys { partitions };
                let dir = shard_dir(spill, &pass, index)?;
                Ok(self.task(plan, keys, units, chunk_bytes, dir, pass))
            })
            .collect::<Result<Vec<_>, IngestError>>()?;
        let done = self.run_all(&tasks, "keying extracts")?;
        let shards = tasks
            .into_iter()
            .zip(done.results)
            .map(|(task, result)| match result {
                ShardResult::Keys(keyed) => Ok((task.dir, keyed)),
                ShardResult::Tables(_) => Err(unexpected_result()),
            })
            .collect::<Result<_, _>>()?;
        Ok((shards, done.peak_memory_bytes))
    }

    /// Pass 2 by shard: writes every new record's ids for the workers
    /// (`ids` of a run of records numbered as `linked` numbers them), then
    /// has them build chunks of their share of `chunk_bytes`, named
    /// `{prefix}{index}`. The shards' files, and the workers' peak
    /// resident set.
    pub(crate) fn build_tables(
        &self,
        input: &ReleaseInput<'_>,
        prefix: &str,
        chunk_bytes: u64,
        linked: &Linked,
        ids: impl Fn(Range<usize>) -> Result<ChunkIds, IngestError>,
    ) -> Result<(Vec<ShardTables>, u64), IngestError> {
        let chunk_bytes = self.share_of(chunk_bytes);
        let chunks = input.plan.chunks(chunk_bytes);
        let ids_path = input.spill.path().join("record-ids.bin");
        let chunk_records = write_ids(&ids_path, &chunks, linked, ids)?;
        let catalog = input.spill.path().join("catalog.json");
        std::fs::write(
            &catalog,
            serde_json::to_vec(input.catalog).map_err(worker_error)?,
        )
        .map_err(|e| spill_error(&catalog, &e))?;
        let files = TableFiles {
            catalog,
            ids: ids_path,
            prefix,
            chunk_records: &chunk_records,
        };
        let tasks = self.table_tasks(input, &chunks, chunk_bytes, &files)?;
        let done = self.run_all(&tasks, "building tables")?;
        let mut expected = chunk_records.iter();
        let mut shards = Vec::with_capacity(tasks.len());
        for (task, result) in tasks.into_iter().zip(done.results) {
            let ShardResult::Tables(chunks) = result else {
                return Err(unexpected_result());
            };
            if chunks
                .iter()
                .any(|(chunk, _)| Some(&chunk.records) != expected.next())
            {
                return Err(IngestError::Worker(
                    "the extracts changed between the passes".into(),
                ));
            }
            shards.push(ShardTables {
                dir: task.dir,
                chunks,
            });
        }
        Ok((shards, done.peak_memory_bytes))
    }

    /// One task per shard of `chunks` (about equal bytes each).
    fn table_tasks(
        &self,
        input: &ReleaseInput<'_>,
        chunks: &[&[(ExtractUnit, u64)]],
        chunk_bytes: u64,
        files: &TableFiles<'_>,
    ) -> Result<Vec<ShardTask>, IngestError> {
        let sizes: Vec<u64> = chunks
            .iter()
            .map(|units| units.iter().map(|(_, size)| size).sum())
            .collect();
        let first_records: Vec<usize> = files
            .chunk_records
            .iter()
            .scan(0, |next, records| {
                let first = *next;
                *next += records;
                Some(first)
            })
            .collect();
        let mut first_unit = 0;
        let mut tasks = Vec::new();
        for (index, shard) in split_evenly(&sizes, self.count).into_iter().enumerate() {
            let units: usize = chunks[shard.clone()].iter().map(|units| units.len()).sum();
            let units = first_unit..first_unit + units;
            first_unit = units.end;
            let pass = ShardPass::Tables {
                catalog: files.catalog.clone(),
                ids: files.ids.clone(),
                chunks: shard
                    .map(|chunk| (format!("{}{chunk}", files.prefix), first_records[chunk]))
                    .collect(),
            };
            let dir = shard_dir(input.spill, &pass, index)?;
            tasks.push(self.task(input.plan, input.keys, units, chunk_bytes, dir, pass));
        }
        Ok(tasks)
    }

    /// Threads of one worker: a share of this machine's when the workers
    /// run on it, else 0 (as many as the worker's machine has).
    fn threads_each(&self) -> usize {
        match self.launcher {
            Some(_) => 0,
            None => (rayon::current_num_threads() / self.count).max(1),
        }
    }

    /// One worker's share of the chunk bytes one process may hold: the
    /// workers run at once within the same budget.
    fn share_of(&self, chunk_bytes: u64) -> u64 {
        (chunk_bytes / self.count as u64).max(1)
    }

    fn task(
        &self,
        plan: &ExtractPlan,
        keys: &LinkageKeys,
        units: Range<usize>,
        chunk_bytes: u64,
        dir: PathBuf,
        pass: ShardPass,
    ) -> ShardTask {
        ShardTask {
            extracts: plan.root.clone(),
            key_fingerprint: keys.fingerprint(),
            plan_units: plan.units.len(),
            plan_bytes: plan.bytes,
            units,
            chunk_bytes,
            threads: self.threads_each(),
            dir,
            pass,
        }
    }

    /// Runs every task in its own worker at once; the results in task
    /// order. The first worker to fail stops the others.
    #[expect(
        clippy::disallowed_methods,
        reason = "polls child processes on a blocking thread (the passes run in block_in_place)"
    )]
    fn run_all(
        &self,
        tasks: &[ShardTask],
        phase: &'static str,
    ) -> Result<PassResults, IngestError> {
        let progress = Progress::steps(phase, tasks.len() as u64);
        let mut running = Vec::with_capacity(tasks.len());
        for (index, task) in tasks.iter().enumerate() {
            match self.start(task, index) {
                Ok(child) => running.push(Some(child)),
                Err(error) => {
                    stop(&mut running);
                    return Err(error);
                }
            }
        }
        info!(workers = tasks.len(), phase, "workers started");
        let mut left = tasks.len();
        while left > 0 {
            for (index, slot) in running.iter_mut().enumerate() {
                let Some(child) = slot else { continue };
                let status = child.try_wait().map_err(worker_error)?;
                let Some(status) = status else { continue };
                *slot = None;
                left -= 1;
                progress.advance(1);
                if !status.success() {
                    stop(&mut running);
                    return Err(failure(index, &tasks[index].dir));
                }
            }
            if left > 0 {
                std::thread::sleep(POLL_INTERVAL);
            }
        }
        progress.finish();
        let reports = tasks
            .iter()
            .map(|task| read_report(&task.dir))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PassResults {
            peak_memory_bytes: reports
                .iter()
                .map(|r| r.peak_memory_bytes)
                .max()
                .unwrap_or(0),
            results: reports.into_iter().map(|r| r.result).collect(),
        })
    }

    /// The command starting one worker: the program itself, or the
    /// launcher with the program and its arguments as its own.
    fn command(&self, pass: &str, index: usize) -> Command {
        let Some(launcher) = &self.launcher else {
            let mut command = Command::new(&self.program);
            command.args(&self.args);
            return command;
        };
        let mut command = Command::new(launcher);
        command
            .arg(&self.program)
            .args(&self.args)
            .env(WORKER_PASS_VAR, pass)
            .env(WORKER_INDEX_VAR, index.to_string());
        command
    }

    fn start(&self, task: &ShardTask, index: usize) -> Result<Child, IngestError> {
        let stderr = File::create(task.dir.join(STDERR_FILE)).map_err(worker_error)?;
        let started = self.launcher.as_ref().unwrap_or(&self.program);
        let mut child = self
            .command(task.pass.name(), index)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| IngestError::Worker(format!("cannot start {}: {e}", started.display())))?;
        // The pipe stays open inside `child` until it is reaped.
        let written = match child.stdin.as_mut() {
            Some(stdin) => write_task(stdin, task),
            None => Err(IngestError::Worker("a worker without an input".into())),
        };
        if let Err(error) = written {
            let _ = child.kill();
            let _ = child.wait();
            // One that ended before reading its task (a launcher that could
            // not place it) said why on its standard error.
            return Err(last_words(&task.dir).map_or(error, |line| {
                IngestError::Worker(format!("worker {index}: {line}"))
            }));
        }
        Ok(child)
    }
}

/// Writes `task` as one line.
fn write_task(input: &mut impl Write, task: &ShardTask) -> Result<(), IngestError> {
    let mut line = serde_json::to_vec(task).map_err(worker_error)?;
    line.push(b'\n');
    input.write_all(&line).map_err(worker_error)?;
    input.flush().map_err(worker_error)
}

/// Kills and reaps the workers still running.
fn stop(running: &mut [Option<Child>]) {
    for mut child in running.iter_mut().filter_map(Option::take) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A failed worker's error: the last line it wrote (errors name file,
/// line and field, never a value).
fn failure(index: usize, dir: &Path) -> IngestError {
    let last = last_words(dir).unwrap_or_else(|| "it exited without a word".to_owned());
    IngestError::Worker(format!("worker {index}: {last}"))
}

/// The last line a worker (or its launcher) wrote on its standard error.
fn last_words(dir: &Path) -> Option<String> {
    let written = std::fs::read_to_string(dir.join(STDERR_FILE)).ok()?;
    let last = written.lines().rev().find(|line| !line.trim().is_empty())?;
    Some(last.strip_prefix("error: ").unwrap_or(last).to_owned())
}

fn read_report(dir: &Path) -> Result<WorkerReport, IngestError> {
    let path = dir.join(RESULT_FILE);
    let bytes = std::fs::read(&path)
        .map_err(|e| IngestError::Worker(format!("{}: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(worker_error)
}

fn unexpected_result() -> IngestError {
    IngestError::Worker("a worker answered another pass".into())
}

fn worker_error(error: impl std::fmt::Display) -> IngestError {
    IngestError::Worker(error.to_string())
}

/// A fresh directory for one shard's files of `pass` inside the spill
/// directory.
fn shard_dir(spill: &SpillDir, pass: &ShardPass, index: usize) -> Result<PathBuf, IngestError> {
    let dir = spill.path().join(format!("{}-{index:03}", pass.name()));
    std::fs::create_dir(&dir).map_err(|e| spill_error(&dir, &e))?;
    Ok(dir)
}

/// `sizes` cut into at most `parts` contiguous runs of about equal sums
/// (none empty).
fn split_evenly(sizes: &[u64], parts: usize) -> Vec<Range<usize>> {
    let total: u64 = sizes.iter().sum();
    let mut runs = Vec::with_capacity(parts);
    let (mut start, mut sum) = (0, 0u64);
    for (index, size) in sizes.iter().enumerate() {
        sum += size;
        let target = total.div_ceil(parts as u64) * (runs.len() as u64 + 1);
        if sum >= target && runs.len() + 1 < parts {
            runs.push(start..index + 1);
            start = index + 1;
        }
    }
    if start < sizes.len() {
        runs.push(start..sizes.len());
    }
    runs
}

/// Writes the ids of every chunk's records into `path`, chunk by chunk;
/// returns each chunk's number of records.
fn write_ids(
    path: &Path,
    chunks: &[&[(ExtractUnit, u64)]],
    linked: &Linked,
    ids: impl Fn(Range<usize>) -> Result<ChunkIds, IngestError>,
) -> Result<Vec<usize>, IngestError> {
    let io_error = |e: std::io::Error| spill_error(path, &e);
    let mut out = BufWriter::new(File::create(path).map_err(io_error)?);
    let mut unit_records = linked.unit_records.iter();
    let mut counts = Vec::with_capacity(chunks.len());
    let mut next = linked.base_records;
    for chunk in chunks {
        let records = unit_records.by_ref().take(chunk.len()).sum::<u64>() as usize;
        let (person_ids, record_ids) = ids(next..next + records)?;
        for (person, record) in person_ids.iter().zip(&record_ids) {
            out.write_all(&person.to_le_bytes()).map_err(io_error)?;
            out.write_all(&record.to_le_bytes()).map_err(io_error)?;
        }
        counts.push(records);
        next += records;
    }
    out.into_inner().map_err(|e| io_error(e.into_error()))?;
    Ok(counts)
}

/// Reads the ids of `records` from the ids file.
fn read_ids(path: &Path, records: Range<usize>) -> Result<ChunkIds, IngestError> {
    let io_error = |e: std::io::Error| spill_error(path, &e);
    let mut file = File::open(path).map_err(io_error)?;
    file.seek(SeekFrom::Start((records.start * ID_PAIR_BYTES) as u64))
        .map_err(io_error)?;
    let mut bytes = vec![0u8; records.len() * ID_PAIR_BYTES];
    file.read_exact(&mut bytes).map_err(|_| {
        IngestError::Worker("the extracts hold more records than pass 1 counted".into())
    })?;
    let pair = |chunk: &[u8], at: usize| {
        i64::from_le_bytes(chunk[at..at + 8].try_into().expect("8 bytes"))
    };
    Ok(bytes
        .chunks_exact(ID_PAIR_BYTES)
        .map(|chunk| (pair(chunk, 0), pair(chunk, 8)))
        .unzip())
}

/// The worker's side: reads the task line the coordinator wrote on standard
/// input and runs it with the steward's `keys`, writing the result into the
/// task's directory. Exits the process (code 3) as soon as that input ends,
/// which happens only when the coordinator is gone.
pub fn serve_shard_task(keys: &LinkageKeys) -> Result<(), IngestError> {
    let mut task = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_TASK_BYTES)
        .read_until(b'\n', &mut task)
        .map_err(|e| IngestError::Worker(format!("cannot read the task: {e}")))?;
    std::thread::spawn(exit_when_the_coordinator_is_gone);
    run_shard_task(&task, keys)
}

/// Blocks until standard input ends, then exits the process. The
/// coordinator writes nothing after the task, so a read returns only then.
fn exit_when_the_coordinator_is_gone() {
    let mut byte = [0u8; 1];
    while matches!(std::io::stdin().read(&mut byte), Ok(1)) {}
    tracing::warn!("the ingest that started this worker is gone; stopping");
    std::process::exit(EXIT_INGEST_GONE);
}

/// Runs one task in this process: `task` is the JSON the coordinator wrote.
fn run_shard_task(task: &[u8], keys: &LinkageKeys) -> Result<(), IngestError> {
    let task: ShardTask = serde_json::from_slice(task)
        .map_err(|e| IngestError::Worker(format!("not a shard task: {e}")))?;
    if task.key_fingerprint != keys.fingerprint() {
        return Err(IngestError::Worker(
            "the key is not the one the ingest was started with".into(),
        ));
    }
    let plan = plan_extracts(&task.extracts)?;
    if plan.units.len() != task.plan_units
        || plan.bytes != task.plan_bytes
        || task.units.end > plan.units.len()
    {
        return Err(IngestError::Worker(
            "the extracts changed since the ingest planned them".into(),
        ));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(task.threads)
        .build()
        .map_err(worker_error)?;
    let units = &plan.units[task.units.clone()];
    let report = WorkerReport {
        result: pool.install(|| run_pass(&task, units, keys))?,
        peak_memory_bytes: peak_resident_bytes(),
    };
    let path = task.dir.join(RESULT_FILE);
    std::fs::write(&path, serde_json::to_vec(&report).map_err(worker_error)?)
        .map_err(|e| spill_error(&path, &e))
}

fn run_pass(
    task: &ShardTask,
    units: &[(ExtractUnit, u64)],
    keys: &LinkageKeys,
) -> Result<ShardResult, IngestError> {
    let progress = Progress::hidden();
    match &task.pass {
        ShardPass::Keys { partitions } => {
            let mut writer = OccurrenceWriter::create(&task.dir, *partitions)?;
            let keyed = key_units(units, task.chunk_bytes, keys, &mut writer, 0, &progress)?;
            writer.finish()?;
            Ok(ShardResult::Keys(keyed))
        }
        ShardPass::Tables {
            catalog,
            ids,
            chunks,
        } => {
            let bytes = std::fs::read(catalog).map_err(|e| spill_error(catalog, &e))?;
            let catalog: Catalog = serde_json::from_slice(&bytes).map_err(worker_error)?;
            let cut = chunk_units(units, task.chunk_bytes);
            if cut.len() != chunks.len() {
                return Err(IngestError::Worker(
                    "the shard's chunks are not the coordinator's".into(),
                ));
            }
            cut.into_iter()
                .zip(chunks)
                .map(|(units, (name, first_record))| {
                    let chunk = Chunk {
                        units,
                        name: name.clone(),
                        first_record: *first_record,
                    };
                    let built = build_chunk(
                        &chunk,
                        |records| read_ids(ids, records),
                        &catalog,
                        keys,
                        &progress,
                    )?;
                    write_objects(&task.dir, built)
                })
                .collect::<Result<_, _>>()
                .map(ShardResult::Tables)
        }
    }
}

/// Writes a chunk's files under `dir`; its tables and files' paths and rows.
fn write_objects(
    dir: &Path,
    built: BuiltChunk,
) -> Result<(ChunkTables, Vec<(String, u64)>), IngestError> {
    let mut files = Vec::with_capacity(built.objects.len());
    for object in built.objects {
        let path = dir.join(&object.path);
        let io_error = |e: std::io::Error| spill_error(&path, &e);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_error)?;
        }
        std::fs::write(&path, &object.bytes).map_err(io_error)?;
        files.push((object.path, object.rows.unwrap_or_default()));
    }
    Ok((built.tables, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_contiguous_about_even_and_never_empty() {
        assert_eq!(split_evenly(&[5, 5, 5, 5], 2), vec![0..2, 2..4]);
        assert_eq!(split_evenly(&[9, 1, 1, 1], 2), vec![0..1, 1..4]);
        assert_eq!(split_evenly(&[3], 4), vec![0..1]);
        assert_eq!(split_evenly(&[1, 1, 1], 3), vec![0..1, 1..2, 2..3]);
        assert_eq!(split_evenly(&[], 2), Vec::<Range<usize>>::new());
        let runs = split_evenly(&[2, 7, 1, 8, 2, 8, 1, 8], 3);
        assert_eq!(runs.first().map(|r| r.start), Some(0));
        assert_eq!(runs.last().map(|r| r.end), Some(8));
        assert!(runs.windows(2).all(|pair| pair[0].end == pair[1].start));
        assert!(runs.iter().all(|run| !run.is_empty()));
    }
}
