//! The front page, signing in and out, and the language switch.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use enclave_api::proto::session_server::Session as _;
use enclave_api::proto::{LoginRequest, WhoAmIRequest};
use maud::html;
use std::time::Duration;

use crate::page::{self, Section, csrf_field};
use crate::session::{
    CSRF_COOKIE, LANG_COOKIE, Posted, SESSION_COOKIE, SignedIn, Visitor, random_token, set_cookie,
};
use crate::{Portal, PortalError};

/// How long the language choice is kept.
const LANG_COOKIE_SECS: u64 = 365 * 86_400;

pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/", get(front_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(switch_language))
}

async fn front_page(visitor: Visitor) -> impl IntoResponse {
    let lang = visitor.lang;
    let mut cards = vec![
        ("/catalog", lang.t("データカタログ", "Data catalog"), lang.t(
            "NDB・DPC・介護DB のテーブルと列、コード体系、収載期間、件数(10件単位に丸め)。ログイン不要。",
            "Tables and columns of NDB, DPC and care data with code systems, coverage and rounded counts. No sign-in needed.",
        )),
        ("/dashboard", lang.t("公開統計", "Open statistics"), lang.t(
            "研究者の集計と同じ開示統制(10人未満のセルは秘匿)を経た統計。グラフ、表、CSV。",
            "Statistics through the same disclosure control as researchers' queries (no cell under 10): charts, tables, CSV.",
        )),
    ];
    if visitor.user.is_some() {
        cards.push(("/applications", lang.t("利用申請", "Applications"), lang.t(
            "申請の作成・提出、審査状況とメッセージ、成果物の公表申請とダウンロード。",
            "Draft and submit applications, follow their review, request and download output releases.",
        )));
    } else {
        cards.push((
            "/login",
            lang.t("ログイン", "Sign in"),
            lang.t(
                "研究者・審査委員・運用担当は、発行されたアカウントでログインしてください。",
                "Researchers, committee members and operators sign in with their issued accounts.",
            ),
        ));
    }
    page::render(
        &visitor,
        Section::Catalog,
        lang.t(
            "公的医療・介護データの研究利用",
            "Research use of Japan's public health and care data",
        ),
        html! {
            p class="lead" { (lang.t(
                "仮名化・連結された NDB・DPC・介護DB を、承認された研究者が遠隔で SQL 集計できます。個票は持ち出せません。",
                "Pseudonymized, linked NDB, DPC and care data that approved researchers query remotely in SQL. Row-level data never leaves.",
            )) }
            ul class="cards" {
                @for (href, title, text) in &cards {
                    li { a href=(href) { h2 { (title) } p { (text) } } }
                }
            }
        },
    )
}

#[derive(Debug, Default, serde::Deserialize)]
struct Next {
    #[serde(default)]
    next: String,
}

async fn login_page(visitor: Visitor, Query(next): Query<Next>) -> impl IntoResponse {
    login_form(&visitor, &next.next, None)
}

fn login_form(visitor: &Visitor, next: &str, refused: Option<&str>) -> Response {
    let lang = visitor.lang;
    let status = if refused.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let body = html! {
        form method="post" action="/login" class="narrow" {
            (csrf_field(visitor))
            input type="hidden" name="next" value=(next);
            @if let Some(message) = refused {
                p class="error-message" role="alert" { (message) }
            }
            label for="user" { (lang.t("ユーザー名", "User name")) }
            input id="user" name="user" type="text" autocomplete="username" required autofocus;
            label for="password" { (lang.t("パスワード", "Password")) }
            input id="password" name="password" type="password" autocomplete="current-password" required;
            button type="submit" { (lang.t("ログイン", "Sign in")) }
        }
    };
    (
        status,
        page::render(
            visitor,
            Section::SignIn,
            lang.t("ログイン", "Sign in"),
            body,
        ),
    )
        .into_response()
}

async fn login(
    State(portal): State<Portal>,
    visitor: Visitor,
    form: Posted,
) -> Result<Response, PortalError> {
    let request = tonic::Request::new(LoginRequest {
        user: form.get("user").to_string(),
        password: form.get("password").to_string(),
    });
    let login = match portal.api().login(request).await {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            let message = visitor.lang.t(
                "ユーザー名またはパスワードが違います。",
                "Wrong user name or password.",
            );
            return Ok(login_form(&visitor, form.get("next"), Some(message)));
        }
        Err(status) => return Err(status.into()),
    };
    let mut whoami = tonic::Request::new(WhoAmIRequest {});
    crate::call::authorize(&mut whoami, &login.token);
    let account = portal.api().who_am_i(whoami).await?.into_inner();
    let lifetime = Duration::from_secs(login.expires_in);
    if let Some(old) = &visitor.session_id {
        portal.sessions().close(old);
    }
    let session = portal.sessions().open(
        SignedIn {
            name: account.name,
            role: account.role,
            token: login.token,
        },
        lifetime,
    )?;
    // A new CSRF token at sign-in: one planted before cannot be reused.
    let csrf = random_token()?;
    let mut headers = HeaderMap::new();
    headers.append(
        SET_COOKIE,
        set_cookie(&portal, SESSION_COOKIE, &session, Some(lifetime.as_secs())),
    );
    headers.append(SET_COOKIE, set_cookie(&portal, CSRF_COOKIE, &csrf, None));
    let next = Some(form.get("next"))
        .filter(|path| is_local_path(path))
        .unwrap_or("/applications");
    Ok((headers, Redirect::to(next)).into_response())
}

async fn logout(State(portal): State<Portal>, visitor: Visitor, _form: Posted) -> Response {
    if let Some(id) = &visitor.session_id {
        portal.sessions().close(id);
    }
    let mut headers = HeaderMap::new();
    headers.append(SET_COOKIE, set_cookie(&portal, SESSION_COOKIE, "", Some(0)));
    (headers, Redirect::to("/")).into_response()
}

#[derive(Debug, serde::Deserialize)]
struct Back {
    back: Option<String>,
}

/// Sets the language cookie and returns to the page (same site only).
async fn switch_language(
    State(portal): State<Portal>,
    Path(code): Path<String>,
    Query(back): Query<Back>,
) -> Result<Response, PortalError> {
    let lang = crate::i18n::Lang::from_code(&code)
        .ok_or_else(|| PortalError::NotFound("no such language".into()))?;
    let back = back
        .back
        .filter(|path| is_local_path(path))
        .unwrap_or_else(|| "/".into());
    let location =
        HeaderValue::from_str(&back).map_err(|_| PortalError::Invalid("bad return path".into()))?;
    let mut headers = HeaderMap::new();
    headers.append(
        SET_COOKIE,
        set_cookie(&portal, LANG_COOKIE, lang.code(), Some(LANG_COOKIE_SECS)),
    );
    headers.insert(LOCATION, location);
    Ok((StatusCode::SEE_OTHER, headers).into_response())
}

/// A path on this site: `/…` but not `//host` or `/\host`.
fn is_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert!(is_local_path("/catalog?q=x"));
        assert!(!is_local_path("//evil.example/"));
        assert!(!is_local_path("/\\evil.example/"));
        assert!(!is_local_path("https://evil.example/"));
    }
}
