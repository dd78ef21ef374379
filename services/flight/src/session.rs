//! What a Flight SQL call works in: one project (researchers), or the
//! read-only audit schema (operators).

use enclave_audit::Action;
use enclave_query::WORKSPACE_SCHEMA;
use enclave_query::{AuditSession, Prepared, ProjectSession, QueryError, TableInfo};
use enclave_state::AUDIT_SCOPE;

#[derive(Debug, Clone)]
pub(crate) enum Session {
    Project(ProjectSession),
    Audit(AuditSession),
}

impl Session {
    pub(crate) fn user(&self) -> &str {
        match self {
            Session::Project(session) => session.user(),
            Session::Audit(session) => session.user(),
        }
    }

    /// The project id, or `audit`: what prepared statements are bound to.
    pub(crate) fn scope(&self) -> &str {
        match self {
            Session::Project(session) => &session.project().id,
            Session::Audit(_) => AUDIT_SCOPE,
        }
    }

    /// The action its statements are recorded as.
    pub(crate) fn audit_action(&self) -> Action {
        match self {
            Session::Project(_) => Action::Query,
            Session::Audit(_) => Action::AuditQuery,
        }
    }

    pub(crate) async fn prepare(&self, sql: &str) -> Result<Prepared, QueryError> {
        match self {
            Session::Project(session) => session.prepare(sql).await,
            Session::Audit(session) => session.prepare(sql).await,
        }
    }

    pub(crate) async fn tables(&self) -> Result<Vec<TableInfo>, QueryError> {
        match self {
            Session::Project(session) => session.tables().await,
            Session::Audit(session) => Ok(session.tables()),
        }
    }

    /// The schemas metadata calls list (a project's workspace even when empty).
    pub(crate) async fn schemas(&self) -> Result<Vec<String>, QueryError> {
        let mut schemas: Vec<String> = self
            .tables()
            .await?
            .into_iter()
            .map(|table| table.schema)
            .collect();
        if let Session::Project(_) = self {
            schemas.push(WORKSPACE_SCHEMA.to_string());
        }
        schemas.sort();
        schemas.dedup();
        Ok(schemas)
    }
}
