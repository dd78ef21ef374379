use enclave_core::error::{ErrorKind, UserFacing};
use enclave_state::StateError;
use thiserror::Error;

use crate::application::Status;

/// Why a workflow step was refused. Every message says what to do instead
/// and carries no data values.
#[derive(Debug, Error)]
pub enum WorkflowError {
    #[error("no application {0}")]
    NoApplication(String),
    #[error("no output release {0}")]
    NoOutputRelease(String),
    #[error("no bring-in {0}")]
    NoBringIn(String),
    #[error("application {id} is {status}; {action} needs it to be {expected}")]
    WrongStatus {
        id: String,
        status: Status,
        action: &'static str,
        expected: &'static str,
    },
    #[error("invalid {field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("separation of duties: {0}")]
    SeparationOfDuties(String),
    #[error("conflict of interest: {0}")]
    Conflict(String),
    #[error("no quorum: {votes} eligible votes recorded, {quorum} needed before a decision")]
    NoQuorum { votes: usize, quorum: usize },
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    State(#[from] StateError),
}

impl WorkflowError {
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> WorkflowError {
        WorkflowError::Invalid {
            field,
            problem: problem.into(),
        }
    }
}

impl UserFacing for WorkflowError {
    fn kind(&self) -> ErrorKind {
        match self {
            WorkflowError::NoApplication(_)
            | WorkflowError::NoOutputRelease(_)
            | WorkflowError::NoBringIn(_) => ErrorKind::NotFound,
            WorkflowError::WrongStatus { .. } | WorkflowError::NoQuorum { .. } => {
                ErrorKind::FailedPrecondition
            }
            // A user named in a step (a reviewer, a member) who does not
            // exist is a wrong field of that step.
            WorkflowError::Invalid { .. }
            | WorkflowError::State(StateError::NoUser(_) | StateError::Invalid { .. }) => {
                ErrorKind::InvalidArgument
            }
            WorkflowError::SeparationOfDuties(_)
            | WorkflowError::Conflict(_)
            | WorkflowError::NotAllowed(_) => ErrorKind::PermissionDenied,
            WorkflowError::State(error) => error.kind(),
        }
    }

    fn user_message(&self) -> String {
        match self {
            WorkflowError::State(error) => error.user_message(),
            _ => self.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_kind_and_store_faults_stay_masked() {
        let cases = [
            (
                WorkflowError::NoApplication("7".into()),
                ErrorKind::NotFound,
            ),
            (
                WorkflowError::NoQuorum {
                    votes: 1,
                    quorum: 2,
                },
                ErrorKind::FailedPrecondition,
            ),
            (
                WorkflowError::State(StateError::NoUser("bob".into())),
                ErrorKind::InvalidArgument,
            ),
            (
                WorkflowError::Conflict("applicant".into()),
                ErrorKind::PermissionDenied,
            ),
            (
                WorkflowError::State(StateError::Busy),
                ErrorKind::Unavailable,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
            assert_eq!(error.user_message(), error.to_string());
        }
        let fault = WorkflowError::State(StateError::Storage("/srv/state".into()));
        assert_eq!(fault.kind(), ErrorKind::Internal);
        assert!(!fault.user_message().contains("/srv"));
    }
}
