//! Bring-in review (持込審査). A table arrives (over Flight SQL from
//! `enclave-flight`, or uploaded on the portal) as a [`BroughtIn`];
//! [`Api::bring_in`] screens it (`enclave-screen`), keeps it in quarantine
//! when screening finds nothing and records it for the committee, audited.
//! The `BringIns` service lists them and takes committee members' approvals
//! or rejections (two approvals from outside the project make
//! `ref.<name>`; a rejection destroys the kept file).

use std::io::Cursor;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::record_batch::RecordBatchReader;
use enclave_access::{Domain, permissions};
use enclave_audit::{Action, Outcome};
use enclave_query::references;
use enclave_review::{BringIn, Finding, Upload, Workflow};
use enclave_rpc::status;
use enclave_screen::{MAX_BYTES, screen};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tonic::{Request, Response, Status};

use crate::Api;
use crate::context::audited;
use crate::convert;
use crate::proto::bring_ins_server::BringIns;
use crate::proto::{
    self, ListBringInsRequest, ListBringInsResponse, RegisterAnalysisRequest, ReviewBringInRequest,
};

/// A table a project member sends to `ref.<name>`.
#[derive(Debug)]
pub struct BroughtIn {
    pub project: String,
    pub name: String,
    /// What the member says it is for.
    pub purpose: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl BroughtIn {
    /// A table from an uploaded file: Parquet (by its magic bytes) or CSV
    /// with a header row, types inferred from the values.
    pub fn from_file(
        (project, name, purpose): (&str, &str, &str),
        bytes: Vec<u8>,
    ) -> Result<BroughtIn, Status> {
        if bytes.len() > MAX_BYTES {
            return Err(Status::resource_exhausted(format!(
                "a brought-in file may have at most {} MiB",
                MAX_BYTES >> 20
            )));
        }
        let (schema, batches) = if bytes.starts_with(b"PAR1") {
            read_parquet(bytes)?
        } else {
            read_csv(bytes)?
        };
        Ok(BroughtIn {
            project: project.to_string(),
            name: name.to_string(),
            purpose: purpose.to_string(),
            schema,
            batches,
        })
    }
}

fn read_parquet(bytes: Vec<u8>) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
    let unreadable = |_| Status::invalid_argument("the file is not a readable Parquet file");
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .and_then(|builder| builder.build())
        .map_err(unreadable)?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Status::invalid_argument("the file is not a readable Parquet file"))?;
    Ok((schema, batches))
}

fn read_csv(bytes: Vec<u8>) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
    let unreadable = |_| {
        Status::invalid_argument(
            "the file is neither Parquet nor UTF-8 CSV with a header row of column names",
        )
    };
    let format = arrow_csv::reader::Format::default().with_header(true);
    let (schema, _) = format
        .infer_schema(Cursor::new(&bytes), None)
        .map_err(unreadable)?;
    let schema = Arc::new(schema);
    let reader = arrow_csv::ReaderBuilder::new(Arc::clone(&schema))
        .with_format(format)
        .build(Cursor::new(bytes))
        .map_err(unreadable)?;
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(unreadable)?;
    Ok((schema, batches))
}

impl Api {
    /// Screens `table` for `user`, a member of its project allowed to bring
    /// tables in; keeps it in quarantine when screening finds nothing and
    /// records it for review, audited write-ahead. A table screening
    /// refuses is recorded without its file and refused to the caller,
    /// naming columns and rules, never values.
    pub async fn bring_in(&self, user: &str, table: BroughtIn) -> Result<BringIn, Status> {
        self.engine()
            .session(user, Some(&table.project))
            .await
            .map_err(status)?;
        let allowed = self
            .access()
            .allows(
                user,
                &Domain::Project(table.project.clone()),
                permissions::BRING_IN_UPLOAD,
            )
            .await
            .map_err(status)?;
        if !allowed {
            return Err(Status::permission_denied(format!(
                "you may not bring tables in to project `{}`",
                table.project
            )));
        }
        let detail =
            serde_json::json!({ "project": table.project, "table": format!("ref.{}", table.name) });
        let requested = self
            .access()
            .audit()
            .request(user, Action::BringInUpload, detail)
            .await
            .map_err(status)?;
        let result = self.screen_and_keep(user, table).await;
        let (outcome, detail) = match &result {
            Ok(bring_in) if bring_in.findings.is_empty() => (
                Outcome::Ok,
                serde_json::json!({ "bring_in": bring_in.id, "rows": bring_in.upload.rows,
                                    "bytes": bring_in.upload.bytes, "sha256": bring_in.upload.sha256 }),
            ),
            Ok(bring_in) => (
                Outcome::Refused,
                serde_json::json!({ "bring_in": bring_in.id, "findings": finding_names(&bring_in.findings) }),
            ),
            Err(error) => (
                Outcome::Refused,
                serde_json::json!({ "code": format!("{:?}", error.code()), "message": error.message() }),
            ),
        };
        requested.finish(outcome, detail).await.map_err(status)?;
        let bring_in = result?;
        if !bring_in.findings.is_empty() {
            return Err(Status::failed_precondition(refusal(&bring_in)));
        }
        Ok(bring_in)
    }

