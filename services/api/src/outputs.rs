//! `OutputReleases`: asking for a result to be published, its automatic
//! check through the project's disclosure rules, the second person's review
//! and the download.

use enclave_access::{Domain, permissions};
use enclave_audit::Action;
use enclave_core::error::UserFacing;
use enclave_query::Released;
use enclave_query::{Outcome, QueryError};
use enclave_review::{CheckFindings, OutputRelease, Workflow};
use enclave_rpc::status;
use enclave_state::User;
use tonic::{Request, Response, Status};

use crate::Api;
use crate::context::audited;
use crate::context::internal;
use crate::convert::{self, rounding_name};
use crate::proto::output_releases_server::OutputReleases;
use crate::proto::{
    self, ListOutputsRequest, ListOutputsResponse, OutputFile, OutputRef, RequestOutputRequest,
    ReviewOutputRequest,
};

type Reply = Result<Response<proto::OutputRelease>, Status>;

fn reply(release: &OutputRelease) -> Reply {
    Ok(Response::new(convert::output_release(release)))
}

impl Api {
    /// Runs `sql` as `user` in `project` and describes what would leave.
    async fn automatic_check(
        &self,
        user: &User,
        project: &str,
        sql: &str,
    ) -> Result<(CheckFindings, Option<String>), Status> {
        let session = self
            .engine()
            .session(&user.name, Some(project))
            .await
            .map_err(status)?;
        let (k, rounding) = (session.project().k, session.project().rounding);
        let mut findings = CheckFindings {
            passed: false,
            refused_rule: None,
            message: String::new(),
            released_groups: 0,
            k,
            rounding: rounding_name(rounding).to_string(),
        };
        match session.execute(sql, None).await {
            Ok(Outcome::Rows(released)) => {
                let csv = to_csv(&released)?;
                findings.passed = true;
                // The query id names the ledger release the check made on
                // the project's page.
                findings.message = format!(
                    "every released group passed the disclosure rules (query {})",
                    released.query_id.as_deref().unwrap_or("-")
                );
                findings.released_groups = released.released_groups as u64;
                Ok((findings, Some(csv)))
            }
            Ok(Outcome::Updated(_)) => {
                findings.message = "only the result of a query can be released".into();
                Ok((findings, None))
            }
            Err(QueryError::Internal(detail)) => Err(internal(&detail)),
            Err(error) => {
                if let QueryError::Refused { rule, .. } = &error {
                    findings.refused_rule = Some(rule.id().to_string());
                }
                findings.message = error.user_message();
                Ok((findings, None))
            }
        }
    }
}

fn to_csv(released: &Released) -> Result<String, Status> {
    let mut bytes = Vec::new();
    {
        let mut writer = arrow_csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut bytes);
        for batch in &released.batches {
            writer.write(batch).map_err(|error| internal(&error))?;
        }
    }
    String::from_utf8(bytes).map_err(|error| internal(&error))
}

#[tonic::async_trait]
impl OutputReleases for Api {
    async fn request(&self, request: Request<RequestOutputRequest>) -> Reply {
        let user = self.caller(&request).await?;
        let RequestOutputRequest {
            project_id,
            title,
            sql,
        } = request.into_inner();
        self.check(
            &user,
            &Domain::Project(project_id.clone()),
            permissions::OUTPUT_REQUEST,
        )
        .await?;
        let (findings, csv) = self.automatic_check(&user, &project_id, &sql).await?;
        let release = self
            .workflow(
                audited(&user.name, Action::OutputRequest, &project_id),
                move |workflow| {
                    workflow.request_output(&user.name, &project_id, &title, &sql, findings, csv)
                },
            )
            .await?;
        reply(&release)
    }

    async fn get(&self, request: Request<OutputRef>) -> Reply {
        let user = self.caller(&request).await?;
        let release = self.readable_output(&user, request.into_inner().id).await?;
        reply(&release)
    }

    async fn list(
        &self,
        request: Request<ListOutputsRequest>,
    ) -> Result<Response<ListOutputsResponse>, Status> {
        let user = self.caller(&request).await?;
        let sees_all = self
            .allows(&user, &Domain::System, permissions::OUTPUT_LIST)
            .await?;
        let mut releases = Vec::new();
        for release in self
            .workflow(
                audited(&user.name, Action::OutputList, ""),
                Workflow::outputs,
            )
            .await?
        {
            let project = Domain::Project(release.project_id.clone());
            if sees_all
                || self
                    .allows(&user, &project, permissions::OUTPUT_READ)
                    .await?
            {
                releases.push(convert::output_release(&release));
            }
        }
        Ok(Response::new(ListOutputsResponse { releases }))
    }

    async fn review(&self, request: Request<ReviewOutputRequest>) -> Reply {
        let user = self.caller(&request).await?;
        self.check(&user, &Domain::System, permissions::OUTPUT_REVIEW)
            .await?;
        let ReviewOutputRequest { id, approve, note } = request.into_inner();
        let release = self
            .workflow(
                audited(&user.name, Action::OutputReview, &id),
                move |workflow| workflow.review_output(&id, &user.name, approve, &note),
            )
            .await?;
        reply(&release)
    }

    async fn download(&self, request: Request<OutputRef>) -> Result<Response<OutputFile>, Status> {
        let user = self.caller(&request).await?;
        let id = request.into_inner().id;
        let release = self
            .workflow(
                audited(&user.name, Action::OutputDownload, &id),
                move |workflow| workflow.output(&id),
            )
            .await?;
        self.check(
            &user,
            &Domain::Project(release.project_id.clone()),
            permissions::OUTPUT_DOWNLOAD,
        )
        .await?;
        let csv = release.download().map_err(status)?;
        tracing::info!(release = release.id, by = user.name, "output downloaded");
        Ok(Response::new(OutputFile {
            file_name: format!("output-{}.csv", release.id),
            media_type: "text/csv".into(),
            content: csv.as_bytes().to_vec(),
        }))
    }
}

impl Api {
    /// An output the caller may read: a reviewer any, a member their project's.
    async fn readable_output(&self, user: &User, id: String) -> Result<OutputRelease, Status> {
        let release = self
            .workflow(
                audited(&user.name, Action::OutputRead, &id),
                move |workflow| workflow.output(&id),
            )
            .await?;
        self.check_any(
            user,
            &[Domain::Project(release.project_id.clone()), Domain::System],
            permissions::OUTPUT_READ,
        )
        .await?;
        Ok(release)
    }
}
