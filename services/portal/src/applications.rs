//! Researchers' applications: the list, a draft picked from the catalog
//! (tables and columns), editing, submitting, messages, withdrawal,
//! amendments of approved terms, and closing; the list also links the
//! visitor's projects. Each step is the API's `Applications` call, made as
//! the visitor.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use enclave_api::proto::applications_server::Applications;
use enclave_api::proto::output_releases_server::OutputReleases;
use enclave_api::proto::{
    AmendApplicationRequest, Application, ApplicationRef, CloseApplicationRequest,
    CreateApplicationRequest, EditApplicationRequest, Grant, ListApplicationsRequest,
    ListOutputsRequest, Member, OutputRelease, Proposal, SendMessageRequest, TableRequest, Terms,
};
use maud::{Markup, html};

use crate::call::as_user;
use crate::catalog::columns_table;
use crate::i18n::Lang;
use crate::page::{self, Section, csrf_field, status_badge};
use crate::projects;
use crate::session::{Posted, SignedIn, Visitor};
use crate::{Portal, PortalError};

pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/applications", get(list_page))
        .route("/applications/new", get(new_page).post(create))
        .route("/applications/{id}", get(detail_page))
        .route("/applications/{id}/edit", get(edit_page).post(edit))
        .route("/applications/{id}/amend", get(amend_page).post(amend))
        .route("/applications/{id}/submit", post(submit))
        .route("/applications/{id}/withdraw", post(withdraw))
        .route("/applications/{id}/message", post(message))
        .route("/applications/{id}/close", post(close))
}

/// The application as the API returns it to `user`.
pub(crate) async fn fetch(
    portal: &Portal,
    user: &SignedIn,
    id: &str,
) -> Result<Application, PortalError> {
    let request = as_user(user, ApplicationRef { id: id.to_string() });
    Ok(Applications::get(portal.api(), request).await?.into_inner())
}

/// Every application the API shows `user` (their own, or all for the
/// committee and operators).
pub(crate) async fn list(
    portal: &Portal,
    user: &SignedIn,
) -> Result<Vec<Application>, PortalError> {
    let request = as_user(user, ListApplicationsRequest::default());
    Ok(Applications::list(portal.api(), request)
        .await?
        .into_inner()
        .applications)
}

async fn list_page(
    State(portal): State<Portal>,
    visitor: Visitor,
) -> Result<Html<String>, PortalError> {
    let user = visitor.signed_in()?;
    let lang = visitor.lang;
    let applications = list(&portal, user).await?;
    let mine: Vec<Grant> = projects::grants(&portal, user)
        .await?
        .into_iter()
        .filter(|grant| grant.members.contains(&user.name))
        .collect();
    let body = html! {
        @if !mine.is_empty() {
            section class="projects" {
                h2 { (lang.t("参加しているプロジェクト", "Your projects")) }
                ul class="plain" { @for grant in &mine {
                    li { a href=(projects::path(&grant.project_id)) { code { (grant.project_id) } } " " (grant.title) " " (status_badge(lang, &grant.status)) }
                } }
            }
        }
        @if user.role == "researcher" {
            p { a class="button" href="/applications/new" { (lang.t("新規申請", "New application")) } }
        }
        @if applications.is_empty() {
            (page::empty(lang.t("申請はまだありません。カタログからテーブルを選んで申請できます。", "No applications yet. Pick tables in the catalog to apply.")))
        } @else {
            (applications_table(lang, &applications, "/applications/"))
        }
    };
    Ok(page::render(
        &visitor,
        Section::Applications,
        lang.t("利用申請", "Applications"),
        body,
    ))
}

