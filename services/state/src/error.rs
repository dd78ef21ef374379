use enclave_core::error::{ErrorKind, UserFacing};
use thiserror::Error;

/// Why a state change or lookup failed. Messages name the offending field,
/// never a password.
#[derive(Debug, Error)]
pub enum StateError {
    #[error("state store: {0}")]
    Storage(String),
    #[error("the state store is busy in another process; try again")]
    Busy,
    #[error("state record could not be decoded: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("user `{0}` already exists")]
    UserExists(String),
    #[error("no user `{0}`")]
    NoUser(String),
    #[error("project `{0}` already exists")]
    ProjectExists(String),
    #[error("no project `{0}`")]
    NoProject(String),
    #[error("invalid {field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("password hashing failed")]
    PasswordHash,
}

impl StateError {
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> StateError {
        StateError::Invalid {
            field,
            problem: problem.into(),
        }
    }
}

impl UserFacing for StateError {
    fn kind(&self) -> ErrorKind {
        match self {
            StateError::Storage(_) | StateError::Decode(_) | StateError::PasswordHash => {
                ErrorKind::Internal
            }
            StateError::Busy => ErrorKind::Unavailable,
            StateError::UserExists(_) | StateError::ProjectExists(_) => ErrorKind::AlreadyExists,
            StateError::NoUser(_) | StateError::NoProject(_) => ErrorKind::NotFound,
            StateError::Invalid { .. } => ErrorKind::InvalidArgument,
        }
    }

    /// Faults are logged and masked; the rest name the field or record.
    fn user_message(&self) -> String {
        if self.kind() == ErrorKind::Internal {
            tracing::error!(error = %self, "state store failed");
            return "internal error; the operator has the details".into();
        }
        self.to_string()
    }
}

macro_rules! storage_error {
    ($($source:ty),*) => {$(
        impl From<$source> for StateError {
            fn from(error: $source) -> StateError {
                StateError::Storage(error.to_string())
            }
        }
    )*};
}

storage_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    tokio::task::JoinError
);

/// PostgreSQL's own message says what went wrong; the error's text alone
/// is often just "db error".
impl From<tokio_postgres::Error> for StateError {
    fn from(error: tokio_postgres::Error) -> StateError {
        match error.as_db_error() {
            Some(db) => StateError::Storage(format!("{error}: {}", db.message())),
            None => StateError::Storage(error.to_string()),
        }
    }
}

/// A connection that could not be had: the database's own error, or the
/// pool's wait running out.
impl From<deadpool_postgres::PoolError> for StateError {
    fn from(error: deadpool_postgres::PoolError) -> StateError {
        match error {
            deadpool_postgres::PoolError::Backend(error) => error.into(),
            other => StateError::Storage(format!("state database connection: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_masked_and_mistakes_say_what_is_wrong() {
        let fault = StateError::Storage("disk at /srv/state full".into());
        assert_eq!(fault.kind(), ErrorKind::Internal);
        assert!(!fault.user_message().contains("/srv"));
        let cases = [
            (StateError::Busy, ErrorKind::Unavailable),
            (StateError::UserExists("a".into()), ErrorKind::AlreadyExists),
            (StateError::NoProject("p".into()), ErrorKind::NotFound),
            (
                StateError::invalid("k", "at least 10"),
                ErrorKind::InvalidArgument,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind);
            assert_eq!(error.user_message(), error.to_string());
        }
    }
}
