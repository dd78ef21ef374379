//! Bringing a table in over Flight SQL (`DoPut` of a
//! `CommandStatementIngest`, what ADBC's bulk ingest sends): a project
//! member sends rows for `ref.<name>`; they are read within bounds and
//! handed to the bring-in review (`enclave_api::BroughtIn`: screened,
//! quarantined, recorded for the committee). Nothing becomes queryable
//! here.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{CommandStatementIngest, TableExistsOption, TableNotExistOption};
use enclave_api::BroughtIn;
use enclave_query::references::REFERENCE_SCHEMA;
use enclave_review::is_valid_name;
use enclave_screen::{MAX_BYTES, MAX_COLUMNS, MAX_ROWS};
use futures::TryStreamExt;
use tonic::{Request, Status};

use crate::service::EnclaveFlightSql;
use crate::session::Session;

/// The ingest option a client may set to say what the table is for.
const PURPOSE_OPTION: &str = "purpose";

impl EnclaveFlightSql {
    /// Receives a brought-in table and hands it to the bring-in review;
    /// returns its row count.
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
        let name = target_name(&command)?;
        let purpose = command
            .options
            .get(PURPOSE_OPTION)
            .cloned()
            .unwrap_or_default();
        let (schema, batches) = bounded_batches(request.into_inner()).await?;
        let table = BroughtIn {
            project: session.project().id.clone(),
            name,
            purpose,
            schema,
            batches,
        };
        let bring_in = self.api.bring_in(session.user(), table).await?;
        Ok(bring_in.upload.rows as i64)
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
