//! An application for data access and its life: draft → submitted → under
//! review → approved / conditionally approved / rejected / returned for
//! changes; amendments, withdrawal, expiry and closing. Every transition is
//! timestamped and attributed in `history`.

use std::fmt;

use enclave_catalog::Catalog;
use enclave_state::{DEFAULT_K, Grant, Period, Project, ProjectStatus, Protection, Rounding};
use serde::{Deserialize, Serialize};

use crate::WorkflowError;

/// Eligible (non-conflicted) votes needed before the chair may decide.
pub const QUORUM: usize = 2;
/// Workspace quota of a project made by an approval.
pub const WORKSPACE_QUOTA_BYTES: u64 = 1 << 30;

/// The source databases that can be linked through `person_id`.
pub const DATASETS: [&str; 3] = ["ndb", "dpc", "care"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Submitted,
    UnderReview,
    Approved,
    ConditionallyApproved,
    Rejected,
    Returned,
    Withdrawn,
    Expired,
    Closed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::UnderReview => "under_review",
            Status::Approved => "approved",
            Status::ConditionallyApproved => "conditionally_approved",
            Status::Rejected => "rejected",
            Status::Returned => "returned",
            Status::Withdrawn => "withdrawn",
            Status::Expired => "expired",
            Status::Closed => "closed",
        }
    }

    fn is_approved(self) -> bool {
        matches!(self, Status::Approved | Status::ConditionallyApproved)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A researcher named on an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: String,
    pub affiliation: String,
}

/// What an application asks for, and once approved, what is granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// Everyone who may use the data, the applicant included.
    pub members: Vec<Member>,
    /// Tables and columns picked from the catalog.
    pub grants: Vec<Grant>,
    /// Source databases to be linked (`ndb`, `dpc`, `care`).
    pub linkage: Vec<String>,
    /// Service months the project may see.
    pub period: Period,
    /// Last day queries are allowed (`YYYY-MM-DD`).
    pub valid_until: String,
    /// Disclosure parameters requested: minimum persons per group, rounding.
    pub k: u32,
    pub rounding: Rounding,
    /// Values the release ledger may answer fresh for the project over its
    /// life (applications from before the budget read the default).
    #[serde(default = "enclave_state::default_fresh_value_budget")]
    pub fresh_value_budget: u64,
}

/// What the applicant writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The id the approved project will have (a-z, 0-9, '-', '_').
    pub project_id: String,
    pub title: String,
    pub purpose: String,
    pub public_interest: String,
    pub planned_outputs: String,
    pub terms: Terms,
    /// Tables the study will bring in (code lists, reference tables), for
    /// the bring-in review; may be empty.
    #[serde(default)]
    pub planned_bring_ins: String,
    /// The data security measures at the researchers' site.
    #[serde(default)]
    pub security_measures: String,
    /// The applicant accepts the pledge not to match the data against any
    /// other data (照合禁止); the application records who and when.
    #[serde(default)]
    pub no_matching_pledge: bool,
}

/// The pledge to 照合禁止 as accepted: by whom, when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pledge {
    pub by: String,
    pub at: i64,
}

impl Pledge {
    fn of(proposal: &Proposal, act: Act<'_>) -> Option<Pledge> {
        proposal.no_matching_pledge.then(|| Pledge {
            by: act.by.to_string(),
            at: act.at,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteChoice {
    Approve,
    Reject,
    Return,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub choice: VoteChoice,
    pub opinion: String,
    pub at: i64,
}

/// An assigned reviewer: a declared conflict, or a vote, never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviewer {
    pub user: String,
    pub conflict: Option<String>,
    pub vote: Option<Vote>,
}

/// The chair's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    ApproveWithConditions(Vec<String>),
    Reject,
    Return,
}

/// One step of a history: what happened (`step`, which the portal names in
/// the reader's language) and what a person wrote or chose with it
/// (`note`: their note, the reviewers assigned, the check's finding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition<S> {
    pub from: Option<S>,
    pub to: S,
    pub by: String,
    pub at: i64,
    /// Absent in histories written before steps were recorded, whose
    /// notes say what happened in English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    pub note: String,
}

impl<S: Copy> Transition<S> {
    /// The step `act` took from `from` to `to`, with `note`.
    pub(crate) fn new(from: Option<S>, to: S, act: Act<'_>, step: Step, note: &str) -> Self {
        Transition {
            from,
            to,
            by: act.by.to_string(),
            at: act.at,
            step: Some(step),
            note: note.to_string(),
        }
    }
}

/// What a project asked the committee to check (an output, a table it
/// brings in): who asked, in which project.
pub(crate) struct Asked<'a> {
    pub(crate) by: &'a str,
    pub(crate) project: &'a str,
    /// What was asked, for the refusal (`its output`).
    pub(crate) what: &'a str,
}