    /// The approved analysis `name` of `project`: its statement and record
    /// (whose `upload.sha256` each run records).
    pub async fn approved_analysis(&self, project: &str, name: &str) -> Result<BringIn, Status> {
        let workflow = self.shared_workflow();
        let (project, name) = (project.to_string(), name.to_string());
        tokio::task::spawn_blocking(move || workflow.approved_analysis(&project, &name))
            .await
            .map_err(|error| crate::context::internal(&error))?
            .map_err(status)
    }

    async fn screen_and_keep(&self, user: &str, table: BroughtIn) -> Result<BringIn, Status> {
        let BroughtIn {
            project,
            name,
            purpose,
            schema,
            batches,
        } = table;
        let keys = self.engine().person_keys().await.map_err(status)?;
        let findings: Vec<Finding> = screen(&schema, &batches, &keys)
            .into_iter()
            .map(|finding| Finding {
                column: finding.column.clone(),
                rule: finding.rule.id().to_string(),
                message: finding.to_string(),
            })
            .collect();
        let mut upload = Upload {
            columns: schema
                .fields()
                .iter()
                .map(|field| format!("{} {}", field.name(), field.data_type()))
                .collect(),
            rows: batches.iter().map(|batch| batch.num_rows() as u64).sum(),
            bytes: 0,
            sha256: String::new(),
            object: None,
        };
        if findings.is_empty() {
            let stored = references::store(self.engine().store(), &project, schema, &batches)
                .await
                .map_err(status)?;
            upload.bytes = stored.bytes;
            upload.sha256 = stored.sha256;
            upload.object = Some(stored.object);
        }
        let object = upload.object.clone();
        let by = user.to_string();
        let workflow = self.shared_workflow();
        let recorded = tokio::task::spawn_blocking(move || {
            workflow.bring_in((&project, &name), &purpose, &by, (upload, findings))
        })
        .await
        .map_err(|error| crate::context::internal(&error))
        .and_then(|recorded| recorded.map_err(status));
        if recorded.is_err()
            && let Some(object) = object
        {
            // Not recorded, not kept.
            references::delete(self.engine().store(), &object)
                .await
                .map_err(status)?;
        }
        recorded
    }
}

fn finding_names(findings: &[Finding]) -> Vec<serde_json::Value> {
    findings
        .iter()
        .map(|finding| serde_json::json!({ "column": finding.column, "rule": finding.rule }))
        .collect()
}

/// The refusal a researcher reads: every finding, no value.
fn refusal(bring_in: &BringIn) -> String {
    let findings: Vec<&str> = bring_in
        .findings
        .iter()
        .map(|finding| finding.message.as_str())
        .collect();
    format!(
        "refused (screening): ref.{} was not brought in and nothing of it was kept; {}",
        bring_in.name,
        findings.join("; ")
    )
}

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

    async fn register_analysis(
        &self,
        request: Request<RegisterAnalysisRequest>,
    ) -> Result<Response<proto::BringIn>, Status> {
        let user = self.caller(&request).await?;
        let RegisterAnalysisRequest {
            project_id,
            name,
            sql,
            purpose,
        } = request.into_inner();
        self.check(
            &user,
            &Domain::Project(project_id.clone()),
            permissions::BRING_IN_UPLOAD,
        )
        .await?;
        // The statement must plan, and pass the guard, in the project's
        // session: what the committee approves is what will run.
        let session = self
            .engine()
            .session(&user.name, Some(&project_id))
            .await
            .map_err(status)?;
        session.prepare(&sql).await.map_err(status)?;
        let by = user.name.clone();
        let analysis = self
            .workflow(
                audited(&user.name, Action::BringInUpload, &project_id),
                move |workflow| {
                    workflow.register_analysis((&project_id, &name), &purpose, &by, &sql)
                },
            )
            .await?;
        Ok(Response::new(convert::bring_in(&analysis)))
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
