//! What every API call shares: who calls, whether they may, and the
//! workflow run off the I/O threads.

use std::sync::Arc;

use enclave_access::{Access, Domain, Permission};
use enclave_audit::{Action, Outcome};
use enclave_query::{QueryEngine, references};
use enclave_review::{Workflow, WorkflowError};
use enclave_rpc::{bearer_token, status};
use enclave_state::{Destroyed, User};
use tonic::{Request, Status};

/// The API's services share one of these; cheap to clone.
#[derive(Debug, Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    access: Arc<Access>,
    workflow: Arc<Workflow>,
    engine: QueryEngine,
}

impl Api {
    pub fn new(access: Arc<Access>, workflow: Arc<Workflow>, engine: QueryEngine) -> Api {
        Api {
            inner: Arc::new(Inner {
                access,
                workflow,
                engine,
            }),
        }
    }

    pub(crate) fn access(&self) -> &Access {
        &self.inner.access
    }

    pub(crate) fn engine(&self) -> &QueryEngine {
        &self.inner.engine
    }

    /// The workflow, for steps run on the blocking pool without an audit
    /// event of their own.
    pub(crate) fn shared_workflow(&self) -> Arc<Workflow> {
        Arc::clone(&self.inner.workflow)
    }

    /// The enabled account behind the call's bearer token.
    pub(crate) async fn caller<T>(&self, request: &Request<T>) -> Result<User, Status> {
        self.inner
            .access
            .caller(bearer_token(request.metadata()))
            .await
            .map_err(status)
    }

    pub(crate) async fn check(
        &self,
        user: &User,
        domain: &Domain,
        permission: Permission,
    ) -> Result<(), Status> {
        self.inner
            .access
            .check(&user.name, domain, permission)
            .await
            .map_err(status)
    }

    /// Passes if `user` holds `permission` in any of `domains`.
    pub(crate) async fn check_any(
        &self,
        user: &User,
        domains: &[Domain],
        permission: Permission,
    ) -> Result<(), Status> {
        for domain in domains {
            if self.allows(user, domain, permission).await? {
                return Ok(());
            }
        }
        self.check(user, &domains[0], permission).await
    }

    pub(crate) async fn allows(
        &self,
        user: &User,
        domain: &Domain,
        permission: Permission,
    ) -> Result<bool, Status> {
        self.inner
            .access
            .allows(&user.name, domain, permission)
            .await
            .map_err(status)
    }