impl Asked<'_> {
    /// A second person's review: not by whoever asked nor a member of the
    /// project, and with a written note.
    pub(crate) fn check_reviewer(
        &self,
        members: &[String],
        note: &str,
        act: Act<'_>,
    ) -> Result<(), WorkflowError> {
        if act.by == self.by || members.iter().any(|m| m == act.by) {
            return Err(WorkflowError::SeparationOfDuties(format!(
                "`{}` belongs to project {} and cannot review {}",
                act.by, self.project, self.what
            )));
        }
        if note.trim().is_empty() {
            return Err(WorkflowError::invalid(
                "note",
                "a review needs a written note",
            ));
        }
        Ok(())
    }
}

/// What happened at a step of an application's or an output release's
/// history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Created,
    Edited,
    Submitted,
    AmendmentSubmitted,
    ReviewersAssigned,
    ConflictDeclared,
    VoteRecorded,
    Decided,
    Withdrawn,
    Closed,
    GrantEnded,
    CheckPassed,
    CheckRefused,
    Reviewed,
    /// What the project held was destroyed when it closed.
    Destroyed,
    ScreeningPassed,
    ScreeningRefused,
    QuarantineExpired,
}

impl Step {
    pub const ALL: [Step; 18] = [
        Step::Created,
        Step::Edited,
        Step::Submitted,
        Step::AmendmentSubmitted,
        Step::ReviewersAssigned,
        Step::ConflictDeclared,
        Step::VoteRecorded,
        Step::Decided,
        Step::Withdrawn,
        Step::Closed,
        Step::GrantEnded,
        Step::CheckPassed,
        Step::CheckRefused,
        Step::Reviewed,
        Step::Destroyed,
        Step::ScreeningPassed,
        Step::ScreeningRefused,
        Step::QuarantineExpired,
    ];

    /// The step's name in the API and in stored histories.
    pub fn name(self) -> &'static str {
        match self {
            Step::Created => "created",
            Step::Edited => "edited",
            Step::Submitted => "submitted",
            Step::AmendmentSubmitted => "amendment_submitted",
            Step::ReviewersAssigned => "reviewers_assigned",
            Step::ConflictDeclared => "conflict_declared",
            Step::VoteRecorded => "vote_recorded",
            Step::Decided => "decided",
            Step::Withdrawn => "withdrawn",
            Step::Closed => "closed",
            Step::GrantEnded => "grant_ended",
            Step::CheckPassed => "check_passed",
            Step::CheckRefused => "check_refused",
            Step::Reviewed => "reviewed",
            Step::Destroyed => "destroyed",
            Step::ScreeningPassed => "screening_passed",
            Step::ScreeningRefused => "screening_refused",
            Step::QuarantineExpired => "quarantine_expired",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: String,
    pub at: i64,
    pub text: String,
}

/// One review round: its reviewers and the chair's decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    pub reviewers: Vec<Reviewer>,
    pub decided_by: Option<String>,
    pub decision: Option<Decision>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub id: String,
    pub applicant: String,
    pub proposal: Proposal,
    /// The terms in force, once approved; an amendment under review leaves
    /// them in force until it is approved.
    pub approved: Option<Terms>,
    pub conditions: Vec<String>,
    pub status: Status,
    /// The current round; earlier rounds are in `past_rounds`.
    pub round: Round,
    pub past_rounds: Vec<Round>,
    pub history: Vec<Transition<Status>>,
    pub messages: Vec<Message>,
    /// The 照合禁止 pledge as last accepted with the proposal.
    #[serde(default)]
    pub pledge: Option<Pledge>,
}

