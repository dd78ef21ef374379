//! `Applications`: the application lifecycle and committee review.

use enclave_access::{Domain, Permission, permissions};
use enclave_audit::Action;
use enclave_review::{Application, Decision, Workflow};
use enclave_state::User;
use tonic::{Request, Response, Status};

use crate::context::audited;
use crate::proto::applications_server::Applications;
use crate::proto::{
    self, AmendApplicationRequest, ApplicationRef, AssignReviewersRequest, CloseApplicationRequest,
    CreateApplicationRequest, DecideRequest, DeclareConflictRequest, EditApplicationRequest,
    ListApplicationsRequest, ListApplicationsResponse, SendMessageRequest, VoteRequest,
};
use crate::{Api, convert};

type Reply = Result<Response<proto::Application>, Status>;

fn reply(application: &Application) -> Reply {
    Ok(Response::new(convert::application(application)))
}

fn domain(id: &str) -> Domain {
    Domain::Application(id.to_string())
}

impl Api {
    /// Checks `permission` on application `id` (its own roles first, then
    /// account roles) and applies `transition` as the caller.
    async fn transition(
        &self,
        user: &User,
        id: String,
        (permission, action): (Permission, Action),
        transition: impl FnOnce(
            &mut Application,
            enclave_review::Act<'_>,
        )
            -> Result<Option<enclave_state::Project>, enclave_review::WorkflowError>
        + Send
        + 'static,
    ) -> Result<Application, Status> {
        self.check_any(user, &[domain(&id), Domain::System], permission)
            .await?;
        let by = user.name.clone();
        self.workflow(audited(&by, action, &id), move |workflow| {
            workflow.change(&id, &by, transition)
        })
        .await
    }
}

#[tonic::async_trait]
impl Applications for Api {
    async fn create(&self, request: Request<CreateApplicationRequest>) -> Reply {
        let user = self.caller(&request).await?;
        self.check(&user, &Domain::System, permissions::APPLICATION_CREATE)
            .await?;
        let proposal = convert::proposal(request.into_inner().proposal)?;
        let application = self
            .workflow(
                audited(&user.name, Action::ApplicationCreate, ""),
                move |workflow| workflow.create(&user.name, proposal),
            )
            .await?;
        reply(&application)
    }

    async fn edit(&self, request: Request<EditApplicationRequest>) -> Reply {
        let user = self.caller(&request).await?;
        let EditApplicationRequest { id, proposal } = request.into_inner();
        self.check(&user, &domain(&id), permissions::APPLICATION_EDIT)
            .await?;
        let proposal = convert::proposal(proposal)?;
        let application = self
            .workflow(
                audited(&user.name, Action::ApplicationEdit, &id),
                move |workflow| workflow.edit(&id, &user.name, proposal),
            )
            .await?;
        reply(&application)
    }

    async fn submit(&self, request: Request<ApplicationRef>) -> Reply {
        let user = self.caller(&request).await?;
        let id = request.into_inner().id;
        let application = self
            .transition(
                &user,
                id,
                (permissions::APPLICATION_SUBMIT, Action::ApplicationSubmit),
                |a, act| a.submit(act).map(|()| None),
            )
            .await?;
        reply(&application)
    }

    async fn withdraw(&self, request: Request<ApplicationRef>) -> Reply {
        let user = self.caller(&request).await?;
        let id = request.into_inner().id;
        let application = self
            .transition(
                &user,
                id,
                (
                    permissions::APPLICATION_WITHDRAW,
                    Action::ApplicationWithdraw,
                ),
                |a, act| a.withdraw(act).map(|()| None),
            )
            .await?;
        reply(&application)
    }

    async fn amend(&self, request: Request<AmendApplicationRequest>) -> Reply {
        let user = self.caller(&request).await?;
        let AmendApplicationRequest { id, terms } = request.into_inner();
        self.check(&user, &domain(&id), permissions::APPLICATION_AMEND)
            .await?;
        let terms = convert::terms(terms)?;
        let application = self
            .workflow(
                audited(&user.name, Action::ApplicationAmend, &id),
                move |workflow| workflow.amend(&id, &user.name, terms),
            )
            .await?;
        reply(&application)
    }

