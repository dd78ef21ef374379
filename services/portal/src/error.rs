//! Why a portal request failed, and the page that says so. Messages come
//! from the API and access layers, which never put data values in them;
//! internal failures are logged and masked.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, html};
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// Sign in, then come back to `next` (a path of the portal).
    #[error("sign in first")]
    SignIn { next: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the form is missing its CSRF token or it does not match; reload the page and try again"
    )]
    Csrf,
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error; the operator has the details")]
    Internal,
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl PortalError {
    /// A failure the visitor cannot act on: logged, masked.
    pub(crate) fn internal(error: &dyn std::fmt::Display) -> PortalError {
        tracing::error!(%error, "portal internal error");
        PortalError::Internal
    }

    fn status_code(&self) -> StatusCode {
        match self {
            PortalError::SignIn { .. } => StatusCode::UNAUTHORIZED,
            PortalError::Forbidden(_) | PortalError::Csrf => StatusCode::FORBIDDEN,
            PortalError::NotFound(_) => StatusCode::NOT_FOUND,
            PortalError::Invalid(_) => StatusCode::BAD_REQUEST,
            PortalError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PortalError::Internal | PortalError::Bind { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The heading of the error page, in both languages (the error knows
    /// no visitor).
    fn heading(&self) -> (&'static str, &'static str) {
        match self {
            PortalError::SignIn { .. } => ("ログインしてください", "Please sign in"),
            PortalError::Forbidden(_) | PortalError::Csrf => {
                ("この操作は許可されていません", "This is not allowed")
            }
            PortalError::NotFound(_) => ("見つかりません", "Not found"),
            PortalError::Invalid(_) => ("入力を確認してください", "Please check the input"),
            PortalError::Unavailable(_) => ("一時的に利用できません", "Temporarily unavailable"),
            PortalError::Internal | PortalError::Bind { .. } => ("内部エラー", "Internal error"),
        }
    }
}

impl From<tonic::Status> for PortalError {
    fn from(status: tonic::Status) -> PortalError {
        let message = status.message().to_string();
        match status.code() {
            Code::Unauthenticated => PortalError::SignIn { next: "/".into() },
            Code::PermissionDenied => PortalError::Forbidden(message),
            Code::NotFound => PortalError::NotFound(message),
            Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists => {
                PortalError::Invalid(message)
            }
            Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded => {
                PortalError::Unavailable(message)
            }
            // The API masked the detail already.
            _ => PortalError::Internal,
        }
    }
}

impl From<enclave_access::AccessError> for PortalError {
    fn from(error: enclave_access::AccessError) -> PortalError {
        tonic::Status::from(error).into()
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        if let PortalError::SignIn { next } = &self {
            return Redirect::to(&format!("/login?next={}", crate::page::encode_path(next)))
                .into_response();
        }
        let (ja, en) = self.heading();
        let body = html! {
            (DOCTYPE)
            html lang="ja" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (ja) " / " (en) }
                    link rel="stylesheet" href=(crate::assets::STYLESHEET_PATH);
                }
                body {
                    header class="site" {
                        a class="brand" href="/" {
                            img src="/assets/icon.svg" alt="" width="28" height="28";
                            span { "enclave" }
                        }
                    }
                    main class="error" {
                        h1 { (ja) }
                        p lang="en" class="muted" { (en) }
                        p class="error-message" role="alert" { (self.to_string()) }
                        p { a href="/" { "トップへ戻る / Back to the portal" } }
                    }
                }
            }
        };
        (self.status_code(), axum::response::Html(body.into_string())).into_response()
    }
}
