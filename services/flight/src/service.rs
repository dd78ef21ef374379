//! The Flight SQL service: logins, metadata, statements and prepared
//! statements, every call authenticated and resolved to a project session.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginTransactionRequest, ActionBeginTransactionResult, ActionCancelQueryRequest,
    ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::utils::batches_to_flight_data;
use arrow_flight::{
    FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::common::{ParamValues, ScalarValue};
use enclave_api::Api;
use enclave_query::Released;
use enclave_query::{Outcome, Prepared, ProjectSession, QueryEngine, QueryError, Statement};
use futures::{Stream, TryStreamExt, stream};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::keys::{FOREIGN_KEYS, PRIMARY_KEYS};
use crate::prepared::PreparedStatements;
use crate::results::PendingResults;
use crate::session::Session;
use crate::sql_info::{SQL_INFO, XDBC_TYPES};
use enclave_access::{Access, Domain, permissions};
use enclave_audit::{NewEvent, Outcome as AuditOutcome};
use enclave_core::error::UserFacing;
use enclave_rpc::{basic_credentials, bearer_token, client_address, status};
use enclave_state::AUDIT_SCOPE;

/// The call header that picks a project.
pub const PROJECT_HEADER: &str = "x-enclave-project";

type DataStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

#[derive(Debug)]
pub struct EnclaveFlightSql {
    pub(crate) engine: QueryEngine,
    pub(crate) access: Arc<Access>,
    /// Takes brought-in tables to the bring-in review.
    pub(crate) api: Api,
    prepared: PreparedStatements,
    results: PendingResults,
}

impl EnclaveFlightSql {
    pub fn new(engine: QueryEngine, access: Arc<Access>, api: Api) -> EnclaveFlightSql {
        EnclaveFlightSql {
            engine,
            access,
            api,
            prepared: PreparedStatements::default(),
            results: PendingResults::default(),
        }
    }

    /// The authenticated user of a call.
    async fn caller<T>(&self, request: &Request<T>) -> Result<String, Status> {
        Ok(self
            .access
            .caller(bearer_token(request.metadata()))
            .await
            .map_err(status)?
            .name)
    }

    /// The caller's session: the project they name (or their only one),
    /// or the audit schema (named `audit`, or an operator's default).
    pub(crate) async fn session<T>(&self, request: &Request<T>) -> Result<Session, Status> {
        let user = self.caller(request).await?;
        let scope = request
            .metadata()
            .get(PROJECT_HEADER)
            .and_then(|value| value.to_str().ok());
        self.scoped_session(&user, scope).await
    }

    /// The session of `user` in `scope` once the access policy lets them
    /// query it today. Without a scope, a user with no project who may
    /// query the audit log gets the audit schema.
    async fn scoped_session(&self, user: &str, scope: Option<&str>) -> Result<Session, Status> {
        if scope == Some(AUDIT_SCOPE) {
            return self.audit_session(user).await;
        }
        match self.project_session(user, scope).await {
            Err(refused)
                if scope.is_none()
                    && self
                        .access
                        .allows(user, &Domain::System, permissions::AUDIT_QUERY)
                        .await
                        .map_err(status)? =>
            {
                tracing::debug!(user, %refused, "no project; opening the audit schema");
                self.audit_session(user).await
            }
            session => session.map(Session::Project),
        }
    }

    async fn project_session(
        &self,
        user: &str,
        project: Option<&str>,
    ) -> Result<ProjectSession, Status> {
        let session = self.engine.session(user, project).await.map_err(status)?;
        let domain = Domain::Project(session.project().id.clone());
        self.access
            .check(user, &domain, permissions::DATA_QUERY)
            .await
            .map_err(status)?;
        Ok(session)
    }

    async fn audit_session(&self, user: &str) -> Result<Session, Status> {
        self.access
            .check(user, &Domain::System, permissions::AUDIT_QUERY)
            .await
            .map_err(status)?;
        let dir = self.access.audit().dir().to_path_buf();
        Ok(Session::Audit(self.engine.audit_session(user, dir)))
    }

    /// Runs a statement and makes its audit event durable before anything
    /// is answered: an unwritable log refuses the statement. A statement
    /// that changes the workspace is recorded as requested before it runs
    /// (write-ahead), so an unwritable log leaves the workspace unchanged.
    async fn execute_audited(
        &self,
        session: &Session,
        sql: &str,
        params: Option<ParamValues>,
    ) -> Result<Outcome, Status> {
        let started = Instant::now();
        let (sql, analysis) = match self.resolve(session, sql).await {
            Ok(resolved) => resolved,
            Err(error) => {
                self.record_statement(session, sql, "execute", failure_summary(&error), started)
                    .await?;
                return Err(status(error));
            }
        };
        let sql = sql.as_str();
        let outcome = match session {
            Session::Project(project) => {
                self.execute_in_project(session, project, sql, params, started)
                    .await?
            }
            Session::Audit(audit) => audit.execute(sql, params).await,
        };
        let summary = match &outcome {
            Ok(Outcome::Rows(released)) => (
                AuditOutcome::Ok,
                serde_json::json!({
                    "query_id": released.query_id,
                    "released_groups": released.released_groups,
                    "suppressed_groups": released.suppressed_groups,
                    "suppressed_values": released.suppressed_values,
                    "fingerprint": released.scan.fingerprint,
                    "tables": released.scan.tables,
                    "columns": released.scan.columns,
                    "rows_scanned": released.scan.rows_scanned,
                    "ledger": released.ledger,
                }),
            ),
            Ok(Outcome::Updated(rows)) => (
                AuditOutcome::Ok,
                serde_json::json!({ "rows_written": rows }),
            ),
            Err(error) => failure_summary(error),
        };
        let summary = with_analysis(summary, analysis);
        self.record_statement(session, sql, "execute", summary, started)
            .await?;
        outcome.map_err(status)
    }

    /// The statement to run for `sql`: itself, or the approved analysis it
    /// names (`RUN ANALYSIS <name>`) with what the audit records of it.
    async fn resolve(
        &self,
        session: &Session,
        sql: &str,
    ) -> Result<(String, Option<serde_json::Value>), QueryError> {
        let Some(name) = analysis_name(sql) else {
            return Ok((sql.to_string(), None));
        };
        let Session::Project(project) = session else {
            return Err(QueryError::Invalid(
                "analyses run in a project session".into(),
            ));
        };
        let analysis = self
            .api
            .approved_analysis(&project.project().id, name)
            .await
            .map_err(|refused| QueryError::Invalid(refused.message().to_string()))?;
        let statement = analysis
            .sql
            .clone()
            .ok_or_else(|| QueryError::internal("an analysis without its statement"))?;
        let noted = serde_json::json!({
            "name": analysis.name,
            "bring_in": analysis.id,
            "sha256": analysis.upload.sha256,
        });
        Ok((statement, Some(noted)))
    }

    /// Runs a project's statement; one that changes the workspace only once
    /// its request is on disk. The outer error is the audit log's.
    async fn execute_in_project(
        &self,
        session: &Session,
        project: &ProjectSession,
        sql: &str,
        params: Option<ParamValues>,
        started: Instant,
    ) -> Result<Result<Outcome, QueryError>, Status> {
        let statement = match Statement::parse(sql) {
            Ok(statement) => statement,
            Err(error) => return Ok(Err(error)),
        };
        if statement.changes_workspace() {
            let requested = (AuditOutcome::Requested, serde_json::json!({}));
            self.record_statement(session, sql, "execute", requested, started)
                .await?;
        }
        Ok(project.execute_statement(statement, params).await)
    }

    /// Plans a statement to prepare it; a refusal is recorded like an
    /// executed one (clients such as ADBC prepare every query).
    async fn prepare_audited(&self, session: &Session, sql: &str) -> Result<Prepared, Status> {
        let started = Instant::now();
        let prepared = match self.resolve(session, sql).await {
            Ok((statement, _)) => session.prepare(&statement).await,
            Err(error) => Err(error),
        };
        if let Err(error) = &prepared {
            self.record_statement(session, sql, "prepare", failure_summary(error), started)
                .await?;
        }
        prepared.map_err(status)
    }

    async fn record_statement(
        &self,
        session: &Session,
        sql: &str,
        phase: &str,
        (outcome, mut detail): (AuditOutcome, serde_json::Value),
        started: Instant,
    ) -> Result<(), Status> {
        if let Session::Project(project) = session {
            detail["project"] = project.project().id.clone().into();
        }
        detail["sql"] = sql.into();
        detail["phase"] = phase.into();
        detail["duration_ms"] = (started.elapsed().as_millis() as u64).into();
        let event = NewEvent::new(session.user(), session.audit_action(), outcome, detail);
        self.access.audit().record(event).await.map_err(status)?;
        Ok(())
    }

    /// Runs a statement now and describes its released result; the ticket
    /// fetches that result once.
    async fn run_for_info(
        &self,
        session: &Session,
        sql: &str,
        params: Option<ParamValues>,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let outcome = self.execute_audited(session, sql, params).await?;
        let (schema, rows) = match &outcome {
            Outcome::Rows(released) => (result_schema(released), released.released_groups),
            Outcome::Updated(_) => (Arc::new(Schema::empty()), 0),
        };
        let handle = self
            .results
            .insert(session.user(), session.scope(), outcome);
        let command = TicketStatementQuery {
            statement_handle: handle.into_bytes().into(),
        };
        let ticket = Ticket::new(command.as_any().encode_to_vec());
        let info = flight_info(&schema, ticket, descriptor)?.with_total_records(rows as i64);
        Ok(Response::new(info))
    }
}

fn flight_info(
    schema: &Schema,
    ticket: Ticket,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, Status> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| status(QueryError::internal(e)))?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor))
}

