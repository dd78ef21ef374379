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
    redb::CommitError
);

/// PostgreSQL's own message says what went wrong; the error's text alone
/// is often just "db error".
impl From<postgres::Error> for StateError {
    fn from(error: postgres::Error) -> StateError {
        match error.as_db_error() {
            Some(db) => StateError::Storage(format!("{error}: {}", db.message())),
            None => StateError::Storage(error.to_string()),
        }
    }
}