/// Who acts, and when.
#[derive(Debug, Clone, Copy)]
pub struct Act<'a> {
    pub by: &'a str,
    pub at: i64,
}

impl Application {
    /// A new draft by `act.by`, checked against the catalog.
    pub fn draft(
        id: String,
        proposal: Proposal,
        catalog: &Catalog,
        act: Act<'_>,
    ) -> Result<Application, WorkflowError> {
        validate_proposal(&proposal, act.by, catalog)?;
        let mut application = Application {
            id,
            applicant: act.by.to_string(),
            pledge: Pledge::of(&proposal, act),
            proposal,
            approved: None,
            conditions: Vec::new(),
            status: Status::Draft,
            round: Round::default(),
            past_rounds: Vec::new(),
            history: Vec::new(),
            messages: Vec::new(),
        };
        application.record(None, Status::Draft, act, Step::Created, "");
        Ok(application)
    }

    /// Everyone named: the applicant and the members requested or in force.
    pub fn is_member(&self, user: &str) -> bool {
        user == self.applicant
            || self.proposal.terms.members.iter().any(|m| m.user == user)
            || self
                .approved
                .iter()
                .flat_map(|terms| &terms.members)
                .any(|m| m.user == user)
    }

    pub fn is_amendment(&self) -> bool {
        self.approved.is_some()
    }

    /// Replaces the proposal of a draft or returned application.
    pub fn edit(
        &mut self,
        proposal: Proposal,
        catalog: &Catalog,
        act: Act<'_>,
    ) -> Result<(), WorkflowError> {
        self.expect(
            &[Status::Draft, Status::Returned],
            "editing",
            "draft or returned",
        )?;
        if proposal.project_id != self.proposal.project_id && self.is_amendment() {
            return Err(WorkflowError::invalid(
                "project_id",
                "an approved project keeps its id",
            ));
        }
        validate_proposal(&proposal, &self.applicant, catalog)?;
        self.pledge = Pledge::of(&proposal, act);
        self.proposal = proposal;
        self.record(Some(self.status), self.status, act, Step::Edited, "");
        Ok(())
    }

    pub fn submit(&mut self, act: Act<'_>) -> Result<(), WorkflowError> {
        self.expect(
            &[Status::Draft, Status::Returned],
            "submitting",
            "draft or returned",
        )?;
        if self.proposal.security_measures.trim().is_empty() {
            return Err(WorkflowError::invalid(
                "security_measures",
                "describe the data security measures at your site before submitting",
            ));
        }
        if self.pledge.is_none() {
            return Err(WorkflowError::invalid(
                "no_matching_pledge",
                "accept the pledge not to match the data against other data (照合禁止) before submitting",
            ));
        }
        self.start_round(act, Step::Submitted);
        Ok(())
    }

    /// Asks for changed terms of an approved application (new members, more
    /// columns, a later end); the approved terms stay in force until the
    /// amendment itself is approved.
    pub fn amend(
        &mut self,
        terms: Terms,
        catalog: &Catalog,
        act: Act<'_>,
    ) -> Result<(), WorkflowError> {
        self.expect_approved("amending")?;
        let proposal = Proposal {
            terms,
            ..self.proposal.clone()
        };
        validate_proposal(&proposal, &self.applicant, catalog)?;
        self.proposal = proposal;
        self.start_round(act, Step::AmendmentSubmitted);
        Ok(())
    }

    fn start_round(&mut self, act: Act<'_>, step: Step) {
        let finished = std::mem::take(&mut self.round);
        if !finished.reviewers.is_empty() || finished.decision.is_some() {
            self.past_rounds.push(finished);
        }
        self.record(Some(self.status), Status::Submitted, act, step, "");
    }

