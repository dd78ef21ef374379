//! Ingest throughput: CP932 extracts → keys → linkage → zstd Parquet release,
//! beside the HMAC-only ceiling (two keyed hashes per receipt, nothing else).
//!
//! Run: `cargo bench -p enclave-ingest --bench ingest_throughput [-- PERSONS]`.
//! The ingest runs with its default options (`--memory-mb 4096`): two
//! passes over the extracts, keys spilled to the system's temporary
//! directory.
//! The pipeline runs on one rayon thread so figures are per core; the
//! release goes to an in-memory object store so disk speed does not count.

use std::sync::Arc;
use std::time::Instant;

use enclave_catalog::Catalog;
use enclave_core::card::normalize_card_text;
use enclave_core::kana::normalize_name;
use enclave_ingest::extract::read_extracts;
use enclave_linkage::{LinkageKeys, Purpose};
use enclave_store::DataStore;
use enclave_synth::{SynthConfig, generate};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET: &[u8] = b"benchmark secret, at least thirty-two bytes long";
/// Persons giving a little over 1M receipts with the default generator.
const DEFAULT_PERSONS: u64 = 140_000;

fn main() {
    let persons = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(DEFAULT_PERSONS);
    let work = tempfile::tempdir().expect("temp dir");
    let extracts = work.path().join("extracts");
    let synth_started = Instant::now();
    let synth = generate(&SynthConfig::new(persons, 1, &extracts)).expect("synth");
    println!(
        "synth: {persons} persons, {} receipts in {:.1}s (all cores)",
        synth.ndb_receipts,
        synth_started.elapsed().as_secs_f64()
    );

    // Let the generated files reach the disk first, so write-back does not
    // compete with the measured run.
    let _ = std::process::Command::new("sync").status();

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime");
    let memory = Arc::new(object_store::memory::InMemory::new());
    let store = DataStore::with_object_store(Arc::clone(&memory) as _);
    let keys = LinkageKeys::derive(SECRET).expect("keys");
    let started = Instant::now();
    let summary = pool
        .install(|| {
            runtime.block_on(enclave_ingest::ingest(
                &store,
                &extracts,
                &keys,
                Catalog::embedded(),
                &Default::default(),
            ))
        })
        .expect("ingest");
    let seconds = started.elapsed().as_secs_f64();
    let receipts = summary.records["ndb"] as f64;
    let records: u64 = summary.records.values().sum();
    println!(
        "ingest (1 core): {records} source records ({receipts} receipts), {:.1} MB CP932 in {seconds:.2}s",
        summary.bytes as f64 / 1e6
    );
    println!(
        "  phases: pass 1 (parse, keys, spill) {:.2}s, linkage {:.2}s, pass 2 (parse, tables, Parquet, write) {:.2}s",
        summary.phases.parse_seconds, summary.phases.link_seconds, summary.phases.tables_seconds,
    );
    println!(
        "  memory: peak {:.0} MB resident (whole bench process), {:.1} MB spilled",
        summary.peak_memory_bytes as f64 / 1e6,
        summary.spill_bytes as f64 / 1e6
    );
    let ingest_rate = receipts / seconds;
    println!(
        "  {:.0} receipts/s/core, {:.1} MB/s/core",
        ingest_rate,
        summary.bytes as f64 / 1e6 / seconds
    );

    let (tables, linkage) = runtime.block_on(release_bytes(&memory));
    println!(
        "  release: tables {:.1} MB, linkage state {:.1} MB",
        tables as f64 / 1e6,
        linkage as f64 / 1e6
    );

    let parsed = read_extracts(&extracts, &enclave_ingest::extract::NoProgress).expect("parse");
    let ceiling = hmac_ceiling(&parsed);
    println!(
        "HMAC-only ceiling (1 core): {ceiling:.0} receipts/s/core (2 keyed hashes per receipt, no memo)"
    );
    println!("ratio: ceiling / ingest = {:.2}", ceiling / ingest_rate);
}

/// Bytes of the release's table files and of its linkage state, so an
/// encoding's speed can be weighed against its size.
async fn release_bytes(store: &object_store::memory::InMemory) -> (u64, u64) {
    use futures::TryStreamExt;
    use object_store::ObjectStore;
    let objects: Vec<_> = store.list(None).try_collect().await.expect("list");
    let bytes_under = |dir: &str| {
        objects
            .iter()
            .filter(|o| o.location.as_ref().contains(dir))
            .map(|o| o.size)
            .sum()
    };
    (bytes_under("/tables/"), bytes_under("/linkage/"))
}

/// Receipts per second when all that is done is the two HMACs of each receipt.
fn hmac_ceiling(parsed: &enclave_ingest::extract::Extracts) -> f64 {
    let inputs: Vec<[Vec<u8>; 2]> = parsed
        .ndb
        .iter()
        .flat_map(|file| &file.receipts)
        .map(|receipt| {
            let insurance = &receipt.insurance;
            let birth = receipt.birth.to_yyyymmdd();
            let card = [
                insurance.insurer.as_str(),
                &normalize_card_text(&insurance.symbol),
                &normalize_card_text(&insurance.number),
                &birth,
                receipt.sex.code(),
            ]
            .join("\u{1f}");
            let name = [
                normalize_name(&receipt.kana_name).as_str(),
                &birth,
                receipt.sex.code(),
            ]
            .join("\u{1f}");
            [card.into_bytes(), name.into_bytes()]
        })
        .collect();
    let keys = LinkageKeys::derive(SECRET).expect("keys");
    let started = Instant::now();
    let mut sink = 0u8;
    for [card, name] in &inputs {
        sink ^= keys.hash(Purpose::HealthCard, &[card]).0[0];
        sink ^= keys.hash(Purpose::Name, &[name]).0[0];
    }
    let seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    inputs.len() as f64 / seconds
}
