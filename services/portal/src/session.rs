//! Who is visiting: the session cookie of a signed-in account, the CSRF
//! token every form carries, and the visitor's language.
//!
//! A session is a random id in an `HttpOnly`, `SameSite=Strict` cookie
//! mapped, in memory, to the account, the bearer token the API issued at
//! sign-in and the session's own random CSRF token; it ends with the token
//! (or at sign-out, or when the server restarts). Before sign-in a visitor
//! has a pre-session: a random id in the `enclave_presession` cookie, set
//! on the first page they open and replaced at sign-in and sign-out, whose
//! CSRF token is an HMAC of the id under a key drawn at start (nothing is
//! stored per visitor). Every POST must carry in its `csrf` field the token
//! of the session its cookie names, or else of its pre-session: a token
//! and cookie chosen by someone else, or taken from another session, are
//! refused.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::Portal;
use crate::error::PortalError;
use crate::i18n::Lang;

pub(crate) const SESSION_COOKIE: &str = "enclave_session";
pub(crate) const PRESESSION_COOKIE: &str = "enclave_presession";
pub(crate) const LANG_COOKIE: &str = "lang";
/// The form field that must hold the session's CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf";
/// Sessions held at once; the oldest are dropped beyond this.
const MAX_SESSIONS: usize = 10_000;
/// Largest form body accepted (an application's texts fit many times).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The account behind a session.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub name: String,
    pub role: String,
    /// The API's bearer token, sent with every call made for this visitor.
    pub token: String,
}

impl SignedIn {
    /// Whether the header shows the committee's pages (the pages themselves
    /// ask the access policy).
    pub(crate) fn is_committee(&self) -> bool {
        matches!(self.role.as_str(), "reviewer" | "chair")
    }

    /// Whether the header shows the operators' pages.
    pub(crate) fn is_operator(&self) -> bool {
        matches!(self.role.as_str(), "operator" | "admin")
    }

    /// Where the account lands after signing in: the committee on its
    /// review queue, administrators on accounts and projects, operators on
    /// the audit log, everyone else on their applications.
    pub(crate) fn landing_page(&self) -> &'static str {
        match self.role.as_str() {
            "reviewer" | "chair" => "/review",
            "admin" => "/admin",
            "operator" => "/audit",
            _ => "/applications",
        }
    }
}

#[derive(Debug)]
struct Stored {
    user: SignedIn,
    csrf: String,
    expires: Instant,
}

/// Open sessions, in memory, and the key of pre-session CSRF tokens.
#[derive(Debug)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, Stored>>,
    presession_key: hmac::Key,
}

impl Sessions {
    pub(crate) fn new() -> Sessions {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .expect("system randomness");
        Sessions {
            by_id: Mutex::default(),
            presession_key: key,
        }
    }

