//! Between the wire messages and the workflow's types. Requests are parsed
//! here, so a malformed field is an `invalid_argument` naming the field.

use enclave_query::{LedgerRelease, ProjectLedger};
use enclave_review as review;
use enclave_state::{Grant, Period, Project, Rounding, User};
use tonic::Status;

use crate::proto;

fn invalid(field: &str, problem: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("invalid {field}: {problem}"))
}

pub(crate) fn proposal(message: Option<proto::Proposal>) -> Result<review::Proposal, Status> {
    let message = message.ok_or_else(|| invalid("proposal", "missing"))?;
    Ok(review::Proposal {
        project_id: message.project_id,
        title: message.title,
        purpose: message.purpose,
        public_interest: message.public_interest,
        planned_outputs: message.planned_outputs,
        terms: terms(message.terms)?,
        planned_bring_ins: message.planned_bring_ins,
        security_measures: message.security_measures,
        no_matching_pledge: message.no_matching_pledge,
    })
}

pub(crate) fn terms(message: Option<proto::Terms>) -> Result<review::Terms, Status> {
    let message = message.ok_or_else(|| invalid("terms", "missing"))?;
    let period: Period = format!("{}..{}", message.period_first, message.period_last)
        .parse()
        .map_err(|error| invalid("period", error))?;
    let rounding: Rounding = message
        .rounding
        .parse()
        .map_err(|error| invalid("rounding", error))?;
    Ok(review::Terms {
        members: message
            .members
            .into_iter()
            .map(|m| review::Member {
                user: m.user,
                affiliation: m.affiliation,
            })
            .collect(),
        grants: message.tables.into_iter().map(grant).collect(),
        linkage: message.linkage,
        period,
        valid_until: message.valid_until,
        k: message.k,
        rounding,
        fresh_value_budget: message
            .fresh_values
            .unwrap_or(enclave_state::DEFAULT_FRESH_VALUE_BUDGET),
    })
}

fn grant(table: proto::TableRequest) -> Grant {
    Grant {
        table: table.table,
        columns: (!table.columns.is_empty()).then_some(table.columns),
    }
}

fn table_request(grant: &Grant) -> proto::TableRequest {
    proto::TableRequest {
        table: grant.table.clone(),
        columns: grant.columns.clone().unwrap_or_default(),
    }
}

pub(crate) fn rounding_name(rounding: Rounding) -> &'static str {
    match rounding {
        Rounding::None => "none",
        Rounding::To5 => "5",
        Rounding::To10 => "10",
    }
}

fn terms_message(terms: &review::Terms) -> proto::Terms {
    proto::Terms {
        members: terms
            .members
            .iter()
            .map(|m| proto::Member {
                user: m.user.clone(),
                affiliation: m.affiliation.clone(),
            })
            .collect(),
        tables: terms.grants.iter().map(table_request).collect(),
        linkage: terms.linkage.clone(),
        period_first: terms.period.first.month().to_string(),
        period_last: terms.period.last.month().to_string(),
        valid_until: terms.valid_until.clone(),
        k: terms.k,
        rounding: rounding_name(terms.rounding).to_string(),
        fresh_values: Some(terms.fresh_value_budget),
    }
}

fn transition<S: Copy>(
    transition: &review::Transition<S>,
    name: impl Fn(S) -> &'static str,
) -> proto::Transition {
    proto::Transition {
        from: transition.from.map(&name).unwrap_or_default().to_string(),
        to: name(transition.to).to_string(),
        by: transition.by.clone(),
        at: transition.at,
        step: transition
            .step
            .map(review::Step::name)
            .unwrap_or_default()
            .to_string(),
        note: transition.note.clone(),
    }
}

fn vote_choice(choice: review::VoteChoice) -> proto::VoteChoice {
    match choice {
        review::VoteChoice::Approve => proto::VoteChoice::Approve,
        review::VoteChoice::Reject => proto::VoteChoice::Reject,
        review::VoteChoice::Return => proto::VoteChoice::Return,
    }
}

pub(crate) fn vote_request(choice: i32) -> Result<review::VoteChoice, Status> {
    match proto::VoteChoice::try_from(choice) {
        Ok(proto::VoteChoice::Approve) => Ok(review::VoteChoice::Approve),
        Ok(proto::VoteChoice::Reject) => Ok(review::VoteChoice::Reject),
        Ok(proto::VoteChoice::Return) => Ok(review::VoteChoice::Return),
        _ => Err(invalid("choice", "vote approve, reject or return")),
    }
}

pub(crate) fn decision(request: &proto::DecideRequest) -> Result<review::Decision, Status> {
    match proto::DecisionKind::try_from(request.decision) {
        Ok(proto::DecisionKind::Approve) => Ok(review::Decision::Approve),
        Ok(proto::DecisionKind::ApproveWithConditions) => Ok(
            review::Decision::ApproveWithConditions(request.conditions.clone()),
        ),
        Ok(proto::DecisionKind::Reject) => Ok(review::Decision::Reject),
        Ok(proto::DecisionKind::Return) => Ok(review::Decision::Return),
        _ => Err(invalid(
            "decision",
            "decide approve, approve with conditions, reject or return",
        )),
    }
}

