//! Bring-in review (持込審査): a table a researcher brings into a project
//! (a code list, a reference table) is screened on arrival, held in
//! quarantine where nobody can query it, and becomes `ref.<name>` of that
//! project only once two committee members outside the project approve it.
//! A refused, rejected or closed-over table is destroyed; its record keeps
//! what it was (columns, rows, size, hash), never its contents.
//!
//! The same review registers an analysis definition: a named SQL statement
//! (with its SHA-256) a project member may then run by name
//! (`RUN ANALYSIS <name>`), each run recording the hash.

use enclave_state::Destroyed;
use serde::{Deserialize, Serialize};

use crate::WorkflowError;
use crate::application::{Act, Asked, Step, Transition};

/// Approvals a brought-in table needs, from distinct committee members
/// outside the project.
pub const APPROVALS: usize = 2;

/// Days a table may wait in quarantine; then it is destroyed unreviewed.
pub(crate) const QUARANTINE_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BringInStatus {
    /// Screening found direct identifiers or person keys: nothing was kept.
    RefusedByScreening,
    /// Kept, not queryable, waiting for the committee.
    Quarantined,
    /// `ref.<name>` of the project.
    Approved,
    /// A reviewer rejected it: destroyed.
    Rejected,
    /// The project closed: destroyed.
    Destroyed,
    /// Left in quarantine past `QUARANTINE_DAYS` (30): destroyed.
    Expired,
}

impl BringInStatus {
    pub fn name(self) -> &'static str {
        match self {
            BringInStatus::RefusedByScreening => "refused_by_screening",
            BringInStatus::Quarantined => "quarantined",
            BringInStatus::Approved => "approved",
            BringInStatus::Rejected => "rejected",
            BringInStatus::Destroyed => "destroyed",
            BringInStatus::Expired => "expired",
        }
    }

    /// Whether the table's file is kept.
    pub fn holds_file(self) -> bool {
        matches!(self, BringInStatus::Quarantined | BringInStatus::Approved)
    }
}

/// What is brought in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BringInKind {
    /// A table (`ref.<name>`).
    #[default]
    Table,
    /// An analysis definition: named SQL run as `RUN ANALYSIS <name>`.
    Analysis,
}

impl BringInKind {
    pub fn name(self) -> &'static str {
        match self {
            BringInKind::Table => "table",
            BringInKind::Analysis => "analysis",
        }
    }
}

/// What arrived: its shape and where it is kept (no contents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// `name type` of each column.
    pub columns: Vec<String>,
    pub rows: u64,
    /// Bytes of the stored file.
    pub bytes: u64,
    pub sha256: String,
    /// The object in the data store while it is kept.
    pub object: Option<String>,
}

/// One screening finding: a column and the rule, never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub column: String,
    pub rule: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub at: i64,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BringIn {
    pub id: String,
    pub project_id: String,
    /// The table's name under `ref`, or the analysis's name.
    pub name: String,
    #[serde(default)]
    pub kind: BringInKind,
    /// An analysis definition's statement (`upload.sha256` is its hash).
    #[serde(default)]
    pub sql: Option<String>,
    pub requested_by: String,
    /// What the researcher says it is for.
    pub purpose: String,
    pub status: BringInStatus,
    pub upload: Upload,
    pub findings: Vec<Finding>,
    pub approvals: Vec<Approval>,
    pub history: Vec<Transition<BringInStatus>>,
}

