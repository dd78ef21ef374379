use thiserror::Error;
use tonic::Status;

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

impl From<AccessError> for Status {
    fn from(error: AccessError) -> Status {
        match error {
            AccessError::Unauthenticated | AccessError::BadCredentials => {
                Status::unauthenticated(error.to_string())
            }
            AccessError::Denied(_) => Status::permission_denied(error.to_string()),
            AccessError::Invalid(_) => Status::invalid_argument(error.to_string()),
            AccessError::Throttled(_) => Status::resource_exhausted(error.to_string()),
            AccessError::Audit(error) => error.into(),
            AccessError::Policy(_) | AccessError::State(_) | AccessError::Internal(_) => {
                tracing::error!(%error, "access check failed");
                Status::internal("internal error; the operator has the details")
            }
        }
    }
}
