//! Where a state directory's audit log lives. `serve` remembers the log's
//! directory and signing key beside the state (`STATE/audit-log.json`), so
//! a restart that forgets `--audit-dir` or `--audit-key` is refused with
//! the command that continues the log, instead of quietly starting a
//! second log under a new key.

use std::path::{Path, PathBuf};

use enclave_audit::AuditLog;
use serde::{Deserialize, Serialize};

use crate::commands::CommandError;

const HOME_FILE: &str = "audit-log.json";

/// An audit log's directory and its checkpoint signing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuditHome {
    pub(crate) dir: PathBuf,
    pub(crate) key: PathBuf,
}

impl AuditHome {
    /// The log in `dir` signed with `key`, as absolute paths.
    pub(crate) fn new(dir: &Path, key: &Path) -> Result<AuditHome, CommandError> {
        Ok(AuditHome {
            dir: absolute(dir)?,
            key: absolute(key)?,
        })
    }

    /// Refuses to open this log when the state directory's log is another
    /// one that still exists, or when this one exists without its key.
    pub(crate) fn check(&self, state: &Path) -> Result<(), CommandError> {
        if let Some(remembered) = remembered(state)?
            && remembered != *self
            && AuditLog::exists_in(&remembered.dir)?
        {
            return Err(CommandError::AuditElsewhere {
                state: state.display().to_string(),
                dir: remembered.dir.display().to_string(),
                key: remembered.key.display().to_string(),
            });
        }
        if AuditLog::exists_in(&self.dir)? && !self.key.exists() {
            return Err(CommandError::AuditKeyMissing {
                dir: self.dir.display().to_string(),
                key: self.key.display().to_string(),
            });
        }
        Ok(())
    }

    /// Remembers this log as the state directory's.
    pub(crate) fn remember(&self, state: &Path) -> Result<(), CommandError> {
        let path = state.join(HOME_FILE);
        let text =
            serde_json::to_vec_pretty(self).map_err(|error| work_dir(&path, error.into()))?;
        std::fs::create_dir_all(state).map_err(|error| work_dir(state, error))?;
        std::fs::write(&path, text).map_err(|error| work_dir(&path, error))
    }
}

/// The log `serve` last opened for `state`, if any.
fn remembered(state: &Path) -> Result<Option<AuditHome>, CommandError> {
    let path = state.join(HOME_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| work_dir(&path, error.into())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(work_dir(&path, error)),
    }
}

fn absolute(path: &Path) -> Result<PathBuf, CommandError> {
    std::path::absolute(path).map_err(|error| work_dir(path, error))
}

fn work_dir(path: &Path, source: std::io::Error) -> CommandError {
    CommandError::WorkDir {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_remembered_elsewhere_that_still_exists_is_named() {
        let state = tempfile::tempdir().unwrap();
        let first =
            AuditHome::new(&state.path().join("elsewhere"), &state.path().join("k1")).unwrap();
        first.check(state.path()).unwrap();
        first.remember(state.path()).unwrap();
        let default =
            AuditHome::new(&state.path().join("audit"), &state.path().join("k2")).unwrap();
        // The remembered log holds nothing yet: another may take its place.
        default.check(state.path()).unwrap();
        std::fs::create_dir_all(&first.dir).unwrap();
        std::fs::write(first.dir.join("00000000000000000001.seg"), b"x").unwrap();
        let refused = default.check(state.path()).unwrap_err().to_string();
        assert!(
            refused.contains(&format!("--audit-dir {}", first.dir.display())),
            "{refused}"
        );
        assert!(
            refused.contains(&format!("--audit-key {}", first.key.display())),
            "{refused}"
        );
        first.check(state.path()).unwrap_err(); // its key file is missing
        std::fs::write(&first.key, b"key").unwrap();
        first.check(state.path()).unwrap();
    }
}