/// What a result with no rows says, whatever made it empty: no rows
/// matched, or every group was withheld. Saying which would tell whether a
/// group of fewer than k persons exists, so the text is the same for both
/// and depends only on what the researcher sees (no rows).
const EMPTY_RESULT_WARNING: &str = "this result has no rows: either nothing matches, or every \
    group holds fewer persons than the project's threshold or was withheld by disclosure \
    control. Group by coarser categories (age bands, prefecture, quarter) or fewer columns, \
    or build the cohort as a workspace table (CREATE TABLE work.<name> AS …) and count over it";

/// Where clients that show no Flight metadata (ADBC, JDBC) find the warning:
/// the result schema's metadata.
const WARNING_KEY: &str = "enclave.warning";

/// Whether `released` is a project query's result with no rows (an
/// operator's audit query or a SHOW has no query id and no disclosure
/// control to explain).
fn is_empty_release(released: &Released) -> bool {
    released.released_groups == 0 && released.query_id.is_some()
}

/// A result's schema; an empty result's carries the warning.
fn result_schema(released: &Released) -> SchemaRef {
    if !is_empty_release(released) {
        return Arc::clone(&released.schema);
    }
    let mut metadata = released.schema.metadata().clone();
    metadata.insert(WARNING_KEY.into(), EMPTY_RESULT_WARNING.into());
    Arc::new(released.schema.as_ref().clone().with_metadata(metadata))
}

