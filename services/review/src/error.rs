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
    State(#[from] enclave_state::StateError),
}

impl WorkflowError {
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> WorkflowError {
        WorkflowError::Invalid {
            field,
            problem: problem.into(),
        }
    }
}
