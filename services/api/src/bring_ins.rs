//! `BringIns`: the committee's side of bring-in review (持込審査). Tables
//! arrive over Flight SQL (`enclave-flight`), screened and quarantined;
//! here they are listed and approved or rejected by committee members
//! outside the project (two approvals make `ref.<name>`; a rejection
//! destroys the kept file).

use enclave_access::{Domain, permissions};
use enclave_audit::Action;
use enclave_query::references;
use enclave_review::Workflow;
use enclave_rpc::status;
use tonic::{Request, Response, Status};

use crate::Api;
use crate::context::audited;
use crate::convert;
use crate::proto::bring_ins_server::BringIns;
use crate::proto::{self, ListBringInsRequest, ListBringInsResponse, ReviewBringInRequest};

#[tonic::async_trait]
impl BringIns for Api {
    async fn list(
        &self,
        request: Request<ListBringInsRequest>,
    ) -> Result<Response<ListBringInsResponse>, Status> {
        let user = self.caller(&request).await?;
        let sees_all = self
            .allows(&user, &Domain::System, permissions::BRING_IN_LIST)
            .await?;
        let mut bring_ins = Vec::new();
        for bring_in in self
            .workflow(
                audited(&user.name, Action::BringInList, ""),
                Workflow::bring_ins,
            )
            .await?
        {
            let project = Domain::Project(bring_in.project_id.clone());
            if sees_all
                || self
                    .allows(&user, &project, permissions::BRING_IN_UPLOAD)
                    .await?
            {
                bring_ins.push(convert::bring_in(&bring_in));
            }
        }
        Ok(Response::new(ListBringInsResponse { bring_ins }))
    }

    async fn review(
        &self,
        request: Request<ReviewBringInRequest>,
    ) -> Result<Response<proto::BringIn>, Status> {
        let user = self.caller(&request).await?;
        self.check(&user, &Domain::System, permissions::BRING_IN_REVIEW)
            .await?;
        let ReviewBringInRequest { id, approve, note } = request.into_inner();
        let by = user.name.clone();
        let subject = id.clone();
        let (bring_in, rejected) = self
            .workflow(
                audited(&user.name, Action::BringInReview, &subject),
                move |workflow| workflow.review_bring_in(&id, &by, approve, &note),
            )
            .await?;
        // A rejected table is destroyed: the record keeps its size and hash.
        if let Some(object) = rejected {
            references::delete(self.engine().store(), &object)
                .await
                .map_err(status)?;
        }
        Ok(Response::new(convert::bring_in(&bring_in)))
    }
}
