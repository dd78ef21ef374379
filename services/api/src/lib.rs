//! The enclave's gRPC API and the server that carries it.
//!
//! Owns the services of `proto/enclave/v1` — `Session` (logins),
//! `Applications` (the application lifecycle and committee review),
//! `OutputReleases` (output release review and download), `Users`,
//! `Grants` and `Catalog` — and serving them beside Flight SQL on one port.
//! Every call is authenticated with the same bearer tokens as Flight SQL and
//! authorized through `enclave-access` before the workflow
//! (`enclave-review`) acts. The generated client (`proto::*_client`) is what
//! `enclave apply` and `enclave review` use.

mod accounts;
mod applications;
mod catalog;
mod context;
mod convert;
mod outputs;
mod server;
mod session;

/// Messages, clients and servers generated from `proto/enclave/v1`.
#[allow(
    unreachable_pub,
    missing_debug_implementations,
    clippy::clone_on_ref_ptr,
    clippy::uninlined_format_args,
    unused_qualifications,
    rust_2018_idioms
)]
pub mod proto {
    tonic::include_proto!("enclave.v1");
}

use tonic::service::Routes;

pub use context::Api;
pub use server::{ServeError, ServerConfig, serve};

impl Api {
    /// Every API service, to be served beside Flight SQL.
    pub fn routes(&self) -> Routes {
        Routes::new(proto::session_server::SessionServer::new(self.clone()))
            .add_service(proto::applications_server::ApplicationsServer::new(
                self.clone(),
            ))
            .add_service(proto::output_releases_server::OutputReleasesServer::new(
                self.clone(),
            ))
            .add_service(proto::users_server::UsersServer::new(self.clone()))
            .add_service(proto::grants_server::GrantsServer::new(self.clone()))
            .add_service(proto::catalog_server::CatalogServer::new(self.clone()))
    }
}
