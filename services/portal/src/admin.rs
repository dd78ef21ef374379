//! Accounts and projects for operators and administrators: every account
//! with its role and whether it is suspended (administrators suspend and
//! restore), and every project with its members, granted tables and
//! columns, period and state (linking to its page), with the close action
//! of the application that granted it. Calls the API's `Users`, `Grants` and `Applications`.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use enclave_access::{Domain, permissions};
use enclave_api::proto::users_server::Users;
use enclave_api::proto::{Application, Grant, ListUsersRequest, SetDisabledRequest, User};
use maud::{Markup, html};

use crate::call::as_user;
use crate::page::{self, Section, status_badge};
use crate::session::{Posted, Visitor};
use crate::{Portal, PortalError};
use crate::{applications, projects};

pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/admin", get(admin_page))
        .route("/admin/users/{name}/suspend", post(suspend))
        .route("/admin/users/{name}/restore", post(restore))
}

async fn admin_page(
    State(portal): State<Portal>,
    visitor: Visitor,
) -> Result<Html<String>, PortalError> {
    let user = visitor.signed_in()?;
    let lang = visitor.lang;
    let users = Users::list(portal.api(), as_user(user, ListUsersRequest {}))
        .await?
        .into_inner()
        .users;
    let grants = projects::grants(&portal, user).await?;
    let applications = applications::list(&portal, user).await?;
    let manages = portal
        .access()
        .allows(&user.name, &Domain::System, permissions::USER_MANAGE)
        .await?;
    let body = html! {
        section {
            h2 { (lang.t("利用者", "Accounts")) }
            (users_table(&visitor, &users, manages))
        }
        section {
            h2 { (lang.t("プロジェクトと付与", "Projects and grants")) }
            (projects_table(&visitor, &grants, &applications))
        }
    };
    Ok(page::render(
        &visitor,
        Section::Admin,
        lang.t("利用者・プロジェクト", "Users and projects"),
        body,
    ))
}

fn users_table(visitor: &Visitor, users: &[User], manages: bool) -> Markup {
    let lang = visitor.lang;
    html! {
        table class="list" {
            thead { tr {
                th scope="col" { (lang.t("ユーザー名", "User")) }
                th scope="col" { (lang.t("役割", "Role")) }
                th scope="col" { (lang.t("状態", "State")) }
                @if manages { th scope="col" { (lang.t("操作", "Action")) } }
            } }
            tbody {
                @for account in users {
                    tr {
                        td { (account.name) }
                        td { (lang.role(&account.role)) }
                        td { @if account.disabled { span class="badge status-rejected" { (lang.t("停止中", "Suspended")) } } @else { span class="badge status-approved" { (lang.t("有効", "Active")) } } }
                        @if manages {
                            td {
                                @if account.disabled {
                                    (applications::action_button(visitor, &format!("/admin/users/{}/restore", account.name), lang.t("再開", "Restore"), "secondary"))
                                } @else if account.name != visitor.user.as_ref().map_or("", |u| u.name.as_str()) {
                                    (applications::destructive_button(visitor, &format!("/admin/users/{}/suspend", account.name), lang.t("停止", "Suspend"), lang.t("ログインとトークンを止めます", "stops its logins and tokens"), None))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn projects_table(visitor: &Visitor, grants: &[Grant], applications: &[Application]) -> Markup {
    let lang = visitor.lang;
    html! {
        @if grants.is_empty() { (page::empty(lang.t("プロジェクトはありません。", "No projects."))) }
        @else {
            table class="list" {
                thead { tr {
                    th scope="col" { (lang.t("プロジェクト", "Project")) }
                    th scope="col" { (lang.t("研究者", "Members")) }
                    th scope="col" { (lang.t("テーブルと列", "Tables and columns")) }
                    th scope="col" { (lang.t("期間・期限", "Period, until")) }
                    th scope="col" { (lang.t("状態", "State")) }
                    th scope="col" { (lang.t("操作", "Action")) }
                } }
                tbody {
                    @for grant in grants {
                        @let application = granting_application(applications, &grant.project_id);
                        tr {
                            td { a href=(projects::path(&grant.project_id)) { code { (grant.project_id) } } br; (grant.title) }
                            td { (grant.members.join(", ")) }
                            td { ul class="plain" { @for table in &grant.tables {
                                li { code { (table.table) } @if !table.columns.is_empty() { ": " (table.columns.join(", ")) } }
                            } } }
                            td { (grant.period_first) " – " (grant.period_last) br; (lang.t("期限 ", "until ")) (grant.valid_until) }
                            td {
                                (status_badge(lang, &grant.status))
                                @if grant.status == "active" && !grant.open { " " span class="badge" { (lang.t("期間外", "outside its period")) } }
                            }
                            td {
                                @if let Some(application) = application.filter(|_| grant.status == "active") {
                                    (applications::destructive_button(visitor, &format!("/applications/{}/close", application.id), lang.t("終了する", "Close"), lang.t("クエリを拒否し、ワークスペースを削除します", "refuses its queries and deletes its workspace"), Some("/admin")))
                                } @else if application.is_none() {
                                    span class="muted" { (lang.t("申請なし(enclave project close)", "no application (enclave project close)")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The approved application that made `project`, if any.
fn granting_application<'a>(
    applications: &'a [Application],
    project: &str,
) -> Option<&'a Application> {
    applications.iter().find(|application| {
        application.approved.is_some()
            && application
                .proposal
                .as_ref()
                .is_some_and(|p| p.project_id == project)
    })
}

async fn suspend(
    state: State<Portal>,
    visitor: Visitor,
    Path(name): Path<String>,
    form: Posted,
) -> Result<Redirect, PortalError> {
    applications::require_confirmation(&form)?;
    set_disabled(state, visitor, name, true).await
}

async fn restore(
    state: State<Portal>,
    visitor: Visitor,
    Path(name): Path<String>,
    _form: Posted,
) -> Result<Redirect, PortalError> {
    set_disabled(state, visitor, name, false).await
}

async fn set_disabled(
    State(portal): State<Portal>,
    visitor: Visitor,
    name: String,
    disabled: bool,
) -> Result<Redirect, PortalError> {
    let user = visitor.signed_in()?;
    portal
        .api()
        .set_disabled(as_user(user, SetDisabledRequest { name, disabled }))
        .await?;
    Ok(Redirect::to("/admin"))
}