    /// The chair assigns reviewers (adding to those already assigned).
    pub fn assign(&mut self, reviewers: &[String], act: Act<'_>) -> Result<(), WorkflowError> {
        self.expect(
            &[Status::Submitted, Status::UnderReview],
            "assigning reviewers",
            "submitted or under review",
        )?;
        self.refuse_member(act.by, "assign reviewers to")?;
        for user in reviewers {
            self.refuse_member(user, "review")?;
            if !self.round.reviewers.iter().any(|r| &r.user == user) {
                self.round.reviewers.push(Reviewer {
                    user: user.clone(),
                    conflict: None,
                    vote: None,
                });
            }
        }
        let assigned = reviewers.join(", ");
        self.record(
            Some(self.status),
            Status::UnderReview,
            act,
            Step::ReviewersAssigned,
            &assigned,
        );
        Ok(())
    }

    /// An assigned reviewer declares a conflict of interest; any vote they
    /// gave no longer counts.
    pub fn declare_conflict(&mut self, reason: &str, act: Act<'_>) -> Result<(), WorkflowError> {
        self.expect(
            &[Status::UnderReview],
            "declaring a conflict",
            "under review",
        )?;
        if reason.trim().is_empty() {
            return Err(WorkflowError::invalid("reason", "say what the conflict is"));
        }
        let reviewer = self.assigned_reviewer(act.by)?;
        reviewer.conflict = Some(reason.trim().to_string());
        reviewer.vote = None;
        self.record(
            Some(self.status),
            self.status,
            act,
            Step::ConflictDeclared,
            "",
        );
        Ok(())
    }

    pub fn vote(
        &mut self,
        choice: VoteChoice,
        opinion: &str,
        act: Act<'_>,
    ) -> Result<(), WorkflowError> {
        self.expect(&[Status::UnderReview], "voting", "under review")?;
        self.refuse_member(act.by, "vote on")?;
        if opinion.trim().is_empty() {
            return Err(WorkflowError::invalid(
                "opinion",
                "a vote needs a written opinion",
            ));
        }
        let reviewer = self.assigned_reviewer(act.by)?;
        if reviewer.conflict.is_some() {
            return Err(WorkflowError::Conflict(
                "you declared a conflict of interest on this application and cannot vote".into(),
            ));
        }
        reviewer.vote = Some(Vote {
            choice,
            opinion: opinion.trim().to_string(),
            at: act.at,
        });
        self.record(Some(self.status), self.status, act, Step::VoteRecorded, "");
        Ok(())
    }

    /// Votes of reviewers without a declared conflict.
    pub fn eligible_votes(&self) -> usize {
        self.round
            .reviewers
            .iter()
            .filter(|r| r.conflict.is_none() && r.vote.is_some())
            .count()
    }

    /// The chair's decision. Returns the project to write when the decision
    /// grants (or changes) access.
    pub fn decide(
        &mut self,
        decision: Decision,
        note: &str,
        act: Act<'_>,
    ) -> Result<Option<Project>, WorkflowError> {
        self.expect(&[Status::UnderReview], "deciding", "under review")?;
        self.refuse_member(act.by, "decide on")?;
        let votes = self.eligible_votes();
        if votes < QUORUM {
            return Err(WorkflowError::NoQuorum {
                votes,
                quorum: QUORUM,
            });
        }
        let (to, project) = match &decision {
            Decision::Approve | Decision::ApproveWithConditions(_) => {
                self.conditions = match &decision {
                    Decision::ApproveWithConditions(conditions) => conditions.clone(),
                    _ => Vec::new(),
                };
                if let Decision::ApproveWithConditions(conditions) = &decision
                    && conditions.iter().all(|c| c.trim().is_empty())
                {
                    return Err(WorkflowError::invalid("conditions", "state the conditions"));
                }
                self.approved = Some(self.proposal.terms.clone());
                let to = if self.conditions.is_empty() {
                    Status::Approved
                } else {
                    Status::ConditionallyApproved
                };
                (to, Some(self.project(ProjectStatus::Active)))
            }
            Decision::Reject if self.is_amendment() => {
                self.restore_approved_terms();
                (self.approved_status(), None)
            }
            Decision::Reject => (Status::Rejected, None),
            Decision::Return => (Status::Returned, None),
        };
        self.round.decided_by = Some(act.by.to_string());
        self.round.decision = Some(decision);
        self.record(Some(self.status), to, act, Step::Decided, note);
        Ok(project)
    }

