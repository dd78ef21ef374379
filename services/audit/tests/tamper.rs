//! Every kind of tampering is found by `verify`, at its place; a torn tail
//! left by a crash is cut off on reopening and recorded; an unwritable log
//! refuses events.

use std::path::{Path, PathBuf};
use std::time::Duration;

use enclave_audit::{
    Action, AuditLog, CheckpointSigner, LogPolicy, NewEvent, Outcome, read_events, verify,
};

struct Fixture {
    _dir: tempfile::TempDir,
    log_dir: PathBuf,
    public_key: Vec<u8>,
}

fn event(i: usize) -> NewEvent {
    NewEvent {
        actor: format!("user{}", i % 3),
        action: Action::Query,
        outcome: Outcome::Ok,
        detail: serde_json::json!({ "sql": format!("SELECT {i}"), "groups": i }),
    }
}

/// A log of `events` events with a checkpoint every 10.
async fn written(events: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("audit");
    let key = dir.path().join("keys").join("audit.key");
    let signer = CheckpointSigner::create(&key).unwrap();
    let public_key = signer.public_key().to_vec();
    let policy = LogPolicy {
        checkpoint_events: 10,
        checkpoint_every: Duration::from_secs(3600),
        ..LogPolicy::default()
    };
    let log = AuditLog::open(&log_dir, signer, policy).unwrap();
    for i in 0..events {
        assert_eq!(log.record(event(i)).await.unwrap(), i as u64);
    }
    drop(log);
    // The writer signs a last checkpoint when the log is dropped.
    wait_for_checkpoint(&log_dir, events);
    Fixture {
        _dir: dir,
        log_dir,
        public_key,
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "a test helper polling the file system"
)]
fn wait_for_checkpoint(dir: &Path, size: usize) {
    for _ in 0..200 {
        let text = std::fs::read_to_string(dir.join("checkpoints.jsonl")).unwrap_or_default();
        if text.contains(&format!("\"size\":{size},")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no checkpoint of size {size}");
}

fn segment(fixture: &Fixture) -> PathBuf {
    fixture.log_dir.join(format!("{:020}.seg", 0))
}

fn problem(fixture: &Fixture) -> String {
    let report = verify(&fixture.log_dir, &fixture.public_key).unwrap();
    report.problem.expect("tampering must be found")
}

/// Byte offsets where each frame starts.
fn frame_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        offsets.push(at);
        let length = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + length + 32;
    }
    offsets
}

#[tokio::test]
async fn an_untouched_log_verifies() {
    let fixture = written(25).await;
    let report = verify(&fixture.log_dir, &fixture.public_key).unwrap();
    assert!(report.is_valid(), "{report:?}");
    assert_eq!((report.events, report.checkpoints), (25, 3));
    assert_eq!(report.latest_checkpoint.unwrap().size, 25);
    assert_eq!(read_events(&fixture.log_dir).unwrap().len(), 25);
}

#[tokio::test]
async fn flipping_any_byte_is_found() {
    let fixture = written(12).await;
    let original = std::fs::read(segment(&fixture)).unwrap();
    let offsets = frame_offsets(&original);
    for position in (0..original.len()).step_by(7) {
        let mut bytes = original.clone();
        bytes[position] ^= 0x01;
        std::fs::write(segment(&fixture), &bytes).unwrap();
        let found = problem(&fixture);
        let frame = offsets.iter().rposition(|o| *o <= position).unwrap();
        assert!(
            found.contains(&format!("offset {}", offsets[frame])) || found.contains("torn"),
            "byte {position} (frame {frame}): {found}"
        );
    }
}

