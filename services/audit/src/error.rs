use std::path::Path;

use enclave_core::error::{ErrorKind, UserFacing};
use thiserror::Error;

/// Why the audit log could not do what was asked. When the disk fails
/// (`Io`) the log stays failed: every later event is refused, so the
/// actions they record are refused too. Any other refusal refuses only the
/// events it concerns.
#[derive(Debug, Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "audit log: the log cannot be written; actions are refused until an operator repairs it"
    )]
    Unwritable,
    #[error("audit signing key: {0}")]
    Key(String),
    #[error("audit event too large: {0} bytes")]
    TooLarge(usize),
    #[error("audit log: {0}")]
    Corrupt(String),
    #[error("audit archive: {0} is not an archive address; give s3://bucket/prefix")]
    ArchiveAddress(String),
    #[error(
        "audit archive: bucket {bucket} does not have S3 Object Lock enabled, so archived audit objects could be deleted; refusing to start (use a bucket created with Object Lock)"
    )]
    ArchiveUnlocked { bucket: String },
    #[error("audit archive {location}: {operation} failed: {message}")]
    Archive {
        location: String,
        operation: &'static str,
        message: String,
    },
}

impl AuditError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> AuditError {
        AuditError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl UserFacing for AuditError {
    /// Every audit failure refuses the action it would have recorded.
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }

    /// The details (paths, OS errors) stay in the server's log.
    fn user_message(&self) -> String {
        tracing::error!(error = %self, "audit log");
        "the audit log cannot record this action, so it is refused; the operator has the details"
            .into()
    }
}
