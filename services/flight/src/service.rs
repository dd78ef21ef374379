//! The Flight SQL service: logins, metadata, statements and prepared
//! statements, every call authenticated and resolved to a project session.

use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, SqlSupportedTransaction,
    TicketStatementQuery,
};
use arrow_flight::utils::batches_to_flight_data;
use arrow_flight::{
    FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::common::{ParamValues, ScalarValue};
use enclave_query::Released;
use enclave_query::{Outcome, ProjectSession, QueryEngine, QueryError, Statement};
use futures::{Stream, TryStreamExt, stream};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::prepared::PreparedStatements;
use crate::results::PendingResults;
use crate::session::Session;
use enclave_access::{Access, Domain, permissions};
use enclave_audit::{NewEvent, Outcome as AuditOutcome};
use enclave_core::error::UserFacing;
use enclave_rpc::{basic_credentials, bearer_token, client_address, status};
use enclave_state::AUDIT_SCOPE;

/// The call header that picks a project.
pub const PROJECT_HEADER: &str = "x-enclave-project";

type DataStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "enclave");
    builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    builder.append(SqlInfo::FlightSqlServerReadOnly, false);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    builder.append(SqlInfo::FlightSqlServerCancel, false);
    builder.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    builder.append(SqlInfo::SqlDdlCatalog, false);
    builder.append(SqlInfo::SqlDdlSchema, false);
    builder.append(SqlInfo::SqlDdlTable, true);
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.append(SqlInfo::SqlQuotedIdentifierCase, 3i32);
    builder.append(SqlInfo::SqlIdentifierCase, 2i32);
    builder.append(SqlInfo::SqlAllTablesAreSelectable, true);
    builder.append(SqlInfo::SqlTransactionsSupported, false);
    builder.append(SqlInfo::SqlMaxColumnNameLength, 255i64);
    builder.append(SqlInfo::SqlMaxTableNameLength, 63i64);
    builder.build().expect("static SqlInfo is valid")
});

#[derive(Debug)]
pub struct EnclaveFlightSql {
    engine: QueryEngine,
    access: Arc<Access>,
    prepared: PreparedStatements,
    results: PendingResults,
}

impl EnclaveFlightSql {
    pub fn new(engine: QueryEngine, access: Arc<Access>) -> EnclaveFlightSql {
        EnclaveFlightSql {
            engine,
            access,
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
    async fn session<T>(&self, request: &Request<T>) -> Result<Session, Status> {
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
        self.record_statement(session, sql, "execute", summary, started)
            .await?;
        outcome.map_err(status)
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
    async fn prepare_audited(&self, session: &Session, sql: &str) -> Result<SchemaRef, Status> {
        let started = Instant::now();
        let prepared = session.prepare(sql).await;
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
            Outcome::Rows(released) => (Arc::clone(&released.schema), released.released_groups),
            Outcome::Updated(_) => (Arc::new(Schema::empty()), 0),
        };
        let handle = self.results.insert(session.user(), outcome);
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

/// A released result as Flight data, with the query's id (as its audit
/// record has it). How many groups or values disclosure control withheld
/// is not told (it would say that a group of fewer than k persons exists);
/// the audit record keeps it for operators. The release ledger's note
/// (values answered fresh or repeating an earlier release: this project's
/// by ledger release number and query id, another project's unnamed)
/// counts released groups only.
fn released_stream(released: Released) -> Result<DataStream, Status> {
    let note = serde_json::json!({
        "query_id": released.query_id,
        "released_groups": released.released_groups,
        "ledger": released.ledger,
    })
    .to_string();
    let schema = Arc::clone(&released.schema);
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

fn metadata_info(
    command: &impl ProstMessageExt,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let ticket = Ticket::new(command.as_any().encode_to_vec());
    Ok(Response::new(flight_info(schema, ticket, descriptor)?))
}

fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| status(QueryError::internal(e)))?;
    Ok(message.0)
}

/// The first row of a parameter batch as positional values.
async fn parameter_row(stream: PeekableFlightDataStream) -> Result<Vec<ScalarValue>, Status> {
    let batches: Vec<RecordBatch> =
        arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
            stream.map_err(FlightError::from),
        )
        .try_collect()
        .await
        .map_err(|_| {
            Status::invalid_argument("parameters must be sent as one Arrow record batch")
        })?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let batch = batches.into_iter().find(|b| b.num_rows() > 0);
    match (rows, batch) {
        (1, Some(batch)) => batch
            .columns()
            .iter()
            .map(|column| ScalarValue::try_from_array(column, 0))
            .collect::<Result<_, _>>()
            .map_err(|_| Status::invalid_argument("unsupported parameter type")),
        _ => Err(Status::invalid_argument(
            "bind exactly one row of parameters",
        )),
    }
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
        let outcome = std::str::from_utf8(&ticket.statement_handle)
            .ok()
            .and_then(|handle| self.results.take(handle, &user))
            .ok_or_else(|| {
                Status::not_found(
                    "the ticket is unknown, already fetched, expired or not yours; run the statement again",
                )
            })?;
        Ok(Response::new(outcome_stream(outcome)?))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = self.session(&request).await?;
        let schema = self.prepare_audited(&session, &query.query).await?;
        let handle = self
            .prepared
            .create(session.user(), session.scope(), &query.query);
        let dataset_schema = if schema.fields().is_empty() {
            bytes::Bytes::new()
        } else {
            schema_bytes(&schema)?
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema,
            parameter_schema: bytes::Bytes::new(),
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
        let params = statement.params.map(Into::into);
        updated_rows(
            self.execute_audited(&session, &statement.sql, params)
                .await?,
        )
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(&request).await?;
        updated_rows(self.execute_audited(&session, &command.query, None).await?)
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