    /// The CSRF token of the pre-session `id`.
    fn presession_csrf(&self, id: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.presession_key, id.as_bytes()))
    }

    /// Opens a session for `user` and returns its id.
    pub(crate) fn open(&self, user: SignedIn, lifetime: Duration) -> Result<String, PortalError> {
        let id = random_token()?;
        let csrf = random_token()?;
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, stored| stored.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, stored)| stored.expires)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            id.clone(),
            Stored {
                user,
                csrf,
                expires: now + lifetime,
            },
        );
        Ok(id)
    }

    /// The account of an open session and the session's CSRF token.
    fn get(&self, id: &str) -> Option<(SignedIn, String)> {
        let sessions = self.lock();
        let stored = sessions.get(id)?;
        (stored.expires > Instant::now()).then(|| (stored.user.clone(), stored.csrf.clone()))
    }

    /// The CSRF token a form posted with `headers` must carry: its open
    /// session's, else its pre-session's.
    fn expected_csrf(&self, headers: &HeaderMap) -> Option<String> {
        if let Some((_, csrf)) = cookie(headers, SESSION_COOKIE).and_then(|id| self.get(id)) {
            return Some(csrf);
        }
        cookie(headers, PRESESSION_COOKIE).map(|id| self.presession_csrf(id))
    }

    pub(crate) fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stored>> {
        // A panic while holding the lock leaves the map consistent.
        self.by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// 256 random bits, URL-safe base64.
pub(crate) fn random_token() -> Result<String, PortalError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PortalError::internal(&"the system random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The value of cookie `name` in `headers`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, whole site; `Secure`
/// when the portal is reached over HTTPS; `max_age` of `None` for a cookie
/// that lasts the browser session, `Some(0)` to delete.
pub(crate) fn set_cookie(
    portal: &Portal,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    if portal.secure_cookies() {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The pre-session id of this request, put there by [`ensure_presession`].
#[derive(Debug, Clone)]
struct PreSession(String);

/// Gives every visitor a pre-session cookie on the first request that
/// lacks one.
pub(crate) async fn ensure_presession(
    axum::extract::State(portal): axum::extract::State<Portal>,
    mut request: Request,
    next: Next,
) -> Result<Response, PortalError> {
    if let Some(id) = cookie(request.headers(), PRESESSION_COOKIE) {
        let id = PreSession(id.to_string());
        request.extensions_mut().insert(id);
        return Ok(next.run(request).await);
    }
    let id = random_token()?;
    request.extensions_mut().insert(PreSession(id.clone()));
    let mut response = next.run(request).await;
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(&portal, PRESESSION_COOKIE, &id, None),
    );
    Ok(response)
}

/// The visitor of one request.
#[derive(Debug, Clone)]
pub(crate) struct Visitor {
    pub lang: Lang,
    /// The value every form of the page carries in its `csrf` field.
    pub csrf: String,
    pub user: Option<SignedIn>,
    pub session_id: Option<String>,
    /// The address the visitor connects from, when the server knows it.
    pub address: Option<IpAddr>,
    /// Path and query of the page, for the language switch to return to.
    pub path: String,
}

impl Visitor {
    /// The signed-in account, or a redirect to the sign-in page.
    pub(crate) fn signed_in(&self) -> Result<&SignedIn, PortalError> {
        self.user.as_ref().ok_or_else(|| PortalError::SignIn {
            next: self.path.clone(),
        })
    }
}

impl FromRequestParts<Portal> for Visitor {
    type Rejection = PortalError;

    async fn from_request_parts(
        parts: &mut Parts,
        portal: &Portal,
    ) -> Result<Visitor, PortalError> {
        let lang = cookie(&parts.headers, LANG_COOKIE)
            .and_then(Lang::from_code)
            .unwrap_or_default();
        let presession = parts
            .extensions
            .get::<PreSession>()
            .ok_or_else(|| PortalError::internal(&"pre-session middleware missing"))?;
        let session_id = cookie(&parts.headers, SESSION_COOKIE).map(str::to_string);
        let (user, csrf) = match session_id
            .as_deref()
            .and_then(|id| portal.sessions().get(id))
        {
            Some((user, csrf)) => (Some(user), csrf),
            None => (None, portal.sessions().presession_csrf(&presession.0)),
        };
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_string();
        Ok(Visitor {
            lang,
            csrf,
            user,
            session_id,
            address,
            path,
        })
    }
}

/// A posted form whose CSRF field holds its session's token; fields in
/// the order sent (a field may repeat, as checkboxes do).
#[derive(Debug)]
pub(crate) struct Posted {
    fields: Vec<(String, String)>,
}

impl Posted {
    /// The first value of `name`, trimmed; empty when absent.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.trim())
    }

    /// Every non-empty value of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(key, value)| key == name && !value.trim().is_empty())
            .map(|(_, value)| value.trim().to_string())
            .collect()
    }

    /// Non-empty lines of a text area.
    pub(crate) fn lines(&self, name: &str) -> Vec<String> {
        self.get(name)
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect()
    }
}

impl FromRequest<Portal> for Posted {
    type Rejection = PortalError;

    async fn from_request(request: Request, portal: &Portal) -> Result<Posted, PortalError> {
        let expected = portal.sessions().expected_csrf(request.headers());
        // Read no further than the bound: a larger body is refused unread.
        let body = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                let kib = MAX_FORM_BYTES / 1024;
                PortalError::invalid(
                    format!("フォームを読めませんでした。フォームは {kib} KiB までです。"),
                    format!("the form could not be read; a form holds at most {kib} KiB"),
                )
            })?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).map_err(|_| {
            PortalError::invalid("フォームを読めませんでした。", "the form could not be read")
        })?;
        checked(expected, fields)
    }
}

