//! Errors of the query service. What reaches a user is built by
//! [`QueryError::user_message`]: refusals name their rule; engine errors that
//! could carry data values are masked.

use std::fmt;

use datafusion::error::DataFusionError;
use thiserror::Error;

/// The rules a statement can be refused by. Each has a stable id that error
/// messages, golden files and the documentation use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Only queries (and workspace CREATE/DROP) are statements a session may run.
    Statement,
    Ddl,
    Dml,
    Copy,
    Explain,
    /// A result that is not an aggregate over persons.
    RowLevel,
    /// Grouping by the person key or a record key.
    IdentifyingGroup,
    /// MIN/MAX/ARRAY_AGG/… of a sensitive or identifying column.
    ValueRevealingAggregate,
    /// A join of person-level inputs that is not on the person key.
    PersonJoin,
    /// An inner aggregate that does not keep one row per person.
    NestedAggregate,
    /// A construct the guard cannot follow persons through.
    Unsupported,
    /// A scalar subquery (could carry one person's value into a cell).
    ScalarSubquery,
    /// Names reserved for the guard's own columns.
    ReservedName,
    /// SUM/AVG of a value that may be a constant the query chose per row.
    PaddedSum,
    /// A total a publication rule (policies/disclosure.toml) cannot check:
    /// a volume column computed on before it is summed.
    Publication,
    /// A subquery over person-level rows that does not just select persons.
    PersonSubquery,
    /// A person or record key read as a value (compared with a constant,
    /// computed on, ordered by) instead of linking rows or counting persons.
    KeyValue,
    /// A statement over the size, nesting or length limits.
    InputLimit,
    /// Workspace: bad name, missing person rows, quota.
    Workspace,
    WorkspaceQuota,
    NoProject,
    ProjectExpired,
    ProjectClosed,
    TooManyQueries,
}

impl Rule {
    pub fn id(self) -> &'static str {
        match self {
            Rule::Statement => "statement",
            Rule::Ddl => "ddl",
            Rule::Dml => "dml",
            Rule::Copy => "copy",
            Rule::Explain => "explain",
            Rule::RowLevel => "row-level",
            Rule::IdentifyingGroup => "identifying-group",
            Rule::ValueRevealingAggregate => "value-revealing-aggregate",
            Rule::PersonJoin => "person-join",
            Rule::NestedAggregate => "nested-aggregate",
            Rule::Unsupported => "unsupported",
            Rule::ScalarSubquery => "scalar-subquery",
            Rule::ReservedName => "reserved-name",
            Rule::PaddedSum => "padded-sum",
            Rule::Publication => "publication",
            Rule::PersonSubquery => "person-subquery",
            Rule::KeyValue => "key-value",
            Rule::InputLimit => "input-limit",
            Rule::Workspace => "workspace",
            Rule::WorkspaceQuota => "workspace-quota",
            Rule::NoProject => "no-project",
            Rule::ProjectExpired => "project-expired",
            Rule::ProjectClosed => "project-closed",
            Rule::TooManyQueries => "too-many-queries",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[derive(Debug, Error)]
pub enum QueryError {
    /// A statement refused by a rule; the detail is plain words without data.
    #[error("refused ({rule}): {detail}")]
    Refused { rule: Rule, detail: String },
    /// The SQL does not parse or plan (unknown table or column, type error).
    /// Planning errors name query text only, never data values.
    #[error("{0}")]
    Invalid(String),
    #[error("query exceeded a resource limit: {0}")]
    ResourcesExhausted(String),
    #[error("query exceeded the time limit of {0} s")]
    Timeout(u64),
    #[error("internal error")]
    Internal(String),
}

impl QueryError {
    pub fn refused(rule: Rule, detail: impl Into<String>) -> QueryError {
        QueryError::Refused {
            rule,
            detail: detail.into(),
        }
    }

    pub fn internal(detail: impl fmt::Display) -> QueryError {
        QueryError::Internal(detail.to_string())
    }

    /// The text a client sees. Internal errors are masked: their detail is
    /// only logged, since engine errors may quote data values.
    pub fn user_message(&self) -> String {
        match self {
            QueryError::Internal(detail) => {
                tracing::error!(%detail, "internal query error");
                "internal error (logged for the operator)".to_string()
            }
            other => other.to_string(),
        }
    }
}

/// Planning errors keep their message (they quote the query, not data);
/// execution errors are masked unless they are resource limits.
impl From<DataFusionError> for QueryError {
    fn from(error: DataFusionError) -> QueryError {
        if let DataFusionError::External(inner) = error.find_root()
            && let Some(refusal) = inner.downcast_ref::<QueryError>()
        {
            return refusal.clone_refusal();
        }
        match error.find_root() {
            DataFusionError::ResourcesExhausted(detail) => {
                // The engine's detail names operators and byte counts: for
                // the log. The pools' own limits arrive as refusals above.
                tracing::warn!(detail = first_line(detail), "query over a resource limit");
                QueryError::ResourcesExhausted(
                    "the query needs more memory than the server allows; filter earlier, group by fewer columns or narrow the period".into(),
                )
            }
            DataFusionError::SQL(..)
            | DataFusionError::Plan(..)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(..) => {
                QueryError::Invalid(first_line(&error.find_root().to_string()))
            }
            _ => QueryError::internal(error),
        }
    }
}

impl QueryError {
    /// A copy of a refusal carried through DataFusion (which owns the box).
    fn clone_refusal(&self) -> QueryError {
        match self {
            QueryError::Refused { rule, detail } => QueryError::refused(*rule, detail.clone()),
            QueryError::Invalid(text) => QueryError::Invalid(text.clone()),
            QueryError::ResourcesExhausted(text) => QueryError::ResourcesExhausted(text.clone()),
            QueryError::Timeout(seconds) => QueryError::Timeout(*seconds),
            QueryError::Internal(text) => QueryError::Internal(text.clone()),
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}
