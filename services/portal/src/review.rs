//! The committee's pages: the queue, an application with the requested
//! data highlighted, conflicts of interest, opinions and votes, the chair's
//! assignment and decision with conditions, and the second-person check of
//! output releases with the automatic check's findings, and the bring-in
//! review of tables projects brought in (two members outside the project
//! approve; a rejection destroys the file). Every page asks the
//! access policy for `committee, view` first, so nobody else can open them,
//! whatever the URL; each step is then the API's call, made as the visitor.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use enclave_access::{Domain, permissions};
use enclave_api::proto::applications_server::Applications as _;
use enclave_api::proto::bring_ins_server::BringIns;
use enclave_api::proto::output_releases_server::OutputReleases;
use enclave_api::proto::{
    Application, AssignReviewersRequest, BringIn, DecideRequest, DecisionKind,
    DeclareConflictRequest, ListOutputsRequest, ReviewBringInRequest, ReviewOutputRequest,
    VoteChoice, VoteRequest,
};
use enclave_state::Role;
use maud::{Markup, html};

use crate::applications::{
    self, applications_table, conversation, history, requested_data, summary,
};
use crate::call::as_user;
use crate::i18n::Lang;
use crate::outputs::{self, outputs_table};
use crate::page::{self, Section, csrf_field};
use crate::projects;
use crate::session::{Posted, SignedIn, Visitor};
use crate::{Portal, PortalError};

pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/review", get(queue_page))
        .route("/review/applications/{id}", get(application_page))
        .route("/review/applications/{id}/assign", post(assign))
        .route("/review/applications/{id}/conflict", post(declare_conflict))
        .route("/review/applications/{id}/vote", post(vote))
        .route("/review/applications/{id}/decide", post(decide))
        .route("/review/outputs/{id}", get(output_page).post(review_output))
        .route("/review/bring-ins/{id}", post(review_bring_in))
}

/// The signed-in committee member, or a refusal.
async fn committee<'a>(portal: &Portal, visitor: &'a Visitor) -> Result<&'a SignedIn, PortalError> {
    let user = visitor.signed_in()?;
    portal
        .access()
        .check(&user.name, &Domain::System, permissions::COMMITTEE_VIEW)
        .await?;
    Ok(user)
}

fn is_open(application: &Application) -> bool {
    matches!(application.status.as_str(), "submitted" | "under_review")
}

async fn queue_page(
    State(portal): State<Portal>,
    visitor: Visitor,
) -> Result<Html<String>, PortalError> {
    let user = committee(&portal, &visitor).await?;
    let lang = visitor.lang;
    let all = applications::list(&portal, user).await?;
    let (open, decided): (Vec<Application>, Vec<Application>) = all.into_iter().partition(is_open);
    let outputs = OutputReleases::list(portal.api(), as_user(user, ListOutputsRequest {}))
        .await?
        .into_inner()
        .releases;
    let (waiting, checked): (Vec<_>, Vec<_>) = outputs
        .into_iter()
        .partition(|r| r.status == "awaiting_review");
    let quarantined: Vec<BringIn> = projects::bring_ins(&portal, user)
        .await?
        .into_iter()
        .filter(|bring_in| bring_in.status == "quarantined")
        .collect();
    let body = html! {
        h2 { (lang.t("審査待ちの申請", "Applications awaiting review")) }
        @if open.is_empty() { (page::empty(lang.t("審査待ちの申請はありません。", "No application awaits review."))) }
        @else { (applications_table(lang, &open, "/review/applications/")) }
        h2 { (lang.t("確認待ちの成果物", "Outputs awaiting a check")) }
        @if waiting.is_empty() { (page::empty(lang.t("確認待ちの成果物はありません。", "No output awaits a check."))) }
        @else { (outputs_table(lang, &waiting, "/review/outputs/")) }
        h2 { (lang.t("審査待ちの持込表", "Tables brought in awaiting review")) }
        @if quarantined.is_empty() { (page::empty(lang.t("審査待ちの持込表はありません。", "No table brought in awaits review."))) }
        @else {
            (projects::bring_in_table(lang, &quarantined))
            @for bring_in in &quarantined { (bring_in_form(&visitor, bring_in)) }
        }
        details {
            summary { (lang.t("審査済みの申請と成果物", "Decided applications and checked outputs")) }
            @if !decided.is_empty() { (applications_table(lang, &decided, "/review/applications/")) }
            @if !checked.is_empty() { (outputs_table(lang, &checked, "/review/outputs/")) }
        }
    };
    Ok(page::render(
        &visitor,
        Section::Review,
        lang.t("審査", "Review"),
        body,
    ))
}

