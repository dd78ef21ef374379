//! Output release review (成果物の審査): a researcher asks for a result to
//! be released for publication; the automatic check runs it through the
//! project's disclosure rules, then a second person from the committee
//! approves or rejects it; only then can members download it.

use enclave_state::Destroyed;
use serde::{Deserialize, Serialize};

use crate::WorkflowError;
use crate::application::{Act, Asked, Step, Transition};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    /// The automatic check refused the result: nothing is held.
    RefusedByCheck,
    /// Passed the automatic check; waiting for a second person.
    AwaitingReview,
    Approved,
    Rejected,
    /// The project closed: the held result was destroyed (its size and
    /// hash are recorded, not its contents).
    Destroyed,
}

impl ReleaseStatus {
    pub fn name(self) -> &'static str {
        match self {
            ReleaseStatus::RefusedByCheck => "refused_by_check",
            ReleaseStatus::AwaitingReview => "awaiting_review",
            ReleaseStatus::Approved => "approved",
            ReleaseStatus::Rejected => "rejected",
            ReleaseStatus::Destroyed => "destroyed",
        }
    }
}

/// What the automatic check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckFindings {
    pub passed: bool,
    /// The rule that refused the result, when it was refused.
    pub refused_rule: Option<String>,
    /// The refusal as the researcher saw it (no data values).
    pub message: String,
    pub released_groups: u64,
    pub k: u32,
    pub rounding: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRelease {
    pub id: String,
    pub project_id: String,
    pub requested_by: String,
    pub title: String,
    /// The statement whose released result is asked for.
    pub sql: String,
    pub status: ReleaseStatus,
    pub findings: CheckFindings,
    /// The checked result as CSV; held inside the enclave until approved.
    pub csv: Option<String>,
    pub reviewed_by: Option<String>,
    pub review_note: Option<String>,
    pub history: Vec<Transition<ReleaseStatus>>,
}

impl OutputRelease {
    /// A request whose automatic check has run.
    pub fn checked(
        id: String,
        project_id: &str,
        title: &str,
        sql: &str,
        findings: CheckFindings,
        csv: Option<String>,
        act: Act<'_>,
    ) -> Result<OutputRelease, WorkflowError> {
        if title.trim().is_empty() {
            return Err(WorkflowError::invalid("title", "name the output"));
        }
        let status = if findings.passed {
            ReleaseStatus::AwaitingReview
        } else {
            ReleaseStatus::RefusedByCheck
        };
        let (step, note) = if findings.passed {
            (Step::CheckPassed, String::new())
        } else {
            (Step::CheckRefused, findings.message.clone())
        };
        let mut release = OutputRelease {
            id,
            project_id: project_id.to_string(),
            requested_by: act.by.to_string(),
            title: title.trim().to_string(),
            sql: sql.to_string(),
            status,
            csv: csv.filter(|_| findings.passed),
            findings,
            reviewed_by: None,
            review_note: None,
            history: Vec::new(),
        };
        release.record(status, act, step, &note);
        Ok(release)
    }

    /// The second person's decision. The requester and the members of the
    /// project cannot review their own output.
    pub fn review(
        &mut self,
        approve: bool,
        note: &str,
        project_members: &[String],
        act: Act<'_>,
    ) -> Result<(), WorkflowError> {
        if self.status != ReleaseStatus::AwaitingReview {
            return Err(WorkflowError::NotAllowed(format!(
                "output release {} is {}; only one awaiting review can be reviewed",
                self.id,
                self.status.name()
            )));
        }
        let asked = Asked {
            by: &self.requested_by,
            project: &self.project_id,
            what: "its output",
        };
        asked.check_reviewer(project_members, note, act)?;
        let to = if approve {
            ReleaseStatus::Approved
        } else {
            self.csv = None;
            ReleaseStatus::Rejected
        };
        self.reviewed_by = Some(act.by.to_string());
        self.review_note = Some(note.trim().to_string());
        self.record(to, act, Step::Reviewed, note);
        Ok(())
    }

    /// Destroys the held result when the project closes; returns what it
    /// was, or `None` when nothing was held (refused or rejected).
    pub fn destroy(&mut self, act: Act<'_>) -> Option<Destroyed> {
        let csv = self.csv.take()?;
        let destroyed = Destroyed::of("output", &format!("output {}", self.id), csv.as_bytes());
        self.record(ReleaseStatus::Destroyed, act, Step::Destroyed, "");
        Some(destroyed)
    }

    /// The released CSV, once approved.
    pub fn download(&self) -> Result<&str, WorkflowError> {
        match (&self.status, &self.csv) {
            (ReleaseStatus::Approved, Some(csv)) => Ok(csv),
            (ReleaseStatus::Destroyed, _) => Err(WorkflowError::NotAllowed(format!(
                "output release {} was destroyed when its project closed",
                self.id
            ))),
            _ => Err(WorkflowError::NotAllowed(format!(
                "output release {} is {}; it can be downloaded once approved",
                self.id,
                self.status.name()
            ))),
        }
    }

    fn record(&mut self, to: ReleaseStatus, act: Act<'_>, step: Step, note: &str) {
        tracing::info!(
            release = self.id,
            by = act.by,
            to = to.name(),
            step = step.name(),
            "output release"
        );
        let from = self.history.last().map(|_| self.status);
        self.status = to;
        self.history
            .push(Transition::new(from, to, act, step, note));
    }
}
