//! The front page, signing in and out, and the language switch.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use enclave_api::proto::session_server::Session as _;
use enclave_api::proto::{LoginRequest, WhoAmIRequest};
use enclave_rpc::ClientAddress;
use maud::html;
use std::time::Duration;

use crate::page::{self, Section, csrf_field};
use crate::session::{
    LANG_COOKIE, PRESESSION_COOKIE, Posted, SESSION_COOKIE, SignedIn, Visitor, random_token,
    set_cookie,
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
    let mut request = tonic::Request::new(LoginRequest {
        user: form.get("user").to_string(),
        password: form.get("password").to_string(),
    });
    if let Some(address) = visitor.address {
        request.extensions_mut().insert(ClientAddress(address));
    }
    let login = match portal.api().login(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return refused_login(&visitor, form.get("next"), status),
    };
    let mut whoami = tonic::Request::new(WhoAmIRequest {});
    crate::call::authorize(&mut whoami, &login.token);
    let account = portal.api().who_am_i(whoami).await?.into_inner();
    let lifetime = Duration::from_secs(login.expires_in);
    if let Some(old) = &visitor.session_id {
        portal.sessions().close(old);
    }
    let signed_in = SignedIn {
        name: account.name,
        role: account.role,
        token: login.token,
    };
    let landing = signed_in.landing_page();
    let session = portal.sessions().open(signed_in, lifetime)?;
    // The session has its own CSRF token; a new pre-session at sign-in,
    // so one planted before is not used after sign-out either.
    let mut headers = new_presession(&portal)?;
    headers.append(
        SET_COOKIE,
        set_cookie(&portal, SESSION_COOKIE, &session, Some(lifetime.as_secs())),
    );
    let next = site_path(form.get("next")).unwrap_or(landing);
    Ok((headers, Redirect::to(next)).into_response())
}

/// The sign-in form again with why the API refused: wrong credentials, a
/// name or password out of bounds, or too many attempts.
fn refused_login(
    visitor: &Visitor,
    next: &str,
    status: tonic::Status,
) -> Result<Response, PortalError> {
    let message = match status.code() {
        tonic::Code::Unauthenticated => visitor
            .lang
            .t(
                "ユーザー名またはパスワードが違います。",
                "Wrong user name or password.",
            )
            .to_string(),
        // The API's text says how long to wait or which bound was crossed.
        tonic::Code::ResourceExhausted => visitor
            .lang
            .t(
                "ログインの試行が多すぎます。しばらく待ってから再度お試しください。",
                status.message(),
            )
            .to_string(),
        tonic::Code::InvalidArgument => visitor
            .lang
            .t(
                "ユーザー名またはパスワードが長すぎるか、使えない文字を含んでいます。",
                status.message(),
            )
            .to_string(),
        _ => return Err(status.into()),
    };
    Ok(login_form(visitor, next, Some(&message)))
}

/// A `Set-Cookie` of a fresh pre-session.
fn new_presession(portal: &Portal) -> Result<HeaderMap, PortalError> {
    let mut headers = HeaderMap::new();
    let id = random_token()?;
    headers.append(SET_COOKIE, set_cookie(portal, PRESESSION_COOKIE, &id, None));
    Ok(headers)
}

async fn logout(
    State(portal): State<Portal>,
    visitor: Visitor,
    _form: Posted,
) -> Result<Response, PortalError> {
    if let Some(id) = &visitor.session_id {
        portal.sessions().close(id);
    }
    let mut headers = new_presession(&portal)?;
    headers.append(SET_COOKIE, set_cookie(&portal, SESSION_COOKIE, "", Some(0)));
    Ok((headers, Redirect::to("/")).into_response())
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
        .ok_or_else(|| PortalError::not_found("その言語はありません。", "no such language"))?;
    let back = back.back.as_deref().and_then(site_path).unwrap_or("/");
    let location = HeaderValue::from_str(back)
        .map_err(|_| PortalError::invalid("戻り先が正しくありません。", "bad return path"))?;
    let mut headers = HeaderMap::new();
    headers.append(
        SET_COOKIE,
        set_cookie(&portal, LANG_COOKIE, lang.code(), Some(LANG_COOKIE_SECS)),
    );
    headers.insert(LOCATION, location);
    Ok((StatusCode::SEE_OTHER, headers).into_response())
}

/// `target` if it is a path on this site, to redirect to: printable ASCII
/// only (no whitespace or control characters, which browsers strip or
/// reinterpret), starting with one `/`, and with no backslash and no `//`
/// in its path, also once percent-decoded (`/%2F%2Fhost`, `/%5Chost`).
/// Anything else (`//host`, `/\thost`, `https://host`, `javascript:`) is
/// refused, and the caller falls back to a page of its own.
fn site_path(target: &str) -> Option<&str> {
    let printable = target.bytes().all(|b| b.is_ascii_graphic());
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let local = |path: &[u8]| {
        path.first() == Some(&b'/')
            && !path.contains(&b'\\')
            && !path.windows(2).any(|pair| pair == b"//")
            && path.iter().all(u8::is_ascii_graphic)
    };
    let safe = printable && local(path.as_bytes()) && local(&percent_decoded(path.as_bytes()));
    safe.then_some(target)
}

/// `bytes` with `%XX` escapes decoded, repeatedly (a double-encoded `%252F`
/// is a `/` too), for at most a few rounds.
fn percent_decoded(bytes: &[u8]) -> Vec<u8> {
    let mut decoded = bytes.to_vec();
    for _ in 0..4 {
        let once = percent_decode_once(&decoded);
        if once == decoded {
            break;
        }
        decoded = once;
    }
    decoded
}

fn percent_decode_once(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = bytes
            .get(index + 1..index + 3)
            .filter(|_| bytes[index] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_returned_to() {
        for path in [
            "/",
            "/catalog?q=x",
            "/applications/3/edit",
            "/catalog?q=http://x/",
            "/catalog?q=%E5%82%B7",
        ] {
            assert_eq!(site_path(path), Some(path));
        }
    }

    #[test]
    fn other_targets_are_refused() {
        for target in [
            "",
            "catalog",
            "//evil.example/",
            "/\\evil.example/",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "\t//evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/%09/evil.example",
            "/%252F%252Fevil.example",
            "/a//b",
            "/カタログ",
        ] {
            assert_eq!(site_path(target), None, "{target:?}");
        }
    }
}