/// A released result as Flight data, with the query's id (as its audit
/// record has it). How many groups or values disclosure control withheld
/// is not told (it would say that a group of fewer than k persons exists);
/// the audit record keeps it for operators. The release ledger's note
/// (values answered fresh or repeating an earlier release: this project's
/// by ledger release number and query id, another project's unnamed)
/// counts released groups only.
fn released_stream(released: Released) -> Result<DataStream, Status> {
    let mut note = serde_json::json!({
        "query_id": released.query_id,
        "released_groups": released.released_groups,
        "ledger": released.ledger,
    });
    if is_empty_release(&released) {
        note["warning"] = EMPTY_RESULT_WARNING.into();
    }
    let note = note.to_string();
    let schema = result_schema(&released);
    let mut batches: Vec<RecordBatch> = released
        .batches
        .into_iter()
        .map(|batch| batch.with_schema(Arc::clone(&schema)))
        .collect::<Result<_, _>>()
        .map_err(|e| status(QueryError::internal(e)))?;
    if batches.is_empty() {
        batches.push(RecordBatch::new_empty(Arc::clone(&schema)));
    }
    let mut messages =
        batches_to_flight_data(&schema, batches).map_err(|e| status(QueryError::internal(e)))?;
    for message in messages.iter_mut().take(2) {
        message.app_metadata = note.clone().into_bytes().into();
    }
    Ok(Box::pin(stream::iter(messages.into_iter().map(Ok))))
}

