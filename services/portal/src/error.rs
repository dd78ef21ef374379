//! Why a portal request failed, and the page that says so. Messages come
//! from the API and access layers, which never put data values in them;
//! internal failures are logged and masked.

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use enclave_core::error::{ErrorKind, UserFacing};
use maud::{DOCTYPE, html};

use crate::i18n::Lang;
use crate::page::Section;
use crate::session::Visitor;

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
    #[error("{}", message.en)]
    Failed { kind: ErrorKind, message: Message },
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// An error's text in both languages. The portal's own errors have both;
/// those of the API and the query layer come in English only, and a
/// Japanese page shows them marked as English (`lang="en"`) under the
/// page's Japanese heading for their kind.
#[derive(Debug, Clone)]
pub struct Message {
    ja: Option<String>,
    en: String,
}

impl Message {
    fn both(ja: impl Into<String>, en: impl Into<String>) -> Message {
        Message {
            ja: Some(ja.into()),
            en: en.into(),
        }
    }

    fn english(text: String) -> Message {
        Message { ja: None, en: text }
    }

    /// The text to show in `lang` and the language it is in.
    fn in_lang(&self, lang: Lang) -> (&str, Lang) {
        match (lang, &self.ja) {
            (Lang::Ja, Some(ja)) => (ja, Lang::Ja),
            _ => (&self.en, Lang::En),
        }
    }
}

/// What the visitor reads of a fault of the service.
fn internal_message() -> Message {
    Message::both(
        "内部エラーが発生しました。詳細は運用担当者が確認できます。",
        "internal error; the operator has the details",
    )
}

impl PortalError {
    /// A failure the visitor cannot act on: logged, masked.
    pub(crate) fn internal(error: &dyn std::fmt::Display) -> PortalError {
        tracing::error!(%error, "portal internal error");
        PortalError::of_kind(ErrorKind::Internal, internal_message())
    }

    pub(crate) fn not_found(ja: impl Into<String>, en: impl Into<String>) -> PortalError {
        PortalError::of_kind(ErrorKind::NotFound, Message::both(ja, en))
    }

    pub(crate) fn invalid(ja: impl Into<String>, en: impl Into<String>) -> PortalError {
        PortalError::of_kind(ErrorKind::InvalidArgument, Message::both(ja, en))
    }

    /// An error of another layer (query, access, audit), by its kind.
    pub(crate) fn of(error: impl UserFacing) -> PortalError {
        PortalError::of_kind(error.kind(), Message::english(error.user_message()))
    }

    fn of_kind(kind: ErrorKind, message: Message) -> PortalError {
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
            ErrorKind::Internal => internal_message(),
            _ => Message::english(status.message().to_string()),
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
        let mut response =
            (self.status_code(), axum::response::Html(body.into_string())).into_response();
        let message = match &self {
            PortalError::Failed { message, .. } => message.clone(),
            other => Message::english(other.to_string()),
        };
        response.extensions_mut().insert(ErrorPage {
            heading: (ja, en),
            message,
        });
        response
    }
}

/// What an error page says, for [`frame_error_pages`] to show inside the
/// site's frame (the page above is what is sent if it cannot).
#[derive(Debug, Clone)]
struct ErrorPage {
    heading: (&'static str, &'static str),
    message: Message,
}

/// Shows an error page inside the site's frame, in the visitor's language
/// with their navigation, keeping the error's status and headers.
pub(crate) async fn frame_error_pages(visitor: Visitor, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let Some(page) = response.extensions().get::<ErrorPage>().cloned() else {
        return response;
    };
    let lang = visitor.lang;
    let (message, message_lang) = page.message.in_lang(lang);
    let body = html! {
        div class="error" {
            p class="error-message" role="alert" lang=[(message_lang != lang).then_some(message_lang.code())] { (message) }
            p { a href="/" { (lang.t("トップへ戻る", "Back to the portal")) } }
        }
    };
    let title = lang.t(page.heading.0, page.heading.1);
    let framed = crate::page::render(&visitor, Section::Error, title, body);
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(framed.0))
}

/// A path no page has.
pub(crate) async fn no_such_page() -> PortalError {
    PortalError::not_found(
        "このアドレスのページはありません。",
        "the portal has no page at this address",
    )
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
