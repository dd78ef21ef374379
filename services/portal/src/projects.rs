//! A project's page, for its members and for those who see every project
//! (the committee, operators): its grant and what the release ledger holds
//! of it — the releases its results made, the values of released groups
//! answered fresh or repeated from earlier releases, and the recent
//! releases by the query whose result made them (the id a Flight SQL
//! result's metadata carries). How many cells were withheld is never
//! shown: it would tell that a group of fewer than k persons exists.
//! Members also bring tables in here (持込: a CSV or Parquet file for
//! `ref.<name>`, screened and quarantined for the committee) and see what
//! the project brought in. Calls the API's `Grants` and `BringIns` as the
//! visitor.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use enclave_api::BroughtIn;
use enclave_api::proto::bring_ins_server::BringIns;
use enclave_api::proto::grants_server::Grants;
use enclave_api::proto::{
    BringIn, Grant, GrantLedger, GrantLedgerRequest, LedgerRelease, ListBringInsRequest,
    ListGrantsRequest,
};
use maud::{Markup, html};

use crate::call::as_user;
use crate::i18n::Lang;
use crate::page::{self, Section, csrf_field, status_badge};
use crate::session::{SignedIn, Uploaded, Visitor};
use crate::{Portal, PortalError};

/// Largest upload body: the largest table a project may bring in, and its
/// form fields.
const MAX_UPLOAD_BYTES: usize = enclave_screen::MAX_BYTES + 64 * 1024;

pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/projects/{id}", get(project_page))
        .route(
            "/projects/{id}/bring-ins",
            post(bring_in).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
}

/// The bring-ins `user` may see (the committee: all; members: their
/// projects').
pub(crate) async fn bring_ins(
    portal: &Portal,
    user: &SignedIn,
) -> Result<Vec<BringIn>, PortalError> {
    Ok(
        BringIns::list(portal.api(), as_user(user, ListBringInsRequest {}))
            .await?
            .into_inner()
            .bring_ins,
    )
}

/// A member's upload: screened and quarantined, or refused with the
/// screening's findings (the error page names columns and rules).
async fn bring_in(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    upload: Uploaded,
) -> Result<Redirect, PortalError> {
    let user = visitor.signed_in()?;
    let form = &upload.form;
    let table = BroughtIn::from_file((&id, form.get("name"), form.get("purpose")), upload.file)?;
    portal.api().bring_in(&user.name, table).await?;
    Ok(Redirect::to(&format!("{}#bring-ins", path(&id))))
}

/// The path of a project's page.
pub(crate) fn path(project: &str) -> String {
    format!("/projects/{project}")
}

/// The projects the API shows `user` (their own, or all for those who see
/// every project).
pub(crate) async fn grants(portal: &Portal, user: &SignedIn) -> Result<Vec<Grant>, PortalError> {
    Ok(
        Grants::list(portal.api(), as_user(user, ListGrantsRequest {}))
            .await?
            .into_inner()
            .grants,
    )
}