async fn application_page(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Html<String>, PortalError> {
    let user = committee(&portal, &visitor).await?;
    let lang = visitor.lang;
    let application = applications::fetch(&portal, user, &id).await?;
    let proposal = application.proposal.clone().unwrap_or_default();
    let reviewers = if user.role == "chair" {
        committee_members(&portal).await?
    } else {
        Vec::new()
    };
    let body = html! {
        p class="crumbs" { a href="/review" { (lang.t("審査", "Review")) } }
        (summary(lang, &application))
        (requested_data(&portal, lang, proposal.terms.as_ref(), lang.t("申請されたデータ(申請列を強調表示)", "Data requested (requested columns highlighted)")))
        (committee_section(&visitor, user, &application, &reviewers))
        (conversation(&visitor, &application, &format!("/review/applications/{id}")))
        (history(lang, &application))
    };
    let title = format!(
        "{} #{} {}",
        lang.t("審査", "Review"),
        application.id,
        proposal.title
    );
    Ok(page::render(&visitor, Section::Review, &title, body))
}

/// Accounts that may be assigned as reviewers (for the chair's form).
async fn committee_members(portal: &Portal) -> Result<Vec<String>, PortalError> {
    let snapshot = portal
        .access()
        .snapshot()
        .await
        .map_err(|error| PortalError::internal(&error))?;
    Ok(snapshot
        .users()
        .filter(|u| !u.disabled && matches!(u.role, Role::Reviewer | Role::Chair))
        .map(|u| u.name.clone())
        .collect())
}

/// Reviewers, votes and the forms of this step.
fn committee_section(
    visitor: &Visitor,
    user: &SignedIn,
    application: &Application,
    candidates: &[String],
) -> Markup {
    let lang = visitor.lang;
    let base = format!("/review/applications/{}", application.id);
    let me = application.reviewers.iter().find(|r| r.user == user.name);
    let open = is_open(application);
    html! {
        section class="committee" {
            h2 { (lang.t("審査委員と投票", "Reviewers and votes")) }
            p class="muted quorum" {
                (lang.t("有効票", "Eligible votes")) ": " (application.eligible_votes) " / "
                (lang.t("決定に必要な票", "needed for a decision")) " " (application.quorum)
            }
            @if application.reviewers.is_empty() {
                (page::empty(lang.t("審査委員はまだ割り当てられていません。", "No reviewer assigned yet.")))
            } @else {
                table class="list" {
                    thead { tr {
                        th scope="col" { (lang.t("審査委員", "Reviewer")) }
                        th scope="col" { (lang.t("利益相反", "Conflict")) }
                        th scope="col" { (lang.t("投票", "Vote")) }
                        th scope="col" { (lang.t("意見", "Opinion")) }
                    } }
                    tbody {
                        @for reviewer in &application.reviewers {
                            tr {
                                td { (reviewer.user) }
                                td { (if reviewer.conflict.is_empty() { "—" } else { &reviewer.conflict }) }
                                td { @if let Some(vote) = &reviewer.vote { (vote_name(lang, vote.choice)) } @else { "—" } }
                                td { @if let Some(vote) = &reviewer.vote { (vote.opinion) } }
                            }
                        }
                    }
                }
            }
            @if open && user.role == "chair" {
                form method="post" action={ (base) "/assign" } class="panel" {
                    (csrf_field(visitor))
                    h3 { (lang.t("審査委員の割り当て(委員長)", "Assign reviewers (chair)")) }
                    p class="muted" { (lang.t("申請者・研究者は割り当てられません。", "Nobody named on the application can be assigned.")) }
                    div class="row" {
                        @for candidate in candidates {
                            @let assigned = application.reviewers.iter().any(|r| &r.user == candidate);
                            label class="check" { input type="checkbox" name="reviewer" value=(candidate) checked[assigned]; " " (candidate) }
                        }
                    }
                    button type="submit" { (lang.t("割り当てる", "Assign")) }
                }
            }
            @if open && me.is_some_and(|r| r.conflict.is_empty()) {
                form method="post" action={ (base) "/vote" } class="panel" {
                    (csrf_field(visitor))
                    h3 { (lang.t("意見と投票", "Opinion and vote")) }
                    fieldset class="row" {
                        legend { (lang.t("投票", "Vote")) }
                        @for (value, ja, en) in [("approve", "承認", "Approve"), ("reject", "不承認", "Reject"), ("return", "差し戻し", "Return")] {
                            label class="check" { input type="radio" name="choice" value=(value) required; " " (lang.t(ja, en)) }
                        }
                    }
                    label for="opinion" { (lang.t("意見", "Opinion")) }
                    textarea id="opinion" name="opinion" rows="3" required {}
                    button type="submit" { (lang.t("投票する", "Vote")) }
                }
            }
            @if open && user.role != "chair" && me.is_none_or(|r| r.conflict.is_empty()) {
                form method="post" action={ (base) "/conflict" } class="panel" {
                    (csrf_field(visitor))
                    h3 { (lang.t("利益相反の申告", "Declare a conflict of interest")) }
                    label for="conflict-reason" { (lang.t("理由", "Reason")) }
                    input id="conflict-reason" name="reason" required;
                    button type="submit" class="secondary" { (lang.t("申告する", "Declare")) }
                }
            }
            @if application.status == "under_review" && user.role == "chair" {
                @let short = application.quorum.saturating_sub(application.eligible_votes);
                form method="post" action={ (base) "/decide" } class="panel" {
                    (csrf_field(visitor))
                    h3 { (lang.t("委員長の決定", "The chair's decision")) }
                    @if short > 0 {
                        p class="notice no-quorum" {
                            (lang.t("定足数に達していません。決定にはあと", "No quorum yet: "))
                            (short)
                            (lang.t("票の有効票が必要です。", " more eligible votes are needed before a decision."))
                        }
                    }
                    label for="decision" { (lang.t("決定", "Decision")) }
                    // Nothing is preselected: the chair chooses.
                    select id="decision" name="decision" required {
                        option value="" selected disabled { (lang.t("— 選んでください —", "— choose —")) }
                        option value="approve" { (lang.t("承認", "Approve")) }
                        option value="approve_with_conditions" { (lang.t("条件付き承認", "Approve with conditions")) }
                        option value="return" { (lang.t("差し戻し", "Return")) }
                        option value="reject" { (lang.t("不承認", "Reject")) }
                    }
                    label for="conditions" { (lang.t("条件(1行に1つ。条件付き承認のとき)", "Conditions (one per line, with conditional approval)")) }
                    textarea id="conditions" name="conditions" rows="3" {}
                    label for="note" { (lang.t("付記", "Note")) }
                    input id="note" name="note";
                    button type="submit" disabled[short > 0] { (lang.t("決定する", "Decide")) }
                }
            }
        }
    }
}

fn vote_name(lang: Lang, choice: i32) -> &'static str {
    match VoteChoice::try_from(choice) {
        Ok(VoteChoice::Approve) => lang.t("承認", "Approve"),
        Ok(VoteChoice::Reject) => lang.t("不承認", "Reject"),
        Ok(VoteChoice::Return) => lang.t("差し戻し", "Return"),
        _ => "—",
    }
}

