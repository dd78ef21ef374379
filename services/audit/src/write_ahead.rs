//! Write-ahead recording: an action that changes something is recorded as
//! requested, durably, before it runs, and its outcome after. A log that
//! cannot be written refuses the action before it changes anything, and a
//! crash between the two leaves the request on record.

use crate::AuditError;
use crate::action::{Action, Outcome};
use crate::log::{AuditLog, NewEvent};

/// An action whose request is on disk; [`Requested::finish`] records how it
/// ended.
#[derive(Debug)]
#[must_use = "record how the requested action ended"]
pub struct Requested<'a> {
    log: &'a AuditLog,
    actor: String,
    action: Action,
    detail: serde_json::Value,
}

impl AuditLog {
    /// Records `action` by `actor` as requested, with `detail`; the action
    /// may run once this returns.
    pub async fn request(
        &self,
        actor: &str,
        action: Action,
        detail: serde_json::Value,
    ) -> Result<Requested<'_>, AuditError> {
        self.record(NewEvent::new(
            actor,
            action,
            Outcome::Requested,
            detail.clone(),
        ))
        .await?;
        Ok(Requested {
            log: self,
            actor: actor.to_string(),
            action,
            detail,
        })
    }
}

impl Requested<'_> {
    /// Records the outcome: the request's detail with `more`'s fields added.
    pub async fn finish(
        self,
        outcome: Outcome,
        more: serde_json::Value,
    ) -> Result<u64, AuditError> {
        let detail = merged(self.detail, more);
        self.log
            .record(NewEvent::new(self.actor, self.action, outcome, detail))
            .await
    }
}

/// `base` with the fields of `more` added (`more` wins); a non-object
/// `more` other than null is kept under `outcome_detail`.
fn merged(base: serde_json::Value, more: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let mut fields = match base {
        Value::Object(fields) => fields,
        Value::Null => serde_json::Map::new(),
        other => serde_json::Map::from_iter([("request".to_string(), other)]),
    };
    match more {
        Value::Object(more) => fields.extend(more),
        Value::Null => {}
        other => {
            fields.insert("outcome_detail".into(), other);
        }
    }
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckpointSigner, LogPolicy, read_events};

    #[tokio::test]
    async fn the_request_is_on_disk_before_the_outcome_and_both_carry_the_detail() {
        let dir = tempfile::tempdir().unwrap();
        let signer = CheckpointSigner::create(&dir.path().join("keys").join("audit.key")).unwrap();
        let log = AuditLog::open(&dir.path().join("audit"), signer, LogPolicy::default()).unwrap();
        let requested = log
            .request(
                "ana",
                Action::ApplicationDecide,
                serde_json::json!({ "subject": "a-1" }),
            )
            .await
            .unwrap();
        let on_disk = read_events(log.dir()).unwrap();
        assert_eq!(on_disk.len(), 1);
        assert!(on_disk[0].is(Action::ApplicationDecide, Outcome::Requested));
        requested
            .finish(
                Outcome::Refused,
                serde_json::json!({ "code": "FailedPrecondition" }),
            )
            .await
            .unwrap();
        let events = read_events(log.dir()).unwrap();
        assert!(events[1].is(Action::ApplicationDecide, Outcome::Refused));
        assert_eq!(events[1].detail["subject"], "a-1");
        assert_eq!(events[1].detail["code"], "FailedPrecondition");
    }
}