    /// Runs a workflow step on the blocking pool (the store is synchronous),
    /// audited as [`Api::audited_step`] does.
    pub(crate) async fn workflow<R: Send + 'static>(
        &self,
        audited: Audited,
        step: impl FnOnce(&Workflow) -> Result<R, WorkflowError> + Send + 'static,
    ) -> Result<R, Status> {
        let workflow = Arc::clone(&self.inner.workflow);
        self.audited_step(audited, move || step(&workflow).map_err(status))
            .await
    }

    /// Runs blocking `step` write-ahead audited: the request is durable
    /// before the step runs (an unwritable log refuses it) and its outcome
    /// before it is answered.
    pub(crate) async fn audited_step<R: Send + 'static>(
        &self,
        audited: Audited,
        step: impl FnOnce() -> Result<R, Status> + Send + 'static,
    ) -> Result<R, Status> {
        let detail = if audited.subject.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::json!({ "subject": audited.subject })
        };
        let requested = self
            .inner
            .access
            .audit()
            .request(&audited.actor, audited.action, detail)
            .await
            .map_err(status)?;
        let result = tokio::task::spawn_blocking(step)
            .await
            .map_err(|error| internal(&error))?;
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Ok, serde_json::Value::Null),
            Err(status) => (
                Outcome::Refused,
                serde_json::json!({ "code": format!("{:?}", status.code()), "message": status.message() }),
            ),
        };
        requested.finish(outcome, detail).await.map_err(status)?;
        result
    }

    /// Expires grants whose period ended (destroying what their projects
    /// held) and tables left in quarantine too long. Each sweep is audited
    /// only when something is due (the checks are reads).
    pub async fn expire_due(&self) -> Result<Vec<String>, Status> {
        self.expire_quarantine().await?;
        self.expire_grants().await
    }

    /// Asks the workflow, off the async threads, whether a sweep has work.
    async fn anything_due(
        &self,
        check: fn(&Workflow) -> Result<bool, WorkflowError>,
    ) -> Result<bool, Status> {
        let workflow = Arc::clone(&self.inner.workflow);
        tokio::task::spawn_blocking(move || check(&workflow))
            .await
            .map_err(|error| internal(&error))?
            .map_err(status)
    }

    async fn expire_quarantine(&self) -> Result<(), Status> {
        if !self.anything_due(Workflow::any_quarantine_overdue).await? {
            return Ok(());
        }
        let objects = self
            .workflow(
                audited("system", Action::BringInExpire, ""),
                Workflow::expire_quarantine,
            )
            .await?;
        for object in objects {
            references::delete(self.inner.engine.store(), &object)
                .await
                .map_err(status)?;
        }
        Ok(())
    }

    async fn expire_grants(&self) -> Result<Vec<String>, Status> {
        if !self.anything_due(Workflow::any_due).await? {
            return Ok(Vec::new());
        }
        let closed = self
            .workflow(
                audited("system", Action::GrantExpire, ""),
                Workflow::expire_due,
            )
            .await?;
        for project in &closed {
            self.destroy_holdings(project, "system").await?;
        }
        Ok(closed)
    }

    /// Destroys what a closed `project` held (its workspace tables, the
    /// results held for its outputs, the tables it brought in), audited write-ahead; the outcome
    /// lists each by name, size and SHA-256, never its contents.
    pub(crate) async fn destroy_holdings(&self, project: &str, by: &str) -> Result<(), Status> {
        let requested = self
            .inner
            .access
            .audit()
            .request(
                by,
                Action::ProjectDestroy,
                serde_json::json!({ "project": project }),
            )
            .await
            .map_err(status)?;
        let result = self.destroy(project, by).await;
        let (outcome, detail) = match &result {
            Ok(destroyed) => (Outcome::Ok, serde_json::json!({ "destroyed": destroyed })),
            Err(error) => (
                Outcome::Failed,
                serde_json::json!({ "message": error.message() }),
            ),
        };
        requested.finish(outcome, detail).await.map_err(status)?;
        let destroyed = result?;
        tracing::info!(
            project,
            items = destroyed.len(),
            "project holdings destroyed"
        );
        Ok(())
    }

    async fn destroy(&self, project: &str, by: &str) -> Result<Vec<Destroyed>, Status> {
        let mut destroyed = self
            .inner
            .engine
            .destroy_project_workspace(project)
            .await
            .map_err(|error| internal(&error))?;
        let workflow = Arc::clone(&self.inner.workflow);
        let (project, by) = (project.to_string(), by.to_string());
        let (outputs, brought_in) = tokio::task::spawn_blocking(move || {
            Ok::<_, WorkflowError>((
                workflow.destroy_outputs(&project, &by)?,
                workflow.destroy_bring_ins(&project, &by)?,
            ))
        })
        .await
        .map_err(|error| internal(&error))?
        .map_err(status)?;
        destroyed.extend(outputs);
        for (record, object) in brought_in {
            references::delete(self.inner.engine.store(), &object)
                .await
                .map_err(status)?;
            destroyed.push(record);
        }
        Ok(destroyed)
    }
}

/// What one API call records: who, what, on which record.
#[derive(Debug)]
pub(crate) struct Audited {
    actor: String,
    action: Action,
    subject: String,
}

pub(crate) fn audited(actor: &str, action: Action, subject: &str) -> Audited {
    Audited {
        actor: actor.to_string(),
        action,
        subject: subject.to_string(),
    }
}

/// A failure the user cannot act on: logged, masked.
pub(crate) fn internal(error: &dyn std::fmt::Display) -> Status {
    tracing::error!(%error, "internal error");
    Status::internal("internal error; the operator has the details")
}
