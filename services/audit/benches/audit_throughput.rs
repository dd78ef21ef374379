//! Durable events per second with group commit, the verify rate, and the
//! rate at which the whole log is read back as events (what each statement
//! over the operators' `audit` schema reads).
//!
//! Run: `cargo bench -p enclave-audit --bench audit_throughput [-- EVENTS]`.
//! Writers are tokio tasks each awaiting one event at a time (as a request
//! handler would); every answered event has been fsynced. The log lives in
//! a temporary directory on the machine's disk.

use std::sync::Arc;
use std::time::{Duration, Instant};

use enclave_audit::{
    Action, AuditLog, CheckpointSigner, LogPolicy, NewEvent, Outcome, read_events, verify,
};

const DEFAULT_EVENTS: usize = 100_000;

fn event(writer: usize, i: usize) -> NewEvent {
    NewEvent {
        actor: format!("researcher{writer}"),
        action: Action::Query,
        outcome: Outcome::Ok,
        detail: serde_json::json!({
            "project": "demo",
            "sql": "SELECT prefecture_code, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY prefecture_code",
            "fingerprint": format!("{i:016x}"),
            "groups_released": 47,
            "groups_suppressed": 0,
            "duration_ms": 12,
        }),
    }
}

async fn durable_rate(
    writers: usize,
    events: usize,
) -> (f64, std::path::PathBuf, Vec<u8>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let signer = CheckpointSigner::create(&dir.path().join("audit.key")).expect("key");
    let public_key = signer.public_key().to_vec();
    let log_dir = dir.path().join("log");
    let policy = LogPolicy {
        checkpoint_events: 10_000,
        checkpoint_every: Duration::from_secs(10),
        ..LogPolicy::default()
    };
    let log = Arc::new(AuditLog::open(&log_dir, signer, policy).expect("log opens"));
    let per_writer = events / writers;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                for i in 0..per_writer {
                    log.record(event(writer, i)).await.expect("durable");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    let rate = (per_writer * writers) as f64 / started.elapsed().as_secs_f64();
    drop(log);
    (rate, log_dir, public_key, dir)
}

#[tokio::main]
async fn main() {
    let events = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(DEFAULT_EVENTS);
    let (one, _, _, _keep) = durable_rate(1, events / 10).await;
    println!(
        "durable events/s, 1 writer:    {one:>10.0}  ({} events)",
        events / 10
    );
    let (many, log_dir, public_key, _keep) = durable_rate(32, events).await;
    println!("durable events/s, 32 writers:  {many:>10.0}  ({events} events)");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let report = verify(&log_dir, &public_key).expect("verify runs");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(report.is_valid(), "{report:?}");
    println!(
        "verify: {} events, {} checkpoints in {:.3} s = {:.0} events/s",
        report.events,
        report.checkpoints,
        elapsed,
        report.events as f64 / elapsed
    );
    // What every statement over the operators' `audit` schema pays first.
    let started = Instant::now();
    let read = read_events(&log_dir).expect("the log reads");
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "read_events (audit SQL tables): {} events in {elapsed:.3} s = {:.0} events/s",
        read.len(),
        read.len() as f64 / elapsed
    );
}