/// A table of applications linking to `link_prefix` + id.
pub(crate) fn applications_table(
    lang: Lang,
    applications: &[Application],
    link_prefix: &str,
) -> Markup {
    html! {
        table class="list" {
            thead { tr {
                th scope="col" { (lang.t("番号", "No.")) }
                th scope="col" { (lang.t("題目", "Title")) }
                th scope="col" { (lang.t("申請者", "Applicant")) }
                th scope="col" { (lang.t("プロジェクト", "Project")) }
                th scope="col" { (lang.t("状態", "Status")) }
            } }
            tbody {
                @for application in applications {
                    @let proposal = application.proposal.clone().unwrap_or_default();
                    tr {
                        td { a href={ (link_prefix) (application.id) } { "#" (application.id) } }
                        td { a href={ (link_prefix) (application.id) } { (proposal.title) } }
                        td { (application.applicant) }
                        td { code { (proposal.project_id) } }
                        td { (status_badge(lang, &application.status)) @if application.amendment { " " span class="badge" { (lang.t("変更申請中", "amendment pending")) } } }
                    }
                }
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct Preselect {
    #[serde(default)]
    table: String,
}

async fn new_page(
    State(portal): State<Portal>,
    visitor: Visitor,
    Query(preselect): Query<Preselect>,
) -> Result<Html<String>, PortalError> {
    let user = visitor.signed_in()?;
    let lang = visitor.lang;
    let mut proposal = Proposal {
        terms: Some(Terms {
            members: vec![Member {
                user: user.name.clone(),
                affiliation: String::new(),
            }],
            k: 10,
            rounding: "10".into(),
            ..Terms::default()
        }),
        ..Proposal::default()
    };
    if let Some(table) = portal
        .published()
        .schemas
        .iter()
        .flat_map(|s| &s.tables)
        .find(|t| t.qualified_name == preselect.table)
    {
        let terms = proposal.terms.get_or_insert_default();
        terms.tables.push(TableRequest {
            table: table.qualified_name.clone(),
            columns: table.columns.iter().map(|c| c.name.clone()).collect(),
        });
        if let Some(schema) = table.qualified_name.split('.').next() {
            terms.linkage.push(schema.to_string());
        }
        terms.period_first = table.first_month.clone().unwrap_or_default();
        terms.period_last = table.last_month.clone().unwrap_or_default();
    }
    let body = proposal_form(&portal, &visitor, "/applications/new", &proposal, true);
    Ok(page::render(
        &visitor,
        Section::Applications,
        lang.t("新規申請", "New application"),
        body,
    ))
}

async fn create(
    State(portal): State<Portal>,
    visitor: Visitor,
    form: Posted,
) -> Result<Redirect, PortalError> {
    let user = visitor.signed_in()?;
    let request = as_user(
        user,
        CreateApplicationRequest {
            proposal: Some(proposal_from(&form)),
        },
    );
    let application = portal.api().create(request).await?.into_inner();
    Ok(Redirect::to(&format!("/applications/{}", application.id)))
}

async fn edit_page(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Html<String>, PortalError> {
    let user = visitor.signed_in()?;
    let lang = visitor.lang;
    let application = fetch(&portal, user, &id).await?;
    let proposal = application.proposal.unwrap_or_default();
    let action = format!("/applications/{id}/edit");
    let body = proposal_form(&portal, &visitor, &action, &proposal, true);
    Ok(page::render(
        &visitor,
        Section::Applications,
        &format!("{} #{id}", lang.t("申請の編集", "Edit application")),
        body,
    ))
}

async fn edit(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Redirect, PortalError> {
    let user = visitor.signed_in()?;
    let request = as_user(
        user,
        EditApplicationRequest {
            id: id.clone(),
            proposal: Some(proposal_from(&form)),
        },
    );
    portal.api().edit(request).await?;
    Ok(Redirect::to(&format!("/applications/{id}")))
}

async fn amend_page(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Html<String>, PortalError> {
    let user = visitor.signed_in()?;
    let lang = visitor.lang;
    let application = fetch(&portal, user, &id).await?;
    let proposal = Proposal {
        terms: application
            .approved
            .or(application.proposal.and_then(|p| p.terms)),
        ..Proposal::default()
    };
    let action = format!("/applications/{id}/amend");
    let body = html! {
        p { (lang.t("承認済みの条件の変更を申請します。委員会の審査を経て承認されるまで、現在の条件が有効です。", "Request a change of the approved terms. The current terms stay in force until the committee approves the change.")) }
        (proposal_form(&portal, &visitor, &action, &proposal, false))
    };
    Ok(page::render(
        &visitor,
        Section::Applications,
        &format!("{} #{id}", lang.t("変更申請", "Request an amendment")),
        body,
    ))
}

async fn amend(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Redirect, PortalError> {
    let user = visitor.signed_in()?;
    let request = as_user(
        user,
        AmendApplicationRequest {
            id: id.clone(),
            terms: Some(terms_from(&form)),
        },
    );
    portal.api().amend(request).await?;
    Ok(Redirect::to(&format!("/applications/{id}")))
}

async fn submit(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    _form: Posted,
) -> Result<Redirect, PortalError> {
    let user = visitor.signed_in()?;
    portal
        .api()
        .submit(as_user(user, ApplicationRef { id: id.clone() }))
        .await?;
    Ok(Redirect::to(&format!("/applications/{id}")))
}

async fn withdraw(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    _form: Posted,
) -> Result<Redirect, PortalError> {
    let user = visitor.signed_in()?;
    portal
        .api()
        .withdraw(as_user(user, ApplicationRef { id: id.clone() }))
        .await?;
    Ok(Redirect::to(&format!("/applications/{id}")))
}

async fn message(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Redirect, PortalError> {
    let user = visitor.signed_in()?;
    let request = as_user(
        user,
        SendMessageRequest {
            id: id.clone(),
            text: form.get("text").to_string(),
        },
    );
    portal.api().send_message(request).await?;
    Ok(Redirect::to(&back_to(
        &form,
        &format!("/applications/{id}"),
    )))
}

async fn close(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Redirect, PortalError> {
    let user = visitor.signed_in()?;
    require_confirmation(&form)?;
    let request = as_user(
        user,
        CloseApplicationRequest {
            id: id.clone(),
            note: form.get("note").to_string(),
        },
    );
    portal.api().close(request).await?;
    Ok(Redirect::to(&back_to(
        &form,
        &format!("/applications/{id}"),
    )))
}

/// The page a form asked to return to (`back`, a path of this portal among
/// the known ones), or `default`.
pub(crate) fn back_to(form: &Posted, default: &str) -> String {
    let back = form.get("back");
    let known = ["/applications/", "/review/", "/admin"];
    if known.iter().any(|prefix| back.starts_with(prefix)) && !back.contains("//") {
        back.to_string()
    } else {
        default.to_string()
    }
}

async fn detail_page(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Html<String>, PortalError> {
    let user = visitor.signed_in()?;
    let lang = visitor.lang;
    let application = fetch(&portal, user, &id).await?;
    let outputs = project_outputs(&portal, user, &application).await?;
    let proposal = application.proposal.clone().unwrap_or_default();
    let is_applicant = application.applicant == user.name;
    let status = application.status.as_str();
    let granted = matches!(status, "approved" | "conditionally_approved");
    let base = format!("/applications/{id}");
    let body = html! {
        (summary(lang, &application))
        @if is_applicant {
            div class="actions" {
                @if matches!(status, "draft" | "returned") {
                    a class="button secondary" href={ (base) "/edit" } { (lang.t("編集", "Edit")) }
                    (action_button(&visitor, &format!("{base}/submit"), lang.t("提出する", "Submit"), ""))
                }
                @if matches!(status, "submitted" | "under_review") {
                    (action_button(&visitor, &format!("{base}/withdraw"), lang.t("取り下げる", "Withdraw"), "secondary"))
                }
                @if granted && !application.amendment {
                    a class="button secondary" href={ (base) "/amend" } { (lang.t("変更を申請", "Request an amendment")) }
                }
                @if granted {
                    (destructive_button(&visitor, &format!("{base}/close"), lang.t("プロジェクトを終了", "Close the project"), lang.t("終了するとクエリは拒否され、ワークスペースは削除されます", "Closing refuses every query and deletes the workspace"), None))
                }
            }
        }
        (requested_data(&portal, lang, proposal.terms.as_ref(), lang.t("申請したデータ", "Data requested")))
        @if granted {
            (crate::outputs::project_section(&visitor, &application, &outputs))
        }
        (conversation(&visitor, &application, &base))
        (history(lang, &application))
    };
    let title = format!("#{} {}", application.id, proposal.title);
    Ok(page::render(&visitor, Section::Applications, &title, body))
}

/// Output releases of the application's project that `user` may see.
async fn project_outputs(
    portal: &Portal,
    user: &SignedIn,
    application: &Application,
) -> Result<Vec<OutputRelease>, PortalError> {
    if !matches!(
        application.status.as_str(),
        "approved" | "conditionally_approved"
    ) {
        return Ok(Vec::new());
    }
    let project = application
        .proposal
        .as_ref()
        .map(|p| p.project_id.clone())
        .unwrap_or_default();
    let releases = OutputReleases::list(portal.api(), as_user(user, ListOutputsRequest {}))
        .await?
        .into_inner()
        .releases;
    Ok(releases
        .into_iter()
        .filter(|r| r.project_id == project)
        .collect())
}

/// A one-button form posting to `action`.
pub(crate) fn action_button(visitor: &Visitor, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form method="post" action=(action) class="inline" {
            (csrf_field(visitor))
            button type="submit" class=(class) { (label) }
        }
    }
}

/// The form field a destructive action needs ticked: the browser will not
/// send the form without it, and the handler refuses a form without it
/// ([`require_confirmation`]).
const CONFIRM_FIELD: &str = "confirm";

/// A form posting to `action` that acts only once `consequence` is ticked
/// (closing a project, suspending an account: they cannot be undone with
/// one click).
pub(crate) fn destructive_button(
    visitor: &Visitor,
    action: &str,
    label: &str,
    consequence: &str,
    back: Option<&str>,
) -> Markup {
    html! {
        form method="post" action=(action) class="inline confirm" {
            (csrf_field(visitor))
            @if let Some(back) = back { input type="hidden" name="back" value=(back); }
            label class="confirm" {
                input type="checkbox" name=(CONFIRM_FIELD) value="yes" required;
                " " (consequence)
            }
            button type="submit" class="danger" { (label) }
        }
    }
}

/// Refuses a destructive action whose form was sent without its box ticked.
pub(crate) fn require_confirmation(form: &Posted) -> Result<(), PortalError> {
    if form.get(CONFIRM_FIELD) == "yes" {
        return Ok(());
    }
    Err(PortalError::invalid(
        "確認のチェックを入れてから、もう一度送信してください。",
        "tick the box that confirms this action, then send the form again",
    ))
}

/// Status, project, terms and the applicant's texts.
pub(crate) fn summary(lang: Lang, application: &Application) -> Markup {
    let proposal = application.proposal.clone().unwrap_or_default();
    let terms = application
        .approved
        .clone()
        .or(proposal.terms.clone())
        .unwrap_or_default();
    let members: Vec<String> = terms
        .members
        .iter()
        .map(|m| {
            if m.affiliation.is_empty() {
                m.user.clone()
            } else {
                format!("{} ({})", m.user, m.affiliation)
            }
        })
        .collect();
    html! {
        (page::facts(&[
            (lang.t("状態", "Status"), html! { (status_badge(lang, &application.status)) @if application.amendment { " " span class="badge" { (lang.t("変更申請中", "amendment pending")) } } }),
            (lang.t("申請者", "Applicant"), html! { (application.applicant) }),
            (lang.t("プロジェクトID", "Project id"), html! {
                @if has_project(&application.status) { a href=(projects::path(&proposal.project_id)) { code { (proposal.project_id) } } }
                @else { code { (proposal.project_id) } }
            }),
            (lang.t("研究者", "Members"), html! { (members.join(", ")) }),
            (lang.t("対象期間(診療月)", "Service months"), html! { (terms.period_first) " – " (terms.period_last) }),
            (lang.t("利用期限", "Access until"), html! { (terms.valid_until) }),
            (lang.t("連結するデータ", "Linked datasets"), html! { (terms.linkage.join(", ")) }),
            (lang.t("最小セル(k)・丸め", "Minimum cell (k), rounding"), html! { (terms.k) " · " (lang.rounding(&terms.rounding)) }),
            (lang.t("新たに回答できる値の上限", "Fresh-value budget"), html! { span class="fresh-value-budget" { (fresh_values(&terms)) } }),
        ]))
        @if !application.conditions.is_empty() {
            div class="notice" {
                h2 { (lang.t("承認の条件", "Conditions of approval")) }
                ul { @for condition in &application.conditions { li { (condition) } } }
            }
        }
        section class="texts" {
            h2 { (lang.t("研究の目的", "Purpose")) } p { (proposal.purpose) }
            h2 { (lang.t("公益性", "Public interest")) } p { (proposal.public_interest) }
            h2 { (lang.t("予定する成果物", "Planned outputs")) } p { (proposal.planned_outputs) }
            h2 { (lang.t("持ち込む予定の表", "Tables to bring in")) } p { (proposal.planned_bring_ins) }
            h2 { (lang.t("安全管理措置", "Data security measures")) } p { (proposal.security_measures) }
            h2 { (lang.t("照合禁止の誓約", "Pledge not to match (照合禁止)")) }
            p class="pledge" {
                @if application.pledged_by.is_empty() {
                    (lang.t("未了", "Not accepted"))
                } @else {
                    (lang.t("誓約済み", "Accepted")) ": " span translate="no" { (application.pledged_by) } " (" (page::time(application.pledged_at)) ")"
                }
            }
        }
    }
}

/// Whether an application in `status` made a project (whose page exists).
fn has_project(status: &str) -> bool {
    matches!(
        status,
        "approved" | "conditionally_approved" | "expired" | "closed"
    )
}

/// Each requested table with every column, the requested ones highlighted.
pub(crate) fn requested_data(
    portal: &Portal,
    lang: Lang,
    terms: Option<&Terms>,
    heading: &str,
) -> Markup {
    let tables = terms.map(|t| t.tables.clone()).unwrap_or_default();
    html! {
        section class="requested" {
            h2 { (heading) }
            @if tables.is_empty() { (page::empty(lang.t("テーブルが選ばれていません。", "No table chosen."))) }
            @for request in &tables {
                @let published = portal.published().schemas.iter().flat_map(|s| &s.tables).find(|t| t.qualified_name == request.table);
                h3 { code { (request.table) } }
                @match published {
                    Some(table) => {
                        @let wanted = if request.columns.is_empty() { table.columns.iter().map(|c| c.name.clone()).collect() } else { request.columns.clone() };
                        (columns_table(lang, &table.columns, &wanted))
                    }
                    None => { p { (request.columns.join(", ")) } }
                }
            }
        }
    }
}

/// Messages between applicant and committee, with a form to add one that
/// returns to `back`.
pub(crate) fn conversation(visitor: &Visitor, application: &Application, back: &str) -> Markup {
    let lang = visitor.lang;
    html! {
        section class="messages" {
            h2 { (lang.t("メッセージ", "Messages")) }
            @if application.messages.is_empty() { (page::empty(lang.t("メッセージはありません。", "No messages."))) }
            ol class="thread" {
                @for message in &application.messages {
                    li { p class="meta" { strong { (message.from) } " · " (page::time(message.at)) } p { (message.text) } }
                }
            }
            form method="post" action={ "/applications/" (application.id) "/message" } {
                (csrf_field(visitor))
                input type="hidden" name="back" value=(back);
                label for="message-text" { (lang.t("メッセージを送る", "Send a message")) }
                textarea id="message-text" name="text" rows="3" required {}
                button type="submit" { (lang.t("送信", "Send")) }
            }
        }
    }
}

/// Every transition of the application.
pub(crate) fn history(lang: Lang, application: &Application) -> Markup {
    html! {
        section class="history" {
            h2 { (lang.t("経過", "History")) }
            table class="list" {
                thead { tr {
                    th scope="col" { (lang.t("日時", "When")) }
                    th scope="col" { (lang.t("操作者", "By")) }
                    th scope="col" { (lang.t("状態", "Status")) }
                    th scope="col" { (lang.t("内容", "Note")) }
                } }
                tbody {
                    @for step in &application.history {
                        tr {
                            td { (page::time(step.at)) }
                            td { (step.by) }
                            td { (status_badge(lang, &step.to)) }
                            td {
                                @if let Some(name) = lang.step(&step.step) {
                                    (name)
                                    @if !step.note.is_empty() { (lang.t("：", ": ")) }
                                }
                                span translate="no" { (step.note) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The draft form; `with_texts` false gives only the terms (amendments).
fn proposal_form(
    portal: &Portal,
    visitor: &Visitor,
    action: &str,
    proposal: &Proposal,
    with_texts: bool,
) -> Markup {
    let lang = visitor.lang;
    let terms = proposal.terms.clone().unwrap_or_default();
    let chosen: BTreeMap<&str, &[String]> = terms
        .tables
        .iter()
        .map(|t| (t.table.as_str(), t.columns.as_slice()))
        .collect();
    let members = terms
        .members
        .iter()
        .map(|m| format!("{}: {}", m.user, m.affiliation))
        .collect::<Vec<_>>()
        .join("\n");
    html! {
        form method="post" action=(action) class="proposal" {
            (csrf_field(visitor))
            @if with_texts {
                fieldset {
                    legend { (lang.t("研究の概要", "The study")) }
                    label for="project_id" { (lang.t("プロジェクトID(英小文字・数字・-・_)", "Project id (a-z, 0-9, -, _)")) }
                    input id="project_id" name="project_id" value=(proposal.project_id) required pattern="[a-z0-9_-]{1,64}";
                    label for="title" { (lang.t("題目", "Title")) }
                    input id="title" name="title" value=(proposal.title) required;
                    label for="purpose" { (lang.t("研究の目的", "Purpose")) }
                    textarea id="purpose" name="purpose" rows="3" required { (proposal.purpose) }
                    label for="public_interest" { (lang.t("公益性", "Public interest")) }
                    textarea id="public_interest" name="public_interest" rows="3" required { (proposal.public_interest) }
                    label for="planned_outputs" { (lang.t("予定する成果物", "Planned outputs")) }
                    textarea id="planned_outputs" name="planned_outputs" rows="2" required { (proposal.planned_outputs) }
                }
                fieldset {
                    legend { (lang.t("データの取扱い", "Handling the data")) }
                    label for="planned_bring_ins" { (lang.t("持ち込む予定の表(コードリスト・参照表。なければ空欄)", "Tables you plan to bring in (code lists, reference tables; leave empty if none)")) }
                    textarea id="planned_bring_ins" name="planned_bring_ins" rows="2" { (proposal.planned_bring_ins) }
                    label for="security_measures" { (lang.t("研究実施場所の安全管理措置(提出に必要)", "Data security measures at your site (needed to submit)")) }
                    textarea id="security_measures" name="security_measures" rows="3" { (proposal.security_measures) }
                    label class="check" {
                        input type="checkbox" id="no_matching_pledge" name="no_matching_pledge" value="yes" checked[proposal.no_matching_pledge];
                        " " (lang.t("提供されたデータを他の情報と照合しないこと(照合禁止)を誓約します(提出に必要)。", "I pledge not to match the data against any other information (照合禁止; needed to submit)."))
                    }
                }
            }
            fieldset {
                legend { (lang.t("研究者と期間", "People and period")) }
                label for="members" { (lang.t("研究者(1行に1人: ユーザー名: 所属)", "Members (one per line: user: affiliation)")) }
                textarea id="members" name="members" rows="3" required { (members) }
                div class="row" {
                    div { label for="period_first" { (lang.t("対象期間 開始(診療月)", "First service month")) } input id="period_first" name="period_first" type="month" value=(terms.period_first) required; }
                    div { label for="period_last" { (lang.t("対象期間 終了(診療月)", "Last service month")) } input id="period_last" name="period_last" type="month" value=(terms.period_last) required; }
                    div { label for="valid_until" { (lang.t("利用期限", "Access until")) } input id="valid_until" name="valid_until" type="date" value=(terms.valid_until) required; }
                }
                div class="row" {
                    div { label for="k" { (lang.t("最小セル k(10以上)", "Minimum cell k (10 or more)")) } input id="k" name="k" type="number" min="10" value=(terms.k.max(10)); }
                    div {
                        label for="rounding" { (lang.t("丸め", "Rounding")) }
                        select id="rounding" name="rounding" {
                            @for option in ["10", "5", "none"] {
                                option value=(option) selected[terms.rounding == option] { (lang.rounding(option)) }
                            }
                        }
                    }
                    div { label for="fresh_values" { (lang.t("新たに回答できる値の上限", "Fresh-value budget")) } input id="fresh_values" name="fresh_values" type="number" min="1" value=(fresh_values(&terms)); }
                }
                p class="label" { (lang.t("連結するデータ", "Datasets to link")) }
                div class="row" {
                    @for (code, ja, en) in [("ndb", "NDB", "NDB"), ("dpc", "DPC", "DPC"), ("care", "介護DB", "Care (介護DB)")] {
                        label class="check" { input type="checkbox" name="linkage" value=(code) checked[terms.linkage.iter().any(|l| l == code)]; " " (lang.t(ja, en)) }
                    }
                }
            }
            fieldset {
                legend { (lang.t("テーブルと列", "Tables and columns")) }
                p class="muted" { (lang.t("必要な列だけを選んでください。個人キー・準識別子・要配慮の列は審査で重点的に確認されます。", "Choose only the columns you need. Person keys, quasi-identifiers and sensitive columns get the committee's closest look.")) }
                @for schema in &portal.published().schemas {
                    @for table in &schema.tables {
                        @let picked = chosen.get(table.qualified_name.as_str());
                        details class="table-pick" open[picked.is_some()] {
                            summary { code { (table.qualified_name) } " — " (lang.t(&table.description_ja, &table.description_en)) }
                            ul class="columns-pick" {
                                @for column in &table.columns {
                                    @let value = format!("{}/{}", table.qualified_name, column.name);
                                    @let checked = picked.is_some_and(|cols| cols.is_empty() || cols.contains(&column.name));
                                    li { label class="check" {
                                        input type="checkbox" name="column" value=(value) checked[checked];
                                        " " code { (column.name) } " "
                                        span class={ "class class-" (column.class.name()) } { (lang.column_class(column.class.name())) }
                                    } }
                                }
                            }
                        }
                    }
                }
            }
            button type="submit" { (lang.t("保存", "Save")) }
        }
    }
}

fn proposal_from(form: &Posted) -> Proposal {
    Proposal {
        project_id: form.get("project_id").to_string(),
        title: form.get("title").to_string(),
        purpose: form.get("purpose").to_string(),
        public_interest: form.get("public_interest").to_string(),
        planned_outputs: form.get("planned_outputs").to_string(),
        terms: Some(terms_from(form)),
        planned_bring_ins: form.get("planned_bring_ins").to_string(),
        security_measures: form.get("security_measures").to_string(),
        no_matching_pledge: form.get("no_matching_pledge") == "yes",
    }
}

fn terms_from(form: &Posted) -> Terms {
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for picked in form.all("column") {
        if let Some((table, column)) = picked.split_once('/') {
            tables
                .entry(table.to_string())
                .or_default()
                .push(column.to_string());
        }
    }
    Terms {
        members: form
            .lines("members")
            .iter()
            .map(|line| member(line))
            .collect(),
        tables: tables
            .into_iter()
            .map(|(table, columns)| TableRequest { table, columns })
            .collect(),
        linkage: form.all("linkage"),
        period_first: form.get("period_first").to_string(),
        period_last: form.get("period_last").to_string(),
        valid_until: form.get("valid_until").to_string(),
        // An unreadable k or budget becomes 0, which the workflow refuses
        // by name.
        k: form.get("k").parse().unwrap_or(0),
        rounding: form.get("rounding").to_string(),
        fresh_values: Some(form.get("fresh_values").parse().unwrap_or(0)),
    }
}

/// The fresh-value budget the terms ask for (the service's default when
/// they name none).
fn fresh_values(terms: &Terms) -> u64 {
    terms
        .fresh_values
        .unwrap_or(enclave_state::DEFAULT_FRESH_VALUE_BUDGET)
}

/// `user: affiliation` (or just `user`).
fn member(line: &str) -> Member {
    let (user, affiliation) = line.split_once(':').unwrap_or((line, ""));
    Member {
        user: user.trim().to_string(),
        affiliation: affiliation.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_read_one_per_line() {
        assert_eq!(member("ana: Test University").user, "ana");
        assert_eq!(
            member("ana: Test University").affiliation,
            "Test University"
        );
        assert_eq!(member("ben").affiliation, "");
    }
}
