//! Claims-analytics queries timed three ways on the same Parquet release:
//! through the full guarded path (project session → plan guard → DataFusion
//! → disclosure control), through raw DataFusion, and through DuckDB, side by
//! side in one run, with the same thread count for each.
//!
//! Run: `cargo bench -p enclave-query --bench claims_queries [-- PERSONS]`
//! (default 600,000 persons: about 20M rows in the `ndb` tables, 4.5M of them
//! receipts; ingest holds a population in memory, about 20 KB per person, so
//! a 23 GB machine stops near 1.1M persons). The synthetic release is built
//! once and kept in
//! `$ENCLAVE_BENCH_DIR` (default `~/.cache/enclave-bench/persons-N`); DuckDB
//! runs from the Python environment of `scripts/python-env.sh`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use enclave_query::{Limits, Outcome, QueryEngine};
use enclave_state::{Grant, Project, ProjectStatus, Protection, Role, Rounding, StateStore};
use enclave_store::{DataStore, Manifest};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_PERSONS: u64 = 600_000;
const SEED: u64 = 2024;
const RUNS: usize = 3;
const SECRET: &[u8] = b"benchmark secret, at least thirty-two bytes long";
const RESEARCHER: &str = "bench";

/// The suite: what a health-services researcher asks of claims data.
const SUITE: &str = include_str!("claims_suite.sql");

/// The suite's queries: (name, SQL); a query's name is the last comment
/// line before it.
fn queries() -> Vec<(String, String)> {
    SUITE
        .split(';')
        .filter_map(|block| {
            let mut name = None;
            let mut sql = Vec::new();
            for line in block.lines().map(str::trim).filter(|line| !line.is_empty()) {
                match line.strip_prefix("-- ") {
                    Some(comment) if sql.is_empty() => name = Some(comment),
                    _ => sql.push(line),
                }
            }
            Some((name?.to_string(), sql.join(" "))).filter(|(_, sql)| !sql.is_empty())
        })
        .collect()
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> BenchResult<()> {
    let persons = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(DEFAULT_PERSONS);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(run(persons, threads))
}

async fn run(persons: u64, threads: usize) -> BenchResult<()> {
    let dir = bench_dir(persons);
    let store = release(&dir, persons).await?;
    let manifest = store.latest().await?.ok_or("no release")?;
    let tables_dir = dir
        .join("data/releases")
        .join(&manifest.release_id)
        .join("tables");
    describe(&manifest, threads);

    let state_dir = tempfile::tempdir()?;
    let engine = guarded_engine(store, state_dir.path(), threads).await?;
    let raw = raw_datafusion(&tables_dir, threads).await?;
    let duckdb = duckdb_timings(&tables_dir, threads)?;

    println!(
        "{:<42} {:>9} {:>9} {:>9} {:>8} {:>8}  groups released/suppressed (DataFusion rows)",
        "query", "guarded", "DF", "DuckDB", "g/DF", "g/DuckDB"
    );
    let mut rows = Vec::new();
    for ((name, sql), duckdb) in queries().iter().zip(duckdb) {
        let (guarded, groups) = time_guarded(&engine, sql).await?;
        let (raw, raw_rows) = time_raw(&raw, sql).await?;
        println!(
            "{name:<42} {:>8.3}s {:>8.3}s {:>8.3}s {:>7.2}x {:>7.2}x  {groups} ({raw_rows})",
            secs(guarded),
            secs(raw),
            secs(duckdb),
            secs(guarded) / secs(raw),
            secs(guarded) / secs(duckdb),
        );
        rows.push([secs(guarded), secs(raw), secs(duckdb)]);
    }
    summarize(&rows);
    Ok(())
}

fn bench_dir(persons: u64) -> PathBuf {
    match std::env::var_os("ENCLAVE_BENCH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
            home.join(format!(".cache/enclave-bench/persons-{persons}"))
        }
    }
}

