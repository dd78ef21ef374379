//! The Arrow Flight SQL front end of the enclave.
//!
//! Owns the Flight handshake (HTTP Basic → a bearer token from
//! `enclave-access`), the choice of project per call (`x-enclave-project`
//! header, then the access policy's `query` check; `audit` opens the
//! operators' read-only audit schema), results held
//! for one fetch between `GetFlightInfo` and `DoGet`, server-side prepared statements with bound parameters, the
//! metadata calls clients browse with (catalogs, schemas, tables, every
//! SqlInfo id the JDBC driver reads, type info, keys), and cancelling a
//! result not yet fetched, and tables brought in to a project (bulk ingest
//! into `ref.<name>`: screened and quarantined for review, see
//! `bring_in`). Errors reach clients through `enclave-rpc`
//! (gRPC code, the refusing rule's id in `x-enclave-rule`). Everything
//! about what may run and leave is decided by `enclave-query`.

mod bring_in;
mod keys;
mod prepared;
mod results;
mod service;
mod session;
mod sql_info;

use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use enclave_access::Access;
use enclave_api::Api;
use enclave_query::QueryEngine;

pub use service::{EnclaveFlightSql, PROJECT_HEADER};

/// The Flight SQL service, ready to be added to a gRPC server.
pub fn flight_service(
    engine: QueryEngine,
    access: Arc<Access>,
    api: Api,
) -> FlightServiceServer<EnclaveFlightSql> {
    FlightServiceServer::new(EnclaveFlightSql::new(engine, access, api))
}
