//! Bringing a table in over Flight SQL (`DoPut` of a
//! `CommandStatementIngest`, what ADBC's bulk ingest sends): a project
//! member sends rows for `ref.<name>`; they are read within bounds,
//! screened (`enclave-screen`), kept in quarantine when screening finds
//! nothing, and recorded for the committee's review (`enclave-review`).
//! Nothing becomes queryable here; a refusal names columns and rules,
//! never values, and keeps nothing.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{CommandStatementIngest, TableExistsOption, TableNotExistOption};
use enclave_access::{Domain, permissions};
use enclave_audit::{Action, Outcome};
use enclave_query::references::{self, REFERENCE_SCHEMA};
use enclave_review::{BringIn, Finding, Upload, is_valid_name};
use enclave_rpc::status;
use enclave_screen::{MAX_BYTES, MAX_COLUMNS, MAX_ROWS, screen};
use futures::TryStreamExt;
use tonic::{Request, Status};

use crate::service::EnclaveFlightSql;
use crate::session::Session;

/// The ingest option a client may set to say what the table is for.
const PURPOSE_OPTION: &str = "purpose";

impl EnclaveFlightSql {
    /// Receives, screens and quarantines a brought-in table; returns its
    /// row count.
    pub(crate) async fn bring_in(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let Session::Project(session) = self.session(&request).await? else {
            return Err(Status::permission_denied(
                "tables are brought in to a project; name one with x-enclave-project",
            ));
        };
        let (user, project) = (session.user().to_string(), session.project().id.clone());
        let allowed = self
            .access
            .allows(
                &user,
                &Domain::Project(project.clone()),
                permissions::BRING_IN_UPLOAD,
            )
            .await
            .map_err(status)?;
        if !allowed {
            return Err(Status::permission_denied(format!(
                "you may not bring tables in to project `{project}`"
            )));
        }
        let name = target_name(&command)?;
        let purpose = command
            .options
            .get(PURPOSE_OPTION)
            .cloned()
            .unwrap_or_default();
        let requested = self
            .access
            .audit()
            .request(
                &user,
                Action::BringInUpload,
                serde_json::json!({ "project": project, "table": format!("ref.{name}") }),
            )
            .await
            .map_err(status)?;
        let result = self
            .receive(&project, &name, &purpose, &user, request.into_inner())
            .await;
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
        Ok(bring_in.upload.rows as i64)
    }

    /// Reads the rows, screens them, keeps them when clean, records the
    /// bring-in (a refused one with its findings and no file).
    async fn receive(
        &self,
        project: &str,
        name: &str,
        purpose: &str,
        user: &str,
        stream: PeekableFlightDataStream,
    ) -> Result<BringIn, Status> {
        let (schema, batches) = bounded_batches(stream).await?;
        let keys = self.engine.person_keys().await.map_err(status)?;
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
            let stored = references::store(self.engine.store(), project, schema, &batches)
                .await
                .map_err(status)?;
            upload.bytes = stored.bytes;
            upload.sha256 = stored.sha256;
            upload.object = Some(stored.object);
        }
        let object = upload.object.clone();
        let workflow = Arc::clone(&self.workflow);
        let (project, name, purpose, user) = (
            project.to_string(),
            name.to_string(),
            purpose.to_string(),
            user.to_string(),
        );
        let recorded = tokio::task::spawn_blocking(move || {
            workflow.bring_in((&project, &name), &purpose, &user, (upload, findings))
        })
        .await
        .map_err(|error| Status::internal(error.to_string()))?;
        match recorded {
            Ok(bring_in) => Ok(bring_in),
            Err(error) => {
                // Not recorded, not kept.
                if let Some(object) = object {
                    references::delete(self.engine.store(), &object)
                        .await
                        .map_err(status)?;
                }
                Err(status(error))
            }
        }
    }
}

/// `ref.<name>` from the command: the schema must be `ref`, the table new.
fn target_name(command: &CommandStatementIngest) -> Result<String, Status> {
    if command.schema.as_deref() != Some(REFERENCE_SCHEMA) || command.temporary {
        return Err(Status::invalid_argument(
            "tables are brought in to the `ref` schema (db_schema_name = 'ref'), not as temporary tables",
        ));
    }
    if !is_valid_name(&command.table) {
        return Err(Status::invalid_argument(
            "a reference table's name is lowercase letters, digits and _, starting with a letter (at most 63)",
        ));
    }
    if let Some(options) = &command.table_definition_options {
        let creates = matches!(
            TableNotExistOption::try_from(options.if_not_exist),
            Ok(TableNotExistOption::Create | TableNotExistOption::Unspecified)
        );
        let fails_if_exists = matches!(
            TableExistsOption::try_from(options.if_exists),
            Ok(TableExistsOption::Fail | TableExistsOption::Unspecified)
        );
        if !creates || !fails_if_exists {
            return Err(Status::invalid_argument(
                "a brought-in table is always new (mode `create`); append or replace is not possible, bring it under another name",
            ));
        }
    }
    Ok(command.table.clone())
}

/// The stream's batches, refused as soon as it passes the bounds.
async fn bounded_batches(
    stream: PeekableFlightDataStream,
) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
    let mut decoded = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
        stream.map_err(FlightError::from),
    );
    let (mut batches, mut rows, mut bytes) = (Vec::new(), 0usize, 0usize);
    while let Some(batch) = decoded
        .try_next()
        .await
        .map_err(|_| Status::invalid_argument("send the table as Arrow record batches"))?
    {
        rows += batch.num_rows();
        bytes += batch.get_array_memory_size();
        if rows > MAX_ROWS || bytes > MAX_BYTES || batch.num_columns() > MAX_COLUMNS {
            return Err(Status::resource_exhausted(format!(
                "a brought-in table may have at most {MAX_ROWS} rows, {MAX_COLUMNS} columns and {} MiB",
                MAX_BYTES >> 20
            )));
        }
        batches.push(batch);
    }
    let schema = decoded
        .schema()
        .cloned()
        .ok_or_else(|| Status::invalid_argument("the table has no schema"))?;
    Ok((schema, batches))
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