    /// The applicant withdraws. A pending amendment is withdrawn alone: the
    /// approved terms stay in force.
    pub fn withdraw(&mut self, act: Act<'_>) -> Result<(), WorkflowError> {
        self.expect(
            &[
                Status::Draft,
                Status::Submitted,
                Status::UnderReview,
                Status::Returned,
            ],
            "withdrawing",
            "draft, submitted, under review or returned",
        )?;
        let to = if self.is_amendment() {
            self.restore_approved_terms();
            self.approved_status()
        } else {
            Status::Withdrawn
        };
        self.record(Some(self.status), to, act, Step::Withdrawn, "");
        Ok(())
    }

    /// Ends an approved project for good. Returns the closed project; the
    /// caller deletes its workspace.
    pub fn close(&mut self, note: &str, act: Act<'_>) -> Result<Project, WorkflowError> {
        if self.approved.is_none() || matches!(self.status, Status::Closed) {
            return Err(WorkflowError::WrongStatus {
                id: self.id.clone(),
                status: self.status,
                action: "closing",
                expected: "approved (or expired)",
            });
        }
        self.record(
            Some(self.status),
            Status::Closed,
            act,
            Step::Closed,
            note.trim(),
        );
        Ok(self.project(ProjectStatus::Closed))
    }

    /// Marks an approved application whose grant ended before `today`
    /// (`YYYY-MM-DD`) as expired; returns the project to close.
    pub fn expire_if_due(&mut self, today: &str, act: Act<'_>) -> Option<Project> {
        let terms = self.approved.as_ref()?;
        let live = !matches!(self.status, Status::Expired | Status::Closed);
        if !live || terms.valid_until.as_str() >= today {
            return None;
        }
        self.record(
            Some(self.status),
            Status::Expired,
            act,
            Step::GrantEnded,
            "",
        );
        Some(self.project(ProjectStatus::Closed))
    }

    pub fn message(&mut self, text: &str, act: Act<'_>) -> Result<(), WorkflowError> {
        if text.trim().is_empty() {
            return Err(WorkflowError::invalid("message", "the message is empty"));
        }
        self.messages.push(Message {
            from: act.by.to_string(),
            at: act.at,
            text: text.trim().to_string(),
        });
        Ok(())
    }

    /// The project the approved terms make.
    fn project(&self, status: ProjectStatus) -> Project {
        let terms = self.approved.as_ref().unwrap_or(&self.proposal.terms);
        project_of(&self.proposal, terms, status)
    }

    fn restore_approved_terms(&mut self) {
        if let Some(terms) = &self.approved {
            self.proposal.terms = terms.clone();
        }
    }

    fn approved_status(&self) -> Status {
        if self.conditions.is_empty() {
            Status::Approved
        } else {
            Status::ConditionallyApproved
        }
    }

    fn assigned_reviewer(&mut self, user: &str) -> Result<&mut Reviewer, WorkflowError> {
        self.round
            .reviewers
            .iter_mut()
            .find(|r| r.user == user)
            .ok_or_else(|| {
                WorkflowError::NotAllowed(
                    "you are not assigned to review this application".to_string(),
                )
            })
    }

    fn refuse_member(&self, user: &str, what: &str) -> Result<(), WorkflowError> {
        if self.is_member(user) {
            return Err(WorkflowError::SeparationOfDuties(format!(
                "`{user}` is named on application {} and cannot {what} it",
                self.id
            )));
        }
        Ok(())
    }

    fn expect(
        &self,
        allowed: &[Status],
        action: &'static str,
        expected: &'static str,
    ) -> Result<(), WorkflowError> {
        if allowed.contains(&self.status) {
            return Ok(());
        }
        Err(WorkflowError::WrongStatus {
            id: self.id.clone(),
            status: self.status,
            action,
            expected,
        })
    }

    fn expect_approved(&self, action: &'static str) -> Result<(), WorkflowError> {
        if self.status.is_approved() {
            return Ok(());
        }
        Err(WorkflowError::WrongStatus {
            id: self.id.clone(),
            status: self.status,
            action,
            expected: "approved",
        })
    }

