//! The frame every page shares: header with the sections the visitor may
//! use, language switch, account and sign-out; and small pieces pages
//! repeat (CSRF field, status badges, times, key–value lists).

use axum::response::Html;
use maud::{DOCTYPE, Markup, html};

use crate::assets::STYLESHEET_PATH;
use crate::i18n::Lang;
use crate::session::{CSRF_FIELD, Visitor};

/// The section a page belongs to (highlighted in the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Catalog,
    Dashboard,
    Applications,
    Review,
    Audit,
    Admin,
    SignIn,
    /// An error page: no section of the navigation is current.
    Error,
}

/// A whole page.
pub(crate) fn render(
    visitor: &Visitor,
    section: Section,
    title: &str,
    body: Markup,
) -> Html<String> {
    let lang = visitor.lang;
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — enclave" }
                link rel="stylesheet" href=(STYLESHEET_PATH);
                link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
            }
            body {
                a class="skip" href="#main" { (lang.t("本文へ移動", "Skip to content")) }
                (header(visitor, section))
                main id="main" {
                    h1 { (title) }
                    (body)
                }
                footer {
                    p { (lang.t(
                        "集計結果のみが開示統制を経て持ち出されます。すべての操作は改ざん検知可能な監査ログに記録されます。",
                        "Only disclosure-checked aggregates leave the enclave. Every action is recorded in a tamper-evident audit log.",
                    )) }
                }
            }
        }
    };
    Html(markup.into_string())
}

fn header(visitor: &Visitor, section: Section) -> Markup {
    let lang = visitor.lang;
    let mut links = vec![
        (
            Section::Catalog,
            "/catalog",
            lang.t("データカタログ", "Catalog"),
        ),
        (
            Section::Dashboard,
            "/dashboard",
            lang.t("公開統計", "Open statistics"),
        ),
    ];
    if let Some(user) = &visitor.user {
        links.push((
            Section::Applications,
            "/applications",
            lang.t("利用申請", "Applications"),
        ));
        if user.is_committee() {
            links.push((Section::Review, "/review", lang.t("審査", "Review")));
        }
        if user.is_operator() {
            links.push((Section::Audit, "/audit", lang.t("監査ログ", "Audit")));
            links.push((
                Section::Admin,
                "/admin",
                lang.t("利用者・プロジェクト", "Users and projects"),
            ));
        }
    }
    let other = lang.other();
    html! {
        header class="site" {
            a class="brand" href="/" {
                img src="/assets/icon.svg" alt="" width="28" height="28";
                span { "enclave" }
                span class="tagline" { (lang.t("医療・介護データ研究基盤", "Health and care data enclave")) }
            }
            nav aria-label=(lang.t("メインメニュー", "Main menu")) {
                ul {
                    @for (target, href, label) in &links {
                        li {
                            @if *target == section {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                }
            }
            div class="account" {
                a href={ "/lang/" (other.code()) "?back=" (encode_path(&visitor.path)) } hreflang=(other.code()) lang=(other.code()) {
                    (other.name())
                }
                @if let Some(user) = &visitor.user {
                    span class="who" { (user.name) " (" (lang.role(&user.role)) ")" }
                    form method="post" action="/logout" class="inline" {
                        (csrf_field(visitor))
                        button type="submit" class="link" { (lang.t("ログアウト", "Sign out")) }
                    }
                } @else {
                    a href="/login" class="button" { (lang.t("ログイン", "Sign in")) }
                }
            }
        }
    }
}

/// A path as a query-string value (to send the visitor back to it).
pub(crate) fn encode_path(path: &str) -> String {
    serde_urlencoded::to_string([("", path)])
        .map(|pair| pair.trim_start_matches('=').to_string())
        .unwrap_or_else(|_| "/".into())
}

/// The hidden field every form carries.
pub(crate) fn csrf_field(visitor: &Visitor) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(visitor.csrf); }
}

/// A status as a coloured badge.
pub(crate) fn status_badge(lang: Lang, status: &str) -> Markup {
    html! { span class={ "badge status-" (status) } { (lang.status(status)) } }
}

/// Unix seconds as `YYYY-MM-DD HH:MM JST`, with the instant in UTC for
/// machines.
pub(crate) fn time(unix_seconds: i64) -> Markup {
    html! {
        time datetime=(unix_seconds_rfc3339(unix_seconds)) { (enclave_core::date::jst_minute(unix_seconds)) }
    }
}

fn unix_seconds_rfc3339(unix_seconds: i64) -> String {
    enclave_core::date::utc_minute(unix_seconds)
        .trim_end_matches(" UTC")
        .replacen(' ', "T", 1)
        + "Z"
}

/// A definition list of label → value.
pub(crate) fn facts(rows: &[(&str, Markup)]) -> Markup {
    html! {
        dl class="facts" {
            @for (label, value) in rows {
                dt { (label) }
                dd { (value) }
            }
        }
    }
}

/// A notice that something is empty.
pub(crate) fn empty(text: &str) -> Markup {
    html! { p class="empty" { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_for_the_language_switch() {
        assert_eq!(
            encode_path("/catalog?q=受診"),
            "%2Fcatalog%3Fq%3D%E5%8F%97%E8%A8%BA"
        );
    }
}
