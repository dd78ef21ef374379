//! Errors of the query service. What reaches a user is built by
//! [`QueryError::user_message`]: refusals name their rule; engine errors that
//! could carry data values are masked.

use std::fmt;

use datafusion::error::DataFusionError;
use enclave_core::error::{ErrorKind, UserFacing};
use thiserror::Error;

/// Declares [`Rule`] from one list of variants and their ids, so that the
/// enum, [`Rule::id`] and [`Rule::ALL`] cannot disagree.
macro_rules! rules {
    ($($(#[$doc:meta])* $variant:ident => $id:literal,)*) => {
        /// The rules a statement can be refused by. Each has a stable id
        /// that error messages, the gRPC metadata `x-enclave-rule`, golden
        /// files and the documentation use.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Rule {
            $($(#[$doc])* $variant,)*
        }

        impl Rule {
            /// Every rule.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];

            pub fn id(self) -> &'static str {
                match self {
                    $(Rule::$variant => $id,)*
                }
            }
        }
    };
}

rules! {
    /// Only queries (and workspace CREATE/DROP) are statements a session may run.
    Statement => "statement",
    Ddl => "ddl",
    Dml => "dml",
    Copy => "copy",
    Explain => "explain",
    /// A result that is not an aggregate over persons.
    RowLevel => "row-level",
    /// Grouping by the person key or a record key.
    IdentifyingGroup => "identifying-group",
    /// MIN/MAX/ARRAY_AGG/… of a sensitive or identifying column.
    ValueRevealingAggregate => "value-revealing-aggregate",
    /// A join of person-level inputs that is not on the person key.
    PersonJoin => "person-join",
    /// An inner aggregate that does not keep one row per person.
    NestedAggregate => "nested-aggregate",
    /// A construct the guard cannot follow persons through.
    Unsupported => "unsupported",
    /// A scalar subquery (could carry one person's value into a cell).
    ScalarSubquery => "scalar-subquery",
    /// Names reserved for the guard's own columns.
    ReservedName => "reserved-name",
    /// SUM/AVG of a value that may be a constant the query chose per row.
    PaddedSum => "padded-sum",
    /// A total a publication rule (policies/disclosure.toml) cannot check:
    /// a volume column computed on before it is summed.
    Publication => "publication",
    /// A subquery over person-level rows that does not just select persons.
    PersonSubquery => "person-subquery",
    /// A person or record key read as a value (compared with a constant,
    /// computed on, ordered by) instead of linking rows or counting persons.
    KeyValue => "key-value",
    /// A statement over the size, nesting or length limits.
    InputLimit => "input-limit",
    /// Workspace: bad name, missing person rows, quota.
    Workspace => "workspace",
    WorkspaceQuota => "workspace-quota",
    NoProject => "no-project",
    ProjectExpired => "project-expired",
    ProjectClosed => "project-closed",
    TooManyQueries => "too-many-queries",
    /// A catalog table or column the project's grant leaves out.
    NotGranted => "not-granted",
    /// The project's values answered fresh by the release ledger would
    /// pass its budget (repeats of earlier answers stay free).
    FreshValueBudget => "fresh-value-budget",
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
}

impl UserFacing for QueryError {
    fn kind(&self) -> ErrorKind {
        match self {
            QueryError::Refused { rule, .. } => rule.kind(),
            QueryError::Invalid(_) => ErrorKind::InvalidArgument,
            QueryError::ResourcesExhausted(_) => ErrorKind::ResourceExhausted,
            QueryError::Timeout(_) => ErrorKind::Timeout,
            QueryError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Internal errors are masked: their detail is only logged, since
    /// engine errors may quote data values.
    fn user_message(&self) -> String {
        match self {
            QueryError::Internal(detail) => {
                tracing::error!(%detail, "internal query error");
                "internal error (logged for the operator)".to_string()
            }
            other => other.to_string(),
        }
    }

    fn rule(&self) -> Option<&'static str> {
        match self {
            QueryError::Refused { rule, .. } => Some(rule.id()),
            _ => None,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            QueryError::Refused { rule, .. } => Some(format!(
                "rule `{rule}` and what it allows instead: docs/query-rules.md, section \"{}\"",
                rule.documented_in()
            )),
            QueryError::Invalid(_) => Some(PLANNING_HINT.into()),
            QueryError::ResourcesExhausted(_)
            | QueryError::Timeout(_)
            | QueryError::Internal(_) => None,
        }
    }
}

/// What to check when a statement does not plan.
const PLANNING_HINT: &str = "the session's tables and their column types: SHOW TABLES, \
    SHOW COLUMNS FROM <schema.table>, or the catalog (`enclave catalog`, the portal's catalog page)";

impl Rule {
    /// The section of docs/query-rules.md that explains the rule and the
    /// statements it allows instead.
    pub fn documented_in(self) -> &'static str {
        match self {
            Rule::Statement
            | Rule::Ddl
            | Rule::Dml
            | Rule::Copy
            | Rule::Explain
            | Rule::ReservedName
            | Rule::InputLimit => "Statement rules",
            Rule::RowLevel => "Contributors, not groups",
            Rule::ValueRevealingAggregate | Rule::PaddedSum | Rule::Unsupported => {
                "The aggregates the guard releases"
            }
            Rule::IdentifyingGroup | Rule::PersonJoin | Rule::NestedAggregate | Rule::KeyValue => {
                "Lineage that cannot be washed off"
            }
            Rule::ScalarSubquery | Rule::PersonSubquery => {
                "Nothing computed from fewer than k persons steers the release"
            }
            Rule::Publication => "Publication rules",
            Rule::Workspace | Rule::WorkspaceQuota => "Workspaces",
            Rule::NoProject | Rule::ProjectExpired | Rule::ProjectClosed | Rule::NotGranted => {
                "What a session sees"
            }
            Rule::TooManyQueries => "Limits",
            Rule::FreshValueBudget => "Fresh-value budget",
        }
    }

    /// The kind of a refusal: the project's state denies permission, the
    /// server's limits or the project's budget are used up, anything else
    /// is a statement the rules do not allow.
    pub fn kind(self) -> ErrorKind {
        match self {
            Rule::NoProject | Rule::ProjectExpired | Rule::ProjectClosed | Rule::NotGranted => {
                ErrorKind::PermissionDenied
            }
            Rule::TooManyQueries | Rule::WorkspaceQuota | Rule::FreshValueBudget => {
                ErrorKind::ResourceExhausted
            }
            Rule::Statement
            | Rule::Ddl
            | Rule::Dml
            | Rule::Copy
            | Rule::Explain
            | Rule::RowLevel
            | Rule::IdentifyingGroup
            | Rule::ValueRevealingAggregate
            | Rule::PersonJoin
            | Rule::NestedAggregate
            | Rule::Unsupported
            | Rule::ScalarSubquery
            | Rule::ReservedName
            | Rule::PaddedSum
            | Rule::Publication
            | Rule::PersonSubquery
            | Rule::KeyValue
            | Rule::InputLimit
            | Rule::Workspace => ErrorKind::InvalidArgument,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rule's hint names a section the documentation has, and the
    /// rule's id appears in that section.
    #[test]
    fn every_rule_is_explained_where_its_hint_points() {
        let docs = include_str!("../../../docs/query-rules.md");
        for &rule in Rule::ALL {
            let heading = rule.documented_in();
            let start = docs
                .lines()
                .position(|line| {
                    line.starts_with('#') && line.trim_start_matches('#').trim() == heading
                })
                .unwrap_or_else(|| panic!("{rule}: no section \"{heading}\""));
            let section: Vec<&str> = docs
                .lines()
                .skip(start + 1)
                .take_while(|line| !line.starts_with('#'))
                .collect();
            assert!(
                section
                    .iter()
                    .any(|line| line.contains(&format!("`{}`", rule.id()))),
                "{rule} is not explained in \"{heading}\""
            );
            let hint = QueryError::refused(rule, "d").hint().unwrap();
            assert!(hint.is_ascii() && hint.contains(heading), "{hint}");
        }
    }

    #[test]
    fn rule_ids_are_distinct() {
        let mut ids: Vec<&str> = Rule::ALL.iter().map(|rule| rule.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
    }
}
