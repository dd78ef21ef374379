//! Audit events of the commands that change state beside the server
//! (users, projects, opt-outs, releases). Each is made durable in the audit
//! log's inbox before the change is made, so a change whose event cannot be
//! written is not made; the server moves inbox events into the log.

use std::path::{Path, PathBuf};

use enclave_audit::{Action, NewEvent, Outcome};

use crate::commands::CommandError;

/// Where a command records its event.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AuditTarget {
    /// The audit log directory of the server (its `--audit-dir`)
    /// [default: STATE/audit].
    #[arg(long, env = "ENCLAVE_AUDIT_DIR")]
    audit_dir: Option<PathBuf>,
}

impl AuditTarget {
    /// The log directory: the one given, else the state directory's.
    pub(crate) fn dir(&self, state: Option<&Path>) -> Option<PathBuf> {
        self.audit_dir
            .clone()
            .or_else(|| state.map(|state| state.join("audit")))
    }

    /// Makes `change`, recording `action` as requested before it and with
    /// its outcome after it. Nothing is changed if the request cannot be
    /// recorded.
    pub(crate) async fn recorded<T>(
        &self,
        state: Option<&Path>,
        action: Action,
        detail: serde_json::Value,
        change: impl Future<Output = Result<T, CommandError>>,
    ) -> Result<T, CommandError> {
        let change = async { change.await.map(|done| (done, serde_json::Value::Null)) };
        self.recorded_with(state, action, detail, change).await
    }

    /// As [`AuditTarget::recorded`], with the fields of the object `change`
    /// returns beside its result added to the outcome's detail.
    pub(crate) async fn recorded_with<T>(
        &self,
        state: Option<&Path>,
        action: Action,
        detail: serde_json::Value,
        change: impl Future<Output = Result<(T, serde_json::Value), CommandError>>,
    ) -> Result<T, CommandError> {
        let Some(dir) = self.dir(state) else {
            tracing::warn!(%action, "no audit log given (--audit-dir); not recorded");
            eprintln!(
                "warning: no --audit-dir given: this {action} is not recorded in an audit log"
            );
            return change.await.map(|(done, _)| done);
        };
        spool(&dir, action, Outcome::Requested, detail.clone())?;
        let result = change.await;
        let mut detail = detail;
        let outcome = match &result {
            Ok((_, serde_json::Value::Object(more))) => {
                for (field, value) in more {
                    detail[field.as_str()] = value.clone();
                }
                Outcome::Ok
            }
            Ok(_) => Outcome::Ok,
            Err(error) => {
                detail["error"] = error.to_string().into();
                Outcome::Failed
            }
        };
        spool(&dir, action, outcome, detail)?;
        result.map(|(done, _)| done)
    }
}

fn spool(
    dir: &Path,
    action: Action,
    outcome: Outcome,
    detail: serde_json::Value,
) -> Result<(), CommandError> {
    let event = NewEvent::new(operating_system_user(), action, outcome, detail);
    enclave_audit::spool(dir, &event)?;
    Ok(())
}

/// `os:<login>`: who ran the command on the server's machine.
pub(crate) fn operating_system_user() -> String {
    let login = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    format!("os:{login}")
}