/// The release of the synthetic population, built on first use.
async fn release(dir: &Path, persons: u64) -> BenchResult<DataStore> {
    let store = DataStore::open_local(&dir.join("data"))?;
    if store.latest().await?.is_some() {
        return Ok(store);
    }
    let extracts = dir.join("extracts");
    let started = Instant::now();
    enclave_synth::generate(&enclave_synth::SynthConfig::new(persons, SEED, &extracts))?;
    println!(
        "synth: {persons} persons in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let keys = enclave_linkage::LinkageKeys::derive(SECRET)?;
    enclave_ingest::ingest(
        &store,
        &extracts,
        &keys,
        enclave_catalog::Catalog::embedded(),
        &Default::default(),
    )
    .await?;
    println!("ingest: {:.0}s", started.elapsed().as_secs_f64());
    std::fs::remove_dir_all(&extracts)?;
    Ok(store)
}

fn describe(manifest: &Manifest, threads: usize) {
    let rows = |table: &str| manifest.content.tables.get(table).map_or(0, |t| t.rows);
    let ndb: u64 = [
        "ndb.receipts",
        "ndb.diagnoses",
        "ndb.procedures",
        "ndb.drugs",
    ]
    .iter()
    .map(|table| rows(table))
    .sum();
    println!(
        "release {}: ndb.receipts {} rows (all ndb tables {ndb}), care.claims {} rows; \
         {threads} threads for each engine; median of {RUNS} runs after one warm-up",
        manifest.release_id,
        rows("ndb.receipts"),
        rows("care.claims"),
    );
}

/// An engine with one researcher in a project granted every table over the
/// whole period, k = 10, no rounding.
async fn guarded_engine(
    store: DataStore,
    state: &Path,
    threads: usize,
) -> BenchResult<QueryEngine> {
    let state = StateStore::open(state)?;
    state.add_user(RESEARCHER, Role::Researcher, "bench-password")?;
    state.add_project(&Project {
        id: "bench".into(),
        title: "benchmark".into(),
        members: vec![RESEARCHER.into()],
        grants: enclave_catalog::Catalog::embedded()
            .table_names()
            .map(Grant::whole_table)
            .collect(),
        period: "2000-01..2099-12".parse()?,
        valid_until: "2099-12-31".into(),
        k: 10,
        rounding: Rounding::None,
        protection: Protection::SingleQuery,
        fresh_value_budget: enclave_state::DEFAULT_FRESH_VALUE_BUDGET,
        workspace_quota_bytes: 0,
        status: ProjectStatus::Active,
    })?;
    let limits = Limits {
        query_memory_bytes: 8 << 30,
        total_memory_bytes: 8 << 30,
        target_partitions: threads,
        ..Limits::default()
    };
    Ok(QueryEngine::open(store, Arc::new(state), limits).await?)
}

/// Plain DataFusion over the release's Parquet files, one table per directory.
async fn raw_datafusion(tables_dir: &Path, threads: usize) -> BenchResult<SessionContext> {
    let context =
        SessionContext::new_with_config(SessionConfig::new().with_target_partitions(threads));
    for (schema, table, path) in release_tables(tables_dir)? {
        context
            .sql(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
        context
            .register_parquet(
                format!("{schema}.{table}"),
                path.to_str().ok_or("path is not UTF-8")?,
                ParquetReadOptions::default(),
            )
            .await?;
    }
    Ok(context)
}

/// `(schema, table, directory)` of each table of a release.
fn release_tables(tables_dir: &Path) -> BenchResult<Vec<(String, String, PathBuf)>> {
    let mut tables = Vec::new();
    for entry in std::fs::read_dir(tables_dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("bad table directory")?;
        let (schema, table) = name.split_once('.').ok_or("bad table directory")?;
        tables.push((schema.to_string(), table.to_string(), path.clone()));
    }
    tables.sort();
    Ok(tables)
}

async fn time_guarded(engine: &QueryEngine, sql: &str) -> BenchResult<(Duration, String)> {
    median_of_runs(|| async {
        let session = engine.session(RESEARCHER, None).await?;
        match session.execute(sql, None).await? {
            Outcome::Rows(released) => Ok(format!(
                "{}/{}",
                released.released_groups, released.suppressed_groups
            )),
            Outcome::Updated(_) => Err("not a query".into()),
        }
    })
    .await
}

async fn time_raw(context: &SessionContext, sql: &str) -> BenchResult<(Duration, usize)> {
    median_of_runs(|| async {
        let batches = context.sql(sql).await?.collect().await?;
        Ok(batches.iter().map(|b| b.num_rows()).sum())
    })
    .await
}

/// One warm-up, then the median of `RUNS` timed runs, with the last run's
/// outcome.
async fn median_of_runs<T, F, Fut>(mut once: F) -> BenchResult<(Duration, T)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = BenchResult<T>>,
{
    let mut outcome = once().await?;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        outcome = once().await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((times[RUNS / 2], outcome))
}

/// Median times of the suite in DuckDB (Python), same files and threads.
fn duckdb_timings(tables_dir: &Path, threads: usize) -> BenchResult<Vec<Duration>> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env_script = manifest_dir.join("../../scripts/python-env.sh");
    let venv = Command::new(&env_script)
        .stderr(Stdio::inherit())
        .output()?;
    if !venv.status.success() {
        return Err("scripts/python-env.sh failed".into());
    }
    let venv = String::from_utf8(venv.stdout)?;
    let python = Path::new(venv.lines().last().ok_or("no venv path")?).join("bin/python");
    let request = serde_json::json!({
        "tables": release_tables(tables_dir)?
            .into_iter()
            .map(|(schema, table, path)| (format!("{schema}.{table}"), path))
            .collect::<std::collections::BTreeMap<_, _>>(),
        "threads": threads,
        "runs": RUNS,
        "queries": queries().into_iter().map(|(_, sql)| sql).collect::<Vec<_>>(),
    });
    let mut child = Command::new(python)
        .arg(manifest_dir.join("benches/duckdb_suite.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    serde_json::to_writer(child.stdin.take().ok_or("no stdin")?, &request)?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err("the DuckDB suite failed".into());
    }
    let seconds: Vec<f64> = serde_json::from_slice(&output.stdout)?;
    Ok(seconds.into_iter().map(Duration::from_secs_f64).collect())
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// Suite median and geometric mean of each engine, and their ratios.
fn summarize(rows: &[[f64; 3]]) {
    let column = |i: usize| rows.iter().map(|row| row[i]).collect::<Vec<_>>();
    let ratio = |a: usize, b: usize| rows.iter().map(|row| row[a] / row[b]).collect::<Vec<_>>();
    let [guarded, raw, duckdb] = [column(0), column(1), column(2)];
    println!(
        "suite median: guarded {:.3}s, DataFusion {:.3}s, DuckDB {:.3}s",
        median(&guarded),
        median(&raw),
        median(&duckdb)
    );
    println!(
        "guarded / DataFusion: median {:.2}x, geometric mean {:.2}x, max {:.2}x",
        median(&ratio(0, 1)),
        geometric_mean(&ratio(0, 1)),
        ratio(0, 1).iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "guarded / DuckDB: median {:.2}x, geometric mean {:.2}x; DataFusion / DuckDB: median {:.2}x",
        median(&ratio(0, 2)),
        geometric_mean(&ratio(0, 2)),
        median(&ratio(1, 2))
    );
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn geometric_mean(values: &[f64]) -> f64 {
    (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp()
}
