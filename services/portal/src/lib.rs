//! The web portal, served by `enclave serve` beside Flight SQL.
//!
//! Owns the pages committee members, operators and researchers use in a
//! browser: the public catalog and open-statistics dashboard, applications
//! (draft, submit, messages, amendments, output releases), a project's
//! page with what the release ledger holds of it, committee review
//! (queue, conflicts, votes, the chair's decision, output checks), the audit
//! log (search, a query's record, alerts, verification) and accounts and
//! projects. Every action goes through the same gRPC API services
//! (`enclave-api`), called in-process with the visitor's bearer token, so
//! authorization, separation of duties and audit records are exactly those
//! of the API. Pages are rendered on the server (maud; Japanese first,
//! English on request), work without JavaScript, and every asset is
//! compiled into the binary. Sessions, CSRF and language: `session`.

mod admin;
mod applications;
mod assets;
mod audit;
mod call;
mod catalog;
mod chart;
mod dashboard;
mod error;
mod i18n;
mod outputs;
mod page;
mod projects;
mod review;
mod session;
mod sign_in;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::middleware::{self, Next};
use axum::response::Response;
use enclave_access::Access;
use enclave_api::Api;
use enclave_catalog::PublishedCatalog;
use enclave_query::QueryEngine;

pub use error::PortalError;

use crate::session::Sessions;

/// What the portal is given by `enclave serve`.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    pub listen: SocketAddr,
    /// Mark cookies `Secure` (the portal is reached through HTTPS).
    pub secure_cookies: bool,
    /// The catalog of the served release, as `enclave catalog` shows it.
    pub published: PublishedCatalog,
    /// The checkpoint public key the audit page verifies the log with.
    pub audit_public_key: Vec<u8>,
}

/// The portal's shared state; cheap to clone.
#[derive(Debug, Clone)]
pub struct Portal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    api: Api,
    access: Arc<Access>,
    engine: QueryEngine,
    config: PortalConfig,
    sessions: Sessions,
    dashboard: dashboard::Cache,
    verification: audit::LastVerification,
}

impl Portal {
    pub fn new(api: Api, access: Arc<Access>, engine: QueryEngine, config: PortalConfig) -> Portal {
        Portal {
            inner: Arc::new(Inner {
                api,
                access,
                engine,
                config,
                sessions: Sessions::new(),
                dashboard: dashboard::Cache::default(),
                verification: audit::LastVerification::default(),
            }),
        }
    }

    pub(crate) fn api(&self) -> &Api {
        &self.inner.api
    }

    pub(crate) fn access(&self) -> &Access {
        &self.inner.access
    }

    pub(crate) fn engine(&self) -> &QueryEngine {
        &self.inner.engine
    }

    pub(crate) fn published(&self) -> &PublishedCatalog {
        &self.inner.config.published
    }

    pub(crate) fn audit_public_key(&self) -> &[u8] {
        &self.inner.config.audit_public_key
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    pub(crate) fn secure_cookies(&self) -> bool {
        self.inner.config.secure_cookies
    }

    /// Every page and asset of the portal.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(sign_in::routes())
            .merge(catalog::routes())
            .merge(dashboard::routes())
            .merge(applications::routes())
            .merge(outputs::routes())
            .merge(projects::routes())
            .merge(review::routes())
            .merge(audit::routes())
            .merge(admin::routes())
            .merge(assets::routes())
            .fallback(error::no_such_page)
            // Inside the pre-session layer, which the visitor needs.
            .layer(middleware::from_fn_with_state(
                self.clone(),
                error::frame_error_pages,
            ))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                session::ensure_presession,
            ))
            .layer(middleware::from_fn(security_headers))
            .with_state(self.clone())
    }

    /// Serves the portal on `config.listen` until `shutdown` completes;
    /// `ready` gets the bound address.
    pub async fn serve(
        self,
        ready: impl FnOnce(SocketAddr),
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), PortalError> {
        let address = self.inner.config.listen;
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| PortalError::Bind { address, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| PortalError::Bind { address, source })?;
        ready(bound);
        let service = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|error| PortalError::internal(&error))
    }
}

/// Content Security Policy without inline scripts or foreign origins, no
/// framing, no MIME sniffing, no caching of pages that may show data.
async fn security_headers(request: axum::extract::Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with(assets::PREFIX);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !is_asset {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