#[tokio::test]
async fn deleting_reordering_and_truncating_are_found() {
    let fixture = written(12).await;
    let original = std::fs::read(segment(&fixture)).unwrap();
    let offsets = frame_offsets(&original);
    let frame =
        |i: usize| &original[offsets[i]..offsets.get(i + 1).copied().unwrap_or(original.len())];

    let deleted: Vec<u8> = (0..12)
        .filter(|i| *i != 4)
        .flat_map(|i| frame(i).to_vec())
        .collect();
    std::fs::write(segment(&fixture), &deleted).unwrap();
    assert!(problem(&fixture).contains(&format!("offset {}: event 4", offsets[4])));

    let mut order: Vec<usize> = (0..12).collect();
    order.swap(6, 7);
    let reordered: Vec<u8> = order.iter().flat_map(|i| frame(*i).to_vec()).collect();
    std::fs::write(segment(&fixture), &reordered).unwrap();
    assert!(problem(&fixture).contains(&format!("offset {}: event 6", offsets[6])));

    std::fs::write(segment(&fixture), &original[..offsets[11]]).unwrap();
    assert!(problem(&fixture).contains("covers 12 events but the log holds 11"));

    std::fs::write(segment(&fixture), &original[..original.len() - 5]).unwrap();
    assert!(problem(&fixture).contains(&format!("offset {}: torn write", offsets[11])));
}

#[tokio::test]
async fn a_replaced_or_rewritten_history_is_found_by_the_checkpoints() {
    let fixture = written(12).await;
    let path = fixture.log_dir.join("checkpoints.jsonl");
    let original = std::fs::read_to_string(&path).unwrap();

    // A checkpoint signed by another key.
    let other = tempfile::tempdir().unwrap();
    let forger = CheckpointSigner::create(&other.path().join("k")).unwrap();
    let forged_log = other.path().join("log");
    let log = AuditLog::open(&forged_log, forger, LogPolicy::default()).unwrap();
    for i in 0..10 {
        log.record(event(i)).await.unwrap();
    }
    drop(log);
    wait_for_checkpoint(&forged_log, 10);
    let forged = std::fs::read_to_string(forged_log.join("checkpoints.jsonl")).unwrap();
    let first = original.lines().next().unwrap();
    std::fs::write(
        &path,
        original.replacen(first, forged.lines().next().unwrap(), 1),
    )
    .unwrap();
    assert!(
        problem(&fixture).contains("checkpoint line 1 (size 10): the signature does not verify")
    );

    // A whole history rewritten with a consistent chain: the signed roots disagree.
    std::fs::write(&path, &original).unwrap();
    std::fs::copy(forged_log.join(format!("{:020}.seg", 0)), segment(&fixture)).unwrap();
    let found = problem(&fixture);
    assert!(found.contains("checkpoint line 1"), "{found}");
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_on_reopening_and_recorded() {
    let fixture = written(5).await;
    let mut bytes = std::fs::read(segment(&fixture)).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, b'{', b'"']);
    std::fs::write(segment(&fixture), &bytes).unwrap();
    assert!(problem(&fixture).contains("torn write"));

    let signer =
        CheckpointSigner::load(&fixture._dir.path().join("keys").join("audit.key")).unwrap();
    let log = AuditLog::open(&fixture.log_dir, signer, LogPolicy::default()).unwrap();
    assert_eq!(
        log.record(event(5)).await.unwrap(),
        6,
        "5 events, the recovery note, then this"
    );
    drop(log);
    wait_for_checkpoint(&fixture.log_dir, 7);
    let events = read_events(&fixture.log_dir).unwrap();
    assert_eq!(events[5].action, "audit.recovered");
    assert!(
        verify(&fixture.log_dir, &fixture.public_key)
            .unwrap()
            .is_valid()
    );
}

/// A full disk: the segment is `/dev/full`, where every write fails.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_unwritable_log_refuses_events() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("audit");
    std::fs::create_dir_all(&log_dir).unwrap();
    std::os::unix::fs::symlink("/dev/full", log_dir.join(format!("{:020}.seg", 0))).unwrap();
    let signer = CheckpointSigner::create(&dir.path().join("audit.key")).unwrap();
    let log = AuditLog::open(&log_dir, signer, LogPolicy::default()).unwrap();
    for i in 0..3 {
        let refused = log.record(event(i)).await;
        assert!(
            matches!(refused, Err(enclave_audit::AuditError::Unwritable)),
            "{refused:?}"
        );
    }
}