    async fn get(&self, request: Request<ApplicationRef>) -> Reply {
        let user = self.caller(&request).await?;
        let id = request.into_inner().id;
        self.check_any(
            &user,
            &[domain(&id), Domain::System],
            permissions::APPLICATION_READ,
        )
        .await?;
        let application = self
            .workflow(
                audited(&user.name, Action::ApplicationRead, &id),
                move |workflow| workflow.application(&id),
            )
            .await?;
        reply(&application)
    }

    async fn list(
        &self,
        request: Request<ListApplicationsRequest>,
    ) -> Result<Response<ListApplicationsResponse>, Status> {
        let user = self.caller(&request).await?;
        self.expire_due().await?;
        let sees_all = self
            .allows(&user, &Domain::System, permissions::APPLICATION_LIST)
            .await?;
        let status = request.into_inner().status;
        let applications = self
            .workflow(
                audited(&user.name, Action::ApplicationList, ""),
                Workflow::applications,
            )
            .await?;
        let applications = applications
            .iter()
            .filter(|a| sees_all || a.is_member(&user.name))
            .filter(|a| status.is_empty() || a.status.name() == status)
            .map(convert::application)
            .collect();
        Ok(Response::new(ListApplicationsResponse { applications }))
    }

    async fn assign_reviewers(&self, request: Request<AssignReviewersRequest>) -> Reply {
        let user = self.caller(&request).await?;
        self.check(&user, &Domain::System, permissions::APPLICATION_ASSIGN)
            .await?;
        let AssignReviewersRequest { id, reviewers } = request.into_inner();
        let application = self
            .workflow(
                audited(&user.name, Action::ApplicationAssign, &id),
                move |workflow| workflow.assign(&id, &user.name, &reviewers),
            )
            .await?;
        reply(&application)
    }

    async fn declare_conflict(&self, request: Request<DeclareConflictRequest>) -> Reply {
        let user = self.caller(&request).await?;
        let DeclareConflictRequest { id, reason } = request.into_inner();
        let application = self
            .transition(
                &user,
                id,
                (
                    permissions::APPLICATION_DECLARE_CONFLICT,
                    Action::ApplicationDeclareConflict,
                ),
                move |a, act| a.declare_conflict(&reason, act).map(|()| None),
            )
            .await?;
        reply(&application)
    }

    async fn vote(&self, request: Request<VoteRequest>) -> Reply {
        let user = self.caller(&request).await?;
        let VoteRequest {
            id,
            choice,
            opinion,
        } = request.into_inner();
        let choice = convert::vote_request(choice)?;
        let application = self
            .transition(
                &user,
                id,
                (permissions::APPLICATION_VOTE, Action::ApplicationVote),
                move |a, act| a.vote(choice, &opinion, act).map(|()| None),
            )
            .await?;
        reply(&application)
    }

    async fn decide(&self, request: Request<DecideRequest>) -> Reply {
        let user = self.caller(&request).await?;
        self.check(&user, &Domain::System, permissions::APPLICATION_DECIDE)
            .await?;
        let request = request.into_inner();
        let decision: Decision = convert::decision(&request)?;
        let (id, note) = (request.id, request.note);
        let by = user.name.clone();
        let application = self
            .workflow(
                audited(&by, Action::ApplicationDecide, &id),
                move |workflow| workflow.change(&id, &by, |a, act| a.decide(decision, &note, act)),
            )
            .await?;
        reply(&application)
    }

    async fn send_message(&self, request: Request<SendMessageRequest>) -> Reply {
        let user = self.caller(&request).await?;
        let SendMessageRequest { id, text } = request.into_inner();
        let application = self
            .transition(
                &user,
                id,
                (permissions::APPLICATION_MESSAGE, Action::ApplicationMessage),
                move |a, act| a.message(&text, act).map(|()| None),
            )
            .await?;
        reply(&application)
    }

    async fn close(&self, request: Request<CloseApplicationRequest>) -> Reply {
        let user = self.caller(&request).await?;
        // The history names the step and who took it; the note is optional.
        let CloseApplicationRequest { id, note } = request.into_inner();
        let application = self
            .transition(
                &user,
                id,
                (permissions::APPLICATION_CLOSE, Action::ApplicationClose),
                move |a, act| a.close(&note, act).map(Some),
            )
            .await?;
        self.destroy_holdings(&application.proposal.project_id, &user.name)
            .await?;
        reply(&application)
    }
}