async fn assign(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Redirect, PortalError> {
    let user = committee(&portal, &visitor).await?;
    let request = as_user(
        user,
        AssignReviewersRequest {
            id: id.clone(),
            reviewers: form.all("reviewer"),
        },
    );
    portal.api().assign_reviewers(request).await?;
    Ok(back(&id))
}

async fn declare_conflict(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Redirect, PortalError> {
    let user = committee(&portal, &visitor).await?;
    let request = as_user(
        user,
        DeclareConflictRequest {
            id: id.clone(),
            reason: form.get("reason").to_string(),
        },
    );
    portal.api().declare_conflict(request).await?;
    Ok(back(&id))
}

async fn vote(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Redirect, PortalError> {
    let user = committee(&portal, &visitor).await?;
    let choice = match form.get("choice") {
        "approve" => VoteChoice::Approve,
        "reject" => VoteChoice::Reject,
        "return" => VoteChoice::Return,
        _ => VoteChoice::Unspecified,
    };
    let request = as_user(
        user,
        VoteRequest {
            id: id.clone(),
            choice: choice.into(),
            opinion: form.get("opinion").to_string(),
        },
    );
    portal.api().vote(request).await?;
    Ok(back(&id))
}

async fn decide(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Redirect, PortalError> {
    let user = committee(&portal, &visitor).await?;
    let decision = match form.get("decision") {
        "approve" => DecisionKind::Approve,
        "approve_with_conditions" => DecisionKind::ApproveWithConditions,
        "reject" => DecisionKind::Reject,
        "return" => DecisionKind::Return,
        _ => DecisionKind::Unspecified,
    };
    let request = as_user(
        user,
        DecideRequest {
            id: id.clone(),
            decision: decision.into(),
            conditions: form.lines("conditions"),
            note: form.get("note").to_string(),
        },
    );
    portal.api().decide(request).await?;
    Ok(back(&id))
}

fn back(id: &str) -> Redirect {
    Redirect::to(&format!("/review/applications/{id}"))
}

async fn output_page(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Html<String>, PortalError> {
    let user = committee(&portal, &visitor).await?;
    let lang = visitor.lang;
    let release = outputs::fetch(&portal, user, &id).await?;
    let body = html! {
        p class="crumbs" { a href="/review" { (lang.t("審査", "Review")) } }
        (outputs::details(lang, &release))
        @if release.status == "awaiting_review" {
            form method="post" action={ "/review/outputs/" (release.id) } class="panel" {
                (csrf_field(&visitor))
                h3 { (lang.t("第二者確認", "Second-person check")) }
                fieldset class="row" {
                    legend { (lang.t("判断", "Decision")) }
                    label class="check" { input type="radio" name="approve" value="yes" required; " " (lang.t("公表を承認", "Approve the release")) }
                    label class="check" { input type="radio" name="approve" value="no"; " " (lang.t("公表しない", "Do not release")) }
                }
                label for="review-note" { (lang.t("所見", "Note")) }
                textarea id="review-note" name="note" rows="2" required {}
                button type="submit" { (lang.t("確定する", "Record")) }
            }
        }
    };
    let title = format!(
        "{} #{} {}",
        lang.t("成果物の確認", "Output check"),
        release.id,
        release.title
    );
    Ok(page::render(&visitor, Section::Review, &title, body))
}

/// A committee member's decision on one quarantined table.
fn bring_in_form(visitor: &Visitor, bring_in: &BringIn) -> Markup {
    let lang = visitor.lang;
    html! {
        form method="post" action={ "/review/bring-ins/" (bring_in.id) } class="panel bring-in-review" {
            (csrf_field(visitor))
            h3 { (lang.t("持込審査", "Bring-in review")) " #" (bring_in.id) " " code translate="no" { "ref." (bring_in.name) } " (" span translate="no" { (bring_in.project_id) } ")" }
            p { (lang.t("用途", "What it is for")) ": " span translate="no" { (bring_in.purpose) } }
            p class="muted" { "SHA-256 " code { (bring_in.sha256) } }
            fieldset class="row" {
                legend { (lang.t("判断", "Decision")) }
                label class="check" { input type="radio" name="approve" value="yes" required; " " (lang.t("承認", "Approve")) }
                label class="check" { input type="radio" name="approve" value="no"; " " (lang.t("却下(ファイルは消去)", "Reject (the file is destroyed)")) }
            }
            label for={ "bring-in-note-" (bring_in.id) } { (lang.t("所見", "Note")) }
            textarea id={ "bring-in-note-" (bring_in.id) } name="note" rows="2" required {}
            button type="submit" { (lang.t("確定する", "Record")) }
        }
    }
}

async fn review_bring_in(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Redirect, PortalError> {
    let user = committee(&portal, &visitor).await?;
    let request = as_user(
        user,
        ReviewBringInRequest {
            id,
            approve: form.get("approve") == "yes",
            note: form.get("note").to_string(),
        },
    );
    BringIns::review(portal.api(), request).await?;
    Ok(Redirect::to("/review"))
}

async fn review_output(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: Posted,
) -> Result<Redirect, PortalError> {
    let user = committee(&portal, &visitor).await?;
    let request = as_user(
        user,
        ReviewOutputRequest {
            id: id.clone(),
            approve: form.get("approve") == "yes",
            note: form.get("note").to_string(),
        },
    );
    OutputReleases::review(portal.api(), request).await?;
    Ok(Redirect::to(&format!("/review/outputs/{id}")))
}