fn outcome_stream(outcome: Outcome) -> Result<DataStream, Status> {
    match outcome {
        Outcome::Rows(released) => released_stream(released),
        Outcome::Updated(_) => {
            let schema = Arc::new(Schema::empty());
            let stream = FlightDataEncoderBuilder::new()
                .with_schema(schema)
                .build(stream::empty())
                .map_err(Status::from);
            Ok(Box::pin(stream))
        }
    }
}

fn batch_stream(batch: Result<RecordBatch, FlightError>) -> Result<DataStream, Status> {
    let batch = batch.map_err(|e| status(QueryError::internal(e)))?;
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(batch.schema())
        .build(stream::once(async { Ok::<_, FlightError>(batch) }))
        .map_err(Status::from);
    Ok(Box::pin(stream))
}

/// `ActionCancelQueryResult.CancelResult` values (arrow-flight does not
/// export the enum): the result is gone, or there was none to cancel.
const CANCEL_RESULT_CANCELLED: i32 = 1;
const CANCEL_RESULT_NOT_CANCELLABLE: i32 = 3;

/// An empty result of `schema`.
fn no_rows(schema: &SchemaRef) -> Result<Response<DataStream>, Status> {
    Ok(Response::new(batch_stream(Ok(RecordBatch::new_empty(
        Arc::clone(schema),
    )))?))
}

/// The result handle a statement's ticket carries, if it is one.
fn statement_handle(ticket: &Ticket) -> Option<String> {
    let any = Any::decode(ticket.ticket.clone()).ok()?;
    let statement: TicketStatementQuery = any.unpack().ok()??;
    String::from_utf8(statement.statement_handle.to_vec()).ok()
}

fn metadata_info(
    command: &impl ProstMessageExt,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let ticket = Ticket::new(command.as_any().encode_to_vec());
    Ok(Response::new(flight_info(schema, ticket, descriptor)?))
}

/// A schema as IPC bytes; none for an empty one (no result, no parameters).
fn schema_bytes_unless_empty(schema: &Schema) -> Result<bytes::Bytes, Status> {
    if schema.fields().is_empty() {
        return Ok(bytes::Bytes::new());
    }
    schema_bytes(schema)
}

fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| status(QueryError::internal(e)))?;
    Ok(message.0)
}

/// The first row of a parameter batch as positional values.
/// Most parameter sets one DoPut may carry.
const MAX_PARAMETER_SETS: usize = 1000;

/// The one parameter set a query is bound to.
async fn parameter_row(stream: PeekableFlightDataStream) -> Result<Vec<ScalarValue>, Status> {
    let mut rows = parameter_rows(stream).await?;
    match rows.len() {
        1 => Ok(rows.remove(0)),
        _ => Err(Status::invalid_argument(
            "bind exactly one row of parameters",
        )),
    }
}

/// The parameter sets (rows) a DoPut carries, each as its values in order.
async fn parameter_rows(stream: PeekableFlightDataStream) -> Result<Vec<Vec<ScalarValue>>, Status> {
    let mut decoded = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
        stream.map_err(FlightError::from),
    );
    let (mut batches, mut rows) = (Vec::new(), 0);
    // Counted as they arrive: a longer stream is refused before the rest of
    // it is read.
    while let Some(batch) = decoded
        .try_next()
        .await
        .map_err(|_| Status::invalid_argument("parameters must be sent as Arrow record batches"))?
    {
        rows += batch.num_rows();
        if rows > MAX_PARAMETER_SETS {
            return Err(Status::invalid_argument(format!(
                "send at most {MAX_PARAMETER_SETS} parameter sets at once"
            )));
        }
        batches.push(batch);
    }
    batches
        .iter()
        .flat_map(|batch| (0..batch.num_rows()).map(move |row| (batch, row)))
        .map(|(batch, row)| {
            batch
                .columns()
                .iter()
                .map(|column| ScalarValue::try_from_array(column, row))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| Status::invalid_argument("unsupported parameter type"))
        })
        .collect()
}