/// A table name under `ref`: lowercase ASCII letters, digits and `_`,
/// starting with a letter, at most 63 bytes.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl BringIn {
    /// A table just screened: quarantined when nothing was found, else
    /// refused (and its file, which the caller never kept, is absent).
    pub fn screened(
        id: String,
        (project_id, name): (&str, &str),
        purpose: &str,
        mut upload: Upload,
        findings: Vec<Finding>,
        act: Act<'_>,
    ) -> Result<BringIn, WorkflowError> {
        if !is_valid_name(name) {
            return Err(WorkflowError::invalid(
                "name",
                "a reference table's name is lowercase letters, digits and _, starting with a letter",
            ));
        }
        let (status, step) = if findings.is_empty() {
            (BringInStatus::Quarantined, Step::ScreeningPassed)
        } else {
            upload.object = None;
            (BringInStatus::RefusedByScreening, Step::ScreeningRefused)
        };
        let mut bring_in = BringIn {
            id,
            project_id: project_id.to_string(),
            name: name.to_string(),
            kind: BringInKind::Table,
            sql: None,
            requested_by: act.by.to_string(),
            purpose: purpose.trim().to_string(),
            status,
            upload,
            findings,
            approvals: Vec::new(),
            history: Vec::new(),
        };
        bring_in.record(status, act, step, "");
        Ok(bring_in)
    }

    /// An analysis definition a member registers (its statement already
    /// planned in the project's session): quarantined for review.
    pub fn analysis(
        id: String,
        (project_id, name): (&str, &str),
        purpose: &str,
        sql: &str,
        act: Act<'_>,
    ) -> Result<BringIn, WorkflowError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, sql.as_bytes());
        let upload = Upload {
            columns: Vec::new(),
            rows: 0,
            bytes: sql.len() as u64,
            sha256: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
            object: None,
        };
        let mut bring_in =
            BringIn::screened(id, (project_id, name), purpose, upload, Vec::new(), act)?;
        bring_in.kind = BringInKind::Analysis;
        bring_in.sql = Some(sql.to_string());
        Ok(bring_in)
    }

    /// A committee member's decision. Members of the project cannot review
    /// it; one person approves once; the second approval makes it
    /// `ref.<name>`, a rejection destroys it (the caller deletes the file
    /// this returns).
    pub fn review(
        &mut self,
        approve: bool,
        note: &str,
        project_members: &[String],
        act: Act<'_>,
    ) -> Result<Option<String>, WorkflowError> {
        if self.status != BringInStatus::Quarantined {
            return Err(WorkflowError::NotAllowed(format!(
                "bring-in {} is {}; only a quarantined table can be reviewed",
                self.id,
                self.status.name()
            )));
        }
        let asked = Asked {
            by: &self.requested_by,
            project: &self.project_id,
            what: "what it brings in",
        };
        asked.check_reviewer(project_members, note, act)?;
        if self.approvals.iter().any(|approval| approval.by == act.by) {
            return Err(WorkflowError::SeparationOfDuties(format!(
                "`{}` has approved bring-in {} already; a second member must",
                act.by, self.id
            )));
        }
        if !approve {
            self.record(BringInStatus::Rejected, act, Step::Reviewed, note);
            return Ok(self.upload.object.take());
        }
        self.approvals.push(Approval {
            by: act.by.to_string(),
            at: act.at,
            note: note.trim().to_string(),
        });
        let to = if self.approvals.len() >= APPROVALS {
            BringInStatus::Approved
        } else {
            BringInStatus::Quarantined
        };
        self.record(to, act, Step::Reviewed, note);
        Ok(None)
    }

    /// Whether it has waited in quarantine past `QUARANTINE_DAYS` at
    /// `now` (Unix seconds).
    pub fn is_overdue(&self, now: i64) -> bool {
        let arrived = self.history.first().map_or(now, |step| step.at);
        self.status == BringInStatus::Quarantined && now - arrived > QUARANTINE_DAYS * 86_400
    }

    /// Ends an overdue quarantine; returns the object the caller must
    /// delete (none for an analysis definition).
    pub fn expire(&mut self, act: Act<'_>) -> Option<String> {
        self.record(BringInStatus::Expired, act, Step::QuarantineExpired, "");
        self.upload.object.take()
    }

    /// Destroys the kept table when its project closes; returns what it was
    /// and its object, or `None` when nothing was kept.
    pub fn destroy(&mut self, act: Act<'_>) -> Option<(Destroyed, String)> {
        if !self.status.holds_file() {
            return None;
        }
        let object = self.upload.object.take()?;
        let destroyed = Destroyed {
            kind: "reference_table".to_string(),
            name: format!("ref.{} (bring-in {})", self.name, self.id),
            bytes: self.upload.bytes,
            sha256: self.upload.sha256.clone(),
        };
        self.record(BringInStatus::Destroyed, act, Step::Destroyed, "");
        Some((destroyed, object))
    }

    fn record(&mut self, to: BringInStatus, act: Act<'_>, step: Step, note: &str) {
        tracing::info!(
            bring_in = self.id,
            project = self.project_id,
            by = act.by,
            to = to.name(),
            step = step.name(),
            "bring-in"
        );
        let from = self.history.last().map(|_| self.status);
        self.status = to;
        self.history
            .push(Transition::new(from, to, act, step, note.trim()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(by: &str) -> Act<'_> {
        Act { by, at: 1 }
    }

    fn quarantined() -> BringIn {
        let upload = Upload {
            columns: vec!["icd10 Utf8".into()],
            rows: 3,
            bytes: 100,
            sha256: "ab".into(),
            object: Some("bring-ins/p/1.parquet".into()),
        };
        BringIn::screened(
            "1".into(),
            ("p", "codes"),
            "cohort",
            upload,
            Vec::new(),
            act("ana"),
        )
        .unwrap()
    }

    #[test]
    fn two_committee_members_outside_the_project_approve() {
        let members = vec!["ana".to_string(), "ben".to_string()];
        let mut table = quarantined();
        assert!(matches!(
            table.review(true, "ok", &members, act("ben")),
            Err(WorkflowError::SeparationOfDuties(_))
        ));
        table.review(true, "ok", &members, act("rev1")).unwrap();
        assert_eq!(table.status, BringInStatus::Quarantined);
        assert!(table.review(true, "again", &members, act("rev1")).is_err());
        table.review(true, "ok", &members, act("rev2")).unwrap();
        assert_eq!(table.status, BringInStatus::Approved);
    }

    #[test]
    fn a_rejection_gives_up_the_file_and_a_refusal_keeps_none() {
        let mut table = quarantined();
        let object = table.review(false, "no", &[], act("rev1")).unwrap();
        assert_eq!(object.as_deref(), Some("bring-ins/p/1.parquet"));
        assert_eq!(table.status, BringInStatus::Rejected);
        assert!(table.destroy(act("system")).is_none());

        let finding = Finding {
            column: "who".into(),
            rule: "person-name".into(),
            message: "values look like personal names".into(),
        };
        let upload = quarantined().upload;
        let refused = BringIn::screened(
            "2".into(),
            ("p", "x"),
            "",
            upload,
            vec![finding],
            act("ana"),
        )
        .unwrap();
        assert_eq!(refused.status, BringInStatus::RefusedByScreening);
        assert_eq!(refused.upload.object, None);
    }

    #[test]
    fn a_quarantine_left_too_long_expires_and_gives_up_its_file() {
        let mut table = quarantined();
        let day = 86_400;
        assert!(!table.is_overdue(1 + QUARANTINE_DAYS * day));
        assert!(table.is_overdue(2 + QUARANTINE_DAYS * day));
        assert_eq!(
            table.expire(act("system")).as_deref(),
            Some("bring-ins/p/1.parquet")
        );
        assert_eq!(table.status, BringInStatus::Expired);
        assert!(!table.is_overdue(i64::MAX));
    }

    #[test]
    fn names_are_plain_identifiers() {
        assert!(is_valid_name("icd_codes_2024"));
        for bad in ["", "1x", "X", "a-b", "a.b", "ref.x", &"a".repeat(64)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
