//! A project's page, for its members and for those who see every project
//! (the committee, operators): its grant and what the release ledger holds
//! of it — the releases its results made, the values of released groups
//! answered fresh or repeated from earlier releases, and the recent
//! releases by the query whose result made them (the id a Flight SQL
//! result's metadata carries). How many cells were withheld is never
//! shown: it would tell that a group of fewer than k persons exists.
//! Calls the API's `Grants` as the visitor.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;
use enclave_api::proto::grants_server::Grants;
use enclave_api::proto::{
    Grant, GrantLedger, GrantLedgerRequest, LedgerRelease, ListGrantsRequest,
};
use maud::{Markup, html};

use crate::call::as_user;
use crate::i18n::Lang;
use crate::page::{self, Section, status_badge};
use crate::session::{SignedIn, Visitor};
use crate::{Portal, PortalError};

pub(crate) fn routes() -> Router<Portal> {
    Router::new().route("/projects/{id}", get(project_page))
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
    let body = html! {
        @if let Some(grant) = &grant { (grant_facts(lang, grant)) }
        (ledger_section(lang, &ledger))
    };
    let title = format!("{} {id}", lang.t("プロジェクト", "Project"));
    Ok(page::render(&visitor, Section::Applications, &title, body))
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
