//! `Users` (accounts, admin) and `Grants` (the projects approvals made, and
//! what the release ledger holds of each).

use std::sync::Arc;

use enclave_access::{Domain, permissions};
use enclave_audit::Action;
use enclave_rpc::status;
use enclave_state::{Role, StateError};
use tonic::{Request, Response, Status};

use crate::context::{Audited, audited, internal};
use crate::proto::grants_server::Grants;
use crate::proto::users_server::Users;
use crate::proto::{
    AddUserRequest, GrantLedger, GrantLedgerRequest, ListGrantsRequest, ListGrantsResponse,
    ListUsersRequest, ListUsersResponse, SetDisabledRequest, User,
};
use crate::{Api, convert};

#[tonic::async_trait]
impl Users for Api {
    async fn list(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        let caller = self.caller(&request).await?;
        self.check(&caller, &Domain::System, permissions::USER_LIST)
            .await?;
        let audited = audited(&caller.name, Action::UserList, "");
        let users = self.state(audited, |state| state.users()).await?;
        Ok(Response::new(ListUsersResponse {
            users: users.iter().map(convert::user).collect(),
        }))
    }

    async fn add(&self, request: Request<AddUserRequest>) -> Result<Response<User>, Status> {
        let caller = self.caller(&request).await?;
        self.check(&caller, &Domain::System, permissions::USER_MANAGE)
            .await?;
        let AddUserRequest {
            name,
            role,
            password,
        } = request.into_inner();
        let role: Role = role
            .parse()
            .map_err(|e: StateError| Status::invalid_argument(e.to_string()))?;
        let audited = audited(&caller.name, Action::UserAdd, &name);
        let user = self
            .state(audited, move |state| state.add_user(&name, role, &password))
            .await?;
        tracing::info!(by = caller.name, user = user.name, %role, "account added");
        Ok(Response::new(convert::user(&user)))
    }

    async fn set_disabled(
        &self,
        request: Request<SetDisabledRequest>,
    ) -> Result<Response<User>, Status> {
        let caller = self.caller(&request).await?;
        self.check(&caller, &Domain::System, permissions::USER_MANAGE)
            .await?;
        let SetDisabledRequest { name, disabled } = request.into_inner();
        if name == caller.name {
            return Err(Status::failed_precondition(
                "you cannot suspend your own account",
            ));
        }
        let action = if disabled {
            Action::UserSuspend
        } else {
            Action::UserRestore
        };
        let audited = audited(&caller.name, action, &name);
        let user = self
            .state(audited, move |state| state.set_disabled(&name, disabled))
            .await?;
        Ok(Response::new(convert::user(&user)))
    }
}

#[tonic::async_trait]
impl Grants for Api {
    async fn list(
        &self,
        request: Request<ListGrantsRequest>,
    ) -> Result<Response<ListGrantsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let sees_all = self
            .allows(&caller, &Domain::System, permissions::APPLICATION_LIST)
            .await?;
        let audited = audited(&caller.name, Action::GrantList, "");
        let projects = self.state(audited, |state| state.projects()).await?;
        let today = self.access().clock().today();
        let grants = projects
            .iter()
            .filter(|p| sees_all || p.members.contains(&caller.name))
            .map(|p| convert::grant_message(p, p.is_open_on(today)))
            .collect();
        Ok(Response::new(ListGrantsResponse { grants }))
    }

    async fn ledger(
        &self,
        request: Request<GrantLedgerRequest>,
    ) -> Result<Response<GrantLedger>, Status> {
        let caller = self.caller(&request).await?;
        let id = request.into_inner().project_id;
        let sees_all = self
            .allows(&caller, &Domain::System, permissions::APPLICATION_LIST)
            .await?;
        let audited = audited(&caller.name, Action::LedgerRead, &id);
        let lookup = id.clone();
        let project = self
            .state(audited, move |state| state.project(&lookup))
            .await?
            .filter(|project| sees_all || project.members.contains(&caller.name))
            .ok_or_else(|| Status::not_found(format!("you have no project {id}")))?;
        let ledger = self
            .engine()
            .project_ledger(&project.id)
            .await
            .map_err(|error| internal(&error))?;
        Ok(Response::new(convert::grant_ledger(&project, &ledger)))
    }
}

impl Api {
    /// Runs an audited state-store call on the blocking pool; user errors
    /// keep their text, storage errors are masked.
    async fn state<R: Send + 'static>(
        &self,
        audited: Audited,
        call: impl FnOnce(&enclave_state::StateStore) -> Result<R, StateError> + Send + 'static,
    ) -> Result<R, Status> {
        let state = Arc::clone(self.access().state());
        self.audited_step(audited, move || call(&state).map_err(status))
            .await
    }
}
