//! Events of commands run beside the server reach the log through its
//! inbox: moved in when the log opens and while it runs, each file removed
//! once its event is on disk; a file that is no event is set aside.

use std::path::Path;
use std::time::{Duration, Instant};

use enclave_audit::{
    Action, AuditLog, CheckpointSigner, Event, LogPolicy, NewEvent, Outcome, read_events, spool,
};

fn side_event(action: Action) -> NewEvent {
    NewEvent {
        actor: "os:steward".into(),
        action,
        outcome: Outcome::Ok,
        detail: serde_json::json!({ "user": "new-researcher" }),
    }
}

fn open(dir: &Path) -> AuditLog {
    let signer = CheckpointSigner::create(&dir.join("keys").join("audit.key")).unwrap();
    AuditLog::open(&dir.join("audit"), signer, LogPolicy::default()).unwrap()
}

fn inbox_files(log_dir: &Path) -> Vec<String> {
    std::fs::read_dir(log_dir.join("inbox"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn events_with_action(log_dir: &Path, action: &str) -> Vec<Event> {
    read_events(log_dir)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

#[tokio::test]
async fn events_spooled_while_closed_are_moved_in_on_opening() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("audit");
    let first = spool(&log_dir, &side_event(Action::UserAdd)).unwrap();
    spool(&log_dir, &side_event(Action::OptOutAdd)).unwrap();
    let log = open(dir.path());
    log.record(side_event(Action::ServerStart)).await.unwrap();

    let actions: Vec<String> = read_events(&log_dir)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["user.add", "optout.add", "server.start"]);
    let moved = &events_with_action(&log_dir, "user.add")[0];
    assert_eq!(moved.actor, "os:steward");
    assert_eq!(
        moved.detail["inbox"],
        first.file_name().unwrap().to_string_lossy().as_ref()
    );
    assert!(inbox_files(&log_dir).is_empty());
}

#[tokio::test]
async fn events_spooled_while_running_are_moved_in_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("audit");
    let log = open(dir.path());
    log.record(side_event(Action::ServerStart)).await.unwrap();
    spool(&log_dir, &side_event(Action::ProjectClose)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The file goes once its event is on disk.
    while !inbox_files(&log_dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the inbox event never reached the log"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(events_with_action(&log_dir, "project.close").len(), 1);
}

#[tokio::test]
async fn a_file_that_is_no_event_is_set_aside_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("audit");
    spool(&log_dir, &side_event(Action::UserAdd)).unwrap();
    std::fs::write(log_dir.join("inbox").join("0-garbage.json"), b"{not json").unwrap();
    let log = open(dir.path());
    assert_eq!(
        log.record(side_event(Action::ServerStart)).await.unwrap(),
        1
    );
    assert_eq!(events_with_action(&log_dir, "user.add").len(), 1);
    assert_eq!(inbox_files(&log_dir), [".0-garbage.json.rejected"]);
}
