//! The enclave's gRPC API and the server that carries it.
//!
//! Owns the services of `proto/enclave/v1` — `Session` (logins),
//! `Applications` (the application lifecycle and committee review),
//! `OutputReleases` (output release review and download), `Users`,
//! `Grants` and `Catalog` — and serving them beside Flight SQL on one port.
//! Every call is authenticated with the same bearer tokens as Flight SQL and
//! authorized through `enclave-access` before the workflow
//! (`enclave-review`) acts. The generated client (`proto::*_client`) is what
//! `enclave apply` and `enclave review` use. Requests are bounded in size
//! (`MAX_REQUEST_BYTES`, logins `MAX_LOGIN_REQUEST_BYTES`) before they are
//! decoded.

mod accounts;
mod applications;
mod bring_ins;
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

pub use bring_ins::BroughtIn;
pub use context::Api;
pub use server::{ServeError, ServerConfig, serve};

/// Largest API request accepted (bytes); application texts fit many times.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Largest login request: a name of at most 64 bytes and a password of at
/// most 1 KiB fit many times.
pub const MAX_LOGIN_REQUEST_BYTES: usize = 16 * 1024;

impl Api {
    /// Every API service, to be served beside Flight SQL; a request larger
    /// than its service's bound is refused before it is decoded.
    pub fn routes(&self) -> Routes {
        use proto::applications_server::ApplicationsServer;
        use proto::bring_ins_server::BringInsServer;
        use proto::catalog_server::CatalogServer;
        use proto::grants_server::GrantsServer;
        use proto::output_releases_server::OutputReleasesServer;
        use proto::session_server::SessionServer;
        use proto::users_server::UsersServer;
        Routes::new(
            SessionServer::new(self.clone()).max_decoding_message_size(MAX_LOGIN_REQUEST_BYTES),
        )
        .add_service(
            ApplicationsServer::new(self.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            OutputReleasesServer::new(self.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(BringInsServer::new(self.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(UsersServer::new(self.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(GrantsServer::new(self.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(CatalogServer::new(self.clone()).max_decoding_message_size(MAX_REQUEST_BYTES))
    }
}
