//! The active segment is sealed at the policy's byte limit and once its
//! first event is older than the age limit (even with no new events, and
//! counting from before a restart); the rolled log still verifies.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use enclave_audit::{
    Action, AuditLog, CheckpointSigner, LogPolicy, NewEvent, Outcome, read_events, verify,
};

fn event(i: usize) -> NewEvent {
    NewEvent {
        actor: "tester".into(),
        action: Action::Query,
        outcome: Outcome::Ok,
        detail: serde_json::json!({ "i": i }),
    }
}

fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".seg"))
        .collect();
    names.sort();
    names
}

fn names(first_seqs: &[u64]) -> Vec<String> {
    first_seqs
        .iter()
        .map(|seq| format!("{seq:020}.seg"))
        .collect()
}

/// Polls until `dir` holds `count` segments, for at most 10 s.
#[expect(
    clippy::disallowed_methods,
    reason = "a test helper polling the file system"
)]
fn wait_for_segments(dir: &Path, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while segment_names(dir).len() < count {
        assert!(
            Instant::now() < deadline,
            "still {:?} after 10 s",
            segment_names(dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    log_dir: PathBuf,
    key: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("audit");
        let key = dir.path().join("audit.key");
        CheckpointSigner::create(&key).unwrap();
        Fixture {
            _dir: dir,
            log_dir,
            key,
        }
    }

    fn open(&self, policy: LogPolicy) -> AuditLog {
        let signer = CheckpointSigner::load(&self.key).unwrap();
        AuditLog::open(&self.log_dir, signer, policy).unwrap()
    }

    fn assert_verifies(&self, events: usize) {
        let public_key = CheckpointSigner::load(&self.key)
            .unwrap()
            .public_key()
            .to_vec();
        let report = verify(&self.log_dir, &public_key).unwrap();
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(report.events, events as u64);
        let seqs: Vec<u64> = read_events(&self.log_dir)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, (0..events as u64).collect::<Vec<_>>());
    }
}

fn policy(segment_bytes: u64, segment_age: Duration) -> LogPolicy {
    LogPolicy {
        segment_bytes,
        segment_age,
        ..LogPolicy::default()
    }
}

#[tokio::test]
async fn a_full_segment_is_sealed_before_the_next_batch() {
    let fixture = Fixture::new();
    let log = fixture.open(policy(1, Duration::from_secs(3600)));
    for i in 0..4 {
        log.record(event(i)).await.unwrap();
    }
    drop(log);
    assert_eq!(segment_names(&fixture.log_dir), names(&[0, 1, 2, 3]));
    fixture.assert_verifies(4);
}

#[tokio::test]
async fn an_old_segment_is_sealed_while_the_log_is_idle() {
    let fixture = Fixture::new();
    let log = fixture.open(policy(64 << 20, Duration::from_millis(200)));
    log.record(event(0)).await.unwrap();
    log.record(event(1)).await.unwrap();
    wait_for_segments(&fixture.log_dir, 2);
    assert_eq!(segment_names(&fixture.log_dir), names(&[0, 2]));
    assert_eq!(log.record(event(2)).await.unwrap(), 2);
    drop(log);
    fixture.assert_verifies(3);
}

#[tokio::test]
async fn a_segment_ages_from_its_first_event_across_a_restart() {
    let fixture = Fixture::new();
    let log = fixture.open(policy(64 << 20, Duration::from_secs(3600)));
    log.record(event(0)).await.unwrap();
    drop(log);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Reopened with a 300 ms limit, the segment is already too old.
    let started = Instant::now();
    let log = fixture.open(policy(64 << 20, Duration::from_millis(300)));
    wait_for_segments(&fixture.log_dir, 2);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "sealed only after {:?}",
        started.elapsed()
    );
    assert_eq!(log.record(event(1)).await.unwrap(), 1);
    drop(log);
    assert_eq!(segment_names(&fixture.log_dir), names(&[0, 1]));
    fixture.assert_verifies(2);
}