/// The form's fields if its CSRF field holds the session's token.
fn checked(expected: Option<String>, fields: Vec<(String, String)>) -> Result<Posted, PortalError> {
    let sent = fields
        .iter()
        .find(|(key, _)| key == CSRF_FIELD)
        .map(|(_, value)| value.as_str());
    match (expected, sent) {
        (Some(expected), Some(sent)) if same_secret(&expected, sent) => Ok(Posted { fields }),
        _ => {
            tracing::warn!("form refused: CSRF token missing or wrong");
            Err(PortalError::Csrf)
        }
    }
}

/// A posted `multipart/form-data` form with one file (field `file`): its
/// text fields, checked like [`Posted`], and the file's bytes. The route
/// bounds the body (`DefaultBodyLimit`).
#[derive(Debug)]
pub(crate) struct Uploaded {
    pub(crate) form: Posted,
    pub(crate) file: Vec<u8>,
}

impl FromRequest<Portal> for Uploaded {
    type Rejection = PortalError;

    async fn from_request(request: Request, portal: &Portal) -> Result<Uploaded, PortalError> {
        let expected = portal.sessions().expected_csrf(request.headers());
        let unreadable = || {
            PortalError::invalid(
                "アップロードを読めませんでした(ファイルは 64 MiB まで)。",
                "the upload could not be read (files hold at most 64 MiB)",
            )
        };
        let mut multipart = axum::extract::Multipart::from_request(request, portal)
            .await
            .map_err(|_| unreadable())?;
        let (mut fields, mut file) = (Vec::new(), Vec::new());
        while let Some(field) = multipart.next_field().await.map_err(|_| unreadable())? {
            let name = field.name().unwrap_or_default().to_string();
            let bytes = field.bytes().await.map_err(|_| unreadable())?;
            if name == "file" {
                file = bytes.to_vec();
            } else {
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| unreadable())?;
                fields.push((name, text));
            }
        }
        Ok(Uploaded {
            form: checked(expected, fields)?,
            file,
        })
    }
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; lang=en; b="));
        assert_eq!(cookie(&headers, "lang"), Some("en"));
        assert_eq!(cookie(&headers, "b"), None);
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }

    #[test]
    fn sessions_end_when_closed_or_expired() {
        let sessions = Sessions::new();
        let user = SignedIn {
            name: "ana".into(),
            role: "researcher".into(),
            token: "t".into(),
        };
        let open = sessions
            .open(user.clone(), Duration::from_secs(60))
            .unwrap();
        let expired = sessions.open(user, Duration::ZERO).unwrap();
        assert_eq!(sessions.get(&open).unwrap().0.name, "ana");
        assert!(sessions.get(&expired).is_none());
        sessions.close(&open);
        assert!(sessions.get(&open).is_none());
    }

    fn headers(cookies: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(cookies).unwrap());
        headers
    }

    #[test]
    fn csrf_tokens_belong_to_one_session_or_pre_session() {
        let sessions = Sessions::new();
        let user = SignedIn {
            name: "ana".into(),
            role: "researcher".into(),
            token: "t".into(),
        };
        let one = sessions
            .open(user.clone(), Duration::from_secs(60))
            .unwrap();
        let two = sessions.open(user, Duration::from_secs(60)).unwrap();
        let token_of = |cookies: &str| sessions.expected_csrf(&headers(cookies)).unwrap();
        let (session_one, session_two) = (
            token_of(&format!("{SESSION_COOKIE}={one}")),
            token_of(&format!("{SESSION_COOKIE}={two}")),
        );
        assert_ne!(session_one, session_two);
        assert_eq!(session_one, sessions.get(&one).unwrap().1);
        let (pre_one, pre_two) = (
            token_of(&format!("{PRESESSION_COOKIE}=p1")),
            token_of(&format!("{PRESESSION_COOKIE}=p2")),
        );
        assert_ne!(pre_one, pre_two);
        assert_ne!(pre_one, "p1", "the token is no copy of the cookie");
        assert_eq!(
            token_of(&format!("{PRESESSION_COOKIE}=p1; {SESSION_COOKIE}={one}")),
            session_one,
            "a signed-in visitor's forms carry the session's token"
        );
        assert_eq!(
            token_of(&format!("{PRESESSION_COOKIE}=p1; {SESSION_COOKIE}=closed")),
            pre_one
        );
        assert!(sessions.expected_csrf(&HeaderMap::new()).is_none());
    }
}
