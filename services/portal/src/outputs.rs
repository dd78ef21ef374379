//! Output releases for project members: ask for a result to be published
//! (it runs through the project's disclosure rules at once), follow the
//! second person's review, and download the approved CSV. Calls the API's
//! `OutputReleases` as the visitor.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use enclave_api::proto::output_releases_server::OutputReleases;
use enclave_api::proto::{Application, OutputRef, OutputRelease, RequestOutputRequest};
use maud::{Markup, html};

use crate::call::as_user;
use crate::i18n::Lang;
use crate::page::{self, Section, csrf_field, status_badge};
use crate::session::{Posted, SignedIn, Visitor};
use crate::{Portal, PortalError};

pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/outputs", post(request_output))
        .route("/outputs/{id}", get(detail_page))
        .route("/outputs/{id}/download", get(download))
}

/// The output release as the API returns it to `user`.
pub(crate) async fn fetch(
    portal: &Portal,
    user: &SignedIn,
    id: &str,
) -> Result<OutputRelease, PortalError> {
    Ok(OutputReleases::get(
        portal.api(),
        as_user(user, OutputRef { id: id.to_string() }),
    )
    .await?
    .into_inner())
}

async fn request_output(
    State(portal): State<Portal>,
    visitor: Visitor,
    form: Posted,
) -> Result<Redirect, PortalError> {
    let user = visitor.signed_in()?;
    let request = as_user(
        user,
        RequestOutputRequest {
            project_id: form.get("project_id").to_string(),
            title: form.get("title").to_string(),
            sql: form.get("sql").to_string(),
        },
    );
    let release = portal.api().request(request).await?.into_inner();
    Ok(Redirect::to(&format!("/outputs/{}", release.id)))
}

async fn detail_page(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Html<String>, PortalError> {
    let user = visitor.signed_in()?;
    let lang = visitor.lang;
    let release = fetch(&portal, user, &id).await?;
    let body = html! {
        (details(lang, &release))
        @if release.status == "approved" {
            p { a class="button" href={ "/outputs/" (release.id) "/download" } download { (lang.t("CSV をダウンロード", "Download the CSV")) } }
        }
    };
    let title = format!(
        "{} #{} {}",
        lang.t("成果物", "Output"),
        release.id,
        release.title
    );
    Ok(page::render(&visitor, Section::Applications, &title, body))
}

async fn download(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let user = visitor.signed_in()?;
    let file = portal
        .api()
        .download(as_user(user, OutputRef { id }))
        .await?
        .into_inner();
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file.file_name))
            .map_err(|error| PortalError::internal(&error))?;
    let media_type = HeaderValue::from_str(&format!("{}; charset=utf-8", file.media_type))
        .map_err(|error| PortalError::internal(&error))?;
    Ok((
        [
            (CONTENT_TYPE, media_type),
            (CONTENT_DISPOSITION, disposition),
        ],
        file.content,
    )
        .into_response())
}

/// The project's outputs and the form to ask for one, on an approved
/// application's page.
pub(crate) fn project_section(
    visitor: &Visitor,
    application: &Application,
    outputs: &[OutputRelease],
) -> Markup {
    let lang = visitor.lang;
    let project = application
        .proposal
        .as_ref()
        .map(|p| p.project_id.as_str())
        .unwrap_or_default();
    html! {
        section class="outputs" {
            h2 { (lang.t("成果物の公表申請", "Output releases")) }
            @if outputs.is_empty() {
                (page::empty(lang.t("公表申請はまだありません。", "No output release requested yet.")))
            } @else {
                (outputs_table(lang, outputs, "/outputs/"))
            }
            form method="post" action="/outputs" {
                (csrf_field(visitor))
                input type="hidden" name="project_id" value=(project);
                label for="output-title" { (lang.t("成果物の題目", "Title of the output")) }
                input id="output-title" name="title" required;
                label for="output-sql" { (lang.t("集計 SQL(Flight SQL で実行するものと同じ)", "Aggregate SQL (as it runs over Flight SQL)")) }
                textarea id="output-sql" name="sql" rows="4" required class="code" {}
                button type="submit" { (lang.t("公表を申請する", "Request release")) }
            }
        }
    }
}

/// A table of output releases linking to `link_prefix` + id.
pub(crate) fn outputs_table(lang: Lang, releases: &[OutputRelease], link_prefix: &str) -> Markup {
    html! {
        table class="list" {
            thead { tr {
                th scope="col" { (lang.t("番号", "No.")) }
                th scope="col" { (lang.t("題目", "Title")) }
                th scope="col" { (lang.t("プロジェクト", "Project")) }
                th scope="col" { (lang.t("申請者", "Requested by")) }
                th scope="col" { (lang.t("状態", "Status")) }
            } }
            tbody {
                @for release in releases {
                    tr {
                        td { a href={ (link_prefix) (release.id) } { "#" (release.id) } }
                        td { a href={ (link_prefix) (release.id) } { (release.title) } }
                        td { code { (release.project_id) } }
                        td { (release.requested_by) }
                        td { (status_badge(lang, &release.status)) }
                    }
                }
            }
        }
    }
}

/// What was asked, what the automatic check found, and the review.
pub(crate) fn details(lang: Lang, release: &OutputRelease) -> Markup {
    let findings = release.findings.clone().unwrap_or_default();
    html! {
        (page::facts(&[
            (lang.t("状態", "Status"), status_badge(lang, &release.status)),
            (lang.t("プロジェクト", "Project"), html! { code { (release.project_id) } }),
            (lang.t("申請者", "Requested by"), html! { (release.requested_by) }),
        ]))
        h2 { "SQL" }
        pre class="code" { (release.sql) }
        section class={ "findings " (if findings.passed { "passed" } else { "failed" }) } {
            h2 { (lang.t("自動チェックの結果", "Automatic check")) }
            (page::facts(&[
                (lang.t("判定", "Result"), html! { @if findings.passed { (lang.t("開示基準を満たす", "Passes the disclosure rules")) } @else { (lang.t("不可", "Refused")) } }),
                (lang.t("規則", "Rule"), html! { (if findings.refused_rule.is_empty() { "—" } else { &findings.refused_rule }) }),
                (lang.t("所見", "Finding"), html! { span lang=[(lang != Lang::En).then_some("en")] { (findings.message) } }),
                (lang.t("公表されるセル", "Cells released"), html! { (findings.released_groups) }),
                (lang.t("最小セル(k)・丸め", "Minimum cell (k), rounding"), html! { (findings.k) " · " (lang.rounding(&findings.rounding)) }),
            ]))
        }
        @if !release.reviewed_by.is_empty() {
            section {
                h2 { (lang.t("確認", "Review")) }
                (page::facts(&[
                    (lang.t("確認者", "Reviewed by"), html! { (release.reviewed_by) }),
                    (lang.t("所見", "Note"), html! { span translate="no" { (release.review_note) } }),
                ]))
            }
        }
    }
}