async fn project_page(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Html<String>, PortalError> {
    let user = visitor.signed_in()?;
    let lang = visitor.lang;
    let request = as_user(
        user,
        GrantLedgerRequest {
            project_id: id.clone(),
        },
    );
    let ledger = Grants::ledger(portal.api(), request).await?.into_inner();
    let grant = grants(&portal, user)
        .await?
        .into_iter()
        .find(|grant| grant.project_id == id);
    let brought_in: Vec<BringIn> = bring_ins(&portal, user)
        .await?
        .into_iter()
        .filter(|bring_in| bring_in.project_id == id)
        .collect();
    let member = grant
        .as_ref()
        .is_some_and(|grant| grant.members.contains(&user.name) && grant.status == "active");
    let body = html! {
        @if let Some(grant) = &grant { (grant_facts(lang, grant)) }
        (ledger_section(lang, &ledger))
        (bring_in_section(&visitor, &id, &brought_in, member))
    };
    let title = format!("{} {id}", lang.t("プロジェクト", "Project"));
    Ok(page::render(&visitor, Section::Applications, &title, body))
}

/// The tables the project brought in, and (for members) the upload form.
fn bring_in_section(
    visitor: &Visitor,
    project: &str,
    brought_in: &[BringIn],
    member: bool,
) -> Markup {
    let lang = visitor.lang;
    html! {
        section class="bring-ins" id="bring-ins" {
            h2 { (lang.t("持ち込んだ表(持込審査)", "Tables brought in (bring-in review)")) }
            @if brought_in.is_empty() {
                (page::empty(lang.t("持ち込んだ表はありません。", "No table brought in.")))
            } @else {
                (bring_in_table(lang, brought_in))
            }
            @if member {
                form method="post" action={ (path(project)) "/bring-ins" } enctype="multipart/form-data" class="panel" {
                    (csrf_field(visitor))
                    h3 { (lang.t("表を持ち込む", "Bring a table in")) }
                    p class="muted" { (lang.t(
                        "コードリストや参照表(CSV は1行目に列名、または Parquet)。氏名・保険者番号・生年月日などの識別子や個人IDを含む表は自動審査で拒否され、何も保存されません。審査委員2名の承認後に ref.<名前> として使えます。",
                        "Code lists or reference tables (CSV with a header row, or Parquet). A table with identifiers (names, insurer numbers, dates of birth) or person ids is refused by screening and nothing is kept. Once two committee members approve it, it is ref.<name>.",
                    )) }
                    label for="bring-in-name" { (lang.t("表の名前(英小文字・数字・_)", "Table name (a-z, 0-9, _)")) }
                    input id="bring-in-name" name="name" required pattern="[a-z][a-z0-9_]{0,62}";
                    label for="bring-in-purpose" { (lang.t("用途", "What it is for")) }
                    textarea id="bring-in-purpose" name="purpose" rows="2" required {}
                    label for="bring-in-file" { (lang.t("ファイル", "File")) }
                    input id="bring-in-file" name="file" type="file" accept=".csv,.parquet" required;
                    button type="submit" { (lang.t("審査に送る", "Send for review")) }
                }
            }
        }
    }
}

/// Brought-in tables: name, status, shape, findings, approvals.
pub(crate) fn bring_in_table(lang: Lang, brought_in: &[BringIn]) -> Markup {
    html! {
        table class="list bring-in-list" {
            thead { tr {
                th scope="col" class="num" { "#" }
                th scope="col" { (lang.t("表", "Table")) }
                th scope="col" { (lang.t("状態", "Status")) }
                th scope="col" class="num" { (lang.t("行数", "Rows")) }
                th scope="col" { (lang.t("列", "Columns")) }
                th scope="col" { (lang.t("自動審査・承認", "Screening, approvals")) }
            } }
            tbody {
                @for bring_in in brought_in {
                    tr {
                        td class="num" { (bring_in.id) }
                        td { code translate="no" { "ref." (bring_in.name) } }
                        td { (status_badge(lang, &bring_in.status)) }
                        td class="num" { (bring_in.rows) }
                        td { code translate="no" { (bring_in.columns.join(", ")) } }
                        td {
                            @for finding in &bring_in.findings { div lang="en" { (finding.message) } }
                            @for approval in &bring_in.approvals {
                                div { (lang.t("承認", "Approved by")) ": " span translate="no" { (approval.by) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn grant_facts(lang: Lang, grant: &Grant) -> Markup {
    page::facts(&[
        (lang.t("題目", "Title"), html! { (grant.title) }),
        (lang.t("状態", "Status"), status_badge(lang, &grant.status)),
        (
            lang.t("研究者", "Members"),
            html! { (grant.members.join(", ")) },
        ),
        (
            lang.t("対象期間(診療月)", "Service months"),
            html! { (grant.period_first) " – " (grant.period_last) },
        ),
        (
            lang.t("利用期限", "Access until"),
            html! { (grant.valid_until) },
        ),
        (
            lang.t("最小セル(k)・丸め", "Minimum cell (k), rounding"),
            html! { (grant.k) " · " (lang.rounding(&grant.rounding)) },
        ),
    ])
}

fn ledger_section(lang: Lang, ledger: &GrantLedger) -> Markup {
    html! {
        section class="ledger" {
            h2 { (lang.t("リリース台帳", "Release ledger")) }
            @if ledger.protection != "ledger" {
                p { (lang.t(
                    "このプロジェクトは単一クエリの規則だけで保護されています(台帳は使われません)。",
                    "This project is protected by the single-query rules alone; the ledger is not used.",
                )) }
            } @else {
                p class="muted" { (lang.t(
                    "集計値の対象者が以前に回答した値の対象者と k-1 人以内しか違わないとき、その値は以前の回答を繰り返します。数は表示されたグループの値だけを数えます。",
                    "A value whose persons are within k-1 of an earlier answer's repeats that answer. Counts are of values in shown groups only.",
                )) }
                (page::facts(&[
                    (lang.t("台帳リリース", "Ledger releases"), html! { span class="ledger-releases" { (ledger.releases) } }),
                    (lang.t("新たに回答した値", "Values answered fresh"), html! { span class="ledger-fresh" { (ledger.fresh_values) } }),
                    (lang.t("新たに回答できる残りの値", "Fresh values left in the budget"), html! {
                        span class="ledger-left" { (ledger.fresh_value_budget.saturating_sub(ledger.fresh_values)) }
                        " / " (ledger.fresh_value_budget)
                    }),
                    (lang.t("以前の回答を繰り返した値", "Values repeated from earlier releases"), html! { span class="ledger-repeated" { (ledger.repeated_values) } }),
                ]))
                @if ledger.recent.is_empty() {
                    (page::empty(lang.t("台帳リリースはまだありません。", "No ledger release yet.")))
                } @else {
                    (releases_table(lang, &ledger.recent))
                }
            }
        }
    }
}

fn releases_table(lang: Lang, releases: &[LedgerRelease]) -> Markup {
    let unknown = || html! { span class="muted" { "—" } };
    html! {
        h3 { (lang.t("最近の台帳リリース", "Recent ledger releases")) }
        table class="list releases" {
            thead { tr {
                th scope="col" class="num" { (lang.t("台帳番号", "Ledger no.")) }
                th scope="col" { (lang.t("日時", "Time")) }
                th scope="col" { (lang.t("クエリID", "Query id")) }
                th scope="col" class="num" { (lang.t("新たに回答した値", "Fresh values")) }
                th scope="col" class="num" { (lang.t("繰り返した値", "Repeated values")) }
            } }
            tbody {
                @for release in releases {
                    tr {
                        td class="num" { (release.number) }
                        td { @if let Some(at) = release.at_ms { (page::time(at.div_euclid(1000))) } @else { (unknown()) } }
                        td { @if let Some(id) = &release.query_id { code { (id) } } @else { (unknown()) } }
                        td class="num" { @if let Some(n) = release.fresh_values { (n) } @else { (unknown()) } }
                        td class="num" { @if let Some(n) = release.repeated_values { (n) } @else { (unknown()) } }
                    }
                }
            }
        }
    }
}