    fn record(&mut self, from: Option<Status>, to: Status, act: Act<'_>, step: Step, note: &str) {
        tracing::info!(application = self.id, by = act.by, ?from, %to, step = step.name(), "application");
        self.status = to;
        self.history
            .push(Transition::new(from, to, act, step, note));
    }
}

fn validate_proposal(
    proposal: &Proposal,
    applicant: &str,
    catalog: &Catalog,
) -> Result<(), WorkflowError> {
    for (field, text) in [
        ("title", &proposal.title),
        ("purpose", &proposal.purpose),
        ("public_interest", &proposal.public_interest),
        ("planned_outputs", &proposal.planned_outputs),
    ] {
        if text.trim().is_empty() {
            return Err(WorkflowError::invalid(field, "this field is required"));
        }
    }
    let terms = &proposal.terms;
    if !terms.members.iter().any(|m| m.user == applicant) {
        return Err(WorkflowError::invalid(
            "members",
            "the applicant must be one of the members",
        ));
    }
    if terms
        .members
        .iter()
        .any(|m| m.affiliation.trim().is_empty())
    {
        return Err(WorkflowError::invalid(
            "members",
            "every member needs an affiliation",
        ));
    }
    if terms.k < DEFAULT_K {
        return Err(WorkflowError::invalid(
            "k",
            format!("the minimum group size is at least {DEFAULT_K}"),
        ));
    }
    validate_grants(&terms.grants, catalog)?;
    validate_linkage(terms)?;
    // The rest (project id, dates) is what a project checks.
    project_of(proposal, terms, ProjectStatus::Active)
        .validate()
        .map_err(WorkflowError::State)
}

/// The project `terms` make for `proposal`.
fn project_of(proposal: &Proposal, terms: &Terms, status: ProjectStatus) -> Project {
    Project {
        id: proposal.project_id.clone(),
        title: proposal.title.clone(),
        members: terms.members.iter().map(|m| m.user.clone()).collect(),
        grants: terms.grants.clone(),
        period: terms.period,
        valid_until: terms.valid_until.clone(),
        k: terms.k,
        rounding: terms.rounding,
        protection: Protection::Ledger,
        fresh_value_budget: terms.fresh_value_budget,
        workspace_quota_bytes: WORKSPACE_QUOTA_BYTES,
        status,
    }
}

/// Every requested table and column must be in the catalog.
fn validate_grants(grants: &[Grant], catalog: &Catalog) -> Result<(), WorkflowError> {
    if grants.is_empty() {
        return Err(WorkflowError::invalid(
            "tables",
            "request at least one table",
        ));
    }
    for grant in grants {
        let (_, table) = catalog.table(&grant.table).ok_or_else(|| {
            WorkflowError::invalid("tables", format!("`{}` is not in the catalog", grant.table))
        })?;
        for column in grant.columns.iter().flatten() {
            if !table.columns.iter().any(|c| &c.name == column) {
                return Err(WorkflowError::invalid(
                    "columns",
                    format!("`{}` has no column `{column}`", grant.table),
                ));
            }
        }
    }
    Ok(())
}

/// The linkage asked for names known datasets, and every dataset whose
/// tables are requested; linking needs at least two.
fn validate_linkage(terms: &Terms) -> Result<(), WorkflowError> {
    for dataset in &terms.linkage {
        if !DATASETS.contains(&dataset.as_str()) {
            return Err(WorkflowError::invalid(
                "linkage",
                format!("`{dataset}` is not a dataset (ndb, dpc, care)"),
            ));
        }
    }
    let mut used: Vec<&str> = terms.grants.iter().map(Grant::schema).collect();
    used.sort_unstable();
    used.dedup();
    if used.len() > 1 && used.iter().any(|d| !terms.linkage.iter().any(|l| l == d)) {
        return Err(WorkflowError::invalid(
            "linkage",
            format!(
                "tables of {} are requested together: list them as linked",
                used.join(", ")
            ),
        ));
    }
    Ok(())
}