#[tonic::async_trait]
impl FlightSqlService for EnclaveFlightSql {
    type FlightService = EnclaveFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let (user, password) = basic_credentials(request.metadata())?;
        let address = client_address(&request);
        let token = self
            .access
            .login(&user, &password, address)
            .await
            .map_err(status)?;
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into_bytes().into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(stream::iter(vec![Ok(response)])));
        let header = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|e| status(QueryError::internal(e)))?;
        response.metadata_mut().insert("authorization", header);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request).await?;
        self.run_for_info(&session, &query.query, None, request.into_inner())
            .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let user = self.caller(&request).await?;
        let (scope, outcome) = std::str::from_utf8(&ticket.statement_handle)
            .ok()
            .and_then(|handle| self.results.take(handle, &user))
            .ok_or_else(|| {
                Status::not_found(
                    "the ticket is unknown, already fetched, expired or not yours; run the statement again",
                )
            })?;
        // A result waiting for a project that has since closed (or ended)
        // is dropped: closing destroys what the project held.
        self.scoped_session(&user, Some(&scope)).await?;
        Ok(Response::new(outcome_stream(outcome)?))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = self.session(&request).await?;
        let prepared = self.prepare_audited(&session, &query.query).await?;
        let handle = self
            .prepared
            .create(session.user(), session.scope(), &query.query);
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: schema_bytes_unless_empty(&prepared.schema)?,
            parameter_schema: schema_bytes_unless_empty(&prepared.parameters)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        let user = self.caller(&request).await?;
        self.prepared.close(&query.prepared_statement_handle, &user);
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let user = self.caller(&request).await?;
        let params = parameter_row(request.into_inner()).await?;
        if !self
            .prepared
            .bind(&query.prepared_statement_handle, &user, params)
        {
            return Err(Status::not_found("no such prepared statement"));
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        command: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let user = self.caller(&request).await?;
        let statement = self
            .prepared
            .get(&command.prepared_statement_handle, &user)
            .ok_or_else(|| Status::not_found("no such prepared statement"))?;
        let session = self.scoped_session(&user, Some(&statement.project)).await?;
        let params = statement.params.map(Into::into);
        self.run_for_info(&session, &statement.sql, params, request.into_inner())
            .await
    }

    async fn do_put_prepared_statement_update(
        &self,
        command: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let user = self.caller(&request).await?;
        let statement = self
            .prepared
            .get(&command.prepared_statement_handle, &user)
            .ok_or_else(|| Status::not_found("no such prepared statement"))?;
        let session = self.scoped_session(&user, Some(&statement.project)).await?;
        // Parameter sets sent with the update (ADBC executemany, JDBC
        // executeUpdate with parameters) run it once each; without any, the
        // values bound before (if any).
        let sets = parameter_rows(request.into_inner()).await?;
        if sets.is_empty() {
            let params = statement.params.map(Into::into);
            return updated_rows(
                self.execute_audited(&session, &statement.sql, params)
                    .await?,
            );
        }
        for set in sets {
            updated_rows(
                self.execute_audited(&session, &statement.sql, Some(set.into()))
                    .await?,
            )?;
        }
        Ok(UNKNOWN_ROW_COUNT)
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(&request).await?;
        updated_rows(self.execute_audited(&session, &command.query, None).await?)
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.bring_in(command, request).await
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request).await?;
        let schema = query.into_builder().schema();
        metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(&request).await?;
        let mut builder = query.into_builder();
        builder.append(enclave_query::engine::CATALOG);
        Ok(Response::new(batch_stream(builder.build())?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request).await?;
        let schema = query.clone().into_builder().schema();
        metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let schemas = session.schemas().await.map_err(status)?;
        let mut builder = query.into_builder();
        for schema in schemas {
            builder.append(enclave_query::engine::CATALOG, schema);
        }
        Ok(Response::new(batch_stream(builder.build())?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request).await?;
        let schema = query.clone().into_builder().schema();
        metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let tables = session.tables().await.map_err(status)?;
        let mut builder = query.into_builder();
        for table in tables {
            builder
                .append(
                    enclave_query::engine::CATALOG,
                    &table.schema,
                    &table.table,
                    "TABLE",
                    &table.columns,
                )
                .map_err(|e| status(QueryError::internal(e)))?;
        }
        Ok(Response::new(batch_stream(builder.build())?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request).await?;
        let schema = query.into_builder().schema();
        metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request).await?;
        let mut builder = query.into_builder();
        builder.append("TABLE");
        Ok(Response::new(batch_stream(builder.build())?))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request).await?;
        let schema = query.clone().into_builder(&SQL_INFO).schema();
        metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request).await?;
        Ok(Response::new(batch_stream(
            query.into_builder(&SQL_INFO).build(),
        )?))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request).await?;
        let schema = query.into_builder(&XDBC_TYPES).schema();
        metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request).await?;
        Ok(Response::new(batch_stream(
            query.into_builder(&XDBC_TYPES).build(),
        )?))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request).await?;
        metadata_info(&query, &PRIMARY_KEYS, request.into_inner())
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request).await?;
        no_rows(&PRIMARY_KEYS)
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request).await?;
        metadata_info(&query, &FOREIGN_KEYS, request.into_inner())
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request).await?;
        no_rows(&FOREIGN_KEYS)
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request).await?;
        metadata_info(&query, &FOREIGN_KEYS, request.into_inner())
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request).await?;
        no_rows(&FOREIGN_KEYS)
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request).await?;
        metadata_info(&query, &FOREIGN_KEYS, request.into_inner())
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request).await?;
        no_rows(&FOREIGN_KEYS)
    }

    /// Statements run while `GetFlightInfo` answers, so what is left to
    /// cancel is a result held for its fetch: it is dropped.
    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let user = self.caller(&request).await?;
        let info = FlightInfo::decode(query.info)
            .map_err(|_| Status::invalid_argument("CancelQuery carries no FlightInfo"))?;
        let cancelled = info
            .endpoint
            .iter()
            .filter_map(|endpoint| statement_handle(endpoint.ticket.as_ref()?))
            .filter(|handle| self.results.take(handle, &user).is_some())
            .count()
            > 0;
        Ok(ActionCancelQueryResult {
            result: if cancelled {
                CANCEL_RESULT_CANCELLED
            } else {
                CANCEL_RESULT_NOT_CANCELLABLE
            },
        })
    }

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        self.caller(&request).await?;
        Err(Status::unimplemented(
            "transactions are not supported (SqlInfo FLIGHT_SQL_SERVER_TRANSACTION is NONE): each statement stands alone",
        ))
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Err(Status::unimplemented(format!(
            "unsupported ticket type {}",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// How a failed statement is recorded: its rule when refused.
/// `RUN ANALYSIS <name>`: the name, when `sql` is that statement.
fn analysis_name(sql: &str) -> Option<&str> {
    let mut words = sql.trim().trim_end_matches(';').split_whitespace();
    let (run, analysis, name) = (words.next()?, words.next()?, words.next()?);
    let named = run.eq_ignore_ascii_case("run")
        && analysis.eq_ignore_ascii_case("analysis")
        && words.next().is_none();
    named.then_some(name)
}

/// An audit summary with the analysis that ran (its name and hash).
fn with_analysis(
    (outcome, mut detail): (AuditOutcome, serde_json::Value),
    analysis: Option<serde_json::Value>,
) -> (AuditOutcome, serde_json::Value) {
    if let Some(analysis) = analysis {
        detail["analysis"] = analysis;
    }
    (outcome, detail)
}

fn failure_summary(error: &QueryError) -> (AuditOutcome, serde_json::Value) {
    match error {
        QueryError::Refused { rule, .. } => (
            AuditOutcome::Refused,
            serde_json::json!({ "rule": rule.id() }),
        ),
        error => (
            AuditOutcome::Failed,
            serde_json::json!({ "error": error.user_message() }),
        ),
    }
}

/// The record count Flight SQL answers for a statement whose count is not
/// told (as JDBC's "unknown").
const UNKNOWN_ROW_COUNT: i64 = -1;

fn updated_rows(outcome: Outcome) -> Result<i64, Status> {
    match outcome {
        // The number of rows a workspace table got is not told: it would
        // count persons matching any condition, however few.
        Outcome::Updated(_) => Ok(UNKNOWN_ROW_COUNT),
        Outcome::Rows(_) => Err(Status::invalid_argument(
            "this call runs CREATE/DROP TABLE work.<name>; send queries as queries",
        )),
    }
}