pub(crate) fn application(application: &review::Application) -> proto::Application {
    let proposal = &application.proposal;
    proto::Application {
        id: application.id.clone(),
        applicant: application.applicant.clone(),
        proposal: Some(proto::Proposal {
            project_id: proposal.project_id.clone(),
            title: proposal.title.clone(),
            purpose: proposal.purpose.clone(),
            public_interest: proposal.public_interest.clone(),
            planned_outputs: proposal.planned_outputs.clone(),
            terms: Some(terms_message(&proposal.terms)),
            planned_bring_ins: proposal.planned_bring_ins.clone(),
            security_measures: proposal.security_measures.clone(),
            no_matching_pledge: proposal.no_matching_pledge,
        }),
        pledged_by: application
            .pledge
            .as_ref()
            .map(|pledge| pledge.by.clone())
            .unwrap_or_default(),
        pledged_at: application.pledge.as_ref().map_or(0, |pledge| pledge.at),
        approved: application.approved.as_ref().map(terms_message),
        conditions: application.conditions.clone(),
        status: application.status.name().to_string(),
        amendment: application.is_amendment()
            && matches!(
                application.status,
                review::Status::Submitted | review::Status::UnderReview | review::Status::Returned
            ),
        reviewers: application
            .round
            .reviewers
            .iter()
            .map(|r| proto::Reviewer {
                user: r.user.clone(),
                conflict: r.conflict.clone().unwrap_or_default(),
                vote: r.vote.as_ref().map(|v| proto::Vote {
                    choice: vote_choice(v.choice) as i32,
                    opinion: v.opinion.clone(),
                    at: v.at,
                }),
            })
            .collect(),
        eligible_votes: application.eligible_votes() as u32,
        quorum: review::QUORUM as u32,
        history: application
            .history
            .iter()
            .map(|t| transition(t, review::Status::name))
            .collect(),
        messages: application
            .messages
            .iter()
            .map(|m| proto::Message {
                from: m.from.clone(),
                at: m.at,
                text: m.text.clone(),
            })
            .collect(),
    }
}

pub(crate) fn output_release(release: &review::OutputRelease) -> proto::OutputRelease {
    let findings = &release.findings;
    proto::OutputRelease {
        id: release.id.clone(),
        project_id: release.project_id.clone(),
        requested_by: release.requested_by.clone(),
        title: release.title.clone(),
        sql: release.sql.clone(),
        status: release.status.name().to_string(),
        findings: Some(proto::CheckFindings {
            passed: findings.passed,
            refused_rule: findings.refused_rule.clone().unwrap_or_default(),
            message: findings.message.clone(),
            released_groups: findings.released_groups,
            k: findings.k,
            rounding: findings.rounding.clone(),
        }),
        reviewed_by: release.reviewed_by.clone().unwrap_or_default(),
        review_note: release.review_note.clone().unwrap_or_default(),
        history: release
            .history
            .iter()
            .map(|t| transition(t, review::ReleaseStatus::name))
            .collect(),
    }
}

pub(crate) fn bring_in(bring_in: &review::BringIn) -> proto::BringIn {
    proto::BringIn {
        id: bring_in.id.clone(),
        project_id: bring_in.project_id.clone(),
        name: bring_in.name.clone(),
        kind: bring_in.kind.name().to_string(),
        sql: bring_in.sql.clone().unwrap_or_default(),
        requested_by: bring_in.requested_by.clone(),
        purpose: bring_in.purpose.clone(),
        status: bring_in.status.name().to_string(),
        columns: bring_in.upload.columns.clone(),
        rows: bring_in.upload.rows,
        bytes: bring_in.upload.bytes,
        sha256: bring_in.upload.sha256.clone(),
        findings: bring_in
            .findings
            .iter()
            .map(|finding| proto::ScreeningFinding {
                column: finding.column.clone(),
                rule: finding.rule.clone(),
                message: finding.message.clone(),
            })
            .collect(),
        approvals: bring_in
            .approvals
            .iter()
            .map(|approval| proto::BringInApproval {
                by: approval.by.clone(),
                at: approval.at,
                note: approval.note.clone(),
            })
            .collect(),
        history: bring_in
            .history
            .iter()
            .map(|t| transition(t, review::BringInStatus::name))
            .collect(),
    }
}

pub(crate) fn user(user: &User) -> proto::User {
    proto::User {
        name: user.name.clone(),
        role: user.role.name().to_string(),
        disabled: user.disabled,
    }
}

pub(crate) fn grant_message(project: &Project, open: bool) -> proto::Grant {
    proto::Grant {
        project_id: project.id.clone(),
        title: project.title.clone(),
        members: project.members.clone(),
        tables: project.grants.iter().map(table_request).collect(),
        period_first: project.period.first.month().to_string(),
        period_last: project.period.last.month().to_string(),
        valid_until: project.valid_until.clone(),
        k: project.k,
        rounding: rounding_name(project.rounding).to_string(),
        status: match project.status {
            enclave_state::ProjectStatus::Active => "active",
            enclave_state::ProjectStatus::Closed => "closed",
        }
        .to_string(),
        open,
    }
}

/// What a project's members see of the release ledger.
pub(crate) fn grant_ledger(project: &Project, ledger: &ProjectLedger) -> proto::GrantLedger {
    proto::GrantLedger {
        project_id: project.id.clone(),
        protection: project.protection.name().to_string(),
        releases: ledger.releases,
        fresh_values: ledger.fresh_values,
        repeated_values: ledger.repeated_values,
        recent: ledger.recent.iter().map(ledger_release).collect(),
        fresh_value_budget: project.fresh_value_budget,
    }
}

fn ledger_release(release: &LedgerRelease) -> proto::LedgerRelease {
    proto::LedgerRelease {
        number: release.number,
        at_ms: release.at_ms,
        query_id: release.query_id.clone(),
        fresh_values: release.fresh_values,
        repeated_values: release.repeated_values,
    }
}
