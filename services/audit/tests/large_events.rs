//! No input can latch the log: events whose user name or SQL text is larger
//! than a segment frame holds are recorded with those fields bounded, and
//! the events after them are recorded as usual; the log still verifies.

use enclave_audit::{
    Action, AuditLog, CheckpointSigner, LogPolicy, MAX_NAME_BYTES, NewEvent, Outcome, read_events,
    verify,
};

fn event(actor: &str, sql: &str) -> NewEvent {
    NewEvent {
        actor: actor.into(),
        action: Action::Query,
        outcome: Outcome::Refused,
        detail: serde_json::json!({ "sql": sql }),
    }
}

#[tokio::test]
async fn oversized_fields_are_bounded_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (log_dir, key) = (dir.path().join("audit"), dir.path().join("audit.key"));
    CheckpointSigner::create(&key).unwrap();
    let log = AuditLog::open(
        &log_dir,
        CheckpointSigner::load(&key).unwrap(),
        LogPolicy::default(),
    )
    .unwrap();
    let long_name = "n".repeat(2_000_000);
    let long_sql = format!("SELECT '{}'", "x".repeat(1_300_000));
    log.record(event(&long_name, "SELECT 1")).await.unwrap();
    log.record(event("alice", &long_sql)).await.unwrap();
    log.record(event("bob", "SELECT 2")).await.unwrap();
    drop(log);

    let events = read_events(&log_dir).unwrap();
    assert_eq!(events.len(), 3);
    assert!(events[0].actor.starts_with(&"n".repeat(MAX_NAME_BYTES)));
    assert!(events[0].actor.contains("[2000000 bytes, sha256 "));
    let sql = events[1].detail["sql"].as_str().unwrap();
    assert!(sql.starts_with("SELECT 'xxx") && sql.contains("[1300009 bytes, sha256 "));
    assert_eq!(events[2].actor, "bob");
    let public_key = CheckpointSigner::load(&key).unwrap().public_key().to_vec();
    assert!(verify(&log_dir, &public_key).unwrap().is_valid());
}
