//! Why a portal request failed, and the page that says so. Messages come
//! from the API and access layers, which never put data values in them;
//! internal failures are logged and masked.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use enclave_core::error::{ErrorKind, UserFacing};
use maud::{DOCTYPE, html};

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// Sign in, then come back to `next` (a path of the portal).
    #[error("sign in first")]
    SignIn { next: String },
    #[error(
        "the form is missing its CSRF token or it does not match; reload the page and try again"
    )]
    Csrf,
    /// Refused or failed, of a kind of the error contract; `message` is
    /// what the visitor reads (already masked for faults).
    #[error("{message}")]
    Failed { kind: ErrorKind, message: String },
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// What the visitor reads of a fault of the portal itself.
const INTERNAL_MESSAGE: &str = "internal error; the operator has the details";

impl PortalError {
    /// A failure the visitor cannot act on: logged, masked.
    pub(crate) fn internal(error: &dyn std::fmt::Display) -> PortalError {
        tracing::error!(%error, "portal internal error");
        PortalError::of_kind(ErrorKind::Internal, INTERNAL_MESSAGE.into())
    }

    pub(crate) fn not_found(message: impl Into<String>) -> PortalError {
        PortalError::of_kind(ErrorKind::NotFound, message.into())
    }

    pub(crate) fn invalid(message: impl Into<String>) -> PortalError {
        PortalError::of_kind(ErrorKind::InvalidArgument, message.into())
    }

    /// An error of another layer (query, access, audit), by its kind.
    pub(crate) fn of(error: impl UserFacing) -> PortalError {
        PortalError::of_kind(error.kind(), error.user_message())
    }

    fn of_kind(kind: ErrorKind, message: String) -> PortalError {
        match kind {
            ErrorKind::Unauthenticated => PortalError::SignIn { next: "/".into() },
            kind => PortalError::Failed { kind, message },
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            PortalError::SignIn { .. } => ErrorKind::Unauthenticated,
            PortalError::Csrf => ErrorKind::PermissionDenied,
            PortalError::Failed { kind, .. } => *kind,
            PortalError::Bind { .. } => ErrorKind::Internal,
        }
    }

    /// The HTTP status of its kind (`enclave_core::error`).
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.kind().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The heading of the error page, in both languages (the error knows
    /// no visitor).
    fn heading(&self) -> (&'static str, &'static str) {
        match self.kind() {
            ErrorKind::Unauthenticated => ("ログインしてください", "Please sign in"),
            ErrorKind::PermissionDenied => ("この操作は許可されていません", "This is not allowed"),
            ErrorKind::NotFound => ("見つかりません", "Not found"),
            ErrorKind::InvalidArgument
            | ErrorKind::AlreadyExists
            | ErrorKind::FailedPrecondition => ("入力を確認してください", "Please check the input"),
            ErrorKind::ResourceExhausted => (
                "上限に達しました。しばらくしてから再度お試しください",
                "A limit was reached; try again later",
            ),
            ErrorKind::Timeout | ErrorKind::Unavailable => {
                ("一時的に利用できません", "Temporarily unavailable")
            }
            ErrorKind::Internal => ("内部エラー", "Internal error"),
        }
    }
}

/// An API call's status: the API already masked the detail of faults.
impl From<tonic::Status> for PortalError {
    fn from(status: tonic::Status) -> PortalError {
        let kind = ErrorKind::from_grpc_code(status.code() as i32);
        let message = match kind {
            ErrorKind::Internal => INTERNAL_MESSAGE.into(),
            _ => status.message().to_string(),
        };
        PortalError::of_kind(kind, message)
    }
}

impl From<enclave_access::AccessError> for PortalError {
    fn from(error: enclave_access::AccessError) -> PortalError {
        PortalError::of(error)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_gets_its_http_status_from_the_contract() {
        for &kind in ErrorKind::ALL {
            let error = PortalError::from(tonic::Status::new(
                tonic::Code::from_i32(kind.grpc_code()),
                "what the user reads",
            ));
            assert_eq!(error.kind(), kind);
            assert_eq!(error.status_code().as_u16(), kind.http_status(), "{kind:?}");
        }
    }

    #[test]
    fn an_internal_status_is_masked() {
        let error = PortalError::from(tonic::Status::internal("path /srv/state failed"));
        assert!(!error.to_string().contains("/srv"), "{error}");
    }
}
