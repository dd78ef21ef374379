//! The Arrow Flight SQL front end of the enclave.
//!
//! Owns logins (HTTP Basic in the handshake → signed bearer token), the
//! choice of project per call (`x-enclave-project` header), results held
//! for one fetch between `GetFlightInfo` and `DoGet`, server-side prepared statements with bound parameters, the
//! metadata calls clients browse with (catalogs, schemas, tables, SqlInfo),
//! and the mapping of refusals to gRPC status codes. Everything about what
//! may run and leave is decided by `enclave-query`.

mod auth;
mod prepared;
mod results;
mod server;
mod service;

pub use server::{ServeError, ServerConfig, serve};
pub use service::{EnclaveFlightSql, PROJECT_HEADER, SUPPRESSED_KEY};
