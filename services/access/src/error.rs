use enclave_core::error::{ErrorKind, UserFacing};
use thiserror::Error;

/// Why a call was not let through. Messages name the permission, never data.
#[derive(Debug, Error)]
pub enum AccessError {
    #[error("log in first: the bearer token is missing, invalid or expired")]
    Unauthenticated,
    #[error("invalid user name or password")]
    BadCredentials,
    #[error("login refused: {0}")]
    Invalid(&'static str),
    #[error("too many login attempts for this account or from this address; retry after {0} s")]
    Throttled(u64),
    #[error("permission denied: {0}")]
    Denied(String),
    #[error("access policy: {0}")]
    Policy(String),
    #[error(transparent)]
    State(#[from] enclave_state::StateError),
    #[error("access check failed: {0}")]
    Internal(String),
    #[error(transparent)]
    Audit(#[from] enclave_audit::AuditError),
}

impl UserFacing for AccessError {
    fn kind(&self) -> ErrorKind {
        match self {
            AccessError::Unauthenticated | AccessError::BadCredentials => {
                ErrorKind::Unauthenticated
            }
            AccessError::Denied(_) => ErrorKind::PermissionDenied,
            AccessError::Invalid(_) => ErrorKind::InvalidArgument,
            AccessError::Throttled(_) => ErrorKind::ResourceExhausted,
            AccessError::Audit(error) => error.kind(),
            AccessError::Policy(_) | AccessError::State(_) | AccessError::Internal(_) => {
                ErrorKind::Internal
            }
        }
    }

    /// Faults are logged and masked.
    fn user_message(&self) -> String {
        match self {
            AccessError::Audit(error) => error.user_message(),
            AccessError::Policy(_) | AccessError::State(_) | AccessError::Internal(_) => {
                tracing::error!(error = %self, "access check failed");
                "internal error; the operator has the details".into()
            }
            _ => self.to_string(),
        }
    }
}
